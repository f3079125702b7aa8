//! Service mode end to end: the built binary runs as a daemon against a fake ConductorOne (tests/common/fake_c1.rs,
//! TLS on loopback, JWT verified with the public half of a key made here) and the simulated Torq server. Checks
//! every task type's outcome, the uploaded c1z's checksum and content, credential errors (one line, right exit
//! code, no secret anywhere in the output), a Torq outage during a sync, and SIGTERM shutdown with exit 0.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use baton_torq::proto::baton_v1::baton_service_finish_task_request::FinalState;
use baton_torq::proto::baton_v1::task::{EventFeedTask, GrantTask, HelloTask, SyncFullTask, TaskType};
use baton_torq::sim::{Endpoint, FaultKind, FaultPlan, SimConfig, SimServer, SimUser, Workspace};
use common::c1_key::test_key;
use common::c1z_reader::C1zReader;
use common::connect_proxy::ConnectProxy;
use common::fake_c1::task;
use common::fake_c1::{FakeC1, FakeC1Config, PROXIED_HOST, TEST_CLIENT_ID as CLIENT_ID};
use common::harness::{clean_command, reference_workspace, service_command, REFERENCE_JSON, SERVICE_HOST_ID};

async fn fake(private: &[u8; 32], reject_all_tokens: bool) -> FakeC1 {
    FakeC1::start(FakeC1Config { reject_all_tokens, ..FakeC1Config::for_test_key(private) }).await
}

/// What a daemon test starts from: a fresh client key and its secret, a fake ConductorOne that knows the key, a
/// folder holding the fake's CA certificate, and an empty folder for the daemon's temporary sync files.
struct Daemon {
    private: [u8; 32],
    secret: String,
    jwk_part: String,
    c1: FakeC1,
    dir: tempfile::TempDir,
    work: tempfile::TempDir,
    ca: std::path::PathBuf,
}

impl Daemon {
    async fn new() -> Daemon {
        let (private, secret, jwk_part) = test_key();
        let c1 = fake(&private, false).await;
        let dir = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let ca = c1.write_ca(dir.path());
        Daemon { private, secret, jwk_part, c1, dir, work, ca }
    }

    /// The daemon's command against Torq at `api`/`auth`, trusting the fake's certificate.
    fn command(&self, api: &str, auth: &str) -> tokio::process::Command {
        service_command(api, auth, CLIENT_ID, &self.secret, &self.c1, Some(&self.ca), self.work.path())
    }

