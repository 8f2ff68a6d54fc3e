//! How long an *allowed* response whose quota is spent (`r=0`) holds the client: until
//! the next unit is back, which is not always the `t` the server sent.
//!
//! The IETF draft's `t` is "the number of seconds until the quota resets", and servers
//! read "resets" two ways. A window server resets at `t`: all of `q` comes back at
//! once, nothing before. A token bucket refills one unit every `w / q`, and sends the
//! time until it is *full* again (this crate's server does): at 10/min, a drained
//! bucket says `t=60`, and the next unit is back in 6 s. Holding for the whole `t`
//! there runs the client at a third of the rate over two minutes.
//!
//! One response can tell the two apart only partly, through the policy it names
//! (`RateLimit-Policy: "name";q=..;w=..`): a bucket that has just been drained is full
//! only after the `q - 1` units behind the next one have refilled, so its `t` is over
//! `(q - 1) × w / q` (and at most `w`). A `t` up to that, or over `w`, is no drained
//! bucket's refill time; it is a window's end (or the next unit itself, or a penalty),
//! and the client holds all of it. A `t` over it is held
//! only for the part beyond, `t - (q - 1) × w / q`: the next unit of a bucket (rounded
//! up to the whole second `t` was), or, for a window server drained within the first
//! `w / q` of its window, a moment too early, which that server answers with one 429
//! and a `Retry-After` up to the window's end. So the cost against windows is bounded:
//! at most one refusal per window, and only for clients that drain a window that fast.
//!
//! A sliding-window counter (the crate's `SlidingCounter`) is full again only once the
//! previous window's units stop weighing, up to `2w` ahead, so its `t` at `r=0` runs
//! between `w` and `2w`, and is held whole. A client that drains such a server gets
//! about half its quota: 51 of about 100 requests in 600 s at 10/min, with no 429,
//! whether it sends at once or through the crate's client paced at 1/s or at the
//! policy's 10/min.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use http::{HeaderMap, StatusCode};
//! use tower_ratelimit_http::feedback::FeedbackParser;
//!
//! // A drained bucket at 10/min: t is 60 s (full), the next unit is 6 s away.
//! let mut headers = HeaderMap::new();
//! headers.insert("ratelimit-policy", r#""default";q=10;w=60"#.parse().unwrap());
//! headers.insert("ratelimit", r#""default";r=0;t=60"#.parse().unwrap());
//! let feedback = FeedbackParser::new().parse(StatusCode::OK, &headers, SystemTime::now());
//! assert_eq!(feedback.wait(), Ok(Some(Duration::from_secs(60))));
//! assert_eq!(feedback.next_unit_wait(), Ok(Some(Duration::from_secs(6))));
//!
//! // t=40 with the same policy is no drained bucket's refill time: a window ends then.
//! headers.insert("ratelimit", r#""default";r=0;t=40"#.parse().unwrap());
//! let feedback = FeedbackParser::new().parse(StatusCode::OK, &headers, SystemTime::now());
//! assert_eq!(feedback.next_unit_wait(), Ok(Some(Duration::from_secs(40))));
//! ```

use super::model::{Dimension, Feedback, QuotaUnit, WaitOverCap, WaitSource};
use std::time::Duration;

impl Feedback {
    /// How long until the server admits the next request, as far as the response can
    /// tell: [`Feedback::wait`], except for the `t` of an exhausted IETF `RateLimit`
    /// item whose `RateLimit-Policy` (same name, counted in requests) says `q` per `w`.
    ///
    /// A drained token bucket is full only after the `q - 1` units behind its next one
    /// have refilled, so its time until full is over `(q - 1) × w / q`, and at most
    /// `w`. A `t` in that range is read as such a bucket's and shortened to its next
    /// unit, `t - (q - 1) × w / q` (`r=0;t=60` with `q=10;w=60`: 6 s). Any other `t` is
    /// a window's end (or the next unit already) and is kept. Explicit waits
    /// (`Retry-After`, millisecond headers) and the waits of every other header family
    /// are kept too.
    ///
    /// The next request needs every exhausted dimension back, so the hold is the
    /// longest of the IETF items' next units and the resets of the other exhausted
    /// dimensions (an `X-RateLimit-*` trio with `remaining: 0, reset: 30` beside
    /// `r=0;t=60` with `q=10;w=60` holds 30 s, not 6). A trio that repeats an
    /// exhausted IETF item's numbers (the same limit as its `q`, the same reset as its
    /// `t`, as this crate's server sends the legacy trios) is read as that item.
    ///
    /// A window server drained within the first `w / q` of its window sends a `t` in
    /// the same range: a client that comes back after the shortened wait meets one 429,
    /// whose `Retry-After` holds it until the window's end.
    ///
    /// [`FeedbackLayer`](super::FeedbackLayer) holds an allowed response with a spent
    /// quota for this long; a throttled response is held for all of
    /// [`Feedback::wait`]. Never longer than [`Feedback::wait`], and raised to the same
    /// floor.
    ///
    /// # Errors
    /// [`WaitOverCap`] when even the next unit is further away than the parser's cap
    /// (as [`Feedback::wait`]; a `t` over the cap whose next unit is within it is `Ok`).
    pub fn next_unit_wait(&self) -> Result<Option<Duration>, WaitOverCap> {
        match self.next_unit {
            Some(next) => Ok(Some(next)),
            None => self.wait(),
        }
    }
}

