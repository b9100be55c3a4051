//! Progress of a run or a sweep on standard error (docs/cli.md "Progress").
//!
//! On a terminal it is a bar redrawn in place. Anywhere else (a log file
//! of `runner FILE > log 2>&1`, a SLURM job's log) a bar draws nothing, so
//! the progress is written as plain lines instead: one at a steady interval
//! ([`INTERVAL_ENV`], default [`DEFAULT_INTERVAL_SECS`] seconds) from a
//! ticker thread, and one at each event the caller reports (an evaluation,
//! a finished run of a sweep), e.g.
//!
//! ```text
//! tfbind8_tb: 150/2000 rounds (7%), 1m02s, 2.42 rounds/s, eta 12m45s; modes 3
//! ```

use std::io::IsTerminal as _;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Environment variable with the seconds between two progress lines when
/// standard error is not a terminal (0: lines at events only).
pub const INTERVAL_ENV: &str = "RUNNER_PROGRESS_SECS";

/// The seconds between two progress lines when [`INTERVAL_ENV`] is unset.
pub const DEFAULT_INTERVAL_SECS: u64 = 30;

/// The interval between two progress lines: [`INTERVAL_ENV`] if it holds a
/// number of seconds, else [`DEFAULT_INTERVAL_SECS`]; `None` for 0.
pub fn line_interval() -> Option<Duration> {
    let secs = std::env::var(INTERVAL_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(DEFAULT_INTERVAL_SECS as f64);
    (secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

/// Where lines go: standard error, or a test's buffer.
type Sink = Box<dyn Fn(&str) + Send + Sync>;

/// The progress of `len` units of work (steps, rounds, iterations, runs).
pub struct Progress {
    shown: Shown,
}

enum Shown {
    /// Nothing is shown.
    Hidden,
    /// A bar on a terminal.
    Bar(indicatif::ProgressBar),
    /// Plain lines, with the ticker that writes them at the interval.
    Lines(Arc<Lines>, Option<Ticker>),
}

/// The state behind the plain lines.
struct Lines {
    label: String,
    unit: &'static str,
    len: u64,
    start: Instant,
    state: Mutex<LineState>,
    sink: Sink,
}

struct LineState {
    /// Units done.
    pos: u64,
    /// Units done when the clock started (a resumed run's first step).
    first: u64,
    /// The caller's words after the numbers.
    message: String,
}

/// The thread writing a line every interval until it is told to stop.
struct Ticker {
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// The progress of `len` units called `unit` (plural: `steps`,
    /// `rounds`, `iterations`, `runs`) of `label` (the experiment's name),
    /// on standard error: a bar on a terminal, else plain lines; nothing
    /// when not `enabled`.
    pub fn new(len: u64, enabled: bool, label: &str, unit: &'static str) -> Self {
        if !enabled {
            return Progress {
                shown: Shown::Hidden,
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(len),
                indicatif::ProgressDrawTarget::stderr(),
            );
            let template = format!(
                "{{prefix}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} \
                 ({{per_sec}}, eta {{eta}}) {{msg}}"
            );
            bar.set_style(
                indicatif::ProgressStyle::with_template(&template).expect("valid template"),
            );
            bar.set_prefix(label.to_string());
            return Progress {
                shown: Shown::Bar(bar),
            };
        }
        let sink: Sink = Box::new(|line: &str| crate::console::errln(format_args!("{line}")));
        Self::lines(len, label, unit, line_interval(), sink)
    }

    /// Plain lines to `sink`, every `interval` (`None`: at events only).
    fn lines(
        len: u64,
        label: &str,
        unit: &'static str,
        interval: Option<Duration>,
        sink: Sink,
    ) -> Self {
        let lines = Arc::new(Lines {
            label: label.to_string(),
            unit,
            len,
            start: Instant::now(),
            state: Mutex::new(LineState {
                pos: 0,
                first: 0,
                message: String::new(),
            }),
            sink,
        });
        let ticker = interval.and_then(|every| {
            let (stop, wait) = mpsc::channel::<()>();
            let shared = Arc::clone(&lines);
            let thread = std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || loop {
                    match wait.recv_timeout(every) {
                        Err(RecvTimeoutError::Timeout) => shared.print(),
                        _ => return,
                    }
                })
                .ok()?;
            Some(Ticker {
                stop,
                thread: Some(thread),
            })
        });
        Progress {
            shown: Shown::Lines(lines, ticker),
        }
    }

    /// Start at `pos` units done (a resumed run): the rate counts from here.
    pub fn set_position(&self, pos: u64) {
        match &self.shown {
            Shown::Hidden => {}
            Shown::Bar(bar) => {
                bar.set_position(pos);
                bar.reset_eta();
            }
            Shown::Lines(lines, _) => lines.update(|s| {
                s.pos = pos;
                s.first = pos;
            }),
        }
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        match &self.shown {
            Shown::Hidden => {}
            Shown::Bar(bar) => bar.inc(n),
            Shown::Lines(lines, _) => lines.update(|s| s.pos += n),
        }
    }

    /// The words after the numbers (e.g. `modes 12`, `2 running, 0 failed`).
    pub fn set_message(&self, message: String) {
        match &self.shown {
            Shown::Hidden => {}
            Shown::Bar(bar) => bar.set_message(message),
            Shown::Lines(lines, _) => lines.update(|s| s.message = message),
        }
    }

    /// An event worth a line (an evaluation, a finished run): `message`
    /// becomes the words after the numbers, and the lines print one now.
    pub fn event(&self, message: String) {
        self.set_message(message);
        if let Shown::Lines(lines, _) = &self.shown {
            lines.print();
        }
    }

    /// The work is over: the bar is cleared, the ticker stopped.
    pub fn finish(&mut self) {
        match &mut self.shown {
            Shown::Hidden => {}
            Shown::Bar(bar) => bar.finish_and_clear(),
            Shown::Lines(_, ticker) => {
                if let Some(mut t) = ticker.take() {
                    t.halt();
                }
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Ticker {
    fn halt(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Lines {
    fn update(&self, f: impl FnOnce(&mut LineState)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
    }

    /// Write the current line.
    fn print(&self) {
        let line = match self.state.lock() {
            Ok(s) => self.line(&s, self.start.elapsed()),
            Err(_) => return,
        };
        (self.sink)(&line);
    }

    /// `label: pos/len unit (pct%), elapsed, rate unit/s, eta T; message`.
    fn line(&self, s: &LineState, elapsed: Duration) -> String {
        let (unit, len) = (self.unit, self.len);
        let pct = match len {
            0 => 100.0,
            _ => 100.0 * s.pos as f64 / len as f64,
        };
        let mut line = format!(
            "{}: {}/{len} {unit} ({pct:.0}%), {}",
            self.label,
            s.pos,
            duration(elapsed.as_secs_f64())
        );
        let secs = elapsed.as_secs_f64();
        let done = s.pos.saturating_sub(s.first);
        if done > 0 && secs > 0.0 {
            let rate = done as f64 / secs;
            let left = len.saturating_sub(s.pos) as f64 / rate;
            line.push_str(&format!(
                ", {} {unit}/s, eta {}",
                rate_text(rate),
                duration(left)
            ));
        }
        if !s.message.is_empty() {
            line.push_str("; ");
            line.push_str(&s.message);
        }
        line
    }
}

/// A rate with three significant digits (`0.732`, `2.42`, `151`).
fn rate_text(rate: f64) -> String {
    if rate >= 100.0 {
        format!("{rate:.0}")
    } else if rate >= 10.0 {
        format!("{rate:.1}")
    } else if rate >= 1.0 {
        format!("{rate:.2}")
    } else {
        format!("{rate:.3}")
    }
}

/// Seconds as `45s`, `12m05s`, `3h07m`.
fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collecting() -> (Arc<Mutex<Vec<String>>>, Sink) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&got);
        let sink: Sink = Box::new(move |l: &str| into.lock().unwrap().push(l.to_string()));
        (got, sink)
    }

    /// A line names the units done of the total in the caller's unit, the
    /// rate from the (resumed) start and the caller's words.
    #[test]
    fn lines_count_in_the_callers_unit() {
        let (_, sink) = collecting();
        let p = Progress::lines(1000, "qm9_tb", "rounds", None, sink);
        let Shown::Lines(lines, _) = &p.shown else {
            unreachable!()
        };
        let mut s = LineState {
            pos: 250,
            first: 50,
            message: "modes 7".into(),
        };
        let line = lines.line(&s, Duration::from_secs(100));
        assert_eq!(
            line,
            "qm9_tb: 250/1000 rounds (25%), 1m40s, 2.00 rounds/s, eta 6m15s; modes 7"
        );
        s.pos = 50;
        s.message.clear();
        assert_eq!(
            lines.line(&s, Duration::from_secs(3)),
            "qm9_tb: 50/1000 rounds (5%), 3s"
        );
        assert_eq!(duration(3.0 * 3600.0 + 7.0 * 60.0), "3h07m");
    }

    /// Without a terminal, an event prints a line at once and the ticker
    /// prints at its interval; finishing stops the ticker.
    #[test]
    fn events_and_the_interval_print_lines() {
        let (got, sink) = collecting();
        let mut p = Progress::lines(4, "sweep", "runs", Some(Duration::from_millis(20)), sink);
        p.inc(1);
        p.event("1 running, 0 failed".into());
        assert_eq!(
            got.lock().unwrap()[0].split(',').next(),
            Some("sweep: 1/4 runs (25%)")
        );
        let t0 = Instant::now();
        while got.lock().unwrap().len() < 3 {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "no line from the ticker"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        p.finish();
        let n = got.lock().unwrap().len();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(got.lock().unwrap().len(), n, "the ticker stopped");
        assert!(got.lock().unwrap()[1].ends_with("; 1 running, 0 failed"));
    }
}
