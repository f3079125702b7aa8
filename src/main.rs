//! baton-torq entry point: parse the command line, set up logging, run, map the outcome to an exit code
//! (0 success, 1 sync failure, 2 usage or configuration error, 3 `review --fail-on` found something, 130
//! interrupted).
//!
//! Every error is exactly one line on stderr, in the chosen log format: `error: ...` on the console, one JSON
//! record in JSON mode (parse and config-file errors included).

use std::io::IsTerminal;
use std::process::ExitCode;

use baton_torq::app::{self, SummaryStyle, EXIT_FAILURE, EXIT_USAGE};
use baton_torq::cli::{self, Cli, LogFormat, LogLevel};
use baton_torq::config_file;
use baton_torq::progress::StderrClearingLine;
use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    // First of all: a Ctrl-C or SIGTERM from now on exits 130, never the shell's 143 for an unhandled signal.
    baton_torq::signal::install_early();
    let argv: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    // The config file's values become defaults of the flags whose BATON_* variable is unset, so clap gives
    // flags > env > file > defaults.
    let (command, config_file) = match config_file::apply(Cli::command()) {
        Ok(applied) => applied,
        Err(e) => return fail(json_before_parse(&argv, &Cli::command()), &e.to_string(), EXIT_USAGE),
    };
    // Decided before clap takes the command: a parse error is printed in the format the file asks for, too.
    let json_if_unparsed = json_before_parse(&argv, &command);
    let parsed = command.try_get_matches_from(&argv).and_then(|matches| {
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli::note_value_sources(&mut cli, &matches, config_file.as_ref().map(|a| a.path.as_path()));
        Ok(cli)
    });
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let from_file = config_file.as_ref().map(|a| a.source_of_refused_value(&e, &argv, &Cli::command()));
            return usage_error(e, &argv, json_if_unparsed, &from_file.unwrap_or_default());
        }
    };
    let json = match cli.common.log_format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Console) => false,
        None => default_json(),
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
        // One line per run, however many such keys the file sets.
        let endpoint_keys = applied.endpoint_keys();
        if !endpoint_keys.is_empty() {
            tracing::warn!(
                path = %applied.path.display(),
                keys = %endpoint_keys.join(","),
                "the config file sets where connections go (or which CA is trusted); check that it is yours"
            );
        }
    }
    // Before the runtime starts its threads (service mode: one malloc arena, see src/service/memory.rs).
    baton_torq::service::memory::prepare(&cli.service);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(json, &format!("cannot start the async runtime: {e}"), EXIT_FAILURE),
    };
    let style = if json { SummaryStyle::Json } else { SummaryStyle::Console };
    match runtime.block_on(app::run(cli, style)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(json, &e.to_string(), e.code()),
    }
}

/// JSON logs unless stderr is a terminal (the default of --log-format).
fn default_json() -> bool {
    !std::io::stderr().is_terminal()
}

/// The log format for an error met before the command line was parsed.
fn json_before_parse(argv: &[String], cmd: &clap::Command) -> bool {
    match cli::log_format_hint(argv, cmd) {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Console) => false,
        None => default_json(),
    }
}

/// Prints `message` as the run's one error line and returns `code`.
fn fail(json: bool, message: &str, code: u8) -> ExitCode {
    if json {
        // A no-op when logging is already set up.
        init_logging(true, LogLevel::Info);
        tracing::error!(error = %message, exit_code = code, "baton-torq failed");
    } else {
        // Error lines quote server text (role names, Torq's messages): one escaped line, never raw.
        eprintln!("error: {}", baton_torq::escape::escape_line(message));
    }
    ExitCode::from(code)
}

/// clap's help and version go to stdout as usual; its errors become one line that names the fix (and, with
/// `from_file`, the config file a refused value came from).
fn usage_error(e: clap::Error, argv: &[String], json: bool, from_file: &str) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    fail(json, &format!("{}{from_file}", cli::describe_parse_error(&e, argv)), EXIT_USAGE)
}

fn init_logging(json: bool, level: LogLevel) {
    let filter = tracing_subscriber::EnvFilter::new(format!(
        // rustls-platform-verifier logs certificate failures itself; the error line already says it (service mode)
        "warn,rustls_platform_verifier=off,baton_torq={}",
        level.as_str()
    ));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // try_init: an error path may set up logging after it was set up already.
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(false).try_init()
    } else {
        // Console lines first clear a terminal progress line, if one is shown.
        let builder = builder.with_writer(StderrClearingLine);
        // Fields and messages carry server text: escaped by the one rule of src/escape.rs, one event per line.
        builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .compact()
            .fmt_fields(baton_torq::escape::console::EscapedFields)
            .try_init()
    };
}
