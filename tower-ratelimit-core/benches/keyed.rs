//! Keyed limiters: nanoseconds per check and bytes per key.
//!
//! Compares, in one run, this crate's `KeyedMemoryStore` (sharded `std` maps, fold
//! hash; and with SipHash), governor's keyed limiter (`RateLimiter::keyed`: a
//! `DashMap` with SipHash, quanta's TSC clock; and the same with the `std` clock that
//! ours reads through tokio), and the same GCRA buckets in `dashmap`, `papaya` and
//! `scc` maps with our hasher and clock, to compare the maps alone.
//!
//! ```text
//! cargo bench -p tower-ratelimit-core --bench keyed                         # memory, then criterion
//! KEYED_BENCH_PAIRED=1 cargo bench -p tower-ratelimit-core --bench keyed    # ours vs governor, alternating rounds
//! KEYED_BENCH_PARTS=1 cargo bench -p tower-ratelimit-core --bench keyed     # where one check's time goes
//! ```
//!
//! Times are the benchmark threads' CPU time (`CLOCK_THREAD_CPUTIME_ID`), because the
//! machine is shared with other builds: wall time would count the moments a thread
//! was not running. With two threads, each checks `iters` times at once and the
//! slower thread's time is reported, so per iteration it is one thread's time per
//! check while the other runs.
//!
//! Before criterion runs, a counting global allocator measures the bytes each map
//! holds per key at 1,000,000 keys (`KEYED_BENCH_SKIP_MEMORY=1` skips it).
//!
//! Every check is allowed (the path that writes the bucket). Our store's buckets are
//! filled with enough debt that none becomes idle (and swept) during the run, so
//! that every map really holds all its keys.

use criterion::{BenchmarkId, Criterion};
use dashmap::DashMap;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hash::{BuildHasher, RandomState};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};
use tower_ratelimit_core::algorithm::{Algorithm, Gcra, Verdict};
use tower_ratelimit_core::clock::Clock;
use tower_ratelimit_core::keyed::{FoldBuildHasher, KeyedMemoryStore};
use tower_ratelimit_core::Quota;

/// Counts the bytes live on the heap.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

type State = <Gcra as Algorithm>::State;

