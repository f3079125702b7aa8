//! The HTTP side of the simulator: an axum server on `127.0.0.1:0` that answers like Torq.
//!
//! Routing is axum's [`Router`]: one handler per endpoint (see [`ROUTES`]), a 405 with Torq's error envelope
//! for a wrong method and a 404 for an unknown path. In front of all of them sits one middleware ([`front`])
//! that does, in this order: classify the request and count it (the per-endpoint counters are what fault
//! rules refer to), sleep the configured latency plus any injected delay, answer an injected fault or let the
//! handler answer, and finally apply body faults (truncation, connection reset). API handlers check the bearer
//! token through the [`Authorized`] extractor (401 for a missing or unknown token, 302 for an expired one).
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
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::serve::ListenerExt;
use axum::Router;
use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::faults::{grpc_code, Endpoint, FaultKind, FaultPlan};
use super::workspace::{uuid_like, SimUser, Workspace};

/// Path of the token endpoint.
const TOKEN_PATH: &str = "/v1/auth/token";
/// Prefix of the public API.
const API_PREFIX: &str = "/public/v1alpha";
/// Paths of the public API.
const USERS_PATH: &str = "/public/v1alpha/users";
const ROLES_PATH: &str = "/public/v1alpha/users/roles";
const RBAC_ROLES_PATH: &str = "/public/v1alpha/roles";
const API_KEYS_PATH: &str = "/public/v1alpha/api-keys";
const CLAIM_MAPPINGS_PATH: &str = "/public/v1alpha/sso/claim_mappings";
const INVITE_PATH: &str = "/public/v1alpha/users/invite";
/// Every endpoint the simulator serves: (endpoint, method, path). The router and the request counting both
/// come from this table. `UsersSso` shares the users path; the `sso_provision` parameter tells them apart.
const ROUTES: [(Endpoint, Method, &str); 7] = [
    (Endpoint::Token, Method::POST, TOKEN_PATH),
    (Endpoint::UsersLocal, Method::GET, USERS_PATH),
    (Endpoint::Roles, Method::GET, ROLES_PATH),
    (Endpoint::RbacRoles, Method::GET, RBAC_ROLES_PATH),
    (Endpoint::ApiKeys, Method::GET, API_KEYS_PATH),
    (Endpoint::ClaimMappings, Method::GET, CLAIM_MAPPINGS_PATH),
    (Endpoint::Invite, Method::POST, INVITE_PATH),
];
/// Status of a freshly invited user.
const INVITATION_SENT: &str = "INVITATION_SENT";
/// The role an invite without `role_id` gets (Torq: "the default role is Viewer"); the first role if absent.
const DEFAULT_ROLE_NAME: &str = "Viewer";
/// Largest accepted invite body.
const MAX_INVITE_BODY: usize = 64 * 1024;
/// Where Torq sends a request whose token has expired.
const LOGIN_URL: &str = "https://login.torq.io/login";
/// Users serialised per body chunk.
pub(crate) const USERS_PER_CHUNK: usize = 1000;
/// Chunks buffered between the producer and the response body.
const CHUNKS_IN_FLIGHT: usize = 4;
/// `page_size` default and maximum of `users/roles`.
const DEFAULT_PAGE_SIZE: u64 = 50;
const MAX_PAGE_SIZE: u64 = 100;
/// Prefixes of the opaque page tokens of the legacy and the (split) RBAC role lists.
const PAGE_TOKEN_PREFIX: &str = "rp1.";
const RBAC_PAGE_TOKEN_PREFIX: &str = "rb1.";
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

/// Request counters, one per endpoint. The endpoint counters plus `other` add up to every request the server
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
    /// `GET /public/v1alpha/users/roles` (legacy, paged).
    pub role_pages: u64,
    /// `GET /public/v1alpha/roles` (RBAC).
    pub rbac_roles: u64,
    /// `GET /public/v1alpha/api-keys`.
    pub api_keys: u64,
    /// `GET /public/v1alpha/sso/claim_mappings`.
    pub claim_mappings: u64,
    /// `POST /public/v1alpha/users/invite` (every POST, whatever its answer).
    pub invites: u64,
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
        self.users_local
            + self.users_sso
            + self.role_pages
            + self.rbac_roles
            + self.api_keys
            + self.claim_mappings
            + self.invites
            + self.other
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
    rbac_roles: AtomicU64,
    api_keys: AtomicU64,
    claim_mappings: AtomicU64,
    invites: AtomicU64,
    other: AtomicU64,
    /// Every non-token request, for [`Endpoint::AnyApi`] rules.
    api: AtomicU64,
    rejected_auth: AtomicU64,
    faults_injected: AtomicU64,
}

