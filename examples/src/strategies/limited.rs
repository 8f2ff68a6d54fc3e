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
pub(crate) async fn drive<S>(config: &RunConfig, stack: S, tally: &mut Tally) -> Result<(), BoxError>
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
) -> impl Service<ApiRequest, Response = Response<Bytes>, Error = BoxError, Future: Send> + Clone + Send + 'static {
    crate::stack::paced(limiter, config.concurrency, Attempts::default())
}

fn quota(config: &RunConfig, burst: u32) -> Result<Quota, BoxError> {
    Ok(Quota::from_rate(config.rate, u64::from(burst.max(1)))?)
}

/// GCRA, the token bucket: the server's rate and burst.
pub(super) async fn token_bucket(config: &RunConfig, tally: &mut Tally) -> Result<(), BoxError> {
    let limiter = RateLimiter::new(quota(config, config.burst)?);
    drive(config, limited(config, limiter), tally).await
}

/// The leaky bucket: the server's rate, strictly spaced.
pub(super) async fn leaky_bucket(config: &RunConfig, tally: &mut Tally) -> Result<(), BoxError> {
    let limiter = RateLimiter::with_algorithm(LeakyBucket, quota(config, 1)?);
    drive(config, limited(config, limiter), tally).await
}

/// A sliding-window log of `burst` requests per `burst / rate` seconds, the
/// window in which the server's bucket refills.
pub(super) async fn sliding_window(config: &RunConfig, tally: &mut Tally) -> Result<(), BoxError> {
    let burst = u64::from(config.burst.max(1));
    let window = Duration::try_from_secs_f64(burst as f64 / config.rate)?;
    let limiter = RateLimiter::with_algorithm(SlidingLog, Quota::new(burst, window)?);
    drive(config, limited(config, limiter), tally).await
}

/// The adaptive layer: not available until `tower-ratelimit-adaptive` lands.
pub(super) async fn adaptive(_config: &RunConfig, _tally: &mut Tally, _feedback: bool) -> Result<(), BoxError> {
    Err("tower-ratelimit-adaptive has no layer yet".into())
}
