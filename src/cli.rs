//! Command line: flags, their `BATON_*` environment variables, and up-front validation.
//!
//! Every flag can also come from `BATON_<FLAG_IN_UPPER_SNAKE_CASE>`, and its help text names that variable
//! (values are never shown in `--help`). Validation turns the raw flags into checked settings or one clear
//! line saying what is wrong and how to fix it. Nothing here does I/O beyond looking at the output path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use crate::torq::TorqSettings;

const EXAMPLES: &str = "\
Examples:
  # sync into ./sync.c1z, the secret from the environment (a secret given as a
  # flag is visible to every user of the machine in `ps`)
  export BATON_TORQ_CLIENT_ID=ID BATON_TORQ_CLIENT_SECRET=SECRET
  baton-torq
  # EU region, another file
  baton-torq -f /out/torq.c1z --torq-region eu
  # sync the built-in demo workspace into ./demo.c1z (no credentials needed)
  baton-torq demo
  # debug logs, one line per HTTP request (no secrets)
  baton-torq --verbose --log-format console
  # invite a user with a role (Owner API key needed; no sync is run)
  baton-torq -p --create-account-email new.hire@example.com \\
    --create-account-profile '{\"role\":\"Operator\"}'
  # access review of the last sync (docs/review.md); exit 3 on a high finding
  baton-torq review -f sync.c1z --format html -o review.html --fail-on high
  baton-torq capabilities > baton_capabilities.json
  baton-torq completion bash > ~/.local/share/bash-completion/completions/baton-torq

Configuration:
  Flags win over BATON_* environment variables, which win over the config
  file: ./.baton.yaml, or the .yaml/.yml file named by BATON_CONFIG_PATH.
  Its keys are flag names:
    torq-client-id: ID
    torq-client-secret: SECRET
    file: /data/torq.c1z
  The file must be yours (or root's) and not writable by group or others
  (chmod 600); a warning names each URL, host or CA key it sets.

Output:
  Logs and the end-of-sync summary go to stderr: console lines on a terminal,
  one JSON record per line otherwise (--log-format). The summary is printed
  whatever the --log-level; --quiet leaves it out. Errors are one line (one
  JSON record in JSON mode).

Exit codes:
  0    success
  1    sync or runtime failure (Torq unreachable, credentials rejected, ...)
  2    usage or configuration error (flags, environment, config file)
  3    review --fail-on: a finding at or above the given severity
  130  interrupted (Ctrl-C or SIGTERM); the sync file is left as it was";

/// Sync a Torq workspace's users, roles, API keys and role memberships into a Baton c1z file for ConductorOne.
#[derive(Debug, Parser)]
#[command(
    name = "baton-torq",
    version = concat!("version v", env!("CARGO_PKG_VERSION")),
    about,
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = false,
    // `-v, --version` as in the Go connector; `-V` still works.
    disable_version_flag = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Print version
    #[arg(short = 'v', long, short_alias = 'V', action = clap::ArgAction::Version)]
    pub(crate) version: (),
    #[command(flatten)]
    pub torq: TorqArgs,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub(crate) provisioning: ProvisioningArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the connector's capabilities as JSON (the content of baton_capabilities.json).
    Capabilities,
    /// Sync a built-in sample workspace into demo.c1z (no credentials needed; never touches sync.c1z)
    ///
    /// A simulated Torq on loopback serves the sample workspace. The output is demo.c1z, or the file given with
    /// -f on the command line; BATON_FILE and the config file's `file` are ignored, so demo data never becomes
    /// the "previous sync" of a real one. Each run changes one user's last login, so two demo runs differ.
    Demo,
    /// Review a sync file offline: findings, changes since the previous sync, as text, CSV, JSON or HTML
    ///
    /// Reads --file (or -f FILE after `review`) and never changes it; needs no network and no credentials.
    /// docs/review.md lists every finding code and how it is decided. Exit codes: 0 reviewed, 2 the file cannot be
    /// reviewed (missing, corrupt, not a c1z) or a flag is invalid, 3 a finding at or above --fail-on.
    Review(Box<ReviewArgs>),
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell) on stdout
    Completion {
        /// Shell to generate the script for
        #[arg(value_enum, ignore_case = true)]
        shell: clap_complete::Shell,
    },
    /// Ask a running service-mode connector's health endpoint; exit 0 if it answers 200, else 1 (for container
    /// probes in images without curl)
    HealthCheck {
        /// Endpoint to ask
        #[arg(long, value_enum, ignore_case = true, default_value = "health")]
        endpoint: crate::service::health::Probe,
        /// Seconds to wait for the answer
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300), value_name = "SECONDS")]
        timeout: u64,
    },
}

