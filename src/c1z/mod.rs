//! The c1z sync file: a v1 container (`C1ZF\0` + one zstd frame) around a SQLite database in the Baton
//! superset schema; `docs/c1z-format.md` describes the file for readers of this module.
//!
//! **Owns:** the container format ([`container`]), the table/index DDL ([`schema`]), the time text format
//! ([`time`]), and [`C1zWriter`], which turns `c1.connector.v2` messages into rows of one `full` sync run and
//! writes the file atomically.
//!
//! **Must not:** talk to Torq, build Baton messages from Torq objects (that is `connector`), decide what to
//! sync, log object contents, or ever overwrite a file that is not a v1 c1z. Any error, or dropping the writer
//! before [`C1zWriter::finish`], leaves the target byte-for-byte unchanged.
//!
//! **Files next to the target** (all hidden, mode 0600, in the target's directory so the final rename is
//! atomic): `.<name>.work-XXXXXX` is the SQLite work database while a sync is being written, and
//! `.<name>.tmp-XXXXXX` is the compressed output before it is renamed over `<name>`; `.<name>.prev-XXXXXX` is the
//! decompressed previous file while its last sync's rows are copied out (removed right after). All are removed on
//! every normal and error path; only a hard kill (SIGKILL, power loss) can leave one behind, and such a file
//! can be deleted by hand at any time when no sync is running. SQLite's own temp files (up to 50k staged grants -
//! about 25 MiB - and index sorting) live in the system temp directory
//! and are unlinked by SQLite as soon as created.

mod carry;
pub(crate) mod container;
mod dedupe;
pub(crate) mod gate;
mod hidden;
pub mod lock;
pub(crate) mod schema;
pub mod time;
pub(crate) mod writer;

use std::path::PathBuf;

/// Name prefix of the work database for the output file `name` (see the module documentation).
pub(crate) fn work_file_prefix(name: &str) -> String {
    format!(".{name}.work-")
}

/// Name prefix of the decompressed previous file while its rows are copied into the work database.
pub(crate) fn prev_file_prefix(name: &str) -> String {
    format!(".{name}.prev-")
}

/// Name prefix of the compressed output before its rename over `name`.
pub(crate) fn tmp_file_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

pub use container::{check_target, FileKind};
pub use gate::CommitGate;
pub use writer::{C1zWriter, DanglingGrant, FinishedFile, Put, SyncCounts, WriterOptions};

/// Everything that can go wrong while checking, carrying over or writing a c1z file.
///
/// Messages are one line: what is wrong and how to fix it. They contain paths and object ids, never secrets.
#[derive(Debug, thiserror::Error)]
pub enum C1zError {
    /// The output path names a directory.
    #[error("output path {path} is a directory; pass a file path such as {path}/sync.c1z")]
    TargetIsDirectory { path: PathBuf },

    /// The directory that should contain the output file does not exist.
    #[error("directory {path} for the output file does not exist; create it or choose another output path")]
    ParentMissing { path: PathBuf },

    /// The output path exists, is not empty, and is not a c1z file: refusing to overwrite it.
    #[error("{path} exists and is not a c1z file; refusing to overwrite it, choose another output path or remove it")]
    NotC1z { path: PathBuf },

    /// The output path is a c1z in the v3 (Pebble) format, which this writer cannot extend.
    #[error(
        "{path} is a v3 (Pebble) c1z, which this connector cannot extend; choose another output path or remove it"
    )]
    UnsupportedFormat { path: PathBuf },

    /// The output path starts with the c1z magic but cannot be decompressed or opened as SQLite.
    #[error("{path} looks like a c1z but is corrupt ({reason}); it was left untouched, move it away or choose another output path")]
    Corrupt { path: PathBuf, reason: String },

    /// The previous sync file could not be read (a disk or mount failure, not its content).
    #[error("cannot read the previous sync file {path}: {source}; it was left untouched; check the disk or mount and run again")]
    ReadPrevious {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The output's folder was moved, renamed or removed while the sync ran (found after something failed).
    #[error("the folder {path} was moved, renamed or removed while the sync ran; nothing was written there and the work files were removed; run again")]
    FolderMoved { path: PathBuf },

    /// A file-system operation failed.
    #[error("cannot {op} {path}: {source}; check that the directory exists, is writable and has free space")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// SQLite reported an error on the work database: what was being done, SQLite's message, and a hint that
    /// fits SQLite's error code (free disk space only for a full disk or an I/O error).
    #[error("c1z work database failed to {op}: {source}; {}", sqlite_hint(source))]
    Sqlite {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },

    /// The rows of the new sync in the finished database differ from what was written: the file was not put in
    /// place, as its summary would be wrong.
    #[error("the sync file would hold {in_file} {what} but {counted} were written; the file was left as it was, please report this as a bug")]
    CountMismatch { what: String, counted: u64, in_file: u64 },

    /// An object handed to the writer lacks a field the c1z needs (a connector bug).
    #[error("cannot store {what}: {reason}; this is a connector bug, please report it")]
    InvalidObject { what: &'static str, reason: String },

    /// The writer options are out of range.
    #[error("invalid c1z writer option: {0}")]
    InvalidOption(String),

    /// A stop request won the writer's [`CommitGate`]: the new file was not put in place.
    #[error("interrupted; the sync file was left as it was")]
    Interrupted,
}

/// What to do about a SQLite error, from its code.
fn sqlite_hint(e: &rusqlite::Error) -> &'static str {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => "the disk is full: free disk space in the output directory and run again",
        Some(ErrorCode::SystemIoFailure) => {
            "a disk I/O error: check the disk and free disk space in the output directory and run again"
        }
        Some(ErrorCode::OutOfMemory) => "the machine ran out of memory: free memory and run again",
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => {
            "check that the output directory is writable and run again"
        }
        _ => "the file was left as it was; please report this as a bug",
    }
}

impl C1zError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        C1zError::Io { op, path: path.into(), source }
    }

    pub(crate) fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |source| C1zError::Sqlite { op, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's own errors on a real database: a full disk asks for disk space, a refused statement does not.
    #[test]
    fn a_sqlite_error_names_the_step_and_sqlite_s_message_and_blames_the_disk_only_when_full() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x TEXT NOT NULL); PRAGMA max_page_count = 3;").unwrap();
        let full = (0..1000)
            .find_map(|_| conn.execute("INSERT INTO t VALUES (?1)", [&"x".repeat(4000)]).err())
            .expect("the database fills up");
        let text = C1zError::sql("insert a grant")(full).to_string();
        assert!(text.contains("failed to insert a grant: database or disk is full"), "{text}");
        assert!(text.contains("free disk space"), "{text}");
        let refused = conn.execute("INSERT INTO t VALUES (NULL)", []).unwrap_err();
        let text = C1zError::sql("insert a grant")(refused).to_string();
        assert!(text.contains("failed to insert a grant: NOT NULL constraint failed: t.x"), "{text}");
        assert!(!text.contains("disk"), "{text}");
    }
}
