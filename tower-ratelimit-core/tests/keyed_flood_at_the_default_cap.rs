//! The table bytes of a default keyed store of IP address keys under a flood of
//! distinct addresses that stay busy (one request each, 10 per minute): the figure the
//! docs quote for the default cap (`HttpRateLimitLayer::keyed`, README "Guarantees").
//! `cargo test --release -p tower-ratelimit-core --test keyed_flood_at_the_default_cap
//! -- --ignored --nocapture`

use std::net::{IpAddr, Ipv6Addr};
use tower_ratelimit_core::keyed::{KeyedMemoryStore, DEFAULT_MAX_KEYS};
use tower_ratelimit_core::Quota;

#[tokio::test(start_paused = true)]
#[ignore = "inserts 1.2 million keys; run with --ignored, in release"]
async fn a_flood_of_ip_keys_at_the_default_cap() {
    let store = KeyedMemoryStore::<IpAddr>::new(Quota::per_minute(10).unwrap());
    let mut refused = 0u64;
    for i in 0..1_200_000u128 {
        let ip = IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) | (i << 64)));
        if store.check_now(&ip, 1).is_err() {
            refused += 1;
        }
    }
    let mb = |b: usize| b as f64 / 1e6;
    println!(
        "keys held {}, refused {refused}, table {:.1} MB, max_table_bytes {:.1} MB",
        store.len(),
        mb(store.table_bytes()),
        mb(store.max_table_bytes()),
    );
    assert_eq!(store.len(), DEFAULT_MAX_KEYS);
    assert_eq!(refused, 200_000);
    assert!(store.table_bytes() <= store.max_table_bytes());
    // The docs say about 70 MB.
    assert!((60e6..75e6).contains(&(store.table_bytes() as f64)));
}
