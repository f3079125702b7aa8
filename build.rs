//! Compiles the project's own `.proto` files (under `src/`) with protox, a pure-Rust protobuf compiler, so no
//! system `protoc` is needed. Maps become `BTreeMap`s so encoding is deterministic (sorted keys, as Go writes).
//! Also generates the tonic BatonService client and server (service mode; the server serves the tests' fake).
use std::path::PathBuf;

const PROTO_ROOTS: &[&str] = &["src/proto"];
const PROTO_FILES: &[&str] = &[
    "src/proto/c1/connector/v2/resource.proto",
    "src/proto/c1/connector/v2/entitlement.proto",
    "src/proto/c1/connector/v2/grant.proto",
    "src/proto/c1/connector/v2/annotation_trait.proto",
    "src/proto/c1/connector/v2/annotation_resource_tree.proto",
    "src/proto/c1/connector/v2/connector.proto",
    "src/proto/c1/connector/v2/provisioning.proto",
    // service mode: ConductorOne's task API (client for the connector, server for the tests' fake ConductorOne)
    "src/proto/google/rpc/status.proto",
    "src/proto/c1/connectorapi/baton/v1/baton.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for root in PROTO_ROOTS {
        println!("cargo:rerun-if-changed={root}");
    }
    let descriptors = protox::compile(PROTO_FILES, PROTO_ROOTS)?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // tonic-prost-build drives prost-build with the same settings and adds the BatonService client and server.
    tonic_prost_build::configure()
        .btree_map(".")
        .build_client(true)
        .build_server(true)
        .out_dir(&out_dir)
        .compile_fds(descriptors)?;
    // Service mode reports the compiler version in Hello's build info (plain "rust" when unknown).
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_default();
    println!("cargo:rustc-env=BATON_TORQ_RUSTC_VERSION={version}");
    Ok(())
}
