//! Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
//! {limit,remaining,reset}`, where the reset is an RFC 3339 instant.

use super::bytes;
use super::collect::Collected;
use super::time::{self, ResponseTime};
use crate::feedback::model::{Dimension, WaitSource};

/// Reads the four dimensions.
pub(crate) fn read(headers: &http::HeaderMap, time: &ResponseTime, out: &mut Collected) {
    for dimension in ["requests", "tokens", "input-tokens", "output-tokens"] {
        let field =
            |what: &str| bytes::first(headers, &format!("anthropic-ratelimit-{dimension}-{what}"));
        out.dimension(Dimension {
            name: dimension.to_owned(),
            limit: field("limit").and_then(bytes::count),
            remaining: field("remaining").and_then(bytes::count),
            reset: field("reset")
                .and_then(time::rfc3339)
                .map(|at| time.until(at)),
            reset_source: WaitSource::AbsoluteReset,
        });
    }
}
