//! The c1z v1 container: the 5-byte magic `C1ZF\0` followed by one zstd frame whose content is a SQLite
//! database file.
//!
//! **Owns:** format detection from the first bytes of a file, and streaming compression/decompression between
//! files (never the whole database in memory).
//!
//! **Must not:** touch SQLite, choose file names, or rename files over a target (that is the writer's job).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use super::C1zError;

/// Magic of the v1 container (SQLite payload), written by this crate.
pub(crate) const MAGIC_V1: &[u8; 5] = b"C1ZF\0";
/// Magic of the v3 container (Pebble payload); recognised so it is never overwritten, but not supported.
pub(crate) const MAGIC_V3: &[u8; 5] = b"C1Z3\0";

/// Largest zstd window we ever write: 2^25 = 32 MiB, the limit of the oldest (v0.1.9) Go reader.
pub(crate) const MAX_WINDOW_LOG: u32 = 25;

/// What a path holds, judged from its metadata and first five bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Nothing at the path.
    Absent,
    /// A zero-length file (Baton treats it as a new, empty sync file).
    Empty,
    /// A v1 c1z (SQLite inside zstd).
    V1,
    /// A v3 c1z (Pebble), not supported here.
    V3,
    /// A directory.
    Directory,
    /// Anything else.
    Other,
}

/// Classifies `path` without modifying it.
pub(crate) fn detect(path: &Path) -> Result<FileKind, C1zError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(FileKind::Absent),
        Err(e) => return Err(C1zError::io("inspect", path, e)),
    };
    if meta.is_dir() {
        return Ok(FileKind::Directory);
    }
    if !meta.is_file() {
        return Ok(FileKind::Other);
    }
    if meta.len() == 0 {
        return Ok(FileKind::Empty);
    }
    let mut head = [0u8; 5];
    // Opened without blocking and checked again on the open file: a FIFO swapped in since the `stat` above must
    // not hang the run.
    let mut file = match crate::regular_file::open_for_reading(path) {
        Ok(file) => file,
        Err(crate::regular_file::OpenError::NotRegular(_)) => return Ok(FileKind::Other),
        Err(crate::regular_file::OpenError::Io(e)) => return Err(C1zError::io("open", path, e)),
    };
    let mut filled = 0;
    while filled < head.len() {
        let n = file.read(&mut head[filled..]).map_err(|e| C1zError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    if filled < head.len() {
        return Ok(FileKind::Other);
    }
    Ok(if &head == MAGIC_V1 {
        FileKind::V1
    } else if &head == MAGIC_V3 {
        FileKind::V3
    } else {
        FileKind::Other
    })
}

/// The one check of what may be written over: the kind of `target` when it is absent, empty or a v1 c1z; an
/// error when it is a directory, a v3 c1z or any other file (which is never overwritten). Used up front by the
/// CLI and by the writer both when it starts and again right before it replaces the file.
pub fn check_target(target: &Path) -> Result<FileKind, C1zError> {
    match detect(target)? {
        kind @ (FileKind::Absent | FileKind::Empty | FileKind::V1) => Ok(kind),
        FileKind::Directory => Err(C1zError::TargetIsDirectory { path: target.to_path_buf() }),
        FileKind::V3 => Err(C1zError::UnsupportedFormat { path: target.to_path_buf() }),
        FileKind::Other => Err(C1zError::NotC1z { path: target.to_path_buf() }),
    }
}

/// Compression settings for [`compress_file`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct CompressSettings {
    /// zstd level, 1..=19, or [`AUTO_LEVEL`].
    pub level: i32,
}

/// "Pick the level from the database size" (see [`auto_level`]).
pub(crate) const AUTO_LEVEL: i32 = 0;

/// Databases up to this size get level 9 and the full 32 MiB window; larger ones level 1 with zstd's own window.
const SMALL_DB_BYTES: u64 = 64 << 20;

/// Read and write buffers of [`compress_file`]: zstd keeps its own window, so larger buffers only add to the
/// peak memory (which the compression sets for small databases).
const COMPRESS_IO_BYTES: usize = 256 << 10;

/// The zstd level for a database of `db_bytes`: level 9 for small databases (a much smaller file for a fraction
/// of a second), level 1 past 64 MiB, where higher levels cost time and memory for no smaller file
/// (docs/performance.md has the measurements).
pub(crate) fn auto_level(db_bytes: u64) -> i32 {
    if db_bytes <= SMALL_DB_BYTES {
        9
    } else {
        1
    }
}