impl Counters {
    /// The counter of a classified request (`None`: unknown path or wrong method).
    fn of(&self, endpoint: Option<Endpoint>) -> &AtomicU64 {
        match endpoint {
            Some(Endpoint::Token) => &self.token,
            Some(Endpoint::UsersLocal) => &self.users_local,
            Some(Endpoint::UsersSso) => &self.users_sso,
            Some(Endpoint::Roles) => &self.role_pages,
            Some(Endpoint::RbacRoles) => &self.rbac_roles,
            Some(Endpoint::ApiKeys) => &self.api_keys,
            Some(Endpoint::ClaimMappings) => &self.claim_mappings,
            Some(Endpoint::Invite) => &self.invites,
            Some(Endpoint::AnyApi) | None => &self.other,
        }
    }
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
    /// Users added by `users/invite`, in order; listed after the workspace's own local users. The workspace
    /// itself never changes, so a generated one stays lazy; the lock also makes "check the email, then add"
    /// one step.
    invited: Mutex<Vec<SimUser>>,
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
            invited: Mutex::new(Vec::new()),
            counters: Counters::default(),
        });
        let app = router(Arc::clone(&shared));
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

    /// The socket address the server listens on (tests put a proxy in front of it).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL of the public API, e.g. `http://127.0.0.1:PORT/public/v1alpha`.
    pub fn api_url(&self) -> String {
        format!("http://{}{API_PREFIX}", self.addr)
    }

    /// URL of the token endpoint, e.g. `http://127.0.0.1:PORT/v1/auth/token`.
    pub fn auth_url(&self) -> String {
        format!("http://{}{TOKEN_PATH}", self.addr)
    }

    /// The users invited through `users/invite` so far, in order.
    pub fn invited_users(&self) -> Vec<SimUser> {
        self.shared.invited.lock().unwrap_or_else(PoisonError::into_inner).clone()
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
            rbac_roles: get(&c.rbac_roles),
            api_keys: get(&c.api_keys),
            claim_mappings: get(&c.claim_mappings),
            invites: get(&c.invites),
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

/// The application: one route per row of [`ROUTES`] (with and without a trailing slash), Torq-style 404 and 405
/// answers, and [`front`] in front of everything.
fn router(shared: Arc<Shared>) -> Router {
    let mut router: Router<Arc<Shared>> = Router::new();
    for (endpoint, method, path) in ROUTES {
        let Ok(filter) = MethodFilter::try_from(method) else {
            continue; // only GET and POST are in the table, and both convert
        };
        let handler = handler(endpoint, filter).fallback(method_not_allowed);
        router = router.route(path, handler.clone()).route(&format!("{path}/"), handler);
    }
    router
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&shared), front))
        .with_state(shared)
}

/// The handler of one endpoint.
fn handler(endpoint: Endpoint, filter: MethodFilter) -> MethodRouter<Arc<Shared>> {
    match endpoint {
        Endpoint::Token => on(filter, issue_token),
        Endpoint::UsersLocal | Endpoint::UsersSso => on(filter, list_users),
        Endpoint::Roles => on(filter, list_legacy_roles),
        Endpoint::RbacRoles => on(filter, list_rbac_roles),
        Endpoint::ApiKeys => on(filter, list_api_keys),
        Endpoint::ClaimMappings => on(filter, list_claim_mappings),
        Endpoint::Invite => on(filter, invite),
        Endpoint::AnyApi => on(filter, not_found),
    }
}

