//! Crash safety and concurrency: SIGKILL at many points never damages the previous sync file, SIGINT/SIGTERM stop a
//! sync cleanly (exit 130, file untouched, no work files), and two runs on one file never interleave.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use baton_torq::sim::{GeneratedSpec, SimConfig, SimServer, Workspace};
use common::harness::{assert_success, command, content, listing, run, spawn_console, stderr};

fn big() -> Workspace {
    Workspace::generated(GeneratedSpec {
        users: 8_000,
        roles: 120,
        sso_percent: 30,
        seed: 11,
        ..GeneratedSpec::default()
    })
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success(), "kill -{sig} {pid}");
}

async fn good_file(server: &SimServer, file: &Path) -> Vec<u8> {
    assert_success(&run(server, file, &[]).await);
    std::fs::read(file).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_twenty_points_never_damages_the_previous_file() {
    let server = SimServer::start(big(), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    // How long a full run takes here, to spread the kills over it.
    let started = Instant::now();
    let mut before = good_file(&server, &file).await;
    let full = started.elapsed();
    let mut killed_mid_run = 0;
    for i in 0..20u32 {
        let at = full.mul_f64(f64::from(i) / 20.0) + Duration::from_millis(5);
        let mut child =
            command(&server, &SimConfig::default(), &file).stderr(std::process::Stdio::null()).spawn().unwrap();
        tokio::time::sleep(at).await;
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        let _ = child.start_kill();
        let _ = child.wait().await;
        if std::fs::read(&file).unwrap() != before {
            // The run finished before the kill landed: then the file must be a complete, valid newer sync.
            let _ = content(&file);
        }
        // A following run succeeds and clears whatever the killed one left behind.
        before = good_file(&server, &file).await;
        assert_eq!(listing(dir.path()), vec!["sync.c1z"], "kill {i} at {at:?}: no leftovers after the next run");
    }
    assert!(killed_mid_run >= 15, "most kills landed mid-run ({killed_mid_run}/20)");
    server.shutdown().await;
}

/// The output folder is renamed while a sync runs (the work file was created in it): the run fails with one
/// line naming the missing folder, the previous file is untouched and no work file is left in the folder where
/// it went (the work file used to stay there: it was removed by its old path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_folder_moved_mid_run_keeps_no_work_file() {
    let cfg = SimConfig { latency: Duration::from_millis(400), ..Default::default() };
    let server = SimServer::start(big(), cfg).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("out");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("sync.c1z");
    let before = good_file(&server, &file).await;
    let child = spawn_console(&mut command(&server, &SimConfig::default(), &file));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listing(&dir).iter().any(|n| n.starts_with(".sync.c1z.work-")) {
        assert!(Instant::now() < deadline, "no work file appeared: {:?}", listing(&dir));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let moved = root.path().join("moved");
    std::fs::rename(&dir, &moved).unwrap();
    let out = child.wait_with_output().await.unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&dir.display().to_string()), "names the folder:\n{err}");
    assert!(err.contains("was moved, renamed or removed while the sync ran"), "names the cause:\n{err}");
    assert_eq!(err.lines().filter(|l| l.starts_with("error")).count(), 1, "one error line:\n{err}");
    assert_eq!(std::fs::read(moved.join("sync.c1z")).unwrap(), before, "previous file untouched");
    assert_eq!(listing(&moved), vec!["sync.c1z"], "no work file left where the folder went");
    server.shutdown().await;
}

async fn interrupted_by(sig: &str) {
    let cfg = SimConfig { latency: Duration::from_millis(400), ..Default::default() };
    let server = SimServer::start(big(), cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let before = good_file(&server, &file).await;
    let child = spawn_console(&mut command(&server, &SimConfig::default(), &file));
    tokio::time::sleep(Duration::from_millis(600)).await;
    signal(child.id().unwrap(), sig);
    let out = child.wait_with_output().await.unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{sig}: exit 130\n{err}");
    assert!(err.contains("interrupted"), "{sig}: says so\n{err}");
    assert_eq!(std::fs::read(&file).unwrap(), before, "{sig}: file untouched");
    assert_eq!(listing(dir.path()), vec!["sync.c1z"], "{sig}: work files removed");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly() {
    interrupted_by("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_cleanly() {
    interrupted_by("INT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_file_fails_at_once_or_waits() {
    let cfg = SimConfig { latency: Duration::from_millis(700), ..Default::default() };
    let server = SimServer::start(big(), cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let first = command(&server, &SimConfig::default(), &file).stderr(std::process::Stdio::piped()).spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let second =
        command(&server, &SimConfig::default(), &file).arg("--log-format").arg("console").output().await.unwrap();
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    assert!(stderr(&second).contains("another baton-torq run"), "{}", stderr(&second));
    assert!(started.elapsed() < Duration::from_millis(1500), "failed at once");

    let waiting = command(&server, &SimConfig::default(), &file).arg("--wait-for-lock").output();
    let (first, waited) = tokio::join!(first.wait_with_output(), waiting);
    assert_success(&first.unwrap());
    assert_success(&waited.unwrap());
    let reader = common::c1z_reader::C1zReader::open(&file);
    assert_eq!(reader.sync_runs().len(), 2, "both runs landed, one after the other");
    for r in reader.sync_runs() {
        reader.check_integrity(&r.sync_id);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_during_a_large_user_list_stops_quickly() {
    // 400k users take many seconds to sync here; an interrupt must not wait for the lists to finish.
    let spec = GeneratedSpec { users: 400_000, roles: 10, sso_percent: 50, seed: 3, ..GeneratedSpec::default() };
    let server = SimServer::start(Workspace::generated(spec), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let child = spawn_console(&mut command(&server, &SimConfig::default(), &file));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let signalled = Instant::now();
    signal(child.id().unwrap(), "INT");
    let out = child.wait_with_output().await.unwrap();
    let took = signalled.elapsed();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(took < Duration::from_secs(3), "stopped {took:?} after the signal");
    assert!(listing(dir.path()).is_empty(), "no file and no work files: {:?}", listing(dir.path()));
    server.shutdown().await;
}
