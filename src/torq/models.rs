//! Torq API response shapes as this client reads them.
//!
//! Torq's API is `v1alpha` and proto3-JSON based: any field may be omitted when it holds its default, and enum
//! values may grow. Every field therefore has a default, unknown enum strings are kept verbatim, and a timestamp
//! that does not parse is treated as absent rather than failing the whole sync.

use chrono::{DateTime, Utc};
use serde::{de, Deserialize, Deserializer};

/// A Torq workspace user (`usersv1alphaUser`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct UserRecord {
    pub id: String,
    pub email: String,
    pub role_id: String,
    pub status: UserStatus,
    pub sso_provision: bool,
    #[serde(deserialize_with = "lenient_time")]
    pub created_time: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient_time")]
    pub last_login_time: Option<DateTime<Utc>>,
}

/// A user's status. Values Torq adds later are kept in [`UserStatus::Other`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UserStatus {
    /// `STATUS_UNSPECIFIED`, also used when the field is missing.
    #[default]
    Unspecified,
    InvitationSent,
    Verified,
    Other(String),
}

impl UserStatus {
    /// The value exactly as Torq spells it.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            UserStatus::Unspecified => "STATUS_UNSPECIFIED",
            UserStatus::InvitationSent => "INVITATION_SENT",
            UserStatus::Verified => "VERIFIED",
            UserStatus::Other(raw) => raw,
        }
    }

    fn from_raw(raw: String) -> Self {
        match raw.as_str() {
            "" | "STATUS_UNSPECIFIED" => UserStatus::Unspecified,
            "INVITATION_SENT" => UserStatus::InvitationSent,
            "VERIFIED" => UserStatus::Verified,
            _ => UserStatus::Other(raw),
        }
    }
}

impl<'de> Deserialize<'de> for UserStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // proto3 JSON may also carry an enum as its number; keep whatever arrives.
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(match value {
            serde_json::Value::String(s) => UserStatus::from_raw(s),
            serde_json::Value::Number(n) => match n.as_u64() {
                Some(0) => UserStatus::Unspecified,
                Some(1) => UserStatus::InvitationSent,
                Some(2) => UserStatus::Verified,
                _ => UserStatus::Other(n.to_string()),
            },
            serde_json::Value::Null => UserStatus::Unspecified,
            other => UserStatus::Other(other.to_string()),
        })
    }
}

/// A role from the RBAC list `GET /roles` or the legacy `GET /users/roles`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RoleRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub scope_names: Vec<String>,
    /// `Some` only from the RBAC list (which omits the field when it is false); the legacy list does not say.
    pub is_custom: Option<bool>,
}

/// One page of `GET /roles` or `GET /users/roles`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RolesPage {
    pub(crate) roles: Vec<RoleRecord>,
    #[serde(alias = "nextPageToken")]
    pub(crate) next_page_token: String,
}

/// A Torq API key from `GET /api-keys`. Only the documented fields are read: a secret, should Torq ever send
/// one, is never decoded and so cannot be stored.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiKeyRecord {
    pub(crate) client_id: String,
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) key_type: ApiKeyType,
    pub(crate) role_id: String,
    pub(crate) role_name: String,
    #[serde(deserialize_with = "lenient_time")]
    pub(crate) created_time: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "lenient_time")]
    pub(crate) last_authenticated_time: Option<DateTime<Utc>>,
    /// The owner of a private key (the full user object).
    pub(crate) user: Option<UserRecord>,
}

/// An API key's type. Values Torq adds later are kept in [`ApiKeyType::Other`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ApiKeyType {
    /// `API_KEY_TYPE_UNSPECIFIED`, also used when the field is missing.
    #[default]
    Unspecified,
    /// Not tied to a user; holds the role chosen when it was created.
    Service,
    /// Belongs to a user and acts with that user's role.
    Private,
    Other(String),
}

impl ApiKeyType {
    /// The value exactly as Torq spells it.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            ApiKeyType::Unspecified => "API_KEY_TYPE_UNSPECIFIED",
            ApiKeyType::Service => "API_KEY_TYPE_SERVICE",
            ApiKeyType::Private => "API_KEY_TYPE_PRIVATE",
            ApiKeyType::Other(raw) => raw,
        }
    }
}

impl<'de> Deserialize<'de> for ApiKeyType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(match value {
            serde_json::Value::String(s) => match s.as_str() {
                "" | "API_KEY_TYPE_UNSPECIFIED" => ApiKeyType::Unspecified,
                "API_KEY_TYPE_SERVICE" => ApiKeyType::Service,
                "API_KEY_TYPE_PRIVATE" => ApiKeyType::Private,
                _ => ApiKeyType::Other(s),
            },
            serde_json::Value::Number(n) => match n.as_u64() {
                Some(0) => ApiKeyType::Unspecified,
                Some(1) => ApiKeyType::Service,
                Some(2) => ApiKeyType::Private,
                _ => ApiKeyType::Other(n.to_string()),
            },
            serde_json::Value::Null => ApiKeyType::Unspecified,
            other => ApiKeyType::Other(other.to_string()),
        })
    }
}

