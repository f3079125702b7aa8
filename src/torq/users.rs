//! `GET /users?sso_provision=…`, streamed: the `users` array is decoded element by element straight from the
//! HTTP body on a blocking thread and each [`UserRecord`] is handed to a callback, so a million users never sit in
//! memory. A `next_page_token` is followed if Torq ever sends one.
//!
//! A body that breaks off is retried from the start of that page, so the callback may see a user twice; callers
//! dedupe by id (the c1z writer does so by its unique index).
//!
//! The decode thread's reads end as soon as the caller's stop token is cancelled: a stalled body must not keep
//! the thread (and the writer waiting for it) alive until the read timeout when the operator asks to stop.
//!
//! A page may be as long as the workspace is large, so it has no overall size or time limit; instead it must keep
//! bringing users: a complete record within the request timeout and within [`MAX_RECORD_BYTES`]. A server that
//! drips whitespace, or sends one value that never ends, is given up on instead of holding the run or its memory.

use std::cell::Cell;
use std::fmt;
use std::hash::BuildHasher;
use std::io::{BufReader, Read};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{stream, Stream, StreamExt, TryStreamExt};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tokio_util::io::{StreamReader, SyncIoBridge};
use tokio_util::sync::CancellationToken;

use super::http::Outcome;
use super::list::Paged;
use super::models::UserRecord;
use super::{TorqClient, TorqError};

/// The callback's answer when it can take no more records (the sync was cancelled or failed).
#[derive(Debug)]
pub(crate) struct SinkClosed;

/// Safety net against a server that keeps sending new page tokens forever.
const MAX_USER_PAGES: u64 = 100_000;

/// Most bytes a user page may take between two complete user records (or before the first): a Torq user record
/// is well under a kilobyte, so more is one endless value, which serde would buffer whole.
const MAX_RECORD_BYTES: u64 = 1024 * 1024;

/// The per-user callback, shared with the blocking decode thread.
type SharedSink<F> = Arc<Mutex<F>>;

impl TorqClient {
    /// Streams every user with `sso_provision == sso` into `on_user`; returns how many the final attempt of each
    /// page delivered. Cancelling `stop` ends a body read at once with [`TorqError::SinkClosed`].
    pub(crate) async fn stream_users<F>(
        &self,
        sso: bool,
        stop: &CancellationToken,
        on_user: F,
    ) -> Result<u64, TorqError>
    where
        F: FnMut(UserRecord) -> Result<(), SinkClosed> + Send + 'static,
    {
        let sink: SharedSink<F> = Arc::new(Mutex::new(on_user));
        let flag = if sso { "true" } else { "false" };
        let name = format!("GET /users?sso_provision={flag}");
        let mut total = 0u64;
        let timeout = self.inner.settings.timeout;
        // Fingerprints of the pages so far: a page that repeats one of them (the same users under a fresh page
        // token) counts as bringing nothing new, so a server that loops that way is stopped by the page guard.
        let ids = hashbrown::DefaultHashBuilder::default();
        let mut pages_seen = std::collections::HashSet::new();
        self.each_page(
            Paged {
                path: "users",
                name: &name,
                query: vec![("sso_provision", flag.to_string())],
                max_pages: MAX_USER_PAGES,
            },
            |resp, request| {
                decode_users_page(resp, Arc::clone(&sink), request.to_string(), stop.clone(), timeout, ids.clone())
            },
            |(count, fingerprint)| {
                total += count;
                if count > 0 && !pages_seen.insert(fingerprint) {
                    0
                } else {
                    count
                }
            },
        )
        .await?;
        Ok(total)
    }
}

