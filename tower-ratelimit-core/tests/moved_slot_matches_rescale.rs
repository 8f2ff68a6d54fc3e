//! A sleeping request's moved slot is where the bucket's debt moved, for
//! random quota pairs (rate up and down, burst up and down), random bookings (inside
//! the old burst, exactly at it, far beyond) and random elapsed time before the
//! change. Checked at the algorithm level: after `rescale`, the next unit a fresh
//! request would get starts exactly one new interval after the last sleeper's moved
//! slot (earlier: over-admission; later: a stall).
//!
//! It failed for `LeakyBucket` when its `rescale` caps the debt at the new
//! burst (GCRA's fill map) while its `moved_slot` is the default proportional map.

use proptest::prelude::*;
use std::time::Duration;
use tower_ratelimit_core::algorithm::{Algorithm, Gcra, LeakyBucket, Reservation};
use tower_ratelimit_core::Quota;

fn quota(count: u64, period_ms: u64, burst: u64) -> Option<Quota> {
    Quota::new(count, Duration::from_millis(period_ms))
        .ok()?
        .with_burst(burst)
        .ok()
}

fn valid_at(r: Reservation) -> u64 {
    match r {
        Reservation::Reserved { valid_at, .. } => valid_at,
        Reservation::TooFar { .. } => panic!("max_wait is u64::MAX"),
    }
}

/// Books `costs` at `t0`, changes the quota at `t0 + elapsed`, and compares the last
/// sleeper's moved slot with the next request's start.
fn check<A: Algorithm>(
    alg: &A,
    old: &Quota,
    new: &Quota,
    costs: &[u64],
    elapsed: u64,
) -> Result<(), TestCaseError> {
    let t0 = 1_000_000_000_000u64;
    let state = alg.new_state(old);
    let mut last = None;
    for &c in costs {
        let c = c.min(old.burst()).min(new.burst()).max(1);
        last = Some((
            valid_at(alg.reserve(&state, old, t0, c, u64::MAX).unwrap()),
            c,
        ));
    }
    let now = t0 + elapsed;
    alg.rescale(&state, old, new, now);
    let Some((slot, _cost)) = last else {
        return Ok(());
    };
    if slot <= now {
        return Ok(()); // not sleeping any more: nothing moves
    }
    let moved = now + alg.moved_slot(old, new, slot - now);
    let next = valid_at(alg.reserve(&state, new, now, 1, u64::MAX).unwrap());
    let t = new.emission_interval().as_nanos() as u64;
    prop_assert!(
        next >= moved,
        "over-admission: a later request starts at +{} ns, before the sleeper's moved slot +{} ns",
        next - now,
        moved - now
    );
    if moved > now {
        prop_assert_eq!(
            next - now,
            moved + t - now,
            "the next start is not one new interval after the sleeper's moved slot"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn gcra_moved_slot_matches_rescale(
        (oc, op, ob) in (1u64..200, 1u64..20_000, 1u64..60),
        (nc, np, nb) in (1u64..200, 1u64..20_000, 1u64..60),
        costs in proptest::collection::vec(1u64..8, 0..80),
        elapsed in 0u64..30_000_000_000,
    ) {
        let (Some(old), Some(new)) = (quota(oc, op, ob), quota(nc, np, nb)) else {
            return Ok(());
        };
        check(&Gcra, &old, &new, &costs, elapsed)?;
    }

    #[test]
    fn leaky_bucket_moved_slot_matches_rescale(
        (oc, op, ob) in (1u64..200, 1u64..20_000, 1u64..60),
        (nc, np, nb) in (1u64..200, 1u64..20_000, 1u64..60),
        n in 0usize..80,
        elapsed in 0u64..30_000_000_000,
    ) {
        let (Some(old), Some(new)) = (quota(oc, op, ob), quota(nc, np, nb)) else {
            return Ok(());
        };
        check(&LeakyBucket, &old, &new, &vec![1; n], elapsed)?;
    }
}
