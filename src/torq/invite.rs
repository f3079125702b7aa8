//! `POST /users/invite` (torq-api.md §3.3), the one write Torq documents for identities, and the rule that makes
//! it safe: **a write is never sent twice unless it surely did not reach Torq**.
//!
//! - Sent again (with backoff, within the client's attempt budget): the connection was never established
//!   (DNS, TCP connect, TLS handshake), or Torq said the request was not handled (429, with or without
//!   `Retry-After`; 503).
//! - Lost answer (timeout, connection reset before any status): the user lists are read again and searched for
//!   the email. Found: the invite took effect. Not found: it did not, so it may be sent again.
//! - 2xx whose body cannot be used (broken off, not JSON, no user id), and other 5xx (500, 502, 504): Torq received
//!   the request; the lists are read to find the user, and otherwise the error is reported without sending again.
//! - 200/201: invited. 409, or a 400 whose message says the user exists: already exists. Other 400, 401 (after
//!   one token renewal), 403 (only Owners may invite), 404: clear errors.
//!
//! Validation of the email and the role belongs to the caller (`crate::provision`); this module only talks HTTP.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::Response;

use super::http::{error_detail, read_body, retry_after, Retries, WriteAttempt};
use super::models::UserRecord;
use super::{TorqClient, TorqError};

/// Largest invite answer read (one user object).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What an invite came to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum InviteOutcome {
    /// Torq created the user (status `INVITATION_SENT`); the user as Torq answered it, or as the user list shows it
    /// when the answer was lost.
    Invited(UserRecord),
    /// Torq says a user with this email exists (409, or a 400 saying so).
    AlreadyExists,
}

#[derive(serde::Serialize)]
struct InviteBody<'a> {
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_id: Option<&'a str>,
}

/// What to do after one attempt.
enum Next {
    Done(Result<InviteOutcome, TorqError>),
    /// Send again after a backoff (the request surely had no effect).
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The attempt may have taken effect: look for the user before deciding.
    Check {
        reason: String,
        /// Set when Torq answered with a status (it received the request): if the user is not listed, this status
        /// and detail are reported and nothing is sent again. `None`: no answer at all, so it may be sent again.
        failed_status: Option<(u16, String)>,
    },
}

impl TorqClient {
    /// Invites `email` with `role_id` (Torq's default role, Viewer, when `None`). The caller has already checked
    /// that no user has this email; see the module documentation for when the POST is sent again.
    pub(crate) async fn invite_user(&self, email: &str, role_id: Option<&str>) -> Result<InviteOutcome, TorqError> {
        const REQUEST: &str = "POST /users/invite";
        let url = self.endpoint("users/invite")?;
        let body = serde_json::to_vec(&InviteBody { email, role_id })
            .map_err(|e| TorqError::Client(format!("cannot encode the invite: {e}")))?;
        let timeout = self.inner.settings.timeout;
        let mut retries = Retries::new(self);
        loop {
            retries.start_attempt();
            let sent = self
                .send_write(REQUEST, |client| {
                    client.post(url.clone()).header(CONTENT_TYPE, "application/json").body(body.clone())
                })
                .await?;
            let next = match sent {
                WriteAttempt::NotSent(reason) => Next::Retry { reason, retry_after: None },
                WriteAttempt::MaybeSent(reason) => Next::Check { reason, failed_status: None },
                WriteAttempt::Answered(resp) => judge(resp, REQUEST, timeout).await,
            };
            let (reason, retry_after) = match next {
                Next::Done(result) => return result,
                Next::Retry { reason, retry_after } => (reason, retry_after),
                Next::Check { reason, failed_status } => {
                    tracing::warn!(
                        request = REQUEST,
                        reason = %reason,
                        "the invite's answer was lost; checking the user list before deciding"
                    );
                    if let Some(user) = self.find_user_by_email(email).await? {
                        tracing::info!(request = REQUEST, "the invite took effect; not sending it again");
                        return Ok(InviteOutcome::Invited(user));
                    }
                    if let Some((status, detail)) = failed_status {
                        return Err(TorqError::WriteFailed { request: REQUEST.to_string(), status, detail });
                    }
                    (format!("{reason} (the user list shows no such user, so it did not take effect)"), None)
                }
            };
            retries.wait(REQUEST, reason, retry_after, "invite not delivered; sending it again").await?;
        }
    }
}