/// The window for a database of `db_bytes` at `level`: the largest every reader accepts (32 MiB) for databases
/// up to 64 MiB, zstd's own choice (at most 8 MiB for levels 1..=19) above. A row's ids recur in its indexes
/// and in the grants, megabytes away, so a window covering the whole database finds those matches; past 64 MiB
/// the window covers only part of the file anyway and a large one costs memory for almost nothing.
fn window_log(db_bytes: u64, level: i32) -> Option<u32> {
    (db_bytes <= SMALL_DB_BYTES || zstd_window_log(level) > MAX_WINDOW_LOG).then_some(MAX_WINDOW_LOG)
}

/// zstd worker threads: the machine's cores, at most 4 (compression is the last step, nothing else runs).
fn compression_workers() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4) as u32)
}

/// Streams `src` (a SQLite file) into `dst` as `C1ZF\0` + one zstd frame with a content checksum, the content
/// size declared, no dictionary and a window of at most 32 MiB. Returns the number of bytes written to `dst`.
pub(crate) fn compress_file(
    src: &Path,
    dst: &mut File,
    dst_path: &Path,
    settings: CompressSettings,
) -> Result<u64, C1zError> {
    let input = File::open(src).map_err(|e| C1zError::io("open", src, e))?;
    let size = input.metadata().map_err(|e| C1zError::io("inspect", src, e))?.len();
    let write_err = |e| C1zError::io("write", dst_path, e);

    let mut out = CountingWriter { inner: BufWriter::with_capacity(COMPRESS_IO_BYTES, &mut *dst), count: 0 };
    out.write_all(MAGIC_V1).map_err(write_err)?;
    let level = if settings.level == AUTO_LEVEL { auto_level(size) } else { settings.level };
    let mut enc = zstd::stream::write::Encoder::new(&mut out, level).map_err(write_err)?;
    let window = window_log(size, level);
    if size > SMALL_DB_BYTES {
        // Several workers still write one frame; only the work is split. At level 1 with zstd's own window the
        // workers' contexts and buffers are small.
        enc.multithread(compression_workers()).map_err(write_err)?;
    }
    // Databases up to 64 MiB are compressed on one thread: multithreaded level 9 with the window covering the
    // database needs an input round buffer and a context per worker on top of the window, which made the
    // compression the process's memory peak; one thread needs the window (the database, as the source size is
    // pledged) plus one context, for the same file.
    enc.include_checksum(true).map_err(write_err)?;
    enc.include_contentsize(true).map_err(write_err)?;
    enc.set_pledged_src_size(Some(size)).map_err(write_err)?;
    enc.include_dictid(false).map_err(write_err)?;
    enc.long_distance_matching(false).map_err(write_err)?;
    if let Some(log) = window {
        enc.window_log(log).map_err(write_err)?;
    }
    let mut reader = BufReader::with_capacity(COMPRESS_IO_BYTES, input);
    let copied = io::copy(&mut reader, &mut enc).map_err(|e| C1zError::io("compress", src, e))?;
    if copied != size {
        return Err(C1zError::io("compress", src, io::Error::other("work database changed size while compressing")));
    }
    enc.finish().map_err(write_err)?;
    out.flush().map_err(write_err)?;
    Ok(out.count)
}

/// Window log zstd picks for a level on large inputs (levels 1..=19 never exceed 23).
fn zstd_window_log(level: i32) -> u32 {
    match level {
        ..=19 => 23,
        _ => 27,
    }
}

/// A genuine c1z never decompresses to more than this many times its compressed size (a tiny Go-written file:
/// about 20; docs/c1z-format.md has the measured ratios). Larger is a decompression bomb or padding.
pub(crate) const MAX_EXPANSION: u64 = 100;
/// ... except that any file may decompress to this much (small databases are mostly empty page space).
pub(crate) const MIN_DECOMPRESSED_BOUND: u64 = 16 << 20;

/// Most bytes a previous file of `compressed` bytes may decompress to (see [`MAX_EXPANSION`]).
pub(crate) fn decompressed_bound(compressed: u64) -> u64 {
    compressed.saturating_mul(MAX_EXPANSION).max(MIN_DECOMPRESSED_BOUND)
}