/// `review` flags. They describe one review, so they have no `BATON_*` variables (the file comes from -f).
#[derive(Debug, Args)]
pub(crate) struct ReviewArgs {
    /// Output format
    #[arg(long, value_enum, ignore_case = true, default_value_t = crate::review::Format::Terminal)]
    pub(crate) format: crate::review::Format,
    /// Write the report to FILE instead of standard output (replaced whole; never the reviewed sync file)
    #[arg(short = 'o', long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Compare with the newest sync of this older c1z instead of the previous sync in --file
    #[arg(long, value_name = "OLD.c1z")]
    pub(crate) against: Option<PathBuf>,
    /// A user whose last login is older than this many days is inactive (inactive_user)
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=36500), value_name = "DAYS")]
    pub(crate) inactive_days: u32,
    /// An invitation older than this many days is pending too long (pending_invitation)
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=36500), value_name = "DAYS")]
    pub(crate) pending_days: u32,
    /// A role (name or id) whose holders count as privileged like Owner (owner_api_key); repeatable
    #[arg(long = "privileged-role", value_name = "NAME")]
    pub(crate) privileged_roles: Vec<String>,
    /// Exit 3 when a finding at or above this severity exists (a CI gate)
    #[arg(long, value_enum, ignore_case = true, value_name = "SEVERITY")]
    pub(crate) fail_on: Option<crate::review::Severity>,
    /// Measure ages from this RFC 3339 time instead of the clock (reproducible reports), e.g. 2026-12-01T00:00:00Z
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub(crate) now: Option<chrono::DateTime<chrono::Utc>>,
}

fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{e}; expected an RFC 3339 time such as 2026-12-01T00:00:00Z"))
}

/// Torq connection flags.
#[derive(Debug, Args)]
pub struct TorqArgs {
    /// Torq API key client ID (Torq: avatar > API Keys > Create API key)
    #[arg(long, env = "BATON_TORQ_CLIENT_ID", hide_env_values = true, value_name = "ID")]
    pub(crate) torq_client_id: Option<String>,
    /// Torq API key client secret; prefer BATON_TORQ_CLIENT_SECRET (a flag's value shows in `ps`); never printed or logged
    #[arg(long, env = "BATON_TORQ_CLIENT_SECRET", hide_env_values = true, value_name = "SECRET", value_parser = parse_secret)]
    pub(crate) torq_client_secret: Option<SecretString>,
    /// Torq region: selects the API and auth hosts
    #[arg(long, env = "BATON_TORQ_REGION", value_enum, ignore_case = true, default_value_t = Region::Us, hide_env_values = true)]
    pub(crate) torq_region: Region,
    /// Override the API base URL, e.g. https://api.torq.io/public/v1alpha (proxies, tests)
    #[arg(long, env = "BATON_TORQ_API_URL", hide_env_values = true, value_name = "URL")]
    pub(crate) torq_api_url: Option<String>,
    /// Override the token URL, e.g. https://auth.torq.io/v1/auth/token (proxies, tests)
    #[arg(long, env = "BATON_TORQ_AUTH_URL", hide_env_values = true, value_name = "URL")]
    pub(crate) torq_auth_url: Option<String>,
    /// Seconds to wait for Torq to answer a request (and between chunks of a long answer)
    #[arg(long, env = "BATON_HTTP_TIMEOUT_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=1800), hide_env_values = true, value_name = "SECONDS")]
    pub(crate) http_timeout_seconds: u64,
}

/// Flags shared by every command.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Path of the c1z sync file to write (an existing one is extended, keeping its latest sync) [default:
    /// sync.c1z; demo.c1z for `demo`, which ignores BATON_FILE and the config file]
    // The default is named in the text, not shown by clap: `demo` has its own (see `app::demo_output`).
    #[arg(
        short = 'f',
        long,
        env = "BATON_FILE",
        default_value = "sync.c1z",
        hide_default_value = true,
        global = true,
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub(crate) file: PathBuf,
    /// Log level
    #[arg(long, env = "BATON_LOG_LEVEL", value_enum, ignore_case = true, default_value_t = LogLevel::Info, global = true, hide_env_values = true)]
    pub log_level: LogLevel,
    /// Log format; default: console when stderr is a terminal, JSON otherwise. Logs always go to stderr
    #[arg(long, env = "BATON_LOG_FORMAT", value_enum, ignore_case = true, global = true, hide_env_values = true)]
    pub log_format: Option<LogFormat>,
    /// Debug logs, including one line per HTTP request (method, path, status, duration, attempt)
    #[arg(long, env = "BATON_VERBOSE", global = true, hide_env_values = true)]
    pub verbose: bool,
    /// When another run is writing the same --file, wait for it instead of failing at once
    #[arg(long, env = "BATON_WAIT_FOR_LOCK", global = true, hide_env_values = true)]
    pub(crate) wait_for_lock: bool,
    /// Leave out the end-of-sync summary and the progress line (errors and warnings are still logged)
    #[arg(short = 'q', long, env = "BATON_QUIET", global = true, hide_env_values = true)]
    pub(crate) quiet: bool,
    /// Whether --file was typed on the command line (set by `main` from clap's value source; `demo` ignores a
    /// file that only comes from BATON_FILE or the config file).
    #[arg(skip)]
    pub file_on_command_line: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Region {
    Us,
    Eu,
}

impl Region {
    fn api_url(self) -> &'static str {
        match self {
            Region::Us => "https://api.torq.io/public/v1alpha",
            Region::Eu => "https://api.eu.torq.io/public/v1alpha",
        }
    }
    fn auth_url(self) -> &'static str {
        match self {
            Region::Us => "https://auth.torq.io/v1/auth/token",
            Region::Eu => "https://auth.eu.torq.io/v1/auth/token",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Console,
}

fn parse_secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(s.to_string()))
}

