//! Review benchmark: how long `baton-torq review` takes and how much memory it needs for a large sync file.
//!
//! The file is made the way users make it: the release binary syncs a generated workspace from the simulated
//! Torq server twice into one file (the second time with 1% more users, so there are changes to report). Then
//! `baton-torq review` runs as a child process once per format, `--repeat K` times each; a row shows the median
//! wall time and the child's peak RSS (`ru_maxrss` from `wait4`).
//!
//! Run: `cargo bench --bench review` (100,000 users, 50 roles, 1,000 API keys) or
//!      `cargo bench --bench review -- --users 1000000 --roles 100 --api-keys 1000 --repeat 3`;
//!      `--keep FILE` keeps a copy of the generated file (to profile `review` on it).
//! `docs/review.md` and `docs/performance.md` have the measured numbers.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use baton_torq::sim::{GeneratedSpec, SimConfig, SimServer, Workspace};

struct Args {
    users: u64,
    roles: u32,
    api_keys: u32,
    repeat: usize,
    /// Where to copy the generated file (to profile `review` on it).
    keep: Option<std::path::PathBuf>,
}

fn parse_args() -> Args {
    let mut a = Args { users: 100_000, roles: 50, api_keys: 1_000, repeat: 3, keep: None };
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--keep" {
            a.keep = it.next().map(Into::into);
            continue;
        }
        let value = it.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--users", Some(v)) => a.users = v,
            ("--roles", Some(v)) => a.roles = v as u32,
            ("--api-keys", Some(v)) => a.api_keys = v as u32,
            ("--repeat", Some(v)) if v > 0 => a.repeat = v as usize,
            _ => {
                eprintln!("usage: cargo bench --bench review -- [--users N] [--roles R] [--api-keys K] [--repeat K] [--keep FILE]");
                std::process::exit(2);
            }
        }
    }
    a
}

/// Syncs a generated workspace of `users` into `file` with the release binary.
async fn sync(users: u64, args: &Args, file: &Path) -> Result<(), String> {
    let spec = GeneratedSpec {
        users,
        roles: args.roles,
        sso_percent: 30,
        seed: 42,
        api_keys: args.api_keys,
        claim_mappings: 0,
    };
    let config = SimConfig::default();
    let server = SimServer::start(Workspace::generated(spec), config.clone()).await.map_err(|e| e.to_string())?;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_baton-torq"))
        .env_clear()
        .args(["--torq-client-id", &config.client_id, "--torq-client-secret", &config.client_secret])
        .args([
            "--torq-api-url",
            &server.api_url(),
            "--torq-auth-url",
            &server.auth_url(),
            "--log-format",
            "json",
            "-q",
        ])
        .arg("-f")
        .arg(file)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    server.shutdown().await;
    if !out.status.success() {
        return Err(format!("sync failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

/// One review run: wall seconds, peak RSS in bytes, exit code, bytes written.
fn review(file: &Path, format: &str, out_path: &Path) -> Result<(f64, u64, i32, u64), String> {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_baton-torq"))
        .env_clear()
        .args(["review", "--log-format", "json", "--now", "2026-12-01T00:00:00Z", "--format", format, "-o"])
        .arg(out_path)
        .arg("-f")
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let (code, rss) = wait_with_rusage(child.id())?;
    let wall = started.elapsed().as_secs_f64();
    let written = std::fs::metadata(out_path).map(|m| m.len()).unwrap_or(0);
    Ok((wall, rss, code, written))
}

/// Waits for `pid` and returns its exit code and peak RSS (bytes). std's `Child::wait` does not give the
/// resource usage, so the child is reaped here with `wait4`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn wait_with_rusage(pid: u32) -> Result<(i32, u64), String> {
    let mut status = 0;
    // SAFETY: rusage is plain data, zero is a valid value; wait4 writes it for the child we spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = pid as libc::pid_t;
    // SAFETY: `status` and `usage` are valid for writes; `pid` is our own child, not yet reaped.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if got != pid {
        return Err(format!("wait4 failed: {}", std::io::Error::last_os_error()));
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    Ok((code, usage.ru_maxrss as u64 * 1024))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn wait_with_rusage(_pid: u32) -> Result<(i32, u64), String> {
    Err("this benchmark measures peak RSS with wait4 and runs on Linux (glibc) only".into())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse_args();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("sync.c1z");
    let first = args.users - args.users / 100;
    let started = Instant::now();
    for users in [first, args.users] {
        if let Err(e) = sync(users, &args, &file).await {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
    if let Some(keep) = &args.keep {
        if let Err(e) = std::fs::copy(&file, keep) {
            eprintln!("cannot copy the file to {}: {e}", keep.display());
            std::process::exit(1);
        }
    }
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!(
        "file: two syncs ({first} then {} users, {} roles, {} API keys), {size} bytes, made in {:.1} s",
        args.users,
        args.roles,
        args.api_keys,
        started.elapsed().as_secs_f64()
    );
    println!("| format   | wall s (median of {}) | peak RSS MiB | output bytes |", args.repeat);
    println!("|----------|---------------------:|-------------:|-------------:|");
    for format in ["terminal", "csv", "json", "html"] {
        let out_path = dir.path().join(format!("review.{format}"));
        let mut runs = Vec::new();
        for _ in 0..args.repeat {
            match review(&file, format, &out_path) {
                Ok((wall, rss, 0, written)) => runs.push((wall, rss, written)),
                Ok((_, _, code, _)) => {
                    eprintln!("review --format {format} exited {code}");
                    std::process::exit(1);
                }
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (wall, _, written) = runs[runs.len() / 2];
        let rss = runs.iter().map(|r| r.1).max().unwrap_or(0);
        println!("| {format:<8} | {wall:>20.3} | {:>12.1} | {written:>12} |", rss as f64 / (1 << 20) as f64);
    }
    println!("peak RSS: the largest of the runs");
}
