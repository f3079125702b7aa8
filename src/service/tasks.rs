//! The service loop: start-up Hello with backoff, GetTask polling with at most `--task-concurrency` tasks at once,
//! and one handler per task type (hello, sync_full with heartbeats and upload, provisioning refused, anything
//! else unsupported). Every task that can be answered ends with exactly one FinishTask (hello tasks with a Hello).
//!
//! Must not: keep a sync file after its task (the temp directory is removed on every path), or retry a task
//! itself (ConductorOne reschedules retryable failures).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::client::{C1Client, CallError};
use super::{ServiceConfig, ServiceError};
use crate::c1z::lock::OutputLock;
use crate::c1z::WriterOptions;
use crate::proto::baton_v1::baton_service_finish_task_request::{Error as FinishError, FinalState, Success};
use crate::proto::baton_v1::baton_service_hello_request::{BuildInfo, OsInfo};
use crate::proto::baton_v1::task::TaskType;
use crate::proto::baton_v1::{BatonServiceFinishTaskRequest, BatonServiceHelloRequest, Task};
use crate::proto::google::rpc::Status as RpcStatus;
use crate::sync::{run_sync, SyncError, SyncRequest};
use crate::torq::{TorqClient, TorqError};

const MAX_POLL: Duration = Duration::from_secs(300);
/// Wait before the next poll when the server sent no task and no `next_poll`.
const IDLE_POLL: Duration = Duration::from_secs(1);
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);
const MIN_HEARTBEAT: Duration = Duration::from_secs(1);
const MAX_HEARTBEAT: Duration = Duration::from_secs(300);
const MAX_HEARTBEAT_FAILURES: u32 = 10;
const HELLO_BACKOFF_START: Duration = Duration::from_secs(1);
const HELLO_BACKOFF_MAX: Duration = Duration::from_secs(300);
const POLL_BACKOFF_START: Duration = Duration::from_secs(1);
const POLL_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Upload retries: 1 s doubling to 30 s (each plus up to 100 % jitter) for at most 4 minutes of waiting, so a short
/// ConductorOne outage does not throw away a finished sync.
const UPLOAD_BACKOFF_START: Duration = Duration::from_secs(1);
const UPLOAD_BACKOFF_MAX: Duration = Duration::from_secs(30);
const UPLOAD_RETRY_BUDGET: Duration = Duration::from_secs(240);
const FINISH_ATTEMPTS: u32 = 3;
/// Prefix of the per-task temporary directories (one sync file each) under `--c1z-temp-dir`.
const TASK_DIR_PREFIX: &str = "baton-torq-sync-upload";
/// A task directory younger than this without a lock file may be one a live run is just setting up.
const TASK_DIR_GRACE: Duration = Duration::from_secs(60);

/// Exponential backoff with jitter (each delay plus up to 100 %), so that many connectors that lost
/// ConductorOne at the same moment do not all come back at the same moment. Endless unless `budget` is given.
fn backoff(start: Duration, max: Duration, budget: Option<Duration>) -> backon::ExponentialBackoff {
    use backon::BackoffBuilder as _;
    let builder =
        backon::ExponentialBuilder::default().with_min_delay(start).with_max_delay(max).with_factor(2.0).with_jitter();
    match budget {
        Some(total) => builder.without_max_times().with_total_delay(Some(total)).build(),
        None => builder.without_max_times().build(),
    }
}

fn hello_backoff() -> backon::ExponentialBackoff {
    backoff(HELLO_BACKOFF_START, HELLO_BACKOFF_MAX, None)
}

fn poll_backoff() -> backon::ExponentialBackoff {
    backoff(POLL_BACKOFF_START, POLL_BACKOFF_MAX, None)
}

fn upload_backoff() -> backon::ExponentialBackoff {
    backoff(UPLOAD_BACKOFF_START, UPLOAD_BACKOFF_MAX, Some(UPLOAD_RETRY_BUDGET))
}

/// Runs the loop for one connector instance.
pub struct Runner {
    shared: Arc<Shared>,
    concurrency: usize,
}

