//! `--format html`: one self-contained static page (inline CSS, no script, no external asset, a Content Security
//! Policy that forbids loading anything), readable on screen and printable: summary, findings first, changes,
//! then every account grouped by role. Every Torq text is made visible (`super::visible`) and then HTML-escaped.

use std::io::Write;

use super::{date, rfc3339, visible, AccountType, Report};

/// Torq text for HTML text content and attribute values.
fn esc(text: &str) -> String {
    html_escape::encode_safe(&visible(text)).into_owned()
}

const STYLE: &str = r#"
:root { --ink: #1d2330; --muted: #5b6475; --line: #d9dde5; --band: #f4f6f9;
  --high: #b42318; --high-bg: #fde8e6; --medium: #8a5a00; --medium-bg: #fff3d6; --low: #1d5c8f; --low-bg: #e4f0fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink);
  margin: 0 auto; max-width: 1180px; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--ink); }
h3 { font-size: 15px; margin: 22px 0 6px; }
.meta { color: var(--muted); margin: 2px 0; }
code, .id { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px; }
.id { color: var(--muted); word-break: break-all; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(120px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; background: var(--band); }
.card.high { border-color: var(--high); background: var(--high-bg); }
.card.medium { border-color: var(--medium); background: var(--medium-bg); }
.card .n { font-size: 22px; font-weight: 600; }
.card .l { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid var(--line); unicode-bidi: isolate; }
th { background: var(--band); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
td { overflow-wrap: anywhere; }
table.accounts { table-layout: fixed; }
td.date, td.status { overflow-wrap: normal; white-space: nowrap; }
.sev { display: inline-block; padding: 1px 7px; border-radius: 10px; font-size: 11px; font-weight: 700; text-transform: uppercase; }
.sev.high { color: var(--high); background: var(--high-bg); }
.sev.medium { color: var(--medium); background: var(--medium-bg); }
.sev.low { color: var(--low); background: var(--low-bg); }
.badge { font-size: 11px; font-weight: 600; padding: 1px 6px; border-radius: 4px; margin-left: 6px; vertical-align: middle;
  color: var(--high); border: 1px solid var(--high); }
.badge.plain { color: var(--muted); border-color: var(--line); }
.count { color: var(--muted); font-weight: normal; font-size: 13px; margin-left: 6px; }
.none { color: var(--muted); font-style: italic; }
.codes { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; color: var(--high); }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  h2 { break-after: avoid; } h3 { break-after: avoid; }
  tr { break-inside: avoid; } thead { display: table-header-group; }
  .card { background: none; }
}
"#;

pub(crate) fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let now = report.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Torq access review: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&report.file)
    )?;
    writeln!(out, "<header>\n<h1>Torq access review</h1>")?;
    writeln!(
        out,
        "<p class=\"meta\">File <code>{}</code>, sync <code>{}</code>, finished {}</p>",
        esc(&report.file),
        esc(&report.sync.id),
        esc(super::whole_seconds(&report.sync.ended_at))
    )?;
    match &report.previous {
        Some(p) => writeln!(
            out,
            "<p class=\"meta\">Compared with sync <code>{}</code>{}, finished {}</p>",
            esc(&p.id),
            report.against.as_deref().map(|f| format!(" of <code>{}</code>", esc(f))).unwrap_or_default(),
            esc(super::whole_seconds(&p.ended_at))
        )?,
        None => writeln!(out, "<p class=\"meta\">No previous sync to compare with</p>")?,
    }
    let privileged: Vec<String> = report.privileged_roles.iter().map(|r| esc(r)).collect();
    writeln!(
        out,
        "<p class=\"meta\">As of {now}; inactive after {} days, invitations pending after {} days; privileged roles: {}</p>\n</header>",
        report.inactive_days,
        report.pending_days,
        privileged.join(", ")
    )?;

    summary(report, out)?;
    findings(report, out)?;
    changes(report, out)?;
    accounts(report, out)?;

    if !report.notes.is_empty() {
        writeln!(out, "<section id=\"notes\">\n<h2>Notes</h2>\n<ul>")?;
        for n in &report.notes {
            writeln!(out, "<li>{}</li>", esc(n))?;
        }
        writeln!(out, "</ul>\n</section>")?;
    }
    writeln!(
        out,
        "<footer>Written by baton-torq {} <code>review</code> from the sync file alone; the file was not changed.</footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    )
}

fn summary(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let users = report.accounts.iter().filter(|a| a.kind == AccountType::User).count();
    let invited = report.accounts.iter().filter(|a| a.status == super::Status::Invited).count();
    let keys = report.accounts.len() - users;
    let privileged = report.accounts.iter().filter(|a| report.role_of(a).is_some_and(|r| r.privileged)).count();
    let [high, medium, low] = report.severity_counts().map(|(_, n)| n);
    writeln!(out, "<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"cards\">")?;
    let card = |out: &mut dyn Write, n: usize, label: &str, alert: &str| {
        let class = if n > 0 && !alert.is_empty() { format!("card {alert}") } else { "card".to_string() };
        writeln!(out, "<div class=\"{class}\"><div class=\"n\">{n}</div><div class=\"l\">{label}</div></div>")
    };
    card(out, users, &format!("users ({invited} invited)"), "")?;
    card(out, keys, "API keys", "")?;
    card(out, report.roles.len(), "roles", "")?;
    card(out, privileged, "privileged accounts", "")?;
    card(out, high, "high findings", "high")?;
    card(out, medium, "medium findings", "medium")?;
    card(out, low, "low findings", "")?;
    card(out, report.changes.len(), "changes since the previous sync", "")?;
    writeln!(out, "</div>\n</section>")
}