/// The calling thread's CPU time. The machine is shared with other builds, so wall
/// time would count the moments the benchmark thread was not even running.
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Duration {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes into it.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// 10^9 per second (1 ns apart) with a burst worth 1000 s: every check in the run
/// is allowed.
fn quota() -> Quota {
    Quota::per_second(1_000_000_000)
        .and_then(|q| q.with_burst(1_000_000_000_000))
        .expect("valid quota")
}

/// Debt put on each of our buckets when filling, so none is idle for 300 s.
const FILL_COST: u64 = 300_000_000_000;

trait Candidate: Send + Sync {
    fn check(&self, key: u64) -> bool;

    fn fill(&self, key: u64) {
        self.check(key);
    }
}

struct Ours<S>(KeyedMemoryStore<u64, Gcra, S>);

impl<S: BuildHasher + Clone + Send + Sync> Candidate for Ours<S> {
    #[inline]
    fn check(&self, key: u64) -> bool {
        matches!(self.0.check_now(&key, 1), Ok(d) if d.is_allowed())
    }

    fn fill(&self, key: u64) {
        assert!(matches!(self.0.check_now(&key, FILL_COST), Ok(d) if d.is_allowed()));
    }
}

fn ours() -> Ours<FoldBuildHasher> {
    Ours(KeyedMemoryStore::new(quota()).with_max_keys(4_000_000))
}

fn ours_siphash() -> Ours<RandomState> {
    Ours(
        KeyedMemoryStore::new(quota())
            .with_max_keys(4_000_000)
            .with_hasher(RandomState::new()),
    )
}

struct Governor(governor::DefaultKeyedRateLimiter<u64>);

impl Candidate for Governor {
    #[inline]
    fn check(&self, key: u64) -> bool {
        self.0.check_key(&key).is_ok()
    }
}

fn governor_quota() -> governor::Quota {
    let rate = NonZeroU32::new(1_000_000_000).expect("non-zero");
    governor::Quota::per_second(rate).allow_burst(NonZeroU32::MAX)
}

fn governor() -> Governor {
    Governor(governor::RateLimiter::keyed(governor_quota()))
}

type StdClockGovernor = governor::RateLimiter<
    u64,
    governor::state::keyed::DefaultKeyedStateStore<u64>,
    governor::clock::MonotonicClock,
    governor::middleware::NoOpMiddleware<Instant>,
>;

/// Governor reading `std::time::Instant`, the clock ours reads (through tokio), so
/// that the difference left is the keyed machinery alone.
struct GovernorStdClock(StdClockGovernor);

impl Candidate for GovernorStdClock {
    #[inline]
    fn check(&self, key: u64) -> bool {
        self.0.check_key(&key).is_ok()
    }
}

fn governor_std_clock() -> GovernorStdClock {
    GovernorStdClock(governor::RateLimiter::dashmap_with_clock(
        governor_quota(),
        governor::clock::MonotonicClock,
    ))
}

/// The bucket logic shared by the map candidates: our GCRA, our clock.
struct Buckets {
    clock: Clock,
    quota: Quota,
}

impl Buckets {
    fn new() -> Buckets {
        Buckets {
            clock: Clock::new(),
            quota: quota(),
        }
    }

    /// The verdict goes through `black_box`, so that its snapshot (limit, remaining,
    /// reset: what our store returns with every decision) is computed as in ours.
    #[inline]
    fn check(&self, state: &State) -> bool {
        let verdict = black_box(Gcra.check(state, &self.quota, self.clock.now(), 1));
        matches!(verdict, Ok(Verdict::Allowed(_)))
    }

    fn fresh(&self) -> State {
        Gcra.new_state(&self.quota)
    }
}

struct Dash(DashMap<u64, State, FoldBuildHasher>, Buckets);

impl Candidate for Dash {
    #[inline]
    fn check(&self, key: u64) -> bool {
        if let Some(state) = self.0.get(&key) {
            return self.1.check(&state);
        }
        let state = self.0.entry(key).or_insert_with(|| self.1.fresh());
        self.1.check(&state)
    }
}

struct Papaya(papaya::HashMap<u64, State, FoldBuildHasher>, Buckets);

impl Candidate for Papaya {
    #[inline]
    fn check(&self, key: u64) -> bool {
        let map = self.0.pin();
        let state = map.get_or_insert_with(key, || self.1.fresh());
        self.1.check(state)
    }
}

struct Scc(scc::HashMap<u64, State, FoldBuildHasher>, Buckets);

impl Candidate for Scc {
    #[inline]
    fn check(&self, key: u64) -> bool {
        if let Some(allowed) = self.0.read_sync(&key, |_, state| self.1.check(state)) {
            return allowed;
        }
        let entry = self.0.entry_sync(key).or_insert_with(|| self.1.fresh());
        self.1.check(entry.get())
    }
}

/// The read path of our store reduced to its map: 64 `std` maps behind `RwLock`s,
/// with the GCRA buckets and clock of the others (no quota cell, no `Decision`).
struct StdSharded(
    Box<[std::sync::RwLock<std::collections::HashMap<u64, State, FoldBuildHasher>>]>,
    FoldBuildHasher,
    Buckets,
);

impl Candidate for StdSharded {
    #[inline]
    fn check(&self, key: u64) -> bool {
        let shard = &self.0[((self.1.hash_one(key) << 7) >> 58) as usize];
        if let Some(state) = shard.read().unwrap().get(&key) {
            return self.2.check(state);
        }
        let mut map = shard.write().unwrap();
        let state = map.entry(key).or_insert_with(|| self.2.fresh());
        self.2.check(state)
    }
}

type Make = fn() -> Box<dyn Candidate>;

fn candidates() -> Vec<(&'static str, Make)> {
    vec![
        ("tower-ratelimit (sharded std, fold hash)", || {
            Box::new(ours())
        }),
        ("tower-ratelimit (sharded std, SipHash)", || {
            Box::new(ours_siphash())
        }),
        ("governor keyed (DashMap, SipHash)", || Box::new(governor())),
        ("governor keyed, std clock", || {
            Box::new(governor_std_clock())
        }),
        ("dashmap (fold hash)", || {
            Box::new(Dash(
                DashMap::with_hasher(FoldBuildHasher::new()),
                Buckets::new(),
            ))
        }),
        ("std sharded, map alone (fold hash)", || {
            let h = FoldBuildHasher::new();
            Box::new(StdSharded(
                (0..64)
                    .map(|_| std::sync::RwLock::new(std::collections::HashMap::with_hasher(h)))
                    .collect(),
                h,
                Buckets::new(),
            ))
        }),
        ("papaya (fold hash)", || {
            Box::new(Papaya(
                papaya::HashMap::with_hasher(FoldBuildHasher::new()),
                Buckets::new(),
            ))
        }),
        ("scc (fold hash)", || {
            Box::new(Scc(
                scc::HashMap::with_hasher(FoldBuildHasher::new()),
                Buckets::new(),
            ))
        }),
    ]
}

const KEY_COUNTS: [u64; 3] = [1, 1_000, 1_000_000];

fn filled(make: Make, keys: u64) -> Box<dyn Candidate> {
    let c = make();
    for k in 0..keys {
        c.fill(k);
    }
    c
}

fn bench_checks(c: &mut Criterion) {
    for threads in [1usize, 2] {
        let mut group = c.benchmark_group(format!("keyed_check/{threads}_thread"));
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for (name, make) in candidates() {
            for keys in KEY_COUNTS {
                let candidate = filled(make, keys);
                group.bench_with_input(BenchmarkId::new(name, keys), &keys, |b, &keys| {
                    b.iter_custom(|iters| measure(&*candidate, keys, threads, iters));
                });
            }
        }
        group.finish();
    }
}

/// `iters` checks on one thread, from key `first` on; its CPU time.
fn run(candidate: &dyn Candidate, keys: u64, first: u64, iters: u64) -> Duration {
    let mut k = first;
    let start = thread_cpu_time();
    for _ in 0..iters {
        black_box(candidate.check(black_box(k)));
        k += 1;
        if k == keys {
            k = 0;
        }
    }
    thread_cpu_time() - start
}

/// `iters` checks on each of `threads` threads at once (from opposite ends of the key
/// space); the CPU time of the slower thread, so that per iteration it is one
/// thread's time per check while the other runs.
fn measure(candidate: &dyn Candidate, keys: u64, threads: usize, iters: u64) -> Duration {
    if threads == 1 {
        return run(candidate, keys, 0, iters);
    }
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    run(candidate, keys, t * keys / threads as u64, iters)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

/// Bytes per key at 1,000,000 keys, all busy; and after 1,000,000 keys seen once
/// that go idle at once (the case governor#171 is about).
fn memory_report() {
    const KEYS: u64 = 1_000_000;
    println!("bytes per key with {KEYS} busy keys (counting allocator):");
    println!("  | map | bytes per key | empty map, bytes |");
    for (name, make) in candidates() {
        let before = LIVE.load(Ordering::Relaxed);
        let c = make();
        let empty = LIVE.load(Ordering::Relaxed);
        for k in 0..KEYS {
            c.fill(k);
        }
        let after = LIVE.load(Ordering::Relaxed);
        println!(
            "  | {name} | {:.2} | {} |",
            (after - empty) as f64 / KEYS as f64,
            empty - before
        );
        drop(c);
    }

    // 10^6 per second per key: a key checked once is idle 1 µs later.
    let idle_quota = Quota::per_second(1_000_000).expect("valid quota");
    let before = LIVE.load(Ordering::Relaxed);
    let store = KeyedMemoryStore::new(idle_quota);
    for k in 0..KEYS {
        let _ = store.check_now(&k, 1);
    }
    let ours = LIVE.load(Ordering::Relaxed) - before;
    let ours_keys = store.len();
    drop(store);
    let before = LIVE.load(Ordering::Relaxed);
    let rate = NonZeroU32::new(1_000_000).expect("non-zero");
    let gov = governor::DefaultKeyedRateLimiter::<u64>::keyed(governor::Quota::per_second(rate));
    for k in 0..KEYS {
        let _ = gov.check_key(&k);
    }
    let theirs = LIVE.load(Ordering::Relaxed) - before;
    println!("after {KEYS} keys seen once each, idle 1 µs later (quota 10^6/s):");
    println!("  tower-ratelimit: {ours_keys} keys held, {ours} bytes");
    println!("  governor keyed:  {} keys held, {theirs} bytes", gov.len());
}

/// CPU nanoseconds per call of `f`, the median of 15 rounds of 200,000 calls.
fn ns_per_call(mut f: impl FnMut(u64)) -> f64 {
    const CALLS: u64 = 200_000;
    let mut rounds: Vec<f64> = (0..15)
        .map(|_| {
            let start = thread_cpu_time();
            for i in 0..CALLS {
                f(i);
            }
            (thread_cpu_time() - start).as_nanos() as f64 / CALLS as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[rounds.len() / 2]
}

/// Every candidate in alternating rounds (so that load from other processes drifts
/// over all alike); the median of 11 rounds of 100,000 checks, in thread CPU time.
fn paired_report() {
    let all = candidates();
    println!("paired rounds, ns per check per thread (median of 11 rounds of 100,000):");
    let names: Vec<&str> = all.iter().map(|(name, _)| *name).collect();
    println!("  | keys | threads | {} |", names.join(" | "));
    for threads in [1usize, 2] {
        for keys in KEY_COUNTS {
            let filled: Vec<Box<dyn Candidate>> =
                all.iter().map(|(_, make)| filled(*make, keys)).collect();
            let mut rounds = vec![Vec::new(); filled.len()];
            for _ in 0..11 {
                for (c, r) in filled.iter().zip(rounds.iter_mut()) {
                    r.push(measure(&**c, keys, threads, 100_000).as_nanos() as f64 / 100_000.0);
                }
            }
            let medians: Vec<String> = rounds
                .iter_mut()
                .map(|r| {
                    r.sort_by(f64::total_cmp);
                    format!("{:.1}", r[r.len() / 2])
                })
                .collect();
            println!("  | {keys} | {threads} | {} |", medians.join(" | "));
        }
    }
}

/// Where the time of one check goes (one thread, one key).
fn parts_report() {
    let clock = Clock::new();
    let quota = quota();
    let state = Gcra.new_state(&quota);
    let hasher = FoldBuildHasher::new();
    let sip = RandomState::new();
    let store = ours();
    store.fill(0);
    let gov = governor();
    println!("parts of one check (thread CPU ns, median of 15 rounds):");
    println!(
        "  Clock::now (tokio Instant)    {:>6.1}",
        ns_per_call(|_| {
            black_box(clock.now());
        })
    );
    println!(
        "  std Instant::now              {:>6.1}",
        ns_per_call(|_| {
            black_box(Instant::now());
        })
    );
    let quanta = governor::clock::DefaultClock::default();
    println!(
        "  governor's clock (quanta)     {:>6.1}",
        ns_per_call(|_| {
            black_box(governor::clock::Clock::now(&quanta));
        })
    );
    println!(
        "  fold hash of a u64            {:>6.1}",
        ns_per_call(|i| {
            black_box(hasher.hash_one(i));
        })
    );
    println!(
        "  SipHash of a u64              {:>6.1}",
        ns_per_call(|i| {
            black_box(sip.hash_one(i));
        })
    );
    println!(
        "  GCRA check, no map            {:>6.1}",
        ns_per_call(|_| {
            black_box(Gcra.check(&state, &quota, clock.now(), 1).is_ok());
        })
    );
    println!(
        "  our store, one key            {:>6.1}",
        ns_per_call(|_| {
            black_box(store.check(0));
        })
    );
    println!(
        "  governor keyed, one key       {:>6.1}",
        ns_per_call(|_| {
            black_box(gov.check(0));
        })
    );
    let gov_std = governor_std_clock();
    gov_std.fill(0);
    println!(
        "  governor keyed, std clock     {:>6.1}",
        ns_per_call(|_| {
            black_box(gov_std.check(0));
        })
    );
}

fn main() {
    // Stores are built where a `#[tokio::main]` server builds them, on a multi-thread
    // runtime, so their clocks read the TSC (KEYED_BENCH_TOKIO_CLOCK=1: tokio's clock).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("a runtime");
    let _in_runtime = std::env::var_os("KEYED_BENCH_TOKIO_CLOCK")
        .is_none()
        .then(|| runtime.enter());
    if std::env::var_os("KEYED_BENCH_PARTS").is_some() {
        parts_report();
        return;
    }
    if std::env::var_os("KEYED_BENCH_PAIRED").is_some() {
        paired_report();
        return;
    }
    if std::env::var_os("KEYED_BENCH_SKIP_MEMORY").is_none() {
        memory_report();
    }
    let mut c = Criterion::default().configure_from_args();
    bench_checks(&mut c);
    c.final_summary();
}
