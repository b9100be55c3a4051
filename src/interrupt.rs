//! Ctrl-C and SIGTERM: while runs train (inside a [`Graceful`] section),
//! the first one asks the runner to stop cleanly. The training loop checks
//! [`requested`] before every step, so a run ends after the step (and
//! metrics row) in progress, is left *incomplete* (no `status.toml`: a
//! resume reruns it), and a sweep starts no further run. A second signal
//! ends the process at once.
//!
//! Everywhere else (validating or expanding a huge sweep, scoring a long
//! file, waiting to open a FIFO, drawing a report) nothing would check the
//! request, so the first signal ends the process at once with the signal's
//! default action: such work writes its files atomically, so nothing is
//! left half-written.
//!
//! SIGXFSZ (a write past the file-size limit, `ulimit -f`) is ignored: the
//! write then fails with EFBIG like any other I/O error, which the run
//! reports (naming the file) and records, instead of the process dying
//! without a word and leaving its lock and a half-written temporary file.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// How many [`Graceful`] sections are open.
static GRACEFUL: AtomicUsize = AtomicUsize::new(0);

/// While one is alive, a first Ctrl-C or SIGTERM only asks for a stop (the
/// code inside checks [`requested`]); outside every section it ends the
/// process at once.
#[must_use = "the section ends when the guard is dropped"]
pub struct Graceful(());

impl Graceful {
    /// Open a section (sections nest).
    pub fn enter() -> Self {
        GRACEFUL.fetch_add(1, Ordering::SeqCst);
        Graceful(())
    }
}

impl Drop for Graceful {
    fn drop(&mut self) {
        GRACEFUL.fetch_sub(1, Ordering::SeqCst);
    }
}

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
    let first = !REQUESTED.swap(true, Ordering::SeqCst);
    if !first || GRACEFUL.load(Ordering::SeqCst) == 0 {
        // The second signal, or nothing would check the first: the default
        // action (the process ends).
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
    // SAFETY: the handler only touches atomics and, when it ends the
    // process, calls async-signal-safe functions; SIG_IGN is no handler at all.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}
