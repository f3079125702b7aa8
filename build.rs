//! Compiles the project's own `.proto` files (under `src/`) with protox, a pure-Rust protobuf compiler, so no
//! system `protoc` is needed. Maps become `BTreeMap`s so encoding is deterministic (sorted keys, as Go writes).
use std::path::PathBuf;

const PROTO_ROOTS: &[&str] = &["src/proto"];
const PROTO_FILES: &[&str] = &[
    "src/proto/c1/connector/v2/resource.proto",
    "src/proto/c1/connector/v2/entitlement.proto",
    "src/proto/c1/connector/v2/grant.proto",
    "src/proto/c1/connector/v2/annotation_trait.proto",
    "src/proto/c1/connector/v2/annotation_resource_tree.proto",
    "src/proto/c1/connector/v2/connector.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for root in PROTO_ROOTS {
        println!("cargo:rerun-if-changed={root}");
    }
    let descriptors = protox::compile(PROTO_FILES, PROTO_ROOTS)?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    prost_build::Config::new().btree_map(["."]).out_dir(&out_dir).compile_fds(descriptors)?;
    Ok(())
}
