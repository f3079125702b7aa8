//! The fault matrix: every fault the simulated Torq can inject, alone and combined, through the built binary.
//!
//! Transient faults must end with exactly the file a fault-free run writes. Permanent faults must end with one
//! clear line, a non-zero exit, within a bounded time, with the previous sync file byte-for-byte unchanged and no
//! temporary file left behind.

mod common;

use std::time::{Duration, Instant};

use baton_torq::sim::{Endpoint, FaultKind, FaultPlan, SimConfig, SimRole, SimServer, Workspace};
use common::harness::{
    assert_success, command, command_with, content, listing, reference_workspace as fixture, run, sim_user, stderr,
};

/// Upper bound for a failing run (the retry budget is about 8 s of backoff).
const FAIL_WITHIN: Duration = Duration::from_secs(45);

/// What a fault-free sync of the fixture writes, and its summary's count of resources listed twice.
async fn baseline() -> (std::collections::BTreeMap<String, Vec<u8>>, serde_json::Value) {
    let server = SimServer::start(fixture(), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let out = run(&server, &file, &[]).await;
    assert_success(&out);
    server.shutdown().await;
    (content(&file), summary_duplicates(&out))
}

/// The `duplicates` field of the run's JSON summary record.
fn summary_duplicates(out: &std::process::Output) -> serde_json::Value {
    let err = stderr(out);
    err.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|record| record.get("duplicates").cloned())
        .unwrap_or_else(|| panic!("no JSON summary with duplicates in:\n{err}"))
}