/// Decodes one `{"users": [...], "next_page_token": "..."}` body on a blocking thread, each record within
/// `timeout` and [`MAX_RECORD_BYTES`] of the previous one. Answers the page's user count and the fingerprint of
/// its ids (hashed with `ids`), and the next page's token.
async fn decode_users_page<F>(
    resp: reqwest::Response,
    sink: SharedSink<F>,
    request: String,
    stop: CancellationToken,
    timeout: Duration,
    ids: hashbrown::DefaultHashBuilder,
) -> Result<((u64, u64), String), Outcome>
where
    F: FnMut(UserRecord) -> Result<(), SinkClosed> + Send + 'static,
{
    if stop.is_cancelled() {
        return Err(Outcome::Fatal(TorqError::SinkClosed));
    }
    let body = StreamReader::new(Box::pin(stoppable(resp.bytes_stream().map_err(std::io::Error::other), stop.clone())));
    let joined = tokio::task::spawn_blocking(move || {
        let mut guard = match sink.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let pace = RecordPace::new(timeout);
        let reader = PacedReader { inner: SyncIoBridge::new(body), pace: &pace };
        let mut on_user = |user: UserRecord| {
            let taken = (*guard)(user);
            // From the end of the hand-over: time the writer took to accept the record is not the server's.
            pace.restart();
            taken
        };
        let mut page = PageVisitor::new(&mut on_user, ids);
        let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(256 * 1024, reader));
        let result =
            (&mut page).deserialize(&mut de).and_then(|()| de.end()).and_then(|()| match page.keys.missing_list() {
                Some(detail) => Err(de::Error::custom(detail)),
                None => Ok(()),
            });
        let closed = page.sink_closed;
        (result, (page.count, page.fingerprint), page.next_page_token, closed, pace.tripped.get())
    })
    .await;
    let (result, count, next, sink_closed, tripped) =
        joined.map_err(|e| Outcome::Fatal(TorqError::Malformed { request: request.clone(), detail: e.to_string() }))?;
    // A stop is not a broken body: it must not be retried.
    if sink_closed || stop.is_cancelled() {
        return Err(Outcome::Fatal(TorqError::SinkClosed));
    }
    match tripped {
        Some(Trip::TooLarge) => {
            return Err(Outcome::Fatal(TorqError::Malformed {
                request,
                detail: format!("more than {MAX_RECORD_BYTES} bytes without a complete user record"),
            }))
        }
        Some(Trip::TooSlow) => {
            return Err(Outcome::transient(format!(
                "no complete user record within {} s while the page was being read",
                timeout.as_secs_f64()
            )))
        }
        None => {}
    }
    result.map(|()| (count, next.unwrap_or_default())).map_err(|e| Outcome::from_json(&e, &request))
}

/// Which limit of [`RecordPace`] a page broke.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Trip {
    TooLarge,
    TooSlow,
}

/// Bytes and time since the last complete user record of the page being read (or its start).
struct RecordPace {
    bytes: Cell<u64>,
    since: Cell<Instant>,
    timeout: Duration,
    tripped: Cell<Option<Trip>>,
}

impl RecordPace {
    fn new(timeout: Duration) -> RecordPace {
        RecordPace { bytes: Cell::new(0), since: Cell::new(Instant::now()), timeout, tripped: Cell::new(None) }
    }

    fn restart(&self) {
        self.bytes.set(0);
        self.since.set(Instant::now());
    }

    fn trip(&self, trip: Trip) -> std::io::Error {
        self.tripped.set(Some(trip));
        std::io::Error::other("the user page broke a record limit")
    }
}

/// The body as the decoder reads it, failing once [`RecordPace`]'s limits are passed.
struct PacedReader<'p, R> {
    inner: R,
    pace: &'p RecordPace,
}

impl<R: Read> Read for PacedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pace.since.get().elapsed() > self.pace.timeout {
            return Err(self.pace.trip(Trip::TooSlow));
        }
        let n = self.inner.read(buf)?;
        let bytes = self.pace.bytes.get() + n as u64;
        self.pace.bytes.set(bytes);
        if bytes > MAX_RECORD_BYTES {
            return Err(self.pace.trip(Trip::TooLarge));
        }
        Ok(n)
    }
}

/// `body`, ending with an error as soon as `stop` is cancelled, even while the server sends nothing (the blocking
/// reader is then woken by the cancellation, not by the read timeout).
fn stoppable<S>(body: S, stop: CancellationToken) -> impl Stream<Item = std::io::Result<bytes::Bytes>>
where
    S: Stream<Item = std::io::Result<bytes::Bytes>>,
{
    let stopped = stop.clone();
    body.take_until(stop.cancelled_owned()).chain(
        stream::once(async move { stopped.is_cancelled() }).filter_map(|cancelled| async move {
            cancelled.then(|| Err(std::io::Error::other("the sync was stopped")))
        }),
    )
}

struct PageVisitor<'a, F> {
    on_user: &'a mut F,
    count: u64,
    /// A keyed hash of the page's user ids in order: a page that repeats an earlier page brings nothing new.
    fingerprint: u64,
    ids: hashbrown::DefaultHashBuilder,
    next_page_token: Option<String>,
    sink_closed: bool,
    /// The page's top-level keys, to tell a page that left out an empty list from one without it.
    keys: super::list::PageKeys,
}

impl<'a, F> PageVisitor<'a, F> {
    fn new(on_user: &'a mut F, ids: hashbrown::DefaultHashBuilder) -> Self {
        PageVisitor {
            on_user,
            count: 0,
            fingerprint: 0,
            ids,
            next_page_token: None,
            sink_closed: false,
            keys: super::list::PageKeys::new("users"),
        }
    }
}

