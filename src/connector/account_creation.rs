//! Account creation in Baton terms: the checked request ([`AccountRequest`]), what it came to ([`AccountOutcome`]),
//! why it was refused ([`ProvisionError`]), the `user` type's invite ([`invite`]: read the roles and users, then
//! send Torq's one documented write), what the `user` resource type's account manager offers (the "no password"
//! credential option: the invitee sets up their login through Torq's invitation email), the account-creation
//! schema ConductorOne shows (`email`, `role`), and the protobuf answers to CreateAccount and to a Grant that is
//! already in place.
//!
//! These types live here, below the flow (`crate::provision`, which parses CLI and task input into an
//! [`AccountRequest`] and dispatches to a type's account manager), so `connector/` never imports the flow.
//! Must not: send a write before the role and the user lists are read, or send it twice (see `crate::torq`'s
//! invite rules); HTTP stays in `crate::torq`.

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
use crate::torq::{InviteOutcome, RoleRecord, TorqClient, TorqError, UserRecord};

/// Where a Torq role is changed, since the public API cannot do it.
pub(crate) const WHERE_ROLES_CHANGE: &str =
    "change it in the Torq UI (Settings > Users), or for SSO users in the SSO claim \
     mapping that assigns their role (Settings > SSO, or the identity provider's group)";
/// Why a provisioning action was refused or failed. One line each, saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(
        "provisioning is not enabled: pass -p/--provisioning (or set BATON_PROVISIONING=true) to let baton-torq \
         change Torq"
    )]
    Disabled,
    /// The invite was asked for by a variable or the config file, not by a typed flag: say so, and how to sync.
    #[error(
        "{0} is set, which makes this run an invite instead of a sync, but provisioning is not enabled; no sync \
         ran: to sync, unset it; to invite, pass -p/--provisioning (or set BATON_PROVISIONING=true)"
    )]
    DisabledFrom(String),
    /// Service mode: the connector's settings, not a flag typed for this task, decide.
    #[error(
        "provisioning tasks are refused: this connector runs without provisioning enabled; set \
         BATON_PROVISIONING=true in the connector's settings (its environment or config file) and restart it"
    )]
    DisabledForTasks,
    #[error(
        "--create-account-* runs a one-shot invite and cannot be combined with --client-id/--client-secret \
         (service mode); drop one of them"
    )]
    ModeConflict,
    /// The text says where to give the email: a flag in one-shot mode, the task's account in service mode.
    #[error("no email for the new account: {0}")]
    NoEmail(&'static str),
    #[error("invalid email address {email:?}: {reason}")]
    BadEmail { email: String, reason: &'static str },
    #[error("invalid account profile: {0}")]
    BadProfile(String),
    #[error("unknown Torq role {wanted:?}; the workspace's roles are: {available}")]
    UnknownRole { wanted: String, available: String },
    #[error("role {wanted:?} matches several Torq roles ({matches}); pass the role's id instead")]
    AmbiguousRole { wanted: String, matches: String },
    #[error("cannot create an account of resource type {0:?}: baton-torq creates accounts of type \"user\" only")]
    ResourceType(String),
    #[error("malformed {task} task: {reason}")]
    Malformed { task: &'static str, reason: String },
    #[error("no Torq user has id {0:?} (it may have been removed since the last sync)")]
    NoSuchUser(String),
    #[error("no Torq API key has client id {0:?} (it may have been deleted since the last sync)")]
    NoSuchApiKey(String),
    #[error("Torq says a user with email {0:?} exists, but neither user list shows it; check the Torq UI (Settings > Users)")]
    ExistsButNotListed(String),
    /// Torq's public API cannot do this; the message says where it can be done.
    #[error("{0}")]
    NotSupported(String),
    #[error(transparent)]
    Torq(#[from] TorqError),
}

impl ProvisionError {
    /// Bad input, refused before anything was written (exit code 2 in one-shot mode).
    pub(crate) fn is_usage(&self) -> bool {
        matches!(
            self,
            ProvisionError::Disabled
                | ProvisionError::DisabledFrom(_)
                | ProvisionError::ModeConflict
                | ProvisionError::NoEmail(_)
                | ProvisionError::BadEmail { .. }
                | ProvisionError::BadProfile(_)
                | ProvisionError::UnknownRole { .. }
                | ProvisionError::AmbiguousRole { .. }
                | ProvisionError::ResourceType(_)
        )
    }

    /// Worth trying again later (Torq unreachable, rate limited or failing before the invite reached it): the only
    /// non-final failures. An invite Torq answered with an error or an unreadable 200 reached Torq, so it is final
    /// even though its user list did not show the user: that list may lag, and a retry would invite twice.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            ProvisionError::Torq(TorqError::Unavailable { .. } | TorqError::WaitTooLong { .. }) => true,
            ProvisionError::Torq(TorqError::Api { status, .. }) => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}
/// A profile value as far as account creation cares: text, or something else (named in errors).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ProfileValue {
    Text(String),
    Other(&'static str),
}
/// A checked account-creation request: a valid email and, optionally, the role as given (resolved later
/// against the workspace's roles).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AccountRequest {
    pub(crate) email: String,
    pub(crate) role: Option<String>,
}
/// A Torq user and the name of their role (the role id when the role list does not have it).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Account {
    pub(crate) user: UserRecord,
    pub(crate) role_name: String,
}

/// What account creation came to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AccountOutcome {
    /// Torq invited the user (status INVITATION_SENT until they accept).
    Created(Account),
    /// A user with that email was already there; nothing was sent.
    AlreadyExists(Account),
}

