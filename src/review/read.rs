//! Reading a sync file for `review`, read-only and bounded: the c1z container is decompressed by
//! `c1z::container` into a private temporary file (bounded as for a previous sync file: by the expansion no
//! genuine c1z reaches and by the size its SQLite header states), which SQLite opens read-only with `trusted_schema` off and defensive mode on; rows
//! larger than [`MAX_ROW_BYTES`] are skipped unread. Only plain tables are read (a view or virtual table under a Baton table name is refused), so nothing
//! stored in the file runs. Rows are streamed: only the small [`Account`] of each user and API key is kept.
//!
//! Must not: open the user's file for writing, lock it, or create anything next to it.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use prost::Message;
use prost_types::{value::Kind, Struct};
use rusqlite::{Connection, OpenFlags};

use super::{Account, AccountType, KeyInfo, ReviewError, Role, Status, SyncInfo};
use crate::c1z::container::{self, FileKind};
use crate::c1z::C1zError;
use crate::proto::connector_v2::{user_trait, Resource, RoleTrait, UserTrait};

/// Largest resource row read (larger ones are counted as undecodable, never loaded); Baton rows are a few hundred
/// bytes.
const MAX_ROW_BYTES: i64 = 1 << 20;

/// The tables a review reads; each must be a plain table.
const TABLES: [&str; 3] = ["v1_sync_runs", "v1_resources", "v1_grants"];

/// Annotation type URLs of the traits read here.
const USER_TRAIT: &str = "type.googleapis.com/c1.connector.v2.UserTrait";
const ROLE_TRAIT: &str = "type.googleapis.com/c1.connector.v2.RoleTrait";

/// Details this connector attaches to an invited user's ENABLED status (`connector::user::INVITED_DETAILS`).
const INVITED_DETAILS: &str = crate::connector::user::INVITED_DETAILS;

/// An opened sync file: the read-only database of its private copy.
pub(crate) struct SyncFile {
    conn: Connection,
    path: std::path::PathBuf,
    /// Removed when the review ends.
    _copy: tempfile::NamedTempFile,
}

/// One sync as the review needs it.
pub(crate) struct SyncData {
    pub(crate) roles: Vec<Role>,
    pub(crate) accounts: Vec<Account>,
    pub(crate) notes: Vec<String>,
}

impl SyncFile {
    /// Opens `path` for reading: checks the container, decompresses it (bounded) into a private temporary file
    /// and opens that read-only. Every problem of the file is [`ReviewError::File`].
    pub(crate) fn open(path: &Path) -> Result<SyncFile, ReviewError> {
        let fail = |reason: &str| Err(ReviewError::file(path, reason));
        match container::detect(path) {
            Ok(FileKind::V1) => {}
            Ok(FileKind::Absent) => return fail("there is no such file; pass the sync file with -f FILE"),
            Ok(FileKind::Empty) => return fail("the file is empty; no sync has been written to it"),
            Ok(FileKind::Directory) => return fail("it is a directory; pass the sync file with -f DIR/sync.c1z"),
            Ok(FileKind::V3) => {
                return fail("it is a v3 (Pebble) c1z, which baton-torq cannot read; review a file baton-torq wrote")
            }
            Ok(FileKind::Other) => {
                return fail("it is not a c1z sync file (it does not start with C1ZF); pass the file a sync wrote")
            }
            Err(e) => return Err(ReviewError::file(path, first_line(&e.to_string()))),
        }
        let temp_dir = std::env::temp_dir();
        let temp_err = |e: std::io::Error| ReviewError::Temp {
            dir: super::visible(&temp_dir.display().to_string()),
            reason: e.to_string(),
        };
        let mut copy = tempfile::Builder::new().prefix(".baton-torq-review-").tempfile().map_err(temp_err)?;
        let copy_path = copy.path().to_path_buf();
        match container::decompress_file(path, copy.as_file_mut(), &copy_path) {
            Ok(_) => {}
            Err(C1zError::Corrupt { reason, .. }) => {
                return fail(&format!("it is corrupt ({}); it was left untouched", super::visible(&reason)))
            }
            Err(C1zError::ReadPrevious { source, .. }) => {
                return fail(&format!("cannot read it: {source}; check the disk or mount"))
            }
            Err(C1zError::Io { source, .. }) => return Err(temp_err(source)),
            Err(e) => return Err(ReviewError::file(path, first_line(&e.to_string()))),
        }
        // The copy is ours: a database left in WAL mode is switched to rollback mode in the copy's header, so
        // SQLite reads it without creating -wal/-shm files.
        set_rollback_journal(copy.as_file_mut()).map_err(temp_err)?;
        let conn = open_read_only(&copy_path)
            .map_err(|e| ReviewError::file(path, format!("its database cannot be opened ({e})")))?;
        let file = SyncFile { conn, path: path.to_path_buf(), _copy: copy };
        file.check_tables()?;
        Ok(file)
    }

