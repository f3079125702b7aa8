//! What the connector says about itself (shown in ConductorOne and sent in service-mode `Hello`).

use super::{account_creation, capabilities};
use crate::proto::connector_v2::ConnectorMetadata;

pub(crate) const DISPLAY_NAME: &str = "Torq";
pub(crate) const DESCRIPTION: &str =
    "Syncs Torq workspace users, API keys, roles (with their scopes and SSO claim mappings) and role memberships, \
     and invites new users (account provisioning).";

pub(crate) fn connector_metadata() -> ConnectorMetadata {
    ConnectorMetadata {
        display_name: DISPLAY_NAME.into(),
        description: DESCRIPTION.into(),
        capabilities: Some(capabilities::connector_capabilities()),
        account_creation_schema: Some(account_creation::account_creation_schema()),
        ..Default::default()
    }
}
