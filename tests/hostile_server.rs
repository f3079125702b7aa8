//! The built binary against a hostile or broken Torq: servers written here, in the test, as raw HTTP on a tokio
//! TcpListener (bodies that never end, or drip a byte at a time), plus a token endpoint that relays real tokens of
//! the simulated Torq with a lifetime of its choosing (huge, zero, negative).
//!
//! Each test checks what a user would: the run ends (in bounded time), with one clear line and the right exit
//! code, and the client stopped reading what it did not need (the server counts the bytes it got rid of).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_torq::sim::{SimConfig, SimServer};
use common::harness::{clean_command, reference_workspace};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// How the hostile server answers a request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// 200 with this JSON.
    Json(&'static str),
    /// This status, then a chunked JSON-looking body written as fast as the client takes it, up to `ENDLESS_CAP`.
    Endless(u16),
    /// This status, then a chunked body of one byte every 200 ms, forever.
    Drip(u16),
    /// 200, then a chunked body that opens this JSON and a string in it that never closes, up to `ENDLESS_CAP`.
    EndlessString(&'static str),
    /// 200 with a page of 8 MiB (one role and an ignored padding field) and a `next_page_token` never sent before.
    BigPages,
    /// 200 with an empty user page and a `next_page_token` never sent before, for ever.
    EmptyPages,
    /// 200 with the same two users on every page and a `next_page_token` never sent before, for ever.
    SamePages,
}

/// An endless body stops here (far past every limit the client has), so an unfixed client ends too.
const ENDLESS_CAP: u64 = 256 * 1024 * 1024;

/// A raw HTTP/1.1 server answering by path: `/token`, a role list (`/roles` or `/users/roles`), the user lists
/// (`/users`); anything else (API keys, claim mappings) gets `{}`, which they read as empty lists.
struct Hostile {
    addr: SocketAddr,
    /// Largest number of body bytes one connection wrote before the client went away (or the cap).
    max_body_written: Arc<AtomicU64>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Hostile {
    async fn start(token: Answer, roles: Answer, users: Answer) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let max_body_written = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (written, seen) = (max_body_written.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { return };
                let (written, seen) = (written.clone(), seen.clone());
                tokio::spawn(async move {
                    let _ = serve(socket, token, roles, users, written, seen).await;
                });
            }
        });
        Hostile { addr, max_body_written, requests }
    }

    fn api_url(&self) -> String {
        format!("http://{}/public/v1alpha", self.addr)
    }

    fn auth_url(&self) -> String {
        format!("http://{}/v1/auth/token", self.addr)
    }

    fn max_body_written(&self) -> u64 {
        self.max_body_written.load(Ordering::Relaxed)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// One keep-alive connection: read a request head (and its body, by Content-Length), answer, repeat.
async fn serve(
    mut socket: TcpStream,
    token: Answer,
    roles: Answer,
    users: Answer,
    written: Arc<AtomicU64>,
    seen: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if !read_more(&mut socket, &mut buf).await? {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            if !read_more(&mut socket, &mut buf).await? {
                return Ok(());
            }
        }
        buf.drain(..head_end + length);
        let line = head.lines().next().unwrap_or("").to_owned();
        seen.lock().unwrap().push(line.clone());
        let path = line.split_whitespace().nth(1).unwrap_or("");
        let answer = if path.contains("/token") {
            token
        } else if path.contains("/roles") {
            roles
        } else if path.contains("/users") {
            users
        } else {
            // proto3's empty list: the list left out (an API-key or claim-mapping key would be another list).
            Answer::Json("{}")
        };
        let (status, prefix) = match answer {
            Answer::Endless(status) => (status, r#"{"message": ""#),
            Answer::EndlessString(prefix) => (200, prefix),
            _ => (200, ""),
        };
        match answer {
            Answer::Json(body) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                socket.write_all(head.as_bytes()).await?;
                socket.write_all(body.as_bytes()).await?;
            }
            Answer::Endless(_) | Answer::EndlessString(_) => {
                socket.write_all(chunked_head(status).as_bytes()).await?;
                // Chunks of 64 KiB: the first opens a JSON string that never closes.
                let chunk = |data: &[u8]| [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat();
                let mut first = prefix.as_bytes().to_vec();
                first.resize(64 * 1024, b'a');
                let (first, rest) = (chunk(&first), chunk(&[b'a'; 64 * 1024]));
                let mut sent = 0u64;
                while sent < ENDLESS_CAP {
                    let data = if sent == 0 { &first } else { &rest };
                    if socket.write_all(data).await.is_err() {
                        break;
                    }
                    sent += 64 * 1024;
                    written.fetch_max(sent, Ordering::Relaxed);
                }
                return Ok(());
            }
            Answer::BigPages => {
                static PAGES: AtomicU64 = AtomicU64::new(0);
                let page = PAGES.fetch_add(1, Ordering::Relaxed);
                let body = format!(
                    r#"{{"roles": [{{"id": "r{page}", "name": "n"}}], "next_page_token": "t{page}", "pad": "{}"}}"#,
                    "a".repeat(8 << 20)
                );
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                socket.write_all(head.as_bytes()).await?;
                socket.write_all(body.as_bytes()).await?;
            }
            Answer::EmptyPages | Answer::SamePages => {
                static PAGES: AtomicU64 = AtomicU64::new(0);
                let page = PAGES.fetch_add(1, Ordering::Relaxed);
                let users = if matches!(answer, Answer::SamePages) {
                    r#"{"id": "u1", "email": "a@x.com"}, {"id": "u2", "email": "b@x.com"}"#
                } else {
                    ""
                };
                let body = format!(r#"{{"users": [{users}], "next_page_token": "fresh-{page}"}}"#);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                socket.write_all(head.as_bytes()).await?;
                socket.write_all(body.as_bytes()).await?;
            }
            Answer::Drip(status) => {
                socket.write_all(chunked_head(status).as_bytes()).await?;
                socket.write_all(b"1\r\n{\r\n").await?;
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    socket.write_all(b"1\r\n \r\n").await?;
                }
            }
        }
    }
}

/// Appends what the client sent next to `buf`; false when the client closed the connection.
async fn read_more(socket: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 4096];
    let n = socket.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

fn chunked_head(status: u16) -> String {
    format!("HTTP/1.1 {status} Hostile\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
}

const TOKEN_OK: &str = r#"{"access_token": "hostile-token", "expires_in": 3600, "token_type": "Bearer"}"#;
const NO_USERS: &str = r#"{"users": []}"#;
const ONE_ROLE: &str = r#"{"roles": [{"id": "r1", "name": "Owner"}]}"#;

/// Runs a sync against `api`/`auth` with `--http-timeout-seconds timeout`; returns (exit code, stderr, wall time).
async fn sync(api: &str, auth: &str, timeout: u64, dir: &std::path::Path) -> (Option<i32>, String, Duration) {
    sync_as("hostile-client", "hostile-secret", api, auth, timeout, dir).await
}

/// [`sync`] with these client credentials.
async fn sync_as(
    id: &str,
    secret: &str,
    api: &str,
    auth: &str,
    timeout: u64,
    dir: &std::path::Path,
) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let mut cmd = clean_command();
    cmd.env("BATON_TORQ_CLIENT_ID", id)
        .env("BATON_TORQ_CLIENT_SECRET", secret)
        .env("BATON_TORQ_API_URL", api)
        .env("BATON_TORQ_AUTH_URL", auth)
        .args(["--http-timeout-seconds", &timeout.to_string(), "--log-format", "console", "-f"])
        .arg(dir.join("sync.c1z"))
        .kill_on_drop(true);
    // Generous: every case here ends in well under a minute once fixed; unfixed, some would never end.
    let out = tokio::time::timeout(Duration::from_secs(150), cmd.output())
        .await
        .expect("the run did not end within 150 s")
        .expect("binary runs");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), started.elapsed())
}

