//! Behaviour of `baton_torq::c1z::C1zWriter`, checked through the independent reader in `tests/common`.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use baton_torq::c1z::{self, C1zError, C1zWriter, Put, WriterOptions};
use baton_torq::proto::connector_v2 as v2;
use common::c1z_reader::{self as reader, pb, C1zReader};
use prost::Message;

const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/reference-sync.c1z");
const REFERENCE_SYNC_ID: &str = "3Mkb90BZDVlL0gnYylMrjQ4MYJp";

// Builders of the rows a sync writes, from the crate's proto types.

fn any<M: Message>(name: &str, m: &M) -> prost_types::Any {
    prost_types::Any { type_url: format!("type.googleapis.com/c1.connector.v2.{name}"), value: m.encode_to_vec() }
}

fn sval(s: &str) -> prost_types::Value {
    prost_types::Value { kind: Some(prost_types::value::Kind::StringValue(s.to_string())) }
}

fn user_type() -> v2::ResourceType {
    v2::ResourceType {
        id: "user".into(),
        display_name: "User".into(),
        traits: vec![v2::resource_type::Trait::User as i32],
        annotations: vec![any("SkipEntitlementsAndGrants", &v2::SkipEntitlementsAndGrants {})],
        ..Default::default()
    }
}

fn role_type() -> v2::ResourceType {
    v2::ResourceType {
        id: "role".into(),
        display_name: "Role".into(),
        traits: vec![v2::resource_type::Trait::Role as i32],
        ..Default::default()
    }
}

fn user(uid: &str) -> v2::Resource {
    let email = format!("{uid}@example.com");
    let mut fields = BTreeMap::new();
    fields.insert("user_id".to_string(), sval(uid));
    fields.insert("login".to_string(), sval(&email));
    let trait_ = v2::UserTrait {
        emails: vec![v2::user_trait::Email { address: email.clone(), is_primary: true }],
        status: Some(v2::user_trait::Status {
            status: v2::user_trait::status::Status::Enabled as i32,
            details: "VERIFIED".into(),
        }),
        profile: Some(prost_types::Struct { fields }),
        account_type: v2::user_trait::AccountType::Human as i32,
        login: email.clone(),
        created_at: Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 0 }),
        ..Default::default()
    };
    v2::Resource {
        id: Some(v2::ResourceId { resource_type: "user".into(), resource: uid.into(), baton_resource: false }),
        display_name: email,
        annotations: vec![any("UserTrait", &trait_)],
        ..Default::default()
    }
}

fn role(rid: &str) -> v2::Resource {
    let mut fields = BTreeMap::new();
    fields.insert("role_id".to_string(), sval(rid));
    fields.insert("role_name".to_string(), sval(&format!("Role {rid}")));
    v2::Resource {
        id: Some(v2::ResourceId { resource_type: "role".into(), resource: rid.into(), baton_resource: false }),
        display_name: format!("Role {rid}"),
        annotations: vec![any("RoleTrait", &v2::RoleTrait { profile: Some(prost_types::Struct { fields }) })],
        ..Default::default()
    }
}

fn entitlement(rid: &str) -> v2::Entitlement {
    v2::Entitlement {
        resource: Some(role(rid)),
        id: format!("role:{rid}:member"),
        display_name: format!("Role {rid} Role member"),
        description: format!("Member of Role {rid} Torq role"),
        grantable_to: vec![user_type()],
        purpose: v2::entitlement::PurposeValue::Assignment as i32,
        slug: "member".into(),
        ..Default::default()
    }
}

fn grant(rid: &str, uid: &str) -> v2::Grant {
    v2::Grant {
        entitlement: Some(v2::Entitlement {
            resource: Some(role(rid)),
            id: format!("role:{rid}:member"),
            ..Default::default()
        }),
        principal: Some(v2::Resource {
            id: Some(v2::ResourceId { resource_type: "user".into(), resource: uid.into(), baton_resource: false }),
            ..Default::default()
        }),
        id: format!("role:{rid}:member:user:{uid}"),
        ..Default::default()
    }
}