/// ConductorOne service-mode flags. Giving `--client-id` (with `--client-secret`) runs baton-torq as a daemon.
#[derive(Debug, Args)]
#[command(next_help_heading = "Service mode (ConductorOne daemon)")]
pub struct ServiceArgs {
    /// ConductorOne client ID, generated with the connector's credentials in ConductorOne; selects service mode
    #[arg(long, env = "BATON_CLIENT_ID", hide_env_values = true, value_name = "ID")]
    pub(crate) client_id: Option<String>,
    /// ConductorOne client secret (secret-token:conductorone.com:v1:...); prefer BATON_CLIENT_SECRET (a flag's value shows in `ps`); never printed or logged
    #[arg(long, env = "BATON_CLIENT_SECRET", hide_env_values = true, value_name = "SECRET", value_parser = parse_secret)]
    pub(crate) client_secret: Option<SecretString>,
    /// Tasks run at the same time in service mode
    #[arg(long, env = "BATON_TASK_CONCURRENCY", default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=100), hide_env_values = true, value_name = "N")]
    pub(crate) task_concurrency: u8,
    /// Override the ConductorOne host[:port] for the token endpoint and the API (default: from the client ID)
    #[arg(long, env = "BATON_C1_API_HOST", hide_env_values = true, value_name = "HOST")]
    pub(crate) c1_api_host: Option<String>,
    /// Host id reported to ConductorOne (default: the hostname)
    #[arg(long, env = "BATON_HOST_ID", hide_env_values = true, value_name = "ID")]
    pub(crate) host_id: Option<String>,
    /// Extra PEM root certificate(s) to trust for ConductorOne (tests, private CAs / TLS-inspecting proxies)
    #[arg(long, env = "BATON_C1_CA_CERT_FILE", hide_env_values = true, value_name = "PEM")]
    pub(crate) c1_ca_cert_file: Option<PathBuf>,
    /// Existing directory for the temporary sync files of service mode (default: the OS temp dir)
    #[arg(long, env = "BATON_C1Z_TEMP_DIR", hide_env_values = true, value_name = "DIR")]
    pub(crate) c1z_temp_dir: Option<PathBuf>,
    /// Serve /health, /ready and /live over HTTP in service mode
    #[arg(long, env = "BATON_HEALTH_CHECK", hide_env_values = true)]
    pub(crate) health_check: bool,
    /// Port of the health endpoints (0: any free port, logged at start)
    #[arg(long, env = "BATON_HEALTH_CHECK_PORT", default_value_t = crate::service::health::DEFAULT_PORT, global = true, hide_env_values = true, value_name = "PORT")]
    pub(crate) health_check_port: u16,
    /// IP address the health endpoints listen on (0.0.0.0 for an httpGet probe from outside the pod)
    #[arg(
        long,
        env = "BATON_HEALTH_CHECK_BIND_ADDRESS",
        default_value = "127.0.0.1",
        global = true,
        hide_env_values = true,
        value_name = "IP"
    )]
    pub(crate) health_check_bind_address: std::net::IpAddr,
}

/// Provisioning flags, with the Baton SDK's names. Any `--create-account-*` flag runs account creation (an invite)
/// instead of a sync; `--provisioning` must be set for it, and for provisioning tasks in service mode.
#[derive(Debug, Args)]
#[command(next_help_heading = "Provisioning (invite a user instead of syncing)")]
pub(crate) struct ProvisioningArgs {
    /// Allow baton-torq to change Torq: needed by --create-account-* and by provisioning tasks in service mode
    #[arg(short = 'p', long, env = "BATON_PROVISIONING", hide_env_values = true)]
    pub(crate) provisioning: bool,
    /// Invite this email address to the Torq workspace (needs an API key with the Owner role)
    #[arg(long, env = "BATON_CREATE_ACCOUNT_EMAIL", hide_env_values = true, value_name = "EMAIL")]
    pub(crate) create_account_email: Option<String>,
    /// Login of the account to create; used as the email when it is an email address
    #[arg(long, env = "BATON_CREATE_ACCOUNT_LOGIN", hide_env_values = true, value_name = "LOGIN")]
    pub(crate) create_account_login: Option<String>,
    /// Profile of the account as a JSON object with the keys "role" (a role name or id; Torq's default when absent; alias "role_id") and "email"; any other key is refused
    #[arg(long, env = "BATON_CREATE_ACCOUNT_PROFILE", hide_env_values = true, value_name = "JSON")]
    pub(crate) create_account_profile: Option<String>,
    /// When no `--create-account-*` flag was typed but one came from a variable or the config file: what set it
    /// (e.g. `BATON_CREATE_ACCOUNT_EMAIL`), so a run is never turned into an invite without saying why. Set by
    /// [`note_value_sources`].
    #[arg(skip)]
    pub(crate) create_account_from: Option<String>,
}

impl ProvisioningArgs {
    /// Whether a `--create-account-*` flag asks for account creation.
    pub(crate) fn create_account_requested(&self) -> bool {
        self.create_account_email.is_some()
            || self.create_account_login.is_some()
            || self.create_account_profile.is_some()
    }
}

