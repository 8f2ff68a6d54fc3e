//! Decisions per second and latency of `RedisStore` against a local `redis-server`,
//! next to a plain `GET` on the same connection.
//!
//! `cargo bench -p tower-ratelimit-redis --bench redis` starts a throwaway
//! `redis-server` on a free loopback port (no persistence) and prints a Markdown
//! table. `BENCH_SECONDS` sets the time per cell (default 2), `BENCH_TASKS` the
//! concurrency levels (default `1,16,64,256`), `BENCH_CONNECTION=multiplexed` puts
//! the store on a plain `MultiplexedConnection` instead of the default
//! `ConnectionManager` (same socket sharing, no reconnection layer). A last table
//! repeats short batches of each operation at one task (`BENCH_ROUNDS`, default 10).
//!
//! Every decision is a real script run: the quota (1 000 000/s, burst 1 000 000)
//! admits everything and the negative cache is off, so nothing is answered locally.
//! "hot key" sends every decision to one key; "100k keys" spreads them uniformly
//! over 100 000 keys (each call owes 1 µs, so a key lives 1 ms: nearly every call
//! there creates its key, the cost of a client's first request). "raw EVALSHA" runs the GCRA script through `redis::Script`
//! without the store; "`return 1`" is the least any script costs.

#[path = "../tests/support/mod.rs"]
mod support;

use redis::aio::ConnectionLike;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::RedisServer;
use tower_ratelimit_core::store::RateStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_redis::{RedisStore, RemoteAlgorithm};

const KEYS: u64 = 100_000;

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Get,
    EmptyScript,
    RawScript,
    HotKey,
    ManyKeys,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "GET (baseline)",
            Op::EmptyScript => "EVALSHA of `return 1` (a script's floor)",
            Op::RawScript => "raw EVALSHA of the GCRA script, hot key",
            Op::HotKey => "decision, hot key",
            Op::ManyKeys => "decision, 100k keys",
        }
    }
}

/// What the store accepts, as the bench drives it.
trait Connection: ConnectionLike + Clone + Send + Sync + 'static {}
impl<C: ConnectionLike + Clone + Send + Sync + 'static> Connection for C {}

struct Cell {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    /// Redis's own time per call of the cell's command (`INFO commandstats`).
    server: String,
}

async fn reset_stats(conn: &mut impl ConnectionLike) {
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(conn)
        .await
        .expect("CONFIG RESETSTAT");
}

/// `usec_per_call` of `command` since the last reset: the time inside the server,
/// which separates the script's cost from the round trip's.
async fn server_time(conn: &mut impl ConnectionLike, command: &str) -> String {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO");
    let prefix = format!("cmdstat_{command}:");
    info.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .flat_map(|fields| fields.split(','))
        .find_map(|f| f.strip_prefix("usec_per_call="))
        .unwrap_or("?")
        .to_owned()
}

