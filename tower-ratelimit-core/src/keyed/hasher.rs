//! The keyed store's default hasher: a seeded folded multiply, fast on short keys.
//!
//! ```
//! use std::hash::BuildHasher;
//! use tower_ratelimit_core::keyed::FoldBuildHasher;
//!
//! let a = FoldBuildHasher::new();
//! let b = FoldBuildHasher::new();
//! // Same hasher, same key: same hash. Another store's hasher has other seeds.
//! assert_eq!(a.hash_one(42u64), a.hash_one(42u64));
//! assert_ne!(a.hash_one(42u64), b.hash_one(42u64));
//! ```
//!
//! # Why not SipHash, and why not an unseeded hash
//!
//! Keys are chosen by clients (IP addresses, API keys), so a fixed hash function would
//! let an attacker precompute keys that all land in one bucket and make every lookup
//! linear (HashDoS). std's `RandomState` (SipHash-1-3) prevents that with
//! cryptographic strength, but costs 15–20 ns for a `u64` key, more than the whole
//! rate decision. This hasher follows the design of `foldhash` (the default of
//! `hashbrown`): each word is mixed by a 64×64→128-bit multiply whose halves are
//! xor-folded, keyed by two 64-bit seeds drawn per store from the operating system's
//! randomness (through `RandomState`). Without the seeds collisions cannot be computed
//! offline; recovering them from timing alone is not a known practical attack. This
//! is the "minimal DoS resistance" that `hashbrown` and `foldhash` ship by default;
//! users who want SipHash pass `std::hash::RandomState` to
//! [`KeyedMemoryStore::with_hasher`](super::KeyedMemoryStore::with_hasher). The hard cap
//! on keys bounds the damage of a collision attack in any case.

use std::hash::{BuildHasher, Hasher, RandomState};

/// Odd constants from the fractional digits of π, so that a zero seed still mixes.
const PI: [u64; 2] = [0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344];

#[inline(always)]
fn folded_multiply(x: u64, y: u64) -> u64 {
    let full = u128::from(x) * u128::from(y);
    (full as u64) ^ ((full >> 64) as u64)
}

/// Builds [`FoldHasher`]s with seeds drawn once per builder from the operating
/// system's randomness. The keyed store's default. See the [module docs](self).
#[derive(Clone, Copy, Debug)]
pub struct FoldBuildHasher {
    seed: u64,
    multiplier: u64,
}

impl FoldBuildHasher {
    /// A builder with fresh random seeds.
    pub fn new() -> FoldBuildHasher {
        // `RandomState::new` is seeded from the OS once per thread and then stepped,
        // so every builder gets distinct, unpredictable seeds.
        let state = RandomState::new();
        FoldBuildHasher {
            seed: state.hash_one(PI[0]),
            multiplier: state.hash_one(PI[1]) | 1,
        }
    }
}

impl Default for FoldBuildHasher {
    fn default() -> Self {
        FoldBuildHasher::new()
    }
}

impl BuildHasher for FoldBuildHasher {
    type Hasher = FoldHasher;

    #[inline]
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher {
            acc: self.seed,
            multiplier: self.multiplier,
        }
    }
}

/// The hasher of [`FoldBuildHasher`]: one folded multiply per 8 bytes of key.
#[derive(Clone, Debug)]
pub struct FoldHasher {
    acc: u64,
    multiplier: u64,
}

impl FoldHasher {
    #[inline(always)]
    fn mix(&mut self, word: u64) {
        self.acc = folded_multiply(self.acc ^ word, self.multiplier);
    }
}

impl Hasher for FoldHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        // The length goes into the last word so that "ab" and "ab\0" differ.
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        self.mix(u64::from_le_bytes(word) ^ ((bytes.len() as u64) << 56) ^ PI[0]);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.mix(i as u64);
        self.mix((i >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // A last round so that the high bits (used to pick a shard, and by the
        // table for its tag byte) depend on every input bit.
        folded_multiply(self.acc, PI[1]).rotate_left(23) ^ self.acc
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn sequential_keys_spread_over_high_bits() {
        let h = FoldBuildHasher::new();
        // Sequential integers (as attackers and benchmarks send them) must spread over
        // the 64 shards that the store picks by the bits under the top 7.
        let mut seen = HashSet::new();
        for k in 0u64..4096 {
            seen.insert((h.hash_one(k) << 7) >> 58);
        }
        assert_eq!(seen.len(), 64);
    }

    #[test]
    fn byte_strings_of_different_length_differ() {
        let h = FoldBuildHasher::new();
        assert_ne!(h.hash_one(&b"ab"[..]), h.hash_one(&b"ab\0"[..]));
        assert_ne!(h.hash_one("key-1"), h.hash_one("key-2"));
    }

    #[test]
    fn no_collisions_on_sequential_keys() {
        let h = FoldBuildHasher::new();
        let mut seen = HashSet::with_capacity(1 << 16);
        for k in 0u64..(1 << 16) {
            assert!(seen.insert(h.hash_one(k)));
        }
    }
}
