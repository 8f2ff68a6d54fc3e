//! Accuracy across processes: 4 OS processes × 16 tasks hammer one key at 100/s with
//! burst 10 for 10 s against a real `redis-server`, while 8 more tasks per process
//! hammer a second key with costs 1, 2 and 3.
//!
//! The parent spawns this test binary four times, running only `accuracy_worker`,
//! with the server's URL and a common start instant in the environment. Each worker
//! reports the units it was admitted and the wall-clock send and receive times of
//! its first and last admissions (one machine, one clock, which Redis's `TIME` also
//! reads). Redis decided each admission between its send and its receive, so the
//! span `S` between the first and last admission lies in `[D_lo, D_hi]`, and GCRA
//! guarantees
//!
//! * units ≤ `B + ⌊D_hi / T⌋` (never over the bound), and
//! * units ≥ `B + ⌊D_lo / T⌋ − 1` under saturating demand (cost 1), or minus the
//!   largest cost for the mixed key, where a large request may wait for room at the
//!   end.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::RedisServer;
use tower_ratelimit_core::store::{Decision, RateStore};
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::RedisStore;

const ENV: &str = "TOWER_RATELIMIT_REDIS_ACCURACY_WORKER";
const PROCESSES: usize = 4;
const TASKS: usize = 16;
const MIXED_TASKS: usize = 8;
const RATE: u64 = 100;
const BURST: u64 = 10;
const RUN: Duration = Duration::from_secs(10);
const INTERVAL_US: u64 = 1_000_000 / RATE;

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// What one worker saw on one key.
#[derive(Debug, Clone, Copy)]
struct Seen {
    units: u64,
    first_sent: u64,
    first_received: u64,
    last_sent: u64,
    last_received: u64,
}

impl Seen {
    fn new() -> Seen {
        Seen {
            units: 0,
            first_sent: u64::MAX,
            first_received: u64::MAX,
            last_sent: 0,
            last_received: 0,
        }
    }

    fn admitted(&mut self, cost: u64, sent: u64, received: u64) {
        self.units += cost;
        self.first_sent = self.first_sent.min(sent);
        self.first_received = self.first_received.min(received);
        self.last_sent = self.last_sent.max(sent);
        self.last_received = self.last_received.max(received);
    }

    fn merge(mut self, other: Seen) -> Seen {
        self.units += other.units;
        self.first_sent = self.first_sent.min(other.first_sent);
        self.first_received = self.first_received.min(other.first_received);
        self.last_sent = self.last_sent.max(other.last_sent);
        self.last_received = self.last_received.max(other.last_received);
        self
    }

    fn line(&self, key: &str) -> String {
        format!(
            "RESULT {key} {} {} {} {} {}",
            self.units, self.first_sent, self.first_received, self.last_sent, self.last_received
        )
    }

    fn parse(line: &str) -> Option<(String, Seen)> {
        // libtest may print "test accuracy_worker ... " on the same line.
        let at = line.find("RESULT ")?;
        let mut words = line[at + "RESULT ".len()..].split_whitespace();
        let key = words.next()?.to_owned();
        let mut n = || words.next()?.parse::<u64>().ok();
        Some((
            key,
            Seen {
                units: n()?,
                first_sent: n()?,
                first_received: n()?,
                last_sent: n()?,
                last_received: n()?,
            },
        ))
    }
}

async fn hammer(
    store: RedisStore,
    key: &'static str,
    costs: &'static [u64],
    start_us: u64,
    end_us: u64,
) -> Seen {
    let mut seen = Seen::new();
    tokio::time::sleep(Duration::from_micros(start_us.saturating_sub(unix_us()))).await;
    let mut i = 0;
    loop {
        let cost = costs[i % costs.len()];
        i += 1;
        let sent = unix_us();
        if sent >= end_us {
            break;
        }
        match store.check(key, cost).await {
            Ok(Decision::Allowed { .. }) => seen.admitted(cost, sent, unix_us()),
            Ok(Decision::Denied { retry_after, .. }) => {
                let left = Duration::from_micros(end_us.saturating_sub(unix_us()));
                tokio::time::sleep(retry_after.min(left)).await;
            }
            Err(e) => panic!("worker: store error {e}"),
        }
    }
    seen
}

