//! The Baton config file: `.baton.yaml` in the working directory, or the file named by `BATON_CONFIG_PATH`.
//!
//! As in the Go Baton SDK, the file is a YAML mapping whose keys are flag names without the dashes in front
//! (`torq-client-id: ...`, `log-level: debug`, `file: out.c1z`) and whose values are single scalars. Precedence
//! is flags > environment > file > defaults. The file is applied before clap parses the command line: for every
//! key whose `BATON_*` variable is unset (or empty, as viper treats it), that variable is set to the file's value,
//! so clap's own flag and environment handling gives the order above and `--help` never shows a value.
//!
//! Rules: `BATON_CONFIG_PATH` must end in `.yaml` or `.yml` and the file must exist; a missing default
//! `./.baton.yaml` is fine. Unknown keys, lists, mappings and invalid YAML are errors (exit code 2). Values are
//! never logged or printed, only key names, because the file usually holds the client secret.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_norway::Value;

/// Environment variable naming the config file.
pub const CONFIG_PATH_ENV: &str = "BATON_CONFIG_PATH";
/// Config file read from the working directory when `BATON_CONFIG_PATH` is not set.
pub const DEFAULT_CONFIG_FILE: &str = ".baton.yaml";

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
    #[error("config file {path}: unknown key {key:?}; valid keys are: {valid}")]
    UnknownKey { path: String, key: String, valid: String },
    #[error("config file {path}: key {key:?} must have one value (text, a number or true/false), not {found}")]
    NotScalar { path: String, key: String, found: &'static str },
}

/// What was taken from a config file (key names only; values are never kept for logging).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub path: PathBuf,
    /// Keys whose value came from the file.
    pub from_file: Vec<String>,
    /// Keys in the file that an environment variable already set (the environment wins).
    pub overridden_by_env: Vec<String>,
}

/// Flag name -> environment variable, for every flag of `cmd` (and its subcommands) that has one.
pub fn known_keys(cmd: &clap::Command) -> BTreeMap<String, String> {
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
pub fn locate(config_path_env: Option<OsString>) -> Result<Option<PathBuf>, ConfigFileError> {
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
pub fn parse(
    path: &Path,
    text: &str,
    keys: &BTreeMap<String, String>,
) -> Result<Vec<(String, String, String)>, ConfigFileError> {
    let shown = path.display().to_string();
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
            return Err(ConfigFileError::UnknownKey { path: shown, key, valid });
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

/// Reads the config file, if any, and sets the `BATON_*` variable of every key that the environment does not
/// already set. Call it before clap parses and before any thread is started (it changes the process
/// environment).
pub fn apply_to_env(cmd: &clap::Command) -> Result<Option<Applied>, ConfigFileError> {
    let Some(path) = locate(std::env::var_os(CONFIG_PATH_ENV))? else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigFileError::Unreadable {
        path: path.display().to_string(),
        reason: one_line(&e.to_string()),
    })?;
    let entries = parse(&path, &text, &known_keys(cmd))?;
    let mut applied = Applied { path, ..Applied::default() };
    for (key, env, value) in entries {
        if std::env::var_os(&env).is_some_and(|v| !v.is_empty()) {
            applied.overridden_by_env.push(key);
        } else {
            std::env::set_var(&env, value);
            applied.from_file.push(key);
        }
    }
    Ok(Some(applied))
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
