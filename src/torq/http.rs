//! One request, done properly: rate limit, bearer token, timeout, status classification, retries with
//! exponential backoff and jitter (honouring `Retry-After`), and a token renewal plus one immediate retry when the
//! API answers 3xx (Torq's "token expired") or 401. Redirects are never followed.
//!
//! The response body is handed to a caller-supplied handler inside the retry loop, so a body that breaks off
//! half-way (connection reset, truncation) is retried like any other transient failure.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::ExposeSecret;

use super::models::ApiErrorBody;
use super::{TorqClient, TorqError};

/// Longest `Retry-After` we are willing to sleep for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// An error body is read for its message only: Torq's envelope is a few hundred bytes.
pub(crate) const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// Longest time spent reading an error body (the request timeout, if shorter).
const ERROR_BODY_DEADLINE: Duration = Duration::from_secs(10);

/// Why a bounded body read stopped before the end of the body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("the response body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the response body was not complete within {} s", .0.as_secs_f64())]
    Deadline(Duration),
    #[error("{}", describe_transport(.0))]
    Transport(reqwest::Error),
}

/// Reads the whole body of `resp` into `into`, refusing more than `limit` bytes and giving up when the whole read
/// takes longer than `deadline` (the client's read timeout only bounds each gap between chunks, so a server that
/// drips bytes forever would otherwise hold the request open for ever).
///
/// `into` is not grown past `limit`; a caller that wipes it afterwards (token answers) reserves `limit` up front so
/// no reallocation leaves a copy behind.
pub(crate) async fn read_body(
    mut resp: Response,
    into: &mut Vec<u8>,
    limit: usize,
    deadline: Duration,
) -> Result<(), BodyError> {
    let read = async {
        while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
            if into.len().saturating_add(chunk.len()) > limit {
                return Err(BodyError::TooLarge { limit });
            }
            into.extend_from_slice(&chunk);
        }
        Ok(())
    };
    tokio::time::timeout(deadline, read).await.unwrap_or(Err(BodyError::Deadline(deadline)))
}

/// Largest page body decoded whole (role pages are a few KiB; the user lists are streamed, not read whole).
pub(crate) const PAGE_BODY_LIMIT: usize = 16 * 1024 * 1024;

impl Outcome {
    /// A bounded body read that failed: too large is a response this client will not read; a deadline or a
    /// transport failure is worth another attempt.
    pub(crate) fn from_body(e: BodyError, request: &str) -> Self {
        match e {
            BodyError::TooLarge { .. } => {
                Outcome::Fatal(TorqError::Malformed { request: request.to_string(), detail: e.to_string() })
            }
            BodyError::Deadline(_) | BodyError::Transport(_) => Outcome::transient(e.to_string()),
        }
    }
}

/// Why an attempt did not produce a value.
pub(crate) enum Outcome {
    /// Worth another attempt after a backoff.
    Transient { reason: String, retry_after: Option<Duration> },
    /// Stop now with this error.
    Fatal(TorqError),
}

impl Outcome {
    pub(crate) fn transient(reason: impl Into<String>) -> Self {
        Outcome::Transient { reason: reason.into(), retry_after: None }
    }

    /// A JSON body that did not decode: a body that broke off or ended early is worth another attempt; anything
    /// else is a response this client cannot read.
    pub(crate) fn from_json(e: &serde_json::Error, request: &str) -> Self {
        match e.classify() {
            serde_json::error::Category::Io => Outcome::transient(format!("response body broke off: {e}")),
            serde_json::error::Category::Eof => Outcome::transient("response body ended early (truncated JSON)"),
            _ => Outcome::Fatal(TorqError::Malformed { request: request.to_string(), detail: e.to_string() }),
        }
    }
}