/// Writes a complete small sync: 2 types, `users` users, 2 roles with entitlements, each user in role r1.
fn write_sync(target: &Path, users: &[&str], opts: WriterOptions) -> c1z::FinishedFile {
    let mut w = C1zWriter::create(target, opts).expect("create");
    assert!(w.put_resource_type(&user_type()).unwrap());
    assert!(w.put_resource_type(&role_type()).unwrap());
    for u in users {
        assert!(w.put_resource(&user(u)).unwrap().is_written());
    }
    for r in ["r1", "r2"] {
        assert!(w.put_resource(&role(r)).unwrap().is_written());
        assert!(w.put_entitlement(&entitlement(r)).unwrap());
    }
    for u in users {
        assert!(w.put_grant(&grant("r1", u)).unwrap().is_written());
    }
    w.finish().expect("finish")
}

/// A writer (default options) for `target` holding both resource types, `users` and role `r1` with its
/// entitlement; no grants yet.
fn writer_with_users_and_r1(target: &Path, users: &[&str]) -> C1zWriter {
    let mut w = C1zWriter::create(target, WriterOptions::default()).unwrap();
    w.put_resource_type(&user_type()).unwrap();
    w.put_resource_type(&role_type()).unwrap();
    for u in users {
        w.put_resource(&user(u)).unwrap();
    }
    w.put_resource(&role("r1")).unwrap();
    w.put_entitlement(&entitlement("r1")).unwrap();
    w
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn target_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("sync.c1z")
}

/// Decodes a KSUID string independently: base62 -> 20 bytes; returns the unix timestamp.
fn ksuid_unix_seconds(s: &str) -> i64 {
    const ALPHABET: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    assert_eq!(s.len(), 27, "KSUID {s} must be 27 characters");
    let mut bytes = [0u8; 20];
    for c in s.chars() {
        let mut carry = ALPHABET.find(c).unwrap_or_else(|| panic!("{c} is not base62")) as u32;
        for b in bytes.iter_mut().rev() {
            let v = u32::from(*b) * 62 + carry;
            *b = (v & 0xff) as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0, "KSUID {s} overflows 20 bytes");
    }
    i64::from(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])) + 1_400_000_000
}

