//! Everyday use through the built binary: the config file (`.baton.yaml`, `BATON_CONFIG_PATH`) and its
//! precedence (flags > env > file > defaults), shell completions, `--help`, the terminal progress line, and the
//! documented exit codes (0 success, 1 sync failure, 2 usage/configuration error, 130 interrupted).
//!
//! Every run gets a clean environment and its own working directory, so a developer's own `.baton.yaml` or
//! `BATON_*` variables never leak in.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use baton_torq::sim::{SimConfig, SimServer, Workspace};

const SECRET: &str = "sim-client-secret";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_baton-torq")
}

/// The binary with an empty environment (PATH only) running in `dir`.
fn cmd(dir: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(bin());
    c.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).current_dir(dir);
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

/// Config file text that points at `server` with working credentials.
fn server_yaml(server: &SimServer) -> String {
    let cfg = SimConfig::default();
    format!(
        "# baton-torq test config\ntorq-client-id: {}\ntorq-client-secret: \"{}\"\ntorq-api-url: {}\ntorq-auth-url: {}\n",
        cfg.client_id,
        cfg.client_secret,
        server.api_url(),
        server.auth_url()
    )
}

async fn demo_server(latency: Duration) -> SimServer {
    SimServer::start(Workspace::demo(), SimConfig { latency, ..SimConfig::default() }).await.unwrap()
}

/// The files in `dir`, without output lock files (`.NAME.lock`, left in place by design).
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !(n.starts_with('.') && n.ends_with(".lock")))
        .collect();
    names.sort();
    names
}

fn assert_one_line(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "exactly one line on stderr:\n{err}");
    // Console mode prints "error: ..."; in a pipe the default log format is JSON: one ERROR record.
    let json_error = serde_json::from_str::<serde_json::Value>(err.trim_end()).is_ok_and(|v| v["level"] == "ERROR");
    assert!(err.starts_with("error: ") || json_error, "{err}");
    err
}

