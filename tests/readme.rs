//! The README and the pages of docs/ make claims a user acts on; these tests hold them to the binary. The README's
//! Quick start shows what `baton-torq demo` prints, apart from what changes from run to run (timestamps, the
//! loopback port, the duration, the file size and the sync id); the troubleshooting table, the JSON examples and the
//! variables are what the binary prints and accepts; cited tests, mapped paths and relative links exist. When the
//! demo workspace or the summary changes, the README must be updated with the new output.

mod common;

use std::process::Command;

/// The README's text.
fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("read README.md")
}

/// The text of `docs/<name>`.
fn doc(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// README.md and every Markdown page of docs/.
fn documents() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut documents = vec![root.join("README.md")];
    let mut pages: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    documents.extend(pages);
    documents
}

/// The lines of the first ```text block after the "## Quick start" heading.
fn readme_demo_block(readme: &str) -> Vec<String> {
    let start = readme.find("\n## Quick start").expect("README has a '## Quick start' section");
    let rest = &readme[start..];
    let open = rest.find("```text\n").expect("the Quick start shows the demo output in a ```text block") + 8;
    let close = rest[open..].find("```").expect("the ```text block is closed") + open;
    rest[open..close].lines().map(str::to_string).collect()
}

/// Masks what differs between two demo runs, so that the README's lines and the binary's compare exactly.
fn normalize(line: &str) -> String {
    let mut line = line.trim_end().to_string();
    // A console log line starts with an RFC 3339 timestamp, which the README leaves out.
    if let Some((first, rest)) = line.split_once(' ') {
        if first.len() > 20 && first.ends_with('Z') && first.contains('T') {
            line = rest.trim_start().to_string();
        }
    }
    if let Some(i) = line.find("127.0.0.1:") {
        let port_start = i + "127.0.0.1:".len();
        let port_end = line[port_start..].find('/').map_or(line.len(), |j| port_start + j);
        line.replace_range(port_start..port_end, "PORT");
    }
    if line.starts_with("Synced ") {
        if let Some(i) = line.rfind(" in ") {
            line.replace_range(i.., " in <seconds> s");
        }
    }
    if line.starts_with("  Wrote ") {
        if let Some(i) = line.find(" (") {
            line.replace_range(i.., " (<bytes> bytes), sync <id>");
        }
    }
    line
}

#[test]
fn readme_quick_start_shows_what_demo_prints() {
    let readme = readme();
    let shown: Vec<String> = readme_demo_block(&readme).iter().map(|l| normalize(l)).collect();
    assert!(shown.iter().any(|l| l.starts_with("Synced ")), "the README's demo block shows the summary: {shown:#?}");

    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton-torq"));
    cmd.args(["demo", "--log-format", "console"]).current_dir(dir.path());
    // A developer's own settings (config path, log level, quiet, file) must not change what the demo prints.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BATON_") {
            cmd.env_remove(&key);
        }
    }
    let out = cmd.output().expect("run baton-torq demo");
    assert!(out.status.success(), "demo failed: {}", String::from_utf8_lossy(&out.stderr));
    let printed: Vec<String> = String::from_utf8_lossy(&out.stderr).lines().map(normalize).collect();

    assert_eq!(
        shown, printed,
        "README.md's Quick start no longer shows what `baton-torq demo` prints (left: README, right: binary); \
         copy the binary's current output into the README"
    );
    assert!(dir.path().join("demo.c1z").is_file(), "the README says the demo writes demo.c1z");
}

