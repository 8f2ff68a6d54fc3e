//! What the layer answers for each outcome: the response options and their rendering.

use super::grpc;
use super::headers::{self, FieldRenderer, HeaderStyle, PolicyName};
use super::key::{KeyError, KeyErrorKind};
use super::problem::{self, Problem, ProblemType};
use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use std::time::Duration;
use tower_ratelimit_core::algorithm::Snapshot;
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::store::Decision;
use tower_ratelimit_core::Quota;

/// What to do when the store cannot decide (a remote store out of reach).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnStoreError {
    /// Let the request through without rate-limit fields (fail open): an outage of the
    /// limiter's store does not become an outage of the service.
    #[default]
    Allow,
    /// Answer 503 with `Retry-After: 1` (fail closed).
    Reject,
}

/// What to do with a request whose key cannot be extracted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnMissingKey<K> {
    /// Answer with this status (400 for a garbled forwarding header, 401 for a missing
    /// API key...), without calling the service. A key the server's own setup cannot
    /// provide ([`KeyErrorKind::Unconfigured`]: no peer address) is answered 500
    /// instead, with the reason as the body. The layer knows no authentication scheme,
    /// and HTTP requires a 401 to name one in `WWW-Authenticate`: add it outside this
    /// layer (a `map_response` that sets it on 401s), or answer 403.
    Reject(StatusCode),
    /// Count the request against this one shared key (all anonymous clients share a
    /// quota).
    Fallback(K),
}

impl<K> Default for OnMissingKey<K> {
    /// 400 Bad Request.
    fn default() -> Self {
        OnMissingKey::Reject(StatusCode::BAD_REQUEST)
    }
}

/// The response options of a layer (everything but the key type).
#[derive(Debug, Clone)]
pub(crate) struct Responder {
    pub(crate) status: StatusCode,
    pub(crate) fields: FieldRenderer,
    pub(crate) problem: bool,
    pub(crate) grpc: bool,
    pub(crate) on_store_error: OnStoreError,
    /// The layer's cost is 0: a request is never refused for its rate, even when the
    /// store refuses it (a quota cut left the key over its new quota, and a store
    /// refuses such a key any cost, 0 included).
    pub(crate) uncounted: bool,
}

impl Default for Responder {
    fn default() -> Self {
        Responder {
            status: StatusCode::TOO_MANY_REQUESTS,
            fields: FieldRenderer::new(PolicyName::default(), HeaderStyle::default()),
            problem: false,
            grpc: false,
            on_store_error: OnStoreError::default(),
            uncounted: false,
        }
    }
}

/// An allowed request's decision, for its response's fields.
pub(crate) struct Allowed {
    quota: Quota,
    snapshot: Snapshot,
    /// The store refused it (an uncounted request over a cut quota): the fields say
    /// what a denial's do, the bucket's own remaining units.
    over: bool,
}

/// What happens to a request once the store has decided.
pub(crate) enum Outcome {
    /// Call the service, then add the fields of this decision (if any) to its response.
    Proceed(Option<Allowed>),
    /// Answer with this response; the service is not called.
    Respond(Response<Bytes>),
}

