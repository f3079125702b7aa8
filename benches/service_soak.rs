//! Service-mode soak: the release `baton-torq` daemon against the simulated Torq (a generated workspace) and the
//! fake ConductorOne of tests/common, both in this process. N full-sync tasks are handed out, at most C at a time
//! (C = the daemon's task concurrency), and the daemon's resident memory (VmRSS from /proc) is sampled every
//! 100 ms. Printed: RSS over time, the peak, RSS once idle before any task, after the first `--idle-after` tasks
//! and after all of them, open file descriptors at those points, leftover temporary files, and task latency
//! percentiles (from handing the task out to its FinishTask). Every task must succeed.
//!
//! Run: `cargo bench --bench service_soak` (400 tasks, 5,000 users, 20 roles, 20 API keys, concurrency 3) or
//!      `cargo bench --bench service_soak -- --tasks 100 --users 20000 --concurrency 2 --idle-after 30`.
//! `--env NAME=VALUE` (repeatable) sets a variable for the daemon, e.g. `--env MALLOC_ARENA_MAX=2`, for experiments.
//! Linux only (reads /proc).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_torq::proto::baton_v1::baton_service_finish_task_request::FinalState;
use baton_torq::sim::{GeneratedSpec, SimConfig, SimServer, Workspace};
use common::fake_c1::{sync_task, FakeC1};

struct Args {
    tasks: usize,
    concurrency: usize,
    users: u64,
    roles: u32,
    api_keys: u32,
    idle_after: usize,
    env: Vec<(String, String)>,
}

fn parse_args() -> Args {
    let mut a = Args { tasks: 400, concurrency: 3, users: 5_000, roles: 20, api_keys: 20, idle_after: 60, env: vec![] };
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().cloned().unwrap_or_default();
        let number = value.parse::<u64>().ok();
        match (flag.as_str(), number) {
            ("--tasks", Some(n)) => a.tasks = n as usize,
            ("--concurrency", Some(n)) if (1..=100).contains(&n) => a.concurrency = n as usize,
            ("--users", Some(n)) => a.users = n,
            ("--roles", Some(n)) => a.roles = n as u32,
            ("--api-keys", Some(n)) => a.api_keys = n as u32,
            ("--idle-after", Some(n)) => a.idle_after = n as usize,
            ("--env", _) if value.contains('=') => {
                let (k, v) = value.split_once('=').unwrap_or_default();
                a.env.push((k.to_owned(), v.to_owned()));
            }
            _ => {
                eprintln!(
                    "usage: cargo bench --bench service_soak -- [--tasks N] [--concurrency C] [--users U] [--roles R] \
                     [--api-keys K] [--idle-after N] [--env NAME=VALUE]..."
                );
                std::process::exit(2);
            }
        }
    }
    a.idle_after = a.idle_after.min(a.tasks);
    a
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Everything under `dir`, recursively (temporary sync directories and their files).
fn leftovers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            found.push(path.strip_prefix(dir).unwrap_or(&path).display().to_string());
        }
    }
    // The fake's certificate and the daemon's log are the benchmark's own.
    found.retain(|p| p != "c1-ca.pem" && p != "daemon.log");
    found
}

/// Samples the daemon's RSS every 100 ms: (seconds since start, tasks finished, KiB).
#[derive(Default)]
struct Samples {
    points: Vec<(f64, usize, u64)>,
    peak: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Waits until RSS has not changed by more than 1 % over two seconds (or 15 s pass), then returns it.
async fn settled_rss(pid: u32) -> u64 {
    let mut last = rss_kib(pid).unwrap_or(0);
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = rss_kib(pid).unwrap_or(0);
        if now.abs_diff(last) * 100 <= last {
            return now;
        }
        last = now;
    }
    last
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse_args();
    let spec = GeneratedSpec {
        users: args.users,
        roles: args.roles,
        sso_percent: 30,
        seed: 26,
        api_keys: args.api_keys,
        claim_mappings: 0,
    };
    let sim = SimServer::start(Workspace::generated(spec), SimConfig::default()).await.expect("simulator starts");
    let (c1, secret) = FakeC1::start_for_new_key().await;
    c1.set_next_poll(Duration::from_millis(100));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = common::harness::daemon_command(&sim, &c1, &secret, dir.path(), dir.path());
    cmd.args(["--task-concurrency", &args.concurrency.to_string(), "--log-level", "warn", "--log-format", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("daemon.log")).expect("log file"));
    for (k, v) in &args.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("daemon starts");
    let pid = child.id().expect("pid");
    c1.wait_for("the daemon's Hello", Duration::from_secs(60), |r| !r.hellos.is_empty()).await;
    let idle_start = settled_rss(pid).await;
    let fds_start = open_fds(pid);

