//! Each controller's reaction to scripted outcome sequences.

use std::time::Duration;

use tower_ratelimit_adaptive::controller::{
    Aimd, AimdConfig, AwsCubic, Controller, Goodput, GoodputConfig, Gradient2, SreThrottle,
};
use tower_ratelimit_adaptive::{Hints, Outcome, Policy};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ok() -> Outcome {
    Outcome::success(ms(20))
}

fn no() -> Outcome {
    Outcome::throttled(ms(20))
}

/// A goodput controller at `limit`/s after its first measured episode: one throttle at
/// 0, then acceptances at `limit`/s until the estimate is made. Returns it and the time
/// of the last response, in seconds.
fn measured_once(limit: f64) -> (Goodput, f64) {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: limit,
        ..GoodputConfig::default()
    });
    c.observe(ms(0), &no());
    let mut t = 0.0;
    while c.estimate().is_none() {
        t += 1.0 / limit;
        c.observe(Duration::from_secs_f64(t), &ok());
    }
    (c, t)
}

/// Acceptances at the rate in use from `t` (seconds) until the controller's rate
/// reaches `rate` (within 1e-9: a probe step); returns the time of the last one.
fn accept_until_rate(c: &mut Goodput, mut t: f64, rate: f64) -> f64 {
    for _ in 0..100_000 {
        if c.rate().unwrap() >= rate - 1e-9 {
            return t;
        }
        t += 1.0 / c.rate().unwrap();
        c.observe(Duration::from_secs_f64(t), &ok());
    }
    panic!("never probed up to {rate}");
}

#[test]
fn aimd_adds_per_second_and_cuts_once_per_round_trip() {
    let mut c = Aimd::new(AimdConfig {
        initial_rate: 10.0,
        increase_per_sec: 5.0,
        backoff: 0.5,
        ..AimdConfig::default()
    });
    c.observe(ms(0), &ok());
    c.observe(ms(2000), &ok());
    assert_eq!(c.rate(), Some(20.0));
    c.observe(ms(2100), &no());
    assert_eq!(c.rate(), Some(10.0));
    // Sent before the cut: same congestion event.
    c.observe(ms(2105), &Outcome::throttled(ms(50)));
    assert_eq!(c.rate(), Some(10.0));
    // Sent after the cut: a new event.
    c.observe(ms(2200), &no());
    assert_eq!(c.rate(), Some(5.0));
}

#[test]
fn aws_cubic_follows_the_sdk_formulas() {
    let mut c = AwsCubic::new();
    // 20 responses per 0.5 s bucket = 40/s measured (smoothed 0.8 per bucket).
    for i in 0..200u64 {
        c.observe(ms(i * 25), &ok());
    }
    assert_eq!(c.rate(), None, "disabled until the first throttle");
    c.observe(ms(5000), &no());
    let after_cut = c.rate().unwrap();
    // new = min(β·measured, 2·measured) with measured ≈ 40.
    assert!((after_cut - 0.7 * 40.0).abs() < 2.0, "{after_cut}");
    // Success right after the cut: W(t) = C(t − K)³ + Wmax with t ≈ 0 < K, so the
    // rate sits below Wmax, and climbs back to Wmax at t = K = ∛(Wmax·0.3/0.4).
    let wmax = after_cut / 0.7;
    let k = (wmax * 0.3 / 0.4).cbrt();
    // Keep responses flowing at 40/s so that the 2·measured cap stays out of the way.
    let end = 5000 + (k * 1000.0) as u64;
    for t in (5025..=end).step_by(25) {
        c.observe(ms(t), &ok());
    }
    c.observe(ms(5000) + Duration::from_secs_f64(k), &ok());
    let at_k = c.rate().unwrap();
    assert!((at_k - wmax).abs() < 1.0, "at K: {at_k} vs Wmax {wmax}");
    // Every throttle cuts again: no de-duplication in the SDK.
    let before = c.rate().unwrap();
    c.observe(ms(5000) + Duration::from_secs_f64(k) + ms(1), &no());
    assert!(c.rate().unwrap() < before);
    // Capacity (burst) = max(rate, 1): about one second of burst.
    assert_eq!(c.burst(), c.rate().unwrap().floor().max(1.0) as u64);
}

#[test]
fn aws_cubic_never_goes_below_the_minimum_fill_rate() {
    let mut c = AwsCubic::new();
    for i in 0..1000u64 {
        c.observe(ms(i), &no());
    }
    assert!(c.rate().unwrap() >= 0.5);
}

#[test]
fn gradient2_ignores_drops_and_shrinks_on_latency() {
    let mut c = Gradient2::default();
    for i in 0..100u64 {
        c.observe(ms(i), &Outcome::success(ms(50)));
    }
    let grown = c.concurrency().unwrap();
    assert!(grown > 20);
    for i in 100..200u64 {
        c.observe(ms(i), &Outcome::Overload { latency: ms(50) });
    }
    assert_eq!(
        c.concurrency().unwrap(),
        grown,
        "drops are ignored, as in Netflix's Gradient2"
    );
    for i in 200..260u64 {
        c.observe(ms(i), &Outcome::success(ms(400)));
    }
    assert!(c.concurrency().unwrap() < grown);
}

#[test]
fn sre_rejects_nothing_while_the_backend_accepts() {
    let mut c = SreThrottle::default();
    for i in 0..1000u64 {
        assert!(c.admit(ms(i), 0.0));
        c.observe(ms(i), &ok());
    }
    assert_eq!(c.reject_probability(ms(1000)), 0.0);
    // History older than two minutes is forgotten.
    for i in 0..3000u64 {
        c.admit(ms(2000 + i / 3), 0.5);
        c.observe(ms(2000 + i / 3), &no());
    }
    assert!(c.reject_probability(ms(3000)) > 0.0);
    assert_eq!(c.reject_probability(Duration::from_secs(200)), 0.0);
}

#[test]
fn goodput_measures_the_share_accepted_while_throttled() {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 100.0,
        ..GoodputConfig::default()
    });
    // The first throttle opens a measurement; after it, 4 of every 5 responses are
    // accepted. The measurement lasts 150 ms (12 responses at 100/s, at least 150 ms):
    // the responses at 1010..=1150 ms, 3 of 15 refused.
    for i in 0..16u64 {
        let o = if i % 5 == 0 { no() } else { ok() };
        c.observe(ms(1000 + i * 10), &o);
    }
    let est = c.estimate().expect("measured");
    // 100 · 12/15; counting the opening throttle too would give 100 · 12/16 = 75.
    assert!((est - 80.0).abs() < 1e-9, "{est}");
    assert!((c.rate().unwrap() - 0.97 * est).abs() < 1e-9);
}

#[test]
fn goodput_scales_what_a_demand_limited_client_really_sent() {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 100.0,
        ..GoodputConfig::default()
    });
    // The rate allows 100/s but the client's queue only holds 50/s of work: responses
    // come every 20 ms. After the opening throttle, 1 in 4 is refused; the 150 ms
    // measurement ends with the 8th response (160 ms, 6 accepted).
    c.observe(ms(1000), &no());
    for i in 1..=8u64 {
        let o = if i % 4 == 0 { no() } else { ok() };
        c.observe(ms(1000 + i * 20), &o);
    }
    let est = c.estimate().expect("measured");
    // 50/s sent, 6/8 accepted; the rate in use would give 100 · 6/8 = 75.
    assert!((est - 37.5).abs() < 1e-9, "{est}");
}

#[test]
fn goodput_counts_an_opening_throttle_that_brought_a_hold() {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 100.0,
        ..GoodputConfig::default()
    });
    // The same answers as above, but the opening 429 carries a Retry-After: the
    // measurement window passes inside the hold it starts, and the answers after a
    // hold are a refilled bucket paying out, so the opening refusal counts.
    let hold = Outcome::Throttled {
        latency: ms(10),
        retry_after: Some(Duration::from_secs(1)),
        hints: Hints::default(),
    };
    c.observe(ms(1000), &hold);
    for i in 1..16u64 {
        let o = if i % 5 == 0 { no() } else { ok() };
        c.observe(ms(1000 + i * 10), &o);
    }
    let est = c.estimate().expect("measured");
    // 100 · 12/16, where the opening throttle without a hold gives 100 · 12/15.
    assert!((est - 75.0).abs() < 1e-9, "{est}");
}

#[test]
fn goodput_probes_multiplicatively_after_cruising() {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 100.0,
        ..GoodputConfig::default()
    });
    let h = Hints::with_policy(Policy::new(1000, Duration::from_secs(1)));
    c.observe(
        ms(0),
        &Outcome::Success {
            latency: ms(10),
            hints: h,
        },
    );
    let cruise = c.rate().unwrap();
    // Feed responses at the rate in use; after the cruise time the rate rises.
    let mut t = 0u64;
    let mut last = cruise;
    let mut rises = Vec::new();
    while t < 8000 {
        let r = c.rate().unwrap();
        t += (1000.0 / r) as u64;
        c.observe(ms(t), &ok());
        let now = c.rate().unwrap();
        if now > last {
            rises.push(now / cruise);
            last = now;
        }
    }
    assert!(!rises.is_empty(), "never probed");
    // Probing is capped by the advertised policy (1000/s).
    assert!(c.rate().unwrap() <= 1000.0 + 1e-9);
}

