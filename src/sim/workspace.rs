//! The simulated workspace's data: a fixed list of users and roles (loaded from JSON, e.g. the built-in demo
//! workspace), or a generated workspace whose users are computed on demand from a seed, so that a million users
//! cost no memory.
//!
//! Generation is deterministic: user `i` of seed `s` is always the same user, whichever endpoint or request
//! asks for it. Every value derives from a SplitMix64 hash of `(seed, domain, index)`.

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize};

use super::SimError;

/// A Torq user as the simulator serves it (`usersv1alphaUser`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimUser {
    pub id: String,
    pub email: String,
    pub role_id: String,
    pub status: String,
    pub sso_provision: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_login_time: Option<String>,
}

/// A Torq role as the legacy `users/roles` endpoint serves it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimRole {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub scope_names: Vec<String>,
}

/// Parameters of a generated workspace.
#[derive(Clone, Copy, Debug)]
pub struct GeneratedSpec {
    /// Number of users.
    pub users: u64,
    /// Number of roles; 0 is treated as 1 (every user needs a role).
    pub roles: u32,
    /// Share of SSO-provisioned users in percent; values above 100 are treated as 100.
    pub sso_percent: u8,
    /// Seed; the same seed always yields the same workspace.
    pub seed: u64,
}

/// The data a [`super::SimServer`] serves.
#[derive(Clone, Debug)]
pub enum Workspace {
    /// Users and roles held in memory.
    Fixed { users: Vec<SimUser>, roles: Vec<SimRole> },
    /// Users and roles computed on demand.
    Generated(GeneratedSpec),
}

#[derive(Deserialize)]
struct WorkspaceFile {
    #[serde(default)]
    users: Vec<SimUser>,
    #[serde(default)]
    roles: Vec<SimRole>,
}

/// Preset roles that come first in a generated workspace: (name, description, scopes).
const PRESET_ROLES: [(&str, &str, &[&str]); 5] = [
    (
        "Owner",
        "Full access to the workspace",
        &["user.read", "user.write", "apikey.read", "apikey.write", "playbook.read", "playbook.write"],
    ),
    ("Contributor", "Build and run workflows", &["user.read", "playbook.read", "playbook.write"]),
    ("Creator", "Create workflows", &["playbook.read", "playbook.write"]),
    ("Operator", "Run workflows", &["playbook.read", "playbook.execute"]),
    ("Viewer", "Read-only access", &["playbook.read"]),
];

/// Hash domains, so that ids, roles and flags of the same index are independent.
const DOMAIN_USER: u64 = 0x5553_4552; // "USER"
const DOMAIN_ROLE: u64 = 0x524f_4c45; // "ROLE"

/// 2023-01-01T00:00:00Z: earliest generated `created_time`.
const EPOCH_2023: i64 = 1_672_531_200;
const DAY: i64 = 86_400;

impl Workspace {
    /// Parses `{"users":[...],"roles":[...]}` as in `workspace.json`. Rejects duplicate user or role ids.
    pub fn from_json(text: &str) -> Result<Workspace, SimError> {
        let file: WorkspaceFile = serde_json::from_str(text)?;
        let mut seen = HashSet::new();
        for user in &file.users {
            if !seen.insert(user.id.as_str()) {
                return Err(SimError::Invalid(format!("duplicate user id {}", user.id)));
            }
        }
        seen.clear();
        for role in &file.roles {
            if !seen.insert(role.id.as_str()) {
                return Err(SimError::Invalid(format!("duplicate role id {}", role.id)));
            }
        }
        Ok(Workspace::Fixed { users: file.users, roles: file.roles })
    }

    /// The built-in demo workspace (15 users, 5 roles, fictional people).
    pub fn demo() -> Workspace {
        match Workspace::from_json(include_str!("demo_workspace.json")) {
            Ok(workspace) => workspace,
            // The file is compiled in and checked by a unit test, so this cannot happen at run time.
            Err(err) => unreachable!("built-in demo workspace is invalid: {err}"),
        }
    }

