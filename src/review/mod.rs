//! `baton-torq review`: a Torq access review read from a sync file, offline. It answers what a reviewer asks
//! of a Torq workspace (who holds Owner, which API keys are orphaned, who is inactive or never logged in, which
//! invitations are stale, what changed since the previous sync) as findings with stable codes and changes,
//! printed for a terminal or written as CSV, JSON or one self-contained HTML page. `docs/review.md` is the
//! reference: every code, how it is decided, the JSON shape, the CSV columns and the exit codes.
//!
//! **Owns:** reading a c1z read-only ([`read`]), deciding findings ([`findings`]) and changes ([`changes`]),
//! and the four formats ([`terminal`], [`csv`], [`json`], [`html`]), each of which escapes Torq's text for
//! where it goes.
//!
//! **Must not:** change, lock or write next to the sync file; run anything stored in it (it is decompressed,
//! bounded, into a private temporary copy that SQLite opens read-only with `trusted_schema` off, and only
//! plain tables are read); use the network or credentials; decide the exit code (that is `app`).

pub(crate) mod changes;
pub(crate) mod csv;
pub(crate) mod findings;
pub(crate) mod html;
pub(crate) mod json;
pub(crate) mod read;
pub(crate) mod terminal;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use changes::{Change, ChangeCode};
pub use findings::{Finding, FindingCode};

/// The role every review treats as privileged, besides those named with `--privileged-role`.
pub const OWNER_ROLE: &str = "Owner";

/// Everything that can stop a review. Each message is one line: what is wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The sync file (or the `--against` file) cannot be reviewed: absent, foreign, corrupt, no finished sync.
    #[error("cannot review {path}: {reason}")]
    File { path: String, reason: String },
    /// A flag's value is unusable.
    #[error("invalid {flag}: {reason}")]
    Usage { flag: &'static str, reason: String },
    /// The temporary copy of the database could not be made (disk full, no temp directory).
    #[error("cannot make a temporary copy of the sync database in {dir}: {reason}; set TMPDIR to a directory with free space")]
    Temp { dir: String, reason: String },
    /// Writing the report failed.
    #[error("cannot write the review to {target}: {source}")]
    Write {
        target: String,
        #[source]
        source: std::io::Error,
    },
}

impl ReviewError {
    /// Whether the user can fix this by pointing at another file or flag value (exit 2) rather than a failure of
    /// the machine (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, ReviewError::File { .. } | ReviewError::Usage { .. })
    }

    pub(crate) fn file(path: &Path, reason: impl Into<String>) -> ReviewError {
        ReviewError::File { path: visible(&path.display().to_string()), reason: reason.into() }
    }
}

/// Severity of a finding; `--fail-on` compares with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// The output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A report for people: summary, privileged access, findings by severity, changes
    Terminal,
    /// One row per account (the spreadsheet a reviewer signs)
    Csv,
    /// Everything, in the shape docs/review.md documents
    Json,
    /// One self-contained, printable page
    Html,
}

/// What to review and how (from the command line).
#[derive(Clone, Debug)]
pub struct ReviewOptions {
    pub file: PathBuf,
    pub against: Option<PathBuf>,
    pub format: Format,
    pub output: Option<PathBuf>,
    pub inactive_days: u32,
    pub pending_days: u32,
    /// Role names (or ids) besides Owner whose holders count as privileged.
    pub privileged_roles: Vec<String>,
    /// The time ages are measured from.
    pub now: DateTime<Utc>,
    /// Colour in the terminal format (the caller decides: stdout is a terminal, NO_COLOR unset, no `-o`).
    pub color: bool,
}

/// An account's kind: a Torq user or an API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    User,
    ApiKey,
}

impl AccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::User => "user",
            AccountType::ApiKey => "api_key",
        }
    }
}

/// An account's status, from Torq's status in the profile (files of this connector) or the Baton status
/// (other writers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Torq `VERIFIED`: the user accepted the invitation.
    Verified,
    /// Torq `INVITATION_SENT`.
    Invited,
    /// Baton ENABLED without Torq's status (the Go connector's files; every API key).
    Enabled,
    Disabled,
    Deleted,
    Unspecified,
    /// Any other Torq status, as Torq wrote it.
    Other(Box<str>),
}

impl Status {
    pub fn label(&self) -> &str {
        match self {
            Status::Verified => "verified",
            Status::Invited => "invited",
            Status::Enabled => "enabled",
            Status::Disabled => "disabled",
            Status::Deleted => "deleted",
            Status::Unspecified => "unspecified",
            Status::Other(raw) => raw,
        }
    }

    /// An account that can act: a verified user, or an enabled one whose Torq status is not recorded.
    pub fn is_active(&self) -> bool {
        matches!(self, Status::Verified | Status::Enabled)
    }
}

