//! Docker's ways of writing numbers for people: decimal sizes ("5.58MB") and relative times.

/// Go's `units.HumanSizeWithPrecision`: decimal units, `precision` significant digits, trailing
/// zeros dropped ("2.22MB", "81.8MB", "812kB", "0B").
pub fn human_size(bytes: u64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", go_g(size, precision), UNITS[unit])
}

/// Go's `%.Ng` for the non-negative magnitudes sizes take.
fn go_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let exponent = value.log10().floor() as i32;
    // Round to `precision` significant digits first: rounding can carry into a new digit.
    let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
    let rounded: f64 = format!("{value:.decimals$}").parse().unwrap_or(value);
    let exponent = if rounded > 0.0 {
        rounded.log10().floor() as i32
    } else {
        0
    };
    if exponent >= precision as i32 {
        let mantissa = rounded / 10f64.powi(exponent);
        let m = trim_zeros(format!("{:.*}", precision.saturating_sub(1), mantissa));
        return format!("{m}e+{exponent:02}");
    }
    let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
    trim_zeros(format!("{rounded:.decimals$}"))
}

fn trim_zeros(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0, 3), "0B");
        assert_eq!(human_size(999, 3), "999B");
        assert_eq!(human_size(1000, 3), "1kB");
        assert_eq!(human_size(5_580_000, 3), "5.58MB");
        assert_eq!(human_size(183_000_000, 3), "183MB");
        assert_eq!(human_size(81_812_345, 3), "81.8MB");
        assert_eq!(human_size(3_146_000, 4), "3.146MB");
        assert_eq!(human_size(29_540_000, 4), "29.54MB");
        assert_eq!(human_size(2_000_000, 4), "2MB");
    }
}