/// A configuration problem: one line, naming the flag and its environment variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// One or more required settings are missing (all of them are named at once).
    #[error("missing {what}: pass {flags} or set {envs}{hint}")]
    Missing { what: String, flags: String, envs: String, hint: &'static str },
    #[error("invalid {flag} ({env}): {reason}")]
    Invalid { flag: &'static str, env: &'static str, reason: String },
    #[error("invalid --file ({path}): {reason}")]
    File { path: String, reason: String },
}

/// A required setting: its name in messages, flag and variable.
struct Required {
    what: &'static str,
    flag: &'static str,
    env: &'static str,
}

const TORQ_CLIENT_ID: Required =
    Required { what: "Torq client ID", flag: "--torq-client-id", env: "BATON_TORQ_CLIENT_ID" };
const TORQ_CLIENT_SECRET: Required =
    Required { what: "Torq client secret", flag: "--torq-client-secret", env: "BATON_TORQ_CLIENT_SECRET" };

/// Required values, trimmed, in the order given; or one error naming every missing one. Whitespace pasted around a
/// value is removed with a warning.
fn required<'a, const N: usize>(values: [(Option<&'a str>, &Required); N]) -> Result<[&'a str; N], ConfigError> {
    const KEY_HINT: &str = " (create an API key in Torq: avatar > API Keys > Create API key)";
    let mut missing: Vec<&Required> = Vec::new();
    let trimmed = values.map(|(raw, req)| {
        let raw = raw.unwrap_or("");
        let value = raw.trim();
        if value.is_empty() {
            missing.push(req);
        } else if value.len() != raw.len() {
            tracing::warn!("removed whitespace around the {}", req.what);
        }
        value
    });
    if missing.is_empty() {
        return Ok(trimmed);
    }
    let join = |f: fn(&Required) -> &'static str| missing.iter().map(|r| f(r)).collect::<Vec<_>>().join(" and ");
    Err(ConfigError::Missing { what: join(|r| r.what), flags: join(|r| r.flag), envs: join(|r| r.env), hint: KEY_HINT })
}

/// Checked Torq settings from the flags. Whitespace pasted around the ID or secret is trimmed with a warning.
pub fn torq_settings(args: &TorqArgs) -> Result<TorqSettings, ConfigError> {
    let [client_id, secret] = required([
        (args.torq_client_id.as_deref(), &TORQ_CLIENT_ID),
        (args.torq_client_secret.as_ref().map(|s| s.expose_secret()), &TORQ_CLIENT_SECRET),
    ])?;
    let api_url = checked_url(
        args.torq_api_url.as_deref().unwrap_or(args.torq_region.api_url()),
        "--torq-api-url",
        "BATON_TORQ_API_URL",
    )?;
    let auth_url = checked_url(
        args.torq_auth_url.as_deref().unwrap_or(args.torq_region.auth_url()),
        "--torq-auth-url",
        "BATON_TORQ_AUTH_URL",
    )?;
    let mut settings =
        TorqSettings::new(client_id.to_string(), SecretString::from(secret.to_string()), api_url, auth_url);
    settings.timeout = Duration::from_secs(args.http_timeout_seconds);
    Ok(settings)
}

/// An absolute https URL without credentials, query or fragment; plain http only for loopback hosts.
pub(crate) fn checked_url(raw: &str, flag: &'static str, env: &'static str) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { flag, env, reason };
    let url = Url::parse(raw.trim())
        .map_err(|e| invalid(format!("{e}; expected a URL such as https://api.torq.io/public/v1alpha")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("the URL must not contain a user name or password".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        // The URL itself is not repeated: a query may carry a key.
        return Err(invalid("the URL must not have a ?query or #fragment; remove it".into()));
    }
    let loopback = crate::torq::is_loopback(&url);
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(invalid(format!(
                "{url} uses plain http, which is only allowed for loopback hosts (127.0.0.1, ::1, localhost); use https"
            )))
        }
        other => return Err(invalid(format!("unsupported scheme {other:?}; use https"))),
    }
    Ok(url)
}

/// Checks the output path before any network traffic: not a symbolic link, directory, device or pipe; its
/// directory exists.
pub(crate) fn check_output_path(path: &Path) -> Result<(), ConfigError> {
    let shown = path.display().to_string();
    let err = |reason: String| ConfigError::File { path: shown.clone(), reason };
    if path.as_os_str().is_empty() {
        return Err(err("the path is empty; pass a file name such as sync.c1z".into()));
    }
    // The Go SDK can write to S3 (ConductorOne's docs show BATON_FILE=s3://...); without this the user would be told
    // that a directory "s3:" does not exist.
    if shown.to_ascii_lowercase().starts_with("s3://") {
        return Err(err(
            "baton-torq writes local files only, not to S3; write a local file (e.g. -f sync.c1z) and copy it, e.g. with \
             'aws s3 cp'"
                .into(),
        ));
    }
    // Following a link would let whoever can write the folder choose which file is created or replaced (the
    // output lock refuses links for the same reason); replacing the link itself would surprise its owner.
    if let Ok(target) = std::fs::read_link(path) {
        let target = match path.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
        return Err(err(format!(
            "it is a symbolic link; pass the file it points to (-f {}), which is then replaced while the link stays",
            target.display()
        )));
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(err("it is a directory; pass a file path such as DIR/sync.c1z".into()));
        }
        // A device or a pipe would be replaced by the new file (e.g. /dev/null as root), or block the run.
        Ok(meta) if !meta.is_file() => {
            return Err(err(
                "it is not a regular file (a device, pipe or socket); pass a file path such as sync.c1z".into()
            ));
        }
        _ => {}
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(err(format!("directory {} does not exist; create it first", parent.display())));
    }
    // Its latest sync is kept, so an existing file must be readable. A 0600 file left by a run as another user (sudo,
    // a container's default user) is not: say so here rather than fail later with a vague I/O error.
    if let Err(e) = std::fs::File::open(path) {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            return Err(err(unreadable_output(path)));
        }
    }
    // A file without any write permission was marked so on purpose; the run would replace it all the same (the
    // new file is renamed over it), so it is refused, even for root, with the way to allow it.
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o222 == 0 {
            return Err(err(format!(
                "it is read-only (mode {mode:04o}), so it is not replaced; to let baton-torq write its next sync \
                 there run chmod u+w {shown}, or choose another --file"
            )));
        }
    }
    Ok(())
}

