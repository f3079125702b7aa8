//! Account provisioning in Baton terms, as data: what the `user` resource type's account manager offers (the
//! "no password" credential option: the invitee sets up their login through Torq's invitation email), the
//! account-creation schema ConductorOne shows (`email`, `role`), and the protobuf answers to CreateAccount and to
//! a Grant that is already in place.
//!
//! Pure functions only: the invite itself lives in `crate::provision` (the flow) and `crate::torq` (HTTP).

use std::collections::BTreeMap;

use super::{pack, user};
use crate::proto::connector_v2::connector_account_creation_schema::{field, Field, StringField};
use crate::proto::connector_v2::create_account_response::{
    AlreadyExistsResult, Result as AccountResult, SuccessResult,
};
use crate::proto::connector_v2::{
    CapabilityDetailCredentialOption, ConnectorAccountCreationSchema, CreateAccountResponse,
    CredentialDetailsAccountProvisioning, Grant, GrantAlreadyExists, GrantManagerServiceGrantResponse,
};
use crate::torq::UserRecord;

/// Profile key of the invitee's email in the account-creation schema (and in `--create-account-profile`).
pub(crate) const EMAIL_FIELD: &str = "email";
/// Profile key of the role (a role name or id).
pub(crate) const ROLE_FIELD: &str = "role";
/// Accepted alias of [`ROLE_FIELD`].
pub(crate) const ROLE_ID_ALIAS: &str = "role_id";

/// Credential options of an invite: only "no password" (Torq emails the invitee, who sets up their login).
pub(crate) fn no_password() -> CredentialDetailsAccountProvisioning {
    let no_password = CapabilityDetailCredentialOption::NoPassword as i32;
    CredentialDetailsAccountProvisioning {
        supported_credential_options: vec![no_password],
        preferred_credential_option: no_password,
    }
}

/// The fields ConductorOne asks for when it creates a Torq account.
pub(crate) fn account_creation_schema() -> ConnectorAccountCreationSchema {
    let string_field = |display_name: &str, required: bool, description: &str, placeholder: &str, order: i32| Field {
        display_name: display_name.into(),
        required,
        description: description.into(),
        placeholder: placeholder.into(),
        order,
        field: Some(field::Field::StringField(StringField { default_value: None })),
    };
    ConnectorAccountCreationSchema {
        field_map: BTreeMap::from([
            (
                EMAIL_FIELD.to_string(),
                string_field("Email", true, "Email address to invite to the Torq workspace", "new.hire@example.com", 1),
            ),
            (
                ROLE_FIELD.to_string(),
                string_field("Role", false, "role name or id; Torq's default when empty", "Operator", 2),
            ),
        ]),
    }
}

/// CreateAccount succeeded: Torq invited the user, who is returned as the `user` resource a sync would write.
pub(crate) fn created(user: &UserRecord) -> CreateAccountResponse {
    CreateAccountResponse {
        result: Some(AccountResult::Success(SuccessResult {
            resource: Some(user::user_resource(user)),
            is_create_account_result: true,
            invitation_expires_at: None,
        })),
        annotations: Vec::new(),
    }
}

/// CreateAccount found the account in place: a user with that email exists.
pub(crate) fn already_exists(user: &UserRecord) -> CreateAccountResponse {
    CreateAccountResponse {
        result: Some(AccountResult::AlreadyExists(AlreadyExistsResult {
            resource: Some(user::user_resource(user)),
            is_create_account_result: true,
        })),
        annotations: Vec::new(),
    }
}

/// Grant answered without a change: the principal already holds the entitlement (`grant` is the existing one).
pub(crate) fn grant_already_exists(grant: Grant) -> GrantManagerServiceGrantResponse {
    GrantManagerServiceGrantResponse {
        annotations: vec![pack("GrantAlreadyExists", &GrantAlreadyExists {})],
        grants: vec![grant],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_a_required_email_and_an_optional_role() {
        let schema = account_creation_schema();
        assert!(schema.field_map[EMAIL_FIELD].required);
        assert!(!schema.field_map[ROLE_FIELD].required);
        assert!(schema.field_map[ROLE_FIELD].description.contains("Torq's default"));
    }

    #[test]
    fn no_password_is_supported_and_preferred() {
        let d = no_password();
        assert_eq!(d.supported_credential_options, vec![CapabilityDetailCredentialOption::NoPassword as i32]);
        assert_eq!(d.preferred_credential_option, CapabilityDetailCredentialOption::NoPassword as i32);
    }

    #[test]
    fn grant_already_exists_carries_the_annotation() {
        let r = grant_already_exists(Grant { id: "role:r1:member:user:u1".into(), ..Default::default() });
        assert_eq!(r.annotations[0].type_url, "type.googleapis.com/c1.connector.v2.GrantAlreadyExists");
        assert_eq!(r.grants[0].id, "role:r1:member:user:u1");
    }
}