impl AccountOutcome {
    pub(crate) fn account(&self) -> &Account {
        match self {
            AccountOutcome::Created(a) | AccountOutcome::AlreadyExists(a) => a,
        }
    }

    /// The one line the one-shot CLI prints. Its values are Torq's: escaped, so they cannot forge a second line.
    pub(crate) fn line(&self) -> String {
        use crate::escape::Shown;
        let a = self.account();
        let (id, email, role) = (Shown(&a.user.id), Shown(&a.user.email), Shown(&a.role_name));
        match self {
            AccountOutcome::Created(_) => format!(
                "created: Torq user {id} {email} with role {role} (invitation sent; the user sets up their login from Torq's email)"
            ),
            AccountOutcome::AlreadyExists(_) => {
                format!("already exists: Torq user {id} {email} with role {role}; nothing was sent")
            }
        }
    }
}
/// The role `wanted` names: a role id, else a name (exact, then case-insensitive).
pub(crate) fn resolve_role<'a>(wanted: &str, roles: &'a [RoleRecord]) -> Result<&'a RoleRecord, ProvisionError> {
    if let Some(r) = roles.iter().find(|r| r.id == wanted).or_else(|| roles.iter().find(|r| r.name == wanted)) {
        return Ok(r);
    }
    let folded = wanted.to_lowercase();
    let matches: Vec<&RoleRecord> = roles.iter().filter(|r| r.name.to_lowercase() == folded).collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => {
            let mut names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).filter(|n| !n.is_empty()).collect();
            names.sort_unstable_by_key(|n| n.to_lowercase());
            names.dedup();
            // Torq's names, each escaped and cut: one hostile name must not fill or break the line.
            let shown: Vec<String> = names.iter().map(|n| crate::escape::escape(n).into_owned()).collect();
            let available = if shown.is_empty() { "(none)".to_string() } else { shown.join(", ") };
            Err(ProvisionError::UnknownRole { wanted: wanted.to_string(), available })
        }
        many => Err(ProvisionError::AmbiguousRole {
            wanted: wanted.to_string(),
            matches: many
                .iter()
                .map(|r| format!("{} = {}", crate::escape::Shown(&r.name), crate::escape::Shown(&r.id)))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}
/// The `user` type's account creation: invites the user, or finds them in place. The role list and the user
/// lists are read first; the invite is sent only when the role is known and no user has the email.
pub(crate) async fn invite(client: &TorqClient, request: &AccountRequest) -> Result<AccountOutcome, ProvisionError> {
    let (roles, existing) = tokio::join!(client.list_roles(), client.find_user_by_email(&request.email));
    let roles = roles?;
    let role = request.role.as_deref().map(|wanted| resolve_role(wanted, &roles)).transpose()?;
    let account = |user: UserRecord| {
        let role_id =
            if user.role_id.is_empty() { role.map(|r| r.id.clone()).unwrap_or_default() } else { user.role_id.clone() };
        let role_name = roles
            .iter()
            .find(|r| r.id == role_id)
            .map(|r| if r.name.is_empty() { r.id.clone() } else { r.name.clone() })
            .unwrap_or_else(|| if role_id.is_empty() { "(Torq's default)".to_string() } else { role_id.clone() });
        Account { user: UserRecord { role_id, ..user }, role_name }
    };
    // An existing user is the account asked for only if the role matches (or none was asked for): Torq's public
    // API cannot change it, and "already exists" would tell ConductorOne the request was fulfilled.
    let found = |user: UserRecord| {
        let a = account(user);
        match role {
            Some(r) if !a.user.role_id.is_empty() && a.user.role_id != r.id => {
                Err(ProvisionError::NotSupported(format!(
                    "Torq user {} already exists with role {}, not {}, and Torq's public API cannot change the role \
                     of a user; {WHERE_ROLES_CHANGE}",
                    a.user.email,
                    a.role_name,
                    if r.name.is_empty() { &r.id } else { &r.name },
                )))
            }
            _ => Ok(AccountOutcome::AlreadyExists(a)),
        }
    };
    if let Some(user) = existing? {
        tracing::info!(user_id = %user.id, "a user with this email exists; not inviting");
        return found(user);
    }
    tracing::info!(role_id = role.map_or("", |r| r.id.as_str()), "inviting the user to Torq");
    match client.invite_user(&request.email, role.map(|r| r.id.as_str())).await? {
        InviteOutcome::Invited(user) => Ok(AccountOutcome::Created(account(user))),
        // Someone else invited the address between our check and the POST.
        InviteOutcome::AlreadyExists => match client.find_user_by_email(&request.email).await? {
            Some(user) => found(user),
            None => Err(ProvisionError::ExistsButNotListed(request.email.clone())),
        },
    }
}

/// Profile key of the invitee's email in the account-creation schema (and in `--create-account-profile`).
pub(crate) const EMAIL_FIELD: &str = "email";
/// Profile key of the role (a role name or id).
pub(crate) const ROLE_FIELD: &str = "role";
/// Accepted alias of [`ROLE_FIELD`].
pub(crate) const ROLE_ID_ALIAS: &str = "role_id";
/// Every profile key account creation accepts (`--create-account-profile`, a task's profile). Any other key is
/// refused before a request is sent: Torq's invite has no field for it, and a misspelt "role" would invite with
/// Torq's default role, which the public API cannot undo.
pub(crate) const PROFILE_KEYS: [&str; 3] = [EMAIL_FIELD, ROLE_FIELD, ROLE_ID_ALIAS];

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
                string_field(
                    "Role",
                    false,
                    "role name or id; Torq's default when empty. Accepted profile keys: email, role (alias role_id); \
                     any other key is refused",
                    "Operator",
                    2,
                ),
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
