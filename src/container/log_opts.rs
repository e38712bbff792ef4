//! Docker's logging options: `--log-driver` and `--log-opt` of `run`/`create`, merged over the
//! configuration's `log-driver` and `log-opts` (daemon.json's keys) and checked as Docker's
//! daemon checks them, with its messages. berth has two drivers: `json-file` (the default,
//! with `max-size`, `max-file` and `compress`) and `none`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const JSON_FILE: &str = "json-file";
pub const NONE: &str = "none";

/// A container's logging driver and its options, as `inspect` shows them
/// (`HostConfig.LogConfig`): the options as given, merged with the configuration's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    #[serde(rename = "type")]
    pub driver: String,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            driver: JSON_FILE.to_string(),
            config: BTreeMap::new(),
        }
    }
}

/// How the json-file log is kept: the current file grows to `max_size` bytes (one entry
/// more at most), then becomes `<log>.1`, the older ones moving up to `<log>.<max_files - 1>`;
/// the oldest beyond that is deleted. `compress` gzips each file as it is rotated out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// None: the file grows without limit.
    pub max_size: Option<u64>,
    pub max_files: u32,
    pub compress: bool,
}

impl Default for Rotation {
    fn default() -> Rotation {
        Rotation {
            max_size: None,
            max_files: 1,
            compress: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogOptsError {
    /// Refused by Docker's client: `--log-opt` with `--log-driver none`.
    #[error("invalid logging opts for driver {0}")]
    OptsForNone(String),
    #[error("unknown log opt '{0}' for json-file log driver")]
    UnknownOpt(String),
    /// A value the json-file driver cannot start with (Docker finds it at the start).
    #[error("failed to initialize logging driver: {0}")]
    Value(String),
    /// One of Docker's own drivers that berth does not have.
    #[error("logging driver {0} is not supported by berth: json-file and none are")]
    Unsupported(String),
    /// A name Docker would look for among its plugins.
    #[error("error looking up logging plugin {0}: plugin \"{0}\" not found")]
    UnknownDriver(String),
}

impl LogOptsError {
    /// Whether Docker's daemon (rather than its client) says it, as
    /// "Error response from daemon: …".
    pub fn from_daemon(&self) -> bool {
        !matches!(self, LogOptsError::OptsForNone(_))
    }
}

/// Docker's drivers that berth lacks (its plugin lookup would not be the right message).
const DOCKER_DRIVERS: &[&str] = &[
    "local",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
];

/// The options json-file accepts (Docker's `ValidateLogOpt`); berth applies `max-size`,
/// `max-file` and `compress`, and accepts the rest, which only add attributes to entries that
/// `docker logs --details` shows.
const JSON_FILE_OPTS: &[&str] = &[
    "max-file",
    "max-size",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
];

/// The log configuration of a new container: `driver` and `opts` (`KEY=VALUE` each) from its
/// flags over `default` (the configuration's `log-driver` and `log-opts`), whose options apply
/// only when the driver is the configured one, key by key, as in Docker. Checked, so that a
/// container that could not start its log is never created.
pub fn resolve(
    driver: Option<&str>,
    opts: &[String],
    default: &LogConfig,
) -> Result<LogConfig, LogOptsError> {
    let driver = driver.filter(|d| !d.is_empty());
    if driver == Some(NONE) && !opts.is_empty() {
        return Err(LogOptsError::OptsForNone(NONE.into()));
    }
    let mut config: BTreeMap<String, String> = opts
        .iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (o.clone(), String::new()),
        })
        .collect();
    let driver = driver.unwrap_or(&default.driver).to_string();
    if driver == default.driver {
        for (k, v) in &default.config {
            config.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let resolved = LogConfig { driver, config };
    resolved.rotation()?;
    Ok(resolved)
}

impl LogConfig {
    /// The driver's rotation, or why its options are refused (Docker's messages, in the
    /// order its daemon checks: option names at create, then values at the start).
    pub fn rotation(&self) -> Result<Rotation, LogOptsError> {
        match self.driver.as_str() {
            NONE => return Ok(Rotation::default()),
            JSON_FILE => {}
            d if DOCKER_DRIVERS.contains(&d) => return Err(LogOptsError::Unsupported(d.into())),
            d => return Err(LogOptsError::UnknownDriver(d.into())),
        }
        if let Some(key) = self
            .config
            .keys()
            .find(|k| !JSON_FILE_OPTS.contains(&k.as_str()))
        {
            return Err(LogOptsError::UnknownOpt(key.clone()));
        }
        let max_size = match self.config.get("max-size") {
            Some(v) => {
                let size = from_human_size(v).map_err(LogOptsError::Value)?;
                if size <= 0 {
                    return Err(LogOptsError::Value(
                        "max-size must be a positive number".into(),
                    ));
                }
                Some(size as u64)
            }
            None => None,
        };
        let max_files = match self.config.get("max-file") {
            Some(v) => {
                let n = go_atoi(v).map_err(LogOptsError::Value)?;
                if n < 1 {
                    return Err(LogOptsError::Value("max-file cannot be less than 1".into()));
                }
                u32::try_from(n).unwrap_or(u32::MAX)
            }
            None => 1,
        };
        let compress = match self.config.get("compress") {
            Some(v) => {
                let on = go_parse_bool(v).map_err(LogOptsError::Value)?;
                if on && (max_files == 1 || max_size.is_none()) {
                    return Err(LogOptsError::Value(
                        "compress cannot be true when max-file is less than 2 or max-size is not set"
                            .into(),
                    ));
                }
                on
            }
            None => false,
        };
        Ok(Rotation {
            max_size,
            max_files,
            compress,
        })
    }

    /// Whether the driver writes a log that `logs` can read.
    pub fn readable(&self) -> bool {
        self.driver == JSON_FILE
    }
}

/// go-units' `FromHumanSize`: a number (a float) with an optional decimal unit — k, m, g, t, p
/// for powers of 1000, with an optional `b` or `ib` after it (`10m`, `1.5kB`, `2MiB` are
/// 10,000,000, 1,500 and 2,000,000 bytes).
pub fn from_human_size(s: &str) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{s}'");
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(invalid());
    };
    let (num, suffix) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..sep + 1], &s[sep + 1..])
    };
    let size: f64 = num
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing \"{num}\": invalid syntax"))?;
    if size < 0.0 {
        return Err(invalid());
    }
    if suffix.is_empty() {
        return Ok(size as i64);
    }
    let bad_suffix = || format!("invalid suffix: '{suffix}'");
    let lower = suffix.to_ascii_lowercase();
    if lower.len() > 3 {
        return Err(bad_suffix());
    }
    let b = lower.as_bytes();
    if b[0] == b'b' {
        return if b.len() == 1 {
            Ok(size as i64)
        } else {
            Err(bad_suffix())
        };
    }
    let mul: f64 = match b[0] {
        b'k' => 1e3,
        b'm' => 1e6,
        b'g' => 1e9,
        b't' => 1e12,
        b'p' => 1e15,
        _ => return Err(bad_suffix()),
    };
    match (b.len(), &lower[1..]) {
        (1, _) | (2, "b") | (3, "ib") => Ok((size * mul) as i64),
        _ => Err(bad_suffix()),
    }
}

