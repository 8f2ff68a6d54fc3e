//! Client keys over real loopback HTTP: forwarding headers count only when a trusted
//! proxy sent them.

mod server_support;

use server_support::{get, ok_service, serve};
use tower::Layer;
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::key::{ClientIp, ForwardedHeader, IpNet};
use tower_ratelimit_http::server::HttpRateLimitLayer;

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[tokio::test(start_paused = true)]
async fn spoofed_x_forwarded_for_from_an_untrusted_peer_does_not_change_the_key() {
    // Only 10.0.0.0/8 is trusted; the test client connects from 127.0.0.1.
    let key = ClientIp::behind_proxies(nets(&["10.0.0.0/8"]), ForwardedHeader::XForwardedFor);
    let layer = HttpRateLimitLayer::keyed(Quota::per_second(2).unwrap(), key);
    let addr = serve(layer.layer(ok_service())).await;

    assert_eq!(
        get(addr, "/", &[("x-forwarded-for", "203.0.113.1")])
            .await
            .status,
        200
    );
    assert_eq!(
        get(addr, "/", &[("x-forwarded-for", "203.0.113.2")])
            .await
            .status,
        200
    );
    // A third "client" is still 127.0.0.1, whose quota is spent.
    let denied = get(addr, "/", &[("x-forwarded-for", "203.0.113.3, 10.0.0.1")]).await;
    assert_eq!(denied.status, 429);
    assert_eq!(
        get(addr, "/", &[("x-real-ip", "203.0.113.4")]).await.status,
        429
    );
}

#[tokio::test(start_paused = true)]
async fn through_a_trusted_proxy_each_forwarded_client_gets_its_own_quota() {
    let key = ClientIp::behind_proxies(
        nets(&["127.0.0.1/32", "10.0.0.0/8"]),
        ForwardedHeader::XForwardedFor,
    );
    let layer = HttpRateLimitLayer::keyed(Quota::per_second(2).unwrap(), key);
    let addr = serve(layer.layer(ok_service())).await;

    for client in ["203.0.113.1", "203.0.113.2", "2001:db8::1"] {
        for _ in 0..2 {
            assert_eq!(
                get(addr, "/", &[("x-forwarded-for", client)]).await.status,
                200,
                "{client}"
            );
        }
        assert_eq!(
            get(addr, "/", &[("x-forwarded-for", client)]).await.status,
            429,
            "{client}"
        );
    }
    // A client that writes its own X-Forwarded-For cannot escape: the proxy appended
    // the real address, and the walk from the right stops there. Another trusted hop
    // (10.0.0.9) in between is skipped.
    let forged = get(
        addr,
        "/",
        &[("x-forwarded-for", "6.6.6.6, 203.0.113.1, 10.0.0.9")],
    )
    .await;
    assert_eq!(forged.status, 429);
    // The proxy's own requests (no header) are keyed by the proxy.
    assert_eq!(get(addr, "/", &[]).await.status, 200);
    // A garbled chain from a trusted proxy is a 400, not a 500 and not a free pass.
    assert_eq!(
        get(addr, "/", &[("x-forwarded-for", "not-an-address")])
            .await
            .status,
        400
    );
}

#[tokio::test(start_paused = true)]
async fn forwarded_and_x_real_ip_headers() {
    let trusted = nets(&["127.0.0.0/8"]);
    let forwarded = ClientIp::behind_proxies(trusted.clone(), ForwardedHeader::Forwarded);
    let addr = serve(
        HttpRateLimitLayer::keyed(Quota::per_second(1).unwrap(), forwarded).layer(ok_service()),
    )
    .await;
    let a = [(
        "forwarded",
        r#"for=198.51.100.7;proto=https, for="127.0.0.5:4711""#,
    )];
    let b = [("forwarded", r#"for="[2001:db8:cafe::17]:4711""#)];
    assert_eq!(get(addr, "/", &a).await.status, 200);
    assert_eq!(get(addr, "/", &b).await.status, 200);
    assert_eq!(get(addr, "/", &a).await.status, 429);
    // X-Forwarded-For is not the configured header: ignored, so the key is the peer.
    assert_eq!(
        get(addr, "/", &[("x-forwarded-for", "198.51.100.8")])
            .await
            .status,
        200
    );
    assert_eq!(
        get(addr, "/", &[("x-forwarded-for", "198.51.100.9")])
            .await
            .status,
        429
    );

    let real_ip = ClientIp::behind_proxies(trusted, ForwardedHeader::XRealIp);
    let addr = serve(
        HttpRateLimitLayer::keyed(Quota::per_second(1).unwrap(), real_ip).layer(ok_service()),
    )
    .await;
    assert_eq!(
        get(addr, "/", &[("x-real-ip", "198.51.100.7")])
            .await
            .status,
        200
    );
    assert_eq!(
        get(addr, "/", &[("x-real-ip", "198.51.100.8")])
            .await
            .status,
        200
    );
    assert_eq!(
        get(addr, "/", &[("x-real-ip", "198.51.100.7")])
            .await
            .status,
        429
    );
}
