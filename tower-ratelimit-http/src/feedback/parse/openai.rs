//! OpenAI: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, where the reset is
//! a Go duration string (`1s`, `6m0s`, `12ms`).

use super::bytes;
use super::collect::Collected;
use super::time;
use crate::feedback::model::{Dimension, WaitSource};

/// Reads the requests and tokens dimensions.
pub(crate) fn read(headers: &http::HeaderMap, out: &mut Collected) {
    for dimension in ["requests", "tokens"] {
        let field = |what: &str| bytes::first(headers, &format!("x-ratelimit-{what}-{dimension}"));
        let reset = field("reset").and_then(|v| time::go_duration(v).or_else(|| bytes::seconds(v)));
        out.dimension(Dimension {
            name: dimension.to_owned(),
            limit: field("limit").and_then(bytes::count),
            remaining: field("remaining").and_then(bytes::count),
            reset,
            reset_source: WaitSource::VendorDelta,
        });
    }
}
