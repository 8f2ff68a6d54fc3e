//! Simulated servers: how a rate-limited API decides, and what it tells the client.

use std::collections::VecDeque;
use std::time::Duration;

use crate::{Hints, Policy};

/// The limiting algorithm of a simulated server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ServerKind {
    /// A token bucket refilled at the limit, holding `burst_secs` of it.
    TokenBucket {
        /// Bucket size in seconds of the limit (at least one token).
        burst_secs: f64,
    },
    /// At most `round(L · window)` per clock-aligned window.
    FixedWindow {
        /// Window length.
        window: Duration,
    },
    /// At most `round(L · window)` in any sliding window (exact log).
    SlidingLog {
        /// Window length.
        window: Duration,
    },
}

/// What a simulated server sends back besides the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feedback {
    /// Send RateLimit headers (policy, remaining, reset) on every response.
    pub headers: bool,
    /// Send Retry-After (whole seconds, rounded up, at least 1) on 429s.
    pub retry_after: bool,
}

/// The server's answer to one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Accepted (2xx) or refused (429).
    pub accepted: bool,
    /// Retry-After, when sent.
    pub retry_after: Option<Duration>,
    /// Header hints, when sent.
    pub hints: Hints,
}

/// A rate-limited server whose limit can change at any time.
#[derive(Debug, Clone)]
pub struct Server {
    kind: ServerKind,
    feedback: Feedback,
    limit: f64,
    // token bucket
    tokens: f64,
    last: f64,
    // fixed window
    window_index: i64,
    window_count: u64,
    // sliding log
    log: VecDeque<f64>,
}

impl Server {
    /// A server of `kind` with the limit `limit` (requests per second), full at start.
    pub fn new(kind: ServerKind, feedback: Feedback, limit: f64) -> Server {
        let mut s = Server {
            kind,
            feedback,
            limit,
            tokens: 0.0,
            last: 0.0,
            window_index: -1,
            window_count: 0,
            log: VecDeque::new(),
        };
        s.tokens = s.capacity();
        s
    }

    fn capacity(&self) -> f64 {
        match self.kind {
            ServerKind::TokenBucket { burst_secs } => (self.limit * burst_secs).max(1.0),
            _ => 1.0,
        }
    }

    fn window(&self) -> f64 {
        match self.kind {
            ServerKind::FixedWindow { window } | ServerKind::SlidingLog { window } => {
                window.as_secs_f64()
            }
            ServerKind::TokenBucket { .. } => 1.0,
        }
    }

    fn window_quota(&self) -> u64 {
        (self.limit * self.window()).round().max(1.0) as u64
    }

    /// The limit the server really enforces at its current setting, requests per second
    /// (window servers round the quota per window to a whole number).
    pub fn effective_limit(&self) -> f64 {
        match self.kind {
            ServerKind::TokenBucket { .. } => self.limit,
            _ => self.window_quota() as f64 / self.window(),
        }
    }

    /// Changes the limit at time `t` (seconds).
    pub fn set_limit(&mut self, t: f64, limit: f64) {
        if let ServerKind::TokenBucket { .. } = self.kind {
            self.refill(t);
        }
        self.limit = limit.max(1e-6);
        self.tokens = self.tokens.min(self.capacity());
    }

    fn refill(&mut self, t: f64) {
        if t > self.last {
            self.tokens = (self.tokens + (t - self.last) * self.limit).min(self.capacity());
            self.last = t;
        }
    }

    fn policy(&self) -> Policy {
        let w = self.window();
        // Small limits are advertised over a longer window so the quota stays whole.
        let w = if self.limit * w < 10.0 && matches!(self.kind, ServerKind::TokenBucket { .. }) {
            10.0
        } else {
            w
        };
        let q = match self.kind {
            ServerKind::TokenBucket { .. } => (self.limit * w).round().max(1.0) as u64,
            _ => self.window_quota(),
        };
        Policy::new(q, Duration::from_secs_f64(w))
    }

    /// Decides a request arriving at time `t` (seconds, non-decreasing).
    pub fn decide(&mut self, t: f64) -> Verdict {
        let (accepted, wait, remaining, reset) = match self.kind {
            ServerKind::TokenBucket { .. } => {
                self.refill(t);
                let ok = self.tokens >= 1.0;
                if ok {
                    self.tokens -= 1.0;
                }
                let wait = ((1.0 - self.tokens) / self.limit).max(0.0);
                let reset = (self.capacity() - self.tokens) / self.limit;
                (ok, wait, self.tokens.floor() as u64, reset)
            }
            ServerKind::FixedWindow { .. } => {
                let w = self.window();
                let idx = (t / w).floor() as i64;
                if idx != self.window_index {
                    self.window_index = idx;
                    self.window_count = 0;
                }
                let q = self.window_quota();
                let ok = self.window_count < q;
                if ok {
                    self.window_count += 1;
                }
                let reset = (idx + 1) as f64 * w - t;
                (ok, reset, q.saturating_sub(self.window_count), reset)
            }
            ServerKind::SlidingLog { .. } => {
                let w = self.window();
                while self.log.front().is_some_and(|&x| x <= t - w) {
                    self.log.pop_front();
                }
                let q = self.window_quota() as usize;
                let ok = self.log.len() < q;
                if ok {
                    self.log.push_back(t);
                }
                // The oldest entry that must leave before one more fits.
                let over = (self.log.len() + 1).saturating_sub(q);
                let wait = if over == 0 {
                    0.0
                } else {
                    self.log.get(over - 1).map_or(0.0, |&x| x + w - t)
                };
                let reset = self.log.front().map_or(0.0, |&x| x + w - t);
                (ok, wait, (q - self.log.len().min(q)) as u64, reset)
            }
        };
        let retry_after = (!accepted && self.feedback.retry_after)
            .then(|| Duration::from_secs(wait.ceil().max(1.0) as u64));
        let hints = if self.feedback.headers {
            Hints {
                remaining: Some(remaining),
                limit: Some(self.policy().quota),
                reset: Some(Duration::from_secs_f64(reset.max(0.0))),
                policy: Some(self.policy()),
                partition: None,
            }
        } else {
            Hints::default()
        };
        Verdict {
            accepted,
            retry_after,
            hints,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Feedback = Feedback {
        headers: false,
        retry_after: false,
    };

    fn accepted_over(mut s: Server, rate: f64, secs: f64) -> f64 {
        let n = (rate * secs) as usize;
        (0..n)
            .filter(|i| s.decide(*i as f64 / rate).accepted)
            .count() as f64
            / secs
    }

    #[test]
    fn every_model_holds_its_limit() {
        for kind in [
            ServerKind::TokenBucket { burst_secs: 0.1 },
            ServerKind::FixedWindow {
                window: Duration::from_secs(1),
            },
            ServerKind::SlidingLog {
                window: Duration::from_secs(1),
            },
        ] {
            let g = accepted_over(Server::new(kind, NONE, 100.0), 300.0, 20.0);
            assert!((g - 100.0).abs() < 3.0, "{kind:?}: {g}");
        }
    }

    #[test]
    fn retry_after_is_whole_seconds() {
        let fb = Feedback {
            headers: true,
            retry_after: true,
        };
        let mut s = Server::new(ServerKind::TokenBucket { burst_secs: 0.001 }, fb, 1000.0);
        assert!(s.decide(0.0).accepted);
        let v = s.decide(0.0);
        assert!(!v.accepted);
        assert_eq!(v.retry_after, Some(Duration::from_secs(1)));
        assert_eq!(v.hints.policy.map(|p| p.rate()), Some(1000.0));
    }
}
