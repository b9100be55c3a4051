//! A reward (or energy) served by a researcher's own program over a line
//! protocol on its standard input and output (docs/tasks.md "The line
//! protocol").
//!
//! The runner starts the program once per run, in the directory of the
//! experiment file, and sends it batches:
//!
//! * runner -> program: one candidate a line (a string of the task's
//!   alphabet, or a point as numbers separated by spaces), then one empty
//!   line that ends the batch;
//! * program -> runner: one answer line per candidate, in order (a number;
//!   for an energy with a gradient, the log density followed by the
//!   gradient's D numbers), written and flushed after the batch's empty line;
//! * end: the runner closes the program's standard input; the program should
//!   exit. When the run stops for any reason the runner sends SIGTERM and,
//!   after [`GRACE`], SIGKILL; if the runner itself dies (kill -9), the kernel
//!   kills the program (Linux parent-death signal).
//!
//! A batch holds at most `batch` candidates (larger requests are split). A
//! crash, a timeout, a short answer or a line that is not a finite number is
//! an error naming the command, the batch number and the line; the program
//! is not used again after one. Its standard error goes to a file (a run's
//! `oracle_stderr.log`) or, for `runner score`, to the runner's.
//!
//! The program runs in a process group of its own, so Ctrl-C at the terminal
//! reaches the runner only: the runner then stops cleanly and ends the
//! program itself.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long a program has to exit after SIGTERM before it is killed.
pub const GRACE: Duration = Duration::from_secs(2);

/// Default candidates per batch.
pub const DEFAULT_BATCH: usize = 256;

/// Default wait for one batch, in seconds.
pub const DEFAULT_TIMEOUT_S: f64 = 60.0;

/// The file of a run's directory that receives a program's standard error.
pub const STDERR_FILE: &str = "oracle_stderr.log";

/// How often a wait for answers looks for a stop request.
const POLL: Duration = Duration::from_millis(100);

/// The message of a wait cut short by a stop request.
const STOPPED: &str = "stopped waiting: the runner was asked to stop";

/// The longest answer line read, in bytes (a point of a 10,000-d energy with
/// its gradient fits); a longer one is an error.
pub const MAX_ANSWER: usize = 1 << 20;

/// How to run a program that answers batches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProgramSpec {
    /// The program and its arguments (not through a shell).
    pub command: Vec<String>,
    /// Most candidates in one batch.
    pub batch: usize,
    /// Longest wait for one batch's answers.
    pub timeout: Duration,
    /// Working directory of the program (the experiment file's directory).
    pub dir: PathBuf,
}

