//! The Lua scripts that decide on the server, one per algorithm, and the numbers
//! they take and give.
//!
//! Each decision is one `EVALSHA` of one script on one key (so Redis Cluster routes
//! it without hash tags); when the server answers `NOSCRIPT` (a restart, a failover,
//! `SCRIPT FLUSH`) the store sends the call once more as an `EVAL` of the source,
//! which decides and caches the script again. Every script reads the server's own `TIME`,
//! so the instances' clocks never matter, and works in integer microseconds, which
//! Lua's doubles hold exactly until the year 2255.
//!
//! The GCRA script is the hot path, and its time inside Redis is most of what a
//! decision costs beyond a `GET`; it is cut to `TIME`, `GET`, a comparison and `SET`,
//! takes its numbers as one packed argument, keeps the TAT as a binary double
//! and answers one integer, from which the client derives the rest (`gcra.lua`
//! explains the encoding; `benches/script-cost.sh` counts its instructions).
//!
//! | algorithm | state per key | expires | offered because |
//! |---|---|---|---|
//! | [`RemoteAlgorithm::Gcra`] | two doubles, 16 bytes: the TAT (whole µs) and the interval it is measured in | one emission interval after the bucket is full again (so a waiter that woke up to an interval late still finds which slot fell due; see `RateStore::check_since`) | the default: exact, cheap, token-bucket semantics |
//! | [`RemoteAlgorithm::FixedWindow`] | hash: window, count, period | at the window's end | to match servers that count per clock window |
//! | [`RemoteAlgorithm::SlidingWindow`] | hash: window, count, previous count, period | at the end of the next window | a smooth window at O(1) state (Cloudflare's estimate) |
//!
//! A wait-mode layer takes one unit when it makes a service ready, before it knows
//! the request's cost, and then books the whole cost (`RateStore::reserve_whole`).
//! Both give back what the readiness units still hold and book the whole cost, in the
//! one call. GCRA's units are time: the client sends the part of them that time
//! cannot have refilled yet (`taken × interval - age`, less a slack of twice the
//! slowest recent round trip, as the client's age is short of the truth by up to two
//! calls), and the script takes that off the TAT, never below now, before it books
//! the cost; unless the TAT's latest slot (`TAT − capacity`) is still ahead of the
//! server's clock. That slot is a booking sleeping there, made after the units by this
//! instance or another (a request held through a pause and re-booked a moment earlier
//! counts: the slack puts its slot just ahead), whose wait the units may have made:
//! what comes off the TAT's end would start the newcomer in its wake, over the quota.
//! The units then stay spent. A request refused its whole cost does not start, so
//! what came off the TAT for it stays off, as in the core's stores. The window scripts take the readiness units, their age as the client
//! measured it and a slack of twice the store's timeout: they give the units back from the window they were taken in (a
//! fixed window's stored window; a sliding counter's current count, or its previous
//! count once the next window began) and book the whole cost, all in the one call,
//! so that every unit counts in the window where the request starts. The client's age
//! is short of the truth by up to two calls, so near a boundary (within the slack of
//! a window's start) it cannot tell which window the units were taken in; they are
//! then left spent, as they are when the window no longer holds them, or when the
//! quota's period changed since. For every algorithm, units the failure policy, not
//! Redis, may have granted (it answered within the slack before they were taken, or
//! since) and units taken before this store's quota last changed (priced at another
//! interval or count) are left spent: the client sends nothing to give back. Left
//! spent, a unit costs the request one unit more, and never admits more.
//!
//! A throttle's drain (`RateStore::drain_until`) is one more script, `drain.lua`, on
//! the GCRA bucket's own key: `TAT := max(TAT, point + capacity − interval)` on the
//! server's `TIME`, where the point is `now + offset`, or the point on the server's
//! clock that a drain task sends if that is earlier (a drain that waited in flight
//! keeps its point), read and written as `gcra.lua` reads and writes the TAT, with
//! the same expiry. It costs about what an admitted check does (44,376 instructions
//! in the server when it writes, against 44,752; 23,318 when the drain point's debt
//! has already run out, and 23,403 for the probe a task sends first for the server's
//! clock: `N=3000 DRAIN=1 benches/script-cost.sh`). The windows keep their counts
//! (see [`crate::store`]).
//!
//! The core's leaky bucket is GCRA with a burst of 1 (use `Gcra` with
//! `quota.with_burst(1)`). The sliding log is not offered: its state grows with the
//! count per period, for every key, which is what a shared store can least afford.
//!
//! ```
//! use tower_ratelimit_core::Quota;
//! use tower_ratelimit_redis::script::RemoteAlgorithm;
//!
//! let quota = Quota::per_second(100)?.with_burst(10)?;
//! // GCRA admits at most the burst at once; windows admit the count per period.
//! assert_eq!(RemoteAlgorithm::Gcra.max_cost(&quota), 10);
//! assert_eq!(RemoteAlgorithm::FixedWindow.max_cost(&quota), 100);
//! # Ok::<(), tower_ratelimit_core::QuotaError>(())
//! ```

