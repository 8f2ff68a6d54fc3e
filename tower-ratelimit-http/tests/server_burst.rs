//! Many clients at once: each gets exactly its own quota, no more and no less.

mod server_support;

use futures_util::future::join_all;
use server_support::{get_from, ok_service, serve};
use std::net::{IpAddr, Ipv4Addr};
use tower::Layer;
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::key::ClientIp;
use tower_ratelimit_http::server::HttpRateLimitLayer;

const CLIENTS: u8 = 20;
const REQUESTS_PER_CLIENT: usize = 10;
const BURST: u64 = 4;

#[tokio::test(start_paused = true)]
async fn twenty_clients_bursting_at_once_each_get_exactly_their_quota() {
    // Each client connects from its own loopback address (127.0.0.10 ..= 127.0.0.29),
    // so the peer address is the key; the clock is paused, so no unit refills while the
    // 200 requests race.
    let quota = Quota::per_minute(BURST).unwrap();
    let layer = HttpRateLimitLayer::keyed(quota, ClientIp::peer());
    let addr = serve(layer.layer(ok_service())).await;

    let requests = (0..CLIENTS).flat_map(|c| {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + c));
        (0..REQUESTS_PER_CLIENT)
            .map(move |_| async move { (ip, get_from(addr, ip, "/", &[]).await) })
    });
    let replies = join_all(requests).await;

    for c in 0..CLIENTS {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + c));
        let mine: Vec<_> = replies
            .iter()
            .filter(|(from, _)| *from == ip)
            .map(|(_, r)| r)
            .collect();
        let ok = mine.iter().filter(|r| r.status == 200).count();
        let limited = mine.iter().filter(|r| r.status == 429).count();
        assert_eq!(
            (ok, limited),
            (BURST as usize, REQUESTS_PER_CLIENT - BURST as usize),
            "client {ip}"
        );
        for r in mine.iter().filter(|r| r.status == 429) {
            assert_eq!(r.header("ratelimit"), r#""default";r=0;t=60"#);
            assert_eq!(r.header("retry-after"), "15");
        }
    }
}
