//! [`HttpRateLimit`]: extracts the key, asks the store, and calls the inner service
//! only for allowed requests.
//!
//! `poll_ready` never waits for the inner service: the key is known only in `call`, and
//! a request the limit refuses must be answered at once, not after the capacity it
//! will not use frees (behind a busy concurrency limit, a refused client got its
//! `429` nine seconds late). An inner service that is ready at `poll_ready` is called
//! at once; one that is not is readied in the response future of an allowed request,
//! from a clone.

use super::body::ResponseBody;
use super::future::{Pending, ResponseFuture};
use super::key::{KeyErrorKind, KeyExtractor};
use super::respond::{OnMissingKey, Outcome, Responder};
use http::{Request, Response, StatusCode};
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_ratelimit_core::store::RateStore;
use tower_service::Service;

/// The service of [`super::HttpRateLimitLayer`].
///
/// `poll_ready` never waits for the inner service: a request the limit refuses is
/// answered at once, and an allowed request whose inner service was not ready waits
/// for it in its response future (servers drive each request on a clone of its own, so
/// no backpressure is lost there; a pipeline that relies on `poll_ready` to hold
/// requests back should put its concurrency limit outside this layer).
///
/// For the same reason a `LoadShed` *outside* this layer no longer sees a full
/// concurrency limit inside it, and sheds nothing: put it directly over the limit,
/// inside this layer (`ServiceBuilder::new().layer(rate_limit).load_shed()
/// .concurrency_limit(n)`), where it sheds at once what the rate limit allowed.
///
/// A request the limit allowed has spent its units, whether or not the service then
/// serves it: shed by that `LoadShed`, or given up by its client while it waits for a
/// busy inner service, it still counts (as on servers that count every request they
/// admit). The units are not given back, since by then they may be another request's:
/// a window has moved on, or a booking sits at the end of the bucket's debt.
pub struct HttpRateLimit<S, St, X: KeyExtractor> {
    inner: S,
    /// Whether `inner` said it was ready and that readiness is not yet used.
    ready: bool,
    shared: Arc<Shared<St, X>>,
}

struct Shared<St, X: KeyExtractor> {
    store: Arc<St>,
    extractor: X,
    on_missing_key: OnMissingKey<X::Key>,
    responder: Arc<Responder>,
    cost: u64,
}

impl<S, St, X: KeyExtractor> HttpRateLimit<S, St, X> {
    pub(crate) fn new(
        inner: S,
        store: Arc<St>,
        extractor: X,
        on_missing_key: OnMissingKey<X::Key>,
        responder: Arc<Responder>,
        cost: u64,
    ) -> Self {
        HttpRateLimit {
            inner,
            ready: false,
            shared: Arc::new(Shared {
                store,
                extractor,
                on_missing_key,
                responder,
                cost,
            }),
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The store deciding for this service.
    pub fn store(&self) -> &Arc<St> {
        &self.shared.store
    }
}

impl<S: Clone, St, X: KeyExtractor> Clone for HttpRateLimit<S, St, X> {
    fn clone(&self) -> Self {
        // A clone has not been polled ready.
        HttpRateLimit {
            inner: self.inner.clone(),
            ready: false,
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, St, X: KeyExtractor + fmt::Debug> fmt::Debug for HttpRateLimit<S, St, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRateLimit")
            .field("inner", &self.inner)
            .field("extractor", &self.shared.extractor)
            .finish_non_exhaustive()
    }
}

impl<S, St, X, ReqB, ResB> Service<Request<ReqB>> for HttpRateLimit<S, St, X>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    St: RateStore<X::Key>,
    X: KeyExtractor,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, St::Future, ReqB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.ready {
            match self.inner.poll_ready(cx) {
                Poll::Ready(Ok(())) => self.ready = true,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                // Whatever it started to wait for (a place in a pool's queue) is
                // given back with it: an allowed request waits on a clone of its
                // own, and a place left here would take a permit from it.
                Poll::Pending => self.inner = self.inner.clone(),
            }
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let shared = &*self.shared;
        let responder = Arc::clone(&shared.responder);
        let extracted = shared.extractor.extract(&request);
        let key = match (&extracted, &shared.on_missing_key) {
            (Ok(key), _) => key,
            // The server's own setup gives no key: not the client's doing, and a
            // fallback key would quietly put every client in one bucket.
            (Err(error), _) if error.kind() == KeyErrorKind::Unconfigured => {
                let response = responder.key_rejected(StatusCode::INTERNAL_SERVER_ERROR, error);
                return ResponseFuture::answered(response, responder);
            }
            (Err(_), OnMissingKey::Fallback(key)) => key,
            (Err(error), OnMissingKey::Reject(status)) => {
                let response = responder.key_rejected(*status, error);
                return ResponseFuture::answered(response, responder);
            }
        };
        // An in-memory store decides here, and an inner service ready since
        // `poll_ready` is called at once: no clone of it for the future to own.
        if let Some(decided) = shared.store.try_check_now(key, shared.cost) {
            // Read after the decision: a store of several quotas reports the one its
            // snapshot now describes.
            let quota = shared.store.advertised_quota(key);
            return match responder.decided(decided, &quota) {
                Outcome::Proceed(fields) if std::mem::take(&mut self.ready) => {
                    ResponseFuture::calling(self.inner.call(request), fields, responder)
                }
                Outcome::Proceed(fields) => {
                    ResponseFuture::readying(self.inner.clone(), request, fields, responder)
                }
                // A refusal leaves the readiness for the next request.
                Outcome::Respond(response) => ResponseFuture::answered(response, responder),
            };
        }
        let quota = shared.store.advertised_quota(key);
        let decision = shared.store.check(key, shared.cost);
        // A ready instance goes with the request, and this one keeps a fresh clone,
        // as the decision may arrive after the caller moved on.
        let fresh = self.inner.clone();
        let pending = match std::mem::take(&mut self.ready) {
            true => Pending {
                service: std::mem::replace(&mut self.inner, fresh),
                ready: true,
                request,
            },
            false => Pending {
                service: fresh,
                ready: false,
                request,
            },
        };
        ResponseFuture::deciding(decision, pending, quota, responder)
    }
}