#[test]
fn goodput_measures_a_whole_window_when_refusals_come_in_one_run() {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 100.0,
        ..GoodputConfig::default()
    });
    // A fixed-window server: the quota ran out, 7 refusals in a row, then the window
    // rolls and everything is accepted. Over the planned 150 ms that looks like 47 %
    // refused; it is only the tail of one window.
    c.observe(ms(1000), &no());
    for i in 1..=15u64 {
        let o = if i <= 7 { no() } else { ok() };
        c.observe(ms(1000 + i * 10), &o);
    }
    assert_eq!(
        c.estimate(),
        None,
        "a share over part of a window was taken"
    );
    // The measurement runs for a whole second (the window guard).
    for i in 16..=100u64 {
        c.observe(ms(1000 + i * 10), &ok());
    }
    let est = c.estimate().expect("measured");
    assert!((est - 93.0).abs() < 1e-9, "{est}");
    // The window the overshoot filled may still refuse for up to a window after the
    // cut: such a refusal is not a new episode (it would measure ~90 here).
    c.observe(ms(2600), &no());
    for i in 1..=30u64 {
        c.observe(ms(2600 + i * 10), &ok());
    }
    assert_eq!(c.estimate(), Some(est));
    assert!((c.rate().unwrap() - 0.97 * est).abs() < 1e-9);
}

#[test]
fn goodput_does_not_take_a_short_run_of_refusals_for_a_window_server() {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 100.0,
        ..GoodputConfig::default()
    });
    // A token bucket just under the rate refuses a few in a row among acceptances:
    // 5 of 15 refused, 3 of them in a row (30 ms of a 1 s window's 100). The share
    // is read at the planned end, 150 ms; stretched over a whole window, the cut
    // came 1 s late (token bucket 0.1 s at 100/s, seed 14: the second after the drop
    // refused 8).
    c.observe(ms(1000), &no());
    let refused = [3, 4, 5, 9, 12];
    for i in 1..=15u64 {
        let o = if refused.contains(&i) { no() } else { ok() };
        c.observe(ms(1000 + i * 10), &o);
    }
    let est = c.estimate().expect("measured at the planned end");
    assert!((est - 100.0 * 10.0 / 15.0).abs() < 1e-9, "{est}");
}

#[test]
fn goodput_takes_a_refusal_soon_after_a_window_measured_nearly_clean_as_news() {
    // A whole-window measurement whose only refusals are a short run at its start,
    // the tail of an earlier window: 10 of 200 refused (the shortest run taken for a
    // window server's at 200/s). The rate hardly overshot.
    let (mut c, first) = window_episode_at(200, 10);
    assert!((first - 190.0).abs() < 1e-9, "{first}");
    // The limit halves 300 ms after the cut: half of what is sent is refused. That is
    // news, not the overshoot's tail (a measurement that refused more than 1 in 20
    // would ignore refusals sent within a window of its cut).
    for i in 0..=110u64 {
        let o = if i % 2 == 0 { no() } else { ok() };
        c.observe(ms(2300 + i * 10), &o);
    }
    let est = c.estimate().unwrap();
    assert!(est < 0.6 * first, "{est} vs {first}");
}

/// Times (s) at which the rate rose while responses arrive at the rate in use, up to
/// `secs`, after one measured episode at `limit`/s put the controller in cruise.
fn probe_rises(limit: f64, secs: f64) -> Vec<f64> {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: limit,
        ..GoodputConfig::default()
    });
    c.observe(ms(0), &no());
    let mut t = 0.0;
    let mut last = c.rate().unwrap();
    let mut rises = Vec::new();
    while t < secs {
        t += 1.0 / c.rate().unwrap();
        c.observe(Duration::from_secs_f64(t), &ok());
        let r = c.rate().unwrap();
        if r > last {
            rises.push(t);
        }
        last = r;
    }
    rises
}

#[test]
fn goodput_probe_steps_hold_enough_responses() {
    let gaps = |r: &[f64]| r.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>();
    // 20/s: 30 responses would take 1.5 s; the first steps last the 0.75 s maximum
    // (plus up to one response gap). Later, larger steps run above 40/s and shorten.
    // The cruise before them holds 120 responses (6.2 s at 19.4/s).
    let slow = probe_rises(20.0, 12.0);
    assert!(slow.len() >= 3, "{slow:?}");
    for g in &gaps(&slow)[..2] {
        assert!((0.75..0.81).contains(g), "{slow:?}");
    }
    // 1000/s: 30 responses take 30 ms; a step lasts the 0.5 s minimum.
    let fast = probe_rises(1000.0, 8.0);
    assert!(fast.len() >= 3, "{fast:?}");
    for g in gaps(&fast) {
        assert!((g - 0.5).abs() < 0.01, "{fast:?}");
    }
}

#[test]
fn goodput_reads_a_window_quota_from_the_run_of_refusals() {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 100.0,
        ..GoodputConfig::default()
    });
    // The quota ran out: refused from the request sent at 980 ms (the one that opens
    // the episode) to the one sent at 1380 ms; the window rolls and the request sent
    // at 1390 ms is accepted, then the next ones.
    c.observe(ms(1000), &no());
    for i in 1..=40u64 {
        c.observe(ms(1000 + i * 10), &no());
    }
    for i in 41..=43u64 {
        c.observe(ms(1000 + i * 10), &ok());
        assert_eq!(c.estimate(), None, "confirmed too early");
    }
    c.observe(ms(1440), &ok());
    // Sending at 100/s, refused for 0.41 s of a 1 s window: 59 per window.
    let est = c.estimate().expect("read from the run");
    assert!((est - 59.0).abs() < 1e-6, "{est}");
    assert!((c.rate().unwrap() - 0.97 * est).abs() < 1e-9);
}

#[test]
fn goodput_does_not_take_a_shared_bucket_for_a_window_roll() {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 100.0,
        ..GoodputConfig::default()
    });
    // A run of refusals, then acceptances and refusals alternating (other clients
    // take the tokens): only half accepted after the "roll", so it is not one.
    c.observe(ms(1000), &no());
    for i in 1..=12u64 {
        c.observe(ms(1000 + i * 10), &no());
    }
    for i in 13..=16u64 {
        let o = if i % 2 == 1 { ok() } else { no() };
        c.observe(ms(1000 + i * 10), &o);
    }
    assert_eq!(c.estimate(), None, "the measurement goes on");
}

#[test]
fn goodput_reads_a_window_quota_after_a_probe_overshoot_that_was_a_drop() {
    // One episode at 100/s (nothing refused after the opening throttle): cruise at 97.
    let (mut c, mut t) = measured_once(100.0);
    let cruise = c.rate().unwrap();
    // Responses at the rate in use until the first probe step (bounded loop).
    t = accept_until_rate(&mut c, t, cruise * 1.04 + 1e-9);
    let probing = c.rate().unwrap();
    assert!(probing > cruise * 1.04, "never probed");
    // The window server's limit falls: refused from the request sent at t0 − 20 ms for
    // 0.51 s (the probe step reverts at once), then its window rolls.
    let t0 = (t * 1000.0).ceil() as u64 + 10;
    for i in 0..=50u64 {
        c.observe(ms(t0 + i * 10), &no());
    }
    assert!(c.rate().unwrap() < probing, "the step reverts");
    for i in 51..=54u64 {
        c.observe(ms(t0 + i * 10), &ok());
    }
    // The quota of the window: 0.49 of the probing rate, not the step before it.
    let est = c.estimate().unwrap();
    assert!((est - probing * 0.49).abs() < 1e-6, "{est} vs {probing}");
}

#[test]
fn goodput_measures_whole_windows_once_the_server_showed_one() {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 100.0,
        ..GoodputConfig::default()
    });
    // A fixed-window episode (refusals in one run, then the window rolls).
    c.observe(ms(1000), &no());
    for i in 1..=100u64 {
        let o = if i <= 7 { no() } else { ok() };
        c.observe(ms(1000 + i * 10), &o);
    }
    let first = c.estimate().expect("measured");
    // A later episode with refusals spread out: on a token bucket 150 ms would do;
    // here it runs for a whole window.
    c.observe(ms(4000), &no());
    for i in 1..=30u64 {
        let o = if i % 5 == 0 { no() } else { ok() };
        c.observe(ms(4000 + i * 10), &o);
    }
    assert_eq!(c.estimate(), Some(first), "ended before a whole window");
    for i in 31..=100u64 {
        let o = if i % 5 == 0 { no() } else { ok() };
        c.observe(ms(4000 + i * 10), &o);
    }
    let est = c.estimate().unwrap();
    assert!(est < first, "{est} vs {first}");
}

/// Seconds from a probe step that overshot to the next rise of the rate, when the
/// step that overshot is the first one at least `step` times the cruise it started
/// from, after a first episode at `limit`/s (responses at the rate in use, nothing
/// refused after that one throttle).
fn cruise_after_overshoot(limit: f64, step: f64) -> f64 {
    // One episode with nothing refused after the opening throttle: cruise at 0.97 L.
    let (mut c, t) = measured_once(limit);
    overshoot_then_cruise(&mut c, t, step)
}