/// One child process: runs only when the parent set the environment variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accuracy_worker() {
    let Ok(spec) = std::env::var(ENV) else {
        return;
    };
    let mut parts = spec.split('|');
    let url = parts.next().expect("url").to_owned();
    let start_us: u64 = parts.next().and_then(|s| s.parse().ok()).expect("start");
    let end_us = start_us + RUN.as_micros() as u64;
    let quota = Quota::per_second(RATE)
        .and_then(|q| q.with_burst(BURST))
        .expect("quota");
    let store = RedisStore::builder(quota)
        .prefix("accuracy:")
        .timeout(Duration::from_secs(1))
        .connect(url)
        .expect("store");
    // Connect and load the script before the start, so that the first admissions
    // are timed as tightly as the others.
    let _ = store.peek("warm-up", 0).await.expect("warm-up");
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        handles.push(tokio::spawn(hammer(
            store.clone(),
            "unit",
            &[1],
            start_us,
            end_us,
        )));
    }
    for _ in 0..MIXED_TASKS {
        handles.push(tokio::spawn(hammer(
            store.clone(),
            "mixed",
            &[1, 3, 2],
            start_us,
            end_us,
        )));
    }
    let (mut unit, mut mixed) = (Seen::new(), Seen::new());
    for (i, handle) in handles.into_iter().enumerate() {
        let seen = handle.await.expect("task");
        if i < TASKS {
            unit = unit.merge(seen);
        } else {
            mixed = mixed.merge(seen);
        }
    }
    println!("{}", unit.line("unit"));
    println!("{}", mixed.line("mixed"));
    assert_eq!(store.stats().remote_errors, 0);
}

fn check_bounds(key: &str, seen: Seen, max_cost: u64) {
    let d_hi = seen.last_received - seen.first_sent;
    let d_lo = seen.last_sent.saturating_sub(seen.first_received);
    let upper = BURST + d_hi / INTERVAL_US;
    let lower = BURST + d_lo / INTERVAL_US - max_cost;
    eprintln!(
        "{key}: {} units admitted over {:.3}..{:.3} s; bound {lower}..={upper}",
        seen.units,
        d_lo as f64 / 1e6,
        d_hi as f64 / 1e6
    );
    assert!(
        (RUN.as_micros() as u64 * 9 / 10..=RUN.as_micros() as u64 + 200_000).contains(&d_hi),
        "{key}: the admissions should span about {RUN:?}, spanned {d_hi} µs"
    );
    assert!(
        seen.units <= upper,
        "{key}: {} units over the bound {upper}",
        seen.units
    );
    // The nominal bound over the whole run, which the measured span can only tighten.
    let nominal = BURST + RUN.as_micros() as u64 / INTERVAL_US;
    assert!(
        seen.units <= nominal,
        "{key}: {} units over {nominal}",
        seen.units
    );
    assert!(
        seen.units >= lower,
        "{key}: {} units under {lower}",
        seen.units
    );
}

#[test]
fn four_processes_share_one_limit_within_the_gcra_bound() {
    let server = RedisServer::start();
    let exe = std::env::current_exe().expect("test binary");
    // Time for four processes to start and connect before the common start.
    let start_us = unix_us() + 2_000_000;
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "accuracy_worker",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ENV, format!("{}|{start_us}", server.url()))
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn a worker process")
        })
        .collect();
    let (mut unit, mut mixed) = (Seen::new(), Seen::new());
    for child in children {
        let output = child.wait_with_output().expect("worker output");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "worker failed: {stdout}");
        let mut reported = 0;
        for (key, seen) in stdout.lines().filter_map(Seen::parse) {
            reported += 1;
            match key.as_str() {
                "unit" => unit = unit.merge(seen),
                "mixed" => mixed = mixed.merge(seen),
                other => panic!("unknown key {other}"),
            }
        }
        assert_eq!(reported, 2, "worker output: {stdout}");
    }
    check_bounds("cost 1", unit, 1);
    check_bounds("costs 1-3", mixed, 3);
}
