//! Tells the overloads that mean "slower" from errors that come at a steady share
//! whatever the rate (a flaky upstream, a bad record, a timeout now and then).
//!
//! An [`Outcome::Overload`](crate::Outcome::Overload) (a 5xx, a timeout, a refused
//! connection) may be the server failing under the client's load, or one of the
//! errors that some share of requests meets at any rate. Read as a throttle, each of
//! the latter cuts the rate and starts a cruise, and a steady 1 % of them held a
//! client of an unlimited server at 48 requests a second where 1,280 were possible.
//! So at 80 answers a second or more, an overload counts as a throttle only when
//! overloads stand out: over the last second they are at least half of the answers,
//! or more than their usual share gives by chance (three standard deviations over what it gives, plus half an
//! overload, or one and a half while cruising under the estimate, where a lone one is
//! more likely chance). On a server that never fails otherwise, the first overload of
//! a probe step stands out, as it should; on one that fails 1 % of 1,280 answers a
//! second, 24 do. Otherwise it is an answer that says nothing about the limit. Under
//! 80 answers a second a second holds too few answers to tell a client's own overload
//! from chance, and a share learned there took the client's own for the background (a
//! capacity falling from 40/s to 10/s left a client 40 % over it): there an overload
//! counts when another came among the last 20 answers, as a client over a capacity
//! meets them, and the usual share (still learned while cruising, a pair learned at a
//! twentieth of the weight) is not consulted. A lone one is as likely background: read as a
//! throttle, each of a random 1 % held a client at 24–56/s, under the 80/s it needed.
//!
//! The usual share is learned while the client cruises under its estimate, where the
//! errors it meets are not of its own making, over half a minute; while they stand out
//! even there (the server's capacity fell) twenty times more slowly, so that a
//! background that rose for good is still learned, in a minute or two.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_adaptive::controller::{Controller, Goodput};
//! use tower_ratelimit_adaptive::Outcome;
//!
//! let ms = Duration::from_millis;
//! let mut c = Goodput::default();
//! // An unlimited server whose every 50th answer is an error, 200 answers a second:
//! // the rate still grows (the first error ends the startup; the cruise after it
//! // learns that 2 % fail at any rate, and the probes go on past them).
//! for i in 0..4_000u64 {
//!     let o = if i % 50 == 49 { Outcome::Overload { latency: ms(50) } } else { Outcome::success(ms(50)) };
//!     c.observe(ms(i * 5), &o);
//! }
//! assert!(c.rate().unwrap() > 100.0);
//! ```

use std::time::Duration;

/// A share of overloads this high is never background: the server fails most
/// requests (it is down, or drowning in them).
const MAJORITY: f64 = 0.5;

/// The recent window, and the span of the usual share.
const RECENT: Duration = Duration::from_secs(1);
const USUAL: Duration = Duration::from_secs(30);

/// The fewest answers over the last second (decayed: a steady rate holds its rate's
/// worth) that tell overloads from chance.
const MIN_ANSWERS: f64 = 80.0;

/// What an answer weighs in the usual share while overloads stand out.
const STANDING_OUT_WEIGHT: f64 = 0.05;

/// Overloads and answers, each weighing less with its age (halving about every
/// 0.7 of the span).
#[derive(Debug, Clone)]
struct Decayed {
    span: f64,
    overloads: f64,
    answers: f64,
    at: Option<Duration>,
}

impl Decayed {
    fn new(span: Duration) -> Decayed {
        Decayed {
            span: span.as_secs_f64(),
            overloads: 0.0,
            answers: 0.0,
            at: None,
        }
    }

    /// Adds an answer of `weight` (1 for a whole one).
    fn add(&mut self, now: Duration, overload: bool, weight: f64) {
        if let Some(at) = self.at {
            let weight = (-now.saturating_sub(at).as_secs_f64() / self.span).exp();
            self.overloads *= weight;
            self.answers *= weight;
        }
        self.at = Some(self.at.map_or(now, |at| at.max(now)));
        self.answers += weight;
        if overload {
            self.overloads += weight;
        }
    }

    fn share(&self) -> f64 {
        if self.answers > 0.0 {
            self.overloads / self.answers
        } else {
            0.0
        }
    }
}

/// Which of the last `PAIR_WINDOW` answers were overloads (a bit each, newest
/// lowest).
const PAIR_WINDOW: u32 = 20;

/// The overload shares of the last second and the usual one.
#[derive(Debug, Clone)]
pub(crate) struct BackgroundErrors {
    recent: Decayed,
    /// The last `PAIR_WINDOW` answers, an overload's bit set.
    last: u32,
    /// Learns at a twentieth of the weight while overloads stand out: the failures
    /// of a server the client pushes too hard must not become its background (the
    /// rate would then stop coming down, and the failures stay), while a background
    /// that rose for good (a flaky upstream got worse) is still learned, in a minute
    /// or two, during which the client cuts its rate where it need not.
    usual: Decayed,
}

impl Default for BackgroundErrors {
    fn default() -> Self {
        BackgroundErrors {
            recent: Decayed::new(RECENT),
            last: 0,
            usual: Decayed::new(USUAL),
        }
    }
}

