//! The Baton config file: `.baton.yaml` in the working directory, or the file named by `BATON_CONFIG_PATH`.
//!
//! As in the Go Baton SDK, the file is a YAML mapping whose keys are flag names without the dashes in front
//! (`torq-client-id: ...`, `log-level: debug`, `file: out.c1z`) and whose values are single scalars. Precedence
//! is flags > environment > file > defaults. The file is applied to the clap command before it parses the command
//! line: every key whose `BATON_*` variable is unset (or empty, as viper treats it) becomes that flag's default
//! value, hidden from `--help`, so clap's own flag and environment handling gives the order above. The process
//! environment is never changed: `std::env::set_var` races with any thread reading the environment (it is
//! `unsafe` from edition 2024 on), and a secret put there would be visible to child processes.
//!
//! Rules: `BATON_CONFIG_PATH` must end in `.yaml` or `.yml` and the file must exist; a missing default
//! `./.baton.yaml` is fine. Unknown keys, lists, mappings and invalid YAML are errors (exit code 2). Values are
//! never logged or printed, only key names, because the file usually holds the client secret.
//!
//! Trust: the file can say where the credentials go (`torq-auth-url`, `c1-api-host`, a CA file), so a file that
//! is not owned by the current user (or root) or is writable by group or others is refused (exit code 2), and a
//! warning names each such key a trusted file sets.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use secrecy::zeroize::Zeroizing;
use serde_norway::Value;

/// Environment variable naming the config file.
pub(crate) const CONFIG_PATH_ENV: &str = "BATON_CONFIG_PATH";
/// Config file read from the working directory when `BATON_CONFIG_PATH` is not set.
pub(crate) const DEFAULT_CONFIG_FILE: &str = ".baton.yaml";

/// A config file problem: one line naming the file and what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("{CONFIG_PATH_ENV} must name a .yaml or .yml file, got {0:?}; point it at a YAML file or unset it")]
    BadExtension(String),
    #[error("config file {0} (from {CONFIG_PATH_ENV}) does not exist; create it or unset {CONFIG_PATH_ENV}")]
    NotFound(String),
    #[error("cannot read config file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("config file {path} is not valid YAML: {reason}")]
    Syntax { path: String, reason: String },
    #[error("config file {path} must be a mapping of flag names to values, e.g. \"torq-client-id: ID\"")]
    NotAMapping { path: String },
    #[error("config file {path}: unknown key {key:?}{did_you_mean}; valid keys are: {valid}")]
    UnknownKey { path: String, key: String, did_you_mean: String, valid: String },
    #[error("config file {path}: key {key:?} must have one value (text, a number or true/false), not {found}")]
    NotScalar { path: String, key: String, found: &'static str },
    #[error(
        "config file {path} is {why}, so someone else could change where the credentials are sent; refusing to \
         read it: {fix}"
    )]
    Untrusted { path: String, why: String, fix: String },
    /// As ssh treats a private key: a secret others can read is a secret others have.
    #[error(
        "config file {path} holds {key} but can be read by group or others (mode {mode:04o}); refusing to use it: \
         run chmod 600 {path}"
    )]
    SecretReadable { path: String, key: String, mode: u32 },
}

/// Keys whose value is a secret: a file that sets one must be readable by its owner only.
pub(crate) const SECRET_KEYS: [&str; 2] = ["torq-client-secret", "client-secret"];

/// Keys that decide where connections go (and so where credentials are sent) or which CA is trusted: a config
/// file that sets one gets a warning naming it.
pub(crate) const ENDPOINT_KEYS: [&str; 4] = ["torq-api-url", "torq-auth-url", "c1-api-host", "c1-ca-cert-file"];

/// What was taken from a config file (key names only; values are never kept for logging).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub path: PathBuf,
    /// Keys whose value came from the file.
    pub from_file: Vec<String>,
    /// Keys in the file that an environment variable already set (the environment wins).
    pub overridden_by_env: Vec<String>,
}

impl Applied {
    /// Keys from [`ENDPOINT_KEYS`] whose value came from the file (named in one warning per run).
    pub fn endpoint_keys(&self) -> Vec<&str> {
        self.from_file.iter().map(String::as_str).filter(|k| ENDPOINT_KEYS.contains(k)).collect()
    }

