//! baton-torq entry point: parse the command line, set up logging, run, map the outcome to an exit code
//! (0 success, 1 sync failure, 2 usage or configuration error, 130 interrupted).

use std::io::IsTerminal;
use std::process::ExitCode;

use baton_torq::app::{self, SummaryStyle, EXIT_FAILURE, EXIT_USAGE};
use baton_torq::cli::{Cli, LogFormat, LogLevel};
use baton_torq::config_file;
use baton_torq::progress::StderrClearingLine;
use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    // The config file only fills in BATON_* variables that are unset, so clap gives flags > env > file > defaults.
    let config_file = match config_file::apply_to_env(&Cli::command()) {
        Ok(applied) => applied,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let parsed = Cli::try_parse();
    // clap has read the file's values; secrets from the file must not stay in the process environment.
    if let Some(applied) = &config_file {
        applied.remove_from_env();
    }
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let json = match cli.common.log_format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Console) => false,
        None => !std::io::stderr().is_terminal(),
    };
    let level = if cli.common.verbose && cli.common.log_level != LogLevel::Trace {
        LogLevel::Debug
    } else {
        cli.common.log_level
    };
    init_logging(json, level);
    if let Some(applied) = &config_file {
        // Key names only: the file usually holds the client secret.
        tracing::debug!(
            path = %applied.path.display(),
            keys = %applied.from_file.join(","),
            overridden_by_env = %applied.overridden_by_env.join(","),
            "read config file"
        );
        for key in applied.endpoint_keys() {
            tracing::warn!(
                path = %applied.path.display(),
                key,
                "the config file sets where connections go (or which CA is trusted); check that it is yours"
            );
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let style = if json { SummaryStyle::Json } else { SummaryStyle::Console };
    match runtime.block_on(app::run(cli, style)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Exactly one line on stderr: a JSON record in JSON mode, plain text otherwise.
            if json {
                tracing::error!(error = %e, "baton-torq failed");
            } else {
                eprintln!("error: {e}");
            }
            e.exit_code()
        }
    }
}

/// clap's help and version go to stdout as usual; its errors become one line.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    if let Some(shown) = unexpected_word(&e) {
        // A stray word may be a secret (`--torq-client-secret= S3CRET`): name only flags, never values.
        eprintln!("error: unexpected argument {shown}; run 'baton-torq --help' for usage");
        return ExitCode::from(EXIT_USAGE);
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
    eprintln!("error: {first}; run 'baton-torq --help' for usage");
    ExitCode::from(EXIT_USAGE)
}

/// For an unknown argument or subcommand: the flag name (`'--verbos'`, without any `=value`), or a note that a
/// value was not shown. `None` for other errors.
fn unexpected_word(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(e.kind(), ErrorKind::UnknownArgument | ErrorKind::InvalidSubcommand) {
        return None;
    }
    let word = [ContextKind::InvalidArg, ContextKind::InvalidSubcommand].into_iter().find_map(|k| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    })?;
    Some(match word.strip_prefix('-') {
        Some(_) => format!("'{}'", word.split('=').next().unwrap_or_default()),
        None => {
            "(a value without a flag; not shown in case it is a secret - check for a stray space after '=')".to_string()
        }
    })
}

fn init_logging(json: bool, level: LogLevel) {
    let filter = tracing_subscriber::EnvFilter::new(format!(
        // rustls-platform-verifier logs certificate failures itself; the error line already says it (service mode)
        "warn,rustls_platform_verifier=off,baton_torq={}",
        level.as_str()
    ));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).with_current_span(false).init();
    } else {
        // Console lines first clear a terminal progress line, if one is shown.
        let builder = builder.with_writer(StderrClearingLine);
        builder.with_target(false).with_ansi(std::io::stderr().is_terminal()).compact().init();
    }
}
