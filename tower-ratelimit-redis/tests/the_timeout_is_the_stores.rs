//! The store's timeout is the one that bounds a call. The `ConnectionManager` that
//! `connect` builds has a response timeout of its own (500 ms unless set), which cut
//! every longer store timeout short: a store built with a 2 s timeout for a slow,
//! distant server gave up on each call after 500 ms, as an I/O error
//! (`Unavailable::Redis`, "timed out") rather than the store's
//! `Unavailable::Timeout`, and no such call ever counted as the timeout that
//! replaces a silent connection.
//!
//! Guaranteed: on a server that does not answer, a call fails with the store's own
//! `Unavailable::Timeout`, carrying the configured timeout.
//!
//! Real redis-server, frozen with SIGSTOP.

mod support;

use std::time::Duration;
use support::RedisServer;
use tower_ratelimit_core::error::StoreError;
use tower_ratelimit_core::store::RateStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::error::Unavailable;
use tower_ratelimit_redis::{FailurePolicy, RedisStore};

#[tokio::test]
async fn a_timeout_longer_than_the_managers_default_is_kept() {
    let server = RedisServer::start();
    let store = RedisStore::builder(Quota::per_second(10).expect("quota"))
        .timeout(Duration::from_secs(2))
        .failure_policy(FailurePolicy::FailClosed)
        .connect(server.url())
        .expect("store");
    assert!(store.check("k", 1).await.expect("decision").is_allowed());
    server.freeze();
    let answer = store.check("k", 1).await;
    server.thaw();
    let cause = match &answer {
        Err(StoreError::Unavailable(cause)) => cause.downcast_ref::<Unavailable>(),
        _ => None,
    };
    assert!(
        matches!(cause, Some(Unavailable::Timeout(after)) if *after == Duration::from_secs(2)),
        "not the store's timeout: {answer:?}"
    );
}
