//! Carrying the previous sync over: the rows of one finished sync, copied out of the previous file into a work
//! database that this crate's own schema code created.
//!
//! **Owns:** judging the previous file's database (attached read-only and untrusted), choosing the sync to keep
//! by its id, copying that sync's rows (only the columns [`super::schema`] knows), and making its times sort
//! before the new sync's start.
//!
//! **Must not:** copy anything of the previous file's schema, run anything it defines (triggers and views are
//! switched off on the work connection, so none can run; virtual tables and generated columns are refused
//! before a row is read), keep its row ids, or write to it. The previous file is whatever was at the output
//! path: anyone who could write there chose its content.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{params, Connection};
use svix_ksuid::Ksuid;

use super::schema::{self, SYNC_TABLES};
use super::time::is_go_time_text;
use super::C1zError;

/// Schema name of the attached previous database.
const PREV: &str = "prev";

/// Tables a c1z of any SDK version has; a previous file without one of them is not a c1z. The other tables of
/// [`SYNC_TABLES`] (assets, connector sessions) came later and are carried when present.
const REQUIRED_TABLES: &[&str] = &["v1_resource_types", "v1_resources", "v1_entitlements", "v1_grants", "v1_sync_runs"];

/// Indexes older SDK versions created that the superset schema no longer has (v0.1.9, the reference file): part
/// of a genuine file, so not worth a warning; like every index of the previous file, never copied.
const OLDER_SDK_INDEXES: &[&str] = &["idx_grants_entitlement_id_v1"];

/// Longest schema-object name shown in the warning about foreign objects (the names are the file's, not ours).
const SHOWN_NAME_CHARS: usize = 64;
/// Foreign objects named in that warning; the rest are counted.
const SHOWN_NAMES: usize = 8;

/// What was carried over.
#[derive(Debug)]
pub(crate) struct Carried {
    /// The kept sync's id (a KSUID).
    pub sync_id: String,
    /// Rows of the kept sync that could not be stored (a required column empty, or a duplicate id).
    pub rows_left_out: u64,
}

/// Copies the newest finished sync of the SQLite database at `prev_db` (the decompressed previous file
/// `source`) into the `main` database of `conn`, whose tables [`schema::apply`] created. `before` is a time
/// text strictly earlier than the new sync's `started_at`: the kept sync's times are made no later than it.
/// Returns `None` when the file holds no finished sync. Must run outside a transaction (ATTACH).
pub(crate) fn carry_previous(
    conn: &Connection,
    prev_db: &Path,
    source: &Path,
    before: &str,
) -> Result<Option<Carried>, C1zError> {
    let corrupt = |reason: String| C1zError::Corrupt { path: source.to_path_buf(), reason };
    conn.execute("ATTACH DATABASE ?1 AS prev", [read_only_uri(prev_db)])
        .map_err(|e| corrupt(format!("its database cannot be opened: {e}")))?;
    let attached = Attached(conn);
    let found = judge_schema(attached.0, &corrupt)?;
    if !found.foreign.is_empty() {
        let shown: Vec<String> = found.foreign.iter().take(SHOWN_NAMES).cloned().collect();
        let more = found.foreign.len().saturating_sub(SHOWN_NAMES);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        tracing::warn!(
            file = %source.display(),
            objects = found.foreign.len(),
            "the previous sync file holds database objects this connector never writes ({}{more}); \
             they were left out, only the rows of its last sync were carried over",
            shown.join(", ")
        );
    }
    let Some(sync_id) = choose_sync(conn, &found.columns_of("v1_sync_runs"), &corrupt)? else {
        return Ok(None);
    };
    conn.execute_batch("BEGIN").map_err(C1zError::sql("begin copying the previous sync"))?;
    let mut rows_left_out = 0;
    for table in SYNC_TABLES {
        if let Some(columns) = found.tables.iter().find(|t| t.name == *table) {
            rows_left_out += copy_rows(conn, columns, &sync_id, &corrupt)?;
        }
    }
    make_earlier(conn, &sync_id, before)?;
    conn.execute_batch("COMMIT").map_err(C1zError::sql("commit the copy of the previous sync"))?;
    drop(attached);
    Ok(Some(Carried { sync_id, rows_left_out }))
}

/// `file:` URI opening `path` read-only and immutable (no locks, no journal is looked for), every byte that is
/// not unreserved percent-encoded so no character of the directory name can add a URI parameter.
fn read_only_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?mode=ro&immutable=1");
    uri
}

/// Detaches the previous database when dropped, on every path.
struct Attached<'a>(&'a Connection);

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        // Rolls back a copy that failed half-way; nothing to do after a commit.
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
        let _ = self.0.execute_batch("DETACH DATABASE prev");
    }
}

/// A table of the previous file that will be read, with the columns both it and this crate's schema have.
struct Source {
    name: &'static str,
    columns: Vec<String>,
}

