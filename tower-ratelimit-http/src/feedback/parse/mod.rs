//! The parser: one [`Feedback`] from a response's status and headers.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use http::{HeaderMap, StatusCode};
//! use tower_ratelimit_http::feedback::{FeedbackParser, Profile};
//!
//! // GitHub: the reset is an epoch, measured against the response's own Date.
//! let mut headers = HeaderMap::new();
//! headers.insert("date", "Thu, 01 Jan 2026 00:00:00 GMT".parse().unwrap());
//! headers.insert("x-ratelimit-limit", "60".parse().unwrap());
//! headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
//! headers.insert("x-ratelimit-reset", "1767225630".parse().unwrap()); // Date + 30 s
//! let parser = FeedbackParser::new().profile(Profile::GitHub);
//! let feedback = parser.parse(StatusCode::FORBIDDEN, &headers, SystemTime::now());
//! assert_eq!(feedback.remaining, Some(0));
//! assert_eq!(feedback.wait(), Ok(Some(Duration::from_secs(30))));
//! ```
//!
//! # Precedence
//! An explicit do-not-retry signal sets [`Feedback::do_not_retry`]; the wait is then
//! the first of: millisecond headers, `Retry-After`, the refill time (`t`) of an
//! exhausted IETF policy, a vendor delta of an exhausted dimension, an absolute reset
//! of an exhausted dimension (measured against the response's `Date`). Several values
//! of the same rank: the longest wins. No value: the caller falls back to backoff.
//!
//! # Caps and floors
//! A wait is raised to at least [`FeedbackParser::min_wait`] (so `Retry-After: 0`
//! never gives a hot loop) and a wait above [`FeedbackParser::max_wait`] is an error,
//! [`WaitOverCap`], which the caller sees.

mod anthropic;
pub(crate) mod bytes;
mod collect;
mod ietf;
mod openai;
mod retry_after;
mod shopify;
mod should_retry;
mod time;
mod x_ratelimit;

use crate::feedback::model::{Feedback, WaitOverCap, WaitSource};
use crate::feedback::next_unit;
use collect::Collected;
use http::{HeaderMap, StatusCode};
use std::time::{Duration, SystemTime};
use time::{ResetKind, ResponseTime};

/// How to read the header names that mean different things at different vendors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Profile {
    /// Recognise the vendor by a header only it sends, else guess: a reset value
    /// ≥ 1e12 is epoch milliseconds, ≥ 1e9 epoch seconds, anything smaller a delta in
    /// seconds.
    #[default]
    Auto,
    /// GitHub: `x-ratelimit-reset` is epoch seconds. Its primary quota resets hourly:
    /// a job that may spend it should raise [`FeedbackParser::max_wait`] to an hour, or it
    /// asks again (one request at the quota's rate) every `max_wait` until the reset.
    GitHub,
    /// GitLab: `RateLimit-Reset` is epoch seconds despite the draft's name;
    /// `RateLimit-ResetTime` an HTTP-date.
    GitLab,
    /// Reddit: `x-ratelimit-reset` is a delta in seconds, `remaining` may be `596.0`.
    /// Its window is 10 minutes: raise [`FeedbackParser::max_wait`] to that if a job may
    /// spend it (see [`Profile::GitHub`]).
    Reddit,
    /// Discord: `X-RateLimit-Reset` is a (fractional) epoch; `Reset-After` a delta.
    Discord,
}

impl Profile {
    fn detect(self, headers: &HeaderMap) -> Profile {
        if self != Profile::Auto {
            return self;
        }
        let has = |name: &str| headers.contains_key(name);
        if has("x-ratelimit-resource") {
            Profile::GitHub
        } else if has("ratelimit-resettime") || has("ratelimit-observed") {
            Profile::GitLab
        } else if has("x-ratelimit-bucket") || has("x-ratelimit-reset-after") {
            Profile::Discord
        } else if has("x-ratelimit-used") && !has("x-ratelimit-limit") {
            Profile::Reddit
        } else {
            Profile::Auto
        }
    }

    /// How this profile reads `(x-ratelimit-reset, ratelimit-reset)`.
    fn reset_kinds(self) -> (ResetKind, ResetKind) {
        match self {
            Profile::Auto => (ResetKind::Guess, ResetKind::Guess),
            Profile::GitHub | Profile::Discord => (ResetKind::EpochSeconds, ResetKind::Guess),
            Profile::GitLab => (ResetKind::Guess, ResetKind::EpochSeconds),
            Profile::Reddit => (ResetKind::Delta, ResetKind::Guess),
        }
    }
}

