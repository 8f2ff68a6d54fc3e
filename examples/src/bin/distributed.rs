//! One limit shared by several processes through Redis.
//!
//! `cargo run --release -p examples --bin distributed -- --spawn-redis` starts a
//! throwaway `redis-server` on a free loopback port (no persistence), then runs
//! `--processes` copies of itself. Each copy drives `--tasks` tasks through the
//! core's `RateLimiter` in wait mode, on a `RedisStore`: the same limiter as in one
//! process, with its bucket in Redis. At the end the parent prints what each process
//! admitted and the GCRA bound `burst + ⌊D / T⌋` for the run's length `D`.
//!
//! With `--redis-url redis://host:port/` it uses a running server instead (the key
//! is deleted first, so the bucket starts full).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use tower::BoxError;
use tower_ratelimit_core::{Quota, RateLimiter};
use tower_ratelimit_redis::RedisStore;

/// Several processes share one rate limit through Redis.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Start a throwaway redis-server on a free loopback port (needs `redis-server`
    /// on PATH: `apt-get install redis-server`).
    #[arg(long, conflicts_with = "redis_url")]
    spawn_redis: bool,
    /// A running Redis or Valkey server.
    #[arg(long)]
    redis_url: Option<String>,
    /// Processes sharing the limit.
    #[arg(long, default_value_t = 4)]
    processes: usize,
    /// Tasks per process, each acquiring units as fast as the limiter lets it.
    #[arg(long, default_value_t = 16)]
    tasks: usize,
    /// The shared rate, units per second.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// The shared burst.
    #[arg(long, default_value_t = 10)]
    burst: u64,
    /// How long to run, in seconds (from 0 to a year).
    #[arg(long, default_value_t = 5.0, value_parser = parse_seconds, allow_hyphen_values = true)]
    seconds: f64,
    /// The Redis key (prefix) of the shared bucket.
    #[arg(long, default_value = "distributed-example")]
    key: String,
    /// Internal: run as one worker process, starting at this Unix time (µs).
    #[arg(long, hide = true)]
    worker_start_us: Option<u64>,
}

/// The longest run `--seconds` accepts: a year, far past any useful run and far
/// from where the workers' deadline `now + run` overflows the clock (and panics).
const MAX_SECONDS: f64 = 365.0 * 86_400.0;

