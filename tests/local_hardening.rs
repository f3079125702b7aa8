//! What a local attacker could try against the built binary: a config file someone else can write (or that someone
//! else owns) naming another Torq URL, a symlink planted as the output's lock file or as the output, and an output
//! that is a device or a pipe. Also that the release
//! build carries no gRPC server code (tonic's `server`/`router` features are for the tests' fake only).

mod common;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_torq::sim::{SimConfig, SimServer};
use common::harness::{clean_std_command, reference_workspace, stderr};

/// A listener that counts connections: where a redirected run would send the credentials.
fn credential_trap() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/auth/token", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            counter.fetch_add(1, Ordering::Relaxed);
            drop(conn);
        }
    });
    (url, hits)
}

/// The binary in `dir` as working directory with a clean environment plus `env`.
fn run_in(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = clean_std_command();
    cmd.current_dir(dir).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn a_config_file_others_can_write_is_refused_before_any_request() {
    let (trap, hits) = credential_trap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join(".baton.yaml");
    std::fs::write(
        &config,
        format!("torq-client-id: victim-id\ntorq-client-secret: victim-secret\ntorq-auth-url: {trap}\n"),
    )
    .unwrap();
    for mode in [0o664, 0o646, 0o666] {
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = run_in(dir.path(), &[], &["-f", "out.c1z"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "mode {mode:o}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains("writable by group or others") && err.contains("chmod go-w"), "{err}");
        assert!(!err.contains("victim-secret"), "{err}");
    }
    // The same refusal for a file named by BATON_CONFIG_PATH.
    let named = dir.path().join("shared.yaml");
    std::fs::copy(&config, &named).unwrap();
    std::fs::set_permissions(&named, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = run_in(dir.path(), &[("BATON_CONFIG_PATH", named.to_str().unwrap())], &["-f", "out.c1z"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(hits.load(Ordering::Relaxed), 0, "credentials were sent to the config file's URL");
    assert!(!dir.path().join("out.c1z").exists());
}

#[test]
fn a_config_file_owned_by_someone_else_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join(".baton.yaml");
    std::fs::write(&config, "torq-client-id: someone\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Only root can give a file away; as another user this test has nothing to set up and checks nothing.
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::chown(&config, Some(4242), None).unwrap();
        let out = run_in(dir.path(), &[], &["-f", "out.c1z"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("owned by another user (uid 4242"), "{err}");
    } else {
        eprintln!("skipped: not root, cannot chown a file to another user");
    }
}

#[test]
fn a_private_config_file_that_redirects_connections_is_used_with_one_warning_naming_the_keys() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(SimServer::start(reference_workspace(), SimConfig::default())).unwrap();
    let cfg = SimConfig::default();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join(".baton.yaml");
    std::fs::write(
        &config,
        format!(
            "torq-client-id: {}\ntorq-client-secret: {}\ntorq-api-url: {}\ntorq-auth-url: {}\n",
            cfg.client_id,
            cfg.client_secret,
            sim.api_url(),
            sim.auth_url()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run_in(dir.path(), &[], &["-f", "out.c1z", "--log-format", "console"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    // One line per run (cron logs stay readable), naming every such key.
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("sets where connections go")).collect();
    assert_eq!(lines.len(), 1, "one warning:\n{err}");
    assert!(lines[0].contains("WARN") && lines[0].contains("torq-api-url,torq-auth-url"), "{}", lines[0]);
    assert!(!err.contains(&cfg.client_secret), "{err}");
    rt.block_on(sim.shutdown());
}

#[test]
fn a_symlink_planted_as_the_lock_file_is_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim-file");
    std::os::unix::fs::symlink(&victim, dir.path().join(".sync.c1z.lock")).unwrap();
    let (trap, hits) = credential_trap();
    let out = run_in(
        dir.path(),
        &[("BATON_TORQ_CLIENT_ID", "id"), ("BATON_TORQ_CLIENT_SECRET", "secret"), ("BATON_TORQ_AUTH_URL", &trap)],
        &["-f", "sync.c1z"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(".sync.c1z.lock is a symbolic link") && err.contains("remove it"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!victim.exists(), "the symlink was followed: its target was created");
    assert_eq!(hits.load(Ordering::Relaxed), 0, "no request before the lock");
    assert!(!dir.path().join("sync.c1z").exists());
}

/// `-f` naming a symbolic link: refused before any request, with the file to pass instead; neither the link nor
/// the file it points to is touched (following it would let whoever can write the folder pick the file written).
#[test]
fn an_output_that_is_a_symbolic_link_is_refused_with_the_file_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let link = dir.path().join("sync.c1z");
    std::os::unix::fs::symlink("data/real.c1z", &link).unwrap();
    let (trap, hits) = credential_trap();
    let env = [("BATON_TORQ_CLIENT_ID", "id"), ("BATON_TORQ_CLIENT_SECRET", "secret"), ("BATON_TORQ_AUTH_URL", &trap)];
    let out = run_in(dir.path(), &env, &["-f", "sync.c1z"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("it is a symbolic link; pass the file it points to (-f data/real.c1z)"), "{err}");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(!dir.path().join("data/real.c1z").exists(), "the link was followed");
    assert_eq!(hits.load(Ordering::Relaxed), 0, "no request");
}

/// `-f` naming a device or a pipe: refused at once (a pipe would block the run; as root, `/dev/null` would be
/// replaced by the sync file) and left as it was.
#[test]
fn an_output_that_is_a_device_or_a_pipe_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.c1z");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let (trap, hits) = credential_trap();
    let env = [("BATON_TORQ_CLIENT_ID", "id"), ("BATON_TORQ_CLIENT_SECRET", "secret"), ("BATON_TORQ_AUTH_URL", &trap)];
    for target in [fifo.to_str().unwrap(), "/dev/null"] {
        let mut cmd = clean_std_command();
        cmd.current_dir(dir.path()).envs(env).args(["-f", target]).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                child.kill().unwrap();
                panic!("{target}: the run blocked");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{target}: {err}");
        assert!(err.contains("it is not a regular file (a device, pipe or socket)"), "{target}: {err}");
    }
    use std::os::unix::fs::FileTypeExt as _;
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    assert_eq!(hits.load(Ordering::Relaxed), 0, "no request");
}

/// The features of tonic in the normal (non-dev) dependency graph, as cargo resolves them for the release binary.
#[test]
fn the_release_binary_has_no_grpc_server() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "--locked", "--offline", "-e", "normal,features", "-i", "tonic", "--prefix", "none"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(tree.contains("tonic feature \"channel\""), "{tree}");
    for server_side in ["tonic feature \"server\"", "tonic feature \"router\"", "tonic feature \"transport\""] {
        assert!(!tree.contains(server_side), "{server_side} is in the release build:\n{tree}");
    }
}

#[test]
fn help_leads_with_environment_variables_for_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &[], &["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let examples = &help[help.find("Examples:").expect("an Examples section")..];
    // The first example takes the secret from the environment; no example passes it as a flag.
    let first_command = examples.lines().skip(1).find(|l| !l.trim_start().starts_with('#')).unwrap();
    assert!(first_command.contains("BATON_TORQ_CLIENT_SECRET="), "{first_command}");
    assert!(!examples.contains("--torq-client-secret SECRET"), "{examples}");
    assert!(examples.contains("`ps`"), "{examples}");
    // Both secret flags point at their variable and say why.
    for (flag, var) in
        [("--torq-client-secret", "BATON_TORQ_CLIENT_SECRET"), ("--client-secret", "BATON_CLIENT_SECRET")]
    {
        let at = help.find(&format!("      {flag} <SECRET>")).unwrap_or_else(|| panic!("{flag} in --help"));
        let text: String = help[at..].lines().take(5).flat_map(str::split_whitespace).collect::<Vec<_>>().join(" ");
        assert!(text.contains(&format!("prefer {var}")) && text.contains("`ps`"), "{text}");
    }
}
