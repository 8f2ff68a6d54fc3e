//! A request whose reserved slot falls due during a pause is held with
//! `taken = cost, taken_at = <when its slot fell due>` (rate/future.rs:224-226,
//! Reserved -> Paused). Its units were *booked* earlier, though. A sleeper booked
//! after them but before the slot fell due has `booked_at < taken_at`, so the guard
//! misses it, and the held request's give-back at the pause's end comes off that
//! sleeper's booking.
//!
//! 2/s, burst 5 (T = 500 ms). t = 3.0 (bucket full): W (cost 3) starts; C takes its
//! readiness unit; X (cost 3) books slot 4.0. t = 3.1: C calls (cost 5) and books
//! slot 6.5, after X's units (its own unit stays spent: X booked since). t = 3.9:
//! pause 600 ms. X's slot falls due at 4.0, in the pause: held, taken_at = 4.0. At
//! 4.5 X gives back 1 s of its 3 units off the TAT, whose end is C's booking, and
//! books again: X starts at 7.0, half a second after C's 5 units: 8 units in
//! [6.5 s, 7.0 s], the quota allows 6. (With no give-back X starts at 8.0.)

mod support;

use std::time::Duration;
use tokio::time::Instant;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::{Quota, RateLimitLayer, RateLimiter};

#[tokio::test(start_paused = true)]
async fn a_held_slots_give_back_spares_a_later_booking() {
    let quota = Quota::per_second(2).unwrap().with_burst(5).unwrap();
    let limiter = RateLimiter::new(quota);
    let (starts, api) = support::starts::recorder(Instant::now());
    let svc = ServiceBuilder::new()
        .layer(RateLimitLayer::with_limiter(limiter.clone()).cost(|c: &u64| *c))
        .service(api);
    tokio::time::sleep(Duration::from_secs(3)).await;
    svc.clone().oneshot(3).await.unwrap(); // W, at 3.0
    let mut c = svc.clone();
    c.ready().await.unwrap(); // C's readiness unit, at 3.0
    let x = tokio::spawn(svc.clone().oneshot(3)); // X: slot 4.0
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let c = tokio::spawn(c.call(5)); // C: slot 6.5, booked at 3.1
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(800)).await; // t = 3.9
    limiter.pause_for(Duration::from_millis(600));
    x.await.unwrap().unwrap();
    c.await.unwrap().unwrap();
    support::starts::assert_within_quota(quota, &starts.lock().unwrap());
}
