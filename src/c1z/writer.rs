//! [`C1zWriter`]: writes one `full` sync run into a c1z file.
//!
//! **Owns:** the work database (a hidden temp file next to the target), carrying over the previous finished
//! sync, row insertion with dedupe, dangling-grant cleanup, index building, compression and the atomic
//! replacement of the target.
//!
//! **Must not:** overwrite anything that is not a v1 c1z, leave the target changed unless [`C1zWriter::finish`]
//! succeeded, keep per-object state in memory (dedupe state lives in SQLite: `INSERT OR IGNORE` on the unique
//! `(external_id, sync_id)` indexes for resource types and entitlements; resources and grants, the bulk of a
//! sync, use hashed-key temp tables until their unique indexes are built), or be shared between threads (it is
//! `Send`, not `Sync`; use it from one blocking thread).
//!
//! Performance design: one big transaction with `journal_mode=OFF` / `synchronous=OFF` while building (the work
//! file is disposable), cached prepared statements, bounded page caches, non-unique indexes (and the unique
//! resource and grant indexes) built in bulk at `remove_dangling_grants` / `finish`, then `journal_mode=DELETE`
//! and streaming compression. Building indexes in bulk also keeps the file small: B-tree pages filled in key
//! order are packed and hold no leftovers of page splits. Numbers: `cargo bench --bench c1z_write` and
//! docs/performance.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use prost::Message;
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use svix_ksuid::{Ksuid, KsuidLike};

use super::container::{self, CompressSettings, FileKind};
use super::dedupe::{RowOutOfRange, SeenIndex};
use super::hidden::{HiddenFile, OutputDir};
use super::schema;
use super::time::{format_sqlite_time, now_text, SecondClock};
use super::C1zError;
use crate::proto::connector_v2::{Entitlement, Grant, Resource, ResourceType};

/// SQLite page cache of the work database while the deferred indexes are built, in KiB (negative
/// `cache_size`); it also sizes the runs SQLite's sorter sorts in memory. Small runs that stay in the CPU caches
/// sort faster than large ones, and larger caches only cost memory (docs/performance.md).
const CACHE_KIB: i64 = 4 * 1024;
/// The same while rows are written: inserts only append to the tables (their unique indexes are deferred), so a
/// few pages per table do, and the memory goes to the dedupe indexes instead.
const WRITE_CACHE_KIB: i64 = 2 * 1024;

/// Page size of the work database (always a new one: a previous sync is carried over as rows): 16 KiB means fewer
/// B-tree splits and syscalls than 4 KiB (less CPU, a slightly smaller file; docs/performance.md). Any SQLite
/// reader accepts it.
const PAGE_SIZE: u32 = 16 * 1024;

/// Whether row `?1` of a table holds external_id `?2`: confirms a [`SeenIndex`] candidate.
const SAME_RESOURCE: &str = "SELECT external_id = ?2 FROM v1_resources WHERE id = ?1";
/// The same for grants while they are staged (see [`STAGED_GRANTS_MAX`]); the staging table holds one sync only.
const SAME_STAGED_GRANT: &str = "SELECT external_id = ?2 FROM temp.c1z_stage_grants WHERE id = ?1";
/// The same for grants after staging (the index is re-pointed at the copied rows).
const SAME_GRANT: &str = "SELECT external_id = ?2 FROM v1_grants WHERE id = ?1";

/// Whether the object already stored under an id holds data `?2`, by row (`?1`), for each table a [`SeenIndex`]
/// candidate can be in; then by `(external_id ?1, sync_id ?3)` once the unique indexes dedupe.
const SAME_RESOURCE_DATA: &str = "SELECT data = ?2 FROM v1_resources WHERE id = ?1";
const SAME_STAGED_GRANT_DATA: &str = "SELECT data = ?2 FROM temp.c1z_stage_grants WHERE id = ?1";
const SAME_GRANT_DATA: &str = "SELECT data = ?2 FROM v1_grants WHERE id = ?1";
const SAME_RESOURCE_DATA_BY_ID: &str = "SELECT data = ?2 FROM v1_resources WHERE external_id = ?1 AND sync_id = ?3";
const SAME_GRANT_DATA_BY_ID: &str = "SELECT data = ?2 FROM v1_grants WHERE external_id = ?1 AND sync_id = ?3";

/// What a `put_*` call did with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Written: the first object with its id in the current sync.
    Written,
    /// Not written: the current sync holds an object with this id and the same data (sent again).
    Repeated,
    /// Not written: the current sync holds an object with this id and different data; the first one stays.
    Conflicting,
}

impl Put {
    pub fn is_written(self) -> bool {
        self == Put::Written
    }
}

/// Grants of the current sync are first written to this temp table and copied into `v1_grants` grouped by
/// entitlement (the order the Go connector writes them in) by `remove_dangling_grants` or `finish`, or as soon
/// as `WriterOptions::staged_grants_max` (default [`STAGED_GRANTS_MAX`]) have been staged; later grants go
/// straight into `v1_grants`. Grants stored after all resources instead of page by page between them, and
/// grouped by entitlement (so rowids ascend in four of the five grant indexes), make a small c1z noticeably
/// smaller for a cheap copy (docs/performance.md).
/// The index lets the copy read the rows in entitlement order without sorting them in memory.
const CREATE_STAGE: &str = "CREATE TEMP TABLE c1z_stage_grants (id INTEGER PRIMARY KEY, \
    resource_type_id TEXT, resource_id TEXT, entitlement_id TEXT, principal_resource_type_id TEXT, \
    principal_resource_id TEXT, external_id TEXT, data BLOB, sync_id TEXT, discovered_at TEXT); \
    CREATE INDEX temp.c1z_stage_grants_by_entitlement ON c1z_stage_grants (entitlement_id)";