    fn corrupt(&self, e: rusqlite::Error) -> ReviewError {
        ReviewError::file(
            &self.path,
            format!("its database cannot be read ({}); it was left untouched", first_line(&e.to_string())),
        )
    }

    /// Every table read here exists and is a plain table (not a view, whose SQL would run).
    fn check_tables(&self) -> Result<(), ReviewError> {
        for table in TABLES {
            let kind: Option<String> = self
                .conn
                .query_row("SELECT type FROM sqlite_schema WHERE name = ?1 COLLATE NOCASE", [table], |r| r.get(0))
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })
                .map_err(|e| self.corrupt(e))?;
            match kind.as_deref() {
                Some("table") => {
                    // A virtual table also says "table"; its SQL names a module.
                    let sql: Option<String> = self
                        .conn
                        .query_row("SELECT sql FROM sqlite_schema WHERE name = ?1 COLLATE NOCASE", [table], |r| {
                            r.get(0)
                        })
                        .map_err(|e| self.corrupt(e))?;
                    if sql.is_some_and(|s| s.trim_start().to_ascii_uppercase().starts_with("CREATE VIRTUAL")) {
                        return Err(self.foreign(table));
                    }
                }
                _ => return Err(self.foreign(table)),
            }
        }
        Ok(())
    }

    fn foreign(&self, table: &str) -> ReviewError {
        ReviewError::file(&self.path, format!("its database has no {table} table; it is not a Baton sync file"))
    }

    /// The finished full syncs, newest first (by `ended_at`, as the Baton readers choose).
    pub(crate) fn finished_syncs(&self) -> Result<Vec<SyncInfo>, ReviewError> {
        let has_type = self
            .conn
            .prepare("SELECT 1 FROM pragma_table_info('v1_sync_runs') WHERE name = 'sync_type'")
            .and_then(|mut s| s.exists([]))
            .map_err(|e| self.corrupt(e))?;
        let filter = if has_type { "AND sync_type IN ('full', '')" } else { "" };
        let sql = format!(
            "SELECT CAST(sync_id AS TEXT), CAST(started_at AS TEXT), CAST(ended_at AS TEXT) FROM v1_sync_runs \
             WHERE ended_at IS NOT NULL AND ended_at != '' {filter} ORDER BY ended_at DESC, id DESC"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SyncInfo {
                    id: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    started_at: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    ended_at: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                })
            })
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.corrupt(e))
    }

    /// The roles, users and API keys of `sync`, streamed row by row.
    pub(crate) fn read_sync(&self, sync: &SyncInfo) -> Result<SyncData, ReviewError> {
        let mut roles = Vec::new();
        let mut accounts = Vec::new();
        let mut role_ids = Interner::default();
        let mut without_role_field = Vec::new();
        let mut undecodable = 0u64;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT resource_type_id, CASE WHEN length(data) <= ?2 THEN data END FROM v1_resources \
                 WHERE sync_id = ?1 AND resource_type_id IN ('user', 'api_key', 'role') ORDER BY id",
            )
            .map_err(|e| self.corrupt(e))?;
        let mut rows = stmt.query(rusqlite::params![sync.id, MAX_ROW_BYTES]).map_err(|e| self.corrupt(e))?;
        while let Some(row) = rows.next().map_err(|e| self.corrupt(e))? {
            let type_id: String = row.get(0).map_err(|e| self.corrupt(e))?;
            let data = row.get_ref(1).map_err(|e| self.corrupt(e))?;
            let Some(resource) = data.as_blob().ok().and_then(|b| Resource::decode(b).ok()) else {
                undecodable += 1;
                continue;
            };
            let Some(id) = resource.id.as_ref().map(|i| i.resource.clone()).filter(|i| !i.is_empty()) else {
                undecodable += 1;
                continue;
            };
            match type_id.as_str() {
                "role" => roles.push(role(&resource, id, &mut role_ids)),
                "user" | "api_key" => {
                    let kind = if type_id == "user" { AccountType::User } else { AccountType::ApiKey };
                    let (account, role_field) = account(kind, &resource, id, &mut role_ids);
                    if !role_field {
                        without_role_field.push(accounts.len());
                    }
                    accounts.push(account);
                }
                _ => {}
            }
        }
        drop(rows);
        drop(stmt);
        let mut notes = Vec::new();
        if undecodable > 0 {
            notes.push(format!("{undecodable} rows of sync {} could not be decoded and were left out", sync.id));
        }
        if !without_role_field.is_empty() {
            // Other writers (the Go connector) record the role only as a grant on the role's member entitlement.
            let granted = self.granted_roles(&sync.id)?;
            for i in without_role_field {
                let a = &mut accounts[i];
                if let Some(role) = granted.get(&(a.kind, a.id.to_string())) {
                    a.role_id = role_ids.get(role);
                }
            }
        }
        let unrecorded = accounts.iter().filter(|a| a.kind == AccountType::User && !a.login_recorded).count();
        if unrecorded > 0 {
            notes.push(format!(
                "{unrecorded} users of sync {} were written without Torq's status and last login (e.g. by the Go \
                 connector): inactive_user, never_logged_in and pending_invitation are not decided for them",
                sync.id
            ));
        }
        Ok(SyncData { roles, accounts, notes })
    }

    /// Role id per principal from the `role:<id>:member` grants of `sync_id` (the first grant wins: a Torq
    /// account has one role).
    fn granted_roles(&self, sync_id: &str) -> Result<HashMap<(AccountType, String), String>, ReviewError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT principal_resource_type_id, principal_resource_id, entitlement_id FROM v1_grants \
                 WHERE sync_id = ?1 AND resource_type_id = 'role' ORDER BY id",
            )
            .map_err(|e| self.corrupt(e))?;
        let mut rows = stmt.query([sync_id]).map_err(|e| self.corrupt(e))?;
        let mut out = HashMap::new();
        while let Some(row) = rows.next().map_err(|e| self.corrupt(e))? {
            let kind = match row.get::<_, Option<String>>(0).map_err(|e| self.corrupt(e))?.as_deref() {
                Some("user") => AccountType::User,
                Some("api_key") => AccountType::ApiKey,
                _ => continue,
            };
            let principal: Option<String> = row.get(1).map_err(|e| self.corrupt(e))?;
            let entitlement: Option<String> = row.get(2).map_err(|e| self.corrupt(e))?;
            let role = entitlement.as_deref().and_then(|e| e.strip_prefix("role:")?.strip_suffix(":member"));
            if let (Some(principal), Some(role)) = (principal, role) {
                out.entry((kind, principal)).or_insert_with(|| role.to_string());
            }
        }
        Ok(out)
    }
}

