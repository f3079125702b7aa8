//! ConductorOne token exchange: a signed client assertion POSTed as a form to `https://<host>/auth/v1/token`,
//! the access token cached until shortly before it expires.
//!
//! Must not: log or return the assertion or the token in an error; error messages carry the URL, the HTTP status
//! and at most a short OAuth error code from the response.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::Mutex;

use super::credentials::{ClientId, ClientKey};

/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(10);
/// Lifetime assumed when the response has no `expires_in`.
const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Longest time spent reading a token-endpoint answer.
const BODY_DEADLINE: Duration = Duration::from_secs(30);

/// Why no token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error(
        "ConductorOne rejected the client credentials (HTTP {status} from {url}{detail}): check --client-id and \
         --client-secret (BATON_CLIENT_ID / BATON_CLIENT_SECRET) or create a new credential, and that this \
         machine's clock is right (the signed assertion tolerates 2 minutes of clock difference)"
    )]
    Rejected { url: String, status: u16, detail: String },
    /// The handshake failed the way it will on every attempt (an untrusted, expired or misnamed certificate).
    #[error("TLS connection to ConductorOne at {url} refused: {reason}; retrying cannot fix this: {fix}")]
    Tls { url: String, reason: String, fix: &'static str },
    #[error(
        "cannot reach the ConductorOne token endpoint {url}: {detail}; check the network (proxy, firewall, DNS) and, \
         when set, BATON_C1_API_HOST"
    )]
    Unreachable { url: String, detail: String },
    #[error("the ConductorOne token endpoint {url} answered HTTP {status}; ConductorOne may be having trouble, try again later")]
    Server { url: String, status: u16 },
    #[error(
        "the ConductorOne token endpoint {url} sent an unreadable answer: {detail}; if a proxy sits in between, check \
         that it passes {url} through"
    )]
    Malformed { url: String, detail: String },
}

impl TokenError {
    /// Errors that retrying will not fix (bad credentials, untrusted certificate).
    pub(crate) fn is_fatal(&self) -> bool {
        matches!(self, TokenError::Rejected { .. } | TokenError::Tls { .. })
    }
}

/// A token answer is a few hundred bytes, an error answer not much more; nothing longer is read.
const BODY_LIMIT: usize = 64 * 1024;

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    #[serde(default, deserialize_with = "crate::torq::models::lenient_seconds")]
    expires_in: Option<f64>,
}

impl Drop for TokenResponse {
    fn drop(&mut self) {
        if let Some(t) = self.access_token.as_mut() {
            secrecy::zeroize::Zeroize::zeroize(t);
        }
    }
}

struct Cached {
    token: SecretString,
    renew_at: Instant,
}

/// Reads at most [`BODY_LIMIT`] of a token-endpoint answer (the client's own timeout bounds the whole request).
async fn bounded_body(url: &str, response: reqwest::Response) -> Result<Zeroizing<Vec<u8>>, TokenError> {
    // Reserved whole up front so that no reallocation leaves a copy of the token behind; wiped on drop.
    let mut body = Zeroizing::new(Vec::with_capacity(BODY_LIMIT));
    crate::torq::read_body(response, &mut body, BODY_LIMIT, BODY_DEADLINE).await.map_err(|e| match e {
        crate::torq::BodyError::Transport(e) => classify(url, &e),
        other => TokenError::Malformed { url: url.to_owned(), detail: other.to_string() },
    })?;
    Ok(body)
}

/// Hands out bearer tokens, exchanging a fresh assertion when the cached one is about to expire.
pub(crate) struct TokenSource {
    http: reqwest::Client,
    url: String,
    client_id: ClientId,
    key: Arc<ClientKey>,
    cached: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource").field("url", &self.url).finish_non_exhaustive()
    }
}

impl TokenSource {
    pub(crate) fn new(http: reqwest::Client, api_host: &str, client_id: ClientId, key: Arc<ClientKey>) -> TokenSource {
        TokenSource { http, url: format!("https://{api_host}/auth/v1/token"), client_id, key, cached: Mutex::new(None) }
    }

