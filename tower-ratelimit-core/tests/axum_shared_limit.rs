//! The axum#2634 failure: axum clones the route's service for every request, so a
//! limit that each clone kept alone let 1,500 concurrent requests through a 5/s cap.
//! Here the clones share one limiter and exactly the quota passes in each second.

use axum::error_handling::HandleErrorLayer;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use std::time::Duration;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_ratelimit_core::error::RateLimited;
use tower_ratelimit_core::{Quota, RateLimitLayer};

async fn too_many(error: BoxError) -> StatusCode {
    if error.is::<RateLimited>() {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

#[tokio::test(start_paused = true)]
async fn fifteen_hundred_concurrent_requests_get_exactly_the_quota_each_second() {
    let quota = Quota::per_second(5).unwrap().with_burst(5).unwrap();
    let app = Router::new().route("/", get(|| async { "ok" })).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(too_many))
            .layer(RateLimitLayer::new(quota).reject()),
    );

    for second in 0..4 {
        let tasks: Vec<_> = (0..1_500)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move {
                    let request = Request::get("/").body(axum::body::Body::empty()).unwrap();
                    app.oneshot(request).await.unwrap().status()
                })
            })
            .collect();
        let mut ok = 0;
        let mut limited = 0;
        for task in tasks {
            match task.await.unwrap() {
                StatusCode::OK => ok += 1,
                StatusCode::TOO_MANY_REQUESTS => limited += 1,
                other => panic!("unexpected status {other}"),
            }
        }
        assert_eq!(ok, 5, "second {second}: exactly the quota passes");
        assert_eq!(limited, 1_495);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
