//! The task handlers, one module per kind of task: [`sync_full`] (heartbeats, sync, upload) and [`provisioning`]
//! (create_account, grant, revoke, delete_resource); hello tasks are answered with a Hello, anything else with
//! "unsupported task type". Every task that can be answered ends with exactly one FinishTask
//! ([`super::outcome::finish`]; hello tasks with a Hello).

pub(crate) mod provisioning;
pub(crate) mod sync_full;

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::client::C1Client;
use super::outcome::{finish, TaskFailure};
use crate::proto::baton_v1::task::TaskType;
use crate::proto::baton_v1::Task;
use crate::torq::TorqClient;

/// What every handler may use, shared by the running tasks.
pub(crate) struct TaskContext {
    pub(crate) c1: C1Client,
    pub(crate) torq: TorqClient,
    /// `--c1z-temp-dir`: where sync tasks write their temporary file.
    pub(crate) temp_dir: PathBuf,
    /// `--provisioning`: provisioning tasks may run.
    pub(crate) provisioning: bool,
    /// What the health endpoints answer from: sync tasks record their outcome and what they learnt of the key.
    pub(crate) health: std::sync::Arc<super::health::Health>,
}

/// Runs one task to its end: exactly one FinishTask (a Hello for a hello task); a task without an id cannot be
/// answered and is skipped.
pub(crate) async fn handle_task(shared: &TaskContext, task: Task, heartbeat: Duration, cancel: CancellationToken) {
    let id = task.id.clone();
    if id.is_empty() {
        tracing::warn!("ignoring a task without an id (it cannot be answered)");
        return;
    }
    let kind = task_kind(&task.task_type);
    tracing::info!(task_id = %id, task_type = kind, "task received");
    match task.task_type {
        Some(TaskType::Hello(_)) => {
            if let Err(e) = shared.c1.hello(super::hello::request(&id)).await {
                tracing::warn!(task_id = %id, error = %e, "Hello for a hello task failed");
            }
        }
        Some(TaskType::SyncFull(t)) => {
            if t.skip_entitlements_and_grants || t.skip_grants || !t.targeted_sync_resources.is_empty() {
                tracing::info!(task_id = %id, "partial-sync options of the task are not supported; running a full sync");
            }
            // `sync_resource_type_ids` is honoured: the sync runs only those resource syncers (empty = all).
            sync_full::run(shared, &id, heartbeat, cancel, t.sync_resource_type_ids).await;
        }
        Some(
            t @ (TaskType::Grant(_) | TaskType::Revoke(_) | TaskType::CreateAccount(_) | TaskType::DeleteResource(_)),
        ) => {
            let result = provisioning::run(&shared.torq, shared.provisioning, t).await;
            if let Err(f) = &result {
                tracing::warn!(task_id = %id, task_type = kind, code = ?f.code, error = %f.message, "provisioning task failed");
            }
            finish(&shared.c1, &id, result).await;
        }
        _ => {
            let failure = TaskFailure::permanent(tonic::Code::Unimplemented, format!("unsupported task type ({kind})"));
            finish(&shared.c1, &id, Err(failure)).await;
        }
    }
}

/// The task type's name, for logs and messages.
pub(crate) fn task_kind(t: &Option<TaskType>) -> &'static str {
    match t {
        None => "unknown",
        Some(TaskType::None(_)) => "none",
        Some(TaskType::Hello(_)) => "hello",
        Some(TaskType::SyncFull(_)) => "sync_full",
        Some(TaskType::Grant(_)) => "grant",
        Some(TaskType::Revoke(_)) => "revoke",
        Some(TaskType::CreateAccount(_)) => "create_account",
        Some(TaskType::CreateResource(_)) => "create_resource",
        Some(TaskType::DeleteResource(_)) => "delete_resource",
        Some(TaskType::RotateCredentials(_)) => "rotate_credentials",
        Some(TaskType::EventFeed(_)) => "event_feed",
    }
}
