//! From an observed response to an action on a limiter: the one place that decides
//! how long to hold, shared by the plain and the partitioned layers.

use super::classify::{Class, Classify};
use super::model::{Feedback, QuotaUnit, WaitOverCap};
use super::parse::FeedbackParser;
use std::time::{Duration, SystemTime};
use tower_ratelimit_core::store::RateStore;
use tower_ratelimit_core::{Quota, RateLimiter};

/// What the limiter should do after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Nothing: the server is not limiting us.
    None,
    /// Hold every request for this long.
    For(Duration),
    /// Hold every request for the cap, short of a reset the server put further
    /// away: the quota is still spent when the hold ends, so the client sends one
    /// request to ask, at the quota's rate, not the burst it saved meanwhile.
    Capped(Duration),
}

/// The parser, the classifier and the options of a feedback layer.
#[derive(Debug, Clone)]
pub(crate) struct Steer<C> {
    pub(crate) parser: FeedbackParser,
    pub(crate) classifier: C,
    /// When set, the server's advertised policy is adopted, never faster than this
    /// quota (the limiter's own when adoption was turned on): a server may slow a
    /// client down, not talk it past its configured rate.
    pub(crate) adopt_policy: Option<Quota>,
    pub(crate) fallback_pause: Duration,
}

/// The verdict on one response.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub(crate) feedback: Feedback,
    pub(crate) class: Class,
    pub(crate) hold: Hold,
    /// Set when a throttled response asked for more than the cap.
    pub(crate) over_cap: Option<WaitOverCap>,
    /// The tightest advertised request policy, if its spacing is within the wait cap:
    /// a policy of one request per century is a wait the cap would refuse.
    pub(crate) advertised: Option<Quota>,
}

impl<C: Classify> Steer<C> {
    pub(crate) fn judge(&self, status: http::StatusCode, headers: &http::HeaderMap) -> Verdict {
        let feedback = self.parser.parse(status, headers, SystemTime::now());
        let class = self.classifier.classify(&feedback);
        let max = self.parser.get_max_wait();
        let (hold, over_cap) = match (class, feedback.wait()) {
            // Over the cap: hold as long as allowed (so the next requests do not hammer
            // a server that said "much later"); a throttled response fails visibly.
            (Class::Throttled, Err(over)) => (Hold::For(max), Some(over)),
            (Class::Throttled, Ok(Some(wait))) => (Hold::For(wait), None),
            (Class::Throttled, Ok(None)) => (Hold::For(self.fallback_pause.min(max)), None),
            // A success whose quota is spent: hold until the next unit is back, which is
            // the reset it announced unless that is a drained bucket's time until full
            // (see `next_unit`); over the cap, as long as allowed.
            _ if feedback.is_exhausted() => match feedback.next_unit_wait() {
                Ok(Some(wait)) => (Hold::For(wait), None),
                Err(_) => (Hold::Capped(max), None),
                Ok(None) => (Hold::None, None),
            },
            _ => (Hold::None, None),
        };
        let advertised =
            advertised_quota(&feedback).filter(|quota| quota.emission_interval() <= max);
        Verdict {
            feedback,
            class,
            hold,
            over_cap,
            advertised,
        }
    }
}

/// Applies a verdict to a limiter: the pause, and the advertised quota if asked (never
/// faster than `adopt_policy`'s ceiling).
pub(crate) fn apply<St: RateStore>(
    limiter: &RateLimiter<St>,
    verdict: &Verdict,
    adopt_policy: Option<Quota>,
) {
    if let (Some(ceiling), Some(advertised)) = (adopt_policy, verdict.advertised) {
        let current = limiter.quota();
        let quota = if advertised.emission_interval() < ceiling.emission_interval() {
            ceiling
        } else {
            within_burst(adopted(&current, advertised), &ceiling)
        };
        if current != quota {
            limiter.set_quota(quota);
        }
    }
    if let Hold::Capped(wait) = verdict.hold {
        limiter.throttle_for(wait);
    }
    if let Hold::For(wait) = verdict.hold {
        if verdict.class == Class::Throttled {
            // Refused: the client's saved burst is more than the server takes, so it
            // resumes at the rate (not as a burst into the next refusal).
            limiter.throttle_for(wait);
        } else {
            limiter.pause_for(wait);
        }
    }
}

