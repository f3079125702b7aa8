//! The Hello answer: what baton-torq tells ConductorOne about itself (build info, OS info without empty fields,
//! the connector metadata with its capabilities and account-creation schema), sent at start-up and for each
//! `hello` task.

use crate::proto::baton_v1::baton_service_hello_request::{BuildInfo, OsInfo};
use crate::proto::baton_v1::BatonServiceHelloRequest;

/// Hello request body (host_id is filled in by the client): metadata, build info, OS info without empty fields.
pub(crate) fn request(task_id: &str) -> BatonServiceHelloRequest {
    let rustc = option_env!("BATON_TORQ_RUSTC_VERSION").unwrap_or("");
    BatonServiceHelloRequest {
        host_id: String::new(),
        task_id: task_id.to_owned(),
        build_info: Some(BuildInfo {
            lang_version: if rustc.is_empty() { "rust".to_owned() } else { format!("rust {rustc}") },
            package: "baton-torq".to_owned(),
            package_version: env!("CARGO_PKG_VERSION").to_owned(),
        }),
        os_info: Some(os_info()),
        connector_metadata: Some(crate::connector::metadata::connector_metadata()),
        annotations: Vec::new(),
    }
}

/// The machine's hostname, or `baton-torq` when it has none.
pub(crate) fn hostname_or_default() -> String {
    let name = gethostname::gethostname().to_string_lossy().trim().to_owned();
    if name.is_empty() {
        "baton-torq".to_owned()
    } else {
        name
    }
}

fn os_info() -> OsInfo {
    let read = |path: &str| std::fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_default();
    let os_release = read("/etc/os-release");
    let field = |key: &str| {
        os_release
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default()
    };
    let or = |v: String, fallback: &str| if v.is_empty() { fallback.to_owned() } else { v };
    let os = std::env::consts::OS.to_owned();
    let platform = or(field("ID"), &os);
    OsInfo {
        hostname: hostname_or_default(),
        platform_version: or(field("VERSION_ID"), "unknown"),
        platform_family: or(field("ID_LIKE").split_whitespace().next().unwrap_or("").to_owned(), &platform),
        platform,
        kernel_version: or(read("/proc/sys/kernel/osrelease"), "unknown"),
        kernel_arch: std::env::consts::ARCH.to_owned(),
        virtualization_system: "none".to_owned(),
        os,
    }
}
