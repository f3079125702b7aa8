//! `role`: Torq roles -> `role` resources with a RoleTrait, and one `member` entitlement per role, grantable to
//! users and API keys. IDs, display names and entitlement texts match the Go connector.
//!
//! Roles come from the RBAC list `GET /roles` (with the custom flag); when the key may not read it (403/404) the
//! legacy `GET /users/roles` list is used instead, with one warning. SSO claim mappings are read alongside: each
//! role's profile lists the mappings that assign it (403/404 there means no SSO mappings; one debug line).

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use prost_types::{value::Kind, ListValue, Value};

use super::syncer::{ResourceSyncer, Row, RowSink, Synced};
use super::{api_key, flag, pack, profile, text, user};
use crate::proto::connector_v2::{
    entitlement::PurposeValue, resource_type::Trait, Entitlement, Grant, Resource, ResourceId, ResourceType, RoleTrait,
};
use crate::torq::{ClaimMappingRecord, RoleRecord, TorqClient, TorqError};

pub(crate) const ROLE_TYPE_ID: &str = "role";

/// Slug of the membership entitlement.
pub(crate) const MEMBER_SLUG: &str = "member";

/// `role`: "Role", TRAIT_ROLE (as the Go connector).
pub(crate) fn resource_type() -> ResourceType {
    ResourceType {
        id: ROLE_TYPE_ID.into(),
        display_name: "Role".into(),
        traits: vec![Trait::Role as i32],
        ..Default::default()
    }
}

/// The `role` syncer.
pub(crate) struct RoleSyncer;

impl ResourceSyncer for RoleSyncer {
    fn type_id(&self) -> &'static str {
        ROLE_TYPE_ID
    }

    fn resource_type(&self) -> ResourceType {
        resource_type()
    }

    fn nouns(&self) -> (&'static str, &'static str) {
        ("role", "roles")
    }

    fn sync<'a>(&'a self, client: &'a TorqClient, sink: RowSink) -> BoxFuture<'a, Result<Synced, TorqError>> {
        Box::pin(async move {
            let (roles, mappings) = tokio::try_join!(list_roles(client), list_claim_mappings(client))?;
            sink.fetched(roles.len() as u64);
            let rows = role_rows(&roles, mappings.as_deref());
            tracing::debug!(roles = rows.len(), "roles fetched");
            sink.send(rows).await?;
            Ok(Synced::Done)
        })
    }
}

/// The RBAC role list, or the legacy one when the key may not read the RBAC API.
async fn list_roles(client: &TorqClient) -> Result<Vec<RoleRecord>, TorqError> {
    match client.list_rbac_roles().await {
        Ok(roles) => Ok(roles),
        Err(e) if e.is_forbidden_or_missing() => {
            tracing::warn!(
                status = e.http_status().unwrap_or_default(),
                "cannot read Torq's RBAC role list (GET /roles); using the legacy list GET /users/roles, whose roles \
                 do not say whether they are custom. To get that flag, give the API key's role read access to roles"
            );
            client.list_roles().await
        }
        Err(e) => Err(e),
    }
}

