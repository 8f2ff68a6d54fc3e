//! Throttles and plain pauses together, and `resume`: each throttle empties the bucket
//! as of its own end, once, whoever notices it and whatever pause surrounds it.
use std::time::Duration;
use tokio::time::Instant;
use tower_ratelimit_core::{Quota, RateLimiter};

/// Units a limiter admits at once right now.
async fn burst_now<St: tower_ratelimit_core::store::RateStore + Send + Sync + 'static>(
    l: &RateLimiter<St>,
) -> u32 {
    let mut n = 0;
    while n < 1000 && l.try_acquire(1).await.expect("d").is_allowed() {
        n += 1;
    }
    n
}

fn slow() -> Quota {
    // 1 unit/s, burst 10.
    Quota::from_rate(1.0, 10).expect("quota")
}

/// A throttle that ended 2 s ago, noticed only now: emptied as of its end, the bucket
/// has refilled 2 units since.
#[tokio::test(start_paused = true)]
async fn a_throttle_noticed_late_drained_as_of_its_end() {
    let l = RateLimiter::new(slow());
    l.throttle_for(Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(3)).await;
    let n = burst_now(&l).await;
    println!("baseline burst after throttle 1s, noticed at 3s: {n}");
    assert!(n <= 3, "{n}");
}

/// A `resume()` after the throttle has ended (nobody noticed the end) lifts nothing:
/// the bucket was emptied at the end, not left with the burst it saved.
#[tokio::test(start_paused = true)]
async fn a_resume_after_an_unnoticed_end_keeps_the_drain() {
    let l = RateLimiter::new(slow());
    l.throttle_for(Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(3)).await;
    l.resume(); // the throttle ended 2 s ago; resume lifts nothing
    let n = burst_now(&l).await;
    println!("burst after throttle 1s, resume() at 3s: {n}");
    assert!(
        n <= 3,
        "resume after the end undid the drain: {n} units at once"
    );
}

/// A plain pause that extends a throttle: the bucket is emptied as of the throttle's
/// end and refills during the rest of the pause, as a plain pause lets it.
#[tokio::test(start_paused = true)]
async fn a_plain_pause_extending_a_throttle_keeps_its_drain_instant() {
    let l = RateLimiter::new(slow());
    l.throttle_for(Duration::from_secs(1));
    l.pause_for(Duration::from_secs(6)); // a plain pause (e.g. a 503 or the user)
    tokio::time::advance(Duration::from_secs(6)).await;
    let n = burst_now(&l).await;
    println!("burst at 6s after throttle 1s + plain pause 6s: {n}");
    assert!(n >= 5, "plain pause's refill lost: {n}");
}

/// A throttle inside a longer plain pause: emptied as of its own end, refilled after.
#[tokio::test(start_paused = true)]
async fn a_throttle_inside_a_longer_pause_drains_at_its_own_end() {
    let l = RateLimiter::new(slow());
    l.pause_for(Duration::from_secs(6));
    l.throttle_for(Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(6)).await;
    let n = burst_now(&l).await;
    println!("burst at 6s after plain 6s + throttle 1s: {n}");
    assert!(n >= 5, "{n}");
}

/// Formatting the limiter notices the end too, and empties the bucket as of `until`.
#[tokio::test(start_paused = true)]
async fn formatting_a_limiter_after_a_throttle_drains_as_of_its_end() {
    let l = RateLimiter::new(slow());
    l.throttle_for(Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(3)).await;
    let _ = format!("{l:?}");
    let n = burst_now(&l).await;
    println!("burst after Debug noticed: {n}");
    assert!(n <= 3, "{n}");
}

/// A throttle whose end is already past, while a plain pause runs: the bucket is
/// emptied at once, as of that end, and refills through the pause.
#[tokio::test(start_paused = true)]
async fn a_throttle_already_past_during_a_pause_drains_at_once() {
    let l = RateLimiter::new(slow());
    let start = Instant::now();
    tokio::time::advance(Duration::from_secs(1)).await;
    l.pause_for(Duration::from_secs(5));
    l.throttle_until(start); // already past: drains now (as of start)
    tokio::time::advance(Duration::from_secs(5)).await;
    let n = burst_now(&l).await;
    // Emptied as of `start` (0.9 units owed then), refilled over 6 s: the burst of 10
    // minus what the empty bucket had not refilled by then.
    assert!((5..=7).contains(&n), "{n}");
}

/// A throttle that ended unnoticed, then an unrelated plain pause: the throttle's
/// drain is as of its own end, and the plain pause's end empties nothing.
#[tokio::test(start_paused = true)]
async fn a_plain_pause_after_an_unnoticed_throttle_end_does_not_drain_again() {
    let l = RateLimiter::new(slow());
    l.throttle_for(Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(2)).await; // throttle over at 1 s, unnoticed
    l.pause_for(Duration::from_secs(3)); // plain pause 2 s .. 5 s
    tokio::time::advance(Duration::from_secs(3)).await;
    let n = burst_now(&l).await;
    println!("burst at 5s: throttle 0-1s, plain pause 2-5s: {n}");
    assert!(n >= 4, "the plain pause drained the bucket: {n}");
}

/// The same when something noticed the throttle's end before the plain pause.
#[tokio::test(start_paused = true)]
async fn a_plain_pause_after_a_noticed_throttle_end_does_not_drain_again() {
    let l = RateLimiter::new(slow());
    l.throttle_for(Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(2)).await;
    let _ = l.paused_until(); // noticed
    l.pause_for(Duration::from_secs(3));
    tokio::time::advance(Duration::from_secs(3)).await;
    let n = burst_now(&l).await;
    assert!(n >= 4, "the plain pause drained the bucket: {n}");
}
