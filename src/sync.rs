//! Drives one full sync: Torq -> connector mapping -> c1z file.
//!
//! The role list and the two user lists are fetched concurrently. Users are streamed: each list is decoded on
//! its own blocking thread, mapped to a resource and a role grant there, and sent in batches to one writer
//! thread that owns the [`C1zWriter`]. Grants whose role is not in the role list are removed at the end (with a
//! warning naming both ids), so no dangling grant is ever written. The API calls are a constant number whatever
//! the number of users and roles: one token, two user lists, one request per 100 roles.
//!
//! The output file is replaced only by [`C1zWriter::finish`]; an error or a cancellation anywhere leaves it as it was.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::c1z::{C1zError, C1zWriter, SyncCounts, WriterOptions};
use crate::connector::{self, role, user};
use crate::proto::connector_v2::{Entitlement, Grant, Resource, ResourceType};
use crate::torq::SinkClosed;
use crate::torq::{ClientStats, TorqClient, TorqError, UserRecord};

/// Users per batch sent to the writer thread.
const USER_BATCH: usize = 1024;
/// Batches in flight between decoders and the writer (bounds memory).
const CHANNEL_DEPTH: usize = 4;
/// Dangling-grant warnings logged one by one before they are only counted.
const MAX_DANGLING_WARNINGS: usize = 50;

/// Where and how to write.
#[derive(Clone, Debug)]
pub struct SyncRequest {
    pub output: PathBuf,
    pub writer: WriterOptions,
    /// Live counters for a progress display; `None` when nobody watches.
    pub progress: Option<Arc<SyncProgress>>,
}

/// Live counters of a running sync, read by the terminal progress display.
#[derive(Debug, Default)]
pub struct SyncProgress {
    users_fetched: AtomicU64,
    rows_written: AtomicU64,
}

impl SyncProgress {
    /// Users decoded from Torq's user lists so far (a user in both lists counts twice).
    pub fn users_fetched(&self) -> u64 {
        self.users_fetched.load(Ordering::Relaxed)
    }
    /// Resource types, resources, entitlements and grants inserted into the sync file so far.
    pub fn rows_written(&self) -> u64 {
        self.rows_written.load(Ordering::Relaxed)
    }
}

/// What a finished sync did, for the summary.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SyncSummary {
    pub output: PathBuf,
    pub sync_id: String,
    pub previous_sync_id: Option<String>,
    pub file_bytes: u64,
    pub users: u64,
    pub users_by_status: BTreeMap<String, u64>,
    pub roles: u64,
    pub entitlements: u64,
    pub grants: u64,
    /// Users whose role is not in the role list (no grant written).
    pub users_with_unknown_role: u64,
    /// Users listed more than once (e.g. in both the SSO and the local list), written once.
    pub duplicate_users: u64,
    pub requests: ClientStats,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    /// Peak resident memory of this process so far (Linux; `None` elsewhere).
    pub peak_rss_bytes: Option<u64>,
}

