//! Certificate failures no retry can fix end the run at once, with one line naming the host, the reason and the
//! fix: Torq's side against a loopback HTTPS server with a bad certificate (self-signed, for another name, expired)
//! or with no usable CA file. ConductorOne's side is in tests/service_mode.rs.

mod common;

use std::path::Path;
use std::process::Output;

use common::harness;
use common::tls_server::{BadCert, TlsServer};

/// A sync against `server` (as Torq's API and token endpoint), trusting `ca_file` through SSL_CERT_FILE if given.
async fn sync_against(server: &TlsServer, ca_file: Option<&Path>, dir: &Path) -> Output {
    let mut cmd = harness::command_with(
        "id",
        "secret",
        &server.url("public/v1alpha"),
        &server.url("v1/auth/token"),
        &dir.join("sync.c1z"),
    );
    cmd.args(["--log-format", "console"]);
    if let Some(ca) = ca_file {
        cmd.env("SSL_CERT_FILE", ca);
    }
    cmd.output().await.expect("binary runs")
}

/// Exit 1 after `connections` connections (no retries), with one error line that names the server, `reason` and
/// `fix`; nothing written.
fn assert_fails_at_once(out: &Output, server: &TlsServer, dir: &Path, connections: usize, reason: &str, fix: &str) {
    let err = harness::stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{err}");
    let line = errors[0];
    assert!(line.contains(&format!("127.0.0.1:{}", server.addr.port())), "the host: {line}");
    assert!(line.contains(reason) && line.contains(fix), "reason {reason:?} and fix {fix:?}: {line}");
    assert!(line.contains("retrying cannot fix this"), "{line}");
    assert!(!err.contains("failed; retrying"), "no retry was announced:\n{err}");
    assert_eq!(server.connections(), connections, "no retries:\n{err}");
    assert!(!dir.join("sync.c1z").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_issuer_fails_at_once_and_names_ssl_cert_file() {
    let server = TlsServer::start(BadCert::SelfSigned).await;
    let dir = tempfile::tempdir().unwrap();
    let out = sync_against(&server, None, dir.path()).await;
    assert_fails_at_once(
        &out,
        &server,
        dir.path(),
        1,
        "signed by an issuer this machine does not trust",
        "add its CA certificate to the system trust store, or point SSL_CERT_FILE at a PEM file that holds it",
    );
}

/// A sync against a server with a `bad` certificate that the client is told to trust through SSL_CERT_FILE, so the
/// certificate's other defect is what fails.
async fn trusted_but(bad: BadCert, reason: &str, fix: &str) {
    let server = TlsServer::start(bad).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &server.cert_pem).unwrap();
    let out = sync_against(&server, Some(&ca), dir.path()).await;
    assert_fails_at_once(&out, &server, dir.path(), 1, reason, fix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_fails_at_once() {
    trusted_but(BadCert::OtherName, "for another host name", "--torq-api-url").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_fails_at_once() {
    trusted_but(BadCert::Expired, "has expired", "check this machine's clock").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_file_without_certificates_fails_at_once() {
    let server = TlsServer::start(BadCert::SelfSigned).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "this is not a certificate\n").unwrap();
    let out = sync_against(&server, Some(&ca), dir.path()).await;
    // Found when the client is set up, before any connection.
    assert_fails_at_once(&out, &server, dir.path(), 0, "no CA certificate could be loaded", "SSL_CERT_FILE");
}
