//! `application/problem+json` bodies (RFC 9457) with the problem types of the IETF
//! RateLimit draft.
//!
//! ```
//! use tower_ratelimit_http::server::problem::{Problem, ProblemType};
//!
//! let body = Problem::new(ProblemType::QuotaExceeded, 429)
//!     .detail("retry after 1 second")
//!     .violated_policy("per-ip")
//!     .to_json();
//! assert_eq!(
//!     body,
//!     r#"{"type":"https://iana.org/assignments/http-problem-types#quota-exceeded","title":"Request cannot be satisfied as assigned quota has been exceeded","status":429,"detail":"retry after 1 second","violated-policies":["per-ip"]}"#
//! );
//! ```

use std::fmt::Write as _;

/// The media type of the body.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// The problem types the draft defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemType {
    /// The client's requests exceed one or more quota policies.
    QuotaExceeded,
    /// The server cannot serve the client now for lack of capacity (not the client's
    /// fault).
    TemporaryReducedCapacity,
    /// The server detected an abnormal pattern of requests from the client.
    AbnormalUsageDetected,
    /// `about:blank` (RFC 9457): nothing beyond the status code, whose reason phrase
    /// is the title; the layer uses it for a request whose key it cannot read.
    Blank,
}

impl ProblemType {
    /// The type URI.
    pub fn uri(self) -> &'static str {
        match self {
            ProblemType::QuotaExceeded => {
                "https://iana.org/assignments/http-problem-types#quota-exceeded"
            }
            ProblemType::TemporaryReducedCapacity => {
                "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"
            }
            ProblemType::AbnormalUsageDetected => {
                "https://iana.org/assignments/http-problem-types#abnormal-usage-detected"
            }
            ProblemType::Blank => "about:blank",
        }
    }

    /// The short, human-readable title (empty for [`ProblemType::Blank`], whose title
    /// is the status's reason phrase).
    pub fn title(self) -> &'static str {
        match self {
            ProblemType::QuotaExceeded => {
                "Request cannot be satisfied as assigned quota has been exceeded"
            }
            ProblemType::TemporaryReducedCapacity => {
                "Request cannot be satisfied due to temporary reduced capacity"
            }
            ProblemType::AbnormalUsageDetected => {
                "Request not satisfied due to detection of abnormal request pattern"
            }
            // The body uses the status's reason phrase (see `Problem::to_json`).
            ProblemType::Blank => "",
        }
    }
}

/// A problem details object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    kind: ProblemType,
    status: u16,
    detail: Option<String>,
    violated_policies: Vec<String>,
}

impl Problem {
    /// A problem of `kind` sent with `status`.
    pub fn new(kind: ProblemType, status: u16) -> Problem {
        Problem {
            kind,
            status,
            detail: None,
            violated_policies: Vec::new(),
        }
    }

    /// An explanation specific to this occurrence.
    pub fn detail(mut self, detail: impl Into<String>) -> Problem {
        self.detail = Some(detail.into());
        self
    }

    /// Names a policy whose quota was exceeded (the `violated-policies` member).
    pub fn violated_policy(mut self, name: impl Into<String>) -> Problem {
        self.violated_policies.push(name.into());
        self
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("{\"type\":");
        json_string(&mut out, self.kind.uri());
        out.push_str(",\"title\":");
        let title = match self.kind {
            ProblemType::Blank => http::StatusCode::from_u16(self.status)
                .ok()
                .and_then(|status| status.canonical_reason())
                .unwrap_or("Error"),
            kind => kind.title(),
        };
        json_string(&mut out, title);
        let _ = write!(out, ",\"status\":{}", self.status);
        if let Some(detail) = &self.detail {
            out.push_str(",\"detail\":");
            json_string(&mut out, detail);
        }
        if !self.violated_policies.is_empty() {
            out.push_str(",\"violated-policies\":[");
            for (i, name) in self.violated_policies.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(&mut out, name);
            }
            out.push(']');
        }
        out.push('}');
        out
    }
}

/// Writes `s` as a JSON string literal.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_strings() {
        let json = Problem::new(ProblemType::TemporaryReducedCapacity, 503)
            .detail("a \"b\" \\ \n\u{1}")
            .to_json();
        assert!(json.contains(r#""detail":"a \"b\" \\ \n\u0001""#), "{json}");
        assert!(json.contains("\"status\":503"));
        assert!(!json.contains("violated-policies"));
    }
}
