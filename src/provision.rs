//! Provisioning: what baton-torq may change in Torq, and the honest answer for what it may not. One flow for
//! both modes: the one-shot CLI (`-p --create-account-email …`) and service mode's tasks call the same
//! functions, so a validation rule or an answer cannot differ between them.
//!
//! Why a module of its own (not `connector/`, not `torq/`): account creation is a *driver*, like `crate::sync`.
//! It validates input, reads the role and user lists, decides, and only then sends the one write Torq documents
//! (`POST /users/invite`, see `crate::torq`). `connector/` says *which* resource types offer it (the `user`
//! syncer's optional `AccountManager`, which calls [`invite`]) and shapes the answers
//! (`crate::connector::account_creation`); `torq/` stays unaware of Baton.
//!
//! - **Create account** ([`create_account`] -> the type's account manager -> [`invite`]): an email (checked: one `@`, no spaces, at most 254 bytes of UTF-8) and
//!   an optional role (an id, or a name matched case-insensitively; none = Torq's default, Viewer). Nothing is
//!   sent until the role is known and no user has that email (compared case-insensitively); an existing user is
//!   "already exists", not an error, unless they hold another role than the one asked for (refused: Torq's public
//!   API cannot change it).
//! - **Grant** a role's `member` entitlement ([`check_grant`]): Torq's public API cannot change a user's or an API
//!   key's role, so a grant succeeds only when the principal already holds that role, and is refused with where
//!   to do it otherwise.
//! - **Revoke** and **delete**: refused with the same kind of explanation ([`revoke_refusal`],
//!   [`delete_refusal`]); no Torq request is made.
//!
//! Must not: send a write before all input is checked, send a write twice (see `crate::torq`'s invite rules), or
//! guess an endpoint Torq does not document.

use std::collections::BTreeMap;

use crate::connector::account_creation::{EMAIL_FIELD, ROLE_FIELD, ROLE_ID_ALIAS};
use crate::connector::api_key::API_KEY_TYPE_ID;
use crate::connector::role::{self, ROLE_TYPE_ID};
use crate::connector::user::USER_TYPE_ID;
use crate::proto::connector_v2::{AccountInfo, Entitlement, Grant, Resource};
use crate::torq::{InviteOutcome, RoleRecord, TorqClient, TorqError, UserRecord};

/// Longest email address accepted (RFC 5321's path limit minus the angle brackets).
pub(crate) const MAX_EMAIL_LEN: usize = 254;

/// Where a Torq role is changed, since the public API cannot do it.
const WHERE_ROLES_CHANGE: &str = "change it in the Torq UI (Settings > Users), or for SSO users in the SSO claim \
     mapping that assigns their role (Settings > SSO, or the identity provider's group)";

/// Why a provisioning action was refused or failed. One line each, saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(
        "provisioning is not enabled: pass -p/--provisioning (or set BATON_PROVISIONING=true) to let baton-torq \
         change Torq"
    )]
    Disabled,
    #[error(
        "--create-account-* runs a one-shot invite and cannot be combined with --client-id/--client-secret \
         (service mode); drop one of them"
    )]
    ModeConflict,
    #[error(
        "no email for the new account: pass --create-account-email EMAIL, a profile with \"email\", or a login \
         that is an email address"
    )]
    NoEmail,
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
                | ProvisionError::ModeConflict
                | ProvisionError::NoEmail
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
            ProvisionError::Torq(TorqError::Unavailable { .. }) => true,
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