/// Streams a c1z file at `src` into `dst` as the raw SQLite bytes, stopping as soon as the content cannot be a
/// genuine c1z (see [`decompress_from`]). Errors are [`C1zError::Corrupt`] when the content is not a valid v1
/// c1z.
pub(crate) fn decompress_file(src: &Path, dst: &mut File, dst_path: &Path) -> Result<u64, C1zError> {
    let input = crate::regular_file::open_for_reading(src).map_err(|e| match e {
        crate::regular_file::OpenError::NotRegular(kind) => {
            C1zError::io("open", src, io::Error::other(format!("it is {kind}, not a regular file")))
        }
        crate::regular_file::OpenError::Io(e) => C1zError::io("open", src, e),
    })?;
    let compressed = input.metadata().map_err(|e| C1zError::io("inspect", src, e))?.len();
    decompress_from(input, compressed, src, dst, dst_path)
}

/// Length of the SQLite file header, which states the page size and (when valid) the page count.
const SQLITE_HEADER_BYTES: usize = 100;

/// The database size the SQLite header states (page size times the in-header page count), `None` when the
/// page count is not valid (written by SQLite before 3.7.0; the file size counts then). Err: not SQLite.
fn declared_db_bytes(h: &[u8; SQLITE_HEADER_BYTES]) -> Result<Option<u64>, String> {
    if &h[..16] != b"SQLite format 3\0" {
        return Err("it does not hold a SQLite database".into());
    }
    let be32 = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let page_size = match u16::from_be_bytes([h[16], h[17]]) {
        1 => 65_536,
        n if n >= 512 && n.is_power_of_two() => u64::from(n),
        n => return Err(format!("its SQLite header states an impossible page size {n}")),
    };
    let (change_counter, pages, valid_for) = (be32(24), be32(28), be32(92));
    Ok((pages != 0 && valid_for == change_counter).then(|| page_size * u64::from(pages)))
}

/// A reader that keeps the first error of the reader below. The zstd decoder hands read errors up as its own, so
/// without this a disk that fails to read the previous file would be reported as a corrupt file ("move it away").
struct WatchedReader<R> {
    inner: R,
    failed: Option<io::Error>,
}

impl<R: Read> Read for WatchedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                let shown = io::Error::new(e.kind(), e.to_string());
                self.failed.get_or_insert(e);
                Err(shown)
            }
            other => other,
        }
    }
}

/// [`decompress_file`] from an open reader of `src` (`compressed` bytes long). A failure to read `src` is
/// [`C1zError::ReadPrevious`]; content that is not a valid c1z is [`C1zError::Corrupt`]: no SQLite header, more
/// bytes than [`decompressed_bound`] allows, or more or fewer than the SQLite header states. Nothing past either
/// limit is written to `dst`.
fn decompress_from(
    input: impl Read,
    compressed: u64,
    src: &Path,
    dst: &mut File,
    dst_path: &Path,
) -> Result<u64, C1zError> {
    let corrupt = |reason: String| C1zError::Corrupt { path: src.to_path_buf(), reason };
    let read_failed = |source: io::Error| C1zError::ReadPrevious { path: src.to_path_buf(), source };
    let bound = decompressed_bound(compressed);
    let too_large = || {
        corrupt(format!(
            "it decompresses to more than {bound} bytes from {compressed}, over {MAX_EXPANSION} times its size, \
             which no genuine c1z does"
        ))
    };
    let mut reader = BufReader::with_capacity(1 << 20, WatchedReader { inner: input, failed: None });
    let mut head = [0u8; 5];
    reader.read_exact(&mut head).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => corrupt("shorter than the 5-byte header".into()),
        _ => read_failed(e),
    })?;
    if &head != MAGIC_V1 {
        return Err(corrupt("missing the C1ZF magic".into()));
    }
    let mut dec = zstd::stream::read::Decoder::with_buffer(reader).map_err(|e| corrupt(format!("zstd: {e}")))?;
    // Accept what the Go readers accept (window up to 128 MiB).
    dec.window_log_max(27).map_err(|e| corrupt(format!("zstd: {e}")))?;
    let mut out = BufWriter::with_capacity(1 << 20, &mut *dst);
    let mut buf = vec![0u8; 1 << 20];
    let mut header = [0u8; SQLITE_HEADER_BYTES];
    // The most bytes this file may hold: the bound, then also what its SQLite header states.
    let mut allowed = bound;
    let mut declared: Option<u64> = None;
    let mut total = 0u64;
    loop {
        let n = match dec.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(match dec.get_mut().get_mut().failed.take() {
                    Some(io_error) => read_failed(io_error),
                    None => corrupt(format!("zstd: {e}")),
                })
            }
        };
        let chunk = &buf[..n];
        let had = usize::try_from(total).unwrap_or(usize::MAX);
        if had < SQLITE_HEADER_BYTES {
            let take = (SQLITE_HEADER_BYTES - had).min(n);
            header[had..had + take].copy_from_slice(&chunk[..take]);
            if had + take == SQLITE_HEADER_BYTES {
                declared = declared_db_bytes(&header).map_err(&corrupt)?;
                if let Some(d) = declared {
                    if d > bound {
                        return Err(corrupt(format!(
                            "its SQLite header states {d} bytes, over {MAX_EXPANSION} times its {compressed} \
                             compressed bytes, which no genuine c1z does"
                        )));
                    }
                    allowed = d;
                }
            }
        }
        let next = total + n as u64;
        if next > allowed {
            return Err(match declared {
                Some(d) => corrupt(format!("it holds more than the {d} bytes its SQLite header states")),
                None => too_large(),
            });
        }
        out.write_all(chunk).map_err(|e| C1zError::io("write", dst_path, e))?;
        total = next;
    }
    if total > 0 && total < SQLITE_HEADER_BYTES as u64 {
        return Err(corrupt("it does not hold a SQLite database".into()));
    }
    if let Some(d) = declared.filter(|d| total < *d) {
        return Err(corrupt(format!("it is truncated: {total} of the {d} bytes its SQLite header states")));
    }
    out.flush().map_err(|e| C1zError::io("write", dst_path, e))?;
    Ok(total)
}