/// The process's peak resident set size (`VmHWM` in /proc/self/status), when the platform tells.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// Errors of a sync run.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Torq(#[from] TorqError),
    #[error(transparent)]
    C1z(#[from] C1zError),
    #[error("interrupted; the sync file was left as it was")]
    Interrupted,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<tokio::task::JoinError> for SyncError {
    /// A blocking task (the c1z writer) panicked or was cancelled.
    fn from(e: tokio::task::JoinError) -> SyncError {
        SyncError::Internal(e.to_string())
    }
}

/// What flows to the writer thread.
enum Batch {
    ResourceTypes(Vec<ResourceType>),
    Roles(Vec<(Resource, Entitlement)>),
    Users(Vec<UserRows>),
}

struct UserRows {
    resource: Resource,
    grant: Option<Grant>,
    status: &'static str,
}

/// Tallies kept by the writer thread (it alone knows what was new).
#[derive(Default)]
struct Tally {
    users_by_status: BTreeMap<&'static str, u64>,
    duplicate_users: u64,
}

/// Runs a full sync of the workspace behind `client` into `request.output`. Cancelling `cancel` stops it, removes
/// the work files and returns [`SyncError::Interrupted`].
pub async fn run_sync(
    client: &TorqClient,
    request: SyncRequest,
    cancel: CancellationToken,
) -> Result<SyncSummary, SyncError> {
    let started = Instant::now();
    let output = request.output.clone();
    let writer = {
        let output = output.clone();
        let options = request.writer.clone();
        tokio::task::spawn_blocking(move || C1zWriter::create(&output, options)).await??
    };
    tracing::debug!(sync_id = writer.sync_id(), output = %output.display(), "sync started");

    let (tx, rx) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
    let progress = request.progress.clone().unwrap_or_default();
    let writer_progress = Arc::clone(&progress);
    let writer_task = tokio::task::spawn_blocking(move || write_batches(writer, rx, &writer_progress));

    // Stops the user-list decoders (they run on blocking threads that outlive a dropped future) on
    // cancellation or as soon as the fetch fails.
    let stop = cancel.child_token();
    let fetch = fetch_all(client, tx, &progress, &stop);
    let fetched = tokio::select! {
        // Cancellation first: the decoders stop on it too, and their "sink closed" must not win the race.
        biased;
        _ = cancel.cancelled() => None,
        r = fetch => Some(r),
    };
    stop.cancel();
    // Every sender is gone now (or soon: decoders stop at their next user), so the writer thread ends; its
    // result explains a closed channel.
    let written = writer_task.await?;
    let roles = match fetched {
        None => return Err(SyncError::Interrupted),
        Some(Err(TorqError::SinkClosed)) if cancel.is_cancelled() => return Err(SyncError::Interrupted),
        Some(Err(TorqError::SinkClosed)) => {
            written?;
            return Err(SyncError::Internal("the writer stopped early".into()));
        }
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(roles)) => roles,
    };
    let (writer, tally) = written?;

    if cancel.is_cancelled() {
        return Err(SyncError::Interrupted);
    }
    // The final write is not abandoned half-way: a signal now lets it finish (the file is complete either way).
    let (file, counts, dangling) = tokio::task::spawn_blocking(move || finish_file(writer)).await??;
    let users = tally.users_by_status.values().sum();
    Ok(SyncSummary {
        output: file.path,
        sync_id: file.sync_id,
        previous_sync_id: file.previous_sync_id,
        file_bytes: file.bytes,
        users,
        users_by_status: tally.users_by_status.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        roles,
        entitlements: counts.entitlements,
        grants: counts.grants,
        users_with_unknown_role: dangling,
        duplicate_users: tally.duplicate_users,
        requests: client.stats(),
        duration: started.elapsed(),
        peak_rss_bytes: peak_rss_bytes(),
    })
}

/// Fetches roles and both user lists concurrently, feeding the writer. Returns the number of roles.
async fn fetch_all(
    client: &TorqClient,
    tx: mpsc::Sender<Batch>,
    progress: &Arc<SyncProgress>,
    stop: &CancellationToken,
) -> Result<u64, TorqError> {
    let types = connector::resource_types::all();
    tx.send(Batch::ResourceTypes(types)).await.map_err(|_| TorqError::SinkClosed)?;

    let roles_tx = tx.clone();
    let roles = async move {
        let roles = client.list_roles().await?;
        let rows: Vec<_> = roles
            .iter()
            .filter(|r| {
                if r.id.is_empty() {
                    tracing::warn!(name = %r.name, "Torq listed a role without an id; skipping it");
                }
                !r.id.is_empty()
            })
            .map(|r| {
                let resource = role::role_resource(r);
                let entitlement = role::member_entitlement(r, &resource);
                (resource, entitlement)
            })
            .collect();
        let n = rows.len() as u64;
        roles_tx.send(Batch::Roles(rows)).await.map_err(|_| TorqError::SinkClosed)?;
        tracing::debug!(roles = n, "roles fetched");
        Ok::<u64, TorqError>(n)
    };
    let local = stream_user_list(client, false, tx.clone(), Arc::clone(progress), stop.clone());
    let sso = stream_user_list(client, true, tx.clone(), Arc::clone(progress), stop.clone());
    drop(tx);
    let (roles, _, _) = tokio::try_join!(roles, local, sso)?;
    Ok(roles)
}

/// One user list -> batches of mapped rows.
async fn stream_user_list(
    client: &TorqClient,
    sso: bool,
    tx: mpsc::Sender<Batch>,
    progress: Arc<SyncProgress>,
    stop: CancellationToken,
) -> Result<u64, TorqError> {
    let buffer = Arc::new(Mutex::new(Vec::with_capacity(USER_BATCH)));
    let sink_buffer = Arc::clone(&buffer);
    let sink_tx = tx.clone();
    let count = client
        .stream_users(sso, move |u: UserRecord| {
            if stop.is_cancelled() {
                return Err(SinkClosed);
            }
            progress.users_fetched.fetch_add(1, Ordering::Relaxed);
            if u.id.is_empty() {
                tracing::warn!(email = %u.email, "Torq listed a user without an id; skipping it");
                return Ok(());
            }
            let rows =
                UserRows { resource: user::user_resource(&u), grant: user::role_grant(&u), status: status_label(&u) };
            let mut buf = sink_buffer.lock().map_err(|_| SinkClosed)?;
            buf.push(rows);
            if buf.len() >= USER_BATCH {
                let full = std::mem::replace(&mut *buf, Vec::with_capacity(USER_BATCH));
                sink_tx.blocking_send(Batch::Users(full)).map_err(|_| SinkClosed)?;
            }
            Ok(())
        })
        .await?;
    let rest = std::mem::take(&mut *buffer.lock().map_err(|_| TorqError::SinkClosed)?);
    if !rest.is_empty() {
        tx.send(Batch::Users(rest)).await.map_err(|_| TorqError::SinkClosed)?;
    }
    tracing::debug!(sso, users = count, "user list fetched");
    Ok(count)
}

