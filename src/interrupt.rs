//! Ctrl-C and SIGTERM: the first one asks the runner to stop cleanly. The
//! training loop checks [`requested`] before every step, so a run ends after
//! the step (and metrics row) in progress, is left *incomplete* (no
//! `status.toml`: a resume reruns it), and a sweep starts no further run.
//! A second signal ends the process at once.
//!
//! SIGXFSZ (a write past the file-size limit, `ulimit -f`) is ignored: the
//! write then fails with EFBIG like any other I/O error, which the run
//! reports (naming the file) and records, instead of the process dying
//! without a word and leaving its lock and a half-written temporary file.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Ask for a stop (what the signal handler does; also for tests).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

#[cfg(unix)]
extern "C" fn on_signal(signal: libc::c_int) {
    if REQUESTED.swap(true, Ordering::SeqCst) {
        // The second signal: the default action (the process ends).
        // SAFETY: signal() and raise() are async-signal-safe.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
}

/// Install the handler for SIGINT and SIGTERM and ignore SIGXFSZ (once, at
/// start-up).
pub fn install() {
    #[cfg(unix)]
    // SAFETY: the handler only touches an atomic flag and, the second time,
    // calls async-signal-safe functions; SIG_IGN is no handler at all.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}
