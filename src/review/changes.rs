//! Changes between the previous sync (the older finished sync of the same file, or the newest of `--against`)
//! and the reviewed one: accounts (users and API keys) added and removed, role and status changes. Accounts are
//! matched by type and id, roles compared by id and shown by name.

use std::collections::HashMap;
use std::sync::Arc;

use super::read::SyncData;
use super::{Account, AccountType, RoleSummary};

/// A change's code: stable, for pipelines to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeCode {
    AccountAdded,
    AccountRemoved,
    RoleChanged,
    StatusChanged,
}

impl ChangeCode {
    pub const ALL: [ChangeCode; 4] =
        [ChangeCode::AccountAdded, ChangeCode::AccountRemoved, ChangeCode::RoleChanged, ChangeCode::StatusChanged];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeCode::AccountAdded => "account_added",
            ChangeCode::AccountRemoved => "account_removed",
            ChangeCode::RoleChanged => "role_changed",
            ChangeCode::StatusChanged => "status_changed",
        }
    }
}

/// The account a change is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeSubject {
    pub kind: AccountType,
    pub id: String,
    pub name: String,
}

/// One change. `from`/`to`: the role names of `role_changed`, the statuses of `status_changed`; the role the
/// account had (`account_removed`) or has (`account_added`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub code: ChangeCode,
    pub subject: ChangeSubject,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The changes from `before` to the current accounts, by code, then type, then name.
pub(crate) fn decide(
    before: &SyncData,
    accounts: &[Account],
    roles: &[RoleSummary],
    role_index: &HashMap<Arc<str>, usize>,
) -> Vec<Change> {
    let old_roles: HashMap<&str, &str> = before.roles.iter().map(|r| (&*r.id, r.name.as_str())).collect();
    let old_role = |a: &Account| role_name(a, old_roles.get(&*a.role_id).copied());
    let new_role = |a: &Account| role_name(a, role_index.get(&a.role_id).map(|&i| roles[i].role.name.as_str()));
    let mut old: HashMap<(AccountType, &str), &Account> =
        before.accounts.iter().map(|a| ((a.kind, &*a.id), a)).collect();
    let mut changes = Vec::new();
    let subject = |a: &Account| ChangeSubject { kind: a.kind, id: a.id.to_string(), name: a.name.to_string() };
    for a in accounts {
        let Some(was) = old.remove(&(a.kind, &*a.id)) else {
            changes.push(Change {
                code: ChangeCode::AccountAdded,
                subject: subject(a),
                from: None,
                to: Some(new_role(a)),
            });
            continue;
        };
        if was.role_id != a.role_id {
            changes.push(Change {
                code: ChangeCode::RoleChanged,
                subject: subject(a),
                from: Some(old_role(was)),
                to: Some(new_role(a)),
            });
        }
        if was.status != a.status {
            changes.push(Change {
                code: ChangeCode::StatusChanged,
                subject: subject(a),
                from: Some(was.status.label().to_string()),
                to: Some(a.status.label().to_string()),
            });
        }
    }
    for was in old.into_values() {
        changes.push(Change {
            code: ChangeCode::AccountRemoved,
            subject: subject(was),
            from: Some(old_role(was)),
            to: None,
        });
    }
    changes.sort_by_cached_key(|c| (c.code, c.subject.kind, c.subject.name.to_lowercase(), c.subject.id.clone()));
    changes
}

/// A role's name, else the id (or the key's own role name) for a role not in the list; `(none)` without a role.
fn role_name(a: &Account, listed: Option<&str>) -> String {
    match listed {
        Some(name) => name.to_string(),
        None if a.role_id.is_empty() => "(none)".to_string(),
        None => match a.key.as_ref().map(|k| &*k.role_name).filter(|n| !n.is_empty()) {
            Some(name) => format!("{name} ({})", a.role_id),
            None => a.role_id.to_string(),
        },
    }
}