impl AccountRequest {
    /// From Baton's pieces: an email (`AccountInfo`'s primary email, or `--create-account-email`), a login and a
    /// profile. The email is the given one, else the profile's `email`, else the login when it is an address;
    /// the role is the profile's `role` (or its alias `role_id`); empty means Torq's default.
    pub(crate) fn new(
        email: Option<&str>,
        login: Option<&str>,
        profile: &BTreeMap<String, ProfileValue>,
    ) -> Result<AccountRequest, ProvisionError> {
        let text = |key: &str| -> Result<Option<String>, ProvisionError> {
            match profile.get(key) {
                None => Ok(None),
                Some(ProfileValue::Text(t)) if t.is_empty() => Ok(None),
                Some(ProfileValue::Text(t)) => Ok(Some(t.clone())),
                Some(ProfileValue::Other(kind)) => {
                    Err(ProvisionError::BadProfile(format!("\"{key}\" must be a string, not {kind}")))
                }
            }
        };
        let given = email.filter(|e| !e.is_empty()).map(str::to_string);
        let from_profile = text(EMAIL_FIELD)?;
        if let (Some(a), Some(b)) = (&given, &from_profile) {
            if !a.eq_ignore_ascii_case(b) {
                return Err(ProvisionError::BadProfile(format!(
                    "the email {a:?} and the profile's \"email\" {b:?} differ; give one"
                )));
            }
        }
        let from_login = login.filter(|l| l.contains('@')).map(str::to_string);
        let email = given.or(from_profile).or(from_login).ok_or(ProvisionError::NoEmail)?;
        check_email(&email)?;
        let role = match (text(ROLE_FIELD)?, text(ROLE_ID_ALIAS)?) {
            (Some(a), Some(b)) if a != b => {
                return Err(ProvisionError::BadProfile(format!(
                    "\"{ROLE_FIELD}\" ({a:?}) and \"{ROLE_ID_ALIAS}\" ({b:?}) differ; give one"
                )))
            }
            (a, b) => a.or(b),
        };
        if let Some(unknown) = profile.keys().find(|k| ![EMAIL_FIELD, ROLE_FIELD, ROLE_ID_ALIAS].contains(&k.as_str()))
        {
            tracing::info!(key = %unknown, "ignoring a profile key Torq's invite has no field for");
        }
        Ok(AccountRequest { email, role })
    }

    /// From the one-shot flags; `profile_json` must be a JSON object (e.g. `{"role":"Operator"}`).
    pub(crate) fn from_flags(
        email: Option<&str>,
        login: Option<&str>,
        profile_json: Option<&str>,
    ) -> Result<AccountRequest, ProvisionError> {
        let profile = match profile_json.map(str::trim).filter(|p| !p.is_empty()) {
            None => BTreeMap::new(),
            Some(raw) => {
                let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| {
                    ProvisionError::BadProfile(format!(
                        "--create-account-profile is not valid JSON ({e}); expected an object such as \
                         '{{\"role\":\"Operator\"}}'"
                    ))
                })?;
                let serde_json::Value::Object(map) = value else {
                    return Err(ProvisionError::BadProfile(
                        "--create-account-profile must be a JSON object such as '{\"role\":\"Operator\"}'".into(),
                    ));
                };
                map.into_iter().map(|(k, v)| (k, json_value(v))).collect()
            }
        };
        AccountRequest::new(email, login, &profile)
    }

    /// From a service-mode task's `AccountInfo`: the primary email (or the first one), the login, the profile.
    pub(crate) fn from_account_info(info: &AccountInfo) -> Result<AccountRequest, ProvisionError> {
        let email = info.emails.iter().find(|e| e.is_primary).or(info.emails.first()).map(|e| e.address.as_str());
        let profile = info
            .profile
            .as_ref()
            .map(|p| p.fields.iter().map(|(k, v)| (k.clone(), struct_value(v))).collect())
            .unwrap_or_default();
        AccountRequest::new(email, Some(info.login.as_str()), &profile)
    }
}

fn json_value(v: serde_json::Value) -> ProfileValue {
    match v {
        serde_json::Value::String(s) => ProfileValue::Text(s),
        serde_json::Value::Null => ProfileValue::Text(String::new()),
        serde_json::Value::Bool(_) => ProfileValue::Other("a boolean"),
        serde_json::Value::Number(_) => ProfileValue::Other("a number"),
        serde_json::Value::Array(_) => ProfileValue::Other("a list"),
        serde_json::Value::Object(_) => ProfileValue::Other("an object"),
    }
}

fn struct_value(v: &prost_types::Value) -> ProfileValue {
    use prost_types::value::Kind;
    match &v.kind {
        Some(Kind::StringValue(s)) => ProfileValue::Text(s.clone()),
        None | Some(Kind::NullValue(_)) => ProfileValue::Text(String::new()),
        Some(Kind::BoolValue(_)) => ProfileValue::Other("a boolean"),
        Some(Kind::NumberValue(_)) => ProfileValue::Other("a number"),
        Some(Kind::ListValue(_)) => ProfileValue::Other("a list"),
        Some(Kind::StructValue(_)) => ProfileValue::Other("an object"),
    }
}

