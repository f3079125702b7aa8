//! An estimate of the c1z file the public Go connector (baton-torq on baton-sdk v0.1.9) writes for a workspace,
//! so the benchmark can compare file sizes on the *same* workspace. The Go toolchain is not available here, so
//! the Go connector cannot be run; instead this module writes the rows that connector writes, as read off its
//! reference output (`tests/fixtures/reference-sync.c1z`, checked by `tests/go_layout_estimate.rs`):
//!
//! - the v0.1.9 schema (5-column sync runs, grants without expansion columns, three grant indexes), 4 KiB pages,
//!   every index maintained while inserting (Go inserts row by row with `ON CONFLICT ... DO UPDATE`);
//! - users of the non-SSO list, then of the SSO list, then the roles; entitlements and grants in reverse role
//!   order; a nanosecond `discovered_at` per row;
//! - user blobs with a `first_name` = email profile key and no timestamps, role resources embedded in every
//!   entitlement and grant, an empty `ETag` annotation on the grant's role;
//! - compression as klauspost/compress `zstd.NewWriter` defaults do it: the "default" level (libzstd level 3
//!   is its equivalent), an 8 MiB window, a checksum, one frame.
//!
//! Not part of the connector: only the benchmark (`benches/sync`) and its check use it. It lives in the library
//! so both reach it as a module rather than by including each other's source files.

use std::io::Write;
use std::path::Path;

use super::Workspace;
use crate::c1z::time::format_sqlite_time;
use crate::proto::connector_v2::{
    resource_type, user_trait, Entitlement, Grant, Resource, ResourceId, ResourceType, RoleTrait,
    SkipEntitlementsAndGrants, UserTrait,
};
use prost::Message;
use prost_types::{value::Kind, Any, Struct, Value};
use rusqlite::{params, Connection};

/// A user as the Go connector sees it.
pub struct GoUser {
    pub(crate) id: String,
    pub(crate) email: String,
    pub(crate) role_id: String,
    pub(crate) verified: bool,
    pub(crate) sso: bool,
}

/// A role as the Go connector sees it.
pub struct GoRole {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
}

/// The v0.1.9 tables and indexes, in the order the SDK creates them. Its grants' (resource type, resource)
/// index reuses a name that already exists, so it is never created; it is left out here.
const SCHEMA_V019: &str = "
CREATE TABLE v1_resource_types (id integer primary key, external_id text not null, data blob not null,
    sync_id text not null, discovered_at datetime not null);
CREATE UNIQUE INDEX idx_resource_types_external_sync_v1 on v1_resource_types (external_id, sync_id);
CREATE TABLE v1_resources (id integer primary key, resource_type_id text not null, external_id text not null,
    parent_resource_type_id text, parent_resource_id text, data blob not null, sync_id text not null,
    discovered_at datetime not null);
CREATE INDEX idx_resources_resource_type_id_v1 on v1_resources (resource_type_id);
CREATE INDEX idx_resources_external_sync_v1 on v1_resources (parent_resource_type_id, parent_resource_id);
CREATE UNIQUE INDEX idx_resources_parent_resource_id_v1 on v1_resources (external_id, sync_id);
CREATE TABLE v1_entitlements (id integer primary key, resource_type_id text not null, resource_id text not null,
    external_id text not null, data blob not null, sync_id text not null, discovered_at datetime not null);
CREATE INDEX idx_entitlements_resource_id_v1 on v1_entitlements (resource_type_id, resource_id);
CREATE UNIQUE INDEX idx_entitlements_external_sync_v1 on v1_entitlements (external_id, sync_id);
CREATE TABLE v1_grants (id integer primary key, resource_type_id text not null, resource_id text not null,
    entitlement_id text not null, principal_resource_type_id text not null, principal_resource_id text not null,
    external_id text not null, data blob not null, sync_id text not null, discovered_at datetime not null);
CREATE INDEX idx_grants_entitlement_id_v1 on v1_grants (entitlement_id);
CREATE INDEX idx_grants_principal_id_v1 on v1_grants (principal_resource_type_id, principal_resource_id);
CREATE UNIQUE INDEX idx_grants_external_sync_v1 on v1_grants (external_id, sync_id);
CREATE TABLE v1_sync_runs (id integer primary key, sync_id text not null, started_at datetime not null,
    ended_at datetime, sync_token text not null);
CREATE UNIQUE INDEX idx_sync_runs_sync_id_v1 on v1_sync_runs (sync_id);
CREATE TABLE v1_assets (id integer primary key, external_id text not null, content_type text not null,
    data blob not null, sync_id text not null, discovered_at datetime not null);
CREATE UNIQUE INDEX idx_assets_external_sync_v1 on v1_assets (external_id, sync_id);
";

