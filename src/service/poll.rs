//! The service loop: start-up Hello with backoff, then GetTask polling with at most `--task-concurrency` tasks at
//! once, each handed to [`super::handlers`]. GetTask failures back off with jitter; shutdown waits for the running
//! tasks, which report their outcome.
//!
//! Must not: answer a task itself (handlers do, exactly once each), or retry a task (ConductorOne reschedules
//! retryable failures).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::client::{C1Client, CallError};
use super::handlers::{self, sync_full, TaskContext};
use super::health::Health;
use super::{hello, ServiceConfig, ServiceError};
use crate::proto::baton_v1::task::TaskType;
use crate::torq::TorqClient;

const MAX_POLL: Duration = Duration::from_secs(300);
/// Wait before the next poll when the server sent no task and no `next_poll`.
const IDLE_POLL: Duration = Duration::from_secs(1);
const HELLO_BACKOFF_START: Duration = Duration::from_secs(1);
const HELLO_BACKOFF_MAX: Duration = Duration::from_secs(300);
const POLL_BACKOFF_START: Duration = Duration::from_secs(1);
const POLL_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Longest a Hello or GetTask may take: the call's 30 s deadline plus a token request (60 s); for `/live`.
const CALL_STEP: Duration = Duration::from_secs(120);

/// Exponential backoff with jitter (each delay plus up to 100 %), so that many connectors that lost
/// ConductorOne at the same moment do not all come back at the same moment. Endless unless `budget` is given.
pub(super) fn backoff(start: Duration, max: Duration, budget: Option<Duration>) -> backon::ExponentialBackoff {
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

/// Runs the loop for one connector instance.
pub(crate) struct Runner {
    shared: Arc<TaskContext>,
    concurrency: usize,
}

impl Runner {
    pub(crate) fn new(c1: C1Client, torq: TorqClient, config: &ServiceConfig, health: Arc<Health>) -> Runner {
        Runner {
            shared: Arc::new(TaskContext {
                c1,
                torq,
                temp_dir: config.temp_dir.clone(),
                provisioning: config.provisioning,
                health,
            }),
            concurrency: config.task_concurrency,
        }
    }

    /// Hello, then poll until `shutdown`; waits for in-flight tasks (cancelled, each finished with FinishTask).
    pub(crate) async fn run(self, shutdown: CancellationToken) -> Result<(), ServiceError> {
        let temp_dir = self.shared.temp_dir.clone();
        // Directory listing and removal are blocking; a failure here only leaves litter.
        let _ = tokio::task::spawn_blocking(move || sync_full::remove_stale_task_dirs(&temp_dir)).await;
        let health = self.shared.health.clone();
        if !self.startup_hello(&shutdown).await? {
            health.stopping();
            return Ok(());
        }
        health.registered();
        tracing::info!("registered with ConductorOne; polling for tasks");
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let mut running: JoinSet<()> = JoinSet::new();
        // Set while GetTask keeps failing (or sending tasks that cannot be answered); cleared by a good answer.
        let mut poll_errors: Option<backon::ExponentialBackoff> = None;
        loop {
            while running.try_join_next().is_some() {}
            if slots.available_permits() == 0 {
                health.busy();
            }
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.cancelled() => break,
            };
            health.step(CALL_STEP);
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
                                task_type = handlers::task_kind(&task.task_type),
                                retry_in_ms = wait.as_millis() as u64,
                                "ignoring a task without an id (it cannot be answered)"
                            );
                            wait
                        }
                        Some(task) => {
                            poll_errors = None;
                            let heartbeat = sync_full::heartbeat_interval(resp.next_heartbeat.and_then(to_duration));
                            let shared = self.shared.clone();
                            let cancel = shutdown.child_token();
                            running.spawn(async move {
                                handlers::handle_task(&shared, task, heartbeat, cancel).await;
                                drop(permit);
                                super::memory::give_back().await;
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
            health.sleeping(wait);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        health.stopping();
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
            self.shared.health.step(CALL_STEP);
            let attempt = tokio::select! {
                r = self.shared.c1.hello(hello::request("")) => r,
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
                    self.shared.health.step(wait);
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

pub(super) fn to_duration(d: prost_types::Duration) -> Option<Duration> {
    if d.seconds < 0 || d.nanos < 0 {
        return Some(Duration::ZERO);
    }
    Some(Duration::new(u64::try_from(d.seconds).ok()?, u32::try_from(d.nanos).ok()?.min(999_999_999)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many connectors that lost ConductorOne together must not retry in lockstep: the same backoff drawn twice
    /// differs, and every delay lies in [base, 2 x base] of the doubling schedule.
    #[test]
    fn hello_poll_and_upload_backoffs_are_jittered() {
        for (name, make, start, max) in [
            ("hello", hello_backoff as fn() -> backon::ExponentialBackoff, HELLO_BACKOFF_START, HELLO_BACKOFF_MAX),
            ("poll", poll_backoff, POLL_BACKOFF_START, POLL_BACKOFF_MAX),
            ("upload", sync_full::upload_backoff, sync_full::UPLOAD_BACKOFF_START, sync_full::UPLOAD_BACKOFF_MAX),
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
}
