//! The built binary against hostile text, local files and endless servers (issue 25): server text that tries to
//! drive the terminal, local paths that would block (FIFOs), a proxy that must never see a plain-http request,
//! look-alike email addresses and config files built to take the parser's time.
//!
//! Each test checks what a user would: the exit code, the one line printed, what reached the terminal, what the
//! simulated Torq or the recording proxy received.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_torq::sim::{Endpoint, FaultKind, FaultPlan, SimConfig, SimRole, SimServer, SimUser, Workspace};
use common::harness;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Terminal control a hostile server could send: retitle the window, clear the screen, forge a new line, reverse
/// the text that follows, hide a character.
const OSC_TITLE: &str = "\u{1b}]0;pwned\u{7}";
const CLEAR: &str = "\u{1b}[2J";
const FORGED_LINE: &str = "\r\nERROR forged line";
const RLO: char = '\u{202e}';
const ZWSP: char = '\u{200b}';

/// A user of the reference workspace: ken.thompson@example.com.
const KEN_ID: &str = "6cc3ba50-3183-4d1d-b933-dffe9f578985";

/// Nothing in `text` can drive a terminal: no C0/C1 control but the newline ending each line, no bidi override,
/// no zero-width space; and no line starts with the forged text.
fn assert_terminal_safe(text: &str) {
    for c in text.chars() {
        let control = c.is_control() && c != '\n';
        assert!(!control && c != RLO && c != ZWSP, "raw {c:?} reached the terminal:\n{}", text.escape_debug());
    }
    assert!(!text.lines().any(|l| l.starts_with("ERROR forged")), "a forged line:\n{text}");
}

fn user(id: &str, email: &str, role_id: &str) -> SimUser {
    SimUser {
        id: id.into(),
        email: email.into(),
        role_id: role_id.into(),
        status: "VERIFIED".into(),
        sso_provision: false,
        created_time: None,
        last_login_time: None,
    }
}

fn role(id: &str, name: &str) -> SimRole {
    SimRole { id: id.into(), name: name.into(), ..SimRole::default() }
}

