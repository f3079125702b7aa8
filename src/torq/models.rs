//! Torq API response shapes as this client reads them.
//!
//! Torq's API is `v1alpha` and proto3-JSON based: any field may be omitted when it holds its default, and enum
//! values may grow. Every field therefore has a default, unknown enum strings are kept verbatim, and a timestamp
//! that does not parse is treated as absent rather than failing the whole sync.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

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
    pub fn as_str(&self) -> &str {
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

/// A role from `GET /users/roles`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RoleRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub scope_names: Vec<String>,
}

/// One page of `GET /users/roles`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RolesPage {
    pub roles: Vec<RoleRecord>,
    pub next_page_token: String,
}

/// Torq's token endpoint answer.
#[derive(Default, Deserialize)]
#[serde(default)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    pub token_type: String,
}

/// Torq's (grpc-gateway) error envelope: `{code, message, details}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ApiErrorBody {
    pub code: i64,
    pub message: String,
}

/// Parses RFC 3339 with any fractional precision; anything unparsable (or not a string) becomes `None`.
fn lenient_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::String(s)) => DateTime::parse_from_rfc3339(&s).ok().map(|t| t.with_timezone(&Utc)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
