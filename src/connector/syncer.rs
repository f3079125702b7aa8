//! The extension point: one [`ResourceSyncer`] per Baton resource type (the Baton SDK's `ResourceSyncer` shape).
//!
//! A syncer knows its resource type and lists its resources (with their entitlements and the grants they hold)
//! from the Torq client into a [`RowSink`]. The sync driver (`crate::sync`) runs every syncer of
//! [`super::SYNCERS`] concurrently and owns the writer at the other end of the sink; it writes a resource type
//! only when its syncer finished with [`Synced::Done`], so a type that could not be read (say, API keys without
//! permission) is absent from the file instead of claiming "none".
//!
//! Provisioning hangs off the same implementations as optional traits: a syncer that can, say, create accounts
//! implements that trait too and hands itself out through an accessor on [`ResourceSyncer`] (default `None`), and
//! adds the matching [`Capability`] in [`ResourceSyncer::capabilities`]. Nothing else changes.
//!
//! What this module must not do: write to the c1z itself, or name a concrete resource type.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::account_creation::{AccountOutcome, AccountRequest, ProvisionError};
use crate::proto::connector_v2::{
    Capability, CredentialDetailsAccountProvisioning, Entitlement, Grant, Resource, ResourceType,
};
use crate::torq::{SinkClosed, TorqClient, TorqError};

/// Rows per batch sent to the writer: small batches keep fewer mapped rows in memory between the decoders and
/// the writer, at no cost in speed (docs/performance.md).
pub(crate) const BATCH_ROWS: usize = 256;

/// How a syncer finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Synced {
    /// Everything was listed: the resource type is written.
    Done,
    /// Torq would not hand the list out (e.g. HTTP 403). Nothing was sent to the sink, the resource type is left
    /// out of the file and the summary names it with `reason` (one line: what is missing and how to fix it).
    Skipped { reason: String },
}

/// One resource with what belongs to it.
#[derive(Clone, Debug)]
pub struct Row {
    pub resource: Resource,
    /// Entitlements offered by this resource (a role's `member`).
    pub entitlements: Vec<Entitlement>,
    /// Grants this resource holds as principal (a user's role membership). A grant whose entitlement or principal
    /// does not exist at the end of the sync is removed with a warning.
    pub grants: Vec<Grant>,
    /// Summary bucket, e.g. a user's status ("verified") or an API key's type ("service"); "" for none.
    pub(crate) kind: &'static str,
}

/// What flows from the syncers to the writer.
#[derive(Debug)]
pub(crate) enum Batch {
    ResourceType(ResourceType),
    Rows {
        resource_type: &'static str,
        rows: Vec<Row>,
    },
    /// How many rows of the type were sent again because a page broke off and was read from its start: the writer
    /// found them already written, which does not make them duplicates in Torq.
    Resent {
        resource_type: &'static str,
        rows: u64,
    },
}

/// The sending end of the writer's channel, for one syncer.
#[derive(Clone)]
pub(crate) struct RowSink {
    tx: mpsc::Sender<Batch>,
    resource_type: &'static str,
    stop: CancellationToken,
    fetched: Arc<AtomicU64>,
}

impl RowSink {
    /// A sink for rows of `resource_type`; `stop` is cancelled when the sync is stopped (the syncer should stop
    /// fetching); `fetched` counts records received from Torq for the progress display.
    pub(crate) fn new(
        tx: mpsc::Sender<Batch>,
        resource_type: &'static str,
        stop: CancellationToken,
        fetched: Arc<AtomicU64>,
    ) -> RowSink {
        RowSink { tx, resource_type, stop, fetched }
    }

    /// Sends rows to the writer (waits while the writer is behind).
    pub(crate) async fn send(&self, rows: Vec<Row>) -> Result<(), TorqError> {
        if rows.is_empty() {
            return Ok(());
        }
        let batch = Batch::Rows { resource_type: self.resource_type, rows };
        self.tx.send(batch).await.map_err(|_| TorqError::SinkClosed)
    }

    /// Tells the writer that `rows` rows were sent again after a page broke off (see [`Batch::Resent`]).
    pub(crate) async fn resent(&self, rows: u64) -> Result<(), TorqError> {
        if rows == 0 {
            return Ok(());
        }
        let batch = Batch::Resent { resource_type: self.resource_type, rows };
        self.tx.send(batch).await.map_err(|_| TorqError::SinkClosed)
    }

    /// [`RowSink::send`] from a blocking thread (a streaming decoder).
    pub(crate) fn blocking_send(&self, rows: Vec<Row>) -> Result<(), SinkClosed> {
        if self.stop.is_cancelled() {
            return Err(SinkClosed);
        }
        if rows.is_empty() {
            return Ok(());
        }
        let batch = Batch::Rows { resource_type: self.resource_type, rows };
        self.tx.blocking_send(batch).map_err(|_| SinkClosed)
    }

    /// The sync's stop token, for reads that must end when the sync is stopped (a stalled streamed body).
    pub(crate) fn stop_token(&self) -> &CancellationToken {
        &self.stop
    }

    /// True once the sync is being stopped: a syncer stops fetching.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Counts `n` records received from Torq (progress display).
    pub(crate) fn fetched(&self, n: u64) {
        self.fetched.fetch_add(n, Ordering::Relaxed);
    }

    /// A buffer that collects rows from a streaming decoder and sends them in batches of [`BATCH_ROWS`].
    pub(crate) fn buffer(&self) -> RowBuffer {
        RowBuffer { sink: self.clone(), rows: Arc::new(Mutex::new(Vec::with_capacity(BATCH_ROWS))) }
    }
}

