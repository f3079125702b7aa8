//! Fault injection for the simulated Torq server.
//!
//! A [`FaultPlan`] is a list of [`FaultRule`]s. The server numbers the requests to each [`Endpoint`] from 1
//! (every request counts, faulted or not); a rule hits the requests `first_request ..= first_request + times - 1`
//! of its endpoint. [`Endpoint::AnyApi`] uses a counter of all non-token requests.
//!
//! When several rules hit the same request, every matching [`FaultKind::Delay`] is applied (they add up) and
//! then the first matching rule of any other kind decides the response.

use std::time::Duration;

/// Which requests a rule looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/auth/token`.
    Token,
    /// `GET /public/v1alpha/users` with `sso_provision=false` or without the parameter.
    UsersLocal,
    /// `GET /public/v1alpha/users?sso_provision=true`.
    UsersSso,
    /// `GET /public/v1alpha/users/roles` (the legacy, paged role list).
    Roles,
    /// `GET /public/v1alpha/roles` (the RBAC role list with `is_custom`).
    RbacRoles,
    /// `GET /public/v1alpha/api-keys`.
    ApiKeys,
    /// `GET /public/v1alpha/sso/claim_mappings`.
    ClaimMappings,
    /// `POST /public/v1alpha/users/invite`.
    Invite,
    /// Every request except the token endpoint (including unknown paths).
    AnyApi,
}

/// What goes wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this HTTP status and Torq's JSON error envelope, with the matching gRPC code.
    Status(u16),
    /// 429 "Resource exhausted" (gRPC code 8), with a `Retry-After` header when given.
    TooManyRequests { retry_after_secs: Option<u64> },
    /// 302 to the login page with an HTML body, exactly like an expired token.
    Redirect302,
    /// Wait this long before handling the request normally (on top of the configured latency).
    Delay(Duration),
    /// Send the status line, headers and part of the body, then drop the connection without finishing the body.
    /// The request itself is handled normally first (an invite is applied).
    ResetConnection,
    /// Handle the request normally (an invite is applied), then drop the connection before a single byte of the
    /// answer is sent: the client cannot tell whether the request reached Torq.
    ResetAfterHandling,
    /// Send the status line, headers and part of the body, then nothing more while the connection stays open:
    /// a server that stalls mid-body (only the client's read timeout or a stop ends the wait).
    StallBody,
    /// 200 with `Content-Type: application/json` and a complete body that is not valid JSON.
    MalformedJson,
    /// 200 with correct HTTP framing, but the JSON document stops halfway.
    TruncatedBody,
    /// Legacy roles only: the page is served normally but `next_page_token` is always the same non-empty token.
    /// Has no effect on other endpoints.
    EndlessPaging,
    /// RBAC roles only (an answer that is not paged today): the answer holds the first half of the roles and a
    /// `next_page_token`; a request that sends that `page_token` gets the rest. Has no effect on other endpoints.
    SplitPage,
}

impl FaultKind {
    /// Can this fault be applied to a request to `endpoint`? Paging faults only fit the list that they page;
    /// every other kind fits every endpoint.
    pub(crate) fn fits(&self, endpoint: Option<Endpoint>) -> bool {
        match self {
            FaultKind::EndlessPaging => endpoint == Some(Endpoint::Roles),
            FaultKind::SplitPage => endpoint == Some(Endpoint::RbacRoles),
            _ => true,
        }
    }
}

/// One fault: which endpoint, what, and on which requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    pub endpoint: Endpoint,
    pub kind: FaultKind,
    /// 1-based index of the first request (to `endpoint`) that is hit.
    pub first_request: u64,
    /// How many consecutive requests are hit; `u64::MAX` = forever.
    pub times: u64,
}

impl FaultRule {
    /// Does this rule hit request number `n` (1-based) of its endpoint?
    pub(crate) fn hits(&self, n: u64) -> bool {
        n >= self.first_request && n - self.first_request < self.times
    }
}

/// The set of faults a server injects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// An empty plan (no faults).
    pub fn new() -> FaultPlan {
        FaultPlan::default()
    }

    /// Adds a rule: `kind` on requests `first_request .. first_request + times` of `endpoint`.
    pub fn on(mut self, endpoint: Endpoint, kind: FaultKind, first_request: u64, times: u64) -> FaultPlan {
        self.rules.push(FaultRule { endpoint, kind, first_request, times });
        self
    }

    /// Adds a rule that hits every request of `endpoint` from the first one on.
    pub fn always(self, endpoint: Endpoint, kind: FaultKind) -> FaultPlan {
        self.on(endpoint, kind, 1, u64::MAX)
    }

    /// The faults for one request. `index(endpoint)` gives the request's 1-based number at that endpoint, or
    /// `None` when the request does not belong to that endpoint. `endpoint` is the request's own endpoint
    /// (`None` for unknown paths and wrong methods): a rule whose kind does not fit it (see [`FaultKind::fits`])
    /// is skipped, so a later rule can still pick the fault.
    pub(crate) fn decide(&self, index: impl Fn(Endpoint) -> Option<u64>, endpoint: Option<Endpoint>) -> Decision {
        let mut decision = Decision::default();
        for rule in &self.rules {
            let Some(n) = index(rule.endpoint) else {
                continue;
            };
            if !rule.hits(n) {
                continue;
            }
            match &rule.kind {
                FaultKind::Delay(d) => decision.delay = decision.delay.saturating_add(*d),
                kind if !kind.fits(endpoint) => {}
                kind if decision.kind.is_none() => decision.kind = Some(kind.clone()),
                _ => {}
            }
        }
        decision
    }
}