pub(crate) mod drain;

use std::time::Duration;
use tower_ratelimit_core::algorithm::Snapshot;
use tower_ratelimit_core::store::Decision;
use tower_ratelimit_core::Quota;

const GCRA: &str = include_str!("gcra.lua");
const FIXED_WINDOW: &str = include_str!("fixed_window.lua");
const SLIDING_WINDOW: &str = include_str!("sliding_window.lua");

/// The algorithms that run on the server. See the [module docs](self).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemoteAlgorithm {
    /// GCRA: a token bucket of `quota.burst()` refilled every emission interval.
    /// The emission interval is rounded up to a whole microsecond, so the rate is
    /// never above the quota's.
    #[default]
    Gcra,
    /// At most `quota.count()` units per window of `quota.period()`, windows
    /// aligned to the Unix epoch. A reservation that does not fit the current window
    /// is booked into the next one (as the core's `FixedWindow` does), and checks are
    /// denied until it starts, so reservations keep their order.
    FixedWindow,
    /// At most about `quota.count()` units in any window of `quota.period()`,
    /// estimated from two fixed windows. A reservation is booked at the earliest
    /// instant it fits, in this window or the next (as the core's `SlidingCounter`).
    SlidingWindow,
}

/// What a script call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Peek = 0,
    Check = 1,
    Reserve = 2,
}

/// A quota in the script's integer terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    /// GCRA: the emission interval; windows: the period (microseconds, at least 1).
    pub(crate) unit_us: u64,
    /// GCRA: the burst; windows: the count per period.
    pub(crate) limit: u64,
}

impl RemoteAlgorithm {
    /// The Lua source of the algorithm's script.
    pub fn source(self) -> &'static str {
        match self {
            RemoteAlgorithm::Gcra => GCRA,
            RemoteAlgorithm::FixedWindow => FIXED_WINDOW,
            RemoteAlgorithm::SlidingWindow => SLIDING_WINDOW,
        }
    }

    /// The largest cost that can ever pass under `quota` (a larger one is
    /// [`StoreError::CostTooLarge`](tower_ratelimit_core::error::StoreError) at once,
    /// without a round trip).
    pub fn max_cost(self, quota: &Quota) -> u64 {
        self.params(quota).limit
    }

    pub(crate) fn params(self, quota: &Quota) -> Params {
        match self {
            RemoteAlgorithm::Gcra => Params {
                unit_us: micros_up(quota.emission_interval()),
                limit: quota.burst(),
            },
            RemoteAlgorithm::FixedWindow | RemoteAlgorithm::SlidingWindow => Params {
                unit_us: micros_up(quota.period()),
                limit: quota.count(),
            },
        }
    }

    /// How much later each extra unit of cost can pass, for the negative cache.
    pub(crate) fn per_unit(self, params: Params) -> Duration {
        match self {
            RemoteAlgorithm::Gcra => Duration::from_micros(params.unit_us),
            RemoteAlgorithm::FixedWindow | RemoteAlgorithm::SlidingWindow => Duration::ZERO,
        }
    }
}