/// Rows collected on a blocking thread, sent in batches; cheap to clone (shared), so the decoder's callback can
/// own one copy while the syncer flushes the rest with another.
#[derive(Clone)]
pub(crate) struct RowBuffer {
    sink: RowSink,
    rows: Arc<Mutex<Vec<Row>>>,
}

impl RowBuffer {
    /// Adds a row (from a blocking thread), sending a full batch to the writer.
    pub(crate) fn push_blocking(&self, row: Row) -> Result<(), SinkClosed> {
        let mut rows = self.rows.lock().map_err(|_| SinkClosed)?;
        rows.push(row);
        if rows.len() >= BATCH_ROWS {
            let full = std::mem::replace(&mut *rows, Vec::with_capacity(BATCH_ROWS));
            drop(rows);
            self.sink.blocking_send(full)?;
        }
        Ok(())
    }

    /// Sends what is left.
    pub(crate) async fn flush(&self) -> Result<(), TorqError> {
        let rest = std::mem::take(&mut *self.rows.lock().map_err(|_| TorqError::SinkClosed)?);
        self.sink.send(rest).await
    }
}

/// Longest resource id, grant id or entitlement id kept: Torq's ids are UUIDs or short names; anything this long
/// is a hostile or broken answer, and storing it would only fill the disk.
pub(crate) const MAX_ID_BYTES: usize = 4 << 10;
/// Longest display name kept (a role or API key name), unless the type says less
/// ([`ResourceSyncer::longest_display_name`]).
pub(crate) const MAX_NAME_BYTES: usize = 4 << 10;
/// Largest encoded resource kept (a real Torq user is a few hundred bytes).
pub(crate) const MAX_RESOURCE_BYTES: usize = 64 << 10;

/// Why `row` cannot be a real Torq record of `syncer`'s type - a value longer than any Torq value - or `None`.
/// Such a record is malformed: it is left out of the file (with its grants) and counted.
pub(crate) fn oversize(syncer: &dyn ResourceSyncer, row: &Row) -> Option<String> {
    use prost::Message as _;
    let id_len = row.resource.id.as_ref().map_or(0, |id| id.resource.len() + id.resource_type.len());
    if id_len > MAX_ID_BYTES {
        return Some(format!("its id is {id_len} bytes long"));
    }
    let (what, limit) = syncer.longest_display_name();
    let name_len = row.resource.display_name.len();
    if name_len > limit {
        return Some(format!("its {what} is {name_len} bytes long"));
    }
    let longest_other_id = row.grants.iter().map(|g| g.id.len()).chain(row.entitlements.iter().map(|e| e.id.len()));
    if let Some(n) = longest_other_id.filter(|n| *n > MAX_ID_BYTES * 2).max() {
        return Some(format!("one of its grant or entitlement ids is {n} bytes long"));
    }
    let encoded = row.resource.encoded_len();
    (encoded > MAX_RESOURCE_BYTES).then(|| format!("its record is {encoded} bytes long"))
}

/// One Baton resource type: what it is, and how its rows are listed from Torq.
pub(crate) trait ResourceSyncer: Send + Sync {
    /// The resource type id (`user`, `role`, …), the first part of every resource's external id.
    fn type_id(&self) -> &'static str;

    /// The resource type as written to the file and shown in the capabilities.
    fn resource_type(&self) -> ResourceType;

    /// Singular and plural noun for the summary ("API key", "API keys").
    fn nouns(&self) -> (&'static str, &'static str);

    /// What this type's display name is, and the most bytes a real one has (see [`oversize`]).
    fn longest_display_name(&self) -> (&'static str, usize) {
        ("name", MAX_NAME_BYTES)
    }

    /// What ConductorOne may ask of this type. Sync only, unless a provisioning trait is implemented too.
    fn capabilities(&self) -> Vec<Capability> {
        vec![Capability::Sync]
    }

    /// Account provisioning for this type, when it offers it (default: none). The capabilities then list
    /// `CAPABILITY_ACCOUNT_PROVISIONING` for the type, and create_account requests for it are handed here.
    fn account_manager(&self) -> Option<&dyn AccountManager> {
        None
    }

    /// Lists every resource of this type, with its entitlements and the grants it holds, into `sink`. Returns
    /// [`Synced::Skipped`] (having sent nothing) when Torq does not hand the list out and the sync can go on
    /// without it; any other failure is an error that fails the sync.
    fn sync<'a>(&'a self, client: &'a TorqClient, sink: RowSink) -> BoxFuture<'a, Result<Synced, TorqError>>;
}

/// Account provisioning (the SDK's `AccountManager`): ConductorOne can create accounts of this resource type.
/// Implemented next to the type's [`ResourceSyncer`], which hands it out through
/// [`ResourceSyncer::account_manager`]. `crate::provision` turns flags or a task into the checked request and calls
/// it; the `user` type's invite is `super::account_creation::invite`.
pub(crate) trait AccountManager: Send + Sync {
    /// The credential options account creation offers (the SDK's `CreateAccountCapabilityDetails`).
    fn credential_details(&self) -> CredentialDetailsAccountProvisioning;

    /// Creates the account `request` describes, or finds it in place.
    fn create_account<'a>(
        &'a self,
        client: &'a TorqClient,
        request: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountOutcome, ProvisionError>>;
}
