//! One writer per run directory: a run holds `<run dir>/.lock` (created
//! exclusively, holding `pid host`) while it executes, so two `runner`
//! processes given the same `--out` never write one run at once; the second
//! is refused with the holder's pid and host. A lock left by a process that
//! no longer exists on this host (killed, crashed) is taken over; one from
//! another host cannot be checked and must be removed by hand (the message
//! says so).

use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the lock file in a run directory.
pub const LOCK_FILE: &str = ".lock";

/// Why a lock could not be taken.
#[derive(Debug, Clone, PartialEq)]
pub enum LockError {
    /// Another process holds it: its pid and host.
    Held(String),
    /// The directory or the lock file could not be created.
    Io(String),
}

/// A held lock; released (the file removed) when dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Whether the holder named by a lock file's text is certainly gone.
fn stale(text: &str) -> bool {
    let mut it = text.split_whitespace();
    let (Some(pid), Some(h)) = (it.next().and_then(|p| p.parse::<u32>().ok()), it.next()) else {
        // Unreadable content: a lock being written this very moment, or garbage.
        return false;
    };
    h == host() && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// The holder named by a lock file's text, e.g. `pid 12 on node3`.
fn describe(text: &str) -> String {
    match text.split_whitespace().collect::<Vec<_>>()[..] {
        [pid, host, ..] => format!("pid {pid} on {host}"),
        _ => "unknown process".into(),
    }
}

/// Who holds the lock of run directory `dir`, if anyone might: `None` when
/// there is no lock or its holder is certainly gone (a dead process on this
/// host). Only a look: the lock is not taken.
pub fn holder(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(LOCK_FILE)).ok()?;
    (!stale(&text)).then(|| describe(&text))
}

impl RunLock {
    /// Take the lock of run directory `dir` (created if needed).
    pub fn acquire(dir: &Path) -> Result<RunLock, LockError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| LockError::Io(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(LOCK_FILE);
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = writeln!(f, "{} {}", std::process::id(), host());
                    return Ok(RunLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    if stale(&text) {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    return Err(LockError::Held(describe(&text)));
                }
                Err(e) => {
                    return Err(LockError::Io(format!(
                        "cannot create {}: {e}",
                        path.display()
                    )))
                }
            }
        }
        Err(LockError::Held("a lock that keeps reappearing".into()))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second lock of the same directory is refused naming the holder; a
    /// lock of a dead process on this host is taken over; dropping releases.
    #[test]
    fn one_writer_per_run() {
        let dir = tempfile::tempdir().unwrap();
        let a = RunLock::acquire(dir.path()).unwrap();
        let Err(LockError::Held(held)) = RunLock::acquire(dir.path()) else {
            panic!("a second lock was taken")
        };
        assert!(
            held.contains(&format!("pid {}", std::process::id())),
            "{held}"
        );
        drop(a);
        assert!(!dir.path().join(LOCK_FILE).exists());
        // pid 0 is never a user process: /proc/0 does not exist.
        std::fs::write(dir.path().join(LOCK_FILE), format!("0 {}\n", host())).unwrap();
        assert_eq!(holder(dir.path()), None);
        let b = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(
            holder(dir.path()),
            Some(format!("pid {} on {}", std::process::id(), host()))
        );
        drop(b);
        assert_eq!(holder(dir.path()), None);
        // Another host's lock cannot be checked: refused.
        std::fs::write(dir.path().join(LOCK_FILE), "1 elsewhere\n").unwrap();
        assert!(matches!(
            RunLock::acquire(dir.path()),
            Err(LockError::Held(h)) if h.contains("elsewhere")
        ));
    }
}
