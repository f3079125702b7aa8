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
  # sync into ./sync.c1z
  baton-torq --torq-client-id ID --torq-client-secret SECRET
  # the same from the environment, EU region, another file
  BATON_TORQ_CLIENT_ID=ID BATON_TORQ_CLIENT_SECRET=SECRET \\
    baton-torq -f /out/torq.c1z --torq-region eu
  # sync the built-in demo workspace (no credentials needed)
  baton-torq demo
  # debug logs, one line per HTTP request (no secrets)
  baton-torq --verbose --log-format console
  # invite a user with a role (Owner API key needed; no sync is run)
  baton-torq -p --create-account-email new.hire@example.com \\
    --create-account-profile '{\"role\":\"Operator\"}'
  baton-torq capabilities > baton_capabilities.json
  baton-torq completion bash > ~/.local/share/bash-completion/completions/baton-torq

Configuration:
  Flags win over BATON_* environment variables, which win over the config
  file: ./.baton.yaml, or the .yaml/.yml file named by BATON_CONFIG_PATH.
  Its keys are flag names:
    torq-client-id: ID
    torq-client-secret: SECRET
    file: /data/torq.c1z

Exit codes:
  0    success
  1    sync or runtime failure (Torq unreachable, credentials rejected, ...)
  2    usage or configuration error (flags, environment, config file)
  130  interrupted (Ctrl-C or SIGTERM); the sync file is left as it was";