struct Shared {
    c1: C1Client,
    torq: TorqClient,
    temp_dir: PathBuf,
}

/// Why a running sync was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopReason {
    CancelledByC1,
    HeartbeatsFailed,
    Shutdown,
}

impl Runner {
    pub fn new(c1: C1Client, torq: TorqClient, config: &ServiceConfig) -> Runner {
        Runner {
            shared: Arc::new(Shared { c1, torq, temp_dir: config.temp_dir.clone() }),
            concurrency: config.task_concurrency,
        }
    }

    /// Hello, then poll until `shutdown`; waits for in-flight tasks (cancelled, each finished with FinishTask).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ServiceError> {
        let temp_dir = self.shared.temp_dir.clone();
        // Directory listing and removal are blocking; a failure here only leaves litter.
        let _ = tokio::task::spawn_blocking(move || remove_stale_task_dirs(&temp_dir)).await;
        if !self.startup_hello(&shutdown).await? {
            return Ok(());
        }
        tracing::info!("registered with ConductorOne; polling for tasks");
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let mut running: JoinSet<()> = JoinSet::new();
        // Set while GetTask keeps failing (or sending tasks that cannot be answered); cleared by a good answer.
        let mut poll_errors: Option<backon::ExponentialBackoff> = None;
        loop {
            while running.try_join_next().is_some() {}
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.cancelled() => break,
            };
            let answer = tokio::select! {
                r = self.shared.c1.get_task() => r,
                _ = shutdown.cancelled() => break,
            };
            let wait = match answer {
                Ok(resp) => {
                    let next_poll = resp.next_poll.and_then(to_duration).map(|d| d.min(MAX_POLL));
                    match resp.task.filter(|t| !matches!(t.task_type, Some(TaskType::None(_)))) {
                        Some(task) if task.id.is_empty() => {
                            // It gets no FinishTask, so nothing tells the server to stop sending it: back off as
                            // after an error instead of asking again at once.
                            drop(permit);
                            let delay = poll_errors.get_or_insert_with(poll_backoff).next().unwrap_or(POLL_BACKOFF_MAX);
                            let wait = next_poll.unwrap_or(Duration::ZERO).max(delay);
                            tracing::warn!(
                                task_type = task_kind(&task.task_type),
                                retry_in_ms = wait.as_millis() as u64,
                                "ignoring a task without an id (it cannot be answered)"
                            );
                            wait
                        }
                        Some(task) => {
                            poll_errors = None;
                            let heartbeat = heartbeat_interval(resp.next_heartbeat.and_then(to_duration));
                            let shared = self.shared.clone();
                            let cancel = shutdown.child_token();
                            running.spawn(async move {
                                handle_task(&shared, task, heartbeat, cancel).await;
                                drop(permit);
                            });
                            next_poll.unwrap_or(Duration::ZERO)
                        }
                        None => {
                            poll_errors = None;
                            drop(permit);
                            next_poll.filter(|d| !d.is_zero()).unwrap_or(IDLE_POLL)
                        }
                    }
                }
                Err(e) => {
                    drop(permit);
                    let wait = poll_errors.get_or_insert_with(poll_backoff).next().unwrap_or(POLL_BACKOFF_MAX);
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "GetTask failed");
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        if !running.is_empty() {
            tracing::info!(tasks = running.len(), "stopping: waiting for running tasks to report their outcome");
        }
        while running.join_next().await.is_some() {}
        tracing::info!("service mode stopped");
        Ok(())
    }

    /// Start-up Hello with exponential backoff. `Ok(false)` when shutdown came first.
    async fn startup_hello(&self, shutdown: &CancellationToken) -> Result<bool, ServiceError> {
        let mut backoff = hello_backoff();
        loop {
            let attempt = tokio::select! {
                r = self.shared.c1.hello(hello_request("")) => r,
                _ = shutdown.cancelled() => return Ok(false),
            };
            match attempt {
                Ok(()) => return Ok(true),
                Err(CallError::Token(e)) if e.is_fatal() => return Err(ServiceError::Token(e)),
                Err(CallError::Rpc { code, message }) if gives_up(code) => {
                    return Err(ServiceError::HelloRejected { code, message })
                }
                Err(e) => {
                    if is_tls_failure(&e) {
                        return Err(ServiceError::Setup(format!(
                            "TLS failure talking to ConductorOne: {e}; if ConductorOne is reached through a private \
                             CA, pass it with BATON_C1_CA_CERT_FILE"
                        )));
                    }
                    let wait = backoff.next().unwrap_or(HELLO_BACKOFF_MAX);
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "Hello failed");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.cancelled() => return Ok(false),
                    }
                }
            }
        }
    }
}

