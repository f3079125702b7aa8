//! `sync_full` tasks: the first heartbeat, then a full sync into a fresh temporary directory with heartbeats
//! alongside (ConductorOne may cancel; 10 failed beats in a row stop the sync), the upload with jittered retries,
//! and FinishTask. Also removes task directories that a killed run left behind.
//!
//! Must not: keep a sync file after its task (the temp directory is removed on every path).

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::super::client::{C1Client, CallError};
use super::super::health::TorqCheck;
use super::super::outcome::{finish, torq_code, TaskFailure, TaskSuccess};
use super::super::poll::backoff;
use super::TaskContext;
use crate::c1z::lock::OutputLock;
use crate::c1z::WriterOptions;
use crate::sync::{run_sync, SyncError, SyncRequest};

const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);
const MIN_HEARTBEAT: Duration = Duration::from_secs(1);
const MAX_HEARTBEAT: Duration = Duration::from_secs(300);
const MAX_HEARTBEAT_FAILURES: u32 = 10;
/// Upload retries: 1 s doubling to 30 s (each plus up to 100 % jitter) for at most 4 minutes of waiting, so a short
/// ConductorOne outage does not throw away a finished sync.
pub(in crate::service) const UPLOAD_BACKOFF_START: Duration = Duration::from_secs(1);
pub(in crate::service) const UPLOAD_BACKOFF_MAX: Duration = Duration::from_secs(30);
const UPLOAD_RETRY_BUDGET: Duration = Duration::from_secs(240);
/// Prefix of the per-task temporary directories (one sync file each) under `--c1z-temp-dir`.
const TASK_DIR_PREFIX: &str = "baton-torq-sync-upload";
/// A task directory younger than this without a lock file may be one a live run is just setting up.
const TASK_DIR_GRACE: Duration = Duration::from_secs(60);

pub(in crate::service) fn upload_backoff() -> backon::ExponentialBackoff {
    backoff(UPLOAD_BACKOFF_START, UPLOAD_BACKOFF_MAX, Some(UPLOAD_RETRY_BUDGET))
}

/// Why a running sync was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopReason {
    CancelledByC1,
    HeartbeatsFailed,
    Shutdown,
}

/// `next_heartbeat`: unset or zero means 30 s, otherwise clamped to 1 s..5 min.
pub(in crate::service) fn heartbeat_interval(d: Option<Duration>) -> Duration {
    match d {
        None => DEFAULT_HEARTBEAT,
        Some(d) if d.is_zero() => DEFAULT_HEARTBEAT,
        Some(d) => d.clamp(MIN_HEARTBEAT, MAX_HEARTBEAT),
    }
}

/// The heartbeat interval after an answer: the one ConductorOne asks for, or the current one if it asks for none.
fn next_interval(current: Duration, next: Option<prost_types::Duration>) -> Duration {
    next.and_then(super::super::poll::to_duration).map_or(current, |d| heartbeat_interval(Some(d)))
}

/// First heartbeat, then the sync into a fresh temp directory with heartbeats alongside, the upload, FinishTask.
pub(crate) async fn run(
    shared: &TaskContext,
    id: &str,
    interval: Duration,
    cancel: CancellationToken,
    resource_types: Vec<String>,
) {
    let interval = match shared.c1.heartbeat(id).await {
        Ok(r) if r.cancelled => {
            let failure = TaskFailure::retryable(tonic::Code::Cancelled, "the task was cancelled by ConductorOne");
            finish(&shared.c1, id, Err(failure)).await;
            return;
        }
        Ok(r) => next_interval(interval, r.next_heartbeat),
        Err(e) => {
            // As the Go SDK: without a first heartbeat the task is left to ConductorOne to reschedule.
            tracing::warn!(task_id = %id, error = %e, "first heartbeat failed; not starting the sync");
            return;
        }
    };
    let work = cancel.child_token();
    let beats_done = CancellationToken::new();
    let beats =
        tokio::spawn(heartbeat_loop(shared.c1.clone(), id.to_owned(), interval, work.clone(), beats_done.clone()));

    let outcome = sync_and_upload(shared, id, work.clone(), resource_types).await;
    beats_done.cancel();
    let stopped_by = beats.await.ok().flatten().or_else(|| cancel.is_cancelled().then_some(StopReason::Shutdown));
    let result = match outcome {
        Ok(()) => Ok(TaskSuccess::default()),
        Err(_) if work.is_cancelled() && stopped_by.is_some() => {
            let message = match stopped_by {
                Some(StopReason::CancelledByC1) => "the task was cancelled by ConductorOne",
                Some(StopReason::HeartbeatsFailed) => "stopped after 10 failed heartbeats in a row",
                _ => "the connector is shutting down",
            };
            Err(TaskFailure::retryable(tonic::Code::Cancelled, message))
        }
        Err(e) => Err(e),
    };
    if let Err(f) = &result {
        tracing::warn!(task_id = %id, code = ?f.code, error = %f.message, "sync task failed");
    }
    shared.health.sync_finished(result.as_ref().err().map(|f| f.code));
    finish(&shared.c1, id, result).await;
}

