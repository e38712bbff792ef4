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

/// Go's `units.HumanDuration`: "Less than a second", "About a minute", "3 hours", "2 weeks".
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let minutes = secs / 60;
    let hours = (secs as f64 / 3600.0 + 0.5) as i64;
    match () {
        _ if secs < 1 => "Less than a second".into(),
        _ if secs == 1 => "1 second".into(),
        _ if secs < 60 => format!("{secs} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", secs / 3600 / 24 / 365),
    }
}

/// Seconds from an RFC 3339 timestamp until now.
pub fn seconds_since(timestamp: &str) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    crate::time::Timestamp::parse_rfc3339(timestamp)
        .map(|t| now - t.secs)
        .unwrap_or(0)
}

/// Docker's `Ellipsis`: at most `max` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= max {
        return s.to_string();
    }
    let mut out: String = chars[..max.saturating_sub(1)].iter().collect();
    out.push('…');
    out
}

/// Docker's `CreatedSince`: "5 days ago", "About an hour ago".
pub fn time_ago(then_secs: i64, now_secs: i64) -> String {
    format!("{} ago", human_duration(now_secs - then_secs))
}

/// Columns separated by at least three spaces, like Docker's tabwriter tables.
pub fn table(rows: &[Vec<String>]) -> String {
    table_min_width(rows, 10)
}

/// `table` with another minimum cell width (Docker's `top` uses 20).
pub fn table_min_width(rows: &[Vec<String>], min_width: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line_width: usize = widths.iter().map(|w| (w + 3).max(min_width)).sum();
    let mut out = String::with_capacity(rows.len() * (line_width + 1));
    for row in rows {
        let start = out.len();
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                // Docker's tabwriter: padding 3, a minimum cell width.
                let pad = (widths[i] + 3).max(min_width) - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let line = out[start..].trim_end().len();
        out.truncate(start + line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(65), "About a minute");
        assert_eq!(human_duration(3 * 60), "3 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 86400), "5 days");
        assert_eq!(
            ellipsis("sh -c 'echo hi; sleep 1000'", 20),
            "sh -c 'echo hi; sle…"
        );
    }
}