/// One page of `GET /api-keys` (Torq documents no paging; a token is followed if one appears).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ApiKeysPage {
    pub(crate) api_keys: Vec<ApiKeyRecord>,
    #[serde(alias = "nextPageToken")]
    pub(crate) next_page_token: String,
}

/// An SSO claim mapping from `GET /sso/claim_mappings`: users whose IdP claim `claim_name` equals `claim_value`
/// get `role_id`; the first match in `rank` order wins.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClaimMappingRecord {
    pub(crate) id: String,
    pub(crate) claim_name: String,
    pub(crate) claim_value: String,
    pub(crate) role_id: String,
    /// int64, which proto3 JSON may send as a string; `None` when missing or not a whole number.
    #[serde(deserialize_with = "lenient_int")]
    pub(crate) rank: Option<i64>,
}

/// One page of `GET /sso/claim_mappings` (no paging documented; a token is followed if one appears).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ClaimMappingsPage {
    pub(crate) claim_mappings: Vec<ClaimMappingRecord>,
    #[serde(alias = "nextPageToken")]
    pub(crate) next_page_token: String,
}

/// Torq's token endpoint answer. The token is wiped from memory when this is dropped.
/// (Field-level defaults: a struct-level default cannot be used with a `Drop` impl.)
#[derive(Default, Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub(crate) access_token: String,
    /// Seconds, as sent: absent (`None`), or any number, also negative, fractional or huge, or a numeric string
    /// (proto3 JSON writes 64-bit integers as strings). What is usable is decided in `auth`.
    #[serde(default, deserialize_with = "lenient_seconds")]
    pub(crate) expires_in: Option<f64>,
    #[serde(default)]
    pub(crate) token_type: String,
}

impl Drop for TokenResponse {
    fn drop(&mut self) {
        secrecy::zeroize::Zeroize::zeroize(&mut self.access_token);
    }
}

/// A number or a numeric string as `f64`; `null` is absent; anything else is an error (the answer is malformed).
pub(crate) fn lenient_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    match Option::<serde_json::Value>::deserialize(deserializer)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => Ok(n.as_f64()),
        Some(serde_json::Value::String(s)) => {
            s.trim().parse::<f64>().map(Some).map_err(|_| de::Error::custom("expires_in is not a number"))
        }
        Some(_) => Err(de::Error::custom("expires_in is not a number")),
    }
}

/// Torq's (grpc-gateway) error envelope: `{code, message, details}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ApiErrorBody {
    pub(crate) code: i64,
    pub(crate) message: String,
}

/// Parses RFC 3339 with any fractional precision; anything unparsable (or not a string) becomes `None`.
fn lenient_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::String(s)) => DateTime::parse_from_rfc3339(&s).ok().map(|t| t.with_timezone(&Utc)),
        _ => None,
    })
}

