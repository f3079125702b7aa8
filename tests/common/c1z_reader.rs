//! An independent c1z reader for tests.
//!
//! It deliberately shares no code with `src/c1z` and does not use the crate's generated protobuf types: the
//! message structs below are hand-written from the field numbers of the Baton SDK's `.proto` files, so a wrong
//! field number or column in the writer shows up as a disagreement here (`docs/c1z-format.md` describes the
//! file). Every function panics with a descriptive message on failure (it is test code).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use prost::Message;
use rusqlite::{Connection, OpenFlags};

/// Hand-written protobuf messages (proto3 wire format, field numbers from the spec).
pub mod pb {
    use std::collections::BTreeMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Struct {
        #[prost(btree_map = "string, message", tag = "1")]
        pub fields: BTreeMap<String, Value>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        #[prost(oneof = "value::Kind", tags = "1, 2, 3, 4, 5, 6")]
        pub kind: Option<value::Kind>,
    }

    pub mod value {
        #[allow(clippy::enum_variant_names)] // named after google.protobuf.Value's oneof fields
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Kind {
            #[prost(int32, tag = "1")]
            NullValue(i32),
            #[prost(double, tag = "2")]
            NumberValue(f64),
            #[prost(string, tag = "3")]
            StringValue(String),
            #[prost(bool, tag = "4")]
            BoolValue(bool),
            #[prost(message, tag = "5")]
            StructValue(super::Struct),
            #[prost(message, tag = "6")]
            ListValue(super::ListValue),
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListValue {
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<Value>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceType {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(string, tag = "2")]
        pub display_name: String,
        #[prost(int32, repeated, tag = "3")]
        pub traits: Vec<i32>,
        #[prost(message, repeated, tag = "4")]
        pub annotations: Vec<Any>,
        #[prost(string, tag = "5")]
        pub description: String,
        #[prost(bool, tag = "6")]
        pub sourced_externally: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceId {
        #[prost(string, tag = "1")]
        pub resource_type: String,
        #[prost(string, tag = "2")]
        pub resource: String,
        #[prost(bool, tag = "3")]
        pub baton_resource: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExternalId {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(string, tag = "2")]
        pub link: String,
        #[prost(string, tag = "3")]
        pub description: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AssetRef {
        #[prost(string, tag = "1")]
        pub id: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceStatus {
        #[prost(int32, tag = "1")]
        pub status: i32,
        #[prost(string, tag = "2")]
        pub details: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(message, optional, tag = "1")]
        pub id: Option<ResourceId>,
        #[prost(message, optional, tag = "2")]
        pub parent_resource_id: Option<ResourceId>,
        #[prost(string, tag = "3")]
        pub display_name: String,
        #[prost(message, repeated, tag = "4")]
        pub annotations: Vec<Any>,
        #[prost(string, tag = "5")]
        pub description: String,
        #[prost(bool, tag = "6")]
        pub baton_resource: bool,
        #[prost(message, optional, tag = "7")]
        pub external_id: Option<ExternalId>,
        #[prost(int32, tag = "8")]
        pub creation_source: i32,
        #[prost(message, optional, tag = "9")]
        pub profile: Option<Struct>,
        #[prost(message, optional, tag = "10")]
        pub icon: Option<AssetRef>,
        #[prost(message, optional, tag = "11")]
        pub status: Option<ResourceStatus>,
        #[prost(message, optional, tag = "12")]
        pub created_at: Option<Timestamp>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Entitlement {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(string, tag = "2")]
        pub id: String,
        #[prost(string, tag = "3")]
        pub display_name: String,
        #[prost(string, tag = "4")]
        pub description: String,
        #[prost(message, repeated, tag = "5")]
        pub grantable_to: Vec<ResourceType>,
        #[prost(message, repeated, tag = "6")]
        pub annotations: Vec<Any>,
        #[prost(int32, tag = "7")]
        pub purpose: i32,
        #[prost(string, tag = "8")]
        pub slug: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GrantSource {
        #[prost(bool, tag = "1")]
        pub is_direct: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GrantSources {
        #[prost(btree_map = "string, message", tag = "1")]
        pub sources: BTreeMap<String, GrantSource>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Grant {
        #[prost(message, optional, tag = "1")]
        pub entitlement: Option<Entitlement>,
        #[prost(message, optional, tag = "2")]
        pub principal: Option<Resource>,
        #[prost(string, tag = "3")]
        pub id: String,
        #[prost(message, repeated, tag = "4")]
        pub annotations: Vec<Any>,
        #[prost(message, optional, tag = "5")]
        pub sources: Option<GrantSources>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Email {
        #[prost(string, tag = "1")]
        pub address: String,
        #[prost(bool, tag = "2")]
        pub is_primary: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct UserStatus {
        #[prost(int32, tag = "1")]
        pub status: i32,
        #[prost(string, tag = "2")]
        pub details: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SsoStatus {
        #[prost(bool, tag = "1")]
        pub sso_enabled: bool,
    }

    /// Subset of `c1.connector.v2.UserTrait`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct UserTrait {
        #[prost(message, repeated, tag = "1")]
        pub emails: Vec<Email>,
        #[prost(message, optional, tag = "2")]
        pub status: Option<UserStatus>,
        #[prost(message, optional, tag = "3")]
        pub profile: Option<Struct>,
        #[prost(int32, tag = "5")]
        pub account_type: i32,
        #[prost(string, tag = "6")]
        pub login: String,
        #[prost(string, repeated, tag = "7")]
        pub login_aliases: Vec<String>,
        #[prost(message, optional, tag = "8")]
        pub created_at: Option<Timestamp>,
        #[prost(message, optional, tag = "9")]
        pub last_login: Option<Timestamp>,
        #[prost(message, optional, tag = "11")]
        pub sso_status: Option<SsoStatus>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RoleTrait {
        #[prost(message, optional, tag = "1")]
        pub profile: Option<Struct>,
    }

    pub const USER_TRAIT_URL: &str = "type.googleapis.com/c1.connector.v2.UserTrait";
    pub const ROLE_TRAIT_URL: &str = "type.googleapis.com/c1.connector.v2.RoleTrait";
    pub const SKIP_ENTITLEMENTS_AND_GRANTS_URL: &str = "type.googleapis.com/c1.connector.v2.SkipEntitlementsAndGrants";

    impl Struct {
        /// The string value of `key`, if it is a string.
        pub fn string(&self, key: &str) -> Option<&str> {
            match self.fields.get(key)?.kind.as_ref()? {
                value::Kind::StringValue(s) => Some(s),
                _ => None,
            }
        }
    }

    /// Decodes the first annotation with `type_url`.
    pub fn find_annotation<M: prost::Message + Default>(anns: &[Any], type_url: &str) -> Option<M> {
        anns.iter().find(|a| a.type_url == type_url).map(|a| M::decode(a.value.as_slice()).expect("annotation decodes"))
    }
}

/// Table names of the superset schema (spec section 3).
pub const SPEC_TABLES: &[&str] = &[
    "v1_resource_types",
    "v1_resources",
    "v1_entitlements",
    "v1_sync_runs",
    "v1_grants",
    "v1_assets",
    "v1_connector_sessions",
];

/// Index names of the superset schema (spec section 3), with the table each belongs to and its columns.
pub const SPEC_INDEXES: &[(&str, &str, &str)] = &[
    ("idx_resource_types_external_sync_v1", "v1_resource_types", "external_id,sync_id"),
    ("idx_resources_resource_type_id_v1", "v1_resources", "resource_type_id"),
    ("idx_resources_external_sync_v1", "v1_resources", "parent_resource_type_id,parent_resource_id"),
    ("idx_resources_parent_resource_id_v1", "v1_resources", "external_id,sync_id"),
    ("idx_entitlements_resource_id_v1", "v1_entitlements", "resource_type_id,resource_id"),
    ("idx_entitlements_external_sync_v1", "v1_entitlements", "external_id,sync_id"),
    ("idx_sync_runs_sync_id_v1", "v1_sync_runs", "sync_id"),
    ("idx_grants_resource_type_id_resource_id_v1", "v1_grants", "resource_type_id,resource_id"),
    ("idx_grants_principal_id_v1", "v1_grants", "principal_resource_type_id,principal_resource_id"),
    (
        "idx_grants_entitlement_id_principal_id_v1",
        "v1_grants",
        "entitlement_id,principal_resource_type_id,principal_resource_id",
    ),
    ("idx_grants_external_sync_v1", "v1_grants", "external_id,sync_id"),
    ("idx_grants_entitlement_sync_grant_v1", "v1_grants", "entitlement_id,sync_id,id"),
    ("idx_grants_sync_expansion_v1", "v1_grants", "sync_id"),
    ("idx_grants_sync_needs_expansion_v1", "v1_grants", "sync_id"),
    ("idx_assets_external_sync_v1", "v1_assets", "external_id,sync_id"),
    ("idx_session_store_sync_key_v1", "v1_connector_sessions", "sync_id,key"),
];

/// One `v1_sync_runs` row. Columns missing in old files are `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRun {
    pub id: i64,
    pub sync_id: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub sync_token: String,
    pub sync_type: Option<String>,
    pub parent_sync_id: Option<String>,
    pub linked_sync_id: Option<String>,
    pub supports_diff: Option<i64>,
    pub grants_backfilled: Option<i64>,
    pub stats: Option<String>,
    pub ingest_invariant_generation: Option<String>,
    pub ingest_invariant_coverage: Option<String>,
    pub ingest_invariant_mode: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceTypeRow {
    pub rowid: i64,
    pub external_id: String,
    pub sync_id: String,
    pub discovered_at: String,
    pub data: pb::ResourceType,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRow {
    pub rowid: i64,
    pub resource_type_id: String,
    pub external_id: String,
    pub parent_resource_type_id: Option<String>,
    pub parent_resource_id: Option<String>,
    pub sync_id: String,
    pub discovered_at: String,
    pub data: pb::Resource,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EntitlementRow {
    pub rowid: i64,
    pub resource_type_id: String,
    pub resource_id: String,
    pub external_id: String,
    pub sync_id: String,
    pub discovered_at: String,
    pub data: pb::Entitlement,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GrantRow {
    pub rowid: i64,
    pub resource_type_id: String,
    pub resource_id: String,
    pub entitlement_id: String,
    pub principal_resource_type_id: String,
    pub principal_resource_id: String,
    pub external_id: String,
    /// `None` when the column does not exist (old files) or is NULL.
    pub expansion: Option<Vec<u8>>,
    /// `None` when the column does not exist (old files).
    pub needs_expansion: Option<i64>,
    pub sync_id: String,
    pub discovered_at: String,
    pub data: pb::Grant,
}

/// The zstd frame header fields a Go reader cares about.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameInfo {
    pub window_size: u64,
    pub single_segment: bool,
    pub checksum: bool,
    pub has_dictionary: bool,
    pub content_size: Option<u64>,
}

/// A decompressed c1z opened read-only.
pub struct C1zReader {
    pub conn: Connection,
    pub frame: FrameInfo,
    /// The decompressed SQLite bytes' first 100 bytes (the database header).
    pub db_header: Vec<u8>,
    _dir: tempfile::TempDir,
    pub db_path: PathBuf,
}

const MAGIC: &[u8; 5] = b"C1ZF\0";

/// Parses the zstd frame header that follows the c1z magic.
pub fn parse_frame_header(frame: &[u8]) -> FrameInfo {
    assert!(frame.len() >= 6, "zstd frame too short");
    assert_eq!(&frame[..4], &[0x28, 0xB5, 0x2F, 0xFD], "zstd frame magic missing after C1ZF");
    let fhd = frame[4];
    let fcs_flag = fhd >> 6;
    let single_segment = fhd & 0x20 != 0;
    let checksum = fhd & 0x04 != 0;
    let did_flag = fhd & 0x03;
    let mut pos = 5;
    let mut window_size = 0u64;
    if !single_segment {
        let wd = frame[pos];
        pos += 1;
        let exponent = u64::from(wd >> 3);
        let mantissa = u64::from(wd & 7);
        let base = 1u64 << (10 + exponent);
        window_size = base + (base / 8) * mantissa;
    }
    let did_len = [0usize, 1, 2, 4][did_flag as usize];
    pos += did_len;
    let fcs_len = match (fcs_flag, single_segment) {
        (0, false) => 0,
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let content_size = if fcs_len == 0 {
        None
    } else {
        let mut v = 0u64;
        for (i, b) in frame[pos..pos + fcs_len].iter().enumerate() {
            v |= u64::from(*b) << (8 * i);
        }
        if fcs_len == 2 {
            v += 256;
        }
        Some(v)
    };
    if single_segment {
        window_size = content_size.unwrap_or(0);
    }
    FrameInfo { window_size, single_segment, checksum, has_dictionary: did_flag != 0, content_size }
}

/// Checks the Go text layout `YYYY-MM-DD HH:MM:SS[.fraction]` with 1-9 fraction digits, no trailing zero.
pub fn is_go_time_text(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 19 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let base_ok = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b' '
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !base_ok {
        return false;
    }
    if b.len() == 19 {
        return true;
    }
    let frac = &b[19..];
    frac[0] == b'.'
        && (2..=10).contains(&frac.len())
        && frac[1..].iter().all(u8::is_ascii_digit)
        && frac[frac.len() - 1] != b'0'
}

impl C1zReader {
    /// Checks the magic, decompresses into a temp dir and opens the database read-only.
    pub fn open(path: &Path) -> C1zReader {
        let raw = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        assert!(raw.len() > 5, "{} is too short", path.display());
        assert_eq!(&raw[..5], MAGIC, "{} lacks the C1ZF magic", path.display());
        let frame = parse_frame_header(&raw[5..]);
        let mut db = Vec::new();
        zstd::stream::read::Decoder::new(&raw[5..])
            .expect("zstd decoder")
            .read_to_end(&mut db)
            .expect("zstd payload decodes");
        assert!(db.len() >= 100, "decompressed database too short");
        assert_eq!(&db[..16], b"SQLite format 3\0", "payload is not SQLite");
        let dir = tempfile::tempdir().expect("tempdir");
        let db_path = dir.path().join("c1z.db");
        std::fs::write(&db_path, &db).expect("write db");
        let conn =
            Connection::open_with_flags(&db_path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open decompressed db");
        C1zReader { conn, frame, db_header: db[..100].to_vec(), _dir: dir, db_path }
    }

    /// Column names of `table`, in order.
    pub fn columns(&self, table: &str) -> Vec<String> {
        let mut stmt = self.conn.prepare(&format!("PRAGMA table_info({table})")).expect("table_info");
        stmt.query_map([], |r| r.get::<_, String>(1))
            .expect("table_info rows")
            .map(|r| r.expect("column name"))
            .collect()
    }

    /// `(name, type, notnull, default)` for each column of `table`.
    pub fn column_defs(&self, table: &str) -> Vec<(String, String, bool, Option<String>)> {
        let mut stmt = self.conn.prepare(&format!("PRAGMA table_info({table})")).expect("table_info");
        stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)? != 0,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .expect("table_info rows")
        .map(|r| r.expect("column def"))
        .collect()
    }

    pub fn table_names(&self) -> HashSet<String> {
        self.names_of("table")
    }

    pub fn index_names(&self) -> HashSet<String> {
        self.names_of("index")
    }

    fn names_of(&self, kind: &str) -> HashSet<String> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = ?1 AND name NOT LIKE 'sqlite_%'")
            .expect("sqlite_master");
        stmt.query_map([kind], |r| r.get::<_, String>(0))
            .expect("sqlite_master rows")
            .map(|r| r.expect("name"))
            .collect()
    }

    /// `(table, columns joined by ',', unique, partial)` of an index.
    pub fn index_info(&self, name: &str) -> (String, String, bool) {
        let (table, sql): (String, String) = self
            .conn
            .query_row("SELECT tbl_name, sql FROM sqlite_master WHERE type = 'index' AND name = ?1", [name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap_or_else(|e| panic!("index {name}: {e}"));
        let mut stmt = self.conn.prepare(&format!("PRAGMA index_info({name})")).expect("index_info");
        let cols: Vec<String> = stmt
            .query_map([], |r| r.get::<_, Option<String>>(2))
            .expect("index_info rows")
            .map(|r| r.expect("index col").unwrap_or_else(|| "id".to_string()))
            .collect();
        let unique = sql.to_ascii_uppercase().contains("UNIQUE");
        (table, cols.join(","), unique)
    }

    pub fn sync_runs(&self) -> Vec<SyncRun> {
        let cols: HashSet<String> = self.columns("v1_sync_runs").into_iter().collect();
        let opt = |c: &str| {
            if cols.contains(c) {
                c.to_string()
            } else {
                format!("NULL AS {c}")
            }
        };
        let sql = format!(
            "SELECT id, sync_id, started_at, ended_at, sync_token, {}, {}, {}, {}, {}, {}, {}, {}, {} \
             FROM v1_sync_runs ORDER BY id",
            opt("sync_type"),
            opt("parent_sync_id"),
            opt("linked_sync_id"),
            opt("supports_diff"),
            opt("grants_backfilled"),
            opt("stats"),
            opt("ingest_invariant_generation"),
            opt("ingest_invariant_coverage"),
            opt("ingest_invariant_mode"),
        );
        let mut stmt = self.conn.prepare(&sql).expect("sync runs query");
        stmt.query_map([], |r| {
            Ok(SyncRun {
                id: r.get(0)?,
                sync_id: r.get(1)?,
                started_at: r.get(2)?,
                ended_at: r.get(3)?,
                sync_token: r.get(4)?,
                sync_type: r.get(5)?,
                parent_sync_id: r.get(6)?,
                linked_sync_id: r.get(7)?,
                supports_diff: r.get(8)?,
                grants_backfilled: r.get(9)?,
                stats: r.get(10)?,
                ingest_invariant_generation: r.get(11)?,
                ingest_invariant_coverage: r.get(12)?,
                ingest_invariant_mode: r.get(13)?,
            })
        })
        .expect("sync runs")
        .map(|r| r.expect("sync run row"))
        .collect()
    }

    /// The sync a reader shows by default: the newest finished `full` sync (any type when the file has no
    /// `sync_type` column), by `ended_at` then `sync_id`.
    pub fn default_sync_id(&self) -> String {
        let mut finished: Vec<SyncRun> = self
            .sync_runs()
            .into_iter()
            .filter(|r| r.ended_at.is_some())
            .filter(|r| r.sync_type.as_deref().unwrap_or("full") == "full")
            .collect();
        finished.sort_by(|a, b| (&a.ended_at, &a.sync_id).cmp(&(&b.ended_at, &b.sync_id)));
        finished.pop().expect("no finished full sync").sync_id
    }

    pub fn resource_types(&self, sync_id: &str) -> Vec<ResourceTypeRow> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, external_id, sync_id, discovered_at, data FROM v1_resource_types \
                 WHERE sync_id = ?1 ORDER BY id",
            )
            .expect("resource types query");
        stmt.query_map([sync_id], |r| {
            Ok(ResourceTypeRow {
                rowid: r.get(0)?,
                external_id: r.get(1)?,
                sync_id: r.get(2)?,
                discovered_at: r.get(3)?,
                data: decode(&r.get::<_, Vec<u8>>(4)?),
            })
        })
        .expect("resource types")
        .map(|r| r.expect("resource type row"))
        .collect()
    }

    pub fn resources(&self, sync_id: &str) -> Vec<ResourceRow> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, resource_type_id, external_id, parent_resource_type_id, parent_resource_id, \
                 sync_id, discovered_at, data FROM v1_resources WHERE sync_id = ?1 ORDER BY id",
            )
            .expect("resources query");
        stmt.query_map([sync_id], |r| {
            Ok(ResourceRow {
                rowid: r.get(0)?,
                resource_type_id: r.get(1)?,
                external_id: r.get(2)?,
                parent_resource_type_id: r.get(3)?,
                parent_resource_id: r.get(4)?,
                sync_id: r.get(5)?,
                discovered_at: r.get(6)?,
                data: decode(&r.get::<_, Vec<u8>>(7)?),
            })
        })
        .expect("resources")
        .map(|r| r.expect("resource row"))
        .collect()
    }

    pub fn entitlements(&self, sync_id: &str) -> Vec<EntitlementRow> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, resource_type_id, resource_id, external_id, sync_id, discovered_at, data \
                 FROM v1_entitlements WHERE sync_id = ?1 ORDER BY id",
            )
            .expect("entitlements query");
        stmt.query_map([sync_id], |r| {
            Ok(EntitlementRow {
                rowid: r.get(0)?,
                resource_type_id: r.get(1)?,
                resource_id: r.get(2)?,
                external_id: r.get(3)?,
                sync_id: r.get(4)?,
                discovered_at: r.get(5)?,
                data: decode(&r.get::<_, Vec<u8>>(6)?),
            })
        })
        .expect("entitlements")
        .map(|r| r.expect("entitlement row"))
        .collect()
    }

    pub fn grants(&self, sync_id: &str) -> Vec<GrantRow> {
        let cols: HashSet<String> = self.columns("v1_grants").into_iter().collect();
        let expansion = if cols.contains("expansion") { "expansion" } else { "NULL" };
        let needs = if cols.contains("needs_expansion") { "needs_expansion" } else { "NULL" };
        let sql = format!(
            "SELECT id, resource_type_id, resource_id, entitlement_id, principal_resource_type_id, \
             principal_resource_id, external_id, {expansion}, {needs}, sync_id, discovered_at, data \
             FROM v1_grants WHERE sync_id = ?1 ORDER BY id"
        );
        let mut stmt = self.conn.prepare(&sql).expect("grants query");
        stmt.query_map([sync_id], |r| {
            Ok(GrantRow {
                rowid: r.get(0)?,
                resource_type_id: r.get(1)?,
                resource_id: r.get(2)?,
                entitlement_id: r.get(3)?,
                principal_resource_type_id: r.get(4)?,
                principal_resource_id: r.get(5)?,
                external_id: r.get(6)?,
                expansion: r.get(7)?,
                needs_expansion: r.get(8)?,
                sync_id: r.get(9)?,
                discovered_at: r.get(10)?,
                data: decode(&r.get::<_, Vec<u8>>(11)?),
            })
        })
        .expect("grants")
        .map(|r| r.expect("grant row"))
        .collect()
    }

    /// Row counts of `table` per sync id.
    pub fn counts_by_sync(&self, table: &str) -> BTreeMap<String, i64> {
        let mut stmt =
            self.conn.prepare(&format!("SELECT sync_id, count(*) FROM {table} GROUP BY sync_id")).expect("count query");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("counts").map(|r| r.expect("count row")).collect()
    }

    /// Asserts that every table and index name of the superset schema exists, on the right table and columns.
    pub fn check_superset_schema(&self) {
        let tables = self.table_names();
        for t in SPEC_TABLES {
            assert!(tables.contains(*t), "table {t} missing");
        }
        let indexes = self.index_names();
        for (name, table, cols) in SPEC_INDEXES {
            assert!(indexes.contains(*name), "index {name} missing");
            let (t, c, _) = self.index_info(name);
            assert_eq!((t.as_str(), c.as_str()), (*table, *cols), "index {name} covers the wrong columns");
        }
        for name in [
            "idx_resource_types_external_sync_v1",
            "idx_resources_parent_resource_id_v1",
            "idx_entitlements_external_sync_v1",
            "idx_sync_runs_sync_id_v1",
            "idx_grants_external_sync_v1",
            "idx_assets_external_sync_v1",
            "idx_session_store_sync_key_v1",
        ] {
            assert!(self.index_info(name).2, "index {name} must be unique");
        }
    }

    /// Asserts the rollback-journal header bytes (18/19 = 1/1, i.e. not WAL).
    pub fn check_journal_header(&self) {
        assert_eq!(
            (self.db_header[18], self.db_header[19]),
            (1, 1),
            "database header bytes 18/19 must be 1/1 (rollback journal)"
        );
    }

    /// Asserts data integrity of one sync: blobs decode and agree with the denormalised columns, timestamps
    /// are Go-layout text, and every reference (type, resource, entitlement, principal) exists in the sync.
    pub fn check_data_integrity(&self, sync_id: &str) {
        let runs = self.sync_runs();
        let run = runs
            .iter()
            .find(|r| r.sync_id == sync_id)
            .unwrap_or_else(|| panic!("sync {sync_id} has no v1_sync_runs row"));
        assert!(is_go_time_text(&run.started_at), "started_at {:?}", run.started_at);
        if let Some(end) = &run.ended_at {
            assert!(is_go_time_text(end), "ended_at {end:?}");
            assert!(run.started_at <= *end, "sync {sync_id} ends before it starts");
        }
        for table in ["v1_resource_types", "v1_resources", "v1_entitlements", "v1_grants"] {
            let bad: i64 = self
                .conn
                .query_row(
                    &format!("SELECT count(*) FROM {table} WHERE sync_id = ?1 AND typeof(discovered_at) <> 'text'"),
                    [sync_id],
                    |r| r.get(0),
                )
                .expect("typeof query");
            assert_eq!(bad, 0, "{table}.discovered_at must be TEXT");
        }

        let types: HashMap<String, ResourceTypeRow> =
            self.resource_types(sync_id).into_iter().map(|r| (r.external_id.clone(), r)).collect();
        for (ext, row) in &types {
            assert_eq!(*ext, row.data.id, "resource type row/blob id disagree");
            assert!(is_go_time_text(&row.discovered_at), "{:?}", row.discovered_at);
        }

        let mut resources: HashSet<String> = HashSet::new();
        for row in self.resources(sync_id) {
            let id = row.data.id.as_ref().expect("resource blob has an id");
            assert_eq!(row.external_id, format!("{}:{}", id.resource_type, id.resource));
            assert_eq!(row.resource_type_id, id.resource_type);
            match &row.data.parent_resource_id {
                Some(p) => {
                    assert_eq!(row.parent_resource_type_id.as_deref(), Some(p.resource_type.as_str()));
                    assert_eq!(row.parent_resource_id.as_deref(), Some(p.resource.as_str()));
                }
                None => {
                    assert_eq!(row.parent_resource_type_id, None, "{}", row.external_id);
                    assert_eq!(row.parent_resource_id, None, "{}", row.external_id);
                }
            }
            assert!(
                types.contains_key(&row.resource_type_id),
                "resource {} has unknown type {}",
                row.external_id,
                row.resource_type_id
            );
            assert!(is_go_time_text(&row.discovered_at), "{:?}", row.discovered_at);
            assert!(resources.insert(row.external_id.clone()), "duplicate {}", row.external_id);
        }

        let mut entitlements: HashSet<String> = HashSet::new();
        for row in self.entitlements(sync_id) {
            assert_eq!(row.external_id, row.data.id);
            let rid =
                row.data.resource.as_ref().and_then(|r| r.id.as_ref()).expect("entitlement blob has a resource id");
            assert_eq!(
                (row.resource_type_id.as_str(), row.resource_id.as_str()),
                (rid.resource_type.as_str(), rid.resource.as_str())
            );
            let res_key = format!("{}:{}", row.resource_type_id, row.resource_id);
            assert!(resources.contains(&res_key), "entitlement {} has no resource {res_key}", row.external_id);
            assert!(is_go_time_text(&row.discovered_at), "{:?}", row.discovered_at);
            assert!(entitlements.insert(row.external_id.clone()), "duplicate {}", row.external_id);
        }

        let mut grants: HashSet<String> = HashSet::new();
        for row in self.grants(sync_id) {
            assert_eq!(row.external_id, row.data.id);
            let ent = row.data.entitlement.as_ref().expect("grant blob has an entitlement");
            assert_eq!(row.entitlement_id, ent.id);
            let rid = ent.resource.as_ref().and_then(|r| r.id.as_ref()).expect("grant entitlement has a resource id");
            assert_eq!(
                (row.resource_type_id.as_str(), row.resource_id.as_str()),
                (rid.resource_type.as_str(), rid.resource.as_str())
            );
            let pid = row.data.principal.as_ref().and_then(|p| p.id.as_ref()).expect("grant blob has a principal id");
            assert_eq!(
                (row.principal_resource_type_id.as_str(), row.principal_resource_id.as_str()),
                (pid.resource_type.as_str(), pid.resource.as_str())
            );
            assert!(entitlements.contains(&row.entitlement_id), "grant {} has no entitlement", row.external_id);
            let principal = format!("{}:{}", pid.resource_type, pid.resource);
            assert!(resources.contains(&principal), "grant {} has no principal {principal}", row.external_id);
            let res_key = format!("{}:{}", rid.resource_type, rid.resource);
            assert!(resources.contains(&res_key), "grant {} has no resource {res_key}", row.external_id);
            assert!(types.contains_key(&pid.resource_type), "grant {} principal type missing", row.external_id);
            assert!(is_go_time_text(&row.discovered_at), "{:?}", row.discovered_at);
            if let Some(n) = row.needs_expansion {
                assert_eq!(n != 0, row.expansion.is_some(), "needs_expansion disagrees with expansion");
            }
            assert!(grants.insert(row.external_id.clone()), "duplicate {}", row.external_id);
        }
    }

    /// Everything: superset schema, journal header, and data integrity of `sync_id`.
    pub fn check_integrity(&self, sync_id: &str) {
        self.check_superset_schema();
        self.check_journal_header();
        self.check_data_integrity(sync_id);
    }
}

fn decode<M: Message + Default>(bytes: &[u8]) -> M {
    M::decode(bytes).unwrap_or_else(|e| panic!("data blob does not decode: {e}"))
}
