//! Packaging files stay valid: every GitHub Actions workflow parses as YAML (with the same YAML crate that reads
//! `.baton.yaml`), has the jobs and commands the project relies on, and the Dockerfile keeps the promised shape
//! (multi-stage, non-root, `ENTRYPOINT ["baton-torq"]`, `WORKDIR /out`, a stub for every declared target, no debug
//! info), the smoke script CI runs on the image exists, and LICENSE is there. Nothing here needs Docker or a
//! network (`cargo metadata --offline` reads only the manifest).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_norway::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The parts of a GitHub Actions workflow the checks read. Parsing into these types is itself a check: a
/// workflow without a name, trigger or jobs, a job without `runs-on` or steps, fails here with the YAML path.
#[derive(Deserialize)]
struct Workflow {
    name: String,
    on: Value,
    #[serde(default)]
    env: BTreeMap<String, Value>,
    jobs: BTreeMap<String, Job>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Job {
    /// Required (a job without it does not parse); its value is not checked.
    #[allow(dead_code)]
    runs_on: Value,
    #[serde(default)]
    needs: Needs,
    #[serde(default)]
    permissions: BTreeMap<String, String>,
    strategy: Option<Strategy>,
    steps: Vec<Step>,
}

/// `needs: build` or `needs: [build, test]`.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Needs {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Needs {
    fn jobs(&self) -> Vec<&str> {
        match self {
            Needs::None => vec![],
            Needs::One(j) => vec![j.as_str()],
            Needs::Many(js) => js.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Deserialize)]
struct Strategy {
    matrix: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct Step {
    uses: Option<String>,
    run: Option<String>,
    #[serde(default)]
    with: BTreeMap<String, Value>,
}

impl Step {
    /// The action without its version (`docker/build-push-action`).
    fn action(&self) -> Option<&str> {
        self.uses.as_deref().map(|u| u.split('@').next().unwrap_or(u))
    }

    /// A `with:` input as text (YAML booleans and numbers as they are written).
    fn input(&self, key: &str) -> Option<String> {
        match self.with.get(key)? {
            Value::String(s) => Some(s.trim().to_owned()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The commands of a `run:` script, one per line, split into words.
    fn commands(&self) -> Vec<Vec<&str>> {
        self.run.as_deref().unwrap_or("").lines().map(|l| l.split_whitespace().collect()).collect()
    }

    /// Whether one of the script's commands starts with `words`.
    fn runs(&self, words: &str) -> bool {
        let words: Vec<&str> = words.split_whitespace().collect();
        self.commands().iter().any(|c| c.starts_with(&words))
    }
}

impl Job {
    /// The index of the first step that runs a command starting with `words`.
    fn step_running(&self, words: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.runs(words))
    }

    fn runs(&self, words: &str) -> bool {
        self.step_running(words).is_some()
    }

    /// The matrix values of `key` (e.g. the build targets).
    fn matrix(&self, key: &str) -> Vec<String> {
        let values = self.strategy.as_ref().and_then(|s| s.matrix.get(key)).and_then(Value::as_sequence);
        values.into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
    }
}

fn workflows() -> BTreeMap<String, Workflow> {
    let dir = root().join(".github/workflows");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".yml") || name.ends_with(".yaml")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Workflow =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{name} is not a valid workflow: {e}"));
        out.insert(name, doc);
    }
    out
}

fn workflow(name: &str) -> Workflow {
    workflows().remove(name).unwrap_or_else(|| panic!(".github/workflows/{name} is missing"))
}

fn job<'a>(wf: &'a Workflow, job: &str) -> &'a Job {
    wf.jobs.get(job).unwrap_or_else(|| panic!("job {job} is missing"))
}

#[test]
fn every_workflow_is_well_formed() {
    let all = workflows();
    for must in ["ci.yml", "release.yml", "capabilities.yml"] {
        assert!(all.contains_key(must), "{must} is missing: {:?}", all.keys());
    }
    for (name, wf) in &all {
        assert!(!wf.name.is_empty(), "{name}: name");
        assert!(!wf.jobs.is_empty(), "{name}: no jobs");
        for (id, job) in &wf.jobs {
            assert!(!job.steps.is_empty(), "{name}/{id}: no steps");
            for step in &job.steps {
                assert!(
                    step.uses.is_some() != step.run.is_some(),
                    "{name}/{id}: each step has exactly one of uses/run"
                );
                if let Some(uses) = &step.uses {
                    assert!(uses.contains('@'), "{name}/{id}: action {uses} is not pinned to a version");
                }
            }
            for n in job.needs.jobs() {
                assert!(wf.jobs.contains_key(n), "{name}/{id}: needs unknown job {n}");
            }
        }
    }
}

