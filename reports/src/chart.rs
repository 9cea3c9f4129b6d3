//! SVG charts drawn with plotters: forest plots (an effect and its interval per row), interval
//! bars (an estimate and its interval per group) and a scatter of two metrics over groups with
//! both intervals. Text is drawn as SVG `<text>`, so no font library is needed, and every label
//! is escaped by the SVG backend. Output is deterministic: the same rows give the same bytes.

use plotters::prelude::*;

/// One row of a forest plot.
#[derive(Clone, Debug, PartialEq)]
pub struct ForestRow {
    pub label: String,
    pub effect: f64,
    pub low: f64,
    pub high: f64,
    /// Drawn in red (a significant finding).
    pub highlight: bool,
}

/// One bar: an estimate with its interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// One point of a scatter: two estimates of one group, each with its interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub label: String,
    pub x: (f64, f64, f64),
    pub y: (f64, f64, f64),
}

const WIDTH: u32 = 880;
const PLOT_WIDTH: u32 = 560;

fn text_error<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The x range covering every finite value given, with `include` always in it, padded by 5%.
fn range(values: impl Iterator<Item = f64>, include: Option<f64>) -> (f64, f64) {
    let (mut low, mut high) = include.map_or((f64::INFINITY, f64::NEG_INFINITY), |v| (v, v));
    for v in values.filter(|v| v.is_finite()) {
        low = low.min(v);
        high = high.max(v);
    }
    if !low.is_finite() || !high.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((high - low) * 0.05).max(0.01);
    (low - pad, high + pad)
}

fn label_y(i: usize, rows: usize, height: u32) -> i32 {
    10 + ((i as f64 + 0.5) * (f64::from(height) - 50.0) / rows as f64) as i32
}

/// A horizontal forest plot: one row per entry, its effect as a dot and its interval as a line,
/// the zero line marked; highlighted rows in red, others in blue.
pub fn forest(rows: &[ForestRow], x_desc: &str) -> Result<String, String> {
    let n = rows.len().max(1);
    let height = 60 + 22 * n as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(text_error)?;
        let (low, high) = range(
            rows.iter().flat_map(|r| [r.low, r.high, r.effect]),
            Some(0.0),
        );
        let (plot, labels) = root.split_horizontally(PLOT_WIDTH);
        let mut chart = ChartBuilder::on(&plot)
            .margin(10)
            .x_label_area_size(30)
            .build_cartesian_2d(low..high, 0f64..n as f64)
            .map_err(text_error)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc(x_desc)
            .draw()
            .map_err(text_error)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (0.0, n as f64)],
                BLACK.mix(0.4),
            ))
            .map_err(text_error)?;
        for (i, row) in rows.iter().enumerate() {
            let y = n as f64 - i as f64 - 0.5;
            let colour = if row.highlight { RED } else { BLUE };
            if row.low.is_finite() && row.high.is_finite() {
                chart
                    .draw_series(LineSeries::new(
                        [(row.low, y), (row.high, y)],
                        colour.stroke_width(2),
                    ))
                    .map_err(text_error)?;
            }
            if row.effect.is_finite() {
                chart
                    .draw_series([Circle::new((row.effect, y), 4, colour.filled())])
                    .map_err(text_error)?;
            }
            labels
                .draw(&Text::new(
                    shorten(&row.label, 52),
                    (5, label_y(i, n, height)),
                    ("sans-serif", 12).into_font(),
                ))
                .map_err(text_error)?;
        }
        root.present().map_err(text_error)?;
    }
    Ok(svg)
}

/// Bars of estimates with interval whiskers, one per entry. The axis spans [0, 1] when every
/// value and bound lies there (rates), else the values' own range.
pub fn bars(bars: &[Bar], x_desc: &str) -> Result<String, String> {
    let n = bars.len().max(1);
    let height = 60 + 22 * n as u32;
    let unit = bars
        .iter()
        .flat_map(|b| [b.value, b.low, b.high])
        .filter(|v| v.is_finite())
        .all(|v| (0.0..=1.0).contains(&v));
    let (low, high) = if unit {
        (0.0, 1.0)
    } else {
        range(
            bars.iter().flat_map(|b| [b.value, b.low, b.high]),
            Some(0.0),
        )
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(text_error)?;
        let (plot, labels) = root.split_horizontally(PLOT_WIDTH);
        let mut chart = ChartBuilder::on(&plot)
            .margin(10)
            .x_label_area_size(30)
            .build_cartesian_2d(low..high, 0f64..n as f64)
            .map_err(text_error)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc(x_desc)
            .draw()
            .map_err(text_error)?;
        let base = 0f64.clamp(low, high);
        for (i, bar) in bars.iter().enumerate() {
            let y = n as f64 - i as f64 - 0.5;
            if bar.value.is_finite() {
                chart
                    .draw_series([Rectangle::new(
                        [(base, y - 0.3), (bar.value.clamp(low, high), y + 0.3)],
                        BLUE.mix(0.35).filled(),
                    )])
                    .map_err(text_error)?;
            }
            if bar.low.is_finite() && bar.high.is_finite() {
                chart
                    .draw_series(LineSeries::new(
                        [(bar.low, y), (bar.high, y)],
                        BLACK.stroke_width(2),
                    ))
                    .map_err(text_error)?;
            }
            labels
                .draw(&Text::new(
                    shorten(&bar.label, 52),
                    (5, label_y(i, n, height)),
                    ("sans-serif", 12).into_font(),
                ))
                .map_err(text_error)?;
        }
        root.present().map_err(text_error)?;
    }
    Ok(svg)
}

