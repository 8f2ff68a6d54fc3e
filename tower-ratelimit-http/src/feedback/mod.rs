//! Listening to rate-limit feedback on a client: parse what the server says, classify
//! the response, and steer the shared limiter.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use http::{HeaderMap, StatusCode};
//! use tower_ratelimit_http::feedback::{Class, Classify, DefaultClassifier, FeedbackParser};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("ratelimit-policy", r#""burst";q=100;w=60"#.parse().unwrap());
//! headers.insert("ratelimit", r#""burst";r=0;t=12"#.parse().unwrap());
//! let feedback = FeedbackParser::new().parse(StatusCode::TOO_MANY_REQUESTS, &headers, SystemTime::now());
//! assert_eq!(DefaultClassifier.classify(&feedback), Class::Throttled);
//! assert_eq!(feedback.limit, Some(100));
//! assert_eq!(feedback.wait(), Ok(Some(Duration::from_secs(12))));
//! ```

mod classify;
mod future;
mod layer;
mod model;
mod next_unit;
mod parse;
pub(crate) mod partition;
mod service;
pub(crate) mod steer;

pub use classify::{Class, Classify, DefaultClassifier, GRPC_RESOURCE_EXHAUSTED, GRPC_UNAVAILABLE};
pub use future::ResponseFuture;
pub use layer::FeedbackLayer;
pub use model::{Dimension, Feedback, Partition, Policy, QuotaUnit, WaitOverCap, WaitSource};
pub use parse::{FeedbackParser, Profile};
pub use partition::{
    ByHost, ByRoute, ByRouteOf, PartitionBy, PartitionedFeedback, PartitionedFeedbackLayer,
    Partitions,
};
pub use service::FeedbackService;
