//! The HTTP side of the simulator: an axum server on `127.0.0.1:0` that answers like Torq.
//!
//! One fallback handler ([`dispatch`]) routes every request, so that counting, latency and fault injection
//! happen in one place, in this order: classify the request and count it (the per-endpoint counters are what
//! fault rules refer to), sleep the configured latency plus any injected delay, answer an injected fault or
//! handle the request normally, and finally apply body faults (truncation, connection reset).
//!
//! User lists are streamed: a blocking task serialises users in chunks of [`USERS_PER_CHUNK`] into a bounded
//! channel, and the response body reads from that channel. Memory per response is a few chunks, however many
//! users the workspace has; when the client goes away, the channel closes and the producer stops.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::serve::ListenerExt;
use axum::Router;
use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::faults::{grpc_code, Endpoint, FaultKind, FaultPlan};
use super::workspace::{uuid_like, SimRole, Workspace};

/// Path of the token endpoint.
const TOKEN_PATH: &str = "/v1/auth/token";
/// Prefix of the public API.
const API_PREFIX: &str = "/public/v1alpha";
/// `GET` paths of the public API.
const USERS_PATH: &str = "/public/v1alpha/users";
const ROLES_PATH: &str = "/public/v1alpha/users/roles";
/// Where Torq sends a request whose token has expired.
const LOGIN_URL: &str = "https://login.torq.io/login";
/// Users serialised per body chunk.
pub(crate) const USERS_PER_CHUNK: usize = 1000;
/// Chunks buffered between the producer and the response body.
const CHUNKS_IN_FLIGHT: usize = 4;
/// `page_size` default and maximum of `users/roles`.
const DEFAULT_PAGE_SIZE: u64 = 50;
const MAX_PAGE_SIZE: u64 = 100;
/// Prefix of the opaque role page tokens.
const PAGE_TOKEN_PREFIX: &str = "rp1.";
/// How long a reset connection waits after the partial body, so that it reaches the client before the drop.
const RESET_PAUSE: Duration = Duration::from_millis(30);

/// Server settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Accepted API key id (HTTP Basic user name of the token request).
    pub client_id: String,
    /// Accepted API key secret.
    pub client_secret: String,
    /// Lifetime of issued tokens (Torq: 3600 s).
    pub token_ttl: Duration,
    /// Added to every request before it is answered.
    pub latency: Duration,
    /// Faults to inject; can be replaced later with [`SimServer::set_faults`].
    pub faults: FaultPlan,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            client_id: "sim-client-id".to_owned(),
            client_secret: "sim-client-secret".to_owned(),
            token_ttl: Duration::from_secs(3600),
            latency: Duration::ZERO,
            faults: FaultPlan::default(),
        }
    }
}

/// Request counters. `token + users_local + users_sso + role_pages + other` is every request the server
/// received; `rejected_auth` (401/302 for a missing, unknown or expired token, and 401 for bad credentials)
/// and `faults_injected` are subsets of those, not extra requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    /// `POST /v1/auth/token`.
    pub token: u64,
    /// `GET /public/v1alpha/users` with `sso_provision=false`, without it, or with an invalid value.
    pub users_local: u64,
    /// `GET /public/v1alpha/users?sso_provision=true`.
    pub users_sso: u64,
    /// `GET /public/v1alpha/users/roles`.
    pub role_pages: u64,
    /// Anything else (unknown paths, wrong methods).
    pub other: u64,
    /// Requests refused for authentication reasons.
    pub rejected_auth: u64,
    /// Requests that got an injected fault (a delay counts too).
    pub faults_injected: u64,
}

impl RequestStats {
    /// All requests except token requests.
    pub fn api_requests(&self) -> u64 {
        self.users_local + self.users_sso + self.role_pages + self.other
    }

    /// All requests.
    pub fn total(&self) -> u64 {
        self.token + self.api_requests()
    }
}