/// Sync into a temp dir (removed when this returns), then upload. Every failure here is retryable.
async fn sync_and_upload(
    shared: &TaskContext,
    id: &str,
    work: CancellationToken,
    resource_types: Vec<String>,
) -> Result<(), TaskFailure> {
    let dir = tempfile::Builder::new().prefix(TASK_DIR_PREFIX).tempdir_in(&shared.temp_dir).map_err(|e| {
        TaskFailure::retryable(tonic::Code::Internal, format!("cannot create a temporary directory: {e}"))
    })?;
    let output = dir.path().join("sync.c1z");
    // Held until the directory is gone: tells a later service run's start-up cleanup that this one is alive.
    let _lock = OutputLock::acquire(&output, false).map_err(|e| {
        TaskFailure::retryable(tonic::Code::Internal, format!("cannot lock the temporary sync file: {e}"))
    })?;
    let request = SyncRequest {
        output,
        writer: WriterOptions { carry_over_previous: false, ..Default::default() },
        progress: None,
        resource_types,
    };
    let synced = run_sync(&shared.torq, request, work.clone()).await;
    // A sync reads what the start-up check read: it tells whether the key still works.
    match &synced {
        Ok(_) => shared.health.torq_checked(TorqCheck::Ok),
        Err(SyncError::Torq(e)) if TorqCheck::of(e).is_fatal() => shared.health.torq_checked(TorqCheck::of(e)),
        Err(_) => {}
    }
    let summary = synced.map_err(|e| {
        let message = format!("sync failed: {e}");
        if sync_error_passes(&e) {
            TaskFailure::retryable(sync_error_code(&e), message)
        } else {
            TaskFailure::permanent(sync_error_code(&e), message)
        }
    })?;
    tracing::info!(
        task_id = %id,
        resources = %summary.resource_counts(),
        grants = summary.grants,
        file_bytes = summary.file_bytes,
        "sync done; uploading"
    );
    let mut backoff = upload_backoff();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let upload = tokio::select! {
            r = shared.c1.upload_asset(id, &summary.output) => r,
            _ = work.cancelled() => return Err(TaskFailure::retryable(tonic::Code::Cancelled, "cancelled during the upload")),
        };
        let e = match upload {
            Ok(bytes) => {
                tracing::info!(task_id = %id, bytes, attempt, "sync file uploaded");
                return Ok(());
            }
            Err(e) => e,
        };
        let retryable = !matches!(&e, CallError::File(_)) && !matches!(&e, CallError::Token(t) if t.is_fatal());
        match backoff.next().filter(|_| retryable) {
            Some(wait) => {
                tracing::warn!(task_id = %id, error = %e, attempt, retry_in_ms = wait.as_millis() as u64, "upload failed");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = work.cancelled() => {
                        return Err(TaskFailure::retryable(tonic::Code::Cancelled, "cancelled while waiting to retry the upload"))
                    }
                }
            }
            None => {
                return Err(TaskFailure::retryable(e.code(), format!("upload failed after {attempt} attempts: {e}")))
            }
        }
    }
    // `dir` is dropped (and removed) on every return above.
}