    /// `"; the value is from config file PATH (key KEY)"` when the value clap refused in `e` came from this file:
    /// a key the file set, for a flag not typed on the command line (`argv`). Empty otherwise.
    pub fn source_of_refused_value(&self, e: &clap::Error, argv: &[String], cmd: &clap::Command) -> String {
        use clap::error::{ContextKind, ContextValue, ErrorKind};
        if !matches!(e.kind(), ErrorKind::InvalidValue | ErrorKind::ValueValidation) {
            return String::new();
        }
        let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else { return String::new() };
        let Some(long) = arg.split_whitespace().next().and_then(|f| f.strip_prefix("--")) else {
            return String::new();
        };
        if !self.from_file.iter().any(|k| k == long) {
            return String::new();
        }
        let short = cmd.get_arguments().find(|a| a.get_long() == Some(long)).and_then(|a| a.get_short());
        let typed = argv.iter().skip(1).take_while(|w| *w != "--").any(|w| {
            w.strip_prefix("--").is_some_and(|rest| rest == long || rest.starts_with(&format!("{long}=")))
                || short.is_some_and(|c| w.starts_with('-') && !w.starts_with("--") && w[1..].starts_with(c))
        });
        if typed {
            return String::new();
        }
        format!("; the value is from config file {} (key {long})", self.path.display())
    }
}

/// Flag name -> environment variable, for every flag of `cmd` (and its subcommands) that has one.
pub(crate) fn known_keys(cmd: &clap::Command) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    collect_keys(cmd, &mut keys);
    keys
}

fn collect_keys(cmd: &clap::Command, keys: &mut BTreeMap<String, String>) {
    for arg in cmd.get_arguments() {
        if let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) {
            keys.entry(long.to_string()).or_insert_with(|| env.to_string_lossy().into_owned());
        }
    }
    for sub in cmd.get_subcommands() {
        collect_keys(sub, keys);
    }
}

/// Which file to read: `BATON_CONFIG_PATH` (must be YAML and must exist) or `./.baton.yaml` (optional).
/// `Ok(None)` when there is nothing to read.
pub(crate) fn locate(config_path_env: Option<OsString>) -> Result<Option<PathBuf>, ConfigFileError> {
    match config_path_env.filter(|p| !p.is_empty()) {
        Some(raw) => {
            let path = PathBuf::from(raw);
            let ext = path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
            if !matches!(ext.as_deref(), Some("yaml" | "yml")) {
                return Err(ConfigFileError::BadExtension(path.display().to_string()));
            }
            if !path.exists() {
                return Err(ConfigFileError::NotFound(path.display().to_string()));
            }
            Ok(Some(path))
        }
        None => {
            let path = PathBuf::from(DEFAULT_CONFIG_FILE);
            Ok(path.exists().then_some(path))
        }
    }
}

/// Parses the file's text into (key, environment variable, value) triples, checking every key.
pub(crate) fn parse(
    path: &Path,
    text: &str,
    keys: &BTreeMap<String, String>,
) -> Result<Vec<(String, String, String)>, ConfigFileError> {
    let shown = path.display().to_string();
    if nested_deeper_than(text, MAX_NESTING) {
        return Err(ConfigFileError::Syntax {
            path: shown,
            reason: format!(
                "it is nested more than {MAX_NESTING} levels deep, while a config file is a flat list of 'flag: value' \
                 lines; check that it is the file meant"
            ),
        });
    }
    let doc: Value = serde_norway::from_str(text)
        .map_err(|e| ConfigFileError::Syntax { path: shown.clone(), reason: one_line(&e.to_string()) })?;
    let map = match doc {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(m) => m,
        _ => return Err(ConfigFileError::NotAMapping { path: shown }),
    };
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let key = match k {
            Value::String(s) => s,
            _ => return Err(ConfigFileError::NotAMapping { path: shown }),
        };
        let Some(env) = keys.get(&key) else {
            let valid = keys.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
            let did_you_mean = crate::cli::closest(&key, keys.keys().map(String::as_str))
                .map(|k| format!(" (did you mean {k:?}?)"))
                .unwrap_or_default();
            let key = key.chars().take(64).collect();
            return Err(ConfigFileError::UnknownKey { path: shown, key, did_you_mean, valid });
        };
        let value = match v {
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Null => return Err(ConfigFileError::NotScalar { path: shown, key, found: "an empty value" }),
            Value::Sequence(_) => return Err(ConfigFileError::NotScalar { path: shown, key, found: "a list" }),
            Value::Mapping(_) => return Err(ConfigFileError::NotScalar { path: shown, key, found: "a mapping" }),
            Value::Tagged(_) => return Err(ConfigFileError::NotScalar { path: shown, key, found: "a tagged value" }),
        };
        out.push((key, env.clone(), value));
    }
    Ok(out)
}

