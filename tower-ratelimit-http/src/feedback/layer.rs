//! [`FeedbackLayer`]: observe responses, steer the shared limiter.
//!
//! ```
//! use std::time::Duration;
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};
//! use tower_ratelimit_http::feedback::FeedbackLayer;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower_ratelimit_core::BoxError> {
//! let limiter = RateLimiter::new(Quota::per_second(100)?);
//! let api = service_fn(|_req: http::Request<()>| async {
//!     let throttled = http::Response::builder().status(429).header("retry-after", "2");
//!     Ok::<_, std::convert::Infallible>(throttled.body(()).unwrap())
//! });
//! let client = ServiceBuilder::new()
//!     .layer(RateLimitLayer::with_limiter(limiter.clone()))
//!     .layer(FeedbackLayer::new(limiter.clone()))
//!     .service(api);
//!
//! let start = tokio::time::Instant::now();
//! let first = client.clone().oneshot(http::Request::new(())).await?;
//! assert_eq!(first.status(), 429);
//! // Every clone now waits for the server's 2 seconds.
//! client.clone().oneshot(http::Request::new(())).await?;
//! assert!(start.elapsed() >= Duration::from_secs(2));
//! # Ok(()) }
//! ```

use super::classify::{Classify, DefaultClassifier};
use super::parse::FeedbackParser;
use super::service::FeedbackService;
use super::steer::Steer;
use std::sync::Arc;
use std::time::Duration;
use tower_layer::Layer;
use tower_ratelimit_core::algorithm::Gcra;
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::RateLimiter;

/// Observes every response and, when the server throttles (or says the quota is
/// spent), pauses the shared [`RateLimiter`]: no request starts through any service
/// sharing it until the wait is over.
///
/// What it does with each response (see [`DefaultClassifier`] for the classes):
/// * throttled, with a wait within the cap: pauses the limiter for that wait, and
///   empties its bucket at the pause's end
///   ([`RateLimiter::throttle_until`](tower_ratelimit_core::RateLimiter::throttle_until)),
///   so requests resume at the quota's rate: a client whose burst is larger than the
///   server's would otherwise spend the burst it saved during the pause on the next
///   refusal, at every pause (a client at 100/s against a server at 100/s with a
///   burst of 1 took 176 s for 300 requests, and lost 123 of them);
/// * throttled, without a wait: the same for the fallback pause (1 s by default);
/// * throttled, with a wait over the cap: pauses for the cap and fails the call with
///   [`WaitOverCap`](super::WaitOverCap) instead of returning the response;
/// * any other response whose quota is spent (remaining 0) with a known reset:
///   pauses until the next request can pass (at most the cap) and returns the
///   response. That is the reset, except for an IETF `t` that, with the `q`/`w` of the
///   same policy on the response, can only be a drained token bucket's time until
///   *full* (`r=0;t=60` with `q=10;w=60`): then the pause lasts until its next unit,
///   `t - (q - 1) × w / q` (6 s). A window server drained within the first `w / q` of
///   its window says the same thing, and answers the early request with one 429 (its
///   `Retry-After` then holds until the window's end): at most one per window.
///   [`Feedback::next_unit_wait`](super::Feedback::next_unit_wait) has the rule;
/// * and it puts the parsed [`Feedback`](super::Feedback) and the
///   [`Class`](super::Class) in the response's extensions.
///
/// Put a [`RateLimitLayer`](tower_ratelimit_core::RateLimitLayer) built on the same
/// limiter *outside* this layer (or anywhere upstream of the requests): this layer
/// only listens, the rate layer holds requests back.
///
/// A client quota faster than the server's keeps being refused: each refusal costs the
/// server's `Retry-After`, often a whole second (a client at 12/s against a server at
/// 10/s with a burst of 1 ran at 9 % of the server's rate). When the server sends
/// `RateLimit-Policy`, [`FeedbackLayer::adopt_policy`] takes its rate (91 % there);
/// otherwise `tower-ratelimit-adaptive` finds it.
#[derive(Debug)]
pub struct FeedbackLayer<C = DefaultClassifier, St = MemoryStore<Gcra>> {
    limiter: RateLimiter<St>,
    steer: Arc<Steer<C>>,
}

