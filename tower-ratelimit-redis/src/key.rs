//! How a key becomes the name of its bucket in Redis.
//!
//! The full name is the store's prefix followed by the key's bytes. The unit key
//! `()` (a single, global limit) writes no bytes, so its bucket is the prefix
//! itself.
//!
//! Redis keys are binary-safe: spaces, newlines, `\0` and any bytes pass unchanged
//! (nothing is quoted or parsed), so a client's key cannot reach another command or
//! another client's bucket, only its own name. Two things about a key taken from a
//! request are still the caller's to bound:
//!
//! * **Length.** The name is stored verbatim, in Redis (one key per client until its
//!   bucket is full again) and in this process (up to 10,000 cached denials by
//!   default, 1,024 keys' pending drains, 1,024 keys' slots that waiting requests
//!   gave up), so a 1 MB header used
//!   as a key costs a megabyte in each. Cap or hash untrusted keys before they get
//!   here.
//! * **Cluster slots.** Redis Cluster hashes only the part of a name between its
//!   first `{` and the next `}` when that part is not empty. A prefix with a hash tag
//!   (`{limits}:`) therefore puts every bucket on one node, which works (each decision
//!   touches one key) but spreads no load; a prefix without one lets a client key that
//!   holds braces (`{x}`) choose its own slot, so a client with many identities can
//!   pile its buckets onto one node. Neither is needed: each script touches one key.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use tower_ratelimit_redis::key::RedisKey;
//!
//! let mut name = b"api:".to_vec();
//! IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)).write_key(&mut name);
//! assert_eq!(name, b"api:10.0.0.7");
//!
//! let mut name = b"api:".to_vec();
//! "tenant-42".write_key(&mut name);
//! assert_eq!(name, b"api:tenant-42");
//! ```

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;

/// A key that names one bucket in Redis.
///
/// Implement it for your own key types (a tenant id, a route and client pair) by
/// appending bytes that identify the key; two keys that must be limited apart must
/// write different bytes.
pub trait RedisKey {
    /// Appends the key's bytes to `out`, which already holds the store's prefix.
    fn write_key(&self, out: &mut Vec<u8>);
}

impl RedisKey for () {
    fn write_key(&self, _out: &mut Vec<u8>) {}
}

impl RedisKey for str {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl RedisKey for String {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl RedisKey for [u8] {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl RedisKey for Vec<u8> {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl<const N: usize> RedisKey for [u8; N] {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

macro_rules! display_key {
    ($($t:ty),*) => {$(
        impl RedisKey for $t {
            fn write_key(&self, out: &mut Vec<u8>) {
                use std::io::Write;
                // Writing to a Vec cannot fail.
                let _ = write!(out, "{self}");
            }
        }
    )*};
}

display_key!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, char, bool, IpAddr, Ipv4Addr,
    Ipv6Addr, SocketAddr
);

impl<T: RedisKey + ?Sized> RedisKey for &T {
    fn write_key(&self, out: &mut Vec<u8>) {
        (**self).write_key(out);
    }
}

impl<T: RedisKey + ?Sized> RedisKey for Box<T> {
    fn write_key(&self, out: &mut Vec<u8>) {
        (**self).write_key(out);
    }
}

impl<T: RedisKey + ?Sized> RedisKey for Arc<T> {
    fn write_key(&self, out: &mut Vec<u8>) {
        (**self).write_key(out);
    }
}

impl<T: RedisKey + ?Sized> RedisKey for Rc<T> {
    fn write_key(&self, out: &mut Vec<u8>) {
        (**self).write_key(out);
    }
}

impl<T: RedisKey + ToOwned + ?Sized> RedisKey for Cow<'_, T> {
    fn write_key(&self, out: &mut Vec<u8>) {
        self.as_ref().write_key(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name<K: RedisKey + ?Sized>(key: &K) -> Vec<u8> {
        let mut out = b"p:".to_vec();
        key.write_key(&mut out);
        out
    }

    #[test]
    fn keys_write_their_bytes_after_the_prefix() {
        assert_eq!(name(&()), b"p:");
        assert_eq!(name("a"), b"p:a");
        assert_eq!(name(&String::from("b")), b"p:b");
        assert_eq!(name(&42u64), b"p:42");
        assert_eq!(name(&-1i32), b"p:-1");
        assert_eq!(name(&[0u8, 255][..]), b"p:\x00\xff");
        assert_eq!(name(&Arc::<str>::from("c")), b"p:c");
        assert_eq!(name(&Cow::Borrowed("d")), b"p:d");
        assert_eq!(
            name(
                &"::1"
                    .parse::<IpAddr>()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            ),
            b"p:::1"
        );
    }
}
