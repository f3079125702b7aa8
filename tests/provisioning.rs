//! Provisioning end to end: the built binary against the simulated Torq (real HTTP on loopback), in one-shot mode
//! (`-p --create-account-*`) and in service mode (create_account, grant, revoke and delete_resource tasks from the
//! fake ConductorOne in tests/common/fake_c1.rs). What a user checks: the line printed and the exit code, which
//! users Torq has afterwards, how many invite POSTs reached Torq (never one too many), and what ConductorOne is told.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use baton_torq::proto::baton_v1::baton_service_finish_task_request::FinalState;
use baton_torq::proto::baton_v1::task::{CreateAccountTask, DeleteResourceTask, GrantTask, RevokeTask, TaskType};
use baton_torq::proto::baton_v1::BatonServiceFinishTaskRequest;
use baton_torq::proto::connector_v2::create_account_response::Result as AccountResult;
use baton_torq::proto::connector_v2::{
    account_info, user_trait, AccountInfo, CreateAccountResponse, Entitlement, Grant, GrantManagerServiceGrantResponse,
    Resource, ResourceId, UserTrait,
};
use baton_torq::sim::{
    Endpoint, FaultKind, FaultPlan, SimApiKey, SimConfig, SimServer, Workspace, API_KEY_TYPE_SERVICE,
};
use common::fake_c1::{task, FakeC1};
use common::harness;
use common::log_watch::LogWatch;
use common::refusing_proxy::RefusingProxy;
use prost::Message as _;

const OWNER: &str = "e2a214e8-bbe9-4675-9d52-490575ffc53d";
const OPERATOR: &str = "5c22c469-63e9-48fd-a4d4-748ca3c77ebf";
const VIEWER: &str = "b2609a0b-dd2b-4550-8c65-6018eee38dc1";
/// A user of the fixture: Ada, Owner.
const ADA_ID: &str = "7ea3ef27-e2e9-4528-a4e0-689e1888df20";
const ADA_EMAIL: &str = "ada.lovelace@example.com";

/// An API key of the workspace: a service key with the Operator role.
const KEY_ID: &str = "ci-pipeline-key";

/// The reference workspace plus one API key.
async fn sim(faults: FaultPlan) -> SimServer {
    let mut workspace = harness::reference_workspace();
    let Workspace::Fixed { api_keys, .. } = &mut workspace else { panic!("the reference workspace is a fixed one") };
    *api_keys = vec![SimApiKey {
        client_id: KEY_ID.into(),
        name: "CI pipeline".into(),
        key_type: API_KEY_TYPE_SERVICE.into(),
        role_id: OPERATOR.into(),
        role_name: "Operator".into(),
        created_time: None,
        last_authenticated_time: None,
        user: None,
    }];
    let config = SimConfig { faults, ..SimConfig::default() };
    SimServer::start(workspace, config).await.unwrap()
}

