//! A tonic gRPC server with a per-client limit on a unary method.
//!
//! ```text
//! cargo run --release -p examples --bin tonic_server -- --addr 127.0.0.1:50051 --rate 2 --burst 3
//! cargo run --release -p examples --bin tonic_server -- --rate 2 --burst 3 --demo 5
//! ```
//!
//! The service `demo.Greeter/SayHello` is written by hand (prost messages and tonic's
//! `server::Grpc`), so no `protoc` is needed. Each client (TCP peer address) may start
//! `--rate` calls per second with bursts of `--burst`; over that the call fails with
//! `RESOURCE_EXHAUSTED` and `grpc-retry-pushback-ms`, the delay gRPC clients honour
//! before retrying. With `--demo N` the program calls itself N times in a row and
//! prints what each call got, then exits.

use clap::Parser;
use http::uri::PathAndQuery;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;
use tower_ratelimit_core::Quota;
use tower_ratelimit_http::server::headers::PolicyName;
use tower_ratelimit_http::server::key::ClientIp;
use tower_ratelimit_http::server::HttpRateLimitLayer;

#[derive(Parser, Debug)]
#[command(about = "A tonic server with a per-client rate limit")]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: SocketAddr,
    /// Calls per second per client.
    #[arg(long, default_value_t = 2.0)]
    rate: f64,
    /// Calls a client may start at once after being idle.
    #[arg(long, default_value_t = 3)]
    burst: u64,
    /// Call the server this many times, print the outcomes, and exit.
    #[arg(long)]
    demo: Option<u32>,
}

/// `message HelloRequest { string name = 1; }`
#[derive(Clone, PartialEq, prost::Message)]
struct HelloRequest {
    #[prost(string, tag = "1")]
    name: String,
}

/// `message HelloReply { string message = 1; }`
#[derive(Clone, PartialEq, prost::Message)]
struct HelloReply {
    #[prost(string, tag = "1")]
    message: String,
}

const SAY_HELLO: &str = "/demo.Greeter/SayHello";

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The method's handler.
struct SayHello;

impl UnaryService<HelloRequest> for SayHello {
    type Response = HelloReply;
    type Future = BoxFuture<Result<Response<HelloReply>, Status>>;

    fn call(&mut self, request: Request<HelloRequest>) -> Self::Future {
        let name = request.into_inner().name;
        Box::pin(async move {
            Ok(Response::new(HelloReply {
                message: format!("hello, {name}"),
            }))
        })
    }
}

/// The `demo.Greeter` service: what tonic-build would generate, by hand.
#[derive(Clone)]
struct GreeterServer;

impl NamedService for GreeterServer {
    const NAME: &'static str = "demo.Greeter";
}

impl tower::Service<http::Request<Body>> for GreeterServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            if request.uri().path() == SAY_HELLO {
                let mut grpc = Grpc::new(ProstCodec::<HelloReply, HelloRequest>::default());
                Ok(grpc.unary(SayHello, request).await)
            } else {
                Ok(Status::unimplemented("no such method").into_http())
            }
        })
    }
}

/// Calls SayHello `calls` times from one connection and prints each outcome.
async fn demo(addr: SocketAddr, calls: u32) -> Result<(), Box<dyn std::error::Error>> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = tonic::client::Grpc::new(channel);
    for i in 1..=calls {
        client.ready().await?;
        let request = Request::new(HelloRequest {
            name: format!("call {i}"),
        });
        let outcome: Result<Response<HelloReply>, Status> = client
            .unary(
                request,
                PathAndQuery::from_static(SAY_HELLO),
                ProstCodec::default(),
            )
            .await;
        match outcome {
            Ok(reply) => {
                let ratelimit = reply
                    .metadata()
                    .get("ratelimit")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned();
                println!(
                    "call {i}: OK {:?} (ratelimit: {ratelimit})",
                    reply.into_inner().message
                );
            }
            Err(status) => {
                let pushback = status
                    .metadata()
                    .get("grpc-retry-pushback-ms")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                println!(
                    "call {i}: {:?} {:?} (grpc-retry-pushback-ms: {pushback})",
                    status.code(),
                    status.message()
                );
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let per_client =
        HttpRateLimitLayer::keyed(Quota::from_rate(args.rate, args.burst)?, ClientIp::peer())
            .policy_name(PolicyName::new("per-client")?)
            .grpc();

    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    println!(
        "gRPC on http://{addr}: demo.Greeter/SayHello, per client {}/s, burst {}",
        args.rate, args.burst
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(per_client)
            .add_service(GreeterServer)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async move {
                    tokio::select! {
                        _ = stopped => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                },
            ),
    );
    if let Some(calls) = args.demo {
        demo(addr, calls).await?;
        let _ = stop.send(());
    }
    server.await??;
    Ok(())
}