impl<'de, F> DeserializeSeed<'de> for &mut PageVisitor<'_, F>
where
    F: FnMut(UserRecord) -> Result<(), SinkClosed>,
{
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F> Visitor<'de> for &mut PageVisitor<'_, F>
where
    F: FnMut(UserRecord) -> Result<(), SinkClosed>,
{
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with a users array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            self.keys.note(&key);
            match key.as_str() {
                "users" => map.next_value_seed(UsersArray(&mut *self))?,
                "next_page_token" | "nextPageToken" => {
                    self.next_page_token = map.next_value::<Option<String>>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct UsersArray<'p, 'a, F>(&'p mut PageVisitor<'a, F>);

impl<'de, F> DeserializeSeed<'de> for UsersArray<'_, '_, F>
where
    F: FnMut(UserRecord) -> Result<(), SinkClosed>,
{
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, F> Visitor<'de> for UsersArray<'_, '_, F>
where
    F: FnMut(UserRecord) -> Result<(), SinkClosed>,
{
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of users")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        // `null` is not an empty list (proto3 JSON omits an empty list, it never writes null): a server that sends
        // it is broken, and taking it for "no users" would write a sync without them.
        Err(E::custom("\"users\" is null, not a list"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(user) = seq.next_element::<UserRecord>()? {
            self.0.fingerprint = self.0.ids.hash_one((self.0.fingerprint, &user.id));
            if (self.0.on_user)(user).is_err() {
                self.0.sink_closed = true;
                return Err(de::Error::custom("the sync stopped consuming users"));
            }
            self.0.count += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<(Vec<UserRecord>, Option<String>), serde_json::Error> {
        let mut users = Vec::new();
        let mut push = |u: UserRecord| {
            users.push(u);
            Ok(())
        };
        let mut page = PageVisitor::new(&mut push, Default::default());
        let mut de = serde_json::Deserializer::from_reader(text.as_bytes());
        (&mut page).deserialize(&mut de)?;
        de.end()?;
        let next = page.next_page_token;
        Ok((users, next))
    }

    /// The fingerprint of a page's ids, as the page guard sees it.
    fn fingerprint(text: &str, ids: &hashbrown::DefaultHashBuilder) -> u64 {
        let mut ignore = |_: UserRecord| Ok(());
        let mut page = PageVisitor::new(&mut ignore, ids.clone());
        (&mut page).deserialize(&mut serde_json::Deserializer::from_str(text)).unwrap();
        page.fingerprint
    }

    #[test]
    fn a_page_with_the_same_ids_has_the_same_fingerprint_and_only_then() {
        let ids = hashbrown::DefaultHashBuilder::default();
        let a = fingerprint(r#"{"users":[{"id":"u1","email":"x"},{"id":"u2"}],"next_page_token":"t1"}"#, &ids);
        let again = fingerprint(r#"{"next_page_token":"t2","users":[{"id":"u1"},{"id":"u2","status":1}]}"#, &ids);
        assert_eq!(a, again, "same ids in the same order, whatever else the page holds");
        let other = fingerprint(r#"{"users":[{"id":"u2"},{"id":"u1"}]}"#, &ids);
        let more = fingerprint(r#"{"users":[{"id":"u1"},{"id":"u2"},{"id":"u3"}]}"#, &ids);
        assert!(a != other && a != more);
    }

    #[test]
    fn decodes_users_and_token_in_any_order_and_ignores_extras() {
        let (users, next) = decode(
            r#"{"next_page_token":"t2","extra":[1,{"a":2}],"users":[{"id":"a"},{"id":"b","status":"VERIFIED"}]}"#,
        )
        .unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[1].id, "b");
        assert_eq!(next.as_deref(), Some("t2"));
    }

    #[test]
    fn empty_users_are_none_and_null_users_are_malformed() {
        // proto3 JSON omits an empty list.
        assert!(decode(r#"{}"#).unwrap().0.is_empty());
        assert!(decode(r#"{"users":[]}"#).unwrap().0.is_empty());
        let err = decode(r#"{"users":null}"#).unwrap_err();
        assert_eq!(err.classify(), serde_json::error::Category::Data, "{err}");
        assert!(err.to_string().contains("\"users\" is null"), "{err}");
    }

    #[test]
    fn truncated_body_is_eof_and_garbage_is_syntax() {
        let err = decode(r#"{"users":[{"id":"a"},{"id":"#).unwrap_err();
        assert_eq!(err.classify(), serde_json::error::Category::Eof);
        let err = decode(r#"<html>login</html>"#).unwrap_err();
        assert_eq!(err.classify(), serde_json::error::Category::Syntax);
    }
}