/// Why an existing output file cannot be read, and the fix: its owner lacks read permission (chmod), or it
/// belongs to another user (run as that user).
fn unreadable_output(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt as _;
    let me = rustix::process::geteuid().as_raw();
    match std::fs::metadata(path) {
        Ok(meta) if meta.uid() == me => format!(
            "this user owns it but may not read it (mode {:04o}), so its latest sync cannot be kept; run chmod u+r {}, \
             or choose another --file",
            meta.mode() & 0o7777,
            path.display()
        ),
        Ok(meta) => format!(
            "this user may not read it (it belongs to uid {}), so its latest sync cannot be kept; run as the file's \
             owner, or choose another --file",
            meta.uid()
        ),
        Err(_) => "this user may not read it, so its latest sync cannot be kept; choose another --file".into(),
    }
}

/// Flags of the Go connector (baton-sdk) that baton-torq does not have, with what to do instead.
const GO_ONLY_FLAGS: &[(&[&str], &str)] = &[
    (
        &["grant-entitlement", "grant-principal", "grant-principal-type", "revoke-grant"],
        "Torq's public API cannot change a user's role; change it in the Torq UI (Settings > Users) or, for SSO \
         users, in the SSO claim mapping. Inviting a user is supported: -p --create-account-email EMAIL",
    ),
    (
        &["create-account-resource-type"],
        "accounts are always Torq users; use -p --create-account-email EMAIL [--create-account-profile JSON]",
    ),
    (
        &["delete-resource", "delete-resource-type", "rotate-credentials", "rotate-credentials-type"],
        "Torq's public API cannot delete users or rotate API keys; do it in the Torq UI (Settings > Users, API Keys)",
    ),
    (
        &["sync-resources", "sync-resource-types", "skip-entitlements-and-grants", "skip-grants", "skip-full-sync"],
        "partial syncs are not supported; every sync reads the whole workspace in a few requests",
    ),
    (
        &["otel-collector-endpoint", "otel-tracing-disabled", "otel-logging-disabled"],
        "OpenTelemetry export is not supported; logs go to stderr (--log-format json for a collector)",
    ),
    (&["log-path"], "logs always go to stderr; redirect them, e.g. 2>>baton-torq.log"),
    (&["log-level-debug-expires-at"], "not supported; set --log-level debug for the runs that need it"),
    (&["workers", "parallel-sync"], "not needed: the user and role lists are already fetched concurrently"),
    (&["storage-engine"], "only the SQLite (v1) c1z format is written"),
    (&["ticketing", "external-resource-c1z", "external-resource-entitlement-id-filter"], "not supported by baton-torq"),
    (&["diff-syncs", "compact-syncs"], "use the baton CLI on the c1z file instead"),
];

/// Words that look like commands: shown in errors (a secret is not made of lowercase letters and dashes only).
fn looks_like_a_command(word: &str) -> bool {
    (1..=16).contains(&word.len())
        && word.starts_with(|c: char| c.is_ascii_lowercase())
        && word.chars().all(|c| c.is_ascii_lowercase() || c == '-')
}

