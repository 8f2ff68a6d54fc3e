//! Explicit retry hints: `x-should-retry` (OpenAI) and `Stripe-Should-Retry`.

use super::bytes;
use super::collect::Collected;

/// Reads both hints; a `false` from either means do not retry.
pub(crate) fn read(headers: &http::HeaderMap, out: &mut Collected) {
    for name in ["x-should-retry", "stripe-should-retry"] {
        if let Some(hint) = bytes::first(headers, name).and_then(bytes::boolean) {
            out.should_retry = Some(out.should_retry.unwrap_or(true) && hint);
        }
    }
    if out.should_retry == Some(false) {
        out.do_not_retry = true;
    }
}