struct CountingWriter<W: Write> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out `data`, then fails like a disk with a bad sector.
    struct FailingDisk {
        data: io::Cursor<Vec<u8>>,
    }

    impl Read for FailingDisk {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.data.read(buf)? {
                0 => Err(io::Error::from_raw_os_error(5)), // EIO
                n => Ok(n),
            }
        }
    }

    #[test]
    fn a_read_error_of_the_previous_file_is_an_io_error_not_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("sync.c1z");
        let dst_path = dir.path().join("work");
        let mut dst = File::create(&dst_path).unwrap();
        // A valid header and the start of a zstd frame (of a SQLite header and filler), then the disk fails.
        let mut content = vec![7u8; 1 << 20];
        content[..16].copy_from_slice(b"SQLite format 3\0");
        content[16..18].copy_from_slice(&4096u16.to_be_bytes());
        content[18..100].fill(0);
        let mut data = MAGIC_V1.to_vec();
        data.extend_from_slice(&zstd::encode_all(&content[..], 3).unwrap()[..40]);
        let e = decompress_from(FailingDisk { data: io::Cursor::new(data) }, 1 << 20, &src, &mut dst, &dst_path)
            .unwrap_err();
        assert!(matches!(e, C1zError::ReadPrevious { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains("cannot read the previous sync file") && !text.contains("corrupt"), "{text}");
        // The disk fails before the header is complete.
        let e = decompress_from(FailingDisk { data: io::Cursor::new(b"C1".to_vec()) }, 2, &src, &mut dst, &dst_path)
            .unwrap_err();
        assert!(matches!(e, C1zError::ReadPrevious { .. }), "{e}");
        // Truncated content that reads fine is still reported as corrupt.
        let mut data = MAGIC_V1.to_vec();
        data.extend_from_slice(&zstd::encode_all(&vec![7u8; 1 << 20][..], 3).unwrap()[..20]);
        let e = decompress_from(io::Cursor::new(data), 1 << 20, &src, &mut dst, &dst_path).unwrap_err();
        assert!(matches!(e, C1zError::Corrupt { .. }), "{e}");
    }

    /// A c1z around `content`, decompressed with the bound of a `compressed`-byte file: what is left in the
    /// destination, and the error.
    fn bounded(content: &[u8], zeros: u64, compressed: u64) -> (u64, C1zError) {
        let dir = tempfile::tempdir().unwrap();
        let dst_path = dir.path().join("prev");
        let mut dst = File::create(&dst_path).unwrap();
        let mut data = MAGIC_V1.to_vec();
        let mut enc = zstd::stream::write::Encoder::new(&mut data, 1).unwrap();
        enc.write_all(content).unwrap();
        let block = vec![0u8; 1 << 20];
        for _ in 0..zeros / (1 << 20) {
            enc.write_all(&block).unwrap();
        }
        enc.finish().unwrap();
        let src = dir.path().join("sync.c1z");
        let e = decompress_from(io::Cursor::new(data), compressed, &src, &mut dst, &dst_path).unwrap_err();
        (std::fs::metadata(&dst_path).unwrap().len(), e)
    }

    /// A SQLite header with 4 KiB pages stating `pages` pages (0: no valid count).
    fn sqlite_header(pages: u32) -> Vec<u8> {
        let mut h = vec![0u8; 4096];
        h[..16].copy_from_slice(b"SQLite format 3\0");
        h[16..18].copy_from_slice(&4096u16.to_be_bytes());
        h[28..32].copy_from_slice(&pages.to_be_bytes());
        h[24..28].copy_from_slice(&7u32.to_be_bytes());
        h[92..96].copy_from_slice(&7u32.to_be_bytes());
        h
    }

    #[test]
    fn decompression_stops_at_the_expansion_bound_and_at_the_stated_size() {
        // No valid page count: the expansion bound (16 MiB for a small file) stops it, nothing past it is written.
        let (written, e) = bounded(&sqlite_header(0), 64 << 20, 1000);
        assert!(e.to_string().contains("over 100 times its size"), "{e}");
        assert!(written <= MIN_DECOMPRESSED_BOUND, "{written}");
        // A valid page count: the bytes past it are refused, and never written.
        let (written, e) = bounded(&sqlite_header(1), 8 << 20, 1000);
        assert!(e.to_string().contains("holds more than the 4096 bytes its SQLite header states"), "{e}");
        assert!(written <= 4096, "{written}");
        // A header stating more than the bound is refused at once.
        let (written, e) = bounded(&sqlite_header(1 << 20), 0, 1000);
        assert!(e.to_string().contains("its SQLite header states 4294967296 bytes"), "{e}");
        assert_eq!(written, 0);
        // Fewer bytes than stated: truncated.
        let (_, e) = bounded(&sqlite_header(2), 0, 1000);
        assert!(e.to_string().contains("truncated: 4096 of the 8192 bytes"), "{e}");
        // Not SQLite at all.
        let (written, e) = bounded(&[9u8; 4096], 0, 1000);
        assert!(e.to_string().contains("does not hold a SQLite database"), "{e}");
        assert_eq!(written, 0);
    }

    /// Window of a zstd frame as its header declares it (the frame content size for single-segment frames).
    fn declared_window(frame: &[u8]) -> u64 {
        assert_eq!(&frame[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        let fhd = frame[4];
        if fhd & 0x20 != 0 {
            let fcs_bytes = [1, 2, 4, 8][usize::from(fhd >> 6)];
            let did_bytes = [0, 1, 2, 4][usize::from(fhd & 3)];
            let at = 5 + did_bytes;
            let mut size = [0u8; 8];
            size[..fcs_bytes].copy_from_slice(&frame[at..at + fcs_bytes]);
            return u64::from_le_bytes(size) + if fcs_bytes == 2 { 256 } else { 0 };
        }
        let wd = frame[5];
        let base = 1u64 << (10 + (wd >> 3));
        base + base / 8 * u64::from(wd & 7)
    }

    fn compressed(db_bytes: usize) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("db");
        // Cheap to compress, but not a single repeated byte.
        let data: Vec<u8> = (0..db_bytes).map(|i| (i % 251) as u8 ^ (i >> 20) as u8).collect();
        std::fs::write(&src, data).unwrap();
        let dst_path = dir.path().join("c1z");
        let mut dst = File::create(&dst_path).unwrap();
        compress_file(&src, &mut dst, &dst_path, CompressSettings { level: AUTO_LEVEL }).unwrap();
        std::fs::read(&dst_path).unwrap()
    }

    #[test]
    fn window_never_exceeds_what_the_oldest_reader_accepts() {
        assert_eq!(window_log(16 << 20, 9), Some(MAX_WINDOW_LOG));
        assert_eq!(window_log(64 << 20, 9), Some(MAX_WINDOW_LOG));
        assert_eq!(window_log((64 << 20) + 1, 1), None);
        // A database between 32 and 64 MiB: level 9 with the full 32 MiB window, not more.
        let file = compressed(40 << 20);
        assert_eq!(&file[..5], MAGIC_V1);
        assert_eq!(declared_window(&file[5..]), 32 << 20);
        // Smaller databases are one segment: the window is the content size.
        let file = compressed(3 << 20);
        assert_eq!(declared_window(&file[5..]), 3 << 20);
    }
}
