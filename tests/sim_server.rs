//! Tests of the simulated Torq server itself, through plain HTTP with `reqwest` (redirects disabled), so that
//! nothing of the connector's own Torq client is involved.

mod common;

use std::collections::HashSet;
use std::io::Read;
use std::time::{Duration, Instant};

use baton_torq::sim::{
    Endpoint, FaultKind, FaultPlan, GeneratedSpec, SimConfig, SimRole, SimServer, SimUser, Workspace,
};
use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use reqwest::{Client, StatusCode};
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};

use common::harness::{reference_workspace as fixture, REFERENCE_JSON};

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Client::builder().redirect(reqwest::redirect::Policy::none()).build() {
        Ok(client) => client,
        Err(err) => panic!("cannot build the HTTP client: {err}"),
    }
}

async fn start(workspace: Workspace, config: SimConfig) -> SimServer {
    SimServer::start(workspace, config).await.expect("simulator starts")
}

async fn token_response(http: &Client, sim: &SimServer, id: &str, secret: &str) -> reqwest::Response {
    http.post(sim.auth_url())
        .basic_auth(id, Some(secret))
        .header("Accept", "application/json")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request is sent")
}

async fn token(http: &Client, sim: &SimServer) -> String {
    let response = token_response(http, sim, "sim-client-id", "sim-client-secret").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("token JSON");
    body["access_token"].as_str().expect("access_token is a string").to_owned()
}

async fn get(http: &Client, url: String, token: &str) -> reqwest::Response {
    http.get(url).bearer_auth(token).send().await.expect("request is sent")
}

#[derive(Deserialize)]
struct UsersBody {
    users: Vec<SimUser>,
}

#[derive(Deserialize)]
struct RolesBody {
    roles: Vec<SimRole>,
    next_page_token: Option<String>,
}