/// An integer sent as a JSON number or as a decimal string (proto3 JSON's int64); anything else is `None`.
fn lenient_int<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_decodes_types_times_owner_and_ignores_a_secret() {
        let k: ApiKeyRecord = serde_json::from_str(
            r#"{"client_id":"c1","name":"ci","type":"API_KEY_TYPE_PRIVATE","role_id":"r1","role_name":"Owner",
                "created_time":"2025-01-10T00:15:30Z","client_secret":"s3cr3t","user":{"id":"u1","email":"a@x.io"}}"#,
        )
        .unwrap();
        assert_eq!(k.key_type, ApiKeyType::Private);
        assert_eq!(k.user.as_ref().map(|u| u.email.as_str()), Some("a@x.io"));
        assert!(k.created_time.is_some() && k.last_authenticated_time.is_none());
        assert!(!format!("{k:?}").contains("s3cr3t"), "a secret field is never decoded");
        let k: ApiKeyRecord = serde_json::from_str(r#"{"type":"API_KEY_TYPE_ROBOT"}"#).unwrap();
        assert_eq!(k.key_type, ApiKeyType::Other("API_KEY_TYPE_ROBOT".into()));
        let k: ApiKeyRecord = serde_json::from_str(r#"{"type":1}"#).unwrap();
        assert_eq!(k.key_type, ApiKeyType::Service);
        let k: ApiKeyRecord = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!((k.key_type, k.user), (ApiKeyType::Unspecified, None));
    }

    #[test]
    fn claim_mapping_rank_as_number_or_string() {
        let page: ClaimMappingsPage = serde_json::from_str(
            r#"{"claim_mappings":[{"id":"m1","rank":"2"},{"id":"m2","rank":1},{"id":"m3","rank":"first"},{"id":"m4"}]}"#,
        )
        .unwrap();
        let ranks: Vec<Option<i64>> = page.claim_mappings.iter().map(|m| m.rank).collect();
        assert_eq!(ranks, vec![Some(2), Some(1), None, None]);
    }

    #[test]
    fn is_custom_is_unknown_unless_sent() {
        let r: RoleRecord = serde_json::from_str(r#"{"id":"r1"}"#).unwrap();
        assert_eq!(r.is_custom, None);
        let r: RoleRecord = serde_json::from_str(r#"{"id":"r1","is_custom":true}"#).unwrap();
        assert_eq!(r.is_custom, Some(true));
    }

    #[test]
    fn missing_fields_default_and_unknown_status_is_kept() {
        let u: UserRecord = serde_json::from_str(r#"{"id":"u1","status":"SUSPENDED","extra":{"x":1}}"#).unwrap();
        assert_eq!(u.id, "u1");
        assert_eq!(u.email, "");
        assert_eq!(u.status, UserStatus::Other("SUSPENDED".into()));
        assert!(!u.sso_provision);
        assert_eq!(u.created_time, None);
    }

    #[test]
    fn timestamps_of_any_precision_parse_and_garbage_is_absent() {
        let u: UserRecord =
            serde_json::from_str(r#"{"created_time":"2022-03-09T08:40:18.490771179Z","last_login_time":"yesterday"}"#)
                .unwrap();
        assert_eq!(u.created_time.unwrap().timestamp_subsec_nanos(), 490_771_179);
        assert_eq!(u.last_login_time, None);
    }

    #[test]
    fn status_as_number_and_null() {
        let u: UserRecord = serde_json::from_str(r#"{"status":2}"#).unwrap();
        assert_eq!(u.status, UserStatus::Verified);
        let u: UserRecord = serde_json::from_str(r#"{"status":null}"#).unwrap();
        assert_eq!(u.status, UserStatus::Unspecified);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;
        use serde_json::{json, Map, Value};

        fn json_value() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                ".{0,12}".prop_map(Value::from),
                prop::collection::vec(any::<u8>(), 0..3).prop_map(|v| json!(v)),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Any subset of the documented fields (with well-typed values), plus any extra fields of any type,
            /// decodes; what is present is kept and what is missing takes its default.
            #[test]
            fn user_decoding_survives_omissions_and_extra_fields(
                id in proptest::option::of("[a-f0-9-]{0,36}"),
                email in proptest::option::of(".{0,40}"),
                role_id in proptest::option::of("[a-f0-9-]{0,36}"),
                status in proptest::option::of(prop_oneof![Just("VERIFIED".to_string()), Just("INVITATION_SENT".to_string()), "[A-Z_]{0,20}"]),
                sso in proptest::option::of(any::<bool>()),
                created in proptest::option::of(prop_oneof![Just("2025-01-10T00:15:30Z".to_string()), Just("2026-11-10T12:00:00.123456789Z".to_string()), ".{0,10}"]),
                extra in prop::collection::btree_map("x_[a-z]{1,8}", json_value(), 0..4),
            ) {
                let mut obj = Map::new();
                if let Some(v) = &id { obj.insert("id".into(), json!(v)); }
                if let Some(v) = &email { obj.insert("email".into(), json!(v)); }
                if let Some(v) = &role_id { obj.insert("role_id".into(), json!(v)); }
                if let Some(v) = &status { obj.insert("status".into(), json!(v)); }
                if let Some(v) = sso { obj.insert("sso_provision".into(), json!(v)); }
                if let Some(v) = &created { obj.insert("created_time".into(), json!(v)); }
                for (k, v) in extra { obj.insert(k, v); }
                let text = Value::Object(obj).to_string();
                let user: UserRecord = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(&user.id, id.as_deref().unwrap_or(""));
                prop_assert_eq!(&user.email, email.as_deref().unwrap_or(""));
                prop_assert_eq!(&user.role_id, role_id.as_deref().unwrap_or(""));
                prop_assert_eq!(user.sso_provision, sso.unwrap_or(false));
                let raw_status = status.as_deref().unwrap_or("");
                let expected_status = if raw_status.is_empty() { "STATUS_UNSPECIFIED" } else { raw_status };
                prop_assert_eq!(user.status.as_str(), expected_status);
                let parsed = created.as_deref().and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok());
                prop_assert_eq!(user.created_time.map(|t| t.timestamp()), parsed.map(|t| t.timestamp()));
            }

            /// Role pages decode whatever fields are missing or added.
            #[test]
            fn role_page_decoding_survives_omissions_and_extra_fields(
                names in prop::collection::vec(proptest::option::of(".{0,30}"), 0..5),
                token in proptest::option::of("[A-Za-z0-9.]{0,10}"),
                extra in prop::collection::btree_map("x_[a-z]{1,8}", json_value(), 0..3),
            ) {
                let roles: Vec<Value> = names.iter().enumerate().map(|(i, n)| match n {
                    Some(n) => json!({"id": format!("r{i}"), "name": n, "scope_names": ["user.read"], "is_custom": true}),
                    None => json!({"id": format!("r{i}")}),
                }).collect();
                let mut page = Map::new();
                page.insert("roles".into(), json!(roles));
                if let Some(t) = &token { page.insert("next_page_token".into(), json!(t)); }
                for (k, v) in extra { page.insert(k, v); }
                let decoded: RolesPage = serde_json::from_str(&Value::Object(page).to_string()).unwrap();
                prop_assert_eq!(decoded.roles.len(), names.len());
                prop_assert_eq!(decoded.next_page_token, token.unwrap_or_default());
            }
        }
    }
}