/// `quota` with a burst no larger than the ceiling's: a server that allows 100 a
/// minute lets the client start 100 at once, but a client built to start at most 10
/// at once keeps to that.
fn within_burst(quota: Quota, ceiling: &Quota) -> Quota {
    if quota.burst() <= ceiling.burst() {
        return quota;
    }
    quota.with_burst(ceiling.burst()).unwrap_or(quota)
}

/// The quota a limiter at `current` takes from a server's `advertised` one: the
/// server's rate, with the client's own burst shape.
///
/// A policy (`q` per `w`) says nothing about how much may start at once: a server at
/// 100/s with strict spacing advertises `q=100;w=1` too. So a client that chose a
/// burst below its count (strict spacing, smoothing), or a burst that spans less than
/// a second (`Quota::from_rate(300.0, 1)`), keeps that burst, capped at `q`; a client
/// with the default burst (its count, or more, over a second or more) takes `q`, as a
/// window server admits `q` at once.
pub(crate) fn adopted(current: &Quota, advertised: Quota) -> Quota {
    // The default burst is the count, and the count spans a whole period (a second, a
    // minute). `Quota::from_rate(300.0, 1)` has a count of 1 too, per 3.3 ms: a burst
    // that spans under a second is read as strict spacing, whatever the count says (one
    // of a second or more, `from_rate(0.5, 1)` as `per_second(1)`, as the default).
    let burst_span = current.burst() as f64 * current.emission_interval().as_secs_f64();
    if current.burst() >= current.count() && burst_span >= 1.0 {
        return advertised;
    }
    advertised
        .with_burst(current.burst().min(advertised.count()))
        .unwrap_or(advertised)
}

/// The request policy that paces the client: the one with the shortest window (the
/// tightest rate among those). A longer window (`"daily";q=1000;w=86400` beside
/// `"burst";q=100;w=60`) is a budget, not a pace: taken as the quota, its count would
/// be the client's burst (1000 at once) and its spacing the client's pace (one per
/// 86.4 s for a strictly spaced client). Its exhaustion (`r=0`) still holds the
/// client until its `t`.
pub(crate) fn advertised_quota(feedback: &Feedback) -> Option<Quota> {
    feedback
        .policies
        .iter()
        .filter(|p| p.unit == QuotaUnit::Requests && p.quota > 0)
        .filter_map(|p| Some((p.quota, p.window.filter(|w| !w.is_zero())?)))
        .min_by(|(q1, w1), (q2, w2)| {
            // q1/w1 < q2/w2  <=>  q1*w2 < q2*w1, exact in u128.
            w1.cmp(w2)
                .then((u128::from(*q1) * w2.as_nanos()).cmp(&(u128::from(*q2) * w1.as_nanos())))
        })
        .and_then(|(q, w)| Quota::new(q, w).ok())
}

#[cfg(test)]
mod tests {
    use super::adopted;
    use tower_ratelimit_core::Quota;

    fn quota(q: Result<Quota, tower_ratelimit_core::QuotaError>) -> Quota {
        q.unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_strictly_spaced_client_keeps_its_burst() {
        let advertised = quota(Quota::per_second(200));
        // `from_rate` counts 1 per interval: its burst of 1 is strict spacing.
        let paced = adopted(&quota(Quota::from_rate(300.0, 1)), advertised);
        assert_eq!((paced.count(), paced.burst()), (200, 1));
        let smoothed = adopted(
            &quota(Quota::per_second(300).and_then(|q| q.with_burst(5))),
            advertised,
        );
        assert_eq!(smoothed.burst(), 5);
        // The default burst (a whole second of the count) takes the server's.
        let default = adopted(&quota(Quota::per_second(300)), advertised);
        assert_eq!(default.burst(), 200);
        let slow = adopted(
            &quota(Quota::from_rate(0.5, 1)),
            quota(Quota::per_minute(10)),
        );
        assert_eq!(slow.burst(), 10);
    }
}
