//! `api_key`: Torq API keys -> `api_key` resources with a UserTrait of account type SERVICE, and each key's role
//! as a grant on the role's `member` entitlement (`role:<role_id>:member:api_key:<client_id>`).
//!
//! A service key holds the role chosen when it was created; a private key acts with its creator's role, and its
//! owner (the embedded user) goes into the profile. Torq never returns a key's client secret, and only the
//! documented fields are decoded (`crate::torq::ApiKeyRecord`), so nothing secret can reach the file.
//!
//! Listing keys may need a permission the sync key lacks: a 403 (or 404) from `GET /api-keys` skips the type
//! with one warning instead of failing the sync. The newer SDK traits for secrets / non-human identities are not
//! used: the readers in use today (the `baton` CLI on baton-sdk v0.7) cannot print annotations they do not know.

use futures_util::future::BoxFuture;

use super::syncer::{ResourceSyncer, Row, RowSink, Synced};
use super::{pack, profile, role, text, timestamp};
use crate::proto::connector_v2::{
    resource_status, resource_type::Trait, user_trait, Grant, Resource, ResourceId, ResourceStatus, ResourceType,
    SkipEntitlementsAndGrants, UserTrait,
};
use crate::torq::{ApiKeyRecord, ApiKeyType, TorqClient, TorqError};

pub(crate) const API_KEY_TYPE_ID: &str = "api_key";

/// The scope a key's role needs to list API keys (Torq's scope tables: `apikey.read`).
pub(crate) const LIST_SCOPE: &str = "apikey.read";

/// `api_key`: "API Key", TRAIT_USER, annotated SkipEntitlementsAndGrants (keys offer no entitlements).
pub(crate) fn resource_type() -> ResourceType {
    ResourceType {
        id: API_KEY_TYPE_ID.into(),
        display_name: "API Key".into(),
        traits: vec![Trait::User as i32],
        annotations: vec![pack("SkipEntitlementsAndGrants", &SkipEntitlementsAndGrants {})],
        ..Default::default()
    }
}

/// The `api_key` syncer.
pub(crate) struct ApiKeySyncer;

impl ResourceSyncer for ApiKeySyncer {
    fn type_id(&self) -> &'static str {
        API_KEY_TYPE_ID
    }

    fn resource_type(&self) -> ResourceType {
        resource_type()
    }

    fn nouns(&self) -> (&'static str, &'static str) {
        ("API key", "API keys")
    }

    fn sync<'a>(&'a self, client: &'a TorqClient, sink: RowSink) -> BoxFuture<'a, Result<Synced, TorqError>> {
        Box::pin(async move {
            let keys = match client.list_api_keys().await {
                Ok(keys) => keys,
                Err(e) if e.is_forbidden_or_missing() => {
                    let reason = format!(
                        "Torq answered HTTP {} to GET /api-keys: the API key's role may not list API keys; give it \
                         the {LIST_SCOPE} scope (or use a service key created by an Owner) to include them",
                        e.http_status().unwrap_or_default()
                    );
                    tracing::warn!("API keys were not synced and are left out of the file: {reason}");
                    return Ok(Synced::Skipped { reason });
                }
                Err(e) => return Err(e),
            };
            sink.fetched(keys.len() as u64);
            let rows: Vec<Row> = keys
                .iter()
                .filter(|k| {
                    if k.client_id.is_empty() {
                        tracing::warn!(name = %k.name, "Torq listed an API key without a client id; skipping it");
                    }
                    !k.client_id.is_empty()
                })
                .map(api_key_row)
                .collect();
            tracing::debug!(api_keys = rows.len(), "API keys fetched");
            sink.send(rows).await?;
            Ok(Synced::Done)
        })
    }
}

/// The key's row: its resource, its role grant, its type as the summary bucket.
pub(crate) fn api_key_row(key: &ApiKeyRecord) -> Row {
    Row {
        resource: api_key_resource(key),
        entitlements: Vec::new(),
        grants: role_grant(key).into_iter().collect(),
        kind: match key.key_type {
            ApiKeyType::Service => "service",
            ApiKeyType::Private => "private",
            _ => "other",
        },
    }
}

/// The key's resource id (the client id).
pub(crate) fn api_key_id(client_id: &str) -> ResourceId {
    ResourceId { resource_type: API_KEY_TYPE_ID.into(), resource: client_id.into(), ..Default::default() }
}

/// `type` in the profile: `service`, `private`, or Torq's raw value for anything else.
pub(crate) fn type_label(t: &ApiKeyType) -> &str {
    match t {
        ApiKeyType::Service => "service",
        ApiKeyType::Private => "private",
        other => other.as_str(),
    }
}

/// The `api_key` resource: display name = name (or the client id when unnamed); UserTrait with account type
/// SERVICE, login = client id, status ENABLED, `created_at` = created_time, `last_login` =
/// last_authenticated_time (absent when Torq omits it), no email; profile {client_id, name, type, role_id,
/// role_name} plus {owner_user_id, owner_email} for a private key.
pub(crate) fn api_key_resource(key: &ApiKeyRecord) -> Resource {
    let mut fields = vec![
        ("client_id", text(&key.client_id)),
        ("name", text(&key.name)),
        ("type", text(type_label(&key.key_type))),
        ("role_id", text(&key.role_id)),
        ("role_name", text(&key.role_name)),
    ];
    if let (ApiKeyType::Private, Some(owner)) = (&key.key_type, &key.user) {
        fields.push(("owner_user_id", text(&owner.id)));
        fields.push(("owner_email", text(&owner.email)));
    }
    let created_at = key.created_time.as_ref().map(timestamp);
    let user_trait = UserTrait {
        status: Some(user_trait::Status { status: user_trait::status::Status::Enabled as i32, details: String::new() }),
        profile: Some(profile(fields)),
        account_type: user_trait::AccountType::Service as i32,
        login: key.client_id.clone(),
        created_at,
        last_login: key.last_authenticated_time.as_ref().map(timestamp),
        ..Default::default()
    };
    Resource {
        id: Some(api_key_id(&key.client_id)),
        display_name: if key.name.is_empty() { key.client_id.clone() } else { key.name.clone() },
        annotations: vec![pack("UserTrait", &user_trait)],
        status: Some(ResourceStatus { status: resource_status::Status::Enabled as i32, details: String::new() }),
        created_at,
        ..Default::default()
    }
}

