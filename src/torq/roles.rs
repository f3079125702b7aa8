//! `GET /users/roles`, paged with `page_size=100` and `page_token` until the token comes back empty. The role
//! list is small (one entry per role), so pages are decoded whole: at most 16 MiB each, read within the request
//! timeout.

use super::http::{json_body, PageGuard, PAGE_BODY_LIMIT};
use super::models::{RoleRecord, RolesPage};
use super::{TorqClient, TorqError};

/// Torq's maximum page size for roles.
pub const ROLE_PAGE_SIZE: u32 = 100;

/// Safety net against a server that keeps inventing page tokens.
const MAX_ROLE_PAGES: u64 = 10_000;

impl TorqClient {
    /// Every role of the workspace, in API order.
    pub async fn list_roles(&self) -> Result<Vec<RoleRecord>, TorqError> {
        let url = self.endpoint("users/roles")?;
        let mut roles = Vec::new();
        let mut token = String::new();
        let mut guard = PageGuard::new(MAX_ROLE_PAGES);
        let timeout = self.inner.settings.timeout;
        loop {
            let request = format!("GET /users/roles (page {})", guard.page());
            let page_token = token.clone();
            let page: RolesPage = self
                .attempt_loop(
                    &request,
                    true,
                    |client| {
                        let mut query = vec![("page_size", ROLE_PAGE_SIZE.to_string())];
                        if !page_token.is_empty() {
                            query.push(("page_token", page_token.clone()));
                        }
                        client.get(url.clone()).query(&query)
                    },
                    |resp| {
                        let request = request.clone();
                        // At most 16 MiB, and the whole page within the request timeout.
                        async move { json_body::<RolesPage>(resp, &request, PAGE_BODY_LIMIT, timeout).await }
                    },
                )
                .await?;
            roles.extend(page.roles);
            if page.next_page_token.is_empty() {
                return Ok(roles);
            }
            guard.advance(&page.next_page_token, "GET /users/roles")?;
            token = page.next_page_token;
        }
    }
}
