//! The previous sync file is untrusted input: a crafted previous `.c1z` (built here with rusqlite and zstd from a
//! real run's file) either gives a correct new sync - exit 0, the summary equal to the file, none of its schema
//! objects in the new file - or one clear line and exit 2 with the old file untouched, quickly and with bounded
//! disk use. Every case runs the real binary against the simulated Torq.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_torq::sim::{SimConfig, SimServer};
use common::c1z_reader::C1zReader;
use common::harness::{assert_success, code, command, content, listing, reference_workspace, run, stderr};
use rusqlite::Connection;
use serde_json::Value;

/// Schema objects a file written by this connector holds (tables, their indexes, SQLite's own).
fn schema_objects(file: &Path) -> Vec<String> {
    let r = C1zReader::open(file);
    let mut stmt = r.conn.prepare("SELECT type || ' ' || name FROM sqlite_master ORDER BY 1").unwrap();
    let names = stmt.query_map([], |row| row.get::<_, String>(0)).unwrap();
    names.map(Result::unwrap).collect()
}

/// Replaces the database inside the c1z `file` by what `edit` makes of it.
fn edit_database(file: &Path, edit: impl FnOnce(&Connection)) {
    let raw = std::fs::read(file).unwrap();
    assert_eq!(&raw[..5], b"C1ZF\0");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    std::fs::write(&db, zstd::decode_all(&raw[5..]).unwrap()).unwrap();
    let conn = Connection::open(&db).unwrap();
    edit(&conn);
    conn.close().unwrap();
    write_c1z(file, &std::fs::read(&db).unwrap());
}

/// Writes `db` as a c1z: the magic and one zstd frame.
fn write_c1z(file: &Path, db: &[u8]) {
    let mut out = b"C1ZF\0".to_vec();
    out.extend(zstd::encode_all(db, 3).unwrap());
    std::fs::write(file, out).unwrap();
}

/// The raw SQLite bytes inside the c1z `file`.
fn database_bytes(file: &Path) -> Vec<u8> {
    zstd::decode_all(&std::fs::read(file).unwrap()[5..]).unwrap()
}

/// The JSON summary record of a run.
fn summary(out: &std::process::Output) -> Value {
    stderr(out)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "sync complete")
        .unwrap_or_else(|| panic!("no summary record:\n{}", stderr(out)))
}

