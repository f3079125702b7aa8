//! The two resource types: `user` (no entitlements of its own) and `role` (one membership entitlement each).
//! IDs, display names and traits match the Go connector.

use super::pack;
use crate::proto::connector_v2::{resource_type::Trait, ResourceType, SkipEntitlementsAndGrants};

pub const USER_TYPE_ID: &str = "user";
pub const ROLE_TYPE_ID: &str = "role";

/// `user`: "User", TRAIT_USER, annotated SkipEntitlementsAndGrants.
pub fn user_resource_type() -> ResourceType {
    ResourceType {
        id: USER_TYPE_ID.into(),
        display_name: "User".into(),
        traits: vec![Trait::User as i32],
        annotations: vec![pack("SkipEntitlementsAndGrants", &SkipEntitlementsAndGrants {})],
        ..Default::default()
    }
}

/// `role`: "Role", TRAIT_ROLE.
pub fn role_resource_type() -> ResourceType {
    ResourceType {
        id: ROLE_TYPE_ID.into(),
        display_name: "Role".into(),
        traits: vec![Trait::Role as i32],
        ..Default::default()
    }
}

/// All resource types, sorted by id.
pub fn all() -> Vec<ResourceType> {
    vec![role_resource_type(), user_resource_type()]
}
