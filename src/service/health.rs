//! Service mode's health endpoints (`--health-check`), with the Baton SDK's flags, defaults, paths and JSON body
//! (`{"status", "timestamp", "details"}`, 200 or 503), and the `health-check` command that asks one of them.
//!
//! - `/live`: the task loop is not stuck: it came back from its current step (a sleep between polls, one call to
//!   ConductorOne) within that step's bound plus several poll intervals. While every task slot is in use the
//!   loop waits for a task and is alive (each task has its own time limits).
//! - `/ready`: registered with ConductorOne (the start-up Hello succeeded) and not shutting down.
//! - `/health`: the last Torq check ([`TorqClient::check_access`] at start, then every sync) found the key usable;
//!   `details` also carry the last sync's outcome. A stale check is repeated in the background, at most one at a
//!   time, so probes never cost Torq more than one check per [`RECHECK_OK`].
//!
//! Must not: call Torq or ConductorOne while answering; put a secret, a token or server-supplied text in an
//! answer (details are fixed words, times and gRPC code names); read request bodies. Connections are bounded in
//! number, header size and time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::torq::{TorqClient, TorqError};

/// The SDK's default port.
pub(crate) const DEFAULT_PORT: u16 = 8081;
/// Longest wait for the start-up (and background) Torq check; beyond it Torq counts as unreachable.
pub(crate) const CHECK_DEADLINE: Duration = Duration::from_secs(20);
/// A good Torq check is repeated after this long, when a probe asks.
const RECHECK_OK: Duration = Duration::from_secs(300);
/// A failed one sooner, so that a fixed key or a Torq that is back shows within a minute.
const RECHECK_FAILED: Duration = Duration::from_secs(30);
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 16;
/// Request line and headers (hyper answers 431 beyond it; its minimum is 8 KiB).
const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Time to send the request headers, and for the whole exchange.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// What the last Torq check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TorqCheck {
    Unchecked,
    Ok,
    /// 401/403 from the token endpoint, or a fresh token refused.
    Rejected,
    /// 403: the key's role may not read users or roles.
    Forbidden,
    Unreachable,
    /// Any other answer (e.g. 404 from a wrong API URL).
    Failed,
}

impl TorqCheck {
    pub(crate) fn of(e: &TorqError) -> TorqCheck {
        match e {
            TorqError::BadCredentials { .. } | TorqError::TokenRejected { .. } => TorqCheck::Rejected,
            TorqError::PermissionDenied { .. } => TorqCheck::Forbidden,
            TorqError::Unavailable { .. } => TorqCheck::Unreachable,
            _ => TorqCheck::Failed,
        }
    }

    /// A key that no retry will make usable: service mode does not start with it.
    pub(crate) fn is_fatal(self) -> bool {
        matches!(self, TorqCheck::Rejected | TorqCheck::Forbidden)
    }

    fn word(self) -> &'static str {
        match self {
            TorqCheck::Unchecked => "unchecked",
            TorqCheck::Ok => "ok",
            TorqCheck::Rejected => "rejected",
            TorqCheck::Forbidden => "forbidden",
            TorqCheck::Unreachable => "unreachable",
            TorqCheck::Failed => "failed",
        }
    }

    /// What to do, in fixed words (never Torq's own text).
    fn fix(self) -> &'static str {
        match self {
            TorqCheck::Unchecked => "the Torq API key has not been checked yet",
            TorqCheck::Ok => "",
            TorqCheck::Rejected => {
                "Torq rejected the API key: check BATON_TORQ_CLIENT_ID / BATON_TORQ_CLIENT_SECRET and BATON_TORQ_REGION"
            }
            TorqCheck::Forbidden => {
                "the Torq API key may not read users or roles: use a key whose role has the user.read scope"
            }
            TorqCheck::Unreachable => "Torq did not answer: check connectivity to the Torq API (and any proxy)",
            TorqCheck::Failed => "Torq answered unexpectedly: check BATON_TORQ_REGION or BATON_TORQ_API_URL",
        }
    }
}

/// The outcome of the last sync task.
#[derive(Clone, Copy, Debug)]
struct LastSync {
    /// `None`: success; otherwise the gRPC code it failed with.
    failure: Option<tonic::Code>,
    at: chrono::DateTime<chrono::Utc>,
}