impl TorqClient {
    /// Runs `build` + `handle` (given each 2xx response) until the handler returns a value, a fatal error occurs,
    /// or the attempts run out.
    /// `request` names the call in logs and errors (e.g. `GET /users?sso_provision=true`); it never holds secrets.
    pub(crate) async fn attempt_loop<T, B, H, Fut>(
        &self,
        request: &str,
        authenticated: bool,
        build: B,
        mut handle: H,
    ) -> Result<T, TorqError>
    where
        B: Fn(&reqwest::Client) -> RequestBuilder,
        H: FnMut(Response) -> Fut,
        Fut: Future<Output = Result<T, Outcome>>,
    {
        let settings = &self.inner.settings;
        let counters = &self.inner.counters;
        let mut retries = Retries::new(self);
        let mut token_renewed = false;
        loop {
            retries.start_attempt();
            self.inner.limiter.until_ready().await;
            let bearer = if authenticated { Some(self.bearer().await?) } else { None };
            let mut builder = build(&self.inner.http);
            if let Some(b) = &bearer {
                builder = builder.bearer_auth(b.secret.expose_secret());
            }
            if authenticated {
                counters.api_requests.fetch_add(1, Ordering::Relaxed);
            } else {
                counters.token_requests.fetch_add(1, Ordering::Relaxed);
            }
            let started = Instant::now();
            let sent = tokio::time::timeout(settings.timeout, builder.send()).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let outcome = match sent {
                Err(_) => {
                    tracing::debug!(request, attempt = retries.attempt(), elapsed_ms, "HTTP request timed out");
                    Outcome::transient(format!("no response within {} s", settings.timeout.as_secs_f64()))
                }
                Ok(Err(e)) => {
                    tracing::debug!(
                        request,
                        attempt = retries.attempt(),
                        elapsed_ms,
                        error = %describe_transport(&e),
                        "HTTP request failed"
                    );
                    // A certificate fails the same way on every attempt: say what to fix now.
                    if let Some(problem) = super::tls::cert_problem(&e) {
                        return Err(super::tls::torq_error(&e, &problem, &settings.api_url));
                    }
                    Outcome::transient(describe_transport(&e))
                }
                Ok(Ok(resp)) => {
                    let status = resp.status();
                    tracing::debug!(
                        request,
                        status = status.as_u16(),
                        elapsed_ms,
                        attempt = retries.attempt(),
                        "HTTP request"
                    );
                    match classify(status, authenticated) {
                        Class::Success => match handle(resp).await {
                            Ok(v) => return Ok(v),
                            Err(o) => o,
                        },
                        Class::TokenRejected => {
                            counters.token_rejections.fetch_add(1, Ordering::Relaxed);
                            if token_renewed {
                                return Err(TorqError::TokenRejected {
                                    request: request.to_string(),
                                    status: status.as_u16(),
                                });
                            }
                            tracing::debug!(
                                request,
                                status = status.as_u16(),
                                "token rejected; renewing it and retrying once"
                            );
                            if let Some(b) = &bearer {
                                self.invalidate(b.generation).await;
                            }
                            token_renewed = true;
                            retries.repeat_attempt();
                            continue;
                        }
                        Class::Retry => {
                            let retry_after = retry_after(&resp);
                            let detail = error_detail(resp, settings.timeout).await;
                            Outcome::Transient { reason: format!("HTTP {}{detail}", status.as_u16()), retry_after }
                        }
                        Class::Forbidden => {
                            let detail = error_detail(resp, settings.timeout).await;
                            return Err(TorqError::PermissionDenied { request: request.to_string(), detail });
                        }
                        Class::Fatal if !authenticated && matches!(status.as_u16(), 400 | 401 | 403) => {
                            let detail = error_detail(resp, settings.timeout).await;
                            return Err(TorqError::BadCredentials { status: status.as_u16(), detail });
                        }
                        Class::Fatal => {
                            let detail = error_detail(resp, settings.timeout).await;
                            return Err(TorqError::Api {
                                request: request.to_string(),
                                status: status.as_u16(),
                                detail,
                            });
                        }
                    }
                }
            };
            match outcome {
                Outcome::Fatal(e) => return Err(e),
                Outcome::Transient { reason, retry_after } => {
                    retries.wait(request, reason, retry_after, "Torq request failed; retrying").await?
                }
            }
        }
    }
}

