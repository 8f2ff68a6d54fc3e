//! A ready inner service that a request may hand back while it waits.
//!
//! Tower's contract has `poll_ready` reserve capacity (a concurrency permit, a buffer
//! slot) for the `call` that follows. A request that must then wait seconds for its
//! partition would hold that capacity from every other partition. It releases it
//! instead, keeping an unready clone, and makes the clone ready when its turn comes.

use std::future::poll_fn;
use tower_ratelimit_core::error::BoxError;
use tower_service::Service;

/// The inner service of one request: still ready, or released for a clone to be made
/// ready later.
pub(crate) enum Readiness<S> {
    Held(S),
    Released(S),
}

impl<S: Clone> Readiness<S> {
    /// Gives the reserved capacity back: the ready service is dropped and a clone,
    /// which reserves nothing yet, is kept. Once released it stays released.
    pub(crate) fn release(&mut self) {
        if let Readiness::Held(ready) = self {
            *self = Readiness::Released(ready.clone());
        }
    }

    /// The service, ready for the request's call.
    pub(crate) async fn into_ready<R>(self) -> Result<S, BoxError>
    where
        S: Service<R>,
        S::Error: Into<BoxError>,
    {
        match self {
            Readiness::Held(ready) => Ok(ready),
            Readiness::Released(mut fresh) => {
                poll_fn(|cx| fresh.poll_ready(cx))
                    .await
                    .map_err(Into::into)?;
                Ok(fresh)
            }
        }
    }
}
