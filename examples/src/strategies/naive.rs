//! The naive strategies: plain tokio and futures, nothing from tower-ratelimit.
//! None of them retries, so a 429 is a lost page.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::future::join_all;
use tokio::sync::{mpsc, Semaphore};
use tower::BoxError;

use super::{RunConfig, Tally};
use crate::client::{Fetched, HttpClient};

async fn fetch(client: &HttpClient, url: &str, page: u64) -> Fetched {
    Fetched {
        page,
        response: client.get_page(url, page).await,
    }
}

/// One request at a time: never throttled, and as slow as the latency allows.
pub(super) async fn sequential(config: &RunConfig, tally: &mut Tally) -> Result<(), BoxError> {
    let client = HttpClient::new();
    for page in 1..=config.pages {
        tally.record(fetch(&client, &config.url, page).await);
    }
    Ok(())
}

/// Every request at once, all results held until the last one is in.
pub(super) async fn gather_all(config: &RunConfig, tally: &mut Tally) -> Result<(), BoxError> {
    let client = HttpClient::new();
    let all = join_all((1..=config.pages).map(|page| fetch(&client, &config.url, page))).await;
    for fetched in all {
        tally.record(fetched);
    }
    Ok(())
}

/// Every request spawned at once; a semaphore bounds how many are in flight, not
/// how often they start, and every task and result still sits in memory.
pub(super) async fn semaphore_only(config: &RunConfig, tally: &mut Tally) -> Result<(), BoxError> {
    let client = HttpClient::new();
    let permits = Arc::new(Semaphore::new(config.concurrency));
    let tasks: Vec<_> = (1..=config.pages)
        .map(|page| {
            let (client, permits, url) = (client.clone(), permits.clone(), config.url.clone());
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                fetch(&client, &url, page).await
            })
        })
        .collect();
    for done in join_all(tasks).await {
        tally.record(done?);
    }
    Ok(())
}

/// Batches of `concurrency`; each batch waits for its slowest request.
pub(super) async fn bounded_gather(config: &RunConfig, tally: &mut Tally) -> Result<(), BoxError> {
    let client = HttpClient::new();
    let batch = config.concurrency as u64;
    let mut first = 1;
    while first <= config.pages {
        let last = first.saturating_add(batch - 1).min(config.pages);
        for fetched in join_all((first..=last).map(|page| fetch(&client, &config.url, page))).await
        {
            tally.record(fetched);
        }
        first = last + 1;
    }
    Ok(())
}

/// `concurrency` workers pull the next page and stream results through a bounded
/// channel: memory is flat, but nothing paces how often requests start.
pub(super) async fn worker_pool(config: &RunConfig, tally: &mut Tally) -> Result<(), BoxError> {
    let client = HttpClient::new();
    let next = Arc::new(AtomicU64::new(1));
    let (results, mut inbox) = mpsc::channel(config.concurrency);
    for _ in 0..config.concurrency {
        let (client, next, results, url, pages) = (
            client.clone(),
            next.clone(),
            results.clone(),
            config.url.clone(),
            config.pages,
        );
        tokio::spawn(async move {
            loop {
                let page = next.fetch_add(1, Ordering::Relaxed);
                if page > pages {
                    break;
                }
                if results
                    .send(fetch(&client, &url, page).await)
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
    }
    drop(results);
    while let Some(fetched) = inbox.recv().await {
        tally.record(fetched);
    }
    Ok(())
}