/// Checks `--seconds` once, where the arguments are parsed, so that a bad value
/// stops the parent with a message instead of panicking in every worker.
fn parse_seconds(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .parse()
        .map_err(|e| format!("`{s}` is not a number of seconds ({e})"))?;
    if secs.is_nan() || secs < 0.0 {
        return Err(format!("`{s}` is not 0 or more seconds"));
    }
    if secs > MAX_SECONDS {
        return Err(format!("`{s}` is longer than a year ({MAX_SECONDS} s)"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))?;
    Ok(secs)
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match args.worker_start_us {
        Some(start_us) => runtime.block_on(worker(&args, start_us)),
        None => parent(&args),
    }
}

fn quota(args: &Args) -> Result<Quota, BoxError> {
    Ok(Quota::per_second(args.rate)?.with_burst(args.burst)?)
}

/// One process: `tasks` tasks acquire units until the end, then report.
async fn worker(args: &Args, start_us: u64) -> Result<(), BoxError> {
    let url = args.redis_url.clone().ok_or("a worker needs --redis-url")?;
    let store = RedisStore::builder(quota(args)?)
        .prefix(&args.key)
        .timeout(Duration::from_millis(200))
        .connect(url)?;
    let limiter = RateLimiter::from_store(store.clone());
    // Connect and load the script before the common start.
    limiter.snapshot().await?;
    let run = Duration::try_from_secs_f64(args.seconds)?;
    tokio::time::sleep(Duration::from_micros(start_us.saturating_sub(unix_us()))).await;
    let end = tokio::time::Instant::now()
        .checked_add(run)
        .ok_or("--seconds: the run ends past the clock's range")?;
    let mut tasks = Vec::new();
    for _ in 0..args.tasks {
        let limiter = limiter.clone();
        tasks.push(tokio::spawn(async move {
            // The span runs from the first admission's request to the last one's
            // answer: Redis decided each somewhere in between, so the bound over it
            // holds whatever the round trips took.
            let (mut admitted, mut first, mut last) = (0u64, u64::MAX, 0u64);
            loop {
                let asked = unix_us();
                let Ok(acquired) = tokio::time::timeout_at(end, limiter.acquire(1)).await else {
                    break;
                };
                acquired?;
                admitted += 1;
                first = first.min(asked);
                last = last.max(unix_us());
            }
            Ok::<_, BoxError>((admitted, first, last))
        }));
    }
    let (mut admitted, mut first, mut last) = (0u64, u64::MAX, 0u64);
    for task in tasks {
        let (n, f, l) = task.await??;
        admitted += n;
        first = first.min(f);
        last = last.max(l);
    }
    let stats = store.stats();
    println!(
        "RESULT {admitted} {first} {last} {} {}",
        stats.remote_decisions,
        stats.failures()
    );
    Ok(())
}

/// The parent: starts Redis if asked, runs the workers, prints the table and bound.
fn parent(args: &Args) -> Result<(), BoxError> {
    let mut server = None;
    let url = match (&args.redis_url, args.spawn_redis) {
        (Some(url), _) => url.clone(),
        (None, true) => {
            let spawned = SpawnedRedis::start()?;
            let url = spawned.url();
            server = Some(spawned);
            url
        }
        (None, false) => return Err("give --spawn-redis or --redis-url".into()),
    };
    let client = redis::Client::open(url.as_str())?;
    let mut conn = client.get_connection()?;
    let _: () = redis::cmd("DEL").arg(&args.key).query(&mut conn)?;

    let quota = quota(args)?;
    println!(
        "{} processes x {} tasks share {}/s with burst {} for {} s, through {url}",
        args.processes, args.tasks, args.rate, args.burst, args.seconds
    );
    let exe = std::env::current_exe()?;
    let start_us = unix_us() + 1_500_000;
    let mut children: Vec<Child> = Vec::new();
    for _ in 0..args.processes {
        children.push(
            Command::new(&exe)
                .args([
                    "--redis-url",
                    &url,
                    "--tasks",
                    &args.tasks.to_string(),
                    "--rate",
                    &args.rate.to_string(),
                    "--burst",
                    &args.burst.to_string(),
                    "--seconds",
                    &args.seconds.to_string(),
                    "--key",
                    &args.key,
                    "--worker-start-us",
                    &start_us.to_string(),
                ])
                .stdout(Stdio::piped())
                .spawn()?,
        );
    }
    let (mut total, mut first, mut last) = (0u64, u64::MAX, 0u64);
    println!(
        "{:>8} {:>9} {:>16} {:>9}",
        "process", "admitted", "remote decisions", "failures"
    );
    for (i, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .ok_or_else(|| format!("worker {i} reported nothing: {stdout}"))?;
        let n: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let [admitted, f, l, remote, failures] = n[..] else {
            return Err(format!("worker {i}: bad report {line}").into());
        };
        println!("{i:>8} {admitted:>9} {remote:>16} {failures:>9}");
        total += admitted;
        first = first.min(f);
        last = last.max(l);
    }
    let interval_us = u64::try_from(quota.emission_interval().as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    let span = last.saturating_sub(first);
    let run_us = (args.seconds.max(0.0) * 1e6) as u64;
    println!("{:>8} {total:>9}", "total");
    println!(
        "bound over the run (D = {} s): burst + floor(D / T) = {}",
        args.seconds,
        args.burst.saturating_add(run_us / interval_us)
    );
    println!(
        "first admission asked to last answered: {:.3} s, bound {} ; admitted {total}",
        span as f64 / 1e6,
        args.burst.saturating_add(span / interval_us)
    );
    drop(server);
    Ok(())
}

/// A `redis-server` child on a free loopback port, killed on drop.
struct SpawnedRedis {
    child: Child,
    port: u16,
}

impl SpawnedRedis {
    fn start() -> Result<SpawnedRedis, BoxError> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server ({e}): install it with `apt-get install redis-server`"))?;
        let mut server = SpawnedRedis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.answers_ping() {
            if Instant::now() > deadline || matches!(server.child.try_wait(), Ok(Some(_))) {
                return Err(format!("redis-server did not start on port {}", server.port).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }
}

impl Drop for SpawnedRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn seconds(value: &str) -> Result<f64, clap::Error> {
        Args::try_parse_from(["distributed", "--seconds", value]).map(|a| a.seconds)
    }

    #[test]
    fn the_arguments_are_consistent() {
        Args::command().debug_assert();
        assert_eq!(Args::try_parse_from(["distributed"]).unwrap().seconds, 5.0);
    }

    #[test]
    fn seconds_a_worker_can_run_for_are_accepted() {
        for (value, secs) in [
            ("2.5", 2.5),
            ("0", 0.0),
            ("1e-3", 1e-3),
            ("31536000", MAX_SECONDS),
        ] {
            assert_eq!(seconds(value).unwrap(), secs, "{value}");
            // What a worker does with it, on the value the parent passes on.
            let again = seconds(&secs.to_string()).unwrap();
            let run = Duration::try_from_secs_f64(again).unwrap();
            assert!(tokio::time::Instant::now().checked_add(run).is_some());
        }
    }

    #[test]
    fn seconds_no_worker_can_run_for_are_an_error() {
        for value in [
            "inf", "-inf", "1e30", "NaN", "-1", "-0.5", "31536001", "five", "",
        ] {
            let err = seconds(value).expect_err(value);
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{value}: {err}"
            );
        }
    }
}
