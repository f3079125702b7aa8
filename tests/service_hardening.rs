//! Service mode against a ConductorOne that misbehaves (tests/common/fake_c1.rs with its hostile switches): a token
//! with a huge or no lifetime, an upload stream it never reads, uploads that fail for a while, tasks without an id
//! sent back to back; and the start-up cleanup of temporary sync directories a killed run left behind.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use baton_torq::proto::baton_v1::baton_service_finish_task_request::FinalState;
use baton_torq::proto::baton_v1::task::{HelloTask, TaskType};
use baton_torq::proto::baton_v1::Task;
use baton_torq::service::client::UploadLimits;
use baton_torq::sim::{SimConfig, SimServer};
use clap::Parser as _;
use common::fake_c1::{sync_task, FakeC1, TEST_CLIENT_ID as CLIENT_ID};
use common::harness::{self, reference_workspace};

/// The daemon with console logs into `dir/stderr.log`.
fn daemon(sim: &SimServer, fake: &FakeC1, secret: &str, dir: &Path, temp_dir: &Path) -> tokio::process::Command {
    let mut cmd = harness::daemon_command(sim, fake, secret, dir, temp_dir);
    cmd.args(["--log-format", "console"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap());
    cmd
}

/// SIGTERM, then the exit code (the daemon must stop by itself within 30 s).
async fn stop(child: &mut tokio::process::Child) -> Option<i32> {
    let pid = child.id().expect("the daemon is still running");
    assert!(std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap().success());
    tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("exits after SIGTERM").unwrap().code()
}

fn succeeded(fake: &FakeC1, task_id: &str) -> bool {
    matches!(fake.finish_of(task_id).and_then(|f| f.final_state), Some(FinalState::Success(_)))
}

/// One full-sync task through a daemon against the reference workspace: it must succeed and the daemon must stop
/// with exit 0 on SIGTERM. Returns the daemon's log.
async fn run_one_sync_task(c1: &FakeC1, secret: &str, task_id: &str) -> String {
    let sim = SimServer::start(reference_workspace(), SimConfig::default()).await.unwrap();
    let (dir, temp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    c1.push_task(sync_task(task_id));
    let mut child = daemon(&sim, c1, secret, dir.path(), temp.path()).spawn().unwrap();
    c1.wait_for("the sync task's FinishTask", Duration::from_secs(120), |r| !r.finishes.is_empty()).await;
    let code = stop(&mut child).await;
    let stderr = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert!(succeeded(c1, task_id), "{stderr}");
    assert_eq!(code, Some(0), "{stderr}");
    sim.shutdown().await;
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_a_huge_lifetime_does_not_kill_the_daemon() {
    let (c1, secret) = FakeC1::start_for_new_key().await;
    c1.set_token_expires_in(serde_json::json!(18446744073709551615u64));
    run_one_sync_task(&c1, &secret, "2hugelifetime0000000000001").await;
    // One token (clamped to 24 h) serves every call.
    assert_eq!(c1.with_record(|r| r.token_requests), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_a_usable_lifetime_is_used_for_one_call() {
    let (c1, secret) = FakeC1::start_for_new_key().await;
    c1.set_token_expires_in(serde_json::json!(-1));
    run_one_sync_task(&c1, &secret, "2nolifetime000000000000001").await;
    c1.with_record(|r| {
        let calls = r.hellos.len() as u64 + r.get_tasks + r.heartbeats.len() as u64 + r.upload_attempts + 1;
        assert!(r.token_requests >= calls, "{} tokens for {calls} calls", r.token_requests);
        assert_eq!(r.unauthenticated_calls, 0);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_retried_with_backoff_through_a_short_outage() {
    let (c1, secret) = FakeC1::start_for_new_key().await;
    // Three uploads fail: the old policy (3 attempts, 0 s then 1 s apart) threw the finished sync away.
    c1.fail_uploads(3);
    let stderr = run_one_sync_task(&c1, &secret, "2uploadretry00000000000001").await;
    c1.with_record(|r| {
        assert_eq!(r.upload_attempts, 4);
        assert_eq!(r.uploads.len(), 1);
    });
    // Backoff 1 s, 2 s, 4 s (plus jitter) between the four attempts: three logged failures, then the upload.
    assert_eq!(stderr.matches("upload failed").count(), 3, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_without_an_id_do_not_make_the_daemon_poll_in_a_loop() {
    let (c1, secret) = FakeC1::start_for_new_key().await;
    // The server asks for the next poll at once, and has 40 tasks that cannot be answered (no id).
    c1.set_next_poll(Duration::ZERO);
    for _ in 0..40 {
        c1.push_task(Task {
            id: String::new(),
            status: 2,
            debug: false,
            task_type: Some(TaskType::Hello(HelloTask::default())),
        });
    }
    let sim = SimServer::start(reference_workspace(), SimConfig::default()).await.unwrap();
    let (dir, temp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut child = daemon(&sim, &c1, &secret, dir.path(), temp.path()).spawn().unwrap();
    c1.wait_for("the first GetTask", Duration::from_secs(30), |r| r.get_tasks >= 1).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let polls = c1.with_record(|r| r.get_tasks);
    let stderr = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    // Backoff 1 s, 2 s, ... (plus jitter): a handful of polls in 4 s, not 40 back to back.
    assert!(polls <= 6, "{polls} GetTask calls in 4 s\n{stderr}");
    assert!(stderr.contains("ignoring a task without an id"), "{stderr}");
    assert_eq!(stop(&mut child).await, Some(0), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temp_dirs_left_by_a_killed_run_are_removed_at_start_up() {
    let (c1, secret) = FakeC1::start_for_new_key().await;
    let sim = SimServer::start(reference_workspace(), SimConfig::default()).await.unwrap();
    let (dir, temp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // What a SIGKILLed run leaves: its task directory with a sync file, a work file and an unheld lock.
    let stale = temp.path().join("baton-torq-sync-uploadAbC123");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("sync.c1z"), vec![0u8; 1 << 20]).unwrap();
    std::fs::write(stale.join(".sync.c1z.work-xyz"), b"x").unwrap();
    std::fs::write(stale.join(".sync.c1z.lock"), b"").unwrap();
    // A live run's directory (its lock is held, here by this test) and an unrelated directory stay.
    let live = temp.path().join("baton-torq-sync-uploadLiVe42");
    std::fs::create_dir(&live).unwrap();
    let _held = baton_torq::c1z::lock::OutputLock::acquire(&live.join("sync.c1z"), false).unwrap();
    let other = temp.path().join("someone-elses-dir");
    std::fs::create_dir(&other).unwrap();

    let mut child = daemon(&sim, &c1, &secret, dir.path(), temp.path()).spawn().unwrap();
    c1.wait_for("the start-up Hello", Duration::from_secs(30), |r| !r.hellos.is_empty()).await;
    let stderr = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert!(!stale.exists(), "the killed run's directory is still there\n{stderr}");
    assert!(live.exists() && other.exists());
    assert!(stderr.contains("removed a temporary sync directory left by an interrupted run"), "{stderr}");
    assert_eq!(stop(&mut child).await, Some(0), "{stderr}");
}

/// The ConductorOne client of the library, set up as the daemon sets it up, with the given upload limits.
fn client_for(fake: &FakeC1, secret: &str, dir: &Path, limits: UploadLimits) -> baton_torq::service::client::C1Client {
    let ca = fake.write_ca(dir);
    let cli = baton_torq::cli::Cli::try_parse_from([
        "baton-torq".to_owned(),
        "--client-id".to_owned(),
        CLIENT_ID.to_owned(),
        "--client-secret".to_owned(),
        secret.to_owned(),
        "--c1-api-host".to_owned(),
        fake.api_host(),
        "--c1-ca-cert-file".to_owned(),
        ca.display().to_string(),
        "--host-id".to_owned(),
        "hardening-host".to_owned(),
    ])
    .unwrap();
    let config = baton_torq::service::ServiceConfig::from_args(&cli.service).unwrap();
    baton_torq::service::connect(&config).unwrap().with_upload_limits(limits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_conductorone_never_reads_fails_instead_of_hanging() {
    let (c1, secret) = FakeC1::start_for_new_key().await;
    let dir = tempfile::tempdir().unwrap();
    // 4 MiB of noise: more than the HTTP/2 windows, so the sender is stopped by flow control mid-file.
    let file = dir.path().join("sync.c1z");
    std::fs::write(&file, (0..4 << 20).map(|_| rand::random::<u8>()).collect::<Vec<u8>>()).unwrap();

    // No progress for 2 s: the upload fails.
    let stall = UploadLimits { stall: Duration::from_secs(2), ..UploadLimits::default() };
    let client = client_for(&c1, &secret, dir.path(), stall);
    c1.stall_uploads(1);
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(60), client.upload_asset("2stalled0000000000000001", &file))
        .await
        .expect("the upload must fail on its own, not hang");
    let e = result.expect_err("a stalled upload cannot succeed");
    assert_eq!(e.code(), tonic::Code::DeadlineExceeded, "{e}");
    assert!(e.to_string().contains("made no progress for 2 s"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());

    // The whole-upload deadline holds too, e.g. for a server that reads everything and never answers.
    let deadline =
        UploadLimits { stall: Duration::from_secs(600), base: Duration::from_secs(2), min_bytes_per_second: u64::MAX };
    let client = client_for(&c1, &secret, dir.path(), deadline);
    c1.stall_uploads(1);
    let result = tokio::time::timeout(Duration::from_secs(60), client.upload_asset("2stalled0000000000000002", &file))
        .await
        .expect("the upload must fail on its own, not hang");
    let e = result.expect_err("a stalled upload cannot succeed");
    assert_eq!(e.code(), tonic::Code::DeadlineExceeded, "{e}");
    assert!(e.to_string().contains("did not finish within 2 s"), "{e}");

    // The server reads again: the same client uploads the whole file.
    let size = client.upload_asset("2stalled0000000000000003", &file).await.expect("upload");
    assert_eq!(size, 4 << 20);
    assert_eq!(c1.with_record(|r| r.uploads.len()), 1);
}