struct Checked {
    state: TorqCheck,
    at: chrono::DateTime<chrono::Utc>,
    when: Instant,
}

/// Where the task loop is: back by `at + within`, or waiting for a task slot (`within: None`).
struct Beat {
    at: Instant,
    within: Option<Duration>,
    /// The last wait between two polls.
    interval: Duration,
}

/// When the loop counts as stuck: `polls` poll intervals (at least `min_grace`) past its step's bound.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LivePolicy {
    pub(crate) polls: u32,
    pub(crate) min_grace: Duration,
}

impl Default for LivePolicy {
    fn default() -> Self {
        LivePolicy { polls: 3, min_grace: Duration::from_secs(60) }
    }
}

/// The state the endpoints answer from, updated by the task loop and the sync tasks.
pub(crate) struct Health {
    torq: Option<TorqClient>,
    checked: Mutex<Checked>,
    rechecking: AtomicBool,
    last_sync: Mutex<Option<LastSync>>,
    registered: AtomicBool,
    stopping: AtomicBool,
    beat: Mutex<Beat>,
    policy: LivePolicy,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Health {
    /// `torq`: the client a stale check is repeated with (`None`: never repeated).
    pub(crate) fn new(torq: Option<TorqClient>, policy: LivePolicy) -> Health {
        let now = Instant::now();
        Health {
            torq,
            checked: Mutex::new(Checked { state: TorqCheck::Unchecked, at: chrono::Utc::now(), when: now }),
            rechecking: AtomicBool::new(false),
            last_sync: Mutex::new(None),
            registered: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            beat: Mutex::new(Beat { at: now, within: Some(Duration::ZERO), interval: Duration::ZERO }),
            policy,
        }
    }

    /// Records what a Torq check (or a sync) found out about the key.
    pub(crate) fn torq_checked(&self, state: TorqCheck) {
        *lock(&self.checked) = Checked { state, at: chrono::Utc::now(), when: Instant::now() };
    }

    /// Records a finished sync task: `None` for success, else its gRPC code.
    pub(crate) fn sync_finished(&self, failure: Option<tonic::Code>) {
        *lock(&self.last_sync) = Some(LastSync { failure, at: chrono::Utc::now() });
    }

    pub(crate) fn registered(&self) {
        self.registered.store(true, Ordering::Relaxed);
    }

    /// Shutting down: not ready; the loop no longer polls, and waits for the running tasks (alive).
    pub(crate) fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.busy();
    }

    /// The loop starts a step that ends within `within` (a call, or the sleep before the next poll).
    pub(crate) fn step(&self, within: Duration) {
        let mut beat = lock(&self.beat);
        beat.at = Instant::now();
        beat.within = Some(within);
    }

    /// The loop sleeps `wait` before the next poll.
    pub(crate) fn sleeping(&self, wait: Duration) {
        let mut beat = lock(&self.beat);
        *beat = Beat { at: Instant::now(), within: Some(wait), interval: wait };
    }

    /// Every task slot is in use: the loop waits for a task to end.
    pub(crate) fn busy(&self) {
        let mut beat = lock(&self.beat);
        beat.at = Instant::now();
        beat.within = None;
    }

    /// How long the loop is overdue, if it is stuck.
    fn overdue(&self) -> Option<Duration> {
        let beat = lock(&self.beat);
        let within = beat.within?;
        let grace = (beat.interval * self.policy.polls).max(self.policy.min_grace);
        let late = beat.at.elapsed().checked_sub(within)?;
        (late > grace).then_some(late)
    }

    /// The cached check, starting a background re-check when it is stale.
    fn torq_state(self: &Arc<Self>) -> (TorqCheck, chrono::DateTime<chrono::Utc>) {
        let (state, at, age) = {
            let c = lock(&self.checked);
            (c.state, c.at, c.when.elapsed())
        };
        let stale = age > if state == TorqCheck::Ok { RECHECK_OK } else { RECHECK_FAILED };
        if let Some(torq) = self.torq.clone().filter(|_| stale) {
            if !self.rechecking.swap(true, Ordering::AcqRel) {
                let me = Arc::clone(self);
                tokio::spawn(async move {
                    let (state, error) = check_torq(&torq).await;
                    if let Some(e) = error.filter(|_| state.is_fatal()) {
                        tracing::warn!(host = %torq.api_host(), error = %e, "Torq API key check failed");
                    }
                    me.torq_checked(state);
                    me.rechecking.store(false, Ordering::Release);
                });
            }
        }
        (state, at)
    }
}