fn gives_up(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(code, Unauthenticated | PermissionDenied | InvalidArgument | Unimplemented | FailedPrecondition | NotFound)
}

fn is_tls_failure(e: &CallError) -> bool {
    matches!(e, CallError::Rpc { message, .. } if message.contains("certificate") || message.contains("InvalidCertificate"))
}

fn to_duration(d: prost_types::Duration) -> Option<Duration> {
    if d.seconds < 0 || d.nanos < 0 {
        return Some(Duration::ZERO);
    }
    Some(Duration::new(u64::try_from(d.seconds).ok()?, u32::try_from(d.nanos).ok()?.min(999_999_999)))
}

/// `next_heartbeat`: unset or zero means 30 s, otherwise clamped to 1 s..5 min.
fn heartbeat_interval(d: Option<Duration>) -> Duration {
    match d {
        None => DEFAULT_HEARTBEAT,
        Some(d) if d.is_zero() => DEFAULT_HEARTBEAT,
        Some(d) => d.clamp(MIN_HEARTBEAT, MAX_HEARTBEAT),
    }
}

/// The heartbeat interval after an answer: the one ConductorOne asks for, or the current one if it asks for none.
fn next_interval(current: Duration, next: Option<prost_types::Duration>) -> Duration {
    next.and_then(to_duration).map_or(current, |d| heartbeat_interval(Some(d)))
}

async fn handle_task(shared: &Shared, task: Task, heartbeat: Duration, cancel: CancellationToken) {
    let id = task.id.clone();
    if id.is_empty() {
        tracing::warn!("ignoring a task without an id (it cannot be answered)");
        return;
    }
    let kind = task_kind(&task.task_type);
    tracing::info!(task_id = %id, task_type = kind, "task received");
    match task.task_type {
        Some(TaskType::Hello(_)) => {
            if let Err(e) = shared.c1.hello(hello_request(&id)).await {
                tracing::warn!(task_id = %id, error = %e, "Hello for a hello task failed");
            }
        }
        Some(TaskType::SyncFull(t)) => {
            if t.skip_entitlements_and_grants || t.skip_grants || !t.targeted_sync_resources.is_empty() {
                tracing::info!(task_id = %id, "partial-sync options of the task are not supported; running a full sync");
            }
            // `sync_resource_type_ids` is honoured: the sync runs only those resource syncers (empty = all).
            sync_full(shared, &id, heartbeat, cancel, t.sync_resource_type_ids).await;
        }
        Some(TaskType::Grant(_) | TaskType::Revoke(_) | TaskType::CreateAccount(_) | TaskType::DeleteResource(_)) => {
            let message = format!("{kind} tasks are not supported: baton-torq does not provision yet");
            finish(shared, &id, Err((tonic::Code::FailedPrecondition, message, true))).await;
        }
        _ => {
            finish(shared, &id, Err((tonic::Code::Unimplemented, format!("unsupported task type ({kind})"), true)))
                .await;
        }
    }
}

fn task_kind(t: &Option<TaskType>) -> &'static str {
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

