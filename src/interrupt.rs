//! Ctrl-C and SIGTERM: the first one asks the runner to stop cleanly. The
//! training loop checks [`requested`] before every step, so a run ends after
//! the step (and metrics row) in progress, is left *incomplete* (no
//! `status.toml`: a resume reruns it), and a sweep starts no further run.
//! A second signal ends the process at once.

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

/// Install the handler for SIGINT and SIGTERM (once, at start-up).
pub fn install() {
    #[cfg(unix)]
    // SAFETY: the handler only touches an atomic flag and, the second time,
    // calls async-signal-safe functions.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}