/// Seconds from a probe step that overshot to the next rise of the rate, when the
/// step that overshot is the first one at least `step` times the cruise the
/// controller is in at `t` (responses at the rate in use, nothing refused until then).
fn overshoot_then_cruise(c: &mut Goodput, mut t: f64, step: f64) -> f64 {
    let cruise = c.rate().unwrap();
    t = accept_until_rate(c, t, cruise * step);
    t += 10.0 / c.rate().unwrap();
    c.observe(Duration::from_secs_f64(t), &no());
    let (cut, after) = (t, c.rate().unwrap());
    assert!(after < cruise * step, "the step reverts");
    while c.rate().unwrap() <= after && t < cut + 60.0 {
        t += 1.0 / c.rate().unwrap();
        c.observe(Duration::from_secs_f64(t), &ok());
    }
    t - cut
}

#[test]
fn goodput_probes_again_soon_after_a_wide_step_overshot() {
    // The first step (+5 %) overshot: the limit is within 5 % of the cruise; the
    // usual 3 s cruise follows.
    let narrow = cruise_after_overshoot(1000.0, 1.05);
    assert!((3.0..3.01).contains(&narrow), "{narrow}");
    // The +35 % step overshot after +15 % passed: the limit rose and lies in a 17 %
    // bracket; probing resumes after half a second.
    let wide = cruise_after_overshoot(1000.0, 1.35);
    assert!((0.5..0.51).contains(&wide), "{wide}");
    // The same at 100/s: the step that passed held ~56 responses, too few to act on.
    let slow = cruise_after_overshoot(100.0, 1.35);
    assert!((3.0..3.05).contains(&slow), "{slow}");
}

#[test]
fn goodput_probes_again_soon_after_a_very_wide_step_overshot_at_100_per_second() {
    // The +75 % step overshot after +35 % passed: the limit rose by a third or more.
    // At 100/s the step that passed held ~65 responses: probing resumes after half a
    // second (a 3 s cruise at 0.97 of that floor cost demand at 100/s its convergence
    // after the doubling, and a 1 s one still did on 137 of 300 seeds, 91 with 0.5 s).
    let very_wide = cruise_after_overshoot(100.0, 1.75);
    assert!((0.5..0.55).contains(&very_wide), "{very_wide}");
    // A client with a share of a limit (40/s): the step that passed held ~26
    // responses, and probing sooner would draw refusals on the others.
    let share = cruise_after_overshoot(40.0, 1.75);
    assert!(share >= 3.0, "{share}");
}

/// A controller cruising under 25/s that then measured a fall (half of its answers
/// refused); returns it and the time of the cut, in seconds.
fn cut_by_a_fall() -> (Goodput, f64) {
    let (mut c, mut t) = measured_once(25.0);
    let before = c.rate().unwrap();
    for i in 0..1000 {
        t += 1.0 / before;
        let o = if i % 2 == 0 { no() } else { ok() };
        c.observe(Duration::from_secs_f64(t), &o);
        if c.rate().unwrap() < before {
            return (c, t);
        }
    }
    panic!("the fall was never measured");
}

#[test]
fn goodput_recuts_at_once_when_refused_soon_after_a_fall() {
    // Clients sharing a fallen limit read shares that over-sum: a refusal within
    // 1.5 s of the cut takes a tenth off at once instead of measuring again.
    let (mut c, t) = cut_by_a_fall();
    let cut = c.rate().unwrap();
    assert!(cut < 14.0, "{cut}");
    let mut now = t;
    while now < t + 0.5 {
        now += 1.0 / cut;
        c.observe(Duration::from_secs_f64(now), &ok());
    }
    c.observe(Duration::from_secs_f64(now + 0.01), &no());
    let recut = c.rate().unwrap();
    assert!((recut - 0.9 * cut).abs() < 1e-9, "{recut} vs {cut}");
    // Later, a refusal opens a measurement as before: the rate holds until it ends.
    let (mut c, t) = cut_by_a_fall();
    let mut now = t;
    while now < t + 2.0 {
        now += 1.0 / cut;
        c.observe(Duration::from_secs_f64(now), &ok());
    }
    c.observe(Duration::from_secs_f64(now + 0.01), &no());
    assert_eq!(c.rate().unwrap(), cut);
}

/// Seconds from the end of a first measured episode at `limit`/s to the first probe
/// step, with responses arriving at the rate in use.
fn cruise_secs(limit: f64) -> f64 {
    let (mut c, mut t) = measured_once(limit);
    let (cut, cruise) = (t, c.rate().unwrap());
    while c.rate().unwrap() <= cruise && t < cut + 60.0 {
        t += 1.0 / c.rate().unwrap();
        c.observe(Duration::from_secs_f64(t), &ok());
    }
    t - cut
}

#[test]
fn goodput_slow_clients_cruise_for_enough_responses() {
    // 100/s: the 3 s cruise holds 300 responses; the first step follows it.
    let fast = cruise_secs(100.0);
    assert!((3.0..3.05).contains(&fast), "{fast}");
    // 5/s: 60 responses would take 12 s; the cruise lasts the 5 s maximum (the step
    // comes with the second response after it, 0.2 s apart).
    let slow = cruise_secs(5.0);
    assert!((5.0..5.5).contains(&slow), "{slow}");
}

#[test]
fn sre_counts_answers_the_backend_processed_as_accepts() {
    let mut c = SreThrottle::default();
    // 404s and the like (`Ignored`) were processed: they are not rejections.
    for i in 0..200u64 {
        assert!(c.admit(ms(i), 0.5));
        c.observe(ms(i), &Outcome::Ignored);
    }
    assert_eq!(c.reject_probability(ms(200)), 0.0);
}

/// Cruises at the rate it holds while successes arrive every 10 ms from `from` to
/// `to`, and returns the rate at the end.
fn cruise(c: &mut Goodput, from: Duration, to: Duration) -> f64 {
    let mut t = from;
    while t < to {
        c.observe(t, &ok());
        t += ms(10);
    }
    c.rate().expect("a rate")
}

#[test]
fn goodput_probes_again_within_minutes_of_any_hold() {
    for hold in [
        Duration::from_secs(300),
        Duration::from_secs(u64::MAX / 30),
        Duration::MAX,
    ] {
        let mut c = Goodput::new(GoodputConfig {
            initial_rate: 100.0,
            ..GoodputConfig::default()
        });
        c.observe(
            ms(1000),
            &Outcome::Throttled {
                latency: ms(10),
                retry_after: Some(hold),
                hints: Hints::default(),
            },
        );
        let settled = cruise(&mut c, ms(1010), Duration::from_secs(5));
        assert!(settled.is_finite() && settled > 0.0, "{hold:?}: {settled}");
        // Five minutes of cruise at most, then it probes upward again.
        let later = cruise(&mut c, Duration::from_secs(5), Duration::from_secs(420));
        assert!(later > settled, "{hold:?}: still {later} after 7 minutes");
    }
}

/// The rate the revert chose and the rate after a measurement that opens right after
/// a probe step overshot on a window server and refuses `refused` (1 to 100, spread
/// out) of its 100 responses.
fn rate_after_tail_measurement(refused: u64) -> (f64, f64) {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 100.0,
        ..GoodputConfig::default()
    });
    // A window server's episode (a run of refusals, then the window rolls).
    c.observe(ms(1000), &no());
    for i in 1..=100u64 {
        let o = if i <= 7 { no() } else { ok() };
        c.observe(ms(1000 + i * 10), &o);
    }
    let cruise = c.rate().unwrap();
    // Responses at the rate in use until the second probe step (+15 %).
    let mut t = 2.0;
    t = accept_until_rate(&mut c, t, cruise * 1.15);
    // It overshoots: back to 0.97 times the first step, which passed.
    t += 0.1;
    c.observe(Duration::from_secs_f64(t), &no());
    let reverted = c.rate().unwrap();
    assert!((reverted - 0.97 * 1.05 * cruise).abs() < 1e-9, "{reverted}");
    // The overshoot's tail: a request sent after the revert is accepted, the next
    // refused, and a whole-window measurement follows.
    c.observe(Duration::from_secs_f64(t + 0.03), &ok());
    c.observe(Duration::from_secs_f64(t + 0.04), &no());
    let every = 100 / refused.clamp(1, 100);
    for i in 1..=100u64 {
        let o = if i % every == 0 { no() } else { ok() };
        c.observe(Duration::from_secs_f64(t + 0.04 + i as f64 * 0.01), &o);
    }
    (reverted, c.rate().unwrap())
}

#[test]
fn goodput_keeps_the_reverted_rate_when_the_overshoot_tail_hardly_refuses() {
    // 1 refusal in 100: the rate the revert chose was fine. Cutting `cruise` again
    // (0.97 · 0.99 of it) ratcheted a sliding log's rate down at every probe.
    let (reverted, after) = rate_after_tail_measurement(1);
    assert!((after - reverted).abs() < 1e-9, "{after} vs {reverted}");
    // 5 in 100 is a measurement like any other: 0.97 · 0.95 of the rate in use.
    let (reverted, after) = rate_after_tail_measurement(5);
    assert!(
        (after - 0.97 * 0.95 * reverted).abs() < 1e-9,
        "{after} vs {reverted}"
    );
}

