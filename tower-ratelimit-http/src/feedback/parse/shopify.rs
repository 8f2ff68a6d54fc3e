//! Shopify: `X-Shopify-Shop-Api-Call-Limit: 32/40` (used / bucket size).

use super::bytes;
use super::collect::Collected;
use crate::feedback::model::{Dimension, WaitSource};

/// Reads the call-limit header.
pub(crate) fn read(headers: &http::HeaderMap, out: &mut Collected) {
    let Some(value) = bytes::first(headers, "x-shopify-shop-api-call-limit") else {
        return;
    };
    let Some(slash) = value.iter().position(|b| *b == b'/') else {
        return;
    };
    let (Some(used), Some(limit)) = (
        bytes::count(&value[..slash]),
        bytes::count(&value[slash + 1..]),
    ) else {
        return;
    };
    out.dimension(Dimension {
        name: "shopify".to_owned(),
        limit: Some(limit),
        remaining: Some(limit.saturating_sub(used)),
        reset: None,
        reset_source: WaitSource::VendorDelta,
    });
}
