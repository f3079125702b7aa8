//! An HTTPS server on loopback whose certificate is wrong in a chosen way (self-signed, for another name, expired),
//! counting the TCP connections it accepts: a client that retries a handshake no retry can fix shows up as more
//! than one connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::StreamExt as _;

/// What is wrong with the server's certificate.
#[derive(Clone, Copy, Debug)]
pub enum BadCert {
    /// Self-signed for localhost/127.0.0.1 and not trusted by the client.
    SelfSigned,
    /// Valid only for `other.example.test` (the client is told to trust it).
    OtherName,
    /// For localhost/127.0.0.1, expired in 2001 (the client is told to trust it).
    Expired,
}

pub struct TlsServer {
    pub addr: std::net::SocketAddr,
    /// The certificate, as PEM (to trust it through SSL_CERT_FILE).
    pub cert_pem: String,
    connections: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TlsServer {
    pub async fn start(bad: BadCert) -> TlsServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let names = match bad {
            BadCert::OtherName => vec!["other.example.test".to_string()],
            BadCert::SelfSigned | BadCert::Expired => vec!["localhost".to_string(), "127.0.0.1".to_string()],
        };
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        if let BadCert::Expired = bad {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let cert_pem = cert.pem();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(move |conn| {
            counter.fetch_add(1, Ordering::SeqCst);
            conn
        });
        let routes = tonic::service::Routes::from(axum::Router::new().fallback(|| async { "{}" }));
        let tls = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(cert_pem.clone(), key.serialize_pem()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .tls_config(tls)
            .unwrap()
            .accept_http1(true)
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            });
        tokio::spawn(server);
        TlsServer { addr, cert_pem, connections, stop: Some(stop) }
    }

    /// `https://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}/{path}", self.addr.port())
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