    let started = Instant::now();
    let samples = Arc::new(Mutex::new(Samples::default()));
    let finished = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sampler = {
        let (samples, finished) = (samples.clone(), finished.clone());
        tokio::spawn(async move {
            while let Some(kib) = rss_kib(pid) {
                {
                    let mut s = samples.lock().unwrap();
                    s.peak = s.peak.max(kib);
                    let done = finished.load(std::sync::atomic::Ordering::Relaxed);
                    s.points.push((started.elapsed().as_secs_f64(), done, kib));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let mut pushed_at: Vec<Instant> = Vec::with_capacity(args.tasks);
    let mut latencies: Vec<Duration> = vec![Duration::ZERO; args.tasks];
    let mut seen = 0usize;
    let mut idle_mid = None;
    let id = |i: usize| format!("2soak{i:021}");
    while seen < args.tasks {
        // Keep C tasks in the daemon (a new one is handed out as soon as a slot frees), pausing once after
        // `idle_after` tasks to measure the idle daemon.
        let limit = if idle_mid.is_none() { args.idle_after } else { args.tasks };
        while pushed_at.len() < limit && pushed_at.len() - seen < args.concurrency {
            c1.push_task(sync_task(&id(pushed_at.len())));
            pushed_at.push(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now_seen = c1.with_record(|r| r.finishes.len());
        // Latency of each newly finished task, by its id.
        c1.with_record(|r| {
            for f in &r.finishes[seen..now_seen] {
                let i: usize = f.task_id.trim_start_matches("2soak").parse().unwrap_or(0);
                assert!(matches!(f.final_state, Some(FinalState::Success(_))), "task {} failed: {f:?}", f.task_id);
                if let (Some(at), Some(slot)) = (pushed_at.get(i), latencies.get_mut(i)) {
                    *slot = at.elapsed();
                }
            }
        });
        seen = now_seen;
        finished.store(seen, std::sync::atomic::Ordering::Relaxed);
        if idle_mid.is_none() && seen == args.idle_after {
            idle_mid = Some((settled_rss(pid).await, open_fds(pid), leftovers(dir.path()).len()));
        }
    }
    let wall = started.elapsed();
    let idle_end = settled_rss(pid).await;
    let fds_end = open_fds(pid);
    let left = leftovers(dir.path());
    sampler.abort();
    let _ = child.kill().await;
    sim.shutdown().await;

    let samples = samples.lock().unwrap();
    println!(
        "service soak: {} sync tasks at concurrency {}, {} users / {} roles / {} API keys{}",
        args.tasks,
        args.concurrency,
        args.users,
        args.roles,
        args.api_keys,
        if args.env.is_empty() {
            String::new()
        } else {
            format!(", env {}", args.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "))
        }
    );
    println!("RSS over time (every ~{} tasks):", (args.tasks / 20).max(1));
    let step = (args.tasks / 20).max(1);
    let mut next = 0;
    for &(t, done, kib) in &samples.points {
        if done >= next {
            println!("  {t:7.1} s  {done:4} tasks  {:6.1} MiB", mib(kib));
            next = done + step;
        }
    }
    let (mid_rss, mid_fds, mid_left) = idle_mid.unwrap_or((0, 0, 0));
    println!("idle RSS before any task:        {:6.1} MiB, {fds_start} open fds", mib(idle_start));
    println!(
        "idle RSS after {:4} tasks:        {:6.1} MiB, {mid_fds} open fds, {mid_left} temporary files",
        args.idle_after,
        mib(mid_rss)
    );
    println!("idle RSS after {:4} tasks:        {:6.1} MiB, {fds_end} open fds", args.tasks, mib(idle_end));
    println!("peak RSS:                        {:6.1} MiB", mib(samples.peak));
    println!("leftover temporary files:        {} {left:?}", left.len());
    latencies.sort();
    println!(
        "task latency ms: p50 {:.0}, p90 {:.0}, p99 {:.0}, max {:.0}; {:.1} tasks/s over {:.1} s",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        args.tasks as f64 / wall.as_secs_f64(),
        wall.as_secs_f64()
    );
}
