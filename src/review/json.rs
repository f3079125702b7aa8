//! `--format json`: the whole review as one JSON document, in the shape `docs/review.md` documents. Torq text
//! is kept exactly (JSON escapes what must be escaped); it is streamed, not built in memory.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::{rfc3339, AccountType, Report, SyncInfo};

/// The document's `format` value; the number changes only when a field is removed or changes meaning.
pub const FORMAT: &str = "baton-torq-review/1";

#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    file: &'a str,
    against: Option<&'a str>,
    now: String,
    settings: Settings<'a>,
    sync: &'a SyncInfo,
    previous_sync: Option<&'a SyncInfo>,
    summary: Summary,
    roles: Vec<Role<'a>>,
    accounts: Accounts<'a>,
    findings: Vec<Finding<'a>>,
    changes: Vec<Change<'a>>,
    notes: &'a [String],
}

#[derive(Serialize)]
struct Settings<'a> {
    inactive_days: u32,
    pending_days: u32,
    privileged_roles: &'a [String],
}

#[derive(Serialize)]
struct Summary {
    users: usize,
    users_by_status: BTreeMap<String, usize>,
    api_keys: usize,
    api_keys_by_type: BTreeMap<String, usize>,
    roles: usize,
    findings: BTreeMap<&'static str, usize>,
    changes: BTreeMap<&'static str, usize>,
}

#[derive(Serialize)]
struct Role<'a> {
    id: &'a str,
    name: &'a str,
    custom: Option<bool>,
    privileged: bool,
    users: usize,
    api_keys: usize,
    scopes: &'a [String],
}

#[derive(Serialize)]
struct Subject<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct Finding<'a> {
    code: &'static str,
    severity: &'static str,
    subject: Subject<'a>,
    evidence: &'a str,
}

#[derive(Serialize)]
struct Change<'a> {
    code: &'static str,
    subject: Subject<'a>,
    from: Option<&'a str>,
    to: Option<&'a str>,
}

/// The accounts, serialized one by one from the report.
struct Accounts<'a>(&'a Report);

#[derive(Serialize)]
struct Account<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    name: &'a str,
    role_id: &'a str,
    role: String,
    status: &'a str,
    created: Option<String>,
    last_login: Option<String>,
    key_type: Option<&'a str>,
    owner_id: Option<&'a str>,
    owner_email: Option<&'a str>,
    findings: &'a [&'static str],
    changes: &'a [&'static str],
}

impl<'a> Serialize for Accounts<'a> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let report = self.0;
        let codes = report.codes_by_account();
        let mut seq = serializer.serialize_seq(Some(report.accounts.len()))?;
        for a in &report.accounts {
            let (findings, changes) =
                codes.get(&(a.kind, &*a.id)).map_or((&[][..], &[][..]), |(f, c)| (&f[..], &c[..]));
            let key = a.key.as_deref();
            let nonempty = |s: &'a str| Some(s).filter(|s| !s.is_empty());
            seq.serialize_element(&Account {
                kind: a.kind.as_str(),
                id: &a.id,
                name: &a.name,
                role_id: &a.role_id,
                role: report.role_label(a),
                status: a.status.label(),
                created: a.created.map(rfc3339),
                last_login: a.last_login.map(rfc3339),
                key_type: key.map(|k| &*k.key_type),
                owner_id: key.and_then(|k| nonempty(&k.owner_id)),
                owner_email: key.and_then(|k| nonempty(&k.owner_email)),
                findings,
                changes,
            })?;
        }
        seq.end()
    }
}

pub(crate) fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let mut users_by_status = BTreeMap::new();
    let mut api_keys_by_type = BTreeMap::new();
    for a in &report.accounts {
        match (a.kind, a.key.as_deref()) {
            (AccountType::ApiKey, Some(k)) => *api_keys_by_type.entry(k.key_type.to_string()).or_insert(0) += 1,
            _ => *users_by_status.entry(a.status.label().to_string()).or_insert(0) += 1,
        }
    }
    let doc = Document {
        format: FORMAT,
        file: &report.file,
        against: report.against.as_deref(),
        now: report.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        settings: Settings {
            inactive_days: report.inactive_days,
            pending_days: report.pending_days,
            privileged_roles: &report.privileged_roles,
        },
        sync: &report.sync,
        previous_sync: report.previous.as_ref(),
        summary: Summary {
            users: users_by_status.values().sum(),
            users_by_status,
            api_keys: api_keys_by_type.values().sum(),
            api_keys_by_type,
            roles: report.roles.len(),
            findings: report.severity_counts().iter().map(|(s, n)| (s.as_str(), *n)).collect(),
            changes: super::ChangeCode::ALL
                .iter()
                .map(|c| (c.as_str(), report.changes.iter().filter(|x| x.code == *c).count()))
                .collect(),
        },
        roles: report
            .roles
            .iter()
            .map(|r| Role {
                id: &r.role.id,
                name: &r.role.name,
                custom: r.role.custom,
                privileged: r.privileged,
                users: r.users,
                api_keys: r.api_keys,
                scopes: &r.role.scopes,
            })
            .collect(),
        accounts: Accounts(report),
        findings: report
            .findings
            .iter()
            .map(|f| Finding {
                code: f.code.as_str(),
                severity: f.severity.as_str(),
                subject: Subject { kind: f.subject.kind.as_str(), id: &f.subject.id, name: &f.subject.name },
                evidence: &f.evidence,
            })
            .collect(),
        changes: report
            .changes
            .iter()
            .map(|c| Change {
                code: c.code.as_str(),
                subject: Subject { kind: c.subject.kind.as_str(), id: &c.subject.id, name: &c.subject.name },
                from: c.from.as_deref(),
                to: c.to.as_deref(),
            })
            .collect(),
        notes: &report.notes,
    };
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}
