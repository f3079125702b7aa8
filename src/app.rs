//! Runs the chosen command: a sync, an account creation (`--create-account-*`), `demo`, `review`, `capabilities` or
//! `health-check`, with Ctrl-C/SIGTERM handling and the final summary.
//! Maps every failure to [`AppError`], whose exit code main returns.
//!
//! The summary is the result of a sync: it is printed in both log formats whatever the log level, unless
//! `--quiet`. A stop request and the final rename race through one [`CommitGate`], so the "left as it was"
//! message is only shown when it is true.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::c1z::lock::{LockError, OutputLock};
use crate::c1z::{C1zError, CommitGate, WriterOptions};
use crate::cli::{self, Cli, Command, ConfigError};
use crate::connector::capabilities;
use crate::sim::{SimConfig, SimServer, Workspace};
use crate::sync::{run_sync, SyncError, SyncRequest, SyncSummary};
use crate::torq::{TorqClient, TorqError, TorqSettings};

/// Exit code for a configuration or usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a failed sync or runtime error.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of `review --fail-on` when a finding at or above the level exists.
pub const EXIT_FINDINGS: u8 = 3;
/// Exit code after Ctrl-C / SIGTERM.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

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
    #[error(transparent)]
    Service(#[from] crate::service::ServiceError),
    #[error(transparent)]
    Provision(#[from] crate::provision::ProvisionError),
    #[error(transparent)]
    Review(#[from] crate::review::ReviewError),
    /// `review --fail-on`: the report was written and holds findings at or above the level.
    #[error("{count} finding(s) at severity {level} or above (--fail-on {level})")]
    FailOn { count: usize, level: &'static str },
}

impl AppError {
    /// The process exit code for this error (also reported in the JSON error record).
    pub fn code(&self) -> u8 {
        match self {
            AppError::Config(_)
            | AppError::Lock(LockError::Io { .. } | LockError::Symlink { .. } | LockError::NotRegular { .. }) => {
                EXIT_USAGE
            }
            AppError::Service(e) if e.is_usage() => EXIT_USAGE,
            AppError::Provision(e) if e.is_usage() => EXIT_USAGE,
            AppError::Review(e) if e.is_usage() => EXIT_USAGE,
            AppError::FailOn { .. } => EXIT_FINDINGS,
            AppError::Sync(SyncError::Interrupted | SyncError::C1z(C1zError::Interrupted)) => EXIT_INTERRUPTED,
            AppError::Sync(SyncError::C1z(e)) if is_output_path_problem(e) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
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
        Some(Command::HealthCheck { endpoint, timeout }) => {
            let (bind, port) = (cli.service.health_check_bind_address, cli.service.health_check_port);
            let answer = crate::service::health::probe(endpoint, bind, port, std::time::Duration::from_secs(timeout))
                .await
                .map_err(crate::service::ServiceError::from)?;
            println!("{answer}");
            Ok(())
        }
        Some(Command::Review(ref args)) => review(&cli, args),
        Some(Command::Capabilities) => {
            print!("{}", capabilities::capabilities_json());
            Ok(())
        }
        Some(Command::Demo) => {
            let output = demo_output(&cli);
            cli::check_output_path(&output)?;
            let config = SimConfig::default();
            let server = SimServer::start(demo_workspace(), config.clone()).await.map_err(AppError::Demo)?;
            let settings = TorqSettings::new(
                config.client_id.clone(),
                config.client_secret.clone().into(),
                cli::checked_url(&server.api_url(), "--torq-api-url", "BATON_TORQ_API_URL")?,
                cli::checked_url(&server.auth_url(), "--torq-auth-url", "BATON_TORQ_AUTH_URL")?,
            );
            tracing::info!(api_url = %server.api_url(), "demo: simulated Torq workspace is up");
            let result = sync_with(settings, output, &cli, style, true).await;
            server.shutdown().await;
            result
        }
        // --create-account-* invites a user instead of syncing (src/provision.rs).
        None if cli.provisioning.create_account_requested() => create_account_once(&cli).await,
        // --client-id/--client-secret run the ConductorOne daemon (src/service).
        None if crate::service::requested(&cli.service) => {
            let mut config = crate::service::ServiceConfig::from_args(&cli.service)?;
            config.provisioning = cli.provisioning.provisioning;
            let client = TorqClient::new(cli::torq_settings(&cli.torq)?)?;
            Ok(crate::service::run(config, client).await?)
        }
        None => {
            if cli.service.health_check {
                tracing::warn!("--health-check (BATON_HEALTH_CHECK) applies to service mode only; ignored");
            }
            cli::check_output_path(&cli.common.file)?;
            let settings = cli::torq_settings(&cli.torq)?;
            sync_with(settings, cli.common.file.clone(), &cli, style, false).await
        }
    }
}

/// `review`: reads the sync file (no network, no credentials), writes the report, then applies `--fail-on`.
fn review(cli: &Cli, args: &cli::ReviewArgs) -> Result<(), AppError> {
    use std::io::IsTerminal;
    let options = crate::review::ReviewOptions {
        file: cli.common.file.clone(),
        against: args.against.clone(),
        format: args.format,
        output: args.output.clone(),
        inactive_days: args.inactive_days,
        pending_days: args.pending_days,
        privileged_roles: args.privileged_roles.clone(),
        now: args.now.unwrap_or_else(chrono::Utc::now),
        color: args.output.is_none()
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let report = crate::review::run(&options)?;
    if let Some(level) = args.fail_on {
        let count = report.findings_at_or_above(level);
        if count > 0 {
            return Err(AppError::FailOn { count, level: level.as_str() });
        }
    }
    Ok(())
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
        return Err(match &args.create_account_from {
            Some(source) => ProvisionError::DisabledFrom(source.clone()),
            None => ProvisionError::Disabled,
        }
        .into());
    }
    if let Some(source) = &args.create_account_from {
        // Nothing typed asked for an invite: say what did, before anything is sent.
        tracing::warn!("running an invite, not a sync: {source} is set (no sync runs; unset it to sync)");
    }
    let request = AccountRequest::from_flags(
        args.create_account_email.as_deref(),
        args.create_account_login.as_deref(),
        args.create_account_profile.as_deref(),
    )?;
    let client = TorqClient::new(cli::torq_settings(&cli.torq)?)?;
    let outcome = provision::create_account(&client, crate::connector::user::USER_TYPE_ID, &request).await?;
    tracing::info!(
        user_id = %outcome.account().user.id,
        role = %outcome.account().role_name,
        created = matches!(outcome, provision::AccountOutcome::Created(_)),
        "account creation done"
    );
    println!("{}", outcome.line());
    Ok(())
}

/// Default output of `demo`: never the default (or configured) file of a real sync.
pub(crate) const DEMO_FILE: &str = "demo.c1z";

/// `demo` writes demo.c1z unless -f was typed on its command line: a BATON_FILE or config-file `file` is meant
/// for real syncs, and demo data there would become the "previous sync" of the next real one.
fn demo_output(cli: &Cli) -> PathBuf {
    if cli.common.file_on_command_line {
        return cli.common.file.clone();
    }
    if cli.common.file != std::path::Path::new("sync.c1z") {
        tracing::info!(ignored = %cli.common.file.display(), "demo: writing {DEMO_FILE}, not the configured --file");
    }
    PathBuf::from(DEMO_FILE)
}

/// The demo workspace as of now: like a real workspace between two syncs, one user has just logged in, so two
/// demo runs differ a little (in that user).
fn demo_workspace() -> Workspace {
    let mut workspace = Workspace::demo();
    if let Workspace::Fixed { users, .. } = &mut workspace {
        if let Some(user) = users.iter_mut().find(|u| u.status == "VERIFIED") {
            user.last_login_time = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        }
    }
    workspace
}

/// A sync into `output`; `demo` removes the lock file afterwards (nobody keeps the demo's output).
async fn sync_with(
    settings: TorqSettings,
    output: PathBuf,
    cli: &Cli,
    style: SummaryStyle,
    demo: bool,
) -> Result<(), AppError> {
    crate::c1z::check_target(&output).map_err(SyncError::from)?;
    let target = output.clone();
    let wait = cli.common.wait_for_lock;
    // Nothing listens for signals yet: a stop while waiting for the lock ends the process at once (exit 130).
    let lock =
        tokio::task::spawn_blocking(move || OutputLock::acquire(&target, wait)).await.map_err(SyncError::from)??;
    let _lock = if demo { lock.remove_when_released(&output) } else { lock };
    let client = TorqClient::new(settings)?;
    let cancel = CancellationToken::new();
    let gate = CommitGate::new();
    // Listening starts here, before the first work file exists, so a stop from now on is handled gracefully.
    let watcher = tokio::spawn(stop_on_signal(crate::signal::listen(), gate.clone(), cancel.clone()));
    let quiet = cli.common.quiet;
    let progress = (!quiet && crate::progress::wanted(style == SummaryStyle::Console)).then(Arc::default);
    let ticker = progress.clone().map(crate::progress::Ticker::start);
    let writer = WriterOptions { gate: Some(gate), ..WriterOptions::default() };
    let request = SyncRequest { output, writer, progress, resource_types: Vec::new() };
    let result = run_sync(&client, request, cancel).await;
    if let Some(ticker) = ticker {
        ticker.stop().await;
    }
    watcher.abort();
    let summary = result?;
    if !quiet {
        report(&summary, style);
    }
    Ok(())
}

/// On Ctrl-C or SIGTERM: abandons the sync if the new file is not yet being put in place, and says which it was.
/// A second signal after an abandon exits at once (130): the file can no longer change.
async fn stop_on_signal(mut listener: crate::signal::StopListener, gate: CommitGate, cancel: CancellationToken) {
    listener.next().await;
    if gate.abandon() {
        tracing::warn!("interrupted: stopping the sync and leaving the sync file as it was");
        cancel.cancel();
        crate::signal::exit_on_second(listener, "the sync file was left as it was").await;
    } else {
        tracing::warn!("interrupted after the new sync file was put in place; it is complete, finishing normally");
    }
}

fn report(summary: &SyncSummary, style: SummaryStyle) {
    match style {
        SummaryStyle::Console => eprint!("{}", summary.to_console()),
        SummaryStyle::Json => eprintln!("{}", summary_record(summary)),
    }
}

/// The JSON summary: one record shaped like the log records (timestamp, level, message, target) whose fields
/// are the summary's, as real JSON values (objects, numbers, null), not strings.
pub(crate) fn summary_record(summary: &SyncSummary) -> serde_json::Value {
    use serde_json::{Map, Value};
    let mut fields = match serde_json::to_value(summary) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    // Flat names, as before: the request counters at the top level, the duration named in seconds.
    if let Some(Value::Object(requests)) = fields.remove("requests") {
        fields.extend(requests);
    }
    if let Some(duration) = fields.remove("duration") {
        fields.insert("duration_seconds".into(), duration);
    }
    // Per resource type, as objects keyed by type id: "resources": {"user": 12, "role": 5, "api_key": 6}.
    fields.remove("resource_types");
    let per_type = |f: &dyn Fn(&crate::sync::TypeSummary) -> Value| -> Value {
        Value::Object(summary.resource_types.iter().map(|t| (t.resource_type.to_string(), f(t))).collect())
    };
    fields.insert("resources".into(), per_type(&|t| t.resources.into()));
    fields.insert(
        "resources_by_kind".into(),
        per_type(&|t| Value::Object(t.by_kind.iter().map(|(k, v)| (k.to_string(), (*v).into())).collect())),
    );
    fields.insert("unknown_role".into(), per_type(&|t| t.unknown_role.into()));
    fields.insert("duplicates".into(), per_type(&|t| t.duplicates.into()));
    fields.insert("conflicting".into(), per_type(&|t| t.conflicting.into()));
    fields.insert("malformed".into(), per_type(&|t| t.malformed.into()));
    let mut record = Map::new();
    record.insert("timestamp".into(), chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into());
    record.insert("level".into(), "INFO".into());
    record.insert("message".into(), "sync complete".into());
    record.extend(fields);
    record.insert("target".into(), module_path!().into());
    Value::Object(record)
}
