//! A fake ConductorOne on loopback for service-mode tests: the token endpoint (`POST /auth/v1/token`) and
//! `c1.connectorapi.baton.v1.BatonService`, both served over TLS on one port with a self-signed certificate made
//! at start-up (the binary trusts it through `BATON_C1_CA_CERT_FILE`).
//!
//! The token endpoint verifies the client assertion independently of the connector's code: EdDSA signature with
//! the public half of the test key, header and claims. gRPC calls need a token it issued. It hands out the queued
//! tasks one per GetTask, answers `cancelled` to heartbeats of chosen tasks, checks every upload's sha256, and
//! records Hello, Heartbeat, UploadAsset and FinishTask calls for the test to assert on.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Form, Json};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use baton_torq::proto::baton_v1::baton_service_server::{BatonService, BatonServiceServer};
use baton_torq::proto::baton_v1::baton_service_upload_asset_request::Msg;
use baton_torq::proto::baton_v1::*;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use sha2::{Digest as _, Sha256};
use tonic::{Request, Response, Status, Streaming};

/// One finished upload.
#[derive(Clone, Debug)]
pub struct Upload {
    pub host_id: String,
    pub task_id: String,
    pub data: Vec<u8>,
    pub chunk_sizes: Vec<usize>,
}

/// Everything the fake saw.
#[derive(Default, Debug)]
pub struct Record {
    pub token_requests: u64,
    pub token_rejections: Vec<String>,
    pub hellos: Vec<BatonServiceHelloRequest>,
    pub get_tasks: u64,
    pub heartbeats: Vec<String>,
    pub uploads: Vec<Upload>,
    pub upload_rejections: Vec<String>,
    pub finishes: Vec<BatonServiceFinishTaskRequest>,
    pub unauthenticated_calls: u64,
    /// Every UploadAsset call that got past authorization (stalled and failed ones included).
    pub upload_attempts: u64,
    /// FinishTask calls that were accepted and then never answered (see [`FakeC1::stall_finishes`]).
    pub stalled_finishes: u64,
    pub user_agents: HashSet<String>,
    pub host_ids: HashSet<String>,
}

struct Inner {
    client_id: String,
    audience: String,
    public_key: VerifyingKey,
    reject_all_tokens: bool,
    tasks: Mutex<VecDeque<Task>>,
    cancel_on_heartbeat: Mutex<HashSet<String>>,
    tokens: Mutex<HashSet<String>>,
    record: Mutex<Record>,
    hostile: Mutex<Hostile>,
}

/// Misbehaviour switched on by a test.
struct Hostile {
    /// `expires_in` of issued tokens.
    token_expires_in: serde_json::Value,
    /// This many uploads (from the next one on) are accepted and then never read nor answered.
    stall_uploads: u32,
    /// This many uploads (from the next one on) fail with `Unavailable` before their stream is read.
    fail_uploads: u32,
    /// This many FinishTask calls (from the next one on) are accepted and then never answered.
    stall_finishes: u32,
    /// `next_poll` of GetTask answers.
    next_poll: prost_types::Duration,
}

impl Default for Hostile {
    fn default() -> Self {
        Hostile {
            token_expires_in: serde_json::json!(3600),
            stall_uploads: 0,
            fail_uploads: 0,
            stall_finishes: 0,
            next_poll: prost_types::Duration { seconds: 0, nanos: 100_000_000 },
        }
    }
}

