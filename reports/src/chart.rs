//! SVG charts drawn with plotters: a forest plot of the run's tests (effect and interval per
//! comparison) and a bar chart of rates with intervals. Text is drawn as SVG `<text>`, so no
//! font library is needed, and every label is escaped by the SVG backend.

use audit_core::{Estimate, Test};
use plotters::prelude::*;

/// A horizontal forest plot: one row per test, its effect as a dot and its interval as a line,
/// the zero line marked; rows whose q_BH < 0.05 are drawn in red.
pub fn forest_plot(tests: &[&Test]) -> Result<String, String> {
    let rows = tests.len().max(1);
    let height = 60 + 22 * rows as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (880, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let low = tests
            .iter()
            .map(|t| t.effect_ci_low)
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::min);
        let high = tests
            .iter()
            .map(|t| t.effect_ci_high)
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let pad = ((high - low) * 0.05).max(0.01);
        let (plot, labels) = root.split_horizontally(560);
        let mut chart = ChartBuilder::on(&plot)
            .margin(10)
            .x_label_area_size(30)
            .build_cartesian_2d((low - pad)..(high + pad), 0f64..rows as f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc("effect (difference of rates) with interval")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (0.0, rows as f64)],
                BLACK.mix(0.4),
            ))
            .map_err(|e| e.to_string())?;
        for (i, test) in tests.iter().enumerate() {
            let y = rows as f64 - i as f64 - 0.5;
            let colour = if test.q_bh < 0.05 { RED } else { BLUE };
            chart
                .draw_series(LineSeries::new(
                    [(test.effect_ci_low, y), (test.effect_ci_high, y)],
                    colour.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series([Circle::new((test.effect, y), 4, colour.filled())])
                .map_err(|e| e.to_string())?;
            let label_y = 10 + ((i as f64 + 0.5) * (f64::from(height) - 50.0) / rows as f64) as i32;
            labels
                .draw(&Text::new(
                    shorten(&test.name, 52),
                    (5, label_y),
                    ("sans-serif", 12).into_font(),
                ))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Bars of rates (value with interval whiskers), one per estimate.
pub fn rate_bars(estimates: &[&Estimate]) -> Result<String, String> {
    let rows = estimates.len().max(1);
    let height = 60 + 22 * rows as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (880, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (plot, labels) = root.split_horizontally(560);
        let mut chart = ChartBuilder::on(&plot)
            .margin(10)
            .x_label_area_size(30)
            .build_cartesian_2d(0f64..1f64, 0f64..rows as f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc("rate with interval")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, e) in estimates.iter().enumerate() {
            let y = rows as f64 - i as f64 - 0.5;
            chart
                .draw_series([Rectangle::new(
                    [(0.0, y - 0.3), (e.value.clamp(0.0, 1.0), y + 0.3)],
                    BLUE.mix(0.35).filled(),
                )])
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(LineSeries::new(
                    [(e.ci_low, y), (e.ci_high, y)],
                    BLACK.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?;
            let label_y = 10 + ((i as f64 + 0.5) * (f64::from(height) - 50.0) / rows as f64) as i32;
            labels
                .draw(&Text::new(
                    shorten(
                        &format!("{} {}", e.metric, crate::group_label(&e.group)),
                        52,
                    ),
                    (5, label_y),
                    ("sans-serif", 12).into_font(),
                ))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(max - 1).collect();
        short.push('…');
        short
    }
}
