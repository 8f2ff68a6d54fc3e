//! The simulation harness against what it claims to measure: the controller is fed
//! what the layer would feed it, the anchors run as their docs say, and the demand
//! row's target is what a perfect client could have had accepted.

use std::time::Duration;

use tower_ratelimit_adaptive::controller::{Controller, Goodput};
use tower_ratelimit_adaptive::sim::table::{ahead_of_anchors, contenders, run_row, scenarios};
use tower_ratelimit_adaptive::sim::{phase_metrics, simulate, Rng, Schedule, Trace};
use tower_ratelimit_adaptive::Outcome;

/// Goodput as the layer runs it with `honour_retry_after(None)`: `Slot::observe`
/// hands the controller no wait when holds are ignored.
struct AsTheLayerSeesIt(Goodput);

impl Controller for AsTheLayerSeesIt {
    fn name(&self) -> &'static str {
        "goodput, as the layer feeds it"
    }
    fn observe(&mut self, now: Duration, o: &Outcome) {
        self.0.observe(now, &o.with_retry_after(None));
    }
    fn rate(&self) -> Option<f64> {
        self.0.rate()
    }
    fn burst(&self) -> u64 {
        self.0.burst()
    }
}

fn retry_after_row(limit: f64) -> tower_ratelimit_adaptive::sim::table::Scenario {
    scenarios(30)
        .into_iter()
        .find(|s| s.name == "+ Retry-After" && s.limit == limit)
        .unwrap()
}

/// `SimConfig::honour_retry_after = false` is the clients not pausing for
/// Retry-After, the layer's `honour_retry_after(None)`, which hides the wait from the
/// controller: so does the simulation (it showed it, 7,065 accepted against 7,257).
#[test]
fn sim_without_holds_feeds_the_controller_what_the_layer_would() {
    let mut s = retry_after_row(100.0);
    s.config.honour_retry_after = false;
    let sim = simulate(&s.config, &|| {
        Box::new(Goodput::default()) as Box<dyn Controller>
    });
    let layer = simulate(&s.config, &|| {
        Box::new(AsTheLayerSeesIt(Goodput::default())) as Box<dyn Controller>
    });
    let total = |t: &Trace| t.accepted[0].iter().sum::<u64>();
    println!(
        "accepted: sim {} / as the layer {}",
        total(&sim),
        total(&layer)
    );
    assert_eq!(sim.accepted, layer.accepted);
}

/// The crate's docs say both anchors run with `honour_retry_after(None)` on a server
/// that sends Retry-After (held, they collapse), so the table runs them so: its
/// verdict is the one against the anchors run as documented (it ran them with holds,
/// and said "ahead" where AIMD without holds scores 0.988 against the default's 0.867).
#[test]
fn the_tables_verdict_holds_against_the_anchors_run_as_documented() {
    let s = retry_after_row(100.0);
    let cs = contenders();
    // As the table builds its rows.
    let table: Vec<_> = cs[..3].iter().map(|c| run_row(&s, c)).collect();
    let verdict = ahead_of_anchors(&table[0], &table);
    // The anchors as their docs say to run them.
    let mut free = s.clone();
    free.config.honour_retry_after = false;
    let mut documented = vec![table[0].clone()];
    for c in &cs[1..3] {
        let row = simulate(&free.config, &|| (c.make)());
        let row = tower_ratelimit_adaptive::sim::table::Row {
            scenario: s.name.clone(),
            limit: s.limit,
            controller: c.name,
            phases: phase_metrics(&row, &free.config.schedule),
        };
        println!(
            "{}: in the table {:.3}, without holds {:.3}; default {:.3}",
            c.name,
            table
                .iter()
                .find(|r| r.controller == c.name)
                .unwrap()
                .score(),
            row.score(),
            table[0].score()
        );
        documented.push(row);
    }
    let truth = ahead_of_anchors(&table[0], &documented);
    assert_eq!(
        verdict, truth,
        "the table says ahead = {verdict}; against the anchors run as documented: {truth}"
    );
}

/// The demand row's target is what a perfect client could have had accepted each
/// second (the run's own arrivals and the backlog, up to the limit). It was
/// `min(L, mean demand)`, and a perfect client, which sends every arrival at once and
/// drains its backlog at exactly the limit, was "not converged" for seconds (Poisson
/// noise, and the backlog the halved phase left draining at L while the target said
/// 0.6 L), with a goodput of 0.94 in the first phase.
#[test]
fn a_perfect_client_converges_at_once_on_the_demand_row() {
    let limit = 100.0;
    let schedule = Schedule::below_demand(limit, 30, 0.6);
    let secs = 90;
    let mut rng = Rng::new(7);
    let (mut accepted, mut arrivals, mut lim) =
        (vec![0u64; secs], vec![0u64; secs], vec![0.0; secs]);
    let mut t = 0.0;
    let mut backlog = 0u64;
    for s in 0..secs {
        // Poisson arrivals at 0.6 L.
        while t < (s + 1) as f64 {
            t += rng.exponential(1.0 / 60.0);
            if t < (s + 1) as f64 {
                arrivals[s] += 1;
            }
        }
        lim[s] = schedule.limit_at(s as f64);
        let can = lim[s] as u64;
        let want = backlog + arrivals[s];
        accepted[s] = want.min(can);
        backlog = want - accepted[s];
    }
    let trace = Trace {
        accepted: vec![accepted],
        refused: vec![0; secs],
        limit: lim,
        arrivals,
        waits: Vec::new(),
        local_rejects: 0,
        rate: vec![0.0; secs],
    };
    let m = phase_metrics(&trace, &schedule);
    for p in &m {
        println!(
            "{:?}: goodput {:.2}, convergence {:?}",
            p.change, p.goodput, p.convergence
        );
    }
    assert!(m.iter().all(|p| p.convergence == Some(0.0)), "{m:#?}");
    assert!(m.iter().all(|p| (p.goodput - 1.0).abs() < 0.05), "{m:#?}");
}