impl Responder {
    pub(crate) fn decided(&self, result: Result<Decision, StoreError>, quota: &Quota) -> Outcome {
        match result {
            Ok(Decision::Allowed { snapshot, .. }) => Outcome::Proceed(Some(Allowed {
                quota: *quota,
                snapshot,
                over: false,
            })),
            Ok(Decision::Denied { snapshot, .. }) if self.uncounted => {
                Outcome::Proceed(Some(Allowed {
                    quota: *quota,
                    snapshot,
                    over: true,
                }))
            }
            Ok(Decision::Denied {
                retry_after,
                snapshot,
            }) => Outcome::Respond(self.denied(retry_after, &snapshot, quota)),
            // The layer's cost is fixed, so only the server's setup (a quota whose burst
            // is below it) can make it too large: a 429 would be retried as a throttle by
            // every client, and waiting cannot help.
            Err(StoreError::CostTooLarge(e)) => Outcome::Respond(self.setup_error(format!(
                "the request costs {} units; the quota admits at most {} at once",
                e.cost, e.max
            ))),
            // When the store says when a held key frees its place, so does the answer:
            // a client told "1 s" while the table is full for a minute asks 60 times.
            Err(StoreError::TooManyKeys { retry_after, .. }) => Outcome::Respond(
                self.error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ProblemType::TemporaryReducedCapacity,
                    || "too many active clients".to_owned(),
                    Some(
                        retry_after
                            .unwrap_or(Duration::ZERO)
                            .max(Duration::from_secs(1)),
                    ),
                ),
            ),
            Err(_) if self.on_store_error == OnStoreError::Allow => Outcome::Proceed(None),
            Err(_) => Outcome::Respond(self.error(
                StatusCode::SERVICE_UNAVAILABLE,
                ProblemType::TemporaryReducedCapacity,
                || "the rate limiter is unavailable".to_owned(),
                Some(Duration::from_secs(1)),
            )),
        }
    }

    /// The response to a request over its quota.
    pub(crate) fn denied(
        &self,
        retry_after: Duration,
        snapshot: &Snapshot,
        quota: &Quota,
    ) -> Response<Bytes> {
        let detail = || {
            let secs = headers::retry_after_secs(retry_after);
            format!(
                "retry after {secs} second{}",
                if secs == 1 { "" } else { "s" }
            )
        };
        // A 503 sheds load, which is not the client's doing: the draft's type for it,
        // with no policy the client violated.
        let kind = match self.status {
            StatusCode::SERVICE_UNAVAILABLE => ProblemType::TemporaryReducedCapacity,
            _ => ProblemType::QuotaExceeded,
        };
        let mut response = self.error(self.status, kind, detail, Some(retry_after));
        self.fields
            .append_denied(response.headers_mut(), quota, snapshot);
        response
    }

    /// Adds an allowed request's fields to the service's response.
    pub(crate) fn add_fields(&self, headers: &mut HeaderMap, allowed: &Allowed) {
        if allowed.over {
            self.fields
                .append_denied(headers, &allowed.quota, &allowed.snapshot);
        } else {
            self.fields
                .append(headers, &allowed.quota, &allowed.snapshot);
        }
    }

    /// The response to a request whose key could not be read. A server-side cause
    /// always carries its error as text, so that a misconfigured app says why every
    /// request fails; a client's missing or bad key is a problem body when configured.
    pub(crate) fn key_rejected(&self, status: StatusCode, error: &KeyError) -> Response<Bytes> {
        if error.kind() == KeyErrorKind::Unconfigured {
            return self.setup_error(error.to_string());
        }
        self.error(status, ProblemType::Blank, || error.to_string(), None)
    }

    /// A 500 for what only the server's setup can cause: the reason as a text body for
    /// its operator (or gRPC `INTERNAL`), and nothing a client could wait out.
    fn setup_error(&self, reason: String) -> Response<Bytes> {
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        if self.grpc {
            return self.error(status, ProblemType::Blank, || reason, None);
        }
        let mut response = Response::new(Bytes::from(reason));
        *response.status_mut() = status;
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }

    /// A response the layer writes itself: status, `Retry-After`, and the problem body
    /// or gRPC status when configured.
    fn error(
        &self,
        status: StatusCode,
        kind: ProblemType,
        detail: impl FnOnce() -> String,
        retry_after: Option<Duration>,
    ) -> Response<Bytes> {
        let mut response = Response::new(Bytes::new());
        if let Some(wait) = retry_after {
            headers::set_retry_after(response.headers_mut(), wait);
        }
        if self.grpc {
            let message = match kind {
                ProblemType::QuotaExceeded => format!("rate limited; {}", detail()),
                _ => detail(),
            };
            let code = match kind {
                ProblemType::Blank => grpc::key_error_code(status),
                _ => grpc::code_for(status),
            };
            grpc::trailers_only(response.headers_mut(), code, &message, retry_after);
            return response;
        }
        *response.status_mut() = status;
        if self.problem {
            let mut problem = Problem::new(kind, status.as_u16()).detail(detail());
            if kind == ProblemType::QuotaExceeded {
                problem = problem.violated_policy(self.fields.name().as_str());
            }
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(problem::CONTENT_TYPE),
            );
            *response.body_mut() = Bytes::from(problem.to_json());
        }
        response
    }
}