/// The Go syncer's final checkpoint, stored as the sync token.
const SYNC_TOKEN: &str = r#"{"actions":[],"current_action":{"operation":"grant-expansion"},"needs_expansion":false,"entitlement_graph":null}"#;

fn any<M: Message>(name: &str, msg: &M) -> Any {
    Any { type_url: format!("type.googleapis.com/c1.connector.v2.{name}"), value: msg.encode_to_vec() }
}

fn text(s: &str) -> Value {
    Value { kind: Some(Kind::StringValue(s.to_string())) }
}

fn rid(resource_type: &str, id: &str) -> ResourceId {
    ResourceId { resource_type: resource_type.into(), resource: id.into(), ..Default::default() }
}

fn now() -> String {
    format_sqlite_time(&chrono::Local::now())
}

/// The `user` resource type as the Go connector declares it.
pub(crate) fn user_type() -> ResourceType {
    ResourceType {
        id: "user".into(),
        display_name: "User".into(),
        traits: vec![resource_type::Trait::User as i32],
        annotations: vec![any("SkipEntitlementsAndGrants", &SkipEntitlementsAndGrants {})],
        ..Default::default()
    }
}

/// The `role` resource type as the Go connector declares it.
pub(crate) fn role_type() -> ResourceType {
    ResourceType {
        id: "role".into(),
        display_name: "Role".into(),
        traits: vec![resource_type::Trait::Role as i32],
        ..Default::default()
    }
}