/// The binary with the simulator's credentials and URLs plus `args`; `-f` points into a scratch directory, which
/// must stay empty (provisioning writes no file).
async fn run(server: &SimServer, dir: &Path, args: &[&str]) -> Output {
    harness::command(server, &SimConfig::default(), &dir.join("sync.c1z"))
        .args(["--log-format", "console", "--log-level", "debug"])
        .args(args)
        .output()
        .await
        .expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// No output mentions the Torq client secret or a bearer token.
fn assert_no_secret(o: &Output, server: &SimServer) {
    let all = format!("{}{}", stdout(o), harness::stderr(o));
    assert!(!all.contains(&SimConfig::default().client_secret), "the client secret leaked:\n{all}");
    for token in server.issued_tokens() {
        assert!(!all.contains(&token), "a bearer token leaked:\n{all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_by_role_name_once_then_already_exists_without_a_post() {
    let sim = sim(FaultPlan::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let invite =
        ["-p", "--create-account-email", "new.hire@example.com", "--create-account-profile", r#"{"role":"Operator"}"#];
    let first = run(&sim, dir.path(), &invite).await;
    harness::assert_success(&first);
    let invited = sim.invited_users();
    assert_eq!(invited.len(), 1, "{invited:?}");
    let user = &invited[0];
    assert_eq!(
        (user.email.as_str(), user.role_id.as_str(), user.status.as_str()),
        ("new.hire@example.com", OPERATOR, "INVITATION_SENT")
    );
    let line = stdout(&first);
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    assert!(
        line.starts_with(&format!("created: Torq user {} new.hire@example.com with role Operator", user.id)),
        "{line}"
    );
    assert_eq!(sim.stats().invites, 1);

    // Again, with the address in another case: found, reported, nothing sent.
    let again =
        ["-p", "--create-account-email", "New.Hire@Example.com", "--create-account-profile", r#"{"role":"operator"}"#];
    let second = run(&sim, dir.path(), &again).await;
    harness::assert_success(&second);
    assert_eq!(
        stdout(&second),
        format!("already exists: Torq user {} new.hire@example.com with role Operator; nothing was sent\n", user.id)
    );
    assert_eq!(sim.stats().invites, 1, "no second POST");
    assert_eq!(sim.invited_users().len(), 1);
    assert_no_secret(&second, &sim);

    // Again with another role: the account asked for does not exist and Torq's API cannot change the role.
    let other =
        ["-p", "--create-account-email", "new.hire@example.com", "--create-account-profile", r#"{"role":"Owner"}"#];
    let third = run(&sim, dir.path(), &other).await;
    let err = harness::stderr(&third);
    assert_eq!(third.status.code(), Some(1), "{err}");
    assert!(stdout(&third).is_empty(), "{}", stdout(&third));
    assert!(err.contains("already exists with role Operator, not Owner") && err.contains("Settings > Users"), "{err}");
    assert_eq!(sim.stats().invites, 1, "no POST");
    assert!(harness::listing(dir.path()).is_empty(), "no sync file is written: {:?}", harness::listing(dir.path()));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_by_role_id_by_alias_and_with_torqs_default_role() {
    let sim = sim(FaultPlan::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let by_id = format!(r#"{{"role":"{OWNER}"}}"#);
    let by_alias = format!(r#"{{"role_id":"{OPERATOR}"}}"#);
    for (email, profile, role_id, role_name) in [
        ("by.id@example.com", Some(by_id.as_str()), OWNER, "Owner"),
        ("by.alias@example.com", Some(by_alias.as_str()), OPERATOR, "Operator"),
        // No role: no role_id is sent, and Torq's default (Viewer) applies.
        ("default.role@example.com", None, VIEWER, "Viewer"),
    ] {
        let mut args = vec!["--provisioning", "--create-account-email", email];
        if let Some(p) = profile {
            args.extend(["--create-account-profile", p]);
        }
        let out = run(&sim, dir.path(), &args).await;
        harness::assert_success(&out);
        let user = sim.invited_users().into_iter().find(|u| u.email == email).expect("invited");
        assert_eq!(user.role_id, role_id, "{email}");
        assert!(stdout(&out).contains(&format!("{email} with role {role_name}")), "{}", stdout(&out));
    }
    // The login is used as the email when it is an address.
    let out = run(&sim, dir.path(), &["-p", "--create-account-login", "login.only@example.com"]).await;
    harness::assert_success(&out);
    assert!(sim.invited_users().iter().any(|u| u.email == "login.only@example.com"));
    // The variables work as the flags do (README, Provisioning): a run with them set is an invite, not a sync.
    let out = harness::command(&sim, &SimConfig::default(), &dir.path().join("sync.c1z"))
        .env("BATON_PROVISIONING", "true")
        .env("BATON_CREATE_ACCOUNT_EMAIL", "by.env@example.com")
        .env("BATON_CREATE_ACCOUNT_PROFILE", r#"{"role":"Operator"}"#)
        .output()
        .await
        .expect("binary runs");
    harness::assert_success(&out);
    let user = sim.invited_users().into_iter().find(|u| u.email == "by.env@example.com").expect("invited");
    assert_eq!(user.role_id, OPERATOR);
    assert!(stdout(&out).starts_with("created: Torq user"), "{}", stdout(&out));
    assert_eq!(sim.stats().invites, 5);
    assert!(harness::listing(dir.path()).is_empty(), "no sync file is written: {:?}", harness::listing(dir.path()));
    sim.shutdown().await;
}

/// Every refusal happens before any POST: exit 2 (bad input) or 0 (already there), one line saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_anything_is_sent() {
    let sim = sim(FaultPlan::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str, bool)] = &[
        // (args, expected text in the error line, whether Torq may be read: only to resolve the role)
        (&["--create-account-email", "new.hire@example.com"], "--provisioning", false),
        (&["-p", "--create-account-email", "not-an-email"], "invalid email address", false),
        (&["-p", "--create-account-email", "two@at@example.com"], "more than one '@'", false),
        (&["-p", "--create-account-email", "sp ace@example.com"], "space", false),
        (&["-p", "--create-account-login", "jdoe"], "no email for the new account", false),
        (
            &["-p", "--create-account-email", "a@example.com", "--create-account-profile", "{role:Operator}"],
            "not valid JSON",
            false,
        ),
        (
            &["-p", "--create-account-email", "a@example.com", "--create-account-profile", r#"{"role":3}"#],
            "must be a string",
            false,
        ),
        (
            &["-p", "--create-account-email", "a@example.com", "--create-account-profile", r#"{"role":"Admin"}"#],
            "unknown Torq role \"Admin\"; the workspace's roles are: Contributor, Operator, Owner, SOC Tier 1, Viewer",
            true,
        ),
        // A typo in a profile key would invite with Torq's default role, which cannot be undone: refused.
        (
            &["-p", "--create-account-email", "typo@example.com", "--create-account-profile", r#"{"rol":"Role 1"}"#],
            "--create-account-profile has an unknown key \"rol\" (did you mean \"role\"?); the accepted keys are \
             email, role, role_id; nothing was sent",
            false,
        ),
        (
            &["-p", "--create-account-email", "a@example.com", "--client-id", "x@tenant.example.test/pcc"],
            "cannot be combined with --client-id",
            false,
        ),
    ];
    for (args, expected, reads_torq) in cases {
        let before = sim.stats();
        let out = run(&sim, dir.path(), args).await;
        let err = harness::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: expected {expected:?} in:\n{err}");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: one error line:\n{err}");
        assert!(errors[0].contains(expected), "{args:?}: {}", errors[0]);
        assert!(stdout(&out).is_empty(), "{args:?}");
        let after = sim.stats();
        assert_eq!(after.invites, before.invites, "{args:?}: no invite");
        if !reads_torq {
            assert_eq!(after.total(), before.total(), "{args:?}: nothing at all was sent to Torq");
        }
    }
    // An existing user (in the other case) is not an error, and nothing is sent.
    let out = run(&sim, dir.path(), &["-p", "--create-account-email", "ADA.Lovelace@example.com"]).await;
    harness::assert_success(&out);
    assert_eq!(
        stdout(&out),
        format!("already exists: Torq user {ADA_ID} {ADA_EMAIL} with role Owner; nothing was sent\n")
    );
    assert_eq!(sim.stats().invites, 0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_invite_exits_1_with_the_reason() {
    let (sim, out) = invite_answered_with(403).await;
    let err = harness::stderr(&out);
    assert!(err.contains("not allowed to invite users") && err.contains("only Owners can invite"), "{err}");
    assert!(sim.invited_users().is_empty());
    assert_no_secret(&out, &sim);
    sim.shutdown().await;
}

/// Invites new.hire@example.com while Torq answers every invite with `status`: exits 1 after exactly one POST.
async fn invite_answered_with(status: u16) -> (SimServer, Output) {
    let sim = sim(FaultPlan::new().always(Endpoint::Invite, FaultKind::Status(status))).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(&sim, dir.path(), &["-p", "--create-account-email", "new.hire@example.com"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", harness::stderr(&out));
    assert_eq!(sim.stats().invites, 1, "HTTP {status} is final: the invite is not sent again");
    (sim, out)
}

/// The connection drops after Torq applied the invite: the client re-lists the users, finds the new one and
/// reports it created, without a second POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_after_the_invite_was_applied_sends_exactly_one_post() {
    let sim = sim(FaultPlan::new().on(Endpoint::Invite, FaultKind::ResetAfterHandling, 1, 1)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(&sim, dir.path(), &["-p", "--create-account-email", "new.hire@example.com"]).await;
    harness::assert_success(&out);
    let invited = sim.invited_users();
    assert_eq!(invited.len(), 1);
    assert_eq!(sim.stats().invites, 1, "exactly one POST");
    assert!(
        stdout(&out).starts_with(&format!("created: Torq user {} new.hire@example.com", invited[0].id)),
        "{}",
        stdout(&out)
    );
    assert!(harness::stderr(&out).contains("checking the user list before deciding"), "{}", harness::stderr(&out));
    sim.shutdown().await;
}

/// Torq answers the invite with 200 but a body that is not JSON, and (in the simulator) did not create the user:
/// a 200 proves the POST reached Torq, so it is not sent again even though the user list does not show the user;
/// the run fails with the reason and says to look for the user in Torq before trying again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_with_an_unreadable_answer_is_never_sent_again() {
    let sim = sim(FaultPlan::new().on(Endpoint::Invite, FaultKind::MalformedJson, 1, 1)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(&sim, dir.path(), &["-p", "--create-account-email", "new.hire@example.com"]).await;
    let err = harness::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(sim.stats().invites, 1, "exactly one POST: {err}");
    assert!(sim.invited_users().is_empty());
    assert!(err.contains("HTTP 200 to POST /users/invite, but the answer is not JSON"), "{err}");
    assert!(err.contains("it was not sent again"), "{err}");
    sim.shutdown().await;
}

/// The invite's connection is refused (nothing listens on Torq's port: the POST surely never left the client). It
/// is sent again after a backoff, once the port listens again, and exactly one POST reaches Torq; no re-list is
/// needed to decide, because a refused connection cannot have been applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_sent_again_and_the_user_is_invited_once() {
    let sim = sim(FaultPlan::new()).await;
    // Before the invite, the role list and the two user lists are read (concurrently, one connection each);
    // the proxy stops listening after those three, so the POST's own connection is refused.
    const LOOKUPS: u64 = 3;
    let proxy = RefusingProxy::start(sim.local_addr(), LOOKUPS).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = SimConfig::default();
    let mut child = harness::clean_command()
        .args(["--torq-client-id", &cfg.client_id, "--torq-client-secret", &cfg.client_secret])
        .args(["--torq-api-url", &proxy.url(sim.local_addr(), &sim.api_url())])
        .args(["--torq-auth-url", &sim.auth_url()])
        .arg("-f")
        .arg(dir.path().join("sync.c1z"))
        .args(["--log-format", "console", "-p", "--create-account-email", "new.hire@example.com"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    // The binary's own log says when a send failed; only then does the port listen again.
    let logs = LogWatch::start(child.stderr.take().unwrap());
    let failed = logs.wait_for("cannot connect", Duration::from_secs(30)).await;
    assert!(!proxy.is_listening());
    assert_eq!(proxy.accepted(), LOOKUPS, "the refused request is the one after the lookups:\n{failed}");
    proxy.listen_again().await;
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    let stderr = logs.finished(Duration::from_secs(5)).await;
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    let invited = sim.invited_users();
    assert_eq!(invited.len(), 1, "{invited:?}");
    assert_eq!(sim.stats().invites, 1, "exactly one POST reached Torq\n{stderr}");
    assert_eq!(proxy.accepted(), LOOKUPS + 1, "the lookups and the one POST that got through");
    let line = stdout(&out);
    assert!(
        line.starts_with(&format!("created: Torq user {} new.hire@example.com with role Viewer", invited[0].id)),
        "{line}\n{stderr}"
    );
    let resends: Vec<&str> = stderr.lines().filter(|l| l.contains("invite not delivered; sending it again")).collect();
    assert!(!resends.is_empty(), "the refused invite was sent again:\n{stderr}");
    assert!(resends.iter().all(|l| l.contains("cannot connect")), "{resends:#?}");
    assert!(!stderr.contains("checking the user list"), "a refused connection needs no re-list:\n{stderr}");
    let stats = sim.stats();
    assert_eq!((stats.users_local, stats.users_sso), (1, 1), "the users were listed once, before the invite");
    sim.shutdown().await;
}

/// Torq failing with a 500 may or may not have applied the invite: it is not sent again; the user list decides
/// what is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_is_not_sent_again() {
    let (sim, out) = invite_answered_with(500).await;
    let err = harness::stderr(&out);
    assert!(err.contains("HTTP 500") && err.contains("not sent again"), "{err}");
    sim.shutdown().await;
}

/// 429 and 503 mean Torq did not handle the request: sent again after a backoff, and the user is invited once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_and_unavailable_invites_are_sent_again() {
    let plan = FaultPlan::new()
        .on(Endpoint::Invite, FaultKind::TooManyRequests { retry_after_secs: Some(0) }, 1, 1)
        .on(Endpoint::Invite, FaultKind::Status(503), 2, 1);
    let sim = sim(plan).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(&sim, dir.path(), &["-p", "--create-account-email", "new.hire@example.com"]).await;
    harness::assert_success(&out);
    assert_eq!(sim.stats().invites, 3);
    assert_eq!(sim.invited_users().len(), 1);
    sim.shutdown().await;
}

/// The daemon against `sim` and `c1`, one task at a time (so the tasks run in queue order).
fn daemon(sim: &SimServer, c1: &FakeC1, secret: &str, dir: &Path, provisioning: bool) -> tokio::process::Child {
    harness::daemon_command(sim, c1, secret, dir, dir)
        .env("BATON_TASK_CONCURRENCY", "1")
        .env("BATON_PROVISIONING", if provisioning { "true" } else { "false" })
        .args(["--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn stop(child: tokio::process::Child) -> String {
    let pid = child.id().expect("running");
    std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    stderr
}

fn create_account(email: &str, role: Option<&str>) -> TaskType {
    use prost_types::{value::Kind, Struct, Value};
    let profile = role
        .map(|r| Struct { fields: [("role".to_string(), Value { kind: Some(Kind::StringValue(r.into())) })].into() });
    TaskType::CreateAccount(CreateAccountTask {
        account_info: Some(AccountInfo {
            emails: vec![account_info::Email { address: email.into(), is_primary: true }],
            login: email.into(),
            profile,
            ..Default::default()
        }),
        resource_type_id: "user".into(),
    })
}

/// A create_account task for `login` with `profile` as its profile's text fields (and no email).
fn create_account_with_profile(login: &str, profile: &[(&str, &str)]) -> TaskType {
    use prost_types::{value::Kind, Struct, Value};
    let fields =
        profile.iter().map(|(k, v)| (k.to_string(), Value { kind: Some(Kind::StringValue(v.to_string())) })).collect();
    TaskType::CreateAccount(CreateAccountTask {
        account_info: Some(AccountInfo { login: login.into(), profile: Some(Struct { fields }), ..Default::default() }),
        resource_type_id: "user".into(),
    })
}

fn rid(kind: &str, id: &str) -> ResourceId {
    ResourceId { resource_type: kind.into(), resource: id.into(), ..Default::default() }
}

fn member(role_id: &str) -> Entitlement {
    Entitlement {
        id: format!("role:{role_id}:member"),
        resource: Some(Resource { id: Some(rid("role", role_id)), ..Default::default() }),
        ..Default::default()
    }
}

fn user_principal(id: &str) -> Resource {
    Resource { id: Some(rid("user", id)), ..Default::default() }
}

fn error_of(f: &BatonServiceFinishTaskRequest) -> (tonic::Code, String, bool) {
    let status = f.status.clone().expect("an error carries a google.rpc.Status");
    match &f.final_state {
        Some(FinalState::Error(e)) => (tonic::Code::from(status.code), status.message, e.non_retryable),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The success's response `Any`, checked for its type, decoded; and the success's annotations.
fn success_of<M: prost::Message + Default>(
    f: &BatonServiceFinishTaskRequest,
    name: &str,
) -> (M, Vec<prost_types::Any>) {
    match &f.final_state {
        Some(FinalState::Success(s)) => {
            assert!(f.status.is_none());
            let any = s.response.as_ref().expect("a response");
            assert_eq!(any.type_url, format!("type.googleapis.com/c1.connector.v2.{name}"));
            (M::decode(any.value.as_slice()).unwrap(), s.annotations.clone())
        }
        other => panic!("expected a success, got {other:?}"),
    }
}

fn user_trait(r: &Resource) -> UserTrait {
    let any = r.annotations.iter().find(|a| a.type_url.ends_with("UserTrait")).expect("a UserTrait");
    UserTrait::decode(any.value.as_slice()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_mode_invites_and_answers_grant_revoke_and_delete_honestly() {
    // The fourth task's invite (the second POST) is refused by Torq; the last one's (the third) fails with a 500.
    let plan = FaultPlan::new().on(Endpoint::Invite, FaultKind::Status(403), 2, 1).on(
        Endpoint::Invite,
        FaultKind::Status(500),
        3,
        1,
    );
    let sim = sim(plan).await;
    let (c1, secret) = FakeC1::start_for_new_key().await;
    let dir = tempfile::tempdir().unwrap();
    let ids = [
        "2createaccount0000000000001",
        "2createaccount0000000000002",
        "2createaccount0000000000003",
        "2createaccount0000000000004",
        "2grantheld00000000000000001",
        "2grantchange000000000000001",
        "2revoke00000000000000000001",
        "2deleteresource000000000001",
        "2grantkeyheld00000000000001",
        "2grantkeychange000000000001",
        "2createaccountotherrole0001",
        "2createaccountservererror01",
    ];
    c1.push_task(task(ids[0], create_account("new.hire@example.com", Some("operator"))));
    c1.push_task(task(ids[1], create_account("NEW.HIRE@example.com", Some("Operator"))));
    c1.push_task(task(ids[2], create_account("third@example.com", Some("Admin"))));
    c1.push_task(task(ids[3], create_account("denied@example.com", None)));
    let grant = |role: &str| {
        TaskType::Grant(GrantTask {
            entitlement: Some(member(role)),
            principal: Some(user_principal(ADA_ID)),
            ..Default::default()
        })
    };
    c1.push_task(task(ids[4], grant(OWNER)));
    c1.push_task(task(ids[5], grant(VIEWER)));
    let held = Grant {
        id: format!("role:{OWNER}:member:user:{ADA_ID}"),
        entitlement: Some(member(OWNER)),
        principal: Some(user_principal(ADA_ID)),
        ..Default::default()
    };
    c1.push_task(task(ids[6], TaskType::Revoke(RevokeTask { grant: Some(held), ..Default::default() })));
    c1.push_task(task(
        ids[7],
        TaskType::DeleteResource(DeleteResourceTask {
            resource_id: Some(rid("user", ADA_ID)),
            parent_resource_id: None,
        }),
    ));

    let key_grant = |role: &str| {
        TaskType::Grant(GrantTask {
            entitlement: Some(member(role)),
            principal: Some(Resource { id: Some(rid("api_key", KEY_ID)), ..Default::default() }),
            ..Default::default()
        })
    };
    c1.push_task(task(ids[8], key_grant(OPERATOR)));
    c1.push_task(task(ids[9], key_grant(OWNER)));
    c1.push_task(task(ids[10], create_account("new.hire@example.com", Some("Owner"))));
    c1.push_task(task(ids[11], create_account("error500@example.com", None)));

    let child = daemon(&sim, &c1, &secret, dir.path(), true);
    c1.wait_for("a FinishTask for every task", Duration::from_secs(60), |r| r.finishes.len() >= ids.len()).await;
    let stderr = stop(child).await;
    assert!(!stderr.contains(&secret[..50]) && !stderr.contains(&SimConfig::default().client_secret), "{stderr}");

    // 1: invited, answered with the new user as a sync writes it.
    let invited = sim.invited_users();
    assert_eq!(invited.len(), 1, "{invited:?}");
    assert_eq!((invited[0].email.as_str(), invited[0].role_id.as_str()), ("new.hire@example.com", OPERATOR));
    let (resp, annotations): (CreateAccountResponse, _) =
        success_of(&c1.finish_of(ids[0]).unwrap(), "CreateAccountResponse");
    assert!(annotations.is_empty());
    let Some(AccountResult::Success(ok)) = resp.result else { panic!("{resp:?}") };
    assert!(ok.is_create_account_result);
    let resource = ok.resource.unwrap();
    assert_eq!(resource.id, Some(rid("user", &invited[0].id)));
    assert_eq!(resource.display_name, "new.hire@example.com");
    let status = user_trait(&resource).status.unwrap();
    assert_eq!(
        (status.status, status.details.as_str()),
        (user_trait::status::Status::Enabled as i32, "invitation sent, not accepted yet")
    );

    // 2: the same person again: already exists, same resource, no POST.
    let (resp, _): (CreateAccountResponse, _) = success_of(&c1.finish_of(ids[1]).unwrap(), "CreateAccountResponse");
    let Some(AccountResult::AlreadyExists(found)) = resp.result else { panic!("{resp:?}") };
    assert_eq!(found.resource.unwrap().id, Some(rid("user", &invited[0].id)));

    // 3: an unknown role: refused before any POST, not retryable, naming the roles.
    let (code, message, non_retryable) = error_of(&c1.finish_of(ids[2]).unwrap());
    assert_eq!(code, tonic::Code::InvalidArgument, "{message}");
    assert!(non_retryable);
    assert!(message.contains("unknown Torq role \"Admin\"") && message.contains("Operator, Owner"), "{message}");

    // 4: Torq refused the invite (403).
    let (code, message, non_retryable) = error_of(&c1.finish_of(ids[3]).unwrap());
    assert_eq!(code, tonic::Code::PermissionDenied, "{message}");
    assert!(non_retryable);
    assert!(message.contains("only Owners can invite"), "{message}");
    assert_eq!(sim.stats().invites, 3, "one POST each for tasks 1, 4 and 12, none for the others");

    // 5: Ada is already an Owner: success with GrantAlreadyExists, in the response and on the success.
    let (resp, annotations): (GrantManagerServiceGrantResponse, _) =
        success_of(&c1.finish_of(ids[4]).unwrap(), "GrantManagerServiceGrantResponse");
    for anns in [&annotations, &resp.annotations] {
        assert_eq!(anns.len(), 1);
        assert_eq!(anns[0].type_url, "type.googleapis.com/c1.connector.v2.GrantAlreadyExists");
    }
    assert_eq!(resp.grants[0].id, format!("role:{OWNER}:member:user:{ADA_ID}"));

    // 6-8: what Torq's public API cannot do: FAILED_PRECONDITION, not retryable, saying where to do it.
    for (id, says) in [
        (ids[5], "cannot change the role of a user"),
        (ids[6], "cannot remove a user's role"),
        (ids[7], "does not document removing a user"),
    ] {
        let (code, message, non_retryable) = error_of(&c1.finish_of(id).unwrap());
        assert_eq!(code, tonic::Code::FailedPrecondition, "{id}: {message}");
        assert!(non_retryable, "{id}");
        assert!(message.contains(says) && message.contains("Torq UI (Settings > Users)"), "{id}: {message}");
    }
    // 9-10: an API key holds one role too: the role it has is granted already; another cannot be given.
    let (resp, _): (GrantManagerServiceGrantResponse, _) =
        success_of(&c1.finish_of(ids[8]).unwrap(), "GrantManagerServiceGrantResponse");
    assert_eq!(resp.annotations[0].type_url, "type.googleapis.com/c1.connector.v2.GrantAlreadyExists");
    assert_eq!(resp.grants[0].id, format!("role:{OPERATOR}:member:api_key:{KEY_ID}"));
    let (code, message, non_retryable) = error_of(&c1.finish_of(ids[9]).unwrap());
    assert_eq!(code, tonic::Code::FailedPrecondition, "{message}");
    assert!(non_retryable);
    assert!(message.contains("cannot change the role of an API key"), "{message}");
    assert!(message.contains("avatar > API Keys"), "{message}");
    // 11: the invited user asked for again with another role: not "already exists" (the role was not given).
    let (code, message, non_retryable) = error_of(&c1.finish_of(ids[10]).unwrap());
    assert_eq!(code, tonic::Code::FailedPrecondition, "{message}");
    assert!(non_retryable);
    assert!(message.contains("already exists with role Operator, not Owner"), "{message}");
    assert!(message.contains("Torq UI (Settings > Users)"), "{message}");
    // 12: Torq answered the invite with a 500 and its list does not show the user: the invite reached Torq, so
    // the task is final; a ConductorOne retry could invite twice if the list lags.
    let (code, message, non_retryable) = error_of(&c1.finish_of(ids[11]).unwrap());
    assert_eq!(code, tonic::Code::Unavailable, "{message}");
    assert!(non_retryable, "{message}");
    assert!(message.contains("HTTP 500") && message.contains("not sent again"), "{message}");
    assert_eq!(sim.stats().invites, 3);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_mode_without_provisioning_refuses_every_provisioning_task() {
    let sim = sim(FaultPlan::new()).await;
    let (c1, secret) = FakeC1::start_for_new_key().await;
    let dir = tempfile::tempdir().unwrap();
    c1.push_task(task("2createaccount0000000000001", create_account("new.hire@example.com", None)));
    c1.push_task(task(
        "2grantheld00000000000000001",
        TaskType::Grant(GrantTask {
            entitlement: Some(member(OWNER)),
            principal: Some(user_principal(ADA_ID)),
            ..Default::default()
        }),
    ));
    let child = daemon(&sim, &c1, &secret, dir.path(), false);
    c1.wait_for("two FinishTasks", Duration::from_secs(60), |r| r.finishes.len() >= 2).await;
    stop(child).await;
    for id in ["2createaccount0000000000001", "2grantheld00000000000000001"] {
        let (code, message, non_retryable) = error_of(&c1.finish_of(id).unwrap());
        assert_eq!(code, tonic::Code::FailedPrecondition, "{message}");
        assert!(non_retryable);
        // A task's message speaks of the connector's settings, not of a flag to type.
        assert!(message.contains("BATON_PROVISIONING=true") && !message.contains("--"), "{message}");
    }
    // Only the start-up check of the key (the local users by status, one role page) reached Torq.
    let stats = sim.stats();
    assert_eq!((stats.invites, stats.users_local, stats.role_pages, stats.api_requests()), (0, 1, 1, 2), "{stats:?}");
    sim.shutdown().await;
}

/// A create_account task with a misspelt profile key, or without any email, fails as an invalid argument before
/// anything is sent, and its message speaks of the task's fields, not of CLI flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_mode_refuses_an_unknown_profile_key_before_anything_is_sent() {
    let sim = sim(FaultPlan::new()).await;
    let (c1, secret) = FakeC1::start_for_new_key().await;
    let dir = tempfile::tempdir().unwrap();
    let typo = "2createaccounttypo000000001";
    let no_email = "2createaccountnoemail000001";
    c1.push_task(task(typo, create_account_with_profile("new.hire@example.com", &[("rol", "Operator")])));
    c1.push_task(task(no_email, create_account_with_profile("jdoe", &[("role", "Operator")])));
    let child = daemon(&sim, &c1, &secret, dir.path(), true);
    c1.wait_for("two FinishTasks", Duration::from_secs(60), |r| r.finishes.len() >= 2).await;
    stop(child).await;
    let (code, message, non_retryable) = error_of(&c1.finish_of(typo).unwrap());
    assert_eq!((code, non_retryable), (tonic::Code::InvalidArgument, true), "{message}");
    assert!(message.contains("unknown key \"rol\" (did you mean \"role\"?)"), "{message}");
    assert!(message.contains("nothing was sent") && !message.contains("--"), "{message}");
    let (code, message, _) = error_of(&c1.finish_of(no_email).unwrap());
    assert_eq!(code, tonic::Code::InvalidArgument, "{message}");
    assert!(message.contains("the task's account has no email address") && !message.contains("--"), "{message}");
    assert_eq!(sim.stats().invites, 0, "no invite was sent");
    assert!(sim.invited_users().is_empty(), "nobody was invited");
    sim.shutdown().await;
}

/// A leftover `BATON_CREATE_ACCOUNT_EMAIL` never decides the kind of run silently: without provisioning the refusal
/// names it (and says no sync ran); with `BATON_PROVISIONING=true` the invite runs, and a warning names the
/// variable that made it one. A key in the config file is named with the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_asked_for_by_a_variable_names_it() {
    let sim = sim(FaultPlan::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let with_env = |env: &[(&str, &str)]| {
        let mut cmd = harness::command(&sim, &SimConfig::default(), &file);
        cmd.args(["--log-format", "console"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    };
    let out = with_env(&[("BATON_CREATE_ACCOUNT_EMAIL", "leftover@example.com")]).output().await.unwrap();
    let err = harness::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: BATON_CREATE_ACCOUNT_EMAIL is set, which makes this run an invite"), "{err}");
    assert!(err.contains("no sync ran: to sync, unset it"), "{err}");
    assert_eq!(sim.stats().total(), 0, "nothing was sent");
    assert!(!file.exists());

    let env = [("BATON_CREATE_ACCOUNT_EMAIL", "leftover@example.com"), ("BATON_PROVISIONING", "true")];
    let out = with_env(&env).output().await.unwrap();
    harness::assert_success(&out);
    let err = harness::stderr(&out);
    let warning = err.lines().find(|l| l.contains("WARN")).unwrap_or_else(|| panic!("a warning:\n{err}"));
    assert!(
        warning.contains("running an invite, not a sync: BATON_CREATE_ACCOUNT_EMAIL is set (no sync runs"),
        "{warning}"
    );
    assert!(stdout(&out).starts_with("created: Torq user "), "{}", stdout(&out));
    assert!(!file.exists(), "no sync ran");

    // Typed on the command line, the invite is what was asked for: no warning.
    let out = run(&sim, dir.path(), &["-p", "--create-account-email", "typed@example.com"]).await;
    harness::assert_success(&out);
    assert!(!harness::stderr(&out).contains("running an invite, not a sync"), "{}", harness::stderr(&out));

    // From the config file: the file and the key are named.
    let config = dir.path().join("c.yaml");
    std::fs::write(&config, "create-account-email: fromfile@example.com\n").unwrap();
    let out = with_env(&[("BATON_CONFIG_PATH", config.to_str().unwrap())]).output().await.unwrap();
    let err = harness::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("create-account-email in config file {} is set", config.display())), "{err}");
    assert_eq!(sim.invited_users().len(), 2, "only the two invites asked for");
    sim.shutdown().await;
}