/// What an API key adds to an account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyInfo {
    /// `service`, `private`, or Torq's raw type.
    pub key_type: Box<str>,
    /// The role name the key itself carries (used when its role is not in the role list).
    pub role_name: Box<str>,
    /// Private keys: the owner Torq embedded (empty when it named none).
    pub owner_id: Box<str>,
    pub owner_email: Box<str>,
}

/// A user or API key of one sync, kept small: a review may hold 100k of them.
#[derive(Clone, Debug)]
pub struct Account {
    pub kind: AccountType,
    pub id: Box<str>,
    /// The display name: a user's email, a key's name (or client id).
    pub name: Box<str>,
    /// The role id (shared with the other accounts of the role); empty when none is recorded.
    pub role_id: Arc<str>,
    pub status: Status,
    /// Unix seconds.
    pub created: Option<i64>,
    pub last_login: Option<i64>,
    /// Whether the writer records last logins for this account (this connector does; the Go connector does not),
    /// so that a missing one means "never".
    pub login_recorded: bool,
    pub key: Option<Box<KeyInfo>>,
}

/// A role of one sync.
#[derive(Clone, Debug)]
pub struct Role {
    pub id: Arc<str>,
    pub name: String,
    /// `None` when the file does not say (Torq's legacy role list, the Go connector).
    pub custom: Option<bool>,
    pub scopes: Vec<String>,
}

/// A finished sync run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SyncInfo {
    pub id: String,
    pub started_at: String,
    pub ended_at: String,
}

/// A role with what the review says about it.
#[derive(Clone, Debug)]
pub struct RoleSummary {
    pub role: Role,
    pub users: usize,
    pub api_keys: usize,
    pub privileged: bool,
}

/// The review: what every format prints.
#[derive(Debug)]
pub struct Report {
    pub file: String,
    pub against: Option<String>,
    pub now: DateTime<Utc>,
    pub inactive_days: u32,
    pub pending_days: u32,
    pub privileged_roles: Vec<String>,
    pub sync: SyncInfo,
    pub previous: Option<SyncInfo>,
    /// Display order: privileged roles first, then by name.
    pub roles: Vec<RoleSummary>,
    /// Sorted by role (in `roles` order, accounts without a known role last), then type, then name.
    pub accounts: Vec<Account>,
    pub findings: Vec<Finding>,
    pub changes: Vec<Change>,
    /// Limits of what this file lets the review decide.
    pub notes: Vec<String>,
    role_index: HashMap<Arc<str>, usize>,
}

impl Report {
    /// The role of `account` when it is in the sync's role list.
    pub fn role_of(&self, account: &Account) -> Option<&RoleSummary> {
        self.role_index.get(&account.role_id).map(|&i| &self.roles[i])
    }

    /// The role as people should read it: its name, else the key's own role name or the id, marked as not in the
    /// role list; empty when the account has no role.
    pub fn role_label(&self, account: &Account) -> String {
        role_label(&self.role_index, &self.roles, account)
    }

    /// Findings at `level` or above.
    pub fn findings_at_or_above(&self, level: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity >= level).count()
    }

    /// Count of findings per severity, high first.
    pub fn severity_counts(&self) -> [(Severity, usize); 3] {
        [Severity::High, Severity::Medium, Severity::Low]
            .map(|s| (s, self.findings.iter().filter(|f| f.severity == s).count()))
    }

    /// Finding codes and change codes per account, for the per-account columns.
    pub(crate) fn codes_by_account(&self) -> HashMap<(AccountType, &str), AccountCodes> {
        let mut map: HashMap<(AccountType, &str), AccountCodes> = HashMap::new();
        for f in &self.findings {
            if let Some(kind) = f.subject.account_type() {
                map.entry((kind, &f.subject.id)).or_default().0.push(f.code.as_str());
            }
        }
        for c in &self.changes {
            map.entry((c.subject.kind, &c.subject.id)).or_default().1.push(c.code.as_str());
        }
        map
    }
}

/// An account's finding codes and change codes.
pub(crate) type AccountCodes = (Vec<&'static str>, Vec<&'static str>);

fn role_label(index: &HashMap<Arc<str>, usize>, roles: &[RoleSummary], account: &Account) -> String {
    if let Some(&i) = index.get(&account.role_id) {
        return roles[i].role.name.clone();
    }
    if account.role_id.is_empty() {
        return String::new();
    }
    match account.key.as_ref().map(|k| &*k.role_name).filter(|n| !n.is_empty()) {
        Some(name) => format!("{name} ({}, not in the role list)", account.role_id),
        None => format!("{} (not in the role list)", account.role_id),
    }
}

