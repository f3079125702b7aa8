//! Service mode: baton-torq as a ConductorOne connector daemon. Started with ConductorOne client credentials, it
//! says Hello, polls BatonService for tasks, runs full syncs into a temporary c1z, uploads it and reports each
//! task's outcome with FinishTask, until SIGINT/SIGTERM.
//!
//! Owns: credential parsing and the JWT assertion ([`credentials`]), the token exchange ([`token`]), the gRPC
//! client ([`client`]), the poll loop ([`poll`]), the Hello answer ([`hello`]), one handler module per kind of
//! task ([`handlers`]: sync_full, provisioning), how a task ends ([`outcome`]), and the start-up Torq check
//! and health endpoints ([`health`]). Reuses [`crate::sync::run_sync`] for the sync itself.
//! Must not: write the user's `--file` (it is ignored here), or let the ConductorOne secret, the JWK or any token
//! reach a log line, an error message or `Debug` output.

pub mod client;
pub mod credentials;
pub(crate) mod handlers;
pub mod health;
pub(crate) mod hello;
pub mod memory;
pub(crate) mod outcome;
pub(crate) mod poll;
pub(crate) mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cli::ServiceArgs;
use crate::torq::TorqClient;
use credentials::{ClientId, ClientKey};
use token::TokenError;

/// Why service mode could not start or had to stop. One line each; never the secret.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("missing ConductorOne client {what}: pass {flag} or set {env} (service mode needs both the client id and the client secret)")]
    Missing { what: &'static str, flag: &'static str, env: &'static str },
    #[error("invalid --client-id (BATON_CLIENT_ID): {0}")]
    ClientId(String),
    #[error("invalid --client-secret (BATON_CLIENT_SECRET): {0}")]
    ClientSecret(String),
    #[error("invalid {flag} ({env}): {reason}")]
    Setting { flag: &'static str, env: &'static str, reason: String },
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("ConductorOne refused Hello ({code:?}): {message}; {}", hello_fix(*code))]
    HelloRejected { code: tonic::Code, message: String },
    #[error("cannot set up the ConductorOne client: {0}")]
    Setup(String),
    /// The Torq API key failed the start-up check with 401/403: no retry will help.
    #[error("{0} (checked at start, before registering with ConductorOne)")]
    TorqKey(crate::torq::TorqError),
    #[error(transparent)]
    Health(#[from] health::HealthError),
}

/// What to do when ConductorOne refuses the start-up Hello with `code`.
fn hello_fix(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
            "check that --client-id and --client-secret (BATON_CLIENT_ID / BATON_CLIENT_SECRET) are a credential of \
             this connector in ConductorOne, or create a new one"
        }
        tonic::Code::Unimplemented | tonic::Code::NotFound => {
            "check that --c1-api-host (BATON_C1_API_HOST), when set, names your ConductorOne tenant"
        }
        _ => "check the connector's settings in ConductorOne; --log-level debug shows the exchange",
    }
}

impl ServiceError {
    /// Whether this is a usage problem (exit code 2) rather than a runtime failure (exit code 1).
    pub(crate) fn is_usage(&self) -> bool {
        matches!(
            self,
            ServiceError::Missing { .. }
                | ServiceError::ClientId(_)
                | ServiceError::ClientSecret(_)
                | ServiceError::Setting { .. }
        )
    }
}

/// Checked service-mode settings.
#[derive(Debug)]
pub struct ServiceConfig {
    pub(crate) client_id: ClientId,
    pub(crate) key: Arc<ClientKey>,
    /// `host[:port]` of the token endpoint and the gRPC API.
    pub(crate) api_host: String,
    pub(crate) host_id: String,
    /// PEM roots trusted in addition to the system's.
    pub(crate) extra_ca: Option<Vec<u8>>,
    pub(crate) task_concurrency: usize,
    pub(crate) temp_dir: PathBuf,
    /// `--provisioning`: grant, revoke, create_account and delete_resource tasks may run (otherwise they are
    /// refused, as the Baton SDK does).
    pub(crate) provisioning: bool,
    /// `--health-check`: where the health endpoints listen.
    pub(crate) health: Option<SocketAddr>,
}

