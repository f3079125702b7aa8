//! Service mode in production: the Torq API key checked at start (a rejected key or a missing permission stops
//! the start before registering; an unreachable Torq does not), and the health endpoints (`--health-check`) and
//! the `health-check` command, against the simulator and the fake ConductorOne (tests/common).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use baton_torq::proto::baton_v1::baton_service_finish_task_request::FinalState;
use baton_torq::sim::{Endpoint, FaultKind, FaultPlan, SimConfig, SimServer};
use common::fake_c1::{sync_task, FakeC1};
use common::harness::{self, reference_workspace};
use common::log_watch::LogWatch;

/// A daemon started with `--health-check` on a free port, its log watched.
struct Daemon {
    child: tokio::process::Child,
    log: LogWatch,
    addr: SocketAddr,
}

/// Starts `cmd` with the health endpoints on any free port and waits until they listen.
async fn start(mut cmd: tokio::process::Command) -> Daemon {
    cmd.args(["--health-check", "--health-check-port", "0"]);
    let mut child = harness::spawn_console(&mut cmd);
    let log = LogWatch::start(child.stderr.take().unwrap());
    let line = log.wait_for("health endpoints listening", Duration::from_secs(20)).await;
    let addr = line.split("address=").nth(1).and_then(|a| a.split_whitespace().next()).unwrap().parse().unwrap();
    Daemon { child, log, addr }
}

/// The fake ConductorOne and its client secret, the simulator of the reference workspace with `config`, and a
/// temporary directory.
async fn setup(config: SimConfig) -> (FakeC1, String, SimServer, tempfile::TempDir) {
    let (c1, secret) = FakeC1::start_for_new_key().await;
    let sim = SimServer::start(reference_workspace(), config).await.unwrap();
    (c1, secret, sim, tempfile::tempdir().unwrap())
}

/// The daemon of `sim` and `c1`, temporary files under `temp`.
fn daemon_cmd(sim: &SimServer, c1: &FakeC1, secret: &str, dir: &Path) -> tokio::process::Command {
    harness::daemon_command(sim, c1, secret, dir, dir)
}

/// GET `path`: status and JSON body.
async fn get(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = client.get(format!("http://{addr}{path}")).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}")))
}

/// `baton-torq health-check --endpoint <endpoint>` against `addr`: exit code and output.
async fn health_check(addr: SocketAddr, endpoint: &str) -> (Option<i32>, String) {
    let out = harness::clean_command()
        .args(["health-check", "--endpoint", endpoint, "--health-check-port", &addr.port().to_string()])
        .args(["--log-format", "console"])
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

/// Waits until `path` answers `status`, or panics after `timeout` with the last answer.
async fn until(addr: SocketAddr, path: &str, status: u16, timeout: Duration) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (got, body) = get(addr, path).await;
        if got == status {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} still answers {got}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_no_secret(text: &str, c1_secret: &str) {
    assert!(!text.contains(&SimConfig::default().client_secret), "the Torq secret leaked: {text}");
    assert!(!text.contains(c1_secret), "the ConductorOne secret leaked: {text}");
}

/// A daemon that must exit by itself: exit code, stderr, and how long it took.
async fn run_to_exit(mut cmd: tokio::process::Command) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    cmd.args(["--log-format", "console"]).stdout(Stdio::null()).stderr(Stdio::piped());
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.expect("exits by itself").unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), started.elapsed())
}

/// A wrong Torq key stops the daemon within seconds, exit 1, with one error line naming the key's variables,
/// before anything is sent to ConductorOne.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_torq_key_stops_the_start_before_registering() {
    let other_key = SimConfig { client_secret: "another-secret".into(), ..SimConfig::default() };
    let (c1, secret, sim, dir) = setup(other_key).await;
    let (code, stderr, took) = run_to_exit(daemon_cmd(&sim, &c1, &secret, dir.path())).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("Torq rejected the API key") && errors[0].contains("BATON_TORQ_CLIENT_SECRET"),
        "{stderr}"
    );
    assert!(errors[0].contains("before registering with ConductorOne"), "{stderr}");
    assert_eq!(c1.with_record(|r| (r.token_requests, r.hellos.len())), (0, 0), "nothing sent to ConductorOne");
    assert_no_secret(&stderr, &secret);
    sim.shutdown().await;
}

