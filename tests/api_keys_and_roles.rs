//! Issue 10 end to end, through the built binary against the simulated Torq server: API keys as `api_key`
//! resources with role grants, role profiles with scopes, the custom flag and SSO claim mappings, the 403/404
//! paths (API keys skipped, RBAC roles falling back to the legacy list, claim mappings silently absent), the
//! constant request count, and the resource-type filter of service-mode sync tasks (through `run_sync`).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use baton_torq::sim::{Endpoint, FaultKind, FaultPlan, SimConfig, SimServer, Workspace};
use common::c1z_reader::{pb, C1zReader};
use common::harness::{assert_success, run, stderr};
use serde_json::{json, Value};

const ROLES: usize = 130;
const PRESETS: [&str; 5] = ["Owner", "Contributor", "Creator", "Operator", "Viewer"];

fn role_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// 130 roles (5 presets, the rest custom, each with scopes), four users, a dozen API keys of every kind (service,
/// private with and without an embedded owner, unspecified, no type at all, a type Torq may add later, unnamed,
/// never used, two whose role is not in the role list) and four claim mappings (ranks as strings and numbers,
/// one for a role that does not exist).
fn workspace() -> Value {
    let roles: Vec<Value> = (0..ROLES)
        .map(|i| {
            let (name, custom) = match PRESETS.get(i) {
                Some(n) => (n.to_string(), false),
                None => (format!("Custom role {i}"), true),
            };
            json!({
                "id": role_id(i),
                "name": name,
                "description": format!("Role number {i}"),
                "scope_names": ["playbook.read", format!("scope.{i}")],
                "is_custom": custom,
            })
        })
        .collect();
    let user = |id: &str, email: &str, role: usize, sso: bool| {
        json!({"id": id, "email": email, "role_id": role_id(role), "status": "VERIFIED", "sso_provision": sso,
               "created_time": "2025-01-10T00:15:30Z"})
    };
    let users = vec![
        user("u-ada", "ada@example.com", 0, false),
        user("u-bob", "bob@example.com", 1, true),
        user("u-cy", "cy@example.com", 77, false),
        user("u-dee", "dee@example.com", 129, true),
    ];
    let key = |cid: &str, name: &str, ty: &str, role: &str, role_name: &str| {
        let mut k = json!({"client_id": cid, "name": name, "type": ty, "role_id": role, "role_name": role_name,
                           "created_time": "2025-03-01T10:00:00Z",
                           "last_authenticated_time": "2026-11-20T08:30:00.25Z"});
        if name.is_empty() {
            k.as_object_mut().unwrap().remove("name");
        }
        if ty.is_empty() {
            k.as_object_mut().unwrap().remove("type");
        }
        k
    };
    let mut keys = vec![
        key("svc-owner", "CI deploy", "API_KEY_TYPE_SERVICE", &role_id(0), "Owner"),
        key("svc-viewer", "Dashboards", "API_KEY_TYPE_SERVICE", &role_id(4), "Viewer"),
        key("svc-custom", "SOAR bridge", "API_KEY_TYPE_SERVICE", &role_id(77), "Custom role 77"),
        key("svc-unnamed", "", "API_KEY_TYPE_SERVICE", &role_id(1), "Contributor"),
        key("svc-gone", "Old importer", "API_KEY_TYPE_SERVICE", "r-deleted", "Deleted role"),
        key("prv-ada", "Ada's laptop", "API_KEY_TYPE_PRIVATE", &role_id(0), "Owner"),
        key("prv-bob", "Bob's script", "API_KEY_TYPE_PRIVATE", &role_id(1), "Contributor"),
        key("prv-orphan", "No owner listed", "API_KEY_TYPE_PRIVATE", &role_id(2), "Creator"),
        key("unspec", "Unspecified", "API_KEY_TYPE_UNSPECIFIED", &role_id(3), "Operator"),
        key("notype", "No type", "", &role_id(4), "Viewer"),
        key("future", "Robot", "API_KEY_TYPE_ROBOT", &role_id(5), "Custom role 5"),
        key("prv-gone", "Dangling", "API_KEY_TYPE_PRIVATE", "r-vanished", "Vanished"),
    ];
    keys[5]["user"] = users[0].clone();
    keys[6]["user"] = users[1].clone();
    keys[11]["user"] = users[2].clone();
    // Never used: no last_authenticated_time.
    keys[1].as_object_mut().unwrap().remove("last_authenticated_time");
    let mappings = vec![
        json!({"id": "m1", "claim_name": "groups", "claim_value": "soc-admins", "role_id": role_id(0), "rank": "1"}),
        json!({"id": "m2", "claim_name": "groups", "claim_value": "soc", "role_id": role_id(77), "rank": 2}),
        json!({"id": "m3", "claim_name": "department", "claim_value": "it", "role_id": role_id(0), "rank": "3"}),
        json!({"id": "m4", "claim_name": "groups", "claim_value": "ghosts", "role_id": "r-deleted", "rank": 4}),
    ];
    json!({"users": users, "roles": roles, "api_keys": keys, "claim_mappings": mappings})
}

