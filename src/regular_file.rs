//! Opening a local file that must be a regular file (the output lock, the config file, a CA file) without ever
//! blocking: `open` on a FIFO waits for the other end and on some devices has effects, so the file is opened with
//! `O_NONBLOCK` (and `O_NOCTTY`), its type checked on the open descriptor, and only then is `O_NONBLOCK` cleared.
//! A planted FIFO is then one line saying what the path is, never a run that hangs with no output.
//!
//! This module opens; it does not decide what to say or which exit code follows (callers name the flag).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// What a path is when it is not a regular file, for messages ("a FIFO (named pipe)").
pub(crate) fn kind_name(file_type: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Why [`open_regular`] failed.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The path exists but is not a regular file; the text says what it is (see [`kind_name`]).
    NotRegular(&'static str),
    /// Any other failure to open (missing, permissions, a symbolic link refused by `O_NOFOLLOW`, ...).
    Io(io::Error),
}

/// Opens `path` with `options` and the open flags `extra` (e.g. `O_NOFOLLOW`; `OpenOptions` keeps only the last
/// custom flags, so they are passed here), plus `O_NONBLOCK | O_NOCTTY`, refusing anything but a regular file before
/// a single byte is read or written. The returned file is in blocking mode again.
pub(crate) fn open_regular(
    path: &Path,
    options: &mut OpenOptions,
    extra: rustix::fs::OFlags,
) -> Result<File, OpenError> {
    use rustix::fs::OFlags;
    use std::os::unix::fs::OpenOptionsExt as _;
    let flags = extra | OFlags::NONBLOCK | OFlags::NOCTTY;
    let file = options.custom_flags(flags.bits() as i32).open(path).map_err(|e| {
        // A FIFO opened for writing without a reader answers ENXIO under O_NONBLOCK: name it by its type.
        if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) {
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                return OpenError::NotRegular(kind_name(meta.file_type()));
            }
        }
        OpenError::Io(e)
    })?;
    let meta = file.metadata().map_err(OpenError::Io)?;
    if !meta.is_file() {
        return Err(OpenError::NotRegular(kind_name(meta.file_type())));
    }
    let flags = rustix::fs::fcntl_getfl(&file).map_err(|e| OpenError::Io(e.into()))?;
    rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK).map_err(|e| OpenError::Io(e.into()))?;
    Ok(file)
}

/// [`open_regular`] for reading, following symbolic links (a config or CA file may be a link to the real one).
pub(crate) fn open_for_reading(path: &Path) -> Result<File, OpenError> {
    open_regular(path, OpenOptions::new().read(true), rustix::fs::OFlags::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_at_once_for_reading_and_writing() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("planted");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        let read = open_regular(&fifo, OpenOptions::new().read(true), rustix::fs::OFlags::empty());
        assert!(matches!(read, Err(OpenError::NotRegular("a FIFO (named pipe)"))), "{read:?}");
        let write = open_regular(&fifo, OpenOptions::new().write(true).create(true), rustix::fs::OFlags::NOFOLLOW);
        assert!(matches!(write, Err(OpenError::NotRegular("a FIFO (named pipe)"))), "{write:?}");
        let dev = open_regular(Path::new("/dev/null"), OpenOptions::new().read(true), rustix::fs::OFlags::empty());
        assert!(matches!(dev, Err(OpenError::NotRegular("a character device"))), "{dev:?}");
    }

    #[test]
    fn a_regular_file_is_opened_in_blocking_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, "x").unwrap();
        let file = open_regular(&path, OpenOptions::new().read(true), rustix::fs::OFlags::empty()).unwrap();
        assert!(!rustix::fs::fcntl_getfl(&file).unwrap().contains(rustix::fs::OFlags::NONBLOCK));
    }
}