/// After a +35 % probe step overshot at 1000/s (the limit rose), a measurement opens
/// 40 ms later and refuses `refused` of its ~150 responses (spread out). Returns the
/// rate the revert chose, the rate after the measurement, and the seconds from the
/// overshoot to the next probe step.
fn wide_overshoot_then_tail(refused: u64) -> (f64, f64, f64) {
    let (mut c, mut t) = measured_once(1000.0);
    let cruise = c.rate().unwrap();
    t = accept_until_rate(&mut c, t, cruise * 1.35);
    t += 0.01;
    c.observe(Duration::from_secs_f64(t), &no());
    let (cut, reverted) = (t, c.rate().unwrap());
    assert!((reverted - 0.97 * 1.15 * cruise).abs() < 1e-9, "{reverted}");
    // The overshoot's tail on a token bucket: one request sent after the revert is
    // accepted, the next is refused and opens a measurement.
    c.observe(Duration::from_secs_f64(t + 0.03), &ok());
    c.observe(Duration::from_secs_f64(t + 0.04), &no());
    t += 0.04;
    let every = 150 / refused.clamp(1, 150);
    let before = c.estimate();
    let mut i = 0u64;
    while c.estimate() == before && i < 1000 {
        i += 1;
        t += 0.001;
        let o = if i % every == 0 { no() } else { ok() };
        c.observe(Duration::from_secs_f64(t), &o);
    }
    let after = c.rate().unwrap();
    while c.rate().unwrap() <= after && t < cut + 60.0 {
        t += 1.0 / c.rate().unwrap();
        c.observe(Duration::from_secs_f64(t), &ok());
    }
    (reverted, after, t - cut)
}

#[test]
fn goodput_keeps_the_short_cruise_when_a_wide_overshoot_tail_hardly_refuses() {
    // 1 refusal in ~150: the overshoot's tail. The rate stays where the revert put it
    // and probing resumes half a second after the overshoot, as without that
    // measurement.
    let (reverted, after, next) = wide_overshoot_then_tail(1);
    assert!((after - reverted).abs() < 1e-9, "{after} vs {reverted}");
    assert!((0.5..0.51).contains(&next), "{next}");
    // 1 in 15 refused: a real measurement, with its cut and the usual 3 s cruise.
    let (reverted, after, next) = wide_overshoot_then_tail(10);
    assert!(after < 0.97 * 0.95 * reverted, "{after} vs {reverted}");
    assert!(next > 3.0, "{next}");
}

/// Whether a measurement opened at 5 s spans a whole window, after a whole-window
/// measurement (1 s to 2 s) and, 300 ms after its cut, a throttle whose whole-window
/// measurement refuses 6 requests: all in its first half, or the last one in its
/// second half.
fn whole_window_after_echo(all_early: bool) -> bool {
    whole_window_after_echo_opened_by(all_early, no())
}

fn whole_window_after_echo_opened_by(all_early: bool, opener: Outcome) -> bool {
    let (mut c, second) = echo_episodes_opened_by(all_early, opener);
    // A later episode, still in the cruise, with refusals spread out: is it still
    // measuring after 480 ms (a short one lasts 150–300 ms)?
    c.observe(ms(5000), &no());
    for i in 1..=40u64 {
        let o = if i % 5 == 0 { no() } else { ok() };
        c.observe(ms(5000 + i * 12), &o);
    }
    c.estimate() == Some(second)
}

/// A whole-window measurement (1 s to 2 s), then, 300 ms after its cut, a throttle
/// whose whole-window measurement refuses 6 requests: all in its first half (a
/// sliding log's echo), or the last one in its second half. Returns the controller,
/// cruising, and its estimate.
fn echo_episodes(all_early: bool) -> (Goodput, f64) {
    echo_episodes_opened_by(all_early, no())
}

/// [`echo_episodes`] with the second measurement opened by `opener`.
fn echo_episodes_opened_by(all_early: bool, opener: Outcome) -> (Goodput, f64) {
    let (mut c, first) = overshoot_measured_over_a_window();
    assert_eq!(first, 85.0);
    // Under that rate the server still refuses: a sliding log's entries of the
    // window before expire, then it accepts everything.
    c.observe(ms(2300), &opener);
    for i in 1..=84u64 {
        let refused = if all_early {
            i <= 12 && i % 2 == 0
        } else {
            (i <= 10 && i % 2 == 0) || i == 60
        };
        let o = if refused { no() } else { ok() };
        c.observe(ms(2300 + i * 12), &o);
    }
    let second = c.estimate().expect("measured");
    assert!(second < 85.0, "{second}");
    (c, second)
}

/// An overshoot at 100/s from 1 s: 3 of 4 refused at the planned end (150 ms), so the
/// measurement runs for a whole window; 85 of 100 accepted, the refusals spread (no
/// window server seen). The controller, cruising from 2 s, and its estimate.
fn overshoot_measured_over_a_window() -> (Goodput, f64) {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 100.0,
        ..GoodputConfig::default()
    });
    c.observe(ms(1000), &no());
    for i in 1..=100u64 {
        let o = if i <= 20 && i % 4 != 0 { no() } else { ok() };
        c.observe(ms(1000 + i * 10), &o);
    }
    let e = c.estimate().expect("measured");
    (c, e)
}

/// Whether the measurement `opener` starts 300 ms after a whole-window measurement's
/// cut has ended 720 ms later (responses every 12 ms, one in five refused).
fn echo_measurement_ended_by(opener: Outcome) -> bool {
    let (mut c, first) = overshoot_measured_over_a_window();
    c.observe(ms(2300), &opener);
    for i in 1..=60u64 {
        let o = if i % 5 == 0 { no() } else { ok() };
        c.observe(ms(2300 + i * 12), &o);
    }
    c.estimate() != Some(first)
}

#[test]
fn goodput_stretches_a_possible_echo_only_when_no_hold_ends_it() {
    // Soon after a whole-window cut a throttle may be a sliding log's echo, so its
    // measurement spans a window; not when it brings a Retry-After, since the hold
    // then ends the refusals and the verdict would be thrown away.
    assert!(!echo_measurement_ended_by(no()), "not stretched");
    let hold = Outcome::Throttled {
        latency: ms(20),
        retry_after: Some(Duration::from_millis(200)),
        hints: Hints::default(),
    };
    assert!(echo_measurement_ended_by(hold), "stretched across a hold");
}

#[test]
fn goodput_takes_refusals_that_stop_halfway_through_a_window_for_a_window_server() {
    // A throttle right after a whole-window measurement's cut, whose refusals all come
    // in the first half of the window after it: the server remembers the window
    // before (a sliding log). Every measurement from then on spans a whole window.
    assert!(whole_window_after_echo(true), "ended before a whole window");
    // One of them in the second half: refusals that go on, as a token bucket's
    // would under a rate over its limit; measurements stay short.
    assert!(
        !whole_window_after_echo(false),
        "a window server was assumed"
    );
    // Refusals that stop early because a Retry-After held the client: the hold, not
    // the server's memory, ended them (a token bucket), so no sliding log is assumed.
    let hold = Outcome::Throttled {
        latency: ms(20),
        retry_after: Some(Duration::from_millis(200)),
        hints: Hints::default(),
    };
    assert!(
        !whole_window_after_echo_opened_by(true, hold),
        "a sliding log was assumed from refusals a hold ended"
    );
}

/// The estimate after a drop at 4 s on a window server: refused from the request
/// sent at 3980 ms to the one sent at 4370 ms, then the window rolls and of the next
/// four responses two are accepted. The server was recognised as a sliding log (its
/// refusals stopped halfway through a window) or only as some window server (one
/// run of refusals in a whole-window measurement).
fn drop_with_a_half_accepted_roll(sliding_log: bool) -> (f64, f64, Option<f64>) {
    let (mut c, before) = if sliding_log {
        echo_episodes(true)
    } else {
        fixed_window_episode()
    };
    let r0 = c.rate().unwrap();
    c.observe(ms(4000), &no());
    for i in 1..=40u64 {
        c.observe(ms(4000 + i * 10), &no());
    }
    for (i, accepted) in [(41u64, true), (42, true), (43, false), (44, false)] {
        let o = if accepted { ok() } else { no() };
        c.observe(ms(4000 + i * 10), &o);
    }
    let after = c.estimate();
    (
        r0,
        before,
        (after != Some(before)).then_some(after).flatten(),
    )
}

#[test]
fn goodput_confirms_a_sliding_log_roll_with_half_accepted() {
    // A sliding log accepts after its roll only as fast as the entries of a window
    // earlier expire, so refusals still come between the acceptances: half of the
    // next four accepted confirms the quota read from the run, 0.59 of the rate.
    let (r0, _, est) = drop_with_a_half_accepted_roll(true);
    let est = est.expect("the roll was not confirmed");
    assert!((est - 0.59 * r0).abs() < 1e-6, "{est} vs {r0}");
    // On a server only known to count in windows, a fixed window accepts everything
    // after its roll: half refused is not one, and the measurement goes on.
    let (_, before, est) = drop_with_a_half_accepted_roll(false);
    assert_eq!(est, None, "{before}");
}

/// A fixed-window episode from 1 s (7 refusals in one run, then the window rolls):
/// the controller, cruising from 2 s, and its estimate.
fn fixed_window_episode() -> (Goodput, f64) {
    window_episode(7)
}

/// A whole-window episode at 100/s from 1 s whose refusals are one run of `run` at
/// its start: the controller, cruising from 2 s, and its estimate.
fn window_episode(run: u64) -> (Goodput, f64) {
    window_episode_at(100, run)
}

/// As `window_episode`, at `rate`/s (a divisor of 1000).
fn window_episode_at(rate: u64, run: u64) -> (Goodput, f64) {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: rate as f64,
        ..GoodputConfig::default()
    });
    c.observe(ms(1000), &no());
    for i in 1..=rate {
        let o = if i <= run { no() } else { ok() };
        c.observe(ms(1000 + i * (1000 / rate)), &o);
    }
    let e = c.estimate().expect("measured");
    (c, e)
}