    /// Starts the daemon with JSON logs on a piped stderr and stdout discarded.
    fn spawn(&self, api: &str, auth: &str) -> tokio::process::Child {
        self.command(api, auth)
            .args(["--log-format", "json"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Output must not contain the secret, its key part, the private key or any issued token.
    fn assert_no_secret(&self, text: &str) {
        assert_no_secret(text, &self.secret, &self.jwk_part, &self.private);
    }

    /// Nothing left in the folder for temporary sync files.
    fn assert_work_dir_empty(&self) {
        assert_eq!(std::fs::read_dir(self.work.path()).unwrap().count(), 0, "temporary sync files are removed");
    }
}

/// SIGTERM to a daemon started by [`Daemon::spawn`]; it must exit 0 within 30 s. Returns its stderr.
async fn stop(child: tokio::process::Child) -> String {
    sigterm(&child);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    stderr
}

/// Output must not contain the secret, its key part, the private key or any issued token.
fn assert_no_secret(text: &str, secret: &str, jwk_part: &str, private: &[u8; 32]) {
    assert!(!text.contains(secret), "the client secret leaked:\n{text}");
    assert!(!text.contains(&jwk_part[..40.min(jwk_part.len())]), "the JWK leaked:\n{text}");
    assert!(!text.contains(&URL_SAFE_NO_PAD.encode(private)), "the private key leaked:\n{text}");
    assert!(!text.contains("tok-"), "an access token leaked:\n{text}");
    assert!(!text.contains("Bearer "), "an authorization header leaked:\n{text}");
}

fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("child is running");
    let status = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap();
    assert!(status.success());
}

fn error_of(f: &baton_torq::proto::baton_v1::BatonServiceFinishTaskRequest) -> (i32, String, bool) {
    let status = f.status.clone().expect("an error carries a google.rpc.Status");
    match &f.final_state {
        Some(FinalState::Error(e)) => (status.code, status.message, e.non_retryable),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_runs_each_task_type_uploads_the_sync_and_stops_on_sigterm() {
    let daemon = Daemon::new().await;
    let (c1, dir) = (&daemon.c1, daemon.dir.path());
    let sim = SimServer::start(reference_workspace(), SimConfig::default()).await.unwrap();

    c1.push_task(task("2hellotask000000000000000001", TaskType::Hello(HelloTask::default())));
    c1.push_task(task("2syncfulltask000000000000001", TaskType::SyncFull(SyncFullTask::default())));
    c1.push_task(task("2unknowntask0000000000000001", TaskType::EventFeed(EventFeedTask {})));
    c1.push_task(task("2granttask00000000000000001", TaskType::Grant(GrantTask::default())));
    c1.push_task(task("2cancelledtask00000000000001", TaskType::SyncFull(SyncFullTask::default())));
    c1.cancel_on_heartbeat("2cancelledtask00000000000001");

    let stderr_path = dir.join("stderr.log");
    let mut child = daemon
        .command(&sim.api_url(), &sim.auth_url())
        .args(["--log-level", "debug", "--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();

    c1.wait_for("four FinishTasks and two Hellos", Duration::from_secs(60), |r| {
        r.finishes.len() >= 4 && r.hellos.len() >= 2
    })
    .await;
    // A few more polls prove the loop goes on after the tasks.
    let polls = c1.with_record(|r| r.get_tasks);
    c1.wait_for("more polls", Duration::from_secs(10), |r| r.get_tasks >= polls + 2).await;

    sigterm(&child);
    let status =
        tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("exits after SIGTERM").unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    let mut stdout = String::new();
    tokio::io::AsyncReadExt::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).await.unwrap();
    assert!(stdout.is_empty(), "service mode prints nothing on stdout: {stdout}");

    // Hello at start-up (no task id) and for the hello task, with full build and OS info.
    c1.with_record(|r| {
        assert_eq!(r.hellos[0].task_id, "", "the start-up Hello comes first");
        assert!(r.hellos.iter().any(|h| h.task_id == "2hellotask000000000000000001"));
        for h in &r.hellos {
            assert_eq!(h.host_id, SERVICE_HOST_ID);
            let b = h.build_info.as_ref().unwrap();
            assert_eq!((b.package.as_str(), b.package_version.as_str()), ("baton-torq", env!("CARGO_PKG_VERSION")));
            assert!(b.lang_version.starts_with("rust"), "{}", b.lang_version);
            assert_eq!(h.connector_metadata.as_ref().unwrap().display_name, "Torq");
        }
        assert!(r.token_rejections.is_empty(), "{:?}", r.token_rejections);
        assert_eq!(r.unauthenticated_calls, 0);
        assert!(
            r.user_agents.iter().any(|ua| ua.contains(concat!("baton-torq/", env!("CARGO_PKG_VERSION")))),
            "{:?}",
            r.user_agents
        );
        assert_eq!(r.host_ids, BTreeSet::from([SERVICE_HOST_ID.to_owned()]).into_iter().collect());
        assert!(r.upload_rejections.is_empty(), "{:?}", r.upload_rejections);
    });
    assert!(c1.finish_of("2hellotask000000000000000001").is_none(), "hello tasks are answered with Hello only");

    // sync_full: heartbeat, upload of a c1z holding exactly the simulated workspace, FinishTask success.
    let sync_id = "2syncfulltask000000000000001";
    let f = c1.finish_of(sync_id).expect("FinishTask for the sync task");
    assert!(matches!(f.final_state, Some(FinalState::Success(_))), "{f:?}");
    assert!(f.status.is_none());
    assert!(c1.with_record(|r| r.heartbeats.iter().any(|h| h == sync_id)), "heartbeat before the sync");
    let upload = c1.with_record(|r| r.uploads.iter().find(|u| u.task_id == sync_id).cloned()).expect("upload");
    assert_eq!(upload.host_id, SERVICE_HOST_ID);
    let (last, full) = upload.chunk_sizes.split_last().unwrap();
    assert!(full.iter().all(|s| *s == 512 * 1024) && *last <= 512 * 1024, "{:?}", upload.chunk_sizes);
    let file = dir.join("uploaded.c1z");
    std::fs::write(&file, &upload.data).unwrap();
    assert_uploaded_c1z_equals_fixture(&file);

    // Unknown type, provisioning, cancelled.
    let (code, message, non_retryable) = error_of(&c1.finish_of("2unknowntask0000000000000001").unwrap());
    assert_eq!(code, tonic::Code::Unimplemented as i32);
    assert!(message.contains("unsupported task type"), "{message}");
    assert!(non_retryable);
    let (code, message, non_retryable) = error_of(&c1.finish_of("2granttask00000000000000001").unwrap());
    assert_eq!(code, tonic::Code::FailedPrecondition as i32, "{message}");
    assert!(non_retryable);
    let (code, message, _) = error_of(&c1.finish_of("2cancelledtask00000000000001").unwrap());
    assert_eq!(code, tonic::Code::Cancelled as i32, "{message}");
    assert!(message.contains("cancelled by ConductorOne"), "{message}");
    assert!(c1.with_record(|r| r.uploads.iter().all(|u| u.task_id != "2cancelledtask00000000000001")));
    c1.with_record(|r| {
        let mut ids: Vec<&str> = r.finishes.iter().map(|f| f.task_id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), r.finishes.len(), "one FinishTask per task");
    });

    // No secrets at debug level; no temp file left behind.
    daemon.assert_no_secret(&stderr);
    assert!(stderr.contains("task finished"), "{stderr}");
    daemon.assert_work_dir_empty();
    sim.shutdown().await;
}

fn assert_uploaded_c1z_equals_fixture(file: &Path) {
    let v: serde_json::Value = serde_json::from_str(REFERENCE_JSON).unwrap();
    let users: Vec<SimUser> = serde_json::from_value(v["users"].clone()).unwrap();
    let role_ids: BTreeSet<String> =
        v["roles"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    let reader = C1zReader::open(file);
    let runs = reader.sync_runs();
    assert_eq!(runs.len(), 1, "the upload holds exactly one sync");
    assert!(runs[0].ended_at.is_some());
    assert_eq!(runs[0].sync_type.as_deref(), Some("full"));
    let sync_id = reader.default_sync_id();
    reader.check_integrity(&sync_id);
    let resources = reader.resources(&sync_id);
    let ids = |t: &str| -> BTreeSet<String> {
        resources
            .iter()
            .filter(|r| r.resource_type_id == t)
            .map(|r| r.data.id.as_ref().unwrap().resource.clone())
            .collect()
    };
    assert_eq!(ids("user"), users.iter().map(|u| u.id.clone()).collect());
    assert_eq!(ids("role"), role_ids);
    let ents: BTreeSet<String> = reader.entitlements(&sync_id).iter().map(|e| e.data.id.clone()).collect();
    assert_eq!(ents, role_ids.iter().map(|r| format!("role:{r}:member")).collect());
    let grants: BTreeSet<String> = reader.grants(&sync_id).iter().map(|g| g.external_id.clone()).collect();
    let expected: BTreeSet<String> = users.iter().map(|u| format!("role:{}:member:user:{}", u.role_id, u.id)).collect();
    assert_eq!(grants, expected);
}

/// Torq rejects the connector's API key after a good start (it was revoked): running the task again cannot help
/// until someone changes the key, so the task fails for good (ConductorOne does not retry it) with
/// Unauthenticated and the fix in the message. (A key rejected at start stops the daemon: tests/health.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_torq_credentials_fail_the_sync_task_for_good() {
    let daemon = Daemon::new().await;
    let c1 = &daemon.c1;
    let sim = SimServer::start(reference_workspace(), SimConfig::default()).await.unwrap();
    let child = daemon.spawn(&sim.api_url(), &sim.auth_url());
    c1.wait_for("the daemon's Hello", Duration::from_secs(30), |r| !r.hellos.is_empty()).await;
    sim.set_faults(
        FaultPlan::new()
            .always(Endpoint::AnyApi, FaultKind::Status(401))
            .always(Endpoint::Token, FaultKind::Status(401)),
    );
    c1.push_task(task("2badtorqkey0000000000000001", TaskType::SyncFull(SyncFullTask::default())));
    c1.wait_for("FinishTask of the sync", Duration::from_secs(60), |r| !r.finishes.is_empty()).await;
    let stderr = stop(child).await;
    let (code, message, non_retryable) = error_of(&c1.finish_of("2badtorqkey0000000000000001").unwrap());
    assert_eq!(code, tonic::Code::Unauthenticated as i32, "{message}");
    assert!(non_retryable, "a rejected key is not retried: {message}");
    assert!(message.contains("sync failed") && message.contains("BATON_TORQ_CLIENT_SECRET"), "{message}");
    daemon.assert_no_secret(&stderr);
    sim.shutdown().await;
}

/// Behind a proxy that asks for credentials: ConductorOne is known by a name only the proxy resolves, so the token
/// request and the gRPC channel (Hello, GetTask, the upload, FinishTask) can only have gone through the tunnel, and
/// each CONNECT must carry the proxy's user and password from `HTTPS_PROXY` (never logged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_mode_reaches_conductorone_through_an_https_proxy() {
    let daemon = Daemon::new().await;
    let c1 = &daemon.c1;
    let proxy = ConnectProxy::start(&[(PROXIED_HOST, c1.addr())]).await;
    let sim = SimServer::start(reference_workspace(), SimConfig::default()).await.unwrap();
    c1.push_task(task("2proxiedsynctask000000000001", TaskType::SyncFull(SyncFullTask::default())));
    let host = format!("{PROXIED_HOST}:{}", c1.addr().port());
    let child = daemon
        .command(&sim.api_url(), &sim.auth_url())
        .env("BATON_C1_API_HOST", &host)
        .env("HTTPS_PROXY", proxy.url_with_credentials("proxy-user", "pr0xy-pw"))
        .args(["--log-format", "json", "--log-level", "trace"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c1.wait_for("FinishTask of the sync", Duration::from_secs(60), |r| !r.finishes.is_empty()).await;
    let stderr = stop(child).await;
    let f = c1.finish_of("2proxiedsynctask000000000001").expect("FinishTask");
    assert!(matches!(f.final_state, Some(FinalState::Success(_))), "{f:?}\n{stderr}");
    assert!(c1.with_record(|r| r.uploads.len()) == 1, "the sync was uploaded");
    let targets = proxy.targets();
    assert!(!targets.is_empty() && targets.iter().all(|t| *t == host), "{targets:?}");
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("proxy-user:pr0xy-pw"));
    let authorizations = proxy.authorizations();
    assert!(authorizations.iter().all(|a| a.as_deref() == Some(basic.as_str())), "{authorizations:?}");
    assert!(!stderr.contains("pr0xy-pw"), "the proxy password was logged");
    daemon.assert_no_secret(&stderr);
    sim.shutdown().await;
}

/// A proxy the tunnel cannot use is refused at start with one line that never repeats the proxy's password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_cannot_carry_the_grpc_tunnel_is_refused_at_start() {
    let daemon = Daemon::new().await;
    for proxy in ["https://user:pr0xy-pw@127.0.0.1:1", "socks5://user:pr0xy-pw@127.0.0.1:1"] {
        let mut cmd = daemon.command("http://127.0.0.1:1/p", "http://127.0.0.1:1/t");
        cmd.env("HTTPS_PROXY", proxy).args(["--log-format", "console"]).stdout(Stdio::null());
        let out = tokio::time::timeout(Duration::from_secs(30), cmd.output()).await.expect("exits").unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{proxy}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        let scheme = proxy.split(':').next().unwrap_or_default();
        assert!(err.contains(&format!("is a {scheme}:// proxy")) && err.contains("http:// proxies only"), "{err}");
        assert!(!err.contains("pr0xy-pw"), "{err}");
    }
}

/// A service setting that cannot work stops the start with one line naming the flag and its variable, exit 2,
/// before a token is asked for or a Hello is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_setting_that_cannot_work_is_one_line_and_exit_2() {
    let daemon = Daemon::new().await;
    let not_pem = daemon.dir.path().join("not-a-cert.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    let missing_dir = daemon.dir.path().join("no-such-dir");
    let cases: [(&str, &std::ffi::OsStr, &str, &str); 4] = [
        ("BATON_C1_API_HOST", "https://c1.example.test".as_ref(), "--c1-api-host", "BATON_C1_API_HOST"),
        ("BATON_C1_CA_CERT_FILE", not_pem.as_os_str(), "--c1-ca-cert-file", "BATON_C1_CA_CERT_FILE"),
        ("BATON_C1Z_TEMP_DIR", missing_dir.as_os_str(), "--c1z-temp-dir", "BATON_C1Z_TEMP_DIR"),
        ("BATON_CLIENT_ID", "   ".as_ref(), "--client-id", "BATON_CLIENT_ID"),
    ];
    for (var, value, flag, env) in cases {
        let mut cmd = daemon.command("http://127.0.0.1:1/p", "http://127.0.0.1:1/t");
        cmd.env(var, value).args(["--log-format", "console"]).stdout(Stdio::null());
        let out = tokio::time::timeout(Duration::from_secs(30), cmd.output()).await.expect("exits").unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{var}: {err}");
        assert_eq!(err.lines().count(), 1, "{var}: {err}");
        assert!(err.starts_with("error: ") && err.contains(flag) && err.contains(env), "{var}: {err}");
        daemon.assert_no_secret(&err);
    }
    let (tokens, hellos) = daemon.c1.with_record(|r| (r.token_requests, r.hellos.len()));
    assert_eq!((tokens, hellos), (0, 0), "nothing may be sent to ConductorOne");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torq_down_fails_the_sync_task_retryably_and_the_daemon_keeps_polling() {
    let daemon = Daemon::new().await;
    let c1 = &daemon.c1;
    // Nothing listens on this port: every Torq request is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let api = format!("http://127.0.0.1:{port}/public/v1alpha");
    let auth = format!("http://127.0.0.1:{port}/v1/auth/token");
    c1.push_task(task("2torqdowntask000000000000001", TaskType::SyncFull(SyncFullTask::default())));

    let child = daemon.spawn(&api, &auth);
    c1.wait_for("FinishTask of the sync", Duration::from_secs(90), |r| !r.finishes.is_empty()).await;
    let (code, message, non_retryable) = error_of(&c1.finish_of("2torqdowntask000000000000001").unwrap());
    assert_eq!(code, tonic::Code::Unavailable as i32, "{message}");
    assert!(!non_retryable, "a sync failure is retryable");
    assert!(message.contains("sync failed"), "{message}");

    // Still polling: a later hello task is answered.
    c1.push_task(task("2laterhello0000000000000001", TaskType::Hello(HelloTask::default())));
    c1.wait_for("the later hello", Duration::from_secs(20), |r| {
        r.hellos.iter().any(|h| h.task_id == "2laterhello0000000000000001")
    })
    .await;
    let stderr = stop(child).await;
    daemon.assert_no_secret(&stderr);
    daemon.assert_work_dir_empty();
}

/// Runs the binary with `client_id`/`secret` and returns (exit code, stderr); asserts one line, empty stdout.
async fn run_to_failure(c1: &FakeC1, client_id: &str, secret: &str, trust: bool) -> (i32, String) {
    let sim = SimServer::start(Workspace::demo(), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = c1.write_ca(dir.path());
    let mut cmd = service_command(
        &sim.api_url(),
        &sim.auth_url(),
        client_id,
        secret,
        c1,
        trust.then_some(ca.as_path()),
        dir.path(),
    );
    cmd.args(["--log-level", "warn", "--log-format", "console"]).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.expect("exits by itself").unwrap();
    sim.shutdown().await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.stdout.is_empty());
    assert_eq!(stderr.lines().filter(|l| !l.trim().is_empty()).count(), 1, "one line:\n{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_give_one_clear_line_and_a_non_zero_exit_without_the_secret() {
    let (private, secret, jwk_part) = test_key();
    let c1 = fake(&private, false).await;

    let (code, err) = run_to_failure(&c1, "no-at-sign", &secret, true).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--client-id") && err.contains("<name>@<tenant-host>/<suffix>"), "{err}");
    assert_no_secret(&err, &secret, &jwk_part, &private);

    let malformed = "secret-token:conductorone.com:v1:not*base64*at*all";
    let (code, err) = run_to_failure(&c1, CLIENT_ID, malformed, true).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--client-secret") && !err.contains("not*base64"), "{err}");

    let ec_jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "d": URL_SAFE_NO_PAD.encode([9u8; 32]),
        "x": URL_SAFE_NO_PAD.encode([1u8; 32]), "y": URL_SAFE_NO_PAD.encode([2u8; 32])});
    let ec_part = URL_SAFE_NO_PAD.encode(ec_jwk.to_string());
    let ec_secret = format!("secret-token:conductorone.com:v1:{ec_part}");
    let (code, err) = run_to_failure(&c1, CLIENT_ID, &ec_secret, true).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not an Ed25519 key"), "{err}");
    assert!(!err.contains(&ec_part[..30]) && !err.contains(&URL_SAFE_NO_PAD.encode([9u8; 32])), "{err}");

    // A key the fake does not know: the signature check fails, the endpoint answers 401.
    let (other_private, other_secret, other_part) = test_key();
    let (code, err) = run_to_failure(&c1, CLIENT_ID, &other_secret, true).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("rejected the client credentials") && err.contains("401"), "{err}");
    assert_no_secret(&err, &other_secret, &other_part, &other_private);
    assert!(c1.with_record(|r| r.token_rejections.iter().any(|w| w == "bad signature")));

    // Untrusted certificate (no BATON_C1_CA_CERT_FILE).
    let (code, err) = run_to_failure(&c1, CLIENT_ID, &secret, false).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("TLS") && err.to_lowercase().contains("certificate"), "{err}");
    // The host, the reason and the fix, at once (a retry cannot change a certificate).
    assert!(err.contains(&format!("https://{}/auth/v1/token", c1.api_host())), "{err}");
    assert!(err.contains("signed by an issuer this machine does not trust"), "{err}");
    assert!(err.contains("retrying cannot fix this") && err.contains("BATON_C1_CA_CERT_FILE"), "{err}");
    assert_no_secret(&err, &secret, &jwk_part, &private);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_answering_401_stops_the_daemon_with_exit_1() {
    let (private, secret, jwk_part) = test_key();
    let c1 = fake(&private, true).await;
    let (code, err) = run_to_failure(&c1, CLIENT_ID, &secret, true).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("401") && err.contains("BATON_CLIENT_SECRET"), "{err}");
    assert_no_secret(&err, &secret, &jwk_part, &private);

    // The id without a secret is a usage error too.
    let sim = SimServer::start(Workspace::demo(), SimConfig::default()).await.unwrap();
    let out = clean_command()
        .env("BATON_TORQ_CLIENT_ID", "x")
        .env("BATON_TORQ_CLIENT_SECRET", "y")
        .env("BATON_TORQ_API_URL", sim.api_url())
        .env("BATON_TORQ_AUTH_URL", sim.auth_url())
        .env("BATON_CLIENT_ID", CLIENT_ID)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--client-secret"), "{stderr}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_sync_finishes_the_task_as_cancelled_and_exits_0() {
    let daemon = Daemon::new().await;
    let c1 = &daemon.c1;
    // Every Torq answer takes 2 s, so the sync is still running when SIGTERM arrives.
    let slow = SimConfig { latency: Duration::from_secs(2), ..SimConfig::default() };
    let sim = SimServer::start(reference_workspace(), slow).await.unwrap();
    let id = "2inflighttask000000000000001";
    c1.push_task(task(id, TaskType::SyncFull(SyncFullTask::default())));
    let child = daemon.spawn(&sim.api_url(), &sim.auth_url());
    c1.wait_for("the first heartbeat", Duration::from_secs(30), |r| r.heartbeats.iter().any(|h| h == id)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stderr = stop(child).await;
    let (code, message, non_retryable) = error_of(&c1.finish_of(id).expect("the in-flight task is finished"));
    assert_eq!(code, tonic::Code::Cancelled as i32, "{message}");
    assert!(message.contains("shutting down"), "{message}");
    assert!(!non_retryable, "ConductorOne may run it again");
    assert!(c1.with_record(|r| r.uploads.is_empty()));
    daemon.assert_work_dir_empty();
    daemon.assert_no_secret(&stderr);
    sim.shutdown().await;
}

/// `sync_resource_type_ids` of a sync task is honoured: only those resource types are synced and uploaded; a task
/// naming only types the connector does not have fails as InvalidArgument.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_task_limited_to_resource_types_uploads_only_those() {
    let daemon = Daemon::new().await;
    let c1 = &daemon.c1;
    let sim = SimServer::start(reference_workspace(), SimConfig::default()).await.unwrap();
    let limited = SyncFullTask { sync_resource_type_ids: vec!["user".into()], ..Default::default() };
    c1.push_task(task("2userssynctask00000000000001", TaskType::SyncFull(limited)));
    let unknown = SyncFullTask { sync_resource_type_ids: vec!["group".into()], ..Default::default() };
    c1.push_task(task("2unknowntypes00000000000001", TaskType::SyncFull(unknown)));

    let child = daemon.spawn(&sim.api_url(), &sim.auth_url());
    c1.wait_for("two FinishTasks", Duration::from_secs(60), |r| r.finishes.len() >= 2).await;
    stop(child).await;

    let f = c1.finish_of("2userssynctask00000000000001").expect("FinishTask");
    assert!(matches!(f.final_state, Some(FinalState::Success(_))), "{f:?}");
    let upload = c1
        .with_record(|r| r.uploads.iter().find(|u| u.task_id == "2userssynctask00000000000001").cloned())
        .expect("upload");
    let file = daemon.dir.path().join("users.c1z");
    std::fs::write(&file, &upload.data).unwrap();
    let reader = C1zReader::open(&file);
    let sync_id = reader.default_sync_id();
    reader.check_integrity(&sync_id);
    let types: Vec<String> = reader.resource_types(&sync_id).into_iter().map(|t| t.external_id).collect();
    assert_eq!(types, ["user"]);
    assert_eq!(reader.resources(&sync_id).len(), 12, "the fixture's users, nothing else");
    assert!(reader.grants(&sync_id).is_empty(), "roles are not synced, so no role grants");
    let stats = sim.stats();
    // The one role page is the start-up check of the Torq key (`page_size=1`), not the sync's.
    assert_eq!((stats.rbac_roles, stats.role_pages, stats.api_keys), (0, 1, 0), "only the users were listed");

    let (code, message, _) = error_of(&c1.finish_of("2unknowntypes00000000000001").expect("FinishTask"));
    assert_eq!(code, tonic::Code::InvalidArgument as i32, "{message}");
    assert!(message.contains("group") && message.contains("user, role, api_key"), "{message}");
    sim.shutdown().await;
}