/// Sync a Torq workspace's users, roles and role memberships into a Baton c1z file for ConductorOne.
#[derive(Debug, Parser)]
#[command(
    name = "baton-torq",
    version = concat!("version v", env!("CARGO_PKG_VERSION")),
    about,
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = false
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub torq: TorqArgs,
    #[command(flatten)]
    pub common: CommonArgs,
    // --- service mode (src/service) ---
    #[command(flatten)]
    pub service: ServiceArgs,
    // --- end service mode ---
    // --- provisioning (src/provision.rs) ---
    #[command(flatten)]
    pub provisioning: ProvisioningArgs,
    // --- end provisioning ---
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the connector's capabilities as JSON (the content of baton_capabilities.json).
    Capabilities,
    /// Sync a built-in sample workspace served by a simulated Torq on loopback; no credentials needed.
    Demo,
    /// Print a shell completion script (bash, zsh, fish or powershell) on stdout
    Completion {
        /// Shell to generate the script for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Torq connection flags.
#[derive(Debug, Args)]
pub struct TorqArgs {
    /// Torq API key client ID (Torq: avatar > API Keys > Create API key)
    #[arg(long, env = "BATON_TORQ_CLIENT_ID", hide_env_values = true, value_name = "ID")]
    pub torq_client_id: Option<String>,
    /// Torq API key client secret; never printed or logged
    #[arg(long, env = "BATON_TORQ_CLIENT_SECRET", hide_env_values = true, value_name = "SECRET", value_parser = parse_secret)]
    pub torq_client_secret: Option<SecretString>,
    /// Torq region: selects the API and auth hosts
    #[arg(long, env = "BATON_TORQ_REGION", value_enum, default_value_t = Region::Us, hide_env_values = true)]
    pub torq_region: Region,
    /// Override the API base URL, e.g. https://api.torq.io/public/v1alpha (proxies, tests)
    #[arg(long, env = "BATON_TORQ_API_URL", hide_env_values = true, value_name = "URL")]
    pub torq_api_url: Option<String>,
    /// Override the token URL, e.g. https://auth.torq.io/v1/auth/token (proxies, tests)
    #[arg(long, env = "BATON_TORQ_AUTH_URL", hide_env_values = true, value_name = "URL")]
    pub torq_auth_url: Option<String>,
    /// Seconds to wait for Torq to answer a request (and between chunks of a long answer)
    #[arg(long, env = "BATON_HTTP_TIMEOUT_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=1800), hide_env_values = true, value_name = "SECONDS")]
    pub http_timeout_seconds: u64,
}

/// Flags shared by every command.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Path of the c1z sync file to write (an existing one is extended, keeping its latest sync)
    #[arg(
        short = 'f',
        long,
        env = "BATON_FILE",
        default_value = "sync.c1z",
        global = true,
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub file: PathBuf,
    /// Log level
    #[arg(long, env = "BATON_LOG_LEVEL", value_enum, default_value_t = LogLevel::Info, global = true, hide_env_values = true)]
    pub log_level: LogLevel,
    /// Log format; default: console when stderr is a terminal, JSON otherwise. Logs always go to stderr
    #[arg(long, env = "BATON_LOG_FORMAT", value_enum, global = true, hide_env_values = true)]
    pub log_format: Option<LogFormat>,
    /// Debug logs, including one line per HTTP request (method, path, status, duration, attempt)
    #[arg(long, env = "BATON_VERBOSE", global = true, hide_env_values = true)]
    pub verbose: bool,
    /// When another run is writing the same --file, wait for it instead of failing at once
    #[arg(long, env = "BATON_WAIT_FOR_LOCK", global = true, hide_env_values = true)]
    pub wait_for_lock: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Region {
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

// --- service mode (src/service) ---
/// ConductorOne service-mode flags. Giving `--client-id` (with `--client-secret`) runs baton-torq as a daemon.
#[derive(Debug, Args)]
#[command(next_help_heading = "Service mode (ConductorOne daemon)")]
pub struct ServiceArgs {
    /// ConductorOne client ID, generated with the connector's credentials in ConductorOne; selects service mode
    #[arg(long, env = "BATON_CLIENT_ID", hide_env_values = true, value_name = "ID")]
    pub client_id: Option<String>,
    /// ConductorOne client secret (secret-token:conductorone.com:v1:...); never printed or logged
    #[arg(long, env = "BATON_CLIENT_SECRET", hide_env_values = true, value_name = "SECRET", value_parser = parse_secret)]
    pub client_secret: Option<SecretString>,
    /// Tasks run at the same time in service mode
    #[arg(long, env = "BATON_TASK_CONCURRENCY", default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=100), hide_env_values = true, value_name = "N")]
    pub task_concurrency: u8,
    /// Override the ConductorOne host[:port] for the token endpoint and the API (default: from the client ID)
    #[arg(long, env = "BATON_C1_API_HOST", hide = true, hide_env_values = true, value_name = "HOST")]
    pub c1_api_host: Option<String>,
    /// Host id reported to ConductorOne (default: the hostname)
    #[arg(long, env = "BATON_HOST_ID", hide = true, hide_env_values = true, value_name = "ID")]
    pub host_id: Option<String>,
    /// Extra PEM root certificate(s) to trust for ConductorOne (tests, private CAs / TLS-inspecting proxies)
    #[arg(long, env = "BATON_C1_CA_CERT_FILE", hide = true, hide_env_values = true, value_name = "PEM")]
    pub c1_ca_cert_file: Option<PathBuf>,
    /// Existing directory for the temporary sync files of service mode (default: the OS temp dir)
    #[arg(long, env = "BATON_C1Z_TEMP_DIR", hide = true, hide_env_values = true, value_name = "DIR")]
    pub c1z_temp_dir: Option<PathBuf>,
}
// --- end service mode ---

// --- provisioning (src/provision.rs) ---
/// Provisioning flags, with the Baton SDK's names. Any `--create-account-*` flag runs account creation (an invite)
/// instead of a sync; `--provisioning` must be set for it, and for provisioning tasks in service mode.
#[derive(Debug, Args)]
#[command(next_help_heading = "Provisioning (invite a user instead of syncing)")]
pub struct ProvisioningArgs {
    /// Allow baton-torq to change Torq: needed by --create-account-* and by provisioning tasks in service mode
    #[arg(short = 'p', long, env = "BATON_PROVISIONING", hide_env_values = true)]
    pub provisioning: bool,
    /// Invite this email address to the Torq workspace (needs an API key with the Owner role)
    #[arg(long, env = "BATON_CREATE_ACCOUNT_EMAIL", hide_env_values = true, value_name = "EMAIL")]
    pub create_account_email: Option<String>,
    /// Login of the account to create; used as the email when it is an email address
    #[arg(long, env = "BATON_CREATE_ACCOUNT_LOGIN", hide_env_values = true, value_name = "LOGIN")]
    pub create_account_login: Option<String>,
    /// Profile of the account as a JSON object: "role" (a role name or id; Torq's default when absent), "email"
    #[arg(long, env = "BATON_CREATE_ACCOUNT_PROFILE", hide_env_values = true, value_name = "JSON")]
    pub create_account_profile: Option<String>,
}

impl ProvisioningArgs {
    /// Whether a `--create-account-*` flag asks for account creation.
    pub fn create_account_requested(&self) -> bool {
        self.create_account_email.is_some()
            || self.create_account_login.is_some()
            || self.create_account_profile.is_some()
    }
}
// --- end provisioning ---

/// A configuration problem: one line, naming the flag and its environment variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing {what}: pass {flag} or set {env}{hint}")]
    Missing { what: &'static str, flag: &'static str, env: &'static str, hint: &'static str },
    #[error("invalid {flag} ({env}): {reason}")]
    Invalid { flag: &'static str, env: &'static str, reason: String },
    #[error("invalid --file ({path}): {reason}")]
    File { path: String, reason: String },
}

/// A required credential, trimmed: an error naming its flag and variable when empty, a warning when trimmed.
fn required<'a>(
    raw: Option<&'a str>,
    what: &'static str,
    flag: &'static str,
    env: &'static str,
) -> Result<&'a str, ConfigError> {
    const KEY_HINT: &str = " (create an API key in Torq: avatar > API Keys > Create API key)";
    let raw = raw.unwrap_or("");
    let value = raw.trim();
    if value.is_empty() {
        return Err(ConfigError::Missing { what, flag, env, hint: KEY_HINT });
    }
    if value.len() != raw.len() {
        tracing::warn!("removed whitespace around the {what}");
    }
    Ok(value)
}

/// Checked Torq settings from the flags. Whitespace pasted around the ID or secret is trimmed with a warning.
pub fn torq_settings(args: &TorqArgs) -> Result<TorqSettings, ConfigError> {
    let client_id =
        required(args.torq_client_id.as_deref(), "Torq client ID", "--torq-client-id", "BATON_TORQ_CLIENT_ID")?;
    let secret = required(
        args.torq_client_secret.as_ref().map(|s| s.expose_secret()),
        "Torq client secret",
        "--torq-client-secret",
        "BATON_TORQ_CLIENT_SECRET",
    )?;
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
pub fn checked_url(raw: &str, flag: &'static str, env: &'static str) -> Result<Url, ConfigError> {
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
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
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

/// Checks the output path before any network traffic: not a directory, its directory exists.
pub fn check_output_path(path: &Path) -> Result<(), ConfigError> {
    let shown = path.display().to_string();
    let err = |reason: String| ConfigError::File { path: shown.clone(), reason };
    if path.as_os_str().is_empty() {
        return Err(err("the path is empty; pass a file name such as sync.c1z".into()));
    }
    if path.is_dir() {
        return Err(err("it is a directory; pass a file path such as DIR/sync.c1z".into()));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(err(format!("directory {} does not exist; create it first", parent.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn cli_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