/// Whole microseconds, rounded up, at least 1.
fn micros_up(d: Duration) -> u64 {
    let micros = d.as_nanos().div_ceil(1000);
    u64::try_from(micros).unwrap_or(u64::MAX).max(1)
}

/// How a decision names its script.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Invoke<'a> {
    /// `EVALSHA` of this hash: the script is sent once, then named.
    Hash(&'a str),
    /// `EVAL` of the source: when the server has lost the script.
    Source,
}

/// The `EVALSHA` of one decision: the script's hash, the key, then the algorithm's
/// arguments. Built directly as one command (rather than through
/// `redis::Script::prepare_invoke`, which collects the arguments in vectors of their
/// own and copies them into a command at the call).
pub(crate) fn command(
    algorithm: RemoteAlgorithm,
    invoke: Invoke<'_>,
    key: &[u8],
    request: Request,
) -> redis::Cmd {
    let (verb, script) = match invoke {
        Invoke::Hash(hash) => ("EVALSHA", hash),
        Invoke::Source => ("EVAL", algorithm.source()),
    };
    let mut cmd = redis::Cmd::with_capacity(9, 96 + key.len() + script.len());
    cmd.arg(verb).arg(script).arg(1).arg(key);
    let Request {
        mode,
        params,
        cost,
        max_wait_us,
        backdate_us,
        give_back,
    } = request;
    match algorithm {
        RemoteAlgorithm::Gcra => {
            // A check is a reservation that may not wait; a peek is a check that
            // writes nothing. A backdated decision is made `backdate` earlier, and
            // may then wait up to that long (to now).
            let max_wait_us = if mode == Mode::Reserve {
                max_wait_us
            } else {
                0
            };
            cmd.arg(
                &gcra_args([
                    cost.saturating_mul(params.unit_us),
                    params.limit.saturating_mul(params.unit_us),
                    max_wait_us.saturating_add(backdate_us),
                    backdate_us,
                    params.unit_us,
                ])[..],
            );
            // The plain check and reservation send nothing more, so the hot path
            // reads one argument.
            match mode {
                Mode::Peek => {
                    cmd.arg("peek");
                }
                Mode::Reserve => {
                    let unspent = give_back.gcra_unspent_us(params);
                    if unspent > 0 {
                        cmd.arg(unspent);
                    }
                }
                Mode::Check => {}
            }
        }
        RemoteAlgorithm::FixedWindow | RemoteAlgorithm::SlidingWindow => {
            cmd.arg(mode as u8)
                .arg(params.unit_us)
                .arg(params.limit)
                .arg(cost)
                .arg(max_wait_us);
            if mode == Mode::Reserve && give_back.taken > 0 {
                cmd.arg(give_back.taken)
                    .arg(give_back.age_us)
                    .arg(give_back.slack_us);
            }
        }
    }
    cmd
}

/// GCRA's numbers as the script unpacks them (`struct.unpack('<ddddd', ARGV[1])`):
/// increment, capacity, max_wait, backdate and the interval as little-endian doubles,
/// exact for every value below 2^53 µs (285 years).
fn gcra_args(values: [u64; 5]) -> [u8; 40] {
    let mut packed = [0u8; 40];
    for (slot, value) in packed.chunks_exact_mut(8).zip(values) {
        // Rounds above 2^53, where no quota is meaningful; never panics.
        slot.copy_from_slice(&(value as f64).to_le_bytes());
    }
    packed
}

/// One decision's inputs, as the scripts take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) mode: Mode,
    pub(crate) params: Params,
    pub(crate) cost: u64,
    pub(crate) max_wait_us: u64,
    /// GCRA only: decide as of this long ago (a waiter's head that woke late claims
    /// the slots that fell due while it slept; see `RateStore::check_since`).
    pub(crate) backdate_us: u64,
    /// Reserve only (`RateStore::reserve_whole`): units to give back before the cost
    /// is booked.
    pub(crate) give_back: GiveBack,
}

