//! Issue 29 end to end: `baton-torq review` of a file the binary wrote in two syncs of a simulated workspace with
//! planted cases. Every finding and every change is checked in every format (terminal, CSV, JSON, HTML parsed
//! with an HTML parser); `--fail-on`; `--against`; hostile Torq text in each format; corrupt, foreign and
//! hostile files (one line, exit 2); the Go connector's file; and that the reviewed file is never changed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use baton_torq::sim::{SimConfig, SimServer, Workspace};
use common::harness::{assert_success, clean_std_command, code, run, stderr};
use serde_json::{json, Value};

/// Ages are measured from here (`--now`).
const NOW: &str = "2026-12-01T00:00:00Z";

/// The name of the API key added in the second sync, as a hostile or careless admin could type it: a spreadsheet formula, HTML, a bidi override, a
/// terminal escape (clear screen) and a line break that would fake a report line.
const HOSTILE: &str = "=cmd|' /C calc'!A0 <script>alert(1)</script>\u{202E}gpj\u{1b}[2J\r\nowner_api_key fake line";

fn role(id: &str, name: &str, custom: bool) -> Value {
    json!({"id": id, "name": name, "description": format!("{name} role"), "scope_names": ["playbook.read"], "is_custom": custom})
}

fn user(id: &str, role: &str, status: &str, created: &str, last_login: Option<&str>) -> Value {
    let mut u = json!({"id": id, "email": format!("{}@example.com", &id[2..]), "role_id": role, "status": status,
                       "sso_provision": false, "created_time": created});
    if let Some(l) = last_login {
        u["last_login_time"] = json!(l);
    }
    u
}

fn key(cid: &str, name: &str, ty: &str, role: &str, role_name: &str, owner: Option<&Value>) -> Value {
    let mut k = json!({"client_id": cid, "name": name, "type": ty, "role_id": role, "role_name": role_name,
                       "created_time": "2026-01-05T10:00:00Z", "last_authenticated_time": "2026-11-28T08:00:00Z"});
    if let Some(owner) = owner {
        k["user"] = owner.clone();
    }
    k
}

const RECENT: Option<&str> = Some("2026-11-25T09:30:00Z");

/// The workspace at the second sync (`second == true`) or the first. The planted cases are listed in
/// [`expected_findings`] and [`expected_changes`]; everything else is clean.
fn workspace(second: bool) -> Value {
    let roles = vec![
        role("r-owner", "Owner", false),
        role("r-viewer", "Viewer", false),
        role("r-operator", "Operator", false),
        role("r-admin", "Automation Admin", true),
        role("r-responders", "Incident Responders", true),
        role("r-legacy", "Legacy Auditors", true),
    ];
    let c = "2025-06-01T00:00:00Z";
    let leaver = user("u-leaver", "r-viewer", "VERIFIED", c, RECENT);
    let jo = user("u-jo", "r-operator", "STATUS_UNSPECIFIED", c, Some("2026-11-01T00:00:00Z"));
    let kim = user("u-kim", "r-operator", "VERIFIED", c, RECENT);
    let mut users = vec![
        user("u-ada", "r-owner", "VERIFIED", c, RECENT),
        user("u-bob", if second { "r-owner" } else { "r-viewer" }, "VERIFIED", c, RECENT),
        user("u-cy", "r-viewer", "VERIFIED", c, Some("2026-05-01T12:00:00Z")),
        user("u-dee", "r-operator", "VERIFIED", c, None),
        user("u-eve", "r-viewer", "INVITATION_SENT", "2026-11-01T00:00:00Z", None),
        user("u-fay", "r-viewer", "INVITATION_SENT", "2026-11-28T00:00:00Z", None),
        user("u-gus", "r-deleted", "VERIFIED", c, RECENT),
        user(
            "u-hal",
            "r-responders",
            if second { "VERIFIED" } else { "INVITATION_SENT" },
            c,
            second.then_some("2026-11-30T10:00:00Z"),
        ),
        jo.clone(),
        kim.clone(),
    ];
    let mut keys = vec![
        key("svc-owner", "CI deploy", "API_KEY_TYPE_SERVICE", "r-owner", "Owner", None),
        key("svc-automation", "SOAR bridge", "API_KEY_TYPE_SERVICE", "r-admin", "Automation Admin", None),
        key("prv-kim", "Kim's laptop", "API_KEY_TYPE_PRIVATE", "r-operator", "Operator", Some(&kim)),
        key("prv-leaver", "Leaver's script", "API_KEY_TYPE_PRIVATE", "r-viewer", "Viewer", Some(&leaver)),
        key("prv-jo", "Jo's token", "API_KEY_TYPE_PRIVATE", "r-operator", "Operator", Some(&jo)),
    ];
    if second {
        users.push(user("u-new.hire", "r-viewer", "VERIFIED", "2026-11-29T00:00:00Z", Some("2026-11-30T00:00:00Z")));
        keys.push(key("svc-new", HOSTILE, "API_KEY_TYPE_SERVICE", "r-operator", "Operator", None));
    } else {
        users.push(leaver.clone());
        keys.push(key("svc-gone", "Old importer", "API_KEY_TYPE_SERVICE", "r-viewer", "Viewer", None));
    }
    json!({"users": users, "roles": roles, "api_keys": keys})
}

