//! Secrets never leak (stdout, stderr at every log level, the c1z, the lock file, Debug output), output files are
//! private, and every bad input is refused up front with one clear line and exit code 2.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::Output;

use baton_torq::sim::{SimConfig, SimServer};
use clap::Parser;
use common::harness::{assert_success, command_in, reference_workspace, stderr};

const SECRET: &str = "S3cr3t-Canary-Value-9d2f7c";

fn canary_config() -> SimConfig {
    SimConfig { client_id: "canary-client".into(), client_secret: SECRET.into(), ..Default::default() }
}

/// The decompressed database inside a c1z, or the raw bytes of any other file.
fn readable_bytes(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    if raw.starts_with(b"C1ZF\0") {
        let mut out = Vec::new();
        zstd::stream::read::Decoder::new(&raw[5..]).unwrap().read_to_end(&mut out).unwrap();
        out
    } else {
        raw
    }
}

fn assert_no_secret(what: &str, out: &Output, dir: &Path, secrets: &[String]) {
    let mut places: Vec<(String, Vec<u8>)> =
        vec![("stdout".into(), out.stdout.clone()), ("stderr".into(), out.stderr.clone())];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && !path.ends_with(".baton.yaml") {
            places.push((path.display().to_string(), readable_bytes(&path)));
        }
    }
    for (place, bytes) in &places {
        let text = String::from_utf8_lossy(bytes);
        for secret in secrets {
            assert!(!text.contains(secret.as_str()), "{what}: a secret appears in {place}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_appears_anywhere_in_any_mode() {
    let server = SimServer::start(reference_workspace(), canary_config()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let api = server.api_url();
    let auth = server.auth_url();
    let creds = ["--torq-client-id", "canary-client", "--torq-client-secret", SECRET];
    let urls = ["--torq-api-url", api.as_str(), "--torq-auth-url", auth.as_str()];
    let mut runs: Vec<(&str, Output)> = Vec::new();

    for (name, extra) in [
        ("sync, trace, console", vec!["--log-level", "trace", "--log-format", "console"]),
        ("sync, verbose, json", vec!["--verbose", "--log-format", "json"]),
    ] {
        let out = command_in(d).args(creds).args(urls).args(&extra).output().await.unwrap();
        assert_success(&out);
        runs.push((name, out));
    }
    // The same secret from the environment and from a config file.
    let out = command_in(d)
        .env("BATON_TORQ_CLIENT_ID", "canary-client")
        .env("BATON_TORQ_CLIENT_SECRET", SECRET)
        .args(urls)
        .args(["--log-level", "trace"])
        .output()
        .await
        .unwrap();
    assert_success(&out);
    runs.push(("sync, env", out));
    std::fs::write(d.join(".baton.yaml"), format!("torq-client-id: canary-client\ntorq-client-secret: \"{SECRET}\"\n"))
        .unwrap();
    // A file that holds a secret must be private (chmod 600), or it is refused.
    std::fs::set_permissions(d.join(".baton.yaml"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = command_in(d).args(urls).args(["--verbose", "--log-level", "trace"]).output().await.unwrap();
    assert_success(&out);
    runs.push(("sync, config file", out));
    std::fs::write(d.join(".baton.yaml"), format!("torq-client-secret: [\"{SECRET}\"\nbroken")).unwrap();
    runs.push(("bad config file", command_in(d).args(urls).output().await.unwrap()));
    std::fs::remove_file(d.join(".baton.yaml")).unwrap();

    // Other commands and error paths, with the secret present.
    let with_env = |cmd: &mut tokio::process::Command| {
        cmd.env("BATON_TORQ_CLIENT_SECRET", SECRET);
    };
    for (name, args) in [
        ("demo", vec!["demo", "-f", "demo.c1z", "--log-level", "trace"]),
        ("capabilities", vec!["capabilities"]),
        ("help", vec!["--help"]),
        ("bad credentials", vec!["--torq-client-id", "someone-else", "--verbose"]),
        ("missing id", vec!["--verbose"]),
        ("bad region", vec!["--torq-client-id", "x", "--torq-region", "mars"]),
        ("unknown flag", vec!["--torq-client-id", "x", "--bogus"]),
        (
            "unreachable",
            vec![
                "--torq-client-id",
                "x",
                "--torq-api-url",
                "http://127.0.0.1:9/p",
                "--torq-auth-url",
                "http://127.0.0.1:9/t",
            ],
        ),
    ] {
        let mut cmd = command_in(d);
        with_env(&mut cmd);
        if name == "bad credentials" {
            cmd.args(urls);
        }
        runs.push((name, cmd.args(&args).output().await.unwrap()));
    }
    // A secret passed on the command line next to a usage error.
    runs.push((
        "usage error with secret flag",
        command_in(d).args(creds).arg("--http-timeout-seconds=0").output().await.unwrap(),
    ));

    let mut secrets = vec![SECRET.to_string()];
    secrets.extend(server.issued_tokens());
    assert!(secrets.len() >= 5, "tokens were issued: {}", secrets.len());
    for (name, out) in &runs {
        assert_no_secret(name, out, d, &secrets);
    }
    server.shutdown().await;
}

#[test]
fn debug_output_of_the_configuration_hides_the_secret() {
    let cli = baton_torq::cli::Cli::try_parse_from([
        "baton-torq",
        "--torq-client-id",
        "id",
        "--torq-client-secret",
        SECRET,
        "--torq-api-url",
        "http://127.0.0.1:1/x",
    ])
    .unwrap();
    assert!(!format!("{cli:?}").contains(SECRET));
    let settings = baton_torq::cli::torq_settings(&cli.torq).unwrap();
    assert!(!format!("{settings:?}").contains(SECRET));
    let client = baton_torq::torq::TorqClient::new(settings).unwrap();
    assert!(!format!("{client:?}").contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let server = SimServer::start(reference_workspace(), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    assert_success(&common::harness::run(&server, &file, &[]).await);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
    }
    server.shutdown().await;
}

/// Runs the binary with `args` (credentials included unless overridden) and asserts exit 2 and one line
/// containing `expect`.
async fn refused(args: &[&str], expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command_in(dir.path());
    for (flag, value) in [("--torq-client-id", "id"), ("--torq-client-secret", "secret")] {
        if !args.contains(&flag) {
            cmd.args([flag, value]);
        }
    }
    let out = cmd.args(["--log-format", "console"]).args(args).output().await.unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: exit 2\n{err}");
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line\n{err}");
    assert!(err.contains(expect), "{args:?}: mentions {expect:?}\n{err}");
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_one_clear_line() {
    refused(&["--torq-region", "mars"], "--torq-region").await;
    refused(&["--torq-api-url", "::not a url"], "--torq-api-url").await;
    refused(&["--torq-auth-url", "http://auth.torq.io/v1/auth/token"], "only allowed for loopback").await;
    refused(&["--torq-api-url", "https://user:pw@api.torq.io/public/v1alpha"], "user name or password").await;
    refused(&["--torq-client-id", ""], "BATON_TORQ_CLIENT_ID").await;
    refused(&["--torq-client-id", "   "], "BATON_TORQ_CLIENT_ID").await;
    refused(&["--torq-client-secret", ""], "BATON_TORQ_CLIENT_SECRET").await;
    refused(&["--http-timeout-seconds", "0"], "--http-timeout-seconds").await;
    refused(&["-f", "/"], "directory").await;
    refused(&["-f", "/no/such/dir/sync.c1z"], "does not exist").await;
    refused(&["-f", ""], "--file").await;
    refused(&["-f", "/proc/sync.c1z"], "writable").await;
    refused(&["--verbos"], "'--verbos'").await;
}

/// Values that end up where a flag was expected, or in a URL's query, are never echoed: they may be secrets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misplaced_secrets_are_not_echoed_in_errors() {
    const CANARY: &str = "CANARY-misplaced-7d1f";
    let key_in_query = format!("https://api.torq.io/public/v1alpha?api_key={CANARY}");
    let cases = [
        // A stray space after '=' leaves the secret as a bare word.
        (vec!["--torq-client-secret=", CANARY], "stray space"),
        (vec!["--torq-client-secret", "s", "--torq-api-url", &key_in_query], "?query"),
    ];
    for (args, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = command_in(dir.path()).args(["--torq-client-id", "id"]).args(&args).output().await.unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: exit 2\n{err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line\n{err}");
        assert!(err.contains(expect), "{args:?}: mentions {expect:?}\n{err}");
        assert!(!stderr(&out).contains(CANARY), "{args:?}: {}", stderr(&out));
    }
    // A bare word is only repeated when it looks like a command name (lowercase letters and dashes); a
    // lowercase secret with a digit is not, in either log format.
    const LOWER_CANARY: &str = "canary7d1f";
    for format in ["console", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let out =
            command_in(dir.path()).args(["--log-format", format, "--torq-client-id", "id", LOWER_CANARY]).output();
        let out = out.await.unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{format}: {err}");
        assert!(err.contains("not shown in case it is a secret") && !err.contains(LOWER_CANARY), "{format}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whitespace_pasted_around_credentials_is_trimmed_with_a_warning() {
    let server = SimServer::start(reference_workspace(), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let cfg = SimConfig::default();
    let out = command_in(dir.path())
        .arg("--torq-client-id")
        .arg(format!(" {} ", cfg.client_id))
        .arg("--torq-client-secret")
        .arg(format!("\t{}\n", cfg.client_secret))
        .args(["--torq-api-url", &server.api_url(), "--torq-auth-url", &server.auth_url(), "--log-format", "console"])
        .arg("-f")
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert_success(&out);
    let err = stderr(&out);
    assert!(err.contains("removed whitespace around the Torq client secret"), "{err}");
    assert!(err.contains("removed whitespace around the Torq client ID"), "{err}");
    server.shutdown().await;
}
