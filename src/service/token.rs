//! ConductorOne token exchange: a signed client assertion POSTed as a form to `https://<host>/auth/v1/token`,
//! the access token cached until shortly before it expires.
//!
//! Must not: log or return the assertion or the token in an error; error messages carry the URL, the HTTP status
//! and at most a short OAuth error code from the response.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::Mutex;

use super::credentials::{ClientId, ClientKey};

/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(10);
/// Lifetime assumed when the response has no usable `expires_in`.
const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// Why no token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error(
        "ConductorOne rejected the client credentials (HTTP {status} from {url}{detail}): check --client-id and \
         --client-secret (BATON_CLIENT_ID / BATON_CLIENT_SECRET) or create a new credential, and that this \
         machine's clock is right (the signed assertion tolerates 2 minutes of clock difference)"
    )]
    Rejected { url: String, status: u16, detail: String },
    #[error("TLS failure talking to {url}: {detail}; if ConductorOne is reached through a private CA, pass it with BATON_C1_CA_CERT_FILE")]
    Tls { url: String, detail: String },
    #[error("cannot reach the ConductorOne token endpoint {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the ConductorOne token endpoint {url} answered HTTP {status}")]
    Server { url: String, status: u16 },
    #[error("the ConductorOne token endpoint {url} sent an unreadable answer: {detail}")]
    Malformed { url: String, detail: String },
}

impl TokenError {
    /// Errors that retrying will not fix (bad credentials, untrusted certificate).
    pub fn is_fatal(&self) -> bool {
        matches!(self, TokenError::Rejected { .. } | TokenError::Tls { .. })
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<u64>,
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

/// Hands out bearer tokens, exchanging a fresh assertion when the cached one is about to expire.
pub struct TokenSource {
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
    pub fn new(http: reqwest::Client, api_host: &str, client_id: ClientId, key: Arc<ClientKey>) -> TokenSource {
        TokenSource { http, url: format!("https://{api_host}/auth/v1/token"), client_id, key, cached: Mutex::new(None) }
    }

    /// A valid bearer token (cached, or exchanged now).
    pub async fn token(&self) -> Result<SecretString, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            if Instant::now() < c.renew_at {
                return Ok(c.token.clone());
            }
        }
        let (token, ttl) = self.exchange().await?;
        let renew_at = Instant::now() + ttl.saturating_sub(RENEW_BEFORE);
        *cached = Some(Cached { token: token.clone(), renew_at });
        Ok(token)
    }

    /// Drops the cached token (after the API answered Unauthenticated).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn exchange(&self) -> Result<(SecretString, Duration), TokenError> {
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
            let body = response.text().await.unwrap_or_default();
            return Err(TokenError::Rejected { url, status: status.as_u16(), detail: oauth_error(&body) });
        }
        if !status.is_success() {
            return Err(TokenError::Server { url, status: status.as_u16() });
        }
        let body = response.bytes().await.map_err(|e| classify(&url, &e))?;
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| TokenError::Malformed { url: url.clone(), detail: format!("not the expected JSON ({e})") })?;
        let token = match parsed.access_token.as_deref() {
            Some(t) if !t.is_empty() => SecretString::from(t.to_owned()),
            _ => return Err(TokenError::Malformed { url, detail: "the answer has no access_token".into() }),
        };
        let ttl = parsed.expires_in.filter(|s| *s > 0).map(Duration::from_secs).unwrap_or(DEFAULT_TTL);
        tracing::debug!(expires_in_seconds = ttl.as_secs(), "obtained a ConductorOne access token");
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
        TokenError::Tls { url: url.to_owned(), detail }
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