/// The running fake.
pub struct FakeC1 {
    inner: Arc<Inner>,
    pub addr: SocketAddr,
    /// PEM of the self-signed certificate (for `BATON_C1_CA_CERT_FILE`).
    pub ca_pem: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A queued task of type `t`, in the status ConductorOne hands tasks out with.
pub fn task(id: &str, t: task::TaskType) -> Task {
    Task { id: id.into(), status: 2, debug: false, task_type: Some(t) }
}

/// A full-sync task.
pub fn sync_task(id: &str) -> Task {
    task(id, task::TaskType::SyncFull(task::SyncFullTask::default()))
}

/// Settings of a fake.
pub struct FakeC1Config {
    pub client_id: String,
    pub audience: String,
    pub public_key: [u8; 32],
    pub reject_all_tokens: bool,
}

/// The connector client id every service-mode test uses, and the audience of its fake tenant.
pub const TEST_CLIENT_ID: &str = "strange-hydra-68836@tenant.example.test/pcc";
pub const TEST_AUDIENCE: &str = "tenant.example.test";

impl FakeC1Config {
    /// The fake tenant of [`TEST_CLIENT_ID`], trusting the public half of `private` (see `c1_key::test_key`).
    pub fn for_test_key(private: &[u8; 32]) -> FakeC1Config {
        FakeC1Config {
            client_id: TEST_CLIENT_ID.into(),
            audience: TEST_AUDIENCE.into(),
            public_key: super::c1_key::public_of(private),
            reject_all_tokens: false,
        }
    }
}

/// A host name for the fake that no resolver knows: reachable only through `connect_proxy::ConnectProxy`.
pub const PROXIED_HOST: &str = "c1.proxied.test";

impl FakeC1 {
    pub async fn start(config: FakeC1Config) -> FakeC1 {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // PROXIED_HOST: a name only a test's proxy resolves (see `connect_proxy`).
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), PROXIED_HOST.to_owned()];
        let cert = rcgen::generate_simple_self_signed(names).unwrap();
        let cert_pem = cert.cert.pem();
        let key_pem = cert.signing_key.serialize_pem();
        let inner = Arc::new(Inner {
            client_id: config.client_id,
            audience: config.audience,
            public_key: VerifyingKey::from_bytes(&config.public_key).unwrap(),
            reject_all_tokens: config.reject_all_tokens,
            tasks: Mutex::default(),
            cancel_on_heartbeat: Mutex::default(),
            tokens: Mutex::default(),
            record: Mutex::default(),
            hostile: Mutex::default(),
        });
        let token_routes = axum::Router::new().route("/auth/v1/token", post(token)).with_state(inner.clone());
        let routes = tonic::service::Routes::from(token_routes)
            .add_service(BatonServiceServer::new(Service { inner: inner.clone() }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let tls = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(cert_pem.clone(), key_pem));
        let server = tonic::transport::Server::builder()
            .tls_config(tls)
            .unwrap()
            .accept_http1(true)
            .add_routes(routes)
            .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            });
        tokio::spawn(server);
        FakeC1 { inner, addr, ca_pem: cert_pem, stop: Some(stop) }
    }

    /// A fake for [`TEST_CLIENT_ID`] with a fresh key, and the client secret that holds the key.
    pub async fn start_for_new_key() -> (FakeC1, String) {
        let (private, secret, _) = super::c1_key::test_key();
        (FakeC1::start(FakeC1Config::for_test_key(&private)).await, secret)
    }

    /// Writes the fake's certificate into `dir` (for `BATON_C1_CA_CERT_FILE`) and returns its path.
    pub fn write_ca(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("c1-ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write the fake's CA certificate");
        path
    }

    /// The address the fake listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `localhost:<port>` for `BATON_C1_API_HOST`.
    pub fn api_host(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    pub fn push_task(&self, task: Task) {
        self.inner.tasks.lock().unwrap().push_back(task);
    }

    /// Heartbeats of this task answer `cancelled`.
    pub fn cancel_on_heartbeat(&self, task_id: &str) {
        self.inner.cancel_on_heartbeat.lock().unwrap().insert(task_id.to_owned());
    }

    /// Tokens issued from now on carry this `expires_in` (any JSON value).
    pub fn set_token_expires_in(&self, value: serde_json::Value) {
        self.inner.hostile.lock().unwrap().token_expires_in = value;
    }

    /// The next `n` uploads are accepted and then neither read nor answered.
    pub fn stall_uploads(&self, n: u32) {
        self.inner.hostile.lock().unwrap().stall_uploads = n;
    }

    /// The next `n` uploads fail with `Unavailable`.
    pub fn fail_uploads(&self, n: u32) {
        self.inner.hostile.lock().unwrap().fail_uploads = n;
    }

    /// The next `n` FinishTask calls are accepted and then never answered (the caller's deadline ends them).
    pub fn stall_finishes(&self, n: u32) {
        self.inner.hostile.lock().unwrap().stall_finishes = n;
    }

    /// GetTask answers ask for the next poll after `d`.
    pub fn set_next_poll(&self, d: Duration) {
        self.inner.hostile.lock().unwrap().next_poll =
            prost_types::Duration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 };
    }

    pub fn with_record<T>(&self, f: impl FnOnce(&Record) -> T) -> T {
        f(&self.inner.record.lock().unwrap())
    }

    /// The FinishTask of `task_id`, if any.
    pub fn finish_of(&self, task_id: &str) -> Option<BatonServiceFinishTaskRequest> {
        self.with_record(|r| r.finishes.iter().find(|f| f.task_id == task_id).cloned())
    }

    /// Waits until `pred` holds (polling every 50 ms) or panics after `timeout`.
    pub async fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&Record) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.with_record(&pred) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; record: {:#?}",
                    self.with_record(|r| format!("{r:?}").chars().take(4000).collect::<String>())
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Drop for FakeC1 {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(serde::Deserialize)]
struct TokenForm {
    client_id: String,
    grant_type: String,
    client_assertion_type: String,
    client_assertion: String,
}

async fn token(AxumState(inner): AxumState<Arc<Inner>>, Form(form): Form<TokenForm>) -> axum::response::Response {
    let verdict = check_token_request(&inner, &form);
    let mut record = inner.record.lock().unwrap();
    record.token_requests += 1;
    match verdict {
        Err(why) => {
            record.token_rejections.push(why);
            (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "invalid_client"}))).into_response()
        }
        Ok(()) => {
            let token = format!("tok-{:032x}", rand::random::<u128>());
            inner.tokens.lock().unwrap().insert(token.clone());
            let expires_in = inner.hostile.lock().unwrap().token_expires_in.clone();
            Json(serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in}))
                .into_response()
        }
    }
}

