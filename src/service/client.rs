//! The BatonService gRPC client: one TLS channel to ConductorOne, `authorization: Bearer` on every call (marked
//! sensitive so it never shows in `Debug`), user agent `baton-torq/<version>`, and `host_id` in every request.
//! Behind a proxy (`HTTPS_PROXY`/`ALL_PROXY`, unless `NO_PROXY` names the host) the channel is an HTTP CONNECT
//! tunnel through it, TLS to ConductorOne inside, as for the token requests (reqwest reads the same variables).
//!
//! Must not: log tokens or request metadata; decide what to do with a task (that is `tasks`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt as _};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;
use tonic::codegen::http::{HeaderValue, Uri};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::token::{TokenError, TokenSource};
use crate::proto::baton_v1::baton_service_client::BatonServiceClient;
use crate::proto::baton_v1::baton_service_upload_asset_request::{Msg, UploadData, UploadEof, UploadMetadata};
use crate::proto::baton_v1::{
    BatonServiceFinishTaskRequest, BatonServiceGetTaskRequest, BatonServiceGetTaskResponse,
    BatonServiceHeartbeatRequest, BatonServiceHeartbeatResponse, BatonServiceHelloRequest,
    BatonServiceUploadAssetRequest,
};

/// Size of each `UploadAsset` data message.
pub(crate) const UPLOAD_CHUNK: usize = 512 * 1024;
/// Deadline of unary calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The user agent of the gRPC channel and the token requests.
pub(crate) const USER_AGENT: &str = concat!("baton-torq/", env!("CARGO_PKG_VERSION"));

/// A failed call: no token, or the server's (or transport's) gRPC status.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("{code:?}: {message}")]
    Rpc { code: tonic::Code, message: String },
    #[error("cannot read the sync file: {0}")]
    File(String),
}

impl CallError {
    fn from_status(s: &tonic::Status) -> CallError {
        let mut message = s.message().replace('\n', " ");
        if let Some(source) = std::error::Error::source(s) {
            let chain = super::token::error_chain(source);
            if !message.contains(&chain) {
                message = format!("{message}: {chain}");
            }
        }
        CallError::Rpc { code: s.code(), message }
    }

    /// The gRPC code this failure amounts to.
    pub fn code(&self) -> tonic::Code {
        match self {
            CallError::Token(TokenError::Rejected { .. }) => tonic::Code::Unauthenticated,
            CallError::Token(_) => tonic::Code::Unavailable,
            CallError::Rpc { code, .. } => *code,
            CallError::File(_) => tonic::Code::Internal,
        }
    }
}

/// Time limits of one `UploadAsset`. An endpoint that accepts the stream but stops reading it (HTTP/2 flow control
/// then stops the sender) or never answers after the last message would otherwise hold a task slot forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadLimits {
    /// Fail when no message has been taken by the transport for this long (also counts the wait for the answer
    /// after the last message).
    pub stall: Duration,
    /// Whole-upload deadline: `base` plus the file size at `min_bytes_per_second`.
    pub base: Duration,
    pub min_bytes_per_second: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        // 64 KiB/s is a slow uplink; a 100 MB sync file then gets ~28 minutes.
        UploadLimits { stall: Duration::from_secs(60), base: Duration::from_secs(120), min_bytes_per_second: 64 * 1024 }
    }
}

impl UploadLimits {
    /// The whole-upload deadline for a file of `size` bytes.
    pub(crate) fn deadline(&self, size: u64) -> Duration {
        let transfer = Duration::from_secs(size / self.min_bytes_per_second.max(1));
        self.base.saturating_add(transfer)
    }
}

/// When the upload stream last handed a message to the transport.
struct Progress {
    start: tokio::time::Instant,
    last_ms: std::sync::atomic::AtomicU64,
}

impl Progress {
    fn new() -> Progress {
        Progress { start: tokio::time::Instant::now(), last_ms: std::sync::atomic::AtomicU64::new(0) }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Resolves once nothing has been taken for `stall`.
    async fn stalled(&self, stall: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(std::sync::atomic::Ordering::Relaxed));
            let idle = last.elapsed();
            if idle >= stall {
                return;
            }
            tokio::time::sleep(stall - idle).await;
        }
    }
}

/// BatonService with credentials and this host's id.
#[derive(Clone)]
pub struct C1Client {
    grpc: BatonServiceClient<Channel>,
    tokens: Arc<TokenSource>,
    host_id: String,
    upload_limits: UploadLimits,
}

impl std::fmt::Debug for C1Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("C1Client").field("host_id", &self.host_id).finish_non_exhaustive()
    }
}