/// Units a wait-mode request's readiness took, which the scripts give back before
/// booking its whole cost (see `RateStore::reserve_whole`), where they are sure to
/// find them: GCRA the part of them time has not refilled, the windows all of them
/// from the window they were taken in, as the client dates it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GiveBack {
    /// The units taken (0: nothing to give back, and no arguments are sent).
    pub(crate) taken: u64,
    /// How long ago they were taken, on the client's clock: short of the truth by up
    /// to the check's reply and this call's delivery.
    pub(crate) age_us: u64,
    /// How much earlier they may have been taken than `age_us` says: the windows give
    /// the units back only when both instants fall in the same window; GCRA gives
    /// back that much less.
    pub(crate) slack_us: u64,
}

impl GiveBack {
    /// GCRA: how much of the units' time the TAT still holds for sure, in µs. A unit
    /// taken `age` ago ended `interval - age` from now at the latest, counting the
    /// slack against it; a check takes at most the burst, so a larger `taken` cannot
    /// be true and gives back no more than the burst.
    pub(crate) fn gcra_unspent_us(self, params: Params) -> u64 {
        self.taken
            .min(params.limit)
            .saturating_mul(params.unit_us)
            .saturating_sub(self.age_us)
            .saturating_sub(self.slack_us)
    }
}

/// Runs `cmd` (an `EVALSHA`) and, when the server does not know the script
/// (`NOSCRIPT`: a restart, a failover or `SCRIPT FLUSH`), runs `with_source()` (the
/// same call as an `EVAL` of the source) once: that both decides and caches the script
/// again, in one more round trip, and cannot itself answer `NOSCRIPT`, however often
/// the scripts are flushed.
pub(crate) async fn run<C: redis::aio::ConnectionLike>(
    cmd: &redis::Cmd,
    with_source: impl FnOnce() -> redis::Cmd,
    connection: &mut C,
) -> redis::RedisResult<redis::Value> {
    match cmd.query_async(connection).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            with_source().query_async(connection).await
        }
        reply => reply,
    }
}

/// The script's answer as a decision, or `None` when it is not one.
pub(crate) fn decode(
    algorithm: RemoteAlgorithm,
    reply: &redis::Value,
    request: Request,
) -> Option<Decision> {
    match (algorithm, reply) {
        (RemoteAlgorithm::Gcra, redis::Value::Int(n)) => Some(gcra_decision(*n, request)),
        (
            RemoteAlgorithm::FixedWindow | RemoteAlgorithm::SlidingWindow,
            redis::Value::Array(items),
        ) => {
            let mut numbers = [0i64; 6];
            if items.len() != numbers.len() {
                return None;
            }
            for (n, item) in numbers.iter_mut().zip(items) {
                let redis::Value::Int(v) = item else {
                    return None;
                };
                *n = *v;
            }
            decision(&numbers)
        }
        _ => None,
    }
}

/// GCRA's answer: the debt `d` before the call, as `d` when admitted and `-d - 1`
/// when denied. The rest follows as in the script: after the call the debt would be
/// `d + cost × interval`; what exceeds the capacity is the wait (admitted) or the
/// retry-after (denied). A backdated decision's debt is counted from `backdate`
/// ago, so that much less of it remains now.
fn gcra_decision(reply: i64, request: Request) -> Decision {
    let Request {
        params,
        cost,
        backdate_us,
        ..
    } = request;
    let allowed = reply >= 0;
    // -(reply + 1) cannot overflow for any negative i64.
    let before = if allowed { reply } else { -(reply + 1) }.unsigned_abs();
    let capacity = params.limit.saturating_mul(params.unit_us);
    let after = before.saturating_add(cost.saturating_mul(params.unit_us));
    let over = Duration::from_micros(after.saturating_sub(capacity).saturating_sub(backdate_us));
    let owed = if allowed { after } else { before }.saturating_sub(backdate_us);
    let snapshot = Snapshot {
        limit: params.limit,
        remaining: capacity.saturating_sub(owed) / params.unit_us.max(1),
        reset: Duration::from_micros(owed),
    };
    if allowed {
        Decision::Allowed {
            snapshot,
            wait: over,
        }
    } else {
        Decision::Denied {
            retry_after: over,
            snapshot,
        }
    }
}

