//! The two role lists. `GET /roles` (the RBAC API) is the one to use: it says whether a role is custom. It is
//! documented as one answer without paging; a `next_page_token` is followed should one appear.
//! `GET /users/roles` (the legacy list, paged with `page_size=100`) is the fallback for a key that may not read
//! the RBAC API; it has no custom flag. The role list is small, so pages are decoded whole.

use super::list::ListPage;
use super::models::{RoleRecord, RolesPage};
use super::{TorqClient, TorqError};

/// Torq's maximum page size for the legacy role list.
pub(crate) const ROLE_PAGE_SIZE: u32 = 100;

impl ListPage for RolesPage {
    type Item = RoleRecord;
    const LIST_KEY: &'static str = "roles";
    fn into_parts(self) -> (Vec<RoleRecord>, String) {
        (self.roles, self.next_page_token)
    }
}

impl TorqClient {
    /// Every role from the RBAC list `GET /roles`, in API order. `is_custom` is always `Some` (the API omits it
    /// when it is false).
    pub(crate) async fn list_rbac_roles(&self) -> Result<Vec<RoleRecord>, TorqError> {
        let mut roles = self.list_all::<RolesPage>("roles", "GET /roles", None).await?;
        for role in &mut roles {
            role.is_custom.get_or_insert(false);
        }
        Ok(roles)
    }

    /// Every role from the legacy, paged list `GET /users/roles`, in API order (`is_custom` unknown: `None`).
    pub async fn list_roles(&self) -> Result<Vec<RoleRecord>, TorqError> {
        let mut roles = self.list_all::<RolesPage>("users/roles", "GET /users/roles", Some(ROLE_PAGE_SIZE)).await?;
        for role in &mut roles {
            // The legacy list has no such field; whatever a page might carry is not trusted as the RBAC flag.
            role.is_custom = None;
        }
        Ok(roles)
    }
}