impl ProgramSpec {
    /// The command as a shell would show it, e.g. `python3 oracle.py`.
    pub fn display(&self) -> String {
        self.command
            .iter()
            .map(|a| {
                if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'') {
                    format!("{a:?}")
                } else {
                    a.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Why a program gave no usable answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("reward program `{command}`: {message}")]
pub struct ProgramError {
    /// The command, as [`ProgramSpec::display`] shows it.
    pub command: String,
    /// What went wrong, with the batch and line.
    pub message: String,
    /// The wait was cut short by Ctrl-C or SIGTERM (the run stops as
    /// interrupted, not failed).
    pub interrupted: bool,
}

/// A running program.
pub struct Program {
    spec: ProgramSpec,
    child: Child,
    /// `None` once closed.
    stdin: Option<ChildStdin>,
    /// Answer lines from the reader thread (an `Err` at the end of the output).
    answers: Receiver<Result<String, String>>,
    /// Batches sent so far.
    batches: u64,
    /// Set after an error: the program is not used again.
    broken: Option<ProgramError>,
}

/// What [`Program`] says where its standard error goes.
#[derive(Debug, Clone)]
pub enum StderrTo {
    /// Append to this file (created if missing).
    File(PathBuf),
    /// The runner's own standard error.
    Inherit,
}

impl Program {
    /// Start the program of `spec`.
    pub fn start(spec: &ProgramSpec, stderr: &StderrTo) -> Result<Program, ProgramError> {
        let fail = |message: String| ProgramError {
            command: spec.display(),
            message,
            interrupted: false,
        };
        let Some((prog, args)) = spec.command.split_first() else {
            return Err(fail("the command is empty".into()));
        };
        let err = match stderr {
            StderrTo::Inherit => Stdio::inherit(),
            StderrTo::File(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| fail(format!("cannot open {}: {e}", path.display())))?,
            ),
        };
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .current_dir(&spec.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err);
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt as _;
            cmd.process_group(0);
            #[cfg(target_os = "linux")]
            // SAFETY: prctl is async-signal-safe; nothing else runs between
            // fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("cannot start it in {}: {e}", spec.dir.display())))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let read = std::io::Read::take(&mut reader, MAX_ANSWER as u64 + 1)
                    .read_until(b'\n', &mut buf);
                let msg = match read {
                    Ok(0) => Err("its output ended".to_string()),
                    Ok(_) if buf.len() > MAX_ANSWER => {
                        Err(format!("an answer line is longer than {MAX_ANSWER} bytes"))
                    }
                    Ok(_) => match String::from_utf8(std::mem::take(&mut buf)) {
                        Ok(s) => Ok(s.trim_end_matches(['\n', '\r']).to_string()),
                        Err(_) => Err("an answer line is not UTF-8 text".to_string()),
                    },
                    Err(e) => Err(format!("cannot read its output: {e}")),
                };
                let end = msg.is_err();
                if tx.send(msg).is_err() || end {
                    return;
                }
            }
        });
        Ok(Program {
            spec: spec.clone(),
            child,
            stdin,
            answers,
            batches: 0,
            broken: None,
        })
    }

    /// The spec the program was started from.
    pub fn spec(&self) -> &ProgramSpec {
        &self.spec
    }

    /// Batches sent so far.
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// The answers to `lines`, one per line, in order, sent in batches of at
    /// most `batch`; each answer is checked by `parse` (its error names what
    /// was wrong with the line).
    pub fn ask<T>(
        &mut self,
        lines: &[String],
        mut parse: impl FnMut(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, ProgramError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        let mut out = Vec::with_capacity(lines.len());
        for chunk in lines.chunks(self.spec.batch.max(1)) {
            self.batches += 1;
            if let Err(message) = self.ask_batch(chunk, &mut parse, &mut out) {
                let e = ProgramError {
                    command: self.spec.display(),
                    message: format!(
                        "batch {} ({} candidates): {message}",
                        self.batches,
                        chunk.len()
                    ),
                    interrupted: message == STOPPED,
                };
                self.stop();
                self.broken = Some(e.clone());
                return Err(e);
            }
        }
        Ok(out)
    }

    fn ask_batch<T>(
        &mut self,
        chunk: &[String],
        parse: &mut impl FnMut(&str) -> Result<T, String>,
        out: &mut Vec<T>,
    ) -> Result<(), String> {
        let mut text = String::with_capacity(chunk.iter().map(|l| l.len() + 1).sum::<usize>() + 1);
        for l in chunk {
            text.push_str(l);
            text.push('\n');
        }
        text.push('\n');
        let deadline = Instant::now() + self.spec.timeout;
        // Written from a thread of its own: a program that stops reading
        // must not block the runner past the timeout.
        let mut stdin = self.stdin.take().ok_or("its input is closed")?;
        let (wtx, wrx) = mpsc::channel();
        std::thread::spawn(move || {
            let r = stdin
                .write_all(text.as_bytes())
                .and_then(|_| stdin.flush())
                .map(|_| stdin);
            let _ = wtx.send(r);
        });
        for (i, line) in chunk.iter().enumerate() {
            let answer = loop {
                // Wait in slices, so that Ctrl-C or SIGTERM stops the run
                // without waiting for the timeout.
                let left = deadline.saturating_duration_since(Instant::now());
                match self.answers.recv_timeout(left.min(POLL)) {
                    Ok(Ok(a)) => break a,
                    Ok(Err(why)) => return Err(self.ended(why, i)),
                    Err(RecvTimeoutError::Timeout) if left > POLL => {
                        if crate::interrupt::requested() {
                            return Err(STOPPED.into());
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        return Err(format!(
                            "no answer within {} s (timeout_s) after {i} of {} lines",
                            self.spec.timeout.as_secs_f64(),
                            chunk.len()
                        ))
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(self.ended("its output ended".into(), i))
                    }
                }
            };
            let value = parse(answer.trim()).map_err(|why| {
                format!(
                    "answer line {} (for {:?}) is {:?}: {why}",
                    i + 1,
                    crate::check::excerpt(line),
                    crate::check::excerpt(&answer)
                )
            })?;
            out.push(value);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match wrx.recv_timeout(left.max(Duration::from_millis(100))) {
            Ok(Ok(stdin)) => self.stdin = Some(stdin),
            Ok(Err(e)) => return Err(format!("cannot write to its input: {e}")),
            Err(_) => return Err("it answered but did not read the whole batch".into()),
        }
        Ok(())
    }

    /// The message for output that ended after `i` answers: with the exit
    /// status when the program has exited.
    fn ended(&mut self, why: String, i: usize) -> String {
        let status = (0..20).find_map(|_| match self.child.try_wait() {
            Ok(Some(s)) => Some(s),
            _ => {
                std::thread::sleep(Duration::from_millis(10));
                None
            }
        });
        let status = match status {
            Some(s) => format!("; it exited with {s}"),
            None => String::new(),
        };
        format!("{why} after {i} answers{status}")
    }

    /// End the program: close its input, SIGTERM, and SIGKILL after [`GRACE`].
    pub fn stop(&mut self) {
        self.stdin = None;
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        #[cfg(unix)]
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let until = Instant::now() + GRACE;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Checks of a program's settings in the table `table` (`env.reward`,
/// `env.log_density`): a program named, at least one candidate a batch, a
/// timeout in (0, 1 day].
pub fn check_settings(
    table: &str,
    command: &[String],
    batch: Option<usize>,
    timeout_s: Option<f64>,
) -> Result<(), crate::check::Invalid> {
    use crate::check::Invalid;
    if command.first().is_none_or(|c| c.is_empty()) {
        return Err(Invalid::new(
            format!("{table}.command"),
            "must name a program, e.g. [\"python3\", \"oracle.py\"]",
        ));
    }
    if batch == Some(0) {
        return Err(Invalid::new(format!("{table}.batch"), "must be at least 1"));
    }
    match timeout_s {
        Some(t) if !(t.is_finite() && t > 0.0 && t <= 86_400.0) => Err(Invalid::new(
            format!("{table}.timeout_s"),
            format!("is {t}; must be in (0, 86400]"),
        )),
        _ => Ok(()),
    }
}

/// A finite number, or why not.
pub fn parse_finite(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| "not a number (one number a line)".to_string())?;
    if !v.is_finite() {
        return Err("not a finite number".into());
    }
    Ok(v)
}

/// The absolute directory a declared task's paths start from: `dir` (the
/// config's `dir` key) against `file_dir` (the experiment file's
/// directory), or `file_dir` itself.
pub fn base_dir(file_dir: &Path, dir: Option<&Path>) -> PathBuf {
    let file_dir = match file_dir.as_os_str().is_empty() {
        true => Path::new("."),
        false => file_dir,
    };
    let file_dir = std::path::absolute(file_dir).unwrap_or_else(|_| file_dir.to_path_buf());
    match dir {
        Some(d) => resolve(&file_dir, d),
        None => file_dir,
    }
}

/// `path` resolved against `dir` when relative.
pub fn resolve(dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(script: &str, timeout_ms: u64) -> ProgramSpec {
        ProgramSpec {
            command: vec!["sh".into(), "-c".into(), script.into()],
            batch: 2,
            timeout: Duration::from_millis(timeout_ms),
            dir: std::env::temp_dir(),
        }
    }

    /// A program answering each line with its length, batch by batch.
    const LENGTHS: &str =
        "while IFS= read -r l; do if [ -z \"$l\" ]; then continue; fi; echo ${#l}; done";

    #[test]
    fn answers_in_batches() {
        let mut p = Program::start(&spec(LENGTHS, 5000), &StderrTo::Inherit).unwrap();
        let lines: Vec<String> = ["a", "bbb", "cc", "dddd", "e"].map(String::from).into();
        let got = p.ask(&lines, parse_finite).unwrap();
        assert_eq!(got, vec![1.0, 3.0, 2.0, 4.0, 1.0]);
        assert_eq!(p.batches(), 3);
    }

    #[test]
    fn faults_name_the_batch_and_line() {
        let lines: Vec<String> = ["a", "b", "c"].map(String::from).into();
        // Crash in the second batch.
        let crash = "read a; read b; read e; echo 1; echo 2; exit 3";
        let e = Program::start(&spec(crash, 5000), &StderrTo::Inherit)
            .unwrap()
            .ask(&lines, parse_finite)
            .unwrap_err();
        assert!(e.message.contains("batch 2"), "{e}");
        assert!(e.message.contains("exit status: 3"), "{e}");
        // A short answer: the output ends.
        let short = "read a; echo 1; exit 0";
        let e = Program::start(&spec(short, 5000), &StderrTo::Inherit)
            .unwrap()
            .ask(&lines, parse_finite)
            .unwrap_err();
        assert!(e.message.contains("after 1 answers"), "{e}");
        // NaN and garbage.
        for (bad, why) in [("nan", "not a finite number"), ("x1", "not a number")] {
            let s = format!("read a; read b; read e; echo 1; echo {bad}; sleep 5");
            let e = Program::start(&spec(&s, 5000), &StderrTo::Inherit)
                .unwrap()
                .ask(&lines, parse_finite)
                .unwrap_err();
            assert!(e.message.contains("answer line 2"), "{e}");
            assert!(e.message.contains(why), "{e}");
            assert!(e.to_string().starts_with("reward program `sh -c"), "{e}");
        }
    }

    #[test]
    fn a_timeout_kills_a_program_that_ignores_sigterm() {
        let stubborn = "trap '' TERM; read a; sleep 30";
        let mut p = Program::start(&spec(stubborn, 200), &StderrTo::Inherit).unwrap();
        let pid = p.child.id();
        let e = p.ask(&["a".to_string()], parse_finite).unwrap_err();
        assert!(e.message.contains("no answer within 0.2 s"), "{e}");
        // Timeout, then SIGTERM ignored for the grace period, then SIGKILL:
        // the program has exited when `ask` returns.
        assert!(
            p.child.try_wait().unwrap().is_some(),
            "pid {pid} still runs"
        );
        // A broken program is not asked again.
        let again = p.ask(&["a".to_string()], parse_finite).unwrap_err();
        assert_eq!(again, e);
        assert!(!e.interrupted);
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        let s = ProgramSpec {
            command: vec!["./no-such-oracle".into()],
            ..spec("", 100)
        };
        let e = Program::start(&s, &StderrTo::Inherit).err().unwrap();
        assert!(e.to_string().contains("cannot start it"), "{e}");
    }
}
