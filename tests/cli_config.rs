//! Everyday use through the built binary: the config file (`.baton.yaml`, `BATON_CONFIG_PATH`) and its
//! precedence (flags > env > file > defaults), shell completions, `--help`, the terminal progress line, and the
//! documented exit codes (0 success, 1 sync failure, 2 usage/configuration error, 130 interrupted).
//!
//! Every run gets a clean environment and its own working directory, so a developer's own `.baton.yaml` or
//! `BATON_*` variables never leak in.
//!
//! Also the first hour of a new user (issue 16): `demo` writes its own file and changes a little per run, parser
//! errors name the fix, one format per stream in JSON mode, honest interrupts, the Go connector's flags.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use baton_torq::sim::{SimConfig, SimServer, Workspace};
use common::harness::{bin, code, command_in, listing, spawn_console, stderr};

const SECRET: &str = "sim-client-secret";

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

/// Writes a config file as its owner alone may read it (chmod 600): one that holds a secret must be.
fn write_private(path: &Path, text: impl AsRef<[u8]>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

async fn demo_server(latency: Duration) -> SimServer {
    SimServer::start(Workspace::demo(), SimConfig { latency, ..SimConfig::default() }).await.unwrap()
}

/// Asserts one error line on stderr and returns its text: the console line, or a JSON record's `error`.
fn assert_one_line(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "exactly one line on stderr:\n{err}");
    // Console mode prints "error: ..."; in a pipe the default log format is JSON: one ERROR record.
    if err.starts_with("error: ") {
        return err;
    }
    let record: serde_json::Value = serde_json::from_str(err.trim_end()).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(record["level"], "ERROR", "{err}");
    record["error"].as_str().unwrap_or_else(|| panic!("no error text: {err}")).to_string()
}

