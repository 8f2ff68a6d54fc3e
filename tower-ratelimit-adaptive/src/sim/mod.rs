//! The deterministic simulation harness: every controller against the same simulated
//! servers, schedules and clients, with fixed seeds.
//!
//! ```
//! use std::time::Duration;
//! use tower_ratelimit_adaptive::controller::{Controller, Goodput};
//! use tower_ratelimit_adaptive::sim::{phase_metrics, simulate, Feedback, Schedule, ServerKind, SimConfig};
//!
//! let cfg = SimConfig {
//!     server: ServerKind::TokenBucket { burst_secs: 0.1 },
//!     feedback: Feedback { headers: false, retry_after: false },
//!     honour_retry_after: true,
//!     clients: 1,
//!     schedule: Schedule::halve_double(100.0, 10),
//!     rtt: Duration::from_millis(50),
//!     jitter: 0.2,
//!     seed: 1,
//! };
//! let trace = simulate(&cfg, &|| Box::new(Goodput::default()) as Box<dyn Controller>);
//! let phases = phase_metrics(&trace, &cfg.schedule);
//! assert_eq!(phases.len(), 3);
//! assert!(phases[0].goodput > 0.8);
//! ```
//!
//! It is a pure discrete-event loop (no runtime, no wall clock): one run is a function
//! of its [`SimConfig`] and the controllers. The model:
//! * **Server** ([`ServerKind`]): token bucket (any burst), fixed window or sliding
//!   log, deciding each request when it reaches the server (half a round trip after
//!   it was sent); it can send RateLimit headers and Retry-After ([`Feedback`]).
//! * **Clients**: each paces with its own controller's rate and burst (a GCRA), caps
//!   requests in flight by the controller's concurrency and by a worker pool sized
//!   for four times the highest limit, retries every refused request, and, when
//!   `honour_retry_after` is set, sends nothing until a Retry-After has passed (what
//!   the layer's shared limiter does). A locally rejected request (SRE throttling)
//!   holds its worker for one round trip, as a failed call would.
//! * **Round trip**: mean `rtt`, uniform jitter.
//!
//! [`phase_metrics`] turns a run's [`Trace`] into the table's numbers; [`table`]
//! holds the standard scenarios and prints them as markdown.

mod engine;
mod metrics;
mod rng;
mod schedule;
mod server;
pub mod table;

pub use engine::{simulate, SimConfig, Trace};
pub use metrics::{phase_metrics, PhaseMetrics};
pub use rng::Rng;
pub use schedule::{Change, Demand, Phase, Schedule};
pub use server::{Feedback, Server, ServerKind, Verdict};
