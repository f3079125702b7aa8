//! A simulated Torq workspace server on loopback HTTP.
//!
//! What this module owns: a fake Torq that the `demo` subcommand, the end-to-end tests and the benchmark talk
//! to instead of the real service. It imitates the parts of Torq's public API that the connector uses:
//!
//! * `POST /v1/auth/token`: OAuth2 client credentials with HTTP Basic auth, opaque bearer tokens with a TTL;
//! * `GET /public/v1alpha/users?sso_provision=…`: every matching user in one JSON body, always streamed in
//!   chunks so that a generated workspace of a million users never sits in memory;
//! * `GET /public/v1alpha/users/roles?page_size=…&page_token=…`: token-paginated roles (legacy list);
//! * `GET /public/v1alpha/roles`: the RBAC role list with `is_custom`, in one answer;
//! * `GET /public/v1alpha/api-keys`: service and private API keys (private keys embed their owner), no secrets;
//! * `GET /public/v1alpha/sso/claim_mappings`: SSO claim mappings, `rank` as a JSON number or string;
//! * `POST /public/v1alpha/users/invite`: adds an `INVITATION_SENT` user that later user lists show (409 for an
//!   existing email, 400 for an unknown role; the default role is Viewer);
//! * Torq's error behaviour: the `{code, message, details}` envelope, and a **302 to the login page** (not a 401)
//!   for an expired bearer token.
//!
//! On top of that, [`faults`] injects misbehaviour (error statuses, 429s, redirects, delays, dropped connections,
//! malformed or truncated JSON, endless or split paging) at chosen request indexes, and [`RequestStats`] counts
//! requests per endpoint so tests can assert how many calls a client made.
//!
//! Next to it, [`go_layout`] stands in for the other outside party: it estimates the file the public Go connector
//! writes for a workspace, so the benchmark can compare file sizes on the same data.
//!
//! What it must not do: share types with the real client in `crate::torq`. The simulator has its own
//! [`SimUser`] / [`SimRole`] / [`SimApiKey`] / [`SimClaimMapping`] and writes JSON by hand-picked field names, so a field-name or parsing bug in the
//! client cannot hide behind code that both sides reuse. It is also not a general Torq emulator: there is no
//! delete or role-update endpoint (Torq documents none), and state (tokens, counters, invited users) lives only
//! in memory.

mod faults;
pub mod go_layout;
mod server;
mod workspace;

pub use faults::{Endpoint, FaultKind, FaultPlan, FaultRule};
pub use server::{RequestStats, SimConfig, SimServer};
pub use workspace::{
    GeneratedSpec, SimApiKey, SimClaimMapping, SimInt64, SimRole, SimUser, Workspace, API_KEY_TYPE_PRIVATE,
    API_KEY_TYPE_SERVICE, API_KEY_TYPE_UNSPECIFIED,
};

/// Errors of the simulator's own API (loading a workspace). HTTP-level errors are answered to the client, not
/// returned here.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The workspace JSON does not parse or has the wrong shape.
    #[error("workspace JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    /// The workspace JSON parses but is inconsistent (for example a duplicate id).
    #[error("workspace is inconsistent: {0}")]
    Invalid(String),
}
