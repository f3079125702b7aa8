//! The bearer-token cache: one token at a time, fetched with HTTP Basic client credentials, renewed a little
//! before `expires_in` runs out and whenever the API rejects it. Tokens live only in `SecretString`s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use super::http::{read_body, Outcome};
use super::models::TokenResponse;
use super::{TorqClient, TorqError};

/// A token with the generation number it was issued under, so a rejection invalidates only that token.
#[derive(Clone)]
pub(crate) struct Bearer {
    pub(crate) secret: Arc<SecretString>,
    pub(crate) generation: u64,
}

#[derive(Default)]
pub(crate) struct TokenCache {
    state: Mutex<TokenState>,
}

#[derive(Default)]
struct TokenState {
    current: Option<(Bearer, Instant)>,
    generation: u64,
}

/// How long before expiry a token is renewed: a tenth of its life, between 1 s and 60 s.
fn renewal_margin(ttl: Duration) -> Duration {
    (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Lifetime assumed when the token answer has no `expires_in` (Torq documents 3600).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// Bounds on a token's lifetime, whatever the server says.
pub(crate) const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(1);
pub(crate) const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// A token answer is a few hundred bytes; more is not a token answer.
const TOKEN_BODY_LIMIT: usize = 64 * 1024;

/// How long a token may be used, from the `expires_in` seconds of a token answer (`None` when absent):
/// absent gives `default`; zero, negative or not a number gives `None`, "use it for one request only"; anything
/// else is clamped to [`MIN_TOKEN_LIFETIME`] ..= [`MAX_TOKEN_LIFETIME`], so a huge value cannot overflow the clock.
/// Shared with the ConductorOne token source (`crate::service::token`).
pub(crate) fn token_lifetime(expires_in: Option<f64>, default: Duration) -> Option<Duration> {
    match expires_in {
        None => Some(default),
        Some(s) if s.is_nan() || s <= 0.0 => None,
        Some(s) => Some(Duration::from_secs_f64(s.min(MAX_TOKEN_LIFETIME.as_secs_f64())).max(MIN_TOKEN_LIFETIME)),
    }
}

/// When a token of lifetime `ttl` obtained now is to be renewed; `None` if the clock cannot represent it.
pub(crate) fn renew_time(now: Instant, ttl: Duration, margin: Duration) -> Option<Instant> {
    now.checked_add(ttl.saturating_sub(margin))
}

impl TorqClient {
    /// The current token, fetching a new one when there is none or it is about to expire.
    pub(crate) async fn bearer(&self) -> Result<Bearer, TorqError> {
        let mut state = self.inner.tokens.state.lock().await;
        if let Some((bearer, renew_at)) = &state.current {
            if Instant::now() < *renew_at {
                return Ok(bearer.clone());
            }
            tracing::debug!("access token is about to expire; renewing it");
        }
        // Boxed: fetching goes through the same request loop, which may call `bearer` for API requests.
        let (secret, ttl) = Box::pin(self.fetch_token()).await?;
        state.generation += 1;
        let bearer = Bearer { secret: Arc::new(secret), generation: state.generation };
        // A token without a usable lifetime serves this one request; the next one fetches a new token.
        let renew_at = ttl.and_then(|ttl| renew_time(Instant::now(), ttl, renewal_margin(ttl)));
        state.current = renew_at.map(|at| (bearer.clone(), at));
        Ok(bearer)
    }

    /// Drops the token of `generation` (if it is still the current one) after the API rejected it.
    pub(crate) async fn invalidate(&self, generation: u64) {
        let mut state = self.inner.tokens.state.lock().await;
        if matches!(&state.current, Some((b, _)) if b.generation == generation) {
            state.current = None;
        }
    }

    /// A new token and how long it may be used (`None`: for one request only).
    async fn fetch_token(&self) -> Result<(SecretString, Option<Duration>), TorqError> {
        let settings = &self.inner.settings;
        let request = "POST token endpoint".to_string();
        let timeout = settings.timeout;
        self.attempt_loop(&request, false, |client| {
            client
                .post(settings.auth_url.clone())
                .basic_auth(&settings.client_id, Some(settings.client_secret.expose_secret()))
                .header(reqwest::header::ACCEPT, "application/json")
                .form(&[("grant_type", "client_credentials")])
        }, |resp| async move {
            let request = "POST token endpoint";
            // The raw answer holds the token: reserved whole up front (no reallocation copies) and wiped on drop.
            let mut body = Zeroizing::new(Vec::with_capacity(TOKEN_BODY_LIMIT));
            read_body(resp, &mut body, TOKEN_BODY_LIMIT, timeout)
                .await
                .map_err(|e| Outcome::from_body(e, request))?;
            let mut token: TokenResponse =
                serde_json::from_slice(&body).map_err(|e| Outcome::from_json(&e, request))?;
            if token.access_token.is_empty() {
                return Err(Outcome::Fatal(TorqError::Malformed {
                    request: request.into(),
                    detail: "the answer has no access_token".into(),
                }));
            }
            // A token that cannot be a header value (CR/LF, other controls) would fail every request as if the
            // network did; it is Torq's answer that is wrong, so say that at once.
            if token.access_token.bytes().any(|b| b.is_ascii_control() || !b.is_ascii()) {
                return Err(Outcome::Fatal(TorqError::Malformed {
                    request: request.into(),
                    detail: "the access_token holds control or non-ASCII characters (e.g. CR/LF), which cannot be \
                             sent in an Authorization header"
                        .into(),
                }));
            }
            if !token.token_type.is_empty() && !token.token_type.eq_ignore_ascii_case("bearer") {
                tracing::warn!(token_type = %token.token_type, "unexpected token type from Torq; using it as a bearer token");
            }
            let ttl = token_lifetime(token.expires_in, DEFAULT_LIFETIME);
            if ttl.is_none() {
                tracing::warn!("Torq sent a token without a usable lifetime (expires_in); using it for one request only");
            }
            // Moved, not copied, into the secret; `token` wipes what is left when dropped.
            Ok((SecretString::from(std::mem::take(&mut token.access_token)), ttl))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_a_tenth_clamped() {
        assert_eq!(renewal_margin(Duration::from_secs(3600)), Duration::from_secs(60));
        assert_eq!(renewal_margin(Duration::from_secs(100)), Duration::from_secs(10));
        assert_eq!(renewal_margin(Duration::from_secs(2)), Duration::from_secs(1));
    }

    #[test]
    fn lifetimes_are_clamped_and_never_overflow_the_clock() {
        let default = Duration::from_secs(3600);
        assert_eq!(token_lifetime(None, default), Some(default));
        assert_eq!(token_lifetime(Some(0.0), default), None);
        assert_eq!(token_lifetime(Some(-5.0), default), None);
        assert_eq!(token_lifetime(Some(f64::NAN), default), None);
        assert_eq!(token_lifetime(Some(0.2), default), Some(MIN_TOKEN_LIFETIME));
        assert_eq!(token_lifetime(Some(2.0), default), Some(Duration::from_secs(2)));
        assert_eq!(token_lifetime(Some(18446744073709551615.0), default), Some(MAX_TOKEN_LIFETIME));
        assert_eq!(token_lifetime(Some(f64::INFINITY), default), Some(MAX_TOKEN_LIFETIME));
        let ttl = token_lifetime(Some(1e300), default).unwrap();
        assert!(renew_time(Instant::now(), ttl, renewal_margin(ttl)).is_some());
    }
}
