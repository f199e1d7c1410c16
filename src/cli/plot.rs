//! The tuning curve of `kiln tune --plot FILE` (plotters): the estimated
//! model latency (sum over workloads of uses × best time so far) against
//! seconds and against trials, as PNG or SVG by the file's extension. Text
//! uses the DejaVu Sans Mono font shipped in `assets/fonts` (no system fonts needed).

use anyhow::{bail, Context, Result};
use kiln_tuner::tune::CurvePoint;
use plotters::prelude::*;
use std::path::Path;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");

/// Checks that `path` names a format we can write (before hours of tuning).
pub fn check_path(path: &Path) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("png" | "svg") => Ok(()),
        _ => bail!("--plot {}: use a .png or .svg file", path.display()),
    }
}

/// Writes the curve to `path` (`.png` or `.svg`).
pub fn curve(path: &Path, points: &[CurvePoint], title: &str) -> Result<()> {
    if points.is_empty() {
        bail!("no trials were measured: nothing to plot");
    }
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow::anyhow!("cannot load the plot font"))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let size = (1000, 420);
    match ext {
        "png" => draw(
            BitMapBackend::new(path, size).into_drawing_area(),
            points,
            title,
        ),
        "svg" => draw(
            SVGBackend::new(path, size).into_drawing_area(),
            points,
            title,
        ),
        _ => bail!("--plot {}: use a .png or .svg file", path.display()),
    }
    .with_context(|| format!("cannot write the plot {}", path.display()))
}

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    points: &[CurvePoint],
    title: &str,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("{x:?}");
    area.fill(&WHITE).map_err(e)?;
    let area = area.titled(title, ("sans-serif", 18)).map_err(e)?;
    let (left, right) = area.split_horizontally(500);
    let ms: Vec<f64> = points.iter().map(|p| p.latency_ns / 1e6).collect();
    let (lo, hi) = ms
        .iter()
        .fold((f64::MAX, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
    let pad = ((hi - lo) * 0.1).max(hi * 0.01);
    let y = (lo - pad).max(0.0)..hi + pad;
    let t_max = points.last().map_or(1.0, |p| p.at_s).max(1e-3);
    let by_time: Vec<(f64, f64)> = points.iter().zip(&ms).map(|(p, &m)| (p.at_s, m)).collect();
    let by_trial: Vec<(f64, f64)> = points
        .iter()
        .zip(&ms)
        .map(|(p, &m)| (p.trials as f64, m))
        .collect();
    panel(&left, &by_time, 0.0..t_max, y.clone(), "seconds").map_err(e)?;
    panel(&right, &by_trial, 0.0..points.len() as f64, y, "trials").map_err(e)?;
    area.present().map_err(e)?;
    Ok(())
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    data: &[(f64, f64)],
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_label: &str,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("estimated model ms")
        .label_style(("sans-serif", 13))
        .draw()?;
    chart.draw_series(LineSeries::new(data.iter().copied(), &BLUE))?;
    Ok(())
}
