//! Shared code for the example programs: a local rate-limited API to run against,
//! the HTTP client the stacks start from, the strategies of the showdown, and the
//! measuring and charting around them.
//!
//! ```
//! use examples::api_server::{ApiConfig, ApiServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let server = ApiServer::start(ApiConfig::default()).await?;
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod api_server;
pub mod bulk;
pub mod chart;
pub mod cli;
pub mod client;
pub mod metrics;
pub mod observe;
pub mod report;
pub mod stack;
pub mod strategies;
