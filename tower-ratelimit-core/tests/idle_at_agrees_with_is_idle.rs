//! `Algorithm::idle_at` is what a full keyed store tells a refused client: it must be
//! the instant `is_idle` turns true when nothing more is taken, for every algorithm,
//! after any mix of checks, reservations, refunds, drains and quota changes (with
//! the store's rescale, or without one, as a quota function answering otherwise does),
//! from any clock origin.
use proptest::prelude::*;
use std::time::Duration;
use tower_ratelimit_core::algorithm::{
    Algorithm, FixedWindow, Gcra, LeakyBucket, SlidingCounter, SlidingLog,
};
use tower_ratelimit_core::Quota;

#[derive(Debug, Clone)]
enum Op {
    Check {
        cost: u64,
    },
    Reserve {
        cost: u64,
        max_wait: u64,
    },
    Refund {
        cost: u64,
        ago: u64,
    },
    Drain {
        ahead: u64,
    },
    /// To quota `to`, rescaling the state as the store's default-quota change does.
    Rescale {
        to: usize,
    },
    /// To quota `to` with no rescale: a quota function that answers otherwise.
    Swap {
        to: usize,
    },
}

fn quotas() -> Vec<Quota> {
    vec![
        Quota::per_second(1).unwrap(),
        Quota::per_second(5).unwrap().with_burst(2).unwrap(),
        Quota::per_minute(3).unwrap(),
        Quota::new(4, Duration::from_millis(100)).unwrap(),
        Quota::per_hour(2).unwrap(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..4).prop_map(|cost| Op::Check { cost }),
        2 => (1u64..4, 0u64..5_000_000_000).prop_map(|(cost, max_wait)| Op::Reserve { cost, max_wait }),
        1 => (1u64..3, 0u64..2_000_000_000).prop_map(|(cost, ago)| Op::Refund { cost, ago }),
        1 => (0u64..3_000_000_000).prop_map(|ahead| Op::Drain { ahead }),
        1 => (0usize..5).prop_map(|to| Op::Rescale { to }),
        1 => (0usize..5).prop_map(|to| Op::Swap { to }),
    ]
}

/// Runs `ops` (each after its gap) on a fresh state from `origin`; returns the state,
/// its quota and the time after the last op.
fn replay<A: Algorithm>(a: &A, origin: u64, ops: &[(u64, Op)]) -> (A::State, Quota, u64) {
    let quotas = quotas();
    let mut quota = quotas[0];
    let state = a.new_state(&quota);
    let mut now = origin;
    for (gap, op) in ops {
        now = now.saturating_add(*gap);
        match *op {
            Op::Check { cost } => {
                let _ = a.check(&state, &quota, now, cost);
            }
            Op::Reserve { cost, max_wait } => {
                let horizon = a.booking_horizon(&quota);
                let _ = a.reserve(&state, &quota, now, cost, max_wait.min(horizon));
            }
            Op::Refund { cost, ago } => {
                a.refund_taken_at(&state, &quota, cost, now.saturating_sub(ago), now);
            }
            Op::Drain { ahead } => a.drain_until(&state, &quota, now.saturating_add(ahead)),
            Op::Rescale { to } => {
                a.rescale(&state, &quota, &quotas[to], now);
                quota = quotas[to];
            }
            Op::Swap { to } => quota = quotas[to],
        }
    }
    (state, quota, now)
}

fn agrees<A: Algorithm>(a: A, origin: u64, ops: &[(u64, Op)]) -> Result<(), TestCaseError> {
    let (state, quota, now) = replay(&a, origin, ops);
    let at = a.idle_at(&state, &quota);
    if at <= now {
        prop_assert!(
            a.is_idle(&state, &quota, now),
            "idle_at {at} <= now {now}, not idle"
        );
        return Ok(());
    }
    // Looked at once, at `at - 1` or at `at`: each look may re-index a window state.
    let (before, _, _) = replay(&a, origin, ops);
    prop_assert!(
        !a.is_idle(&before, &quota, at - 1),
        "idle 1 ns before idle_at {at} (now {now})"
    );
    prop_assert!(
        a.is_idle(&state, &quota, at),
        "not idle at idle_at {at} (now {now}, {} ns later)",
        at - now
    );
    Ok(())
}

fn ops() -> impl Strategy<Value = Vec<(u64, Op)>> {
    prop::collection::vec((0u64..3_000_000_000, op()), 0..24)
}

fn origin() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        0u64..1u64 << 62,
        Just(1_700_000_000_000_000_000u64)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn gcra(origin in origin(), ops in ops()) {
        agrees(Gcra, origin, &ops)?;
    }

    #[test]
    fn leaky_bucket(origin in origin(), ops in ops()) {
        agrees(LeakyBucket, origin, &ops)?;
    }

    #[test]
    fn fixed_window(origin in origin(), ops in ops()) {
        agrees(FixedWindow, origin, &ops)?;
    }

    #[test]
    fn sliding_counter(origin in origin(), ops in ops()) {
        agrees(SlidingCounter, origin, &ops)?;
    }

    #[test]
    fn sliding_log(origin in origin(), ops in ops()) {
        agrees(SlidingLog, origin, &ops)?;
    }
}