#[derive(Default)]
struct Counters {
    token: AtomicU64,
    users_local: AtomicU64,
    users_sso: AtomicU64,
    role_pages: AtomicU64,
    other: AtomicU64,
    /// Every non-token request, for [`Endpoint::AnyApi`] rules.
    api: AtomicU64,
    rejected_auth: AtomicU64,
    faults_injected: AtomicU64,
}

/// Adds one and returns the new value: the 1-based number of this request.
fn bump(counter: &AtomicU64) -> u64 {
    counter.fetch_add(1, Ordering::Relaxed) + 1
}

struct Shared {
    workspace: Workspace,
    client_id: String,
    client_secret: String,
    token_ttl: Duration,
    latency: Duration,
    faults: Mutex<FaultPlan>,
    /// Issued tokens and when they expire. Expired tokens stay so that they keep getting a 302.
    tokens: Mutex<HashMap<String, Instant>>,
    counters: Counters,
}

/// A running simulated Torq server.
pub struct SimServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Binds `127.0.0.1:0` and starts serving `workspace` in the background on the current tokio runtime.
    pub async fn start(workspace: Workspace, config: SimConfig) -> std::io::Result<SimServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            workspace,
            client_id: config.client_id,
            client_secret: config.client_secret,
            token_ttl: config.token_ttl,
            latency: config.latency,
            faults: Mutex::new(config.faults),
            tokens: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        });
        let app = Router::new().fallback(dispatch).with_state(Arc::clone(&shared));
        // Small responses must not wait for delayed ACKs.
        let listener = listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!("sim: cannot set TCP_NODELAY: {err}");
            }
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(err) = serve.await {
                tracing::warn!("sim: server stopped with an error: {err}");
            }
        });
        tracing::debug!("sim: Torq simulator listening on http://{addr}");
        Ok(SimServer { addr, shared, stop: Some(stop), task: Some(task) })
    }

    /// Base URL of the public API, e.g. `http://127.0.0.1:PORT/public/v1alpha`.
    pub fn api_url(&self) -> String {
        format!("http://{}{API_PREFIX}", self.addr)
    }

    /// URL of the token endpoint, e.g. `http://127.0.0.1:PORT/v1/auth/token`.
    pub fn auth_url(&self) -> String {
        format!("http://{}{TOKEN_PATH}", self.addr)
    }

    /// The socket address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every access token issued so far (tests check that none of them leaks into output).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.tokens.lock().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect()
    }

    /// A snapshot of the request counters.
    pub fn stats(&self) -> RequestStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RequestStats {
            token: get(&c.token),
            users_local: get(&c.users_local),
            users_sso: get(&c.users_sso),
            role_pages: get(&c.role_pages),
            other: get(&c.other),
            rejected_auth: get(&c.rejected_auth),
            faults_injected: get(&c.faults_injected),
        }
    }

    /// Replaces the fault plan. Request numbers in the rules still count from the server's start, so a test
    /// that switches faults mid-way can add `stats()` counts to `first_request`.
    pub fn set_faults(&self, plan: FaultPlan) {
        *self.shared.faults.lock().unwrap_or_else(PoisonError::into_inner) = plan;
    }

    /// Stops accepting connections and waits (at most 2 s) for open connections to finish. After that the
    /// accept loop is aborted; a response still streaming to a stalled client ends when that client goes away.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What a request is, after routing.
enum Route {
    Token,
    Users { sso: Result<bool, String> },
    Roles,
    NotFound,
    MethodNotAllowed,
}

impl Route {
    fn of(method: &Method, path: &str, query: &HashMap<String, String>) -> Route {
        let path = match path.strip_suffix('/') {
            Some(stripped) if !stripped.is_empty() => stripped,
            _ => path,
        };
        let (route, method_ok) = if path == TOKEN_PATH {
            (Route::Token, method == Method::POST)
        } else if path == USERS_PATH {
            let sso = match query.get("sso_provision").map(String::as_str) {
                None | Some("false") | Some("0") => Ok(false),
                Some("true") | Some("1") => Ok(true),
                Some(other) => Err(format!("invalid value for sso_provision: {other:?}")),
            };
            (Route::Users { sso }, method == Method::GET)
        } else if path == ROLES_PATH {
            (Route::Roles, method == Method::GET)
        } else {
            (Route::NotFound, true)
        };
        if method_ok {
            route
        } else {
            Route::MethodNotAllowed
        }
    }
}

