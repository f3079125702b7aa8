//! The connector's capabilities and their JSON form (`baton-torq capabilities`, `baton_capabilities.json`):
//! protojson of `c1.connector.v2.ConnectorCapabilities` wrapped in an Any (`@type`), indented by 2 spaces,
//! resource types sorted by id, as the current Baton SDK prints it.

use serde_json::{json, Map, Value};

use super::SYNCERS;
use crate::proto::connector_v2::{
    resource_type::Trait, Capability, CapabilityDetailCredentialOption, ConnectorCapabilities, CredentialDetails,
    ResourceType, ResourceTypeCapability,
};

/// Each resource type of [`SYNCERS`] with what its syncer offers (a syncer with an account manager adds account
/// provisioning); the connector as a whole offers the union, and the credential options of account creation.
pub(crate) fn connector_capabilities() -> ConnectorCapabilities {
    let mut per_type: Vec<ResourceTypeCapability> = SYNCERS
        .iter()
        .map(|s| {
            let mut capabilities: Vec<i32> = s.capabilities().into_iter().map(|c| c as i32).collect();
            if s.account_manager().is_some() {
                capabilities.push(Capability::AccountProvisioning as i32);
            }
            ResourceTypeCapability { resource_type: Some(s.resource_type()), capabilities }
        })
        .collect();
    per_type.sort_by(|a, b| {
        let id = |c: &ResourceTypeCapability| c.resource_type.as_ref().map(|t| t.id.clone()).unwrap_or_default();
        id(a).cmp(&id(b))
    });
    let mut all: Vec<i32> = per_type.iter().flat_map(|c| c.capabilities.iter().copied()).collect();
    all.sort_unstable();
    all.dedup();
    // As the SDK: the details of the first account manager (there is one, for `user`).
    let credential_details = SYNCERS
        .iter()
        .find_map(|s| s.account_manager())
        .map(|m| CredentialDetails { capability_account_provisioning: Some(m.credential_details()) });
    ConnectorCapabilities { resource_type_capabilities: per_type, connector_capabilities: all, credential_details }
}

/// The JSON printed by `baton-torq capabilities` (ends with a newline).
pub(crate) fn capabilities_json() -> String {
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
    let mut doc = json!({
        "@type": "type.googleapis.com/c1.connector.v2.ConnectorCapabilities",
        "resourceTypeCapabilities": resource_types,
        "connectorCapabilities": capability_names(&caps.connector_capabilities),
    });
    if let Some(provisioning) =
        caps.credential_details.as_ref().and_then(|d| d.capability_account_provisioning.as_ref())
    {
        doc["credentialDetails"] = json!({
            "capabilityAccountProvisioning": {
                "supportedCredentialOptions": provisioning.supported_credential_options.iter()
                    .map(|o| credential_option_name(*o)).collect::<Vec<_>>(),
                "preferredCredentialOption": credential_option_name(provisioning.preferred_credential_option),
            }
        });
    }
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
    out.push('\n');
    out
}

fn capability_names(caps: &[i32]) -> Value {
    caps.iter()
        .map(|c| Value::from(Capability::try_from(*c).map(|c| c.as_str_name()).unwrap_or("CAPABILITY_UNSPECIFIED")))
        .collect()
}

fn credential_option_name(option: i32) -> Value {
    Value::from(
        CapabilityDetailCredentialOption::try_from(option)
            .map(|o| o.as_str_name())
            .unwrap_or("CAPABILITY_DETAIL_CREDENTIAL_OPTION_UNSPECIFIED"),
    )
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
        assert_eq!(rts[0]["capabilities"], json!(["CAPABILITY_SYNC"]), "api_key");
        assert_eq!(rts[1]["capabilities"], json!(["CAPABILITY_SYNC"]), "role");
        assert_eq!(rts[2]["capabilities"], json!(["CAPABILITY_SYNC", "CAPABILITY_ACCOUNT_PROVISIONING"]), "user");
        assert_eq!(v["connectorCapabilities"], json!(["CAPABILITY_SYNC", "CAPABILITY_ACCOUNT_PROVISIONING"]));
        let provisioning = &v["credentialDetails"]["capabilityAccountProvisioning"];
        assert_eq!(
            provisioning["supportedCredentialOptions"],
            json!(["CAPABILITY_DETAIL_CREDENTIAL_OPTION_NO_PASSWORD"])
        );
        assert_eq!(provisioning["preferredCredentialOption"], "CAPABILITY_DETAIL_CREDENTIAL_OPTION_NO_PASSWORD");
    }
}