#[test]
fn ci_checks_format_lints_tests_and_the_image() {
    let wf = workflow("ci.yml");
    assert!(wf.on.get("push").is_some() && wf.on.get("pull_request").is_some(), "CI runs on push and pull requests");
    assert!(job(&wf, "fmt").runs("cargo fmt --all -- --check"));
    assert!(job(&wf, "clippy").runs("cargo clippy --locked --all-targets -- -D warnings"));
    assert!(job(&wf, "test").runs("cargo test --locked"));

    // The image is built and loaded under the tag the smoke script then checks.
    let docker = job(&wf, "docker");
    let build = docker
        .steps
        .iter()
        .position(|s| {
            s.action() == Some("docker/build-push-action")
                && s.input("load").as_deref() == Some("true")
                && s.input("tags").as_deref() == Some("baton-torq:ci")
        })
        .expect("a step builds and loads baton-torq:ci");
    let smoke = docker.step_running("scripts/container-smoke.sh baton-torq:ci").expect("the smoke script runs");
    assert!(build < smoke, "build, then smoke test");
}

#[test]
fn release_builds_linux_and_macos_binaries_and_pushes_the_image() {
    let wf = workflow("release.yml");
    let tags = wf.on.get("push").and_then(|p| p.get("tags")).and_then(Value::as_sequence).expect("on.push.tags");
    assert_eq!(tags.iter().filter_map(Value::as_str).collect::<Vec<_>>(), ["v*"]);

    let linux = job(&wf, "linux");
    assert_eq!(linux.matrix("target"), ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]);
    assert!(linux.runs("cargo zigbuild --locked --release --bin baton-torq"));
    let macos = job(&wf, "macos");
    assert_eq!(macos.matrix("target"), ["aarch64-apple-darwin", "x86_64-apple-darwin"]);
    assert!(macos.runs("cargo build --locked --release --bin baton-torq"));
    // Both binary jobs package the README and the license next to the binary.
    for (id, j) in [("linux", linux), ("macos", macos)] {
        assert!(j.runs("cp README.md LICENSE"), "{id} packages README.md and LICENSE");
    }
    let release = job(&wf, "release");
    assert_eq!(release.needs.jobs(), ["linux", "macos"]);
    assert!(release.runs("gh release create"));

    let image = job(&wf, "image");
    assert_eq!(image.permissions.get("packages").map(String::as_str), Some("write"));
    assert!(
        image
            .steps
            .iter()
            .any(|s| s.action() == Some("docker/login-action") && s.input("registry").as_deref() == Some("ghcr.io")),
        "logs in to ghcr.io"
    );
    // The amd64 image is built, loaded and smoke-tested before anything is pushed.
    let position = |pred: &dyn Fn(&Step) -> bool| image.steps.iter().position(pred);
    let smoke_build = position(&|s| {
        s.input("platforms").as_deref() == Some("linux/amd64")
            && s.input("load").as_deref() == Some("true")
            && s.input("tags").as_deref() == Some("baton-torq:smoke")
    })
    .expect("a step builds and loads baton-torq:smoke for linux/amd64");
    let smoke = image.step_running("scripts/container-smoke.sh baton-torq:smoke").expect("the smoke test step");
    let push = position(&|s| {
        s.input("push").as_deref() == Some("true") && s.input("platforms").as_deref() == Some("linux/amd64,linux/arm64")
    })
    .expect("the multi-arch push step");
    assert!(smoke_build < smoke && smoke < push, "build amd64, smoke test it, then push");

    // Shipped binaries carry no debug info.
    let env = |key: &str| wf.env.get(key).and_then(Value::as_str).map(str::to_owned);
    assert_eq!(env("CARGO_PROFILE_RELEASE_STRIP").as_deref(), Some("symbols"));
    assert_eq!(env("CARGO_PROFILE_RELEASE_DEBUG").as_deref(), Some("false"));
}

#[test]
fn license_is_the_apache_2_text_cargo_toml_declares() {
    let license = read(&root().join("LICENSE"));
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"), "LICENSE heading");
    assert!(license.contains("END OF TERMS AND CONDITIONS") && license.lines().count() > 150, "the full text");
    assert!(read(&root().join("Cargo.toml")).contains("license = \"Apache-2.0\""));
}

#[test]
fn capabilities_workflow_fails_when_the_committed_file_is_stale() {
    let wf = workflow("capabilities.yml");
    let job = job(&wf, "capabilities");
    let regenerate = job
        .step_running("./target/debug/baton-torq capabilities > baton_capabilities.json")
        .expect("a step regenerates baton_capabilities.json");
    let compare = job.step_running("if ! git diff --exit-code").expect("a step fails on a difference");
    assert!(regenerate < compare, "regenerate, then compare");
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
    for must in ["target/", ".git/", ".baton.yaml", "*.c1z", "tests/", "examples/"] {
        assert!(ignore.lines().any(|l| l.trim() == must), ".dockerignore lacks {must}");
    }
}