/// The attempt budget of one request and the wait between its attempts: exponential backoff with jitter from the
/// client's settings, stretched to a server's `Retry-After` (at most [`MAX_RETRY_AFTER`]). Shared by reads
/// ([`TorqClient::attempt_loop`]) and the invite, which decides itself whether a write may be sent again.
pub(crate) struct Retries<'a> {
    client: &'a TorqClient,
    backoff: backon::ExponentialBackoff,
    attempt: u32,
}

impl<'a> Retries<'a> {
    pub(crate) fn new(client: &'a TorqClient) -> Self {
        let settings = &client.inner.settings;
        let backoff = backon::ExponentialBuilder::default()
            .with_min_delay(settings.initial_backoff)
            .with_max_delay(Duration::from_secs(30))
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(settings.max_attempts.saturating_sub(1) as usize)
            .build();
        Retries { client, backoff, attempt: 0 }
    }

    /// Counts the attempt about to be made (every one after the first is a retry in the run's statistics).
    pub(crate) fn start_attempt(&mut self) {
        self.attempt += 1;
        if self.attempt > 1 {
            self.client.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The next attempt repeats this one without using the budget (a renewed token, not a failure).
    fn repeat_attempt(&mut self) {
        self.attempt -= 1;
    }

    /// The number of the current attempt (1 for the first).
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// After a failed attempt: waits before the next one, logging `message` with the reason, or, when the budget is
    /// spent, ends with [`TorqError::Unavailable`] carrying the last reason.
    pub(crate) async fn wait(
        &mut self,
        request: &str,
        reason: String,
        retry_after: Option<Duration>,
        message: &str,
    ) -> Result<(), TorqError> {
        let Some(delay) = self.backoff.next() else {
            return Err(TorqError::Unavailable { request: request.to_string(), attempts: self.attempt, last: reason });
        };
        // A wait longer than this run ever waits is not worth starting: say so now, not after MAX_RETRY_AFTER.
        if let Some(asked) = retry_after.filter(|ra| *ra > MAX_RETRY_AFTER) {
            return Err(TorqError::WaitTooLong {
                request: request.to_string(),
                asked_secs: asked.as_secs(),
                max_secs: MAX_RETRY_AFTER.as_secs(),
            });
        }
        let wait = retry_after.map_or(delay, |ra| ra.max(delay));
        tracing::warn!(
            request,
            attempt = self.attempt,
            reason = %reason,
            wait_ms = wait.as_millis() as u64,
            "{message}"
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

/// What one attempt of a non-idempotent request (a POST) came to. Whether to send it again is the caller's
/// decision, because only the caller knows how to find out whether a lost attempt took effect.
pub(crate) enum WriteAttempt {
    /// Torq answered (any status except the 3xx/401 token rejections, which [`TorqClient::send_write`] handles).
    Answered(Response),
    /// The request surely did not reach Torq: the connection (DNS, TCP or TLS handshake) was never established.
    NotSent(String),
    /// The request may have reached Torq and taken effect: a timeout, or a connection lost mid-request.
    MaybeSent(String),
}

impl TorqClient {
    /// One attempt of a non-idempotent request: rate limit, bearer token, timeout. Never repeated here, except
    /// once after a 3xx/401 (Torq refused the token before acting on the request) with a renewed token.
    pub(crate) async fn send_write<B>(&self, request: &str, build: B) -> Result<WriteAttempt, TorqError>
    where
        B: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let settings = &self.inner.settings;
        let counters = &self.inner.counters;
        let mut token_renewed = false;
        loop {
            self.inner.limiter.until_ready().await;
            let bearer = self.bearer().await?;
            let builder = build(&self.inner.http).bearer_auth(bearer.secret.expose_secret());
            counters.api_requests.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let sent = tokio::time::timeout(settings.timeout, builder.send()).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let resp = match sent {
                Err(_) => {
                    tracing::debug!(request, elapsed_ms, "HTTP write timed out");
                    let reason = format!("no response within {} s", settings.timeout.as_secs_f64());
                    return Ok(WriteAttempt::MaybeSent(reason));
                }
                Ok(Err(e)) => {
                    tracing::debug!(request, elapsed_ms, error = %describe_transport(&e), "HTTP write failed");
                    // Nothing was sent (the handshake failed), and a resend would fail alike.
                    if let Some(problem) = super::tls::cert_problem(&e) {
                        return Err(super::tls::torq_error(&e, &problem, &settings.api_url));
                    }
                    // reqwest reports DNS, TCP connect and TLS handshake failures as connect errors: nothing was sent.
                    return Ok(if e.is_connect() {
                        WriteAttempt::NotSent(describe_transport(&e))
                    } else {
                        WriteAttempt::MaybeSent(describe_transport(&e))
                    });
                }
                Ok(Ok(resp)) => resp,
            };
            let status = resp.status();
            tracing::debug!(request, status = status.as_u16(), elapsed_ms, "HTTP write");
            if !matches!(classify(status, true), Class::TokenRejected) {
                return Ok(WriteAttempt::Answered(resp));
            }
            counters.token_rejections.fetch_add(1, Ordering::Relaxed);
            if token_renewed {
                return Err(TorqError::TokenRejected { request: request.to_string(), status: status.as_u16() });
            }
            tracing::debug!(request, status = status.as_u16(), "token rejected; renewing it and sending again");
            self.invalidate(bearer.generation).await;
            token_renewed = true;
        }
    }
}

enum Class {
    Success,
    TokenRejected,
    Retry,
    Forbidden,
    Fatal,
}

fn classify(status: StatusCode, authenticated: bool) -> Class {
    match status.as_u16() {
        200..=299 => Class::Success,
        300..=399 | 401 if authenticated => Class::TokenRejected,
        403 if authenticated => Class::Forbidden,
        408 | 429 | 500..=599 => Class::Retry,
        _ => Class::Fatal,
    }
}

/// `Retry-After` as delay seconds or an HTTP date.
pub(crate) fn retry_after(resp: &Response) -> Option<Duration> {
    let value = resp.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let secs = (when.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(secs as u64))
}

/// `": <message> (code N)"` from Torq's error envelope, or `""` when the body has none. Reads at most
/// [`ERROR_BODY_LIMIT`] within [`ERROR_BODY_DEADLINE`] (or the request timeout, if shorter); the rest of the body is
/// never read: dropping the response closes the connection.
pub(crate) async fn error_detail(resp: Response, timeout: Duration) -> String {
    let mut bytes = Vec::new();
    match read_body(resp, &mut bytes, ERROR_BODY_LIMIT, timeout.min(ERROR_BODY_DEADLINE)).await {
        Ok(()) => {}
        // Only a complete body can be a JSON envelope; the detail is a courtesy, so give up quietly.
        Err(e) => {
            tracing::debug!(reason = %e, "error body not read");
            return String::new();
        }
    }
    let body: ApiErrorBody = serde_json::from_slice(&bytes).unwrap_or_default();
    let message: String = body.message.chars().filter(|c| !c.is_control()).take(300).collect();
    match (message.is_empty(), body.code) {
        (true, 0) => String::new(),
        (true, code) => format!(" (code {code})"),
        (false, 0) => format!(": {message}"),
        (false, code) => format!(": {message} (code {code})"),
    }
}

/// A transport error as one short line (reqwest's Display nests sources; we keep the innermost cause).
pub(crate) fn describe_transport(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "response body broke off"
    } else {
        "request failed"
    };
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    format!("{kind}: {source}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(matches!(classify(StatusCode::FOUND, true), Class::TokenRejected));
        assert!(matches!(classify(StatusCode::UNAUTHORIZED, true), Class::TokenRejected));
        assert!(matches!(classify(StatusCode::UNAUTHORIZED, false), Class::Fatal));
        assert!(matches!(classify(StatusCode::TOO_MANY_REQUESTS, true), Class::Retry));
        assert!(matches!(classify(StatusCode::BAD_GATEWAY, false), Class::Retry));
        assert!(matches!(classify(StatusCode::FORBIDDEN, true), Class::Forbidden));
        assert!(matches!(classify(StatusCode::NOT_FOUND, true), Class::Fatal));
    }
}