/// Whether a role with this id and name is privileged: Owner or one named by `--privileged-role` (by name,
/// case-insensitively, or by id).
pub(crate) fn is_privileged(id: &str, name: &str, privileged: &[String]) -> bool {
    privileged.iter().any(|p| p.eq_ignore_ascii_case(name) || (!id.is_empty() && p == id))
}

/// Reviews `options.file` and writes the chosen format to `-o` or stdout. Returns the report, whose findings the
/// caller compares with `--fail-on`.
pub fn run(options: &ReviewOptions) -> Result<Report, ReviewError> {
    if options.inactive_days == 0 || options.pending_days == 0 {
        let flag = if options.inactive_days == 0 { "--inactive-days" } else { "--pending-days" };
        return Err(ReviewError::Usage { flag, reason: "must be at least 1 day".into() });
    }
    let target = output_target(options)?;
    let report = build(options)?;
    match target {
        Some(target) => write_file(&target, |w| render(&report, options, w)),
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            render(&report, options, &mut out)
                .and_then(|()| out.flush())
                .map_err(|source| ReviewError::Write { target: "standard output".into(), source })
        }
    }?;
    Ok(report)
}

/// Reads the file(s) and decides findings and changes.
pub fn build(options: &ReviewOptions) -> Result<Report, ReviewError> {
    let mut privileged = vec![OWNER_ROLE.to_string()];
    for name in &options.privileged_roles {
        let name = name.trim();
        if name.is_empty() {
            return Err(ReviewError::Usage { flag: "--privileged-role", reason: "the role name is empty".into() });
        }
        if !privileged.iter().any(|p| p.eq_ignore_ascii_case(name)) {
            privileged.push(name.to_string());
        }
    }
    let db = read::SyncFile::open(&options.file)?;
    let syncs = db.finished_syncs()?;
    let Some(sync) = syncs.first().cloned() else {
        return Err(ReviewError::file(&options.file, "it holds no finished sync; run a sync into it first"));
    };
    let current = db.read_sync(&sync)?;
    let mut notes = current.notes.clone();
    let (previous_info, previous) = match &options.against {
        Some(other) => {
            let other_db = read::SyncFile::open(other)?;
            let Some(info) = other_db.finished_syncs()?.first().cloned() else {
                return Err(ReviewError::file(other, "it holds no finished sync to compare with"));
            };
            let data = other_db.read_sync(&info)?;
            (Some(info), Some(data))
        }
        None => match syncs.get(1) {
            Some(info) => (Some(info.clone()), Some(db.read_sync(info)?)),
            None => {
                notes.push(
                    "the file holds one finished sync, so there are no changes to show; they appear after the next \
                     sync into the same file, or compare with an older file with --against OLD.c1z"
                        .into(),
                );
                (None, None)
            }
        },
    };
    drop(db);

    let mut roles: Vec<RoleSummary> = current
        .roles
        .iter()
        .map(|r| RoleSummary {
            privileged: is_privileged(&r.id, &r.name, &privileged),
            role: r.clone(),
            users: 0,
            api_keys: 0,
        })
        .collect();
    roles.sort_by_cached_key(|r| {
        let owner = !r.role.name.eq_ignore_ascii_case(OWNER_ROLE);
        (owner, !r.privileged, r.role.name.to_lowercase(), r.role.id.clone())
    });
    let role_index: HashMap<Arc<str>, usize> = roles.iter().enumerate().map(|(i, r)| (r.role.id.clone(), i)).collect();
    let mut accounts = current.accounts;
    for a in &accounts {
        if let Some(&i) = role_index.get(&a.role_id) {
            match a.kind {
                AccountType::User => roles[i].users += 1,
                AccountType::ApiKey => roles[i].api_keys += 1,
            }
        }
    }
    for name in &privileged[1..] {
        if !roles.iter().any(|r| is_privileged(&r.role.id, &r.role.name, std::slice::from_ref(name))) {
            notes.push(format!("--privileged-role {name:?} names no role of this sync"));
        }
    }
    let settings = findings::Settings {
        now: options.now.timestamp(),
        inactive_days: options.inactive_days,
        pending_days: options.pending_days,
        privileged: &privileged,
    };
    let (found, finding_notes) = findings::decide(&accounts, &roles, &role_index, &settings);
    notes.extend(finding_notes);
    let changes = match &previous {
        Some(before) => changes::decide(before, &accounts, &roles, &role_index),
        None => Vec::new(),
    };
    // Keys computed once per account: lower-casing inside the comparison (n log n times) was the slowest step
    // of a review (docs/review.md, Speed and memory).
    accounts.sort_by_cached_key(|a| {
        let pos = role_index.get(&a.role_id).copied().unwrap_or(usize::MAX);
        (pos, a.kind, a.name.to_lowercase(), a.id.clone())
    });
    Ok(Report {
        file: options.file.display().to_string(),
        against: options.against.as_ref().map(|p| p.display().to_string()),
        now: options.now,
        inactive_days: options.inactive_days,
        pending_days: options.pending_days,
        privileged_roles: privileged,
        sync,
        previous: previous_info,
        roles,
        accounts,
        findings: found,
        changes,
        notes,
        role_index,
    })
}

