//! An axum server protecting itself per client IP, with a global limit on top.
//!
//! ```text
//! cargo run --release -p examples --bin axum_server -- \
//!     --addr 127.0.0.1:3000 --rate 5 --burst 10 [--trust-proxy 10.0.0.0/8]...
//! ```
//!
//! Serves `GET /` and `GET /items/{id}`. Each client IP may start `--rate` requests per
//! second with bursts of `--burst`; over that it gets a 429 with `Retry-After` and the
//! IETF `RateLimit` fields (which allowed responses carry too). The client IP is the
//! TCP peer, or — only for requests arriving from a `--trust-proxy` network — the
//! address that proxy appended to `X-Forwarded-For`, so clients cannot pick their own
//! key. A global limit (`--global-rate`) guards the server as a whole; it sits inside
//! the per-IP layer, so that requests a client's own quota refuses never spend it.
//! `--items-rate` adds a per-route limit on `/items/{id}` (per client IP, on the
//! route itself). Every response lists each policy it passed through, the innermost
//! layer's first (each layer appends its own on the way out):
//!
//! ```text
//! $ curl -i http://127.0.0.1:3000/items/7
//! HTTP/1.1 200 OK
//! content-type: text/plain; charset=utf-8
//! ratelimit-policy: "global";q=1000;w=1
//! ratelimit-policy: "per-ip";q=10;w=2
//! ratelimit: "global";r=999;t=1
//! ratelimit: "per-ip";r=9;t=1
//! ```

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use clap::Parser;
use std::net::SocketAddr;
use tower_ratelimit_core::store::MemoryStore;
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::headers::PolicyName;
use tower_ratelimit_http::server::key::{ClientIp, ForwardedHeader, IpNet};
use tower_ratelimit_http::server::HttpRateLimitLayer;

#[derive(Parser, Debug)]
#[command(about = "An axum server with a per-client-IP rate limit")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Requests per second per client IP.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Requests a client IP may start at once after being idle.
    #[arg(long, default_value_t = 10)]
    burst: u64,
    /// A proxy network (CIDR) whose X-Forwarded-For is believed; repeatable.
    #[arg(long = "trust-proxy", value_name = "CIDR")]
    trust_proxy: Vec<IpNet>,
    /// Requests per second for the whole server (burst equal to one second's worth).
    #[arg(long, default_value_t = 1000)]
    global_rate: u64,
    /// An extra, per-route limit on `GET /items/{id}`: requests per second per client
    /// IP on that route (off unless given).
    #[arg(long)]
    items_rate: Option<f64>,
    /// The burst of the `/items/{id}` limit (default: `--burst`).
    #[arg(long)]
    items_burst: Option<u64>,
}

/// The app: handlers, a per-client-IP limit, and a global limit around both.
fn app(args: &Args) -> Result<Router, Box<dyn std::error::Error>> {
    let client_ip = if args.trust_proxy.is_empty() {
        ClientIp::peer()
    } else {
        ClientIp::behind_proxies(
            args.trust_proxy.iter().copied(),
            ForwardedHeader::XForwardedFor,
        )
    };
    let per_ip =
        HttpRateLimitLayer::keyed(Quota::from_rate(args.rate, args.burst)?, client_ip.clone())
            .policy_name(PolicyName::new("per-ip")?)
            .problem_details(true);
    let items = get(|Path(id): Path<u64>| async move { format!("{{\"id\":{id}}}\n") });
    // A per-route limit sits on the route itself, inside the app-wide layers: a request
    // to /items/{id} passes the per-IP limit, then the global limit, then this one.
    let items = match args.items_rate {
        Some(rate) => {
            let burst = args.items_burst.unwrap_or(args.burst);
            items.layer(
                HttpRateLimitLayer::keyed(Quota::from_rate(rate, burst)?, client_ip)
                    .policy_name(PolicyName::new("items-per-ip")?)
                    .problem_details(true),
            )
        }
        None => items,
    };
    let global = HttpRateLimitLayer::global(MemoryStore::new(Quota::per_second(args.global_rate)?))
        .policy_name(PolicyName::new("global")?);
    Ok(Router::new()
        .route("/", get(|| async { "hello\n" }))
        .route("/items/{id}", items)
        // The outermost layer decides first: per IP, so that the requests one client's
        // quota refuses never spend the global limit that every client shares.
        .layer(global)
        .layer(per_ip))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let app = app(&args)?;
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let trusted: Vec<String> = args.trust_proxy.iter().map(ToString::to_string).collect();
    println!(
        "listening on http://{} (per client IP: {}/s, burst {}; trusted proxies: [{}]; global: {}/s)",
        listener.local_addr()?,
        args.rate,
        args.burst,
        trusted.join(", "),
        args.global_rate,
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