impl BackgroundErrors {
    /// Records an answer (an overload or not) at `now`, `cruising` under the limit
    /// estimate or not; for an overload, returns whether it stands out from the
    /// background and so says the client is too fast.
    pub(crate) fn says_slower(&mut self, now: Duration, overload: bool, cruising: bool) -> bool {
        // Whether the answer is learned at full weight is decided before it is seen:
        // decided after, an overload would tip the count over more often than a
        // success, and the learned share would stay under the true one.
        let before = self.stands_out(cruising);
        self.recent.add(now, overload, 1.0);
        self.last = (self.last << 1 | u32::from(overload)) & ((1 << PAIR_WINDOW) - 1);
        let stands_out = self.stands_out(cruising);
        if cruising {
            let weight = if before { STANDING_OUT_WEIGHT } else { 1.0 };
            self.usual.add(now, overload, weight);
        }
        overload && stands_out
    }

    /// Two overloads among the last `PAIR_WINDOW` answers: at slow rates, what says
    /// the client is too fast. One alone is as likely a background error (a random
    /// 1 % of them, each read as a throttle, held a client at 24-56/s), while a client
    /// over a capacity meets them in runs.
    fn pair_in_last_answers(&self) -> bool {
        self.last.count_ones() >= 2
    }

    /// Whether the overloads of the last second stand out from the usual share: more
    /// than it gives by chance, about three standard deviations of a Poisson count,
    /// plus a margin for counts too small for that (half an overload: the first of
    /// a probe step says slower on a server that never fails otherwise; one and a half
    /// in a cruise, where a lone one is more likely chance), or at least half of the
    /// answers. Under `MIN_ANSWERS` a second, a pair among the last answers.
    fn stands_out(&self, cruising: bool) -> bool {
        let (overloads, answers) = (self.recent.overloads, self.recent.answers);
        // Under this many answers a second, the test cannot tell a client's own
        // overload from chance (4 load errors among 12 answers pass for a background
        // of a few percent), and would learn them as the background: a pair counts.
        if answers < MIN_ANSWERS {
            return self.pair_in_last_answers();
        }
        let expected = self.usual.share() * answers;
        let margin = if cruising { 1.5 } else { 0.5 };
        overloads > 0.0
            && (overloads >= MAJORITY * answers
                || overloads >= expected + 3.0 * expected.sqrt() + margin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `n` answers 10 ms apart from `from`, every `every`-th an overload; how many
    /// overloads said slower.
    fn feed(errors: &mut BackgroundErrors, from: u64, n: u64, every: u64, cruising: bool) -> usize {
        (from..from + n)
            .filter(|i| errors.says_slower(ms(i * 10), i % every == every - 1, cruising))
            .count()
    }

    #[test]
    fn a_steady_share_of_errors_is_background() {
        let mut errors = BackgroundErrors::default();
        // 100 answers a second, 1 in 50 an error: learned while cruising (once a
        // second holds enough answers to judge)...
        feed(&mut errors, 0, 200, 50, true);
        assert_eq!(feed(&mut errors, 200, 2_800, 50, true), 0);
        // ...and not taken for load when the client probes above its estimate.
        assert_eq!(feed(&mut errors, 3_000, 3_000, 50, false), 0);
    }

    #[test]
    fn a_rise_over_the_usual_share_says_slower() {
        let mut errors = BackgroundErrors::default();
        feed(&mut errors, 0, 3_000, 50, true);
        // Then 1 in 5 fails: overloads stand out within a few of them.
        let first = (3_000..3_200u64)
            .find(|i| errors.says_slower(ms(i * 10), i % 5 == 4, false))
            .expect("a tenfold rise says slower");
        assert!(first < 3_030, "{first}");
    }

    #[test]
    fn on_a_server_that_never_failed_the_first_overload_of_a_probe_says_slower() {
        let mut errors = BackgroundErrors::default();
        feed(&mut errors, 0, 1_000, 1_000_000, true);
        assert!(errors.says_slower(ms(10_000), true, false));
    }

    #[test]
    fn a_server_failing_from_the_start_says_slower() {
        let mut errors = BackgroundErrors::default();
        // Too few answers to judge a share: from the second in a row on.
        let flags: Vec<bool> = (0..3u64)
            .map(|i| errors.says_slower(ms(i), true, false))
            .collect();
        assert_eq!(flags, [false, true, true]);
    }

    #[test]
    fn a_lone_error_in_a_cruise_is_chance() {
        let mut errors = BackgroundErrors::default();
        feed(&mut errors, 0, 3_000, 1_000_000, true);
        assert!(!errors.says_slower(ms(30_000), true, true));
        // A server whose capacity fell: answers keep failing, and soon stand out.
        let flags: Vec<bool> = (1..=3u64)
            .map(|i| errors.says_slower(ms(30_000 + i), true, true))
            .collect();
        assert_eq!(flags, [false, true, true]);
    }

    #[test]
    fn a_background_that_rose_for_good_is_learned() {
        let mut errors = BackgroundErrors::default();
        feed(&mut errors, 0, 3_000, 100, true);
        // 1 in 5 fails from 30 s on, whatever the rate: it stands out at first...
        assert!(feed(&mut errors, 3_000, 500, 5, true) > 50);
        // ...and is the background two and a half minutes later.
        feed(&mut errors, 3_500, 14_500, 5, true);
        assert_eq!(feed(&mut errors, 18_000, 6_000, 5, true), 0);
    }
}