    /// A valid bearer token (cached, or exchanged now).
    pub(crate) async fn token(&self) -> Result<SecretString, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            if Instant::now() < c.renew_at {
                return Ok(c.token.clone());
            }
        }
        let (token, ttl) = self.exchange().await?;
        // Without a usable lifetime the token serves this call only; the next call exchanges a new one.
        let renew_at = ttl.and_then(|ttl| crate::torq::renew_time(Instant::now(), ttl, RENEW_BEFORE));
        *cached = renew_at.map(|renew_at| Cached { token: token.clone(), renew_at });
        Ok(token)
    }

    /// Drops the cached token (after the API answered Unauthenticated).
    pub(crate) async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    /// A new token and how long it may be used (`None`: for one call only).
    async fn exchange(&self) -> Result<(SecretString, Option<Duration>), TokenError> {
        let url = self.url.clone();
        let assertion = self.key.client_assertion(&self.client_id, SystemTime::now());
        let form = [
            ("client_id", self.client_id.as_str()),
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion.expose_secret()),
        ];
        let response = self.http.post(&url).form(&form).send().await.map_err(|e| classify(&url, &e))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED
            || status == reqwest::StatusCode::FORBIDDEN
            || status == reqwest::StatusCode::BAD_REQUEST
        {
            let detail = bounded_body(&url, response).await.map(|b| oauth_error(&String::from_utf8_lossy(&b)));
            return Err(TokenError::Rejected { url, status: status.as_u16(), detail: detail.unwrap_or_default() });
        }
        if !status.is_success() {
            return Err(TokenError::Server { url, status: status.as_u16() });
        }
        let body = bounded_body(&url, response).await?;
        let mut parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| TokenError::Malformed { url: url.clone(), detail: format!("not the expected JSON ({e})") })?;
        // Moved, not copied, into the secret; `parsed` wipes anything left when dropped.
        let token = match parsed.access_token.take() {
            Some(t) if !t.is_empty() => SecretString::from(t),
            _ => return Err(TokenError::Malformed { url, detail: "the answer has no access_token".into() }),
        };
        let ttl = crate::torq::token_lifetime(parsed.expires_in, DEFAULT_TTL);
        match ttl {
            Some(ttl) => tracing::debug!(expires_in_seconds = ttl.as_secs(), "obtained a ConductorOne access token"),
            None => tracing::warn!(
                "ConductorOne sent a token without a usable lifetime (expires_in); using it for one call only"
            ),
        }
        Ok((token, ttl))
    }
}

/// `: invalid_client` when the body is an OAuth error with a short, plain code; empty otherwise.
fn oauth_error(body: &str) -> String {
    let code = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_default();
    if !code.is_empty() && code.len() <= 64 && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        format!(": {code}")
    } else {
        String::new()
    }
}

fn classify(url: &str, e: &reqwest::Error) -> TokenError {
    let detail = error_chain(e);
    if is_tls_error(e) {
        use crate::torq::tls::{cert_problem, CertProblem};
        let problem = cert_problem(e);
        let fix = match problem {
            Some(CertProblem::WrongName) => {
                "check BATON_C1_API_HOST (when set) or the tenant in BATON_CLIENT_ID; a TLS-inspecting proxy must \
                 issue certificates for that name"
            }
            Some(CertProblem::OutOfDate { .. }) => {
                "check this machine's clock (date -u); if it is right, the certificate of ConductorOne's endpoint (or \
                 of a proxy in between) must be renewed"
            }
            _ => {
                "if ConductorOne is reached through a TLS-inspecting proxy or a private CA, pass its CA certificate \
                 with BATON_C1_CA_CERT_FILE (or add it to the system trust store)"
            }
        };
        let reason = problem.map_or(detail, |p| p.reason());
        TokenError::Tls { url: url.to_owned(), reason, fix }
    } else {
        TokenError::Unreachable { url: url.to_owned(), detail }
    }
}

/// The error and its sources on one line (io errors' inner errors included).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        let text = err.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        current = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner),
            None => err.source(),
        };
    }
    parts.join(": ").replace('\n', " ")
}

/// Whether a rustls error (certificate, handshake) is in the chain.
pub(crate) fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        current = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner),
            None => err.source(),
        };
    }
    false
}
