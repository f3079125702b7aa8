//! Torq objects -> the Baton model: resource types, resources, entitlements and grants as `c1.connector.v2`
//! protobuf messages, with the same IDs the public Go connector produces (so an existing ConductorOne app sees no
//! churn), plus the connector's metadata and capabilities.
//!
//! Pure functions only: no I/O, no HTTP, no storage. One file per resource type.

pub mod account_creation;
pub mod capabilities;
pub mod metadata;
pub mod resource_types;
pub mod role;
pub mod user;

use chrono::{DateTime, Utc};
use prost::Message;
use prost_types::{value::Kind, Any, Struct, Timestamp, Value};

pub use resource_types::{role_resource_type, user_resource_type, ROLE_TYPE_ID, USER_TYPE_ID};

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