/// The estimate 550 ms into a measurement opened at 4 s on a window server: ten
/// acceptances, then `run` refusals in a row (the limit fell), then the window rolls
/// and four acceptances follow. `None` while the measurement goes on.
fn run_inside_a_measurement(run: u64) -> (f64, Option<f64>) {
    let (mut c, before) = fixed_window_episode();
    let r0 = c.rate().unwrap();
    c.observe(ms(4000), &no());
    let mut t = 4000;
    for i in 0..10 + run + 4 {
        t += 10;
        let o = if (10..10 + run).contains(&i) {
            no()
        } else {
            ok()
        };
        c.observe(ms(t), &o);
    }
    let after = c.estimate();
    (r0, (after != Some(before)).then_some(after).flatten())
}

#[test]
fn goodput_reads_a_window_quota_from_a_run_inside_a_measurement() {
    // The limit fell while a measurement was under way (its first refusal was the
    // tail of a probe): a run of 40 refusals from the request sent at 4090 ms, and
    // the window rolls at 4490 ms. Read like a leading run: 0.6 of the rate, at once.
    let (r0, est) = run_inside_a_measurement(40);
    let est = est.expect("not read from the run");
    assert!((est - 0.6 * r0).abs() < 1e-6, "{est} vs {r0}");
    // A run of 15 (0.15 s) would put the quota over 0.8 of the rate: not a drop but
    // the window's own tail, left to the measurement over the whole window.
    assert_eq!(run_inside_a_measurement(15).1, None);
}

/// The estimate after a measurement opened at 4 s on a window server that accepts
/// everything until 4890 ms, then refuses from the request sent at 4880 ms for
/// 0.41 s (the limit fell just before the measurement's planned end), then rolls:
/// the rate and the estimate once four acceptances followed the roll.
fn drop_at_the_end_of_a_measurement(sliding_log: bool) -> (f64, f64) {
    let (mut c, _) = if sliding_log {
        echo_episodes(true)
    } else {
        fixed_window_episode()
    };
    let r0 = c.rate().unwrap();
    c.observe(ms(4000), &no());
    for i in 1..=134u64 {
        let o = if (90..=130).contains(&i) { no() } else { ok() };
        c.observe(ms(4000 + i * 10), &o);
    }
    (r0, c.estimate().unwrap())
}

#[test]
fn goodput_waits_for_the_roll_of_a_run_still_going_when_a_measurement_ends() {
    // On a sliding log the measurement goes on past its whole window while the run
    // lasts, and the roll reads the new quota: 0.59 of the rate.
    let (r0, est) = drop_at_the_end_of_a_measurement(true);
    assert!((est - 0.59 * r0).abs() < 1e-6, "{est} vs {r0}");
    // A fixed window's measurement is not stretched (each of its windows ends in
    // such a run): it ends at 5 s with 89 accepted and 11 refused.
    let (r0, est) = drop_at_the_end_of_a_measurement(false);
    assert!((est - r0 * 0.89).abs() < 1e-6, "{est} vs {r0}");
}

#[test]
fn goodput_probes_again_soon_after_a_wide_step_overshot_a_sliding_log() {
    // At about 70/s on a server whose refusals stopped halfway through a window (a
    // sliding log): the +35 % step overshot after +15 % passed, and probing resumes
    // after half a second, as it does at 400/s and more. The limit rose into a wide bracket,
    // and a 3 s cruise at 0.97 of its floor kept a rise from converging in 10 s.
    let (mut c, _) = echo_episodes(true);
    assert!(c.rate().unwrap() < 100.0);
    let wide = overshoot_then_cruise(&mut c, 3.4, 1.35);
    assert!((0.5..0.55).contains(&wide), "{wide}");
    // On a fixed window (one run of refusals) the cruise stays 3 s at that rate.
    let (mut c, _) = fixed_window_episode();
    let wide = overshoot_then_cruise(&mut c, 2.1, 1.35);
    assert!((3.0..3.05).contains(&wide), "{wide}");
}

#[test]
fn goodput_estimates_stay_within_the_configured_rates() {
    // A server's policy is taken as the limit, and a change in it scales the estimate;
    // neither may carry the estimate past the bounds the rate itself keeps.
    let policy = |quota: u64, window: Duration| Outcome::Success {
        latency: ms(20),
        hints: Hints {
            policy: Some(Policy::new(quota, window)),
            ..Hints::default()
        },
    };
    let mut c = Goodput::new(GoodputConfig {
        min_rate: 2.0,
        max_rate: 50.0,
        ..GoodputConfig::default()
    });
    c.observe(ms(0), &policy(1_000, Duration::from_secs(1)));
    assert_eq!(c.estimate(), Some(50.0));
    c.observe(ms(10), &policy(1, Duration::from_secs(3600)));
    assert_eq!(c.estimate(), Some(2.0));
    c.observe(ms(20), &policy(u64::MAX, Duration::from_nanos(1)));
    assert_eq!(c.estimate(), Some(50.0));
    assert!(c.rate().unwrap() <= 50.0);
}

#[test]
fn goodput_reads_a_window_server_quota_from_the_window_after_a_hold() {
    // Cruising at 970/s when a sliding log of 500 per second starts refusing with a
    // Retry-After of 1 s (50 ms latency).
    let (mut c, t) = measured_once(1000.0);
    let r0 = c.rate().unwrap();
    let held = || Outcome::Throttled {
        latency: ms(50),
        retry_after: Some(Duration::from_secs(1)),
        hints: Hints::default(),
    };
    let ok = || Outcome::success(ms(50));
    let at = |s: f64| Duration::from_secs_f64(s);
    let t0 = t + 1.0;
    // The opening 429 and the 10 requests in flight with it: refused but one (an old
    // entry left the log), as the log is full until the hold ends.
    c.observe(at(t0), &held());
    for i in 1..=10 {
        let o = if i == 5 { ok() } else { held() };
        c.observe(at(t0 + i as f64 / 1000.0), &o);
    }
    // The client sends again when the last hold ends: the emptied log accepts 500,
    // then refuses (the last acceptances cross the first refusals on the way), and
    // the refusals hold the client again for 1 s.
    let mut s = t0 + 0.010 + 1.0;
    let mut next = |c: &mut Goodput, o: Outcome| {
        c.observe(at(s + 0.05), &o);
        s += 1.0 / r0;
        s
    };
    for _ in 0..490 {
        next(&mut c, ok());
    }
    let mut last = 0.0;
    for _ in 0..10 {
        next(&mut c, held());
        last = next(&mut c, ok());
    }
    let cut = last + 0.05 + 1.0;
    for i in 0..20 {
        c.observe(at(cut + i as f64 / r0), &ok());
    }
    // Read from the responses around the first hold (2 accepted in 12), and cut
    // again by the refusals after it, the estimate was 82/s; the window after the
    // hold holds the server's quota.
    let est = c.estimate().unwrap();
    assert!((est - 500.0).abs() < 10.0, "{est}");
    let rate = c.rate().unwrap();
    assert!((rate - 0.97 * est).abs() < 1e-6);
    // The requests sent at 970/s after the hold stay in the log for a window: a
    // refusal half a window after the cut is their echo, not a new episode.
    c.observe(at(cut + 0.5), &held());
    for i in 1..=200 {
        c.observe(at(cut + 0.5 + i as f64 / rate), &ok());
    }
    assert_eq!(c.rate().unwrap(), rate);
}

#[test]
fn goodput_counts_the_window_after_a_hold_anew_when_a_late_refusal_holds_again() {
    // As above (970/s, a sliding log of 500 per second, holds of 1 s), but a refusal
    // sent before the hold ended comes 1.5 s late, after 300 requests sent since
    // the hold were accepted, and holds the client again.
    let (mut c, t) = measured_once(1000.0);
    let r0 = c.rate().unwrap();
    let held = |latency| Outcome::Throttled {
        latency,
        retry_after: Some(Duration::from_secs(1)),
        hints: Hints::default(),
    };
    let ok = || Outcome::success(ms(50));
    let at = |s: f64| Duration::from_secs_f64(s);
    let t0 = t + 1.0;
    c.observe(at(t0), &held(ms(50)));
    for i in 1..=10 {
        let o = if i == 5 { ok() } else { held(ms(50)) };
        c.observe(at(t0 + i as f64 / 1000.0), &o);
    }
    let mut s = t0 + 0.010 + 1.0;
    for _ in 0..300 {
        c.observe(at(s + 0.05), &ok());
        s += 1.0 / r0;
    }
    let late = s + 0.05;
    c.observe(at(late), &held(ms(1500)));
    // The log is empty again when the new hold ends: 500 accepted, then refusals.
    let mut s = late + 1.0;
    for i in 0..510 {
        let o = if i >= 490 && i % 2 == 0 {
            held(ms(50))
        } else {
            ok()
        };
        c.observe(at(s + 0.05), &o);
        s += 1.0 / r0;
    }
    let resume = s + 0.05 + 1.0;
    for i in 0..20 {
        c.observe(at(resume + i as f64 / r0), &ok());
    }
    // Counting on over both windows read 800/s.
    let est = c.estimate().unwrap();
    assert!((est - 500.0).abs() < 10.0, "{est}");
}

