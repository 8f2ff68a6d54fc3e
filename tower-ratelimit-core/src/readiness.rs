//! [`Readiness`]: a ready inner service that a request hands back while it waits.
//!
//! Tower's `poll_ready` reserves capacity (a concurrency permit, a buffer slot) for
//! the `call` that follows. A layer that learns only in `call` that the request must
//! wait (for its key's or its partition's turn) would hold that capacity from every
//! other request meanwhile. [`Readiness::wait_for`] gives it back when the wait does
//! not end at once, and [`Readiness::into_ready`] makes a clone ready afterwards.
//!
//! ```
//! use std::time::Duration;
//! use tower::{service_fn, Service, ServiceExt};
//! use tower_ratelimit_core::readiness::Readiness;
//! use tower_ratelimit_core::{BoxError, ConcurrencyLimitLayer};
//! use tower_layer::Layer;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), BoxError> {
//! let api = ConcurrencyLimitLayer::new(1)
//!     .layer(service_fn(|n: u32| async move { Ok::<_, BoxError>(n) }));
//! let mut first = api.clone();
//! first.ready().await?; // the only permit, reserved for `first`
//!
//! let mut held = Readiness::new(first);
//! // A wait that does not end at once: the permit goes back meanwhile...
//! held.wait_for(tokio::time::sleep(Duration::from_secs(1))).await;
//! assert!(held.is_released());
//! assert_eq!(api.clone().oneshot(7).await?, 7); // ...so another caller can use it.
//! // Then a clone is made ready for the request that waited.
//! let mut waited = held.into_ready::<u32>().await?;
//! assert_eq!(waited.call(8).await?, 8);
//! # Ok(()) }
//! ```

use crate::error::BoxError;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use tower_service::Service;

/// The inner service of one request: still ready, or released for a clone to be made
/// ready later.
#[derive(Debug)]
pub struct Readiness<S> {
    service: S,
    released: bool,
}

impl<S: Clone> Readiness<S> {
    /// A service that `poll_ready` has just made ready.
    pub fn new(ready: S) -> Self {
        Readiness {
            service: ready,
            released: false,
        }
    }

    /// The service (ready, or a clone that reserves nothing yet).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.service
    }

    /// Whether the readiness was given back.
    pub fn is_released(&self) -> bool {
        self.released
    }

    /// Gives the reserved capacity back: the ready service is dropped and a clone,
    /// which reserves nothing until polled ready, takes its place. Once released it
    /// stays released.
    pub fn release(&mut self) {
        if !self.released {
            self.service = self.service.clone();
            self.released = true;
        }
    }

    /// Awaits `wait`; if it does not end at the first poll, gives the readiness back
    /// before waiting on.
    pub async fn wait_for<F: Future>(&mut self, wait: F) -> F::Output {
        let mut wait = pin!(wait);
        match poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx))).await {
            Poll::Ready(output) => output,
            Poll::Pending => {
                self.release();
                wait.await
            }
        }
    }

    /// The service, ready for the request's call: as it came, or a clone polled ready
    /// now if the readiness was given back.
    ///
    /// # Errors
    /// The inner service's readiness error.
    pub async fn into_ready<R>(mut self) -> Result<S, BoxError>
    where
        S: Service<R>,
        S::Error: Into<BoxError>,
    {
        if self.released {
            poll_fn(|cx| self.service.poll_ready(cx))
                .await
                .map_err(Into::into)?;
        }
        Ok(self.service)
    }
}