/// Takes the same parameters as [`INSERT_GRANT`].
const STAGE_GRANT: &str = "INSERT INTO temp.c1z_stage_grants (resource_type_id, resource_id, entitlement_id, \
    principal_resource_type_id, principal_resource_id, external_id, data, sync_id, discovered_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
const UNSTAGE_GRANTS: &str = "INSERT INTO v1_grants (resource_type_id, resource_id, entitlement_id, \
    principal_resource_type_id, principal_resource_id, external_id, expansion, needs_expansion, data, sync_id, \
    discovered_at) \
    SELECT resource_type_id, resource_id, entitlement_id, principal_resource_type_id, principal_resource_id, \
    external_id, NULL, 0, data, sync_id, discovered_at FROM temp.c1z_stage_grants ORDER BY entitlement_id, id";
/// Most grants staged before they go straight into `v1_grants`: bounds the staging table (~25 MiB in SQLite's
/// temp file) and the extra copy. The staging pays off in files of up to ~50k users, the ones compressed with
/// the whole database in the zstd window (see `container::window_log`); a 1M-user sync stays within its time
/// budget.
pub(crate) const STAGED_GRANTS_MAX: u64 = 50_000;
/// Page cache of the temp database holding the staged grants, in KiB: the table is appended to, and its
/// entitlement index (about 3 MiB for the most grants staged) fits.
const STAGE_CACHE_KIB: i64 = 4 * 1024;

/// Options for [`C1zWriter::create`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    /// zstd level for the output, 1..=19 (the window stays <= 32 MiB), or [`container::AUTO_LEVEL`] (the
    /// default) to pick by database size: small files get a higher level, very large ones the fastest (see
    /// [`container::auto_level`]).
    pub zstd_level: i32,
    /// Keep the newest finished sync of an existing c1z next to the new one (Baton's two-sync layout).
    pub carry_over_previous: bool,
    /// Grants staged and written grouped by entitlement before the rest go straight into the file (default
    /// [`STAGED_GRANTS_MAX`]; tests use small values).
    pub staged_grants_max: u64,
    /// Decides between replacing the target and a stop request that arrives while the file is being finished
    /// (see [`super::gate`]); `None`: nothing can stop `finish`.
    pub gate: Option<super::CommitGate>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            zstd_level: container::AUTO_LEVEL,
            carry_over_previous: true,
            staged_grants_max: STAGED_GRANTS_MAX,
            gate: None,
        }
    }
}

/// Rows written in the current sync (grants removed by [`C1zWriter::remove_dangling_grants`] are subtracted,
/// so the numbers equal the rows of this sync in the file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    pub resource_types: u64,
    pub resources: u64,
    pub entitlements: u64,
    pub grants: u64,
}

/// A grant removed because its entitlement or principal is not part of the current sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DanglingGrant {
    pub grant_id: String,
    pub entitlement_id: String,
    /// The id of the entitlement's resource (for a role membership, the role id).
    pub resource_id: String,
    pub principal_type: String,
    pub principal_id: String,
}

/// The result of a successful [`C1zWriter::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedFile {
    pub path: PathBuf,
    pub sync_id: String,
    pub previous_sync_id: Option<String>,
    /// Size of the c1z file in bytes.
    pub bytes: u64,
}

/// Writes one sync run into a c1z file; see the module documentation.
pub struct C1zWriter {
    // Field order matters for Drop: the connection is closed before the work file is removed.
    conn: Option<Connection>,
    work: Option<HiddenFile>,
    target: PathBuf,
    dir: OutputDir,
    file_name: String,
    level: i32,
    sync_id: String,
    previous_sync_id: Option<String>,
    /// The new sync run's `started_at`.
    started_text: String,
    counts: SyncCounts,
    /// Resources of the current sync per resource type id, checked against the file by `finish`.
    resources_by_type: BTreeMap<String, u64>,
    buf: Vec<u8>,
    clock: SecondClock,
    /// Grants in the staging table; `None` once they were copied into `v1_grants` (see [`CREATE_STAGE`]).
    staged_grants: Option<u64>,
    staged_grants_max: u64,
    gate: Option<super::CommitGate>,
    /// Resources of the current sync, for dedupe until the unique indexes exist (`unique_indexes`).
    seen_resources: SeenIndex,
    /// Grants of the current sync (staged or in `v1_grants`, see `staged_grants`), for dedupe.
    seen_grants: SeenIndex,
    /// The deferred indexes are built: from now on the unique indexes dedupe (`INSERT OR IGNORE`) and the
    /// in-memory indexes are released.
    unique_indexes: bool,
}

const INSERT_RESOURCE_TYPE: &str = "INSERT OR IGNORE INTO v1_resource_types \
    (external_id, data, sync_id, discovered_at) VALUES (?1, ?2, ?3, ?4)";