/// One line for a command-line error, naming what to type instead. A word typed without a flag is only shown when
/// it looks like a command: it may be a secret that lost its flag (`--torq-client-secret= S3CRET`).
pub fn describe_parse_error(e: &clap::Error, argv: &[String]) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use clap::CommandFactory;
    let cmd = Cli::command();
    let one = |k: ContextKind| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let many = |k: ContextKind| match e.get(k) {
        Some(ContextValue::Strings(v)) => v.clone(),
        Some(ContextValue::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let help = "run 'baton-torq --help' for usage";
    // "did you mean X? (run ...)" reads better than "did you mean X?; run ...".
    let with_help = |body: String| match body.ends_with('?') {
        true => format!("{body} ({help})"),
        false => format!("{body}; {help}"),
    };
    match e.kind() {
        ErrorKind::UnknownArgument | ErrorKind::InvalidSubcommand => {
            let word = one(ContextKind::InvalidArg).or_else(|| one(ContextKind::InvalidSubcommand)).unwrap_or_default();
            if word.starts_with('-') {
                return with_help(unknown_flag(&word, many(ContextKind::SuggestedArg), &cmd));
            }
            if let Some(similar) = many(ContextKind::SuggestedSubcommand).first() {
                return with_help(format!("unknown command '{word}'; did you mean '{similar}'?"));
            }
            with_help(stray_word(&word, argv, &cmd))
        }
        ErrorKind::InvalidValue => {
            let arg = one(ContextKind::InvalidArg).unwrap_or_default();
            let value = one(ContextKind::InvalidValue).unwrap_or_default();
            let allowed = many(ContextKind::ValidValue).join(", ");
            let name = arg_name(&arg, &cmd);
            let secret = arg.contains("secret");
            let did_you_mean = match many(ContextKind::SuggestedValue).first() {
                Some(v) => format!(" (did you mean '{v}'?)"),
                None => String::new(),
            };
            match (value.is_empty(), secret) {
                (true, _) if allowed.is_empty() => match example(&arg, &cmd) {
                    Some(example) => format!("{name} needs a value; e.g. '{example}'"),
                    None => with_help(format!("{name} needs a value")),
                },
                (true, _) => format!("{name} needs a value: one of {allowed}"),
                (false, true) => with_help(format!("invalid value for {name}")),
                (false, false) => format!("invalid value '{value}' for {name}: use one of {allowed}{did_you_mean}"),
            }
        }
        ErrorKind::MissingRequiredArgument => {
            let missing = many(ContextKind::InvalidArg);
            let command = argv.iter().skip(1).find(|w| cmd.find_subcommand(w.as_str()).is_some());
            let sub = command.and_then(|c| cmd.find_subcommand(c.as_str()));
            let wanted: Vec<String> = missing
                .iter()
                .map(|m| {
                    let values = sub.and_then(|s| possible_values(s, m)).unwrap_or_default();
                    if values.is_empty() {
                        m.clone()
                    } else {
                        format!("{m} (one of {})", values.join(", "))
                    }
                })
                .collect();
            let example = match (command, sub.and_then(|s| possible_values(s, missing.first()?))) {
                (Some(c), Some(values)) if !values.is_empty() => format!("; e.g. 'baton-torq {c} {}'", values[0]),
                _ => String::new(),
            };
            match command {
                Some(c) => format!("'{c}' needs {}{example}", wanted.join(" and ")),
                None => with_help(format!("missing {}", wanted.join(" and "))),
            }
        }
        ErrorKind::ValueValidation => {
            let arg = one(ContextKind::InvalidArg).unwrap_or_default();
            let value = one(ContextKind::InvalidValue).unwrap_or_default();
            let name = arg_name(&arg, &cmd);
            if arg.contains("secret") {
                return with_help(format!("invalid value for {name}"));
            }
            let reason = std::error::Error::source(e).map(|r| format!(": {r}")).unwrap_or_default();
            match example(&arg, &cmd) {
                Some(example) => format!("invalid value '{value}' for {name}{reason}; e.g. '{example}'"),
                None => with_help(format!("invalid value '{value}' for {name}{reason}")),
            }
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
            with_help(first.to_string())
        }
    }
}

/// `--torq-region <REGION>` -> `--torq-region (BATON_TORQ_REGION)`; `<SHELL>` -> `the shell`.
fn arg_name(arg: &str, cmd: &clap::Command) -> String {
    let flag = arg.split_whitespace().next().unwrap_or(arg);
    if let Some(long) = flag.strip_prefix("--") {
        let env = all_args(cmd).find(|a| a.get_long() == Some(long)).and_then(|a| a.get_env().map(|e| e.to_owned()));
        return match env {
            Some(env) => format!("{flag} ({})", env.to_string_lossy()),
            None => flag.to_string(),
        };
    }
    match flag.strip_prefix('<').and_then(|f| f.strip_suffix('>')) {
        Some(name) => format!("the {}", name.to_lowercase()),
        None => flag.to_string(),
    }
}

/// `--flag <default>` as an example of a valid value, for a flag that has a built-in default.
fn example(arg: &str, cmd: &clap::Command) -> Option<String> {
    let flag = arg.split_whitespace().next()?;
    let long = flag.strip_prefix("--")?;
    let default = all_args(cmd).find(|a| a.get_long() == Some(long))?.get_default_values().first()?.to_owned();
    Some(format!("{flag} {}", default.to_string_lossy()))
}

/// The possible values of the positional `<NAME>` of `sub`.
fn possible_values(sub: &clap::Command, placeholder: &str) -> Option<Vec<String>> {
    let name = placeholder.trim_start_matches('<').trim_end_matches('>').to_lowercase();
    let arg = sub.get_positionals().find(|a| a.get_id().as_str().eq_ignore_ascii_case(&name))?;
    Some(arg.get_possible_values().iter().filter(|v| !v.is_hide_set()).map(|v| v.get_name().to_string()).collect())
}

/// Every argument of `cmd` and its subcommands.
fn all_args(cmd: &clap::Command) -> impl Iterator<Item = &clap::Arg> {
    cmd.get_arguments().chain(cmd.get_subcommands().flat_map(|s| s.get_arguments()))
}

/// An unknown flag: its name (never a value after `=`) and the flags the user probably meant.
fn unknown_flag(word: &str, clap_suggestions: Vec<String>, cmd: &clap::Command) -> String {
    let name = word.split('=').next().unwrap_or(word);
    let bare = name.trim_start_matches('-');
    if let Some((_, note)) = GO_ONLY_FLAGS.iter().find(|(flags, _)| flags.contains(&bare)) {
        return format!("{name} is a flag of the Go connector that baton-torq does not have: {note}");
    }
    // Own matches first: `--region` -> `--torq-region`, `--timeout` -> `--http-timeout-seconds`, `--Torq_Region`
    // and `--BATON_TORQ_REGION` -> `--torq-region`. Then clap's spelling suggestion (`--verbos` -> `--verbose`).
    let typed = bare.to_ascii_lowercase().replace('_', "-");
    let typed = typed.strip_prefix("baton-").unwrap_or(&typed).to_string();
    let longs: Vec<&str> = all_args(cmd).filter(|a| !a.is_hide_set()).filter_map(|a| a.get_long()).collect();
    // A command's own flag (`health-check --timeout`) is not an exact match on the main command line.
    let command_of = |long: &str| {
        let main = cmd.get_arguments().any(|a| a.get_long() == Some(long));
        cmd.get_subcommands().find(|s| !main && s.get_arguments().any(|a| a.get_long() == Some(long)))
    };
    let mut suggestions: Vec<String> = match longs.iter().find(|l| **l == typed && command_of(l).is_none()) {
        Some(exact) => vec![exact.to_string()],
        None if !typed.is_empty() => {
            longs.iter().filter(|l| format!("-{l}-").contains(&format!("-{typed}-"))).map(|l| l.to_string()).collect()
        }
        None => Vec::new(),
    };
    suggestions.sort();
    suggestions.dedup();
    if suggestions.is_empty() {
        suggestions = clap_suggestions.iter().map(|s| s.trim_start_matches('-').to_string()).collect();
    }
    let shown: Vec<String> = suggestions
        .iter()
        .take(3)
        .map(|s| match command_of(s) {
            Some(sub) => format!("'{} --{s}'", sub.get_name()),
            None => format!("'--{s}'"),
        })
        .collect();
    match shown.len() {
        0 => format!("unknown flag '{name}'"),
        _ => format!("unknown flag '{name}'; did you mean {}?", shown.join(" or ")),
    }
}

/// The candidate `typed` most likely meant: clap's rule for flags (Jaro similarity above 0.7, compared without
/// case, `_` read as `-`), so config-file keys and profile keys get the same suggestions as the command line.
pub(crate) fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    let typed = norm(typed);
    candidates
        .into_iter()
        .map(|c| (strsim::jaro(&typed, &norm(c)), c))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A word without a flag that is not a command.
fn stray_word(word: &str, argv: &[String], cmd: &clap::Command) -> String {
    let commands: Vec<&str> =
        cmd.get_subcommands().filter(|s| !s.is_hide_set()).map(|s| s.get_name()).chain(["help"]).collect();
    let commands = commands.join(", ");
    let previous = argv.iter().position(|a| a == word).and_then(|i| i.checked_sub(1)).and_then(|i| argv.get(i));
    if let Some(flag) = previous.filter(|p| p.starts_with("--") && p.ends_with('=')) {
        return format!(
            "a value without a flag follows '{flag}' (not shown in case it is a secret); remove the stray space after '='"
        );
    }
    if looks_like_a_command(word) {
        return match word {
            "sync" => "there is no 'sync' command: run baton-torq without a command to sync".to_string(),
            "config" => {
                format!("'{word}' is a command of the Go connector that baton-torq does not have; commands: {commands}")
            }
            _ => format!("unknown command '{word}'; commands: {commands}"),
        };
    }
    format!(
        "unexpected value without a flag (not shown in case it is a secret); commands: {commands}; \
         values follow their flag (--flag VALUE or --flag=VALUE, no space after '=')"
    )
}

/// The log format asked for by a command line that failed to parse (the last `--log-format`, else
/// BATON_LOG_FORMAT, else the config file's `log-format`, i.e. the flag's default in `cmd`), so that its error
/// is printed in that format. `None` when none names a valid format.
pub fn log_format_hint(argv: &[String], cmd: &clap::Command) -> Option<LogFormat> {
    let mut typed = None;
    let mut words = argv.iter().skip(1);
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        if word == "--log-format" {
            typed = words.next().cloned();
        } else if let Some(value) = word.strip_prefix("--log-format=") {
            typed = Some(value.to_string());
        }
    }
    let from_file = || {
        let arg = cmd.get_arguments().find(|a| a.get_id() == "log_format")?;
        arg.get_default_values().first().map(|v| v.to_string_lossy().into_owned())
    };
    let value =
        typed.or_else(|| std::env::var("BATON_LOG_FORMAT").ok().filter(|v| !v.is_empty())).or_else(from_file)?;
    LogFormat::from_str(value.trim(), true).ok()
}

