//! Torq public REST API client.
//!
//! Owns everything about talking to Torq: the OAuth client-credentials token (cached, renewed before expiry and
//! whenever the API answers 302 or 401), retries with exponential backoff and jitter (429, 5xx, connection
//! errors, truncated bodies; `Retry-After` honoured), the client-side rate limit (Torq allows 50 requests/s),
//! per-request timeouts, and decoding of Torq's JSON, streamed for the user lists. One file per endpoint:
//! `users` (streamed), `roles` (RBAC and legacy lists), `api_keys`, `claim_mappings`; `list` is the shared
//! whole-body list request.
//!
//! It knows nothing about Baton or c1z files: it hands out [`UserRecord`]s, [`RoleRecord`]s, [`ApiKeyRecord`]s
//! and [`ClaimMappingRecord`]s. Secrets (the client secret and bearer tokens) stay inside `secrecy` types and
//! never reach a log line, an error or Debug output.

mod access;
mod api_keys;
mod auth;
mod claim_mappings;
mod http;
mod invite;
mod list;
mod lookup;
pub(crate) mod models;
mod roles;
pub(crate) mod tls;
mod users;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::Url;
use secrecy::SecretString;

pub(crate) use auth::{renew_time, token_lifetime};
pub(crate) use http::{describe_transport, read_body, BodyError};
pub(crate) use invite::InviteOutcome;
pub use models::{ApiKeyRecord, ApiKeyType, ClaimMappingRecord, RoleRecord, UserRecord, UserStatus};
pub(crate) use users::SinkClosed;

/// Everything needed to reach one Torq workspace.
#[derive(Clone, Debug)]
pub struct TorqSettings {
    pub(crate) client_id: String,
    pub(crate) client_secret: SecretString,
    /// Base of the public API, e.g. `https://api.torq.io/public/v1alpha`.
    pub(crate) api_url: Url,
    /// Token endpoint, e.g. `https://auth.torq.io/v1/auth/token`.
    pub(crate) auth_url: Url,
    /// Limit for connecting plus receiving response headers, and for each gap while reading a body.
    pub(crate) timeout: Duration,
    /// Attempts per request (first try included) for transient failures.
    pub(crate) max_attempts: u32,
    /// Client-side request rate limit.
    pub requests_per_second: u32,
    /// First backoff delay; doubled per attempt with jitter, capped at 30 s.
    pub(crate) initial_backoff: Duration,
}

impl TorqSettings {
    /// Settings with the defaults used by the CLI.
    pub fn new(client_id: String, client_secret: SecretString, api_url: Url, auth_url: Url) -> Self {
        TorqSettings {
            client_id,
            client_secret,
            api_url,
            auth_url,
            timeout: Duration::from_secs(60),
            max_attempts: 6,
            requests_per_second: 50,
            initial_backoff: Duration::from_millis(250),
        }
    }
}

/// Errors from the Torq API layer. Each message is one line saying what went wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TorqError {
    #[error(
        "Torq rejected the API key (HTTP {status} from the token endpoint{detail}): check --torq-client-id and \
         --torq-client-secret (BATON_TORQ_CLIENT_ID / BATON_TORQ_CLIENT_SECRET) and that --torq-region matches the workspace"
    )]
    BadCredentials { status: u16, detail: String },
    #[error(
        "Torq refused a freshly issued token on {request} (HTTP {status} twice): the API key may have been revoked, \
         or the API and auth URLs point at different regions"
    )]
    TokenRejected { request: String, status: u16 },
    #[error(
        "the API key is not allowed to do {request} (HTTP 403{detail}): use a key whose role can read users and roles \
         (user.read scope), e.g. a service key created by an Owner"
    )]
    PermissionDenied { request: String, detail: String },
    #[error(
        "Torq answered HTTP {status} to {request}{detail}: check that --torq-region (or --torq-api-url / \
         --torq-auth-url) points at this workspace's Torq; if it does, retry later or re-run with --verbose"
    )]
    Api { request: String, status: u16, detail: String },
    #[error(
        "Torq did not answer {request} after {attempts} attempts (last: {last}); check connectivity or retry later"
    )]
    Unavailable { request: String, attempts: u32, last: String },
    #[error(
        "Torq asked to wait {asked_secs} s before {request} is tried again (Retry-After), longer than this run waits \
         ({max_secs} s at most); Torq is rate limiting this API key: run again after that time"
    )]
    WaitTooLong { request: String, asked_secs: u64, max_secs: u64 },
    #[error("Torq sent a response to {request} that this client cannot read ({detail}); re-run with --verbose and report it")]
    Malformed { request: String, detail: String },
    #[error("Torq sent a page token for {request} that it had already sent (or more than {pages} pages); stopping to avoid an endless loop")]
    EndlessPaging { request: String, pages: u64 },
    #[error(
        "Torq kept sending more pages for {request} without new items ({pages} pages brought {items}); stopping: the \
         server is looping, retry later and report it if it persists"
    )]
    NoProgress { request: String, pages: u64, items: u64 },
    #[error(
        "the API key is not allowed to invite users ({request}: HTTP 403{detail}): in Torq only Owners can invite; \
         use an API key whose role is Owner"
    )]
    InviteDenied { request: String, detail: String },
    #[error("Torq refused {request} (HTTP {status}{detail}); nothing was changed")]
    Refused { request: String, status: u16, detail: String },
    #[error(
        "Torq answered HTTP {status} to {request}{detail}, and the user list does not show the change; it was not \
         sent again (a write is never repeated unless it surely did not reach Torq): look for the user in Torq \
         (Settings > Users) before trying again"
    )]
    WriteFailed { request: String, status: u16, detail: String },
    /// A certificate problem: the same on every attempt, so the request is not repeated.
    #[error("cannot connect securely to {host}: {reason}; retrying cannot fix this: {fix}")]
    Tls { host: String, reason: String, fix: &'static str },
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("the sync stopped consuming records")]
    SinkClosed,
}