/// One `@` between a non-empty local part and domain, no whitespace or control characters, at most
/// [`MAX_EMAIL_LEN`] bytes. Deliberately not a full RFC 5322 parser: Torq decides the rest.
pub(crate) fn check_email(email: &str) -> Result<(), ProvisionError> {
    let bad = |reason| Err(ProvisionError::BadEmail { email: email.chars().take(300).collect(), reason });
    if email.len() > MAX_EMAIL_LEN {
        return bad("longer than 254 bytes");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains a space or a control character");
    }
    match email.split_once('@') {
        None => bad("it has no '@'"),
        Some((_, domain)) if domain.contains('@') => bad("it has more than one '@'"),
        Some(("", _)) => bad("nothing before the '@'"),
        Some((_, "")) => bad("nothing after the '@'"),
        Some(_) => Ok(()),
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
            let available = if names.is_empty() { "(none)".to_string() } else { names.join(", ") };
            Err(ProvisionError::UnknownRole { wanted: wanted.to_string(), available })
        }
        many => Err(ProvisionError::AmbiguousRole {
            wanted: wanted.to_string(),
            matches: many.iter().map(|r| format!("{} = {}", r.name, r.id)).collect::<Vec<_>>().join(", "),
        }),
    }
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

    /// The one line the one-shot CLI prints.
    pub(crate) fn line(&self) -> String {
        match self {
            AccountOutcome::Created(a) => format!(
                "created: Torq user {} {} with role {} (invitation sent; the user sets up their login from Torq's email)",
                a.user.id, a.user.email, a.role_name
            ),
            AccountOutcome::AlreadyExists(a) => format!(
                "already exists: Torq user {} {} with role {}; nothing was sent",
                a.user.id, a.user.email, a.role_name
            ),
        }
    }
}

