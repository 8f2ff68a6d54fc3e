//! HTTP for tower-ratelimit: listen to rate-limit feedback on clients, answer with
//! standard headers on servers.
//!
//! ```
//! assert_eq!(2 + 2, 4);
//! ```

pub mod feedback;
#[cfg(feature = "reqwest-middleware")]
pub mod reqwest;
pub mod retry;
pub mod server;

pub use feedback::{
    Class, Classify, DefaultClassifier, Feedback, FeedbackLayer, FeedbackParser,
    PartitionedFeedbackLayer, Profile, WaitOverCap,
};
#[cfg(feature = "reqwest-middleware")]
pub use reqwest::RateLimitMiddleware;
pub use retry::{Backoff, Idempotency, RetryPolicy};
pub use server::{HttpRateLimit, HttpRateLimitLayer, OnMissingKey, OnStoreError};