/// A scatter of groups: one metric on x, another on y, each point with both intervals as a
/// cross, labelled with its group.
pub fn scatter(points: &[Point], x_desc: &str, y_desc: &str) -> Result<String, String> {
    let (x_low, x_high) = range(points.iter().flat_map(|p| [p.x.0, p.x.1, p.x.2]), None);
    let (y_low, y_high) = range(points.iter().flat_map(|p| [p.y.0, p.y.1, p.y.2]), None);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(text_error)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(15)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(x_low..x_high, y_low..y_high)
            .map_err(text_error)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(text_error)?;
        for point in points {
            let (x, x_lo, x_hi) = point.x;
            let (y, y_lo, y_hi) = point.y;
            if ![x, y].iter().all(|v| v.is_finite()) {
                continue;
            }
            if x_lo.is_finite() && x_hi.is_finite() {
                chart
                    .draw_series(LineSeries::new([(x_lo, y), (x_hi, y)], BLUE.mix(0.6)))
                    .map_err(text_error)?;
            }
            if y_lo.is_finite() && y_hi.is_finite() {
                chart
                    .draw_series(LineSeries::new([(x, y_lo), (x, y_hi)], BLUE.mix(0.6)))
                    .map_err(text_error)?;
            }
            chart
                .draw_series([Circle::new((x, y), 4, BLUE.filled())])
                .map_err(text_error)?;
            chart
                .draw_series([Text::new(
                    shorten(&point.label, 28),
                    (x, y),
                    ("sans-serif", 11).into_font(),
                )])
                .map_err(text_error)?;
        }
        root.present().map_err(text_error)?;
    }
    Ok(svg)
}

/// One line of a curve chart: a value per step.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    pub label: String,
    pub values: Vec<f64>,
}

/// Lines over steps (GCG loss curves: one per behavior), each labelled at its last point.
pub fn curves(lines: &[Curve], x_desc: &str, y_desc: &str) -> Result<String, String> {
    let steps = lines
        .iter()
        .map(|c| c.values.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let (y_low, y_high) = range(
        lines.iter().flat_map(|c| c.values.iter().copied()),
        Some(0.0),
    );
    let palette = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(text_error)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(15)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(1.0..steps as f64, y_low..y_high)
            .map_err(text_error)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(text_error)?;
        for (i, line) in lines.iter().enumerate() {
            let color = palette[i % palette.len()].mix(0.8);
            let points: Vec<(f64, f64)> = line
                .values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(s, v)| ((s + 1) as f64, *v))
                .collect();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color))
                .map_err(text_error)?;
            if let Some(&last) = points.last() {
                chart
                    .draw_series([Text::new(
                        shorten(&line.label, 24),
                        last,
                        ("sans-serif", 11).into_font(),
                    )])
                    .map_err(text_error)?;
            }
        }
        root.present().map_err(text_error)?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_output_is_deterministic() {
        let rows = [ForestRow {
            label: "<script>alert(1)</script>".to_string(),
            effect: 0.1,
            low: f64::NAN,
            high: 0.2,
            highlight: true,
        }];
        let a = forest(&rows, "x").unwrap();
        assert!(!a.contains("<script>"), "{a}");
        assert_eq!(a, forest(&rows, "x").unwrap());
        let b = bars(
            &[Bar {
                label: "a & b".to_string(),
                value: 3.0,
                low: 2.0,
                high: 4.0,
            }],
            "value",
        )
        .unwrap();
        assert!(b.contains("a &amp; b"), "{b}");
        let s = scatter(
            &[Point {
                label: "g".to_string(),
                x: (0.1, 0.0, 0.2),
                y: (0.5, 0.4, 0.6),
            }],
            "x",
            "y",
        )
        .unwrap();
        assert!(s.contains("<svg"));
    }
}