/// A response before body faults are applied.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    payload: Payload,
}

enum Payload {
    Full(Bytes),
    /// Streamed chunks (user lists).
    Chunks(mpsc::Receiver<Bytes>),
}

impl Reply {
    fn json(status: StatusCode, value: &impl Serialize) -> Reply {
        // Serialising plain data structures into a Vec cannot fail.
        let body = serde_json::to_vec(value).unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Reply { status, headers, payload: Payload::Full(Bytes::from(body)) }
    }

    /// Torq's error envelope.
    fn error(status: StatusCode, message: &str) -> Reply {
        let envelope = serde_json::json!({
            "code": grpc_code(status.as_u16()),
            "message": message,
            "details": [],
        });
        Reply::json(status, &envelope)
    }

    /// What Torq answers for an expired token: a redirect to the login page with an HTML body.
    fn login_redirect(path: &str) -> Reply {
        let location = format!("{LOGIN_URL}?redirect_uri=https%3A%2F%2Fapi.torq.io{}", path.replace('/', "%2F"));
        let html = format!(
            "<!DOCTYPE html>\n<html><head><title>Sign in - Torq</title></head>\
             <body><a href=\"{location}\">Found</a>.</body></html>\n"
        );
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        if let Ok(value) = HeaderValue::from_str(&location) {
            headers.insert(header::LOCATION, value);
        }
        Reply { status: StatusCode::FOUND, headers, payload: Payload::Full(Bytes::from(html)) }
    }

    fn into_response(self, body_fault: Option<&FaultKind>) -> Response {
        let body = match (self.payload, body_fault) {
            (Payload::Full(bytes), None) => Body::from(bytes),
            (Payload::Chunks(rx), None) => Body::from_stream(chunk_stream(rx).map(Ok::<_, std::io::Error>)),
            (Payload::Full(bytes), Some(FaultKind::TruncatedBody)) => Body::from(first_half(&bytes)),
            (Payload::Chunks(rx), Some(FaultKind::TruncatedBody)) => cut_body(chunk_stream(rx), false),
            (Payload::Full(bytes), Some(_)) => cut_body(futures_util::stream::iter([bytes]), true),
            (Payload::Chunks(rx), Some(_)) => cut_body(chunk_stream(rx), true),
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

fn chunk_stream(rx: mpsc::Receiver<Bytes>) -> impl futures_util::Stream<Item = Bytes> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) })
}

/// The first half of `bytes` (at least one byte, never all of a body of two or more bytes).
fn first_half(bytes: &Bytes) -> Bytes {
    let keep = (bytes.len() / 2).max(1).min(bytes.len());
    bytes.slice(..keep)
}

/// A body made of the first half of the first chunk of `chunks`. Without `reset` the body then ends cleanly
/// (the HTTP framing is complete, the JSON is not); with `reset` the body fails after a short pause, which
/// makes hyper drop the connection without the terminating chunk.
fn cut_body(chunks: impl futures_util::Stream<Item = Bytes> + Send + 'static, reset: bool) -> Body {
    let stream = futures_util::stream::unfold((Box::pin(chunks), 0u8), move |(mut chunks, step)| async move {
        match step {
            0 => {
                let first = chunks.next().await.unwrap_or_default();
                Some((Ok(first_half(&first)), (chunks, 1)))
            }
            1 if reset => {
                tokio::time::sleep(RESET_PAUSE).await;
                let err = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "sim: injected connection reset");
                Some((Err(err), (chunks, 2)))
            }
            _ => None,
        }
    });
    Body::from_stream(stream)
}