struct Found {
    tables: Vec<Source>,
    /// Objects of the previous file this crate never writes (shown as `kind name`).
    foreign: Vec<String>,
}

impl Found {
    fn columns_of(&self, table: &str) -> Vec<String> {
        self.tables.iter().find(|t| t.name == table).map(|t| t.columns.clone()).unwrap_or_default()
    }
}

/// Reads the previous file's schema (as data: nothing of it is run) and decides what can be read: every
/// required table must be a plain table with every column the work schema requires, none of its columns hidden
/// or generated. Everything else the file defines is listed as foreign.
fn judge_schema(conn: &Connection, corrupt: &dyn Fn(String) -> C1zError) -> Result<Found, C1zError> {
    let unreadable = |e: rusqlite::Error| corrupt(format!("its database schema cannot be read: {e}"));
    let mut objects: Vec<(String, String, Option<String>)> = Vec::new();
    {
        let mut stmt = conn
            .prepare(&format!("SELECT type, name, sql FROM {PREV}.sqlite_schema ORDER BY rowid"))
            .map_err(unreadable)?;
        let rows = stmt
            .query_map([], |r| Ok((text(r.get_ref(0)?), text(r.get_ref(1)?), r.get::<_, Option<Value>>(2)?)))
            .map_err(unreadable)?;
        for row in rows {
            let (kind, name, sql) = row.map_err(unreadable)?;
            let sql = match sql {
                Some(Value::Text(s)) => Some(s),
                _ => None,
            };
            objects.push((kind, name, sql));
        }
    }
    let known_indexes: BTreeSet<&str> =
        schema::LIVE_INDEXES.iter().chain(schema::DEFERRED_INDEXES).map(|i| i.name).collect();
    let mut foreign = Vec::new();
    for (kind, name, _) in &objects {
        let ours = match kind.as_str() {
            "table" => schema::TABLES.iter().any(|(t, _)| t == name) || name.starts_with("sqlite_"),
            "index" => {
                known_indexes.contains(name.as_str())
                    || OLDER_SDK_INDEXES.contains(&name.as_str())
                    || name.starts_with("sqlite_autoindex_")
            }
            _ => false,
        };
        if !ours {
            foreign.push(format!("{} {}", shown(kind), shown(name)));
        }
    }
    let mut tables = Vec::new();
    for (name, _) in schema::TABLES {
        let Some((kind, _, sql)) = objects.iter().find(|(_, n, _)| n == name) else {
            if REQUIRED_TABLES.contains(name) {
                return Err(corrupt(format!("it has no {name} table")));
            }
            continue;
        };
        if kind != "table" {
            return Err(corrupt(format!("its {name} is a {}, not a table", shown(kind))));
        }
        let virtual_table =
            sql.as_deref().is_some_and(|s| s.trim_start().to_ascii_uppercase().starts_with("CREATE VIRTUAL"));
        if virtual_table {
            return Err(corrupt(format!("its {name} is a virtual table")));
        }
        let theirs = table_columns(conn, PREV, name).map_err(unreadable)?;
        if let Some((column, _)) = theirs.iter().find(|(_, hidden)| *hidden != 0) {
            return Err(corrupt(format!("its {name} has a hidden or generated column {}", shown(column))));
        }
        let mut columns = Vec::new();
        for (column, required) in work_columns(conn, name)? {
            if theirs.iter().any(|(c, _)| *c == column) {
                columns.push(column);
            } else if required {
                return Err(corrupt(format!("its {name} table has no {column} column")));
            }
        }
        tables.push(Source { name, columns });
    }
    Ok(Found { tables, foreign })
}

/// The columns of `schema.table` with their `hidden` flag (0: an ordinary column).
fn table_columns(conn: &Connection, schema: &str, table: &str) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare("SELECT name, hidden FROM pragma_table_xinfo(?1, ?2) ORDER BY cid")?;
    let rows = stmt.query_map([table, schema], |r| Ok((text(r.get_ref(0)?), r.get::<_, i64>(1)?)))?;
    rows.collect()
}

/// The columns of the work schema's `table` other than the row id, each with whether a row needs a value for it
/// (NOT NULL without a default).
fn work_columns(conn: &Connection, table: &str) -> Result<Vec<(String, bool)>, C1zError> {
    let read = C1zError::sql("read the work database's columns");
    let mut stmt = conn
        .prepare("SELECT name, \"notnull\" AND dflt_value IS NULL FROM pragma_table_info(?1, 'main') WHERE pk = 0 ORDER BY cid")
        .map_err(read)?;
    let rows = stmt
        .query_map([table], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))
        .map_err(C1zError::sql("read the work database's columns"))?;
    rows.collect::<rusqlite::Result<_>>().map_err(C1zError::sql("read the work database's columns"))
}