/// Which endpoint a request is for, by method, path (a trailing slash is ignored) and `sso_provision`; `None`
/// for an unknown path or a wrong method.
fn classify(method: &Method, path: &str, query: &HashMap<String, String>) -> Option<Endpoint> {
    let path = match path.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => path,
    };
    let (endpoint, _, _) = ROUTES.iter().find(|(_, m, p)| m == method && *p == path)?;
    match endpoint {
        Endpoint::UsersLocal if sso_param(query) == Ok(true) => Some(Endpoint::UsersSso),
        endpoint => Some(*endpoint),
    }
}

/// `sso_provision` of a user list request; absent means `false`.
fn sso_param(query: &HashMap<String, String>) -> Result<bool, String> {
    match query.get("sso_provision").map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(format!("invalid value for sso_provision: {other:?}")),
    }
}

fn query_of(uri: &Uri) -> HashMap<String, String> {
    Query::try_from_uri(uri).map(|Query(q)| q).unwrap_or_default()
}

/// The fault chosen for a request, for handlers whose answer it changes (paging faults).
#[derive(Clone, Debug)]
struct Injected(Option<FaultKind>);

/// What a paged list handler reads from its request: the query and the fault [`Injected`] for it.
struct PageRequest {
    query: HashMap<String, String>,
    fault: Option<FaultKind>,
}

impl FromRequestParts<Arc<Shared>> for PageRequest {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &Arc<Shared>) -> Result<PageRequest, Response> {
        let fault = parts.extensions.get::<Injected>().and_then(|Injected(fault)| fault.clone());
        Ok(PageRequest { query: query_of(&parts.uri), fault })
    }
}

/// Counting, latency and fault injection in front of every handler.
async fn front(State(shared): State<Arc<Shared>>, mut request: Request, next: Next) -> Response {
    let query = query_of(request.uri());
    let endpoint = classify(request.method(), request.uri().path(), &query);

    // Count first: the counters number the requests that fault rules refer to.
    let c = &shared.counters;
    let index = bump(c.of(endpoint));
    let api_index = (endpoint != Some(Endpoint::Token)).then(|| bump(&c.api));
    let decision = shared.faults.lock().unwrap_or_else(PoisonError::into_inner).decide(
        |e| match e {
            Endpoint::AnyApi => api_index,
            e if Some(e) == endpoint => Some(index),
            _ => None,
        },
        endpoint,
    );
    let fault = decision.kind;
    if fault.is_some() || !decision.delay.is_zero() {
        c.faults_injected.fetch_add(1, Ordering::Relaxed);
    }

    let wait = shared.latency.saturating_add(decision.delay);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }

    match &fault {
        Some(FaultKind::Status(code)) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reason = status.canonical_reason().unwrap_or("injected error");
            return error(status, &format!("{reason} (injected by the simulator)"));
        }
        Some(FaultKind::TooManyRequests { retry_after_secs }) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Resource exhausted");
            if let Some(secs) = retry_after_secs {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            return response;
        }
        Some(FaultKind::Redirect302) => return login_redirect(request.uri().path()),
        Some(FaultKind::MalformedJson) => return malformed_json(endpoint),
        _ => {}
    }

    request.extensions_mut().insert(Injected(fault.clone()));
    let response = next.run(request).await;
    match fault {
        Some(FaultKind::TruncatedBody) => cut(response, CutEnd::Clean),
        Some(FaultKind::ResetConnection) => cut(response, CutEnd::Reset),
        Some(FaultKind::StallBody) => cut(response, CutEnd::Stall),
        Some(FaultKind::ResetAfterHandling) => drop_connection(response),
        _ => response,
    }
}

/// Proof that the request carries a valid bearer token. Rejects with 401 for a missing or unknown token and a
/// 302 to the login page for an expired one, as Torq does.
struct Authorized;

