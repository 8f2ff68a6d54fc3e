//! The request handlers and the headers they write.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::Deserialize;
use tokio::time::Instant;

use super::bucket::TokenBucket;
use super::stats::ApiStats;
use super::{ApiConfig, RetryAfterStyle};

/// Items per page in the JSON body.
const ITEMS_PER_PAGE: u64 = 3;

#[derive(Debug)]
pub(super) struct AppState {
    pub(super) bucket: Mutex<TokenBucket>,
    pub(super) stats: ApiStats,
    pub(super) config: ApiConfig,
}

#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    page: u64,
}

pub(super) async fn items(
    State(app): State<Arc<AppState>>,
    Query(q): Query<PageQuery>,
) -> Response {
    let now = Instant::now();
    let in_flight = app.stats.arrived(now);
    let seq = in_flight.seq();
    app.stats.check_retry(q.page, now);

    if let Some(every) = app.config.unavailable_every.filter(|n| *n > 0) {
        if seq % every == 0 {
            let wait = Duration::from_secs(1);
            app.stats.unavailable(q.page, now + wait);
            let mut headers = HeaderMap::new();
            retry_after(&mut headers, app.config.retry_after, seq, wait);
            return (StatusCode::SERVICE_UNAVAILABLE, headers, "unavailable\n").into_response();
        }
    }

    let taken = lock(&app.bucket).take(now);
    match taken {
        Err(next_token) => {
            // Rounded up and never 0, so an honest client never comes back too early.
            let wait = Duration::from_secs(next_token.as_secs_f64().ceil().max(1.0) as u64);
            // A rate so low that the wait passes the clock's range: no early-retry
            // bookkeeping for it (no client lives that long).
            app.stats
                .throttled(q.page, now.checked_add(wait).unwrap_or(now));
            let mut headers = HeaderMap::new();
            ratelimit_fields(&mut headers, &app, 0, wait);
            retry_after(&mut headers, app.config.retry_after, seq, wait);
            (StatusCode::TOO_MANY_REQUESTS, headers, "slow down\n").into_response()
        }
        Ok(remaining) => {
            let delay = jittered(app.config.latency, app.config.jitter);
            tokio::time::sleep(delay).await;
            let mut headers = HeaderMap::new();
            if app.config.advertise {
                let (_, next) = lock(&app.bucket).peek(Instant::now());
                ratelimit_fields(&mut headers, &app, remaining, next);
            }
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            app.stats.ok();
            (StatusCode::OK, headers, page_body(q.page)).into_response()
        }
    }
}

pub(super) async fn stats(State(app): State<Arc<AppState>>) -> Response {
    let r = app.stats.report();
    let body = serde_json::json!({
        "requests": r.requests,
        "ok": r.ok,
        "throttled": r.throttled,
        "unavailable": r.unavailable,
        "early_retries": r.early_retries,
        "peak_in_flight": r.peak_in_flight,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn page_body(page: u64) -> String {
    // Written by hand so that "page" comes first, as the docs show it.
    let first = page.saturating_mul(ITEMS_PER_PAGE);
    let items: Vec<String> = (0..ITEMS_PER_PAGE)
        .map(|i| format!("\"item-{}\"", first.saturating_add(i)))
        .collect();
    format!("{{\"page\":{page},\"items\":[{}]}}", items.join(","))
}

/// The draft's `RateLimit-Policy` (quota per window) and `RateLimit` (remaining,
/// seconds until more) fields.
fn ratelimit_fields(headers: &mut HeaderMap, app: &AppState, remaining: u64, next: Duration) {
    let (quota, window) = policy(app.config.rate);
    let policy = format!("\"default\";q={quota};w={window}");
    let t = next.as_secs_f64().ceil() as u64;
    let current = format!("\"default\";r={remaining};t={t}");
    if let Ok(v) = HeaderValue::from_str(&policy) {
        headers.insert("ratelimit-policy", v);
    }
    if let Ok(v) = HeaderValue::from_str(&current) {
        headers.insert("ratelimit", v);
    }
}

fn retry_after(headers: &mut HeaderMap, style: RetryAfterStyle, seq: u64, wait: Duration) {
    let as_date = match style {
        RetryAfterStyle::Seconds => false,
        RetryAfterStyle::HttpDate => true,
        RetryAfterStyle::Mixed => seq % 2 == 0,
    };
    if as_date {
        // Date and Retry-After come from the same clock reading, so the client's
        // difference is exactly the wait (both truncate the same fraction).
        let now = SystemTime::now();
        let date = httpdate::fmt_http_date(now);
        // An HTTP date ends in 9999; a longer wait is said in seconds below.
        let Some(until) = now.checked_add(wait).filter(|t| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .is_ok_and(|d| d.as_secs() < 253_402_300_800)
        }) else {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
            return;
        };
        let until = httpdate::fmt_http_date(until);
        if let (Ok(d), Ok(u)) = (HeaderValue::from_str(&date), HeaderValue::from_str(&until)) {
            headers.insert(header::DATE, d);
            headers.insert(header::RETRY_AFTER, u);
        }
    } else {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
    }
}

fn jittered(latency: Duration, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return latency;
    }
    let low = latency.saturating_sub(jitter);
    let high = latency.saturating_add(jitter);
    rand::rng().random_range(low..=high)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The policy's quota and whole-second window for `rate` per second: the shortest
/// window (up to an hour) in which the rate allows a whole number of requests within
/// 1%, the quota rounded down so the server never advertises more than it enforces
/// (0.5/s is `q=1;w=2`, not `q=1;w=1`; 2.6/s is `q=13;w=5`, not `q=3;w=1`).
fn policy(rate: f64) -> (u64, u64) {
    let rate = if rate.is_finite() && rate > 0.0 {
        rate
    } else {
        0.0
    };
    let mut best = ((rate.floor()) as u64, 1);
    for window in 1..=3600u64 {
        let allowed = rate * window as f64;
        let quota = allowed.floor();
        if quota >= 1.0 && allowed - quota <= allowed * 0.01 {
            return (quota as u64, window);
        }
        if best.0 == 0 && quota >= 1.0 {
            best = (quota as u64, window);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::policy;

    #[test]
    fn the_policy_never_advertises_more_than_the_rate() {
        assert_eq!(policy(100.0), (100, 1));
        assert_eq!(policy(0.5), (1, 2));
        assert_eq!(policy(2.6), (13, 5));
        assert_eq!(policy(1e-300), (0, 1));
        for rate in [0.3, 0.7, 1.5, 2.6, 3.3, 99.9, 1234.5] {
            let (q, w) = policy(rate);
            assert!(q as f64 <= rate * w as f64 + 1e-9, "{rate}: q={q} w={w}");
            assert!(q as f64 >= 0.99 * rate * w as f64, "{rate}: q={q} w={w}");
        }
    }
}