/// A body that is not valid JSON, shaped like the endpoint's normal answer.
fn malformed_json(route: &Route) -> Reply {
    let text: &'static str = match route {
        Route::Token => r#"{"access_token": "sim-malformed", "expires_in": 3600,, "token_type": Bearer}"#,
        Route::Users { .. } => r#"{"users": [{"id": "sim-malformed", "email": }, ]"#,
        Route::Roles => r#"{"roles": [{"id": "sim-malformed" "name": "x"}], "next_page_token": }"#,
        Route::NotFound | Route::MethodNotAllowed => r#"{"code": 5, "message": not found"#,
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Reply { status: StatusCode::OK, headers, payload: Payload::Full(Bytes::from_static(text.as_bytes())) }
}

/// The single handler behind every path.
async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let query: HashMap<String, String> = Query::try_from_uri(request.uri()).map(|Query(q)| q).unwrap_or_default();
    let route = Route::of(request.method(), request.uri().path(), &query);

    // Count first: the counters number the requests that fault rules refer to.
    let c = &shared.counters;
    let (endpoint, index) = match &route {
        Route::Token => (Some(Endpoint::Token), bump(&c.token)),
        Route::Users { sso: Ok(true) } => (Some(Endpoint::UsersSso), bump(&c.users_sso)),
        Route::Users { .. } => (Some(Endpoint::UsersLocal), bump(&c.users_local)),
        Route::Roles => (Some(Endpoint::Roles), bump(&c.role_pages)),
        Route::NotFound | Route::MethodNotAllowed => (None, bump(&c.other)),
    };
    let api_index = match route {
        Route::Token => None,
        _ => Some(bump(&c.api)),
    };
    let paged = matches!(route, Route::Roles);
    let decision = shared.faults.lock().unwrap_or_else(PoisonError::into_inner).decide(
        |e| match e {
            Endpoint::AnyApi => api_index,
            e if Some(e) == endpoint => Some(index),
            _ => None,
        },
        paged,
    );
    let fault = decision.kind;
    if fault.is_some() || !decision.delay.is_zero() {
        c.faults_injected.fetch_add(1, Ordering::Relaxed);
    }

    let wait = shared.latency.saturating_add(decision.delay);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }

    let path = request.uri().path().to_owned();
    let reply = match &fault {
        Some(FaultKind::Status(code)) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reason = status.canonical_reason().unwrap_or("injected error");
            Reply::error(status, &format!("{reason} (injected by the simulator)"))
        }
        Some(FaultKind::TooManyRequests { retry_after_secs }) => {
            let mut reply = Reply::error(StatusCode::TOO_MANY_REQUESTS, "Resource exhausted");
            if let Some(secs) = retry_after_secs {
                reply.headers.insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            reply
        }
        Some(FaultKind::Redirect302) => Reply::login_redirect(&path),
        Some(FaultKind::MalformedJson) => malformed_json(&route),
        _ => {
            let endless = fault == Some(FaultKind::EndlessPaging);
            handle(&shared, route, request, &query, endless).await
        }
    };
    let body_fault = fault.as_ref().filter(|k| matches!(k, FaultKind::TruncatedBody | FaultKind::ResetConnection));
    reply.into_response(body_fault)
}

/// Normal (fault-free) handling of a routed request.
async fn handle(
    shared: &Arc<Shared>,
    route: Route,
    request: Request,
    query: &HashMap<String, String>,
    endless_paging: bool,
) -> Reply {
    match route {
        Route::Token => issue_token(shared, request).await,
        Route::NotFound => Reply::error(StatusCode::NOT_FOUND, "Not Found"),
        Route::MethodNotAllowed => Reply::error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
        Route::Users { sso } => {
            if let Some(reply) = rejection(shared, request.headers(), request.uri().path()) {
                return reply;
            }
            match sso {
                Ok(sso) => stream_users(Arc::clone(shared), sso),
                Err(message) => Reply::error(StatusCode::BAD_REQUEST, &message),
            }
        }
        Route::Roles => {
            if let Some(reply) = rejection(shared, request.headers(), request.uri().path()) {
                return reply;
            }
            list_roles(shared, query, endless_paging)
        }
    }
}

