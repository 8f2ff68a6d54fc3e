//! One row per strategy, and the table they make (Markdown, readable in a terminal).
//!
//! ```
//! use std::time::Duration;
//! use examples::report::{Row, table};
//!
//! let row = Row {
//!     strategy: "sequential".into(),
//!     elapsed: Duration::from_secs(2),
//!     pages_ok: 100,
//!     throttled: 0,
//!     retries: 0,
//!     peak_in_flight: 1,
//!     peak_heap: 2048,
//!     lost: 0,
//!     note: None,
//! };
//! let text = table(&[row]);
//! assert!(text.contains("| sequential |"));
//! assert!(text.contains("| 50.0 |"));
//! ```

use std::fmt::Write;
use std::time::Duration;

use crate::metrics::human_bytes;

/// What one strategy did.
#[derive(Debug, Clone)]
pub struct Row {
    /// The strategy's name.
    pub strategy: String,
    /// Wall time from the first request to the last answer.
    pub elapsed: Duration,
    /// Pages fetched with a 200.
    pub pages_ok: u64,
    /// 429s the server sent.
    pub throttled: u64,
    /// Requests beyond one per page.
    pub retries: u64,
    /// Most requests the server had in flight at once.
    pub peak_in_flight: u64,
    /// Peak client heap above what was in use before the run, in bytes.
    pub peak_heap: usize,
    /// Pages that never came back with a 200.
    pub lost: u64,
    /// Set when the strategy could not run; the numbers are then meaningless.
    pub note: Option<String>,
}

impl Row {
    /// Pages fetched per second of wall time.
    pub fn pages_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.pages_ok as f64 / secs
        } else {
            0.0
        }
    }
}

/// The rows as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| strategy | time (s) | pages/s | 429s | retries | peak in flight | peak heap | pages lost |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = match &r.note {
            Some(note) => writeln!(out, "| {} | {note} | | | | | | |", r.strategy),
            None => writeln!(
                out,
                "| {} | {:.1} | {:.1} | {} | {} | {} | {} | {} |",
                r.strategy,
                r.elapsed.as_secs_f64(),
                r.pages_per_second(),
                r.throttled,
                r.retries,
                r.peak_in_flight,
                human_bytes(r.peak_heap),
                r.lost
            ),
        };
    }
    out
}
