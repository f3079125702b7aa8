//! The simulated workspace's data: fixed lists of users, roles, API keys and SSO claim mappings (loaded from
//! JSON, e.g. the built-in demo workspace), or a generated workspace whose items are computed on demand from a
//! seed, so that a million users cost no memory. A [`Workspace`] value never changes; users invited while a
//! server runs are kept by the server, next to it.
//!
//! Generation is deterministic: user `i` of seed `s` is always the same user, whichever endpoint or request
//! asks for it. Every value derives from a SplitMix64 hash of `(seed, domain, index)`.

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize};

use super::SimError;

/// A Torq user as the simulator serves it (`usersv1alphaUser`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// A Torq role. The legacy `users/roles` endpoint serves all fields but `is_custom`, which only the RBAC
/// `roles` endpoint knows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimRole {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub scope_names: Vec<String>,
    /// A role created in the workspace (or by the organisation), as opposed to a preset role.
    #[serde(default)]
    pub is_custom: bool,
}

/// A Torq API key as `GET api-keys` serves it (`ApiKey`). There is no secret field: Torq never returns one.
/// Empty strings and `None` are omitted from the answer, as proto3 JSON may do for default values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimApiKey {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `API_KEY_TYPE_SERVICE`, `API_KEY_TYPE_PRIVATE` or `API_KEY_TYPE_UNSPECIFIED` (kept as text so that a
    /// workspace can also hold a type Torq adds later; empty = the field is omitted).
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub key_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<String>,
    /// When a token was last minted with the key; absent for a key never used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_authenticated_time: Option<String>,
    /// Private keys: the full user object of the key's owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<SimUser>,
}

/// `API_KEY_TYPE_SERVICE`.
pub const API_KEY_TYPE_SERVICE: &str = "API_KEY_TYPE_SERVICE";
/// `API_KEY_TYPE_PRIVATE`.
pub const API_KEY_TYPE_PRIVATE: &str = "API_KEY_TYPE_PRIVATE";
/// `API_KEY_TYPE_UNSPECIFIED`.
pub const API_KEY_TYPE_UNSPECIFIED: &str = "API_KEY_TYPE_UNSPECIFIED";

/// An int64 as grpc-gateway's JSON may write it: a number or a decimal string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SimInt64 {
    Number(i64),
    Text(String),
}

impl Default for SimInt64 {
    fn default() -> SimInt64 {
        SimInt64::Number(0)
    }
}

/// An SSO claim mapping as `GET sso/claim_mappings` serves it: SSO users whose claim `claim_name` has the value
/// `claim_value` get role `role_id`; the first matching mapping in `rank` order wins.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimClaimMapping {
    pub(crate) id: String,
    pub(crate) claim_name: String,
    pub(crate) claim_value: String,
    pub(crate) role_id: String,
    #[serde(default)]
    pub(crate) rank: SimInt64,
}

/// Parameters of a generated workspace. `GeneratedSpec { users: 1000, ..GeneratedSpec::default() }` leaves
/// the rest at zero (one role, no SSO users, no API keys or claim mappings, seed 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GeneratedSpec {
    /// Number of users.
    pub users: u64,
    /// Number of roles; 0 is treated as 1 (every user needs a role).
    pub roles: u32,
    /// Share of SSO-provisioned users in percent; values above 100 are treated as 100.
    pub sso_percent: u8,
    /// Seed; the same seed always yields the same workspace.
    pub seed: u64,
    /// Number of API keys: about half service keys, a third private keys owned by a generated user, the rest
    /// of unspecified type; one in twenty holds a role that is not in the role list.
    pub api_keys: u32,
    /// Number of SSO claim mappings (ranks 1..n, every other one written as a JSON string).
    pub claim_mappings: u32,
}

/// The data a [`super::SimServer`] serves.
#[derive(Clone, Debug)]
pub enum Workspace {
    /// Everything held in memory.
    Fixed { users: Vec<SimUser>, roles: Vec<SimRole>, api_keys: Vec<SimApiKey>, claim_mappings: Vec<SimClaimMapping> },
    /// Everything computed on demand.
    Generated(GeneratedSpec),
}

#[derive(Deserialize)]
struct WorkspaceFile {
    #[serde(default)]
    users: Vec<SimUser>,
    #[serde(default)]
    roles: Vec<SimRole>,
    #[serde(default)]
    api_keys: Vec<SimApiKey>,
    #[serde(default)]
    claim_mappings: Vec<SimClaimMapping>,
}

