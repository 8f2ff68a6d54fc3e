//! The layer inside an axum app served by `axum::serve`: peer addresses from
//! `ConnectInfo`, route keys from `MatchedPath`, per-route and global limits stacked.
#![cfg(feature = "axum")]

mod server_support;

use axum::routing::get;
use axum::Router;
use server_support::get as http_get;
use std::net::SocketAddr;
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::headers::PolicyName;
use tower_ratelimit_http::server::key::{ClientIp, RouteKey};
use tower_ratelimit_http::server::HttpRateLimitLayer;

/// Serves `app` on a free loopback port with connect info, as the README shows.
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

#[tokio::test(start_paused = true)]
async fn per_route_and_global_limits_in_one_app() {
    let per_client_route = HttpRateLimitLayer::keyed(
        Quota::per_second(2).unwrap(),
        (ClientIp::peer(), RouteKey::new()),
    )
    .policy_name(PolicyName::new("per-client-route").unwrap());
    let global = HttpRateLimitLayer::global(MemoryStore::new(Quota::per_second(5).unwrap()))
        .policy_name(PolicyName::new("global").unwrap());
    let app = Router::new()
        .route("/", get(|| async { "home" }))
        .route("/items/{id}", get(|| async { "item" }))
        .route_layer(per_client_route)
        .layer(global);
    let addr = serve(app).await;

    // /items/1 and /items/2 share the matched route `/items/{id}`: 2 per client.
    assert_eq!(http_get(addr, "/items/1", &[]).await.status, 200);
    let second = http_get(addr, "/items/2", &[]).await;
    assert_eq!(second.status, 200);
    assert_eq!(
        second.all("ratelimit"),
        [r#""per-client-route";r=0;t=1"#, r#""global";r=3;t=1"#]
    );
    assert_eq!(http_get(addr, "/items/3", &[]).await.status, 429);
    // `/` has its own per-route quota, but the global limit (5) is now reached.
    assert_eq!(http_get(addr, "/", &[]).await.status, 200);
    let last = http_get(addr, "/", &[]).await;
    assert_eq!(last.status, 200);
    assert_eq!(
        last.all("ratelimit"),
        [r#""per-client-route";r=0;t=1"#, r#""global";r=0;t=1"#]
    );
    let global_denied = http_get(addr, "/", &[]).await;
    assert_eq!(global_denied.status, 429);
    assert_eq!(global_denied.all("ratelimit"), [r#""global";r=0;t=1"#]);
}

#[tokio::test(start_paused = true)]
async fn requests_no_route_matched_share_one_bucket_per_client() {
    // The layer on the whole router reaches the fallback too, where axum records no
    // matched route: invented paths must not each get a fresh bucket.
    let per_client_route = HttpRateLimitLayer::keyed(
        Quota::per_second(1).unwrap(),
        (ClientIp::peer(), RouteKey::new().with_method()),
    );
    let app = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .fallback(|| async { "page" })
        .layer(per_client_route);
    let addr = serve(app).await;

    assert_eq!(http_get(addr, "/items/1", &[]).await.status, 200);
    assert_eq!(http_get(addr, "/items/2", &[]).await.status, 429);
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(http_get(addr, &format!("/page/{i}"), &[]).await.status);
    }
    assert_eq!(statuses, [200, 429, 429, 429, 429]);
}
