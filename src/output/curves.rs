//! PNG line charts of metrics over training: one line per group of runs (a
//! method), the mean over its seeds, with a shaded 95% band where at least two
//! runs have a value (`runner report`, src/report.rs).
//!
//! Text uses the embedded font of [`super::plot`]; files are written
//! atomically, errors are [`PlotError`]s, like the other pictures.

use std::path::Path;

use plotters::prelude::*;

use super::plot::{font_ready, write_png, PlotError};
use super::scatter::{configure_axes_with, draw_error, draw_title, font, render, AXIS};

/// Image size in pixels.
const WIDTH: u32 = 960;
const HEIGHT: u32 = 600;
const MARGIN: u32 = 16;
const X_LABEL_H: u32 = 56;
const Y_LABEL_W: u32 = 96;
const LEGEND_SIZE: f64 = 15.0;
/// Opacity of a band.
const BAND_ALPHA: f64 = 0.18;

/// Matplotlib's `tab10` colours, one per line in order.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A point of a curve: x, the mean, and the (low, high) band if any.
pub type CurvePoint = (f64, f64, Option<(f64, f64)>);

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Legend text.
    pub label: String,
    /// `(x, mean, band)` in increasing x; the band is (low, high) of the 95%
    /// interval, `None` where fewer than two runs have a value. A NaN mean
    /// breaks the line.
    pub points: Vec<CurvePoint>,
    /// Some run of the group has not finished: the line ends in an open
    /// circle.
    pub partial: bool,
    /// Index into the palette ([`colour`]): a group keeps its colour in every
    /// chart, also while another group has nothing to draw.
    pub colour: usize,
}

/// The colour of line `i`.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Tick label of a value on an axis spanning `span`: plain decimals for
/// everyday magnitudes, scientific notation for tiny or huge ones (an L1 of
/// 1.6e-6 must not print as 0).
fn tick(v: f64, span: f64) -> String {
    if v.abs() < span * 1e-9 {
        return "0".to_string();
    }
    let big = v.abs().max(span);
    if !(1e-2..1e6).contains(&big) {
        return format!("{v:.1e}");
    }
    if (v - v.round()).abs() < 1e-9 {
        return format!("{v:.0}");
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// (low, high) of the finite values, widened by 5% on each side (by 1, or
/// 10% of the value, when all values are equal); `None` without one.
fn padded_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return None;
    }
    if lo == hi {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return Some((lo - pad, hi + pad));
    }
    let pad = (hi - lo) * 0.05;
    Some((lo - pad, hi + pad))
}