/// Preset roles that come first in a generated workspace: (name, description, scopes). Later roles are custom.
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
const DOMAIN_KEY: u64 = 0x4b45_5953; // "KEYS"
const DOMAIN_MAPPING: u64 = 0x4d41_5053; // "MAPS"

/// 2023-01-01T00:00:00Z: earliest generated `created_time`.
const EPOCH_2023: i64 = 1_672_531_200;
const DAY: i64 = 86_400;

impl Workspace {
    /// Parses `{"users":[...],"roles":[...],"api_keys":[...],"claim_mappings":[...]}` as in `workspace.json`
    /// (every list may be omitted). Rejects duplicate ids.
    pub fn from_json(text: &str) -> Result<Workspace, SimError> {
        let file: WorkspaceFile = serde_json::from_str(text)?;
        unique("user id", file.users.iter().map(|u| u.id.clone()))?;
        unique("role id", file.roles.iter().map(|r| r.id.clone()))?;
        unique("API key client_id", file.api_keys.iter().map(|k| k.client_id.clone()))?;
        unique("claim mapping id", file.claim_mappings.iter().map(|m| m.id.clone()))?;
        Ok(Workspace::Fixed {
            users: file.users,
            roles: file.roles,
            api_keys: file.api_keys,
            claim_mappings: file.claim_mappings,
        })
    }

    /// A fixed workspace with these users and roles and no API keys or claim mappings.
    pub fn fixed(users: Vec<SimUser>, roles: Vec<SimRole>) -> Workspace {
        Workspace::Fixed { users, roles, api_keys: Vec::new(), claim_mappings: Vec::new() }
    }

    /// The built-in demo workspace (15 users, 5 roles, 7 API keys, 3 claim mappings, fictional people).
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

    /// All API keys.
    pub(crate) fn api_keys(&self) -> Vec<SimApiKey> {
        match self {
            Workspace::Fixed { api_keys, .. } => api_keys.clone(),
            Workspace::Generated(spec) => (0..u64::from(spec.api_keys)).map(|k| generated_api_key(spec, k)).collect(),
        }
    }

    /// All SSO claim mappings.
    pub(crate) fn claim_mappings(&self) -> Vec<SimClaimMapping> {
        match self {
            Workspace::Fixed { claim_mappings, .. } => claim_mappings.clone(),
            Workspace::Generated(spec) => {
                (0..u64::from(spec.claim_mappings)).map(|m| generated_claim_mapping(spec, m)).collect()
            }
        }
    }