/// Reads the config file, if any, and returns `cmd` with the file's value as the (hidden) default of every flag
/// whose `BATON_*` variable is unset, and what was taken from the file.
pub fn apply(cmd: clap::Command) -> Result<(clap::Command, Option<Applied>), ConfigFileError> {
    // The file's keys are the flags' variables, so the empty ones are unbound only after the file is applied.
    let (cmd, applied) = apply_file(std::env::var_os(CONFIG_PATH_ENV), cmd)?;
    Ok((without_empty_env(cmd), applied))
}

/// `cmd` with every flag whose `BATON_*` variable is set but empty unbound from it: an empty variable counts as
/// unset (as in viper), so `BATON_TORQ_REGION=` keeps the default instead of failing as an empty value.
fn without_empty_env(mut cmd: clap::Command) -> clap::Command {
    let empty: Vec<clap::Id> = cmd
        .get_arguments()
        .filter(|a| a.get_env().is_some_and(|env| std::env::var_os(env).is_some_and(|v| v.is_empty())))
        .map(|a| a.get_id().clone())
        .collect();
    for id in empty {
        cmd = cmd.mut_arg(id, |a| a.env(None));
    }
    let subcommands: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_owned()).collect();
    for name in subcommands {
        cmd = cmd.mut_subcommand(name, without_empty_env);
    }
    cmd
}

/// [`apply`] with the value of `BATON_CONFIG_PATH` given.
pub(crate) fn apply_file(
    config_path_env: Option<OsString>,
    mut cmd: clap::Command,
) -> Result<(clap::Command, Option<Applied>), ConfigFileError> {
    let Some(path) = locate(config_path_env)? else {
        return Ok((cmd, None));
    };
    let (text, mode) = read_trusted(&path)?;
    let entries = parse(&path, &text, &known_keys(&cmd))?;
    if let Some((key, _, _)) = entries.iter().find(|(key, _, _)| SECRET_KEYS.contains(&key.as_str())) {
        if mode & 0o044 != 0 {
            let path = path.display().to_string();
            return Err(ConfigFileError::SecretReadable { path, key: key.clone(), mode });
        }
    }
    let mut applied = Applied { path, ..Applied::default() };
    for (key, env, value) in entries {
        match std::env::var_os(&env) {
            Some(v) if !v.is_empty() => applied.overridden_by_env.push(key),
            // An empty variable counts as unset (as in viper): clap must not read it, or it would be an empty value.
            set => {
                cmd = with_default(cmd, &key, &value, set.is_some());
                applied.from_file.push(key);
            }
        }
    }
    Ok((cmd, Some(applied)))
}

/// `cmd` with `value` as the default of the flag `--long`, in the command and every subcommand that has it. The
/// default is hidden from `--help` (it may be the client secret); `ignore_env` unbinds the flag's (empty)
/// environment variable.
fn with_default(mut cmd: clap::Command, long: &str, value: &str, ignore_env: bool) -> clap::Command {
    let ids: Vec<clap::Id> =
        cmd.get_arguments().filter(|a| a.get_long() == Some(long)).map(|a| a.get_id().clone()).collect();
    for id in ids {
        cmd = cmd.mut_arg(id, |a| {
            let mut a = a.default_value(value.to_owned());
            if a.get_action().takes_values() {
                a = a.hide_default_value(true);
            }
            if ignore_env {
                a = a.env(None);
            }
            a
        });
    }
    let subcommands: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_owned()).collect();
    for name in subcommands {
        cmd = cmd.mut_subcommand(name, |sub| with_default(sub, long, value, ignore_env));
    }
    cmd
}