/// Checks the bearer token and returns the rejection, if any: missing or unknown -> 401, expired -> 302 to
/// the login page.
fn rejection(shared: &Shared, headers: &HeaderMap, path: &str) -> Option<Reply> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let verdict = match token {
        None => Some(Reply::error(StatusCode::UNAUTHORIZED, "missing bearer token")),
        Some(token) => {
            let expiry = shared.tokens.lock().unwrap_or_else(PoisonError::into_inner).get(token).copied();
            match expiry {
                None => Some(Reply::error(StatusCode::UNAUTHORIZED, "invalid token")),
                Some(expiry) if Instant::now() >= expiry => Some(Reply::login_redirect(path)),
                Some(_) => None,
            }
        }
    };
    if verdict.is_some() {
        shared.counters.rejected_auth.fetch_add(1, Ordering::Relaxed);
    }
    verdict
}

/// `client_id:client_secret` from an HTTP Basic `Authorization` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
    token_type: &'static str,
}

async fn issue_token(shared: &Shared, request: Request) -> Reply {
    let credentials_ok = basic_credentials(request.headers())
        .is_some_and(|(id, secret)| id == shared.client_id && secret == shared.client_secret);
    if !credentials_ok {
        shared.counters.rejected_auth.fetch_add(1, Ordering::Relaxed);
        return Reply::error(StatusCode::UNAUTHORIZED, "invalid client credentials");
    }
    let body = match axum::body::to_bytes(request.into_body(), 64 * 1024).await {
        Ok(body) => body,
        Err(_) => return Reply::error(StatusCode::BAD_REQUEST, "cannot read the request body"),
    };
    let grant_ok = form_value(&body, "grant_type").is_some_and(|g| g == "client_credentials");
    if !grant_ok {
        return Reply::error(StatusCode::BAD_REQUEST, "grant_type must be client_credentials");
    }
    let token = uuid_like(rand::random(), rand::random());
    let expiry = Instant::now() + shared.token_ttl;
    shared.tokens.lock().unwrap_or_else(PoisonError::into_inner).insert(token.clone(), expiry);
    let mut reply = Reply::json(
        StatusCode::OK,
        &TokenResponse { access_token: token, expires_in: shared.token_ttl.as_secs(), token_type: "Bearer" },
    );
    reply.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    reply.headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    reply
}

/// The value of `key` in an `application/x-www-form-urlencoded` body (values here need no decoding beyond
/// `+`; anything with `%` is compared as sent, which is enough for `grant_type`).
fn form_value(body: &[u8], key: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v.replace('+', " "))
}

/// Starts the producer of a user list and returns a reply that streams its chunks.
fn stream_users(shared: Arc<Shared>, sso: bool) -> Reply {
    let (tx, rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || produce_users(&shared.workspace, sso, &tx));
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Reply { status: StatusCode::OK, headers, payload: Payload::Chunks(rx) }
}

/// Writes `{"users":[...]}` into `tx` in chunks of [`USERS_PER_CHUNK`] users. Stops early when the receiver is
/// gone (client disconnected, or a body fault cut the response).
fn produce_users(workspace: &Workspace, sso: bool, tx: &mpsc::Sender<Bytes>) {
    let mut buf: Vec<u8> = Vec::with_capacity(256 * USERS_PER_CHUNK);
    buf.extend_from_slice(b"{\"users\":[");
    let mut in_chunk = 0;
    let mut first = true;
    for user in workspace.users(sso) {
        if !first {
            buf.push(b',');
        }
        first = false;
        if serde_json::to_writer(&mut buf, &user).is_err() {
            return;
        }
        in_chunk += 1;
        if in_chunk == USERS_PER_CHUNK {
            in_chunk = 0;
            let chunk = std::mem::replace(&mut buf, Vec::with_capacity(256 * USERS_PER_CHUNK));
            if tx.blocking_send(Bytes::from(chunk)).is_err() {
                return;
            }
        }
    }
    buf.extend_from_slice(b"]}");
    let _ = tx.blocking_send(Bytes::from(buf));
}