/// Summary bucket for a user's Torq status.
fn status_label(u: &UserRecord) -> &'static str {
    use crate::torq::UserStatus;
    match u.status {
        UserStatus::Verified => "verified",
        UserStatus::InvitationSent => "invited",
        UserStatus::Unspecified => "unspecified",
        UserStatus::Other(_) => "other",
    }
}

/// The writer thread: inserts every batch until all senders are gone.
fn write_batches(
    mut writer: C1zWriter,
    mut rx: mpsc::Receiver<Batch>,
    progress: &SyncProgress,
) -> Result<(C1zWriter, Tally), C1zError> {
    let mut tally = Tally::default();
    while let Some(batch) = rx.blocking_recv() {
        let rows = match &batch {
            Batch::ResourceTypes(types) => types.len(),
            Batch::Roles(rows) => rows.len() * 2,
            Batch::Users(rows) => rows.iter().map(|r| 1 + usize::from(r.grant.is_some())).sum(),
        };
        match batch {
            Batch::ResourceTypes(types) => {
                for t in &types {
                    writer.put_resource_type(t)?;
                }
            }
            Batch::Roles(rows) => {
                for (resource, entitlement) in &rows {
                    writer.put_resource(resource)?;
                    writer.put_entitlement(entitlement)?;
                }
            }
            Batch::Users(rows) => {
                for row in &rows {
                    if writer.put_resource(&row.resource)? {
                        *tally.users_by_status.entry(row.status).or_default() += 1;
                        if let Some(g) = &row.grant {
                            writer.put_grant(g)?;
                        }
                    } else {
                        tally.duplicate_users += 1;
                    }
                }
            }
        }
        progress.rows_written.fetch_add(rows as u64, Ordering::Relaxed);
    }
    Ok((writer, tally))
}

/// Drops grants whose role is unknown (warning for each), then writes the file into place.
fn finish_file(mut writer: C1zWriter) -> Result<(crate::c1z::FinishedFile, SyncCounts, u64), C1zError> {
    let dangling = writer.remove_dangling_grants()?;
    for (i, g) in dangling.iter().enumerate() {
        if i < MAX_DANGLING_WARNINGS {
            tracing::warn!(
                user_id = %g.principal_id,
                role_id = %g.resource_id,
                "user has a role that is not in Torq's role list; no grant written for it"
            );
        }
    }
    if dangling.len() > MAX_DANGLING_WARNINGS {
        tracing::warn!(
            more = dangling.len() - MAX_DANGLING_WARNINGS,
            "more users have roles that are not in the role list; no grants written for them"
        );
    }
    // The writer's counts already exclude the grants it just removed.
    let counts = writer.counts();
    let file = writer.finish()?;
    Ok((file, counts, dangling.len() as u64))
}

impl SyncSummary {
    /// A short human summary (console mode).
    pub fn to_console(&self) -> String {
        let statuses: Vec<String> = self.users_by_status.iter().map(|(k, v)| format!("{v} {k}")).collect();
        let mut out = format!(
            "Synced {} users ({}), {} roles, {} grants in {:.2} s\n",
            self.users,
            if statuses.is_empty() { "none".to_string() } else { statuses.join(", ") },
            self.roles,
            self.grants,
            self.duration.as_secs_f64()
        );
        if self.users_with_unknown_role > 0 {
            out.push_str(&format!(
                "  {} users have a role that Torq did not list (no grant written; see warnings)\n",
                self.users_with_unknown_role
            ));
        }
        if self.duplicate_users > 0 {
            out.push_str(&format!("  {} users were listed twice and written once\n", self.duplicate_users));
        }
        out.push_str(&format!(
            "  API requests: {} ({} token, {} API, {} retries)\n",
            self.requests.token_requests + self.requests.api_requests,
            self.requests.token_requests,
            self.requests.api_requests,
            self.requests.retries
        ));
        out.push_str(&format!(
            "  Wrote {} ({} bytes), sync {}{}\n",
            self.output.display(),
            self.file_bytes,
            self.sync_id,
            match &self.previous_sync_id {
                Some(p) => format!(", previous sync {p} kept"),
                None => String::new(),
            }
        ));
        out
    }
}
