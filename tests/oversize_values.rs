//! Values longer than any real Torq value (a hostile or broken server): the record is malformed, named in one
//! warning, left out of the file with its grants, and counted in the summary, so such a server cannot fill the
//! disk with the work file.

mod common;

use baton_torq::sim::{SimConfig, SimServer, Workspace};
use common::harness::{assert_success, content, reference_workspace, run, sim_user, stderr};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_values_are_malformed_records_left_out_and_counted() {
    let roles = reference_workspace().roles();
    let role = roles[0].id.clone();
    let huge_email = format!("{}@example.com", "e".repeat(5000));
    let users = vec![
        sim_user("u-ok", "ok@example.com", &role, "VERIFIED", false),
        sim_user("u-huge-email", &huge_email, &role, "VERIFIED", false),
        sim_user(&"i".repeat(5000), "long-id@example.com", &role, "VERIFIED", false),
        sim_user("u-321", &format!("{}@example.com", "a".repeat(321 - 12)), &role, "VERIFIED", false),
        sim_user("u-320", &format!("{}@example.com", "a".repeat(320 - 12)), &role, "VERIFIED", false),
    ];
    let server = SimServer::start(Workspace::fixed(users, roles), SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.c1z");
    let out = run(&server, &file, &[]).await;
    assert_success(&out);
    let err = stderr(&out);
    let summary = err
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "sync complete")
        .expect("a summary record");
    assert_eq!(summary["resources"]["user"], 2, "{summary}");
    assert_eq!(summary["malformed"]["user"], 3, "{summary}");
    assert_eq!(summary["grants"], 2, "{summary}");
    let got = content(&file);
    let users: Vec<&String> = got.keys().filter(|k| k.starts_with("v1_resources/user:")).collect();
    assert_eq!(users, ["v1_resources/user:u-320", "v1_resources/user:u-ok"]);
    assert!(!got.keys().any(|k| k.contains("u-huge-email") || k.contains("iiii")), "no trace of them");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("is malformed")).collect();
    assert_eq!(warnings.len(), 3, "one warning per record:\n{err}");
    assert!(warnings.iter().any(|w| w.contains("user u-huge-email") && w.contains("its email is 5012 bytes long")));
    assert!(warnings.iter().any(|w| w.contains("its id is 5004 bytes long")));
    assert!(warnings.iter().all(|w| w.len() < 1000), "the warning does not repeat the value");
    server.shutdown().await;
}
