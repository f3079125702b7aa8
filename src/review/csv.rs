//! `--format csv`: one row per account of the reviewed sync, the spreadsheet a reviewer signs. Columns:
//! [`COLUMNS`]. Every Torq text is shown with hidden characters made visible (`super::visible`) and guarded
//! against formula injection: a cell that starts with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`, so a
//! spreadsheet shows it as text instead of running it.

use std::io::Write;

use super::{rfc3339, visible, Report};

/// The header row.
pub const COLUMNS: [&str; 11] =
    ["type", "key_type", "id", "name", "role", "status", "created", "last_login", "owner", "findings", "changes"];

/// `text` as a cell a spreadsheet will not evaluate, with hidden characters made visible.
pub(crate) fn cell(text: &str) -> String {
    let shown = visible(text);
    if shown.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{shown}")
    } else {
        shown
    }
}

pub(crate) fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let codes = report.codes_by_account();
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(COLUMNS)?;
    for a in &report.accounts {
        let key = a.key.as_deref();
        let owner = key.map_or("", |k| if k.owner_email.is_empty() { &k.owner_id } else { &k.owner_email });
        let (findings, changes) =
            codes.get(&(a.kind, &*a.id)).map_or((String::new(), String::new()), |(f, c)| (f.join(" "), c.join(" ")));
        w.write_record([
            a.kind.as_str().to_string(),
            cell(key.map_or("", |k| &k.key_type)),
            cell(&a.id),
            cell(&a.name),
            cell(&report.role_label(a)),
            cell(a.status.label()),
            a.created.map(rfc3339).unwrap_or_default(),
            a.last_login.map(rfc3339).unwrap_or_default(),
            cell(owner),
            findings,
            changes,
        ])?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_shown_as_text() {
        for evil in ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\r=1"] {
            let c = cell(evil);
            assert!(c.starts_with('\'') || c.starts_with('\\'), "{evil:?} -> {c:?}");
        }
        assert_eq!(cell("ada@example.com"), "ada@example.com");
        assert_eq!(cell("a\nb"), "a\\nb");
    }
}