/// The reference workspace plus a hostile user without an id, a user whose role Torq does not list (both are
/// logged), a role without an id whose name is 900 KB, and a role whose name forges a line.
fn hostile_workspace() -> Workspace {
    let mut workspace = harness::reference_workspace();
    let Workspace::Fixed { users, roles, .. } = &mut workspace else { panic!("a fixed workspace") };
    users.push(user(
        "",
        &format!("no-id{OSC_TITLE}{FORGED_LINE}{RLO}@example.com"),
        "e2a214e8-bbe9-4675-9d52-490575ffc53d",
    ));
    users.push(user(&format!("u{CLEAR}{RLO}1"), "stray@example.com", &format!("gone{FORGED_LINE}{ZWSP}")));
    roles.push(role("", &"R".repeat(900 * 1024)));
    roles.push(role("forging-role", &format!("Operator{FORGED_LINE}{OSC_TITLE}")));
    workspace
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_text_in_console_logs_is_escaped_and_one_record_is_one_line() {
    let sim = SimServer::start(hostile_workspace(), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = harness::run(&sim, &dir.path().join("sync.c1z"), &["--log-format", "console", "--verbose"]).await;
    let err = harness::stderr(&out);
    harness::assert_success(&out);
    assert_terminal_safe(&err);
    // The values are there, escaped: the user without an id, the unknown role, the role without an id.
    assert!(err.contains("no-id\\u{1b}]0;pwned\\u{7}\\r\\nERROR forged line\\u{202e}@example.com"), "{err}");
    assert!(err.contains("gone\\r\\nERROR forged line\\u{200b}"), "{err}");
    assert!(err.contains("u\\u{1b}[2J\\u{202e}1"), "{err}");
    // The 900 KB name is cut, with its length said.
    assert!(err.contains("… [cut: 921600 bytes in all]"), "{}", &err[..err.len().min(4000)]);
    assert!(err.len() < 64 * 1024, "stderr is {} bytes", err.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_keep_server_text_whole() {
    let sim = SimServer::start(hostile_workspace(), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = harness::run(&sim, &dir.path().join("sync.c1z"), &["--log-format", "json"]).await;
    harness::assert_success(&out);
    let err = harness::stderr(&out);
    // serde_json escapes control characters itself (it keeps bidi and zero-width ones: JSON is for programs).
    assert!(!err.chars().any(|c| c.is_control() && c != '\n'), "{}", err.escape_debug());
    // The value is whole, not cut or re-escaped.
    let records: Vec<serde_json::Value> =
        err.lines().map(|l| serde_json::from_str(l).expect("a JSON record")).collect();
    let emails: Vec<&str> = records.iter().filter_map(|r| r["email"].as_str()).collect();
    assert!(emails.contains(&format!("no-id{OSC_TITLE}{FORGED_LINE}{RLO}@example.com").as_str()), "{emails:?}");
    assert!(records.iter().any(|r| r["name"].as_str().is_some_and(|n| n.len() == 900 * 1024)));
}

/// `-p --create-account-*` against `sim` with `args`; console logs.
async fn create_account(sim: &SimServer, dir: &Path, args: &[&str]) -> Output {
    harness::command(sim, &SimConfig::default(), &dir.join("sync.c1z"))
        .args(["--log-format", "console", "-p"])
        .args(args)
        .output()
        .await
        .expect("binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invite_result_on_stdout_is_one_escaped_line() {
    let sim = SimServer::start(hostile_workspace(), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let profile = r#"{"role":"forging-role"}"#;
    let out = create_account(
        &sim,
        dir.path(),
        &["--create-account-email", "new@example.com", "--create-account-profile", profile],
    )
    .await;
    harness::assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_terminal_safe(&stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with("created: Torq user ") && stdout.contains("Operator\\r\\nERROR forged line"),
        "{stdout}"
    );
    assert_terminal_safe(&harness::stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_role_error_is_one_escaped_line_with_long_names_cut() {
    let sim = SimServer::start(hostile_workspace(), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let profile = r#"{"role":"no such role"}"#;
    let out = create_account(
        &sim,
        dir.path(),
        &["--create-account-email", "new@example.com", "--create-account-profile", profile],
    )
    .await;
    let err = harness::stderr(&out);
    assert_eq!(harness::code(&out), Some(2), "{}", &err[..err.len().min(4000)]);
    assert_terminal_safe(&err);
    assert_eq!(err.lines().count(), 1, "{}", &err[..err.len().min(4000)]);
    assert!(err.starts_with("error: unknown Torq role \"no such role\""), "{}", &err[..err.len().min(4000)]);
    assert!(err.contains("[cut: 921600 bytes in all]") && err.len() < 16 * 1024, "{} bytes", err.len());
    assert!(sim.invited_users().is_empty());
}

/// A FIFO at `path` (nothing ever opens its other end).
fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(rustix::fs::CWD, path, rustix::fs::Mode::from_raw_mode(0o600)).expect("mkfifo");
}

/// Runs `cmd` with console logs, expecting it to end within 30 s (a run blocked on a FIFO never would).
async fn ends(cmd: &mut tokio::process::Command) -> Output {
    cmd.args(["--log-format", "console"]).kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("the run did not end within 30 s (blocked on a local file, or waiting)")
        .expect("binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_as_the_lock_file_is_refused_at_once() {
    let sim = SimServer::start(harness::reference_workspace(), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join(".sync.c1z.lock"));
    let out = ends(&mut harness::command(&sim, &SimConfig::default(), &dir.path().join("sync.c1z"))).await;
    let err = harness::stderr(&out);
    assert_eq!(harness::code(&out), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(".sync.c1z.lock is a FIFO (named pipe), not a regular file"), "{err}");
    assert!(!dir.path().join("sync.c1z").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_as_the_config_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // As ./.baton.yaml, and as BATON_CONFIG_PATH.
    mkfifo(&dir.path().join(".baton.yaml"));
    let named = dir.path().join("named.yaml");
    mkfifo(&named);
    for config_path in [None, Some(&named)] {
        let mut cmd = harness::command_in(dir.path());
        if let Some(path) = config_path {
            cmd.env("BATON_CONFIG_PATH", path);
        }
        let out = ends(cmd.arg("capabilities")).await;
        let err = harness::stderr(&out);
        assert_eq!(harness::code(&out), Some(2), "{config_path:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("is a FIFO (named pipe), not a regular file"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_as_the_ca_file_is_refused_at_once() {
    let (c1, secret) = common::fake_c1::FakeC1::start_for_new_key().await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("ca.pem");
    mkfifo(&fifo);
    let torq = "http://127.0.0.1:1/public/v1alpha";
    let mut cmd = harness::service_command(
        torq,
        "http://127.0.0.1:1/token",
        common::fake_c1::TEST_CLIENT_ID,
        &secret,
        &c1,
        Some(&fifo),
        dir.path(),
    );
    let out = ends(&mut cmd).await;
    let err = harness::stderr(&out);
    assert_eq!(harness::code(&out), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("ca.pem is a FIFO (named pipe), not a regular file") && err.contains("--c1-ca-cert-file"),
        "{err}"
    );
}

/// A plain-HTTP proxy that records the head of every request it gets and answers 502.
struct RecordingProxy {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl RecordingProxy {
    async fn start() -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let recorded = heads.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    recorded.lock().unwrap().push(String::from_utf8_lossy(&buf).into_owned());
                    let _ = socket
                        .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                });
            }
        });
        RecordingProxy { url, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_token_request_never_goes_through_a_proxy() {
    // The token endpoint is plain http on loopback (allowed), the API https elsewhere; every proxy variable is set.
    let sim = SimServer::start(harness::reference_workspace(), SimConfig::default()).await.unwrap();
    let proxy = RecordingProxy::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = SimConfig::default();
    let mut cmd = harness::command_with(
        &cfg.client_id,
        &cfg.client_secret,
        "https://torq-api.invalid/public/v1alpha",
        &sim.auth_url(),
        &dir.path().join("sync.c1z"),
    );
    for var in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"] {
        cmd.env(var, &proxy.url);
    }
    let out = ends(cmd.args(["--http-timeout-seconds", "2"])).await;
    let heads = proxy.heads();
    // The token came straight from the simulator; the proxy saw no plain-http request, so no Basic credentials.
    assert!(heads.iter().all(|h| !h.starts_with("POST ") && !h.contains("uthorization")), "{heads:#?}");
    assert_eq!(sim.issued_tokens().len(), 1, "{}", harness::stderr(&out));
    assert_eq!(harness::code(&out), Some(1), "{}", harness::stderr(&out));
}

/// `-p --create-account-email` with the given address against the reference workspace.
async fn invite(email: &str) -> (Output, SimServer) {
    let sim = SimServer::start(harness::reference_workspace(), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = create_account(&sim, dir.path(), &["--create-account-email", email]).await;
    (out, sim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_exists_compares_emails_as_torq_does_without_unicode_folding() {
    // ASCII case does not matter: "KEN.THOMPSON@EXAMPLE.COM" is ken's.
    let (out, _) = invite("KEN.THOMPSON@EXAMPLE.COM").await;
    harness::assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.starts_with(&format!("already exists: Torq user {KEN_ID} ")), "{stdout}");
    // "Ken" written with U+212A KELVIN SIGN lowercases to ken's address, but Torq does not fold it: another address.
    let (out, sim) = invite("\u{212a}en.thompson@example.com").await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!stdout.contains(KEN_ID), "a look-alike address was taken for ken's: {stdout}");
    assert!(stdout.starts_with("created: "), "{stdout}{}", harness::stderr(&out));
    assert_eq!(sim.invited_users().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_with_invisible_or_bidi_characters_is_refused_before_any_request() {
    for email in ["new\u{200b}hire@example.com", "new@exa\u{202e}moc.elp", "new@example.com\u{feff}"] {
        let (out, sim) = invite(email).await;
        let err = harness::stderr(&out);
        assert_eq!(harness::code(&out), Some(2), "{err}");
        assert!(err.contains("invisible or text-direction character"), "{err}");
        assert_terminal_safe(&err);
        assert_eq!(sim.stats().total(), 0, "a request was sent for {email:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_config_files_are_answered_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let size = 1024 * 1024;
    // Flow nesting ([[[[...), block nesting (- - - ...) and a large flat file of comments: each within MAX_CONFIG_BYTES.
    let files = [
        ("flow", "[".repeat(size)),
        ("block", format!("{}x\n", "- ".repeat(size / 2 - 1))),
        ("mapping", "{a: ".repeat(size / 4)),
        ("comments", format!("{}torq-client-id: id\n", "# a comment line\n".repeat(size / 20))),
    ];
    for (name, text) in files {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, &text).unwrap();
        let started = Instant::now();
        let out = ends(harness::command_in(dir.path()).env("BATON_CONFIG_PATH", &path).arg("capabilities")).await;
        let took = started.elapsed();
        // Timed loosely (shared CI cores); the unfixed parser took minutes.
        assert!(took < Duration::from_secs(10), "{name}: {took:?}");
        let err = harness::stderr(&out);
        if name == "comments" {
            harness::assert_success(&out);
        } else {
            assert_eq!(harness::code(&out), Some(2), "{name}: {err}");
            assert_eq!(err.lines().count(), 1, "{name}: {err}");
            assert!(err.contains("nested"), "{name}: {err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_longer_than_the_run_waits_fails_at_once_saying_so() {
    // The unfixed client waited 120 s (its cap) per attempt, then said "check connectivity".
    let faults =
        FaultPlan::new().always(Endpoint::AnyApi, FaultKind::TooManyRequests { retry_after_secs: Some(999_999) });
    let sim =
        SimServer::start(harness::reference_workspace(), SimConfig { faults, ..SimConfig::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = ends(&mut harness::command(&sim, &SimConfig::default(), &dir.path().join("sync.c1z"))).await;
    let err = harness::stderr(&out);
    assert_eq!(harness::code(&out), Some(1), "{err}");
    assert!(err.contains("Torq asked to wait 999999 s before GET /") && err.contains("120 s at most"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    assert!(!dir.path().join("sync.c1z").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_output_file_is_refused_not_replaced() {
    use std::os::unix::fs::PermissionsExt as _;
    let sim = SimServer::start(harness::reference_workspace(), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    harness::assert_success(&harness::run(&sim, &file, &[]).await);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = std::fs::read(&file).unwrap();
    let requests = sim.stats().total();
    let out = ends(&mut harness::command(&sim, &SimConfig::default(), &file)).await;
    let err = harness::stderr(&out);
    assert_eq!(harness::code(&out), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("it is read-only (mode 0444), so it is not replaced") && err.contains("chmod u+w"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o444);
    assert_eq!(sim.stats().total(), requests, "nothing may be sent to Torq");
}