/// `cmd` without the `BATON_*` variables of the developer's environment (config path, log level, quiet, file), which
/// would change what the binary prints.
fn without_baton_env(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BATON_") {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// Digits replaced by `N`, so that a shown example and a real line compare by shape.
fn digits_masked(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('N') {
                out.push('N');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// On a terminal a sync redraws a progress line; the README quotes one (`syncing: ...`). It must have the shape the
/// binary draws. The binary runs under `script` (a pseudo-terminal) against the simulated Torq with some latency, so
/// the line is drawn at least once.
#[cfg(target_os = "linux")]
#[test]
fn readme_progress_line_has_the_shape_a_terminal_shows() {
    use baton_torq::sim::{SimConfig, SimServer, Workspace};
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let readme = readme();
    let quoted: Vec<String> = readme.split('`').filter(|s| s.starts_with("syncing: ")).map(digits_masked).collect();
    assert!(!quoted.is_empty(), "the README quotes the progress line (`syncing: ...`)");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let config = SimConfig { latency: std::time::Duration::from_millis(300), ..SimConfig::default() };
    let server = runtime.block_on(SimServer::start(Workspace::demo(), config.clone())).expect("simulated Torq");
    let dir = tempfile::tempdir().expect("temp dir");
    // `script` runs the binary on a pseudo-terminal.
    let mut script = Command::new("script");
    without_baton_env(&mut script)
        .args(["-qefc", env!("CARGO_BIN_EXE_baton-torq"), "/dev/null"])
        .current_dir(dir.path())
        .env("TERM", "xterm")
        .env("BATON_TORQ_CLIENT_ID", &config.client_id)
        .env("BATON_TORQ_CLIENT_SECRET", &config.client_secret)
        .env("BATON_TORQ_API_URL", server.api_url())
        .env("BATON_TORQ_AUTH_URL", server.auth_url());
    let out = script.stdin(std::process::Stdio::null()).output().expect("run baton-torq under script");
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "sync failed: {screen}");
    let drawn: Vec<String> = screen
        .split(['\r', '\n'])
        .map(|l| l.trim_start_matches("\x1b[2K"))
        .filter(|l| l.starts_with("syncing: "))
        .map(|l| digits_masked(l.trim_end()))
        .collect();
    assert!(!drawn.is_empty(), "no progress line on a terminal: {screen:?}");
    for line in &quoted {
        assert!(drawn.contains(line), "README quotes the progress line as {line:?}; the binary draws {:?}", drawn[0]);
    }
    runtime.block_on(server.shutdown());
}

/// Rows `(typed, printed, exit code)` of the table of command-line mistakes in docs/troubleshooting.md.
fn troubleshooting_rows(page: &str) -> Vec<(String, String, i32)> {
    let start = page.find("\n## Typed on the command line").expect("troubleshooting has 'Typed on the command line'");
    let rest = &page[start..];
    let table = rest.find("\n| Typed |").expect("Troubleshooting has the table of mistakes typed on the command line");
    let inner = |cell: &str| -> String {
        let cell = cell.trim();
        let open = cell.find('`').map_or(0, |i| i + 1);
        let close = cell.rfind('`').filter(|&j| j >= open).unwrap_or(cell.len());
        cell[open..close].to_string()
    };
    rest[table + 1..]
        .lines()
        .skip(2) // header and separator
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
            assert_eq!(cells.len(), 3, "a row of three cells: {row}");
            // The typed cell is the command in backticks, maybe followed by a remark: `baton-torq` (no credentials).
            let typed = cells[0].trim();
            let typed = typed.split('`').nth(1).unwrap_or(typed).to_string();
            let code = cells[2].trim().parse().unwrap_or_else(|_| panic!("an exit code: {row}"));
            (typed, inner(cells[1]), code)
        })
        .collect()
}