impl TorqError {
    /// HTTP 403 or 404: the key may not read this list, or this workspace does not have it. Optional lists
    /// (API keys, RBAC roles, claim mappings) treat this as "not available" instead of failing the sync.
    pub(crate) fn is_forbidden_or_missing(&self) -> bool {
        matches!(self, TorqError::PermissionDenied { .. } | TorqError::Api { status: 404, .. })
    }

    /// The HTTP status behind [`TorqError::is_forbidden_or_missing`], for messages.
    pub(crate) fn http_status(&self) -> Option<u16> {
        match self {
            TorqError::PermissionDenied { .. } => Some(403),
            TorqError::Api { status, .. } | TorqError::TokenRejected { status, .. } => Some(*status),
            TorqError::BadCredentials { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Request counters, for the summary and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClientStats {
    /// Requests to the token endpoint.
    pub(crate) token_requests: u64,
    /// Requests to the API (every attempt counts).
    pub(crate) api_requests: u64,
    /// Attempts that were repeats of a failed one.
    pub(crate) retries: u64,
    /// Tokens renewed because the API answered 302/401.
    pub(crate) token_rejections: u64,
}

#[derive(Default)]
struct Counters {
    token_requests: AtomicU64,
    api_requests: AtomicU64,
    retries: AtomicU64,
    token_rejections: AtomicU64,
}

/// A client for one Torq workspace. Cheap to share (`Arc` inside); all methods take `&self`.
#[derive(Clone)]
pub struct TorqClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    settings: TorqSettings,
    limiter: DefaultDirectRateLimiter,
    tokens: auth::TokenCache,
    counters: Counters,
}

impl std::fmt::Debug for TorqClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorqClient")
            .field("api_url", &self.inner.settings.api_url.as_str())
            .field("client_id", &self.inner.settings.client_id)
            .finish_non_exhaustive()
    }
}

/// Whether `url`'s host is this machine (127.0.0.0/8, ::1, localhost).
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

impl TorqClient {
    /// Builds the HTTP client: system certificate store, no redirects (Torq signals an expired token with a 302),
    /// a user agent naming this connector; the proxy from `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` (and `NO_PROXY`),
    /// except for a Torq on this machine (the demo, a local simulator), which a proxy could not reach, and whenever
    /// either Torq URL is plain `http://` (allowed for loopback only): through a proxy, that request and its
    /// credentials (the client secret on the token request) would leave the machine unencrypted.
    pub fn new(settings: TorqSettings) -> Result<Self, TorqError> {
        // reqwest is built without a default crypto provider; install ring once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder();
        let plain_http = [&settings.api_url, &settings.auth_url].iter().any(|u| u.scheme() == "http");
        if plain_http || (is_loopback(&settings.api_url) && is_loopback(&settings.auth_url)) {
            builder = builder.no_proxy();
        }
        let http = builder
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("baton-torq/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.timeout)
            .read_timeout(settings.timeout)
            .build()
            .map_err(|e| match tls::cert_problem(&e) {
                // The platform verifier is set up here: no CA certificate is the same failure as a bad certificate.
                Some(problem) => tls::torq_error(&e, &problem, &settings.api_url),
                None => TorqError::Client(e.to_string()),
            })?;
        // The first line of --verbose: which Torq this run talks to (URLs only; never the secret).
        tracing::debug!(
            token_url = %settings.auth_url,
            api_url = %settings.api_url,
            "Torq endpoints"
        );
        let rps = std::num::NonZeroU32::new(settings.requests_per_second.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
        let limiter = RateLimiter::direct(Quota::per_second(rps));
        Ok(TorqClient {
            inner: Arc::new(Inner {
                http,
                settings,
                limiter,
                tokens: auth::TokenCache::default(),
                counters: Counters::default(),
            }),
        })
    }

    /// Counters so far.
    pub(crate) fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        ClientStats {
            token_requests: c.token_requests.load(Ordering::Relaxed),
            api_requests: c.api_requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            token_rejections: c.token_rejections.load(Ordering::Relaxed),
        }
    }

    /// The API URL for `path` (relative to the configured base, e.g. `users/roles`).
    fn endpoint(&self, path: &str) -> Result<Url, TorqError> {
        let base = self.inner.settings.api_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/{path}")).map_err(|e| TorqError::Client(format!("bad API URL: {e}")))
    }
}