const INSERT_RESOURCE: &str = "INSERT OR IGNORE INTO v1_resources \
    (resource_type_id, external_id, parent_resource_type_id, parent_resource_id, data, sync_id, discovered_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const INSERT_ENTITLEMENT: &str = "INSERT OR IGNORE INTO v1_entitlements \
    (resource_type_id, resource_id, external_id, data, sync_id, discovered_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const INSERT_GRANT: &str = "INSERT OR IGNORE INTO v1_grants \
    (resource_type_id, resource_id, entitlement_id, principal_resource_type_id, principal_resource_id, \
    external_id, expansion, needs_expansion, data, sync_id, discovered_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, 0, ?7, ?8, ?9)";

/// Finds dangling grants of sync `?1`. The distinct principals and entitlement ids are read in sorted order
/// from covering indexes (built just before), so the existence probes walk the resource and entitlement
/// indexes in order instead of at random (query alone: 0.37 s for 300k grants); the grants themselves are then
/// matched against the (normally empty) missing sets in one sequential scan.
const DANGLING_GRANTS_SQL: &str = "WITH \
    missing_p AS (SELECT p.prt, p.prid FROM \
        (SELECT DISTINCT principal_resource_type_id AS prt, principal_resource_id AS prid FROM v1_grants) p \
        WHERE NOT EXISTS (SELECT 1 FROM v1_resources r \
                          WHERE r.external_id = p.prt || ':' || p.prid AND r.sync_id = ?1)), \
    missing_e AS (SELECT e.eid FROM (SELECT DISTINCT entitlement_id AS eid FROM v1_grants) e \
        WHERE NOT EXISTS (SELECT 1 FROM v1_entitlements x WHERE x.external_id = e.eid AND x.sync_id = ?1)) \
    SELECT g.id, g.external_id, g.entitlement_id, g.principal_resource_type_id, g.principal_resource_id, \
    g.resource_id \
    FROM v1_grants g WHERE g.sync_id = ?1 AND ( \
        g.entitlement_id IN (SELECT eid FROM missing_e) \
        OR (g.principal_resource_type_id, g.principal_resource_id) IN (SELECT prt, prid FROM missing_p)) \
    ORDER BY g.id";

/// Opens the work database by name. The file was just created (exclusively, mode 0600) in the output's directory;
/// SQLite's no-follow flag makes sure a symlink swapped in for it since cannot make this run write elsewhere.
fn open_work_database(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            // Lets the previous file be attached read-only by a `file:` URI (see `carry`); the work file's own
            // name is a plain path and is not read as a URI.
            | OpenFlags::SQLITE_OPEN_URI,
    )
}

