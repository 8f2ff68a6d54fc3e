//! Keyed limiters: nanoseconds per check and bytes per key.
//!
//! Compares, in one run, this crate's `KeyedMemoryStore` (sharded `std` maps), the
//! same GCRA buckets in `dashmap`, `papaya` and `scc` maps (all with the same
//! hasher, to compare the maps alone), this store with SipHash, and governor's keyed
//! limiter (`RateLimiter::keyed`, a `DashMap` with SipHash).
//!
//! ```text
//! cargo bench -p tower-ratelimit-core --bench keyed
//! ```
//!
//! Before criterion runs, a counting global allocator measures the bytes each holds
//! per key at 1,000,000 keys (set `KEYED_BENCH_SKIP_MEMORY=1` to skip).
//!
//! Every check is allowed (the path that writes the bucket). Our store's buckets are
//! filled with enough debt that none of them becomes idle (and swept) during the run,
//! so that every map really holds all its keys.

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

fn governor() -> Governor {
    let rate = NonZeroU32::new(1_000_000_000).expect("non-zero");
    let quota = governor::Quota::per_second(rate).allow_burst(NonZeroU32::MAX);
    Governor(governor::RateLimiter::keyed(quota))
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

    #[inline]
    fn check(&self, state: &State) -> bool {
        matches!(
            Gcra.check(state, &self.quota, self.clock.now(), 1),
            Ok(Verdict::Allowed(_))
        )
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
        ("dashmap (fold hash)", || {
            Box::new(Dash(
                DashMap::with_hasher(FoldBuildHasher::new()),
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
                    if threads == 1 {
                        let mut k = 0;
                        b.iter(|| {
                            let allowed = candidate.check(k);
                            k += 1;
                            if k == keys {
                                k = 0;
                            }
                            black_box(allowed)
                        });
                    } else {
                        b.iter_custom(|iters| two_threads(&*candidate, keys, iters));
                    }
                });
            }
        }
        group.finish();
    }
}

/// Both threads check `iters` times (from opposite ends of the key space); the time
/// reported is the slower thread's, so per iteration it is one thread's ns per check
/// while the other runs.
fn two_threads(candidate: &dyn Candidate, keys: u64, iters: u64) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2u64)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut k = t * keys / 2;
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(candidate.check(k));
                        k += 1;
                        if k == keys {
                            k = 0;
                        }
                    }
                    start.elapsed()
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
    for (name, make) in candidates() {
        let before = LIVE.load(Ordering::Relaxed);
        let c = filled(make, KEYS);
        let after = LIVE.load(Ordering::Relaxed);
        println!(
            "  {name:<45} {:>6.1} bytes/key ({} bytes)",
            (after - before) as f64 / KEYS as f64,
            after - before
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

fn main() {
    if std::env::var_os("KEYED_BENCH_SKIP_MEMORY").is_none() {
        memory_report();
    }
    let mut c = Criterion::default().configure_from_args();
    bench_checks(&mut c);
    c.final_summary();
}