/// The window scripts' answer:
/// `{allowed, remaining, retry_after_us, reset_us, limit, wait_us}`.
fn decision(reply: &[i64; 6]) -> Option<Decision> {
    let [allowed, remaining, retry_after, reset, limit, wait] = *reply;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let snapshot = Snapshot {
        limit: n(limit),
        remaining: n(remaining),
        reset: Duration::from_micros(n(reset)),
    };
    Some(match allowed {
        1 => Decision::Allowed {
            snapshot,
            wait: Duration::from_micros(n(wait)),
        },
        0 => Decision::Denied {
            retry_after: Duration::from_micros(n(retry_after)),
            snapshot,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_round_up_to_a_microsecond() {
        let Ok(q) = Quota::per_second(3) else {
            panic!()
        };
        assert_eq!(RemoteAlgorithm::Gcra.params(&q).unit_us, 333_334);
        let Ok(q) = Quota::from_rate(1e8, 1) else {
            panic!()
        };
        assert_eq!(RemoteAlgorithm::Gcra.params(&q).unit_us, 1);
    }

    fn array(items: &[i64]) -> redis::Value {
        redis::Value::Array(items.iter().map(|&n| redis::Value::Int(n)).collect())
    }

    fn request(mode: Mode, cost: u64) -> Request {
        Request {
            mode,
            // 10 ms per unit, burst 10: capacity 100 000 µs.
            params: Params {
                unit_us: 10_000,
                limit: 10,
            },
            cost,
            max_wait_us: 0,
            backdate_us: 0,
            give_back: GiveBack::default(),
        }
    }

    #[test]
    fn window_replies_parse_or_are_rejected() {
        let w = RemoteAlgorithm::FixedWindow;
        let r = request(Mode::Check, 1);
        assert!(matches!(
            decode(w, &array(&[1, 4, 0, 6000, 10, 0]), r),
            Some(Decision::Allowed { snapshot, wait }) if snapshot.remaining == 4 && wait.is_zero()
        ));
        assert!(matches!(
            decode(w, &array(&[0, 0, 2500, 100_000, 10, 0]), r),
            Some(Decision::Denied { retry_after, .. }) if retry_after == Duration::from_micros(2500)
        ));
        assert!(decode(w, &array(&[1, 2, 3]), r).is_none());
        assert!(decode(w, &array(&[7, 0, 0, 0, 0, 0]), r).is_none());
        assert!(decode(w, &redis::Value::Int(1), r).is_none());
        assert!(decode(RemoteAlgorithm::Gcra, &array(&[1, 4, 0, 6000, 10, 0]), r).is_none());
    }

    #[test]
    fn gcra_replies_carry_the_debt_and_the_verdict() {
        let g = RemoteAlgorithm::Gcra;
        // Admitted with 25 ms owed before: 35 ms after, 6 units left, no wait.
        match decode(g, &redis::Value::Int(25_000), request(Mode::Check, 1)) {
            Some(Decision::Allowed { snapshot, wait }) => {
                assert_eq!(snapshot.limit, 10);
                assert_eq!(snapshot.remaining, 6);
                assert_eq!(snapshot.reset, Duration::from_millis(35));
                assert!(wait.is_zero());
            }
            other => panic!("{other:?}"),
        }
        // Denied with 95 ms owed: cost 2 would need 15 ms more.
        match decode(g, &redis::Value::Int(-95_001), request(Mode::Check, 2)) {
            Some(Decision::Denied {
                retry_after,
                snapshot,
            }) => {
                assert_eq!(retry_after, Duration::from_millis(15));
                assert_eq!(snapshot.remaining, 0);
                assert_eq!(snapshot.reset, Duration::from_millis(95));
            }
            other => panic!("{other:?}"),
        }
        // A reservation admitted beyond the capacity waits for the excess.
        assert!(matches!(
            decode(g, &redis::Value::Int(120_000), request(Mode::Reserve, 1)),
            Some(Decision::Allowed { wait, .. }) if wait == Duration::from_millis(30)
        ));
        // Extremes neither panic nor wrap.
        for n in [i64::MIN, -1, 0, i64::MAX] {
            assert!(decode(g, &redis::Value::Int(n), request(Mode::Check, u64::MAX)).is_some());
        }
        assert!(decode(g, &redis::Value::Nil, request(Mode::Check, 1)).is_none());
    }

    #[test]
    fn commands_carry_the_arguments_each_script_reads() {
        let args = |algorithm, mode| {
            let mut request = request(mode, 3);
            request.max_wait_us = 500;
            command(algorithm, Invoke::Hash("sha"), b"k", request)
                .args_iter()
                .map(|a| match a {
                    redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                    _ => String::new(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let g = RemoteAlgorithm::Gcra;
        let packed = |max_wait: u64| {
            String::from_utf8_lossy(&gcra_args([30_000, 100_000, max_wait, 0, 10_000])).into_owned()
        };
        assert_eq!(
            args(g, Mode::Check),
            format!("EVALSHA sha 1 k {}", packed(0))
        );
        assert_eq!(
            args(g, Mode::Reserve),
            format!("EVALSHA sha 1 k {}", packed(500))
        );
        assert_eq!(
            args(g, Mode::Peek),
            format!("EVALSHA sha 1 k {} peek", packed(0))
        );
        let numbers: Vec<f64> = gcra_args([30_000, 100_000, 500, 0, 10_000])
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
            .collect();
        assert_eq!(numbers, [30_000.0, 100_000.0, 500.0, 0.0, 10_000.0]);
        assert_eq!(
            args(RemoteAlgorithm::FixedWindow, Mode::Reserve),
            "EVALSHA sha 1 k 2 10000 10 3 500"
        );
    }

    #[test]
    fn only_reservations_carry_units_to_give_back() {
        let args = |algorithm, mode, taken, age_us| {
            let mut request = request(mode, 3);
            request.give_back = GiveBack {
                taken,
                age_us,
                slack_us: 1_000,
            };
            command(algorithm, Invoke::Hash("sha"), b"k", request)
                .args_iter()
                .map(|a| match a {
                    redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                    _ => String::new(),
                })
                .collect::<Vec<_>>()
        };
        for window in [RemoteAlgorithm::FixedWindow, RemoteAlgorithm::SlidingWindow] {
            // EVALSHA sha 1 k, five numbers, then taken, age and slack.
            let sent = args(window, Mode::Reserve, 1, 250_000);
            assert_eq!(sent[9..], ["1", "250000", "1000"], "{window:?}");
            assert_eq!(args(window, Mode::Reserve, 0, 0).len(), 9, "{window:?}");
            assert_eq!(args(window, Mode::Check, 1, 0).len(), 9, "{window:?}");
        }
        // GCRA (10 ms a unit, burst 10) sends what time cannot have refilled yet,
        // after its one packed argument, and only when there is some.
        let g = RemoteAlgorithm::Gcra;
        assert_eq!(args(g, Mode::Reserve, 2, 4_000)[5], "15000");
        assert_eq!(args(g, Mode::Reserve, 2, 0).len(), 6);
        // Taken 2 units ago, or within the slack of a unit ago: nothing.
        assert_eq!(args(g, Mode::Reserve, 2, 20_000).len(), 5);
        assert_eq!(args(g, Mode::Reserve, 1, 9_000).len(), 5);
        assert_eq!(args(g, Mode::Reserve, 0, 0).len(), 5);
        assert_eq!(args(g, Mode::Check, 2, 0).len(), 5);
        // More than the burst cannot have been taken: at most the burst comes back.
        assert_eq!(args(g, Mode::Reserve, u64::MAX, 0)[5], "99000");
        assert_eq!(args(g, Mode::Reserve, u64::MAX, u64::MAX).len(), 5);
    }
}
