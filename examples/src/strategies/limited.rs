//! The strategies built from tower-ratelimit's layers: a rate limiter decides how
//! often requests start, a concurrency limit (the worker pool) how many are in
//! flight, `call_all` pulls the next page only when the stack is ready
//! (backpressure), and results stream out as they complete.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::Response;
use tower::{BoxError, Service, ServiceExt};
use tower_ratelimit_core::algorithm::{LeakyBucket, SlidingLog};
use tower_ratelimit_core::store::RateStore;
use tower_ratelimit_core::{Quota, RateLimiter};

use super::{RunConfig, Tally};
use crate::client::{ApiRequest, PageService};
use crate::observe::Attempts;

/// Drives pages `1..=N` through `stack`, recording each answer as it arrives.
pub(crate) async fn drive<S>(
    config: &RunConfig,
    stack: S,
    tally: &mut Tally,
) -> Result<(), BoxError>
where
    S: Service<ApiRequest, Response = Response<Bytes>> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    let pages = PageService::new(&config.url, stack)?;
    let mut answers = pages
        .call_all(futures_util::stream::iter(1..=config.pages))
        .unordered();
    while let Some(fetched) = answers.next().await {
        tally.record(fetched?);
    }
    Ok(())
}

fn limited<St: RateStore>(
    config: &RunConfig,
    limiter: RateLimiter<St>,
) -> impl Service<ApiRequest, Response = Response<Bytes>, Error = BoxError, Future: Send>
       + Clone
       + Send
       + 'static {
    crate::stack::paced(limiter, config.concurrency, Attempts::default())
}

fn quota(config: &RunConfig, burst: u32) -> Result<Quota, BoxError> {
    Ok(Quota::from_rate(config.rate, u64::from(burst.max(1)))?)
}

/// Half the server's burst: the client's bucket then never expects a token the
/// server's bucket has not refilled yet, whatever the network does to the spacing
/// of arrivals (with the full burst, one request arriving a millisecond early is a
/// 429, and a one-second pause).
fn headroom_burst(config: &RunConfig) -> u32 {
    (config.burst / 2).max(1)
}

/// GCRA, the token bucket: the server's rate, half its burst.
pub(super) async fn token_bucket(config: &RunConfig, tally: &mut Tally) -> Result<(), BoxError> {
    let limiter = RateLimiter::new(quota(config, headroom_burst(config))?);
    drive(config, limited(config, limiter), tally).await
}

/// The leaky bucket: the server's rate, strictly spaced.
pub(super) async fn leaky_bucket(config: &RunConfig, tally: &mut Tally) -> Result<(), BoxError> {
    let limiter = RateLimiter::with_algorithm(LeakyBucket, quota(config, 1)?);
    drive(config, limited(config, limiter), tally).await
}

/// A sliding-window log of half the server's burst per the time the server takes
/// to refill that many tokens: the server's rate, in windows the server's bucket
/// always covers.
pub(super) async fn sliding_window(config: &RunConfig, tally: &mut Tally) -> Result<(), BoxError> {
    let burst = u64::from(headroom_burst(config));
    let window = Duration::try_from_secs_f64(burst as f64 / config.rate)?;
    let limiter = RateLimiter::with_algorithm(SlidingLog, Quota::new(burst, window)?);
    drive(config, limited(config, limiter), tally).await
}

/// The adaptive layer, told nothing about the server's limit.
pub(super) async fn adaptive(
    config: &RunConfig,
    tally: &mut Tally,
    feedback: bool,
) -> Result<(), BoxError> {
    let (stack, layer) = crate::stack::adaptive(config.concurrency, feedback, Attempts::default());
    let result = drive(config, stack, tally).await;
    tally.set_found_rate(layer.rate(&()));
    result
}
