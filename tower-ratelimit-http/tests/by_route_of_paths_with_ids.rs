//! A route whose paths carry ids (Discord's `DELETE /channels/{channel}/messages/{message}`):
//! `ByRoute` keys a partition by the exact path, so each message made a fresh
//! partition with a full bucket, and the bucket the server names was learned only for
//! a path never asked again (15 of 20 deletes refused). `ByRouteOf` names the route,
//! and its requests share the bucket the server names.

use std::sync::{Arc, Mutex};
use tower::{Layer, ServiceExt};
use tower_ratelimit_core::{BoxError, Quota, RateLimiter};
use tower_ratelimit_http::feedback::{ByRoute, ByRouteOf, PartitionedFeedbackLayer};

type Req = http::Request<()>;

#[derive(Clone, Copy)]
enum Key {
    Host,
    Path,
    Route,
}

#[tokio::test(start_paused = true)]
async fn a_bucket_shared_by_paths_with_ids_is_honoured_by_their_route() {
    assert_eq!(deletes(Key::Route).await, 0, "ByRouteOf: refusals");
}

/// The exact path is a partition per message: the bucket holds nothing.
#[tokio::test(start_paused = true)]
async fn the_exact_path_partitions_by_id() {
    assert_eq!(deletes(Key::Path).await, 15, "ByRoute: refusals");
}

/// The same job keyed by host (the default) meets no refusal: the control.
#[tokio::test(start_paused = true)]
async fn control_by_host_meets_no_refusal() {
    assert_eq!(deletes(Key::Host).await, 0, "ByHost: refusals");
}

/// Deletes 20 messages of one channel in a row; returns how many the server refused.
async fn deletes(key: Key) -> u32 {
    // Discord-like: one bucket "msg-delete" of 5 per 5 s for every message of a channel.
    // (window, used in it, 429s)
    let used: Arc<Mutex<(u64, u32, u32)>> = Arc::default();
    let state = Arc::clone(&used);
    let window_start = tokio::time::Instant::now();
    let api = tower::service_fn(move |_req: Req| {
        let state = Arc::clone(&state);
        async move {
            let mut s = state.lock().unwrap();
            let elapsed = tokio::time::Instant::now() - window_start;
            let window = elapsed.as_secs() / 5;
            if window != s.0 {
                (s.0, s.1) = (window, 0);
            }
            let reset_after = format!("{:.3}", (window + 1) as f64 * 5.0 - elapsed.as_secs_f64());
            let mut b = http::Response::builder()
                .header("x-ratelimit-bucket", "msg-delete")
                .header("x-ratelimit-limit", "5");
            if s.1 >= 5 {
                s.2 += 1;
                b = b
                    .status(429)
                    .header("retry-after", "5")
                    .header("x-ratelimit-remaining", "0")
                    .header("x-ratelimit-reset-after", reset_after)
                    .header("x-ratelimit-scope", "user");
            } else {
                s.1 += 1;
                b = b
                    .header("x-ratelimit-remaining", (5 - s.1).to_string())
                    .header("x-ratelimit-reset-after", reset_after);
            }
            Ok::<_, BoxError>(b.body(()).unwrap())
        }
    });
    let layer = PartitionedFeedbackLayer::new(
        Quota::per_second(50).unwrap(),
        RateLimiter::new(Quota::per_second(1000).unwrap()),
    );
    let route = |_: &http::Method, path: &str| match path.rsplit_once("/messages/") {
        Some((channel, _)) => format!("{channel}/messages/{{id}}"),
        None => path.to_owned(),
    };
    let client = match key {
        Key::Route => {
            tower::util::BoxCloneService::new(layer.partition_by(ByRouteOf(route)).layer(api))
        }
        Key::Path => tower::util::BoxCloneService::new(layer.partition_by(ByRoute).layer(api)),
        Key::Host => tower::util::BoxCloneService::new(layer.layer(api)),
    };
    for id in 0..20 {
        let uri = format!("https://discord.test/api/channels/1/messages/{id}");
        let req = http::Request::delete(uri).body(()).unwrap();
        client.clone().oneshot(req).await.unwrap();
    }
    let refused = used.lock().unwrap().2;
    refused
}