/// Creates an account of `resource_type` through that type's account manager (see
/// `crate::connector::syncer::AccountManager`); only `user` has one.
pub(crate) async fn create_account(
    client: &TorqClient,
    resource_type: &str,
    request: &AccountRequest,
) -> Result<AccountOutcome, ProvisionError> {
    let manager = crate::connector::syncer(resource_type)
        .and_then(|s| s.account_manager())
        .ok_or_else(|| ProvisionError::ResourceType(resource_type.to_string()))?;
    manager.create_account(client, request).await
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

/// The role id of a `role:<id>:member` entitlement.
fn member_role_id(entitlement: &Entitlement) -> Option<String> {
    let rest = entitlement.id.strip_prefix(ROLE_TYPE_ID)?.strip_prefix(':')?;
    let id = rest.strip_suffix(role::MEMBER_SLUG)?.strip_suffix(':')?;
    (!id.is_empty()).then(|| id.to_string())
}

/// A grant of a role's `member` entitlement to a user or an API key: the existing grant when the principal already
/// holds the role (Torq's public API cannot change a user's or a key's role), an explanation otherwise. Reads the
/// user lists (or the API key list) only.
pub(crate) async fn check_grant(
    client: &TorqClient,
    entitlement: &Entitlement,
    principal: &Resource,
) -> Result<Grant, ProvisionError> {
    let Some(role_id) = member_role_id(entitlement) else {
        return Err(ProvisionError::NotSupported(format!(
            "baton-torq can only answer grants of a role's membership (role:<id>:member), not {:?}",
            entitlement.id
        )));
    };
    let principal_id = principal.id.clone().unwrap_or_default();
    if principal_id.resource.is_empty() {
        return Err(ProvisionError::Malformed { task: "grant", reason: "the principal has no id".into() });
    }
    // (the role the principal holds, who it is, what to do instead)
    let (held, who, instead) = match principal_id.resource_type.as_str() {
        USER_TYPE_ID => {
            let user = client
                .find_user_by_id(&principal_id.resource)
                .await?
                .ok_or_else(|| ProvisionError::NoSuchUser(principal_id.resource.clone()))?;
            (user.role_id, format!("user {}", user.email), WHERE_ROLES_CHANGE.to_string())
        }
        API_KEY_TYPE_ID => {
            let key = client
                .list_api_keys()
                .await?
                .into_iter()
                .find(|k| k.client_id == principal_id.resource)
                .ok_or_else(|| ProvisionError::NoSuchApiKey(principal_id.resource.clone()))?;
            let instead = "a key's role is fixed when it is created: create a key with that role in the Torq UI \
                           (avatar > API Keys) and delete the old one there";
            (key.role_id, format!("API key {}", key.client_id), instead.to_string())
        }
        other => {
            return Err(ProvisionError::NotSupported(format!(
                "baton-torq cannot grant a role to a {other:?}; roles are held by users and API keys"
            )))
        }
    };
    if held == role_id {
        if let Some(grant) = role::membership_grant(&role_id, &principal_id) {
            return Ok(grant);
        }
    }
    let held = if held.is_empty() { "(none)".to_string() } else { held };
    Err(ProvisionError::NotSupported(format!(
        "Torq's public API cannot change the role of {} ({who} has role {held}, not {role_id}); {instead}",
        if principal_id.resource_type == API_KEY_TYPE_ID { "an API key" } else { "a user" },
    )))
}

/// Why a revoke cannot be done through Torq's public API.
pub(crate) fn revoke_refusal() -> ProvisionError {
    ProvisionError::NotSupported(format!(
        "Torq's public API cannot remove a user's role (every Torq user holds exactly one role); \
         {WHERE_ROLES_CHANGE}; to remove the user, delete them in the Torq UI"
    ))
}

/// Why a delete cannot be done through Torq's public API.
pub(crate) fn delete_refusal(resource_type: &str) -> ProvisionError {
    ProvisionError::NotSupported(format!(
        "Torq's public API does not document removing a {resource_type}: remove it in the Torq UI (Settings > Users); \
         for SSO users also remove them from the identity provider's Torq assignment"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> Vec<RoleRecord> {
        [("r-own", "Owner"), ("r-op", "Operator"), ("r-view", "Viewer"), ("r-soc", "SOC Tier 1")]
            .iter()
            .map(|(id, name)| RoleRecord { id: (*id).into(), name: (*name).into(), ..Default::default() })
            .collect()
    }

    fn profile(pairs: &[(&str, ProfileValue)]) -> BTreeMap<String, ProfileValue> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect()
    }

    #[test]
    fn email_rules() {
        assert!(check_email("new.hire@example.com").is_ok());
        assert!(check_email(&format!("{}@example.com", "a".repeat(242))).is_ok());
        for bad in
            ["", "no-at.example.com", "a@b@c", "@example.com", "a@", "a b@example.com", "a@example.com ", "a\t@x"]
        {
            let err = check_email(bad).unwrap_err();
            assert!(matches!(err, ProvisionError::BadEmail { .. }), "{bad:?}: {err}");
        }
        assert!(check_email(&format!("{}@example.com", "a".repeat(243))).is_err(), "255 bytes");
        // The limit counts bytes, as the message says: 122 two-byte letters make 134 characters but 256 bytes.
        let wide = format!("{}@example.com", "é".repeat(122));
        assert_eq!((wide.chars().count(), wide.len()), (134, 256));
        let err = check_email(&wide).unwrap_err().to_string();
        assert!(err.contains("longer than 254 bytes"), "{err}");
    }

    #[test]
    fn email_comes_from_the_flag_then_the_profile_then_a_login_that_is_an_address() {
        let empty = BTreeMap::new();
        let r = AccountRequest::new(Some("a@x.io"), Some("ignored@y.io"), &empty).unwrap();
        assert_eq!(r, AccountRequest { email: "a@x.io".into(), role: None });
        let p = profile(&[("email", ProfileValue::Text("p@x.io".into()))]);
        assert_eq!(AccountRequest::new(None, Some("l@x.io"), &p).unwrap().email, "p@x.io");
        assert_eq!(AccountRequest::new(None, Some("l@x.io"), &empty).unwrap().email, "l@x.io");
        assert!(matches!(AccountRequest::new(None, Some("jdoe"), &empty), Err(ProvisionError::NoEmail)));
        assert!(matches!(AccountRequest::new(Some("a@x.io"), None, &p), Err(ProvisionError::BadProfile(_))));
        // The same address in two places is fine.
        let same = profile(&[("email", ProfileValue::Text("A@X.io".into()))]);
        assert!(AccountRequest::new(Some("a@x.io"), None, &same).is_ok());
    }

    #[test]
    fn role_from_the_profile_with_its_alias() {
        let r = AccountRequest::from_flags(Some("a@x.io"), None, Some(r#"{"role":"Operator"}"#)).unwrap();
        assert_eq!(r.role.as_deref(), Some("Operator"));
        let r = AccountRequest::from_flags(Some("a@x.io"), None, Some(r#"{"role_id":"r-op"}"#)).unwrap();
        assert_eq!(r.role.as_deref(), Some("r-op"));
        let r = AccountRequest::from_flags(Some("a@x.io"), None, Some(r#"{"role":""}"#)).unwrap();
        assert_eq!(r.role, None, "empty = Torq's default");
        for bad in [r#"{"role":"Owner","role_id":"r-op"}"#, r#"{"role":7}"#, r#"["Operator"]"#, r#"{"role":"#] {
            let err = AccountRequest::from_flags(Some("a@x.io"), None, Some(bad)).unwrap_err();
            assert!(matches!(err, ProvisionError::BadProfile(_)), "{bad}: {err}");
            assert!(err.is_usage());
        }
    }

    #[test]
    fn account_info_uses_the_primary_email_and_the_struct_profile() {
        use crate::proto::connector_v2::account_info::Email;
        use prost_types::{value::Kind, Struct, Value};
        let info = AccountInfo {
            emails: vec![
                Email { address: "other@x.io".into(), is_primary: false },
                Email { address: "main@x.io".into(), is_primary: true },
            ],
            login: "main".into(),
            profile: Some(Struct {
                fields: [("role".to_string(), Value { kind: Some(Kind::StringValue("viewer".into())) })].into(),
            }),
            ..Default::default()
        };
        let r = AccountRequest::from_account_info(&info).unwrap();
        assert_eq!(r, AccountRequest { email: "main@x.io".into(), role: Some("viewer".into()) });
    }

    #[test]
    fn roles_resolve_by_id_or_case_insensitive_name() {
        let roles = roles();
        assert_eq!(resolve_role("r-op", &roles).unwrap().name, "Operator");
        assert_eq!(resolve_role("operator", &roles).unwrap().id, "r-op");
        assert_eq!(resolve_role("soc tier 1", &roles).unwrap().id, "r-soc");
        let err = resolve_role("Admin", &roles).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown Torq role \"Admin\"; the workspace's roles are: Operator, Owner, SOC Tier 1, Viewer"
        );
        let mut twins = roles.clone();
        twins.push(RoleRecord { id: "r-op2".into(), name: "OPERATOR".into(), ..Default::default() });
        assert_eq!(resolve_role("Operator", &twins).unwrap().id, "r-op", "an exact name wins");
        assert!(matches!(resolve_role("operator", &twins), Err(ProvisionError::AmbiguousRole { .. })));
    }

    #[test]
    fn member_entitlements_are_recognised() {
        let e = |id: &str| Entitlement { id: id.into(), ..Default::default() };
        assert_eq!(member_role_id(&e("role:r1:member")).as_deref(), Some("r1"));
        assert_eq!(member_role_id(&e("role:a:b:member")).as_deref(), Some("a:b"));
        assert_eq!(member_role_id(&e("role::member")), None);
        assert_eq!(member_role_id(&e("group:g1:member")), None);
        assert_eq!(member_role_id(&e("role:r1:admin")), None);
    }

    #[test]
    fn refusals_say_where_to_do_it() {
        for e in [revoke_refusal(), delete_refusal("user")] {
            let text = e.to_string();
            assert!(text.contains("Torq UI") && text.contains("Settings > Users"), "{text}");
            assert!(!e.is_usage() && !e.is_transient());
        }
    }
}