async fn server(faults: FaultPlan) -> SimServer {
    let ws = Workspace::from_json(&workspace().to_string()).expect("test workspace loads");
    SimServer::start(ws, SimConfig { faults, ..Default::default() }).await.unwrap()
}

fn summary_record(err: &str) -> Value {
    err.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "sync complete")
        .unwrap_or_else(|| panic!("a JSON summary record:\n{err}"))
}

/// A JSON text field of the summary record, parsed.
fn summary_json(summary: &Value, field: &str) -> Value {
    assert!(summary[field].is_object() || summary[field].is_array(), "{field} is a JSON object or list: {summary}");
    summary[field].clone()
}

fn warnings(err: &str) -> Vec<Value> {
    err.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|v| v["level"] == "WARN").collect()
}

fn list(s: &pb::Struct, key: &str) -> Vec<pb::Value> {
    match s.fields.get(key).and_then(|v| v.kind.clone()) {
        Some(pb::value::Kind::ListValue(l)) => l.values,
        other => panic!("{key} is not a list: {other:?}"),
    }
}

fn texts(values: &[pb::Value]) -> Vec<String> {
    values
        .iter()
        .map(|v| match &v.kind {
            Some(pb::value::Kind::StringValue(s)) => s.clone(),
            other => panic!("not text: {other:?}"),
        })
        .collect()
}