/// Every mistake in the troubleshooting table, typed as shown, prints exactly the line shown (the table shortens
/// "run 'baton-torq --help' for usage" to "…") and exits with the code shown.
#[test]
fn readme_troubleshooting_mistakes_print_what_the_table_shows() {
    let rows = troubleshooting_rows(&doc("troubleshooting.md"));
    assert!(rows.len() >= 7, "the table lists the usual mistakes: {rows:#?}");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut failures = Vec::new();
    for (typed, printed, code) in rows {
        let words: Vec<&str> = typed.split(' ').filter(|w| !w.is_empty()).collect();
        // A row may show only the flags; the program name is then implied.
        let args = match words.first() {
            Some(&"baton-torq") => &words[1..],
            _ => &words[..],
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton-torq"));
        without_baton_env(&mut cmd).args(args).args(["--log-format", "console"]).current_dir(dir.path());
        let out = cmd.output().expect("run baton-torq");
        let stderr = String::from_utf8_lossy(&out.stderr).trim_end().replace("run 'baton-torq --help' for usage", "…");
        if stderr != printed || out.status.code() != Some(code) {
            failures.push(format!(
                "typed `{typed}`:\n  README: {printed} (exit {code})\n  binary: {stderr} (exit {:?})",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "docs/troubleshooting.md's table differs from the binary:\n{}", failures.join("\n"));
}

/// docs/configuration.md: "an empty variable counts as unset". A deployment template often sets every variable,
/// some of them empty (`BATON_TORQ_REGION=${REGION}`): the sync must then use the defaults, not fail on an empty
/// value.
#[test]
fn readme_an_empty_variable_counts_as_unset() {
    use baton_torq::sim::{SimConfig, SimServer, Workspace};
    assert!(
        doc("configuration.md").contains("an empty variable counts as unset"),
        "docs/configuration.md states the rule this test checks"
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let config = SimConfig::default();
    let server = runtime.block_on(SimServer::start(Workspace::demo(), config.clone())).expect("simulated Torq");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton-torq"));
    without_baton_env(&mut cmd).current_dir(dir.path());
    for empty in [
        "BATON_TORQ_REGION",
        "BATON_FILE",
        "BATON_LOG_LEVEL",
        "BATON_LOG_FORMAT",
        "BATON_HTTP_TIMEOUT_SECONDS",
        "BATON_QUIET",
        "BATON_VERBOSE",
        "BATON_WAIT_FOR_LOCK",
        "BATON_TASK_CONCURRENCY",
        "BATON_CLIENT_ID",
        "BATON_CLIENT_SECRET",
        "BATON_PROVISIONING",
        "BATON_CONFIG_PATH",
    ] {
        cmd.env(empty, "");
    }
    cmd.env("BATON_TORQ_CLIENT_ID", &config.client_id)
        .env("BATON_TORQ_CLIENT_SECRET", &config.client_secret)
        .env("BATON_TORQ_API_URL", server.api_url())
        .env("BATON_TORQ_AUTH_URL", server.auth_url());
    let out = cmd.output().expect("run baton-torq");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "empty variables must count as unset: {stderr}");
    assert!(dir.path().join("sync.c1z").is_file(), "the default file sync.c1z is written: {stderr}");
    assert!(
        stderr.contains("\"message\":\"sync complete\""),
        "the summary is printed (BATON_QUIET= is not quiet): {stderr}"
    );
    runtime.block_on(server.shutdown());
}

/// README, Troubleshooting: a sync file left by a run as another user (`sudo`, a container's default user) is mode
/// 0600 and unreadable for the next run, whose latest sync it must keep. The run stops before calling Torq with one
/// line saying whose file it is and what to do (exit 2), and leaves the file as it was. As root the binary runs as
/// uid 65534 (root ignores file modes); as another user the file is made unreadable (mode 000).
#[cfg(unix)]
#[test]
fn a_sync_file_of_another_user_is_named_with_the_fix() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    use std::os::unix::process::CommandExt as _;
    let mode = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |cmd: &mut Command| {
        without_baton_env(cmd).current_dir(dir.path()).args(["--log-format", "console"]).output().expect("run")
    };
    // A real sync file from an earlier run (the demo writes the same kind of file).
    let first = run(Command::new(env!("CARGO_BIN_EXE_baton-torq")).args(["demo", "-f", "sync.c1z"]));
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let file = dir.path().join("sync.c1z");
    let before = std::fs::read(&file).expect("read the first file");

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton-torq"));
    // Nothing listens at this URL: the check comes before any request.
    cmd.args(["--torq-client-id", "id", "--torq-client-secret", "secret"]).args([
        "--torq-api-url",
        "http://127.0.0.1:9/public/v1alpha",
        "--torq-auth-url",
        "http://127.0.0.1:9/v1/auth/token",
    ]);
    let as_root = std::fs::metadata(&file).expect("stat").uid() == 0;
    if as_root {
        mode(dir.path(), 0o777); // the folder is the other user's own, writable for them
        cmd.uid(65534).gid(65534);
    } else {
        mode(&file, 0o000);
    }
    let out = without_baton_env(&mut cmd).current_dir(dir.path()).args(["--log-format", "console"]).output();
    mode(dir.path(), 0o700);
    mode(&file, 0o600);
    let Some(out) = common::harness::ran_as_other_user(out) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    let owner = if as_root { 0 } else { std::fs::metadata(&file).expect("stat").uid() };
    assert_eq!(
        stderr,
        format!(
            "error: invalid --file (sync.c1z): this user may not read it (it belongs to uid {owner}), so its latest sync \
             cannot be kept; run as the file's owner, or choose another --file"
        )
    );
    assert_eq!(std::fs::read(&file).expect("read the file again"), before, "the file is left as it was");
}

/// The text of the fenced block that opens with "```sh" and contains `needle`, in the section `heading`.
fn sh_block_with(readme: &str, heading: &str, needle: &str) -> String {
    let start = readme.find(heading).unwrap_or_else(|| panic!("README has the section {heading}"));
    let section_end = readme[start + heading.len()..].find("\n## ").map_or(readme.len(), |i| start + heading.len() + i);
    let section = &readme[start..section_end];
    section
        .split("```sh\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .find(|block| block.contains(needle))
        .unwrap_or_else(|| panic!("a ```sh block with {needle:?} in {heading}"))
        .to_string()
}

/// `text` with `from` replaced by `to`; the test fails when the README or workflow no longer contains `from`.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "expected {from:?} in:\n{text}");
    text.replace(from, to)
}

/// README, Install: the release-binary commands, run as a user copies them, against an archive made by the
/// release workflow's own Package step from this build's binary. Only what cannot run here is swapped: the
/// download address (the GitHub release of `<owner>`, which the project does not name) becomes a file:// URL of the
/// packed folder, and `sudo install ... /usr/local/bin/` installs into a temporary folder. Catches a renamed archive,
/// a checksum file that `sha256sum -c` cannot check, a changed folder layout and a changed `--version` line.
#[cfg(target_os = "linux")]
#[test]
fn readme_install_commands_work_on_the_archive_the_release_workflow_packs() {
    for tool in ["bash", "curl", "sha256sum", "tar", "install"] {
        if Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().map_or(true, |o| !o.status.success())
        {
            eprintln!("skipped: `{tool}` is not installed");
            return;
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = readme();
    let install = sh_block_with(&readme, "\n## Install", "curl -fsSLO");
    let first = install.lines().next().unwrap_or_default();
    let setting = |key: &str| {
        first
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_else(|| panic!("the block starts by setting {key}: {first}"))
            .to_string()
    };
    let (tag, target) = (setting("tag="), setting("target="));
    let expected = install
        .lines()
        .find(|l| l.starts_with("baton-torq --version"))
        .and_then(|l| l.split_once('#'))
        .map(|(_, shown)| shown.trim().to_string())
        .expect("the block ends with `baton-torq --version  # <what it prints>`");

    // The release workflow's Package step (the Linux job's, the first in the file), run on this build's binary.
    let workflow = std::fs::read_to_string(root.join(".github/workflows/release.yml")).expect("read release.yml");
    let step = "      - name: Package\n        run: |\n";
    let at = workflow.find(step).expect("release.yml has a Package step") + step.len();
    let package: String =
        workflow[at..].lines().take_while(|l| l.starts_with("          ")).map(|l| format!("{}\n", &l[10..])).collect();
    let package = replaced(&package, "${{ matrix.target }}", &target);
    let package = replaced(
        &package,
        &format!("\"target/{target}/release/baton-torq\""),
        &format!("'{}'", env!("CARGO_BIN_EXE_baton-torq")),
    );
    let repo = tempfile::tempdir().expect("temp dir");
    for file in ["README.md", "LICENSE", "baton_capabilities.json"] {
        std::fs::copy(root.join(file), repo.path().join(file)).expect("copy a packaged file");
    }
    let packed = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &package])
        .current_dir(repo.path())
        .env("GITHUB_REF_NAME", &tag)
        .output()
        .expect("run the Package step");
    assert!(packed.status.success(), "Package step failed: {}", String::from_utf8_lossy(&packed.stderr));

    let user = tempfile::tempdir().expect("temp dir");
    let bin = user.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let script = replaced(
        &install,
        "https://github.com/<owner>/baton-torq/releases/download/$tag",
        &format!("file://{}/dist", repo.path().display()),
    );
    let script = replaced(&script, "sudo install", "install");
    let script = replaced(&script, "/usr/local/bin/", &format!("{}/", bin.display()));
    let mut run = Command::new("bash");
    without_baton_env(&mut run)
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(user.path())
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()));
    let out = run.output().expect("run the README's install commands");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the install commands failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().last(), Some(expected.as_str()), "what `baton-torq --version` prints:\n{stdout}");
}