/// One Torq check within [`CHECK_DEADLINE`]: what it found, and the error behind it (none when Torq did not
/// answer in time). Logs the outcome with the API host (never the key), except a fatal one, which the caller
/// reports (at start it is the run's error line).
pub(crate) async fn check_torq(torq: &TorqClient) -> (TorqCheck, Option<TorqError>) {
    let (state, error) = match tokio::time::timeout(CHECK_DEADLINE, torq.check_access()).await {
        Ok(Ok(())) => (TorqCheck::Ok, None),
        Ok(Err(e)) => (TorqCheck::of(&e), Some(e)),
        Err(_) => (TorqCheck::Unreachable, None),
    };
    match (&state, &error) {
        (TorqCheck::Ok, _) => tracing::info!(host = %torq.api_host(), "Torq API key OK"),
        (state, Some(_)) if state.is_fatal() => {}
        (_, Some(e)) => tracing::warn!(host = %torq.api_host(), error = %e, "Torq API key check failed"),
        (_, None) => tracing::warn!(
            host = %torq.api_host(),
            seconds = CHECK_DEADLINE.as_secs(),
            "Torq did not answer the API key check in time"
        ),
    }
    (state, error)
}

/// The SDK's JSON body.
#[derive(Debug, Serialize)]
struct Answer {
    status: &'static str,
    timestamp: String,
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "as_map")]
    details: Vec<(&'static str, String)>,
}

fn as_map<S: serde::Serializer>(details: &[(&'static str, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(details.iter().map(|(k, v)| (k, v)))
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn answer(ok: bool, status: &'static str, details: Vec<(&'static str, String)>) -> (StatusCode, Json<Answer>) {
    let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(Answer { status, timestamp: rfc3339(chrono::Utc::now()), details }))
}

async fn health_answer(State(h): State<Arc<Health>>) -> (StatusCode, Json<Answer>) {
    let (state, at) = h.torq_state();
    let mut details = vec![("torq", state.word().to_owned()), ("torq_checked_at", rfc3339(at))];
    let ok = state == TorqCheck::Ok;
    if !ok {
        details.push(("error", "torq validation failed".to_owned()));
        details.push(("validation_error", state.fix().to_owned()));
    }
    match *lock(&h.last_sync) {
        None => details.push(("last_sync", "none".to_owned())),
        Some(last) => {
            details.push(("last_sync", if last.failure.is_none() { "success" } else { "failed" }.to_owned()));
            details.push(("last_sync_at", rfc3339(last.at)));
            if let Some(code) = last.failure {
                details.push(("last_sync_error", format!("{code:?}")));
            }
        }
    }
    answer(ok, if ok { "healthy" } else { "unhealthy" }, details)
}

async fn ready(State(h): State<Arc<Health>>) -> (StatusCode, Json<Answer>) {
    if h.stopping.load(Ordering::Relaxed) {
        return answer(false, "not_ready", vec![("error", "shutting down".to_owned())]);
    }
    if !h.registered.load(Ordering::Relaxed) {
        return answer(false, "not_ready", vec![("error", "not registered with ConductorOne yet".to_owned())]);
    }
    answer(true, "ready", Vec::new())
}

async fn live(State(h): State<Arc<Health>>) -> (StatusCode, Json<Answer>) {
    match h.overdue() {
        None => answer(true, "alive", Vec::new()),
        Some(late) => answer(
            false,
            "stuck",
            vec![("error", format!("the task loop is {} s late for its next poll of ConductorOne", late.as_secs()))],
        ),
    }
}

/// The three endpoints (GET and HEAD; anything else 405, other paths 404).
fn router(state: Arc<Health>) -> Router {
    Router::new()
        .route("/health", get(health_answer))
        .route("/ready", get(ready))
        .route("/live", get(live))
        .with_state(state)
}

/// Why the health server could not start, or a `health-check` failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error(
        "cannot listen on {addr} for the health endpoints: {reason}; choose another --health-check-port \
         (BATON_HEALTH_CHECK_PORT) or --health-check-bind-address (BATON_HEALTH_CHECK_BIND_ADDRESS)"
    )]
    Listen { addr: SocketAddr, reason: String },
    #[error("health check of {url} failed: {reason}; is the connector running with --health-check on this port?")]
    Unreachable { url: String, reason: String },
    #[error("health check of {url}: HTTP {status} ({answer})")]
    Unhealthy { url: String, status: u16, answer: String },
}

