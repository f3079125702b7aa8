//! The SQLite schema of a v1 c1z: the Baton superset (baton-sdk v0.25.0) tables and indexes, with index names
//! spelled exactly as the SDK spells them (including the two swapped `v1_resources` names). Every work
//! database is created by this code; nothing of a previous file's schema is reused.
//!
//! **Owns:** DDL text and the list of which indexes are built live and which are deferred until the sync is
//! finished (built once in bulk, from sorted keys).
//!
//! **Must not:** rename anything, use STRICT / WITHOUT ROWID / generated columns (SQLite 3.41 readers), or
//! declare timestamp columns as anything but `datetime` (Go drivers only parse text for datetime columns).

use rusqlite::Connection;

use super::C1zError;

/// Tables, created if missing.
pub(crate) const TABLES: &[(&str, &str)] = &[
    (
        "v1_resource_types",
        "CREATE TABLE IF NOT EXISTS v1_resource_types (
    id integer primary key,
    external_id text not null,
    data blob not null,
    sync_id text not null,
    discovered_at datetime not null
)",
    ),
    (
        "v1_resources",
        "CREATE TABLE IF NOT EXISTS v1_resources (
    id integer primary key,
    resource_type_id text not null,
    external_id text not null,
    parent_resource_type_id text,
    parent_resource_id text,
    data blob not null,
    sync_id text not null,
    discovered_at datetime not null
)",
    ),
    (
        "v1_entitlements",
        "CREATE TABLE IF NOT EXISTS v1_entitlements (
    id integer primary key,
    resource_type_id text not null,
    resource_id text not null,
    external_id text not null,
    data blob not null,
    sync_id text not null,
    discovered_at datetime not null
)",
    ),
    (
        "v1_sync_runs",
        "CREATE TABLE IF NOT EXISTS v1_sync_runs (
    id integer primary key,
    sync_id text not null,
    started_at datetime not null,
    ended_at datetime,
    sync_token text not null,
    sync_type text not null default 'full',
    parent_sync_id text not null default '',
    linked_sync_id text not null default '',
    supports_diff integer not null default 0,
    grants_backfilled integer not null default 0,
    stats text,
    ingest_invariant_generation text not null default '',
    ingest_invariant_coverage text not null default '',
    ingest_invariant_mode text not null default ''
)",
    ),
    (
        "v1_grants",
        "CREATE TABLE IF NOT EXISTS v1_grants (
    id integer primary key,
    resource_type_id text not null,
    resource_id text not null,
    entitlement_id text not null,
    principal_resource_type_id text not null,
    principal_resource_id text not null,
    external_id text not null,
    expansion blob,
    needs_expansion integer not null default 0,
    data blob not null,
    sync_id text not null,
    discovered_at datetime not null
)",
    ),
    (
        "v1_assets",
        "CREATE TABLE IF NOT EXISTS v1_assets (
    id integer primary key,
    external_id text not null,
    content_type text not null,
    data blob not null,
    sync_id text not null,
    discovered_at datetime not null
)",
    ),
    (
        "v1_connector_sessions",
        "CREATE TABLE IF NOT EXISTS v1_connector_sessions (
    id integer primary key,
    sync_id text not null,
    key TEXT not null,
    value BLOB not null
)",
    ),
];

/// Tables whose rows carry a `sync_id`: the rows of one sync are in all of them.
pub(crate) const SYNC_TABLES: &[&str] = &[
    "v1_resource_types",
    "v1_resources",
    "v1_entitlements",
    "v1_grants",
    "v1_assets",
    "v1_connector_sessions",
    "v1_sync_runs",
];

/// One index of the superset schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexDef {
    /// The name, for `DROP INDEX` before a bulk insert.
    pub(crate) name: &'static str,
    /// Full `CREATE [UNIQUE] INDEX IF NOT EXISTS ...` statement.
    pub(crate) ddl: &'static str,
}

/// Indexes kept live while writing: unique ones that `INSERT OR IGNORE` relies on for dedupe (the tables behind
/// them hold a handful of rows per sync), and the two partial grant indexes, which hold no row this connector
/// writes (it never expands grants): live they cost one predicate check per grant, built later one scan of all
/// grants each.
pub(crate) const LIVE_INDEXES: &[IndexDef] = &[
    IndexDef {
        name: "idx_resource_types_external_sync_v1",
        ddl: "CREATE UNIQUE INDEX IF NOT EXISTS idx_resource_types_external_sync_v1 ON v1_resource_types (external_id, sync_id)",
    },
    IndexDef {
        name: "idx_entitlements_external_sync_v1",
        ddl: "CREATE UNIQUE INDEX IF NOT EXISTS idx_entitlements_external_sync_v1 ON v1_entitlements (external_id, sync_id)",
    },
    IndexDef {
        name: "idx_sync_runs_sync_id_v1",
        ddl: "CREATE UNIQUE INDEX IF NOT EXISTS idx_sync_runs_sync_id_v1 ON v1_sync_runs (sync_id)",
    },
    IndexDef {
        name: "idx_assets_external_sync_v1",
        ddl: "CREATE UNIQUE INDEX IF NOT EXISTS idx_assets_external_sync_v1 ON v1_assets (external_id, sync_id)",
    },
    IndexDef {
        name: "idx_session_store_sync_key_v1",
        ddl: "CREATE UNIQUE INDEX IF NOT EXISTS idx_session_store_sync_key_v1 ON v1_connector_sessions (sync_id, key)",
    },
    IndexDef {
        name: "idx_grants_sync_expansion_v1",
        ddl: "CREATE INDEX IF NOT EXISTS idx_grants_sync_expansion_v1 ON v1_grants (sync_id) WHERE expansion IS NOT NULL",
    },
    IndexDef {
        name: "idx_grants_sync_needs_expansion_v1",
        ddl: "CREATE INDEX IF NOT EXISTS idx_grants_sync_needs_expansion_v1 ON v1_grants (sync_id) WHERE needs_expansion = 1",
    },
];

