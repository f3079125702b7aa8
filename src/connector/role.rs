//! Torq roles -> `role` resources with a RoleTrait, and one `member` entitlement per role.

use super::{pack, profile, resource_types, text, ROLE_TYPE_ID};
use crate::proto::connector_v2::{entitlement::PurposeValue, Entitlement, Resource, ResourceId, RoleTrait};
use crate::torq::RoleRecord;

/// Slug of the membership entitlement.
pub const MEMBER_SLUG: &str = "member";

/// `role:<role_id>:member`, as the Go SDK's `NewEntitlementID` builds it.
pub fn member_entitlement_id(role_id: &str) -> String {
    format!("{ROLE_TYPE_ID}:{role_id}:{MEMBER_SLUG}")
}

/// The role's resource id.
pub fn role_id(role_id: &str) -> ResourceId {
    ResourceId { resource_type: ROLE_TYPE_ID.into(), resource: role_id.into(), ..Default::default() }
}

fn display_name(role: &RoleRecord) -> &str {
    if role.name.is_empty() {
        &role.id
    } else {
        &role.name
    }
}

/// The `role` resource: display name = role name, description, RoleTrait profile {role_id, role_name,
/// role_description}.
pub fn role_resource(role: &RoleRecord) -> Resource {
    let trait_profile = profile([
        ("role_id", text(&role.id)),
        ("role_name", text(&role.name)),
        ("role_description", text(&role.description)),
    ]);
    Resource {
        id: Some(role_id(&role.id)),
        display_name: display_name(role).to_string(),
        description: role.description.clone(),
        annotations: vec![pack("RoleTrait", &RoleTrait { profile: Some(trait_profile) })],
        ..Default::default()
    }
}

/// The role's `member` entitlement (purpose ASSIGNMENT, grantable to users).
pub fn member_entitlement(role: &RoleRecord, resource: &Resource) -> Entitlement {
    let name = display_name(role);
    Entitlement {
        resource: Some(resource.clone()),
        id: member_entitlement_id(&role.id),
        display_name: format!("{name} Role member"),
        description: format!("Member of {name} Torq role"),
        grantable_to: vec![resource_types::user_resource_type()],
        purpose: PurposeValue::Assignment as i32,
        slug: MEMBER_SLUG.into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_go_connector() {
        let role = RoleRecord { id: "r1".into(), name: "SOC Tier 1".into(), ..Default::default() };
        let res = role_resource(&role);
        let ent = member_entitlement(&role, &res);
        assert_eq!(ent.id, "role:r1:member");
        assert_eq!(ent.display_name, "SOC Tier 1 Role member");
        assert_eq!(ent.description, "Member of SOC Tier 1 Torq role");
        assert_eq!(ent.grantable_to[0].id, "user");
    }
}