/// Independent check of the client assertion.
fn check_token_request(inner: &Inner, form: &TokenForm) -> Result<(), String> {
    if inner.reject_all_tokens {
        return Err("configured to reject".into());
    }
    if form.client_id != inner.client_id {
        return Err(format!("client_id {:?}", form.client_id));
    }
    if form.grant_type != "client_credentials"
        || form.client_assertion_type != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    {
        return Err("grant_type / client_assertion_type".into());
    }
    let parts: Vec<&str> = form.client_assertion.split('.').collect();
    if parts.len() != 3 {
        return Err("not a compact JWS".into());
    }
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|e| format!("base64url: {e}"));
    let header: serde_json::Value = serde_json::from_slice(&decode(parts[0])?).map_err(|e| e.to_string())?;
    let claims: serde_json::Value = serde_json::from_slice(&decode(parts[1])?).map_err(|e| e.to_string())?;
    let signature = Signature::from_slice(&decode(parts[2])?).map_err(|e| e.to_string())?;
    inner
        .public_key
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .map_err(|_| "bad signature".to_owned())?;
    if header["alg"] != "EdDSA" {
        return Err(format!("alg {}", header["alg"]));
    }
    let nonce = header["nonce"].as_str().unwrap_or("");
    if nonce.len() != 32 || !nonce.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("nonce".into());
    }
    if claims["iss"] != inner.client_id.as_str() || claims["sub"] != inner.client_id.as_str() {
        return Err("iss/sub".into());
    }
    let aud_ok = claims["aud"] == inner.audience.as_str()
        || claims["aud"].as_array().is_some_and(|a| a.iter().any(|v| v == inner.audience.as_str()));
    if !aud_ok {
        return Err(format!("aud {}", claims["aud"]));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let (nbf, exp, iat) = (claims["nbf"].as_u64(), claims["exp"].as_u64(), claims["iat"].as_u64());
    match (nbf, exp, iat) {
        (Some(nbf), Some(exp), Some(iat)) if nbf <= now && now <= exp && nbf < iat && iat < exp && exp - nbf <= 300 => {
            Ok(())
        }
        _ => Err("time claims".into()),
    }
}

struct Service {
    inner: Arc<Inner>,
}

impl Service {
    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let ua = request.metadata().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("")
            .to_owned();
        let mut record = self.inner.record.lock().unwrap();
        record.user_agents.insert(ua);
        if self.inner.tokens.lock().unwrap().contains(&token) {
            Ok(())
        } else {
            record.unauthenticated_calls += 1;
            Err(Status::unauthenticated("no valid bearer token"))
        }
    }

    fn host(&self, host_id: &str) -> Result<(), Status> {
        if host_id.is_empty() {
            return Err(Status::invalid_argument("host_id is empty"));
        }
        self.inner.record.lock().unwrap().host_ids.insert(host_id.to_owned());
        Ok(())
    }
}

#[tonic::async_trait]
impl BatonService for Service {
    async fn hello(
        &self,
        request: Request<BatonServiceHelloRequest>,
    ) -> Result<Response<BatonServiceHelloResponse>, Status> {
        self.authorize(&request)?;
        let hello = request.into_inner();
        self.host(&hello.host_id)?;
        let os = hello.os_info.clone().unwrap_or_default();
        let fields = [
            &os.hostname,
            &os.os,
            &os.platform,
            &os.platform_version,
            &os.platform_family,
            &os.kernel_version,
            &os.kernel_arch,
            &os.virtualization_system,
        ];
        if fields.iter().any(|f| f.is_empty()) || hello.connector_metadata.is_none() || hello.build_info.is_none() {
            return Err(Status::invalid_argument("incomplete hello"));
        }
        self.inner.record.lock().unwrap().hellos.push(hello);
        Ok(Response::new(BatonServiceHelloResponse::default()))
    }