/// A lazily connecting TLS channel to `api_host` (`host[:port]`, port 443 by default): system roots plus `extra_ca`.
pub(crate) fn channel(api_host: &str, extra_ca: Option<&[u8]>) -> Result<Channel, String> {
    let authority = if api_host.contains(':') { api_host.to_owned() } else { format!("{api_host}:443") };
    let host = authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(&authority).to_owned();
    let mut tls = ClientTlsConfig::new().with_native_roots().domain_name(host);
    if let Some(pem) = extra_ca {
        tls = tls.ca_certificate(Certificate::from_pem(pem));
    }
    let endpoint = Endpoint::from_shared(format!("https://{authority}"))
        .map_err(|e| format!("invalid ConductorOne API host {api_host:?} (--c1-api-host, BATON_C1_API_HOST): {e}"))?
        .user_agent(USER_AGENT)
        .map_err(|e| e.to_string())?
        .tls_config(tls)
        .map_err(|e| format!("TLS setup failed: {e}; check --c1-ca-cert-file (BATON_C1_CA_CERT_FILE), when set"))?
        .connect_timeout(CALL_TIMEOUT)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    let Some((proxy, auth)) = proxy_for(endpoint.uri())? else {
        return Ok(endpoint.connect_lazy());
    };
    tracing::debug!(proxy = %proxy.authority().map_or("", |a| a.as_str().rsplit('@').next().unwrap_or("")),
        "reaching ConductorOne through the proxy");
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    let mut tunnel = Tunnel::new(proxy, tcp);
    if let Some(auth) = auth {
        tunnel = tunnel.with_auth(auth);
    }
    Ok(endpoint.connect_with_connector_lazy(tunnel))
}

/// The proxy for `target` from the environment, read the way curl and reqwest read it, with its basic
/// credentials; `None` for a direct connection. Only plain-http proxies can carry the tunnel.
fn proxy_for(target: &Uri) -> Result<Option<(Uri, Option<HeaderValue>)>, String> {
    let Some(intercept) = Matcher::from_env().intercept(target) else {
        return Ok(None);
    };
    let proxy = intercept.uri().clone();
    if proxy.scheme_str() != Some("http") {
        // Never the whole value: it may hold the proxy's password.
        return Err(format!(
            "the proxy for ConductorOne (HTTPS_PROXY or ALL_PROXY) is a {}:// proxy; service mode tunnels through \
             http:// proxies only (e.g. HTTPS_PROXY=http://proxy.example:3128)",
            proxy.scheme_str().unwrap_or("?")
        ));
    }
    Ok(Some((proxy, intercept.basic_auth().cloned())))
}

impl C1Client {
    pub(crate) fn new(channel: Channel, tokens: Arc<TokenSource>, host_id: String) -> C1Client {
        C1Client { grpc: BatonServiceClient::new(channel), tokens, host_id, upload_limits: UploadLimits::default() }
    }

    /// The same client with other upload time limits.
    pub fn with_upload_limits(mut self, limits: UploadLimits) -> C1Client {
        self.upload_limits = limits;
        self
    }

    async fn authed<T>(&self, msg: T, timeout: Option<Duration>) -> Result<tonic::Request<T>, CallError> {
        let token = self.tokens.token().await?;
        let mut value = MetadataValue::try_from(format!("Bearer {}", token.expose_secret()))
            .map_err(|_| CallError::Rpc { code: tonic::Code::Internal, message: "unusable access token".into() })?;
        value.set_sensitive(true);
        let mut request = tonic::Request::new(msg);
        request.metadata_mut().insert("authorization", value);
        if let Some(t) = timeout {
            request.set_timeout(t);
        }
        Ok(request)
    }

    async fn after<R>(&self, result: Result<tonic::Response<R>, tonic::Status>) -> Result<R, CallError> {
        match result {
            Ok(r) => Ok(r.into_inner()),
            Err(s) => {
                if s.code() == tonic::Code::Unauthenticated {
                    self.tokens.invalidate().await;
                }
                Err(CallError::from_status(&s))
            }
        }
    }

    /// `Hello` with this host's id; `request.host_id` is filled in.
    pub(crate) async fn hello(&self, mut request: BatonServiceHelloRequest) -> Result<(), CallError> {
        request.host_id = self.host_id.clone();
        let req = self.authed(request, Some(CALL_TIMEOUT)).await?;
        let r = self.grpc.clone().hello(req).await;
        self.after(r).await.map(|_| ())
    }

    pub(crate) async fn get_task(&self) -> Result<BatonServiceGetTaskResponse, CallError> {
        let req = self.authed(BatonServiceGetTaskRequest { host_id: self.host_id.clone() }, Some(CALL_TIMEOUT)).await?;
        let r = self.grpc.clone().get_task(req).await;
        self.after(r).await
    }