/// Socket buffers on loopback can hold several MiB that the client never read; anything far below the cap
/// shows the client stopped reading.
const STOPPED_READING: u64 = 48 * 1024 * 1024;

/// Starts a hostile server with these answers for the token, the role lists and the rest, and runs a sync against
/// it with `--http-timeout-seconds timeout` that must fail (exit 1) saying `expected`. Returns the server (for its
/// counters), the sync's folder and the sync's wall time.
async fn failing_sync(
    [token, roles, users]: [Answer; 3],
    timeout: u64,
    expected: &str,
) -> (Hostile, tempfile::TempDir, Duration) {
    let server = Hostile::start(token, roles, users).await;
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr, took) = sync(&server.api_url(), &server.auth_url(), timeout, dir.path()).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(expected), "expected {expected:?} in: {stderr}");
    (server, dir, took)
}

/// Bound for a run that gives up on a dripping body: 6 attempts of at most 2 s each plus backoff (at most ~16 s
/// with jitter), never the whole endless body.
const GIVES_UP_WITHIN: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_body_that_never_ends_is_read_only_up_to_64_kib() {
    // Every token request gets a 500 whose body never ends.
    let (server, dir, _) = failing_sync(
        [Answer::Endless(500), Answer::Json(ONE_ROLE), Answer::Json(NO_USERS)],
        10,
        "did not answer POST token endpoint after 6 attempts (last: HTTP 500",
    )
    .await;
    assert_eq!(server.requests().len(), 6, "{:?}", server.requests());
    let written = server.max_body_written();
    assert!(written < STOPPED_READING, "the client read {written} bytes of an error body");
    assert!(!dir.path().join("sync.c1z").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_body_that_drips_forever_is_given_up_on() {
    let (_, _, took) = failing_sync(
        [Answer::Json(TOKEN_OK), Answer::Drip(503), Answer::Json(NO_USERS)],
        2,
        "did not answer GET /roles after 6 attempts (last: HTTP 503",
    )
    .await;
    assert!(took < GIVES_UP_WITHIN, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_answer_that_never_ends_is_refused_at_64_kib() {
    let (server, _, _) = failing_sync(
        [Answer::Endless(200), Answer::Json(ONE_ROLE), Answer::Json(NO_USERS)],
        10,
        "Torq sent a response to POST token endpoint that this client cannot read (the response body is larger than 65536 bytes)",
    )
    .await;
    // Refused, not retried: a token answer of that size is not a token answer.
    assert_eq!(server.requests().len(), 1, "{:?}", server.requests());
    let written = server.max_body_written();
    assert!(written < STOPPED_READING, "the client read {written} bytes of a token answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_answer_that_drips_forever_times_out() {
    let (_, _, took) = failing_sync(
        [Answer::Drip(200), Answer::Json(ONE_ROLE), Answer::Json(NO_USERS)],
        2,
        "did not answer POST token endpoint after 6 attempts (last: the response body was not complete within 2 s)",
    )
    .await;
    assert!(took < GIVES_UP_WITHIN, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_page_that_never_ends_is_refused_at_16_mib() {
    let (server, _, _) = failing_sync(
        [Answer::Json(TOKEN_OK), Answer::Endless(200), Answer::Json(NO_USERS)],
        10,
        "Torq sent a response to GET /roles that this client cannot read (the response body is larger than 16777216 bytes)",
    )
    .await;
    let written = server.max_body_written();
    assert!(written < 16 * 1024 * 1024 + STOPPED_READING, "the client read {written} bytes of a role page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_page_that_drips_forever_times_out() {
    let (_, _, took) = failing_sync(
        [Answer::Json(TOKEN_OK), Answer::Drip(200), Answer::Json(NO_USERS)],
        2,
        "did not answer GET /roles after 6 attempts (last: the response body was not complete within 2 s)",
    )
    .await;
    assert!(took < GIVES_UP_WITHIN, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_pages_past_64_mib_in_all_are_refused() {
    // Pages of 8 MiB with ever new tokens: the 8th no longer fits.
    let (server, _, _) = failing_sync(
        [Answer::Json(TOKEN_OK), Answer::BigPages, Answer::Json(NO_USERS)],
        10,
        "Torq sent a response to GET /roles (page 8) that this client cannot read (its pages are larger than 67108864 bytes in all)",
    )
    .await;
    let pages = server.requests().iter().filter(|r| r.contains("/roles")).count();
    assert_eq!(pages, 8, "{:?}", server.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_record_that_never_ends_is_refused_at_1_mib() {
    // A user whose id never ends: serde would buffer it whole.
    let (server, _, _) = failing_sync(
        [Answer::Json(TOKEN_OK), Answer::Json(ONE_ROLE), Answer::EndlessString(r#"{"users": [{"id": ""#)],
        10,
        "that this client cannot read (more than 1048576 bytes without a complete user record)",
    )
    .await;
    let written = server.max_body_written();
    assert!(written < STOPPED_READING, "the client read {written} bytes of one user record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_page_that_drips_forever_is_given_up_on() {
    // Each byte comes well within the read timeout, but no user record ever completes.
    let (_, _, took) = failing_sync(
        [Answer::Json(TOKEN_OK), Answer::Json(ONE_ROLE), Answer::Drip(200)],
        2,
        "after 6 attempts (last: no complete user record within 2 s while the page was being read)",
    )
    .await;
    assert!(took < GIVES_UP_WITHIN, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_pages_that_bring_nothing_new_end_the_sync_in_a_few_requests() {
    // Every user page is empty and names a next page never named before (the unfixed client made 6,049 requests
    // in 120 s and would have gone on for ~77 minutes).
    let (server, dir, took) = failing_sync(
        [Answer::Json(TOKEN_OK), Answer::Json(ONE_ROLE), Answer::EmptyPages],
        10,
        "without new items (3 pages brought 0); stopping: the server is looping",
    )
    .await;
    let pages = server.requests().iter().filter(|r| r.contains("/users?")).count();
    // Two user lists (local and SSO), at most three pages each (the failure of one may stop the other sooner).
    assert!((3..=6).contains(&pages), "{pages} user pages: {:?}", server.requests());
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(!dir.path().join("sync.c1z").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_pages_that_repeat_the_same_users_end_the_sync_in_a_few_requests() {
    // Every user page holds the same two users under a fresh token: each page "delivers" two users, so only
    // telling a repeated page from a new one stops it (it used to run to the 100,000-page cap).
    let (server, dir, took) =
        failing_sync([Answer::Json(TOKEN_OK), Answer::Json(ONE_ROLE), Answer::SamePages], 10, "without new items")
            .await;
    let pages = server.requests().iter().filter(|r| r.contains("/users?")).count();
    // The first page is new; then three repeats in a row, per list (one list's failure may stop the other).
    assert!((4..=8).contains(&pages), "{pages} user pages: {:?}", server.requests());
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(!dir.path().join("sync.c1z").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_cr_lf_is_refused_at_once_saying_so() {
    // The unfixed client sent it 6 times as a header reqwest refuses, then said "check connectivity".
    const TOKEN_CRLF: &str = r#"{"access_token": "abc\r\nX-Injected: 1", "expires_in": 3600, "token_type": "Bearer"}"#;
    let (server, dir, _) = failing_sync(
        [Answer::Json(TOKEN_CRLF), Answer::Json(ONE_ROLE), Answer::Json(NO_USERS)],
        10,
        "the access_token holds control or non-ASCII characters (e.g. CR/LF)",
    )
    .await;
    assert_eq!(server.requests().len(), 1, "{:?}", server.requests());
    assert!(!dir.path().join("sync.c1z").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_user_list_is_malformed_not_empty() {
    // Taken for "no users", it wrote a sync without any (exit 0).
    let (_, dir, _) = failing_sync(
        [Answer::Json(TOKEN_OK), Answer::Json(ONE_ROLE), Answer::Json(r#"{"users": null}"#)],
        10,
        "cannot read (\"users\" is null, not a list",
    )
    .await;
    assert!(!dir.path().join("sync.c1z").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_answer_without_its_list_but_with_other_fields_is_malformed_not_empty() {
    // An error envelope sent with 200 (or a renamed field) was taken for "no users": a sync without them, exit 0.
    // A page that leaves an empty list out alone (`{}`, proto3's way) stays an empty list.
    let (_, dir, _) = failing_sync(
        [Answer::Json(TOKEN_OK), Answer::Json(ONE_ROLE), Answer::Json(r#"{"error": "internal", "code": 13}"#)],
        10,
        r#"the answer has no "users" list but other fields ("error", "code")"#,
    )
    .await;
    assert!(!dir.path().join("sync.c1z").exists());
}

/// A token endpoint in front of the simulated Torq's: it gets a real token (same client credentials) and hands it
/// on with `expires_in` replaced by `lifetime`. Counts the tokens it handed out.
async fn relaying_token_endpoint(sim_auth_url: String, lifetime: serde_json::Value) -> (String, Arc<AtomicU64>) {
    use axum::http::HeaderMap;
    let issued = Arc::new(AtomicU64::new(0));
    let counter = issued.clone();
    // reqwest is built without a default crypto provider (as the binary installs ring itself).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (http, url, lifetime, counter) =
                (http.clone(), sim_auth_url.clone(), lifetime.clone(), counter.clone());
            async move {
                let mut request = http.post(url).body(body);
                for name in ["authorization", "content-type"] {
                    if let Some(v) = headers.get(name) {
                        request = request.header(name, v.as_bytes());
                    }
                }
                let mut answer: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
                answer["expires_in"] = lifetime;
                counter.fetch_add(1, Ordering::Relaxed);
                axum::Json(answer)
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, issued)
}

/// A sync of the simulated Torq whose tokens come through [`relaying_token_endpoint`] with `expires_in` set to
/// `lifetime`; returns (exit code, stderr, tokens handed out, the sync's folder).
async fn sync_with_token_lifetime(
    server: &SimServer,
    lifetime: &serde_json::Value,
) -> (Option<i32>, String, u64, tempfile::TempDir) {
    let (auth, issued) = relaying_token_endpoint(server.auth_url(), lifetime.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = SimConfig::default();
    let (code, stderr, _) = sync_as(&cfg.client_id, &cfg.client_secret, &server.api_url(), &auth, 10, dir.path()).await;
    (code, stderr, issued.load(Ordering::Relaxed), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_token_lifetime_is_clamped_instead_of_crashing() {
    let server = SimServer::start(reference_workspace(), SimConfig::default()).await.unwrap();
    for lifetime in
        [serde_json::json!(18446744073709551615u64), serde_json::json!(1e300), serde_json::json!("9223372036854775807")]
    {
        let (code, stderr, issued, dir) = sync_with_token_lifetime(&server, &lifetime).await;
        assert_eq!(code, Some(0), "expires_in {lifetime}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(issued, 1, "expires_in {lifetime}: one token serves the whole sync");
        assert!(dir.path().join("sync.c1z").exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_a_usable_lifetime_is_used_for_one_request() {
    let server = SimServer::start(reference_workspace(), SimConfig::default()).await.unwrap();
    for lifetime in [serde_json::json!(0), serde_json::json!(-1)] {
        let before = server.stats();
        let (code, stderr, issued, _) = sync_with_token_lifetime(&server, &lifetime).await;
        assert_eq!(code, Some(0), "expires_in {lifetime}: {stderr}");
        assert!(stderr.contains("without a usable lifetime"), "{stderr}");
        let api_requests = server.stats().api_requests() - before.api_requests();
        assert_eq!(issued, api_requests, "expires_in {lifetime}: one token per API request");
    }
}