/// Reads rate-limit feedback from responses. Cheap to clone; the configuration is the
/// cap, the floor and the vendor profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackParser {
    max_wait: Duration,
    min_wait: Duration,
    profile: Profile,
}

impl Default for FeedbackParser {
    fn default() -> Self {
        FeedbackParser::new()
    }
}

impl FeedbackParser {
    /// Default cap on any wait: 5 minutes.
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(300);
    /// Default floor on any wait: 100 ms.
    pub const DEFAULT_MIN_WAIT: Duration = Duration::from_millis(100);

    /// A parser with the default cap, floor and [`Profile::Auto`].
    pub fn new() -> FeedbackParser {
        FeedbackParser {
            max_wait: Self::DEFAULT_MAX_WAIT,
            min_wait: Self::DEFAULT_MIN_WAIT,
            profile: Profile::Auto,
        }
    }

    /// Sets the cap: a longer wait is reported as [`WaitOverCap`].
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self.min_wait = self.min_wait.min(max_wait);
        self
    }

    /// Sets the floor every wait is raised to (never above the cap).
    pub fn min_wait(mut self, min_wait: Duration) -> Self {
        self.min_wait = min_wait.min(self.max_wait);
        self
    }

    /// Sets the vendor profile.
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// The configured cap.
    pub fn get_max_wait(&self) -> Duration {
        self.max_wait
    }

    /// The configured floor.
    pub fn get_min_wait(&self) -> Duration {
        self.min_wait
    }

    /// Reads a response. `now` is the local wall clock, used only when the response
    /// has no valid `Date`. Never panics, whatever the header bytes.
    pub fn parse(&self, status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Feedback {
        let time = ResponseTime::new(headers, now);
        let profile = self.profile.detect(headers);
        let (x_reset, ietf_reset) = profile.reset_kinds();
        let mut found = Collected::default();
        retry_after::read(headers, &time, &mut found);
        should_retry::read(headers, &mut found);
        ietf::read(headers, &time, ietf_reset, &mut found);
        x_ratelimit::read(headers, &time, x_reset, &mut found);
        openai::read(headers, &mut found);
        anthropic::read(headers, &time, &mut found);
        shopify::read(headers, &mut found);
        self.finish(status, found)
    }

    fn finish(&self, status: StatusCode, found: Collected) -> Feedback {
        let exhausted_resets = found
            .dimensions
            .iter()
            .filter(|d| d.is_exhausted())
            .filter_map(|d| d.reset.map(|r| (d.reset_source, r)));
        let candidates = found.waits.iter().copied().chain(exhausted_resets);
        // The best-ranked source wins; within it, the longest wait.
        let chosen =
            candidates.fold(
                None,
                |best: Option<(WaitSource, Duration)>, (src, wait)| match best {
                    Some((b, w)) if b < src || (b == src && w >= wait) => Some((b, w)),
                    _ => Some((src, wait)),
                },
            );
        let wait = chosen.map(|(source, wait)| {
            if wait > self.max_wait {
                Err(WaitOverCap {
                    wait,
                    max_wait: self.max_wait,
                    source,
                })
            } else {
                Ok(wait.max(self.min_wait))
            }
        });
        // The most constrained dimension: least remaining, then the longest reset.
        let tightest = found
            .dimensions
            .iter()
            .filter(|d| d.remaining.is_some())
            .min_by(|a, b| a.remaining.cmp(&b.remaining).then(b.reset.cmp(&a.reset)))
            .or_else(|| found.dimensions.first());
        let mut partition = found.partition;
        if partition.key.is_none() {
            partition.key = found.fallback_key;
        }
        let mut feedback = Feedback {
            status,
            wait,
            wait_source: chosen.map(|(source, _)| source),
            next_unit: None,
            limit: tightest.and_then(|d| d.limit),
            remaining: tightest.and_then(|d| d.remaining),
            reset: tightest.and_then(|d| d.reset),
            dimensions: found.dimensions,
            policies: found.policies,
            partition,
            should_retry: found.should_retry,
            do_not_retry: found.do_not_retry,
            grpc_status: found.grpc_status,
        };
        feedback.next_unit = next_unit::shortened(&feedback, self.min_wait, self.max_wait);
        feedback
    }
}
