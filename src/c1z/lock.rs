//! The output lock: one run at a time per sync file.
//!
//! A run holds an exclusive advisory lock (`flock`) on `.<file>.lock` beside the output for its whole life. A
//! second run on the same file fails at once with a clear message, or waits when asked to. The lock file itself
//! is left in place, except by the demo (its output is throwaway); the lock dies with the process, even on SIGKILL.
//! A lock is only taken on the file the path still names, so a run that waited on a lock file the demo removed
//! locks a fresh one instead of sharing a lock with a third run.
//!
//! Holding the lock also proves that no other run is writing, so work and temporary files that a killed run left
//! behind for this output (`.<file>.work-*`, `.<file>.tmp-*`) are removed here.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// Failure to take the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another baton-torq run is writing {path} (lock {lock} is held); wait for it to finish, pass --wait-for-lock, \
         or choose another --file"
    )]
    Busy { path: PathBuf, lock: PathBuf },
    /// The text depends on the cause: a folder this user may not write (typical of a container's bind mount) says
    /// how to fix it, since the raw "Permission denied" does not.
    #[error("{}", io_message(lock, source))]
    Io { lock: PathBuf, source: std::io::Error },
    #[error(
        "the lock file {lock} is a symbolic link, which is never followed (it could make this run write elsewhere); \
         remove it and check who can write to that directory"
    )]
    Symlink { lock: PathBuf },
    #[error(
        "the lock file {lock} is {kind}, not a regular file (it could hold this run forever); remove it and check \
         who can write to that directory"
    )]
    NotRegular { lock: PathBuf, kind: &'static str },
}

fn io_message(lock: &Path, source: &std::io::Error) -> String {
    let dir = match lock.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.display().to_string(),
        _ => std::env::current_dir().map_or_else(|_| "the current directory".into(), |d| d.display().to_string()),
    };
    match source.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot create {}: {source}; this user may not write in the output folder {dir} (or an earlier run as \
             another user owns that file): in a container, run it with --user \"$(id -u):$(id -g)\"; or make the \
             folder writable for this user",
            lock.display()
        ),
        std::io::ErrorKind::ReadOnlyFilesystem => format!(
            "cannot create {}: {source}; the output folder {dir} is read-only: mount it read-write (no :ro) or choose \
             another --file",
            lock.display()
        ),
        _ => format!("cannot lock {}: {source}; check that the output directory is writable", lock.display()),
    }
}

/// An exclusive lock on an output file; released on drop.
#[derive(Debug)]
pub struct OutputLock {
    file: File,
    /// The lock file to remove on release ([`OutputLock::remove_when_released`]).
    remove: Option<PathBuf>,
}

/// `DIR/.NAME.lock` for `DIR/NAME`.
pub(crate) fn lock_path(target: &Path) -> PathBuf {
    sidecar(target, "lock")
}

fn sidecar(target: &Path, suffix: &str) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "sync.c1z".into());
    target.with_file_name(format!(".{name}.{suffix}"))
}