/// The sync the Go SDK's readers (and so the `baton` CLI) show by default: the finished sync with the greatest
/// `ended_at` text, then the greatest `sync_id` (baton-sdk `pkg/dotc1z/sync_runs.go`, getFinishedSync).
fn latest_for_readers(file: &Path) -> String {
    C1zReader::open(file)
        .conn
        .query_row(
            "SELECT sync_id FROM v1_sync_runs WHERE ended_at IS NOT NULL ORDER BY ended_at DESC, sync_id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// Rows of sync `sync_id` in `table` (resources of one type when `resource_type` is given).
fn rows(file: &Path, table: &str, sync_id: &str, resource_type: Option<&str>) -> u64 {
    let r = C1zReader::open(file);
    let sql = match resource_type {
        Some(_) => format!("SELECT count(*) FROM {table} WHERE sync_id = ?1 AND resource_type_id = ?2"),
        None => format!("SELECT count(*) FROM {table} WHERE sync_id = ?1 AND ?2 IS NULL"),
    };
    r.conn.query_row(&sql, rusqlite::params![sync_id, resource_type], |row| row.get::<_, i64>(0)).unwrap() as u64
}

/// The summary of `out` states exactly what the newest sync in `file` holds.
fn assert_summary_is_the_file(out: &std::process::Output, file: &Path) {
    let s = summary(out);
    let sync_id = s["sync_id"].as_str().unwrap().to_string();
    assert_eq!(latest_for_readers(file), sync_id, "the new sync is the newest for readers");
    for (t, n) in s["resources"].as_object().unwrap() {
        assert_eq!(n.as_u64().unwrap(), rows(file, "v1_resources", &sync_id, Some(t)), "{t} in summary and file");
    }
    assert_eq!(s["grants"].as_u64().unwrap(), rows(file, "v1_grants", &sync_id, None), "grants in summary and file");
    assert_eq!(s["entitlements"].as_u64().unwrap(), rows(file, "v1_entitlements", &sync_id, None));
}

/// A reference-workspace sync in a new folder: the server, the folder, the file, its schema objects and content.
struct Setup {
    server: SimServer,
    _dir: tempfile::TempDir,
    dir: PathBuf,
    file: PathBuf,
    clean_objects: Vec<String>,
}

async fn setup() -> Setup {
    let server = SimServer::start(reference_workspace(), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    assert_success(&run(&server, &file, &[]).await);
    let clean_objects = schema_objects(&file);
    Setup { server, dir: dir.path().to_path_buf(), _dir: dir, file, clean_objects }
}

/// Runs a sync over a previous file changed by `edit`; it must succeed exactly like a sync over a clean file:
/// the same content, the summary equal to the file, the real previous sync kept, no foreign object carried.
async fn syncs_like_a_clean_file(edit: impl FnOnce(&Connection)) -> std::process::Output {
    let s = setup().await;
    let previous = C1zReader::open(&s.file).default_sync_id();
    let clean = content(&s.file);
    edit_database(&s.file, edit);
    let out = tokio::time::timeout(Duration::from_secs(60), run(&s.server, &s.file, &[]))
        .await
        .expect("the run ends within a minute");
    assert_success(&out);
    assert_summary_is_the_file(&out, &s.file);
    assert_eq!(content(&s.file), clean, "the new sync holds what a sync over a clean file holds");
    assert_eq!(summary(&out)["previous_sync_id"], previous.as_str(), "the previous sync is kept");
    assert_eq!(schema_objects(&s.file), s.clean_objects, "no schema object of the previous file was carried");
    // The carried-over sync is intact too.
    assert_eq!(rows(&s.file, "v1_grants", &previous, None), 12);
    assert_eq!(listing(&s.dir), vec!["sync.c1z"]);
    s.server.shutdown().await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_that_deletes_every_new_grant_never_runs() {
    syncs_like_a_clean_file(|c| {
        c.execute_batch("CREATE TRIGGER eat AFTER INSERT ON v1_grants BEGIN DELETE FROM v1_grants; END").unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_that_reassigns_grants_never_runs() {
    syncs_like_a_clean_file(|c| {
        c.execute_batch(
            "CREATE TRIGGER steal AFTER INSERT ON v1_grants BEGIN \
             UPDATE v1_grants SET principal_resource_id = 'attacker' WHERE id = new.id; END",
        )
        .unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_that_raises_never_runs() {
    syncs_like_a_clean_file(|c| {
        c.execute_batch("CREATE TRIGGER no BEFORE INSERT ON v1_resources BEGIN SELECT RAISE(ABORT, 'refused'); END")
            .unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_bound_trigger_never_runs() {
    let started = Instant::now();
    syncs_like_a_clean_file(|c| {
        c.execute_batch(
            "CREATE TRIGGER spin AFTER INSERT ON v1_resources BEGIN \
             SELECT count(*) FROM (WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n \
             WHERE x < 1000000000000) SELECT x FROM n); END",
        )
        .unwrap()
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extra_unique_index_does_not_empty_the_new_sync() {
    let out = syncs_like_a_clean_file(|c| {
        c.execute_batch("CREATE UNIQUE INDEX one_per_id ON v1_resources (external_id)").unwrap()
    })
    .await;
    assert_eq!(summary(&out)["resources"]["user"], 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_tables_views_and_indexes_are_left_out_with_one_warning() {
    let out = syncs_like_a_clean_file(|c| {
        c.execute_batch(
            "CREATE TABLE notes (x); INSERT INTO notes VALUES ('kept?'); \
             CREATE VIEW v1_everything AS SELECT * FROM v1_resources; \
             CREATE INDEX idx_extra ON v1_grants (data);",
        )
        .unwrap()
    })
    .await;
    let err = stderr(&out);
    let warnings: Vec<&str> =
        err.lines().filter(|l| l.contains("database objects this connector never writes")).collect();
    assert_eq!(warnings.len(), 1, "one warning:\n{err}");
    for name in ["table notes", "view v1_everything", "index idx_extra"] {
        assert!(warnings[0].contains(name), "names {name}: {}", warnings[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_in_place_of_a_baton_table_is_refused() {
    let s = setup().await;
    edit_database(&s.file, |c| {
        c.execute_batch("DROP TABLE v1_grants; CREATE VIEW v1_grants AS SELECT * FROM v1_resources").unwrap()
    });
    let before = std::fs::read(&s.file).unwrap();
    let out = run(&s.server, &s.file, &[]).await;
    assert_eq!(code(&out), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("its v1_grants is a view, not a table"), "{err}");
    assert!(!err.contains("disk space"), "{err}");
    assert_eq!(std::fs::read(&s.file).unwrap(), before, "the old file is untouched");
    assert_eq!(listing(&s.dir), vec!["sync.c1z"]);
    s.server.shutdown().await;
}

/// A database SQLite itself refuses to attach (another text encoding): the line names the file and carries
/// SQLite's message, and does not blame the disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_database_sqlite_refuses_is_named_with_sqlite_s_message() {
    let s = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("utf16.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA encoding = 'UTF-16le'; CREATE TABLE v1_sync_runs (x)").unwrap();
    conn.close().unwrap();
    write_c1z(&s.file, &std::fs::read(&db).unwrap());
    let before = std::fs::read(&s.file).unwrap();
    let out = run(&s.server, &s.file, &["--log-format", "console"]).await;
    assert_eq!(code(&out), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&s.file.display().to_string()) && err.contains("encoding"), "{err}");
    assert!(!err.contains("disk space"), "{err}");
    assert_eq!(std::fs::read(&s.file).unwrap(), before);
    s.server.shutdown().await;
}

/// Largest total size of the files in `dir` while `run` runs, sampled every few milliseconds.
async fn peak_folder_bytes<F: std::future::Future>(dir: &Path, run: F) -> (F::Output, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak, dir) = (Arc::clone(&stop), Arc::clone(&peak), dir.to_path_buf());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let total: u64 = std::fs::read_dir(&dir)
                    .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
                    .unwrap_or(0);
                peak.fetch_max(total, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let out = run.await;
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    (out, peak.load(Ordering::Relaxed))
}

/// Writes `file` as a c1z whose frame holds `db` followed by `zeros` zero bytes, streamed (never in memory).
fn write_padded_c1z(file: &Path, db: &[u8], zeros: u64) {
    let mut out = std::fs::File::create(file).unwrap();
    out.write_all(b"C1ZF\0").unwrap();
    let mut enc = zstd::stream::write::Encoder::new(out, 1).unwrap();
    enc.write_all(db).unwrap();
    let block = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        enc.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    enc.finish().unwrap();
}

/// Runs a sync over a crafted previous file that must be refused: exit 2, one line naming the file and `reason`,
/// within seconds, the folder never much larger than the file's bound, the old file untouched, no work file.
async fn refused_quickly(s: &Setup, reason: &str) {
    let before = std::fs::read(&s.file).unwrap();
    let started = Instant::now();
    let (out, peak) = peak_folder_bytes(&s.dir, run(&s.server, &s.file, &["--log-format", "console"])).await;
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(code(&out), Some(2), "{err}");
    let line = err.lines().find(|l| l.contains(reason)).unwrap_or_else(|| panic!("no line saying {reason:?}:\n{err}"));
    assert!(line.contains(&s.file.display().to_string()), "names the file: {line}");
    assert!(took < Duration::from_secs(10), "refused after {took:?}");
    // The previous file, plus at most the 16 MiB any file may decompress to (and SQLite's lock file).
    assert!(peak <= before.len() as u64 + (17 << 20), "the folder grew to {peak} bytes");
    assert_eq!(std::fs::read(&s.file).unwrap(), before, "the old file is untouched");
    assert_eq!(listing(&s.dir), vec!["sync.c1z"], "no work file left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_frame_that_expands_to_gigabytes_is_refused_early() {
    let s = setup().await;
    let mut db = database_bytes(&s.file);
    // Without a valid page count in its header the file's size would count, so only the expansion bound holds.
    db[92..96].copy_from_slice(&[0xff; 4]);
    write_padded_c1z(&s.file, &db, 2 << 30);
    let compressed = std::fs::metadata(&s.file).unwrap().len();
    assert!(compressed < 200_000, "a small file: {compressed} bytes");
    refused_quickly(&s, "over 100 times its size").await;
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padding_after_the_database_is_refused_at_its_page_count() {
    let s = setup().await;
    let db = database_bytes(&s.file);
    write_padded_c1z(&s.file, &db, 2 << 30);
    refused_quickly(&s, &format!("holds more than the {} bytes its SQLite header states", db.len())).await;
    s.server.shutdown().await;
}

/// A run in time zone `tz`: the summary's sync id and kept previous sync id.
async fn run_in(server: &SimServer, file: &Path, tz: &str) -> (String, Option<String>) {
    let out = command(server, &SimConfig::default(), file).env("TZ", tz).output().await.unwrap();
    assert_success(&out);
    let s = summary(&out);
    (s["sync_id"].as_str().unwrap().to_string(), s["previous_sync_id"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_a_time_zone_ahead_neither_outranks_nor_displaces_later_runs() {
    let server = SimServer::start(reference_workspace(), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    // Etc/GMT-14 is UTC+14: its wall-clock text sorts 14 hours after the UTC runs that follow.
    let (first, _) = run_in(&server, &file, "Etc/GMT-14").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (second, kept) = run_in(&server, &file, "UTC").await;
    assert_eq!(kept.as_deref(), Some(first.as_str()));
    assert_eq!(latest_for_readers(&file), second, "the new sync is the newest for readers");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (third, kept) = run_in(&server, &file, "UTC").await;
    assert_eq!(kept.as_deref(), Some(second.as_str()), "the real previous sync is kept");
    assert_eq!(latest_for_readers(&file), third, "the new sync is the newest for readers");
    let r = C1zReader::open(&file);
    let ids: Vec<String> = r.sync_runs().into_iter().map(|s| s.sync_id).collect();
    assert_eq!(ids, [second, third.clone()]);
    assert_eq!(r.default_sync_id(), third);
    for run in r.sync_runs() {
        r.check_integrity(&run.sync_id);
        assert!(run.started_at <= *run.ended_at.as_ref().unwrap(), "{run:?}");
    }
    server.shutdown().await;
}
