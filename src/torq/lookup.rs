//! Finding one user in the workspace. Torq documents no "get user" or search endpoint (torq-api.md §3.2), so
//! both user lists (local and SSO-provisioned) are streamed concurrently and only the match is kept: memory stays
//! flat however large the workspace is. Used around writes: before an invite (does the email exist?), after an
//! invite whose answer was lost (did it take effect?), and to check a role a grant asks for.

use std::sync::{Arc, Mutex, PoisonError};

use super::models::UserRecord;
use super::users::SinkClosed;
use super::{TorqClient, TorqError};

impl TorqClient {
    /// The first user (local or SSO-provisioned) for which `matches` holds, if any.
    pub(crate) async fn find_user<P>(&self, matches: P) -> Result<Option<UserRecord>, TorqError>
    where
        P: Fn(&UserRecord) -> bool + Send + Sync + 'static,
    {
        let matches = Arc::new(matches);
        let found: Arc<Mutex<Option<UserRecord>>> = Arc::default();
        let sink = |matches: Arc<P>, found: Arc<Mutex<Option<UserRecord>>>| {
            move |user: UserRecord| {
                if matches(&user) {
                    let mut slot = found.lock().unwrap_or_else(PoisonError::into_inner);
                    if slot.is_none() {
                        *slot = Some(user);
                    }
                }
                Ok::<(), SinkClosed>(())
            }
        };
        // A lookup is short and runs around a write; it is not cut off half-way by a stop request.
        let never = tokio_util::sync::CancellationToken::new();
        let (local, sso) = tokio::join!(
            self.stream_users(false, &never, sink(matches.clone(), found.clone())),
            self.stream_users(true, &never, sink(matches.clone(), found.clone())),
        );
        local?;
        sso?;
        let user = found.lock().unwrap_or_else(PoisonError::into_inner).take();
        Ok(user)
    }

    /// The user with this email, compared as Torq does: ASCII letters case-insensitively, everything else exactly.
    /// Unicode case folding would make look-alikes match (U+212A KELVIN SIGN lowercases to `k`).
    pub(crate) async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, TorqError> {
        let wanted = email.to_string();
        self.find_user(move |u| u.email.eq_ignore_ascii_case(&wanted)).await
    }

    /// The user with this id.
    pub(crate) async fn find_user_by_id(&self, id: &str) -> Result<Option<UserRecord>, TorqError> {
        let wanted = id.to_string();
        self.find_user(move |u| u.id == wanted).await
    }
}