/// Records in `cli` where the values that decide the kind of run came from (clap's value sources; a config-file
/// value is a flag default, see `crate::config_file`): whether `--file` was typed, and what set a
/// `--create-account-*` flag when none was typed.
pub fn note_value_sources(cli: &mut Cli, matches: &clap::ArgMatches, config_file: Option<&Path>) {
    use clap::parser::ValueSource;
    use clap::CommandFactory;
    cli.common.file_on_command_line = file_on_command_line(matches);
    let ids = ["create_account_email", "create_account_login", "create_account_profile"];
    let sources: Vec<(&str, ValueSource)> =
        ids.iter().filter_map(|id| matches.value_source(id).map(|source| (*id, source))).collect();
    if sources.iter().any(|(_, source)| *source == ValueSource::CommandLine) {
        return;
    }
    let cmd = Cli::command();
    let names: Vec<String> = sources
        .iter()
        .filter_map(|(id, source)| {
            let arg = cmd.get_arguments().find(|a| a.get_id() == *id)?;
            match source {
                ValueSource::EnvVariable => arg.get_env().map(|e| e.to_string_lossy().into_owned()),
                // These flags have no built-in default: a default is the config file's value.
                _ => Some(format!(
                    "{} in config file {}",
                    arg.get_long().unwrap_or_default(),
                    config_file.map_or_else(|| "?".into(), |p| p.display().to_string())
                )),
            }
        })
        .collect();
    cli.provisioning.create_account_from = (!names.is_empty()).then(|| names.join(" and "));
}

