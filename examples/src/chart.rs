//! The showdown's chart: requests started per second over time, one panel per
//! strategy, the server's limit drawn in red.
//!
//! ```
//! use examples::chart::{per_second, Series};
//!
//! // Ten arrivals in each of the first two 100 ms buckets, then silence.
//! let rate = per_second(&[10, 10, 0, 0]);
//! assert_eq!(rate[0], (0.1, 10.0)); // after 100 ms: 10 starts in the last second
//! assert_eq!(rate[1], (0.2, 20.0));
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

/// Requests started in the trailing second, sampled at the end of every bucket:
/// `(seconds since start, requests per second)`.
pub fn per_second(arrivals: &[u32]) -> Vec<(f64, f64)> {
    let per_window = (1_000 / BUCKET.as_millis().max(1)) as usize;
    let mut window_sum = 0u64;
    arrivals
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            window_sum += u64::from(n);
            if i >= per_window {
                window_sum -= u64::from(arrivals[i - per_window]);
            }
            let t = (i + 1) as f64 * BUCKET.as_secs_f64();
            (round3(t), window_sum as f64)
        })
        .collect()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Draws every series in its own panel (two columns), on shared axes, with the
/// limit as a horizontal line, into an SVG file at `path`.
pub fn draw_svg(path: &Path, series: &[Series], limit: f64, title: &str) -> Result<(), BoxError> {
    let curves: Vec<Vec<(f64, f64)>> = series.iter().map(|s| per_second(&s.arrivals)).collect();
    let x_max = curves
        .iter()
        .filter_map(|c| c.last().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let y_max = curves
        .iter()
        .flatten()
        .map(|p| p.1)
        .fold(limit * 1.5, f64::max)
        * 1.05;

    let rows = series.len().div_ceil(2).max(1);
    let height = 60 + 220 * rows as u32;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let panels = root.split_evenly((rows, 2));
    for ((s, curve), panel) in series.iter().zip(&curves).zip(panels.iter()) {
        let mut chart = ChartBuilder::on(panel)
            .caption(&s.name, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("requests started / s")
            .light_line_style(WHITE.mix(0.0))
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