/// A default controller refused at whatever rate it uses for 300 s (each measured
/// episode cuts, down to the floor), and the time of its last response in seconds.
fn refused_to_the_floor() -> (Goodput, f64) {
    let mut c = Goodput::default();
    let mut t = 0.0;
    while t < 300.0 {
        t += 1.0 / c.rate().unwrap();
        c.observe(Duration::from_secs_f64(t), &no());
    }
    (c, t)
}

#[test]
fn goodput_backs_off_to_one_request_in_ten_seconds() {
    let (c, _) = refused_to_the_floor();
    let r = c.rate().unwrap();
    assert!((r - 0.1).abs() < 1e-9, "{r}");
}

#[test]
fn goodput_a_slow_client_probes_back_from_the_floor_in_well_under_a_minute() {
    // Acceptances at the rate in use. A step at 0.1/s holds a tenth of a response: one
    // step per response took 59 s, three take 30 s (10 s of them the cruise before the
    // first step).
    let (mut c, floor) = refused_to_the_floor();
    let mut t = floor;
    while c.rate().unwrap() < 1.0 && t < floor + 600.0 {
        t += 1.0 / c.rate().unwrap();
        c.observe(Duration::from_secs_f64(t), &ok());
    }
    let secs = t - floor;
    assert!(secs < 40.0, "{secs}");
}

/// The estimate after a measurement opened at 4 s on a server recognised as a sliding
/// log, which accepts everything until 4940 ms, then refuses from the request sent at
/// 4930 ms for 0.41 s (the limit fell 60 ms before the measurement's planned end at
/// 5 s, so six refusals have come by then), then rolls: the rate, and the estimate
/// once four acceptances followed the roll.
fn drop_just_before_the_end_of_a_measurement() -> (f64, f64) {
    let (mut c, _) = echo_episodes(true);
    let r0 = c.rate().unwrap();
    c.observe(ms(4000), &no());
    for i in 1..=139u64 {
        let o = if (95..=135).contains(&i) { no() } else { ok() };
        c.observe(ms(4000 + i * 10), &o);
    }
    (r0, c.estimate().unwrap())
}

#[test]
fn goodput_waits_for_the_roll_of_a_run_that_began_just_before_a_measurement_ended() {
    // At about 70/s, six refusals in a row at the planned end: under a tenth of a
    // window's worth, but no echo of a sliding log runs that long (its refusals come
    // between acceptances as old entries expire). The measurement waits for the roll,
    // which reads the new quota: 0.59 of the rate. Ended at once, it read 94 of 100
    // accepted and the refusals of the drop were then ignored for a whole window
    // (sliding log at 2000/s: 143 refusals in a row at the end, 1,791/s read for a
    // limit of 1,000, and the second after the drop refused 52 %).
    let (r0, est) = drop_just_before_the_end_of_a_measurement();
    assert!(r0 > 50.0 && r0 < 100.0, "{r0}");
    assert!((est - 0.59 * r0).abs() < 1e-6, "{est} vs {r0}");
}

/// On a server recognised as a sliding log: a measurement from 4 s to 5 s that
/// refuses 2 of its 100 responses (a cut by the share; the usual 250 ms settle), then
/// the limit falls and every request sent from 5060 ms is refused until the log rolls
/// for the request sent at 5520 ms. The refusals of requests sent before 5250 ms are
/// within the settle and ignored; the first one after it opens the episode. Returns
/// the rate in use at the drop and the estimate once the roll was confirmed.
fn run_begun_within_the_settle() -> (f64, f64) {
    let (mut c, _) = echo_episodes(true);
    c.observe(ms(4000), &no());
    for i in 1..=100u64 {
        let o = if i == 30 || i == 70 { no() } else { ok() };
        c.observe(ms(4000 + i * 10), &o);
    }
    let r0 = c.rate().unwrap();
    let cut = c.estimate();
    // Responses come 20 ms after their requests were sent.
    for i in 1..=55u64 {
        let o = if (6..=51).contains(&i) { no() } else { ok() };
        c.observe(ms(5020 + i * 10), &o);
    }
    assert_ne!(c.estimate(), cut, "not measured");
    (r0, c.estimate().unwrap())
}

#[test]
fn goodput_dates_a_run_of_refusals_from_its_first_refusal_not_the_episode_opener() {
    // The run lasted 0.46 s of a 1 s window at a steady rate: the quota is 0.54 of
    // the rate. Dated from the first refusal after the settle (sent at 5250 ms), it
    // read 0.73 (sliding log at 100/s, seed 19: a limit of 50/s read as 66.8/s, and
    // the second after the drop refused 28 %).
    let (r0, est) = run_begun_within_the_settle();
    assert!((est - 0.54 * r0).abs() < 1e-6, "{est} vs {r0}");
}

/// On a server recognised as a sliding log, at about 70/s: the +35 % step overshoots
/// (after +15 % passed), a request sent after the revert is accepted, the next one is
/// refused and opens a measurement over a whole window that refuses nothing more
/// (the overshoot's tail). Returns the seconds from the overshoot to the next rise.
fn wide_overshoot_then_whole_window_tail_on_a_log() -> f64 {
    let (mut c, _) = echo_episodes(true);
    let cruise = c.rate().unwrap();
    let mut t = accept_until_rate(&mut c, 3.4, cruise * 1.35);
    t += 10.0 / c.rate().unwrap();
    c.observe(Duration::from_secs_f64(t), &no());
    let (cut, reverted) = (t, c.rate().unwrap());
    assert!(reverted < cruise * 1.35, "the step reverts");
    c.observe(Duration::from_secs_f64(t + 0.03), &ok());
    c.observe(Duration::from_secs_f64(t + 0.04), &no());
    t += 0.04;
    while c.rate().unwrap() <= reverted && t < cut + 60.0 {
        t += 1.0 / c.rate().unwrap();
        c.observe(Duration::from_secs_f64(t), &ok());
    }
    t - cut
}

#[test]
fn goodput_keeps_the_short_cruise_after_a_whole_window_tail_on_a_sliding_log() {
    // The tail's measurement spans a window (1 s), so it ends after the 1 s short
    // cruise would have: probing resumes as soon as it ends, 1.04 s after the
    // overshoot, not after a full 3 s cruise from there (sliding log at 2000/s, seed
    // 14: the rise converged in 11 s instead of 10).
    let next = wide_overshoot_then_whole_window_tail_on_a_log();
    assert!((1.04..1.1).contains(&next), "{next}");
}

/// At `limit`/s on a token bucket: after a first measured episode, the +15 % probe
/// step overshoots; the revert (to 0.97 of the +5 % step) is refused 0.1 s later when
/// `refuse_revert` (after one acceptance), and a measurement that refuses nothing
/// more follows. After the
/// next cruise the +15 % step overshoots again. Returns the rate it reverts to, over
/// the cruise that probe started from.
fn second_revert_over_its_cruise(limit: f64, refuse_revert: bool) -> f64 {
    let (mut c, t) = measured_once(limit);
    let cruise = c.rate().unwrap();
    let mut t = accept_until_rate(&mut c, t, cruise * 1.15);
    t += 10.0 / c.rate().unwrap();
    c.observe(Duration::from_secs_f64(t), &no());
    // A request sent after the revert is accepted (which ends the grace a window
    // server needs), the next one is refused when `refuse_revert`.
    t += 0.05;
    c.observe(Duration::from_secs_f64(t), &ok());
    if refuse_revert {
        t += 0.05;
        c.observe(Duration::from_secs_f64(t), &no());
    }
    // On to the next probe's first rise: the rate before it is that probe's cruise.
    let mut base = c.rate().unwrap();
    loop {
        t += 1.0 / c.rate().unwrap();
        c.observe(Duration::from_secs_f64(t), &ok());
        let r = c.rate().unwrap();
        if r > base {
            break;
        }
        base = r;
    }
    t = accept_until_rate(&mut c, t, base * 1.15);
    t += 10.0 / c.rate().unwrap();
    c.observe(Duration::from_secs_f64(t), &no());
    c.rate().unwrap() / base
}

#[test]
fn goodput_reverts_to_the_cruise_once_a_burst_passed_a_step_over_the_limit() {
    // The revert under the +5 % step was refused at once: that step passed on the
    // bucket's burst. The next +15 % overshoot goes back to the cruise, which held
    // (token bucket 0.1 s at 100/s, seed 19: the revert to 0.97 of the +5 % step,
    // 100.8/s, was refused each cycle and cut again; phase 1 refused 0.8 % -> 0.3 %).
    let after_burst = second_revert_over_its_cruise(100.0, true);
    assert!((after_burst - 1.0).abs() < 1e-9, "{after_burst}");
    // Without that sign, the revert goes to 0.97 of the +5 % step, as before.
    let plain = second_revert_over_its_cruise(100.0, false);
    assert!((plain - 0.97 * 1.05).abs() < 1e-9, "{plain}");
    // Only for a step of 40-200 responses in 0.5 s: at 20/s (a share of a limit
    // shared with others, whose probes are refused too) and 2000/s it stays.
    for limit in [20.0, 2000.0] {
        let r = second_revert_over_its_cruise(limit, true);
        assert!((r - 0.97 * 1.05).abs() < 1e-9, "{limit}: {r}");
    }
}

/// A 429 carrying `Retry-After: 1`.
fn held() -> Outcome {
    Outcome::Throttled {
        latency: ms(20),
        retry_after: Some(Duration::from_secs(1)),
        hints: Hints::default(),
    }
}

