//! Paged lists: the one loop that follows `next_page_token` for every list endpoint, through a page guard so a
//! cycling or endless token cannot loop, and the whole-body decoding of the small lists (roles, API keys, claim
//! mappings: at most 16 MiB per page and 64 MiB in all, each page read within the request timeout). The user
//! lists are not small: `users.rs` streams each page's body through this same loop.

use std::collections::HashSet;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reqwest::Response;
use serde::de::DeserializeOwned;

use super::http::{read_body, BodyError, Outcome, PAGE_BODY_LIMIT};
use super::{TorqClient, TorqError};

/// Safety net against a server that keeps inventing page tokens.
const MAX_PAGES: u64 = 10_000;

/// Pages in a row that may bring no item before a list is given up on: a real list's pages are full until the
/// last, so an empty page that still names a next one is rare, and several in a row mean the server loops.
const EMPTY_PAGES_IN_A_ROW: u64 = 3;

/// Pages a list may take beyond one per item delivered: a server that sends a fresh token with one item every few
/// pages keeps clear of [`EMPTY_PAGES_IN_A_ROW`], but not of this budget, which grows only with what was delivered.
const PAGES_BEYOND_ITEMS: u64 = 16;

/// Most bytes all pages of one small list may take together: a workspace's roles, API keys or claim mappings are
/// kilobytes, and what is decoded stays in memory until the sync writes it.
const LIST_BYTES_LIMIT: usize = 64 * 1024 * 1024;

/// A decoded page of a list answer.
pub(crate) trait ListPage: DeserializeOwned + Send + 'static {
    type Item;
    /// The JSON key of the page's list, e.g. `api_keys`.
    const LIST_KEY: &'static str;
    /// The page's items and its `next_page_token` (empty on the last page).
    fn into_parts(self) -> (Vec<Self::Item>, String);
}

/// One list to follow page by page.
pub(crate) struct Paged<'a> {
    /// Relative to the API base, e.g. `api-keys`.
    pub(crate) path: &'a str,
    /// How the list's requests are named in logs and errors, e.g. `GET /api-keys`; later pages add `(page N)`.
    pub(crate) name: &'a str,
    /// Sent with every page, before the page token.
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) max_pages: u64,
}

impl TorqClient {
    /// Requests every page of `list` (each with retries), hands each 2xx body and the request's name to `read`,
    /// which answers the page's value and its `next_page_token` (empty on the last page), and gives the values
    /// to `on_page` in order, which answers how many items the page brought (for the [`PageGuard`]). `read` is
    /// retried with the request, so it must start each body afresh.
    pub(crate) async fn each_page<T, R, Fut>(
        &self,
        list: Paged<'_>,
        mut read: R,
        mut on_page: impl FnMut(T) -> u64,
    ) -> Result<(), TorqError>
    where
        R: FnMut(Response, &str) -> Fut,
        Fut: Future<Output = Result<(T, String), Outcome>>,
    {
        let url = self.endpoint(list.path)?;
        let mut token = String::new();
        let mut guard = PageGuard::new(list.max_pages);
        loop {
            let request = match guard.page() {
                1 => list.name.to_string(),
                n => format!("{} (page {n})", list.name),
            };
            let (value, next) = self
                .attempt_loop(
                    &request,
                    true,
                    |client| {
                        let mut query = list.query.clone();
                        if !token.is_empty() {
                            query.push(("page_token", token.clone()));
                        }
                        client.get(url.clone()).query(&query)
                    },
                    |resp| read(resp, &request),
                )
                .await?;
            let items = on_page(value);
            if next.is_empty() {
                return Ok(());
            }
            guard.advance(&next, items, list.name)?;
            token = next;
        }
    }

    /// Every item of the list at `path` (relative to the API base, e.g. `api-keys`). `page_size`, when given, is
    /// sent with every request; `name` is how requests are named in logs and errors (e.g. `GET /api-keys`).
    pub(crate) async fn list_all<P: ListPage>(
        &self,
        path: &str,
        name: &str,
        page_size: Option<u32>,
    ) -> Result<Vec<P::Item>, TorqError> {
        let timeout = self.inner.settings.timeout;
        let query = page_size.map(|size| ("page_size", size.to_string())).into_iter().collect();
        let mut items = Vec::new();
        let left = Arc::new(AtomicUsize::new(LIST_BYTES_LIMIT));
        self.each_page(
            Paged { path, name, query, max_pages: MAX_PAGES },
            |resp, request| {
                let request = request.to_string();
                let left = Arc::clone(&left);
                // At most 16 MiB (and what is left of the list's 64 MiB), the whole page within the request timeout.
                async move {
                    let limit = PAGE_BODY_LIMIT.min(left.load(Ordering::Relaxed));
                    let mut body = Vec::new();
                    read_body(resp, &mut body, limit, timeout).await.map_err(|e| match e {
                        BodyError::TooLarge { .. } if limit < PAGE_BODY_LIMIT => Outcome::Fatal(TorqError::Malformed {
                            request: request.clone(),
                            detail: format!("its pages are larger than {LIST_BYTES_LIMIT} bytes in all"),
                        }),
                        e => Outcome::from_body(e, &request),
                    })?;
                    left.fetch_sub(body.len(), Ordering::Relaxed);
                    decode_page::<P>(&body, &request)
                }
            },
            |page_items| {
                let count = page_items.len() as u64;
                items.extend(page_items);
                count
            },
        )
        .await?;
        Ok(items)
    }
}