fn render(report: &Report, options: &ReviewOptions, out: &mut dyn Write) -> std::io::Result<()> {
    match options.format {
        Format::Terminal => terminal::write(report, options.color, out),
        Format::Csv => csv::write(report, out),
        Format::Json => json::write(report, out),
        Format::Html => html::write(report, out),
    }
}

/// Checks `-o` before any work: not the reviewed file, not a directory, in a directory that exists.
fn output_target(options: &ReviewOptions) -> Result<Option<PathBuf>, ReviewError> {
    let Some(path) = options.output.clone() else { return Ok(None) };
    let invalid = |reason: String| ReviewError::Usage { flag: "-o/--output", reason };
    if path.as_os_str().is_empty() {
        return Err(invalid("the path is empty; pass a file name such as review.html".into()));
    }
    let same = |other: &Path| match (std::fs::canonicalize(&path), std::fs::canonicalize(other)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(&options.file) || options.against.as_deref().is_some_and(same) {
        return Err(invalid(format!(
            "{} is a sync file being reviewed; it is never overwritten, choose another output file",
            visible(&path.display().to_string())
        )));
    }
    if path.is_dir() {
        return Err(invalid(format!(
            "{} is a directory; pass a file path such as DIR/review.html",
            visible(&path.display().to_string())
        )));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(invalid(format!(
            "directory {} does not exist; create it first",
            visible(&parent.display().to_string())
        )));
    }
    Ok(Some(path))
}

/// Writes the whole report to a temporary file next to `path` and renames it over `path`, so `path` is either
/// the old content or the complete new report.
fn write_file(path: &Path, render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), ReviewError> {
    let err = |source: std::io::Error| ReviewError::Write { target: visible(&path.display().to_string()), source };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".review-").tempfile_in(parent).map_err(err)?;
    {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        render(&mut out).map_err(err)?;
        out.flush().map_err(err)?;
    }
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// Torq text made safe and visible for people, by the program's one escaping rule ([`crate::escape`]): controls,
/// bidirectional overrides, zero-width and other invisible characters become `\n`, `\r`, `\t` or `\u{…}`, so a
/// name can neither move the cursor or colour a terminal nor hide or reorder text in a report. Unlike console
/// logs, reports keep values whole (a reviewer signs what Torq holds).
pub fn visible(text: &str) -> String {
    crate::escape::escape_with_limit(text, usize::MAX).into_owned()
}

/// A Unix time as RFC 3339 UTC to the second, e.g. `2026-11-20T08:30:00Z`.
pub(crate) fn rfc3339(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

/// A Unix time as a date, e.g. `2026-11-20`.
pub(crate) fn date(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// A sync's time text without its fraction of a second (`2026-12-07 13:02:30.4605` -> `2026-12-07 13:02:30`).
pub(crate) fn whole_seconds(time: &str) -> &str {
    time.split('.').next().unwrap_or(time)
}

/// Whole days from `then` to `now` (negative when `then` is later).
pub(crate) fn days_between(then: i64, now: i64) -> i64 {
    (now - then).div_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_become_visible_escapes() {
        assert_eq!(visible("ada@example.com"), "ada@example.com");
        assert_eq!(visible("a\r\nb"), "a\\r\\nb");
        assert_eq!(visible("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(visible("evil\u{202E}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert_eq!(visible("zero\u{200B}width\u{FEFF}"), "zero\\u{200b}width\\u{feff}");
        assert_eq!(visible("iso\u{2066}late\u{2069}"), "iso\\u{2066}late\\u{2069}");
        assert_eq!(visible("\u{85}next line"), "\\u{85}next line");
        // Kept whole, however long (console logs cut at 256 characters).
        assert_eq!(visible(&"a".repeat(1000)), "a".repeat(1000));
        // Ordinary non-ASCII text is left alone.
        assert_eq!(visible("José Müller 李"), "José Müller 李");
    }

    #[test]
    fn days_are_whole_days_back_from_now() {
        let now = 1_000 * 86_400;
        assert_eq!(days_between(now - 86_400 * 90, now), 90);
        assert_eq!(days_between(now - 86_400 * 90 + 1, now), 89);
        assert_eq!(days_between(now + 10, now), -1);
    }
}
