//! The terminal report: summary counts, privileged access, findings by severity, changes. Every Torq text goes
//! through `super::visible` first, so a name cannot move the cursor, colour the screen or reorder the line.
//! Colour only when the caller says stdout is a terminal. Long sections are cut at [`SHOWN`] lines; the other
//! formats list everything.

use std::io::Write;

use super::{date, days_between, visible, AccountType, Report, Severity};

/// Lines shown per section before "... and N more".
pub const SHOWN: usize = 25;

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn bold(&self, text: &str) -> String {
        self.wrap("1", text)
    }
    fn dim(&self, text: &str) -> String {
        self.wrap("2", text)
    }
    fn severity(&self, s: Severity) -> String {
        let label = format!("{:<6}", s.as_str().to_uppercase());
        match s {
            Severity::High => self.wrap("1;31", &label),
            Severity::Medium => self.wrap("33", &label),
            Severity::Low => self.wrap("36", &label),
        }
    }
}

fn more(out: &mut dyn Write, total: usize, paint: &Paint) -> std::io::Result<()> {
    if total > SHOWN {
        let hint = "(--format csv, json or html lists all)";
        writeln!(out, "  {}", paint.dim(&format!("... and {} more {hint}", total - SHOWN)))?;
    }
    Ok(())
}

pub(crate) fn write(report: &Report, color: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let paint = Paint { on: color };
    let now = report.now.timestamp();
    writeln!(out, "{}", paint.bold(&format!("Torq access review of {}", visible(&report.file))))?;
    writeln!(
        out,
        "  sync {} (finished {})",
        visible(&report.sync.id),
        visible(super::whole_seconds(&report.sync.ended_at))
    )?;
    match (&report.previous, &report.against) {
        (Some(p), Some(file)) => writeln!(
            out,
            "  compared with sync {} of {} (finished {})",
            visible(&p.id),
            visible(file),
            visible(super::whole_seconds(&p.ended_at))
        )?,
        (Some(p), None) => writeln!(
            out,
            "  compared with sync {} (finished {})",
            visible(&p.id),
            visible(super::whole_seconds(&p.ended_at))
        )?,
        (None, _) => writeln!(out, "  no previous sync to compare with")?,
    }
    writeln!(out, "  as of {}", report.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))?;

    // Summary.
    let users = report.accounts.iter().filter(|a| a.kind == AccountType::User);
    let mut by_status: Vec<(String, usize)> = Vec::new();
    for a in users {
        let label = visible(a.status.label());
        match by_status.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += 1,
            None => by_status.push((label, 1)),
        }
    }
    let user_count: usize = by_status.iter().map(|(_, n)| n).sum();
    let keys = report.accounts.len() - user_count;
    let statuses: Vec<String> = by_status.iter().map(|(l, n)| format!("{n} {l}")).collect();
    let custom = report.roles.iter().filter(|r| r.role.custom == Some(true)).count();
    writeln!(out)?;
    writeln!(out, "{}", paint.bold("Summary"))?;
    writeln!(
        out,
        "  {user_count} users ({}), {keys} API keys, {} roles ({custom} custom)",
        if statuses.is_empty() { "none".to_string() } else { statuses.join(", ") },
        report.roles.len()
    )?;
    let counts: Vec<String> = report.severity_counts().iter().map(|(s, n)| format!("{n} {}", s.as_str())).collect();
    writeln!(out, "  findings: {}; changes: {}", counts.join(", "), report.changes.len())?;

    // Privileged access.
    let privileged: Vec<&super::Account> =
        report.accounts.iter().filter(|a| report.role_of(a).is_some_and(|r| r.privileged)).collect();
    writeln!(out)?;
    let names: Vec<String> = report.privileged_roles.iter().map(|r| visible(r)).collect();
    writeln!(out, "{}", paint.bold(&format!("Privileged access ({})", names.join(", "))))?;
    if privileged.is_empty() {
        writeln!(out, "  nobody holds a privileged role")?;
    }
    for a in privileged.iter().take(SHOWN) {
        let role = visible(&report.role_label(a));
        let login = match a.last_login {
            Some(t) => format!("last login {} ({} days ago)", date(t), days_between(t, now)),
            None if a.kind == AccountType::User && a.login_recorded => "never logged in".to_string(),
            None => String::new(),
        };
        writeln!(out, "  {role:<16} {:<8} {:<40} {}", a.kind.as_str(), visible(&a.name), paint.dim(&login))?;
    }
    more(out, privileged.len(), &paint)?;

    // Findings by severity.
    writeln!(out)?;
    writeln!(out, "{}", paint.bold("Findings"))?;
    if report.findings.is_empty() {
        writeln!(out, "  none")?;
    }
    for severity in [Severity::High, Severity::Medium, Severity::Low] {
        let of: Vec<_> = report.findings.iter().filter(|f| f.severity == severity).collect();
        for f in of.iter().take(SHOWN) {
            writeln!(
                out,
                "  {} {:<20} {:<8} {}: {}",
                paint.severity(severity),
                f.code.as_str(),
                f.subject.kind.as_str(),
                visible(&f.subject.name),
                visible(&f.evidence)
            )?;
        }
        more(out, of.len(), &paint)?;
    }

    // Changes.
    writeln!(out)?;
    writeln!(out, "{}", paint.bold("Changes since the previous sync"))?;
    if report.previous.is_none() {
        writeln!(out, "  no previous sync")?;
    } else if report.changes.is_empty() {
        writeln!(out, "  none")?;
    }
    for c in report.changes.iter().take(SHOWN) {
        let what = match (&c.from, &c.to) {
            (Some(from), Some(to)) => format!("{} -> {}", visible(from), visible(to)),
            (None, Some(to)) => format!("role {}", visible(to)),
            (Some(from), None) => format!("had role {}", visible(from)),
            (None, None) => String::new(),
        };
        writeln!(out, "  {:<15} {:<8} {}: {what}", c.code.as_str(), c.subject.kind.as_str(), visible(&c.subject.name))?;
    }
    more(out, report.changes.len(), &paint)?;

    if !report.notes.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", paint.bold("Notes"))?;
        for n in &report.notes {
            writeln!(out, "  {}", visible(n))?;
        }
    }
    Ok(())
}