/// One page of a small list, whole: its items and its `next_page_token`. A page without items must hold its
/// list or nothing but the token (see [`PageKeys::missing_list`]).
fn decode_page<P: ListPage>(body: &[u8], request: &str) -> Result<(Vec<P::Item>, String), Outcome> {
    let (items, next) =
        serde_json::from_slice::<P>(body).map(P::into_parts).map_err(|e| Outcome::from_json(&e, request))?;
    if items.is_empty() {
        let mut de = serde_json::Deserializer::from_slice(body);
        let keys = serde::de::DeserializeSeed::deserialize(PageKeysOf(P::LIST_KEY), &mut de)
            .map_err(|e| Outcome::from_json(&e, request))?;
        if let Some(detail) = keys.missing_list() {
            return Err(Outcome::Fatal(TorqError::Malformed { request: request.to_string(), detail }));
        }
    }
    Ok((items, next))
}

/// Keys a page may hold without its list: proto3 JSON leaves an empty list out, so an empty page is `{}` or
/// holds its token alone.
const PAGE_TOKEN_KEYS: [&str; 2] = ["next_page_token", "nextPageToken"];

/// How many of a page's top-level keys an error names.
const KEYS_NAMED: usize = 5;

/// What a page's top-level keys say about its list.
#[derive(Debug, Default)]
pub(crate) struct PageKeys {
    list_key: &'static str,
    has_list: bool,
    has_other: bool,
    /// The first keys (one more than [`KEYS_NAMED`], to know there are more).
    first: Vec<String>,
}

impl PageKeys {
    pub(crate) fn new(list_key: &'static str) -> PageKeys {
        PageKeys { list_key, ..PageKeys::default() }
    }

    pub(crate) fn note(&mut self, key: &str) {
        if key == self.list_key {
            self.has_list = true;
        } else if !PAGE_TOKEN_KEYS.contains(&key) {
            self.has_other = true;
        }
        if self.first.len() <= KEYS_NAMED {
            self.first.push(key.to_string());
        }
    }

    /// Why the page is malformed, if it is: it lacks its list but holds other fields (an error envelope sent
    /// with a 2xx status, a renamed field). That is not an empty list, and taking it for one would write a sync
    /// without those objects.
    pub(crate) fn missing_list(&self) -> Option<String> {
        if self.has_list || !self.has_other {
            return None;
        }
        let mut named: Vec<String> = self.first.iter().take(KEYS_NAMED).map(|k| format!("{k:?}")).collect();
        if self.first.len() > KEYS_NAMED {
            named.push("...".into());
        }
        Some(format!(
            "the answer has no {:?} list but other fields ({}); an empty list is sent as [] or left out alone",
            self.list_key,
            named.join(", ")
        ))
    }
}

