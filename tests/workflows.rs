//! Packaging files stay valid: every GitHub Actions workflow parses as YAML (with the same YAML crate that reads
//! `.baton.yaml`), has the jobs and commands the project relies on, and the Dockerfile keeps the promised shape
//! (multi-stage, non-root, `ENTRYPOINT ["baton-torq"]`, `WORKDIR /out`, a stub for every declared target, no debug
//! info), the smoke script CI runs on the image exists, and LICENSE is there. Nothing here needs Docker or a
//! network (`cargo metadata --offline` reads only the manifest).

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
    assert!(docker.contains("scripts/container-smoke.sh baton-torq:ci"), "the docker job runs the smoke script");
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

    // The amd64 image is built, loaded and smoke-tested before anything is pushed.
    let steps = image.get("steps").and_then(Value::as_sequence).expect("image steps");
    let position = |pred: &dyn Fn(&Value) -> bool| steps.iter().position(pred);
    let with = |step: &Value, key: &str| {
        step.get("with").and_then(|w| w.get(key)).map(|v| serde_norway::to_string(v).unwrap())
    };
    let smoke_build = position(&|s| {
        with(s, "platforms").is_some_and(|p| p.trim() == "linux/amd64")
            && with(s, "load").is_some_and(|l| l.trim() == "true")
            && with(s, "tags").is_some_and(|t| t.trim() == "baton-torq:smoke")
    })
    .expect("a step builds and loads baton-torq:smoke for linux/amd64");
    let smoke =
        position(&|s| s.get("run").and_then(Value::as_str) == Some("scripts/container-smoke.sh baton-torq:smoke"))
            .expect("a step runs scripts/container-smoke.sh baton-torq:smoke");
    let push = position(&|s| with(s, "push").is_some_and(|p| p.trim() == "true")).expect("the push step");
    assert!(smoke_build < smoke && smoke < push, "build amd64, smoke test it, then push");

    // Both binary jobs package the license; shipped binaries carry no debug info.
    for id in ["linux", "macos"] {
        assert!(job_text(job(&wf, id)).contains("cp README.md LICENSE"), "{id} packages README.md and LICENSE");
    }
    let env = serde_norway::to_string(wf.get("env").expect("release env")).unwrap();
    assert!(env.contains("CARGO_PROFILE_RELEASE_STRIP: symbols"), "{env}");
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