/// Largest config file read; a real one is a few hundred bytes.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The file's text and permission bits, if the file is one only this user (or root) can change: owned by the current
/// user or root, and not writable by group or others. Checked on the opened file, so it cannot be swapped between
/// check and read.
fn read_trusted(path: &Path) -> Result<(Zeroizing<String>, u32), ConfigFileError> {
    use std::io::Read as _;
    use std::os::unix::fs::MetadataExt as _;
    let shown = path.display().to_string();
    let unreadable =
        |e: std::io::Error| ConfigFileError::Unreadable { path: shown.clone(), reason: one_line(&e.to_string()) };
    // Never blocks: a FIFO planted as .baton.yaml is refused, not waited on.
    let file = crate::regular_file::open_for_reading(path).map_err(|e| match e {
        crate::regular_file::OpenError::NotRegular(kind) => ConfigFileError::Unreadable {
            path: shown.clone(),
            reason: format!("it is {kind}, not a regular file; point {CONFIG_PATH_ENV} at a YAML file, or remove it"),
        },
        crate::regular_file::OpenError::Io(e) => unreadable(e),
    })?;
    let meta = file.metadata().map_err(unreadable)?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(ConfigFileError::Untrusted {
            path: shown.clone(),
            why: format!("owned by another user (uid {}, you are uid {me})", meta.uid()),
            fix: format!("use a file you own (e.g. copy it and run chmod 600 on the copy) or run chown {me} {shown}"),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(ConfigFileError::Untrusted {
            path: shown.clone(),
            why: format!("writable by group or others (mode {mode:04o})"),
            fix: format!("run chmod go-w {shown} (chmod 600 also keeps others from reading the secret)"),
        });
    }
    let too_large = || ConfigFileError::Unreadable {
        path: shown.clone(),
        reason: format!(
            "it is larger than {} KiB, while a config file is a few lines of 'flag: value'; check that it is the \
             file meant",
            MAX_CONFIG_BYTES / 1024
        ),
    };
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(too_large());
    }
    // The text usually holds the client secret: reserved up front (no reallocation copies) and wiped on drop. The
    // read is bounded too: a device reports no length.
    let mut text = Zeroizing::new(String::with_capacity(usize::try_from(meta.len()).unwrap_or(0).saturating_add(1)));
    file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text).map_err(unreadable)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_large());
    }
    Ok((text, mode))
}

/// Deepest nesting a config file may have. It is a flat mapping, so a few levels already mean it is not a config
/// file; the YAML parser's time grows with the square of the nesting (a 400 KB `[[[[…` took 110 s), so this is
/// checked first, in one pass.
const MAX_NESTING: usize = 16;

