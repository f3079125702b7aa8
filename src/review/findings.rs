//! Findings: what an access review of one sync flags, each with a stable code, a fixed severity, the account (or
//! role) and the evidence. `docs/review.md` states each rule; this file is the only place that decides them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{date, days_between, is_privileged, Account, AccountType, RoleSummary, Severity, Status};

/// A finding's code: stable, for pipelines to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingCode {
    OwnerApiKey,
    OrphanedPrivateKey,
    UnknownRole,
    InactiveUser,
    NeverLoggedIn,
    PendingInvitation,
    UnusedCustomRole,
}

impl FindingCode {
    /// Every code, in the order reports list codes of equal severity.
    pub const ALL: [FindingCode; 7] = [
        FindingCode::OwnerApiKey,
        FindingCode::OrphanedPrivateKey,
        FindingCode::UnknownRole,
        FindingCode::InactiveUser,
        FindingCode::NeverLoggedIn,
        FindingCode::PendingInvitation,
        FindingCode::UnusedCustomRole,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::OwnerApiKey => "owner_api_key",
            FindingCode::OrphanedPrivateKey => "orphaned_private_key",
            FindingCode::UnknownRole => "unknown_role",
            FindingCode::InactiveUser => "inactive_user",
            FindingCode::NeverLoggedIn => "never_logged_in",
            FindingCode::PendingInvitation => "pending_invitation",
            FindingCode::UnusedCustomRole => "unused_custom_role",
        }
    }

    /// The code's fixed severity.
    pub fn severity(self) -> Severity {
        match self {
            FindingCode::OwnerApiKey | FindingCode::OrphanedPrivateKey => Severity::High,
            FindingCode::UnknownRole | FindingCode::InactiveUser => Severity::Medium,
            FindingCode::NeverLoggedIn | FindingCode::PendingInvitation | FindingCode::UnusedCustomRole => {
                Severity::Low
            }
        }
    }
}

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    User,
    ApiKey,
    Role,
}

impl SubjectType {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectType::User => "user",
            SubjectType::ApiKey => "api_key",
            SubjectType::Role => "role",
        }
    }
}

impl From<AccountType> for SubjectType {
    fn from(kind: AccountType) -> SubjectType {
        match kind {
            AccountType::User => SubjectType::User,
            AccountType::ApiKey => SubjectType::ApiKey,
        }
    }
}

/// The account or role a finding is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub kind: SubjectType,
    pub id: String,
    pub name: String,
}

impl Subject {
    pub(crate) fn account_type(&self) -> Option<AccountType> {
        match self.kind {
            SubjectType::User => Some(AccountType::User),
            SubjectType::ApiKey => Some(AccountType::ApiKey),
            SubjectType::Role => None,
        }
    }

    fn of(account: &Account) -> Subject {
        Subject { kind: account.kind.into(), id: account.id.to_string(), name: account.name.to_string() }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub code: FindingCode,
    pub severity: Severity,
    pub subject: Subject,
    /// Why, in one sentence with the facts from the file (Torq text unescaped: each format escapes it).
    pub evidence: String,
}

/// The thresholds of a review.
pub(crate) struct Settings<'a> {
    /// Unix seconds.
    pub(crate) now: i64,
    pub(crate) inactive_days: u32,
    pub(crate) pending_days: u32,
    /// Owner and the `--privileged-role` names.
    pub(crate) privileged: &'a [String],
}

