//! Runs the chosen command: a sync, an account creation (`--create-account-*`), `demo` or `capabilities`, with Ctrl-C/SIGTERM handling and the final summary.
//! Maps every failure to [`AppError`], whose exit code main returns.

use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::c1z::lock::{LockError, OutputLock};
use crate::c1z::{C1zError, WriterOptions};
use crate::cli::{self, Cli, Command, ConfigError};
use crate::connector::capabilities;
use crate::sim::{SimConfig, SimServer, Workspace};
use crate::sync::{run_sync, SyncError, SyncRequest, SyncSummary};
use crate::torq::{TorqClient, TorqError, TorqSettings};

/// Exit code for a configuration or usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a failed sync or runtime error.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code after Ctrl-C / SIGTERM.
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("cannot start the simulated Torq server for the demo: {0}")]
    Demo(std::io::Error),
    #[error(transparent)]
    Lock(#[from] LockError),
    // --- service mode (src/service) ---
    #[error(transparent)]
    Service(#[from] crate::service::ServiceError),
    // --- end service mode ---
    #[error(transparent)]
    Provision(#[from] crate::provision::ProvisionError),
}

impl AppError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            AppError::Config(_) | AppError::Lock(LockError::Io { .. }) => EXIT_USAGE,
            AppError::Service(e) if e.is_usage() => EXIT_USAGE, // service mode
            AppError::Provision(e) if e.is_usage() => EXIT_USAGE,
            AppError::Sync(SyncError::Interrupted) => EXIT_INTERRUPTED,
            AppError::Sync(SyncError::C1z(e)) if is_output_path_problem(e) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        })
    }
}

/// Errors about the `--file` the user chose (as opposed to failures while syncing).
fn is_output_path_problem(e: &C1zError) -> bool {
    matches!(
        e,
        C1zError::TargetIsDirectory { .. }
            | C1zError::ParentMissing { .. }
            | C1zError::NotC1z { .. }
            | C1zError::UnsupportedFormat { .. }
            | C1zError::Corrupt { .. }
    )
}

impl From<TorqError> for AppError {
    fn from(e: TorqError) -> Self {
        AppError::Sync(SyncError::Torq(e))
    }
}

/// How the summary is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryStyle {
    Console,
    Json,
}

pub async fn run(cli: Cli, style: SummaryStyle) -> Result<(), AppError> {
    match cli.command {
        Some(Command::Completion { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "baton-torq", &mut std::io::stdout());
            Ok(())
        }
        Some(Command::Capabilities) => {
            print!("{}", capabilities::capabilities_json());
            Ok(())
        }
        Some(Command::Demo) => {
            cli::check_output_path(&cli.common.file)?;
            let config = SimConfig::default();
            let server = SimServer::start(Workspace::demo(), config.clone()).await.map_err(AppError::Demo)?;
            let settings = TorqSettings::new(
                config.client_id.clone(),
                config.client_secret.clone().into(),
                cli::checked_url(&server.api_url(), "--torq-api-url", "BATON_TORQ_API_URL")?,
                cli::checked_url(&server.auth_url(), "--torq-auth-url", "BATON_TORQ_AUTH_URL")?,
            );
            tracing::info!(api_url = %server.api_url(), "demo: simulated Torq workspace is up");
            let result = sync_with(settings, &cli, style).await;
            server.shutdown().await;
            result
        }
        // --- provisioning (src/provision.rs): --create-account-* invite a user instead of syncing ---
        None if cli.provisioning.create_account_requested() => create_account_once(&cli).await,
        // --- service mode (src/service): --client-id/--client-secret run the ConductorOne daemon ---
        None if crate::service::requested(&cli.service) => {
            let mut config = crate::service::ServiceConfig::from_args(&cli.service)?;
            config.provisioning = cli.provisioning.provisioning;
            let client = TorqClient::new(cli::torq_settings(&cli.torq)?)?;
            Ok(crate::service::run(config, client).await?)
        }
        // --- end service mode ---
        None => {
            let settings = cli::torq_settings(&cli.torq)?;
            cli::check_output_path(&cli.common.file)?;
            sync_with(settings, &cli, style).await
        }
    }
}

/// One-shot account creation: refuses without `--provisioning` and checks all input before any request, then
/// invites (or finds) the user and prints one line on stdout.
async fn create_account_once(cli: &Cli) -> Result<(), AppError> {
    use crate::provision::{self, AccountRequest, ProvisionError};
    if crate::service::requested(&cli.service) {
        return Err(ProvisionError::ModeConflict.into());
    }
    let args = &cli.provisioning;
    if !args.provisioning {
        return Err(ProvisionError::Disabled.into());
    }
    let request = AccountRequest::from_flags(
        args.create_account_email.as_deref(),
        args.create_account_login.as_deref(),
        args.create_account_profile.as_deref(),
    )?;
    let client = TorqClient::new(cli::torq_settings(&cli.torq)?)?;
    let outcome = provision::create_account(&client, &request).await?;
    println!("{}", outcome.line());
    Ok(())
}

async fn sync_with(settings: TorqSettings, cli: &Cli, style: SummaryStyle) -> Result<(), AppError> {
    crate::c1z::check_target(&cli.common.file).map_err(SyncError::from)?;
    let target = cli.common.file.clone();
    let wait = cli.common.wait_for_lock;
    let _lock =
        tokio::task::spawn_blocking(move || OutputLock::acquire(&target, wait)).await.map_err(SyncError::from)??;
    let client = TorqClient::new(settings)?;
    let cancel = CancellationToken::new();
    let watcher = tokio::spawn(cancel_on_signal(cancel.clone()));
    let progress = crate::progress::wanted(style == SummaryStyle::Console).then(Arc::default);
    let ticker = progress.clone().map(crate::progress::Ticker::start);
    let request = SyncRequest { output: cli.common.file.clone(), writer: WriterOptions::default(), progress };
    let result = run_sync(&client, request, cancel).await;
    if let Some(ticker) = ticker {
        ticker.stop().await;
    }
    watcher.abort();
    let summary = result?;
    report(&summary, style);
    Ok(())
}

/// Cancels `cancel` on Ctrl-C or SIGTERM.
async fn cancel_on_signal(cancel: CancellationToken) {
    crate::signal::stop_requested().await;
    tracing::warn!("interrupted: stopping the sync and leaving the sync file as it was");
    cancel.cancel();
}

fn report(summary: &SyncSummary, style: SummaryStyle) {
    match style {
        SummaryStyle::Console => eprint!("{}", summary.to_console()),
        SummaryStyle::Json => {
            let users_by_status = serde_json::to_string(&summary.users_by_status).unwrap_or_default();
            tracing::info!(
                users = summary.users,
                users_by_status = %users_by_status,
                roles = summary.roles,
                entitlements = summary.entitlements,
                grants = summary.grants,
                users_with_unknown_role = summary.users_with_unknown_role,
                duplicate_users = summary.duplicate_users,
                token_requests = summary.requests.token_requests,
                api_requests = summary.requests.api_requests,
                retries = summary.requests.retries,
                duration_seconds = summary.duration.as_secs_f64(),
                output = %summary.output.display(),
                file_bytes = summary.file_bytes,
                peak_rss_bytes = summary.peak_rss_bytes.unwrap_or(0),
                sync_id = %summary.sync_id,
                previous_sync_id = summary.previous_sync_id.as_deref().unwrap_or(""),
                "sync complete"
            );
        }
    }
}