    /// Is there a user with this email (compared case-insensitively)? Generated workspaces answer without
    /// enumerating their users.
    pub(crate) fn has_email(&self, email: &str) -> bool {
        match self {
            Workspace::Fixed { users, .. } => users.iter().any(|u| u.email.eq_ignore_ascii_case(email)),
            Workspace::Generated(spec) => {
                let email = email.to_ascii_lowercase();
                email
                    .strip_prefix("user")
                    .and_then(|rest| rest.strip_suffix("@example.com"))
                    .filter(|digits| !digits.starts_with('0') || *digits == "0")
                    .and_then(|digits| digits.parse::<u64>().ok())
                    .is_some_and(|i| i < spec.users)
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

    /// Number of roles.
    pub(crate) fn role_count(&self) -> u64 {
        match self {
            Workspace::Fixed { roles, .. } => roles.len() as u64,
            Workspace::Generated(spec) => u64::from(spec.roles.max(1)),
        }
    }
}

/// Fails on the first value of `values` that occurs twice.
fn unique(what: &str, values: impl Iterator<Item = String>) -> Result<(), SimError> {
    let mut seen = HashSet::new();
    for value in values {
        if !seen.insert(value.clone()) {
            return Err(SimError::Invalid(format!("duplicate {what} {value}")));
        }
    }
    Ok(())
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
    let is_custom = to_index(r) >= PRESET_ROLES.len();
    SimRole { id: generated_role_id(spec, r), name, description, scope_names: scopes, is_custom }
}

fn generated_api_key(spec: &GeneratedSpec, k: u64) -> SimApiKey {
    let h = |n| hash(spec.seed, DOMAIN_KEY, k, n);
    let roles = u64::from(spec.roles.max(1));
    let key_type = match h(2) % 10 {
        0..=4 => API_KEY_TYPE_SERVICE,
        5..=7 if spec.users > 0 => API_KEY_TYPE_PRIVATE,
        5..=7 => API_KEY_TYPE_SERVICE,
        _ => API_KEY_TYPE_UNSPECIFIED,
    };
    let (role_id, role_name) = if h(3) % 20 == 0 {
        // A role that is not (or no longer) in the role list.
        (uuid_like(h(4), h(5)), "Deleted role".to_owned())
    } else {
        let role = generated_role(spec, h(3) % roles);
        (role.id, role.name)
    };
    let created = EPOCH_2023 + (h(6) % (3 * 365 * DAY as u64)) as i64;
    let last_authenticated_time = if h(7) % 8 == 0 {
        None
    } else {
        rfc3339(created + (h(8) % (365 * DAY as u64)) as i64, (h(9) % 1_000_000_000) as u32, h(10) % 3)
    };
    let user = (key_type == API_KEY_TYPE_PRIVATE).then(|| generated_user(spec, h(11) % spec.users.max(1)));
    SimApiKey {
        client_id: uuid_like(h(0), h(1)),
        // Every fifteenth key has no name.
        name: if k % 15 == 14 { String::new() } else { format!("Generated key {}", k + 1) },
        key_type: key_type.to_owned(),
        role_id,
        role_name,
        created_time: rfc3339(created, 0, 0),
        last_authenticated_time,
        user,
    }
}

fn generated_claim_mapping(spec: &GeneratedSpec, m: u64) -> SimClaimMapping {
    let h = |n| hash(spec.seed, DOMAIN_MAPPING, m, n);
    let rank = i64::try_from(m + 1).unwrap_or(i64::MAX);
    SimClaimMapping {
        id: uuid_like(h(0), h(1)),
        claim_name: "groups".to_owned(),
        claim_value: format!("idp-group-{}", m + 1),
        role_id: generated_role_id(spec, m % u64::from(spec.roles.max(1))),
        rank: if m % 2 == 1 { SimInt64::Text(rank.to_string()) } else { SimInt64::Number(rank) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_workspace_loads() {
        let ws = Workspace::demo();
        assert_eq!(ws.role_count(), 5);
        let role_ids: HashSet<String> = ws.roles().into_iter().map(|r| r.id).collect();
        let users: Vec<SimUser> = ws.users(false).chain(ws.users(true)).collect();
        assert_eq!(users.len(), 15);
        assert!(users.iter().all(|u| role_ids.contains(&u.role_id)));
        assert!(users.iter().any(|u| u.status == "STATUS_UNSPECIFIED"));
        assert!(users.iter().any(|u| u.status == "VERIFIED" && u.last_login_time.is_none()));

        // Roles: scopes on every role, one custom role.
        let roles = ws.roles();
        assert!(roles.iter().all(|r| !r.scope_names.is_empty()));
        assert_eq!(
            roles.iter().filter(|r| r.is_custom).map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["Incident Responders"]
        );

        // API keys of every kind: service (one Owner), private with their owner embedded, an unknown role, no
        // name, unspecified type, never authenticated.
        let keys = ws.api_keys();
        assert_eq!(keys.len(), 7);
        let service: Vec<&SimApiKey> = keys.iter().filter(|k| k.key_type == API_KEY_TYPE_SERVICE).collect();
        assert!(service.iter().any(|k| k.role_name == "Owner" && role_ids.contains(&k.role_id)));
        let private: Vec<&SimApiKey> = keys.iter().filter(|k| k.key_type == API_KEY_TYPE_PRIVATE).collect();
        assert_eq!(private.len(), 2);
        for key in private {
            let owner = key.user.as_ref().expect("private keys embed their owner");
            let listed = users.iter().find(|u| u.id == owner.id).expect("the owner is a workspace user");
            assert_eq!(serde_json::to_value(listed).unwrap(), serde_json::to_value(owner).unwrap());
            assert_eq!(key.role_id, owner.role_id);
        }
        assert!(keys.iter().filter(|k| k.key_type != API_KEY_TYPE_PRIVATE).all(|k| k.user.is_none()));
        assert_eq!(keys.iter().filter(|k| !role_ids.contains(&k.role_id)).count(), 1);
        assert_eq!(keys.iter().filter(|k| k.name.is_empty()).count(), 1);
        assert_eq!(keys.iter().filter(|k| k.key_type == API_KEY_TYPE_UNSPECIFIED).count(), 1);
        assert_eq!(keys.iter().filter(|k| k.last_authenticated_time.is_none()).count(), 1);

        let mappings = ws.claim_mappings();
        assert_eq!(mappings.len(), 3);
        assert!(mappings.iter().all(|m| role_ids.contains(&m.role_id)));
        assert!(mappings.iter().any(|m| matches!(m.rank, SimInt64::Text(_))));
        assert!(mappings.iter().any(|m| matches!(m.rank, SimInt64::Number(_))));
        assert!(ws.has_email("ORLA.quennell@northwind-secops.example"));
        assert!(!ws.has_email("nobody@northwind-secops.example"));
    }

    #[test]
    fn generated_is_deterministic_and_consistent() {
        let spec = GeneratedSpec { users: 5_000, roles: 12, sso_percent: 30, seed: 7, ..GeneratedSpec::default() };
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
        assert!(roles[..5].iter().all(|r| !r.is_custom) && roles[5..].iter().all(|r| r.is_custom));
        assert!(a.api_keys().is_empty() && a.claim_mappings().is_empty(), "none unless asked for");
        assert!(a.has_email("User4999@example.com") && !a.has_email("user5000@example.com"));
        assert!(!a.has_email("user01@example.com") && !a.has_email("user@example.com"));
    }

    #[test]
    fn generated_api_keys_and_claim_mappings() {
        let spec =
            GeneratedSpec { users: 100, roles: 8, seed: 9, api_keys: 200, claim_mappings: 5, ..Default::default() };
        let ws = Workspace::generated(spec);
        let keys = ws.api_keys();
        assert_eq!(keys, Workspace::generated(spec).api_keys(), "deterministic");
        assert_eq!(keys.len(), 200);
        assert_eq!(keys.iter().map(|k| k.client_id.as_str()).collect::<HashSet<_>>().len(), 200);
        let role_ids: HashSet<String> = ws.roles().into_iter().map(|r| r.id).collect();
        let count = |f: &dyn Fn(&SimApiKey) -> bool| keys.iter().filter(|k| f(k)).count();
        assert!(count(&|k| k.key_type == API_KEY_TYPE_SERVICE) > 60);
        assert!(count(&|k| k.key_type == API_KEY_TYPE_PRIVATE && k.user.is_some()) > 30);
        assert!(count(&|k| k.key_type == API_KEY_TYPE_UNSPECIFIED) > 5);
        assert!(count(&|k| k.key_type != API_KEY_TYPE_PRIVATE && k.user.is_some()) == 0);
        assert!((1..40).contains(&count(&|k| !role_ids.contains(&k.role_id))));
        assert!(count(&|k| k.name.is_empty()) > 5);
        assert!(count(&|k| k.last_authenticated_time.is_none()) > 5);
        let mappings = ws.claim_mappings();
        assert_eq!(mappings.len(), 5);
        assert_eq!(mappings[1].rank, SimInt64::Text("2".to_owned()));
        assert_eq!(mappings[2].rank, SimInt64::Number(3));
        assert!(mappings.iter().all(|m| role_ids.contains(&m.role_id)));
        // Without users there is no owner for a private key.
        let spec = GeneratedSpec { users: 0, api_keys: 50, ..Default::default() };
        assert!(Workspace::generated(spec).api_keys().iter().all(|k| k.key_type != API_KEY_TYPE_PRIVATE));
    }

    #[test]
    fn from_json_rejects_duplicates() {
        let text = r#"{"users":[],"roles":[{"id":"a","name":"x"},{"id":"a","name":"y"}]}"#;
        assert!(matches!(Workspace::from_json(text), Err(SimError::Invalid(_))));
        let text = r#"{"api_keys":[{"client_id":"k"},{"client_id":"k"}]}"#;
        assert!(matches!(Workspace::from_json(text), Err(SimError::Invalid(_))));
        // Lists may be omitted; a workspace file of users and roles has no keys or mappings.
        let ws = Workspace::from_json(r#"{"roles":[{"id":"a","name":"x","is_custom":true}]}"#).unwrap();
        assert!(ws.roles()[0].is_custom && ws.api_keys().is_empty() && ws.claim_mappings().is_empty());
        assert!(matches!(Workspace::from_json("[1]"), Err(SimError::Json(_))));
    }
}