/// Go's `strconv.Atoi`, with its error text.
fn go_atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing \"{s}\": invalid syntax"));
    }
    s.parse()
        .map_err(|_| format!("strconv.Atoi: parsing \"{s}\": value out of range"))
}

/// Go's `strconv.ParseBool`, with its error text.
fn go_parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing \"{s}\": invalid syntax"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn human_sizes() {
        assert_eq!(from_human_size("10m"), Ok(10_000_000));
        assert_eq!(from_human_size("100k"), Ok(100_000));
        assert_eq!(from_human_size("1.5kB"), Ok(1_500));
        assert_eq!(from_human_size("2MiB"), Ok(2_000_000));
        assert_eq!(from_human_size("10 m"), Ok(10_000_000));
        assert_eq!(from_human_size("512"), Ok(512));
        assert_eq!(from_human_size("7b"), Ok(7));
        assert_eq!(from_human_size("abc"), Err("invalid size: 'abc'".into()));
        assert_eq!(from_human_size("-1"), Err("invalid size: '-1'".into()));
        assert_eq!(from_human_size(""), Err("invalid size: ''".into()));
        assert_eq!(from_human_size("10x"), Err("invalid suffix: 'x'".into()));
        // Go's rule: the number ends at the last digit, dot or space.
        assert_eq!(
            from_human_size("10mb2"),
            Err("strconv.ParseFloat: parsing \"10mb2\": invalid syntax".into())
        );
        assert_eq!(from_human_size("1kbb"), Err("invalid suffix: 'kbb'".into()));
        assert_eq!(
            from_human_size("1.2.3k"),
            Err("strconv.ParseFloat: parsing \"1.2.3\": invalid syntax".into())
        );
    }

    #[test]
    fn docker_checks_and_messages() {
        let json = LogConfig::default();
        let check = |driver: Option<&str>, list: &[&str]| {
            resolve(driver, &opts(list), &json).map_err(|e| e.to_string())
        };
        let rotation = |list: &[&str]| check(None, list).map(|c| c.rotation().unwrap());
        assert_eq!(
            rotation(&["max-size=10m", "max-file=3"]),
            Ok(Rotation {
                max_size: Some(10_000_000),
                max_files: 3,
                compress: false
            })
        );
        // max-file alone is accepted, and nothing rotates (Docker's json-file).
        assert_eq!(
            rotation(&["max-file=3"]),
            Ok(Rotation {
                max_size: None,
                max_files: 3,
                compress: false
            })
        );
        assert_eq!(
            rotation(&["max-size=1k", "max-file=2", "compress=true"]).map(|r| r.compress),
            Ok(true)
        );
        let failed = |driver, list: &[&str]| check(driver, list).unwrap_err();
        assert_eq!(
            failed(None, &["max-size=abc"]),
            "failed to initialize logging driver: invalid size: 'abc'"
        );
        assert_eq!(
            failed(None, &["max-size=0"]),
            "failed to initialize logging driver: max-size must be a positive number"
        );
        assert_eq!(
            failed(None, &["max-file=0"]),
            "failed to initialize logging driver: max-file cannot be less than 1"
        );
        assert_eq!(
            failed(None, &["max-file=x"]),
            "failed to initialize logging driver: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            failed(None, &["max-size=1k", "compress=true"]),
            "failed to initialize logging driver: compress cannot be true when max-file is less than 2 or max-size is not set"
        );
        assert_eq!(
            failed(None, &["max-size=1k", "max-file=2", "compress=yes"]),
            "failed to initialize logging driver: strconv.ParseBool: parsing \"yes\": invalid syntax"
        );
        assert_eq!(
            failed(None, &["foo=bar"]),
            "unknown log opt 'foo' for json-file log driver"
        );
        assert_eq!(
            failed(None, &["foo"]),
            "unknown log opt 'foo' for json-file log driver"
        );
        assert_eq!(
            failed(Some("none"), &["max-size=1m"]),
            "invalid logging opts for driver none"
        );
        assert_eq!(
            failed(Some("bogus"), &[]),
            "error looking up logging plugin bogus: plugin \"bogus\" not found"
        );
        assert!(failed(Some("journald"), &[]).contains("not supported by berth"));
    }

    #[test]
    fn defaults_merge_key_by_key_for_the_same_driver() {
        let default = LogConfig {
            driver: JSON_FILE.into(),
            config: [("max-size", "1k"), ("max-file", "2")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let merged = resolve(None, &opts(&["max-file=5"]), &default).unwrap();
        assert_eq!(merged.config["max-size"], "1k");
        assert_eq!(merged.config["max-file"], "5");
        let explicit = resolve(Some("json-file"), &[], &default).unwrap();
        assert_eq!(explicit.config.len(), 2);
        let none = resolve(Some("none"), &[], &default).unwrap();
        assert_eq!(none.driver, "none");
        assert!(none.config.is_empty());
    }
}
