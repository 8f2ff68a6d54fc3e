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