async fn run<C: Connection>(store: &RedisStore<C>, op: Op, tasks: usize, for_: Duration) -> Cell {
    let mut control = store.connection().clone();
    reset_stats(&mut control).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = store.clone();
        let stop = stop.clone();
        handles.push(tokio::spawn(async move {
            let mut conn = store.connection().clone();
            let script = redis::Script::new(RemoteAlgorithm::Gcra.source());
            let empty = redis::Script::new("return 1");
            // The script's packed arguments (see src/script/gcra.lua): increment 1 µs,
            // capacity 1 s, no wait, no backdate, interval 1 µs: a check.
            let packed: Vec<u8> = [1.0f64, 1e6, 0.0, 0.0, 1.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            let mut latencies = Vec::with_capacity(100_000);
            // xorshift: a cheap uniform key per call.
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (t as u64 + 1);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let before = Instant::now();
                match op {
                    Op::Get => {
                        let _: Option<String> = redis::cmd("GET")
                            .arg("bench:get")
                            .query_async(&mut conn)
                            .await
                            .expect("GET");
                    }
                    Op::RawScript => {
                        let _: i64 = script
                            .key("bench:raw")
                            .arg(&packed[..])
                            .invoke_async(&mut conn)
                            .await
                            .expect("EVALSHA");
                    }
                    Op::EmptyScript => {
                        let _: i64 = empty
                            .key("bench:raw")
                            .invoke_async(&mut conn)
                            .await
                            .expect("EVALSHA");
                    }
                    Op::HotKey => {
                        store.check("hot", 1).await.expect("decision");
                    }
                    Op::ManyKeys => {
                        store.check(&(x % KEYS), 1).await.expect("decision");
                    }
                }
                latencies.push(before.elapsed());
            }
            latencies
        }));
    }
    tokio::time::sleep(for_).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.expect("task"));
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let at = |q: f64| {
        all.get(((all.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    let command = if op == Op::Get { "get" } else { "evalsha" };
    Cell {
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        server: server_time(&mut control, command).await,
    }
}

/// One task, short homogeneous batches of each operation in turn, repeated: each
/// operation gets the same chances at a quiet moment of a shared machine, and each
/// batch is long enough for the CPUs' idle behaviour to settle on its pace (calls of
/// different lengths mixed call by call slow even the GETs down on this VM). The
/// minimum over rounds estimates a quiet machine; the median of the per-round ratios
/// shows the spread.
async fn batches<C: Connection>(store: &RedisStore<C>) {
    const OPS: [Op; 5] = [
        Op::Get,
        Op::EmptyScript,
        Op::RawScript,
        Op::HotKey,
        Op::ManyKeys,
    ];
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let batch = Duration::from_millis(200);
    let mut p50s: [Vec<Duration>; 5] = Default::default();
    let mut ratios: [Vec<f64>; 5] = Default::default();
    for _ in 0..rounds {
        let mut get = Duration::ZERO;
        for (i, op) in OPS.iter().enumerate() {
            let p50 = run(store, *op, 1, batch).await.p50;
            if *op == Op::Get {
                get = p50;
            }
            p50s[i].push(p50);
            ratios[i].push(p50.as_secs_f64() / get.as_secs_f64().max(1e-9));
        }
    }
    let min_get = p50s[0].iter().min().copied().unwrap_or_default();
    println!(
        "\nbatches, 1 task: {rounds} rounds of {} ms per operation in turn\n",
        batch.as_millis()
    );
    println!(
        "| operation | min p50 µs | median p50 µs | min p50 / min GET p50 | median of per-round ratios |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (i, op) in OPS.iter().enumerate() {
        p50s[i].sort_unstable();
        ratios[i].sort_by(f64::total_cmp);
        let min = p50s[i].first().copied().unwrap_or_default();
        let median = p50s[i].get(rounds / 2).copied().unwrap_or_default();
        println!(
            "| {} | {} | {} | {:.2} | {:.2} |",
            op.name(),
            us(min),
            us(median),
            min.as_secs_f64() / min_get.as_secs_f64().max(1e-9),
            ratios[i].get(rounds / 2).copied().unwrap_or_default()
        );
    }
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn main() {
    // `cargo test --benches` runs this with no `--bench` flag: stay quick then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("run with `cargo bench -p tower-ratelimit-redis --bench redis`");
        return;
    }
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let for_ = Duration::from_secs_f64(seconds);
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let quota = Quota::per_second(1_000_000)
        .and_then(|q| q.with_burst(1_000_000))
        .expect("quota");
    let builder = RedisStore::builder(quota)
        .prefix("bench:")
        .negative_cache(0)
        .timeout(Duration::from_secs(5));
    runtime.block_on(async {
        if std::env::var("BENCH_CONNECTION").as_deref() == Ok("multiplexed") {
            let client = redis::Client::open(server.url()).expect("client");
            let connection = client
                .get_multiplexed_async_connection()
                .await
                .expect("connect");
            bench(builder.build(connection), "one MultiplexedConnection", for_).await;
        } else {
            let store = builder.connect(server.url()).expect("store");
            bench(store, "one ConnectionManager (multiplexed)", for_).await;
        }
    });
}

async fn bench<C: Connection>(store: RedisStore<C>, connection: &str, for_: Duration) {
    let seconds = for_.as_secs_f64();
    // Warm up: connect, load the script.
    store.check("hot", 1).await.expect("warm-up");
    let _: () = redis::cmd("SET")
        .arg("bench:get")
        .arg("1795781396984349")
        .query_async(&mut store.connection().clone())
        .await
        .expect("SET");
    let version: String = {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut store.connection().clone())
            .await
            .expect("INFO");
        // Valkey also reports the Redis version it is compatible with.
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
        };
        field("valkey_version:")
            .map(|v| format!("valkey-server {v}"))
            .or_else(|| field("redis_version:").map(|v| format!("redis-server {v}")))
            .unwrap_or_else(|| "?".to_owned())
    };
    println!(
        "{version} on 127.0.0.1, {connection}, \
         tokio 2 worker threads, {seconds} s per cell\n"
    );
    println!("| operation | tasks | ops/s | p50 µs | p99 µs | p50 / GET p50 | server µs/call |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let levels: Vec<usize> = std::env::var("BENCH_TASKS")
        .ok()
        .map(|s| s.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 16, 64, 256]);
    for tasks in levels {
        let get = run(&store, Op::Get, tasks, for_).await;
        for op in [
            Op::Get,
            Op::EmptyScript,
            Op::RawScript,
            Op::HotKey,
            Op::ManyKeys,
        ] {
            let fresh;
            let cell = if op == Op::Get {
                &get
            } else {
                fresh = run(&store, op, tasks, for_).await;
                &fresh
            };
            println!(
                "| {} | {tasks} | {:.0} | {} | {} | {:.2} | {} |",
                op.name(),
                cell.per_second,
                us(cell.p50),
                us(cell.p99),
                cell.p50.as_secs_f64() / get.p50.as_secs_f64().max(1e-9),
                cell.server
            );
        }
    }
    batches(&store).await;
    let keys: i64 = redis::cmd("DBSIZE")
        .query_async(&mut store.connection().clone())
        .await
        .expect("DBSIZE");
    println!("\nkeys in Redis at the end (each expires one interval after its bucket is full again): {keys}");
    let stats = store.stats();
    println!("store stats: {stats:?}");
}