/// One `Arc<str>` per distinct role id, shared by every account of the role.
#[derive(Default)]
struct Interner(HashSet<Arc<str>>);

impl Interner {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(found) = self.0.get(s) {
            return found.clone();
        }
        let new: Arc<str> = Arc::from(s);
        self.0.insert(new.clone());
        new
    }
}

/// The annotation of `type_url` decoded, if present and well-formed.
fn annotation<M: Message + Default>(resource: &Resource, type_url: &str) -> Option<M> {
    resource.annotations.iter().find(|a| a.type_url == type_url).and_then(|a| M::decode(a.value.as_slice()).ok())
}

fn text_field<'a>(profile: Option<&'a Struct>, key: &str) -> Option<&'a str> {
    match profile?.fields.get(key)?.kind.as_ref()? {
        Kind::StringValue(s) => Some(s),
        _ => None,
    }
}

fn role(resource: &Resource, id: String, ids: &mut Interner) -> Role {
    let profile = annotation::<RoleTrait>(resource, ROLE_TRAIT).and_then(|t| t.profile);
    let custom = profile.as_ref().and_then(|p| match p.fields.get("is_custom")?.kind.as_ref()? {
        Kind::BoolValue(b) => Some(*b),
        _ => None,
    });
    let scopes = match profile.as_ref().and_then(|p| p.fields.get("scope_names")?.kind.as_ref()) {
        Some(Kind::ListValue(list)) => list
            .values
            .iter()
            .filter_map(|v| match &v.kind {
                Some(Kind::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let name = if resource.display_name.is_empty() { id.clone() } else { resource.display_name.clone() };
    Role { id: ids.get(&id), name, custom, scopes }
}

/// The account of a `user` or `api_key` resource, and whether its profile carries a `role_id` (else the role
/// comes from the grants).
fn account(kind: AccountType, resource: &Resource, id: String, ids: &mut Interner) -> (Account, bool) {
    let user_trait = annotation::<UserTrait>(resource, USER_TRAIT).unwrap_or_default();
    let profile = user_trait.profile.as_ref();
    let role_field = text_field(profile, "role_id");
    let torq_status = text_field(profile, "status");
    let status = match (kind, torq_status) {
        (AccountType::User, Some("VERIFIED")) => Status::Verified,
        (AccountType::User, Some("INVITATION_SENT")) => Status::Invited,
        (AccountType::User, Some("STATUS_UNSPECIFIED" | "")) => Status::Unspecified,
        (AccountType::User, Some(other)) => Status::Other(other.into()),
        _ => {
            let baton = user_trait.status.as_ref();
            match baton.map(|s| s.status()) {
                Some(user_trait::status::Status::Enabled) if baton.is_some_and(|s| s.details == INVITED_DETAILS) => {
                    Status::Invited
                }
                Some(user_trait::status::Status::Enabled) => Status::Enabled,
                Some(user_trait::status::Status::Disabled) => Status::Disabled,
                Some(user_trait::status::Status::Deleted) => Status::Deleted,
                _ => Status::Unspecified,
            }
        }
    };
    let key = (kind == AccountType::ApiKey).then(|| {
        let field = |k: &str| Box::<str>::from(text_field(profile, k).unwrap_or_default());
        Box::new(KeyInfo {
            key_type: field("type"),
            role_name: field("role_name"),
            owner_id: field("owner_user_id"),
            owner_email: field("owner_email"),
        })
    });
    let name = if resource.display_name.is_empty() { id.as_str() } else { resource.display_name.as_str() };
    let account = Account {
        kind,
        name: name.into(),
        id: id.into(),
        role_id: ids.get(role_field.unwrap_or_default()),
        status,
        created: user_trait.created_at.as_ref().or(resource.created_at.as_ref()).map(|t| t.seconds),
        last_login: user_trait.last_login.as_ref().map(|t| t.seconds),
        // This connector writes Torq's status into every user's profile, and its last login whenever Torq has one.
        login_recorded: kind == AccountType::ApiKey || torq_status.is_some(),
        key,
    };
    (account, role_field.is_some())
}

/// Header bytes 18 and 19 (file format write/read version): 2 means WAL. Our private copy is set to 1
/// (rollback journal), which SQLite then opens read-only without -wal or -shm files.
fn set_rollback_journal(file: &mut std::fs::File) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut header = [0u8; 20];
    file.seek(SeekFrom::Start(0))?;
    if file.read_exact(&mut header).is_err() {
        return Ok(()); // too short to be a database: SQLite says so when opening it
    }
    if &header[..16] == b"SQLite format 3\0" && (header[18] == 2 || header[19] == 2) {
        file.seek(SeekFrom::Start(18))?;
        file.write_all(&[1, 1])?;
        file.flush()?;
    }
    Ok(())
}

/// A read-only connection that runs nothing from the file: no triggers can fire (read-only), functions in the
/// schema must be innocuous (`trusted_schema` off), defensive mode on, views and triggers
/// disabled.
fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    use rusqlite::config::DbConfig;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_PRIVATE_CACHE,
    )?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false)?;
    conn.execute_batch("PRAGMA query_only = ON; PRAGMA trusted_schema = OFF;")?;
    // The header's page count is checked against the file size here, before any row is read.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    Ok(conn)
}

/// The first line of an error text (the review's errors are one line).
fn first_line(text: &str) -> String {
    super::visible(text.lines().next().unwrap_or_default())
}
