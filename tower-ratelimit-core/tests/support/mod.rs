//! What several of the core's test files share.

#![allow(dead_code)]

pub mod starts;

/// The boxed answer of a test store that decides asynchronously (a stand-in for a
/// remote store).
pub type BoxedAnswer = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<
                    tower_ratelimit_core::store::Decision,
                    tower_ratelimit_core::error::StoreError,
                >,
            > + Send,
    >,
>;