/// (code, subject id) of every planted finding, and its severity.
fn expected_findings(privileged_admin: bool) -> BTreeMap<(String, String), String> {
    let mut f: Vec<(&str, &str, &str)> = vec![
        ("owner_api_key", "svc-owner", "high"),
        ("orphaned_private_key", "prv-leaver", "high"),
        ("orphaned_private_key", "prv-jo", "high"),
        ("unknown_role", "u-gus", "medium"),
        ("inactive_user", "u-cy", "medium"),
        ("never_logged_in", "u-dee", "low"),
        ("pending_invitation", "u-eve", "low"),
        ("unused_custom_role", "r-legacy", "low"),
    ];
    if privileged_admin {
        f.push(("owner_api_key", "svc-automation", "high"));
    }
    f.into_iter().map(|(c, id, s)| ((c.to_string(), id.to_string()), s.to_string())).collect()
}

/// (code, subject id, from, to) of every planted change.
fn expected_changes() -> BTreeSet<(String, String, String, String)> {
    [
        ("account_added", "u-new.hire", "", "Viewer"),
        ("account_added", "svc-new", "", "Operator"),
        ("account_removed", "u-leaver", "Viewer", ""),
        ("account_removed", "svc-gone", "Viewer", ""),
        ("role_changed", "u-bob", "Viewer", "Owner"),
        ("status_changed", "u-hal", "invited", "verified"),
    ]
    .into_iter()
    .map(|(a, b, c, d)| (a.into(), b.into(), c.into(), d.into()))
    .collect()
}

/// Syncs `workspace` into `file` with the binary against a simulated Torq.
async fn sync(workspace: &Value, file: &Path) {
    let ws = Workspace::from_json(&workspace.to_string()).expect("test workspace loads");
    let server = SimServer::start(ws, SimConfig::default()).await.expect("simulated Torq");
    let out = run(&server, file, &["--log-format", "json"]).await;
    server.shutdown().await;
    assert_success(&out);
}

/// A file with the two syncs.
async fn two_syncs(dir: &Path) -> PathBuf {
    let file = dir.join("sync.c1z");
    sync(&workspace(false), &file).await;
    sync(&workspace(true), &file).await;
    file
}

/// `baton-torq review -f FILE --now NOW ARGS` with an empty environment (no credentials, no network settings);
/// errors as console lines.
fn review(file: &Path, args: &[&str]) -> Output {
    clean_std_command()
        .arg("review")
        .arg("-f")
        .arg(file)
        .args(["--now", NOW, "--log-format", "console"])
        .args(args)
        .output()
        .expect("baton-torq runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("the report is UTF-8")
}

fn fingerprint(file: &Path) -> (Vec<u8>, std::time::SystemTime) {
    (std::fs::read(file).unwrap(), std::fs::metadata(file).unwrap().modified().unwrap())
}

fn json_report(file: &Path, args: &[&str]) -> Value {
    let out = review(file, &[&["--format", "json"], args].concat());
    assert_success(&out);
    serde_json::from_str(&stdout(&out)).expect("--format json prints one JSON document")
}

fn findings_of(report: &Value) -> BTreeMap<(String, String), String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let key = (f["code"].as_str().unwrap().to_string(), f["subject"]["id"].as_str().unwrap().to_string());
            (key, f["severity"].as_str().unwrap().to_string())
        })
        .collect()
}