    pub(crate) async fn heartbeat(&self, task_id: &str) -> Result<BatonServiceHeartbeatResponse, CallError> {
        let msg = BatonServiceHeartbeatRequest {
            host_id: self.host_id.clone(),
            task_id: task_id.to_owned(),
            ..Default::default()
        };
        let req = self.authed(msg, Some(CALL_TIMEOUT)).await?;
        let r = self.grpc.clone().heartbeat(req).await;
        self.after(r).await
    }

    /// `FinishTask`; `request.host_id` is filled in.
    pub(crate) async fn finish_task(&self, mut request: BatonServiceFinishTaskRequest) -> Result<(), CallError> {
        request.host_id = self.host_id.clone();
        let req = self.authed(request, Some(CALL_TIMEOUT)).await?;
        let r = self.grpc.clone().finish_task(req).await;
        self.after(r).await.map(|_| ())
    }

    /// Streams `path` as one asset of `task_id`: metadata, 512 KiB data chunks, eof with the file's sha256.
    /// Fails with `DeadlineExceeded` when the upload stalls or overruns its deadline (see [`UploadLimits`]).
    pub async fn upload_asset(&self, task_id: &str, path: &Path) -> Result<u64, CallError> {
        let (digest, size) = sha256_file(path).await.map_err(|e| CallError::File(e.to_string()))?;
        let file = tokio::fs::File::open(path).await.map_err(|e| CallError::File(e.to_string()))?;
        let read_error: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let metadata = BatonServiceUploadAssetRequest {
            msg: Some(Msg::Metadata(UploadMetadata {
                host_id: self.host_id.clone(),
                task_id: task_id.to_owned(),
                ..Default::default()
            })),
        };
        let errors = read_error.clone();
        let chunks = stream::unfold(Some(file), move |file| {
            let errors = errors.clone();
            async move {
                let mut file = file?;
                let mut buf = vec![0u8; UPLOAD_CHUNK];
                let mut filled = 0;
                while filled < UPLOAD_CHUNK {
                    match file.read(&mut buf[filled..]).await {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) => {
                            if let Ok(mut slot) = errors.lock() {
                                *slot = Some(e.to_string());
                            }
                            return None;
                        }
                    }
                }
                if filled == 0 {
                    return None;
                }
                buf.truncate(filled);
                let msg = BatonServiceUploadAssetRequest { msg: Some(Msg::Data(UploadData { data: buf })) };
                Some((msg, Some(file)))
            }
        });
        let eof = BatonServiceUploadAssetRequest {
            msg: Some(Msg::Eof(UploadEof { sha256_checksum: digest.to_vec(), ..Default::default() })),
        };
        // The eof only goes out when every chunk was read; without it the server rejects the upload.
        let eof_errors = read_error.clone();
        let eof = stream::once(std::future::ready(eof)).filter_map(move |m| {
            let clean = eof_errors.lock().map(|slot| slot.is_none()).unwrap_or(false);
            std::future::ready(clean.then_some(m))
        });
        let progress = Arc::new(Progress::new());
        let taken = progress.clone();
        let messages = stream::iter([metadata]).chain(chunks).chain(eof).inspect(move |_| taken.touch());
        let limits = self.upload_limits;
        let deadline = limits.deadline(size);
        // The grpc-timeout tells ConductorOne when to give up; it is a little later than our own deadline so that
        // tonic's timer (which reports a bare "Cancelled") never wins the race against the clearer error below.
        let req = self.authed(messages, Some(deadline + Duration::from_secs(5))).await?;
        let mut grpc = self.grpc.clone();
        progress.touch();
        let call = tokio::time::timeout(deadline, grpc.upload_asset(req));
        let r = tokio::select! {
            r = call => match r {
                Ok(r) => r,
                Err(_) => return Err(CallError::Rpc {
                    code: tonic::Code::DeadlineExceeded,
                    message: format!("the upload of {size} bytes did not finish within {} s", deadline.as_secs()),
                }),
            },
            _ = progress.stalled(limits.stall) => return Err(CallError::Rpc {
                code: tonic::Code::DeadlineExceeded,
                message: format!(
                    "the upload made no progress for {} s (ConductorOne stopped reading it or did not answer)",
                    limits.stall.as_secs_f64()
                ),
            }),
        };
        let result = self.after(r).await;
        if let Some(e) = read_error.lock().ok().and_then(|slot| slot.clone()) {
            return Err(CallError::File(e));
        }
        result.map(|_| size)
    }
}

/// sha256 and size of a file, read on a blocking thread.
async fn sha256_file(path: &Path) -> std::io::Result<([u8; 32], u64)> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; UPLOAD_CHUNK];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            hasher.update(&buf[..n]);
        }
        Ok((hasher.finalize().into(), size))
    })
    .await
    .map_err(std::io::Error::other)?
}