#[test]
fn round_trip_through_independent_reader() {
    let dir = tempfile::tempdir().unwrap();
    let target = target_in(&dir);
    let users = ["u1", "u2", "u3"];
    let mut w = writer_with_users_and_r1(&target, &users);
    let sync_id = w.sync_id().to_string();
    assert_eq!(w.previous_sync_id(), None);
    for u in users {
        w.put_grant(&grant("r1", u)).unwrap();
    }
    let counts = w.counts();
    assert_eq!((counts.resource_types, counts.resources, counts.entitlements, counts.grants), (2, 4, 1, 3));
    let done = w.finish().unwrap();
    assert_eq!(done.path, target);
    assert_eq!(done.sync_id, sync_id);
    assert_eq!(done.previous_sync_id, None);
    assert_eq!(done.bytes, std::fs::metadata(&target).unwrap().len());

    let r = C1zReader::open(&target);
    // Container: one frame, checksum, no dictionary, window within the Go v0.1.9 limit, size declared.
    assert!(r.frame.checksum);
    assert!(!r.frame.has_dictionary);
    assert!(r.frame.window_size <= 32 << 20, "window {}", r.frame.window_size);
    let db_len = std::fs::metadata(&r.db_path).unwrap().len();
    assert_eq!(r.frame.content_size, Some(db_len));

    let runs = r.sync_runs();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.sync_id, sync_id);
    assert!(run.ended_at.is_some());
    assert_eq!(run.sync_token, "");
    assert_eq!(run.sync_type.as_deref(), Some("full"));
    assert_eq!(run.parent_sync_id.as_deref(), Some(""));
    assert_eq!(run.linked_sync_id.as_deref(), Some(""));
    assert_eq!(run.supports_diff, Some(1));
    assert_eq!(run.grants_backfilled, Some(1));
    assert_eq!(run.stats, None);
    assert_eq!(run.ingest_invariant_generation.as_deref(), Some(""));
    assert_eq!(run.ingest_invariant_coverage.as_deref(), Some(""));
    assert_eq!(run.ingest_invariant_mode.as_deref(), Some(""));
    assert_eq!(r.default_sync_id(), sync_id);

    r.check_integrity(&sync_id);

    // Rows in insertion order, with blobs equal to the full message encoding.
    let types = r.resource_types(&sync_id);
    assert_eq!(types.iter().map(|t| t.external_id.as_str()).collect::<Vec<_>>(), ["user", "role"]);
    assert_eq!(types[0].data.traits, vec![1]);
    assert_eq!(types[0].data.annotations[0].type_url, pb::SKIP_ENTITLEMENTS_AND_GRANTS_URL);
    let resources = r.resources(&sync_id);
    assert_eq!(
        resources.iter().map(|t| t.external_id.as_str()).collect::<Vec<_>>(),
        ["user:u1", "user:u2", "user:u3", "role:r1"]
    );
    assert_eq!(resources[0].data.encode_to_vec(), user("u1").encode_to_vec());
    let ut: pb::UserTrait = pb::find_annotation(&resources[1].data.annotations, pb::USER_TRAIT_URL).expect("UserTrait");
    assert_eq!(ut.emails[0].address, "u2@example.com");
    assert!(ut.emails[0].is_primary);
    assert_eq!(ut.login, "u2@example.com");
    assert_eq!(ut.status.as_ref().map(|s| s.status), Some(1));
    assert_eq!(ut.account_type, 1);
    assert_eq!(ut.created_at.as_ref().map(|t| t.seconds), Some(1_700_000_000));
    assert_eq!(ut.profile.as_ref().and_then(|p| p.string("user_id")), Some("u2"));
    let rt: pb::RoleTrait = pb::find_annotation(&resources[3].data.annotations, pb::ROLE_TRAIT_URL).expect("RoleTrait");
    assert_eq!(rt.profile.as_ref().and_then(|p| p.string("role_id")), Some("r1"));

    let ents = r.entitlements(&sync_id);
    assert_eq!(ents.len(), 1);
    assert_eq!((ents[0].resource_type_id.as_str(), ents[0].resource_id.as_str()), ("role", "r1"));
    assert_eq!(ents[0].data.slug, "member");
    assert_eq!(ents[0].data.purpose, 1);
    assert_eq!(ents[0].data.grantable_to[0].id, "user");

    let grants = r.grants(&sync_id);
    assert_eq!(grants.len(), 3);
    let g = &grants[2];
    assert_eq!(g.external_id, "role:r1:member:user:u3");
    assert_eq!(g.entitlement_id, "role:r1:member");
    assert_eq!((g.resource_type_id.as_str(), g.resource_id.as_str()), ("role", "r1"));
    assert_eq!((g.principal_resource_type_id.as_str(), g.principal_resource_id.as_str()), ("user", "u3"));
    assert_eq!(g.expansion, None);
    assert_eq!(g.needs_expansion, Some(0));
    // Not a slim grant: the blob carries the entitlement and the principal.
    assert_eq!(g.data.entitlement.as_ref().unwrap().id, "role:r1:member");
    assert_eq!(g.data.principal.as_ref().unwrap().id.as_ref().unwrap().resource, "u3");

    // Timestamp columns are declared datetime (Go drivers only parse those).
    for (table, col) in [
        ("v1_sync_runs", "started_at"),
        ("v1_sync_runs", "ended_at"),
        ("v1_resources", "discovered_at"),
        ("v1_grants", "discovered_at"),
    ] {
        let def = r.column_defs(table).into_iter().find(|c| c.0 == col).unwrap();
        assert_eq!(def.1.to_ascii_lowercase(), "datetime", "{table}.{col}");
    }
    // No journal / WAL left in the container's directory either.
    assert_eq!(dir_entries(dir.path()), ["sync.c1z"]);
}

