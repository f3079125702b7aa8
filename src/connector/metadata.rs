//! What the connector says about itself (shown in ConductorOne and sent in service-mode `Hello`).

use super::capabilities;
use crate::proto::connector_v2::ConnectorMetadata;

pub const DISPLAY_NAME: &str = "Torq";
pub const DESCRIPTION: &str =
    "Syncs Torq workspace users, API keys, roles (with their scopes and SSO claim mappings) and role memberships.";

pub fn connector_metadata() -> ConnectorMetadata {
    ConnectorMetadata {
        display_name: DISPLAY_NAME.into(),
        description: DESCRIPTION.into(),
        capabilities: Some(capabilities::connector_capabilities()),
        ..Default::default()
    }
}