/// A controller in startup at 20/s, throttled with a 1 s hold at 1 s with `in_flight`
/// answers (accepted and refused in turn) still coming before the hold's end, then
/// answered at 20/s after the hold, everything accepted. Returns the estimate and the seconds from the
/// cut to the next rise of the rate.
fn measured_across_a_hold(in_flight: u64) -> (f64, f64) {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 20.0,
        ..GoodputConfig::default()
    });
    c.observe(ms(1000), &held());
    for i in 1..=in_flight {
        let o = if i % 2 == 1 { ok() } else { no() };
        c.observe(ms(1000 + i * 5), &o);
    }
    // Sent from the hold's end (2 s) on, every 50 ms, answered 20 ms later.
    let mut t = 2.02;
    while c.estimate().is_none() && t < 10.0 {
        c.observe(Duration::from_secs_f64(t), &ok());
        t += 0.05;
    }
    let est = c.estimate().expect("measured");
    let (cut, cruise) = (t, c.rate().unwrap());
    while c.rate().unwrap() <= cruise && t < cut + 120.0 {
        t += 1.0 / c.rate().unwrap();
        c.observe(Duration::from_secs_f64(t), &ok());
    }
    (est, t - cut)
}

#[test]
fn goodput_reads_a_hold_with_nothing_in_flight_from_the_answers_after_it() {
    // Nothing in flight at the throttle: the measurement reads a window (12 answers
    // at 20/s, 0.6 s) of the answers after the hold, the opening refusal counted:
    // 13 accepted of 14. Before, it ended at the first answer after the hold and read
    // 20 · 1.5/3 = 10 from the small-sample share, like a 15/s token bucket.
    let (est, cruise) = measured_across_a_hold(0);
    assert!((est - 20.0 * 13.0 / 14.0).abs() < 1e-9, "{est}");
    // That estimate is provisional: an ordinary cruise (120 answers at 0.97 of it,
    // 6.7 s), not 30 holds, before the probe that checks it.
    assert!((6.0..7.0).contains(&cruise), "{cruise}");
    // Answers in flight before the hold's end read the overshoot, as before: the
    // opening refusal, the 4 in flight (2 accepted) and the first answer after the
    // hold, 3 of 6 accepted; the cruise after it lasts 30 holds.
    let (est, cruise) = measured_across_a_hold(4);
    assert!((est - 10.0).abs() < 1e-9, "{est}");
    assert!(cruise >= 30.0, "{cruise}");
}

#[test]
fn goodput_does_not_read_a_demand_limited_tail_after_a_hold_as_the_limit() {
    // Startup at 20/s, a 1 s hold with nothing in flight, then the tail of a job:
    // two more answers, sent at the hold's end and 1.5 s later, both accepted.
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 20.0,
        ..GoodputConfig::default()
    });
    c.observe(ms(1000), &held());
    c.observe(ms(2020), &ok());
    assert!(
        c.estimate().is_none(),
        "the window after the hold is still open"
    );
    c.observe(ms(3520), &ok());
    // The client sent 2 of the 13 requests 20/s allowed in the window after the hold:
    // its demand, not the server, set that count. The unsent ones do not lower the
    // estimate; only the opening refusal does (13 of 14, as with a full window).
    // Before, the small-sample share of 2 accepted of 3 read 20 · 2.5/4 = 12.5.
    let est = c.estimate().expect("measured");
    assert!((est - 20.0 * 13.0 / 14.0).abs() < 1e-9, "{est}");
    // A refusal after the hold still counts: 1 accepted and 1 refused of the 2 sent.
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 20.0,
        ..GoodputConfig::default()
    });
    c.observe(ms(1000), &held());
    c.observe(ms(2020), &no());
    c.observe(ms(3520), &ok());
    let est = c.estimate().expect("measured");
    assert!((est - 20.0 * 12.0 / 14.0).abs() < 1e-9, "{est}");
}

#[test]
fn goodput_counts_no_unsent_requests_after_a_refusal_held_the_client_again() {
    // Startup at 20/s, a 1 s hold with nothing in flight, then after the hold one
    // answer accepted and the next refused with another 1 s hold: the client could
    // send nothing until 3.07 s, so it was held, not short of demand. The window
    // after the first hold is read as it came: 2 accepted (one after each hold) of
    // 4 with the two refusals, 20 · 2/4 = 10. Before, the 10 requests 20/s would
    // have allowed in the rest of the window were counted as accepted (a demand-
    // limited tail): 12 of 14, 17.1/s. Against a bucket whose limit fell from 40 to
    // 15/s, each hold then cut the rate by only a sixth, and 1-2 requests a second
    // were accepted for 20 s (real TCP: 1.9/s over seconds 10-30).
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 20.0,
        ..GoodputConfig::default()
    });
    c.observe(ms(1000), &held());
    c.observe(ms(2020), &ok());
    c.observe(ms(2070), &held());
    assert!(c.estimate().is_none(), "the window after the hold is open");
    c.observe(ms(3090), &ok());
    let est = c.estimate().expect("measured");
    assert!((est - 10.0).abs() < 1e-9, "{est}");
}

#[test]
fn goodput_reads_a_window_closed_late_at_the_rate_inside_it() {
    // Cruising under 100/s; a refusal, then answers every 11 ms through the 150 ms
    // window (the client is busy), then nothing until one answer 1 s later (the job's
    // last page, retried). Counted over the idle second, 14 answers read as 12/s, a
    // demand-limited client's, and the estimate fell to 12; inside the window they
    // came at 87/s.
    let (mut c, t) = measured_once(100.0);
    let secs = Duration::from_secs_f64;
    c.observe(secs(t + 1.0), &no());
    for i in 1..=13 {
        c.observe(secs(t + 1.0 + 0.011 * f64::from(i)), &ok());
    }
    c.observe(secs(t + 2.2), &ok());
    let est = c.estimate().expect("measured");
    assert!(est > 90.0, "{est}");
}

/// Seconds until a controller cruising under 100/s comes within 1.5 times a limit
/// that fell to `limit`/s under the client's steady `demand` (a token bucket of burst
/// 1 answering at once), and the refusals until then.
fn converges_under_demand(demand: f64, limit: f64) -> (f64, u32) {
    let (mut c, t0) = measured_once(100.0);
    let (mut t, mut tokens, mut last, mut refused) = (t0, 1.0f64, t0, 0u32);
    while t - t0 < 600.0 {
        t += (1.0 / demand).max(1.0 / c.rate().unwrap());
        tokens = (tokens + (t - last) * limit).min(1.0);
        last = t;
        let outcome = if tokens >= 1.0 {
            tokens -= 1.0;
            ok()
        } else {
            refused += 1;
            no()
        };
        c.observe(Duration::from_secs_f64(t), &outcome);
        if c.rate().unwrap() <= 1.5 * limit {
            return (t - t0, refused);
        }
    }
    panic!("never converged: demand {demand}/s, limit {limit}/s");
}

#[test]
fn goodput_converges_under_a_low_steady_demand() {
    // A review's guard against rules for a job's tail: one that waited for more
    // answers and counted the unsent ones as accepted took 140 s and 70 refusals at
    // 1/s against 0.5/s, and 2.3 s and 15 refusals at 10/s against 4/s.
    let (secs, refused) = converges_under_demand(1.0, 0.5);
    assert!(
        secs <= 4.0 && refused <= 2,
        "1/s against 0.5/s: {secs} s, {refused} refusals"
    );
    let (secs, refused) = converges_under_demand(10.0, 4.0);
    assert!(
        secs <= 1.0 && refused <= 4,
        "10/s against 4/s: {secs} s, {refused} refusals"
    );
}

/// Seconds from a probe step that overshot with a 1 s hold to the next rise of the
/// rate, when the step is the first one at least `step` times the cruise after a
/// first episode at `limit`/s.
fn cruise_after_held_overshoot(limit: f64, step: f64) -> f64 {
    let (mut c, t) = measured_once(limit);
    let cruise = c.rate().unwrap();
    let mut t = accept_until_rate(&mut c, t, cruise * step);
    t += 10.0 / c.rate().unwrap();
    c.observe(Duration::from_secs_f64(t), &held());
    let (cut, after) = (t, c.rate().unwrap());
    assert!(after < cruise * step, "the step reverts");
    while c.rate().unwrap() <= after && t < cut + 120.0 {
        t += 1.0 / c.rate().unwrap();
        c.observe(Duration::from_secs_f64(t), &ok());
    }
    t - cut
}

#[test]
fn goodput_cruises_30_holds_only_after_a_narrow_overshoot() {
    // The +15 % step drew the hold: the limit is within 10 % of the floor; the next
    // probe would cost another hold, so the cruise lasts 30 holds.
    let narrow = cruise_after_held_overshoot(20.0, 1.15);
    assert!((30.0..30.2).contains(&narrow), "{narrow}");
    // The +35 % step drew it: the limit lies anywhere in 17 % above the floor; an
    // ordinary cruise (120 answers at 21.5/s, 5.6 s), and the next probe narrows it.
    // Before: 30 s at 0.97 of the floor (10/s: 0.92 of the limit over the last 30 s
    // of a minute).
    let wide = cruise_after_held_overshoot(20.0, 1.35);
    assert!((5.4..5.8).contains(&wide), "{wide}");
    // At 5/s a step holds two or three answers, and an overshoot at +35 % is often
    // the late answer to the +15 % step: the long cruise stays.
    let slow = cruise_after_held_overshoot(5.0, 1.35);
    assert!(slow >= 30.0, "{slow}");
}

