//! The README's Quick start shows what `baton-torq demo` prints; this test runs the binary and checks that the
//! shown lines are still exactly what it prints, apart from what changes from run to run (timestamps, the loopback
//! port, the duration, the file size and the sync id). When the demo workspace or the summary changes, the README
//! must be updated with the new output.

use std::process::Command;

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
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("read README.md");
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
