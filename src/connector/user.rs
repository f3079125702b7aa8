//! `user`: Torq users -> `user` resources with a UserTrait, and each user's role membership as a grant on the
//! role's `member` entitlement. The two user lists (local, then SSO-provisioned) are streamed one after the other
//! (a user in both is written from the local list, whatever the timing); each is decoded on a blocking thread and
//! mapped there, so a million users never sit in memory.
//!
//! Status: VERIFIED -> ENABLED; INVITATION_SENT -> ENABLED with details "invitation sent, not accepted yet";
//! anything else -> UNSPECIFIED with the raw Torq status as details. Torq has no name fields, so no name is made up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::account_creation::{AccountOutcome, AccountRequest, ProvisionError};
use super::syncer::{AccountManager, ResourceSyncer, Row, RowSink, Synced};
use super::{flag, pack, profile, role, text, timestamp};
use crate::proto::connector_v2::{
    resource_status, resource_type::Trait, user_trait, CredentialDetailsAccountProvisioning, Grant, Resource,
    ResourceId, ResourceStatus, ResourceType, SkipEntitlementsAndGrants, UserTrait,
};
use crate::torq::{SinkClosed, TorqClient, TorqError, UserRecord, UserStatus};

pub(crate) const USER_TYPE_ID: &str = "user";

/// `user`: "User", TRAIT_USER, annotated SkipEntitlementsAndGrants (as the Go connector).
pub(crate) fn resource_type() -> ResourceType {
    ResourceType {
        id: USER_TYPE_ID.into(),
        display_name: "User".into(),
        traits: vec![Trait::User as i32],
        annotations: vec![pack("SkipEntitlementsAndGrants", &SkipEntitlementsAndGrants {})],
        ..Default::default()
    }
}

/// The `user` syncer.
pub(crate) struct UserSyncer;

impl ResourceSyncer for UserSyncer {
    fn type_id(&self) -> &'static str {
        USER_TYPE_ID
    }

    fn resource_type(&self) -> ResourceType {
        resource_type()
    }

    /// A user's display name is the email (the id when there is none): at most 320 bytes (RFC 5321: 64 for the
    /// local part, 255 for the domain and the `@`).
    fn longest_display_name(&self) -> (&'static str, usize) {
        ("email", 320)
    }

    fn nouns(&self) -> (&'static str, &'static str) {
        ("user", "users")
    }

    fn account_manager(&self) -> Option<&dyn AccountManager> {
        Some(self)
    }

    fn sync<'a>(&'a self, client: &'a TorqClient, sink: RowSink) -> BoxFuture<'a, Result<Synced, TorqError>> {
        Box::pin(async move {
            // One after the other, so a user Torq lists in both is always written from the local list (the
            // writer keeps the first record of an id): which record wins must not depend on response timing.
            stream_list(client, false, sink.clone()).await?;
            stream_list(client, true, sink).await?;
            Ok(Synced::Done)
        })
    }
}

/// Users are created by Torq's invite: no password (the invitee sets up their login from Torq's email).
impl AccountManager for UserSyncer {
    fn credential_details(&self) -> CredentialDetailsAccountProvisioning {
        super::account_creation::no_password()
    }

    fn create_account<'a>(
        &'a self,
        client: &'a TorqClient,
        request: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountOutcome, ProvisionError>> {
        Box::pin(super::account_creation::invite(client, request))
    }
}

/// One user list -> batches of mapped rows, all sent (flushed) before it returns. A user in both lists is sent
/// twice; the writer keeps the first.
async fn stream_list(client: &TorqClient, sso: bool, sink: RowSink) -> Result<u64, TorqError> {
    let buffer = sink.buffer();
    let callback_buffer = buffer.clone();
    let stop = sink.stop_token().clone();
    let writer = sink.clone();
    // Every record handed over, including those of attempts that broke off (their page is read again).
    let delivered = Arc::new(AtomicU64::new(0));
    let handed_over = Arc::clone(&delivered);
    let count = client
        .stream_users(sso, &stop, move |u: UserRecord| {
            if sink.is_stopped() {
                return Err(SinkClosed);
            }
            sink.fetched(1);
            handed_over.fetch_add(1, Ordering::Relaxed);
            if u.id.is_empty() {
                tracing::warn!(email = %u.email, "Torq listed a user without an id; skipping it");
                return Ok(());
            }
            callback_buffer.push_blocking(user_row(&u))
        })
        .await?;
    buffer.flush().await?;
    // `count` is what the final attempt of each page delivered; the rest was delivered again. (A user without an
    // id in a broken attempt is counted here too, so a real duplicate may go uncounted then; never over-counted.)
    writer.resent(delivered.load(Ordering::Relaxed).saturating_sub(count)).await?;
    tracing::debug!(sso, users = count, "user list fetched");
    Ok(count)
}

/// The user's row: its resource, its role grant, its status as the summary bucket.
pub fn user_row(u: &UserRecord) -> Row {
    Row {
        resource: user_resource(u),
        entitlements: Vec::new(),
        grants: role_grant(u).into_iter().collect(),
        kind: status_label(&u.status),
    }
}

