//! The bearer-token cache: one token at a time, fetched with HTTP Basic client credentials, renewed a little
//! before `expires_in` runs out and whenever the API rejects it. Tokens live only in `SecretString`s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use super::http::Outcome;
use super::models::TokenResponse;
use super::{TorqClient, TorqError};

/// A token with the generation number it was issued under, so a rejection invalidates only that token.
#[derive(Clone)]
pub(crate) struct Bearer {
    pub secret: Arc<SecretString>,
    pub generation: u64,
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
        let renew_at = Instant::now() + ttl.saturating_sub(renewal_margin(ttl));
        state.current = Some((bearer.clone(), renew_at));
        Ok(bearer)
    }

    /// Drops the token of `generation` (if it is still the current one) after the API rejected it.
    pub(crate) async fn invalidate(&self, generation: u64) {
        let mut state = self.inner.tokens.state.lock().await;
        if matches!(&state.current, Some((b, _)) if b.generation == generation) {
            state.current = None;
        }
    }

    async fn fetch_token(&self) -> Result<(SecretString, Duration), TorqError> {
        let settings = &self.inner.settings;
        let request = "POST token endpoint".to_string();
        self.attempt_loop(&request, false, |client| {
            client
                .post(settings.auth_url.clone())
                .basic_auth(&settings.client_id, Some(settings.client_secret.expose_secret()))
                .header(reqwest::header::ACCEPT, "application/json")
                .form(&[("grant_type", "client_credentials")])
        }, |resp| async move {
            let request = "POST token endpoint";
            let body = resp.bytes().await.map_err(|e| Outcome::transient(format!("reading token response: {e}")))?;
            let token: TokenResponse = serde_json::from_slice(&body).map_err(|e| Outcome::from_json(&e, request))?;
            if token.access_token.is_empty() {
                return Err(Outcome::Fatal(TorqError::Malformed {
                    request: request.into(),
                    detail: "the answer has no access_token".into(),
                }));
            }
            if !token.token_type.is_empty() && !token.token_type.eq_ignore_ascii_case("bearer") {
                tracing::warn!(token_type = %token.token_type, "unexpected token type from Torq; using it as a bearer token");
            }
            let ttl = Duration::from_secs(if token.expires_in == 0 { 3600 } else { token.expires_in });
            Ok((SecretString::from(token.access_token), ttl))
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
}