impl C1zWriter {
    /// Validates `target` and prepares a new sync (see the crate documentation of the c1z module for the
    /// rules): refuses directories, non-c1z files and corrupt c1z files without touching them; carries over
    /// the newest finished sync when asked; inserts the new, unfinished sync run.
    pub fn create(target: &Path, opts: WriterOptions) -> Result<C1zWriter, C1zError> {
        if !(1..=19).contains(&opts.zstd_level) && opts.zstd_level != container::AUTO_LEVEL {
            return Err(C1zError::InvalidOption(format!(
                "zstd_level {} is out of range, use 1 to 19 (or 0 for automatic)",
                opts.zstd_level
            )));
        }
        let kind = container::check_target(target)?;
        let file_name = target
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                C1zError::InvalidOption(format!("output path {} has no usable file name", target.display()))
            })?
            .to_string();
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(C1zError::ParentMissing { path: dir });
        }

        let dir = OutputDir::open(&dir)?;
        let (work_file, work) = dir.hidden_file(&super::work_file_prefix(&file_name), "create a work file in")?;
        drop(work_file);

        let conn = open_work_database(work.path()).map_err(C1zError::sql("open the work database"))?;
        let started = chrono::Local::now();
        let mut writer = C1zWriter {
            conn: Some(conn),
            work: Some(work),
            target: target.to_path_buf(),
            dir,
            file_name,
            level: opts.zstd_level,
            sync_id: Ksuid::now(None).to_string(),
            previous_sync_id: None,
            started_text: format_sqlite_time(&started),
            counts: SyncCounts::default(),
            resources_by_type: BTreeMap::new(),
            buf: Vec::with_capacity(4096),
            clock: SecondClock::starting_at(&started),
            staged_grants: Some(0),
            staged_grants_max: opts.staged_grants_max,
            gate: opts.gate,
            seen_resources: SeenIndex::new(),
            seen_grants: SeenIndex::new(),
            unique_indexes: false,
        };
        let ready = writer.prepare().and_then(|()| {
            if kind == FileKind::V1 && opts.carry_over_previous {
                // Just before the new sync's start, in the same text layout: the kept sync must sort before it.
                let before = format_sqlite_time(&(started - chrono::Duration::milliseconds(1)));
                writer.carry_over(&before)?;
            }
            writer.start_run()
        });
        match ready {
            Ok(()) => Ok(writer),
            Err(e) => Err(writer.dir.explain(e)),
        }
    }

    /// Configures the new, empty work database and creates this crate's schema in it.
    fn prepare(&mut self) -> Result<(), C1zError> {
        let conn = self.conn()?;
        let configure = C1zError::sql("configure the work database");
        conn.execute_batch(&format!(
            "PRAGMA page_size = {PAGE_SIZE}; PRAGMA locking_mode = EXCLUSIVE; PRAGMA synchronous = OFF; \
             PRAGMA cache_size = -{WRITE_CACHE_KIB}; PRAGMA encoding = 'UTF-8';"
        ))
        .map_err(configure)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = OFF", [], |r| r.get(0))
            .map_err(C1zError::sql("configure the work database"))?;
        if !mode.eq_ignore_ascii_case("off") {
            return Err(C1zError::InvalidOption(format!("work database refused journal_mode=OFF (got {mode})")));
        }
        // Nothing this crate writes uses triggers or views; with both off none that came from elsewhere can
        // run, and an untrusted schema may not call functions with side effects. (Defensive mode comes after
        // `journal_mode = OFF`, which it forbids.)
        for (flag, on) in [
            (DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false),
            (DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false),
            (DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false),
            (DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true),
        ] {
            conn.set_db_config(flag, on).map_err(C1zError::sql("configure the work database"))?;
        }
        conn.set_prepared_statement_cache_capacity(24);
        schema::apply(conn)?;
        // The unique indexes that are otherwise deferred exist while the previous sync is copied, so a sync
        // listing one id twice is stored once (`INSERT OR IGNORE`).
        schema::create_deferred_unique_indexes(conn)
    }

    /// Copies the previous sync's rows out of the target (see [`super::carry`]). The decompressed previous file
    /// is a hidden temp file next to the target, removed as soon as its rows are copied.
    fn carry_over(&mut self, before: &str) -> Result<(), C1zError> {
        let (mut prev_file, prev) =
            self.dir.hidden_file(&super::prev_file_prefix(&self.file_name), "create a temp file in")?;
        let bytes = container::decompress_file(&self.target, &mut prev_file, prev.path())?;
        drop(prev_file);
        if bytes == 0 {
            // A c1z around an empty database holds no sync to keep.
            return Ok(());
        }
        let conn = self.conn.as_ref().ok_or_else(closed)?;
        let carried = super::carry::carry_previous(conn, prev.path(), &self.target, before)?;
        drop(prev);
        if let Some(c) = &carried {
            if c.rows_left_out > 0 {
                tracing::warn!(
                    file = %self.target.display(),
                    rows = c.rows_left_out,
                    "{} rows of the previous sync in the file were malformed or listed twice and were not carried over",
                    c.rows_left_out
                );
            }
        }
        self.previous_sync_id = carried.map(|c| c.sync_id);
        Ok(())
    }

    /// Starts the transaction the new sync is written in and inserts its unfinished sync run.
    fn start_run(&mut self) -> Result<(), C1zError> {
        let conn = self.conn()?;
        schema::drop_deferred_indexes(conn)?;
        conn.execute_batch("BEGIN").map_err(C1zError::sql("begin the sync's transaction"))?;
        conn.execute_batch(&format!("PRAGMA temp.cache_size = -{STAGE_CACHE_KIB}; {CREATE_STAGE};"))
            .map_err(C1zError::sql("create the grant staging table"))?;
        conn.execute(
            "INSERT INTO v1_sync_runs (sync_id, started_at, ended_at, sync_token, sync_type, parent_sync_id, \
             linked_sync_id, supports_diff, grants_backfilled, stats, ingest_invariant_generation, \
             ingest_invariant_coverage, ingest_invariant_mode) \
             VALUES (?1, ?2, NULL, '', 'full', '', '', 1, 1, NULL, '', '', '')",
            params![self.sync_id, self.started_text],
        )
        .map_err(C1zError::sql("start the sync run"))?;
        Ok(())
    }

    fn conn(&self) -> Result<&Connection, C1zError> {
        self.conn
            .as_ref()
            .ok_or_else(|| C1zError::InvalidOption("the c1z writer was already closed after an error".into()))
    }

    /// The KSUID of the sync run being written.
    pub fn sync_id(&self) -> &str {
        &self.sync_id
    }

    /// The sync carried over from the existing file, if any.
    pub fn previous_sync_id(&self) -> Option<&str> {
        self.previous_sync_id.as_deref()
    }

    /// Rows of the current sync written so far.
    pub fn counts(&self) -> SyncCounts {
        self.counts
    }

    /// Stores a resource type; `Ok(false)` when one with the same id is already in this sync.
    pub fn put_resource_type(&mut self, rt: &ResourceType) -> Result<bool, C1zError> {
        if rt.id.is_empty() {
            return Err(invalid("a resource type", "its id is empty"));
        }
        encode(rt, &mut self.buf)?;
        let conn = self.conn.as_ref().ok_or_else(closed)?;
        let mut stmt =
            conn.prepare_cached(INSERT_RESOURCE_TYPE).map_err(C1zError::sql("prepare a resource type insert"))?;
        let n = stmt
            .execute(params![rt.id, self.buf, self.sync_id, self.clock.now()])
            .map_err(C1zError::sql("insert a resource type"))?;
        let inserted = n == 1;
        if inserted {
            self.counts.resource_types += 1;
        }
        Ok(inserted)
    }

    /// Stores a resource under `external_id` `"<type>:<id>"` unless this sync already holds that id.
    pub fn put_resource(&mut self, r: &Resource) -> Result<Put, C1zError> {
        let id = r.id.as_ref().ok_or_else(|| invalid("a resource", "it has no id"))?;
        if id.resource_type.is_empty() || id.resource.is_empty() {
            return Err(invalid("a resource", "its id has an empty type or value"));
        }
        let external_id = format!("{}:{}", id.resource_type, id.resource);
        let (parent_type, parent_id) = match &r.parent_resource_id {
            Some(p) => (Some(p.resource_type.as_str()), Some(p.resource.as_str())),
            None => (None, None),
        };
        encode(r, &mut self.buf)?;
        let conn = self.conn.as_ref().ok_or_else(closed)?;
        let tag = self.seen_resources.tag(&external_id);
        if !self.unique_indexes {
            if let Some(row) = find_seen(conn, &self.seen_resources, tag, SAME_RESOURCE, &external_id)? {
                return repeated(conn, SAME_RESOURCE_DATA, params![row, self.buf]);
            }
        }
        let mut stmt = conn.prepare_cached(INSERT_RESOURCE).map_err(C1zError::sql("prepare a resource insert"))?;
        let n = stmt
            .execute(params![
                id.resource_type,
                external_id,
                parent_type,
                parent_id,
                self.buf,
                self.sync_id,
                self.clock.now()
            ])
            .map_err(C1zError::sql("insert a resource"))?;
        let inserted = n == 1;
        if inserted && !self.unique_indexes {
            self.seen_resources.record(tag, conn.last_insert_rowid()).map_err(row_out_of_range)?;
        }
        if !inserted {
            return repeated(conn, SAME_RESOURCE_DATA_BY_ID, params![external_id, self.buf, self.sync_id]);
        }
        self.counts.resources += 1;
        *self.resources_by_type.entry(id.resource_type.clone()).or_default() += 1;
        Ok(Put::Written)
    }

    /// Stores an entitlement (resource columns from `entitlement.resource.id`); `Ok(false)` when already in
    /// this sync.
    pub fn put_entitlement(&mut self, e: &Entitlement) -> Result<bool, C1zError> {
        if e.id.is_empty() {
            return Err(invalid("an entitlement", "its id is empty"));
        }
        let rid = e
            .resource
            .as_ref()
            .and_then(|r| r.id.as_ref())
            .ok_or_else(|| invalid("an entitlement", "it has no resource id"))?;
        encode(e, &mut self.buf)?;
        let conn = self.conn.as_ref().ok_or_else(closed)?;
        let mut stmt =
            conn.prepare_cached(INSERT_ENTITLEMENT).map_err(C1zError::sql("prepare an entitlement insert"))?;
        let n = stmt
            .execute(params![rid.resource_type, rid.resource, e.id, self.buf, self.sync_id, self.clock.now()])
            .map_err(C1zError::sql("insert an entitlement"))?;
        let inserted = n == 1;
        if inserted {
            self.counts.entitlements += 1;
        }
        Ok(inserted)
    }

    /// Stores a grant (columns from `entitlement.resource.id`, `entitlement.id` and `principal.id`, no
    /// expansion) unless this sync already holds its id.
    pub fn put_grant(&mut self, g: &Grant) -> Result<Put, C1zError> {
        if g.id.is_empty() {
            return Err(invalid("a grant", "its id is empty"));
        }
        let ent = g.entitlement.as_ref().ok_or_else(|| invalid("a grant", "it has no entitlement"))?;
        if ent.id.is_empty() {
            return Err(invalid("a grant", "its entitlement id is empty"));
        }
        let rid = ent
            .resource
            .as_ref()
            .and_then(|r| r.id.as_ref())
            .ok_or_else(|| invalid("a grant", "its entitlement has no resource id"))?;
        let pid = g
            .principal
            .as_ref()
            .and_then(|p| p.id.as_ref())
            .ok_or_else(|| invalid("a grant", "it has no principal id"))?;
        encode(g, &mut self.buf)?;
        let conn = self.conn.as_ref().ok_or_else(closed)?;
        let (same, same_data, insert) = match self.staged_grants {
            Some(_) => (SAME_STAGED_GRANT, SAME_STAGED_GRANT_DATA, STAGE_GRANT),
            None => (SAME_GRANT, SAME_GRANT_DATA, INSERT_GRANT),
        };
        let tag = self.seen_grants.tag(&g.id);
        if !self.unique_indexes {
            if let Some(row) = find_seen(conn, &self.seen_grants, tag, same, &g.id)? {
                return repeated(conn, same_data, params![row, self.buf]);
            }
        }
        let n = conn
            .prepare_cached(insert)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    rid.resource_type,
                    rid.resource,
                    ent.id,
                    pid.resource_type,
                    pid.resource,
                    g.id,
                    self.buf,
                    self.sync_id,
                    self.clock.now()
                ])
            })
            .map_err(C1zError::sql("insert a grant"))?;
        if n == 0 {
            return repeated(conn, SAME_GRANT_DATA_BY_ID, params![g.id, self.buf, self.sync_id]);
        }
        if !self.unique_indexes {
            self.seen_grants.record(tag, conn.last_insert_rowid()).map_err(row_out_of_range)?;
        }
        self.counts.grants += 1;
        if let Some(staged) = self.staged_grants.map(|n| n + 1) {
            self.staged_grants = Some(staged);
            if staged >= self.staged_grants_max {
                self.unstage_grants()?;
            }
        }
        Ok(Put::Written)
    }

    /// Copies the staged grants into `v1_grants`, grouped by entitlement, and re-points the grant dedupe index
    /// at the copied rows, so grants written afterwards go straight into `v1_grants`. No-op once done.
    fn unstage_grants(&mut self) -> Result<(), C1zError> {
        if self.staged_grants.is_none() {
            return Ok(());
        }
        let conn = self.conn.as_ref().ok_or_else(closed)?;
        let err = |e| C1zError::sql("copy the staged grants")(e);
        let last: i64 = conn.query_row("SELECT coalesce(max(id), 0) FROM v1_grants", [], |r| r.get(0)).map_err(err)?;
        conn.execute(UNSTAGE_GRANTS, []).map_err(err)?;
        // From here on grants go to `v1_grants`, even if what follows fails (the writer is then unusable anyway:
        // every caller gives up on the first error).
        self.staged_grants = None;
        conn.execute_batch("DROP TABLE temp.c1z_stage_grants").map_err(err)?;
        self.seen_grants.clear();
        let mut copied =
            conn.prepare("SELECT id, external_id FROM v1_grants WHERE id > ?1 AND sync_id = ?2").map_err(err)?;
        let mut rows = copied.query(params![last, self.sync_id]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let id: i64 = row.get(0).map_err(err)?;
            let external_id = row.get_ref(1).map_err(err)?.as_str().map_err(|e| err(e.into()))?;
            let tag = self.seen_grants.tag(external_id);
            self.seen_grants.record(tag, id).map_err(row_out_of_range)?;
        }
        Ok(())
    }

    /// Builds the deferred indexes (once) and hands dedupe over to the unique ones, releasing the in-memory
    /// indexes first so their memory is free for SQLite's sorter.
    fn build_deferred_indexes(&mut self) -> Result<(), C1zError> {
        if self.unique_indexes {
            return Ok(());
        }
        self.unstage_grants()?;
        self.seen_resources.release();
        self.seen_grants.release();
        self.unique_indexes = true;
        let conn = self.conn.as_ref().ok_or_else(closed)?;
        conn.execute_batch(&format!("PRAGMA cache_size = -{CACHE_KIB}"))
            .map_err(C1zError::sql("configure the work database"))?;
        schema::create_deferred_indexes(conn)
    }

    /// Deletes the grants of the current sync whose entitlement (by id) or principal (by `"<type>:<id>"`) is
    /// not part of the current sync, and returns them.
    pub fn remove_dangling_grants(&mut self) -> Result<Vec<DanglingGrant>, C1zError> {
        // The principal probes below need the unique (external_id, sync_id) index on resources; build it (and
        // the other deferred indexes, which `finish` would build anyway) now, in bulk. Rows written afterwards
        // maintain them live, and the unique ones take over dedupe.
        self.build_deferred_indexes()?;
        let conn = self.conn.as_ref().ok_or_else(closed)?;
        let mut rows: Vec<(i64, DanglingGrant)> = Vec::new();
        {
            let mut stmt = conn.prepare(DANGLING_GRANTS_SQL).map_err(C1zError::sql("look for dangling grants"))?;
            let mapped = stmt
                .query_map([&self.sync_id], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        DanglingGrant {
                            grant_id: r.get(1)?,
                            entitlement_id: r.get(2)?,
                            principal_type: r.get(3)?,
                            principal_id: r.get(4)?,
                            resource_id: r.get(5)?,
                        },
                    ))
                })
                .map_err(C1zError::sql("look for dangling grants"))?;
            for row in mapped {
                rows.push(row.map_err(C1zError::sql("look for dangling grants"))?);
            }
        }
        {
            let mut del =
                conn.prepare("DELETE FROM v1_grants WHERE id = ?1").map_err(C1zError::sql("delete dangling grants"))?;
            for (rowid, _) in &rows {
                del.execute([rowid]).map_err(C1zError::sql("delete dangling grants"))?;
            }
        }
        self.counts.grants = self.counts.grants.saturating_sub(rows.len() as u64);
        Ok(rows.into_iter().map(|(_, g)| g).collect())
    }

    /// Ends the sync run, builds the remaining indexes, compresses the database and atomically replaces the
    /// target. On error the target is unchanged and all temp files are removed.
    pub fn finish(self) -> Result<FinishedFile, C1zError> {
        let dir = self.dir.clone();
        self.finish_file().map_err(|e| dir.explain(e))
    }

    fn finish_file(mut self) -> Result<FinishedFile, C1zError> {
        if self.gate.as_ref().is_some_and(super::CommitGate::is_abandoned) {
            return Err(C1zError::Interrupted);
        }
        let t0 = Instant::now();
        self.build_deferred_indexes()?;
        let conn = self.conn.take().ok_or_else(closed)?;
        // Readers take the sync with the greatest `ended_at` text as the newest: never earlier than this sync's
        // start (a clock stepped back, or a daylight-saving fall-back, during the run), which is later than the
        // kept sync's times (see `carry`).
        let ended = now_text().max(self.started_text.clone());
        conn.execute("UPDATE v1_sync_runs SET ended_at = ?1 WHERE sync_id = ?2", params![ended, self.sync_id])
            .map_err(C1zError::sql("end the sync run"))?;
        conn.execute_batch("COMMIT").map_err(C1zError::sql("commit the sync"))?;
        self.check_committed(&conn)?;
        let t_indexes = t0.elapsed();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
            .map_err(C1zError::sql("switch to rollback-journal mode"))?;
        if !mode.eq_ignore_ascii_case("delete") {
            return Err(C1zError::InvalidOption(format!("work database refused journal_mode=DELETE (got {mode})")));
        }
        conn.close().map_err(|(_, e)| C1zError::sql("close the work database")(e))?;
        release_freed_memory();

        let work = self.work.as_ref().ok_or_else(closed)?;
        work.remove_side_files();

        // Re-check: something else may have appeared at the target since `create`.
        container::check_target(&self.target)?;

        let (mut out_file, out) =
            self.dir.hidden_file(&super::tmp_file_prefix(&self.file_name), "create a temp file in")?;
        let t1 = Instant::now();
        let settings = CompressSettings { level: self.level };
        let bytes = container::compress_file(work.path(), &mut out_file, out.path(), settings)?;
        out_file.sync_all().map_err(|e| C1zError::io("flush", out.path(), e))?;
        drop(out_file);
        // The point of no return: a stop request that won the gate first keeps the old file (the temp file and
        // the work database are removed on drop); one that comes later learns that the file was replaced.
        if self.gate.as_ref().is_some_and(|g| !g.commit()) {
            return Err(C1zError::Interrupted);
        }
        out.persist(&self.target)?;
        // Make the rename durable.
        self.dir.sync();
        tracing::debug!(
            sync_id = %self.sync_id,
            index_ms = t_indexes.as_millis() as u64,
            compress_ms = t1.elapsed().as_millis() as u64,
            bytes,
            "c1z file written"
        );
        Ok(FinishedFile {
            path: self.target.clone(),
            sync_id: self.sync_id.clone(),
            previous_sync_id: self.previous_sync_id.clone(),
            bytes,
        })
    }
}

