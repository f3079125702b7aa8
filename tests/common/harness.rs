//! Running the built binary against the simulated Torq server, and comparing what it wrote. The one place that
//! names the binary, loads the reference workspace and reads a run's stderr, so every test file does it alike.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use baton_torq::sim::{SimConfig, SimServer, SimUser, Workspace};

use super::c1z_reader::C1zReader;
use super::fake_c1::{FakeC1, TEST_CLIENT_ID};

/// The reference workspace as JSON: the users and roles the Go connector synced into
/// `tests/fixtures/reference-sync.c1z` (its output is in `tests/fixtures/reference/`).
pub const REFERENCE_JSON: &str = include_str!("../fixtures/workspace.json");

/// The reference workspace, ready to serve.
pub fn reference_workspace() -> Workspace {
    Workspace::from_json(REFERENCE_JSON).expect("tests/fixtures/workspace.json is a valid workspace")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_baton-torq")
}

/// The binary with an empty environment (PATH only), so a developer's own `BATON_*` variables never leak in.
pub fn clean_std_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(bin());
    cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd
}

/// [`clean_std_command`] for async tests.
pub fn clean_command() -> tokio::process::Command {
    clean_std_command().into()
}

/// [`clean_command`] running in `dir`, so a `.baton.yaml` elsewhere is not read either.
pub fn command_in(dir: &Path) -> tokio::process::Command {
    let mut cmd = clean_command();
    cmd.current_dir(dir);
    cmd
}

/// The binary with a clean environment and the simulator's URLs; credentials from `cfg`.
pub fn command(server: &SimServer, cfg: &SimConfig, file: &Path) -> tokio::process::Command {
    command_with(&cfg.client_id, &cfg.client_secret, &server.api_url(), &server.auth_url(), file)
}

/// The binary with a clean environment, these Torq credentials and URLs, writing `file`.
pub fn command_with(id: &str, secret: &str, api_url: &str, auth_url: &str, file: &Path) -> tokio::process::Command {
    let mut cmd = clean_command();
    cmd.args(["--torq-client-id", id, "--torq-client-secret", secret])
        .args(["--torq-api-url", api_url, "--torq-auth-url", auth_url])
        .arg("-f")
        .arg(file);
    cmd
}

/// The host id service-mode tests run the daemon under.
pub const SERVICE_HOST_ID: &str = "test-host-1";

/// The binary in service mode with a clean environment: ConductorOne is the fake `c1`, reached as `client_id`
/// with `secret` and trusted through the certificate file `ca` when given; Torq is at `torq_api`/`torq_auth`
/// with the simulator's default credentials; temporary sync files go under `temp_dir`. No stdin; killed when
/// dropped.
pub fn service_command(
    torq_api: &str,
    torq_auth: &str,
    client_id: &str,
    secret: &str,
    c1: &FakeC1,
    ca: Option<&Path>,
    temp_dir: &Path,
) -> tokio::process::Command {
    let torq = SimConfig::default();
    let mut cmd = clean_command();
    cmd.env("BATON_TORQ_CLIENT_ID", &torq.client_id)
        .env("BATON_TORQ_CLIENT_SECRET", &torq.client_secret)
        .env("BATON_TORQ_API_URL", torq_api)
        .env("BATON_TORQ_AUTH_URL", torq_auth)
        .env("BATON_CLIENT_ID", client_id)
        .env("BATON_CLIENT_SECRET", secret)
        .env("BATON_C1_API_HOST", c1.api_host())
        .env("BATON_HOST_ID", SERVICE_HOST_ID)
        .env("BATON_C1Z_TEMP_DIR", temp_dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(ca) = ca {
        cmd.env("BATON_C1_CA_CERT_FILE", ca);
    }
    cmd
}

/// [`service_command`] for the usual daemon: the simulator `sim`, [`TEST_CLIENT_ID`] with `secret`, the fake's
/// certificate written into `dir` and trusted, temporary sync files under `temp_dir`.
pub fn daemon_command(
    sim: &SimServer,
    c1: &FakeC1,
    secret: &str,
    dir: &Path,
    temp_dir: &Path,
) -> tokio::process::Command {
    let ca = c1.write_ca(dir);
    service_command(&sim.api_url(), &sim.auth_url(), TEST_CLIENT_ID, secret, c1, Some(&ca), temp_dir)
}

/// Starts `cmd` with console logs and its output captured, for a run the test interrupts or watches.
pub fn spawn_console(cmd: &mut tokio::process::Command) -> tokio::process::Child {
    cmd.args(["--log-format", "console"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary starts")
}

/// Runs a sync with the default simulator credentials plus `extra` flags.
pub async fn run(server: &SimServer, file: &Path, extra: &[&str]) -> Output {
    command(server, &SimConfig::default(), file).args(extra).output().await.expect("binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

/// The output of a run started as another user, or `None` (saying so on stderr) when the binary cannot be
/// started as that user at all: the checkout may sit in a folder other users cannot enter (e.g. under
/// `mktemp -d`), and then the case cannot be shown here.
pub fn ran_as_other_user(out: std::io::Result<Output>) -> Option<Output> {
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("skipped: the test binary is not reachable by another user ({e})");
            None
        }
        other => Some(other.expect("run baton-torq as another user")),
    }
}

pub fn assert_success(o: &Output) {
    assert!(o.status.success(), "exit {:?}\nstderr:\n{}", o.status.code(), stderr(o));
}

/// Every object of the newest finished sync: `table/external_id` -> protobuf bytes. Two syncs of the same
/// workspace have equal content.
pub fn content(file: &Path) -> BTreeMap<String, Vec<u8>> {
    let reader = C1zReader::open(file);
    let sync_id = reader.default_sync_id();
    reader.check_integrity(&sync_id);
    let mut out = BTreeMap::new();
    for table in ["v1_resource_types", "v1_resources", "v1_entitlements", "v1_grants"] {
        let mut stmt =
            reader.conn.prepare(&format!("SELECT external_id, data FROM {table} WHERE sync_id = ?1")).unwrap();
        let rows = stmt.query_map([&sync_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))).unwrap();
        for row in rows {
            let (id, data) = row.unwrap();
            out.insert(format!("{table}/{id}"), data);
        }
    }
    out
}

/// File names in `dir`, sorted, without output lock files (`.NAME.lock`, left in place by design).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !(n.starts_with('.') && n.ends_with(".lock")))
        .collect();
    names.sort();
    names
}

/// A simulated Torq user with no timestamps.
pub fn sim_user(id: &str, email: &str, role: &str, status: &str, sso: bool) -> SimUser {
    SimUser {
        id: id.into(),
        email: email.into(),
        role_id: role.into(),
        status: status.into(),
        sso_provision: sso,
        created_time: None,
        last_login_time: None,
    }
}