/// A key whose role may not read users (HTTP 403) stops the start too, naming the scope it needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_may_not_read_users_stops_the_start_naming_the_scope() {
    let faults = FaultPlan::new().always(Endpoint::UsersLocal, FaultKind::Status(403));
    let (c1, secret, sim, dir) = setup(SimConfig { faults, ..SimConfig::default() }).await;
    let (code, stderr, _) = run_to_exit(daemon_cmd(&sim, &c1, &secret, dir.path())).await;
    assert_eq!(code, Some(1), "{stderr}");
    let error = stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
    assert!(error.contains("not allowed") && error.contains("user.read"), "{stderr}");
    assert_eq!(c1.with_record(|r| r.hellos.len()), 0);
    // The check read users by their status only and one role: no whole list was asked for on the way.
    let stats = sim.stats();
    assert_eq!(stats.users_sso, 0, "{stats:?}");
    sim.shutdown().await;
}

/// With a good key: "Torq API key OK" with the host, /live, /ready and /health answer 200 in the SDK's shape, a
/// sync's outcome shows in /health's details, `health-check --endpoint ready` exits 0, and no answer holds a
/// secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_good_key_every_endpoint_answers_200() {
    let (c1, secret, sim, dir) = setup(SimConfig::default()).await;
    let mut daemon = start(daemon_cmd(&sim, &c1, &secret, dir.path())).await;
    let ok = daemon.log.wait_for("Torq API key OK", Duration::from_secs(20)).await;
    assert!(ok.contains("host=127.0.0.1"), "{ok}");
    daemon.log.wait_for("registered with ConductorOne", Duration::from_secs(20)).await;
    // The check costs Torq two small requests: one user list by its status, one role.
    assert_eq!(sim.stats().role_pages, 1);
    let ready = until(daemon.addr, "/ready", 200, Duration::from_secs(5)).await;
    assert_eq!(ready["status"], "ready");
    let (status, live) = get(daemon.addr, "/live").await;
    assert_eq!((status, live["status"].as_str()), (200, Some("alive")));
    let (status, health) = get(daemon.addr, "/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("healthy")), "{health}");
    assert_eq!(health["details"]["torq"], "ok");
    assert_eq!(health["details"]["last_sync"], "none");

    c1.push_task(sync_task("2healthsync00000000000001"));
    c1.wait_for("the sync's FinishTask", Duration::from_secs(60), |r| !r.finishes.is_empty()).await;
    let (_, health) = get(daemon.addr, "/health").await;
    assert_eq!(health["details"]["last_sync"], "success", "{health}");

    for endpoint in ["ready", "live", "health"] {
        let (code, out) = health_check(daemon.addr, endpoint).await;
        assert_eq!(code, Some(0), "{endpoint}: {out}");
    }
    let answers = format!("{ready}{live}{health}");
    assert_no_secret(&answers, &secret);
    daemon.child.kill().await.unwrap();
    assert_no_secret(&daemon.log.text(), &secret);
    sim.shutdown().await;
}

/// Until the Hello succeeds, /ready answers 503 and `health-check --endpoint ready` exits 1 in one line, while
/// /live answers 200 (the loop is retrying, not stuck).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_fails_until_registered_with_conductorone() {
    let (c1, secret, sim, dir) = setup(SimConfig::default()).await;
    let mut cmd = daemon_cmd(&sim, &c1, &secret, dir.path());
    // Nothing listens there: every Hello fails and is retried.
    cmd.env("BATON_C1_API_HOST", "localhost:1");
    let mut daemon = start(cmd).await;
    daemon.log.wait_for("Hello failed", Duration::from_secs(30)).await;
    let (status, body) = get(daemon.addr, "/ready").await;
    assert_eq!((status, body["status"].as_str()), (503, Some("not_ready")), "{body}");
    assert_eq!(body["details"]["error"], "not registered with ConductorOne yet");
    assert_eq!(get(daemon.addr, "/live").await.0, 200);
    let (code, out) = health_check(daemon.addr, "ready").await;
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("HTTP 503") && out.contains("not registered"), "{out}");
    daemon.child.kill().await.unwrap();
    sim.shutdown().await;
}