    /// A generated workspace; see [`GeneratedSpec`].
    pub fn generated(spec: GeneratedSpec) -> Workspace {
        Workspace::Generated(GeneratedSpec { roles: spec.roles.max(1), sso_percent: spec.sso_percent.min(100), ..spec })
    }

    /// The users whose `sso_provision` equals `sso`, in a stable order. Generated users are computed lazily.
    pub fn users(&self, sso: bool) -> Box<dyn Iterator<Item = SimUser> + Send + '_> {
        match self {
            Workspace::Fixed { users, .. } => Box::new(users.iter().filter(move |u| u.sso_provision == sso).cloned()),
            Workspace::Generated(spec) => {
                let spec = *spec;
                Box::new(
                    (0..spec.users)
                        .filter(move |&i| generated_is_sso(&spec, i) == sso)
                        .map(move |i| generated_user(&spec, i)),
                )
            }
        }
    }

    /// All roles.
    pub fn roles(&self) -> Vec<SimRole> {
        match self {
            Workspace::Fixed { roles, .. } => roles.clone(),
            Workspace::Generated(spec) => (0..u64::from(spec.roles)).map(|i| generated_role(spec, i)).collect(),
        }
    }

    /// Roles `offset..offset+len` (clipped to the end), without materialising the others.
    pub(crate) fn role_page(&self, offset: u64, len: u64) -> Vec<SimRole> {
        let end = offset.saturating_add(len).min(self.role_count());
        match self {
            Workspace::Fixed { roles, .. } => {
                let (start, end) = (to_index(offset), to_index(end));
                roles.get(start..end).map(<[SimRole]>::to_vec).unwrap_or_default()
            }
            Workspace::Generated(spec) => (offset..end).map(|i| generated_role(spec, i)).collect(),
        }
    }

    /// Number of users (local and SSO).
    pub fn user_count(&self) -> u64 {
        match self {
            Workspace::Fixed { users, .. } => users.len() as u64,
            Workspace::Generated(spec) => spec.users,
        }
    }

    /// Number of roles.
    pub fn role_count(&self) -> u64 {
        match self {
            Workspace::Fixed { roles, .. } => roles.len() as u64,
            Workspace::Generated(spec) => u64::from(spec.roles.max(1)),
        }
    }
}