// Config file

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baton_yaml_in_the_working_directory_supplies_every_setting() {
    let server = demo_server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("{}file: from-file.c1z\nlog-format: json\nverbose: true\n", server_yaml(&server));
    write_private(&dir.path().join(".baton.yaml"), yaml).unwrap();

    let out = command_in(dir.path()).output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(dir.path().join("from-file.c1z").is_file(), "file from the config file: {:?}", listing(dir.path()));
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
async fn a_mistyped_flag_is_reported_in_the_config_files_log_format() {
    // Not a terminal, so the format would be JSON without the file's `console`.
    let dir = tempfile::tempdir().unwrap();
    write_private(&dir.path().join(".baton.yaml"), "log-format: console\n").unwrap();
    let out = command_in(dir.path()).arg("--bogus").output().await.unwrap();
    assert_eq!(code(&out), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with("error: ") && err.contains("--bogus") && err.lines().count() == 1, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_beat_env_and_env_beats_the_file() {
    let server = demo_server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    // The file's secret is wrong: the environment's (right) one must win.
    let yaml = server_yaml(&server).replace(SECRET, "wrong-secret") + "file: file.c1z\nlog-format: json\n";
    write_private(&dir.path().join(".baton.yaml"), yaml).unwrap();

    // file only (wrong secret) -> 1, nothing written
    let out = command_in(dir.path()).output().await.unwrap();
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    assert!(!stderr(&out).contains("wrong-secret"), "{}", stderr(&out));

    // env over file
    let out = command_in(dir.path())
        .env("BATON_TORQ_CLIENT_SECRET", SECRET)
        .env("BATON_FILE", "env.c1z")
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(listing(dir.path()), vec![".baton.yaml", "env.c1z"]);

    // flag over env
    let out = command_in(dir.path())
        .env("BATON_TORQ_CLIENT_SECRET", "also-wrong")
        .env("BATON_FILE", "env.c1z")
        .args(["--torq-client-secret", SECRET, "-f", "flag.c1z"])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(listing(dir.path()), vec![".baton.yaml", "env.c1z", "flag.c1z"]);

    // an empty variable counts as unset (as in viper): the file's value applies
    let out = command_in(dir.path())
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
    write_private(&conf, server_yaml(&server) + "file: chosen.c1z\n").unwrap();
    // A broken default file is not read when BATON_CONFIG_PATH is set.
    write_private(&dir.path().join(".baton.yaml"), "not-a-flag: 1\n").unwrap();

    let out = command_in(dir.path()).env("BATON_CONFIG_PATH", &conf).output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(dir.path().join("chosen.c1z").is_file(), "{:?}", listing(dir.path()));
    server.shutdown().await;
}

/// A config file far too large to be one (here 1 TiB, sparse) is refused by its size, not read: reserving room
/// for it aborted the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_config_file_is_refused_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let conf = std::fs::File::create(dir.path().join(".baton.yaml")).unwrap();
    conf.set_len(1 << 40).unwrap();
    drop(conf);
    let out = command_in(dir.path()).output().await.unwrap();
    assert_eq!(code(&out), Some(2), "{}", stderr(&out));
    assert!(assert_one_line(&out).contains("it is larger than 1024 KiB"), "{}", stderr(&out));
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
        write_private(&path, text).unwrap();
        let out = command_in(dir.path()).env("BATON_CONFIG_PATH", &path).output().await.unwrap();
        assert_eq!(code(&out), Some(2), "{name}: {}", stderr(&out));
        let err = assert_one_line(&out);
        assert!(err.contains(expected), "{name}: expected {expected:?} in: {err}");
        assert!(!err.contains("hunter2-secret"), "{name}: secret leaked: {err}");
    }
    let out = command_in(dir.path()).env("BATON_CONFIG_PATH", dir.path().join("conf.json")).output().await.unwrap();
    assert_eq!(code(&out), Some(2));
    assert!(assert_one_line(&out).contains(".yaml or .yml"), "{}", stderr(&out));
    let out = command_in(dir.path()).env("BATON_CONFIG_PATH", dir.path().join("missing.yaml")).output().await.unwrap();
    assert_eq!(code(&out), Some(2));
    assert!(assert_one_line(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(!listing(dir.path()).iter().any(|f| f.ends_with(".c1z")), "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_default_config_file_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    let out = command_in(dir.path()).arg("capabilities").output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
}

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
        let out = command_in(dir.path()).args(["completion", shell]).output().await.unwrap();
        assert_eq!(code(&out), Some(0), "{shell}: {}", stderr(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker) && script.contains("baton-torq"), "{shell}");
        assert!(script.contains("torq-client-id"), "{shell} completes the flags");
    }
    let out = command_in(dir.path()).args(["completion", "tcsh"]).output().await.unwrap();
    assert_eq!(code(&out), Some(2));
    assert_one_line(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_has_examples_config_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = command_in(dir.path()).arg("--help").output().await.unwrap();
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
        let out = command_in(dir.path()).args(*args).envs(env.iter().copied()).output().await.unwrap();
        assert_eq!(code(&out), Some(2), "{args:?} {env:?}: {}", stderr(&out));
        let err = assert_one_line(&out);
        assert!(err.contains(expected), "{args:?}: expected {expected:?} in {err}");
    }
    assert!(listing(dir.path()).is_empty(), "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_failures_exit_1() {
    let server = demo_server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    // Rejected credentials: the simulated token endpoint answers 401.
    let out = command_in(dir.path())
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
    let out = command_in(dir.path())
        .args(["--torq-client-id", "id", "--torq-client-secret", "secret", "--log-format", "console"])
        .args(["--torq-api-url", &format!("http://127.0.0.1:{port}/public/v1alpha")])
        .args(["--torq-auth-url", &format!("http://127.0.0.1:{port}/v1/auth/token")])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).lines().last().unwrap_or("").starts_with("error: "), "{}", stderr(&out));
    assert!(listing(dir.path()).is_empty(), "nothing written");
}

/// A container's user often may not write the bind-mounted output folder; the error must say how to fix that.
/// Root ignores file modes, so when the tests run as root the binary really runs as uid/gid 65534 (nobody) in a
/// root-owned 0755 folder; as any other user the folder is made read-only (0555). Either way the open fails with
/// a real EACCES.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_folder_this_user_cannot_write_says_to_use_user_or_make_it_writable() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mode = |path: &Path, mode: u32| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let mut c = command_in(&out_dir);
    if std::fs::metadata(&out_dir).unwrap().uid() == 0 {
        mode(dir.path(), 0o755); // tempdir() is 0700: let nobody reach the folder, which it may read but not write
        mode(&out_dir, 0o755);
        c.uid(65534).gid(65534);
    } else {
        mode(&out_dir, 0o555);
    }
    // The image's default run: sync.c1z relative to the working directory. The output is locked before Torq is
    // called, so no server is needed (nothing listens at this URL).
    let out = c
        .args(["--torq-client-id", "id", "--torq-client-secret", "secret", "--log-format", "console"])
        .args([
            "--torq-api-url",
            "http://127.0.0.1:9/public/v1alpha",
            "--torq-auth-url",
            "http://127.0.0.1:9/v1/auth/token",
        ])
        .output()
        .await;
    mode(&out_dir, 0o755);
    let Some(out) = common::harness::ran_as_other_user(out) else {
        return;
    };
    assert_eq!(code(&out), Some(2), "{}", stderr(&out));
    let err = assert_one_line(&out);
    assert!(err.contains(r#"in a container, run it with --user "$(id -u):$(id -g)""#), "{err}");
    assert!(err.contains("make the folder writable"), "{err}");
    assert!(err.contains(&format!("output folder {}", out_dir.display())), "names the folder: {err}");
    assert!(std::fs::read_dir(&out_dir).unwrap().next().is_none(), "nothing written");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_exits_130_and_leaves_the_existing_file_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");

    // A first, complete sync gives a valid c1z to protect.
    let fast = demo_server(Duration::ZERO).await;
    write_private(&dir.path().join(".baton.yaml"), server_yaml(&fast)).unwrap();
    let out = command_in(dir.path()).output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    fast.shutdown().await;
    let before = std::fs::read(&file).unwrap();

    // A slow workspace: every request takes 300 ms.
    let slow = demo_server(Duration::from_millis(300)).await;
    write_private(&dir.path().join(".baton.yaml"), server_yaml(&slow)).unwrap();
    let child = spawn_console(&mut command_in(dir.path()));
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
    assert_eq!(listing(dir.path()), vec![".baton.yaml", "sync.c1z"], "no work files left behind");
    slow.shutdown().await;
}

// Progress line

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_progress_line_when_stderr_is_not_a_terminal() {
    // Slow enough that a progress line would be drawn several times if it were enabled.
    let server = demo_server(Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().unwrap();
    write_private(&dir.path().join(".baton.yaml"), server_yaml(&server)).unwrap();
    for format in ["console", "json"] {
        let out = command_in(dir.path()).args(["--log-format", format]).output().await.unwrap();
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
    write_private(&dir.path().join(".baton.yaml"), server_yaml(&server)).unwrap();
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

// demo: its own file, a little change per run

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_writes_demo_c1z_and_never_the_configured_sync_file() {
    let dir = tempfile::tempdir().unwrap();
    // A real setup: the config file and the environment both name the real sync file.
    write_private(&dir.path().join(".baton.yaml"), "file: real.c1z\n").unwrap();
    let out = command_in(dir.path()).env("BATON_FILE", "also-real.c1z").arg("demo").output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(listing(dir.path()), vec![".baton.yaml", "demo.c1z"], "only demo.c1z is written");
    // Without any configuration, not sync.c1z either.
    std::fs::remove_file(dir.path().join(".baton.yaml")).unwrap();
    std::fs::remove_file(dir.path().join("demo.c1z")).unwrap();
    let out = command_in(dir.path()).arg("demo").output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(listing(dir.path()), vec!["demo.c1z"]);
    // -f typed on the command line is the user's explicit choice, before or after the command.
    for args in [&["demo", "-f", "mine.c1z"][..], &["--file", "mine2.c1z", "demo"][..]] {
        let out = command_in(dir.path()).args(args).output().await.unwrap();
        assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    }
    assert_eq!(listing(dir.path()), vec!["demo.c1z", "mine.c1z", "mine2.c1z"]);
    // --help says so.
    let out = command_in(dir.path()).args(["demo", "--help"]).output().await.unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(help.contains("demo.c1z") && help.contains("BATON_FILE"), "{help}");
    let out = command_in(dir.path()).arg("--help").output().await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("demo.c1z"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_works_on_a_machine_whose_traffic_goes_through_a_proxy() {
    // A proxy (here: a port nobody listens on) cannot reach this machine's loopback, so the demo's simulated Torq
    // is reached directly, whatever the proxy variables say.
    let dir = tempfile::tempdir().unwrap();
    let proxy = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    let mut c = command_in(dir.path());
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        c.env(var, &proxy);
    }
    let out = c.arg("demo").output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(listing(dir.path()), vec!["demo.c1z"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_demo_runs_differ_in_one_users_last_login() {
    use common::c1z_reader::C1zReader;
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = command_in(dir.path()).arg("demo").output().await.unwrap();
        assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    }
    let reader = C1zReader::open(&dir.path().join("demo.c1z"));
    let runs = reader.sync_runs();
    assert_eq!(runs.len(), 2, "the second demo run keeps the first as its previous sync");
    let users = |sync_id: &str| -> std::collections::BTreeMap<String, Vec<u8>> {
        reader
            .resources(sync_id)
            .into_iter()
            .filter(|r| r.resource_type_id == "user")
            .map(|r| (r.external_id.clone(), prost::Message::encode_to_vec(&r.data)))
            .collect()
    };
    let (first, second) = (users(&runs[0].sync_id), users(&runs[1].sync_id));
    assert_eq!(first.keys().collect::<Vec<_>>(), second.keys().collect::<Vec<_>>(), "the same users");
    let changed: Vec<&String> = first.keys().filter(|id| first[*id] != second[*id]).collect();
    assert_eq!(changed.len(), 1, "exactly one user changed between two demo runs: {changed:?}");
}

// Parser errors that name the fix

/// Runs with console logs; asserts exit 2 and one `error: ` line; returns it.
async fn usage_error(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out =
        command_in(dir.path()).args(args).arg("--log-format=console").envs(env.iter().copied()).output().await.unwrap();
    assert_eq!(code(&out), Some(2), "{args:?}: {}", stderr(&out));
    let err = assert_one_line(&out);
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parser_errors_name_the_fix() {
    let cases: &[(&[&str], &[&str])] = &[
        // a missing argument is named, with its values and an example
        (&["completion"], &["'completion' needs", "<SHELL>", "bash, elvish, fish, powershell, zsh", "completion bash"]),
        // enums list their values
        (&["--torq-region", "apac"], &["'apac'", "--torq-region (BATON_TORQ_REGION)", "us, eu"]),
        (&["--log-level", "loud"], &["'loud'", "--log-level", "trace, debug, info, warn, error"]),
        (&["--log-format", "xml"], &["'xml'", "json, console"]),
        (&["completion", "tcsh"], &["'tcsh'", "the shell", "bash"]),
        (&["--torq-region="], &["--torq-region", "needs a value", "us, eu"]),
        // did you mean
        (&["--region", "eu"], &["'--region'", "did you mean '--torq-region'?"]),
        (&["--timeout=5"], &["'--timeout'", "'--http-timeout-seconds' or 'health-check --timeout'"]),
        (&["--torq_client_id", "x"], &["'--torq-client-id'"]),
        (&["--verbos"], &["'--verbos'", "did you mean '--verbose'?"]),
        (&["dmeo"], &["unknown command 'dmeo'", "did you mean 'demo'?"]),
        (&["capabilites"], &["did you mean 'capabilities'?"]),
        // a command that does not exist is called a command, not a stray value
        (&["sync"], &["no 'sync' command", "without a command"]),
        (
            &["frobnicate"],
            &["unknown command 'frobnicate'", "capabilities, demo, review, completion, health-check, help"],
        ),
        // flags of the Go connector that do not exist here say so
        (&["--otel-collector-endpoint", "http://x"], &["Go connector", "OpenTelemetry"]),
        (&["--sync-resources=a"], &["Go connector", "partial syncs"]),
        // commands of the Go connector's newer SDK are named as such (README, "Flags of the Go connector")
        (&["config"], &["a command of the Go connector that baton-torq does not have"]),
    ];
    for (args, needles) in cases {
        let err = usage_error(args, &[]).await;
        for needle in *needles {
            assert!(err.contains(needle), "{args:?}: expected {needle:?} in: {err}");
        }
        assert!(!err.contains("not shown in case it is a secret"), "{args:?}: not a stray value: {err}");
    }
    // A value from the environment names the variable.
    let err = usage_error(&[], &[("BATON_TORQ_REGION", "mars")]).await;
    assert!(err.contains("'mars'") && err.contains("BATON_TORQ_REGION") && err.contains("us, eu"), "{err}");
    // A real stray value is still called one (and not shown).
    let err = usage_error(&["--torq-client-id", "id", "Zx9-stray-Value"], &[]).await;
    assert!(err.contains("not shown in case it is a secret") && !err.contains("Zx9"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_missing_credential_is_named_in_one_line() {
    let err = usage_error(&[], &[]).await;
    for needle in ["--torq-client-id", "--torq-client-secret", "BATON_TORQ_CLIENT_ID", "BATON_TORQ_CLIENT_SECRET"] {
        assert!(err.contains(needle), "{needle} in {err}");
    }
    let err = usage_error(&["--torq-client-secret", "s"], &[]).await;
    assert!(err.contains("--torq-client-id") && !err.contains("--torq-client-secret"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enum_values_are_case_insensitive() {
    let server = demo_server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    write_private(&dir.path().join(".baton.yaml"), server_yaml(&server)).unwrap();
    let out = command_in(dir.path())
        .args(["--torq-region", "EU", "--log-level", "WARN", "--log-format", "Console"])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("Synced"), "console summary: {}", stderr(&out));
    let out = command_in(dir.path()).env("BATON_TORQ_REGION", "Us").output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let out = command_in(dir.path()).args(["completion", "BASH"]).output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    server.shutdown().await;
}

// The Go connector's flags

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_connector_flags_mean_the_same_here() {
    let dir = tempfile::tempdir().unwrap();
    // -v / --version as cobra prints it (and clap's -V).
    for flag in ["-v", "--version", "-V"] {
        let out = command_in(dir.path()).arg(flag).output().await.unwrap();
        assert_eq!(code(&out), Some(0), "{flag}");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(text.trim(), format!("baton-torq version v{}", env!("CARGO_PKG_VERSION")), "{flag}");
    }
    // `help` as a command, `-h`.
    for args in [&["help"][..], &["-h"][..], &["help", "completion"][..]] {
        let out = command_in(dir.path()).args(args).output().await.unwrap();
        assert_eq!(code(&out), Some(0), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage:"), "{args:?}");
    }
    // The Go connector's own flags and base flags, with the same environment variables.
    let help = String::from_utf8(command_in(dir.path()).arg("--help").output().await.unwrap().stdout).unwrap();
    for needle in [
        "--torq-client-id",
        "--torq-client-secret",
        "-f, --file",
        "--log-level",
        "--log-format",
        "--client-id",
        "--client-secret",
        "-v, --version",
        "BATON_TORQ_CLIENT_ID",
        "BATON_FILE",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
}

// One format per stream

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stderr(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON record ({e}): {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_json_mode_every_error_is_one_json_record() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let unreachable = [
        "--torq-client-id".to_string(),
        "id".into(),
        "--torq-client-secret".into(),
        "s".into(),
        format!("--torq-api-url=http://127.0.0.1:{port}/p"),
        format!("--torq-auth-url=http://127.0.0.1:{port}/t"),
    ];
    type Case<'a> = (&'a str, Vec<String>, Vec<(&'a str, String)>, i64, &'a str);
    let cases: Vec<Case> = vec![
        ("parse error", vec!["--region".into(), "eu".into()], vec![], 2, "--torq-region"),
        ("missing argument", vec!["completion".into()], vec![], 2, "<SHELL>"),
        ("bad enum from env", vec![], vec![("BATON_TORQ_REGION", "mars".into())], 2, "us, eu"),
        (
            "config file",
            vec![],
            vec![("BATON_CONFIG_PATH", dir.path().join("c.json").display().to_string())],
            2,
            ".yaml or .yml",
        ),
        ("missing credentials", vec![], vec![], 2, "BATON_TORQ_CLIENT_SECRET"),
        ("runtime failure", unreachable.to_vec(), vec![], 1, "Torq did not answer"),
    ];
    for (name, args, env, exit, needle) in cases {
        for how in ["flag", "env"] {
            let mut c = command_in(dir.path());
            c.args(&args).envs(env.iter().map(|(k, v)| (*k, v.as_str())));
            match how {
                "flag" => c.arg("--log-format=json"),
                _ => c.env("BATON_LOG_FORMAT", "json"),
            };
            let out = c.output().await.unwrap();
            assert_eq!(code(&out).map(i64::from), Some(exit), "{name} ({how}): {}", stderr(&out));
            let records = json_lines(&out);
            let errors: Vec<_> = records.iter().filter(|r| r["level"] == "ERROR").collect();
            assert_eq!(errors.len(), 1, "{name} ({how}): one error record: {}", stderr(&out));
            let error = errors[0];
            assert_eq!(error["message"], "baton-torq failed", "{name}");
            assert_eq!(error["exit_code"], exit, "{name}");
            let text = error["error"].as_str().unwrap_or_default();
            assert!(text.contains(needle), "{name} ({how}): {needle:?} in {text}");
            assert!(!text.starts_with("error:"), "{name}: no console prefix inside JSON: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_is_a_result_shown_at_every_log_level_unless_quiet() {
    let server = demo_server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    write_private(&dir.path().join(".baton.yaml"), server_yaml(&server)).unwrap();
    for level in ["info", "warn", "error"] {
        let out = command_in(dir.path()).args(["--log-format", "json", "--log-level", level]).output().await.unwrap();
        assert_eq!(code(&out), Some(0), "{}", stderr(&out));
        let records = json_lines(&out);
        let summary = records.iter().find(|r| r["message"] == "sync complete");
        let summary = summary.unwrap_or_else(|| panic!("JSON summary at --log-level {level}: {}", stderr(&out)));
        // Fields are JSON values, not strings holding JSON.
        let by_status = summary["resources_by_kind"]["user"].as_object().expect("users by status is an object");
        let total: u64 = by_status.values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(Some(total), summary["resources"]["user"].as_u64());
        assert!(summary["api_requests"].is_u64() && summary["duration_seconds"].is_f64(), "{summary}");
        assert_eq!(summary["level"], "INFO");
        assert!(summary["timestamp"].is_string());

        let out =
            command_in(dir.path()).args(["--log-format", "console", "--log-level", level]).output().await.unwrap();
        assert!(stderr(&out).contains("Synced"), "console summary at --log-level {level}: {}", stderr(&out));
    }
    for format in ["json", "console"] {
        for quiet in [&["--quiet"][..], &["-q"][..]] {
            let out = command_in(dir.path()).args(["--log-format", format]).args(quiet).output().await.unwrap();
            assert_eq!(code(&out), Some(0), "{}", stderr(&out));
            let err = stderr(&out);
            assert!(!err.contains("Synced") && !err.contains("sync complete"), "{format} {quiet:?}: {err}");
        }
        let out =
            command_in(dir.path()).args(["--log-format", format]).env("BATON_QUIET", "true").output().await.unwrap();
        assert!(!stderr(&out).contains("Synced") && !stderr(&out).contains("sync complete"));
    }
    server.shutdown().await;
}

// Honest interrupts

/// Sends `signal` (e.g. "-INT") to `pid`; false when the process is already gone.
fn kill(signal: &str, pid: u32) -> bool {
    std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_stop_that_wins_the_commit_gate_keeps_the_old_file_and_a_later_one_is_told_it_lost() {
    use baton_torq::c1z::{C1zError, C1zWriter, CommitGate, WriterOptions};
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("sync.c1z");
    C1zWriter::create(&target, WriterOptions::default()).unwrap().finish().unwrap();
    let before = std::fs::read(&target).unwrap();

    let gate = CommitGate::new();
    let writer = C1zWriter::create(&target, WriterOptions { gate: Some(gate.clone()), ..Default::default() }).unwrap();
    assert!(gate.abandon(), "nothing was being replaced yet");
    assert!(matches!(writer.finish(), Err(C1zError::Interrupted)));
    assert_eq!(std::fs::read(&target).unwrap(), before, "the old file is byte-for-byte unchanged");
    assert_eq!(listing(dir.path()), vec!["sync.c1z"], "no work or temp file left");

    let gate = CommitGate::new();
    let writer = C1zWriter::create(&target, WriterOptions { gate: Some(gate.clone()), ..Default::default() }).unwrap();
    writer.finish().unwrap();
    assert!(!gate.abandon(), "a stop after the file was replaced cannot claim it was left alone");
    assert_ne!(std::fs::read(&target).unwrap(), before);
}

/// Interrupts a sync of a large workspace at many moments around its end (fetching, building indexes,
/// compressing, renaming, exiting). Whatever the moment, what the run says is what happened to the file: exit 130
/// with the old file untouched, or exit 0 with the new file and no claim that the old one was kept.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_interrupt_never_claims_what_did_not_happen() {
    use baton_torq::sim::GeneratedSpec;
    let spec = GeneratedSpec { users: 40_000, roles: 20, sso_percent: 30, seed: 16, ..GeneratedSpec::default() };
    let server = SimServer::start(Workspace::generated(spec), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    write_private(&dir.path().join(".baton.yaml"), server_yaml(&server)).unwrap();
    // Two syncs: the second, like every try below, extends an existing file; its duration sets the moments.
    let mut full = Duration::ZERO;
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let out = command_in(dir.path()).args(["--log-format", "console"]).output().await.unwrap();
        assert_eq!(code(&out), Some(0), "{}", stderr(&out));
        full = started.elapsed();
    }

    let (mut kept, mut replaced) = (0, 0);
    for i in 0..12u32 {
        let before = std::fs::read(&file).unwrap();
        let child = spawn_console(&mut command_in(dir.path()));
        let pid = child.id().expect("pid");
        // From 45 % to 144 % of a full run: fetching, building indexes, compressing, renaming, after the end.
        tokio::time::sleep(full * (45 + 9 * i) / 100).await;
        let signal = if i % 2 == 0 { "-INT" } else { "-TERM" };
        let sent = kill(signal, pid);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.unwrap().unwrap();
        let err = stderr(&out);
        let after = std::fs::read(&file).unwrap();
        let claims_kept = err.contains("leaving the sync file as it was") || err.contains("left as it was");
        match code(&out) {
            Some(130) => {
                assert!(claims_kept, "try {i}: exit 130 says the file was kept: {err}");
                assert_eq!(after, before, "try {i}: exit 130 but the file changed: {err}");
                kept += 1;
            }
            Some(0) => {
                assert!(!claims_kept, "try {i} ({signal} sent: {sent}): the file was replaced, yet: {err}");
                assert_ne!(after, before, "try {i}: exit 0 writes a new sync");
                replaced += 1;
            }
            other => panic!("try {i}: exit {other:?}: {err}"),
        }
        assert_eq!(listing(dir.path()), vec![".baton.yaml", "sync.c1z"], "try {i}: no work files left");
    }
    eprintln!("late interrupts: {kept} kept the old file, {replaced} finished the new one (sync took {full:?})");
    server.shutdown().await;
}

/// Before the connector listens for signals (here: waiting for another run's lock), SIGTERM still exits 130,
/// not the shell's 143 of an unhandled signal.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_before_the_sync_starts_exits_130() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("sync.c1z");
    let _held = baton_torq::c1z::lock::OutputLock::acquire(&target, false).unwrap();
    let mut child = command_in(dir.path())
        .args(["--torq-client-id", "id", "--torq-client-secret", "s", "--wait-for-lock", "--log-format", "console"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let waiting = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("waiting for it") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(waiting, Ok(true), "the run waits for the lock");
    assert!(kill("-TERM", child.id().expect("pid")));
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(!target.exists(), "nothing written");
}

// Issue 28: honest first-run messages

/// A config file that holds a client secret and that group or others can read is refused like an ssh private key
/// (exit 2, "chmod 600 FILE"), before anything is sent; the same file at 0600, or a file without a secret at
/// 0644, is used.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_a_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = demo_server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".baton.yaml");
    std::fs::write(&path, server_yaml(&server)).unwrap();
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let before = server.stats().total();
        let out = command_in(dir.path()).args(["--log-format", "console"]).output().await.unwrap();
        assert_eq!(code(&out), Some(2), "{mode:o}: {}", stderr(&out));
        let err = assert_one_line(&out);
        assert!(err.contains("holds torq-client-secret") && err.contains("chmod 600 .baton.yaml"), "{err}");
        assert!(!err.contains(SECRET), "{err}");
        assert_eq!(server.stats().total(), before, "{mode:o}: nothing was sent");
    }
    assert!(listing(dir.path()) == vec![".baton.yaml"], "nothing written: {:?}", listing(dir.path()));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = command_in(dir.path()).output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    // No secret in the file: its mode does not matter (the secret comes from the environment).
    std::fs::write(&path, format!("torq-client-id: {}\nfile: other.c1z\n", SimConfig::default().client_id)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = command_in(dir.path())
        .env("BATON_TORQ_CLIENT_SECRET", SECRET)
        .env("BATON_TORQ_API_URL", server.api_url())
        .env("BATON_TORQ_AUTH_URL", server.auth_url())
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(dir.path().join("other.c1z").is_file());
    server.shutdown().await;
}

/// The config file's notice about keys that say where connections go is one line per run, however many such
/// keys it sets; a value the file got wrong names the file; an unknown key gets a did-you-mean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_notices_are_one_line_and_errors_name_the_file_and_the_key_meant() {
    let server = demo_server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".baton.yaml");
    write_private(&path, server_yaml(&server)).unwrap();
    let out = command_in(dir.path()).args(["--log-format", "console", "--quiet"]).output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    let notices: Vec<&str> = err.lines().filter(|l| l.contains("config file sets where connections go")).collect();
    assert_eq!(notices.len(), 1, "one notice:\n{err}");
    assert!(notices[0].contains("torq-api-url,torq-auth-url"), "{}", notices[0]);

    std::fs::write(&path, "log-level: verbose\n").unwrap();
    let out = command_in(dir.path()).args(["--log-format", "console"]).output().await.unwrap();
    assert_eq!(code(&out), Some(2), "{}", stderr(&out));
    let err = assert_one_line(&out);
    assert!(err.contains("--log-level (BATON_LOG_LEVEL)"), "{err}");
    assert!(err.contains("the value is from config file .baton.yaml (key log-level)"), "{err}");
    // Typed on the command line, the value is not the file's.
    let out = command_in(dir.path()).args(["--log-format", "console", "--log-level", "loud"]).output().await.unwrap();
    let err = assert_one_line(&out);
    assert!(err.contains("'loud'") && !err.contains("config file"), "{err}");

    std::fs::write(&path, "torq-client-idd: x\n").unwrap();
    let out = command_in(dir.path()).args(["--log-format", "console"]).output().await.unwrap();
    let err = assert_one_line(&out);
    assert!(err.contains("unknown key \"torq-client-idd\" (did you mean \"torq-client-id\"?)"), "{err}");
    std::fs::write(&path, "torq_region: eu\n").unwrap();
    let out = command_in(dir.path()).args(["--log-format", "console"]).output().await.unwrap();
    let err = assert_one_line(&out);
    assert!(err.contains("(did you mean \"torq-region\"?)"), "{err}");
    server.shutdown().await;
}

/// `--verbose` opens with the Torq URLs the run talks to (never the secret), and leaves the c1z's per-index lines
/// to `trace`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_starts_with_the_torq_urls_and_has_no_per_index_lines() {
    let server = demo_server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let out = common::harness::command(&server, &SimConfig::default(), &dir.path().join("sync.c1z"))
        .args(["--verbose", "--log-format", "console", "--quiet"])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    let first = err.lines().next().unwrap_or_default();
    assert!(first.contains("Torq endpoints"), "the first line: {first}\n{err}");
    assert!(first.contains(&server.api_url()) && first.contains(&server.auth_url()), "{first}");
    assert!(!err.contains(SECRET), "{err}");
    assert!(!err.contains("c1z index built"), "per-index lines are trace:\n{err}");
    server.shutdown().await;
}

/// `help demo` shows the demo's own default file, and the demo leaves no lock file behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_demo_shows_its_default_and_the_demo_leaves_no_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = command_in(dir.path()).args(["help", "demo"]).output().await.unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!help.contains("[default: sync.c1z]"), "{help}");
    assert!(help.contains("demo.c1z for `demo`"), "{help}");
    let out = command_in(dir.path()).arg("demo").output().await.unwrap();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let all: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert_eq!(all, vec!["demo.c1z"], "no lock file is left");
}
