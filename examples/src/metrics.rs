//! Measuring a run: which pages arrived (exactly once?), the heap's peak, the RSS.
//!
//! ```
//! use examples::metrics::PageLedger;
//!
//! let mut ledger = PageLedger::new(3);
//! assert!(ledger.record(1));
//! assert!(ledger.record(3));
//! assert!(!ledger.record(3)); // a duplicate
//! assert!(!ledger.record(9)); // not a page of this job
//! assert_eq!((ledger.written(), ledger.missing(), ledger.duplicates()), (2, 1, 1));
//! assert!(!ledger.exactly_once());
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

/// Which of pages `1..=N` were delivered, in one bit each (12.5 KB for 100,000
/// pages), so checking exactly-once never holds the bodies.
#[derive(Debug, Clone)]
pub struct PageLedger {
    bits: Vec<u64>,
    pages: u64,
    written: u64,
    duplicates: u64,
    strays: u64,
}

impl PageLedger {
    /// A ledger for pages `1..=pages`.
    pub fn new(pages: u64) -> Self {
        let words = usize::try_from(pages.div_ceil(64)).unwrap_or(usize::MAX);
        Self {
            bits: vec![0; words],
            pages,
            written: 0,
            duplicates: 0,
            strays: 0,
        }
    }

    /// Marks `page` delivered; `false` if it was already, or is not in `1..=N`.
    pub fn record(&mut self, page: u64) -> bool {
        if page == 0 || page > self.pages {
            self.strays += 1;
            return false;
        }
        let i = page - 1;
        let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
        if self.bits[word] & bit != 0 {
            self.duplicates += 1;
            return false;
        }
        self.bits[word] |= bit;
        self.written += 1;
        true
    }

    /// Distinct pages delivered.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Pages never delivered.
    pub fn missing(&self) -> u64 {
        self.pages - self.written
    }

    /// Deliveries of a page that had been delivered before.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Deliveries of a page number outside `1..=N`.
    pub fn strays(&self) -> u64 {
        self.strays
    }

    /// Every page delivered, none twice, nothing else.
    pub fn exactly_once(&self) -> bool {
        self.written == self.pages && self.duplicates == 0 && self.strays == 0
    }
}

static CURRENT: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    // Const-initialised and without a destructor, so the allocator may read it on
    // any thread at any time without allocating.
    static IGNORED: Cell<bool> = const { Cell::new(false) };
}

/// A global allocator that counts the heap bytes in use and their peak, leaving
/// out threads marked with [`ignore_this_thread`] (the in-process API server, so
/// that the figure is the client's alone).
///
/// Install it in a binary with `#[global_allocator] static A: CountingAllocator =
/// CountingAllocator;`.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAllocator;

fn counted() -> bool {
    !IGNORED.try_with(Cell::get).unwrap_or(false)
}

fn grow(bytes: usize) {
    let bytes = bytes as isize;
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrink(bytes: usize) {
    CURRENT.fetch_sub(bytes as isize, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` unchanged; the counting only reads
// layouts and touches atomics and a const thread-local.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && counted() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() && counted() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        if counted() {
            shrink(layout.size());
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && counted() {
            grow(new_size);
            shrink(layout.size());
        }
        p
    }
}

/// Leaves the current thread's allocations out of [`heap_in_use`] and [`heap_peak`].
pub fn ignore_this_thread() {
    let _ = IGNORED.try_with(|c| c.set(true));
}

/// Counted heap bytes in use now (0 unless [`CountingAllocator`] is installed).
pub fn heap_in_use() -> usize {
    CURRENT.load(Ordering::Relaxed).max(0) as usize
}

/// The most counted heap bytes in use since the last [`reset_heap_peak`].
pub fn heap_peak() -> usize {
    PEAK.load(Ordering::Relaxed).max(0) as usize
}

/// Starts a new peak from the bytes in use now.
pub fn reset_heap_peak() {
    PEAK.store(CURRENT.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Resident set size now and its peak (`VmRSS`, `VmHWM`), in KiB, from
/// `/proc/self/status`; `None` where that file does not exist.
pub fn rss_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Bytes as a short human figure: `812 B`, `14.2 KiB`, `3.1 MiB`.
pub fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_handles_edges() {
        let mut l = PageLedger::new(130);
        for p in 1..=130 {
            assert!(l.record(p));
        }
        assert!(l.exactly_once());
        assert!(!l.record(0));
        assert!(!l.record(131));
        assert!(!l.exactly_once());
        assert_eq!(l.strays(), 2);
        let mut empty = PageLedger::new(0);
        assert!(empty.exactly_once());
        assert!(!empty.record(1));
    }

    #[test]
    fn human_bytes_picks_units() {
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(2048), "2.0 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 100_000), "3.1 MiB");
    }

    #[test]
    fn rss_is_readable_on_linux() {
        if cfg!(target_os = "linux") {
            let (now, peak) = rss_kib().expect("/proc/self/status");
            assert!(now > 0 && peak >= now);
        }
    }
}
