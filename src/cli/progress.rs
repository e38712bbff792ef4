//! Docker's pull output: on a terminal, one live line per layer with a progress bar; otherwise
//! one plain line per status change (and no byte counts), exactly like `docker pull | cat`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::format::human_size;
use crate::image::pull::{LayerStatus, PullEvent};

pub struct PullPrinter {
    quiet: bool,
    /// `run` pulls report on stderr, keeping stdout for the container.
    to_stderr: bool,
    live: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    last_plain: Mutex<HashMap<String, &'static str>>,
}

impl PullPrinter {
    pub fn new(quiet: bool, terminal: bool) -> PullPrinter {
        Self::with_target(quiet, terminal, false)
    }

    pub fn with_target(quiet: bool, terminal: bool, to_stderr: bool) -> PullPrinter {
        let live = (!quiet && terminal).then(|| {
            MultiProgress::with_draw_target(if to_stderr {
                ProgressDrawTarget::stderr_with_hz(10)
            } else {
                ProgressDrawTarget::stdout_with_hz(10)
            })
        });
        PullPrinter {
            quiet,
            to_stderr,
            live,
            bars: Mutex::new(HashMap::new()),
            last_plain: Mutex::new(HashMap::new()),
        }
    }

    /// A line above the layer bars (or plain).
    pub fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.live {
            Some(live) => {
                let _ = live.println(text);
            }
            None => self.plain(text),
        }
    }

    fn columns(&self) -> u16 {
        terminal_columns(self.to_stderr)
    }

    fn plain(&self, text: &str) {
        if self.to_stderr {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        } else {
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
    }

    pub fn event(&self, event: PullEvent) {
        if self.quiet {
            return;
        }
        match event {
            PullEvent::Pulling { what, from } => {
                // A manifest retry left a live line under this id: the pull line replaces it,
                // as it would in Docker's display.
                if let Some(bar) = self.bars.lock().expect("printer").remove(&what) {
                    bar.finish_and_clear();
                }
                self.line(&format!("{what}: Pulling from {from}"))
            }
            PullEvent::Layer { id, status } => self.layer(id, status),
            // A live line that said "Retrying in N seconds" goes (plain lines are history,
            // as in `docker pull | cat`).
            PullEvent::RetriesOver { id } => {
                if let Some(bar) = self.bars.lock().expect("printer").remove(&id) {
                    bar.finish_and_clear();
                }
            }
        }
    }

    fn layer(&self, id: String, status: LayerStatus) {
        let text = match &status {
            LayerStatus::AlreadyExists => "Already exists",
            LayerStatus::PullingFsLayer => "Pulling fs layer",
            LayerStatus::Waiting => "Waiting",
            LayerStatus::Downloading { .. } => "Downloading",
            LayerStatus::VerifyingChecksum => "Verifying Checksum",
            LayerStatus::DownloadComplete => "Download complete",
            LayerStatus::PullComplete => "Pull complete",
            LayerStatus::Retrying { seconds } => return self.retrying(id, *seconds),
        };
        let Some(live) = &self.live else {
            if matches!(status, LayerStatus::Downloading { .. }) {
                return;
            }
            let mut last = self.last_plain.lock().expect("printer");
            if last.get(&id) != Some(&text) {
                last.insert(id.clone(), text);
                self.plain(&format!("{id}: {text}"));
            }
            return;
        };
        let message = match status {
            LayerStatus::Downloading { current, total } => {
                format!("Downloading {}", bar_text(current, total, self.columns()))
            }
            _ => text.to_string(),
        };
        let bar = self.live_line(live, id, message);
        if matches!(
            status,
            LayerStatus::PullComplete | LayerStatus::AlreadyExists
        ) {
            bar.tick();
        }
    }

    /// Docker's `Retrying in N seconds` on the line of `id`: each second a line of its own
    /// when not on a terminal (as `docker pull | cat` shows them), else the live line.
    fn retrying(&self, id: String, seconds: u64) {
        let text = format!(
            "Retrying in {seconds} second{}",
            if seconds == 1 { "" } else { "s" }
        );
        let Some(live) = &self.live else {
            // The next status after the retry is news again, even if it was the last one.
            self.last_plain.lock().expect("printer").remove(&id);
            self.plain(&format!("{id}: {text}"));
            return;
        };
        self.live_line(live, id, text).tick();
    }

    /// Shows `ID: message` on the live line of `id`, added below the others the first time.
    fn live_line(&self, live: &MultiProgress, id: String, message: String) -> ProgressBar {
        let mut bars = self.bars.lock().expect("printer");
        if let Some(bar) = bars.get(&id) {
            bar.set_message(message);
            return bar.clone();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(ProgressStyle::with_template("{prefix}: {wide_msg}").expect("template"));
        bar.set_prefix(id.clone());
        // Its text is set before it is shown, so it never draws as a bare `ID:`.
        bar.set_message(message);
        let bar = live.add(bar);
        bars.insert(id, bar.clone());
        bar
    }

    pub fn finish(&self) {
        if let Some(live) = &self.live {
            for bar in self.bars.lock().expect("printer").values() {
                bar.finish();
            }
            // The finished bars stay on screen with each layer's last status, as Docker's do.
            let _ = live;
        }
    }
}

/// The width of the terminal on stdout (or stderr), 80 when it cannot be told.
pub(crate) fn terminal_columns(stderr: bool) -> u16 {
    use std::os::fd::AsFd;
    let size = if stderr {
        crate::container::tty::window_size(std::io::stderr().as_fd())
    } else {
        crate::container::tty::window_size(std::io::stdout().as_fd())
    };
    size.map(|(_, cols)| cols).unwrap_or(80)
}

/// `[=========>        ]  12.3MB/81.8MB` (a 50-column bar, like Docker's), or only the byte
/// counts on a terminal narrower than 110 columns, where Docker leaves the bar out too.
pub(crate) fn bar_text(current: u64, total: u64, columns: u16) -> String {
    if columns < 110 {
        return format!("{}/{}", human_size(current, 4), human_size(total, 4));
    }
    const WIDTH: u64 = 50;
    let filled = (current.min(total) * WIDTH).checked_div(total).unwrap_or(0) as usize;
    let mut bar = "=".repeat(filled);
    if filled < WIDTH as usize {
        bar.push('>');
        bar.push_str(&" ".repeat(WIDTH as usize - filled - 1));
    } else {
        bar.pop();
        bar.push('>');
    }
    format!(
        "[{bar}] {:>8}/{}",
        human_size(current, 4),
        human_size(total, 4)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config fetch retried after "Pulling from" leaves no "Retrying in 1 second" line
    /// behind once it went through.
    #[test]
    fn a_retry_line_goes_when_its_request_went_through() {
        let printer = PullPrinter::new(false, true);
        printer.event(PullEvent::Layer {
            id: "latest".into(),
            status: LayerStatus::Retrying { seconds: 1 },
        });
        assert!(printer.bars.lock().unwrap().contains_key("latest"));
        printer.event(PullEvent::RetriesOver {
            id: "latest".into(),
        });
        assert!(printer.bars.lock().unwrap().is_empty());
        printer.finish();
    }
}
