//! `GET /sso/claim_mappings`: which IdP claim puts an SSO user into which role, one answer (no paging
//! documented; a `next_page_token` is followed should one appear).

use super::list::ListPage;
use super::models::{ClaimMappingRecord, ClaimMappingsPage};
use super::{TorqClient, TorqError};

impl ListPage for ClaimMappingsPage {
    type Item = ClaimMappingRecord;
    const LIST_KEY: &'static str = "claim_mappings";
    fn into_parts(self) -> (Vec<ClaimMappingRecord>, String) {
        (self.claim_mappings, self.next_page_token)
    }
}

impl TorqClient {
    /// Every SSO claim mapping of the workspace, in API order.
    pub(crate) async fn list_claim_mappings(&self) -> Result<Vec<ClaimMappingRecord>, TorqError> {
        self.list_all::<ClaimMappingsPage>("sso/claim_mappings", "GET /sso/claim_mappings", None).await
    }
}