/// Reads a JSON object's top-level keys into [`PageKeys`] for the list named `.0` (values skipped unread).
struct PageKeysOf(&'static str);

impl<'de> serde::de::DeserializeSeed<'de> for PageKeysOf {
    type Value = PageKeys;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<PageKeys, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PageKeysOf {
    type Value = PageKeys;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<PageKeys, A::Error> {
        let mut keys = PageKeys::new(self.0);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            map.next_value::<serde::de::IgnoredAny>()?;
            keys.note(&key);
        }
        Ok(keys)
    }
}

/// Counts pages and refuses a page token the server already sent (a server that cycles through tokens would
/// otherwise repeat the list until `max_pages`). Keeps a keyed hash of each token, not the token: a server's
/// tokens can be large, and a chance collision of 64-bit keyed hashes is negligible.
///
/// Fresh tokens alone are no progress: a list also ends when [`EMPTY_PAGES_IN_A_ROW`] pages in a row brought no
/// item, or when it has taken more than [`PAGES_BEYOND_ITEMS`] pages beyond one per item delivered.
struct PageGuard {
    seen: HashSet<u64>,
    hasher: RandomState,
    pages: u64,
    max_pages: u64,
    items: u64,
    empty_in_a_row: u64,
}

impl PageGuard {
    fn new(max_pages: u64) -> PageGuard {
        PageGuard { seen: HashSet::new(), hasher: RandomState::new(), pages: 1, max_pages, items: 0, empty_in_a_row: 0 }
    }

    /// The number of the page about to be requested (1 for the first).
    fn page(&self) -> u64 {
        self.pages
    }

    /// Accepts `next` (non-empty) as the token of the next page of `request`, after a page that brought `items`.
    fn advance(&mut self, next: &str, items: u64, request: &str) -> Result<(), TorqError> {
        self.items = self.items.saturating_add(items);
        self.empty_in_a_row = if items == 0 { self.empty_in_a_row + 1 } else { 0 };
        if self.empty_in_a_row >= EMPTY_PAGES_IN_A_ROW || self.pages >= self.items.saturating_add(PAGES_BEYOND_ITEMS) {
            return Err(TorqError::NoProgress { request: request.to_string(), pages: self.pages, items: self.items });
        }
        if !self.seen.insert(self.hasher.hash_one(next)) || self.pages >= self.max_pages {
            return Err(TorqError::EndlessPaging { request: request.to_string(), pages: self.pages });
        }
        self.pages += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_guard_stops_on_any_repeated_token_and_at_the_cap() {
        let mut g = PageGuard::new(10);
        assert_eq!(g.page(), 1);
        g.advance("A", 5, "GET /x").unwrap();
        g.advance("B", 5, "GET /x").unwrap();
        assert_eq!(g.page(), 3);
        // A cycle A -> B -> A, not only an immediate repeat.
        assert!(matches!(g.advance("A", 5, "GET /x"), Err(TorqError::EndlessPaging { pages: 3, .. })));
        let mut g = PageGuard::new(2);
        g.advance("A", 5, "GET /x").unwrap();
        assert!(matches!(g.advance("B", 5, "GET /x"), Err(TorqError::EndlessPaging { pages: 2, .. })));
    }

    #[test]
    fn a_page_without_its_list_but_with_other_fields_is_malformed() {
        use crate::torq::models::ApiKeysPage;
        let ok =
            |body: &str| decode_page::<ApiKeysPage>(body.as_bytes(), "GET /api-keys").map(|(items, _)| items.len());
        assert_eq!(ok("{}").ok(), Some(0), "proto3's empty list");
        assert_eq!(ok(r#"{"next_page_token": ""}"#).ok(), Some(0));
        assert_eq!(ok(r#"{"api_keys": [], "other": 1}"#).ok(), Some(0));
        assert_eq!(ok(r#"{"api_keys": [{"id": "k"}]}"#).ok(), Some(1));
        for body in [r#"{"error": "internal", "code": 13}"#, r#"{"apiKeys": [{"id": "k"}]}"#] {
            match ok(body) {
                Err(Outcome::Fatal(TorqError::Malformed { detail, .. })) => {
                    assert!(detail.contains("no \"api_keys\" list but other fields"), "{detail}");
                }
                Ok(n) => panic!("{body}: taken as {n} items"),
                Err(_) => panic!("{body}: another error"),
            }
        }
        assert!(ok(r#"{"api_keys": null}"#).is_err(), "null is not a list");
    }

    #[test]
    fn page_guard_stops_a_list_that_brings_nothing_new() {
        // Empty pages with fresh tokens: the third in a row ends the list.
        let mut g = PageGuard::new(MAX_PAGES);
        g.advance("A", 0, "GET /x").unwrap();
        g.advance("B", 0, "GET /x").unwrap();
        assert!(matches!(g.advance("C", 0, "GET /x"), Err(TorqError::NoProgress { pages: 3, items: 0, .. })));
        // One item every other page keeps clear of the empty-page rule but not of the budget.
        let mut g = PageGuard::new(MAX_PAGES);
        let mut stopped = None;
        for page in 1..=1000u64 {
            if let Err(e) = g.advance(&format!("t{page}"), page % 2, "GET /x") {
                stopped = Some((page, e));
                break;
            }
        }
        let (page, e) = stopped.expect("the budget ends the list");
        assert_eq!(page, 2 * PAGES_BEYOND_ITEMS, "{e}");
        // Full pages never meet the budget.
        let mut g = PageGuard::new(MAX_PAGES);
        for page in 1..2000u64 {
            g.advance(&format!("t{page}"), 100, "GET /x").unwrap();
        }
    }
}