impl<C, St> Clone for FeedbackLayer<C, St> {
    fn clone(&self) -> Self {
        FeedbackLayer {
            limiter: self.limiter.clone(),
            steer: Arc::clone(&self.steer),
        }
    }
}

impl<St> FeedbackLayer<DefaultClassifier, St> {
    /// Steers `limiter` with the default parser and classifier.
    pub fn new(limiter: RateLimiter<St>) -> Self {
        FeedbackLayer {
            limiter,
            steer: Arc::new(Steer {
                parser: FeedbackParser::new(),
                classifier: DefaultClassifier,
                adopt_policy: None,
                fallback_pause: Self::DEFAULT_FALLBACK_PAUSE,
            }),
        }
    }
}

impl<C: Clone, St> FeedbackLayer<C, St> {
    /// How long a throttled response without any wait header holds the limiter: 1 s.
    pub const DEFAULT_FALLBACK_PAUSE: Duration = Duration::from_secs(1);

    fn steer_mut(&mut self) -> &mut Steer<C> {
        Arc::make_mut(&mut self.steer)
    }

    /// Replaces the parser (cap, floor, vendor profile).
    pub fn parser(mut self, parser: FeedbackParser) -> Self {
        self.steer_mut().parser = parser;
        self
    }

    /// Replaces the classifier.
    pub fn classifier<C2: Classify + Clone>(self, classifier: C2) -> FeedbackLayer<C2, St> {
        let steer = Steer {
            parser: self.steer.parser,
            classifier,
            adopt_policy: self.steer.adopt_policy,
            fallback_pause: self.steer.fallback_pause,
        };
        FeedbackLayer {
            limiter: self.limiter,
            steer: Arc::new(steer),
        }
    }

    /// Adopts the request policy the server advertises (`q` per `w`) as the limiter's
    /// rate. Off by default. Of several policies (`"burst";q=100;w=60,
    /// "daily";q=1000;w=86400`), the one with the shortest window paces the client
    /// (the tightest of those): a longer window is a budget, whose exhaustion (`r=0`
    /// with its `t`) holds the client until it resets.
    ///
    /// The limiter's quota when this is turned on is a ceiling: a server may slow the
    /// client down, never speed it past its own rate nor its own burst. A policy slower
    /// than one request per parser's `max_wait` is ignored, as such a wait would be. A
    /// policy carries a rate, not a burst, so the limiter keeps its own burst shape: one
    /// built with a burst below its count (strict spacing) keeps that burst (capped at
    /// `q`), and one with the default burst takes `q` as its burst, up to its own.
    pub fn adopt_policy(mut self, adopt: bool) -> Self
    where
        St: tower_ratelimit_core::store::RateStore,
    {
        let ceiling = adopt.then(|| self.limiter.quota());
        self.steer_mut().adopt_policy = ceiling;
        self
    }

    /// How long a throttled response that names no wait holds the limiter (1 s by
    /// default). Some APIs ask for more: GitHub wants at least a minute after a
    /// secondary-limit 429 without `Retry-After`, so use 60 s there. GitHub may also
    /// send a secondary limit as a 403 without `Retry-After`, which only its body tells
    /// from a permission error: the default classifier takes it for a failure (no
    /// pause, no retry); a [`Classify`](crate::Classify) that reads 403 as throttled
    /// on endpoints that never deny permission otherwise covers it.
    pub fn fallback_pause(mut self, pause: Duration) -> Self {
        self.steer_mut().fallback_pause = pause;
        self
    }

    /// The limiter this layer steers.
    pub fn limiter(&self) -> &RateLimiter<St> {
        &self.limiter
    }
}

impl<S, C, St> Layer<S> for FeedbackLayer<C, St> {
    type Service = FeedbackService<S, C, St>;

    fn layer(&self, inner: S) -> Self::Service {
        FeedbackService::new(inner, self.limiter.clone(), Arc::clone(&self.steer))
    }
}