/// First heartbeat, then the sync into a fresh temp directory with heartbeats alongside, the upload, FinishTask.
async fn sync_full(shared: &Shared, id: &str, interval: Duration, cancel: CancellationToken, types: Vec<String>) {
    let interval = match shared.c1.heartbeat(id).await {
        Ok(r) if r.cancelled => {
            finish(shared, id, Err((tonic::Code::Cancelled, "the task was cancelled by ConductorOne".into(), false)))
                .await;
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

    let outcome = sync_and_upload(shared, id, work.clone(), types).await;
    beats_done.cancel();
    let stopped_by = beats.await.ok().flatten().or_else(|| cancel.is_cancelled().then_some(StopReason::Shutdown));
    let result = match outcome {
        Ok(()) => Ok(()),
        Err(_) if work.is_cancelled() && stopped_by.is_some() => {
            let message = match stopped_by {
                Some(StopReason::CancelledByC1) => "the task was cancelled by ConductorOne",
                Some(StopReason::HeartbeatsFailed) => "stopped after 10 failed heartbeats in a row",
                _ => "the connector is shutting down",
            };
            Err((tonic::Code::Cancelled, message.to_owned(), false))
        }
        Err(e) => Err(e),
    };
    if let Err((code, message, _)) = &result {
        tracing::warn!(task_id = %id, code = ?code, error = %message, "sync task failed");
    }
    finish(shared, id, result).await;
}

/// Sync into a temp dir (removed when this returns), then upload. Errors are (code, message, non_retryable).
async fn sync_and_upload(
    shared: &Shared,
    id: &str,
    work: CancellationToken,
    resource_types: Vec<String>,
) -> Result<(), (tonic::Code, String, bool)> {
    let dir = tempfile::Builder::new()
        .prefix(TASK_DIR_PREFIX)
        .tempdir_in(&shared.temp_dir)
        .map_err(|e| (tonic::Code::Internal, format!("cannot create a temporary directory: {e}"), false))?;
    let output = dir.path().join("sync.c1z");
    // Held until the directory is gone: tells a later service run's start-up cleanup that this one is alive.
    let _lock = OutputLock::acquire(&output, false)
        .map_err(|e| (tonic::Code::Internal, format!("cannot lock the temporary sync file: {e}"), false))?;
    let request = SyncRequest {
        output,
        writer: WriterOptions { carry_over_previous: false, ..Default::default() },
        progress: None,
        resource_types,
    };
    let summary = run_sync(&shared.torq, request, work.clone())
        .await
        .map_err(|e| (sync_error_code(&e), format!("sync failed: {e}"), false))?;
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
            _ = work.cancelled() => return Err((tonic::Code::Cancelled, "cancelled during the upload".into(), false)),
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
                        return Err((tonic::Code::Cancelled, "cancelled while waiting to retry the upload".into(), false))
                    }
                }
            }
            None => return Err((e.code(), format!("upload failed after {attempt} attempts: {e}"), false)),
        }
    }
    // `dir` is dropped (and removed) on every return above.
}