impl C1zWriter {
    /// Rows of the current sync per resource type id (what [`C1zWriter::finish`] checks the file against).
    pub fn resources_by_type(&self) -> &BTreeMap<String, u64> {
        &self.resources_by_type
    }

    /// Compares the rows of the new sync in the committed database with what the writer counted; any difference
    /// is an error (the summary would state something the file does not hold).
    fn check_committed(&self, conn: &Connection) -> Result<(), C1zError> {
        let count = |table: &str| -> Result<u64, C1zError> {
            conn.query_row(&format!("SELECT count(*) FROM {table} WHERE sync_id = ?1"), [&self.sync_id], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(C1zError::sql("count the rows of the sync"))
        };
        let mismatch = |what: String, counted: u64, in_file: u64| C1zError::CountMismatch { what, counted, in_file };
        for (what, counted, table) in [
            ("resource types", self.counts.resource_types, "v1_resource_types"),
            ("resources", self.counts.resources, "v1_resources"),
            ("entitlements", self.counts.entitlements, "v1_entitlements"),
            ("grants", self.counts.grants, "v1_grants"),
        ] {
            let in_file = count(table)?;
            if in_file != counted {
                return Err(mismatch(what.to_string(), counted, in_file));
            }
        }
        let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
        {
            let mut stmt = conn
                .prepare("SELECT resource_type_id, count(*) FROM v1_resources WHERE sync_id = ?1 GROUP BY 1")
                .map_err(C1zError::sql("count the rows of the sync"))?;
            let rows = stmt
                .query_map([&self.sync_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(C1zError::sql("count the rows of the sync"))?;
            for row in rows {
                let (t, n) = row.map_err(C1zError::sql("count the rows of the sync"))?;
                by_type.insert(t, u64::try_from(n).unwrap_or(0));
            }
        }
        for t in by_type.keys().chain(self.resources_by_type.keys()) {
            let counted = self.resources_by_type.get(t).copied().unwrap_or(0);
            let in_file = by_type.get(t).copied().unwrap_or(0);
            if counted != in_file {
                return Err(mismatch(format!("resources of type {t}"), counted, in_file));
            }
        }
        Ok(())
    }
}

impl Drop for C1zWriter {
    fn drop(&mut self) {
        // Close SQLite first, then remove any journal it may have left, then the work file itself.
        drop(self.conn.take());
        // (The work file's guard removes both, through the folder's handle.)
        drop(self.work.take());
    }
}

/// The row of the current sync that holds `key`: every row the index names for `tag` is read back (`same` takes
/// the row and the key) until one holds exactly this key.
fn find_seen(conn: &Connection, index: &SeenIndex, tag: u32, same: &str, key: &str) -> Result<Option<i64>, C1zError> {
    let found = index.find(tag, |row| {
        conn.prepare_cached(same)
            .and_then(|mut st| st.query_row(params![row, key], |r| r.get::<_, bool>(0)).optional())
            // A row that is gone (a dangling grant deleted) holds no key.
            .map(|same| same.unwrap_or(false))
    });
    found.map_err(C1zError::sql("look up an object for dedupe"))
}

/// Whether an object that was not written repeats the stored one (`same_data` says if the data is equal).
fn repeated(conn: &Connection, same_data: &str, params: impl rusqlite::Params) -> Result<Put, C1zError> {
    let same = conn
        .prepare_cached(same_data)
        .and_then(|mut st| st.query_row(params, |r| r.get::<_, bool>(0)).optional())
        .map_err(C1zError::sql("compare an object with the one stored under its id"))?;
    // No stored row (cannot happen: the insert was ignored because of it) counts as a repeat, not a conflict.
    Ok(if same.unwrap_or(true) { Put::Repeated } else { Put::Conflicting })
}

fn row_out_of_range(RowOutOfRange(row): RowOutOfRange) -> C1zError {
    C1zError::InvalidOption(format!(
        "row id {row} of the work database is out of the range one sync can use; write to a new output file"
    ))
}

/// Returns the heap memory freed by closing the work database (its page caches and index sorters, spread over
/// the malloc arenas of several threads) to the OS before the compressor allocates its window, so the two do
/// not add up to the process's peak (docs/performance.md: the RSS timeline at 10k users).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes no pointers and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn encode<M: Message>(msg: &M, buf: &mut Vec<u8>) -> Result<(), C1zError> {
    buf.clear();
    msg.encode(buf).map_err(|e| invalid("an object", &format!("protobuf encoding failed: {e}")))
}

fn invalid(what: &'static str, reason: &str) -> C1zError {
    C1zError::InvalidObject { what, reason: reason.to_string() }
}

fn closed() -> C1zError {
    C1zError::InvalidOption("the c1z writer was already closed after an error".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_database_is_never_opened_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("elsewhere.db");
        Connection::open(&real).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
        let link = dir.path().join(".sync.c1z.work-abc");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(open_work_database(&link).is_err(), "a symlinked work database was opened");
        assert!(open_work_database(&real).is_ok());
    }

    /// Rows that disappear between the insert and the commit (as a trigger of a reused previous file made them):
    /// `finish` fails, naming the difference, and the target is not replaced.
    #[test]
    fn finish_refuses_a_file_whose_rows_differ_from_the_counts() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("s.c1z");
        let mut w = C1zWriter::create(&target, WriterOptions::default()).unwrap();
        let user = Resource {
            id: Some(crate::proto::connector_v2::ResourceId {
                resource_type: "user".into(),
                resource: "u1".into(),
                baton_resource: false,
            }),
            ..Default::default()
        };
        assert!(w.put_resource(&user).unwrap().is_written());
        w.conn.as_ref().unwrap().execute("DELETE FROM v1_resources", []).unwrap();
        let e = w.finish().unwrap_err();
        assert!(matches!(e, C1zError::CountMismatch { .. }), "{e}");
        assert!(e.to_string().contains("would hold 0 resources but 1 were written"), "{e}");
        assert!(!target.exists(), "no file was put in place");
    }

    /// Forces the hash-collision path: a dedupe entry whose tag belongs to one id but points at another row.
    #[test]
    fn dedupe_stays_exact_on_hash_collision() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = C1zWriter::create(&dir.path().join("s.c1z"), WriterOptions::default()).unwrap();
        let res = |id: &str| Resource {
            id: Some(crate::proto::connector_v2::ResourceId {
                resource_type: "user".into(),
                resource: id.into(),
                baton_resource: false,
            }),
            ..Default::default()
        };
        assert!(w.put_resource(&res("a")).unwrap().is_written());
        let conn = w.conn.as_ref().unwrap();
        let row_a: i64 = conn.query_row("SELECT id FROM v1_resources", [], |r| r.get(0)).unwrap();
        // Pretend "user:b" hashes like "user:a" did.
        let tag_b = w.seen_resources.tag("user:b");
        w.seen_resources.record(tag_b, row_a).unwrap();
        assert!(w.put_resource(&res("b")).unwrap().is_written(), "collision must not hide a new id");
        assert_eq!(w.put_resource(&res("b")).unwrap(), Put::Repeated, "second b is a duplicate");
        assert!(!w.put_resource(&res("a")).unwrap().is_written());
        assert_eq!(w.counts().resources, 2);
    }