/// The findings of one sync, most severe first, and notes on what could not be decided.
pub(crate) fn decide(
    accounts: &[Account],
    roles: &[RoleSummary],
    role_index: &HashMap<Arc<str>, usize>,
    settings: &Settings<'_>,
) -> (Vec<Finding>, Vec<String>) {
    let mut found = Vec::new();
    let mut notes = Vec::new();
    let day = 86_400i64;
    let now = settings.now;
    let active_users: HashSet<&str> =
        accounts.iter().filter(|a| a.kind == AccountType::User && a.status.is_active()).map(|a| &*a.id).collect();
    let users: HashMap<&str, &Account> =
        accounts.iter().filter(|a| a.kind == AccountType::User).map(|a| (&*a.id, a)).collect();
    let mut push = |code: FindingCode, subject: Subject, evidence: String| {
        found.push(Finding { code, severity: code.severity(), subject, evidence });
    };
    if roles.is_empty() && !accounts.is_empty() {
        notes.push("the sync has no roles, so unknown_role is not decided".to_string());
    }
    for a in accounts {
        let role = role_index.get(&a.role_id).map(|&i| &roles[i]);
        let key = a.key.as_deref();
        // owner_api_key: an API key whose role (by the role list, else the key's own role name) is privileged.
        if let Some(key) = key {
            let role_name = role.map_or(&*key.role_name, |r| r.role.name.as_str());
            let privileged =
                role.map_or_else(|| is_privileged(&a.role_id, role_name, settings.privileged), |r| r.privileged);
            if privileged {
                let kind =
                    if key.key_type.is_empty() { "API key".to_string() } else { format!("{} API key", key.key_type) };
                let owner = if key.owner_email.is_empty() { String::new() } else { format!(" of {}", key.owner_email) };
                let held = if role_name.eq_ignore_ascii_case(super::OWNER_ROLE) {
                    "the Owner role".to_string()
                } else {
                    format!("the privileged role {role_name}")
                };
                push(FindingCode::OwnerApiKey, Subject::of(a), format!("{kind}{owner} holds {held}"));
            }
            // orphaned_private_key: the owner is not an active user of this sync.
            if &*key.key_type == "private" {
                let owner = if key.owner_email.is_empty() { &*key.owner_id } else { &*key.owner_email };
                let evidence = if key.owner_id.is_empty() {
                    Some("Torq named no owner for this private key".to_string())
                } else if active_users.contains(&*key.owner_id) {
                    None
                } else {
                    match users.get(&*key.owner_id) {
                        Some(u) => Some(format!("owner {owner} is {}, not an active user", u.status.label())),
                        None => Some(format!("owner {owner} is not a user in this sync")),
                    }
                };
                if let Some(evidence) = evidence {
                    push(FindingCode::OrphanedPrivateKey, Subject::of(a), evidence);
                }
            }
        }
        // unknown_role: a role that is not in the sync's role list (or none at all).
        if !roles.is_empty() && role.is_none() {
            let evidence = if a.role_id.is_empty() {
                "no role is recorded for this account".to_string()
            } else {
                match key.map(|k| &*k.role_name).filter(|n| !n.is_empty()) {
                    Some(name) => format!("role {name} ({}) is not in this sync's role list", a.role_id),
                    None => format!("role {} is not in this sync's role list", a.role_id),
                }
            };
            push(FindingCode::UnknownRole, Subject::of(a), evidence);
        }
        if a.kind != AccountType::User || !a.login_recorded {
            continue;
        }
        match (&a.status, a.last_login) {
            // inactive_user: an active user whose last login is older than --inactive-days.
            (status, Some(login)) if status.is_active() && login < now - i64::from(settings.inactive_days) * day => {
                push(
                    FindingCode::InactiveUser,
                    Subject::of(a),
                    format!(
                        "last login {} ({} days ago; --inactive-days {})",
                        date(login),
                        days_between(login, now),
                        settings.inactive_days
                    ),
                );
            }
            // never_logged_in: a verified user without a last login.
            (Status::Verified, None) => {
                let created = a.created.map_or(String::new(), |c| format!("; created {}", date(c)));
                push(FindingCode::NeverLoggedIn, Subject::of(a), format!("verified, no login recorded{created}"));
            }
            _ => {}
        }
        // pending_invitation: invited longer ago than --pending-days (the invitation date is the creation time).
        if a.status == Status::Invited {
            if let Some(created) = a.created.filter(|c| *c < now - i64::from(settings.pending_days) * day) {
                push(
                    FindingCode::PendingInvitation,
                    Subject::of(a),
                    format!(
                        "invited {} ({} days ago; --pending-days {}), not accepted",
                        date(created),
                        days_between(created, now),
                        settings.pending_days
                    ),
                );
            }
        }
    }
    // unused_custom_role: a custom role no user or API key holds.
    for r in roles {
        if r.role.custom == Some(true) && r.users == 0 && r.api_keys == 0 {
            push(
                FindingCode::UnusedCustomRole,
                Subject { kind: SubjectType::Role, id: r.role.id.to_string(), name: r.role.name.clone() },
                "custom role held by no user and no API key".to_string(),
            );
        }
    }
    if !roles.is_empty() && roles.iter().all(|r| r.role.custom.is_none()) {
        notes.push("the file does not say which roles are custom, so unused_custom_role is not decided".to_string());
    }
    found.sort_by_cached_key(|f| {
        (std::cmp::Reverse(f.severity), f.code, f.subject.name.to_lowercase(), f.subject.id.clone())
    });
    (found, notes)
}
