//! Whole-body list requests shared by every small list endpoint (roles, API keys, claim mappings): one GET,
//! decoded whole (at most 16 MiB, read within the request timeout), and a `next_page_token` followed when the answer carries one (through the page guard, so a
//! cycling token cannot loop). The user lists are not small and have their own streamed decoder (`users.rs`).

use serde::de::DeserializeOwned;

use super::http::{json_body, PageGuard, PAGE_BODY_LIMIT};
use super::{TorqClient, TorqError};

/// Safety net against a server that keeps inventing page tokens.
const MAX_PAGES: u64 = 10_000;

/// A decoded page of a list answer.
pub(crate) trait ListPage: DeserializeOwned + Send + 'static {
    type Item;
    /// The page's items and its `next_page_token` (empty on the last page).
    fn into_parts(self) -> (Vec<Self::Item>, String);
}

impl TorqClient {
    /// Every item of the list at `path` (relative to the API base, e.g. `api-keys`). `page_size`, when given, is
    /// sent with every request; `name` is how requests are named in logs and errors (e.g. `GET /api-keys`).
    pub(crate) async fn list_all<P: ListPage>(
        &self,
        path: &str,
        name: &str,
        page_size: Option<u32>,
    ) -> Result<Vec<P::Item>, TorqError> {
        let url = self.endpoint(path)?;
        let mut items = Vec::new();
        let mut token = String::new();
        let mut guard = PageGuard::new(MAX_PAGES);
        let timeout = self.inner.settings.timeout;
        loop {
            let request = match guard.page() {
                1 => name.to_string(),
                n => format!("{name} (page {n})"),
            };
            let page_token = token.clone();
            let page: P = self
                .attempt_loop(
                    &request,
                    true,
                    |client| {
                        let mut query = Vec::new();
                        if let Some(size) = page_size {
                            query.push(("page_size", size.to_string()));
                        }
                        if !page_token.is_empty() {
                            query.push(("page_token", page_token.clone()));
                        }
                        client.get(url.clone()).query(&query)
                    },
                    |resp| {
                        let request = request.clone();
                        // At most 16 MiB, and the whole page within the request timeout.
                        async move { json_body::<P>(resp, &request, PAGE_BODY_LIMIT, timeout).await }
                    },
                )
                .await?;
            let (page_items, next) = page.into_parts();
            items.extend(page_items);
            if next.is_empty() {
                return Ok(items);
            }
            guard.advance(&next, name)?;
            token = next;
        }
    }
}
