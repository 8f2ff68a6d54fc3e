//! `reserve_whole`'s give-back comes off the end of the TAT, which is not the held
//! request's own units when another request booked a slot after them: a sleeping
//! booking, made by this instance or (as here) by another sharing the key, whose
//! wait the held request's units made. The script gives nothing back while the TAT's
//! latest slot is still ahead of the server's clock, as the core's in-memory GCRA
//! does; before, the held request started in the sleeper's wake, a unit more than
//! the quota allows over the span.
//!
//! Real redis-server, real clock: a unit is 360 s, so the milliseconds the calls take
//! are far below every bound.

mod support;

use std::time::Duration;
use support::RedisServer;
use tokio::time::Instant;
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::store::{Decision, RateStore};
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::RedisStore;

const UNIT: Duration = Duration::from_secs(360);

/// 3 units a burst, one every 360 s: at most 3 + ⌊D / 360 s⌋ units start within D.
fn instance(server: &RedisServer) -> RedisStore {
    RedisStore::builder(Quota::new(3, 3 * UNIT).expect("quota"))
        .prefix("sleeping-booking:")
        .negative_cache(0)
        // Long, so a loaded machine never hands a call to the failure policy.
        .timeout(Duration::from_secs(2))
        .connect(server.url())
        .expect("store")
}

fn wait(decision: &Result<Decision, StoreError>) -> Duration {
    match decision {
        Ok(Decision::Allowed { wait, .. }) => *wait,
        other => panic!("an unbounded reservation is allowed: {other:?}"),
    }
}

/// A's readiness unit, on a full bucket: when it was taken.
async fn readiness_unit(store: &RedisStore, key: &str) -> Instant {
    let decision = store.check(key, 1).await;
    assert!(
        matches!(decision, Ok(Decision::Allowed { wait, .. }) if wait.is_zero()),
        "{decision:?}"
    );
    Instant::now()
}

/// Instance B books a request of cost 3 after A's readiness unit: 4 units, so it
/// sleeps one unit, for A's. A's request, of cost 2, is then booked whole: its unit
/// stays spent, and A starts 2 units after B (5 units in 2 units' time: 3 + 2). Given
/// back off the TAT's end, A started about one unit after B: 5 units where 4 fit.
#[tokio::test]
async fn a_give_back_spares_another_instances_sleeping_booking() {
    let server = RedisServer::start();
    let (a, b) = (instance(&server), instance(&server));
    let taken_at = readiness_unit(&a, "shared").await;
    let sleeper = wait(&b.reserve("shared", 3, Duration::MAX).await);
    assert!(
        sleeper > UNIT / 2 && sleeper < UNIT + UNIT / 2,
        "B sleeps one unit: {sleeper:?}"
    );
    let held = wait(
        &a.reserve_whole("shared", 1, taken_at, 2, Duration::MAX)
            .await,
    );
    assert!(
        held > sleeper + 2 * UNIT - Duration::from_secs(1),
        "A starts {held:?} from now, B {sleeper:?}: 5 units within {:?}",
        held.saturating_sub(sleeper)
    );
}

/// Control: with no booking after the readiness unit, the unit still in the TAT is
/// given back and booked again with the whole cost: A, of cost 3, starts within the
/// slack (twice the slowest recent round trip, a few seconds at most here), where with
/// its unit spent it waited one unit.
#[tokio::test]
async fn with_no_later_booking_the_readiness_unit_is_given_back() {
    let server = RedisServer::start();
    let a = instance(&server);
    let taken_at = readiness_unit(&a, "alone").await;
    let held = wait(
        &a.reserve_whole("alone", 1, taken_at, 3, Duration::MAX)
            .await,
    );
    assert!(held < UNIT / 2, "A starts {held:?} from now");
}
