//! Torq -> the Baton model: one [`ResourceSyncer`] per resource type (`user.rs`, `role.rs`, `api_key.rs`), each
//! listing its resources, entitlements and grants from the Torq client as `c1.connector.v2` protobuf messages,
//! with the same IDs the public Go connector produces (so an existing ConductorOne app sees no churn); plus the
//! connector's metadata and capabilities.
//!
//! [`SYNCERS`] is the one list of resource types: the sync driver, the capabilities JSON and the service-mode
//! `sync_resource_type_ids` filter all come from it. Adding a resource type = one file with a [`ResourceSyncer`]
//! + one line in [`SYNCERS`].
//!
//! What this module must not do: write files or know about the c1z (rows go to a [`syncer::RowSink`]), or talk
//! HTTP itself (it calls `crate::torq`).

pub(crate) mod account_creation;
pub(crate) mod api_key;
pub(crate) mod capabilities;
pub(crate) mod metadata;
pub mod role;
pub mod syncer;
pub mod user;

use chrono::{DateTime, Utc};
use prost::Message;
use prost_types::{value::Kind, Any, Struct, Timestamp, Value};

pub(crate) use syncer::{ResourceSyncer, Synced};

/// Every resource type this connector syncs, in the order the summary lists them.
pub(crate) const SYNCERS: &[&dyn ResourceSyncer] = &[&user::UserSyncer, &role::RoleSyncer, &api_key::ApiKeySyncer];

/// Every resource type, sorted by id (as the capabilities list them).
pub fn resource_types() -> Vec<crate::proto::connector_v2::ResourceType> {
    let mut types: Vec<_> = SYNCERS.iter().map(|s| s.resource_type()).collect();
    types.sort_by(|a, b| a.id.cmp(&b.id));
    types
}

/// The syncer of resource type `id`.
pub(crate) fn syncer(id: &str) -> Option<&'static dyn ResourceSyncer> {
    SYNCERS.iter().copied().find(|s| s.type_id() == id)
}

/// The syncers a request asks for: all of them for an empty list, else those named (in [`SYNCERS`] order).
/// Ids this connector does not have are returned separately.
pub(crate) fn select(ids: &[String]) -> (Vec<&'static dyn ResourceSyncer>, Vec<String>) {
    if ids.is_empty() {
        return (SYNCERS.to_vec(), Vec::new());
    }
    let chosen = SYNCERS.iter().copied().filter(|s| ids.iter().any(|id| id == s.type_id())).collect();
    let unknown = ids.iter().filter(|id| syncer(id).is_none()).cloned().collect();
    (chosen, unknown)
}

/// The known resource type ids, comma-separated (for messages).
pub(crate) fn type_ids() -> String {
    SYNCERS.iter().map(|s| s.type_id()).collect::<Vec<_>>().join(", ")
}

/// Prefix of every annotation type URL, as Go's `anypb.New` writes it.
const TYPE_URL_PREFIX: &str = "type.googleapis.com/c1.connector.v2.";

/// Packs `msg` (of protobuf type `c1.connector.v2.<name>`) into a `google.protobuf.Any`.
pub(crate) fn pack<M: Message>(name: &str, msg: &M) -> Any {
    Any { type_url: format!("{TYPE_URL_PREFIX}{name}"), value: msg.encode_to_vec() }
}

/// A `google.protobuf.Struct` from key/value pairs (keys are sorted by the BTreeMap, as Go's deterministic
/// marshalling sorts them).
pub(crate) fn profile<I: IntoIterator<Item = (&'static str, Value)>>(entries: I) -> Struct {
    Struct { fields: entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect() }
}

pub(crate) fn text(s: &str) -> Value {
    Value { kind: Some(Kind::StringValue(s.to_string())) }
}

pub(crate) fn flag(b: bool) -> Value {
    Value { kind: Some(Kind::BoolValue(b)) }
}

pub(crate) fn timestamp(t: &DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_ids_are_unique_and_match_their_resource_types() {
        let mut ids: Vec<&str> = SYNCERS.iter().map(|s| s.type_id()).collect();
        for s in SYNCERS {
            assert_eq!(s.resource_type().id, s.type_id());
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), SYNCERS.len());
    }

    /// `crate::provision` drives account creation through `connector/`'s account managers; the reverse import
    /// would be a circle (the request, outcome and error types live in `account_creation`).
    #[test]
    fn connector_never_imports_the_provisioning_flow() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/connector");
        // Built here so that this line does not match itself.
        let flow = ["crate", "provision"].join("::");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.lines().filter(|l| !l.trim_start().starts_with("//"));
            for line in code {
                assert!(!line.contains(&flow), "{}: {line}", path.display());
            }
        }
    }

    #[test]
    fn selection_by_id() {
        let (all, unknown) = select(&[]);
        assert_eq!((all.len(), unknown.len()), (SYNCERS.len(), 0));
        let (some, unknown) = select(&["api_key".to_string(), "group".to_string(), "user".to_string()]);
        assert_eq!(some.iter().map(|s| s.type_id()).collect::<Vec<_>>(), ["user", "api_key"]);
        assert_eq!(unknown, ["group"]);
    }
}