/// Removes task directories that a killed service run left under `temp_dir` (each holds a whole sync file). A
/// directory whose lock a live run holds is kept, as is a very young one without a lock file (a live run may be
/// between creating it and locking it). Only this user's directories are considered. Best effort.
pub fn remove_stale_task_dirs(temp_dir: &Path) -> usize {
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
fn sync_error_code(e: &SyncError) -> tonic::Code {
    match e {
        SyncError::Interrupted => tonic::Code::Cancelled,
        SyncError::Torq(t) => match t {
            TorqError::BadCredentials { .. } | TorqError::TokenRejected { .. } => tonic::Code::Unauthenticated,
            TorqError::PermissionDenied { .. } => tonic::Code::PermissionDenied,
            TorqError::Unavailable { .. } => tonic::Code::Unavailable,
            TorqError::Api { status, .. } => match status {
                400 => tonic::Code::InvalidArgument,
                404 => tonic::Code::NotFound,
                409 => tonic::Code::AlreadyExists,
                429 => tonic::Code::Unavailable,
                s if *s >= 500 => tonic::Code::Unavailable,
                _ => tonic::Code::Unknown,
            },
            _ => tonic::Code::Internal,
        },
        SyncError::UnknownResourceTypes { .. } => tonic::Code::InvalidArgument,
        SyncError::C1z(_) | SyncError::Internal(_) => tonic::Code::Internal,
    }
}

/// FinishTask with a fresh deadline, up to 3 attempts. `Err((code, message, non_retryable))` reports a failure.
async fn finish(shared: &Shared, id: &str, result: Result<(), (tonic::Code, String, bool)>) {
    let (status, final_state, outcome) = match result {
        Ok(()) => (None, FinalState::Success(Success::default()), "success".to_owned()),
        Err((code, message, non_retryable)) => {
            let outcome = format!("error {code:?}");
            (
                Some(RpcStatus { code: code as i32, message, details: Vec::new() }),
                FinalState::Error(FinishError { non_retryable, ..Default::default() }),
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
        match shared.c1.finish_task(request.clone()).await {
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

/// Hello request body (host_id is filled in by the client): metadata, build info, OS info without empty fields.
pub fn hello_request(task_id: &str) -> BatonServiceHelloRequest {
    let rustc = option_env!("BATON_TORQ_RUSTC_VERSION").unwrap_or("");
    BatonServiceHelloRequest {
        host_id: String::new(),
        task_id: task_id.to_owned(),
        build_info: Some(BuildInfo {
            lang_version: if rustc.is_empty() { "rust".to_owned() } else { format!("rust {rustc}") },
            package: "baton-torq".to_owned(),
            package_version: env!("CARGO_PKG_VERSION").to_owned(),
        }),
        os_info: Some(os_info()),
        connector_metadata: Some(crate::connector::metadata::connector_metadata()),
        annotations: Vec::new(),
    }
}

/// The machine's hostname, or `baton-torq` when it has none.
pub fn hostname_or_default() -> String {
    let name = gethostname::gethostname().to_string_lossy().trim().to_owned();
    if name.is_empty() {
        "baton-torq".to_owned()
    } else {
        name
    }
}

fn os_info() -> OsInfo {
    let read = |path: &str| std::fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_default();
    let os_release = read("/etc/os-release");
    let field = |key: &str| {
        os_release
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default()
    };
    let or = |v: String, fallback: &str| if v.is_empty() { fallback.to_owned() } else { v };
    let os = std::env::consts::OS.to_owned();
    let platform = or(field("ID"), &os);
    OsInfo {
        hostname: hostname_or_default(),
        platform_version: or(field("VERSION_ID"), "unknown"),
        platform_family: or(field("ID_LIKE").split_whitespace().next().unwrap_or("").to_owned(), &platform),
        platform,
        kernel_version: or(read("/proc/sys/kernel/osrelease"), "unknown"),
        kernel_arch: std::env::consts::ARCH.to_owned(),
        virtualization_system: "none".to_owned(),
        os,
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

    /// Many connectors that lost ConductorOne together must not retry in lockstep: the same backoff drawn twice
    /// differs, and every delay lies in [base, 2 x base] of the doubling schedule.
    #[test]
    fn hello_poll_and_upload_backoffs_are_jittered() {
        for (name, make, start, max) in [
            ("hello", hello_backoff as fn() -> backon::ExponentialBackoff, HELLO_BACKOFF_START, HELLO_BACKOFF_MAX),
            ("poll", poll_backoff, POLL_BACKOFF_START, POLL_BACKOFF_MAX),
            ("upload", upload_backoff, UPLOAD_BACKOFF_START, UPLOAD_BACKOFF_MAX),
        ] {
            let a: Vec<Duration> = make().take(6).collect();
            let b: Vec<Duration> = make().take(6).collect();
            assert_eq!(a.len(), 6, "{name}");
            assert_ne!(a, b, "{name}: two draws of the backoff are identical (no jitter)");
            let mut base = start;
            for d in &a {
                assert!(*d >= base && *d <= base * 2, "{name}: {d:?} outside [{base:?}, {:?}]", base * 2);
                base = (base * 2).min(max);
            }
        }
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

    #[test]
    fn hello_has_no_empty_os_field() {
        let os = hello_request("").os_info.unwrap();
        for v in [
            &os.hostname,
            &os.os,
            &os.platform,
            &os.platform_version,
            &os.platform_family,
            &os.kernel_version,
            &os.kernel_arch,
            &os.virtualization_system,
        ] {
            assert!(!v.is_empty(), "{os:?}");
        }
    }
}