/// Binds `addr` (port 0: any free port) and serves the endpoints until `stop`. Returns the bound address.
pub(crate) async fn start(
    addr: SocketAddr,
    health: Arc<Health>,
    stop: CancellationToken,
) -> Result<SocketAddr, HealthError> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| HealthError::Listen { addr, reason: e.to_string() })?;
    let bound = listener.local_addr().map_err(|e| HealthError::Listen { addr, reason: e.to_string() })?;
    tracing::info!(address = %bound, "health endpoints listening (/health, /ready, /live)");
    tokio::spawn(serve(listener, router(health), stop));
    Ok(bound)
}

/// Accepts connections, at most [`MAX_CONNECTIONS`] at once (more are closed unanswered), one request each.
async fn serve(listener: tokio::net::TcpListener, router: Router, stop: CancellationToken) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: try again shortly rather than spin.
                tracing::debug!(error = %e, "health endpoint accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else { continue };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_REQUEST_BYTES)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            drop(permit);
        });
    }
}

/// The endpoint `health-check --endpoint` asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Probe {
    Health,
    Ready,
    Live,
}

/// Where a client reaches a server bound to `bind`: the wildcard addresses mean this machine's loopback.
fn reachable(bind: IpAddr) -> IpAddr {
    match bind {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// `health-check`: GET the endpoint; `Ok(status word)` on 200, otherwise why not.
pub(crate) async fn probe(probe: Probe, bind: IpAddr, port: u16, timeout: Duration) -> Result<String, HealthError> {
    let path = match probe {
        Probe::Health => "health",
        Probe::Ready => "ready",
        Probe::Live => "live",
    };
    let url = format!("http://{}/{path}", SocketAddr::new(reachable(bind), port));
    let unreachable = |reason: String| HealthError::Unreachable { url: url.clone(), reason };
    // reqwest is built without a default crypto provider (see `TorqClient::new`).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|e| unreachable(e.to_string()))?;
    let resp = client.get(&url).send().await.map_err(|e| unreachable(crate::torq::describe_transport(&e)))?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    // A health answer is a few hundred bytes; anything else is not read further.
    let _ = crate::torq::read_body(resp, &mut body, 64 * 1024, timeout).await;
    let answer = summarize(&body);
    if status != 200 {
        return Err(HealthError::Unhealthy { url, status, answer });
    }
    Ok(answer)
}

/// `status` and, if any, `error`/`validation_error` of an answer, as printable text.
fn summarize(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |v: &serde_json::Value| -> String {
        v.as_str().unwrap_or("").chars().filter(|c| !c.is_control()).take(200).collect()
    };
    let mut parts = vec![text(&v["status"])];
    for key in ["validation_error", "error"] {
        if let Some(detail) = v["details"].get(key) {
            parts.push(text(detail));
            break;
        }
    }
    parts.retain(|p| !p.is_empty());
    if parts.is_empty() {
        return "no health answer".to_owned();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn served(health: Arc<Health>) -> (SocketAddr, CancellationToken) {
        let stop = CancellationToken::new();
        let addr = start("127.0.0.1:0".parse().unwrap(), health, stop.clone()).await.unwrap();
        (addr, stop)
    }

    async fn get(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let resp = reqwest::Client::builder().no_proxy().build().unwrap().get(format!("http://{addr}{path}"));
        let resp = resp.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// A loop that stopped coming back from a 100 ms sleep is reported stuck once the grace has passed, and alive
    /// again after its next step; waiting for a task slot is never stuck.
    #[tokio::test]
    async fn live_fails_when_the_loop_is_stuck() {
        let policy = LivePolicy { polls: 3, min_grace: Duration::from_millis(300) };
        let health = Arc::new(Health::new(None, policy));
        let (addr, _stop) = served(health.clone()).await;
        health.sleeping(Duration::from_millis(100));
        assert_eq!(get(addr, "/live").await.0, 200);
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (status, body) = get(addr, "/live").await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["status"], "stuck");
        assert!(body["details"]["error"].as_str().unwrap().contains("late for its next poll"), "{body}");
        health.step(Duration::from_secs(30));
        assert_eq!(get(addr, "/live").await.0, 200);
        health.busy();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(get(addr, "/live").await.0, 200);
    }

    /// The grace is several poll intervals when those are long: a 10 s poll interval is not stuck after 20 s.
    #[test]
    fn the_grace_grows_with_the_poll_interval() {
        let health = Health::new(None, LivePolicy { polls: 3, min_grace: Duration::from_millis(1) });
        health.sleeping(Duration::from_secs(10));
        lock(&health.beat).at = Instant::now() - Duration::from_secs(30);
        assert_eq!(health.overdue(), None);
        lock(&health.beat).at = Instant::now() - Duration::from_secs(41);
        assert!(health.overdue().is_some());
    }

    /// The SDK's shape: status, an RFC 3339 timestamp, details as a string map (left out when empty).
    #[tokio::test]
    async fn answers_have_the_sdk_shape() {
        let health = Arc::new(Health::new(None, LivePolicy::default()));
        let (addr, _stop) = served(health.clone()).await;
        let (status, body) = get(addr, "/ready").await;
        assert_eq!((status, body["status"].as_str()), (503, Some("not_ready")));
        health.registered();
        let (status, body) = get(addr, "/ready").await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
        assert!(body.get("details").is_none(), "{body}");
        assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
        health.stopping();
        assert_eq!(get(addr, "/ready").await.0, 503);

        let (status, body) = get(addr, "/health").await;
        assert_eq!((status, body["details"]["torq"].as_str()), (503, Some("unchecked")));
        health.torq_checked(TorqCheck::Ok);
        health.sync_finished(Some(tonic::Code::Unavailable));
        let (status, body) = get(addr, "/health").await;
        assert_eq!((status, body["status"].as_str()), (200, Some("healthy")), "{body}");
        assert_eq!(body["details"]["last_sync"], "failed");
        assert_eq!(body["details"]["last_sync_error"], "Unavailable");
        assert!(body["details"].as_object().unwrap().values().all(|v| v.is_string()));
    }

    /// Oversized headers are refused, other methods and paths too, and the connection limit holds: idle
    /// connections beyond it are closed while a new probe is still answered once they are gone.
    #[tokio::test]
    async fn requests_are_bounded() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let health = Arc::new(Health::new(None, LivePolicy::default()));
        let (addr, _stop) = served(health).await;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let big = "x".repeat(64 * 1024);
        let resp = client.get(format!("http://{addr}/live")).header("x-big", big).send().await;
        assert!(resp.map(|r| r.status().as_u16() == 431).unwrap_or(true));
        let post = client.post(format!("http://{addr}/live")).send().await.unwrap();
        assert_eq!(post.status().as_u16(), 405);
        assert_eq!(client.get(format!("http://{addr}/metrics")).send().await.unwrap().status().as_u16(), 404);

        // Fill every slot with connections that send nothing; the next one is closed without an answer.
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = extra.write_all(b"GET /live HTTP/1.1\r\nhost: x\r\n\r\n").await;
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(2), extra.read_to_end(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "answered beyond the limit: {buf:?}");
        drop(idle);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(client.get(format!("http://{addr}/live")).send().await.unwrap().status().as_u16(), 200);
    }

    #[test]
    fn wildcard_binds_are_probed_on_loopback() {
        assert_eq!(reachable("0.0.0.0".parse().unwrap()), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(reachable("::".parse().unwrap()), IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(reachable("10.1.2.3".parse().unwrap()), "10.1.2.3".parse::<IpAddr>().unwrap());
    }
}
