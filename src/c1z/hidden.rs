//! [`OutputDir`] and [`HiddenFile`]: the hidden files a sync keeps next to its output (the work database, the
//! decompressed previous file, the compressed file before its rename) and their removal.
//!
//! **Owns:** creating each file exclusively with mode 0600 under a random name, and removing it (and SQLite's
//! side files of it) through a handle on the folder, opened once when the sync starts. A folder that is moved or
//! renamed during a run keeps its handle, so a failed run leaves nothing behind wherever the folder went (removing
//! by path would miss it there).
//!
//! **Must not:** follow the output folder's path again after it was opened, except to create a file in it or to
//! rename the finished file over the target (both fail cleanly when the folder is gone).

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, Mode, OFlags};

use super::C1zError;

/// SQLite's files next to a database (rollback journal, WAL, shared memory).
const SIDE_FILE_SUFFIXES: [&str; 3] = ["-journal", "-wal", "-shm"];

/// The output's folder: its path and a handle that stays valid when the folder is moved.
#[derive(Clone)]
pub(crate) struct OutputDir {
    path: PathBuf,
    handle: Arc<OwnedFd>,
}

impl OutputDir {
    /// Opens `path` (a folder; opening one never blocks).
    pub(crate) fn open(path: &Path) -> Result<OutputDir, C1zError> {
        let handle = rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| C1zError::io("open the folder", path, e.into()))?;
        Ok(OutputDir { path: path.to_path_buf(), handle: Arc::new(handle) })
    }

    /// A new private (0600) file `<prefix>XXXXXX` in the folder, created exclusively; removed when the returned
    /// guard is dropped. `op` names the step for an error ("create a work file in").
    pub(crate) fn hidden_file(&self, prefix: &str, op: &'static str) -> Result<(File, HiddenFile), C1zError> {
        let (file, path) = tempfile::Builder::new()
            .prefix(prefix)
            .rand_bytes(6)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .tempfile_in(&self.path)
            .map_err(|e| C1zError::io(op, &self.path, e))?
            .keep()
            .map_err(|e| C1zError::io(op, &self.path, e.error))?;
        let name = path.file_name().map(OsString::from).unwrap_or_default();
        Ok((file, HiddenFile { dir: self.clone(), name, path, armed: true }))
    }

    /// `e`, or [`C1zError::FolderMoved`] when the folder is no longer at its path (moved, renamed or removed):
    /// what failed then (a file not found, a "corrupt" previous file) is only a consequence.
    pub(crate) fn explain(&self, e: C1zError) -> C1zError {
        if matches!(e, C1zError::Interrupted) || !self.moved() {
            return e;
        }
        C1zError::FolderMoved { path: self.path.clone() }
    }

    /// Whether the path no longer names the folder that was opened.
    fn moved(&self) -> bool {
        let Ok(opened) = rustix::fs::fstat(&*self.handle) else { return false };
        match rustix::fs::stat(&self.path) {
            Ok(now) => (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino),
            Err(_) => true,
        }
    }

    /// Flushes the folder's entries (after a rename); some file systems refuse, which is not fatal.
    pub(crate) fn sync(&self) {
        let _ = rustix::fs::fsync(&*self.handle);
    }

    fn remove(&self, name: &OsString) {
        let _ = rustix::fs::unlinkat(&*self.handle, name.as_os_str(), AtFlags::empty());
    }
}

/// A hidden file in an [`OutputDir`], removed (through the folder's handle) when dropped unless persisted.
pub(crate) struct HiddenFile {
    dir: OutputDir,
    name: OsString,
    /// The path it was created under, for SQLite and messages.
    path: PathBuf,
    armed: bool,
}

impl HiddenFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Removes SQLite's side files of this file, if any.
    pub(crate) fn remove_side_files(&self) {
        for suffix in SIDE_FILE_SUFFIXES {
            let mut name = self.name.clone();
            name.push(suffix);
            self.dir.remove(&name);
        }
    }

    /// Renames the file over `target` (by path: the folder must still be where it was) and keeps it.
    pub(crate) fn persist(mut self, target: &Path) -> Result<(), C1zError> {
        std::fs::rename(&self.path, target).map_err(|e| C1zError::io("replace", target, e))?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for HiddenFile {
    fn drop(&mut self) {
        if self.armed {
            self.remove_side_files();
            self.dir.remove(&self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_hidden_file_is_removed_from_its_folder_after_the_folder_was_moved() {
        let root = tempfile::tempdir().unwrap();
        let before = root.path().join("out");
        std::fs::create_dir(&before).unwrap();
        let dir = OutputDir::open(&before).unwrap();
        let (_file, work) = dir.hidden_file(".s.c1z.work-", "create a work file in").unwrap();
        std::fs::write(format!("{}-journal", work.path().display()), b"j").unwrap();
        assert_eq!(entries(&before).len(), 2);
        let after = root.path().join("moved");
        std::fs::rename(&before, &after).unwrap();
        drop(work);
        assert!(entries(&after).is_empty(), "{:?}", entries(&after));
    }

    #[test]
    fn a_failure_after_the_folder_moved_is_reported_as_the_move() {
        let root = tempfile::tempdir().unwrap();
        let before = root.path().join("out");
        std::fs::create_dir(&before).unwrap();
        let dir = OutputDir::open(&before).unwrap();
        let failure = || C1zError::Corrupt { path: before.join("s.c1z"), reason: "cannot open".into() };
        assert!(matches!(dir.explain(failure()), C1zError::Corrupt { .. }), "in place: the failure itself");
        std::fs::rename(&before, root.path().join("moved")).unwrap();
        std::fs::create_dir(&before).unwrap();
        let e = dir.explain(failure());
        assert!(matches!(&e, C1zError::FolderMoved { path } if *path == before), "{e}");
        std::fs::remove_dir(&before).unwrap();
        assert!(matches!(dir.explain(failure()), C1zError::FolderMoved { .. }), "gone: the move too");
    }

    #[test]
    fn a_persisted_file_stays_under_the_target_name() {
        let root = tempfile::tempdir().unwrap();
        let dir = OutputDir::open(root.path()).unwrap();
        let (_file, tmp) = dir.hidden_file(".s.c1z.tmp-", "create a temp file in").unwrap();
        tmp.persist(&root.path().join("s.c1z")).unwrap();
        assert_eq!(entries(root.path()), ["s.c1z"]);
    }
}