/// Indexes dropped while a sync is written and built in bulk (from sorted keys) by [`create_deferred_indexes`]:
/// every non-unique index, plus the unique `(external_id, sync_id)` indexes of `v1_resources`, whose inserts in
/// random key order dominated the write time, and of `v1_grants`, whose live upkeep left half-empty pages with
/// leftovers of page splits in the file (docs/performance.md has the numbers). The writer dedupes resources and grants itself until those indexes exist (see `writer.rs`).
pub(crate) const DEFERRED_INDEXES: &[IndexDef] = &[
    IndexDef {
        // Sic: the SDK gives the unique (external_id, sync_id) index this name.
        name: "idx_resources_parent_resource_id_v1",
        ddl: "CREATE UNIQUE INDEX IF NOT EXISTS idx_resources_parent_resource_id_v1 ON v1_resources (external_id, sync_id)",
    },
    IndexDef {
        name: "idx_grants_external_sync_v1",
        ddl: "CREATE UNIQUE INDEX IF NOT EXISTS idx_grants_external_sync_v1 ON v1_grants (external_id, sync_id)",
    },
    IndexDef {
        name: "idx_resources_resource_type_id_v1",
        ddl: "CREATE INDEX IF NOT EXISTS idx_resources_resource_type_id_v1 ON v1_resources (resource_type_id)",
    },
    IndexDef {
        // Sic: the SDK gives the parent-columns index this name.
        name: "idx_resources_external_sync_v1",
        ddl: "CREATE INDEX IF NOT EXISTS idx_resources_external_sync_v1 ON v1_resources (parent_resource_type_id, parent_resource_id)",
    },
    IndexDef {
        name: "idx_entitlements_resource_id_v1",
        ddl: "CREATE INDEX IF NOT EXISTS idx_entitlements_resource_id_v1 ON v1_entitlements (resource_type_id, resource_id)",
    },
    IndexDef {
        name: "idx_grants_resource_type_id_resource_id_v1",
        ddl: "CREATE INDEX IF NOT EXISTS idx_grants_resource_type_id_resource_id_v1 ON v1_grants (resource_type_id, resource_id)",
    },
    IndexDef {
        name: "idx_grants_principal_id_v1",
        ddl: "CREATE INDEX IF NOT EXISTS idx_grants_principal_id_v1 ON v1_grants (principal_resource_type_id, principal_resource_id)",
    },
    IndexDef {
        name: "idx_grants_entitlement_id_principal_id_v1",
        ddl: "CREATE INDEX IF NOT EXISTS idx_grants_entitlement_id_principal_id_v1 ON v1_grants (entitlement_id, principal_resource_type_id, principal_resource_id)",
    },
    IndexDef {
        name: "idx_grants_entitlement_sync_grant_v1",
        ddl: "CREATE INDEX IF NOT EXISTS idx_grants_entitlement_sync_grant_v1 ON v1_grants (entitlement_id, sync_id, id)",
    },
];

/// Creates every table and live index in a new work database. The work database is always new: a file written
/// by an older SDK gets the superset schema because its rows are copied into these tables (`carry.rs`).
pub(crate) fn apply(conn: &Connection) -> Result<(), C1zError> {
    for (_, ddl) in TABLES {
        conn.execute_batch(ddl).map_err(C1zError::sql("create the c1z tables"))?;
    }
    for idx in LIVE_INDEXES {
        conn.execute_batch(idx.ddl).map_err(C1zError::sql("create the c1z indexes"))?;
    }
    Ok(())
}

/// Creates the unique ones of the deferred indexes (for copying the previous sync with `INSERT OR IGNORE`).
pub(crate) fn create_deferred_unique_indexes(conn: &Connection) -> Result<(), C1zError> {
    for idx in DEFERRED_INDEXES.iter().filter(|i| i.ddl.starts_with("CREATE UNIQUE")) {
        conn.execute_batch(idx.ddl).map_err(C1zError::sql("create the c1z indexes"))?;
    }
    Ok(())
}

/// Drops the deferred indexes so bulk inserts do not maintain them row by row.
pub(crate) fn drop_deferred_indexes(conn: &Connection) -> Result<(), C1zError> {
    for idx in DEFERRED_INDEXES {
        conn.execute_batch(&format!("DROP INDEX IF EXISTS {}", idx.name))
            .map_err(C1zError::sql("drop an index before bulk insert"))?;
    }
    Ok(())
}

/// Builds the deferred indexes in bulk (no-op for those that exist).
pub(crate) fn create_deferred_indexes(conn: &Connection) -> Result<(), C1zError> {
    for idx in DEFERRED_INDEXES {
        let started = std::time::Instant::now();
        conn.execute_batch(idx.ddl).map_err(C1zError::sql("build the c1z indexes"))?;
        tracing::trace!(index = idx.name, elapsed_ms = started.elapsed().as_millis() as u64, "c1z index built");
    }
    Ok(())
}