/// The sync to keep: the finished sync created last by its id, a `full` one if there is any. Sync ids are
/// KSUIDs, which start with their UTC creation second whatever time zone or clock wrote the `ended_at` text;
/// syncs of the same second are ordered by their row (a writer appends the new sync after the ones it keeps).
/// Ids that are not KSUIDs are not considered.
fn choose_sync(
    conn: &Connection,
    run_columns: &[String],
    corrupt: &dyn Fn(String) -> C1zError,
) -> Result<Option<String>, C1zError> {
    let is_full = if run_columns.iter().any(|c| c == "sync_type") { "sync_type = 'full'" } else { "1" };
    let sql = format!(
        "SELECT sync_id, rowid, {is_full} FROM {PREV}.v1_sync_runs WHERE ended_at IS NOT NULL \
         AND typeof(sync_id) = 'text' AND length(sync_id) = 27"
    );
    let unreadable = |e: rusqlite::Error| corrupt(format!("its sync runs cannot be read: {e}"));
    let mut stmt = conn.prepare(&sql).map_err(unreadable)?;
    let mut rows = stmt.query([]).map_err(unreadable)?;
    let mut best: Option<((bool, u32, i64), String)> = None;
    while let Some(row) = rows.next().map_err(unreadable)? {
        let id: String = row.get(0).map_err(unreadable)?;
        let Ok(ksuid) = id.parse::<Ksuid>() else { continue };
        let key =
            (row.get::<_, bool>(2).unwrap_or(false), ksuid.timestamp_raw(), row.get::<_, i64>(1).map_err(unreadable)?);
        if best.as_ref().is_none_or(|(k, _)| key > *k) {
            best = Some((key, id));
        }
    }
    Ok(best.map(|(_, id)| id))
}

/// Copies the rows of sync `sync_id` from `prev.<table>` into `main.<table>` in their stored order, with new row
/// ids. Rows the work schema refuses (an empty required column, a second row with the same id in the sync) are
/// left out and counted. Returns how many were left out.
fn copy_rows(
    conn: &Connection,
    source: &Source,
    sync_id: &str,
    corrupt: &dyn Fn(String) -> C1zError,
) -> Result<u64, C1zError> {
    let table = source.name;
    let columns = source.columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
    // One sync run row at most (the work schema's unique index on sync_id would refuse a second one anyway).
    let limit = if table == "v1_sync_runs" { " LIMIT 1" } else { "" };
    let from = format!("FROM {PREV}.{table} WHERE sync_id = ?1 COLLATE BINARY");
    let failed = |e: rusqlite::Error| corrupt(format!("its {table} rows cannot be read: {e}"));
    let offered: i64 = conn
        .query_row(&format!("SELECT count(*) FROM (SELECT 1 {from}{limit})"), [sync_id], |r| r.get(0))
        .map_err(failed)?;
    let copied = conn
        .execute(
            &format!("INSERT OR IGNORE INTO main.{table} ({columns}) SELECT {columns} {from} ORDER BY rowid{limit}"),
            [sync_id],
        )
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure) => {
                C1zError::sql("copy the previous sync's rows")(e)
            }
            _ => failed(e),
        })?;
    Ok(u64::try_from(offered).unwrap_or(0).saturating_sub(copied as u64))
}

/// Makes the kept sync's `started_at` and `ended_at` sort before the new sync's start (`before`): a time that is
/// not Go's layout, or not earlier, is replaced by `before`. Readers pick the newest sync by `ended_at` text, so
/// a sync written under a time zone ahead of this one, or before the clock stepped back, would otherwise shadow
/// the new sync.
fn make_earlier(conn: &Connection, sync_id: &str, before: &str) -> Result<(), C1zError> {
    let failed = C1zError::sql("adjust the previous sync's times");
    let (started, ended): (Value, Value) = conn
        .query_row("SELECT started_at, ended_at FROM main.v1_sync_runs WHERE sync_id = ?1", [sync_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(failed)?;
    let earlier = |v: &Value, bound: &str| match v {
        Value::Text(s) if is_go_time_text(s) && s.as_str() <= bound => s.clone(),
        _ => bound.to_string(),
    };
    let ended = earlier(&ended, before);
    let started = earlier(&started, &ended);
    conn.execute(
        "UPDATE main.v1_sync_runs SET started_at = ?2, ended_at = ?3 WHERE sync_id = ?1",
        params![sync_id, started, ended],
    )
    .map_err(C1zError::sql("adjust the previous sync's times"))?;
    Ok(())
}

/// A value of the previous file's schema table as text (anything else as empty text).
fn text(v: rusqlite::types::ValueRef<'_>) -> String {
    match v {
        rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        _ => String::new(),
    }
}

/// A name from the previous file, shortened and with control characters escaped, for a log line.
fn shown(name: &str) -> String {
    let mut s: String = name.chars().take(SHOWN_NAME_CHARS).collect::<String>().escape_debug().to_string();
    if name.chars().count() > SHOWN_NAME_CHARS {
        s.push('…');
    }
    s
}