/// Classifies Torq's answer to an invite; bodies are read within `timeout`.
async fn judge(resp: Response, request: &str, timeout: Duration) -> Next {
    let status = resp.status().as_u16();
    let fail = |e: TorqError| Next::Done(Err(e));
    match status {
        // Accepted, but the answer cannot be used: the user list tells us who was created. Torq said yes, so the
        // invite is never sent again, even when the list does not show the user yet.
        200 | 201 => {
            let unusable = match read_user(resp, timeout).await {
                Ok(user) if !user.id.is_empty() => return Next::Done(Ok(InviteOutcome::Invited(user))),
                Ok(_) => "the answer has no user id".to_string(),
                Err(reason) => reason,
            };
            Next::Check {
                reason: format!("HTTP {status}, but {unusable}"),
                failed_status: Some((status, format!(", but {unusable}"))),
            }
        }
        409 => Next::Done(Ok(InviteOutcome::AlreadyExists)),
        429 | 503 => {
            let wait = retry_after(&resp);
            let detail = error_detail(resp, timeout).await;
            Next::Retry { reason: format!("HTTP {status}{detail}"), retry_after: wait }
        }
        400 => {
            let detail = error_detail(resp, timeout).await;
            if says_exists(&detail) {
                Next::Done(Ok(InviteOutcome::AlreadyExists))
            } else {
                fail(TorqError::Refused { request: request.to_string(), status, detail })
            }
        }
        403 => {
            fail(TorqError::InviteDenied { request: request.to_string(), detail: error_detail(resp, timeout).await })
        }
        408 | 500..=599 => {
            let detail = error_detail(resp, timeout).await;
            Next::Check { reason: format!("HTTP {status}{detail}"), failed_status: Some((status, detail)) }
        }
        _ => fail(TorqError::Api { request: request.to_string(), status, detail: error_detail(resp, timeout).await }),
    }
}

/// grpc-gateway's ALREADY_EXISTS (code 6) or a message saying so.
fn says_exists(detail: &str) -> bool {
    let lower = detail.to_lowercase();
    lower.contains("already exist") || lower.contains("already a member") || lower.ends_with("(code 6)")
}

/// The invited user from a 2xx body: the User object itself, or wrapped as `{"user": {...}}`.
async fn read_user(resp: Response, timeout: Duration) -> Result<UserRecord, String> {
    let mut bytes = Vec::new();
    read_body(resp, &mut bytes, MAX_ANSWER_BYTES, timeout).await.map_err(|e| e.to_string())?;
    let mut value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("the answer is not JSON ({e})"))?;
    if let Some(inner) = value.get_mut("user").filter(|u| u.is_object()) {
        value = inner.take();
    }
    serde_json::from_value(value).map_err(|e| format!("the answer is not a user ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn already_exists_is_recognised_from_the_message_or_the_code() {
        assert!(says_exists(": user with email a@b.c already exists (code 3)"));
        assert!(says_exists(": User Already Exists"));
        assert!(says_exists(": conflict (code 6)"));
        assert!(!says_exists(": role not found (code 3)"));
        assert!(!says_exists(""));
    }

    #[test]
    fn the_body_omits_an_absent_role() {
        let body = serde_json::to_string(&InviteBody { email: "a@b.c", role_id: None }).unwrap();
        assert_eq!(body, r#"{"email":"a@b.c"}"#);
        let body = serde_json::to_string(&InviteBody { email: "a@b.c", role_id: Some("r1") }).unwrap();
        assert_eq!(body, r#"{"email":"a@b.c","role_id":"r1"}"#);
    }
}