#[test]
fn dedupe_writes_nothing_and_tells_a_repeat_from_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let target = target_in(&dir);
    let mut w = C1zWriter::create(&target, WriterOptions::default()).unwrap();
    assert!(w.put_resource_type(&user_type()).unwrap());
    assert!(!w.put_resource_type(&user_type()).unwrap());
    w.put_resource_type(&role_type()).unwrap();
    assert!(w.put_resource(&user("u1")).unwrap().is_written());
    let mut changed = user("u1");
    changed.display_name = "other".into();
    assert_eq!(w.put_resource(&changed).unwrap(), Put::Conflicting, "same external_id, other data");
    assert_eq!(w.put_resource(&user("u1")).unwrap(), Put::Repeated, "same external_id, same data");
    assert!(w.put_resource(&role("r1")).unwrap().is_written());
    assert!(w.put_entitlement(&entitlement("r1")).unwrap());
    assert!(!w.put_entitlement(&entitlement("r1")).unwrap());
    assert!(w.put_grant(&grant("r1", "u1")).unwrap().is_written());
    assert_eq!(w.put_grant(&grant("r1", "u1")).unwrap(), Put::Repeated);
    let mut same_id = grant("r1", "u2");
    same_id.id = grant("r1", "u1").id;
    assert_eq!(w.put_grant(&same_id).unwrap(), Put::Conflicting, "another grant under the same id");
    let c = w.counts();
    assert_eq!((c.resource_types, c.resources, c.entitlements, c.grants), (2, 2, 1, 1));
    let done = w.finish().unwrap();
    let r = C1zReader::open(&done.path);
    let res = r.resources(&done.sync_id);
    assert_eq!(res.len(), 2);
    assert_eq!(res[0].data.display_name, "u1@example.com", "first write wins");
    assert_eq!(r.grants(&done.sync_id).len(), 1);
    assert_eq!(r.entitlements(&done.sync_id).len(), 1);
    r.check_integrity(&done.sync_id);
}

#[test]
fn dangling_grants_are_removed_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let target = target_in(&dir);
    let mut w = writer_with_users_and_r1(&target, &["u1"]);
    w.put_grant(&grant("r1", "u1")).unwrap();
    w.put_grant(&grant("r1", "ghost")).unwrap(); // principal missing
    w.put_grant(&grant("r9", "u1")).unwrap(); // entitlement missing
    assert_eq!(w.counts().grants, 3);
    let mut removed = w.remove_dangling_grants().unwrap();
    removed.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
    assert_eq!(removed.len(), 2);
    assert_eq!(removed[0].grant_id, "role:r1:member:user:ghost");
    assert_eq!(removed[0].entitlement_id, "role:r1:member");
    assert_eq!(removed[0].principal_type, "user");
    assert_eq!(removed[0].principal_id, "ghost");
    assert_eq!(removed[1].grant_id, "role:r9:member:user:u1");
    assert_eq!(removed[1].entitlement_id, "role:r9:member");
    assert_eq!(w.counts().grants, 1);
    assert!(w.remove_dangling_grants().unwrap().is_empty(), "second pass finds nothing");
    let done = w.finish().unwrap();
    let r = C1zReader::open(&done.path);
    let grants = r.grants(&done.sync_id);
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].external_id, "role:r1:member:user:u1");
    r.check_integrity(&done.sync_id);
}

#[test]
fn dangling_check_ignores_rows_of_the_previous_sync() {
    // A principal that exists only in the carried-over sync does not make a grant valid.
    let dir = tempfile::tempdir().unwrap();
    let target = target_in(&dir);
    write_sync(&target, &["u1", "u2"], WriterOptions::default());
    let mut w = writer_with_users_and_r1(&target, &["u1"]);
    w.put_grant(&grant("r1", "u1")).unwrap();
    w.put_grant(&grant("r1", "u2")).unwrap();
    let removed = w.remove_dangling_grants().unwrap();
    assert_eq!(removed.iter().map(|d| d.grant_id.as_str()).collect::<Vec<_>>(), ["role:r1:member:user:u2"]);
    let done = w.finish().unwrap();
    C1zReader::open(&done.path).check_integrity(&done.sync_id);
}

