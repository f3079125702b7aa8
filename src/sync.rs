//! Drives one full sync: every resource syncer of [`connector::SYNCERS`] (or the chosen subset) -> c1z file.
//!
//! The syncers run concurrently, each sending batches of rows into one channel; one writer thread owns the
//! [`C1zWriter`] and inserts them. Users are streamed (decoded and mapped on blocking threads as the bytes
//! arrive). A resource type is written once its syncer finished; a syncer that was refused by Torq (API keys
//! without permission) leaves its type out and the summary says why. Grants whose entitlement or principal is
//! not in the file (a role that is not in the role list) are removed at the end, with a warning naming both, so
//! no dangling grant is ever written. The API calls are a constant number whatever the number of users, roles
//! and keys: one token, two user lists, roles, API keys, claim mappings (and the legacy role pages only when the
//! RBAC role list is refused).
//!
//! This module names no resource type: what is synced, and how, is the syncers' business.
//!
//! The output file is replaced only by [`C1zWriter::finish`]; an error or a cancellation anywhere leaves it as it was.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::c1z::{C1zError, C1zWriter, DanglingGrant, Put, SyncCounts, WriterOptions};
use crate::connector::syncer::{Batch, RowSink};
use crate::connector::{self, ResourceSyncer, Synced};
use crate::torq::{ClientStats, TorqClient, TorqError};

/// Batches in flight between the syncers and the writer (bounds memory; 4 keeps the 10k-user peak lower than 16
/// at the same speed, see docs/performance.md).
const CHANNEL_DEPTH: usize = 4;
/// Dangling-grant warnings logged one by one before they are only counted.
const MAX_DANGLING_WARNINGS: usize = 50;
/// Malformed-record warnings logged one by one before they are only counted.
const MAX_MALFORMED_WARNINGS: u64 = 50;
/// Characters of a malformed record's id shown in its warning.
const SHOWN_ID_CHARS: usize = 64;

/// Where and how to write.
#[derive(Clone, Debug)]
pub struct SyncRequest {
    pub output: PathBuf,
    pub writer: WriterOptions,
    /// Live counters for a progress display; `None` when nobody watches.
    pub progress: Option<Arc<SyncProgress>>,
    /// Resource type ids to sync (service mode's `sync_resource_type_ids`); empty = all.
    pub resource_types: Vec<String>,
}

/// Live counters of a running sync, read by the terminal progress display.
#[derive(Debug, Default)]
pub struct SyncProgress {
    records_fetched: Arc<AtomicU64>,
    rows_written: AtomicU64,
}

impl SyncProgress {
    /// Records decoded from Torq's lists so far (a user in both user lists counts twice).
    pub(crate) fn records_fetched(&self) -> u64 {
        self.records_fetched.load(Ordering::Relaxed)
    }
    /// Resource types, resources, entitlements and grants inserted into the sync file so far.
    pub(crate) fn rows_written(&self) -> u64 {
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
    /// One entry per resource type written, in [`connector::SYNCERS`] order.
    pub resource_types: Vec<TypeSummary>,
    /// Resource types left out of the file, with why.
    pub skipped: Vec<SkippedType>,
    pub entitlements: u64,
    pub grants: u64,
    /// Grants left out because another grant of this sync already had the same id (ids holding `:` can make two
    /// different grants spell the same id); one warning gives the count.
    pub grant_id_collisions: u64,
    pub requests: ClientStats,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    /// Peak resident memory of this process so far (Linux; `None` elsewhere).
    pub peak_rss_bytes: Option<u64>,
}

/// The figures of one resource type.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TypeSummary {
    pub resource_type: &'static str,
    /// Resources written (each once).
    pub resources: u64,
    /// Resources per summary bucket (a user's status, an API key's type, custom/built-in roles).
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Resources listed more than once (e.g. a user in both the SSO and the local list), written once.
    pub duplicates: u64,
    /// Of those, the ones listed again with different data: the first record read was kept (the local user
    /// list is read before the SSO list), and one warning gives the count.
    pub conflicting: u64,
    /// Resources of this type whose role is not in the role list (their grant was not written).
    pub unknown_role: u64,
    /// Records left out because a value was longer than any real Torq value (each named in a warning, up to
    /// [`MAX_MALFORMED_WARNINGS`]).
    pub malformed: u64,
}

/// A resource type that was not synced.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SkippedType {
    pub resource_type: &'static str,
    pub reason: String,
}