/// Summary bucket for a user's Torq status.
pub(crate) fn status_label(status: &UserStatus) -> &'static str {
    match status {
        UserStatus::Verified => "verified",
        UserStatus::InvitationSent => "invited",
        UserStatus::Unspecified => "unspecified",
        UserStatus::Other(_) => "other",
    }
}

/// Details attached to an invited user's status.
pub(crate) const INVITED_DETAILS: &str = "invitation sent, not accepted yet";

/// The user's resource id.
pub(crate) fn user_id(user_id: &str) -> ResourceId {
    ResourceId { resource_type: USER_TYPE_ID.into(), resource: user_id.into(), ..Default::default() }
}

/// (status, details) for a Torq status.
pub(crate) fn status_of(status: &UserStatus) -> (user_trait::status::Status, String) {
    use user_trait::status::Status;
    match status {
        UserStatus::Verified => (Status::Enabled, String::new()),
        UserStatus::InvitationSent => (Status::Enabled, INVITED_DETAILS.into()),
        other => (Status::Unspecified, other.as_str().to_string()),
    }
}

/// The `user` resource: display name = email; UserTrait with the email as primary email and login, account type
/// HUMAN, status, created/last-login times, SSO status and a profile {user_id, login, email, role_id, status,
/// sso_provisioned}. Status and creation time are also set on the Resource itself for newer readers.
pub fn user_resource(user: &UserRecord) -> Resource {
    let (status, details) = status_of(&user.status);
    let trait_profile = profile([
        ("user_id", text(&user.id)),
        ("login", text(&user.email)),
        ("email", text(&user.email)),
        ("role_id", text(&user.role_id)),
        ("status", text(user.status.as_str())),
        ("sso_provisioned", flag(user.sso_provision)),
    ]);
    let emails = if user.email.is_empty() {
        Vec::new()
    } else {
        vec![user_trait::Email { address: user.email.clone(), is_primary: true }]
    };
    let created_at = user.created_time.as_ref().map(timestamp);
    let user_trait = UserTrait {
        emails,
        status: Some(user_trait::Status { status: status as i32, details: details.clone() }),
        profile: Some(trait_profile),
        account_type: user_trait::AccountType::Human as i32,
        login: user.email.clone(),
        created_at,
        last_login: user.last_login_time.as_ref().map(timestamp),
        sso_status: Some(user_trait::SsoStatus { sso_enabled: user.sso_provision }),
        ..Default::default()
    };
    let resource_status = match status {
        user_trait::status::Status::Enabled => resource_status::Status::Enabled,
        _ => resource_status::Status::Unspecified,
    };
    Resource {
        id: Some(user_id(&user.id)),
        display_name: if user.email.is_empty() { user.id.clone() } else { user.email.clone() },
        annotations: vec![pack("UserTrait", &user_trait)],
        status: Some(ResourceStatus { status: resource_status as i32, details }),
        created_at,
        ..Default::default()
    }
}

/// The grant of the user's role membership, `role:<role_id>:member:user:<user_id>`; `None` when the user has no
/// role.
pub fn role_grant(user: &UserRecord) -> Option<Grant> {
    role::membership_grant(&user.role_id, &user_id(&user.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(status: UserStatus) -> UserRecord {
        UserRecord {
            id: "u1".into(),
            email: "a@example.com".into(),
            role_id: "r1".into(),
            status,
            ..Default::default()
        }
    }

    #[test]
    fn status_mapping() {
        use user_trait::status::Status;
        assert_eq!(status_of(&UserStatus::Verified), (Status::Enabled, String::new()));
        assert_eq!(status_of(&UserStatus::InvitationSent), (Status::Enabled, INVITED_DETAILS.to_string()));
        assert_eq!(status_of(&UserStatus::Unspecified), (Status::Unspecified, "STATUS_UNSPECIFIED".to_string()));
        assert_eq!(status_of(&UserStatus::Other("LOCKED".into())), (Status::Unspecified, "LOCKED".to_string()));
    }

    #[test]
    fn grant_id_matches_the_go_connector() {
        let g = role_grant(&user(UserStatus::Verified)).unwrap();
        assert_eq!(g.id, "role:r1:member:user:u1");
        assert!(role_grant(&UserRecord { role_id: String::new(), ..user(UserStatus::Verified) }).is_none());
    }

    #[test]
    fn row_carries_the_grant_and_the_status_bucket() {
        let row = user_row(&user(UserStatus::InvitationSent));
        assert_eq!(row.kind, "invited");
        assert_eq!(row.grants.len(), 1);
        assert!(row.entitlements.is_empty());
        let row = user_row(&UserRecord { role_id: String::new(), ..user(UserStatus::Verified) });
        assert!(row.grants.is_empty());
    }

    #[test]
    fn resource_has_user_trait() {
        let r = user_resource(&user(UserStatus::Verified));
        assert_eq!(r.display_name, "a@example.com");
        assert_eq!(r.annotations[0].type_url, "type.googleapis.com/c1.connector.v2.UserTrait");
    }
}