impl FromRequestParts<Arc<Shared>> for Authorized {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Authorized, Response> {
        match rejection(shared, &parts.headers, parts.uri.path()) {
            Some(response) => Err(response),
            None => Ok(Authorized),
        }
    }
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

fn json(status: StatusCode, value: &impl Serialize) -> Response {
    // Serialising plain data structures into a Vec cannot fail.
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Torq's error envelope.
fn error(status: StatusCode, message: &str) -> Response {
    let envelope = serde_json::json!({
        "code": grpc_code(status.as_u16()),
        "message": message,
        "details": [],
    });
    json(status, &envelope)
}

/// What Torq answers for an expired token: a redirect to the login page with an HTML body.
fn login_redirect(path: &str) -> Response {
    let location = format!("{LOGIN_URL}?redirect_uri=https%3A%2F%2Fapi.torq.io{}", path.replace('/', "%2F"));
    let html = format!(
        "<!DOCTYPE html>\n<html><head><title>Sign in - Torq</title></head>\
         <body><a href=\"{location}\">Found</a>.</body></html>\n"
    );
    let mut response = Response::new(Body::from(html));
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    }
    response
}

/// The response with its body cut after the first half of its first chunk; see [`cut_body`].
fn cut(response: Response, end: CutEnd) -> Response {
    let (parts, body) = response.into_parts();
    let chunks = body
        .into_data_stream()
        .take_while(|chunk| std::future::ready(chunk.is_ok()))
        .filter_map(|chunk| std::future::ready(chunk.ok()));
    Response::from_parts(parts, cut_body(chunks, end))
}

/// A response whose body fails before its first byte. hyper then drops the connection without writing the
/// status line it holds in its buffer, so the client gets no answer at all, although the handler ran.
fn drop_connection(response: Response) -> Response {
    let (parts, _handled) = response.into_parts();
    let failure = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "sim: injected reset after handling");
    Response::from_parts(parts, Body::from_stream(futures_util::stream::iter([Err::<Bytes, _>(failure)])))
}

fn chunk_stream(rx: mpsc::Receiver<Bytes>) -> impl futures_util::Stream<Item = Bytes> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) })
}

/// The first half of `bytes` (at least one byte, never all of a body of two or more bytes).
fn first_half(bytes: &Bytes) -> Bytes {
    let keep = (bytes.len() / 2).max(1).min(bytes.len());
    bytes.slice(..keep)
}

/// How a cut body ends after its first half chunk.
#[derive(Clone, Copy)]
enum CutEnd {
    /// The body ends cleanly (the HTTP framing is complete, the JSON is not).
    Clean,
    /// The body fails after a short pause, which makes hyper drop the connection without the terminating chunk.
    Reset,
    /// Nothing more is ever sent; the connection stays open until the client gives up or the server stops.
    Stall,
}

/// A body made of the first half of the first chunk of `chunks`, ended as `end` says.
fn cut_body(chunks: impl futures_util::Stream<Item = Bytes> + Send + 'static, end: CutEnd) -> Body {
    let stream = futures_util::stream::unfold((Box::pin(chunks), 0u8), move |(mut chunks, step)| async move {
        match (step, end) {
            (0, _) => {
                let first = chunks.next().await.unwrap_or_default();
                Some((Ok(first_half(&first)), (chunks, 1)))
            }
            (1, CutEnd::Reset) => {
                tokio::time::sleep(RESET_PAUSE).await;
                let err = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "sim: injected connection reset");
                Some((Err(err), (chunks, 2)))
            }
            (1, CutEnd::Stall) => std::future::pending().await,
            _ => None,
        }
    });
    Body::from_stream(stream)
}

/// A body that is not valid JSON, shaped like the endpoint's normal answer.
fn malformed_json(endpoint: Option<Endpoint>) -> Response {
    let text: &'static str = match endpoint {
        Some(Endpoint::Token) => r#"{"access_token": "sim-malformed", "expires_in": 3600,, "token_type": Bearer}"#,
        Some(Endpoint::UsersLocal | Endpoint::UsersSso) => r#"{"users": [{"id": "sim-malformed", "email": }, ]"#,
        Some(Endpoint::Roles) => r#"{"roles": [{"id": "sim-malformed" "name": "x"}], "next_page_token": }"#,
        Some(Endpoint::RbacRoles) => r#"{"roles": [{"id": "sim-malformed", "is_custom": tru}]}"#,
        Some(Endpoint::ApiKeys) => r#"{"api_keys": [{"client_id": "sim-malformed" "name": }]}"#,
        Some(Endpoint::ClaimMappings) => r#"{"claim_mappings": [{"id": "sim-malformed", "rank": 1.}]"#,
        Some(Endpoint::Invite) => r#"{"id": "sim-malformed", "email": , "status": "INVITATION_SENT"}"#,
        Some(Endpoint::AnyApi) | None => r#"{"code": 5, "message": not found"#,
    };
    let mut response = Response::new(Body::from(Bytes::from_static(text.as_bytes())));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Checks the bearer token and returns the rejection, if any: missing or unknown -> 401, expired -> 302 to