/// The SSO claim mappings; `None` when Torq does not hand them out (no SSO, or no permission).
async fn list_claim_mappings(client: &TorqClient) -> Result<Option<Vec<ClaimMappingRecord>>, TorqError> {
    match client.list_claim_mappings().await {
        Ok(mappings) => Ok(Some(mappings)),
        Err(e) if e.is_forbidden_or_missing() => {
            tracing::debug!(
                status = e.http_status().unwrap_or_default(),
                "no SSO claim mappings (GET /sso/claim_mappings answered 403/404: SSO is not set up, or the key may \
                 not read it); role profiles list none"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Rows for every role with an id, each with its `member` entitlement; `mappings` (when known) are attached to
/// the roles they assign, in rank order.
pub fn role_rows(roles: &[RoleRecord], mappings: Option<&[ClaimMappingRecord]>) -> Vec<Row> {
    let mut by_role: BTreeMap<&str, Vec<&ClaimMappingRecord>> = BTreeMap::new();
    for m in mappings.unwrap_or_default() {
        by_role.entry(m.role_id.as_str()).or_default().push(m);
    }
    for list in by_role.values_mut() {
        // Rank order, as Torq applies them; mappings without a rank last.
        list.sort_by(|a, b| {
            (a.rank.is_none(), a.rank, &a.claim_name, &a.claim_value).cmp(&(
                b.rank.is_none(),
                b.rank,
                &b.claim_name,
                &b.claim_value,
            ))
        });
    }
    let mut rows = Vec::with_capacity(roles.len());
    for r in roles {
        if r.id.is_empty() {
            tracing::warn!(name = %r.name, "Torq listed a role without an id; skipping it");
            continue;
        }
        let assigned = mappings.map(|_| by_role.remove(r.id.as_str()).unwrap_or_default());
        let resource = role_resource(r, assigned.as_deref());
        let entitlement = member_entitlement(r, &resource);
        let kind = match r.is_custom {
            Some(true) => "custom",
            Some(false) => "built-in",
            None => "",
        };
        rows.push(Row { resource, entitlements: vec![entitlement], grants: Vec::new(), kind });
    }
    let orphans: usize = by_role.values().map(Vec::len).sum();
    if orphans > 0 {
        tracing::debug!(mappings = orphans, "SSO claim mappings name roles that are not in the role list; ignored");
    }
    rows
}

/// `role:<role_id>:member`, as the Go SDK's `NewEntitlementID` builds it.
pub(crate) fn member_entitlement_id(role_id: &str) -> String {
    format!("{ROLE_TYPE_ID}:{role_id}:{MEMBER_SLUG}")
}

/// The role's resource id.
pub(crate) fn role_id(role_id: &str) -> ResourceId {
    ResourceId { resource_type: ROLE_TYPE_ID.into(), resource: role_id.into(), ..Default::default() }
}

/// The grant of membership in role `role_id` to `principal`, `role:<role_id>:member:<type>:<id>` as the Go SDK
/// builds grant ids; `None` when either id is empty. The entitlement and the principal are carried as id-only
/// stubs: readers join on ids, and a million grants stay small.
pub(crate) fn membership_grant(role_id_text: &str, principal: &ResourceId) -> Option<Grant> {
    if role_id_text.is_empty() || principal.resource.is_empty() {
        return None;
    }
    let entitlement_id = member_entitlement_id(role_id_text);
    let id = format!("{entitlement_id}:{}:{}", principal.resource_type, principal.resource);
    Some(Grant {
        entitlement: Some(Entitlement {
            id: entitlement_id,
            resource: Some(Resource { id: Some(role_id(role_id_text)), ..Default::default() }),
            ..Default::default()
        }),
        principal: Some(Resource { id: Some(principal.clone()), ..Default::default() }),
        id,
        ..Default::default()
    })
}

fn display_name(role: &RoleRecord) -> &str {
    if role.name.is_empty() {
        &role.id
    } else {
        &role.name
    }
}

/// The resource description: Torq's description, then the scopes the role grants, on one line.
pub(crate) fn description(role: &RoleRecord) -> String {
    let own = role.description.trim_end();
    if role.scope_names.is_empty() {
        return role.description.clone();
    }
    let scopes = format!("Scopes: {}", role.scope_names.join(", "));
    if own.is_empty() {
        scopes
    } else if own.ends_with('.') {
        format!("{own} {scopes}")
    } else {
        format!("{own}. {scopes}")
    }
}

/// The `role` resource: display name = role name, description with the scopes, RoleTrait profile {role_id,
/// role_name, role_description, scope_names, is_custom (when Torq said), claim_mappings (when known: list of
/// {claim_name, claim_value, rank})}.
pub fn role_resource(role: &RoleRecord, mappings: Option<&[&ClaimMappingRecord]>) -> Resource {
    let mut fields = vec![
        ("role_id", text(&role.id)),
        ("role_name", text(&role.name)),
        ("role_description", text(&role.description)),
        ("scope_names", list(role.scope_names.iter().map(|s| text(s)))),
    ];
    if let Some(custom) = role.is_custom {
        fields.push(("is_custom", flag(custom)));
    }
    if let Some(mappings) = mappings {
        fields.push(("claim_mappings", list(mappings.iter().map(|m| claim_mapping(m)))));
    }
    Resource {
        id: Some(role_id(&role.id)),
        display_name: display_name(role).to_string(),
        description: description(role),
        annotations: vec![pack("RoleTrait", &RoleTrait { profile: Some(profile(fields)) })],
        ..Default::default()
    }
}

fn list<I: IntoIterator<Item = Value>>(values: I) -> Value {
    Value { kind: Some(Kind::ListValue(ListValue { values: values.into_iter().collect() })) }
}

/// `{claim_name, claim_value, rank}` (rank left out when Torq sent none or not a number).
fn claim_mapping(m: &ClaimMappingRecord) -> Value {
    let mut fields = vec![("claim_name", text(&m.claim_name)), ("claim_value", text(&m.claim_value))];
    if let Some(rank) = m.rank {
        fields.push(("rank", Value { kind: Some(Kind::NumberValue(rank as f64)) }));
    }
    Value { kind: Some(Kind::StructValue(profile(fields))) }
}

/// The role's `member` entitlement (purpose ASSIGNMENT, grantable to users and API keys).
pub fn member_entitlement(role: &RoleRecord, resource: &Resource) -> Entitlement {
    let name = display_name(role);
    Entitlement {
        resource: Some(resource.clone()),
        id: member_entitlement_id(&role.id),
        display_name: format!("{name} Role member"),
        description: format!("Member of {name} Torq role"),
        grantable_to: vec![user::resource_type(), api_key::resource_type()],
        purpose: PurposeValue::Assignment as i32,
        slug: MEMBER_SLUG.into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn role(id: &str, name: &str) -> RoleRecord {
        RoleRecord { id: id.into(), name: name.into(), ..Default::default() }
    }

    fn mapping(role_id: &str, claim: &str, value: &str, rank: Option<i64>) -> ClaimMappingRecord {
        ClaimMappingRecord {
            id: format!("m-{value}"),
            claim_name: claim.into(),
            claim_value: value.into(),
            role_id: role_id.into(),
            rank,
        }
    }

    fn trait_profile(r: &Resource) -> prost_types::Struct {
        RoleTrait::decode(r.annotations[0].value.as_slice()).unwrap().profile.unwrap()
    }

    #[test]
    fn ids_match_the_go_connector() {
        let role = role("r1", "SOC Tier 1");
        let res = role_resource(&role, None);
        let ent = member_entitlement(&role, &res);
        assert_eq!(ent.id, "role:r1:member");
        assert_eq!(ent.display_name, "SOC Tier 1 Role member");
        assert_eq!(ent.description, "Member of SOC Tier 1 Torq role");
        let grantable: Vec<&str> = ent.grantable_to.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(grantable, ["user", "api_key"]);
    }

    #[test]
    fn membership_grant_ids() {
        let g = membership_grant("r1", &user::user_id("u1")).unwrap();
        assert_eq!(g.id, "role:r1:member:user:u1");
        assert_eq!(g.entitlement.unwrap().resource.unwrap().id.unwrap(), role_id("r1"));
        assert!(membership_grant("", &user::user_id("u1")).is_none());
        assert!(membership_grant("r1", &user::user_id("")).is_none());
    }

    #[test]
    fn description_names_the_scopes_on_one_line() {
        let mut r = role("r1", "Custom");
        r.description = "Kept as is ".into();
        assert_eq!(description(&r), "Kept as is ", "no scopes: Torq's text unchanged");
        r.description.clear();
        r.scope_names = vec!["user.read".into(), "playbook.read".into()];
        assert_eq!(description(&r), "Scopes: user.read, playbook.read");
        r.description = "Reads things ".into();
        assert_eq!(description(&r), "Reads things. Scopes: user.read, playbook.read");
        r.description = "Reads things.".into();
        assert_eq!(description(&r), "Reads things. Scopes: user.read, playbook.read");
    }

    #[test]
    fn profile_has_scopes_custom_flag_and_mappings_in_rank_order() {
        let mut owner = role("r-owner", "Owner");
        owner.scope_names = vec!["user.read".into(), "user.write".into()];
        owner.is_custom = Some(false);
        let mut legacy = role("r-legacy", "Legacy");
        legacy.is_custom = None;
        let mappings = vec![
            mapping("r-owner", "groups", "admins", Some(2)),
            mapping("r-owner", "groups", "root", Some(1)),
            mapping("r-owner", "dept", "it", None),
            mapping("r-gone", "groups", "x", Some(3)),
        ];
        let rows = role_rows(&[owner, legacy, role("", "no id")], Some(&mappings));
        assert_eq!(rows.len(), 2, "a role without an id is skipped");
        assert_eq!((rows[0].kind, rows[1].kind), ("built-in", ""));
        assert_eq!(rows[0].entitlements[0].id, "role:r-owner:member");
        assert_eq!(rows[0].resource.description, "Scopes: user.read, user.write");

        let p = trait_profile(&rows[0].resource);
        assert_eq!(p.fields["is_custom"].kind, Some(Kind::BoolValue(false)));
        let Some(Kind::ListValue(scopes)) = &p.fields["scope_names"].kind else { panic!("scope_names is a list") };
        assert_eq!(scopes.values, vec![text("user.read"), text("user.write")]);
        let Some(Kind::ListValue(ms)) = &p.fields["claim_mappings"].kind else { panic!("claim_mappings is a list") };
        let values: Vec<(String, Option<f64>)> = ms
            .values
            .iter()
            .map(|v| {
                let Some(Kind::StructValue(s)) = &v.kind else { panic!("a mapping is a struct") };
                let value = match &s.fields["claim_value"].kind {
                    Some(Kind::StringValue(v)) => v.clone(),
                    _ => panic!("claim_value is text"),
                };
                let rank = s.fields.get("rank").and_then(|r| match r.kind {
                    Some(Kind::NumberValue(n)) => Some(n),
                    _ => None,
                });
                (value, rank)
            })
            .collect();
        assert_eq!(
            values,
            vec![("root".to_string(), Some(1.0)), ("admins".to_string(), Some(2.0)), ("it".to_string(), None)]
        );

        let p = trait_profile(&rows[1].resource);
        assert!(!p.fields.contains_key("is_custom"), "the legacy list does not say whether a role is custom");
        let Some(Kind::ListValue(ms)) = &p.fields["claim_mappings"].kind else { panic!("claim_mappings is a list") };
        assert!(ms.values.is_empty(), "mappings known, none for this role");
    }

    #[test]
    fn without_readable_mappings_the_profile_has_no_mapping_list() {
        let rows = role_rows(&[role("r1", "Viewer")], None);
        assert!(!trait_profile(&rows[0].resource).fields.contains_key("claim_mappings"));
    }
}
