//! The connector's capabilities and their JSON form (`baton-torq capabilities`, `baton_capabilities.json`):
//! protojson of `c1.connector.v2.ConnectorCapabilities` wrapped in an Any (`@type`), indented by 2 spaces,
//! resource types sorted by id, as the current Baton SDK prints it.

use serde_json::{json, Map, Value};

use super::SYNCERS;
use crate::proto::connector_v2::{
    resource_type::Trait, Capability, ConnectorCapabilities, ResourceType, ResourceTypeCapability,
};

/// Each resource type of [`SYNCERS`] with what its syncer offers; the connector as a whole offers the union.
pub fn connector_capabilities() -> ConnectorCapabilities {
    let mut per_type: Vec<ResourceTypeCapability> = SYNCERS
        .iter()
        .map(|s| ResourceTypeCapability {
            resource_type: Some(s.resource_type()),
            capabilities: s.capabilities().into_iter().map(|c| c as i32).collect(),
        })
        .collect();
    per_type.sort_by(|a, b| {
        let id = |c: &ResourceTypeCapability| c.resource_type.as_ref().map(|t| t.id.clone()).unwrap_or_default();
        id(a).cmp(&id(b))
    });
    let mut all: Vec<i32> = per_type.iter().flat_map(|c| c.capabilities.iter().copied()).collect();
    all.sort_unstable();
    all.dedup();
    ConnectorCapabilities { resource_type_capabilities: per_type, connector_capabilities: all }
}

/// The JSON printed by `baton-torq capabilities` (ends with a newline).
pub fn capabilities_json() -> String {
    let caps = connector_capabilities();
    let resource_types: Vec<Value> = caps
        .resource_type_capabilities
        .iter()
        .map(|c| {
            let mut entry = Map::new();
            if let Some(rt) = &c.resource_type {
                entry.insert("resourceType".into(), resource_type_json(rt));
            }
            entry.insert("capabilities".into(), capability_names(&c.capabilities));
            entry.insert("permissions".into(), json!({}));
            Value::Object(entry)
        })
        .collect();
    let doc = json!({
        "@type": "type.googleapis.com/c1.connector.v2.ConnectorCapabilities",
        "resourceTypeCapabilities": resource_types,
        "connectorCapabilities": capability_names(&caps.connector_capabilities),
    });
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
    out.push('\n');
    out
}

fn capability_names(caps: &[i32]) -> Value {
    caps.iter()
        .map(|c| Value::from(Capability::try_from(*c).map(|c| c.as_str_name()).unwrap_or("CAPABILITY_UNSPECIFIED")))
        .collect()
}

/// protojson of a ResourceType: empty fields omitted, enum names, annotations as `{"@type": …}` (ours are all
/// field-less messages).
fn resource_type_json(rt: &ResourceType) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), rt.id.clone().into());
    m.insert("displayName".into(), rt.display_name.clone().into());
    let traits: Vec<Value> = rt
        .traits
        .iter()
        .map(|t| Value::from(Trait::try_from(*t).map(|t| t.as_str_name()).unwrap_or("TRAIT_UNSPECIFIED")))
        .collect();
    m.insert("traits".into(), traits.into());
    if !rt.annotations.is_empty() {
        let anns: Vec<Value> = rt.annotations.iter().map(|a| json!({ "@type": a.type_url })).collect();
        m.insert("annotations".into(), anns.into());
    }
    if !rt.description.is_empty() {
        m.insert("description".into(), rt.description.clone().into());
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_resource_type_sorted_with_sync() {
        let v: Value = serde_json::from_str(&capabilities_json()).unwrap();
        let rts = v["resourceTypeCapabilities"].as_array().unwrap();
        let ids: Vec<&str> = rts.iter().map(|r| r["resourceType"]["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["api_key", "role", "user"]);
        for i in [0, 2] {
            assert_eq!(
                rts[i]["resourceType"]["annotations"][0]["@type"],
                "type.googleapis.com/c1.connector.v2.SkipEntitlementsAndGrants"
            );
            assert_eq!(rts[i]["resourceType"]["traits"][0], "TRAIT_USER");
        }
        assert_eq!(rts[0]["resourceType"]["displayName"], "API Key");
        assert_eq!(rts[1]["capabilities"][0], "CAPABILITY_SYNC");
        assert_eq!(v["connectorCapabilities"][0], "CAPABILITY_SYNC");
    }
}