fn resources_of(reader: &C1zReader, sync_id: &str, ty: &str) -> BTreeMap<String, pb::Resource> {
    reader
        .resources(sync_id)
        .into_iter()
        .filter(|r| r.resource_type_id == ty)
        .map(|r| (r.data.id.as_ref().unwrap().resource.clone(), r.data))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_roles_and_claim_mappings_are_written_exactly_in_six_requests() {
    let server = server(FaultPlan::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let out = run(&server, &file, &["--log-format", "json"]).await;
    assert_success(&out);
    let err = stderr(&out);
    let reader = C1zReader::open(&file);
    let sync_id = reader.default_sync_id();
    reader.check_integrity(&sync_id);

    // The api_key resource type, as the issue specifies it.
    let types: BTreeMap<String, pb::ResourceType> =
        reader.resource_types(&sync_id).into_iter().map(|t| (t.external_id, t.data)).collect();
    assert_eq!(types.keys().map(String::as_str).collect::<Vec<_>>(), ["api_key", "role", "user"]);
    let t = &types["api_key"];
    assert_eq!((t.display_name.as_str(), t.traits.as_slice()), ("API Key", &[1][..]), "TRAIT_USER");
    assert_eq!(
        t.annotations.iter().map(|a| a.type_url.as_str()).collect::<Vec<_>>(),
        [pb::SKIP_ENTITLEMENTS_AND_GRANTS_URL]
    );

    // Every key, field by field.
    let keys = resources_of(&reader, &sync_id, "api_key");
    assert_eq!(keys.len(), 12);
    let ws = workspace();
    for k in ws["api_keys"].as_array().unwrap() {
        let cid = k["client_id"].as_str().unwrap();
        let r = &keys[cid];
        let name = k["name"].as_str().unwrap_or("");
        assert_eq!(r.display_name, if name.is_empty() { cid } else { name }, "{cid}");
        let ut: pb::UserTrait = pb::find_annotation(&r.annotations, pb::USER_TRAIT_URL).expect("UserTrait");
        assert_eq!(ut.account_type, 2, "{cid}: ACCOUNT_TYPE_SERVICE");
        assert_eq!(ut.login, cid);
        assert!(ut.emails.is_empty(), "{cid}: a key has no email");
        assert_eq!(ut.status.as_ref().map(|s| s.status), Some(1), "{cid}: ENABLED");
        let created = chrono::DateTime::parse_from_rfc3339(k["created_time"].as_str().unwrap()).unwrap();
        assert_eq!(ut.created_at.as_ref().map(|c| c.seconds), Some(created.timestamp()));
        match k["last_authenticated_time"].as_str() {
            Some(l) => {
                let l = chrono::DateTime::parse_from_rfc3339(l).unwrap();
                let got = ut.last_login.as_ref().expect("last_login");
                assert_eq!((got.seconds, got.nanos as u32), (l.timestamp(), l.timestamp_subsec_nanos()));
            }
            None => assert!(ut.last_login.is_none(), "{cid}: never used, no last_login"),
        }
        let p = ut.profile.as_ref().expect("profile");
        assert_eq!(p.string("client_id"), Some(cid));
        assert_eq!(p.string("name"), Some(name));
        assert_eq!(p.string("role_id"), k["role_id"].as_str());
        assert_eq!(p.string("role_name"), k["role_name"].as_str());
        let expected_type = match k["type"].as_str() {
            Some("API_KEY_TYPE_SERVICE") => "service",
            Some("API_KEY_TYPE_PRIVATE") => "private",
            Some(raw) => raw,
            None => "API_KEY_TYPE_UNSPECIFIED",
        };
        assert_eq!(p.string("type"), Some(expected_type), "{cid}");
        match (expected_type, k.get("user")) {
            ("private", Some(owner)) => {
                assert_eq!(p.string("owner_user_id"), owner["id"].as_str(), "{cid}");
                assert_eq!(p.string("owner_email"), owner["email"].as_str(), "{cid}");
            }
            _ => assert!(!p.fields.contains_key("owner_user_id") && !p.fields.contains_key("owner_email"), "{cid}"),
        }
        let fields: BTreeSet<&str> = p.fields.keys().map(String::as_str).collect();
        let allowed: BTreeSet<&str> =
            ["client_id", "name", "type", "role_id", "role_name", "owner_user_id", "owner_email"].into();
        assert!(fields.is_subset(&allowed), "{cid}: unexpected profile fields {fields:?}");
    }

    // Grants: every user and every key whose role exists; the two keys with unknown roles get none, and a
    // warning naming both ids.
    let grants: BTreeSet<String> = reader.grants(&sync_id).into_iter().map(|g| g.external_id).collect();
    let mut expected: BTreeSet<String> = ws["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| format!("role:{}:member:user:{}", u["role_id"].as_str().unwrap(), u["id"].as_str().unwrap()))
        .collect();
    for k in ws["api_keys"].as_array().unwrap() {
        let role = k["role_id"].as_str().unwrap();
        if role.starts_with("00000000-") {
            expected.insert(format!("role:{role}:member:api_key:{}", k["client_id"].as_str().unwrap()));
        }
    }
    assert_eq!(grants, expected);
    assert_eq!(grants.len(), 4 + 10);
    let warned = warnings(&err);
    for (cid, role) in [("svc-gone", "r-deleted"), ("prv-gone", "r-vanished")] {
        assert!(
            warned.iter().any(|w| {
                let text = w.to_string();
                text.contains(cid) && text.contains(role)
            }),
            "a warning names {cid} and {role}:\n{err}"
        );
    }
    assert_eq!(warned.len(), 2, "only the two unknown roles are warned about:\n{err}");

    // Roles: all 130, with scopes, the custom flag and the claim mappings that assign them, in rank order.
    let roles = resources_of(&reader, &sync_id, "role");
    assert_eq!(roles.len(), ROLES);
    for i in 0..ROLES {
        let r = &roles[&role_id(i)];
        assert_eq!(r.description, format!("Role number {i}. Scopes: playbook.read, scope.{i}"));
        let rt: pb::RoleTrait = pb::find_annotation(&r.annotations, pb::ROLE_TRAIT_URL).expect("RoleTrait");
        let p = rt.profile.expect("profile");
        assert_eq!(p.string("role_description"), Some(format!("Role number {i}").as_str()));
        assert_eq!(texts(&list(&p, "scope_names")), ["playbook.read".to_string(), format!("scope.{i}")]);
        assert_eq!(p.fields["is_custom"].kind, Some(pb::value::Kind::BoolValue(i >= PRESETS.len())), "role {i}");
        let mappings: Vec<(String, String, f64)> = list(&p, "claim_mappings")
            .iter()
            .map(|m| match &m.kind {
                Some(pb::value::Kind::StructValue(s)) => (
                    s.string("claim_name").unwrap().to_string(),
                    s.string("claim_value").unwrap().to_string(),
                    match s.fields["rank"].kind {
                        Some(pb::value::Kind::NumberValue(n)) => n,
                        ref other => panic!("rank is a number: {other:?}"),
                    },
                ),
                other => panic!("a mapping is a struct: {other:?}"),
            })
            .collect();
        let expected: Vec<(String, String, f64)> = match i {
            0 => vec![("groups".into(), "soc-admins".into(), 1.0), ("department".into(), "it".into(), 3.0)],
            77 => vec![("groups".into(), "soc".into(), 2.0)],
            _ => vec![],
        };
        assert_eq!(mappings, expected, "role {i}");
    }
    // Role entitlements: Go connector ids, grantable to users and API keys.
    let ents = reader.entitlements(&sync_id);
    assert_eq!(ents.len(), ROLES);
    for e in &ents {
        let grantable: Vec<&str> = e.data.grantable_to.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(grantable, ["user", "api_key"], "{}", e.external_id);
    }

    // Requests: token + 2 user lists + RBAC roles + API keys + claim mappings, nothing else.
    let stats = server.stats();
    assert_eq!(
        (stats.token, stats.users_local, stats.users_sso, stats.rbac_roles, stats.api_keys, stats.claim_mappings),
        (1, 1, 1, 1, 1, 1)
    );
    assert_eq!(stats.role_pages, 0, "the legacy role list is not needed");
    assert_eq!(stats.total(), 6);

    let summary = summary_record(&err);
    assert_eq!(summary_json(&summary, "resources"), json!({"user": 4, "role": 130, "api_key": 12}));
    assert_eq!(summary_json(&summary, "resources_by_kind")["api_key"], json!({"service": 5, "private": 4, "other": 3}));
    assert_eq!(summary_json(&summary, "resources_by_kind")["role"], json!({"built-in": 5, "custom": 125}));
    assert_eq!(summary_json(&summary, "unknown_role"), json!({"user": 0, "role": 0, "api_key": 2}));
    assert_eq!(summary_json(&summary, "skipped"), json!([]));
    assert_eq!(summary["grants"], 14);
    assert_eq!(summary["api_requests"], 5);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_summary_reports_api_keys() {
    let server = server(FaultPlan::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let out = run(&server, &file, &["--log-format", "console"]).await;
    assert_success(&out);
    let err = stderr(&out);
    assert!(
        err.contains("4 users (4 verified), 130 roles (5 built-in, 125 custom), 12 API keys (3 other, 4 private, 5 service), 14 grants"),
        "{err}"
    );
    assert!(err.contains("2 API keys have a role that Torq did not list"), "{err}");
    assert!(err.contains("API requests: 6 (1 token, 5 API, 0 retries)"), "{err}");
    server.shutdown().await;
}

/// With `api-keys` answering 403 (or 404) the sync succeeds with one warning naming the scope to grant, the
/// file has no `api_key` type, resources or grants, and the summary says API keys were not synced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_refused_leaves_the_type_out_with_one_warning() {
    for status in [403, 404] {
        let server = server(FaultPlan::new().always(Endpoint::ApiKeys, FaultKind::Status(status))).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sync.c1z");
        let out = run(&server, &file, &["--log-format", "json"]).await;
        assert_success(&out);
        assert_eq!(out.status.code(), Some(0));
        let err = stderr(&out);
        let warned = warnings(&err);
        assert_eq!(warned.len(), 1, "HTTP {status}: one warning:\n{err}");
        let w = warned[0]["message"].as_str().unwrap_or_default();
        assert!(w.contains("API keys were not synced") && w.contains("apikey.read"), "HTTP {status}: {w}");
        assert!(w.contains(&status.to_string()), "names the status: {w}");

        let reader = C1zReader::open(&file);
        let sync_id = reader.default_sync_id();
        reader.check_integrity(&sync_id);
        assert!(reader.resource_types(&sync_id).iter().all(|t| t.external_id != "api_key"), "no api_key type");
        assert!(resources_of(&reader, &sync_id, "api_key").is_empty(), "no api_key rows");
        assert!(reader.grants(&sync_id).iter().all(|g| g.principal_resource_type_id == "user"));
        assert_eq!(reader.grants(&sync_id).len(), 4);
        assert_eq!(resources_of(&reader, &sync_id, "role").len(), ROLES);

        let summary = summary_record(&err);
        let skipped = summary_json(&summary, "skipped");
        assert_eq!(skipped[0]["resource_type"], "api_key", "{skipped}");
        assert!(skipped[0]["reason"].as_str().unwrap().contains("apikey.read"));
        assert!(summary_json(&summary, "resources").get("api_key").is_none(), "no claim of zero keys");
        assert_eq!(server.stats().api_keys, 1, "a 403/404 is not retried");
        server.shutdown().await;
    }

    // The console summary says so too.
    let server = server(FaultPlan::new().always(Endpoint::ApiKeys, FaultKind::Status(403))).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(&server, &dir.path().join("sync.c1z"), &["--log-format", "console"]).await;
    assert_success(&out);
    let err = stderr(&out);
    assert!(err.contains("API keys not synced: Torq answered HTTP 403 to GET /api-keys"), "{err}");
    assert!(!err.contains("API keys ("), "no API key count is claimed:\n{err}");
    server.shutdown().await;
}

/// With the RBAC role list refused, the paged legacy list is used (one warning), every role is present with its
/// scopes, and no role claims to be built-in or custom.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_roles_refused_falls_back_to_the_legacy_list() {
    for status in [403, 404] {
        let server = server(FaultPlan::new().always(Endpoint::RbacRoles, FaultKind::Status(status))).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sync.c1z");
        let out = run(&server, &file, &["--log-format", "json"]).await;
        assert_success(&out);
        let err = stderr(&out);
        let warned: Vec<Value> = warnings(&err).into_iter().filter(|w| w.to_string().contains("legacy list")).collect();
        assert_eq!(warned.len(), 1, "HTTP {status}: one fallback warning:\n{err}");

        let reader = C1zReader::open(&file);
        let sync_id = reader.default_sync_id();
        reader.check_integrity(&sync_id);
        let roles = resources_of(&reader, &sync_id, "role");
        assert_eq!(roles.len(), ROLES, "all roles present");
        for i in 0..ROLES {
            let rt: pb::RoleTrait =
                pb::find_annotation(&roles[&role_id(i)].annotations, pb::ROLE_TRAIT_URL).expect("RoleTrait");
            let p = rt.profile.unwrap();
            assert!(!p.fields.contains_key("is_custom"), "the legacy list does not say: role {i}");
            assert_eq!(texts(&list(&p, "scope_names")).len(), 2);
        }
        assert_eq!(reader.grants(&sync_id).len(), 14, "grants unchanged");
        let stats = server.stats();
        assert_eq!((stats.rbac_roles, stats.role_pages), (1, 2), "130 roles = 2 legacy pages of 100");
        assert_eq!(stats.total(), 8);
        server.shutdown().await;
    }
}

/// The RBAC role list is documented without paging; a `next_page_token` that appears anyway is followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_token_on_the_rbac_role_list_is_followed() {
    let server = server(FaultPlan::new().on(Endpoint::RbacRoles, FaultKind::SplitPage, 1, 1)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let out = run(&server, &file, &["--log-format", "json"]).await;
    assert_success(&out);
    assert!(warnings(&stderr(&out)).len() == 2, "only the two unknown-role warnings:\n{}", stderr(&out));
    let reader = C1zReader::open(&file);
    let sync_id = reader.default_sync_id();
    reader.check_integrity(&sync_id);
    let roles = resources_of(&reader, &sync_id, "role");
    assert_eq!(roles.len(), ROLES, "both halves");
    for r in roles.values() {
        let rt: pb::RoleTrait = pb::find_annotation(&r.annotations, pb::ROLE_TRAIT_URL).unwrap();
        assert!(rt.profile.unwrap().fields.contains_key("is_custom"), "still the RBAC list");
    }
    let stats = server.stats();
    assert_eq!((stats.rbac_roles, stats.role_pages, stats.faults_injected), (2, 0, 1));
    server.shutdown().await;
}

/// No SSO configured: claim mappings answer 403/404, no warning, and the role profiles carry no mapping list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_mappings_refused_is_quiet() {
    for status in [403, 404] {
        let server = server(FaultPlan::new().always(Endpoint::ClaimMappings, FaultKind::Status(status))).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sync.c1z");
        let out = run(&server, &file, &["--log-format", "json"]).await;
        assert_success(&out);
        let err = stderr(&out);
        assert!(
            warnings(&err).iter().all(|w| !w.to_string().contains("claim")),
            "no warning about claim mappings:\n{err}"
        );
        let reader = C1zReader::open(&file);
        let sync_id = reader.default_sync_id();
        for r in resources_of(&reader, &sync_id, "role").values() {
            let rt: pb::RoleTrait = pb::find_annotation(&r.annotations, pb::ROLE_TRAIT_URL).unwrap();
            assert!(!rt.profile.unwrap().fields.contains_key("claim_mappings"));
        }
        server.shutdown().await;
    }
}

/// A failure that is not a refusal still fails the sync (no silently partial file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_api_key_list_fails_the_sync_and_keeps_the_old_file() {
    let server = server(FaultPlan::new().always(Endpoint::ApiKeys, FaultKind::MalformedJson)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let out = run(&server, &file, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("GET /api-keys"), "{}", stderr(&out));
    assert!(!file.exists(), "no file written");
    server.shutdown().await;
}

/// Service mode's `sync_resource_type_ids`: only the named syncers run; grants into types that are not synced
/// are left out quietly; ids the connector does not have are ignored, and only unknown ids are an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_type_filter_syncs_only_those_types() {
    use baton_torq::c1z::WriterOptions;
    use baton_torq::sync::{run_sync, SyncError, SyncRequest};
    use baton_torq::torq::{TorqClient, TorqSettings};
    use tokio_util::sync::CancellationToken;

    let server = server(FaultPlan::new()).await;
    let cfg = SimConfig::default();
    let settings = TorqSettings::new(
        cfg.client_id.clone(),
        cfg.client_secret.clone().into(),
        server.api_url().parse().unwrap(),
        server.auth_url().parse().unwrap(),
    );
    let client = TorqClient::new(settings).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let request = |name: &str, types: &[&str]| SyncRequest {
        output: dir.path().join(name),
        writer: WriterOptions::default(),
        progress: None,
        resource_types: types.iter().map(|t| t.to_string()).collect(),
    };

    let summary =
        run_sync(&client, request("keys.c1z", &["api_key", "group"]), CancellationToken::new()).await.unwrap();
    assert_eq!(summary.resource_counts(), "api_key=12");
    assert_eq!(summary.grants, 0, "the role type is not synced, so no role grants");
    let reader = C1zReader::open(&dir.path().join("keys.c1z"));
    let sync_id = reader.default_sync_id();
    reader.check_integrity(&sync_id);
    let types: Vec<String> = reader.resource_types(&sync_id).into_iter().map(|t| t.external_id).collect();
    assert_eq!(types, ["api_key"]);
    assert_eq!(resources_of(&reader, &sync_id, "api_key").len(), 12);
    assert!(reader.grants(&sync_id).is_empty());
    let stats = server.stats();
    assert_eq!((stats.api_keys, stats.users_local, stats.rbac_roles), (1, 0, 0), "only the API keys were asked");

    let summary = run_sync(&client, request("both.c1z", &["user", "role"]), CancellationToken::new()).await.unwrap();
    assert_eq!(summary.resource_counts(), "user=4 role=130");
    assert_eq!(summary.grants, 4);

    let err = run_sync(&client, request("none.c1z", &["group"]), CancellationToken::new()).await.unwrap_err();
    assert!(matches!(err, SyncError::UnknownResourceTypes { .. }), "{err}");
    assert!(err.to_string().contains("user, role, api_key"), "{err}");
    assert!(!dir.path().join("none.c1z").exists());
    server.shutdown().await;
}