fn changes_of(report: &Value) -> BTreeSet<(String, String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (s(&c["code"]), s(&c["subject"]["id"]), s(&c["from"]), s(&c["to"])))
        .collect()
}

/// Finding codes per account id, from the expected findings.
fn expected_codes_by_id(privileged_admin: bool) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (code, id) in expected_findings(privileged_admin).into_keys() {
        m.entry(id).or_default().insert(code);
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_planted_finding_and_change_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let file = two_syncs(dir.path()).await;
    // REVIEW_SAMPLE_DIR=DIR keeps the file (docs/review.png was taken of its HTML report).
    if let Some(keep) = std::env::var_os("REVIEW_SAMPLE_DIR") {
        std::fs::copy(&file, Path::new(&keep).join("sample.c1z")).unwrap();
    }
    let before = fingerprint(&file);

    // JSON: exactly the planted findings and changes, with the documented shape.
    let report = json_report(&file, &[]);
    assert_eq!(report["format"], "baton-torq-review/1");
    assert_eq!(findings_of(&report), expected_findings(false));
    assert_eq!(changes_of(&report), expected_changes());
    assert_eq!(report["summary"]["users"], 11);
    assert_eq!(report["summary"]["api_keys"], 6);
    assert_eq!(report["summary"]["roles"], 6);
    assert_eq!(report["summary"]["findings"], json!({"high": 3, "medium": 2, "low": 3}));
    assert_eq!(report["previous_sync"]["id"].as_str().map(str::len), Some(27), "a KSUID");
    assert_ne!(report["previous_sync"]["id"], report["sync"]["id"]);
    let accounts = report["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 17);
    let account = |id: &str| accounts.iter().find(|a| a["id"] == id).unwrap_or_else(|| panic!("account {id}"));
    assert_eq!(account("svc-new")["name"], HOSTILE, "JSON keeps Torq's text exactly");
    assert_eq!(account("prv-leaver")["owner_email"], "leaver@example.com");
    assert_eq!(account("u-gus")["role"], "r-deleted (not in the role list)");
    assert_eq!(account("u-cy")["last_login"], "2026-05-01T12:00:00Z");
    assert_eq!(account("u-bob")["changes"], json!(["role_changed"]));
    let evidence = |code: &str, id: &str| {
        report["findings"].as_array().unwrap().iter().find(|f| f["code"] == code && f["subject"]["id"] == id).unwrap()
            ["evidence"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(evidence("inactive_user", "u-cy"), "last login 2026-05-01 (213 days ago; --inactive-days 90)");
    assert_eq!(
        evidence("pending_invitation", "u-eve"),
        "invited 2026-11-01 (30 days ago; --pending-days 14), not accepted"
    );
    assert_eq!(evidence("orphaned_private_key", "prv-leaver"), "owner leaver@example.com is not a user in this sync");
    assert_eq!(evidence("orphaned_private_key", "prv-jo"), "owner jo@example.com is unspecified, not an active user");
    assert_eq!(evidence("owner_api_key", "svc-owner"), "service API key holds the Owner role");
    // Accounts by role: Owner first, then the other roles by name, accounts without a listed role last.
    let roles: Vec<&str> = report["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(roles, ["Owner", "Automation Admin", "Incident Responders", "Legacy Auditors", "Operator", "Viewer"]);
    assert_eq!(accounts.last().unwrap()["id"], "u-gus");

    // A privileged role named on the command line makes its API key an owner_api_key finding too.
    let report = json_report(&file, &["--privileged-role", "automation admin"]);
    assert_eq!(findings_of(&report), expected_findings(true));

    // CSV: one row per account, the finding and change codes of each, formula cells neutralised.
    let out = review(&file, &["--format", "csv", "--privileged-role", "Automation Admin"]);
    assert_success(&out);
    let mut csv = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        ["type", "key_type", "id", "name", "role", "status", "created", "last_login", "owner", "findings", "changes"]
    );
    let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 17);
    let codes = expected_codes_by_id(true);
    let mut changed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (code, id, _, _) in expected_changes() {
        if code != "account_removed" {
            changed.entry(id).or_default().insert(code);
        }
    }
    for row in &rows {
        let id = &row[2];
        let got: BTreeSet<String> = row[9].split_whitespace().map(String::from).collect();
        assert_eq!(got, codes.get(id).cloned().unwrap_or_default(), "findings of {id}");
        let got: BTreeSet<String> = row[10].split_whitespace().map(String::from).collect();
        assert_eq!(got, changed.get(id).cloned().unwrap_or_default(), "changes of {id}");
        for cell in row.iter() {
            assert!(!cell.starts_with(['=', '+', '-', '@']), "a formula cell: {cell:?}");
            assert!(!cell.chars().any(|c| c.is_control() || c == '\u{202E}'), "a hidden character: {cell:?}");
        }
    }
    let hostile = rows.iter().find(|r| &r[2] == "svc-new").unwrap();
    assert!(hostile[3].starts_with("'=cmd|"), "{:?}", &hostile[3]);
    assert!(hostile[3].contains("\\u{202e}gpj\\u{1b}[2J\\r\\nowner_api_key"), "{:?}", &hostile[3]);
    let leaver_key = rows.iter().find(|r| &r[2] == "prv-leaver").unwrap();
    assert_eq!((&leaver_key[1], &leaver_key[8]), ("private", "leaver@example.com"));

    // Terminal (not a terminal here: no colour): every finding and change, nothing that could drive a terminal.
    let out = review(&file, &[]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(!text.contains('\x1b') && !text.contains('\r') && !text.contains('\u{202E}'), "{text}");
    for ((code, id), severity) in expected_findings(false) {
        let name = id.strip_prefix("u-").map(|n| format!("{n}@example.com")).unwrap_or_default();
        let line = text.lines().find(|l| l.contains(&format!(" {code} ")) && l.contains(&name)).unwrap_or_else(|| {
            panic!("no {code} line for {id}:\n{text}");
        });
        assert!(line.trim_start().starts_with(&severity.to_uppercase()), "{line}");
    }
    for (code, id, from, to) in expected_changes() {
        let name = id.strip_prefix("u-").map(|n| format!("{n}@example.com")).unwrap_or_default();
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(&code)
                && l.contains(&name)
                && l.contains(&from)
                && l.contains(&to)),
            "no {code} line for {id}:\n{text}"
        );
    }
    assert!(text.contains("findings: 3 high, 2 medium, 3 low; changes: 6"), "{text}");
    // The added key's name is shown on its change line, its line break escaped: it cannot fake a finding line.
    let added = text.lines().find(|l| l.contains("account_added") && l.contains("=cmd|")).unwrap();
    assert!(added.contains("\\u{202e}gpj\\u{1b}[2J\\r\\nowner_api_key fake line: role Operator"), "{added}");
    assert!(!text.lines().any(|l| l.starts_with("owner_api_key")), "{text}");

    // HTML: parsed as a browser would; findings first, then changes, then every account by role.
    let page_path = dir.path().join("review.html");
    let out = review(&file, &["--format", "html", "-o", page_path.to_str().unwrap()]);
    assert_success(&out);
    assert!(out.stdout.is_empty(), "-o writes the file, not stdout");
    let page = std::fs::read_to_string(&page_path).unwrap();
    check_html(&page);

    // Nothing changed the reviewed file.
    assert_eq!(fingerprint(&file), before, "review changed the sync file");
}

fn check_html(page: &str) {
    use scraper::{Html, Selector};
    let doc = Html::parse_document(page);
    let sel = |s: &str| Selector::parse(s).unwrap();
    let text_of = |e: scraper::ElementRef| e.text().collect::<String>();
    // Self-contained: no script, no external asset of any kind.
    assert_eq!(doc.select(&sel("script, link, img, iframe, object, embed")).count(), 0);
    let external: Vec<String> = doc.select(&sel("[src], [href]")).map(|e| e.html()).collect();
    assert!(external.is_empty(), "external references: {external:?}");
    assert!(!page.contains("url("), "no CSS url()");
    let csp = doc.select(&sel("meta[http-equiv=Content-Security-Policy]")).next().expect("a CSP");
    assert!(csp.value().attr("content").unwrap().contains("default-src 'none'"));
    // Section order.
    let sections: Vec<&str> = doc.select(&sel("section")).filter_map(|s| s.value().attr("id")).collect();
    assert_eq!(sections, ["summary", "findings", "changes", "accounts"]);
    // Findings and changes: exactly the planted ones.
    // (data-code, subject id) of the rows of class `class`.
    let coded_rows = |class: &str| -> BTreeSet<(String, String)> {
        doc.select(&sel(&format!("tr.{class}")))
            .map(|tr| {
                let id = tr.select(&sel("span.id")).next().map(text_of).unwrap_or_default();
                (tr.value().attr("data-code").unwrap().to_string(), id)
            })
            .collect()
    };
    let expected: BTreeSet<(String, String)> = expected_findings(false).into_keys().collect();
    assert_eq!(coded_rows("finding"), expected);
    let expected: BTreeSet<(String, String)> = expected_changes().into_iter().map(|(c, id, _, _)| (c, id)).collect();
    assert_eq!(coded_rows("change"), expected);
    // Every account, under its role's heading; the unused custom role is shown with no members.
    assert_eq!(doc.select(&sel("tr.account")).count(), 17);
    let headings: Vec<String> = doc.select(&sel("h3.role")).map(text_of).collect();
    assert!(headings[0].starts_with("Ownerprivileged"), "{headings:?}");
    assert!(headings.iter().any(|h| h.starts_with("Legacy Auditorscustom0 users, 0 API keys")), "{headings:?}");
    assert!(headings.last().unwrap().starts_with("Not in the role list"), "{headings:?}");
    // The hostile name is text, with its hidden characters shown.
    let hostile = doc
        .select(&sel("tr.account"))
        .find(|tr| text_of(*tr).contains("svc-new"))
        .map(text_of)
        .expect("the hostile key's row");
    assert!(hostile.contains("<script>alert(1)</script>\\u{202e}gpj\\u{1b}[2J\\r\\n"), "{hostile}");
    assert!(!page.contains('\u{202E}') && !page.contains('\x1b'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_on_exits_3_only_with_a_finding_at_or_above_the_level() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clean.c1z");
    let clean = json!({
        "roles": [role("r-owner", "Owner", false), role("r-viewer", "Viewer", false)],
        "users": [user("u-ada", "r-owner", "VERIFIED", "2025-06-01T00:00:00Z", RECENT)],
        "api_keys": [key("svc-viewer", "Dashboards", "API_KEY_TYPE_SERVICE", "r-viewer", "Viewer", None)],
    });
    sync(&clean, &file).await;
    for level in ["high", "medium", "low"] {
        let out = review(&file, &["--fail-on", level]);
        assert_eq!(code(&out), Some(0), "{level}: {}", stderr(&out));
        assert!(stdout(&out).contains("Findings\n  none"), "{}", stdout(&out));
    }
    // The same workspace with an Owner API key.
    let mut owner_key = clean.clone();
    owner_key["api_keys"].as_array_mut().unwrap().push(key(
        "svc-owner",
        "CI deploy",
        "API_KEY_TYPE_SERVICE",
        "r-owner",
        "Owner",
        None,
    ));
    sync(&owner_key, &file).await;
    let out = review(&file, &["--fail-on", "high", "--format", "json"]);
    assert_eq!(code(&out), Some(3), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("the report is still written");
    assert_eq!(findings_of(&report).into_keys().collect::<Vec<_>>(), [("owner_api_key".into(), "svc-owner".into())]);
    assert_eq!(stderr(&out).trim(), "error: 1 finding(s) at severity high or above (--fail-on high)");
    assert_eq!(code(&review(&file, &["--fail-on", "low"])), Some(3));
    assert_eq!(code(&review(&file, &[])), Some(0), "no --fail-on: findings alone do not fail");

    // Medium, not high: an unknown role.
    let mut unknown = clean.clone();
    unknown["users"].as_array_mut().unwrap().push(user("u-gus", "r-gone", "VERIFIED", "2025-06-01T00:00:00Z", RECENT));
    sync(&unknown, &file).await;
    assert_eq!(code(&review(&file, &["--fail-on", "high"])), Some(0));
    assert_eq!(code(&review(&file, &["--fail-on", "medium"])), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_compares_with_another_file() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.c1z");
    let new = dir.path().join("new.c1z");
    sync(&workspace(false), &old).await;
    sync(&workspace(true), &new).await;
    // Alone, the new file has one sync: no changes, and a note saying how to get them.
    let alone = json_report(&new, &[]);
    assert!(alone["previous_sync"].is_null());
    assert_eq!(alone["changes"], json!([]));
    assert!(alone["notes"].to_string().contains("--against"), "{}", alone["notes"]);
    let before = fingerprint(&old);
    let report = json_report(&new, &["--against", old.to_str().unwrap()]);
    assert_eq!(changes_of(&report), expected_changes());
    assert_eq!(findings_of(&report), expected_findings(false));
    assert_eq!(report["against"], old.to_str().unwrap());
    assert_eq!(fingerprint(&old), before);
    // The output may never be one of the reviewed files.
    let out = review(&new, &["--against", old.to_str().unwrap(), "--format", "csv", "-o", old.to_str().unwrap()]);
    assert_eq!(code(&out), Some(2));
    assert!(stderr(&out).contains("never overwritten"), "{}", stderr(&out));
    assert_eq!(fingerprint(&old), before);
}

/// `C1ZF\0` + one zstd frame of `content`.
fn c1z_of(content: &[u8]) -> Vec<u8> {
    let mut out = b"C1ZF\0".to_vec();
    out.extend(zstd::encode_all(content, 3).unwrap());
    out
}

/// A SQLite database built by `sql`, as a c1z.
fn c1z_of_sql(dir: &Path, sql: &str) -> Vec<u8> {
    let db = dir.join(format!("db-{}", rand_suffix()));
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    c1z_of(&std::fs::read(&db).unwrap())
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_foreign_and_hostile_files_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let good = two_syncs(dir.path()).await;
    let bytes = std::fs::read(&good).unwrap();
    let runs_code = "CREATE TABLE v1_sync_runs (id integer primary key, sync_id text, started_at datetime, ended_at datetime, sync_token text);";
    let grants = "CREATE TABLE v1_grants (id integer primary key, resource_type_id text, resource_id text, entitlement_id text, principal_resource_type_id text, principal_resource_id text, external_id text, data blob, sync_id text);";
    // A bomb: a SQLite header that states 1 GiB (262,144 pages of 4 KiB), then zeros, in a few kilobytes.
    let mut bomb = b"C1ZF\0".to_vec();
    {
        let mut enc = zstd::stream::write::Encoder::new(&mut bomb, 1).unwrap();
        let mut header = [0u8; 100];
        header[..16].copy_from_slice(b"SQLite format 3\0");
        header[16..18].copy_from_slice(&4096u16.to_be_bytes());
        header[28..32].copy_from_slice(&262_144u32.to_be_bytes());
        enc.write_all(&header).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            enc.write_all(&zeros).unwrap();
        }
        enc.finish().unwrap();
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("text.c1z", b"hello, this is not a sync file\n".to_vec(), "not a c1z sync file"),
        ("v3.c1z", b"C1Z3\0pebble".to_vec(), "v3 (Pebble)"),
        ("garbage.c1z", b"C1ZF\0not zstd at all".to_vec(), "corrupt"),
        ("truncated.c1z", bytes[..bytes.len() / 2].to_vec(), "corrupt"),
        ("bomb.c1z", bomb, "which no genuine c1z does"),
        ("notsqlite.c1z", c1z_of(&[7u8; 8192]), "does not hold a SQLite database"),
        ("empty-db.c1z", c1z_of_sql(dir.path(), "CREATE TABLE other (x);"), "no v1_sync_runs table"),
        (
            "view.c1z",
            c1z_of_sql(
                dir.path(),
                &format!("{runs_code}{grants}CREATE VIEW v1_resources AS SELECT 'user' AS resource_type_id, randomblob(9) AS data, '' AS sync_id;"),
            ),
            "no v1_resources table",
        ),
        (
            "unfinished.c1z",
            c1z_of_sql(
                dir.path(),
                &format!("{runs_code}{grants}CREATE TABLE v1_resources (id integer primary key, resource_type_id text, data blob, sync_id text);\
                          INSERT INTO v1_sync_runs VALUES (1, 'x', '2026-01-01 00:00:00', NULL, '');"),
            ),
            "no finished sync",
        ),
        ("empty.c1z", Vec::new(), "empty"),
    ];
    for (name, content, says) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &content).unwrap();
        let out = review(&path, &[]);
        let err = stderr(&out);
        assert_eq!(code(&out), Some(2), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        assert!(err.starts_with("error: cannot review ") && err.contains(says), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: no report");
        assert_eq!(std::fs::read(&path).unwrap(), content, "{name} was changed");
    }
    let out = review(&dir.path().join("missing.c1z"), &[]);
    assert_eq!(code(&out), Some(2));
    assert!(stderr(&out).contains("there is no such file"), "{}", stderr(&out));
    let out = review(&good, &["--against", dir.path().join("text.c1z").to_str().unwrap()]);
    assert_eq!(code(&out), Some(2));
    assert!(stderr(&out).contains("text.c1z: it is not a c1z"), "{}", stderr(&out));
    // Bad flags are usage errors too.
    let out = clean_std_command().args(["review", "--log-format", "console", "--now", "yesterday"]).output().unwrap();
    assert_eq!(code(&out), Some(2));
    assert!(stderr(&out).contains("RFC 3339"), "{}", stderr(&out));
    let out = review(&good, &["--inactive-days", "0"]);
    assert_eq!(code(&out), Some(2), "{}", stderr(&out));
    let out = review(&good, &["-o", dir.path().to_str().unwrap()]);
    assert_eq!(code(&out), Some(2));
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));
}

/// The Go connector's file (baton-sdk v0.1.9): roles come from the grants, and what it does not record (Torq's
/// status, last logins, API keys, the custom flag) is said in notes rather than guessed.
#[test]
fn the_go_connectors_file_is_reviewed_with_what_it_records() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference-sync.c1z");
    let before = fingerprint(&file);
    let report = json_report(&file, &[]);
    assert_eq!(report["summary"]["users"], 12);
    assert_eq!(report["summary"]["roles"], 5);
    assert_eq!(report["summary"]["api_keys"], 0);
    let accounts = report["accounts"].as_array().unwrap();
    let ws: Value = serde_json::from_str(include_str!("fixtures/workspace.json")).unwrap();
    let role_names: BTreeMap<&str, &str> = ws["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["name"].as_str().unwrap()))
        .collect();
    for u in ws["users"].as_array().unwrap() {
        let a = accounts.iter().find(|a| a["id"] == u["id"]).expect("every user of the workspace");
        assert_eq!(a["role"], role_names[u["role_id"].as_str().unwrap()], "{}", u["email"]);
    }
    let codes: BTreeSet<&str> =
        report["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert!(codes.is_disjoint(&["inactive_user", "never_logged_in", "pending_invitation"].into()), "{codes:?}");
    let notes = report["notes"].to_string();
    assert!(notes.contains("without Torq's status and last login"), "{notes}");
    assert!(notes.contains("which roles are custom"), "{notes}");
    assert_eq!(fingerprint(&file), before);
}

/// Colour only on a terminal: under `script` (a pseudo-terminal) the severities are coloured; `NO_COLOR` and a pipe
/// turn it off (the pipe case is every other test).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colour_only_on_a_terminal() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = two_syncs(dir.path()).await;
    let on_terminal = |no_color: bool| {
        let line = format!("{} review -f {} --now {NOW}", common::harness::bin(), file.display());
        let mut cmd = std::process::Command::new("script");
        cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("TERM", "xterm");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.args(["-qefc", &line, "/dev/null"]).stdin(std::process::Stdio::null()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let screen = on_terminal(false);
    assert!(screen.contains("\x1b[1;31mHIGH"), "{screen}");
    // The hostile name's own escape sequence is still shown, not run.
    assert!(screen.contains("\\u{1b}[2J") && !screen.contains("\x1b[2J"), "{screen}");
    assert!(!on_terminal(true).contains('\x1b'));
}
