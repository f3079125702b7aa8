//! How a task ends: [`TaskSuccess`] (an optional response `Any` and annotations) or [`TaskFailure`] (a gRPC code,
//! a one-line message, and whether ConductorOne may try again), sent with [`finish`] as exactly one FinishTask.
//! Also the gRPC code for each Torq failure, the way the Baton SDK maps upstream HTTP errors.
//!
//! Must not: put a secret into a message (every message comes from an error type that never holds one).

use std::time::Duration;

use prost_types::Any;

use super::client::C1Client;
use crate::proto::baton_v1::baton_service_finish_task_request::{Error as FinishError, FinalState, Success};
use crate::proto::baton_v1::BatonServiceFinishTaskRequest;
use crate::proto::google::rpc::Status as RpcStatus;
use crate::torq::TorqError;

const FINISH_ATTEMPTS: u32 = 3;

/// A finished task's answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct TaskSuccess {
    /// The connector response (e.g. a `CreateAccountResponse`), packed as the SDK's `anypb.New` packs it.
    pub(crate) response: Option<Any>,
    pub(crate) annotations: Vec<Any>,
}

/// Why a task failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TaskFailure {
    pub(crate) code: tonic::Code,
    pub(crate) message: String,
    /// ConductorOne may run the task again (only for failures that can pass, e.g. Torq unavailable).
    pub(crate) retryable: bool,
}

impl TaskFailure {
    /// A failure that running the task again cannot fix.
    pub(crate) fn permanent(code: tonic::Code, message: impl Into<String>) -> TaskFailure {
        TaskFailure { code, message: message.into(), retryable: false }
    }

    /// A failure that may pass (Torq or ConductorOne briefly unavailable).
    pub(crate) fn retryable(code: tonic::Code, message: impl Into<String>) -> TaskFailure {
        TaskFailure { code, message: message.into(), retryable: true }
    }
}

/// The gRPC code for a Torq failure, as the Baton SDK maps HTTP statuses (400 InvalidArgument, 401
/// Unauthenticated, 403 PermissionDenied, 404 NotFound, 409 AlreadyExists, 429/5xx Unavailable).
pub(crate) fn torq_code(e: &TorqError) -> tonic::Code {
    use tonic::Code;
    let by_status = |status: u16| match status {
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        408 => Code::DeadlineExceeded,
        409 => Code::AlreadyExists,
        429 | 500..=599 => Code::Unavailable,
        _ => Code::Unknown,
    };
    match e {
        TorqError::BadCredentials { .. } | TorqError::TokenRejected { .. } => Code::Unauthenticated,
        TorqError::PermissionDenied { .. } | TorqError::InviteDenied { .. } => Code::PermissionDenied,
        TorqError::Unavailable { .. } | TorqError::WaitTooLong { .. } => Code::Unavailable,
        TorqError::Tls { .. } => Code::FailedPrecondition,
        TorqError::Api { status, .. } | TorqError::Refused { status, .. } | TorqError::WriteFailed { status, .. } => {
            by_status(*status)
        }
        _ => Code::Internal,
    }
}

/// FinishTask with a fresh deadline, up to 3 attempts.
pub(crate) async fn finish(c1: &C1Client, id: &str, result: Result<TaskSuccess, TaskFailure>) {
    let (status, final_state, outcome) = match result {
        Ok(ok) => (
            None,
            FinalState::Success(Success { annotations: ok.annotations, response: ok.response }),
            "success".to_owned(),
        ),
        Err(failure) => {
            let outcome = format!("error {:?}", failure.code);
            (
                Some(RpcStatus { code: failure.code as i32, message: failure.message, details: Vec::new() }),
                FinalState::Error(FinishError { non_retryable: !failure.retryable, ..Default::default() }),
                outcome,
            )
        }
    };
    let request = BatonServiceFinishTaskRequest {
        host_id: String::new(),
        task_id: id.to_owned(),
        status,
        final_state: Some(final_state),
    };
    for attempt in 1..=FINISH_ATTEMPTS {
        match c1.finish_task(request.clone()).await {
            Ok(()) => {
                tracing::info!(task_id = %id, outcome = %outcome, "task finished");
                return;
            }
            Err(e) => {
                tracing::warn!(task_id = %id, error = %e, attempt, "FinishTask failed");
                if attempt < FINISH_ATTEMPTS {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torq_failures_map_like_the_sdk() {
        let api = |status| TorqError::Api { request: "r".into(), status, detail: String::new() };
        assert_eq!(torq_code(&api(400)), tonic::Code::InvalidArgument);
        assert_eq!(torq_code(&api(503)), tonic::Code::Unavailable);
        assert_eq!(torq_code(&api(409)), tonic::Code::AlreadyExists);
        let denied = TorqError::InviteDenied { request: "r".into(), detail: String::new() };
        assert_eq!(torq_code(&denied), tonic::Code::PermissionDenied);
        let failed = TorqError::WriteFailed { request: "r".into(), status: 500, detail: String::new() };
        assert_eq!(torq_code(&failed), tonic::Code::Unavailable);
    }
}
