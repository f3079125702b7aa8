//! End to end through the built binary against the simulated Torq server: the produced c1z is decoded with the
//! independent test reader (tests/common) and compared with the simulated workspace and with the IDs the Go
//! connector produced for the same workspace (tests/fixtures/reference/).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use baton_torq::sim::{
    Endpoint, FaultKind, FaultPlan, FaultRule, GeneratedSpec, SimConfig, SimRole, SimServer, SimUser, Workspace,
};
use common::c1z_reader::C1zReader;
use common::dump::dump;
use common::harness::{
    assert_success, bin, clean_std_command, command_with, reference_workspace, run, sim_user, stderr,
};
use serde_json::Value;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A sync of `server` into a new folder that must succeed; returns the file's reader, the sync's id and the folder
/// (the file lives as long as it does).
async fn sync_ok(server: &SimServer) -> (C1zReader, String, tempfile::TempDir) {
    let dir = tmp();
    let file = dir.path().join("sync.c1z");
    assert_success(&run(server, &file, &[]).await);
    let reader = C1zReader::open(&file);
    let sync_id = reader.default_sync_id();
    (reader, sync_id, dir)
}

/// The simulated Torq serving the reference workspace, and an empty folder for the sync file.
async fn reference_server() -> (SimServer, tempfile::TempDir) {
    (SimServer::start(reference_workspace(), SimConfig::default()).await.unwrap(), tmp())
}