/// `value` with what changes from run to run (times, ids, sizes, memory) set to null, keys kept in order.
fn stable_json(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(record) = value.as_object_mut() {
        for key in ["timestamp", "sync_id", "file_bytes", "duration_seconds", "peak_rss_bytes"] {
            if let Some(v) = record.get_mut(key) {
                *v = serde_json::Value::Null;
            }
        }
    }
    value
}

/// docs/configuration.md, Output and exit codes: the JSON summary of the demo and the JSON error record it shows are
/// what the binary prints, field by field and in the same order, apart from times, ids, sizes and memory.
#[test]
fn readme_json_examples_are_what_the_binary_prints() {
    let page = doc("configuration.md");
    let shown: Vec<serde_json::Value> = page
        .split("```json\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block.trim()))
        .map(|block| serde_json::from_str(block).unwrap_or_else(|e| panic!("the JSON example parses: {e}: {block}")))
        .collect();
    let find = |message: &str| {
        shown
            .iter()
            .find(|v| v["message"] == message)
            .cloned()
            .unwrap_or_else(|| panic!("docs/configuration.md shows a JSON record with message {message:?}"))
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton-torq"));
        let out = without_baton_env(&mut cmd).args(args).current_dir(dir.path()).output().expect("run baton-torq");
        let line = String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default().to_string();
        serde_json::from_str::<serde_json::Value>(&line).unwrap_or_else(|e| panic!("a JSON record: {e}: {line}"))
    };
    let summary = run(&["demo", "--log-format", "json"]);
    // Compared as text, so that the order of the fields counts too.
    let text = |v: serde_json::Value| stable_json(v).to_string();
    assert_eq!(text(find("sync complete")), text(summary), "the documented JSON summary (left) vs the binary's");
    let error = run(&["--log-format", "json", "--region", "eu"]);
    assert_eq!(text(find("baton-torq failed")), text(error), "the documented JSON error (left) vs the binary's");
}

/// Every file and folder the development guide's map names, e.g. `src/c1z/` or `tests/common`, and every file it
/// names in a module, e.g. `syncer.rs` of `src/connector/` (or of the top level, as `build.rs`).
fn development_map_paths(guide: &str) -> Vec<String> {
    let start = guide.find("\n## Where things are").expect("docs/development.md has '## Where things are'");
    let rest = &guide[start..];
    let open = rest.find("```\n").expect("'Where things are' opens with the map in a ``` block") + 4;
    let close = rest[open..].find("```").expect("the map's block is closed") + open;
    let mut paths = Vec::new();
    let mut folder = String::new();
    for line in rest[open..close].lines() {
        let is_path = |w: &str| w.starts_with("src/") || w.starts_with("tests/") || w.starts_with("benches/");
        if let Some(first) = line.split_whitespace().next().filter(|w| is_path(w)) {
            folder = if first.ends_with('/') { first.to_owned() } else { String::new() };
        }
        for word in line.split(|c: char| c.is_whitespace() || "(),;:".contains(c)) {
            if is_path(word) {
                paths.push(word.to_owned());
            } else if !folder.is_empty() && word.len() > 3 && word.ends_with(".rs") {
                let top_level = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(word).is_file();
                paths.push(if top_level { word.to_owned() } else { format!("{folder}{word}") });
            }
        }
    }
    paths
}

#[test]
fn readme_development_map_names_only_paths_that_exist() {
    let paths = development_map_paths(&doc("development.md"));
    assert!(paths.len() >= 20, "the map names the modules: {paths:?}");
    let missing: Vec<&String> =
        paths.iter().filter(|p| !std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p).exists()).collect();
    assert!(missing.is_empty(), "docs/development.md's map names paths that do not exist: {missing:?}");
}

