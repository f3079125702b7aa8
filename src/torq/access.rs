//! The cheapest proof that the API key can sync: a token, then `GET /users?sso_provision=false` judged by its
//! status alone (the body is never read: dropping the answer closes the connection, so a large workspace costs
//! Torq one request's headers), then one role (`GET /users/roles?page_size=1`, or the RBAC list `GET /roles`
//! for a key that may only read that one, as the sync itself falls back). Service mode runs it at start and
//! when its health answer is stale.

use super::{TorqClient, TorqError};

impl TorqClient {
    /// `Ok` when the key gets a token and may read users and roles; otherwise the first failure, classified as
    /// every other request's (401/403 from the token endpoint: [`TorqError::BadCredentials`]; 403:
    /// [`TorqError::PermissionDenied`]; no answer after the retries: [`TorqError::Unavailable`]).
    pub(crate) async fn check_access(&self) -> Result<(), TorqError> {
        self.answers_200("users", "GET /users?sso_provision=false", &[("sso_provision", "false")]).await?;
        match self.answers_200("users/roles", "GET /users/roles?page_size=1", &[("page_size", "1")]).await {
            Err(e) if e.is_forbidden_or_missing() => self.answers_200("roles", "GET /roles", &[]).await,
            other => other,
        }
    }

    /// The host of the API URL, for logs (`api.torq.io`).
    pub(crate) fn api_host(&self) -> String {
        self.inner.settings.api_url.host_str().unwrap_or("").to_owned()
    }

    /// A GET whose 2xx status is all that is wanted (with the usual retries and token renewal).
    async fn answers_200(&self, path: &str, name: &str, query: &[(&str, &str)]) -> Result<(), TorqError> {
        let url = self.endpoint(path)?;
        self.attempt_loop(
            name,
            true,
            |http| http.get(url.clone()).query(query),
            |resp| async move {
                drop(resp);
                Ok(())
            },
        )
        .await
    }
}
