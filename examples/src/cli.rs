//! Checks for the example programs' command-line values, so a bad flag is a clear
//! message instead of a surprise later.
//!
//! ```
//! use examples::cli::positive_rate;
//!
//! assert_eq!(positive_rate("12.5"), Ok(12.5));
//! assert!(positive_rate("0").is_err());
//! assert!(positive_rate("NaN").is_err());
//! assert!(positive_rate("fast").is_err());
//! ```

/// The most pages a job may ask for: the exactly-once check keeps one bit per
/// page, 125 MB at this bound.
pub const MAX_PAGES: u64 = 1_000_000_000;

/// The most workers or requests in flight a program accepts.
pub const MAX_CONCURRENCY: usize = 10_000;

/// A rate in requests per second: a finite number above zero.
pub fn positive_rate(value: &str) -> Result<f64, String> {
    let rate: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a number"))?;
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        Err(format!(
            "the rate must be a finite number above zero, not {value}"
        ))
    }
}

/// A page count in `1..=MAX_PAGES`.
pub fn page_count(value: &str) -> Result<u64, String> {
    let pages: u64 = value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a whole number"))?;
    if (1..=MAX_PAGES).contains(&pages) {
        Ok(pages)
    } else {
        Err(format!("pages must be between 1 and {MAX_PAGES}"))
    }
}

/// A concurrency in `1..=MAX_CONCURRENCY`.
pub fn concurrency(value: &str) -> Result<usize, String> {
    let n: usize = value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a whole number"))?;
    if (1..=MAX_CONCURRENCY).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "concurrency must be between 1 and {MAX_CONCURRENCY}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_enforced() {
        assert_eq!(page_count("1"), Ok(1));
        assert!(page_count("0").is_err());
        assert!(page_count("1000000001").is_err());
        assert!(page_count("-3").is_err());
        assert_eq!(concurrency("10000"), Ok(10_000));
        assert!(concurrency("0").is_err());
        assert!(concurrency("10001").is_err());
        assert!(positive_rate("inf").is_err());
        assert!(positive_rate("-1").is_err());
    }
}
