//! A loopback HTTP proxy in front of the simulated Torq that can make the next connection attempt really fail
//! with "connection refused": after a set number of accepted connections it closes its listening socket, and it
//! listens again on the same port when the test says so. Between the two, a client's connect gets a TCP reset
//! from the kernel, exactly as when Torq's address is unreachable, so the request surely never left the client.
//!
//! Every answer carries `Connection: close`, so each request opens its own connection: a pooled keep-alive
//! connection would otherwise carry the next request past the closed listener.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Largest request body forwarded (the invite is a few dozen bytes).
const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// What the test and the listener share.
struct Control {
    /// Connections accepted so far.
    accepted: AtomicU64,
    /// Whether the port listens now; the listener sets it, tests wait on it.
    listening: watch::Sender<bool>,
    /// How many times the test asked to listen again.
    reopen: watch::Sender<u64>,
}

/// A running proxy; stops when dropped.
pub struct RefusingProxy {
    addr: SocketAddr,
    control: Arc<Control>,
    task: JoinHandle<()>,
}

impl RefusingProxy {
    /// Listens on a free loopback port and forwards every request to `upstream`. After the `close_after`-th
    /// accepted connection the port stops listening (that connection is still served) until [`Self::listen_again`].
    pub async fn start(upstream: SocketAddr, close_after: u64) -> RefusingProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind a loopback port for the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let control = Arc::new(Control {
            accepted: AtomicU64::new(0),
            listening: watch::Sender::new(true),
            reopen: watch::Sender::new(0),
        });
        let gate = GateListener {
            addr,
            socket: Some(listener),
            close_after,
            reopens_seen: 0,
            reopen: control.reopen.subscribe(),
            control: Arc::clone(&control),
        };
        // reqwest is built without a default TLS crypto provider (plain HTTP here, but the builder insists).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let forward = Arc::new(Forward {
            upstream,
            client: reqwest::Client::builder().no_proxy().build().expect("the proxy's HTTP client"),
        });
        let app = axum::Router::new().fallback(forward_request).with_state(forward);
        let task = tokio::spawn(async move {
            let _ = axum::serve(gate, app).await;
        });
        RefusingProxy { addr, control, task }
    }

    /// `url` (of the upstream server) with the proxy's address in place of the upstream's.
    pub fn url(&self, upstream: SocketAddr, url: &str) -> String {
        let url = url.replacen(&upstream.to_string(), &self.addr.to_string(), 1);
        assert!(url.contains(&self.addr.to_string()), "{url} does not name {upstream}");
        url
    }

    /// Connections accepted so far (one per request, as every answer closes its connection).
    pub fn accepted(&self) -> u64 {
        self.control.accepted.load(Ordering::SeqCst)
    }

    /// Whether the port listens now.
    pub fn is_listening(&self) -> bool {
        *self.control.listening.borrow()
    }

    /// Makes the port listen again (on the same port); returns once it does.
    pub async fn listen_again(&self) {
        self.control.reopen.send_modify(|n| *n += 1);
        let mut listening = self.control.listening.subscribe();
        tokio::time::timeout(Duration::from_secs(10), listening.wait_for(|l| *l))
            .await
            .expect("the proxy listens again within 10 s")
            .expect("the proxy is running");
    }
}

impl Drop for RefusingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The proxy's listening socket: dropped after `close_after` accepts, bound again on request.
struct GateListener {
    addr: SocketAddr,
    socket: Option<TcpListener>,
    close_after: u64,
    reopens_seen: u64,
    reopen: watch::Receiver<u64>,
    control: Arc<Control>,
}

impl axum::serve::Listener for GateListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Some(socket) = &self.socket else {
                let seen = self.reopens_seen;
                let _ = self.reopen.wait_for(|n| *n > seen).await;
                self.reopens_seen = *self.reopen.borrow();
                // SO_REUSEADDR (set by tokio) lets the port be bound again while old connections linger.
                let socket = TcpListener::bind(self.addr).await.expect("listen again on the proxy's port");
                self.socket = Some(socket);
                self.control.listening.send_replace(true);
                continue;
            };
            match socket.accept().await {
                Ok((io, peer)) => {
                    let n = self.control.accepted.fetch_add(1, Ordering::SeqCst) + 1;
                    if n == self.close_after {
                        // Closing the socket now: the next connect is refused by the kernel.
                        self.socket = None;
                        self.control.listening.send_replace(false);
                    }
                    return (io, peer);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

struct Forward {
    upstream: SocketAddr,
    client: reqwest::Client,
}

/// Headers that belong to one connection, not to the message.
fn hop_by_hop(name: &header::HeaderName) -> bool {
    [header::CONNECTION, header::HOST, header::TRANSFER_ENCODING, header::TE, header::UPGRADE].contains(name)
        || name.as_str().eq_ignore_ascii_case("keep-alive")
}

/// Sends `req` to the upstream server and streams its answer back, closing the connection afterwards.
async fn forward_request(State(fwd): State<Arc<Forward>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_REQUEST_BODY).await else {
        return closing(StatusCode::BAD_REQUEST, Body::from("proxy: request body unreadable"));
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = fwd.client.request(parts.method, format!("http://{}{path}", fwd.upstream)).body(body);
    for (name, value) in parts.headers.iter().filter(|(n, _)| !hop_by_hop(n)) {
        upstream = upstream.header(name, value);
    }
    let answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(e) => return closing(StatusCode::BAD_GATEWAY, Body::from(format!("proxy: {e}"))),
    };
    let status = answer.status();
    let headers: HeaderMap =
        answer.headers().iter().filter(|(n, _)| !hop_by_hop(n)).map(|(n, v)| (n.clone(), v.clone())).collect();
    let mut response = closing(status, Body::from_stream(answer.bytes_stream()));
    response.headers_mut().extend(headers);
    response
}

fn closing(status: StatusCode, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