/// Whether `text` nests collections more than `limit` deep: flow collections (`[`, `{` where a value starts, and
/// anywhere inside one) plus block levels (indentation, and `- `/`? ` entries opening a collection on the same
/// line). Quoted scalars and comments are skipped. Linear in the text; it may over-count odd but valid YAML (the
/// answer is then a refusal of a file nothing like a config file), never under-count what the parser nests.
fn nested_deeper_than(text: &str, limit: usize) -> bool {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let mut quote = Quote::None;
    let mut flow = 0usize;
    // Columns of the open block levels.
    let mut block: Vec<usize> = Vec::new();
    for line in text.split('\n') {
        let bytes = line.as_bytes();
        let mut i = 0;
        // A value may start here: at the line's content, after `-`, `?`, `:`, `,` or a flow opener.
        let mut at_start = true;
        if quote == Quote::None && flow == 0 {
            let indent = bytes.iter().take_while(|&&b| b == b' ').count();
            let rest = &bytes[indent..];
            if rest.is_empty() || rest[0] == b'#' {
                continue;
            }
            while block.last().is_some_and(|&top| top >= indent) {
                block.pop();
            }
            block.push(indent);
            i = indent;
            // `- - x` or `? - x`: each entry marker opens one more level on the same line.
            while i + 1 < bytes.len() && matches!(bytes[i], b'-' | b'?') && matches!(bytes[i + 1], b' ' | b'\t') {
                i += 2;
                while i < bytes.len() && bytes[i] == b' ' {
                    i += 1;
                }
                block.push(i);
            }
            if block.len() > limit {
                return true;
            }
        }
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Quote::Single => {
                    if b == b'\'' {
                        quote = Quote::None;
                        at_start = false;
                    }
                }
                Quote::Double => match b {
                    b'\\' => i += 1,
                    b'"' => {
                        quote = Quote::None;
                        at_start = false;
                    }
                    _ => {}
                },
                Quote::None => match b {
                    b' ' | b'\t' | b'\r' => {}
                    b'#' if at_start || i == 0 || matches!(bytes[i - 1], b' ' | b'\t') => break,
                    b'\'' if at_start => quote = Quote::Single,
                    b'"' if at_start => quote = Quote::Double,
                    b'[' | b'{' if at_start || flow > 0 => {
                        flow += 1;
                        if flow + block.len() > limit {
                            return true;
                        }
                    }
                    b']' | b'}' if flow > 0 => {
                        flow -= 1;
                        at_start = false;
                    }
                    b'-' | b'?' | b':' | b',' => at_start = true,
                    _ => at_start = false,
                },
            }
            i += 1;
        }
    }
    false
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> BTreeMap<String, String> {
        use clap::CommandFactory;
        known_keys(&crate::cli::Cli::command())
    }

    #[test]
    fn every_flag_with_an_env_var_is_a_key() {
        let k = keys();
        assert_eq!(k.get("torq-client-id").map(String::as_str), Some("BATON_TORQ_CLIENT_ID"));
        assert_eq!(k.get("torq-client-secret").map(String::as_str), Some("BATON_TORQ_CLIENT_SECRET"));
        assert_eq!(k.get("file").map(String::as_str), Some("BATON_FILE"));
        assert_eq!(k.get("log-level").map(String::as_str), Some("BATON_LOG_LEVEL"));
        assert!(!k.contains_key("help"));
        for (flag, env) in &k {
            assert_eq!(env, &format!("BATON_{}", flag.to_uppercase().replace('-', "_")), "{flag}");
        }
    }

    #[test]
    fn scalars_become_strings() {
        let text = "torq-client-id: abc\nverbose: true\nhttp-timeout-seconds: 90\nfile: 'out.c1z'\n";
        let got = parse(Path::new("c.yaml"), text, &keys()).unwrap();
        let got: Vec<(&str, &str)> = got.iter().map(|(_, e, v)| (e.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("BATON_TORQ_CLIENT_ID", "abc"),
                ("BATON_VERBOSE", "true"),
                ("BATON_HTTP_TIMEOUT_SECONDS", "90"),
                ("BATON_FILE", "out.c1z")
            ]
        );
    }

    #[test]
    fn nesting_is_measured_in_one_pass_outside_quotes_and_comments() {
        let deep = |n: usize| nested_deeper_than(&"[".repeat(n), 16);
        assert!(!deep(15) && deep(17));
        assert!(nested_deeper_than(&format!("{}x", "- ".repeat(20)), 16));
        assert!(nested_deeper_than("a: {b: {c: {d: [1]}}}", 4));
        assert!(!nested_deeper_than("a: {b: {c: {d: [1]}}}", 5));
        // Brackets inside a plain scalar, quotes and comments open nothing.
        let flat = format!(
            "torq-client-secret: ab[[{{{{[[x\ntorq-client-id: '{}'\nb: \"{}\\\"[\"\n# {}\nc: d # {}\n",
            "[".repeat(40),
            "{".repeat(40),
            "[".repeat(40),
            "{".repeat(40)
        );
        assert!(!nested_deeper_than(&flat, 2), "{flat}");
        // Indentation that goes back out closes levels.
        assert!(!nested_deeper_than("a:\n  b:\n    c: 1\nd:\n  e: 2\n", 3));
        assert!(nested_deeper_than("a:\n  b:\n    c:\n      d: 1\n", 3));
    }

    #[test]
    fn empty_file_is_fine() {
        assert!(parse(Path::new("c.yaml"), "", &keys()).unwrap().is_empty());
        assert!(parse(Path::new("c.yaml"), "# only a comment\n", &keys()).unwrap().is_empty());
    }

    #[test]
    fn bad_files_are_one_line_errors_without_values() {
        let e = parse(Path::new("c.yaml"), "torq-client-idd: x\n", &keys()).unwrap_err().to_string();
        assert!(e.contains("unknown key \"torq-client-idd\"") && e.contains("torq-client-id"), "{e}");
        let e = parse(Path::new("c.yaml"), "file: [a, b]\n", &keys()).unwrap_err().to_string();
        assert!(e.contains("\"file\"") && e.contains("a list"), "{e}");
        let e = parse(Path::new("c.yaml"), "- a\n", &keys()).unwrap_err().to_string();
        assert!(e.contains("must be a mapping"), "{e}");
        let e = parse(Path::new("c.yaml"), "torq-client-secret: \"s3cret\n", &keys()).unwrap_err().to_string();
        assert!(e.contains("not valid YAML") && !e.contains('\n') && !e.contains("s3cret"), "{e}");
        let e = parse(Path::new("c.yaml"), "torq-client-secret:\n", &keys()).unwrap_err().to_string();
        assert!(e.contains("an empty value"), "{e}");
    }

    /// A config file with mode `mode` holding `text`, in a fresh directory.
    fn config_file(text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        (dir, path)
    }

    /// A command whose only flags have environment variables no other test uses (the environment is global).
    fn private_command() -> clap::Command {
        clap::Command::new("t")
            .arg(clap::Arg::new("secret").long("i13-test-secret").env("BATON_I13_TEST_SECRET"))
            .arg(clap::Arg::new("api").long("torq-api-url").env("BATON_I13_TEST_API_URL"))
            .subcommand(clap::Command::new("sub").arg(clap::Arg::new("api").long("torq-api-url")))
    }

    #[test]
    fn the_file_fills_in_flags_without_touching_the_environment() {
        let (_dir, path) = config_file("i13-test-secret: s3cret-from-file\ntorq-api-url: https://x.example\n", 0o600);
        let (cmd, applied) = apply_file(Some(path.into_os_string()), private_command()).unwrap();
        let applied = applied.unwrap();
        assert_eq!(std::env::var_os("BATON_I13_TEST_SECRET"), None, "the secret went into the environment");
        assert_eq!(std::env::var_os("BATON_I13_TEST_API_URL"), None);
        let help = cmd.clone().render_long_help().to_string();
        assert!(!help.contains("s3cret-from-file"), "--help shows the secret: {help}");
        let matches = cmd.clone().try_get_matches_from(["t"]).unwrap();
        assert_eq!(matches.get_one::<String>("secret").map(String::as_str), Some("s3cret-from-file"));
        // Subcommands get the value too; a flag on the command line still wins.
        let matches = cmd.clone().try_get_matches_from(["t", "sub"]).unwrap();
        let sub = matches.subcommand_matches("sub").unwrap();
        assert_eq!(sub.get_one::<String>("api").map(String::as_str), Some("https://x.example"));
        let matches = cmd.try_get_matches_from(["t", "--torq-api-url", "https://flag.example"]).unwrap();
        assert_eq!(matches.get_one::<String>("api").map(String::as_str), Some("https://flag.example"));
        assert_eq!(applied.endpoint_keys(), vec!["torq-api-url"]);
    }

    #[test]
    fn a_file_others_can_write_is_refused() {
        for mode in [0o620, 0o602, 0o666, 0o777] {
            let (_dir, path) = config_file("i13-test-secret: x\n", mode);
            let e = apply_file(Some(path.into_os_string()), private_command()).unwrap_err();
            assert!(matches!(e, ConfigFileError::Untrusted { .. }), "{mode:o}: {e}");
            assert!(e.to_string().contains("chmod go-w"), "{e}");
        }
        for mode in [0o600, 0o644, 0o400] {
            let (_dir, path) = config_file("", mode);
            assert!(apply_file(Some(path.into_os_string()), private_command()).is_ok(), "{mode:o}");
        }
    }

    #[test]
    fn config_path_must_be_yaml_and_exist() {
        let e = locate(Some("conf.json".into())).unwrap_err().to_string();
        assert!(e.contains(".yaml or .yml") && e.contains("conf.json"), "{e}");
        let e = locate(Some("/nonexistent/dir/conf.yml".into())).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.YAML");
        std::fs::write(&p, "").unwrap();
        assert_eq!(locate(Some(p.clone().into_os_string())).unwrap(), Some(p));
    }
}