    fn grant(user: &str) -> Grant {
        use crate::proto::connector_v2::ResourceId;
        let id = |t: &str, v: &str| ResourceId { resource_type: t.into(), resource: v.into(), baton_resource: false };
        Grant {
            id: format!("role:r1:member:user:{user}"),
            entitlement: Some(Entitlement {
                id: "role:r1:member".into(),
                resource: Some(Resource { id: Some(id("role", "r1")), ..Default::default() }),
                ..Default::default()
            }),
            principal: Some(Resource { id: Some(id("user", user)), ..Default::default() }),
            ..Default::default()
        }
    }

    /// The same for grants, while they are staged (`staged_grants_max` large) and after they were copied into
    /// `v1_grants` (`staged_grants_max` 1).
    #[test]
    fn grant_dedupe_stays_exact_on_hash_collision_staged_and_copied() {
        for (staged_max, table) in [(1000, "temp.c1z_stage_grants"), (1, "v1_grants")] {
            let dir = tempfile::tempdir().unwrap();
            let opts = WriterOptions { staged_grants_max: staged_max, ..WriterOptions::default() };
            let mut w = C1zWriter::create(&dir.path().join("s.c1z"), opts).unwrap();
            assert!(w.put_grant(&grant("a")).unwrap().is_written());
            let conn = w.conn.as_ref().unwrap();
            let row_a: i64 = conn.query_row(&format!("SELECT max(id) FROM {table}"), [], |r| r.get(0)).unwrap();
            // Pretend grant b hashes like grant a did.
            let tag_b = w.seen_grants.tag(&grant("b").id);
            w.seen_grants.record(tag_b, row_a).unwrap();
            assert!(w.put_grant(&grant("b")).unwrap().is_written(), "collision must not hide a new grant ({table})");
            assert_eq!(w.put_grant(&grant("b")).unwrap(), Put::Repeated, "second b is a duplicate ({table})");
            assert!(!w.put_grant(&grant("a")).unwrap().is_written(), "{table}");
            assert_eq!(w.counts().grants, 2);
        }
    }