async fn users(http: &Client, sim: &SimServer, token: &str, sso: Option<bool>) -> Vec<SimUser> {
    let url = match sso {
        None => format!("{}/users", sim.api_url()),
        Some(sso) => format!("{}/users?sso_provision={sso}", sim.api_url()),
    };
    let response = get(http, url, token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: UsersBody = response.json().await.expect("users JSON");
    body.users
}

/// Fetches all role pages; returns the roles and the number of pages.
async fn all_roles(http: &Client, sim: &SimServer, token: &str, page_size: u32) -> (Vec<SimRole>, usize) {
    let mut roles = Vec::new();
    let mut page_token = String::new();
    for pages in 1..100 {
        let url = format!("{}/users/roles?page_size={page_size}&page_token={page_token}", sim.api_url());
        let response = get(http, url, token).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page: RolesBody = response.json().await.expect("roles JSON");
        roles.extend(page.roles);
        match page.next_page_token.filter(|t| !t.is_empty()) {
            Some(next) => page_token = next,
            None => return (roles, pages),
        }
    }
    panic!("role paging did not end");
}

async fn error_envelope(response: reqwest::Response) -> (StatusCode, i64, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("error envelope is JSON");
    let code = body["code"].as_i64().expect("code is a number");
    let message = body["message"].as_str().expect("message is a string").to_owned();
    (status, code, message)
}

#[tokio::test]
async fn token_issue_and_bad_credentials() {
    let http = client();
    let sim = start(Workspace::demo(), SimConfig::default()).await;

    let response = token_response(&http, &sim, "sim-client-id", "sim-client-secret").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.len(), 36, "uuid-like token: {token}");

    let (status, code, _) = error_envelope(token_response(&http, &sim, "sim-client-id", "wrong").await).await;
    assert_eq!((status, code), (StatusCode::UNAUTHORIZED, 16));
    let (status, code, _) = error_envelope(token_response(&http, &sim, "other-id", "sim-client-secret").await).await;
    assert_eq!((status, code), (StatusCode::UNAUTHORIZED, 16));
    let response = http.post(sim.auth_url()).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(error_envelope(response).await.0, StatusCode::UNAUTHORIZED);
    let response = http
        .post(sim.auth_url())
        .basic_auth("sim-client-id", Some("sim-client-secret"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_envelope(response).await.1, 3);

    let stats = sim.stats();
    assert_eq!((stats.token, stats.rejected_auth, stats.api_requests()), (5, 3, 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn api_auth_missing_unknown_and_unknown_path() {
    let http = client();
    let sim = start(Workspace::demo(), SimConfig::default()).await;
    let response = http.get(format!("{}/users", sim.api_url())).send().await.unwrap();
    assert_eq!(error_envelope(response).await.0, StatusCode::UNAUTHORIZED);
    let response = get(&http, format!("{}/users/roles", sim.api_url()), "not-a-token").await;
    let (status, code, _) = error_envelope(response).await;
    assert_eq!((status, code), (StatusCode::UNAUTHORIZED, 16));

    let token = token(&http, &sim).await;
    let response = get(&http, format!("{}/nope", sim.api_url()), &token).await;
    let (status, code, _) = error_envelope(response).await;
    assert_eq!((status, code), (StatusCode::NOT_FOUND, 5));
    let response = get(&http, format!("{}/users?sso_provision=maybe", sim.api_url()), &token).await;
    assert_eq!(error_envelope(response).await.1, 3);
    let response = http.delete(format!("{}/users", sim.api_url())).bearer_auth(&token).send().await.unwrap();
    let (status, code, _) = error_envelope(response).await;
    assert_eq!((status, code), (StatusCode::METHOD_NOT_ALLOWED, 12));

    let stats = sim.stats();
    assert_eq!((stats.rejected_auth, stats.other, stats.users_local, stats.role_pages), (2, 2, 2, 1));
    sim.shutdown().await;
}

#[tokio::test]
async fn users_split_by_sso_flag_and_union_is_the_workspace() {
    let http = client();
    let workspace = Workspace::demo();
    let expected: HashSet<String> = workspace.users(false).chain(workspace.users(true)).map(|u| u.id).collect();
    let sim = start(workspace, SimConfig::default()).await;
    let token = token(&http, &sim).await;

    let default = users(&http, &sim, &token, None).await;
    let local = users(&http, &sim, &token, Some(false)).await;
    let sso = users(&http, &sim, &token, Some(true)).await;
    assert!(local.iter().all(|u| !u.sso_provision));
    assert!(sso.iter().all(|u| u.sso_provision));
    let ids = |list: &[SimUser]| list.iter().map(|u| u.id.clone()).collect::<HashSet<_>>();
    assert_eq!(ids(&default), ids(&local), "absent sso_provision means false");
    assert!(ids(&local).is_disjoint(&ids(&sso)));
    let union: HashSet<String> = ids(&local).union(&ids(&sso)).cloned().collect();
    assert_eq!(union, expected);
    assert_eq!(local.len() + sso.len(), 15);
    assert!(!local.is_empty() && !sso.is_empty());

    let stats = sim.stats();
    assert_eq!((stats.token, stats.users_local, stats.users_sso, stats.role_pages), (1, 2, 1, 0));
    assert_eq!((stats.api_requests(), stats.total()), (3, 4));
    sim.shutdown().await;
}

#[tokio::test]
async fn fixed_fixture_serves_exactly_its_users_and_roles() {
    let http = client();
    let sim = start(fixture(), SimConfig::default()).await;
    let token = token(&http, &sim).await;
    let local = users(&http, &sim, &token, Some(false)).await;
    let sso = users(&http, &sim, &token, Some(true)).await;
    assert_eq!(local.len() + sso.len(), 12);
    let (roles, pages) = all_roles(&http, &sim, &token, 50).await;
    assert_eq!((roles.len(), pages), (5, 1));

    // Same users, same fields, as the fixture file (the server must not invent or drop fields).
    let file: Value = serde_json::from_str(REFERENCE_JSON).unwrap();
    let mut served: Vec<Value> = local.iter().chain(&sso).map(|u| serde_json::to_value(u).unwrap()).collect();
    let mut wanted = file["users"].as_array().unwrap().clone();
    let by_id = |v: &Value| v["id"].as_str().unwrap().to_owned();
    served.sort_by_key(by_id);
    wanted.sort_by_key(by_id);
    assert_eq!(served, wanted);
    let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["Owner", "Contributor", "Operator", "Viewer", "SOC Tier 1"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn roles_paging() {
    let http = client();
    let sim = start(fixture(), SimConfig::default()).await;
    let token = token(&http, &sim).await;

    let (roles, pages) = all_roles(&http, &sim, &token, 2).await;
    assert_eq!(pages, 3);
    let ids: HashSet<&str> = roles.iter().map(|r| r.id.as_str()).collect();
    assert_eq!((roles.len(), ids.len()), (5, 5));

    // The last page has no usable token (the raw field is empty or absent).
    let first: Value =
        get(&http, format!("{}/users/roles?page_size=2", sim.api_url()), &token).await.json().await.unwrap();
    let mut next = first["next_page_token"].as_str().unwrap().to_owned();
    let mut last = first;
    while !next.is_empty() {
        let url = format!("{}/users/roles?page_size=2&page_token={next}", sim.api_url());
        last = get(&http, url, &token).await.json().await.unwrap();
        next = last["next_page_token"].as_str().unwrap_or_default().to_owned();
    }
    assert_eq!(last["roles"].as_array().unwrap().len(), 1);
    assert!(last["next_page_token"].as_str().is_none_or(str::is_empty));

    // Default page size 50 and clamping to 100: one page, no token field at all.
    let one: Value =
        get(&http, format!("{}/users/roles?page_size=500", sim.api_url()), &token).await.json().await.unwrap();
    assert_eq!(one["roles"].as_array().unwrap().len(), 5);
    assert!(one.get("next_page_token").is_none());

    let response = get(&http, format!("{}/users/roles?page_token=garbage", sim.api_url()), &token).await;
    let (status, code, _) = error_envelope(response).await;
    assert_eq!((status, code), (StatusCode::BAD_REQUEST, 3));

    // A generated workspace with 250 roles: clamped pages of 100.
    let spec = GeneratedSpec { users: 10, roles: 250, sso_percent: 50, seed: 3, ..GeneratedSpec::default() };
    let big = start(Workspace::generated(spec), SimConfig::default()).await;
    let token = self::token(&http, &big).await;
    let (roles, pages) = all_roles(&http, &big, &token, 1000).await;
    assert_eq!((roles.len(), pages), (250, 3));
    assert_eq!(roles.iter().map(|r| r.id.as_str()).collect::<HashSet<_>>().len(), 250);
    assert_eq!(big.stats().role_pages, 3);
    big.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_token_gets_302_to_login() {
    let http = client();
    let config = SimConfig { token_ttl: Duration::from_secs(1), ..SimConfig::default() };
    let sim = start(Workspace::demo(), config).await;
    let response = token_response(&http, &sim, "sim-client-id", "sim-client-secret").await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 1);
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get(&http, format!("{}/users", sim.api_url()), &token).await.status(), StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let urls = ["users?sso_provision=true", "users/roles", "roles", "api-keys", "sso/claim_mappings"];
    for url in urls.map(|path| format!("{}/{path}", sim.api_url())) {
        let response = get(&http, url, &token).await;
        assert_eq!(response.status(), StatusCode::FOUND, "redirect not followed");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with("https://login.torq.io/"), "{location}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(response.text().await.unwrap().contains("<html"));
    }
    // A fresh token works again.
    let fresh = self::token(&http, &sim).await;
    assert_eq!(get(&http, format!("{}/users", sim.api_url()), &fresh).await.status(), StatusCode::OK);
    assert_eq!(sim.stats().rejected_auth, 5);
    sim.shutdown().await;
}

#[tokio::test]
async fn fault_status_and_too_many_requests() {
    let http = client();
    let plan = FaultPlan::new()
        .on(Endpoint::Roles, FaultKind::Status(503), 1, 2)
        .on(Endpoint::UsersLocal, FaultKind::TooManyRequests { retry_after_secs: Some(7) }, 1, 1)
        .on(Endpoint::UsersSso, FaultKind::TooManyRequests { retry_after_secs: None }, 1, 1);
    let sim = start(Workspace::demo(), SimConfig { faults: plan, ..SimConfig::default() }).await;
    let token = token(&http, &sim).await;
    let roles = format!("{}/users/roles", sim.api_url());
    for _ in 0..2 {
        let (status, code, message) = error_envelope(get(&http, roles.clone(), &token).await).await;
        assert_eq!((status, code), (StatusCode::SERVICE_UNAVAILABLE, 14));
        assert!(message.contains("injected"));
    }
    assert_eq!(get(&http, roles, &token).await.status(), StatusCode::OK);

    let response = get(&http, format!("{}/users", sim.api_url()), &token).await;
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(error_envelope(response).await.1, 8);
    let response = get(&http, format!("{}/users?sso_provision=true", sim.api_url()), &token).await;
    assert!(response.headers().get("retry-after").is_none());
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(users(&http, &sim, &token, None).await.len(), 8);

    let stats = sim.stats();
    assert_eq!((stats.faults_injected, stats.role_pages, stats.users_local, stats.users_sso), (4, 3, 2, 1));
    sim.shutdown().await;
}

#[tokio::test]
async fn fault_redirect_delay_and_any_api() {
    let http = client();
    let plan = FaultPlan::new()
        .on(Endpoint::UsersLocal, FaultKind::Redirect302, 1, 1)
        .on(Endpoint::Token, FaultKind::Delay(Duration::from_millis(300)), 2, 1)
        .on(Endpoint::AnyApi, FaultKind::Status(500), 3, 1);
    let sim = start(Workspace::demo(), SimConfig { faults: plan, ..SimConfig::default() }).await;
    let token = token(&http, &sim).await;

    // API request 1: redirect although the token is valid.
    let response = get(&http, format!("{}/users", sim.api_url()), &token).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(response.headers()["location"].to_str().unwrap().starts_with("https://login.torq.io/"));

    // Token request 2 is delayed, then succeeds.
    let started = Instant::now();
    let _second = self::token(&http, &sim).await;
    assert!(started.elapsed() >= Duration::from_millis(300));

    // API request 2 is fine, API request 3 (whatever the endpoint) fails, 4 is fine.
    assert_eq!(get(&http, format!("{}/users/roles", sim.api_url()), &token).await.status(), StatusCode::OK);
    let response = get(&http, format!("{}/users?sso_provision=true", sim.api_url()), &token).await;
    assert_eq!(
        error_envelope(response).await,
        (StatusCode::INTERNAL_SERVER_ERROR, 13, "Internal Server Error (injected by the simulator)".to_owned())
    );
    assert_eq!(
        get(&http, format!("{}/users?sso_provision=true", sim.api_url()), &token).await.status(),
        StatusCode::OK
    );
    assert_eq!(sim.stats().faults_injected, 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn fault_malformed_truncated_and_reset() {
    let http = client();
    let plan = FaultPlan::new()
        .on(Endpoint::Token, FaultKind::MalformedJson, 2, 1)
        .on(Endpoint::UsersLocal, FaultKind::TruncatedBody, 1, 1)
        .on(Endpoint::Roles, FaultKind::TruncatedBody, 1, 1)
        .on(Endpoint::UsersSso, FaultKind::ResetConnection, 1, 1)
        .on(Endpoint::Roles, FaultKind::ResetConnection, 2, 1);
    let sim = start(Workspace::demo(), SimConfig { faults: plan, ..SimConfig::default() }).await;
    let token = token(&http, &sim).await;

    let response = token_response(&http, &sim, "sim-client-id", "sim-client-secret").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&response.bytes().await.unwrap()).is_err());

    // Truncated: complete HTTP message, a JSON prefix of the real body.
    let url = format!("{}/users", sim.api_url());
    let cut = get(&http, url.clone(), &token).await.bytes().await.expect("framing is intact");
    let full = get(&http, url, &token).await.bytes().await.unwrap();
    assert!(cut.len() < full.len() && full.starts_with(&cut), "{} of {}", cut.len(), full.len());
    assert!(serde_json::from_slice::<Value>(&cut).is_err());
    let url = format!("{}/users/roles", sim.api_url());
    let cut = get(&http, url.clone(), &token).await.bytes().await.expect("framing is intact");
    assert!(serde_json::from_slice::<Value>(&cut).is_err());

    // Reset: the status line arrives, the body does not finish.
    for url in [format!("{}/users?sso_provision=true", sim.api_url()), url] {
        let response = http.get(url).bearer_auth(&token).send().await.expect("headers arrive before the drop");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.bytes().await.is_err(), "body must fail");
    }
    // The server keeps serving after a reset.
    assert_eq!(users(&http, &sim, &token, Some(true)).await.len(), 7);
    assert_eq!(sim.stats().faults_injected, 5);
    sim.shutdown().await;
}

#[tokio::test]
async fn fault_endless_paging() {
    let http = client();
    let plan = FaultPlan::new().always(Endpoint::Roles, FaultKind::EndlessPaging);
    let sim = start(fixture(), SimConfig { faults: plan, ..SimConfig::default() }).await;
    let token = token(&http, &sim).await;
    let mut seen = HashSet::new();
    let mut page_token = String::new();
    for _ in 0..10 {
        let url = format!("{}/users/roles?page_size=2&page_token={page_token}", sim.api_url());
        let page: RolesBody = get(&http, url, &token).await.json().await.unwrap();
        assert_eq!(page.roles.len(), 2);
        let next = page.next_page_token.expect("token present");
        assert!(!next.is_empty());
        seen.insert(next.clone());
        page_token = next;
    }
    assert_eq!(seen.len(), 1, "always the same token");
    assert_eq!(sim.stats().role_pages, 10);

    // Switched off at run time: paging ends.
    sim.set_faults(FaultPlan::new());
    assert_eq!(all_roles(&http, &sim, &token, 2).await.0.len(), 5);
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_is_added_to_every_request() {
    let http = client();
    let config = SimConfig { latency: Duration::from_millis(150), ..SimConfig::default() };
    let sim = start(Workspace::demo(), config).await;
    let started = Instant::now();
    let token = token(&http, &sim).await;
    let _ = get(&http, format!("{}/nothing-here", sim.api_url()), &token).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(sim.stats().total(), 2);
    sim.shutdown().await;
}

// RBAC roles, API keys, SSO claim mappings.

/// The names of an object's fields.
fn field_names(value: &Value) -> HashSet<String> {
    value.as_object().expect("a JSON object").keys().cloned().collect()
}

async fn get_json(http: &Client, sim: &SimServer, token: &str, path: &str) -> Value {
    let response = get(http, format!("{}/{path}", sim.api_url()), token).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("JSON body")
}

#[tokio::test]
async fn rbac_roles_answer_in_one_with_custom_flag_and_legacy_list_has_none() {
    let http = client();
    let sim = start(Workspace::demo(), SimConfig::default()).await;
    let token = token(&http, &sim).await;

    let body = get_json(&http, &sim, &token, "roles").await;
    assert_eq!(field_names(&body), HashSet::from(["roles".to_owned()]), "one answer, no next_page_token");
    let roles = body["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 5);
    let allowed: HashSet<String> =
        ["id", "name", "description", "scope_names", "is_custom"].map(str::to_owned).into_iter().collect();
    for role in roles {
        assert!(field_names(role).is_subset(&allowed), "{role}");
        assert!(!role["scope_names"].as_array().unwrap().is_empty(), "{role}");
    }
    // proto3 JSON: `is_custom` is written when true and omitted when false.
    let custom: Vec<&str> =
        roles.iter().filter(|r| r["is_custom"] == true).map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(custom, ["Incident Responders"]);
    assert!(roles.iter().filter(|r| r["is_custom"] != true).all(|r| r.get("is_custom").is_none()));
    let typed: Vec<SimRole> = serde_json::from_value(body["roles"].clone()).unwrap();
    assert_eq!(typed, Workspace::demo().roles());

    // The legacy list serves the same roles without the RBAC-only field.
    let legacy = get_json(&http, &sim, &token, "users/roles").await;
    let legacy = legacy["roles"].as_array().unwrap();
    assert_eq!(legacy.len(), 5);
    for role in legacy {
        assert_eq!(field_names(role), ["id", "name", "description", "scope_names"].map(str::to_owned).into());
    }

    // A generated workspace: presets are built-in, later roles custom, all in one answer.
    let spec = GeneratedSpec { users: 10, roles: 130, ..GeneratedSpec::default() };
    let big = start(Workspace::generated(spec), SimConfig::default()).await;
    let token = self::token(&http, &big).await;
    let body = get_json(&http, &big, &token, "roles").await;
    let roles: Vec<SimRole> = serde_json::from_value(body["roles"].clone()).unwrap();
    assert_eq!((roles.len(), roles.iter().filter(|r| r.is_custom).count()), (130, 125));
    assert!(body.get("next_page_token").is_none());

    let stats = sim.stats();
    assert_eq!((stats.rbac_roles, stats.role_pages, stats.api_requests()), (1, 1, 2));
    assert_eq!(big.stats().rbac_roles, 1);
    big.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn rbac_roles_split_page_fault_emits_one_next_page_token() {
    let http = client();
    let plan = FaultPlan::new().on(Endpoint::RbacRoles, FaultKind::SplitPage, 1, 1);
    let sim = start(Workspace::demo(), SimConfig { faults: plan, ..SimConfig::default() }).await;
    let token = token(&http, &sim).await;

    let first = get_json(&http, &sim, &token, "roles").await;
    let next = first["next_page_token"].as_str().expect("a next_page_token").to_owned();
    assert!(!next.is_empty());
    let second = get_json(&http, &sim, &token, &format!("roles?page_token={next}")).await;
    assert!(second.get("next_page_token").is_none(), "the token appears once");
    let ids = |body: &Value| -> Vec<String> {
        body["roles"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
    };
    let (a, b) = (ids(&first), ids(&second));
    assert_eq!((a.len(), b.len()), (3, 2));
    let all: Vec<String> = Workspace::demo().roles().into_iter().map(|r| r.id).collect();
    assert_eq!([a, b].concat(), all);

    // Without the fault the list is whole again; a made-up token is refused.
    assert_eq!(get_json(&http, &sim, &token, "roles").await["roles"].as_array().unwrap().len(), 5);
    let response = get(&http, format!("{}/roles?page_token=rp1.00000002", sim.api_url()), &token).await;
    assert_eq!(error_envelope(response).await, (StatusCode::BAD_REQUEST, 3, "invalid page_token".to_owned()));
    assert_eq!((sim.stats().rbac_roles, sim.stats().faults_injected), (4, 1));
    sim.shutdown().await;
}

#[tokio::test]
async fn api_keys_of_every_kind_without_secrets() {
    let http = client();
    let workspace = Workspace::demo();
    let role_ids: HashSet<String> = workspace.roles().into_iter().map(|r| r.id).collect();
    let sim = start(workspace, SimConfig::default()).await;
    let token = token(&http, &sim).await;

    let response = get(&http, format!("{}/api-keys", sim.api_url()), &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(!text.to_lowercase().contains("secret"), "no secret in the answer: {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(field_names(&body), HashSet::from(["api_keys".to_owned()]));
    let keys = body["api_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 7);
    let allowed: HashSet<String> =
        ["client_id", "name", "type", "role_id", "role_name", "created_time", "last_authenticated_time", "user"]
            .map(str::to_owned)
            .into_iter()
            .collect();
    for key in keys {
        assert!(field_names(key).is_subset(&allowed), "{key}");
        assert!(key["client_id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    let of_type = |t: &str| keys.iter().filter(|k| k["type"] == t).collect::<Vec<_>>();
    let service = of_type("API_KEY_TYPE_SERVICE");
    assert_eq!(service.len(), 4);
    assert!(service.iter().any(|k| k["role_name"] == "Owner"));
    assert_eq!(of_type("API_KEY_TYPE_UNSPECIFIED").len(), 1);

    // Private keys embed their owner: the very user object the user list serves.
    let listed: Vec<Value> =
        [users(&http, &sim, &token, Some(false)).await, users(&http, &sim, &token, Some(true)).await]
            .concat()
            .iter()
            .map(|u| serde_json::to_value(u).unwrap())
            .collect();
    let private = of_type("API_KEY_TYPE_PRIVATE");
    assert_eq!(private.len(), 2);
    for key in &private {
        assert!(listed.contains(&key["user"]), "owner of {key} is a listed user");
        assert_eq!(key["role_id"], key["user"]["role_id"]);
    }
    assert!(keys.iter().filter(|k| k["type"] != "API_KEY_TYPE_PRIVATE").all(|k| k.get("user").is_none()));

    // The awkward ones: a role that is not in the role list, no name (omitted), never authenticated.
    let unknown_role: Vec<&Value> =
        keys.iter().filter(|k| !role_ids.contains(k["role_id"].as_str().unwrap())).collect();
    assert_eq!(unknown_role.len(), 1);
    assert_eq!(keys.iter().filter(|k| k.get("name").is_none()).count(), 1);
    assert_eq!(keys.iter().filter(|k| k.get("last_authenticated_time").is_none()).count(), 1);
    assert!(keys.iter().all(|k| k.get("created_time").is_some()));

    // A generated workspace serves as many keys as asked for.
    let spec = GeneratedSpec { users: 50, roles: 10, api_keys: 120, ..GeneratedSpec::default() };
    let big = start(Workspace::generated(spec), SimConfig::default()).await;
    let token = self::token(&http, &big).await;
    let body = get_json(&http, &big, &token, "api-keys").await;
    assert_eq!(body["api_keys"].as_array().unwrap().len(), 120);
    big.shutdown().await;

    assert_eq!((sim.stats().api_keys, sim.stats().total()), (1, 4));
    sim.shutdown().await;
}

#[tokio::test]
async fn claim_mappings_with_rank_as_number_and_as_string() {
    let http = client();
    let workspace = Workspace::demo();
    let role_ids: HashSet<String> = workspace.roles().into_iter().map(|r| r.id).collect();
    let sim = start(workspace, SimConfig::default()).await;
    let token = token(&http, &sim).await;
    let body = get_json(&http, &sim, &token, "sso/claim_mappings").await;
    let mappings = body["claim_mappings"].as_array().unwrap();
    assert_eq!(mappings.len(), 3);
    for mapping in mappings {
        assert_eq!(
            field_names(mapping),
            ["id", "claim_name", "claim_value", "role_id", "rank"].map(str::to_owned).into()
        );
        assert!(role_ids.contains(mapping["role_id"].as_str().unwrap()));
    }
    let ranks: Vec<i64> = mappings
        .iter()
        .map(|m| match &m["rank"] {
            Value::Number(n) => n.as_i64().unwrap(),
            Value::String(s) => s.parse().unwrap(),
            other => panic!("rank is {other}"),
        })
        .collect();
    assert_eq!(ranks, [1, 2, 3]);
    assert_eq!(mappings.iter().filter(|m| m["rank"].is_string()).count(), 1);

    let spec = GeneratedSpec { users: 1, roles: 3, claim_mappings: 4, ..GeneratedSpec::default() };
    let big = start(Workspace::generated(spec), SimConfig::default()).await;
    let token = self::token(&http, &big).await;
    let body = get_json(&http, &big, &token, "sso/claim_mappings").await;
    let ranks: Vec<&Value> = body["claim_mappings"].as_array().unwrap().iter().map(|m| &m["rank"]).collect();
    assert_eq!(ranks, [&Value::from(1), &Value::from("2"), &Value::from(3), &Value::from("4")]);
    big.shutdown().await;
    assert_eq!(sim.stats().claim_mappings, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn new_endpoints_answer_injected_403_and_404_each_on_its_own() {
    let http = client();
    let cases = [
        (Endpoint::RbacRoles, "roles"),
        (Endpoint::ApiKeys, "api-keys"),
        (Endpoint::ClaimMappings, "sso/claim_mappings"),
    ];
    for (endpoint, path) in cases {
        let plan =
            FaultPlan::new().on(endpoint, FaultKind::Status(403), 1, 1).on(endpoint, FaultKind::Status(404), 2, 1);
        let sim = start(Workspace::demo(), SimConfig { faults: plan, ..SimConfig::default() }).await;
        let token = token(&http, &sim).await;
        let url = format!("{}/{path}", sim.api_url());
        let (status, code, message) = error_envelope(get(&http, url.clone(), &token).await).await;
        assert_eq!((status, code), (StatusCode::FORBIDDEN, 7), "{path}");
        assert!(message.contains("Forbidden"), "{message}");
        let (status, code, _) = error_envelope(get(&http, url.clone(), &token).await).await;
        assert_eq!((status, code), (StatusCode::NOT_FOUND, 5), "{path}");
        // The third request is served, and no other endpoint was touched by the rule.
        assert_eq!(get(&http, url, &token).await.status(), StatusCode::OK);
        for (_, other) in cases.iter().filter(|(e, _)| *e != endpoint) {
            assert_eq!(get(&http, format!("{}/{other}", sim.api_url()), &token).await.status(), StatusCode::OK);
        }
        assert_eq!(get(&http, format!("{}/users/roles", sim.api_url()), &token).await.status(), StatusCode::OK);
        assert_eq!(sim.stats().faults_injected, 2, "{path}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn reset_after_handling_sends_no_answer_at_all() {
    let http = client();
    let plan = FaultPlan::new()
        .on(Endpoint::ApiKeys, FaultKind::ResetAfterHandling, 1, 1)
        .on(Endpoint::ClaimMappings, FaultKind::MalformedJson, 1, 1)
        .on(Endpoint::RbacRoles, FaultKind::TruncatedBody, 1, 1);
    let sim = start(Workspace::demo(), SimConfig { faults: plan, ..SimConfig::default() }).await;
    let token = token(&http, &sim).await;
    let err = http.get(format!("{}/api-keys", sim.api_url())).bearer_auth(&token).send().await;
    assert!(err.is_err(), "no status line arrives: {err:?}");
    let response = get(&http, format!("{}/sso/claim_mappings", sim.api_url()), &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&response.bytes().await.unwrap()).is_err());
    let cut = get(&http, format!("{}/roles", sim.api_url()), &token).await.bytes().await.expect("framing intact");
    assert!(cut.starts_with(b"{\"roles\":[") && serde_json::from_slice::<Value>(&cut).is_err());
    // Served normally afterwards, on the same server.
    assert_eq!(get_json(&http, &sim, &token, "api-keys").await["api_keys"].as_array().unwrap().len(), 7);
    let stats = sim.stats();
    assert_eq!((stats.api_keys, stats.claim_mappings, stats.rbac_roles, stats.faults_injected), (2, 1, 1, 3));
    sim.shutdown().await;
}

#[tokio::test]
async fn router_counts_each_endpoint_and_numbers_any_api_across_them() {
    let http = client();
    // AnyApi counts every non-token request, whatever its endpoint: the 5th one fails.
    let plan = FaultPlan::new().on(Endpoint::AnyApi, FaultKind::Status(503), 5, 1);
    let sim = start(Workspace::demo(), SimConfig { faults: plan, ..SimConfig::default() }).await;
    let token = token(&http, &sim).await;
    let api = sim.api_url();
    let mut statuses = Vec::new();
    for path in
        ["users", "users?sso_provision=true", "users/roles", "roles", "api-keys", "sso/claim_mappings", "roles/"]
    {
        statuses.push(get(&http, format!("{api}/{path}"), &token).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 503, 200, 200]);
    // Wrong methods and unknown paths: Torq's envelope, counted as "other".
    let response = http.post(format!("{api}/api-keys")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(error_envelope(response).await.0, StatusCode::METHOD_NOT_ALLOWED);
    let response = http.delete(format!("{api}/sso/claim_mappings")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(error_envelope(response).await.0, StatusCode::METHOD_NOT_ALLOWED);
    let (status, code, _) = error_envelope(get(&http, format!("{api}/api_keys"), &token).await).await;
    assert_eq!((status, code), (StatusCode::NOT_FOUND, 5));
    // Without a token: 401 from every API endpoint, still counted.
    for path in ["roles", "api-keys", "sso/claim_mappings"] {
        let response = http.get(format!("{api}/{path}")).send().await.unwrap();
        assert_eq!(error_envelope(response).await.0, StatusCode::UNAUTHORIZED, "{path}");
    }

    let stats = sim.stats();
    let per_endpoint = (
        stats.token,
        stats.users_local,
        stats.users_sso,
        stats.role_pages,
        stats.rbac_roles,
        stats.api_keys,
        stats.claim_mappings,
        stats.other,
    );
    assert_eq!(per_endpoint, (1, 1, 1, 1, 3, 2, 2, 3));
    assert_eq!((stats.rejected_auth, stats.faults_injected, stats.api_requests(), stats.total()), (3, 1, 13, 14));
    sim.shutdown().await;
}

// Invite.

async fn invite(http: &Client, sim: &SimServer, token: &str, body: Value) -> reqwest::Response {
    http.post(format!("{}/users/invite", sim.api_url())).bearer_auth(token).json(&body).send().await.expect("sent")
}

fn role_id(workspace: &Workspace, name: &str) -> String {
    workspace.roles().into_iter().find(|r| r.name == name).map(|r| r.id).expect("role exists")
}

#[tokio::test]
async fn invite_adds_an_invited_user_that_later_lists_show() {
    let http = client();
    let workspace = Workspace::demo();
    let (operator, viewer) = (role_id(&workspace, "Operator"), role_id(&workspace, "Viewer"));
    let sim = start(workspace, SimConfig::default()).await;
    let token = token(&http, &sim).await;

    let before = chrono::Utc::now() - chrono::Duration::seconds(2);
    let response = invite(&http, &sim, &token, json!({"email": "new.hire@example.com", "role_id": operator})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email"], "new.hire@example.com");
    assert_eq!(user["role_id"], operator.as_str());
    assert_eq!((user["status"].as_str(), user["sso_provision"].as_bool()), (Some("INVITATION_SENT"), Some(false)));
    assert_eq!(user["id"].as_str().unwrap().len(), 36);
    assert!(user.get("last_login_time").is_none());
    let created = chrono::DateTime::parse_from_rfc3339(user["created_time"].as_str().unwrap()).unwrap();
    assert!(created >= before && created <= chrono::Utc::now() + chrono::Duration::seconds(2), "{created}");

    // Without role_id: Torq's default role, Viewer.
    let response = invite(&http, &sim, &token, json!({"email": "second@example.com"})).await;
    let second: Value = response.json().await.unwrap();
    assert_eq!(second["role_id"], viewer.as_str());
    assert_ne!(second["id"], user["id"]);

    // Later lists show both as local users, exactly as the invite answered them.
    let local: Vec<Value> =
        users(&http, &sim, &token, Some(false)).await.iter().map(|u| serde_json::to_value(u).unwrap()).collect();
    assert_eq!(local.len(), 8 + 2);
    assert!(local.contains(&user) && local.contains(&second));
    assert_eq!(users(&http, &sim, &token, Some(true)).await.len(), 7);
    assert_eq!(sim.invited_users().len(), 2);
    let stats = sim.stats();
    assert_eq!((stats.invites, stats.users_local, stats.users_sso, stats.other), (2, 1, 1, 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn invite_refuses_existing_emails_unknown_roles_and_bad_bodies() {
    let http = client();
    let sim = start(Workspace::demo(), SimConfig::default()).await;
    let token = token(&http, &sim).await;

    // An existing member, in any letter case: 409 ALREADY_EXISTS.
    let response = invite(&http, &sim, &token, json!({"email": "ORLA.Quennell@northwind-secops.example"})).await;
    let (status, code, message) = error_envelope(response).await;
    assert_eq!((status, code), (StatusCode::CONFLICT, 6));
    assert!(message.contains("already exists"), "{message}");
    // ... and a user invited a moment ago.
    assert_eq!(invite(&http, &sim, &token, json!({"email": "Fresh@Example.com"})).await.status(), StatusCode::OK);
    let response = invite(&http, &sim, &token, json!({"email": "fresh@example.COM"})).await;
    assert_eq!(error_envelope(response).await.1, 6);

    // A role that is not in the role list, a missing or malformed email, a body that is not the invite: 400.
    let response = invite(&http, &sim, &token, json!({"email": "a@example.com", "role_id": "no-such-role"})).await;
    let (status, code, message) = error_envelope(response).await;
    assert_eq!((status, code), (StatusCode::BAD_REQUEST, 3));
    assert!(message.contains("no-such-role"), "{message}");
    for body in [json!({}), json!({"email": "not-an-address"}), json!({"email": "a@b@c"}), json!({"email": 5})] {
        let (status, code, _) = error_envelope(invite(&http, &sim, &token, body.clone()).await).await;
        assert_eq!((status, code), (StatusCode::BAD_REQUEST, 3), "{body}");
    }
    let response = http
        .post(format!("{}/users/invite", sim.api_url()))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(error_envelope(response).await.0, StatusCode::BAD_REQUEST);

    // No token: 401; wrong method: 405; neither adds anybody.
    let response = http.post(format!("{}/users/invite", sim.api_url())).json(&json!({"email": "b@example.com"})).send();
    assert_eq!(error_envelope(response.await.unwrap()).await.0, StatusCode::UNAUTHORIZED);
    let response = get(&http, format!("{}/users/invite", sim.api_url()), &token).await;
    assert_eq!(error_envelope(response).await.0, StatusCode::METHOD_NOT_ALLOWED);

    let invited: Vec<String> = sim.invited_users().into_iter().map(|u| u.email).collect();
    assert_eq!(invited, ["Fresh@Example.com"]);
    assert_eq!(users(&http, &sim, &token, Some(false)).await.len(), 9);
    let stats = sim.stats();
    assert_eq!((stats.invites, stats.other, stats.rejected_auth), (10, 1, 1));
    sim.shutdown().await;
}

#[tokio::test]
async fn invite_default_role_and_generated_workspaces() {
    let http = client();
    // No role named Viewer: the first role is the default.
    let roles = ["Admin", "Analyst"].map(|name| SimRole {
        id: format!("r-{name}"),
        name: name.to_owned(),
        ..SimRole::default()
    });
    let sim = start(Workspace::fixed(Vec::new(), roles.to_vec()), SimConfig::default()).await;
    let token = token(&http, &sim).await;
    let user: Value = invite(&http, &sim, &token, json!({"email": "x@example.com"})).await.json().await.unwrap();
    assert_eq!(user["role_id"], "r-Admin");
    sim.shutdown().await;

    // A generated workspace knows its own users' emails without listing them, and lists invitees after them.
    let spec = GeneratedSpec { users: 10, roles: 6, ..GeneratedSpec::default() };
    let sim = start(Workspace::generated(spec), SimConfig::default()).await;
    let token = self::token(&http, &sim).await;
    for taken in ["user3@example.com", "USER9@example.com"] {
        let response = invite(&http, &sim, &token, json!({"email": taken})).await;
        assert_eq!(response.status(), StatusCode::CONFLICT, "{taken}");
    }
    let response = invite(&http, &sim, &token, json!({"email": "user10@example.com"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let listed = users(&http, &sim, &token, Some(false)).await;
    assert_eq!(listed.len(), 11);
    assert_eq!(
        listed.last().map(|u| (u.email.as_str(), u.status.as_str())),
        Some(("user10@example.com", "INVITATION_SENT"))
    );
    assert_eq!(listed.last().map(|u| u.role_id.clone()), Some(role_id(&Workspace::generated(spec), "Viewer")));
    sim.shutdown().await;
}

#[tokio::test]
async fn invite_faults_403_500_and_reset_after_the_invite_is_applied() {
    let http = client();
    let plan = FaultPlan::new()
        .on(Endpoint::Invite, FaultKind::Status(403), 1, 1)
        .on(Endpoint::Invite, FaultKind::Status(500), 2, 1)
        .on(Endpoint::Invite, FaultKind::ResetAfterHandling, 3, 1);
    let sim = start(Workspace::demo(), SimConfig { faults: plan, ..SimConfig::default() }).await;
    let token = token(&http, &sim).await;
    let body = json!({"email": "on.call@example.com"});

    let (status, code, _) = error_envelope(invite(&http, &sim, &token, body.clone()).await).await;
    assert_eq!((status, code), (StatusCode::FORBIDDEN, 7));
    let (status, code, _) = error_envelope(invite(&http, &sim, &token, body.clone()).await).await;
    assert_eq!((status, code), (StatusCode::INTERNAL_SERVER_ERROR, 13));
    assert!(sim.invited_users().is_empty(), "refused invites change nothing");

    // The third POST is applied, but its answer never arrives: no status line at all.
    let sent = http.post(format!("{}/users/invite", sim.api_url())).bearer_auth(&token).json(&body).send().await;
    assert!(sent.is_err(), "the connection drops before the answer: {sent:?}");
    assert_eq!(sim.stats().invites, 3, "exactly one POST per call: the client did not resend it");
    // Re-listing shows the invite took effect; sending it again is a conflict.
    let listed = users(&http, &sim, &token, Some(false)).await;
    let invited = listed.iter().find(|u| u.email == "on.call@example.com").expect("the invite was applied");
    assert_eq!(invited.status, "INVITATION_SENT");
    assert_eq!(error_envelope(invite(&http, &sim, &token, body).await).await.0, StatusCode::CONFLICT);
    let stats = sim.stats();
    assert_eq!((stats.invites, stats.faults_injected, sim.invited_users().len()), (4, 3, 1));
    sim.shutdown().await;
}

// Streaming.

/// Reads body chunks that an async task forwards over a channel, for a blocking JSON parser.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Counts the elements of `"users"` one by one (each is parsed as a full user, then dropped), checks their
/// `sso_provision` flag, and samples the process RSS as it goes.
struct CountUsers {
    sso: bool,
    count: u64,
    max_rss_kib: u64,
}

impl<'de> Visitor<'de> for &mut CountUsers {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a users list")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "users" {
                map.next_value_seed(&mut *self)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(user) = seq.next_element::<SimUser>()? {
            assert_eq!(user.sso_provision, self.sso);
            self.count += 1;
            if self.count.is_multiple_of(20_000) {
                self.max_rss_kib = self.max_rss_kib.max(vm_rss_kib());
            }
        }
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for &mut CountUsers {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Streams one user list through a JSON parser without holding it; returns (users, peak RSS KiB, bytes).
async fn stream_count(http: &Client, sim: &SimServer, token: &str, sso: bool) -> (u64, u64, u64) {
    let url = format!("{}/users?sso_provision={sso}", sim.api_url());
    let response = get(http, url, token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let parser = tokio::task::spawn_blocking(move || {
        let mut counter = CountUsers { sso, count: 0, max_rss_kib: vm_rss_kib() };
        let mut de = serde_json::Deserializer::from_reader(ChannelReader { rx, current: Bytes::new() });
        serde::de::DeserializeSeed::deserialize(&mut counter, &mut de).expect("valid users JSON");
        de.end().expect("nothing after the document");
        (counter.count, counter.max_rss_kib)
    });
    let mut bytes = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("body chunk");
        bytes += chunk.len() as u64;
        if tx.send(chunk).await.is_err() {
            break;
        }
    }
    drop(tx);
    let (count, rss) = parser.await.expect("parser thread");
    (count, rss, bytes)
}

async fn stream_generated(users: u64) -> (Duration, u64, u64, u64) {
    let http = client();
    let spec = GeneratedSpec { users, roles: 40, sso_percent: 35, seed: 42, ..GeneratedSpec::default() };
    let sim = start(Workspace::generated(spec), SimConfig::default()).await;
    let token = token(&http, &sim).await;
    let before = vm_rss_kib();
    let started = Instant::now();
    let (local, rss_a, bytes_a) = stream_count(&http, &sim, &token, false).await;
    let (sso, rss_b, bytes_b) = stream_count(&http, &sim, &token, true).await;
    let elapsed = started.elapsed();
    let peak = rss_a.max(rss_b).max(vm_rss_kib());
    assert_eq!(local + sso, users);
    assert!(sso > users / 4 && sso < users / 2, "sso share: {sso} of {users}");
    sim.shutdown().await;
    (elapsed, peak.saturating_sub(before), bytes_a + bytes_b, before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_200k_users_stream_with_low_memory() {
    let (elapsed, growth_kib, bytes, _) = stream_generated(200_000).await;
    eprintln!("200k users: {bytes} bytes in {elapsed:?}, RSS growth {growth_kib} KiB");
    assert!(bytes > 200_000 * 150, "the body really holds the users ({bytes} bytes)");
    assert!(growth_kib < 100 * 1024, "RSS grew by {growth_kib} KiB");
}

/// Benchmark: `SIM_BENCH_USERS=1000000 cargo test --release --test sim_server -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly"]
async fn bench_stream_generated_users() {
    let users = std::env::var("SIM_BENCH_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let (elapsed, growth_kib, bytes, before) = stream_generated(users).await;
    let rate = users as f64 / elapsed.as_secs_f64();
    eprintln!(
        "{users} users, {bytes} bytes in {elapsed:.2?} ({rate:.0} users/s); RSS {before} KiB before, growth {growth_kib} KiB"
    );
}