    async fn get_task(
        &self,
        request: Request<BatonServiceGetTaskRequest>,
    ) -> Result<Response<BatonServiceGetTaskResponse>, Status> {
        self.authorize(&request)?;
        self.host(&request.get_ref().host_id)?;
        self.inner.record.lock().unwrap().get_tasks += 1;
        let task = self.inner.tasks.lock().unwrap().pop_front();
        let next_poll = self.inner.hostile.lock().unwrap().next_poll;
        Ok(Response::new(BatonServiceGetTaskResponse {
            task,
            next_poll: Some(next_poll),
            next_heartbeat: Some(prost_types::Duration { seconds: 1, nanos: 0 }),
            annotations: Vec::new(),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<BatonServiceHeartbeatRequest>,
    ) -> Result<Response<BatonServiceHeartbeatResponse>, Status> {
        self.authorize(&request)?;
        let beat = request.into_inner();
        self.host(&beat.host_id)?;
        let cancelled = self.inner.cancel_on_heartbeat.lock().unwrap().contains(&beat.task_id);
        self.inner.record.lock().unwrap().heartbeats.push(beat.task_id);
        Ok(Response::new(BatonServiceHeartbeatResponse {
            next_heartbeat: Some(prost_types::Duration { seconds: 1, nanos: 0 }),
            cancelled,
            annotations: Vec::new(),
        }))
    }

    async fn finish_task(
        &self,
        request: Request<BatonServiceFinishTaskRequest>,
    ) -> Result<Response<BatonServiceFinishTaskResponse>, Status> {
        self.authorize(&request)?;
        let finish = request.into_inner();
        self.host(&finish.host_id)?;
        if finish.final_state.is_none() {
            return Err(Status::invalid_argument("final_state is required"));
        }
        let stall = {
            let mut hostile = self.inner.hostile.lock().unwrap();
            let stall = hostile.stall_finishes > 0;
            hostile.stall_finishes = hostile.stall_finishes.saturating_sub(1);
            stall
        };
        if stall {
            self.inner.record.lock().unwrap().stalled_finishes += 1;
            std::future::pending::<()>().await;
        }
        self.inner.record.lock().unwrap().finishes.push(finish);
        Ok(Response::new(BatonServiceFinishTaskResponse::default()))
    }

    async fn upload_asset(
        &self,
        request: Request<Streaming<BatonServiceUploadAssetRequest>>,
    ) -> Result<Response<BatonServiceUploadAssetResponse>, Status> {
        self.authorize(&request)?;
        self.inner.record.lock().unwrap().upload_attempts += 1;
        let (stall, fail) = {
            let mut hostile = self.inner.hostile.lock().unwrap();
            let stall = hostile.stall_uploads > 0;
            let fail = !stall && hostile.fail_uploads > 0;
            if stall {
                hostile.stall_uploads -= 1;
            } else if fail {
                hostile.fail_uploads -= 1;
            }
            (stall, fail)
        };
        let mut stream = request.into_inner();
        if stall {
            // Holds the stream open without reading it: HTTP/2 flow control stops the sender.
            std::future::pending::<()>().await;
        }
        if fail {
            return Err(Status::unavailable("upload service briefly unavailable"));
        }
        let result = read_upload(&mut stream).await;
        let mut record = self.inner.record.lock().unwrap();
        match result {
            Ok(upload) => {
                record.host_ids.insert(upload.host_id.clone());
                record.uploads.push(upload);
                Ok(Response::new(BatonServiceUploadAssetResponse::default()))
            }
            Err(status) => {
                record.upload_rejections.push(status.message().to_owned());
                Err(status)
            }
        }
    }
}

/// metadata, then data chunks (1 byte..1 MiB), then eof whose sha256 must match, then the end of the stream.
async fn read_upload(stream: &mut Streaming<BatonServiceUploadAssetRequest>) -> Result<Upload, Status> {
    let first = stream.message().await?.and_then(|m| m.msg);
    let Some(Msg::Metadata(meta)) = first else {
        return Err(Status::invalid_argument("the first message must be metadata"));
    };
    if meta.host_id.is_empty() || meta.task_id.is_empty() {
        return Err(Status::invalid_argument("metadata needs host_id and task_id"));
    }
    let mut upload = Upload { host_id: meta.host_id, task_id: meta.task_id, data: Vec::new(), chunk_sizes: Vec::new() };
    loop {
        match stream.message().await?.and_then(|m| m.msg) {
            Some(Msg::Data(d)) => {
                if d.data.is_empty() || d.data.len() > 1024 * 1024 {
                    return Err(Status::invalid_argument("data chunk size out of range"));
                }
                upload.chunk_sizes.push(d.data.len());
                upload.data.extend_from_slice(&d.data);
            }
            Some(Msg::Eof(eof)) => {
                let digest = Sha256::digest(&upload.data);
                if eof.sha256_checksum.as_slice() != digest.as_slice() {
                    return Err(Status::invalid_argument("sha256 mismatch"));
                }
                if stream.message().await?.is_some() {
                    return Err(Status::invalid_argument("message after eof"));
                }
                return Ok(upload);
            }
            Some(Msg::Metadata(_)) => return Err(Status::invalid_argument("metadata twice")),
            None => return Err(Status::invalid_argument("stream ended without eof")),
        }
    }
}
