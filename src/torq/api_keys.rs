//! `GET /api-keys`: the workspace's API keys (service and private), one answer (no paging documented; a
//! `next_page_token` is followed should one appear). Client secrets are never part of the answer, and the model
//! reads only the documented fields.

use super::list::ListPage;
use super::models::{ApiKeyRecord, ApiKeysPage};
use super::{TorqClient, TorqError};

impl ListPage for ApiKeysPage {
    type Item = ApiKeyRecord;
    const LIST_KEY: &'static str = "api_keys";
    fn into_parts(self) -> (Vec<ApiKeyRecord>, String) {
        (self.api_keys, self.next_page_token)
    }
}

impl TorqClient {
    /// Every API key of the workspace, in API order.
    pub(crate) async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, TorqError> {
        self.list_all::<ApiKeysPage>("api-keys", "GET /api-keys", None).await
    }
}