/// The parser's part: the wait until the next unit when it is shorter than the
/// feedback's wait and within `[floor, cap]`, else `None`.
pub(crate) fn shortened(feedback: &Feedback, floor: Duration, cap: Duration) -> Option<Duration> {
    if feedback.wait_source() != Some(WaitSource::RateLimitPolicy) {
        return None;
    }
    let wait = match feedback.wait() {
        Ok(Some(wait)) => wait,
        Err(over) => over.wait,
        Ok(None) => return None,
    };
    // The next request needs every exhausted dimension back: the IETF items' next
    // units, and the whole reset of any other exhausted dimension (a vendor's daily
    // quota, a -06 trio of its own), which the precedence left out of `wait`. A trio
    // that only repeats an IETF item's numbers (this crate's server with
    // `HeaderStyle { x_ratelimit: true, .. }`) says nothing more, and is left out.
    let exhausted = || {
        feedback
            .dimensions
            .iter()
            .filter(|d| d.is_exhausted())
            .filter_map(|d| Some((d, d.reset?)))
    };
    let items: Vec<(&Dimension, Duration, Duration)> = exhausted()
        .filter(|(d, _)| d.reset_source == WaitSource::RateLimitPolicy)
        .filter_map(|(d, reset)| {
            let (q, w) = policy_of(feedback, d)?;
            Some((d, reset, next_unit(reset, q, w)))
        })
        .collect();
    let mirrors = |d: &Dimension, reset: Duration| {
        items
            .iter()
            .any(|(item, item_reset, _)| d.limit == item.limit && reset == *item_reset)
    };
    let others = exhausted()
        .filter(|(d, _)| !items.iter().any(|(item, _, _)| std::ptr::eq(*item, *d)))
        .filter(|(d, reset)| !mirrors(d, *reset))
        .map(|(_, reset)| reset);
    let longest = items
        .iter()
        .map(|(_, _, next)| *next)
        .chain(others)
        .max()?
        .max(floor);
    (longest < wait && longest <= cap).then_some(longest)
}

/// The `q` and `w` of the `RateLimit-Policy` (same name, counted in requests) of an
/// IETF item, when they describe a rate.
fn policy_of(feedback: &Feedback, dimension: &Dimension) -> Option<(u64, Duration)> {
    let policy = feedback.policies.iter().find(|p| {
        p.unit == QuotaUnit::Requests && p.name.as_deref() == Some(dimension.name.as_str())
    })?;
    let window = policy.window?;
    (policy.quota > 0 && !window.is_zero()).then_some((policy.quota, window))
}

/// The hold for a spent quota of `q` per `w` that says it resets in `reset`: the part
/// of `reset` beyond the `q - 1` units a drained bucket refills after the next one, when
/// `reset` is long enough to be such a bucket's refill time (and no longer than `w`);
/// else all of `reset`.
pub(crate) fn next_unit(reset: Duration, q: u64, w: Duration) -> Duration {
    let window = w.as_nanos();
    // (q - 1) × w / q, rounded down (so the hold rounds up), without overflow:
    // w - ⌈w / q⌉ is exactly ⌊(q - 1) × w / q⌋.
    let behind = window - window.div_ceil(u128::from(q));
    let reset_ns = reset.as_nanos();
    if reset_ns > behind && reset_ns <= window {
        let next = reset_ns - behind;
        Duration::new(
            u64::try_from(next / 1_000_000_000).unwrap_or(u64::MAX),
            (next % 1_000_000_000) as u32,
        )
    } else {
        reset
    }
}

#[cfg(test)]
mod tests {
    use super::next_unit;
    use std::time::Duration;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_drained_buckets_refill_time_becomes_its_next_unit() {
        // 10/min drained: full in (54, 60] s; the next unit in what is over 54 s.
        assert_eq!(next_unit(secs(60), 10, secs(60)), secs(6));
        assert_eq!(next_unit(secs(55), 10, secs(60)), secs(1));
        // 7/min: 6 × 60 / 7 = 51.43 s behind; rounded down, so the hold rounds up.
        assert_eq!(
            next_unit(secs(60), 7, secs(60)),
            Duration::from_nanos(8_571_428_572)
        );
        // One per window: the next unit is the whole reset.
        assert_eq!(next_unit(secs(30), 1, secs(60)), secs(30));
    }

    #[test]
    fn a_window_end_or_a_reset_over_the_window_is_held_whole() {
        // t = 54 s or less with r=0: no bucket of 10/min is that close to full.
        assert_eq!(next_unit(secs(54), 10, secs(60)), secs(54));
        assert_eq!(next_unit(secs(40), 10, secs(60)), secs(40));
        assert_eq!(next_unit(secs(1), 10, secs(60)), secs(1));
        // Longer than the window: more than a refill (a penalty); the server knows.
        assert_eq!(next_unit(secs(61), 10, secs(60)), secs(61));
        // Huge values: no overflow.
        let huge = Duration::from_secs(999_999_999_999_999);
        // ⌈w / q⌉: 1e24 ns / (2^64 - 1) = 54_210.1 ns.
        assert_eq!(
            next_unit(huge, u64::MAX, huge),
            Duration::from_nanos(54_211)
        );
        assert_eq!(next_unit(Duration::MAX, 2, huge), Duration::MAX);
    }
}
