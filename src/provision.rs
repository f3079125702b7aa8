//! Provisioning: what baton-torq may change in Torq, and the honest answer for what it may not. One flow for
//! both modes: the one-shot CLI (`-p --create-account-email …`) and service mode's tasks call the same
//! functions, so a validation rule or an answer cannot differ between them.
//!
//! Why a module of its own (not `connector/`, not `torq/`): provisioning is a *driver*, like `crate::sync`. It
//! turns flags or a task into a checked request, dispatches it to a resource type's account manager, and answers
//! grants, revokes and deletes. The request, outcome and error types and the `user` type's invite live below it
//! in `crate::connector::account_creation` (re-exported here), so `connector/` never imports this module;
//! `torq/` stays unaware of Baton.
//!
//! - **Create account** ([`create_account`] -> the type's account manager -> the `user` invite): an email
//!   (checked: one `@`, no spaces, at most 254 bytes of UTF-8) and an optional role (an id, or a name matched
//!   case-insensitively; none = Torq's default, Viewer), from the profile keys `email`, `role` and `role_id` only:
//!   any other key is refused before anything is sent. Nothing is sent until the role is known and no user has
//!   that email (compared case-insensitively); an existing user is "already exists", not an error, unless they
//!   hold another role than the one asked for (refused: Torq's public API cannot change it).
//! - **Grant** a role's `member` entitlement ([`check_grant`]): Torq's public API cannot change a user's or an API
//!   key's role, so a grant succeeds only when the principal already holds that role, and is refused with where
//!   to do it otherwise.
//! - **Revoke** and **delete**: refused with the same kind of explanation ([`revoke_refusal`],
//!   [`delete_refusal`]); no Torq request is made.
//!
//! Must not: send a write before all input is checked, send a write twice (see `crate::torq`'s invite rules), or
//! guess an endpoint Torq does not document.

use std::collections::BTreeMap;

use crate::connector::account_creation::{EMAIL_FIELD, PROFILE_KEYS, ROLE_FIELD, ROLE_ID_ALIAS, WHERE_ROLES_CHANGE};
use crate::connector::api_key::API_KEY_TYPE_ID;
use crate::connector::role::{self, ROLE_TYPE_ID};
use crate::connector::user::USER_TYPE_ID;
use crate::proto::connector_v2::{AccountInfo, Entitlement, Grant, Resource};
use crate::torq::TorqClient;

// The request, outcome and error types live below `connector/` (its account managers return them); the flow
// re-exports them so callers name one place.
pub use crate::connector::account_creation::ProvisionError;
pub(crate) use crate::connector::account_creation::{AccountOutcome, AccountRequest, ProfileValue};

/// Longest email address accepted (RFC 5321's path limit minus the angle brackets).
pub(crate) const MAX_EMAIL_LEN: usize = 254;

impl AccountRequest {
    /// From Baton's pieces: an email (`AccountInfo`'s primary email, or `--create-account-email`), a login and a
    /// profile. The email is the given one, else the profile's `email`, else the login when it is an address;
    /// the role is the profile's `role` (or its alias `role_id`); empty means Torq's default.
    /// Every profile key must be one of [`PROFILE_KEYS`]: an unknown one (a typo such as "rol") is refused, since
    /// ignoring it would invite the user with Torq's default role, which Torq's public API cannot undo.
    pub(crate) fn new(
        origin: Origin,
        email: Option<&str>,
        login: Option<&str>,
        profile: &BTreeMap<String, ProfileValue>,
    ) -> Result<AccountRequest, ProvisionError> {
        if let Some(unknown) = profile.keys().find(|k| !PROFILE_KEYS.contains(&k.as_str())) {
            return Err(unknown_profile_key(origin, unknown));
        }
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
        let email = given.or(from_profile).or(from_login).ok_or(ProvisionError::NoEmail(origin.email_hint()))?;
        check_email(&email)?;
        let role = match (text(ROLE_FIELD)?, text(ROLE_ID_ALIAS)?) {
            (Some(a), Some(b)) if a != b => {
                return Err(ProvisionError::BadProfile(format!(
                    "\"{ROLE_FIELD}\" ({a:?}) and \"{ROLE_ID_ALIAS}\" ({b:?}) differ; give one"
                )))
            }
            (a, b) => a.or(b),
        };
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
        AccountRequest::new(Origin::Flags, email, login, &profile)
    }