/// `role:<role_id>:member:api_key:<client_id>`; `None` when the key has no role. A role that is not in the role
/// list is caught at the end of the sync (warning naming both, no grant), as for users.
pub(crate) fn role_grant(key: &ApiKeyRecord) -> Option<Grant> {
    role::membership_grant(&key.role_id, &api_key_id(&key.client_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torq::UserRecord;
    use prost::Message;
    use prost_types::value::Kind;

    fn key(key_type: ApiKeyType) -> ApiKeyRecord {
        ApiKeyRecord {
            client_id: "cid-1".into(),
            name: "CI pipeline".into(),
            key_type,
            role_id: "r-owner".into(),
            role_name: "Owner".into(),
            created_time: Some("2025-01-10T00:15:30Z".parse().unwrap()),
            last_authenticated_time: None,
            user: Some(UserRecord { id: "u1".into(), email: "ada@example.com".into(), ..Default::default() }),
        }
    }

    fn user_trait(r: &Resource) -> UserTrait {
        assert_eq!(r.annotations[0].type_url, "type.googleapis.com/c1.connector.v2.UserTrait");
        UserTrait::decode(r.annotations[0].value.as_slice()).unwrap()
    }

    fn field(t: &UserTrait, key: &str) -> Option<String> {
        t.profile.as_ref()?.fields.get(key).and_then(|v| match &v.kind {
            Some(Kind::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
    }

    #[test]
    fn service_key_is_a_service_account_with_its_role_grant() {
        let k = key(ApiKeyType::Service);
        let row = api_key_row(&k);
        assert_eq!(row.kind, "service");
        let r = &row.resource;
        assert_eq!(r.id, Some(api_key_id("cid-1")));
        assert_eq!(r.display_name, "CI pipeline");
        let t = user_trait(r);
        assert_eq!(t.account_type, user_trait::AccountType::Service as i32);
        assert_eq!(t.login, "cid-1");
        assert!(t.emails.is_empty());
        assert_eq!(t.status.as_ref().unwrap().status, user_trait::status::Status::Enabled as i32);
        assert_eq!(t.created_at.unwrap().seconds, 1_736_468_130);
        assert!(t.last_login.is_none(), "Torq gave no last_authenticated_time");
        assert_eq!(field(&t, "type").as_deref(), Some("service"));
        assert_eq!(field(&t, "role_name").as_deref(), Some("Owner"));
        assert_eq!(field(&t, "owner_email"), None, "a service key has no owner");
        assert_eq!(row.grants.len(), 1);
        assert_eq!(row.grants[0].id, "role:r-owner:member:api_key:cid-1");
    }

    #[test]
    fn private_key_names_its_owner_and_unnamed_key_shows_its_client_id() {
        let mut k = key(ApiKeyType::Private);
        k.name.clear();
        k.last_authenticated_time = Some("2026-11-10T12:00:00.5Z".parse().unwrap());
        let row = api_key_row(&k);
        assert_eq!(row.kind, "private");
        assert_eq!(row.resource.display_name, "cid-1");
        let t = user_trait(&row.resource);
        assert_eq!(field(&t, "owner_user_id").as_deref(), Some("u1"));
        assert_eq!(field(&t, "owner_email").as_deref(), Some("ada@example.com"));
        assert_eq!(t.last_login.map(|l| l.nanos), Some(500_000_000));
    }

    #[test]
    fn unknown_types_keep_torqs_value() {
        let row = api_key_row(&key(ApiKeyType::Unspecified));
        assert_eq!(row.kind, "other");
        assert_eq!(field(&user_trait(&row.resource), "type").as_deref(), Some("API_KEY_TYPE_UNSPECIFIED"));
        let row = api_key_row(&key(ApiKeyType::Other("API_KEY_TYPE_ROBOT".into())));
        assert_eq!(field(&user_trait(&row.resource), "type").as_deref(), Some("API_KEY_TYPE_ROBOT"));
    }

    #[test]
    fn a_key_without_role_has_no_grant() {
        let mut k = key(ApiKeyType::Service);
        k.role_id.clear();
        assert!(api_key_row(&k).grants.is_empty());
    }

    #[test]
    fn a_secret_in_the_answer_never_reaches_the_resource() {
        let canary = "sk-canary-7f3a9b";
        let text = format!(
            r#"{{"client_id":"cid-9","name":"svc","type":"API_KEY_TYPE_SERVICE","role_id":"r1",
                "client_secret":"{canary}","secret":"{canary}","token":"{canary}","credentials":{{"secret":"{canary}"}}}}"#
        );
        let k: ApiKeyRecord = serde_json::from_str(&text).unwrap();
        let row = api_key_row(&k);
        let bytes = row.resource.encode_to_vec();
        assert!(!bytes.windows(canary.len()).any(|w| w == canary.as_bytes()), "the secret was stored");
        assert!(!format!("{row:?}").contains(canary));
    }
}
