//! An attacker sends from millions of distinct keys at a million keys per second
//! (paused clock): the keyed store's memory, measured by a counting allocator, stays
//! under the figure of its cap; a key active throughout is limited exactly as if it
//! were alone; nothing panics.
//!
//! The 1,000,000-key flood runs by default, for both cap policies. The 10,000,000-key
//! flood is `#[ignore]`d because it takes a while in a debug build:
//! `cargo test -p tower-ratelimit-core --release --test keyed_flood -- --ignored --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::keyed::{CapPolicy, KeyedMemoryStore};
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::Quota;

/// Counts the live heap bytes allocated by each thread, and their high-water mark,
/// so that what the test harness allocates on its own threads is not counted.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn grew(size: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + size as isize;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn shrank(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get() - size as isize));
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(new_size);
            shrank(layout.size());
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The store's fixed part (64 cache-padded shards), allocated once at construction.
const FIXED_BYTES: usize = 64 * 128;

struct Outcome {
    peak_bytes: usize,
    bound_bytes: usize,
    refused: u64,
    held_at_end: usize,
}

fn flood(keys: u64, policy: CapPolicy) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // 10 per second, burst 5: a flood key that sends once is busy for 100 ms, so
        // at 10^6 keys per second about 100,000 are busy at any time, twice the cap.
        let quota = Quota::per_second(10).unwrap().with_burst(5).unwrap();
        let max_keys = 50_000;
        let active = u64::MAX;
        let before = live();
        PEAK.with(|peak| peak.set(before));
        let store = KeyedMemoryStore::new(quota)
            .with_max_keys(max_keys)
            .with_cap_policy(policy);
        let alone = MemoryStore::new(quota).with_clock(*store.clock());
        let mut refused = 0;
        let mut allowed_active = 0;
        for i in 0..keys {
            match store.check_now(&i, 1) {
                Ok(_) => {}
                Err(StoreError::TooManyKeys { max_keys: m, .. }) => {
                    assert_eq!(m, max_keys);
                    refused += 1;
                }
                Err(e) => panic!("flood key {i}: {e}"),
            }
            if i % 1_000 == 999 {
                tokio::time::advance(Duration::from_millis(1)).await;
            }
            // The active key asks every 20 ms, five times its rate: it never idles.
            if i % 20_000 == 0 {
                let got = store
                    .check_now(&active, 1)
                    .expect("the active key is known");
                let want = alone.check_now(1).expect("unkeyed");
                assert_eq!(got, want, "active key after {i} flood keys");
                allowed_active += u64::from(got.is_allowed());
            }
            // Bad input on the way: costs no quota can admit are errors, never panics.
            if i % 250_000 == 0 {
                assert!(matches!(
                    store.check_now(&i, u64::MAX),
                    Err(StoreError::CostTooLarge(_))
                ));
            }
        }
        let peak = usize::try_from(PEAK.with(Cell::get) - before).unwrap_or(0);
        // The active key's exact share: 5 at once, then one every 100 ms.
        let seconds = keys / 1_000_000;
        assert!(allowed_active >= 5 + 10 * seconds.saturating_sub(1));
        assert!(store.len() <= max_keys);
        let outcome = Outcome {
            peak_bytes: peak,
            bound_bytes: store.max_table_bytes() + FIXED_BYTES,
            refused,
            held_at_end: store.len(),
        };
        drop(alone);
        drop(store);
        outcome
    })
}

fn check(keys: u64, policy: CapPolicy) {
    let o = flood(keys, policy);
    println!(
        "{keys} flood keys, {policy:?}: peak {} bytes (bound {}), {} refused, {} held at the end",
        o.peak_bytes, o.bound_bytes, o.refused, o.held_at_end
    );
    assert!(
        o.peak_bytes <= o.bound_bytes,
        "peak {} over the cap's figure {}",
        o.peak_bytes,
        o.bound_bytes
    );
    match policy {
        CapPolicy::RejectNew => assert!(o.refused > 0, "the flood must have hit the cap"),
        _ => assert_eq!(o.refused, 0),
    }
}

#[test]
fn million_key_flood_rejecting_new_keys() {
    check(1_000_000, CapPolicy::RejectNew);
}

#[test]
fn million_key_flood_evicting_least_busy() {
    check(1_000_000, CapPolicy::EvictLeastBusy);
}

#[test]
#[ignore = "10^7 keys: run in release, see the module docs"]
fn ten_million_key_flood() {
    check(10_000_000, CapPolicy::RejectNew);
    check(10_000_000, CapPolicy::EvictLeastBusy);
}
