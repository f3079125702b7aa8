//! A minimal HTTP CONNECT proxy on loopback: it tunnels to the names it was given (and only those), so a host name
//! that nothing but the proxy can resolve proves that a client's traffic went through it. Records each CONNECT
//! target and the `Proxy-Authorization` it carried; anything else gets a 405, an unknown name a 502.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Each CONNECT: its `host:port` and its `Proxy-Authorization` value, if any.
type Seen = Mutex<Vec<(String, Option<String>)>>;

pub struct ConnectProxy {
    addr: SocketAddr,
    seen: Arc<Seen>,
    task: JoinHandle<()>,
}

impl ConnectProxy {
    /// A proxy that knows each `(name, address)`; a CONNECT to `name:port` reaches `address`.
    pub async fn start(names: &[(&str, SocketAddr)]) -> ConnectProxy {
        let names: Arc<HashMap<String, SocketAddr>> =
            Arc::new(names.iter().map(|(n, a)| (n.to_ascii_lowercase(), *a)).collect());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Seen> = Arc::default();
        let recorded = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (names, recorded) = (names.clone(), recorded.clone());
                tokio::spawn(async move {
                    let _ = tunnel(client, &names, &recorded).await;
                });
            }
        });
        ConnectProxy { addr, seen, task }
    }

    /// `http://127.0.0.1:<port>`, for `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://user:password@127.0.0.1:<port>`: the same proxy, for a client that must send credentials.
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}", self.addr)
    }

    /// The `host:port` of every CONNECT so far.
    pub fn targets(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(|(target, _)| target.clone()).collect()
    }

    /// The `Proxy-Authorization` value of every CONNECT so far (`None` where there was none).
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().iter().map(|(_, auth)| auth.clone()).collect()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tunnel(mut client: TcpStream, names: &HashMap<String, SocketAddr>, seen: &Seen) -> std::io::Result<()> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 || client.read_u8().await.map(|b| head.push(b)).is_err() {
            return Ok(());
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut words = head.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
        return client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n").await;
    };
    let authorization = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("proxy-authorization").then(|| value.trim().to_owned())
    });
    seen.lock().unwrap().push((target.to_owned(), authorization));
    let (name, port) = target.rsplit_once(':').unwrap_or((target, "443"));
    let Some(addr) = names.get(&name.to_ascii_lowercase()) else {
        return client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n").await;
    };
    let mut upstream = TcpStream::connect((addr.ip(), port.parse().unwrap_or(addr.port()))).await?;
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await.map(|_| ())
}