/// Torq unreachable at start: a warning, the daemon registers and polls, and /health reports Torq unreachable
/// (503) while /ready is 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_torq_at_start_is_a_warning_and_health_reports_it() {
    let (c1, secret) = FakeC1::start_for_new_key().await;
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (api, auth) =
        (format!("http://127.0.0.1:{port}/public/v1alpha"), format!("http://127.0.0.1:{port}/v1/auth/token"));
    let ca = c1.write_ca(dir.path());
    let cmd =
        harness::service_command(&api, &auth, common::fake_c1::TEST_CLIENT_ID, &secret, &c1, Some(&ca), dir.path());
    let mut daemon = start(cmd).await;
    let warning = daemon.log.wait_for("starting anyway", Duration::from_secs(40)).await;
    assert!(warning.contains("WARN"), "{warning}");
    daemon.log.wait_for("registered with ConductorOne", Duration::from_secs(20)).await;
    let (status, body) = get(daemon.addr, "/health").await;
    assert_eq!((status, body["status"].as_str()), (503, Some("unhealthy")), "{body}");
    assert_eq!(body["details"]["torq"], "unreachable");
    assert!(body["details"]["validation_error"].as_str().unwrap().contains("connectivity"), "{body}");
    assert_eq!(until(daemon.addr, "/ready", 200, Duration::from_secs(5)).await["status"], "ready");
    let (code, _) = health_check(daemon.addr, "health").await;
    assert_eq!(code, Some(1));
    daemon.child.kill().await.unwrap();
}

/// The key is revoked after a good start: the next sync fails with Unauthenticated and /health turns 503
/// "rejected" with the sync's outcome in its details; /ready stays 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torq_key_rejected_later_makes_health_fail() {
    let (c1, secret, sim, dir) = setup(SimConfig::default()).await;
    let mut daemon = start(daemon_cmd(&sim, &c1, &secret, dir.path())).await;
    daemon.log.wait_for("registered with ConductorOne", Duration::from_secs(20)).await;
    assert_eq!(get(daemon.addr, "/health").await.0, 200);

    // Revoked: the token in hand is refused, and so is every request for a new one.
    sim.set_faults(
        FaultPlan::new()
            .always(Endpoint::AnyApi, FaultKind::Status(401))
            .always(Endpoint::Token, FaultKind::Status(401)),
    );
    c1.push_task(sync_task("2revokedkey00000000000001"));
    c1.wait_for("the sync's FinishTask", Duration::from_secs(60), |r| !r.finishes.is_empty()).await;
    assert!(matches!(c1.finish_of("2revokedkey00000000000001").unwrap().final_state, Some(FinalState::Error(_))));
    let (status, body) = get(daemon.addr, "/health").await;
    assert_eq!((status, body["status"].as_str()), (503, Some("unhealthy")), "{body}");
    assert_eq!(body["details"]["torq"], "rejected");
    assert_eq!(body["details"]["last_sync"], "failed");
    assert_eq!(body["details"]["last_sync_error"], "Unauthenticated");
    assert!(body["details"]["validation_error"].as_str().unwrap().contains("BATON_TORQ_CLIENT_SECRET"), "{body}");
    assert_eq!(get(daemon.addr, "/ready").await.0, 200);
    assert_no_secret(&body.to_string(), &secret);
    daemon.child.kill().await.unwrap();
    sim.shutdown().await;
}

/// `health-check` with nothing listening exits 1 with one line; a health port already in use stops the daemon
/// with one line naming the port's variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_failures_are_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free = closed.local_addr().unwrap();
    drop(closed);
    let (code, out) = health_check(free, "live").await;
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains(&format!("http://127.0.0.1:{}/live", free.port())), "{out}");

    let (c1, secret, sim, dir) = setup(SimConfig::default()).await;
    let mut cmd = daemon_cmd(&sim, &c1, &secret, dir.path());
    cmd.args(["--health-check", "--health-check-port", &port.to_string()]);
    let (code, stderr, _) = run_to_exit(cmd).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("BATON_HEALTH_CHECK_PORT"), "{stderr}");
    sim.shutdown().await;
}