/// A user resource as the Go connector builds it.
pub(crate) fn user_resource(u: &GoUser) -> Resource {
    let profile = Struct {
        fields: [
            ("first_name", text(&u.email)),
            ("login", text(&u.email)),
            ("sso_provisioned", Value { kind: Some(Kind::BoolValue(u.sso)) }),
            ("user_id", text(&u.id)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    };
    let status = if u.verified { user_trait::status::Status::Enabled } else { user_trait::status::Status::Unspecified };
    let user_trait = UserTrait {
        emails: vec![user_trait::Email { address: u.email.clone(), is_primary: true }],
        status: Some(user_trait::Status { status: status as i32, details: String::new() }),
        profile: Some(profile),
        account_type: user_trait::AccountType::Human as i32,
        ..Default::default()
    };
    Resource {
        id: Some(rid("user", &u.id)),
        display_name: u.email.clone(),
        annotations: vec![any("UserTrait", &user_trait)],
        ..Default::default()
    }
}

/// A role resource as the Go connector builds it.
pub(crate) fn role_resource(r: &GoRole) -> Resource {
    let profile = Struct {
        fields: [("role_description", text(&r.description)), ("role_id", text(&r.id)), ("role_name", text(&r.name))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    };
    Resource {
        id: Some(rid("role", &r.id)),
        display_name: r.name.clone(),
        annotations: vec![any("RoleTrait", &RoleTrait { profile: Some(profile) })],
        ..Default::default()
    }
}

/// The role's `member` entitlement as the Go connector builds it.
pub(crate) fn entitlement(r: &GoRole) -> Entitlement {
    Entitlement {
        resource: Some(role_resource(r)),
        id: format!("role:{}:member", r.id),
        display_name: format!("{} Role member", r.name),
        description: format!("Member of {} Torq role", r.name),
        grantable_to: vec![user_type()],
        purpose: 1,
        slug: "member".into(),
        ..Default::default()
    }
}

/// A grant as the Go connector and its syncer write it (the role resource with an empty `ETag` annotation).
pub(crate) fn grant(r: &GoRole, u: &GoUser) -> Grant {
    let mut role = role_resource(r);
    role.annotations.push(Any { type_url: "type.googleapis.com/c1.connector.v2.ETag".into(), value: Vec::new() });
    let entitlement_id = format!("role:{}:member", r.id);
    Grant {
        id: format!("{entitlement_id}:user:{}", u.id),
        entitlement: Some(Entitlement { resource: Some(role), id: entitlement_id, ..Default::default() }),
        principal: Some(Resource { id: Some(rid("user", &u.id)), ..Default::default() }),
        ..Default::default()
    }
}

/// Users (in the Go connector's order: the non-SSO list, then the SSO list) and roles of a simulated workspace.
pub fn workspace(ws: &Workspace) -> (Vec<GoUser>, Vec<GoRole>) {
    let users = ws
        .users(false)
        .chain(ws.users(true))
        .map(|u| GoUser {
            verified: u.status == "VERIFIED",
            sso: u.sso_provision,
            id: u.id,
            email: u.email,
            role_id: u.role_id,
        })
        .collect();
    let roles = ws.roles().into_iter().map(|r| GoRole { id: r.id, name: r.name, description: r.description }).collect();
    (users, roles)
}

/// Size of the c1z the Go connector would write for `ws`, using `dir` for the database.
pub fn estimate(ws: &Workspace, dir: &Path) -> Result<u64, String> {
    let (users, roles) = workspace(ws);
    let db = dir.join(format!("go-layout-{}-{}.db", users.len(), roles.len()));
    let _ = std::fs::remove_file(&db);
    write_database(&db, &users, &roles).map_err(|e| format!("go layout: {e}"))?;
    let size = compressed_size(&db).map_err(|e| format!("go layout: {e}"))?;
    let _ = std::fs::remove_file(&db);
    Ok(size)
}

/// Writes the database the Go connector would write for `users` (in API order: non-SSO list, then SSO list)
/// and `roles` (in API order) to `path`.
pub fn write_database(path: &Path, users: &[GoUser], roles: &[GoRole]) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    conn.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF;")?;
    conn.execute_batch(SCHEMA_V019)?;
    // A KSUID-shaped id; its value does not matter for the size.
    let sync_id = "3Mkb90BZDVlL0gnYylMrjQ4MYJp";
    conn.execute_batch("BEGIN")?;
    conn.execute(
        "INSERT INTO v1_sync_runs (sync_id, started_at, ended_at, sync_token) VALUES (?1, ?2, NULL, '')",
        params![sync_id, now()],
    )?;
    let mut put_type = conn.prepare(
        "INSERT INTO v1_resource_types (external_id, data, sync_id, discovered_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (external_id, sync_id) DO UPDATE SET data = excluded.data",
    )?;
    for rt in [user_type(), role_type()] {
        put_type.execute(params![rt.id, rt.encode_to_vec(), sync_id, now()])?;
    }
    let mut put_resource = conn.prepare(
        "INSERT INTO v1_resources (resource_type_id, external_id, parent_resource_type_id, parent_resource_id, \
         data, sync_id, discovered_at) VALUES (?1, ?2, NULL, NULL, ?3, ?4, ?5) \
         ON CONFLICT (external_id, sync_id) DO UPDATE SET data = excluded.data",
    )?;
    for u in users {
        put_resource.execute(params![
            "user",
            format!("user:{}", u.id),
            user_resource(u).encode_to_vec(),
            sync_id,
            now()
        ])?;
    }
    for r in roles {
        put_resource.execute(params![
            "role",
            format!("role:{}", r.id),
            role_resource(r).encode_to_vec(),
            sync_id,
            now()
        ])?;
    }
    let mut put_entitlement = conn.prepare(
        "INSERT INTO v1_entitlements (resource_type_id, resource_id, external_id, data, sync_id, discovered_at) \
         VALUES ('role', ?1, ?2, ?3, ?4, ?5) ON CONFLICT (external_id, sync_id) DO UPDATE SET data = excluded.data",
    )?;
    for r in roles.iter().rev() {
        let e = entitlement(r);
        put_entitlement.execute(params![r.id, e.id, e.encode_to_vec(), sync_id, now()])?;
    }
    let mut put_grant = conn.prepare(
        "INSERT INTO v1_grants (resource_type_id, resource_id, entitlement_id, principal_resource_type_id, \
         principal_resource_id, external_id, data, sync_id, discovered_at) \
         VALUES ('role', ?1, ?2, 'user', ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (external_id, sync_id) DO UPDATE SET data = excluded.data",
    )?;
    for r in roles.iter().rev() {
        for u in users.iter().filter(|u| u.role_id == r.id) {
            let g = grant(r, u);
            let entitlement_id = format!("role:{}:member", r.id);
            put_grant.execute(params![r.id, entitlement_id, u.id, g.id, g.encode_to_vec(), sync_id, now()])?;
        }
    }
    conn.execute(
        "UPDATE v1_sync_runs SET ended_at = ?1, sync_token = ?2 WHERE sync_id = ?3",
        params![now(), SYNC_TOKEN, sync_id],
    )?;
    drop((put_type, put_resource, put_entitlement, put_grant));
    conn.execute_batch("COMMIT")?;
    conn.close().map_err(|(_, e)| e)
}

/// Size of the c1z the Go connector would write for the database at `db`: the 5-byte magic plus the database
/// compressed as klauspost's default encoder does (level 3 equivalent, 8 MiB window, checksum).
pub fn compressed_size(db: &Path) -> std::io::Result<u64> {
    let bytes = std::fs::read(db)?;
    let mut out = Vec::with_capacity(bytes.len() / 8);
    out.write_all(b"C1ZF\0")?;
    let mut enc = zstd::stream::write::Encoder::new(&mut out, 3)?;
    enc.window_log(23)?;
    enc.include_checksum(true)?;
    enc.include_contentsize(false)?;
    enc.write_all(&bytes)?;
    enc.finish()?;
    Ok(out.len() as u64)
}