/// What [`FaultPlan::decide`] chose for one request.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    /// Sum of all matching delays.
    pub(crate) delay: Duration,
    /// The first matching non-delay fault.
    pub(crate) kind: Option<FaultKind>,
}

/// The gRPC status code that grpc-gateway would put into the envelope for an HTTP status.
pub(crate) fn grpc_code(status: u16) -> u32 {
    match status {
        400 => 3,        // INVALID_ARGUMENT
        401 => 16,       // UNAUTHENTICATED
        403 => 7,        // PERMISSION_DENIED
        404 => 5,        // NOT_FOUND
        405 => 12,       // UNIMPLEMENTED (grpc-gateway answers an unsupported method so)
        409 => 6,        // ALREADY_EXISTS
        412 => 9,        // FAILED_PRECONDITION
        429 => 8,        // RESOURCE_EXHAUSTED
        499 => 1,        // CANCELLED
        501 => 12,       // UNIMPLEMENTED
        502..=503 => 14, // UNAVAILABLE
        504 => 4,        // DEADLINE_EXCEEDED
        500..=599 => 13, // INTERNAL
        _ => 2,          // UNKNOWN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_precedence() {
        let plan = FaultPlan::new()
            .on(Endpoint::Roles, FaultKind::Delay(Duration::from_millis(5)), 1, u64::MAX)
            .on(Endpoint::Roles, FaultKind::Status(503), 2, 2)
            .on(Endpoint::AnyApi, FaultKind::MalformedJson, 3, 1)
            .on(Endpoint::Roles, FaultKind::Delay(Duration::from_millis(7)), 3, 1);
        let roles = |n: u64, api: u64| {
            move |e: Endpoint| match e {
                Endpoint::Roles => Some(n),
                Endpoint::AnyApi => Some(api),
                _ => None,
            }
        };
        let legacy = Some(Endpoint::Roles);
        let d = plan.decide(roles(1, 1), legacy);
        assert_eq!((d.delay, d.kind), (Duration::from_millis(5), None));
        assert_eq!(plan.decide(roles(2, 2), legacy).kind, Some(FaultKind::Status(503)));
        let d = plan.decide(roles(3, 3), legacy);
        assert_eq!((d.delay, d.kind), (Duration::from_millis(12), Some(FaultKind::Status(503))));
        assert_eq!(plan.decide(roles(4, 4), legacy).kind, None);
        assert!(FaultPlan::new().always(Endpoint::Token, FaultKind::Redirect302).rules[0].hits(u64::MAX));
        // Endless paging on every API request leaves a later fault for the (unpaged) user lists.
        let plan = FaultPlan::new()
            .always(Endpoint::AnyApi, FaultKind::EndlessPaging)
            .always(Endpoint::AnyApi, FaultKind::Status(500));
        let any = |e: Endpoint| matches!(e, Endpoint::AnyApi).then_some(1);
        assert_eq!(plan.decide(any, Some(Endpoint::UsersLocal)).kind, Some(FaultKind::Status(500)));
        assert_eq!(plan.decide(any, Some(Endpoint::Roles)).kind, Some(FaultKind::EndlessPaging));
        // A split page fits the RBAC role list only.
        let plan = FaultPlan::new().always(Endpoint::AnyApi, FaultKind::SplitPage);
        assert_eq!(plan.decide(any, Some(Endpoint::Roles)).kind, None);
        assert_eq!(plan.decide(any, None).kind, None);
        assert_eq!(plan.decide(any, Some(Endpoint::RbacRoles)).kind, Some(FaultKind::SplitPage));
        // A stalled body fits every endpoint and is chosen like any other non-delay fault.
        let plan = FaultPlan::new().on(Endpoint::UsersLocal, FaultKind::StallBody, 2, 1);
        let users = |n: u64| move |e: Endpoint| matches!(e, Endpoint::UsersLocal).then_some(n);
        assert_eq!(plan.decide(users(1), Some(Endpoint::UsersLocal)).kind, None);
        assert_eq!(plan.decide(users(2), Some(Endpoint::UsersLocal)).kind, Some(FaultKind::StallBody));
        assert_eq!(plan.decide(users(3), Some(Endpoint::UsersLocal)).kind, None);
        assert_eq!(grpc_code(503), 14);
        assert_eq!(grpc_code(500), 13);
    }
}