    /// A grant removed as dangling can be written again once its principal exists (its dedupe entry points at
    /// a deleted row), and is then kept.
    #[test]
    fn a_removed_dangling_grant_can_be_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = C1zWriter::create(&dir.path().join("s.c1z"), WriterOptions::default()).unwrap();
        let res = |t: &str, v: &str| Resource {
            id: Some(crate::proto::connector_v2::ResourceId {
                resource_type: t.into(),
                resource: v.into(),
                baton_resource: false,
            }),
            ..Default::default()
        };
        w.put_resource(&res("role", "r1")).unwrap();
        w.put_entitlement(&Entitlement {
            id: "role:r1:member".into(),
            resource: Some(res("role", "r1")),
            ..Default::default()
        })
        .unwrap();
        w.put_resource(&res("user", "b")).unwrap();
        assert!(w.put_grant(&grant("a")).unwrap().is_written());
        assert!(w.put_grant(&grant("b")).unwrap().is_written());
        let removed = w.remove_dangling_grants().unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].principal_id, "a");
        assert_eq!(w.counts().grants, 1);
        assert!(w.put_resource(&res("user", "a")).unwrap().is_written());
        assert_eq!(w.put_resource(&res("user", "a")).unwrap(), Put::Repeated, "the unique index dedupes now");
        let mut renamed = res("user", "a");
        renamed.display_name = "A".into();
        assert_eq!(w.put_resource(&renamed).unwrap(), Put::Conflicting, "and still tells a conflict");
        assert!(w.put_grant(&grant("a")).unwrap().is_written());
        assert_eq!(w.put_grant(&grant("a")).unwrap(), Put::Repeated);
        let mut other = grant("a");
        if let Some(p) = other.principal.as_mut() {
            p.display_name = "A".into();
        }
        assert_eq!(w.put_grant(&other).unwrap(), Put::Conflicting);
        assert!(w.remove_dangling_grants().unwrap().is_empty());
        assert_eq!(w.counts().grants, 2);
        w.finish().unwrap();
    }
}