// ---------------------------------------------------------------------------------------------------------------
// Config file

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baton_yaml_in_the_working_directory_supplies_every_setting() {
    let server = demo_server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("{}file: from-file.c1z\nlog-format: json\nverbose: true\n", server_yaml(&server));
    std::fs::write(dir.path().join(".baton.yaml"), yaml).unwrap();

    let out = cmd(dir.path()).output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(dir.path().join("from-file.c1z").is_file(), "file from the config file: {:?}", files_in(dir.path()));
    let err = stderr(&out);
    for line in err.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("log-format json: {e}: {line}"));
    }
    assert!(err.contains("read config file"), "verbose logs name the file:\n{err}");
    assert!(err.contains("torq-client-secret"), "key names are logged:\n{err}");
    assert!(!err.contains(SECRET), "the secret's value is never logged:\n{err}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_beat_env_and_env_beats_the_file() {
    let server = demo_server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    // The file's secret is wrong: the environment's (right) one must win.
    let yaml = server_yaml(&server).replace(SECRET, "wrong-secret") + "file: file.c1z\nlog-format: json\n";
    std::fs::write(dir.path().join(".baton.yaml"), yaml).unwrap();

    // file only (wrong secret) -> 1, nothing written
    let out = cmd(dir.path()).output().await.unwrap();
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    assert!(!stderr(&out).contains("wrong-secret"), "{}", stderr(&out));

    // env over file
    let out =
        cmd(dir.path()).env("BATON_TORQ_CLIENT_SECRET", SECRET).env("BATON_FILE", "env.c1z").output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(files_in(dir.path()), vec![".baton.yaml", "env.c1z"]);

    // flag over env
    let out = cmd(dir.path())
        .env("BATON_TORQ_CLIENT_SECRET", "also-wrong")
        .env("BATON_FILE", "env.c1z")
        .args(["--torq-client-secret", SECRET, "-f", "flag.c1z"])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(files_in(dir.path()), vec![".baton.yaml", "env.c1z", "flag.c1z"]);

    // an empty variable counts as unset (as in viper): the file's value applies
    let out = cmd(dir.path())
        .env("BATON_TORQ_CLIENT_SECRET", SECRET)
        .env("BATON_FILE", "")
        .env("BATON_LOG_FORMAT", "console")
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("Synced"), "env log-format beats the file's json: {}", stderr(&out));
    assert!(dir.path().join("file.c1z").is_file());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baton_config_path_names_the_file_and_replaces_the_default() {
    let server = demo_server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("torq.yml");
    std::fs::write(&conf, server_yaml(&server) + "file: chosen.c1z\n").unwrap();
    // A broken default file is not read when BATON_CONFIG_PATH is set.
    std::fs::write(dir.path().join(".baton.yaml"), "not-a-flag: 1\n").unwrap();

    let out = cmd(dir.path()).env("BATON_CONFIG_PATH", &conf).output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(dir.path().join("chosen.c1z").is_file(), "{:?}", files_in(dir.path()));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_files_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        ("unknown.yaml", "torq-client-idd: x\ntorq-client-secret: hunter2-secret\n", "unknown key \"torq-client-idd\""),
        ("list.yaml", "file:\n  - a.c1z\n", "not a list"),
        ("syntax.yaml", "torq-client-secret: \"hunter2-secret\n", "not valid YAML"),
        ("scalar.yaml", "just text\n", "must be a mapping"),
        ("region.yaml", "torq-client-id: x\ntorq-client-secret: hunter2-secret\ntorq-region: mars\n", "mars"),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = cmd(dir.path()).env("BATON_CONFIG_PATH", &path).output().await.unwrap();
        assert_eq!(code(&out), Some(2), "{name}: {}", stderr(&out));
        let err = assert_one_line(&out);
        assert!(err.contains(expected), "{name}: expected {expected:?} in: {err}");
        assert!(!err.contains("hunter2-secret"), "{name}: secret leaked: {err}");
    }
    let out = cmd(dir.path()).env("BATON_CONFIG_PATH", dir.path().join("conf.json")).output().await.unwrap();
    assert_eq!(code(&out), Some(2));
    assert!(assert_one_line(&out).contains(".yaml or .yml"), "{}", stderr(&out));
    let out = cmd(dir.path()).env("BATON_CONFIG_PATH", dir.path().join("missing.yaml")).output().await.unwrap();
    assert_eq!(code(&out), Some(2));
    assert!(assert_one_line(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(!files_in(dir.path()).iter().any(|f| f.ends_with(".c1z")), "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_default_config_file_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path()).arg("capabilities").output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------------------------------
// Completions and help

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_for_every_shell() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete"),
        ("zsh", "#compdef"),
        ("fish", "complete -c"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = cmd(dir.path()).args(["completion", shell]).output().await.unwrap();
        assert_eq!(code(&out), Some(0), "{shell}: {}", stderr(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker) && script.contains("baton-torq"), "{shell}");
        assert!(script.contains("torq-client-id"), "{shell} completes the flags");
    }
    let out = cmd(dir.path()).args(["completion", "tcsh"]).output().await.unwrap();
    assert_eq!(code(&out), Some(2));
    assert_one_line(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_has_examples_config_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path()).arg("--help").output().await.unwrap();
    assert_eq!(code(&out), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in
        ["Examples:", "baton-torq demo", "completion", "BATON_CONFIG_PATH", ".baton.yaml", "Exit codes:", "130"]
    {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    for line in help.lines() {
        assert!(line.chars().count() <= 100, "help line too wide: {line}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Exit codes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["--no-such-flag"], &[], "--no-such-flag"),
        (&[], &[("BATON_TORQ_CLIENT_ID", "id")], "BATON_TORQ_CLIENT_SECRET"),
        (&["--torq-client-id", "id", "--torq-client-secret", "s", "--torq-region", "mars"], &[], "mars"),
        (&["--torq-client-id", "id", "--torq-client-secret", "s"], &[("BATON_TORQ_REGION", "mars")], "mars"),
        (
            &["--torq-client-id", "id", "--torq-client-secret", "s", "--torq-api-url", "http://example.com/x"],
            &[],
            "loopback",
        ),
    ];
    for (args, env, expected) in cases {
        let out = cmd(dir.path()).args(*args).envs(env.iter().copied()).output().await.unwrap();
        assert_eq!(code(&out), Some(2), "{args:?} {env:?}: {}", stderr(&out));
        let err = assert_one_line(&out);
        assert!(err.contains(expected), "{args:?}: expected {expected:?} in {err}");
    }
    assert!(files_in(dir.path()).is_empty(), "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_failures_exit_1() {
    let server = demo_server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    // Rejected credentials: the simulated token endpoint answers 401.
    let out = cmd(dir.path())
        .args(["--torq-client-id", "sim-client-id", "--torq-client-secret", "not-the-secret"])
        .args(["--torq-api-url", &server.api_url(), "--torq-auth-url", &server.auth_url(), "--log-format", "console"])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    assert!(!stderr(&out).contains("not-the-secret"));
    server.shutdown().await;

    // Torq unreachable: nothing listens on the port (after the retries give up).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = cmd(dir.path())
        .args(["--torq-client-id", "id", "--torq-client-secret", "secret", "--log-format", "console"])
        .args(["--torq-api-url", &format!("http://127.0.0.1:{port}/public/v1alpha")])
        .args(["--torq-auth-url", &format!("http://127.0.0.1:{port}/v1/auth/token")])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).lines().last().unwrap_or("").starts_with("error: "), "{}", stderr(&out));
    assert!(files_in(dir.path()).is_empty(), "nothing written");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_exits_130_and_leaves_the_existing_file_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");

    // A first, complete sync gives a valid c1z to protect.
    let fast = demo_server(Duration::ZERO).await;
    std::fs::write(dir.path().join(".baton.yaml"), server_yaml(&fast)).unwrap();
    let out = cmd(dir.path()).output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    fast.shutdown().await;
    let before = std::fs::read(&file).unwrap();

    // A slow workspace: every request takes 300 ms.
    let slow = demo_server(Duration::from_millis(300)).await;
    std::fs::write(dir.path().join(".baton.yaml"), server_yaml(&slow)).unwrap();
    let child = cmd(dir.path())
        .args(["--log-format", "console"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().expect("child pid");
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while slow.stats().total() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "the sync never reached the simulated Torq");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -INT");
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output()).await.unwrap().unwrap();
    assert_eq!(code(&out), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&file).unwrap(), before, "the existing c1z is byte-for-byte unchanged");
    assert_eq!(files_in(dir.path()), vec![".baton.yaml", "sync.c1z"], "no work files left behind");
    slow.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------------
// Progress line

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_progress_line_when_stderr_is_not_a_terminal() {
    // Slow enough that a progress line would be drawn several times if it were enabled.
    let server = demo_server(Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".baton.yaml"), server_yaml(&server)).unwrap();
    for format in ["console", "json"] {
        let out = cmd(dir.path()).args(["--log-format", format]).output().await.unwrap();
        assert_eq!(code(&out), Some(0), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(!err.contains('\r') && !err.contains('\x1b'), "{format}: control characters in a pipe: {err:?}");
        assert!(!err.contains("records fetched"), "{format}: progress in a pipe: {err}");
        assert!(out.stdout.is_empty());
    }
    server.shutdown().await;
}

/// With `script` (util-linux) the binary runs on a pseudo-terminal: the line is drawn, then cleared.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_line_on_a_terminal_is_drawn_and_cleared() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let server = demo_server(Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".baton.yaml"), server_yaml(&server)).unwrap();
    let out = tokio::process::Command::new("script")
        .args(["-qefc", bin(), "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(code(&out), Some(0), "{screen}");
    let last_draw =
        screen.rfind("records fetched").unwrap_or_else(|| panic!("no progress line on a terminal: {screen:?}"));
    let cleared = screen[last_draw..].find("\r\x1b[2K").expect("the progress line is cleared");
    let summary = screen.find("Synced").expect("summary");
    assert!(last_draw + cleared < summary, "cleared before the summary: {screen:?}");
    server.shutdown().await;
}