fn ids_from_reference(name: &str, list_key: &str, pick: impl Fn(&Value) -> String) -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference").join(name))
            .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v[list_key].as_array().unwrap().iter().map(pick).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_workspace_syncs_into_a_valid_c1z_with_the_go_connectors_ids() {
    let (server, dir) = reference_server().await;
    let file = dir.path().join("sync.c1z");
    let out = run(&server, &file, &["--log-format", "json"]).await;
    assert_success(&out);
    assert!(out.stdout.is_empty(), "a sync prints nothing on stdout");

    let reader = C1zReader::open(&file);
    let runs = reader.sync_runs();
    assert_eq!(runs.len(), 1, "one sync run");
    assert!(runs[0].ended_at.is_some(), "the sync run is finished");
    assert_eq!(runs[0].sync_type.as_deref(), Some("full"));
    let sync_id = reader.default_sync_id();
    reader.check_integrity(&sync_id);

    // The whole sync, reviewed once (tests/snapshots/): every field of every object the mapping writes.
    insta::assert_snapshot!("reference_workspace", dump(&reader, &sync_id));
    let resources = reader.resources(&sync_id);
    let ents = reader.entitlements(&sync_id);
    let grants: BTreeSet<String> = reader.grants(&sync_id).iter().map(|g| g.external_id.clone()).collect();

    // IDs equal those the Go connector produced (as printed by the baton CLI).
    let ref_resources = ids_from_reference("baton-resources.json", "resources", |r| {
        format!(
            "{}:{}",
            r["resource"]["id"]["resourceType"].as_str().unwrap(),
            r["resource"]["id"]["resource"].as_str().unwrap()
        )
    });
    let ours: BTreeSet<String> = resources.iter().map(|r| r.external_id.clone()).collect();
    assert_eq!(ours, ref_resources);
    let ref_ents = ids_from_reference("baton-entitlements.json", "entitlements", |e| {
        e["entitlement"]["id"].as_str().unwrap().to_string()
    });
    assert_eq!(ents.iter().map(|e| e.external_id.clone()).collect::<BTreeSet<_>>(), ref_ents);
    let ref_grants =
        ids_from_reference("baton-grants.json", "grants", |g| g["grant"]["id"].as_str().unwrap().to_string());
    assert_eq!(grants, ref_grants);
    // Resource types: id, display name, trait and annotations exactly as the reference.
    let ref_types = ids_from_reference("baton-resource-types.json", "resourceTypes", |t| {
        let rt = &t["resourceType"];
        let anns: Vec<&str> = rt["annotations"]
            .as_array()
            .map(|a| a.iter().map(|x| x["@type"].as_str().unwrap()).collect())
            .unwrap_or_default();
        format!(
            "{}|{}|{}|{}",
            rt["id"].as_str().unwrap(),
            rt["displayName"].as_str().unwrap(),
            rt["traits"][0].as_str().unwrap(),
            anns.join(",")
        )
    });
    let mut types: BTreeSet<String> = reader
        .resource_types(&sync_id)
        .iter()
        .map(|t| {
            let name = match t.data.traits[..] {
                [1] => "TRAIT_USER",
                [3] => "TRAIT_ROLE",
                _ => "?",
            };
            let anns: Vec<&str> = t.data.annotations.iter().map(|a| a.type_url.as_str()).collect();
            format!("{}|{}|{}|{}", t.external_id, t.data.display_name, name, anns.join(","))
        })
        .collect();
    // Ours has the api_key type on top (the fixture has no keys, but Torq answered the list, so "none" is true).
    assert!(types.remove("api_key|API Key|TRAIT_USER|type.googleapis.com/c1.connector.v2.SkipEntitlementsAndGrants"));
    assert_eq!(types, ref_types);

    // One token, two user lists, RBAC roles, API keys, claim mappings: nothing grows with users or roles.
    let stats = server.stats();
    assert_eq!(
        (stats.token, stats.users_local, stats.users_sso, stats.rbac_roles, stats.api_keys, stats.claim_mappings),
        (1, 1, 1, 1, 1, 1)
    );
    assert_eq!(stats.total(), 6);

    // The JSON summary record carries the figures.
    let summary = stderr(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "sync complete")
        .expect("a JSON summary record");
    assert_eq!(summary["resources"], serde_json::json!({"user": 12, "role": 5, "api_key": 0}));
    assert_eq!(summary["grants"], 12);
    assert_eq!(summary["api_requests"], 5);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_users_and_roles_take_a_constant_number_of_requests() {
    let spec = GeneratedSpec { users: 3000, roles: 250, sso_percent: 30, seed: 7, ..GeneratedSpec::default() };
    let server = SimServer::start(Workspace::generated(spec), SimConfig::default()).await.unwrap();
    let (reader, sync_id, _dir) = sync_ok(&server).await;
    reader.check_integrity(&sync_id);
    assert_eq!(reader.entitlements(&sync_id).len(), 250);
    assert_eq!(reader.resources(&sync_id).iter().filter(|r| r.resource_type_id == "user").count(), 3000);
    assert_eq!(reader.grants(&sync_id).len(), 3000);
    let stats = server.stats();
    assert_eq!(
        (stats.token, stats.users_local, stats.users_sso, stats.rbac_roles, stats.api_keys, stats.claim_mappings),
        (1, 1, 1, 1, 1, 1)
    );
    assert_eq!(stats.role_pages, 0, "the legacy list is only a fallback");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_302_renews_the_token_and_retries() {
    let cfg = SimConfig {
        faults: FaultPlan {
            rules: vec![FaultRule {
                endpoint: Endpoint::RbacRoles,
                kind: FaultKind::Redirect302,
                first_request: 1,
                times: 1,
            }],
        },
        ..Default::default()
    };
    let server = SimServer::start(reference_workspace(), cfg).await.unwrap();
    let (reader, sync_id, _dir) = sync_ok(&server).await;
    assert_eq!(reader.grants(&sync_id).len(), 12);
    let stats = server.stats();
    assert_eq!(stats.token, 2, "a new token after the 302");
    assert_eq!(stats.rbac_roles, 2, "the rejected request was sent again once");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_renewed_before_it_expires() {
    // Tokens live 2 s and every request takes 400 ms: with the RBAC list refused, the 6 legacy role pages outlast
    // the first token.
    let cfg = SimConfig {
        token_ttl: Duration::from_secs(2),
        latency: Duration::from_millis(400),
        faults: FaultPlan::new().always(Endpoint::RbacRoles, FaultKind::Status(403)),
        ..Default::default()
    };
    let spec = GeneratedSpec { users: 50, roles: 550, sso_percent: 50, seed: 3, ..GeneratedSpec::default() };
    let server = SimServer::start(Workspace::generated(spec), cfg).await.unwrap();
    let dir = tmp();
    let file = dir.path().join("sync.c1z");
    let out = run(&server, &file, &[]).await;
    assert_success(&out);
    let stats = server.stats();
    assert!(stats.token >= 2, "token renewed: {stats:?}");
    assert_eq!(stats.rejected_auth, 0, "renewed before Torq had to reject it: {stats:?}");
    let reader = C1zReader::open(&file);
    assert_eq!(reader.entitlements(&reader.default_sync_id()).len(), 550);
    server.shutdown().await;
}

fn user(id: &str, email: &str, role: &str, sso: bool) -> SimUser {
    sim_user(id, email, role, "VERIFIED", sso)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_in_both_lists_is_written_once_and_an_unknown_role_gets_no_grant() {
    let roles = vec![SimRole {
        id: "r-admin".into(),
        name: "Admin".into(),
        description: String::new(),
        scope_names: vec![],
        is_custom: false,
    }];
    let users = vec![
        user("u-both", "both@example.com", "r-admin", false),
        user("u-both", "both@example.com", "r-admin", true),
        user("u-orphan", "orphan@example.com", "r-gone", false),
        user("u-ok", "ok@example.com", "r-admin", true),
    ];
    let server = SimServer::start(Workspace::fixed(users, roles), SimConfig::default()).await.unwrap();
    let dir = tmp();
    let file = dir.path().join("sync.c1z");
    let out = run(&server, &file, &["--log-format", "console"]).await;
    assert_success(&out);
    let err = stderr(&out);
    assert!(err.contains("u-orphan") && err.contains("r-gone"), "warning names both ids:\n{err}");
    let reader = C1zReader::open(&file);
    let sync_id = reader.default_sync_id();
    reader.check_integrity(&sync_id);
    let users: Vec<String> = reader
        .resources(&sync_id)
        .iter()
        .filter(|r| r.resource_type_id == "user")
        .map(|r| r.external_id.clone())
        .collect();
    assert_eq!(users.len(), 3, "{users:?}");
    let grants: BTreeSet<String> = reader.grants(&sync_id).iter().map(|g| g.external_id.clone()).collect();
    let expected: BTreeSet<String> =
        ["role:r-admin:member:user:u-both", "role:r-admin:member:user:u-ok"].into_iter().map(String::from).collect();
    assert_eq!(grants, expected);
    assert!(err.contains("3 users"), "summary counts unique users:\n{err}");
    assert!(err.contains("2 grants"), "summary counts the grants written, not the dropped one:\n{err}");
    server.shutdown().await;
}

/// A user Torq lists in both lists with different data: the local list's record is written even when the
/// local list answers last (the fetch order, not the response timing, decides), with one warning and the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_listed_twice_with_different_data_keeps_the_local_record_whatever_the_timing() {
    let role = |id: &str, name: &str| SimRole {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        scope_names: vec![],
        is_custom: false,
    };
    let users = vec![
        user("u-both", "local@example.com", "r-admin", false),
        user("u-both", "sso@example.com", "r-view", true),
        user("u-local", "only@example.com", "r-view", false),
    ];
    // The local list answers 400 ms late: read concurrently, the SSO record would arrive first.
    let cfg = SimConfig {
        faults: FaultPlan::new().always(Endpoint::UsersLocal, FaultKind::Delay(Duration::from_millis(400))),
        ..SimConfig::default()
    };
    let workspace = Workspace::fixed(users, vec![role("r-admin", "Admin"), role("r-view", "Viewer")]);
    let server = SimServer::start(workspace, cfg).await.unwrap();
    let dir = tmp();
    let file = dir.path().join("sync.c1z");
    let out = run(&server, &file, &["--log-format", "console"]).await;
    assert_success(&out);
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("listed twice by Torq with different data")).collect();
    assert_eq!(warnings.len(), 1, "one warning:\n{err}");
    assert!(warnings[0].contains("1 record(s)") && warnings[0].contains("u-both"), "count and example:\n{err}");
    assert!(err.contains("1 user was listed twice with different data; the first record read was kept"), "{err}");
    assert!(err.contains("1 user was listed twice and written once"), "a conflict is a duplicate too:\n{err}");
    let reader = C1zReader::open(&file);
    let sync_id = reader.default_sync_id();
    let both = reader.resources(&sync_id).into_iter().find(|r| r.external_id == "user:u-both").unwrap();
    assert_eq!(both.data.display_name, "local@example.com", "the local list's record");
    let grants: BTreeSet<String> = reader.grants(&sync_id).iter().map(|g| g.external_id.clone()).collect();
    let expected: BTreeSet<String> =
        ["role:r-admin:member:user:u-both", "role:r-view:member:user:u-local"].into_iter().map(String::from).collect();
    assert_eq!(grants, expected, "the local record's role only");

    let json = run(&server, &dir.path().join("again.c1z"), &["--log-format", "json"]).await;
    assert_success(&json);
    let summary: Value = stderr(&json)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "sync complete")
        .unwrap();
    assert_eq!(summary["conflicting"]["user"], 1, "{summary}");
    assert_eq!(summary["duplicates"]["user"], 1, "{summary}");
    server.shutdown().await;
}

/// Ids holding ':' can make two different grants spell the same grant id: the second is left out, counted in
/// the summary and named in one warning (it used to vanish silently).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_that_share_an_id_are_warned_about_and_counted() {
    let role = |id: &str| SimRole {
        id: id.into(),
        name: id.into(),
        description: String::new(),
        scope_names: vec![],
        is_custom: true,
    };
    // role "r" + user "u:member:user:v" and role "r:member:user:u" + user "v" both spell
    // "role:r:member:user:u:member:user:v".
    let users = vec![
        user("u:member:user:v", "a@example.com", "r", false),
        user("v", "b@example.com", "r:member:user:u", false),
    ];
    let server =
        SimServer::start(Workspace::fixed(users, vec![role("r"), role("r:member:user:u")]), SimConfig::default())
            .await
            .unwrap();
    let dir = tmp();
    let out = run(&server, &dir.path().join("sync.c1z"), &["--log-format", "json"]).await;
    assert_success(&out);
    let records: Vec<Value> = stderr(&out).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let warnings: Vec<&Value> =
        records.iter().filter(|v| v["message"].as_str().is_some_and(|m| m.contains("had the same id"))).collect();
    assert_eq!(warnings.len(), 1, "{records:?}");
    assert_eq!(warnings[0]["count"], 1);
    assert_eq!(warnings[0]["first"], "role:r:member:user:u:member:user:v");
    let summary = records.iter().find(|v| v["message"] == "sync complete").unwrap();
    assert_eq!(summary["grant_id_collisions"], 1, "{summary}");
    assert_eq!(summary["grants"], 1, "{summary}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_c1z_is_extended_keeping_the_previous_sync() {
    let (server, dir) = reference_server().await;
    let file = dir.path().join("sync.c1z");
    assert_success(&run(&server, &file, &[]).await);
    let first = C1zReader::open(&file).default_sync_id();
    assert_success(&run(&server, &file, &[]).await);
    assert_success(&run(&server, &file, &[]).await);
    let reader = C1zReader::open(&file);
    let runs = reader.sync_runs();
    assert_eq!(runs.len(), 2, "previous + newest finished sync are kept");
    assert!(runs.iter().all(|r| r.ended_at.is_some()));
    assert!(!runs.iter().any(|r| r.sync_id == first), "the oldest sync was pruned");
    for r in &runs {
        reader.check_integrity(&r.sync_id);
        assert_eq!(reader.grants(&r.sync_id).len(), 12);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_c1z_is_refused_and_left_unchanged() {
    let (server, dir) = reference_server().await;
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, b"my precious notes\n").unwrap();
    let out = run(&server, &file, &[]).await;
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("not a c1z"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"my precious notes\n");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no stray files");
    assert_eq!(server.stats().total(), 0, "refused before any request");
    server.shutdown().await;
}

#[test]
fn missing_credentials_are_one_clear_line_and_exit_2() {
    let dir = tmp();
    let out = clean_std_command().current_dir(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--torq-client-id") && err.contains("BATON_TORQ_CLIENT_ID"), "{err}");
    let out = clean_std_command().env("BATON_TORQ_CLIENT_ID", "id").current_dir(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("--torq-client-secret") && err.contains("BATON_TORQ_CLIENT_SECRET"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_fail_with_one_line_and_no_secret() {
    let (server, dir) = reference_server().await;
    let file = dir.path().join("sync.c1z");
    let out = command_with("sim-client-id", "wrong-secret-value-123", &server.api_url(), &server.auth_url(), &file)
        .arg("--verbose")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("rejected the API key"), "{err}");
    assert!(!err.contains("wrong-secret-value-123"), "secret leaked:\n{err}");
    assert!(!file.exists());
    server.shutdown().await;
}

#[test]
fn capabilities_match_the_committed_file() {
    let out = clean_std_command().arg("capabilities").output().unwrap();
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("baton_capabilities.json")).unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        committed,
        "regenerate with: baton-torq capabilities > baton_capabilities.json"
    );
}

#[test]
fn demo_syncs_the_built_in_workspace() {
    let dir = tmp();
    let file = dir.path().join("demo.c1z");
    let out = clean_std_command().args(["demo", "--log-format", "console", "-f"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Synced") && err.contains("roles"), "{err}");
    let reader = C1zReader::open(&file);
    let sync_id = reader.default_sync_id();
    reader.check_integrity(&sync_id);
    let users = reader.resources(&sync_id).iter().filter(|r| r.resource_type_id == "user").count();
    assert!(users >= 10, "demo workspace has users: {users}");
}

#[test]
fn version_follows_the_baton_convention() {
    let out = std::process::Command::new(bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("baton-torq version v{}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_stays_under_its_request_rate() {
    use baton_torq::torq::{TorqClient, TorqSettings};
    // 1,100 roles = 11 role pages + 1 token request; at 5 requests/s the burst of 5 is followed by ~1.4 s of
    // spacing. (The real limit is Torq's 50/s; the same limiter is used with a lower rate to make it measurable.)
    let spec = GeneratedSpec { users: 0, roles: 1100, sso_percent: 0, seed: 5, ..GeneratedSpec::default() };
    let server = SimServer::start(Workspace::generated(spec), SimConfig::default()).await.unwrap();
    let cfg = SimConfig::default();
    let mut settings = TorqSettings::new(
        cfg.client_id.clone(),
        cfg.client_secret.clone().into(),
        server.api_url().parse().unwrap(),
        server.auth_url().parse().unwrap(),
    );
    assert_eq!(settings.requests_per_second, 50, "the default stays under Torq's documented 50 requests/s (README)");
    settings.requests_per_second = 5;
    let client = TorqClient::new(settings).unwrap();
    let started = std::time::Instant::now();
    let roles = client.list_roles().await.unwrap();
    let took = started.elapsed();
    assert_eq!(roles.len(), 1100);
    assert_eq!(server.stats().role_pages, 11);
    assert!(took >= Duration::from_millis(1300), "12 requests at 5/s took only {took:?}");
    server.shutdown().await;
}