/// Whether `--file` was typed on the command line (not taken from BATON_FILE, the config file or the default).
pub fn file_on_command_line(matches: &clap::ArgMatches) -> bool {
    use clap::parser::ValueSource;
    let typed = |m: &clap::ArgMatches| m.value_source("file") == Some(ValueSource::CommandLine);
    typed(matches) || matches.subcommand().is_some_and(|(_, sub)| typed(sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_own_file_without_read_permission_says_chmod_not_run_as_owner() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sync.c1z");
        std::fs::write(&file, "x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o200)).unwrap();
        let message = unreadable_output(&file);
        assert!(message.starts_with("this user owns it but may not read it (mode 0200)"), "{message}");
        assert!(message.contains(&format!("run chmod u+r {}", file.display())), "{message}");
        assert!(!message.contains("owner"), "{message}");
    }

    #[test]
    fn http_only_for_loopback() {
        assert!(checked_url("http://127.0.0.1:8080/x", "--f", "E").is_ok());
        assert!(checked_url("http://localhost/x", "--f", "E").is_ok());
        assert!(checked_url("http://[::1]:1/x", "--f", "E").is_ok());
        assert!(checked_url("http://api.torq.io/x", "--f", "E").is_err());
        assert!(checked_url("https://u:p@api.torq.io/x", "--f", "E").is_err());
        assert!(checked_url("ftp://api.torq.io/x", "--f", "E").is_err());
        assert!(checked_url("not a url", "--f", "E").is_err());
    }

    #[test]
    fn every_missing_credential_is_named_at_once() {
        let args = |id: Option<&str>, secret: Option<&str>| TorqArgs {
            torq_client_id: id.map(str::to_string),
            torq_client_secret: secret.map(|s| SecretString::from(s.to_string())),
            torq_region: Region::Us,
            torq_api_url: None,
            torq_auth_url: None,
            http_timeout_seconds: 60,
        };
        let e = torq_settings(&args(None, Some(" "))).unwrap_err().to_string();
        assert!(e.contains("--torq-client-id and --torq-client-secret"), "{e}");
        assert!(e.contains("BATON_TORQ_CLIENT_ID and BATON_TORQ_CLIENT_SECRET"), "{e}");
        let e = torq_settings(&args(Some("id"), None)).unwrap_err().to_string();
        assert!(e.contains("pass --torq-client-secret or set BATON_TORQ_CLIENT_SECRET"), "{e}");
        assert!(torq_settings(&args(Some(" id "), Some("s"))).is_ok());
    }

    #[test]
    fn the_log_format_of_a_command_line_that_does_not_parse() {
        use clap::CommandFactory;
        let argv = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let cmd = Cli::command();
        assert_eq!(log_format_hint(&argv(&["b", "--bogus", "--log-format", "JSON"]), &cmd), Some(LogFormat::Json));
        assert_eq!(
            log_format_hint(&argv(&["b", "--log-format=json", "--log-format=console"]), &cmd),
            Some(LogFormat::Console)
        );
        // The config file's value is the flag's default; the command line still wins.
        let from_file = Cli::command().mut_arg("log_format", |a| a.default_value("console"));
        assert_eq!(log_format_hint(&argv(&["b", "--bogus"]), &from_file), Some(LogFormat::Console));
        assert_eq!(log_format_hint(&argv(&["b", "--log-format=json"]), &from_file), Some(LogFormat::Json));
    }

    #[test]
    fn only_command_like_words_are_repeated() {
        assert!(looks_like_a_command("dmeo") && looks_like_a_command("health-check"));
        for secret in ["S3cret", "abc123", "sk_live", "a-very-long-lowercase-word", "", "-x"] {
            assert!(!looks_like_a_command(secret), "{secret}");
        }
    }

    #[test]
    fn the_closest_key_is_suggested() {
        let keys = ["email", "role", "role_id"];
        assert_eq!(closest("rol", keys), Some("role"));
        assert_eq!(closest("Role-ID", keys), Some("role_id"));
        assert_eq!(closest("mail", keys), Some("email"));
        assert_eq!(closest("department", keys), None);
    }

    #[test]
    fn cli_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