/// A controller cruising under a first episode at 20/s whose +5 % step passed and
/// whose +15 % step drew a 1 s hold (answers `latency_ms` after their request), then
/// refused with a hold `after` seconds into the cruise at the reverted rate, followed
/// by one more refusal and 2 s of acceptances. Returns the reverted rate and the rate
/// at the end.
fn throttled_after_a_held_revert(latency_ms: u64, after: f64) -> (f64, f64) {
    let (mut c, t) = measured_once(20.0);
    let cruise = c.rate().unwrap();
    let mut t = accept_until_rate(&mut c, t, cruise * 1.15);
    t += 0.05;
    let hold = |ms_| Outcome::Throttled {
        latency: ms(ms_),
        retry_after: Some(Duration::from_secs(1)),
        hints: Hints::default(),
    };
    c.observe(Duration::from_secs_f64(t), &hold(latency_ms));
    let reverted = c.rate().unwrap();
    // Acceptances at the reverted rate, then one refusal with a hold.
    let end = t + after;
    while t < end {
        t += 1.0 / c.rate().unwrap();
        let ok = Outcome::success(ms(latency_ms));
        c.observe(Duration::from_secs_f64(t), &ok);
    }
    c.observe(Duration::from_secs_f64(t), &hold(latency_ms));
    // Its measurement (if any) reads what comes next: one refused, then acceptances.
    t += 0.01;
    c.observe(Duration::from_secs_f64(t), &no());
    for _ in 0..40 {
        t += 0.05;
        c.observe(Duration::from_secs_f64(t), &ok());
    }
    (reverted, c.rate().unwrap())
}

#[test]
fn goodput_takes_a_throttle_after_a_held_revert_for_drift_when_little_is_in_flight() {
    // 20/s with 20 ms answers: under one request in flight. The revert (0.97 of the
    // +5 % step) drew a hold 8 s into its cruise: the step passed on the server's
    // burst and the revert sits a hair over the limit. The rate is cut by `cruise`.
    let (reverted, after) = throttled_after_a_held_revert(20, 8.0);
    assert!(
        (after - 0.97 * reverted).abs() < 1e-9,
        "{reverted} -> {after}"
    );
    // With 200 ms answers (4 in flight) the refusal opens a measurement as before,
    // which reads the refusals that follow (here 2 of the first 3 answers).
    let (reverted, after) = throttled_after_a_held_revert(200, 8.0);
    assert!(after < 0.9 * reverted, "{reverted} -> {after}");
}

#[test]
fn goodput_cruises_for_120_answers_up_to_8_s_and_5_s_under_7_per_s() {
    // One measured episode, everything accepted after it: the first probe step comes
    // after the measurement (12 answers, at most 2 s) and a cruise of 120 answers at
    // 0.97 of the rate, up to 8 s. Four clients behind 100/s (about 12-25/s each)
    // probed every 3-5 s with 60 answers and 5 s, and refused 2.6 % over phase 2.
    let first = |limit: f64| probe_rises(limit, 20.0)[0];
    // 20/s: 0.6 s + 120 / 19.4 = 6.8 s.
    let t = first(20.0);
    assert!((6.7..6.9).contains(&t), "{t}");
    // 10/s: 1.2 s (and the answer that ends it) + 8 s (120 answers would take 12.4 s).
    let t = first(10.0);
    assert!((9.2..9.5).contains(&t), "{t}");
    // Under 7/s the cap stays 5 s: 2 s (and the answer that ends it) + 5 s.
    let t = first(5.0);
    assert!((7.2..7.5).contains(&t), "{t}");
}

#[test]
fn goodput_does_not_take_a_run_of_five_at_25_per_s_for_a_window_server() {
    // One of four clients sharing a token bucket at twice its limit: its 12 answers
    // (0.48 s at 25/s) are refused about half the time, 5 of them in a row by chance.
    // The share is read at the planned end, not over a whole window.
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 25.0,
        ..GoodputConfig::default()
    });
    c.observe(ms(1000), &no());
    let refused = [2, 3, 4, 5, 6, 9];
    for i in 1..=13u64 {
        let o = if refused.contains(&i) { no() } else { ok() };
        c.observe(ms(1000 + i * 40), &o);
    }
    // Read from the 12 answers by the planned end, 6 accepted.
    let est = c.estimate().expect("measured at the planned end");
    assert!((est - 25.0 * 6.0 / 12.0).abs() < 1e-9, "{est}");
}

#[test]
fn goodput_measures_a_fall_under_its_estimate_at_10_per_s_for_0_75_s() {
    // One of four clients behind a limit that halves: at 10/s its 12 answers take
    // 1.2 s, all sent at the old rate. Once 4 of them, and over a third, are refused at
    // a rate the estimate allowed, it reads the share 0.75 s after the opener.
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 20.6,
        ..GoodputConfig::default()
    });
    // A first episode: 6 of 12 accepted at 20.6/s, estimate 10.3/s, rate 9.99/s.
    c.observe(ms(1000), &no());
    for i in 1..=12u64 {
        let o = if i % 2 == 0 { no() } else { ok() };
        c.observe(ms(1000 + i * 50), &o);
    }
    let first = c.estimate().expect("measured");
    assert!((first - 10.3).abs() < 1e-9, "{first}");
    let r0 = c.rate().expect("a rate");
    assert!((r0 - 0.97 * 10.3).abs() < 1e-9, "{r0}");
    // The fall, well inside the cruise: an opener, then answers every 100 ms.
    c.observe(ms(3000), &no());
    let answers = [no(), ok(), no(), ok(), no(), ok(), no()];
    for (i, o) in answers.iter().enumerate() {
        c.observe(ms(3100 + 100 * i as u64), o);
    }
    assert_eq!(c.estimate(), Some(first), "still measuring at 0.7 s");
    c.observe(ms(3800), &ok());
    // 4 of 8 accepted at 9.99/s.
    let est = c.estimate().expect("an estimate");
    assert!((est - r0 * 4.0 / 8.0).abs() < 1e-9, "{est}");
}

/// A controller at 100/s whose quota ran out: refused from the opener at 1 s for
/// `run` more requests 10 ms apart, then the window rolls and acceptances follow at
/// the rate in use until the quota is read. Returns it, cruising, and the time of the
/// last response in seconds.
fn after_window_roll(run: u64) -> (Goodput, f64) {
    let mut c = Goodput::new(GoodputConfig {
        initial_rate: 100.0,
        ..GoodputConfig::default()
    });
    c.observe(ms(1000), &no());
    for i in 1..=run {
        c.observe(ms(1000 + i * 10), &no());
    }
    let mut t = 1.0 + run as f64 * 0.01;
    while c.estimate().is_none() {
        t += 0.01;
        c.observe(Duration::from_secs_f64(t), &ok());
        assert!(t < 3.0, "never read the roll");
    }
    (c, t)
}

/// After `after_window_roll(run)`: the lengths of the first three probe steps in
/// seconds, responses all accepted at the rate in use, and the rate a refusal
/// during the +5 % step reverts to, as a share of the cruise.
fn fixed_window_probe(run: u64) -> ([f64; 3], f64) {
    let (mut c, t) = after_window_roll(run);
    let cruise = c.rate().unwrap();
    let mut probe = c.clone();
    let t1 = accept_until_rate(&mut c, t, cruise * 1.04);
    let t2 = accept_until_rate(&mut c, t1, cruise * 1.1);
    let t3 = accept_until_rate(&mut c, t2, cruise * 1.3);
    let t4 = accept_until_rate(&mut c, t3, cruise * 1.7);
    let p1 = accept_until_rate(&mut probe, t, cruise * 1.04);
    probe.observe(Duration::from_secs_f64(p1 + 0.1), &no());
    ([t2 - t1, t3 - t2, t4 - t3], probe.rate().unwrap() / cruise)
}

#[test]
fn goodput_probes_a_fixed_window_a_window_at_a_step_and_reverts_to_the_cruise() {
    // 55 refused, then the roll: a quota of 44 per window read while sending at 100/s,
    // over twice it, and three quarters accepted after it: a fixed window (a sliding
    // log accepts at most its quota's worth then).
    let ([s1, s2, s3], back) = fixed_window_probe(55);
    // The +5 % and +15 % steps last a whole window; the +35 % step is an ordinary one
    // (30 responses at 58/s, 0.52 s).
    assert!((0.99..1.05).contains(&s1), "+5 % step {s1}");
    assert!((0.99..1.05).contains(&s2), "+15 % step {s2}");
    assert!(s3 < 0.6, "+35 % step {s3}");
    // The +5 % step was refused: back to the cruise, which held for whole windows.
    assert!(
        (back - 1.0).abs() < 1e-9,
        "reverted to {back} of the cruise"
    );
    // 40 refused: a quota of 59 read at 100/s, under twice it. Could be a sliding log
    // (or a drop to half): ordinary 0.5 s steps, and the revert to 0.97 of the step
    // before.
    let ([s1, s2, _], back) = fixed_window_probe(40);
    assert!(s1 < 0.6 && s2 < 0.6, "steps {s1} {s2}");
    assert!(
        (back - 0.97).abs() < 1e-9,
        "reverted to {back} of the cruise"
    );
}
