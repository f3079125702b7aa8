//! Packaging files stay valid: every GitHub Actions workflow parses as YAML (with the same YAML crate that reads
//! `.baton.yaml`), has the jobs and commands the project relies on, and the Dockerfile keeps the promised shape
//! (multi-stage, non-root, `ENTRYPOINT ["baton-torq"]`, `WORKDIR /out`). Nothing here needs Docker or a network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_norway::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn workflows() -> BTreeMap<String, Value> {
    let dir = root().join(".github/workflows");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".yml") || name.ends_with(".yaml")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"));
        out.insert(name, doc);
    }
    out
}

fn workflow(name: &str) -> Value {
    workflows().remove(name).unwrap_or_else(|| panic!(".github/workflows/{name} is missing"))
}

fn job<'a>(wf: &'a Value, job: &str) -> &'a Value {
    wf.get("jobs").and_then(|j| j.get(job)).unwrap_or_else(|| panic!("job {job} is missing"))
}

/// Every `run:` script and `uses:` reference of a job, as one text to search.
fn job_text(job: &Value) -> String {
    let mut text = String::new();
    for step in job.get("steps").and_then(Value::as_sequence).into_iter().flatten() {
        for key in ["run", "uses"] {
            if let Some(s) = step.get(key).and_then(Value::as_str) {
                text.push_str(s);
                text.push('\n');
            }
        }
        if let Some(with) = step.get("with") {
            text.push_str(&serde_norway::to_string(with).unwrap());
        }
    }
    text
}

#[test]
fn every_workflow_is_well_formed() {
    let all = workflows();
    assert!(all.len() >= 3, "expected ci, release and capabilities workflows: {:?}", all.keys());
    for (name, wf) in &all {
        assert!(wf.get("name").and_then(Value::as_str).is_some(), "{name}: name");
        assert!(wf.get("on").is_some(), "{name}: trigger (`on:`)");
        let jobs = wf.get("jobs").and_then(Value::as_mapping).unwrap_or_else(|| panic!("{name}: jobs"));
        assert!(!jobs.is_empty(), "{name}: no jobs");
        for (id, job) in jobs {
            let id = id.as_str().unwrap_or("?");
            assert!(job.get("runs-on").is_some(), "{name}/{id}: runs-on");
            let steps = job.get("steps").and_then(Value::as_sequence).unwrap_or_else(|| panic!("{name}/{id}: steps"));
            assert!(!steps.is_empty(), "{name}/{id}: no steps");
            for step in steps {
                let uses = step.get("uses").and_then(Value::as_str);
                let run = step.get("run").and_then(Value::as_str);
                assert!(uses.is_some() != run.is_some(), "{name}/{id}: each step has exactly one of uses/run");
                if let Some(uses) = uses {
                    assert!(uses.contains('@'), "{name}/{id}: action {uses} is not pinned to a version");
                }
            }
            if let Some(needs) = job.get("needs").and_then(Value::as_sequence) {
                for n in needs {
                    let n = n.as_str().unwrap_or("");
                    assert!(jobs.contains_key(n), "{name}/{id}: needs unknown job {n}");
                }
            }
        }
    }
}

#[test]
fn ci_checks_format_lints_tests_and_the_image() {
    let wf = workflow("ci.yml");
    let on = wf.get("on").unwrap();
    assert!(on.get("push").is_some() && on.get("pull_request").is_some(), "CI runs on push and pull requests");
    assert!(job_text(job(&wf, "fmt")).contains("cargo fmt --all -- --check"));
    let clippy = job_text(job(&wf, "clippy"));
    assert!(clippy.contains("cargo clippy") && clippy.contains("--all-targets") && clippy.contains("-D warnings"));
    assert!(job_text(job(&wf, "test")).contains("cargo test --locked"));
    let docker = job_text(job(&wf, "docker"));
    assert!(docker.contains("docker/build-push-action@") && docker.contains("baton-torq:ci"));
}

#[test]
fn release_builds_linux_and_macos_binaries_and_pushes_the_image() {
    let wf = workflow("release.yml");
    let tags = wf.get("on").and_then(|o| o.get("push")).and_then(|p| p.get("tags")).expect("on.push.tags");
    assert_eq!(serde_norway::to_string(tags).unwrap().trim(), "- v*");
    let linux = serde_norway::to_string(job(&wf, "linux")).unwrap();
    assert!(linux.contains("x86_64-unknown-linux-gnu") && linux.contains("aarch64-unknown-linux-gnu"));
    assert!(linux.contains("cargo zigbuild"));
    let macos = serde_norway::to_string(job(&wf, "macos")).unwrap();
    assert!(macos.contains("aarch64-apple-darwin") && macos.contains("x86_64-apple-darwin"));
    assert!(job_text(job(&wf, "release")).contains("gh release create"));
    let image = job(&wf, "image");
    let text = job_text(image);
    assert!(
        text.contains("registry: ghcr.io") && text.contains("linux/amd64,linux/arm64") && text.contains("push: true")
    );
    let perms = serde_norway::to_string(image.get("permissions").expect("image permissions")).unwrap();
    assert!(perms.contains("packages: write"), "{perms}");
}

#[test]
fn capabilities_workflow_fails_when_the_committed_file_is_stale() {
    let wf = workflow("capabilities.yml");
    let text = job_text(job(&wf, "capabilities"));
    assert!(text.contains("capabilities > baton_capabilities.json"), "{text}");
    assert!(text.contains("git diff --exit-code"), "{text}");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn dockerfile_has_the_promised_shape() {
    let text = read(&root().join("Dockerfile"));
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.starts_with('#')).collect();
    let froms = lines.iter().filter(|l| l.starts_with("FROM ")).count();
    assert!(froms >= 2, "multi-stage build");
    assert!(lines.contains(&"ENTRYPOINT [\"baton-torq\"]"));
    assert!(lines.contains(&"WORKDIR /out"));
    let user = lines.iter().rev().find(|l| l.starts_with("USER ")).expect("USER");
    assert!(!user.contains("root") && !user.ends_with(" 0") && !user.contains(" 0:"), "non-root: {user}");
    assert!(text.contains("ca-certificates"), "system CA store for the Torq client");
    assert!(text.contains("--locked"), "the image builds from Cargo.lock");

    let ignore = read(&root().join(".dockerignore"));
    for must in ["target/", ".git/", ".baton.yaml", "*.c1z"] {
        assert!(ignore.lines().any(|l| l.trim() == must), ".dockerignore lacks {must}");
    }
}