#[test]
fn carry_over_keeps_exactly_two_finished_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let target = target_in(&dir);
    let first = write_sync(&target, &["a1", "a2"], WriterOptions::default());
    let first_rows = {
        let r = C1zReader::open(&target);
        (r.resources(&first.sync_id), r.entitlements(&first.sync_id), r.grants(&first.sync_id))
    };

    let second = write_sync(&target, &["b1", "b2", "b3"], WriterOptions::default());
    assert_eq!(second.previous_sync_id.as_deref(), Some(first.sync_id.as_str()));
    {
        let r = C1zReader::open(&target);
        let ids: Vec<String> = r.sync_runs().into_iter().map(|s| s.sync_id).collect();
        assert_eq!(ids, [first.sync_id.clone(), second.sync_id.clone()]);
        assert!(r.sync_runs().iter().all(|s| s.ended_at.is_some()));
        // The older sync is intact, row for row and byte for byte.
        assert_eq!(r.resources(&first.sync_id), first_rows.0);
        assert_eq!(r.entitlements(&first.sync_id), first_rows.1);
        assert_eq!(r.grants(&first.sync_id), first_rows.2);
        assert_eq!(r.default_sync_id(), second.sync_id);
        r.check_integrity(&second.sync_id);
        r.check_data_integrity(&first.sync_id);
        assert_eq!(r.resources(&second.sync_id).len(), 5);
    }

    let third = write_sync(&target, &["c1"], WriterOptions::default());
    assert_eq!(third.previous_sync_id.as_deref(), Some(second.sync_id.as_str()));
    let r = C1zReader::open(&target);
    let ids: Vec<String> = r.sync_runs().into_iter().map(|s| s.sync_id).collect();
    assert_eq!(ids, [second.sync_id.clone(), third.sync_id.clone()]);
    for table in ["v1_resource_types", "v1_resources", "v1_entitlements", "v1_grants"] {
        let counts = r.counts_by_sync(table);
        assert!(!counts.contains_key(&first.sync_id), "{table} still has rows of the first sync");
        assert_eq!(counts.len(), 2, "{table}: {counts:?}");
    }
    r.check_integrity(&third.sync_id);
    r.check_data_integrity(&second.sync_id);
}

#[test]
fn carry_over_disabled_replaces_the_file_with_one_sync() {
    let dir = tempfile::tempdir().unwrap();
    let target = target_in(&dir);
    write_sync(&target, &["a1"], WriterOptions::default());
    let opts = WriterOptions { carry_over_previous: false, ..WriterOptions::default() };
    let done = write_sync(&target, &["b1"], opts);
    assert_eq!(done.previous_sync_id, None);
    let r = C1zReader::open(&target);
    assert_eq!(r.sync_runs().len(), 1);
    r.check_integrity(&done.sync_id);
}

#[test]
fn reference_file_is_read_by_the_independent_reader() {
    let r = C1zReader::open(Path::new(REFERENCE));
    assert!(r.frame.checksum);
    assert!(!r.frame.has_dictionary);
    assert_eq!(r.frame.window_size, 8 << 20);
    assert_eq!(r.frame.content_size, None);
    r.check_journal_header();
    let runs = r.sync_runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].sync_id, REFERENCE_SYNC_ID);
    assert_eq!(runs[0].started_at, "2026-11-28 20:22:37.249980667");
    assert_eq!(runs[0].ended_at.as_deref(), Some("2026-11-28 20:22:37.880579843"));
    assert_eq!(runs[0].sync_type, None, "v0.1.9 schema has no sync_type column");
    assert_eq!(r.default_sync_id(), REFERENCE_SYNC_ID);
    let id = REFERENCE_SYNC_ID;
    assert_eq!(r.resource_types(id).len(), 2);
    assert_eq!(r.resources(id).len(), 17);
    assert_eq!(r.entitlements(id).len(), 5);
    let grants = r.grants(id);
    assert_eq!(grants.len(), 12);
    for g in &grants {
        let want = format!("role:{}:member:user:{}", g.resource_id, g.principal_resource_id);
        assert_eq!(g.external_id, want);
    }
    let users: Vec<_> = r.resources(id).into_iter().filter(|x| x.resource_type_id == "user").collect();
    assert_eq!(users.len(), 12);
    let ut: pb::UserTrait = pb::find_annotation(&users[0].data.annotations, pb::USER_TRAIT_URL).expect("UserTrait");
    assert_eq!(ut.emails[0].address, users[0].data.display_name);
    assert_eq!(
        ut.profile.as_ref().and_then(|p| p.string("user_id")),
        Some(users[0].data.id.as_ref().unwrap().resource.as_str())
    );
    r.check_data_integrity(id);
    // The reference predates the superset schema: the schema check must notice that.
    let missing = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.check_superset_schema()));
    assert!(missing.is_err(), "v0.1.9 schema must fail the superset check");
}