/// The `BATON_*` names in `text`, e.g. `BATON_TORQ_REGION`; a pattern such as `BATON_CREATE_ACCOUNT_*` or
/// `BATON_<FLAG>` is not a name.
fn baton_variables(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for (i, _) in text.match_indices("BATON_") {
        let name: String =
            text[i..].chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
        if !name.ends_with('_') {
            names.insert(name);
        }
    }
    names
}

/// The docs say `--help` names each flag's variable: every variable the README or docs/ name is one `--help` shows
/// (so a hidden flag the docs document fails here), and every variable `--help` shows is documented.
#[test]
fn readme_and_help_name_the_same_variables() {
    let readme: String = documents().iter().map(|p| std::fs::read_to_string(p).expect("read a document")).collect();
    let out = without_baton_env(&mut Command::new(env!("CARGO_BIN_EXE_baton-torq"))).arg("--help").output().unwrap();
    assert!(out.status.success(), "--help: {}", String::from_utf8_lossy(&out.stderr));
    let help = baton_variables(&String::from_utf8_lossy(&out.stdout));
    let in_readme = baton_variables(&readme);
    let undocumented: Vec<&String> = help.difference(&in_readme).collect();
    let not_in_help: Vec<&String> = in_readme.difference(&help).collect();
    assert!(undocumented.is_empty(), "--help shows variables neither the README nor docs/ name: {undocumented:?}");
    assert!(not_in_help.is_empty(), "the README or docs/ name variables --help does not show: {not_in_help:?}");
    assert!(help.len() >= 20, "{help:?}");
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for path in std::fs::read_dir(&folder).unwrap().flatten().map(|e| e.path()) {
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// Whether `text` holds `needle` not followed by a character of an identifier.
fn has_word(text: &str, needle: &str) -> bool {
    text.match_indices(needle)
        .any(|(i, _)| !text[i + needle.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
}

/// Whether `source` defines `name`: as an item (`fn name`, `mod name`, ...) or, for a capitalised name, as an enum
/// variant (a line that starts with it).
fn defines(source: &str, name: &str) -> bool {
    let item = ["fn", "mod", "const", "static", "struct", "enum", "trait", "type"]
        .iter()
        .any(|kind| has_word(source, &format!("{kind} {name}")));
    let variant = name.starts_with(|c: char| c.is_ascii_uppercase())
        && source.lines().any(|line| line.trim_start().strip_prefix(name).is_some_and(|rest| has_word(rest, "")));
    item || variant
}

/// Where a cited item lives: `tests/<a>.rs` for an integration test `a::name`; for `Type::member` the file of
/// `sources` (the crate's `.rs` files) that declares the type; else the source file of the module path
/// (`torq::auth::tests::x` -> `src/torq/auth.rs`; `container::detect` -> the one `container.rs` under `src/`).
fn file_of_citation(
    root: &std::path::Path,
    sources: &[std::path::PathBuf],
    segments: &[&str],
) -> Option<std::path::PathBuf> {
    let test_file = root.join("tests").join(format!("{}.rs", segments[0]));
    if segments.len() == 2 && test_file.is_file() {
        return Some(test_file);
    }
    if segments[0].starts_with(|c: char| c.is_ascii_uppercase()) {
        let declares =
            |source: &str| ["struct", "enum"].iter().any(|k| has_word(source, &format!("{k} {}", segments[0])));
        return sources.iter().find(|f| std::fs::read_to_string(f).is_ok_and(|s| declares(&s))).cloned();
    }
    let modules: Vec<&str> = segments[..segments.len() - 1].iter().copied().filter(|s| *s != "crate").collect();
    for n in (1..=modules.len()).rev() {
        let base = root.join("src").join(modules[..n].join("/"));
        for candidate in [base.with_extension("rs"), base.join("mod.rs")] {
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    // A module named without its parent (`writer::PAGE_SIZE`): the one file of that name under src/.
    let wanted = format!("{}.rs", modules.first()?);
    let mut found = sources.iter().filter(|f| f.file_name().is_some_and(|n| n.to_string_lossy() == wanted));
    match (found.next(), found.next()) {
        (Some(only), None) => Some(only.clone()),
        _ => None,
    }
}

/// The README and docs/ name tests and code as proof (`fault_matrix::endless_paging`, `tests/crash_safety.rs`,
/// `schema::DEFERRED_INDEXES`): each must exist, so a renamed or removed test cannot leave a claim without proof.
#[test]
fn tests_cited_by_the_readme_and_docs_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let documents = documents();
    let is_ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let sources = rust_files(&root.join("src"));
    let mut checked = 0;
    let mut broken = Vec::new();
    for document in &documents {
        // Prose only: a fenced block's three backticks would shift which parts are inline code.
        let mut fenced = false;
        let prose: String = std::fs::read_to_string(document)
            .unwrap()
            .lines()
            .filter(|line| {
                let fence = line.trim_start().starts_with("```");
                fenced ^= fence;
                !fenced && !fence
            })
            .map(|line| format!("{line}\n"))
            .collect();
        for code in prose.split('`').skip(1).step_by(2) {
            let segments: Vec<&str> = code.split("::").collect();
            let found = if code.starts_with("tests/") && code.ends_with(".rs") {
                root.join(code).is_file()
            } else if segments.len() >= 2 && segments.iter().all(|s| is_ident(s)) {
                let name = segments[segments.len() - 1];
                file_of_citation(root, &sources, &segments)
                    .and_then(|f| std::fs::read_to_string(f).ok())
                    .is_some_and(|source| defines(&source, name))
            } else {
                continue;
            };
            checked += 1;
            if !found {
                broken.push(format!("{}: {code}", document.display()));
            }
        }
    }
    assert!(checked >= 60, "the documents cite tests and code: {checked} citations found");
    assert!(broken.is_empty(), "cited but not found (renamed or removed?): {broken:#?}");
}

/// Lines of `text` outside fenced code blocks (a `# comment` in a shell block is not a heading, and a link in a
/// code sample is not a link).
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            let fence = line.trim_start().starts_with("```");
            fenced ^= fence;
            !fenced && !fence
        })
        .collect()
}

/// The anchors GitHub gives the headings of `text`: lower case, punctuation other than `-` and `_` dropped, spaces
/// made `-`, and `-1`, `-2`, ... for a repeated heading.
fn heading_anchors(text: &str) -> std::collections::BTreeSet<String> {
    let mut anchors = std::collections::BTreeSet::new();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for line in prose_lines(text) {
        let Some(title) = line.strip_prefix('#').map(|rest| rest.trim_start_matches('#')) else { continue };
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        anchors.insert(if *n == 0 { slug.clone() } else { format!("{slug}-{n}") });
        *n += 1;
    }
    anchors
}

/// Every relative link of the README and docs/ (`[text](docs/x.md#anchor)`, `[text](#anchor)`) points at a file
/// that exists and, when it names an anchor, at a heading of that file: a moved section cannot leave a dead link.
#[test]
fn relative_links_of_the_readme_and_docs_resolve() {
    let mut checked = 0;
    let mut broken = Vec::new();
    for document in documents() {
        let text = std::fs::read_to_string(&document).expect("read a document");
        for line in prose_lines(&text) {
            for (i, _) in line.match_indices("](") {
                let rest = &line[i + 2..];
                let Some(end) = rest.find(')') else { continue };
                let target = &rest[..end];
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let file = if path.is_empty() {
                    document.clone()
                } else {
                    document.parent().expect("a document's folder").join(path)
                };
                checked += 1;
                let Ok(target_text) = std::fs::read_to_string(&file) else {
                    if !(anchor.is_empty() && file.exists()) {
                        broken.push(format!("{}: ({target}): no such file", document.display()));
                    }
                    continue;
                };
                if !anchor.is_empty() && !heading_anchors(&target_text).contains(anchor) {
                    broken.push(format!("{}: ({target}): no such heading", document.display()));
                }
            }
        }
    }
    assert!(checked >= 40, "the README and docs link to each other: {checked} relative links found");
    assert!(broken.is_empty(), "relative links that do not resolve:\n{}", broken.join("\n"));
}

/// The README is the front door: a new user's path (install, demo, first sync, ConductorOne, provisioning,
/// troubleshooting) in at most 250 lines, in that order; the reference lives in docs/.
#[test]
fn readme_is_a_short_front_door_in_the_order_a_new_user_needs() {
    let readme = readme();
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines; move reference material to docs/ (at most 250)");
    let order = [
        "## Install",
        "## Quick start",
        "## First sync with your Torq key",
        "## Connect to ConductorOne",
        "## Provisioning",
        "## Troubleshooting",
        "## More",
        "## Development",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|h| readme.find(&format!("\n{h}")).unwrap_or_else(|| panic!("README has the section {h}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "README's sections are in the order {order:?}");
    let index = &readme[positions[6]..positions[7]];
    for page in documents().iter().skip(1) {
        let name = page.file_name().expect("a page's name").to_string_lossy();
        assert!(index.contains(&format!("(docs/{name})")), "README's 'More' links to docs/{name}");
    }
}