fn findings(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "<section id=\"findings\">\n<h2>Findings</h2>")?;
    if report.findings.is_empty() {
        return writeln!(out, "<p class=\"none\">No findings.</p>\n</section>");
    }
    writeln!(
        out,
        "<table>\n<thead><tr><th>Severity</th><th>Code</th><th>Type</th><th>Account</th><th>Evidence</th></tr></thead>\n<tbody>"
    )?;
    for f in &report.findings {
        let sev = f.severity.as_str();
        writeln!(
            out,
            "<tr class=\"finding\" data-code=\"{code}\"><td><span class=\"sev {sev}\">{sev}</span></td><td><code>{code}</code></td>\
             <td>{}</td><td>{}<br><span class=\"id\">{}</span></td><td>{}</td></tr>",
            f.subject.kind.as_str(),
            esc(&f.subject.name),
            esc(&f.subject.id),
            esc(&f.evidence),
            code = f.code.as_str(),
        )?;
    }
    writeln!(out, "</tbody>\n</table>\n</section>")
}

fn changes(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "<section id=\"changes\">\n<h2>Changes since the previous sync</h2>")?;
    if report.previous.is_none() {
        return writeln!(out, "<p class=\"none\">No previous sync in the file.</p>\n</section>");
    }
    if report.changes.is_empty() {
        return writeln!(out, "<p class=\"none\">No changes.</p>\n</section>");
    }
    writeln!(
        out,
        "<table>\n<thead><tr><th>Change</th><th>Type</th><th>Account</th><th>From</th><th>To</th></tr></thead>\n<tbody>"
    )?;
    for c in &report.changes {
        writeln!(
            out,
            "<tr class=\"change\" data-code=\"{code}\"><td><code>{code}</code></td><td>{}</td><td>{}<br><span class=\"id\">{}</span></td><td>{}</td><td>{}</td></tr>",
            c.subject.kind.as_str(),
            esc(&c.subject.name),
            esc(&c.subject.id),
            c.from.as_deref().map(esc).unwrap_or_default(),
            c.to.as_deref().map(esc).unwrap_or_default(),
            code = c.code.as_str(),
        )?;
    }
    writeln!(out, "</tbody>\n</table>\n</section>")
}

fn accounts(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "<section id=\"accounts\">\n<h2>Accounts by role</h2>")?;
    let codes = report.codes_by_account();
    // Accounts are sorted in role order, those without a listed role last.
    let mut rest = &report.accounts[..];
    let groups = report.roles.iter().map(Some).chain(std::iter::once(None));
    for role in groups {
        let n = rest.iter().take_while(|a| report.role_of(a).map(|r| &r.role.id) == role.map(|r| &r.role.id)).count();
        let (members, after) = rest.split_at(n);
        rest = after;
        let heading = match role {
            Some(r) => {
                let mut h = esc(&r.role.name);
                if r.privileged {
                    h.push_str("<span class=\"badge\">privileged</span>");
                }
                if r.role.custom == Some(true) {
                    h.push_str("<span class=\"badge plain\">custom</span>");
                }
                format!(
                    "{h}<span class=\"count\">{}, {}</span>",
                    plural(r.users, "user"),
                    plural(r.api_keys, "API key")
                )
            }
            None if members.is_empty() => continue,
            None => format!("Not in the role list<span class=\"count\">{}</span>", plural(members.len(), "account")),
        };
        writeln!(out, "<h3 class=\"role\">{heading}</h3>")?;
        if members.is_empty() {
            writeln!(out, "<p class=\"none\">No members.</p>")?;
            continue;
        }
        writeln!(
            out,
            "<table class=\"accounts\">\n<colgroup><col style=\"width:12%\"><col style=\"width:27%\"><col style=\"width:9%\">\
             <col style=\"width:9%\"><col style=\"width:9%\"><col style=\"width:16%\"><col style=\"width:18%\"></colgroup>\n\
             <thead><tr><th>Type</th><th>Name</th><th>Status</th><th>Created</th><th>Last login</th><th>Owner</th><th>Findings</th></tr></thead>\n<tbody>"
        )?;
        for a in members {
            let key = a.key.as_deref();
            let kind = match key {
                Some(k) if !k.key_type.is_empty() => format!("API key ({})", esc(&k.key_type)),
                Some(_) => "API key".to_string(),
                None => "user".to_string(),
            };
            let owner =
                key.map_or(String::new(), |k| esc(if k.owner_email.is_empty() { &k.owner_id } else { &k.owner_email }));
            let found = codes.get(&(a.kind, &*a.id)).map_or(String::new(), |(f, _)| f.join(" "));
            let role_note = if role.is_none() && !a.role_id.is_empty() {
                format!("<br><span class=\"id\">role {}</span>", esc(&report.role_label(a)))
            } else {
                String::new()
            };
            writeln!(
                out,
                "<tr class=\"account\" data-type=\"{}\"><td>{kind}</td><td>{}<br><span class=\"id\">{}</span>{role_note}</td><td class=\"status\">{}</td>\
                 <td class=\"date\">{}</td><td class=\"date\">{}</td><td>{owner}</td><td class=\"codes\">{found}</td></tr>",
                a.kind.as_str(),
                esc(&a.name),
                esc(&a.id),
                esc(a.status.label()),
                a.created.map(date).unwrap_or_default(),
                login_cell(a),
            )?;
        }
        writeln!(out, "</tbody>\n</table>")?;
    }
    writeln!(out, "</section>")
}

fn login_cell(a: &super::Account) -> String {
    match a.last_login {
        Some(t) => format!("<span title=\"{}\">{}</span>", rfc3339(t), date(t)),
        None if a.kind == AccountType::User && a.login_recorded => "never".to_string(),
        None if a.kind == AccountType::ApiKey => "never used".to_string(),
        None => "not recorded".to_string(),
    }
}

/// `1 user`, `2 users`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