/// Removes task directories that a killed service run left under `temp_dir` (each holds a whole sync file). A
/// directory whose lock a live run holds is kept, as is a very young one without a lock file (a live run may be
/// between creating it and locking it). Only this user's directories are considered. Best effort.
pub(crate) fn remove_stale_task_dirs(temp_dir: &Path) -> usize {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = std::fs::read_dir(temp_dir) else { return 0 };
    let me = rustix::process::geteuid().as_raw();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Ok(meta) = entry.metadata() else { continue };
        // `metadata` of a directory entry does not follow symlinks: a planted link is never entered.
        if !name.to_string_lossy().starts_with(TASK_DIR_PREFIX) || !meta.is_dir() || meta.uid() != me {
            continue;
        }
        let dir = entry.path();
        let file = dir.join("sync.c1z");
        let young = meta.modified().ok().and_then(|m| m.elapsed().ok()).is_none_or(|age| age < TASK_DIR_GRACE);
        if young && !crate::c1z::lock::lock_path(&file).exists() {
            continue;
        }
        let Ok(lock) = OutputLock::acquire(&file, false) else { continue };
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                removed += 1;
                tracing::info!(dir = %dir.display(), "removed a temporary sync directory left by an interrupted run");
            }
            Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a stale temporary directory"),
        }
        drop(lock);
    }
    removed
}

/// Heartbeats every `interval` until `done`; cancels `work` when ConductorOne cancels or 10 beats in a row fail.
async fn heartbeat_loop(
    c1: C1Client,
    id: String,
    mut interval: Duration,
    work: CancellationToken,
    done: CancellationToken,
) -> Option<StopReason> {
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = done.cancelled() => return None,
            _ = work.cancelled() => return None,
        }
        let beat = tokio::select! {
            r = c1.heartbeat(&id) => r,
            _ = done.cancelled() => return None,
        };
        match beat {
            Ok(r) if r.cancelled => {
                tracing::info!(task_id = %id, "ConductorOne cancelled the task");
                work.cancel();
                return Some(StopReason::CancelledByC1);
            }
            Ok(r) => {
                failures = 0;
                interval = next_interval(interval, r.next_heartbeat);
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(task_id = %id, error = %e, failures, "heartbeat failed");
                if failures >= MAX_HEARTBEAT_FAILURES {
                    work.cancel();
                    return Some(StopReason::HeartbeatsFailed);
                }
            }
        }
    }
}

/// gRPC code for a failed sync (how the Go SDK maps upstream HTTP failures).
/// Worth running the task again: Torq unavailable or rate limited, an interrupted run, a local failure. Rejected
/// credentials, a missing permission, a wrong API address (404) and unknown resource types fail the same way until
/// someone changes the configuration, so ConductorOne should not retry those.
fn sync_error_passes(e: &SyncError) -> bool {
    use tonic::Code;
    !matches!(
        sync_error_code(e),
        Code::InvalidArgument | Code::Unauthenticated | Code::PermissionDenied | Code::NotFound
    )
}

fn sync_error_code(e: &SyncError) -> tonic::Code {
    match e {
        SyncError::Interrupted => tonic::Code::Cancelled,
        SyncError::Torq(t) => torq_code(t),
        SyncError::UnknownResourceTypes { .. } => tonic::Code::InvalidArgument,
        _ => tonic::Code::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_clamps() {
        assert_eq!(heartbeat_interval(None), DEFAULT_HEARTBEAT);
        assert_eq!(heartbeat_interval(Some(Duration::ZERO)), DEFAULT_HEARTBEAT);
        assert_eq!(heartbeat_interval(Some(Duration::from_millis(10))), MIN_HEARTBEAT);
        assert_eq!(heartbeat_interval(Some(Duration::from_secs(3600))), MAX_HEARTBEAT);
    }

    /// Uploads are retried for a few minutes, not seconds, and then given up.
    #[test]
    fn upload_retries_span_minutes_and_end() {
        for _ in 0..20 {
            let delays: Vec<Duration> = upload_backoff().collect();
            let total: Duration = delays.iter().sum();
            assert!(delays.len() >= 6, "{delays:?}");
            assert!(total >= Duration::from_secs(100) && total <= UPLOAD_RETRY_BUDGET, "{total:?} {delays:?}");
        }
    }
}
