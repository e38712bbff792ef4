//! runc's log lines: `--log FILE` (stderr without it), in logrus's text form or, with
//! `--log-format json`, one JSON object a line — the last error line is what containerd
//! shows its user when a runtime call fails.

use std::io::Write;
use std::path::PathBuf;

use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub struct Logger {
    path: Option<PathBuf>,
    format: Format,
    debug: bool,
}

impl Logger {
    pub fn new(path: Option<PathBuf>, format: Format, debug: bool) -> Self {
        Logger {
            path,
            format,
            debug,
        }
    }

    pub fn error(&self, msg: &str) {
        self.write("error", msg);
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let time = Timestamp::now().rfc3339_nano();
        let line = match self.format {
            Format::Json => {
                let obj = serde_json::json!({ "level": level, "msg": msg, "time": time });
                format!("{obj}\n")
            }
            Format::Text => format!(
                "time=\"{time}\" level={level} msg={}\n",
                serde_json::Value::String(msg.to_string())
            ),
        };
        let written = match &self.path {
            Some(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes())),
            None => std::io::stderr().write_all(line.as_bytes()),
        };
        // The log is where failures are reported: if it cannot be written, stderr is the
        // last place left.
        if written.is_err() {
            eprint!("{line}");
        }
    }
}