#[test]
fn reference_file_is_carried_over_and_extended() {
    let dir = tempfile::tempdir().unwrap();
    let target = target_in(&dir);
    std::fs::copy(REFERENCE, &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let reference = C1zReader::open(Path::new(REFERENCE));

    let done = write_sync(&target, &["n1", "n2"], WriterOptions::default());
    assert_eq!(done.previous_sync_id.as_deref(), Some(REFERENCE_SYNC_ID));

    let r = C1zReader::open(&target);
    let runs = r.sync_runs();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].sync_id, REFERENCE_SYNC_ID);
    assert_eq!(runs[0].ended_at.as_deref(), Some("2026-11-28 20:22:37.880579843"));
    assert_eq!(runs[0].sync_type.as_deref(), Some("full"), "migration default");
    assert_eq!(runs[1].sync_id, done.sync_id);
    assert_eq!(r.default_sync_id(), done.sync_id);
    r.check_integrity(&done.sync_id);
    r.check_data_integrity(REFERENCE_SYNC_ID);
    // Old rows survive unchanged (grants gained only the two migrated columns).
    assert_eq!(r.resources(REFERENCE_SYNC_ID), reference.resources(REFERENCE_SYNC_ID));
    assert_eq!(r.entitlements(REFERENCE_SYNC_ID), reference.entitlements(REFERENCE_SYNC_ID));
    let old_grants = r.grants(REFERENCE_SYNC_ID);
    assert_eq!(old_grants.len(), 12);
    for (new, old) in old_grants.iter().zip(reference.grants(REFERENCE_SYNC_ID)) {
        assert_eq!(new.data, old.data);
        assert_eq!(new.external_id, old.external_id);
        assert_eq!(new.needs_expansion, Some(0));
    }
    assert_eq!(r.resources(&done.sync_id).len(), 4);
}

#[test]
fn non_c1z_file_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for content in [&b"hello, this is my thesis"[..], b"C1Z", b"SQLite format 3\0......"] {
        let target = target_in(&dir);
        std::fs::write(&target, content).unwrap();
        let err = C1zWriter::create(&target, WriterOptions::default()).err().expect("refused");
        assert!(matches!(err, C1zError::NotC1z { .. }), "{err}");
        assert!(err.to_string().contains("refusing to overwrite"), "{err}");
        assert!(matches!(c1z::check_target(&target), Err(C1zError::NotC1z { .. })));
        assert_eq!(std::fs::read(&target).unwrap(), content);
        assert_eq!(dir_entries(dir.path()), ["sync.c1z"]);
    }
}

#[test]
fn v3_c1z_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let target = target_in(&dir);
    std::fs::write(&target, b"C1Z3\0\0\0\0\x02xx").unwrap();
    let err = C1zWriter::create(&target, WriterOptions::default()).err().unwrap();
    assert!(matches!(err, C1zError::UnsupportedFormat { .. }), "{err}");
    assert!(c1z::check_target(&target).is_err());
    assert_eq!(std::fs::read(&target).unwrap(), b"C1Z3\0\0\0\0\x02xx");
}

#[test]
fn corrupt_c1z_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let valid = std::fs::read(REFERENCE).unwrap();
    let mut not_sqlite = b"C1ZF\0".to_vec();
    not_sqlite.extend(zstd::encode_all(&[7u8; 10_000][..], 3).unwrap());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage after magic", b"C1ZF\0this is not zstd".to_vec()),
        ("truncated frame", valid[..valid.len() / 2].to_vec()),
        ("zstd of non-SQLite bytes", not_sqlite),
    ];
    for (what, content) in cases {
        let target = target_in(&dir);
        std::fs::write(&target, &content).unwrap();
        assert!(c1z::check_target(&target).is_ok(), "magic alone passes the cheap check");
        let err = C1zWriter::create(&target, WriterOptions::default()).err();
        assert!(matches!(err, Some(C1zError::Corrupt { .. })), "{what}: {err:?}");
        assert_eq!(std::fs::read(&target).unwrap(), content, "{what}: file changed");
        assert_eq!(dir_entries(dir.path()), ["sync.c1z"], "{what}: temp files left");
    }
}