/// The finite runs of a curve's means: the line is broken at NaN.
fn segments(points: &[CurvePoint]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for &(x, y, _) in points {
        match y.is_finite() {
            true => out.last_mut().expect("non-empty").push((x, y)),
            false if !out.last().expect("non-empty").is_empty() => out.push(Vec::new()),
            false => {}
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// The corner of the plot that the lines cross least, for the legend: each
/// line is sampled at 200 points along x (linearly between its points), and
/// a corner is the outer 35% of x by the outer 40% of y. Ties prefer upper
/// right, lower right, upper left, lower left.
fn legend_corner(curves: &[Curve], x: (f64, f64), y: (f64, f64)) -> SeriesLabelPosition {
    let (w, h) = (x.1 - x.0, y.1 - y.0);
    let mut counts = [0usize; 4]; // UR, LR, UL, LL
    for c in curves {
        for seg in segments(&c.points) {
            for pair in seg.windows(2) {
                let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
                let n = ((x1 - x0) / w * 200.0).ceil().max(1.0) as usize;
                for k in 0..=n {
                    let t = k as f64 / n as f64;
                    let (px, py) = (
                        (x0 + (x1 - x0) * t - x.0) / w,
                        (y0 + (y1 - y0) * t - y.0) / h,
                    );
                    let right = px >= 0.65;
                    let left = px <= 0.35;
                    let top = py >= 0.6;
                    let bottom = py <= 0.4;
                    counts[0] += usize::from(right && top);
                    counts[1] += usize::from(right && bottom);
                    counts[2] += usize::from(left && top);
                    counts[3] += usize::from(left && bottom);
                }
            }
        }
    }
    let best = (0..4).min_by_key(|&i| counts[i]).unwrap_or(0);
    [
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::LowerRight,
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::LowerLeft,
    ][best]
        .clone()
}

/// Draw `curves` as a line chart at `path`: `title` above, `x_desc` and
/// `y_desc` along the axes, a legend where the lines end low (or high, when
/// they end in the lower half). An error when no curve has a finite value.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    curves: &[Curve],
) -> Result<(), PlotError> {
    let all = || curves.iter().flat_map(|c| c.points.iter());
    let finite = |&&(x, y, _): &&CurvePoint| x.is_finite() && y.is_finite();
    let x_range = padded_range(all().filter(finite).map(|p| p.0))
        .ok_or_else(|| draw_error(path, "no finite values to draw"))?;
    // Steps start at 0: no padding to the left of the first one.
    let x_min = all()
        .filter(finite)
        .map(|p| p.0)
        .fold(f64::INFINITY, f64::min);
    let x_range = (x_min, x_range.1.max(x_min + 1.0));
    let y_range = padded_range(all().filter(finite).flat_map(|&(_, y, band)| {
        let (lo, hi) = band.unwrap_or((y, y));
        [y, lo, hi]
    }))
    .ok_or_else(|| draw_error(path, "no finite values to draw"))?;
    let legend_at = legend_corner(curves, x_range, y_range);
    let x_span = x_range.1 - x_range.0;
    let y_span = y_range.1 - y_range.0;
    let x_tick = move |v: &f64| tick(*v, x_span);
    let y_tick = move |v: &f64| tick(*v, y_span);
    let buf = render(path, WIDTH, HEIGHT, |root| {
        let body = draw_title(root, title)?;
        let mut chart = ChartBuilder::on(&body)
            .margin(MARGIN)
            .x_label_area_size(X_LABEL_H)
            .y_label_area_size(Y_LABEL_W)
            .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)?;
        configure_axes_with(&mut chart, Some((x_desc, y_desc)), 8, &x_tick, &y_tick)?;
        for c in curves {
            let col = colour(c.colour);
            // The band: one polygon per stretch of consecutive points with one.
            let mut stretch: Vec<(f64, f64, f64)> = Vec::new();
            let bands = c
                .points
                .iter()
                .map(|&(x, _, b)| (x, b))
                .chain([(f64::NAN, None)]);
            for (x, band) in bands {
                match band.filter(|(lo, hi)| lo.is_finite() && hi.is_finite()) {
                    Some((lo, hi)) if x.is_finite() => stretch.push((x, lo, hi)),
                    _ => {
                        if stretch.len() >= 2 {
                            let outline: Vec<(f64, f64)> = stretch
                                .iter()
                                .map(|&(x, _, hi)| (x, hi))
                                .chain(stretch.iter().rev().map(|&(x, lo, _)| (x, lo)))
                                .collect();
                            chart.draw_series(std::iter::once(Polygon::new(
                                outline,
                                col.mix(BAND_ALPHA).filled(),
                            )))?;
                        }
                        stretch.clear();
                    }
                }
            }
            let style = ShapeStyle::from(&col).stroke_width(2);
            for (k, seg) in segments(&c.points).into_iter().enumerate() {
                let single = seg.len() == 1;
                let drawn =
                    chart.draw_series(std::iter::once(PathElement::new(seg.clone(), style)))?;
                if k == 0 && font_ready() {
                    drawn
                        .label(c.label.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
                }
                if single {
                    // A lone point has no line: a dot shows it.
                    chart.draw_series(seg.iter().map(|&p| Circle::new(p, 3, col.filled())))?;
                }
            }
            if c.partial {
                if let Some(&(x, y, _)) = c.points.iter().rev().find(|p| p.1.is_finite()) {
                    chart.draw_series(std::iter::once(Circle::new(
                        (x, y),
                        6,
                        col.stroke_width(2),
                    )))?;
                }
            }
        }
        if font_ready() && !curves.is_empty() {
            chart
                .configure_series_labels()
                .position(legend_at)
                .label_font(font(LEGEND_SIZE))
                .background_style(WHITE.mix(0.85))
                .border_style(AXIS)
                .margin(10)
                .legend_area_size(30)
                .draw()?;
        }
        Ok(())
    })?;
    write_png(path, &buf, WIDTH, HEIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_readable_at_every_magnitude() {
        assert_eq!(tick(24000.0, 24000.0), "24000");
        assert_eq!(tick(0.25, 1.0), "0.25");
        assert_eq!(tick(1.6e-6, 2e-6), "1.6e-6");
        assert_eq!(tick(0.0, 2e-6), "0");
    }

    #[test]
    fn ranges_and_segments() {
        assert_eq!(padded_range([0.0, 10.0].into_iter()), Some((-0.5, 10.5)));
        assert_eq!(padded_range([2.0, 2.0].into_iter()), Some((1.8, 2.2)));
        assert_eq!(padded_range([f64::NAN].into_iter()), None);
        let p = |x: f64, y: f64| (x, y, None);
        let segs = segments(&[p(0.0, f64::NAN), p(1.0, 1.0), p(2.0, f64::NAN), p(3.0, 3.0)]);
        assert_eq!(segs, vec![vec![(1.0, 1.0)], vec![(3.0, 3.0)]]);
    }

    /// A chart of two curves, one with a band and a gap, one partial: a PNG
    /// of the stated size, not blank; no data at all is an error.
    #[test]
    fn draws_a_chart_and_refuses_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        let curves = vec![
            Curve {
                label: "TB".into(),
                points: vec![
                    (0.0, 0.0, Some((0.0, 0.0))),
                    (100.0, 3.0, Some((2.0, 4.0))),
                    (200.0, f64::NAN, None),
                    (300.0, 6.0, Some((5.0, 7.0))),
                ],
                partial: false,
                colour: 0,
            },
            Curve {
                label: "Teacher (1/2 runs complete)".into(),
                points: vec![(0.0, 0.0, None), (100.0, 8.0, None)],
                partial: true,
                colour: 1,
            },
        ];
        line_chart(&path, "n_goals_found", "training step", "goals", &curves).unwrap();
        let (w, h, img) = crate::output::plot::tests::decode(&path);
        assert_eq!((w, h), (WIDTH, HEIGHT));
        let blue = img
            .chunks(3)
            .filter(|p| p[0] == PALETTE[0].0 && p[1] == PALETTE[0].1 && p[2] == PALETTE[0].2)
            .count();
        assert!(blue > 100, "the first line is drawn ({blue} pixels)");
        let empty = vec![Curve {
            label: "x".into(),
            points: vec![(0.0, f64::NAN, None)],
            partial: false,
            colour: 0,
        }];
        let e = line_chart(&dir.path().join("e.png"), "t", "x", "y", &empty).unwrap_err();
        assert!(e.to_string().contains("no finite values"), "{e}");
        assert!(!dir.path().join("e.png").exists());
    }
}