/// Whether the command line asks for service mode (a client id or secret was given).
pub(crate) fn requested(args: &ServiceArgs) -> bool {
    args.client_id.as_deref().is_some_and(|s| !s.trim().is_empty()) || args.client_secret.is_some()
}

impl ServiceConfig {
    pub fn from_args(args: &ServiceArgs) -> Result<ServiceConfig, ServiceError> {
        let raw_id = args.client_id.as_deref().map(str::trim).unwrap_or("");
        if raw_id.is_empty() {
            return Err(ServiceError::Missing { what: "id", flag: "--client-id", env: "BATON_CLIENT_ID" });
        }
        let Some(secret) = args.client_secret.as_ref() else {
            return Err(ServiceError::Missing { what: "secret", flag: "--client-secret", env: "BATON_CLIENT_SECRET" });
        };
        let client_id = ClientId::parse(raw_id).map_err(|e| ServiceError::ClientId(e.0))?;
        let key = ClientKey::parse(secret).map_err(|e| ServiceError::ClientSecret(e.0))?;
        let api_host = match args.c1_api_host.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(h) => checked_host(h)?,
            None => client_id.tenant_host().to_owned(),
        };
        let host_id = args
            .host_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(hello::hostname_or_default);
        let extra_ca = match &args.c1_ca_cert_file {
            Some(path) => {
                let pem = read_ca_file(path).map_err(|reason| ServiceError::Setting {
                    flag: "--c1-ca-cert-file",
                    env: "BATON_C1_CA_CERT_FILE",
                    reason,
                })?;
                if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(ServiceError::Setting {
                        flag: "--c1-ca-cert-file",
                        env: "BATON_C1_CA_CERT_FILE",
                        reason: format!("{} holds no PEM certificate", path.display()),
                    });
                }
                Some(pem)
            }
            None => None,
        };
        let temp_dir = args.c1z_temp_dir.clone().unwrap_or_else(std::env::temp_dir);
        if !temp_dir.is_dir() {
            return Err(ServiceError::Setting {
                flag: "--c1z-temp-dir",
                env: "BATON_C1Z_TEMP_DIR",
                reason: format!("{} is not an existing directory", temp_dir.display()),
            });
        }
        Ok(ServiceConfig {
            client_id,
            key: Arc::new(key),
            api_host,
            host_id,
            extra_ca,
            task_concurrency: usize::from(args.task_concurrency.clamp(1, 100)),
            temp_dir,
            provisioning: false,
            health: args
                .health_check
                .then_some(SocketAddr::new(args.health_check_bind_address, args.health_check_port)),
        })
    }
}

/// `host` or `host:port`, no scheme or path.
fn checked_host(raw: &str) -> Result<String, ServiceError> {
    let bad = |reason: &str| ServiceError::Setting {
        flag: "--c1-api-host",
        env: "BATON_C1_API_HOST",
        reason: format!("{reason}; expected host or host:port, e.g. acme.conductor.one:443"),
    };
    let (host, port) = match raw.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (raw, None),
    };
    if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
        return Err(bad("not a plain host name"));
    }
    if let Some(p) = port {
        if p.parse::<u16>().map(|p| p == 0).unwrap_or(true) {
            return Err(bad("invalid port"));
        }
    }
    Ok(raw.to_ascii_lowercase())
}

/// Runs the daemon until SIGINT/SIGTERM. Returns `Ok` after a clean shutdown.
pub(crate) async fn run(config: ServiceConfig, torq: TorqClient) -> Result<(), ServiceError> {
    let c1 = connect(&config)?;

    let shutdown = CancellationToken::new();
    let health = Arc::new(health::Health::new(Some(torq.clone()), health::LivePolicy::default()));
    // Served until the daemon has stopped, so probes see "shutting down" while the running tasks finish.
    let health_stop = CancellationToken::new();
    let _stop_health = health_stop.clone().drop_guard();
    if let Some(addr) = config.health {
        health::start(addr, health.clone(), health_stop).await?;
    }
    let watcher = tokio::spawn(shutdown_on_signal(shutdown.clone()));
    let checked = tokio::select! {
        c = check_torq_at_start(&torq, &health) => c,
        _ = shutdown.cancelled() => Ok(()),
    };
    if let Err(e) = checked {
        watcher.abort();
        return Err(e);
    }
    tracing::info!(
        api_host = %config.api_host,
        client = config.client_id.name(),
        host_id = %config.host_id,
        task_concurrency = config.task_concurrency,
        "service mode: connecting to ConductorOne"
    );
    let result = poll::Runner::new(c1, torq, &config, health).run(shutdown).await;
    watcher.abort();
    result
}