#[test]
fn directory_target_and_missing_parent_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = C1zWriter::create(dir.path(), WriterOptions::default()).err().unwrap();
    assert!(matches!(err, C1zError::TargetIsDirectory { .. }), "{err}");
    assert!(matches!(c1z::check_target(dir.path()), Err(C1zError::TargetIsDirectory { .. })));
    let missing = dir.path().join("no-such-dir").join("sync.c1z");
    let err = C1zWriter::create(&missing, WriterOptions::default()).err().unwrap();
    assert!(matches!(err, C1zError::ParentMissing { .. }), "{err}");
    assert!(dir_entries(dir.path()).is_empty());
}

#[test]
fn check_target_accepts_absent_empty_and_c1z() {
    let dir = tempfile::tempdir().unwrap();
    let target = target_in(&dir);
    assert!(c1z::check_target(&target).is_ok());
    std::fs::write(&target, b"").unwrap();
    assert!(c1z::check_target(&target).is_ok());
    // An empty file is a new sync file.
    let done = write_sync(&target, &["u1"], WriterOptions::default());
    assert_eq!(done.previous_sync_id, None);
    assert!(c1z::check_target(&target).is_ok());
}

#[test]
fn drop_without_finish_leaves_target_unchanged_and_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let target = target_in(&dir);
    write_sync(&target, &["u1"], WriterOptions::default());
    let before = std::fs::read(&target).unwrap();
    {
        let mut w = C1zWriter::create(&target, WriterOptions::default()).unwrap();
        w.put_resource_type(&user_type()).unwrap();
        w.put_resource(&user("x")).unwrap();
        // While writing, the work file is hidden, next to the target, and private.
        let entries = dir_entries(dir.path());
        let work: Vec<_> = entries.iter().filter(|n| n.starts_with(".sync.c1z.work-")).collect();
        assert_eq!(work.len(), 1, "{entries:?}");
        let mode = std::fs::metadata(dir.path().join(work[0])).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // An invalid object is an error, not a panic, and does not finish anything.
        let bad = v2::Grant { id: "g".into(), ..Default::default() };
        assert!(matches!(w.put_grant(&bad), Err(C1zError::InvalidObject { .. })));
    }
    assert_eq!(std::fs::read(&target).unwrap(), before);
    assert_eq!(dir_entries(dir.path()), ["sync.c1z"]);

    // Same for a brand-new target: nothing is created.
    let fresh = dir.path().join("fresh.c1z");
    drop(C1zWriter::create(&fresh, WriterOptions::default()).unwrap());
    assert_eq!(dir_entries(dir.path()), ["sync.c1z"]);
}

#[test]
fn output_file_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let target = target_in(&dir);
    write_sync(&target, &["u1"], WriterOptions::default());
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn sync_id_is_a_current_ksuid() {
    let dir = tempfile::tempdir().unwrap();
    let target = target_in(&dir);
    let w = C1zWriter::create(&target, WriterOptions::default()).unwrap();
    let id = w.sync_id().to_string();
    assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let ts = ksuid_unix_seconds(&id);
    assert!((now - ts).abs() <= 5, "KSUID time {ts} vs now {now}");
    let other = C1zWriter::create(&dir.path().join("b.c1z"), WriterOptions::default()).unwrap();
    assert_ne!(other.sync_id(), id);
}