impl OutputLock {
    /// Takes the lock for `target`; with `wait`, blocks until the other run is done.
    pub fn acquire(target: &Path, wait: bool) -> Result<OutputLock, LockError> {
        let lock = lock_path(target);
        let io = |source| LockError::Io { lock: lock.clone(), source };
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
        let file = loop {
            // O_NOFOLLOW: a symlink planted as the lock file must not make us create or truncate its target. Opened
            // without blocking: a FIFO planted there would otherwise hold the run before it printed anything.
            let opened = crate::regular_file::open_regular(&lock, &mut options, rustix::fs::OFlags::NOFOLLOW);
            let file = opened.map_err(|e| match e {
                crate::regular_file::OpenError::NotRegular(kind) => LockError::NotRegular { lock: lock.clone(), kind },
                crate::regular_file::OpenError::Io(e)
                    if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) =>
                {
                    LockError::Symlink { lock: lock.clone() }
                }
                crate::regular_file::OpenError::Io(e) => io(e),
            })?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) if wait => {
                    tracing::info!(lock = %lock.display(), "another run holds the lock; waiting for it");
                    file.lock().map_err(io)?;
                }
                Err(TryLockError::WouldBlock) => return Err(LockError::Busy { path: target.to_path_buf(), lock }),
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
            if still_named(&file, &lock) {
                break file;
            }
            // The holder removed the file while we waited: lock the one the path names now.
        };
        remove_stale_files(target);
        Ok(OutputLock { file, remove: None })
    }

    /// Removes the lock file when the lock is released, for an output nobody keeps (the demo's). Removed while
    /// still locked; a run waiting on it then sees that the path no longer names its file and starts over.
    pub(crate) fn remove_when_released(mut self, target: &Path) -> OutputLock {
        self.remove = Some(lock_path(target));
        self
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        if let Some(path) = self.remove.take() {
            if still_named(&self.file, &path) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Whether `path` still names the open `file` (same device and inode).
fn still_named(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Removes work and temporary files an earlier, killed run left for `target`. Best effort.
fn remove_stale_files(target: &Path) {
    let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else { return };
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefixes = [super::work_file_prefix(&name), super::tmp_file_prefix(&name), super::prev_file_prefix(&name)];
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| file_name.starts_with(p.as_str())) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(file = %entry.path().display(), "removed a work file left by an interrupted run")
                }
                Err(e) => tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove a stale work file"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_busy_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sync.c1z");
        let first = OutputLock::acquire(&target, false).unwrap();
        assert!(matches!(OutputLock::acquire(&target, false), Err(LockError::Busy { .. })));
        drop(first);
        assert!(OutputLock::acquire(&target, false).is_ok());
    }

    #[test]
    fn a_removed_lock_file_is_not_shared_with_a_waiting_run() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("demo.c1z");
        let first = OutputLock::acquire(&target, false).unwrap().remove_when_released(&target);
        let waiter = {
            let target = target.clone();
            std::thread::spawn(move || OutputLock::acquire(&target, true).unwrap())
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(first);
        let second = waiter.join().unwrap();
        // The waiter holds the file the path names (a fresh one), so a third run is refused, not let in.
        assert!(lock_path(&target).exists());
        assert!(matches!(OutputLock::acquire(&target, false), Err(LockError::Busy { .. })));
        drop(second);
        assert!(lock_path(&target).exists(), "an ordinary lock file stays");
    }

    #[test]
    fn a_symlink_planted_as_the_lock_file_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sync.c1z");
        let elsewhere = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, lock_path(&target)).unwrap();
        let e = OutputLock::acquire(&target, false).unwrap_err();
        assert!(matches!(e, LockError::Symlink { .. }), "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(!elsewhere.exists(), "the symlink's target was created");
    }

    #[test]
    fn stale_work_files_of_this_target_only_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sync.c1z");
        for name in [".sync.c1z.work-abc", ".sync.c1z.work-abc-journal", ".sync.c1z.tmp-x", ".other.c1z.work-1", "keep"]
        {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let _lock = OutputLock::acquire(&target, false).unwrap();
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        left.sort();
        assert_eq!(left, vec![".other.c1z.work-1", ".sync.c1z.lock", "keep"]);
    }

    #[test]
    fn a_folder_this_user_cannot_write_names_both_fixes_on_one_line() {
        let lock = Path::new("/out/.sync.c1z.lock");
        let denied = LockError::Io { lock: lock.into(), source: std::io::ErrorKind::PermissionDenied.into() };
        let text = denied.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("/out/.sync.c1z.lock") && text.contains("output folder /out"), "{text}");
        assert!(text.contains(r#"--user "$(id -u):$(id -g)""#) && text.contains("make the folder writable"), "{text}");

        let read_only = LockError::Io { lock: lock.into(), source: std::io::ErrorKind::ReadOnlyFilesystem.into() };
        assert!(read_only.to_string().contains("read-only: mount it read-write"), "{read_only}");
        // A relative --file names the folder it resolves to, not an empty string.
        let relative =
            LockError::Io { lock: ".sync.c1z.lock".into(), source: std::io::ErrorKind::PermissionDenied.into() };
        let cwd = std::env::current_dir().unwrap();
        assert!(relative.to_string().contains(&format!("output folder {} (", cwd.display())), "{relative}");
    }
}