/// The start-up Torq check: a rejected key or a missing permission stops the start; anything else (Torq
/// unreachable, an unexpected answer) is a warning, and the health endpoint reports it until a check succeeds.
async fn check_torq_at_start(torq: &TorqClient, health: &health::Health) -> Result<(), ServiceError> {
    match health::check_torq(torq).await {
        (state, Some(e)) if state.is_fatal() => Err(ServiceError::TorqKey(e)),
        (state, _) => {
            if state != health::TorqCheck::Ok {
                tracing::warn!("starting anyway: the health endpoint reports Torq as {state:?} until a check succeeds");
            }
            health.torq_checked(state);
            Ok(())
        }
    }
}

/// The ConductorOne client for `config` (token source and a lazily connecting gRPC channel; nothing is sent yet).
pub fn connect(config: &ServiceConfig) -> Result<client::C1Client, ServiceError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut http = reqwest::Client::builder()
        .user_agent(client::USER_AGENT)
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = &config.extra_ca {
        for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| ServiceError::Setting {
            flag: "--c1-ca-cert-file",
            env: "BATON_C1_CA_CERT_FILE",
            reason: e.to_string(),
        })? {
            http = http.add_root_certificate(cert);
        }
    }
    let http = http.build().map_err(|e| ServiceError::Setup(e.to_string()))?;
    let tokens =
        Arc::new(token::TokenSource::new(http, &config.api_host, config.client_id.clone(), config.key.clone()));
    let channel = client::channel(&config.api_host, config.extra_ca.as_deref()).map_err(ServiceError::Setup)?;
    Ok(client::C1Client::new(channel, tokens, config.host_id.clone()))
}

/// Cancels `shutdown` on SIGINT or SIGTERM; exits at once (130) on a second one. Service mode never writes the
/// user's file, so an abrupt end loses only the running tasks, which ConductorOne reassigns.
async fn shutdown_on_signal(shutdown: CancellationToken) {
    let mut listener = crate::signal::listen();
    listener.next().await;
    tracing::info!("shutdown requested: no new tasks; stopping the running ones");
    shutdown.cancel();
    crate::signal::exit_on_second(listener, "running tasks are not reported").await;
}

/// Largest CA file read: a bundle of every public root is about 250 KiB.
const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The CA file's bytes: a regular file (opened without blocking, so a FIFO is refused, not waited on) of at most
/// [`MAX_CA_FILE_BYTES`].
fn read_ca_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let shown = path.display();
    let file = crate::regular_file::open_for_reading(path).map_err(|e| match e {
        crate::regular_file::OpenError::NotRegular(kind) => {
            format!("{shown} is {kind}, not a regular file; pass a PEM certificate file")
        }
        crate::regular_file::OpenError::Io(e) => format!("cannot read {shown}: {e}"),
    })?;
    let mut pem = Vec::new();
    file.take(MAX_CA_FILE_BYTES + 1).read_to_end(&mut pem).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if pem.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(format!("{shown} is larger than {} MiB; pass a PEM certificate file", MAX_CA_FILE_BYTES >> 20));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each way ConductorOne can refuse the start-up Hello ends in one line that says what to check.
    #[test]
    fn a_refused_hello_says_what_to_check() {
        let refused = |code| ServiceError::HelloRejected { code, message: "no".into() }.to_string();
        assert!(refused(tonic::Code::Unauthenticated).contains("BATON_CLIENT_ID / BATON_CLIENT_SECRET"));
        assert!(refused(tonic::Code::PermissionDenied).contains("create a new one"));
        assert!(refused(tonic::Code::Unimplemented).contains("BATON_C1_API_HOST"));
        assert!(refused(tonic::Code::FailedPrecondition).contains("--log-level debug"));
        assert!(!refused(tonic::Code::InvalidArgument).contains('\n'));
    }
}