#[test]
fn time_columns_use_go_local_text_layout() {
    use chrono::TimeZone;
    let t =
        |nanos| chrono::Utc.with_ymd_and_hms(2026, 11, 28, 20, 22, 37).unwrap() + chrono::Duration::nanoseconds(nanos);
    assert_eq!(c1z::time::format_sqlite_time(&t(0)), "2026-11-28 20:22:37");
    assert_eq!(c1z::time::format_sqlite_time(&t(350_516_490)), "2026-11-28 20:22:37.35051649");
    assert_eq!(c1z::time::format_sqlite_time(&t(1)), "2026-11-28 20:22:37.000000001");
    assert_eq!(c1z::time::format_sqlite_time(&t(500_000_000)), "2026-11-28 20:22:37.5");
    assert!(reader::is_go_time_text("2026-11-28 20:22:37.35051649"));
    assert!(!reader::is_go_time_text("2026-11-28T20:22:37Z"));
    assert!(!reader::is_go_time_text("2026-11-28 20:22:37.350"));

    let dir = tempfile::tempdir().unwrap();
    let target = target_in(&dir);
    let before = chrono::Local::now().naive_local();
    let done = write_sync(&target, &["u1"], WriterOptions::default());
    let after = chrono::Local::now().naive_local();
    let r = C1zReader::open(&target);
    let run = &r.sync_runs()[0];
    let parse = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    let started = parse(&run.started_at);
    let ended = parse(run.ended_at.as_deref().unwrap());
    assert!(before <= started && started <= ended && ended <= after, "local wall clock expected");
    let discovered = parse(&r.resources(&done.sync_id)[0].discovered_at);
    assert!(started <= discovered && discovered <= ended);
}

#[test]
fn invalid_options_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WriterOptions { zstd_level: 22, ..WriterOptions::default() };
    assert!(matches!(C1zWriter::create(&target_in(&dir), opts), Err(C1zError::InvalidOption(_))));
    assert!(dir_entries(dir.path()).is_empty());
}

/// Grants are staged and stored grouped by entitlement (in arrival order within one); past the staging limit
/// the rest go straight into the table. Dedupe holds on both sides of that switch, and across a carried-over
/// sync nothing is lost.
#[test]
fn grants_are_grouped_by_entitlement_and_deduped_on_both_sides_of_the_staging_limit() {
    let arrivals = [("r1", "u1"), ("r2", "u2"), ("r1", "u3"), ("r2", "u4"), ("r1", "u5"), ("r2", "u6")];
    for (staged_max, expected) in [
        (1000, ["r1:u1", "r1:u3", "r1:u5", "r2:u2", "r2:u4", "r2:u6"]),
        // The first two are staged and written sorted; the rest arrive after the switch.
        (2, ["r1:u1", "r2:u2", "r1:u3", "r2:u4", "r1:u5", "r2:u6"]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let target = target_in(&dir);
        for run in 0..2 {
            let opts = WriterOptions { staged_grants_max: staged_max, ..WriterOptions::default() };
            let mut w = C1zWriter::create(&target, opts).unwrap();
            w.put_resource_type(&user_type()).unwrap();
            w.put_resource_type(&role_type()).unwrap();
            for rid in ["r1", "r2"] {
                w.put_resource(&role(rid)).unwrap();
                w.put_entitlement(&entitlement(rid)).unwrap();
            }
            for (i, (rid, uid)) in arrivals.iter().enumerate() {
                w.put_resource(&user(uid)).unwrap();
                assert!(w.put_grant(&grant(rid, uid)).unwrap().is_written(), "{uid} (limit {staged_max})");
                // A repeat of the very first grant: staged at first, in the table later.
                assert!(
                    !w.put_grant(&grant("r1", "u1")).unwrap().is_written(),
                    "repeat after {i} (limit {staged_max})"
                );
            }
            assert!(!w.put_grant(&grant("r2", "u6")).unwrap().is_written());
            assert_eq!(w.counts().grants, 6);
            assert!(w.remove_dangling_grants().unwrap().is_empty());
            // Written after the dangling check (which copies staged grants): still deduped.
            assert!(!w.put_grant(&grant("r1", "u3")).unwrap().is_written());
            let done = w.finish().unwrap();
            let r = C1zReader::open(&done.path);
            assert_eq!(r.sync_runs().len(), run + 1);
            let order: Vec<String> = r
                .grants(&done.sync_id)
                .iter()
                .map(|g| format!("{}:{}", g.resource_id, g.principal_resource_id))
                .collect();
            assert_eq!(order, expected, "limit {staged_max}, run {run}");
            if let Some(previous) = &done.previous_sync_id {
                assert_eq!(r.grants(previous).len(), 6, "the carried-over sync keeps its grants");
            }
        }
    }
}