/// The paths in the Dockerfile's `stubs="..."` list (the dependency layer's stand-in sources).
fn dockerfile_stubs(dockerfile: &str) -> Vec<String> {
    let start = dockerfile.find("stubs=\"").expect("the Dockerfile's stubs=\"...\" list") + "stubs=\"".len();
    let len = dockerfile[start..].find('"').expect("end of the stubs list");
    dockerfile[start..start + len].split_whitespace().map(str::to_owned).collect()
}

/// The image build failed once because a target added to Cargo.toml had no stub (and the stub was never removed):
/// every lib, bin and bench target cargo sees must be in the list, at its real path, and the list is deleted.
#[test]
fn dockerfile_stubs_every_declared_target_and_deletes_the_stubs() {
    let dockerfile = read(&root().join("Dockerfile"));
    let stubs = dockerfile_stubs(&dockerfile);
    assert!(dockerfile.contains("rm -f $stubs"), "the stubs are deleted after the dependency build");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline", "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let mut needed = Vec::new();
    for target in meta["packages"][0]["targets"].as_array().expect("targets") {
        let kinds: Vec<&str> = target["kind"].as_array().unwrap().iter().filter_map(|k| k.as_str()).collect();
        let path = Path::new(target["src_path"].as_str().unwrap());
        let relative = path.strip_prefix(root()).unwrap_or(path).to_string_lossy().into_owned();
        if kinds.iter().any(|k| matches!(*k, "lib" | "bin" | "bench")) {
            needed.push(relative);
        } else if kinds.iter().any(|k| matches!(*k, "test" | "example")) {
            // Found by cargo in tests/ and examples/, which .dockerignore keeps out of the image build.
            assert!(relative.starts_with("tests/") || relative.starts_with("examples/"), "{relative}");
        }
    }
    let manifest = read(&root().join("Cargo.toml"));
    assert!(
        !manifest.contains("[[test]]") && !manifest.contains("[[example]]"),
        "an explicit [[test]]/[[example]] target needs a stub in the Dockerfile and its folder in the build context"
    );
    needed.sort();
    let mut stubs = stubs;
    stubs.sort();
    assert_eq!(stubs, needed, "the Dockerfile's stubs=\"...\" must list exactly the lib, bin and bench sources");
}

/// The build stage accepts only a binary whose `--version` starts like the real one's.
#[test]
fn dockerfile_version_check_matches_what_the_binary_prints() {
    let dockerfile = read(&root().join("Dockerfile"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_baton-torq")).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(version.starts_with("baton-torq version v"), "{version}");
    assert!(dockerfile.contains(r#"case "$version" in "baton-torq version v"*)"#), "the build checks the name");
    let smoke = read(&root().join("scripts/container-smoke.sh"));
    assert!(smoke.contains(r#""baton-torq version v"*)"#), "the smoke script checks the name");
}

/// A small image: no debug info, the promised base images, only ca-certificates installed, non-interactive apt.
#[test]
fn dockerfile_builds_a_small_image_from_the_promised_bases() {
    let dockerfile = read(&root().join("Dockerfile"));
    for must in [
        "ARG RUST_IMAGE=rust:1-slim-bookworm",
        "ARG RUNTIME_IMAGE=debian:bookworm-slim",
        "FROM ${RUST_IMAGE} AS build",
        "FROM ${RUNTIME_IMAGE}",
        "CARGO_PROFILE_RELEASE_DEBUG=false",
        "CARGO_PROFILE_RELEASE_STRIP=symbols",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \\",
    ] {
        assert!(dockerfile.contains(must), "Dockerfile lacks {must:?}");
    }
    assert_eq!(dockerfile.matches("apt-get install").count(), 1, "one apt-get install: ca-certificates only");
    // The env settings come before the dependency layer, so both cargo builds use the same profile.
    assert!(dockerfile.find("CARGO_PROFILE_RELEASE_STRIP").unwrap() < dockerfile.find("COPY Cargo.toml").unwrap());
}

/// The smoke script is what CI and a developer run after `docker build`; the project's own CI entry point has no
/// container engine, so it must not call it.
#[test]
fn container_smoke_script_exists_and_stays_out_of_ci_run() {
    let path = root().join("scripts/container-smoke.sh");
    let script = read(&path);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert!(mode & 0o111 != 0, "scripts/container-smoke.sh is executable");
    }
    for must in ["MAX_IMAGE_BYTES=100000000", "MAX_BINARY_BYTES=16000000", "--user", "-v \"$out:/out\"", "demo"] {
        assert!(script.contains(must), "container-smoke.sh lacks {must:?}");
    }
    let ci_run = read(&root().join(".ci/run"));
    assert!(!ci_run.contains("container-smoke") && !ci_run.contains("docker"), ".ci/run must not need an engine");
}