#[derive(Serialize)]
struct RolesPage {
    roles: Vec<SimRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

fn page_token(offset: u64) -> String {
    format!("{PAGE_TOKEN_PREFIX}{offset:08x}")
}

/// `users/roles`: `page_size` (default 50, clamped to 100) and an opaque `page_token`. The last page of a
/// multi-page listing carries `"next_page_token": ""`; a listing that fits in one page omits the field, so
/// clients meet both forms of "no more pages".
fn list_roles(shared: &Shared, query: &HashMap<String, String>, endless_paging: bool) -> Reply {
    let param = |snake: &str, camel: &str| query.get(snake).or_else(|| query.get(camel)).map(String::as_str);
    let page_size = match param("page_size", "pageSize").filter(|s| !s.is_empty()) {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if n < 0 => return Reply::error(StatusCode::BAD_REQUEST, "page_size must not be negative"),
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(n) => n.unsigned_abs().min(MAX_PAGE_SIZE),
            Err(_) => return Reply::error(StatusCode::BAD_REQUEST, "page_size must be an integer"),
        },
    };
    let count = shared.workspace.role_count();
    let offset = match param("page_token", "pageToken").filter(|s| !s.is_empty()) {
        None => 0,
        Some(token) => {
            let offset = token
                .strip_prefix(PAGE_TOKEN_PREFIX)
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                .filter(|&offset| offset <= count);
            match offset {
                Some(offset) => offset,
                None => return Reply::error(StatusCode::BAD_REQUEST, "invalid page_token"),
            }
        }
    };
    let roles = shared.workspace.role_page(offset, page_size);
    let end = offset + roles.len() as u64;
    let next_page_token = if endless_paging {
        Some(page_token(0))
    } else if end < count {
        Some(page_token(end))
    } else if offset > 0 {
        Some(String::new())
    } else {
        None
    };
    Reply::json(StatusCode::OK, &RolesPage { roles, next_page_token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let q = HashMap::new();
        assert!(matches!(Route::of(&Method::POST, "/v1/auth/token", &q), Route::Token));
        assert!(matches!(Route::of(&Method::GET, "/v1/auth/token", &q), Route::MethodNotAllowed));
        assert!(matches!(Route::of(&Method::GET, "/public/v1alpha/users/", &q), Route::Users { sso: Ok(false) }));
        assert!(matches!(Route::of(&Method::GET, "/public/v1alpha/users/roles", &q), Route::Roles));
        assert!(matches!(Route::of(&Method::GET, "/", &q), Route::NotFound));
        let q = HashMap::from([("sso_provision".to_owned(), "maybe".to_owned())]);
        assert!(matches!(Route::of(&Method::GET, "/public/v1alpha/users", &q), Route::Users { sso: Err(_) }));
    }

    #[test]
    fn form_and_basic() {
        assert_eq!(
            form_value(b"a=1&grant_type=client_credentials", "grant_type").as_deref(),
            Some("client_credentials")
        );
        assert_eq!(form_value(b"grant_type", "grant_type"), None);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic dTpwOnc="));
        assert_eq!(basic_credentials(&headers), Some(("u".to_owned(), "p:w".to_owned())));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(basic_credentials(&headers), None);
    }

    #[test]
    fn halves() {
        assert_eq!(first_half(&Bytes::from_static(b"abcd")), Bytes::from_static(b"ab"));
        assert_eq!(first_half(&Bytes::from_static(b"a")), Bytes::from_static(b"a"));
        assert_eq!(first_half(&Bytes::new()), Bytes::new());
    }
}