/// Syncs the fixture under `faults` and asserts the file equals the fault-free one, and so does the summary's
/// count of resources listed twice (a page read again after it broke off lists nobody twice).
async fn transient(name: &str, faults: FaultPlan, extra: &[&str]) {
    let (expected, duplicates) = baseline().await;
    let server = SimServer::start(fixture(), SimConfig { faults, ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let out = run(&server, &file, extra).await;
    assert!(out.status.success(), "{name}: exit {:?}\n{}", out.status.code(), stderr(&out));
    assert!(server.stats().faults_injected > 0, "{name}: the fault was injected");
    assert_eq!(content(&file), expected, "{name}: same content as without faults");
    assert_eq!(summary_duplicates(&out), duplicates, "{name}: same duplicates as without faults");
    assert_eq!(listing(dir.path()), vec!["sync.c1z"], "{name}: no stray files");
    server.shutdown().await;
}

/// Writes a good sync file first, then runs against `config` and asserts a clean failure that leaves it intact.
async fn permanent(name: &str, workspace: Workspace, config: SimConfig, expect_in_message: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    {
        let good = SimServer::start(fixture(), SimConfig::default()).await.unwrap();
        assert_success(&run(&good, &file, &[]).await);
        good.shutdown().await;
    }
    let before = std::fs::read(&file).unwrap();
    let server = SimServer::start(workspace, config).await.unwrap();
    let started = Instant::now();
    let out = command(&server, &SimConfig::default(), &file).arg("--log-format").arg("console").output().await.unwrap();
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{name}: exit code 1\n{err}");
    assert!(took < FAIL_WITHIN, "{name}: failed within {FAIL_WITHIN:?}, took {took:?}");
    let last = err.trim().lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("error: "), "{name}: the last line is the error\n{err}");
    assert!(last.contains(expect_in_message), "{name}: message mentions {expect_in_message:?}: {last}");
    assert!(!last.contains("sim-client-secret"), "{name}: no secret in the message");
    assert_eq!(std::fs::read(&file).unwrap(), before, "{name}: previous sync file unchanged");
    assert_eq!(listing(dir.path()), vec!["sync.c1z"], "{name}: no temporary file left");
    server.shutdown().await;
}

fn faults() -> FaultPlan {
    FaultPlan::new()
}

// Transient faults: exactly the right file.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t429_with_retry_after() {
    let plan = faults().on(Endpoint::UsersLocal, FaultKind::TooManyRequests { retry_after_secs: Some(1) }, 1, 1);
    transient("429 + Retry-After", plan, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t429_without_retry_after() {
    let plan = faults().on(Endpoint::RbacRoles, FaultKind::TooManyRequests { retry_after_secs: None }, 1, 2);
    transient("429", plan, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t5xx_bursts() {
    let plan = faults()
        .on(Endpoint::UsersSso, FaultKind::Status(500), 1, 1)
        .on(Endpoint::UsersLocal, FaultKind::Status(502), 1, 2)
        .on(Endpoint::RbacRoles, FaultKind::Status(503), 1, 3)
        .on(Endpoint::ApiKeys, FaultKind::Status(500), 1, 1)
        .on(Endpoint::ClaimMappings, FaultKind::Status(502), 1, 2);
    transient("5xx bursts", plan, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t302_on_any_request() {
    // Five API requests: two user lists, RBAC roles, API keys, claim mappings.
    for n in 1..=5 {
        let plan = faults().on(Endpoint::AnyApi, FaultKind::Redirect302, n, 1);
        transient(&format!("302 on API request {n}"), plan, &[]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_5xx() {
    let plan = faults().on(Endpoint::Token, FaultKind::Status(503), 1, 2);
    transient("token endpoint 503", plan, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_mid_body() {
    let plan = faults().on(Endpoint::UsersLocal, FaultKind::ResetConnection, 1, 1);
    transient("connection reset", plan, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_body() {
    let plan = faults()
        .on(Endpoint::UsersSso, FaultKind::TruncatedBody, 1, 1)
        .on(Endpoint::RbacRoles, FaultKind::TruncatedBody, 1, 1)
        .on(Endpoint::ApiKeys, FaultKind::TruncatedBody, 1, 1);
    transient("truncated body", plan, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_slower_than_the_timeout() {
    let plan = faults().on(Endpoint::RbacRoles, FaultKind::Delay(Duration::from_secs(3)), 1, 1);
    transient("slow response", plan, &["--http-timeout-seconds", "1"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_faults_combined() {
    let plan = faults()
        .on(Endpoint::Token, FaultKind::Status(500), 1, 1)
        .on(Endpoint::RbacRoles, FaultKind::TooManyRequests { retry_after_secs: Some(1) }, 1, 1)
        .on(Endpoint::ClaimMappings, FaultKind::ResetConnection, 1, 1)
        .on(Endpoint::UsersLocal, FaultKind::ResetConnection, 1, 1)
        .on(Endpoint::UsersLocal, FaultKind::Status(503), 2, 1)
        .on(Endpoint::UsersSso, FaultKind::TruncatedBody, 1, 1)
        .on(Endpoint::AnyApi, FaultKind::Redirect302, 5, 1);
    transient("combined", plan, &[]).await;
}

// Permanent faults: one clear line, exit 1, previous file untouched.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials() {
    let config = SimConfig { client_secret: "a-different-secret".into(), ..Default::default() };
    permanent("bad credentials", fixture(), config, "rejected the API key").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden() {
    let config =
        SimConfig { faults: faults().always(Endpoint::UsersLocal, FaultKind::Status(403)), ..Default::default() };
    permanent("403", fixture(), config, "not allowed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_past_the_retry_budget() {
    let config =
        SimConfig { faults: faults().always(Endpoint::RbacRoles, FaultKind::Status(503)), ..Default::default() };
    permanent("503 forever", fixture(), config, "did not answer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_down() {
    let config = SimConfig { faults: faults().always(Endpoint::Token, FaultKind::Status(502)), ..Default::default() };
    permanent("token endpoint 502 forever", fixture(), config, "did not answer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json() {
    let config =
        SimConfig { faults: faults().always(Endpoint::UsersSso, FaultKind::MalformedJson), ..Default::default() };
    permanent("malformed JSON", fixture(), config, "cannot read").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_paging() {
    // The legacy role list is paged; it is used when the RBAC list is refused.
    let faults =
        faults().always(Endpoint::RbacRoles, FaultKind::Status(403)).always(Endpoint::Roles, FaultKind::EndlessPaging);
    let config = SimConfig { faults, ..Default::default() };
    let spec = baton_torq::sim::GeneratedSpec { users: 10, roles: 150, sso_percent: 0, seed: 1, ..Default::default() };
    permanent("endless paging", Workspace::generated(spec), config, "endless loop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_rejected_even_after_renewal() {
    let config = SimConfig { faults: faults().always(Endpoint::AnyApi, FaultKind::Redirect302), ..Default::default() };
    permanent("302 forever", fixture(), config, "refused a freshly issued token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_api_path() {
    let config = SimConfig { faults: faults().always(Endpoint::AnyApi, FaultKind::Status(404)), ..Default::default() };
    permanent("404", fixture(), config, "HTTP 404").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torq_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    // A port nobody listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let api = format!("http://127.0.0.1:{port}/public/v1alpha");
    let auth = format!("http://127.0.0.1:{port}/v1/auth/token");
    let out =
        command_with("id", "secret", &api, &auth, &file).args(["--log-format", "console"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(started.elapsed() < FAIL_WITHIN);
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    assert!(listing(dir.path()).is_empty());
}

// Data shapes.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_but_valid_data_is_synced() {
    // Long, but within the 320 bytes an email can have (longer is malformed: `oversize_values`).
    let long_email = format!("{}@example.com", "a".repeat(300));
    let role_name = "Équipe SOC — 東京 🛡️".to_string();
    let roles = vec![SimRole {
        id: "r1".into(),
        name: role_name.clone(),
        description: "ß".repeat(300),
        scope_names: vec![],
        is_custom: false,
    }];
    let users = vec![
        sim_user("u1", &long_email, "r1", "VERIFIED", false),
        sim_user("u2", "zoë.ünïcödé@exämple.com", "r1", "SOME_FUTURE_STATUS", true),
        sim_user("u3", "", "", "", false),
        sim_user("", "no-id@example.com", "r1", "VERIFIED", false),
    ];
    let server = SimServer::start(Workspace::fixed(users, roles), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    assert_success(&run(&server, &file, &[]).await);
    let got = content(&file);
    assert!(got.contains_key("v1_resources/user:u1"));
    assert!(got.contains_key("v1_resources/user:u2"));
    assert!(got.contains_key("v1_resources/user:u3"), "a user with missing fields is still synced");
    assert!(got.contains_key("v1_grants/role:r1:member:user:u2"));
    assert!(!got.keys().any(|k| k.ends_with("user:u3") && k.starts_with("v1_grants")), "no role, no grant");
    assert_eq!(got.keys().filter(|k| k.starts_with("v1_resources/user:")).count(), 3, "a user without id is skipped");
    let reader = common::c1z_reader::C1zReader::open(&file);
    let sync_id = reader.default_sync_id();
    let role = reader.resources(&sync_id).into_iter().find(|r| r.resource_type_id == "role").unwrap();
    assert_eq!(role.data.display_name, role_name);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_workspace_gives_an_empty_but_valid_sync() {
    let server = SimServer::start(Workspace::fixed(vec![], vec![]), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    assert_success(&run(&server, &file, &[]).await);
    let got = content(&file);
    assert_eq!(got.keys().filter(|k| k.starts_with("v1_resource_types/")).count(), 3);
    assert_eq!(got.len(), 3, "only the three resource types: {:?}", got.keys().collect::<Vec<_>>());
    server.shutdown().await;
}