/// the login page.
fn rejection(shared: &Shared, headers: &HeaderMap, path: &str) -> Option<Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let verdict = match token {
        None => Some(error(StatusCode::UNAUTHORIZED, "missing bearer token")),
        Some(token) => {
            let expiry = shared.tokens.lock().unwrap_or_else(PoisonError::into_inner).get(token).copied();
            match expiry {
                None => Some(error(StatusCode::UNAUTHORIZED, "invalid token")),
                Some(expiry) if Instant::now() >= expiry => Some(login_redirect(path)),
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

async fn issue_token(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let credentials_ok = basic_credentials(request.headers())
        .is_some_and(|(id, secret)| id == shared.client_id && secret == shared.client_secret);
    if !credentials_ok {
        shared.counters.rejected_auth.fetch_add(1, Ordering::Relaxed);
        return error(StatusCode::UNAUTHORIZED, "invalid client credentials");
    }
    let body = match axum::body::to_bytes(request.into_body(), 64 * 1024).await {
        Ok(body) => body,
        Err(_) => return error(StatusCode::BAD_REQUEST, "cannot read the request body"),
    };
    let grant_ok = form_value(&body, "grant_type").is_some_and(|g| g == "client_credentials");
    if !grant_ok {
        return error(StatusCode::BAD_REQUEST, "grant_type must be client_credentials");
    }
    let token = uuid_like(rand::random(), rand::random());
    let expiry = Instant::now() + shared.token_ttl;
    shared.tokens.lock().unwrap_or_else(PoisonError::into_inner).insert(token.clone(), expiry);
    let mut response = json(
        StatusCode::OK,
        &TokenResponse { access_token: token, expires_in: shared.token_ttl.as_secs(), token_type: "Bearer" },
    );
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The value of `key` in an `application/x-www-form-urlencoded` body (values here need no decoding beyond
/// `+`; anything with `%` is compared as sent, which is enough for `grant_type`).
fn form_value(body: &[u8], key: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v.replace('+', " "))
}

/// `users?sso_provision=…`: every matching user, streamed.
async fn list_users(_: Authorized, State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let sso = match sso_param(&query_of(&uri)) {
        Ok(sso) => sso,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    // Invited users are local (not SSO-provisioned) users; the list is taken as it is when the request arrives.
    let invited = if sso { Vec::new() } else { shared.invited.lock().unwrap_or_else(PoisonError::into_inner).clone() };
    let (tx, rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || produce_users(shared.workspace.users(sso).chain(invited), &tx));
    let mut response = Response::new(Body::from_stream(chunk_stream(rx).map(Ok::<_, std::io::Error>)));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Writes `{"users":[...]}` into `tx` in chunks of [`USERS_PER_CHUNK`] users. Stops early when the receiver is
/// gone (client disconnected, or a body fault cut the response).
fn produce_users(users: impl Iterator<Item = SimUser>, tx: &mpsc::Sender<Bytes>) {
    let mut buf: Vec<u8> = Vec::with_capacity(256 * USERS_PER_CHUNK);
    buf.extend_from_slice(b"{\"users\":[");
    let mut in_chunk = 0;
    let mut first = true;
    for user in users {
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

/// A role as the legacy `users/roles` list writes it: every field, but no `is_custom`.
#[derive(Serialize)]
struct LegacyRole<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    scope_names: &'a [String],
}

/// A role as the RBAC `roles` list writes it: fields with default values are omitted, as proto3 JSON may do.
#[derive(Serialize)]
struct RbacRole<'a> {
    id: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    scope_names: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    is_custom: bool,
}

#[derive(Serialize)]
struct RolesPage<R> {
    roles: Vec<R>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

fn page_token(prefix: &str, offset: u64) -> String {
    format!("{prefix}{offset:08x}")
}

/// The offset a role list's `page_token` (or `pageToken`) stands for: 0 without one, `None` for a token that is
/// not one of ours (`prefix`) or points past the `count` roles.
fn page_offset(query: &HashMap<String, String>, prefix: &str, count: u64) -> Option<u64> {
    let Some(token) = query.get("page_token").or_else(|| query.get("pageToken")).filter(|t| !t.is_empty()) else {
        return Some(0);
    };
    token.strip_prefix(prefix).and_then(|hex| u64::from_str_radix(hex, 16).ok()).filter(|&offset| offset <= count)
}

/// `users/roles`: `page_size` (default 50, clamped to 100) and an opaque `page_token`. The last page of a
/// multi-page listing carries `"next_page_token": ""`; a listing that fits in one page omits the field, so
/// clients meet both forms of "no more pages".
async fn list_legacy_roles(_: Authorized, State(shared): State<Arc<Shared>>, request: PageRequest) -> Response {
    let PageRequest { query, fault } = request;
    let endless_paging = fault == Some(FaultKind::EndlessPaging);
    let param = |snake: &str, camel: &str| query.get(snake).or_else(|| query.get(camel)).map(String::as_str);
    let page_size = match param("page_size", "pageSize").filter(|s| !s.is_empty()) {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if n < 0 => return error(StatusCode::BAD_REQUEST, "page_size must not be negative"),
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(n) => n.unsigned_abs().min(MAX_PAGE_SIZE),
            Err(_) => return error(StatusCode::BAD_REQUEST, "page_size must be an integer"),
        },
    };
    let count = shared.workspace.role_count();
    let Some(offset) = page_offset(&query, PAGE_TOKEN_PREFIX, count) else {
        return error(StatusCode::BAD_REQUEST, "invalid page_token");
    };
    let roles = shared.workspace.role_page(offset, page_size);
    let end = offset + roles.len() as u64;
    let next_page_token = if endless_paging {
        Some(page_token(PAGE_TOKEN_PREFIX, 0))
    } else if end < count {
        Some(page_token(PAGE_TOKEN_PREFIX, end))
    } else if offset > 0 {
        Some(String::new())
    } else {
        None
    };
    let roles: Vec<LegacyRole<'_>> = roles
        .iter()
        .map(|r| LegacyRole { id: &r.id, name: &r.name, description: &r.description, scope_names: &r.scope_names })
        .collect();
    json(StatusCode::OK, &RolesPage { roles, next_page_token })
}

/// The RBAC `roles` list: every role in one answer, no paging, unless a [`FaultKind::SplitPage`] fault cuts
/// it in two. A `page_token` from such a split is honoured at any time.
async fn list_rbac_roles(_: Authorized, State(shared): State<Arc<Shared>>, request: PageRequest) -> Response {
    let PageRequest { query, fault } = request;
    let count = shared.workspace.role_count();
    let Some(offset) = page_offset(&query, RBAC_PAGE_TOKEN_PREFIX, count) else {
        return error(StatusCode::BAD_REQUEST, "invalid page_token");
    };
    let rest = count - offset;
    let (len, next_page_token) = if fault == Some(FaultKind::SplitPage) {
        let half = rest.div_ceil(2);
        (half, Some(page_token(RBAC_PAGE_TOKEN_PREFIX, offset + half)))
    } else {
        (rest, None)
    };
    let roles = shared.workspace.role_page(offset, len);
    let roles: Vec<RbacRole<'_>> = roles
        .iter()
        .map(|r| RbacRole {
            id: &r.id,
            name: &r.name,
            description: &r.description,
            scope_names: &r.scope_names,
            is_custom: r.is_custom,
        })
        .collect();
    json(StatusCode::OK, &RolesPage { roles, next_page_token })
}

/// `api-keys`: every key in one answer (no paging documented). Keys carry no secret.
async fn list_api_keys(_: Authorized, State(shared): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &serde_json::json!({ "api_keys": shared.workspace.api_keys() }))
}

/// The body of `users/invite`.
#[derive(Deserialize)]
struct InviteRequest {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role_id: String,
}

/// `users/invite`: adds an `INVITATION_SENT` user and answers it (200 with the user object, as Torq documents).
/// 400 for a body that is not `{email, role_id?}`, an address without exactly one `@`, or a role that is not in
/// the role list; 409 (`ALREADY_EXISTS`) for an email that a user already has, compared case-insensitively.
async fn invite(_: Authorized, State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    if body.len() > MAX_INVITE_BODY {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "request body is too large");
    }
    let request: InviteRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => return error(StatusCode::BAD_REQUEST, &format!("invalid invite request: {err}")),
    };
    let email = request.email.trim();
    if email.is_empty() {
        return error(StatusCode::BAD_REQUEST, "email is required");
    }
    if email.matches('@').count() != 1
        || email.starts_with('@')
        || email.ends_with('@')
        || email.contains(char::is_whitespace)
    {
        return error(StatusCode::BAD_REQUEST, &format!("invalid email address: {email:?}"));
    }
    let roles = shared.workspace.roles();
    let role_id = if request.role_id.is_empty() {
        let default = roles.iter().find(|r| r.name == DEFAULT_ROLE_NAME).or(roles.first());
        match default {
            Some(role) => role.id.clone(),
            None => return error(StatusCode::BAD_REQUEST, "the workspace has no role to assign"),
        }
    } else if roles.iter().any(|r| r.id == request.role_id) {
        request.role_id
    } else {
        return error(StatusCode::BAD_REQUEST, &format!("role {:?} not found", request.role_id));
    };

    let mut invited = shared.invited.lock().unwrap_or_else(PoisonError::into_inner);
    if shared.workspace.has_email(email) || invited.iter().any(|u| u.email.eq_ignore_ascii_case(email)) {
        return error(StatusCode::CONFLICT, &format!("user with email {email} already exists"));
    }
    let user = SimUser {
        id: uuid_like(rand::random(), rand::random()),
        email: email.to_owned(),
        role_id,
        status: INVITATION_SENT.to_owned(),
        sso_provision: false,
        created_time: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        last_login_time: None,
    };
    invited.push(user.clone());
    drop(invited);
    json(StatusCode::OK, &user)
}

/// `sso/claim_mappings`: every mapping in one answer.
async fn list_claim_mappings(_: Authorized, State(shared): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &serde_json::json!({ "claim_mappings": shared.workspace.claim_mappings() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let q = HashMap::new();
        assert_eq!(classify(&Method::POST, "/v1/auth/token", &q), Some(Endpoint::Token));
        assert_eq!(classify(&Method::GET, "/v1/auth/token", &q), None);
        assert_eq!(classify(&Method::GET, "/public/v1alpha/users/", &q), Some(Endpoint::UsersLocal));
        assert_eq!(classify(&Method::GET, "/public/v1alpha/users/roles", &q), Some(Endpoint::Roles));
        assert_eq!(classify(&Method::GET, "/public/v1alpha/roles", &q), Some(Endpoint::RbacRoles));
        assert_eq!(classify(&Method::GET, "/public/v1alpha/api-keys", &q), Some(Endpoint::ApiKeys));
        assert_eq!(classify(&Method::GET, "/public/v1alpha/api_keys", &q), None);
        assert_eq!(classify(&Method::GET, "/public/v1alpha/sso/claim_mappings/", &q), Some(Endpoint::ClaimMappings));
        assert_eq!(classify(&Method::GET, "/", &q), None);
        let q = HashMap::from([("sso_provision".to_owned(), "maybe".to_owned())]);
        assert_eq!(classify(&Method::GET, "/public/v1alpha/users", &q), Some(Endpoint::UsersLocal));
        assert!(sso_param(&q).is_err());
        let q = HashMap::from([("sso_provision".to_owned(), "true".to_owned())]);
        assert_eq!(classify(&Method::GET, "/public/v1alpha/users", &q), Some(Endpoint::UsersSso));
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