impl SyncSummary {
    /// The figures of resource type `id`, if it was written.
    pub fn of(&self, id: &str) -> Option<&TypeSummary> {
        self.resource_types.iter().find(|t| t.resource_type == id)
    }

    /// Resources written of type `id` (0 when it was not synced).
    pub fn count(&self, id: &str) -> u64 {
        self.of(id).map_or(0, |t| t.resources)
    }

    /// `user=12 role=5 api_key=6`, for a log line.
    pub fn resource_counts(&self) -> String {
        let counts: Vec<String> =
            self.resource_types.iter().map(|t| format!("{}={}", t.resource_type, t.resources)).collect();
        counts.join(" ")
    }
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
    #[error("none of the requested resource types ({requested}) exists; this connector syncs: {known}")]
    UnknownResourceTypes { requested: String, known: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<tokio::task::JoinError> for SyncError {
    /// A blocking task (the c1z writer) panicked or was cancelled.
    fn from(e: tokio::task::JoinError) -> SyncError {
        SyncError::Internal(e.to_string())
    }
}

/// Tallies kept by the writer thread (it alone knows what was new), per resource type.
#[derive(Default)]
struct Tally {
    types: BTreeMap<&'static str, TypeSummary>,
    grant_id_collisions: u64,
}

/// How each syncer finished.
type Outcomes = Vec<(&'static dyn ResourceSyncer, Synced)>;

/// Runs a full sync of the workspace behind `client` into `request.output`. Cancelling `cancel` stops it, removes
/// the work files and returns [`SyncError::Interrupted`].
pub async fn run_sync(
    client: &TorqClient,
    request: SyncRequest,
    cancel: CancellationToken,
) -> Result<SyncSummary, SyncError> {
    let started = Instant::now();
    let (syncers, unknown) = connector::select(&request.resource_types);
    if !unknown.is_empty() {
        tracing::warn!(
            unknown = %unknown.join(", "),
            known = %connector::type_ids(),
            "ignoring resource types this connector does not have"
        );
    }
    if syncers.is_empty() {
        return Err(SyncError::UnknownResourceTypes {
            requested: request.resource_types.join(", "),
            known: connector::type_ids(),
        });
    }
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
    // Grants into a type that is not synced this time (a partial sync) are left out quietly, not as dangling.
    let partial: Option<Vec<&'static str>> =
        (syncers.len() < connector::SYNCERS.len()).then(|| syncers.iter().map(|s| s.type_id()).collect());
    let writer_task = tokio::task::spawn_blocking(move || write_batches(writer, rx, &writer_progress, partial));

    // Stops the user-list decoders (they run on blocking threads that outlive a dropped future) on
    // cancellation or as soon as the fetch fails.
    let stop = cancel.child_token();
    let fetch = fetch_all(client, &syncers, tx, &progress, &stop);
    let fetched = tokio::select! {
        // Cancellation first: the decoders stop on it too, and their "sink closed" must not win the race.
        biased;
        _ = cancel.cancelled() => None,
        r = fetch => Some(r),
    };
    stop.cancel();
    // Every sender is gone now (or soon: decoders stop at their next record), so the writer thread ends; its
    // result explains a closed channel.
    let written = writer_task.await?;
    let outcomes = match fetched {
        None => return Err(SyncError::Interrupted),
        Some(Err(TorqError::SinkClosed)) if cancel.is_cancelled() => return Err(SyncError::Interrupted),
        Some(Err(TorqError::SinkClosed)) => {
            written?;
            return Err(SyncError::Internal("the writer stopped early".into()));
        }
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(outcomes)) => outcomes,
    };
    let (writer, mut tally) = written?;

    if cancel.is_cancelled() {
        return Err(SyncError::Interrupted);
    }
    // The summary is built from this tally; the writer checks its own counts against the file before the file is
    // put in place, so the two must agree here.
    check_tally(&tally, writer.resources_by_type())?;
    // The final write is not abandoned half-way: a signal now lets it finish (the file is complete either way).
    let (file, counts, dangling) = tokio::task::spawn_blocking(move || finish_file(writer)).await??;
    for g in &dangling {
        if let Some(t) = tally.types.values_mut().find(|t| t.resource_type == g.principal_type) {
            t.unknown_role += 1;
        }
    }
    let mut resource_types = Vec::new();
    let mut skipped = Vec::new();
    for (syncer, outcome) in outcomes {
        let id = syncer.type_id();
        match outcome {
            Synced::Done => {
                let t = tally.types.remove(id).unwrap_or_default();
                resource_types.push(TypeSummary { resource_type: id, ..t });
            }
            Synced::Skipped { reason } => skipped.push(SkippedType { resource_type: id, reason }),
        }
    }
    Ok(SyncSummary {
        output: file.path,
        sync_id: file.sync_id,
        previous_sync_id: file.previous_sync_id,
        file_bytes: file.bytes,
        resource_types,
        skipped,
        entitlements: counts.entitlements,
        grants: counts.grants,
        grant_id_collisions: tally.grant_id_collisions,
        requests: client.stats(),
        duration: started.elapsed(),
        peak_rss_bytes: peak_rss_bytes(),
    })
}

/// Runs the syncers concurrently, feeding the writer; writes each resource type whose syncer finished.
async fn fetch_all(
    client: &TorqClient,
    syncers: &[&'static dyn ResourceSyncer],
    tx: mpsc::Sender<Batch>,
    progress: &Arc<SyncProgress>,
    stop: &CancellationToken,
) -> Result<Outcomes, TorqError> {
    let runs = syncers.iter().map(|&syncer| {
        let sink = RowSink::new(tx.clone(), syncer.type_id(), stop.clone(), Arc::clone(&progress.records_fetched));
        let tx = tx.clone();
        async move {
            let outcome = syncer.sync(client, sink).await?;
            if outcome == Synced::Done {
                tx.send(Batch::ResourceType(syncer.resource_type())).await.map_err(|_| TorqError::SinkClosed)?;
            }
            Ok::<_, TorqError>((syncer, outcome))
        }
    });
    let runs: Vec<_> = runs.collect();
    drop(tx);
    futures_util::future::try_join_all(runs).await
}

/// The writer thread: inserts every batch until all senders are gone. `partial` lists the synced types when
/// not all are: grants into other types are not written.
fn write_batches(
    mut writer: C1zWriter,
    mut rx: mpsc::Receiver<Batch>,
    progress: &SyncProgress,
    partial: Option<Vec<&'static str>>,
) -> Result<(C1zWriter, Tally), C1zError> {
    let mut tally = Tally::default();
    let mut malformed = 0u64;
    // The first conflicting resource and grant, named in the warnings (an example of what to look up in Torq).
    let mut first_conflict: Option<(&'static str, String)> = None;
    let mut first_collision: Option<String> = None;
    let wanted = |g: &crate::proto::connector_v2::Grant| match &partial {
        None => true,
        Some(types) => {
            let target = g.entitlement.as_ref().and_then(|e| e.resource.as_ref()).and_then(|r| r.id.as_ref());
            target.is_some_and(|id| types.contains(&id.resource_type.as_str()))
        }
    };
    while let Some(batch) = rx.blocking_recv() {
        let mut rows_written = 0u64;
        match batch {
            Batch::ResourceType(t) => {
                writer.put_resource_type(&t)?;
                rows_written += 1;
            }
            Batch::Rows { resource_type, rows } => {
                let t = tally
                    .types
                    .entry(resource_type)
                    .or_insert_with(|| TypeSummary { resource_type, ..Default::default() });
                let syncer = connector::syncer(resource_type);
                for row in &rows {
                    if let Some(reason) = syncer.and_then(|s| connector::syncer::oversize(s, row)) {
                        t.malformed += 1;
                        malformed += 1;
                        warn_malformed(resource_type, row, &reason, malformed);
                        continue;
                    }
                    match writer.put_resource(&row.resource)? {
                        Put::Written => {}
                        Put::Repeated => {
                            t.duplicates += 1;
                            continue;
                        }
                        Put::Conflicting => {
                            t.duplicates += 1;
                            t.conflicting += 1;
                            first_conflict.get_or_insert_with(|| (resource_type, resource_id(&row.resource)));
                            continue;
                        }
                    }
                    t.resources += 1;
                    if !row.kind.is_empty() {
                        *t.by_kind.entry(row.kind).or_default() += 1;
                    }
                    for e in &row.entitlements {
                        writer.put_entitlement(e)?;
                    }
                    for g in row.grants.iter().filter(|g| wanted(g)) {
                        if writer.put_grant(g)? == Put::Conflicting {
                            tally.grant_id_collisions += 1;
                            first_collision.get_or_insert_with(|| g.id.clone());
                        }
                    }
                    rows_written += 1 + (row.entitlements.len() + row.grants.len()) as u64;
                }
            }
            Batch::Resent { resource_type, rows } => {
                if let Some(t) = tally.types.get_mut(resource_type) {
                    t.duplicates = t.duplicates.saturating_sub(rows);
                }
            }
        }
        progress.rows_written.fetch_add(rows_written, Ordering::Relaxed);
    }
    warn_ambiguities(&tally, first_conflict, first_collision);
    if malformed > MAX_MALFORMED_WARNINGS {
        tracing::warn!(
            more = malformed - MAX_MALFORMED_WARNINGS,
            "{} more records had values longer than Torq allows and were left out",
            malformed - MAX_MALFORMED_WARNINGS
        );
    }
    Ok((writer, tally))
}

/// One warning for the records Torq listed twice with different data and one for grants sharing an id, each
/// with its count and a first example (the rest of the sync is unaffected, so neither fails it).
fn warn_ambiguities(tally: &Tally, first_conflict: Option<(&'static str, String)>, first_collision: Option<String>) {
    if let Some((resource_type, id)) = first_conflict {
        let n: u64 = tally.types.values().map(|t| t.conflicting).sum();
        let noun = connector::syncer(resource_type).map_or(resource_type, |s| s.nouns().0);
        tracing::warn!(
            count = n,
            first = %id,
            "{n} record(s) were listed twice by Torq with different data (first: {noun} {id}); the first record \
             read was kept (of a user, the one in the local list: it is read before the SSO list)"
        );
    }
    if let Some(id) = first_collision {
        let n = tally.grant_id_collisions;
        tracing::warn!(
            count = n,
            first = %id,
            "{n} grant(s) were left out because another grant already had the same id (first: {id}); Torq ids \
             holding ':' can make two grants spell the same id"
        );
    }
}

/// The id of a resource (without its type), for a message.
fn resource_id(r: &crate::proto::connector_v2::Resource) -> String {
    r.id.as_ref().map_or_else(String::new, |id| id.resource.clone())
}

/// The warning for the `nth` malformed record (only the first [`MAX_MALFORMED_WARNINGS`] are logged).
fn warn_malformed(resource_type: &str, row: &connector::syncer::Row, reason: &str, nth: u64) {
    if nth > MAX_MALFORMED_WARNINGS {
        return;
    }
    let noun = connector::syncer(resource_type).map_or(resource_type, |s| s.nouns().0);
    let id = row.resource.id.as_ref().map_or("", |id| id.resource.as_str());
    let mut shown: String = id.chars().take(SHOWN_ID_CHARS).collect::<String>().escape_debug().to_string();
    if id.chars().count() > SHOWN_ID_CHARS {
        shown.push('…');
    }
    tracing::warn!(
        resource_type,
        id = %shown,
        "{noun} {shown} from Torq is malformed: {reason}, longer than any real Torq value; it was left out"
    );
}

/// Whether the writer thread's per-type tally equals the writer's own count of rows written per type.
fn check_tally(tally: &Tally, written: &BTreeMap<String, u64>) -> Result<(), C1zError> {
    let types = tally.types.keys().map(|t| t.to_string()).chain(written.keys().cloned());
    for t in types {
        let counted = tally.types.get(t.as_str()).map_or(0, |s| s.resources);
        let in_file = written.get(&t).copied().unwrap_or(0);
        if counted != in_file {
            return Err(C1zError::CountMismatch { what: format!("resources of type {t}"), counted, in_file });
        }
    }
    Ok(())
}

/// Drops grants whose role is unknown (warning for each), then writes the file into place.
fn finish_file(mut writer: C1zWriter) -> Result<(crate::c1z::FinishedFile, SyncCounts, Vec<DanglingGrant>), C1zError> {
    let dangling = writer.remove_dangling_grants()?;
    for g in dangling.iter().take(MAX_DANGLING_WARNINGS) {
        let noun = connector::syncer(&g.principal_type).map_or("principal", |s| s.nouns().0);
        tracing::warn!(
            principal_type = %g.principal_type,
            principal_id = %g.principal_id,
            role_id = %g.resource_id,
            "{noun} {} has role {}, which is not in Torq's role list; no grant written for it",
            g.principal_id,
            g.resource_id
        );
    }
    if dangling.len() > MAX_DANGLING_WARNINGS {
        tracing::warn!(
            more = dangling.len() - MAX_DANGLING_WARNINGS,
            "more users or API keys have roles that are not in the role list; no grants written for them"
        );
    }
    // The writer's counts already exclude the grants it just removed.
    let counts = writer.counts();
    let file = writer.finish()?;
    Ok((file, counts, dangling))
}

impl SyncSummary {
    /// A short human summary (console mode).
    pub(crate) fn to_console(&self) -> String {
        let parts: Vec<String> = self
            .resource_types
            .iter()
            .map(|t| {
                let kinds: Vec<String> = t.by_kind.iter().map(|(k, v)| format!("{v} {k}")).collect();
                let kinds = if kinds.is_empty() { String::new() } else { format!(" ({})", kinds.join(", ")) };
                format!("{} {}{kinds}", t.resources, noun(t.resource_type, t.resources))
            })
            .collect();
        let mut out = format!(
            "Synced {}, {} grants in {:.2} s\n",
            if parts.is_empty() { "nothing".to_string() } else { parts.join(", ") },
            self.grants,
            self.duration.as_secs_f64()
        );
        for s in &self.skipped {
            out.push_str(&format!("  {} not synced: {}\n", capitalized(noun(s.resource_type, 2)), s.reason));
        }
        for t in &self.resource_types {
            for (n, verbs, rest) in [
                (
                    t.unknown_role,
                    ("has", "have"),
                    "a role that Torq did not list (no grant written; each is named in a warning)",
                ),
                (
                    t.malformed,
                    ("was", "were"),
                    "malformed (a value longer than Torq allows) and left out (each is named in a warning)",
                ),
            ] {
                if n > 0 {
                    out.push_str(&counted(n, t.resource_type, if n == 1 { verbs.0 } else { verbs.1 }, rest));
                }
            }
            if t.duplicates > 0 {
                let verb = if t.duplicates == 1 { "was" } else { "were" };
                out.push_str(&counted(t.duplicates, t.resource_type, verb, "listed twice and written once"));
            }
            if t.conflicting > 0 {
                let verb = if t.conflicting == 1 { "was" } else { "were" };
                let rest = "listed twice with different data; the first record read was kept (see the warning)";
                out.push_str(&counted(t.conflicting, t.resource_type, verb, rest));
            }
        }
        if self.grant_id_collisions > 0 {
            out.push_str(&format!(
                "  {} {} left out: another grant had the same id (see the warning)\n",
                self.grant_id_collisions,
                if self.grant_id_collisions == 1 { "grant was" } else { "grants were" }
            ));
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

/// The syncer's noun for `n` resources of type `id`.
/// `  <n> <noun> <verb> <rest>` and a newline: one line of the console summary about `n` objects of a type.
fn counted(n: u64, resource_type: &str, verb: &str, rest: &str) -> String {
    format!("  {n} {} {verb} {rest}\n", noun(resource_type, n))
}

fn noun(id: &str, n: u64) -> &str {
    match connector::syncer(id) {
        Some(s) if n == 1 => s.nouns().0,
        Some(s) => s.nouns().1,
        None => id,
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> SyncSummary {
        let kinds = |pairs: &[(&'static str, u64)]| pairs.iter().copied().collect::<BTreeMap<_, _>>();
        SyncSummary {
            output: PathBuf::from("sync.c1z"),
            sync_id: "s1".into(),
            previous_sync_id: None,
            file_bytes: 10,
            resource_types: vec![
                TypeSummary {
                    resource_type: "user",
                    resources: 3,
                    by_kind: kinds(&[("verified", 3)]),
                    duplicates: 1,
                    conflicting: 1,
                    unknown_role: 2,
                    malformed: 0,
                },
                TypeSummary { resource_type: "role", resources: 1, by_kind: kinds(&[]), ..Default::default() },
            ],
            skipped: vec![SkippedType { resource_type: "api_key", reason: "Torq answered HTTP 403".into() }],
            entitlements: 1,
            grants: 1,
            grant_id_collisions: 2,
            requests: ClientStats::default(),
            duration: Duration::from_millis(20),
            peak_rss_bytes: None,
        }
    }

    #[test]
    fn console_summary_names_types_skips_and_singulars() {
        let text = summary().to_console();
        assert!(text.starts_with("Synced 3 users (3 verified), 1 role, 1 grants in 0.02 s\n"), "{text}");
        assert!(text.contains("\n  API keys not synced: Torq answered HTTP 403\n"), "{text}");
        assert!(text.contains("\n  2 users have a role that Torq did not list"), "{text}");
        assert!(text.contains("\n  1 user was listed twice and written once\n"), "{text}");
        assert!(
            text.contains("\n  1 user was listed twice with different data; the first record read was kept"),
            "{text}"
        );
        assert!(text.contains("\n  2 grants were left out: another grant had the same id"), "{text}");
        assert_eq!(summary().resource_counts(), "user=3 role=1");
        assert_eq!(summary().count("api_key"), 0, "a skipped type counts nothing");
    }
}