fn to_index(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// SplitMix64 finaliser: a cheap, well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `k`-th 64-bit value of item `index` in `domain` for `seed`.
fn hash(seed: u64, domain: u64, index: u64, k: u64) -> u64 {
    mix(mix(mix(seed ^ domain).wrapping_add(index)).wrapping_add(k))
}

/// Formats 128 bits as a version-4-looking UUID.
pub(crate) fn uuid_like(hi: u64, lo: u64) -> String {
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

fn generated_is_sso(spec: &GeneratedSpec, i: u64) -> bool {
    hash(spec.seed, DOMAIN_USER, i, 2) % 100 < u64::from(spec.sso_percent.min(100))
}

fn generated_role_id(spec: &GeneratedSpec, r: u64) -> String {
    uuid_like(hash(spec.seed, DOMAIN_ROLE, r, 0), hash(spec.seed, DOMAIN_ROLE, r, 1))
}

/// RFC 3339 text for a Unix time; `precision` 0 = whole seconds, 1 = milliseconds, 2 = nanoseconds.
fn rfc3339(secs: i64, nanos: u32, precision: u64) -> Option<String> {
    let format = match precision {
        0 => SecondsFormat::Secs,
        1 => SecondsFormat::Millis,
        _ => SecondsFormat::Nanos,
    };
    DateTime::from_timestamp(secs, nanos).map(|t| t.to_rfc3339_opts(format, true))
}

fn generated_user(spec: &GeneratedSpec, i: u64) -> SimUser {
    let h = |k| hash(spec.seed, DOMAIN_USER, i, k);
    let roles = u64::from(spec.roles.max(1));
    let status = match h(3) % 100 {
        0..=94 => "VERIFIED",
        95..=98 => "INVITATION_SENT",
        _ => "STATUS_UNSPECIFIED",
    };
    // Created some time in 2023..2025; last login after creation, unless the user never logged in.
    let created = EPOCH_2023 + (h(4) % (3 * 365 * DAY as u64)) as i64;
    let created_time = rfc3339(created, 0, 0);
    let never_logged_in = status != "VERIFIED" || h(5) % 20 == 0;
    let last_login_time = if never_logged_in {
        None
    } else {
        let login = created + (h(6) % (365 * DAY as u64)) as i64;
        let nanos = (h(7) % 1_000_000_000) as u32;
        rfc3339(login, nanos, h(8) % 3)
    };
    SimUser {
        id: uuid_like(h(0), h(1)),
        email: format!("user{i}@example.com"),
        role_id: generated_role_id(spec, h(9) % roles),
        status: status.to_owned(),
        sso_provision: generated_is_sso(spec, i),
        created_time,
        last_login_time,
    }
}

fn generated_role(spec: &GeneratedSpec, r: u64) -> SimRole {
    let (name, description, scopes) = match PRESET_ROLES.get(to_index(r)) {
        Some((name, description, scopes)) => {
            ((*name).to_owned(), (*description).to_owned(), scopes.iter().map(|s| (*s).to_owned()).collect())
        }
        None => (
            format!("Role {}", r + 1),
            format!("Generated custom role number {}", r + 1),
            vec!["playbook.read".to_owned(), "cases.read".to_owned()],
        ),
    };
    SimRole { id: generated_role_id(spec, r), name, description, scope_names: scopes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_workspace_loads() {
        let ws = Workspace::demo();
        assert_eq!(ws.user_count(), 15);
        assert_eq!(ws.role_count(), 5);
        let role_ids: HashSet<String> = ws.roles().into_iter().map(|r| r.id).collect();
        let users: Vec<SimUser> = ws.users(false).chain(ws.users(true)).collect();
        assert_eq!(users.len(), 15);
        assert!(users.iter().all(|u| role_ids.contains(&u.role_id)));
        assert!(users.iter().any(|u| u.status == "STATUS_UNSPECIFIED"));
        assert!(users.iter().any(|u| u.status == "VERIFIED" && u.last_login_time.is_none()));
    }

    #[test]
    fn generated_is_deterministic_and_consistent() {
        let spec = GeneratedSpec { users: 5_000, roles: 12, sso_percent: 30, seed: 7 };
        let a = Workspace::generated(spec);
        let b = Workspace::generated(spec);
        let ua: Vec<String> = a.users(true).map(|u| u.id).collect();
        let ub: Vec<String> = b.users(true).map(|u| u.id).collect();
        assert_eq!(ua, ub);
        let local = a.users(false).count();
        assert_eq!(local + ua.len(), 5_000);
        assert!((1_200..1_800).contains(&ua.len()), "sso share {}", ua.len());
        let roles = a.roles();
        assert_eq!(roles.len(), 12);
        assert_eq!(roles[0].name, "Owner");
        assert_eq!(roles[11].name, "Role 12");
        let role_ids: HashSet<&str> = roles.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(role_ids.len(), 12);
        let users: Vec<SimUser> = a.users(false).collect();
        assert!(users.iter().all(|u| role_ids.contains(u.role_id.as_str())));
        let ids: HashSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids.len(), users.len());
        let verified = users.iter().filter(|u| u.status == "VERIFIED").count();
        assert!(verified * 100 / users.len() >= 90);
        assert!(users.iter().any(|u| u.last_login_time.is_none()));
        assert!(users.iter().all(|u| u.created_time.is_some()));
        assert_eq!(a.role_page(10, 5).len(), 2);
        assert_eq!(a.role_page(20, 5).len(), 0);
    }

    #[test]
    fn from_json_rejects_duplicates() {
        let text = r#"{"users":[],"roles":[{"id":"a","name":"x"},{"id":"a","name":"y"}]}"#;
        assert!(matches!(Workspace::from_json(text), Err(SimError::Invalid(_))));
        assert!(matches!(Workspace::from_json("[1]"), Err(SimError::Json(_))));
    }
}
