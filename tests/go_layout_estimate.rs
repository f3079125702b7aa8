//! Checks the benchmark's Go-layout estimate (`src/sim/go_layout.rs`) against the real output of the Go
//! connector: for the reference workspace it must write the same tables, indexes, row order, columns and
//! (decoded) blobs as `reference-sync.c1z`, and its compressed size must be close to that file's size. Only
//! then is "our file vs the Go connector's file for the same workspace" in the benchmark a fair comparison.
//! Last, our file for the reference shape must not be larger than that estimate.

mod common;

use std::path::Path;

use baton_torq::proto::connector_v2::{Entitlement, Grant, Resource, ResourceType, RoleTrait, UserTrait};
use baton_torq::sim::{go_layout, GeneratedSpec, SimConfig, SimServer, Workspace};
use common::harness::{assert_success, run};
use go_layout::{GoRole, GoUser};
use prost::Message;
use rusqlite::Connection;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The reference workspace in the order the Go connector lists it: non-SSO users, then SSO users.
fn reference_workspace() -> (Vec<GoUser>, Vec<GoRole>) {
    go_layout::workspace(&common::harness::reference_workspace())
}

fn open_reference(dir: &Path) -> Connection {
    let file = std::fs::read(fixture("reference-sync.c1z")).unwrap();
    assert_eq!(&file[..5], b"C1ZF\0");
    let db = dir.join("reference.db");
    std::fs::write(&db, zstd::decode_all(&file[5..]).unwrap()).unwrap();
    Connection::open(db).unwrap()
}

/// Re-encodes trait annotations: Go (v0.1.9) marshals profile maps in random order, prost in key order.
fn normalise(r: &mut Resource) {
    for a in &mut r.annotations {
        if a.type_url.ends_with(".UserTrait") {
            a.value = UserTrait::decode(a.value.as_slice()).unwrap().encode_to_vec();
        } else if a.type_url.ends_with(".RoleTrait") {
            a.value = RoleTrait::decode(a.value.as_slice()).unwrap().encode_to_vec();
        }
    }
}

fn resource(b: &[u8]) -> Resource {
    let mut r = Resource::decode(b).unwrap();
    normalise(&mut r);
    r
}

fn entitlement(b: &[u8]) -> Entitlement {
    let mut e = Entitlement::decode(b).unwrap();
    e.resource.iter_mut().for_each(normalise);
    e
}

fn grant(b: &[u8]) -> Grant {
    let mut g = Grant::decode(b).unwrap();
    g.entitlement.iter_mut().flat_map(|e| e.resource.iter_mut()).for_each(normalise);
    g
}

/// Rows of `table`: every column except `id`, `sync_id` and `discovered_at`, with the blob decoded by `decode`.
fn rows<T>(conn: &Connection, table: &str, columns: &str, decode: fn(&[u8]) -> T) -> Vec<(Vec<String>, T)> {
    let sql = format!("SELECT {columns}, data FROM {table} ORDER BY id");
    let mut stmt = conn.prepare(&sql).unwrap();
    let n = stmt.column_count() - 1;
    stmt.query_map([], |r| {
        let cols: rusqlite::Result<Vec<String>> =
            (0..n).map(|i| r.get::<_, Option<String>>(i).map(Option::unwrap_or_default)).collect();
        Ok((cols?, decode(&r.get::<_, Vec<u8>>(n)?)))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn the_estimate_writes_what_the_go_connector_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let (users, roles) = reference_workspace();
    let ours = dir.path().join("go-layout.db");
    go_layout::write_database(&ours, &users, &roles).unwrap();
    let ours = Connection::open(&ours).unwrap();
    let reference = open_reference(dir.path());

    let schema = |c: &Connection| -> Vec<(String, String)> {
        let mut st = c.prepare("SELECT type, name FROM sqlite_master ORDER BY type, name").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(schema(&ours), schema(&reference));
    let page_size = |c: &Connection| -> i64 { c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap() };
    assert_eq!(page_size(&ours), page_size(&reference));

    let types = |c: &Connection| rows(c, "v1_resource_types", "external_id", |b| ResourceType::decode(b).unwrap());
    let resources = |c: &Connection| {
        rows(c, "v1_resources", "resource_type_id, external_id, parent_resource_type_id, parent_resource_id", resource)
    };
    let entitlements =
        |c: &Connection| rows(c, "v1_entitlements", "resource_type_id, resource_id, external_id", entitlement);
    let grants = |c: &Connection| {
        rows(
            c,
            "v1_grants",
            "resource_type_id, resource_id, entitlement_id, principal_resource_type_id, principal_resource_id, \
             external_id",
            grant,
        )
    };
    // Resource types are the one place where the order differs (the Go syncer stores them as it meets them);
    // compare them as sets.
    let (mut a, mut b) = (types(&ours), types(&reference));
    a.sort_by(|x, y| x.0.cmp(&y.0));
    b.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(a, b);
    assert_eq!(resources(&ours), resources(&reference));
    assert_eq!(entitlements(&ours), entitlements(&reference));
    assert_eq!(grants(&ours), grants(&reference));
    assert_eq!(grants(&ours).len(), 12);
}

#[test]
fn the_estimated_size_is_close_to_the_go_connectors_file() {
    let dir = tempfile::tempdir().unwrap();
    let (users, roles) = reference_workspace();
    let db = dir.path().join("go-layout.db");
    go_layout::write_database(&db, &users, &roles).unwrap();
    let estimate = go_layout::compressed_size(&db).unwrap() as f64;
    let real = std::fs::metadata(fixture("reference-sync.c1z")).unwrap().len() as f64;
    let off = (estimate - real).abs() / real;
    eprintln!("Go-layout estimate {estimate} bytes, Go connector {real} bytes");
    assert!(off < 0.05, "estimate {estimate} bytes vs the Go connector's {real} bytes ({:.1}% off)", off * 100.0);
}

/// The performance issue's reference shape: 10k users, 10 roles, 30% SSO (the benchmark's workspace). Our file
/// must be no larger than the Go connector's for the same workspace (README "Performance" has the sizes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_file_is_no_larger_than_the_go_connectors_at_10k_users() {
    let ws = Workspace::generated(GeneratedSpec {
        users: 10_000,
        roles: 10,
        sso_percent: 30,
        seed: 42,
        ..GeneratedSpec::default()
    });
    let server = SimServer::start(ws.clone(), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    assert_success(&run(&server, &file, &[]).await);
    server.shutdown().await;
    let ours = std::fs::metadata(&file).unwrap().len();
    let go = go_layout::estimate(&ws, dir.path()).unwrap();
    eprintln!("10k users: ours {ours} bytes, Go connector (estimate) {go} bytes");
    assert!(ours <= go, "our c1z ({ours} bytes) is larger than the Go connector's ({go} bytes)");
}
