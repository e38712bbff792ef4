//! Image timestamps: the RFC 3339 `created` strings of image configs, turned into Unix seconds
//! and back into the forms Docker prints (`2026-11-23 05:51:45 +0000 UTC`, RFC 3339 with
//! nanoseconds). UTC only: berth prints times as Docker does on a host whose zone is UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds (and nanoseconds) since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub fn now() -> Timestamp {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                secs: d.as_secs() as i64,
                nanos: d.subsec_nanos(),
            },
            Err(_) => Timestamp::default(),
        }
    }

    /// Parses `2006-01-02T15:04:05[.999999999](Z|±hh:mm)`.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || min > 59
            || sec > 60
        {
            return None;
        }
        let mut rest = &s[19..];
        let mut nanos = 0u32;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let mut n: u64 = 0;
            for (i, d) in frac[..digits].bytes().enumerate() {
                if i < 9 {
                    n = n * 10 + u64::from(d - b'0');
                }
            }
            for _ in digits..9 {
                n *= 10;
            }
            nanos = n as u32;
            rest = &frac[digits..];
        }
        let offset = match rest {
            "Z" | "z" => 0,
            _ => {
                let sign = match rest.as_bytes().first()? {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                    return None;
                }
                let h: i64 = rest[1..3].parse().ok()?;
                let m: i64 = rest[4..6].parse().ok()?;
                sign * (h * 3600 + m * 60)
            }
        };
        let days = days_from_civil(year, month, day);
        Some(Timestamp {
            secs: days * 86400 + hour * 3600 + min * 60 + sec - offset,
            nanos,
        })
    }

    fn civil(&self) -> (i64, i64, i64, i64, i64, i64) {
        let days = self.secs.div_euclid(86400);
        let rem = self.secs.rem_euclid(86400);
        let (y, m, d) = civil_from_days(days);
        (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
    }

    /// Go's `time.Time.String()` for a UTC time without monotonic reading, as Docker's
    /// `CreatedAt`: `2026-11-23 05:51:45 +0000 UTC`.
    pub fn go_string(&self) -> String {
        let (y, mo, d, h, mi, s) = self.civil();
        let frac = self.fraction();
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{frac} +0000 UTC")
    }

    /// `.123` for 123 ms: Go's trimmed fraction, empty for whole seconds.
    fn fraction(&self) -> String {
        if self.nanos == 0 {
            return String::new();
        }
        format!(".{:09}", self.nanos)
            .trim_end_matches('0')
            .to_string()
    }

    /// RFC 3339 with nanoseconds trimmed, as Go's `time.RFC3339Nano` in UTC.
    pub fn rfc3339_nano(&self) -> String {
        let (y, mo, d, h, mi, s) = self.civil();
        let frac = self.fraction();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}Z")
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Docker's `until=`/`since=` time values: a Go duration (`24h`, `1h30m`, `10m`) meaning that
/// long before now, a Unix timestamp (`1600000000[.5]`), or an RFC 3339 date/time.
pub fn parse_until(value: &str, now: Timestamp) -> Option<Timestamp> {
    if let Some(d) = parse_go_duration(value) {
        return Some(Timestamp {
            secs: now.secs - d,
            nanos: now.nanos,
        });
    }
    if let Some((secs, frac)) = value.split_once('.').or(Some((value, "")))
        && !secs.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Some(Timestamp {
            secs: secs.parse().ok()?,
            nanos: 0,
        });
    }
    if let Some(t) = Timestamp::parse_rfc3339(value) {
        return Some(t);
    }
    // Date only, or date and time without zone: UTC.
    for suffix in ["T00:00:00Z", "Z"] {
        if let Some(t) = Timestamp::parse_rfc3339(&format!("{value}{suffix}")) {
            return Some(t);
        }
    }
    None
}

/// Whole seconds of a Go duration string (`1h30m`, `45s`, `2h`); fractions are dropped.
fn parse_go_duration(s: &str) -> Option<i64> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if n == 0 {
            return None;
        }
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic() || *b == 0xb5)
            .count();
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[u..];
        total += value * unit;
    }
    Some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = Timestamp::parse_rfc3339("2026-11-23T05:51:45Z").unwrap();
        assert_eq!(t.go_string(), "2026-11-23 05:51:45 +0000 UTC");
        let t = Timestamp::parse_rfc3339("2016-02-29T23:00:00.123456789-01:00").unwrap();
        assert_eq!(t.rfc3339_nano(), "2016-03-01T00:00:00.123456789Z");
        assert_eq!(
            Timestamp::parse_rfc3339("1970-01-01T00:00:00Z")
                .unwrap()
                .secs,
            0
        );
        assert!(Timestamp::parse_rfc3339("yesterday").is_none());
        let now = Timestamp {
            secs: 10_000,
            nanos: 0,
        };
        assert_eq!(parse_until("1h30m", now).unwrap().secs, 10_000 - 5400);
        assert_eq!(parse_until("1600000000", now).unwrap().secs, 1_600_000_000);
        assert_eq!(parse_until("2020-01-01", now).unwrap().secs, 1_577_836_800);
    }
}