    /// From a service-mode task's `AccountInfo`: the primary email (or the first one), the login, the profile.
    pub(crate) fn from_account_info(info: &AccountInfo) -> Result<AccountRequest, ProvisionError> {
        let email = info.emails.iter().find(|e| e.is_primary).or(info.emails.first()).map(|e| e.address.as_str());
        let profile = info
            .profile
            .as_ref()
            .map(|p| p.fields.iter().map(|(k, v)| (k.clone(), struct_value(v))).collect())
            .unwrap_or_default();
        AccountRequest::new(Origin::Task, email, Some(info.login.as_str()), &profile)
    }
}

/// Where a request's pieces came from: the one-shot flags or a service-mode task. Messages name what the person
/// (or ConductorOne) can change: flags on the command line, the task's account fields in service mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    Flags,
    Task,
}

impl Origin {
    fn profile(self) -> &'static str {
        match self {
            Origin::Flags => "--create-account-profile",
            Origin::Task => "the task's account profile",
        }
    }

    fn email_hint(self) -> &'static str {
        match self {
            Origin::Flags => {
                "pass --create-account-email EMAIL, a profile with \"email\", or a login that is an email address"
            }
            Origin::Task => {
                "the task's account has no email address; give it a primary email, a profile \"email\", or a login \
                 that is an email address"
            }
        }
    }
}

/// An unknown profile key, with the accepted key it most likely meant. The key is shown escaped and cut: it is
/// input, not ours.
fn unknown_profile_key(origin: Origin, key: &str) -> ProvisionError {
    let shown: String = key.chars().take(64).collect();
    let did_you_mean = crate::cli::closest(key, PROFILE_KEYS.iter().copied())
        .map(|k| format!(" (did you mean \"{k}\"?)"))
        .unwrap_or_default();
    ProvisionError::BadProfile(format!(
        "{} has an unknown key {shown:?}{did_you_mean}; the accepted keys are {}; nothing was sent",
        origin.profile(),
        PROFILE_KEYS.join(", "),
    ))
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
    // Invisible and bidi characters make an address that reads like another one (U+200B, U+202E).
    if email.chars().any(crate::escape::is_hidden) {
        return bad(
            "it contains an invisible or text-direction character (e.g. U+200B, U+202E); type the address again",
        );
    }
    match email.split_once('@') {
        None => bad("it has no '@'"),
        Some((_, domain)) if domain.contains('@') => bad("it has more than one '@'"),
        Some(("", _)) => bad("nothing before the '@'"),
        Some((_, "")) => bad("nothing after the '@'"),
        Some(_) => Ok(()),
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
    use crate::connector::account_creation::resolve_role;
    use crate::torq::RoleRecord;

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
        let r = AccountRequest::new(Origin::Flags, Some("a@x.io"), Some("ignored@y.io"), &empty).unwrap();
        assert_eq!(r, AccountRequest { email: "a@x.io".into(), role: None });
        let p = profile(&[("email", ProfileValue::Text("p@x.io".into()))]);
        assert_eq!(AccountRequest::new(Origin::Flags, None, Some("l@x.io"), &p).unwrap().email, "p@x.io");
        assert_eq!(AccountRequest::new(Origin::Flags, None, Some("l@x.io"), &empty).unwrap().email, "l@x.io");
        assert!(matches!(
            AccountRequest::new(Origin::Flags, None, Some("jdoe"), &empty),
            Err(ProvisionError::NoEmail(_))
        ));
        assert!(matches!(
            AccountRequest::new(Origin::Flags, Some("a@x.io"), None, &p),
            Err(ProvisionError::BadProfile(_))
        ));
        // The same address in two places is fine.
        let same = profile(&[("email", ProfileValue::Text("A@X.io".into()))]);
        assert!(AccountRequest::new(Origin::Flags, Some("a@x.io"), None, &same).is_ok());
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
    fn unknown_profile_keys_are_refused_with_the_key_meant() {
        let err = AccountRequest::from_flags(Some("a@x.io"), None, Some(r#"{"rol":"Operator"}"#)).unwrap_err();
        assert!(err.is_usage());
        assert_eq!(
            err.to_string(),
            "invalid account profile: --create-account-profile has an unknown key \"rol\" (did you mean \"role\"?); \
             the accepted keys are email, role, role_id; nothing was sent"
        );
        let p = profile(&[("department", ProfileValue::Text("Sales".into()))]);
        let err = AccountRequest::new(Origin::Task, Some("a@x.io"), None, &p).unwrap_err().to_string();
        assert!(err.contains("the task's account profile has an unknown key \"department\";"), "{err}");
        assert!(!err.contains("--"), "a task's message names no flag: {err}");
        let err = AccountRequest::new(Origin::Task, None, Some("jdoe"), &BTreeMap::new()).unwrap_err().to_string();
        assert!(err.contains("the task's account has no email") && !err.contains("--"), "{err}");
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
