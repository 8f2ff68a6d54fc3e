//! A weighted wait-mode request refused by `reserve_whole` (its whole cost would wait
//! longer than it may) does not start, so the readiness unit it gave back stays given
//! back: the core's in-memory stores give it back before they book, and keep it given
//! back when the booking is refused, and so do the window scripts. The GCRA script
//! used to drop the give-back with the refusal (it wrote nothing when it denied), so
//! every refused request cost its readiness unit: the next check waited a whole
//! interval (10 s here) more than in memory.
//!
//! Guaranteed: after a refused `reserve_whole`, the bucket owes what it owed less
//! what the script gave back (the unit less the round-trip slack), as in memory.
//!
//! Real redis-server; the emission interval is 10 s, so the milliseconds a loaded
//! machine adds to a call move no result across its bound.

mod support;

use std::time::Duration;
use support::RedisServer;
use tokio::time::Instant;
use tower_ratelimit_core::store::{Decision, MemoryStore, RateStore};
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::RedisStore;

/// 10 s a unit, burst 2.
fn quota() -> Quota {
    Quota::new(2, Duration::from_secs(20)).expect("quota")
}

/// Takes a readiness unit and then the rest of the burst, and asks for a whole cost
/// of 2 that may not wait: refused, since one unit is still owed. Returns that answer
/// and the next unit check's.
async fn refused_then_check<K: ?Sized>(store: &impl RateStore<K>, key: &K) -> (Decision, Decision) {
    assert!(store.check(key, 1).await.expect("decision").is_allowed());
    let taken_at = Instant::now();
    assert!(store.check(key, 1).await.expect("decision").is_allowed());
    let whole = store
        .reserve_whole(key, 1, taken_at, 2, Duration::ZERO)
        .await
        .expect("decision");
    let next = store.check(key, 1).await.expect("decision");
    (whole, next)
}

#[tokio::test]
async fn a_refused_reservation_keeps_its_readiness_unit_given_back() {
    let memory = MemoryStore::new(quota());
    let (whole, next) = refused_then_check(&memory, &()).await;
    assert!(
        matches!(whole, Decision::Denied { .. }),
        "memory: {whole:?}"
    );
    assert!(next.is_allowed(), "memory: {next:?}");

    let server = RedisServer::start();
    let store = RedisStore::builder(quota())
        .prefix("refused:")
        .negative_cache(0)
        .timeout(Duration::from_millis(200))
        .connect(server.url())
        .expect("store");
    let (whole, next) = refused_then_check(&store, "k").await;
    assert!(matches!(whole, Decision::Denied { .. }), "redis: {whole:?}");
    // In memory the unit is back at once; here the slack (twice the slowest recent
    // round trip, at most twice the timeout) stays spent: well under the 10 s that
    // a unit left spent would cost.
    assert!(
        matches!(next, Decision::Denied { retry_after, .. } if retry_after < Duration::from_secs(1))
            || next.is_allowed(),
        "redis: the refused request's readiness unit was taken back: {next:?}"
    );
}
