//! The `bulk_fetch` binary: exit status and output file, against the local API.

use std::process::Command;
use std::time::Duration;

use examples::api_server::{ApiConfig, ApiServer};

fn api() -> ApiConfig {
    ApiConfig {
        rate: 1000.0,
        burst: 20,
        latency: Duration::from_millis(2),
        jitter: Duration::from_millis(1),
        ..ApiConfig::default()
    }
}

fn bulk_fetch(url: &str, pages: u64, out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bulk_fetch"))
        .args([
            "--url",
            url,
            "--pages",
            &pages.to_string(),
            "--rate",
            "500",
            "--concurrency",
            "4",
        ])
        .arg("--out")
        .arg(out)
        .output()
        .expect("bulk_fetch runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exits_zero_with_one_line_per_page() {
    let server = ApiServer::start(api()).await.unwrap();
    let out = std::env::temp_dir().join(format!("bulk_fetch_cli_ok_{}.jsonl", std::process::id()));
    let url = server.url();
    let done = tokio::task::spawn_blocking({
        let out = out.clone();
        move || bulk_fetch(&url, 25, &out)
    })
    .await
    .unwrap();
    server.shutdown().await;

    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let summary = String::from_utf8_lossy(&done.stdout);
    assert!(summary.contains("pages 25/25 written"), "{summary}");
    let written = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let mut pages: Vec<u64> = written
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["page"]
                .as_u64()
                .unwrap()
        })
        .collect();
    pages.sort_unstable();
    assert_eq!(pages, (1..=25).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exits_non_zero_when_pages_are_missing() {
    let server = ApiServer::start(api()).await.unwrap();
    let out = std::env::temp_dir().join(format!("bulk_fetch_cli_404_{}.jsonl", std::process::id()));
    // A path the API does not serve: every page is a 404, which is not retried.
    let url = format!("http://{}/missing", server.addr());
    let done = tokio::task::spawn_blocking({
        let out = out.clone();
        move || bulk_fetch(&url, 5, &out)
    })
    .await
    .unwrap();
    server.shutdown().await;
    let _ = std::fs::remove_file(&out);

    assert_eq!(
        done.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&done.stdout)
    );
    assert!(String::from_utf8_lossy(&done.stdout).contains("pages 0/5 written"));
}
