//! Printing to standard output and standard error without panicking.
//!
//! `println!` panics when the write fails: `runner schema > /dev/full`
//! (ENOSPC) or `runner validate ... | head -1` (EPIPE once `head` has
//! exited; Rust ignores SIGPIPE, so the write returns the error). Every
//! message of the runner goes through [`outln`] and [`errln`] (or
//! [`write`]) instead. A failed
//! write is remembered, never fatal where it happens: a training run whose
//! terminal went away keeps running and writes its results. At the end,
//! `main` asks [`exit_code`]:
//! - a closed pipe (EPIPE) on either stream exits 141, what a shell reports
//!   for a command ended by SIGPIPE, with no message (as `cat | head` does);
//! - any other failure (a full disk) exits 1 with a message naming the
//!   stream and the error, on standard error if that still works.

use std::io::Write;
use std::sync::Mutex;

/// The standard streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Out,
    /// Standard error.
    Err,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Out => "standard output",
            Stream::Err => "standard error",
        }
    }
}

/// The first failed write of the process: the stream and its error.
static FAILURE: Mutex<Option<(Stream, std::io::ErrorKind, String)>> = Mutex::new(None);

/// Remember a failed write (only the first counts).
fn record(stream: Stream, e: &std::io::Error) {
    if let Ok(mut f) = FAILURE.lock() {
        if f.is_none() {
            *f = Some((stream, e.kind(), e.to_string()));
        }
    }
}

/// Write `text` to `stream` and flush it (a message is complete when this
/// returns); a failure is recorded for [`exit_code`], not raised.
pub fn write(stream: Stream, text: &str) {
    let result = match stream {
        Stream::Out => {
            let mut s = std::io::stdout().lock();
            s.write_all(text.as_bytes()).and_then(|()| s.flush())
        }
        Stream::Err => {
            let mut s = std::io::stderr().lock();
            s.write_all(text.as_bytes()).and_then(|()| s.flush())
        }
    };
    if let Err(e) = result {
        record(stream, &e);
    }
}

/// Write a formatted message and a line break to standard output
/// (`println!` that never panics: `outln(format_args!(...))`).
pub fn outln(args: std::fmt::Arguments) {
    write(Stream::Out, &format!("{args}\n"));
}

/// Write a formatted message and a line break to standard error
/// (`eprintln!` that never panics).
pub fn errln(args: std::fmt::Arguments) {
    write(Stream::Err, &format!("{args}\n"));
}

/// What a failed write makes of the exit status `code` the command would
/// otherwise have: `Some(141)` after a closed pipe, `Some(1)` after another
/// failure (its message written to standard error if possible), `None`
/// when every write succeeded.
pub fn exit_code() -> Option<u8> {
    // Whatever is still buffered in standard output counts too.
    if let Err(e) = std::io::stdout().lock().flush() {
        record(Stream::Out, &e);
    }
    let failure = FAILURE.lock().ok()?.clone();
    let (stream, kind, message) = failure?;
    if kind == std::io::ErrorKind::BrokenPipe {
        return Some(141);
    }
    if stream == Stream::Out {
        // Standard error may still work; nothing else is left to try.
        let _ = writeln!(
            std::io::stderr(),
            "error: cannot write to {}: {message}",
            stream.name()
        );
    }
    Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first failure is the one reported; a closed pipe is 141.
    #[test]
    fn failures_are_recorded_once() {
        record(
            Stream::Out,
            &std::io::Error::from(std::io::ErrorKind::BrokenPipe),
        );
        record(Stream::Err, &std::io::Error::other("disk full"));
        assert_eq!(exit_code(), Some(141));
        assert_eq!(Stream::Err.name(), "standard error");
    }
}
