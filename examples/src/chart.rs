//! The showdown's chart: requests started per second over time, one panel per
//! strategy, the server's limit drawn in red.
//!
//! ```
//! use examples::chart::{per_second, Series};
//!
//! // Ten arrivals in the first 100 ms, five in the next: 100/s, then 50/s.
//! let rate = per_second(&[10, 5]);
//! assert_eq!(rate, vec![(0.0, 0.0), (0.0, 100.0), (0.1, 100.0), (0.1, 50.0), (0.2, 50.0)]);
//! let series = Series { name: "demo".into(), arrivals: vec![10, 10, 0, 0] };
//! let path = std::env::temp_dir().join("tower-ratelimit-chart-doctest.svg");
//! examples::chart::draw_svg(&path, &[series], 50.0, "demo").unwrap();
//! assert!(std::fs::read_to_string(&path).unwrap().contains("<svg"));
//! ```

use std::path::Path;

use plotters::prelude::*;
use tower::BoxError;

use crate::api_server::stats::BUCKET;

/// One strategy's arrivals at the server, per 100 ms bucket.
#[derive(Debug, Clone)]
pub struct Series {
    /// The panel's title.
    pub name: String,
    /// Requests that reached the server in each bucket.
    pub arrivals: Vec<u32>,
}

/// The rate of starts in each bucket, as requests per second: `(seconds since the
/// start at the bucket's end, rate)`, beginning with `(0, 0)`.
///
/// Each bucket stands alone (no moving average), so a burst shows as the spike it
/// was instead of being smeared over the following second.
pub fn per_second(arrivals: &[u32]) -> Vec<(f64, f64)> {
    let width = BUCKET.as_secs_f64();
    let mut points = Vec::with_capacity(arrivals.len() * 2 + 1);
    points.push((0.0, 0.0));
    for (i, &n) in arrivals.iter().enumerate() {
        let rate = f64::from(n) / width;
        // Two points per bucket draw it as a step: flat over the bucket.
        points.push((round3(i as f64 * width), rate));
        points.push((round3((i + 1) as f64 * width), rate));
    }
    points
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Draws every series in its own panel (two columns), on a shared time axis, each
/// with its own rate axis and the limit as a red line, into an SVG file at `path`.
pub fn draw_svg(path: &Path, series: &[Series], limit: f64, title: &str) -> Result<(), BoxError> {
    let curves: Vec<Vec<(f64, f64)>> = series.iter().map(|s| per_second(&s.arrivals)).collect();
    let x_max = curves
        .iter()
        .filter_map(|c| c.last().map(|p| p.0))
        .fold(1.0f64, f64::max);

    let rows = series.len().div_ceil(2).max(1);
    let height = 60 + 220 * rows as u32;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let panels = root.split_evenly((rows, 2));
    for ((s, curve), panel) in series.iter().zip(&curves).zip(panels.iter()) {
        // Each panel its own scale: a burst of thousands per second must not flatten
        // the strategies that stay near the limit.
        let y_max = curve.iter().map(|p| p.1).fold(limit * 1.5, f64::max) * 1.05;
        let mut chart = ChartBuilder::on(panel)
            .caption(&s.name, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("requests started / s")
            .light_line_style(WHITE.mix(0.0))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        chart.draw_series(LineSeries::new(
            [(0.0, limit), (x_max, limit)],
            RED.stroke_width(1),
        ))?;
        chart.draw_series(LineSeries::new(curve.iter().copied(), BLUE.stroke_width(2)))?;
    }
    root.present()?;
    Ok(())
}
