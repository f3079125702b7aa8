//! Service mode's provisioning tasks: `create_account` (invite), `grant`, `revoke` and `delete_resource`, answered
//! through `crate::provision` (the same flow as the one-shot CLI) and finished with the Baton SDK's responses:
//! `CreateAccountResponse` (success or already exists) and `GrantManagerServiceGrantResponse` (with
//! `GrantAlreadyExists` when the user already holds the role) packed into FinishTask's `Any`.
//!
//! Every provisioning task needs `--provisioning`; without it, or for what Torq's public API cannot do, the task
//! fails with FAILED_PRECONDITION and is not retried. Only transient Torq failures (unreachable, rate limited,
//! 5xx) are retryable, and ConductorOne's retry runs the whole flow again, whose first step is to look for the
//! user, so a retried task never invites twice.

use crate::connector::user::USER_TYPE_ID;
use crate::connector::{account_creation, pack};
use crate::proto::baton_v1::task::TaskType;
use crate::provision::{self, AccountOutcome, AccountRequest, ProvisionError};
use crate::service::outcome::{torq_code, TaskFailure, TaskSuccess};
use crate::torq::TorqClient;

/// Runs one provisioning task (`task` is a grant, revoke, create_account or delete_resource task).
pub(crate) async fn run(torq: &TorqClient, enabled: bool, task: TaskType) -> Result<TaskSuccess, TaskFailure> {
    if !enabled {
        return Err(failure(&ProvisionError::DisabledForTasks));
    }
    match task {
        TaskType::CreateAccount(t) => {
            // No type means the connector's account type, `user` (as the SDK's one-shot default).
            let resource_type = if t.resource_type_id.is_empty() { USER_TYPE_ID } else { t.resource_type_id.as_str() };
            let info = t.account_info.ok_or_else(|| {
                failure(&ProvisionError::Malformed { task: "create_account", reason: "no account_info".into() })
            })?;
            let request = AccountRequest::from_account_info(&info).map_err(|e| failure(&e))?;
            let outcome = provision::create_account(torq, resource_type, &request).await.map_err(|e| failure(&e))?;
            tracing::info!(
                user_id = %outcome.account().user.id,
                role = %outcome.account().role_name,
                created = matches!(outcome, AccountOutcome::Created(_)),
                "create_account done"
            );
            let response = match &outcome {
                AccountOutcome::Created(a) => account_creation::created(&a.user),
                AccountOutcome::AlreadyExists(a) => account_creation::already_exists(&a.user),
            };
            Ok(TaskSuccess {
                annotations: response.annotations.clone(),
                response: Some(pack("CreateAccountResponse", &response)),
            })
        }
        TaskType::Grant(t) => {
            let (Some(entitlement), Some(principal)) = (t.entitlement, t.principal) else {
                return Err(failure(&ProvisionError::Malformed {
                    task: "grant",
                    reason: "the entitlement or the principal is missing".into(),
                }));
            };
            let grant = provision::check_grant(torq, &entitlement, &principal).await.map_err(|e| failure(&e))?;
            tracing::info!(grant_id = %grant.id, "grant already in place; nothing to change");
            let response = account_creation::grant_already_exists(grant);
            Ok(TaskSuccess {
                annotations: response.annotations.clone(),
                response: Some(pack("GrantManagerServiceGrantResponse", &response)),
            })
        }
        TaskType::Revoke(_) => Err(failure(&provision::revoke_refusal())),
        TaskType::DeleteResource(t) => {
            let kind = t.resource_id.map(|r| r.resource_type).filter(|k| !k.is_empty());
            Err(failure(&provision::delete_refusal(kind.as_deref().unwrap_or("resource"))))
        }
        other => Err(TaskFailure::permanent(
            tonic::Code::Internal,
            format!("not a provisioning task: {}", super::task_kind(&Some(other))),
        )),
    }
}

/// The task failure for a provisioning error: its message, a code saying why, retryable only when transient.
fn failure(e: &ProvisionError) -> TaskFailure {
    use tonic::Code;
    let code = match e {
        ProvisionError::DisabledForTasks | ProvisionError::NotSupported(_) => Code::FailedPrecondition,
        ProvisionError::NoSuchUser(_) | ProvisionError::NoSuchApiKey(_) => Code::NotFound,
        ProvisionError::ExistsButNotListed(_) => Code::AlreadyExists,
        ProvisionError::Torq(t) => torq_code(t),
        _ => Code::InvalidArgument,
    };
    TaskFailure { code, message: e.to_string(), retryable: e.is_transient() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torq::TorqError;

    #[test]
    fn only_transient_torq_failures_are_retryable() {
        let refused = failure(&provision::revoke_refusal());
        assert_eq!((refused.code, refused.retryable), (tonic::Code::FailedPrecondition, false));
        let bad = failure(&ProvisionError::BadEmail { email: "x".into(), reason: "it has no '@'" });
        assert_eq!((bad.code, bad.retryable), (tonic::Code::InvalidArgument, false));
        let down = failure(&ProvisionError::Torq(TorqError::Unavailable {
            request: "POST /users/invite".into(),
            attempts: 6,
            last: "HTTP 503".into(),
        }));
        assert_eq!((down.code, down.retryable), (tonic::Code::Unavailable, true));
        let denied =
            failure(&ProvisionError::Torq(TorqError::InviteDenied { request: "r".into(), detail: String::new() }));
        assert_eq!((denied.code, denied.retryable), (tonic::Code::PermissionDenied, false));
    }
}
