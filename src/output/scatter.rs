//! PNG scatter plots of a diffusion sampler's 2-D samples, drawn after each evaluation.
//!
//! [`samples_over_density`] draws samples over a 2-D target density (e.g. the 25-Gaussian
//! mixture): the log density, evaluated on a 200x200 grid, is shown as a light shaded background
//! with contour lines (marching squares) at a few levels below its maximum, and the samples as
//! small semi-transparent dots under the contours. [`marginals`] draws side-by-side panels of
//! 2-D marginals, model samples over exact target samples (e.g. (x0, x1) and (x0, x2) of
//! Manywell).
//!
//! Text is rendered like the heatmaps of [`super::plot`]: plotters' `ab_glyph` with DejaVu Sans
//! embedded by the `dejavu` crate, so no system font is looked up; should registering it fail,
//! the pictures are drawn without text. Files are written atomically (a temporary file in the
//! same directory, then a rename), and errors are [`PlotError`]s.

use std::error::Error;
use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontFamily;

use super::plot::{font_ready, write_png, PlotError, FONT_NAME};

/// Nodes per axis of the grid on which the log density is evaluated.
const GRID: usize = 200;
/// Side of a panel's square plotting area, in pixels.
const PLOT_SIDE: u32 = 512;
/// Height of the title band at the top of the image.
const TITLE_H: u32 = 40;
const TITLE_SIZE: f64 = 20.0;
/// Outer margin at the left and bottom of a panel.
const MARGIN: u32 = 10;
/// Space right of a plotting area (room for the last x tick label).
const RIGHT: u32 = 24;
/// Width of the y tick labels (and axis name) area left of a plotting area.
const Y_LABEL_W: u32 = 62;
/// Height of the x tick labels (and axis name) area below a plotting area.
const X_LABEL_H: u32 = 52;
const TICK_SIZE: f64 = 15.0;
const DESC_SIZE: f64 = 16.0;
const LEGEND_SIZE: f64 = 15.0;
/// Width and height of one panel: about 600x600 with the title.
const PANEL_W: u32 = MARGIN + Y_LABEL_W + PLOT_SIDE + RIGHT;
const PANEL_H: u32 = PLOT_SIDE + X_LABEL_H + MARGIN;

/// Contour levels, as drops below the grid's maximum log density: for a Gaussian mode these
/// are the 1, 2, 3 and 4 standard-deviation ellipses (drop r^2 / 2).
const CONTOUR_DROPS: [f64; 4] = [0.5, 2.0, 4.5, 8.0];
/// The background shading fades from its darkest at the maximum to white this many nats below.
const SHADE_DEPTH: f64 = 12.0;
/// Non-finite log densities are treated as this far below the maximum.
const FLOOR_DROP: f64 = 1.0e3;

/// Darkest background tint (at the maximum density); a light blue.
const SHADE: (u8, u8, u8) = (189, 212, 238);
/// Contour colours, innermost level first (opaque, so that crossings do not darken).
const CONTOUR_COLOURS: [RGBColor; 4] = [
    RGBColor(8, 36, 96),
    RGBColor(24, 62, 136),
    RGBColor(52, 94, 168),
    RGBColor(92, 130, 196),
];
const SAMPLE: RGBColor = RGBColor(228, 60, 20);
const SAMPLE_ALPHA: f64 = 0.45;
const SAMPLE_RADIUS: i32 = 2;
const MODEL: RGBColor = RGBColor(215, 38, 38);
const MODEL_ALPHA: f64 = 0.35;
const EXACT: RGBColor = RGBColor(110, 110, 110);
const EXACT_ALPHA: f64 = 0.35;
pub(super) const AXIS: RGBColor = RGBColor(40, 40, 40);

/// One panel of [`marginals`]: a 2-D marginal of model samples against exact target samples.
#[derive(Debug, Clone, Copy)]
pub struct MarginalPanel<'a> {
    /// Name of the horizontal coordinate (e.g. "x0").
    pub x_label: &'a str,
    /// Name of the vertical coordinate (e.g. "x1").
    pub y_label: &'a str,
    /// Model samples, (x, y) pairs; drawn red, over the exact ones.
    pub model: &'a [[f64; 2]],
    /// Exact samples of the target, (x, y) pairs; drawn grey.
    pub exact: &'a [[f64; 2]],
}

/// Write `samples` drawn over the density of a 2-D target as a PNG at `path`.
///
/// Both axes span `range` = (lo, hi). `log_density` is evaluated on a 200x200 grid of nodes
/// covering the square; it is shown as a light blue background (darkest at the grid's maximum,
/// white 12 nats below) with contour lines at 0.5, 2, 4.5 and 8 nats below the maximum (the
/// 1-4 sigma ellipses of a Gaussian mode). Non-finite log densities count as very low. Samples
/// are small semi-transparent orange dots drawn under the contours; samples outside the
/// square or non-finite are skipped. `title` stands above. The image is about 600x600 pixels.
///
/// Errors: a non-finite or empty `range` is [`PlotError::Draw`]; so is a failure to draw or
/// encode; creating the directory or renaming the file into place is [`PlotError::Io`].
pub fn samples_over_density(
    path: &Path,
    title: &str,
    range: (f64, f64),
    log_density: &dyn Fn(f64, f64) -> f64,
    samples: &[[f64; 2]],
) -> Result<(), PlotError> {
    check_range(path, range)?;
    let (lo, hi) = range;
    let grid = DensityGrid::new(range, log_density);
    let (w, h) = (PANEL_W, TITLE_H + PANEL_H);
    let buf = render(path, w, h, |root| {
        let body = draw_title(root, title)?;
        let mut chart = panel_chart(&body, range)?;
        if let Some(grid) = &grid {
            shade(&chart, grid, range)?;
        }
        configure_axes(&mut chart, None)?;
        let style = SAMPLE.mix(SAMPLE_ALPHA).filled();
        chart
            .draw_series(in_range(samples, lo, hi).map(|p| Circle::new(p, SAMPLE_RADIUS, style)))?;
        if let Some(grid) = &grid {
            for (drop, colour) in CONTOUR_DROPS.iter().zip(CONTOUR_COLOURS) {
                let segments = grid.contour(grid.max - drop);
                draw_segments(&chart, &segments, range, colour)?;
            }
        }
        Ok(())
    })?;
    write_png(path, &buf, w, h)
}

/// Write side-by-side panels of 2-D marginals as a PNG at `path`, one square panel per entry
/// of `panels`, left to right.
///
/// Each panel spans `range` = (lo, hi) on both axes, is labelled with its coordinate names,
/// shows the exact samples as grey dots and the model samples over them as semi-transparent red
/// dots, and carries a small legend ("model", "exact") in its upper-right corner. Points outside
/// the square or non-finite are skipped. `title` stands above all panels. Each panel is about
/// 600x600 pixels.
///
/// Errors: an empty `panels` (or more than 16), or a non-finite or empty `range`, is
/// [`PlotError::Draw`]; so is a failure to draw or encode; creating the directory or renaming
/// the file is [`PlotError::Io`].
pub fn marginals(
    path: &Path,
    title: &str,
    range: (f64, f64),
    panels: &[MarginalPanel<'_>],
) -> Result<(), PlotError> {
    if panels.is_empty() {
        return Err(draw_error(path, "no marginal panels to draw"));
    }
    check_range(path, range)?;
    let n = u32::try_from(panels.len())
        .ok()
        .filter(|&n| n <= 16)
        .ok_or_else(|| draw_error(path, "more than 16 marginal panels"))?;
    let (lo, hi) = range;
    let (w, h) = (n * PANEL_W, TITLE_H + PANEL_H);
    let buf = render(path, w, h, |root| {
        let body = draw_title(root, title)?;
        for (area, panel) in body.split_evenly((1, panels.len())).iter().zip(panels) {
            let mut chart = panel_chart(area, range)?;
            configure_axes(&mut chart, Some((panel.x_label, panel.y_label)))?;
            let exact = EXACT.mix(EXACT_ALPHA).filled();
            let model = MODEL.mix(MODEL_ALPHA).filled();
            let exact_series = chart.draw_series(
                in_range(panel.exact, lo, hi).map(|p| Circle::new(p, SAMPLE_RADIUS, exact)),
            )?;
            if font_ready() {
                exact_series
                    .label("exact")
                    .legend(|(x, y)| Circle::new((x + 10, y), 4, EXACT.filled()));
            }
            let model_series = chart.draw_series(
                in_range(panel.model, lo, hi).map(|p| Circle::new(p, SAMPLE_RADIUS, model)),
            )?;
            if font_ready() {
                model_series
                    .label("model")
                    .legend(|(x, y)| Circle::new((x + 10, y), 4, MODEL.filled()));
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .label_font(font(LEGEND_SIZE))
                    .background_style(WHITE.mix(0.85))
                    .border_style(AXIS)
                    .margin(8)
                    .legend_area_size(24)
                    .draw()?;
            }
        }
        Ok(())
    })?;
    write_png(path, &buf, w, h)
}

pub(super) type Area<'b> = DrawingArea<BitMapBackend<'b>, Shift>;
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
pub(super) type DrawResult<T> = Result<T, Box<dyn Error>>;

/// `PlotError::Draw` at `path` with `message`.
pub(super) fn draw_error(path: &Path, message: impl Into<String>) -> PlotError {
    PlotError::Draw {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The range must be finite with lo < hi.
fn check_range(path: &Path, (lo, hi): (f64, f64)) -> Result<(), PlotError> {
    if lo.is_finite() && hi.is_finite() && lo < hi {
        Ok(())
    } else {
        Err(draw_error(
            path,
            format!("axis range ({lo}, {hi}) must be finite with lo < hi"),
        ))
    }
}

/// The finite points of `points` inside [lo, hi]^2, as tuples.
fn in_range(points: &[[f64; 2]], lo: f64, hi: f64) -> impl Iterator<Item = (f64, f64)> + '_ {
    let inside = move |v: f64| v >= lo && v <= hi;
    points
        .iter()
        .filter(move |p| inside(p[0]) && inside(p[1]))
        .map(|p| (p[0], p[1]))
}

/// The embedded font at `size` pixels.
pub(super) fn font(size: f64) -> FontDesc<'static> {
    (FontFamily::Name(FONT_NAME), size).into_font()
}

/// Short label of an axis tick: integers without decimals, others with at most 3.
fn tick_label(v: &f64) -> String {
    let v = *v;
    if v.abs() < 1e-9 {
        return "0".to_string();
    }
    if (v - v.round()).abs() < 1e-9 {
        return format!("{v:.0}");
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// An RGB buffer of `w` x `h` white pixels, drawn on by `draw`.
pub(super) fn render(
    path: &Path,
    w: u32,
    h: u32,
    draw: impl FnOnce(&Area<'_>) -> DrawResult<()>,
) -> Result<Vec<u8>, PlotError> {
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(&root)
            .and_then(|()| root.present().map_err(Into::into))
            .map_err(|e| draw_error(path, e.to_string()))?;
    }
    Ok(buf)
}

/// Draw `title` centred in the band at the top of `root`; the area below it.
pub(super) fn draw_title<'b>(root: &Area<'b>, title: &str) -> DrawResult<Area<'b>> {
    let (band, body) = root.split_vertically(TITLE_H);
    if font_ready() && !title.is_empty() {
        let style = TextStyle::from(font(TITLE_SIZE))
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let (w, _) = band.dim_in_pixel();
        band.draw_text(title, &style, ((w / 2) as i32, (TITLE_H / 2) as i32))?;
    }
    Ok(body)
}

/// A chart over `range` x `range` in `area`, whose plotting area is a PLOT_SIDE square.
fn panel_chart<'a, 'b>(area: &'a Area<'b>, (lo, hi): (f64, f64)) -> DrawResult<Chart<'a, 'b>> {
    let chart = ChartBuilder::on(area)
        .margin_left(MARGIN)
        .margin_bottom(MARGIN)
        .margin_right(RIGHT)
        .x_label_area_size(X_LABEL_H)
        .y_label_area_size(Y_LABEL_W)
        .build_cartesian_2d(lo..hi, lo..hi)?;
    debug_assert_eq!(chart.plotting_area().dim_in_pixel(), (PLOT_SIDE, PLOT_SIDE));
    Ok(chart)
}

/// Axes with ticks and tick labels (and axis names when given), light grid lines.
fn configure_axes(chart: &mut Chart<'_, '_>, names: Option<(&str, &str)>) -> DrawResult<()> {
    configure_axes_with(chart, names, 7, &tick_label, &tick_label)
}

/// [`configure_axes`] with `labels` ticks per axis and the given tick-label formats.
pub(super) fn configure_axes_with(
    chart: &mut Chart<'_, '_>,
    names: Option<(&str, &str)>,
    labels: usize,
    x_format: &dyn Fn(&f64) -> String,
    y_format: &dyn Fn(&f64) -> String,
) -> DrawResult<()> {
    let mut mesh = chart.configure_mesh();
    mesh.axis_style(AXIS)
        .bold_line_style(RGBColor(0, 0, 0).mix(0.08))
        .light_line_style(TRANSPARENT)
        .set_all_tick_mark_size(5)
        .x_labels(labels)
        .y_labels(labels)
        .x_label_formatter(x_format)
        .y_label_formatter(y_format);
    if font_ready() {
        mesh.label_style(font(TICK_SIZE).color(&AXIS))
            .axis_desc_style(font(DESC_SIZE).color(&BLACK));
        if let Some((x, y)) = names {
            mesh.x_desc(x).y_desc(y);
        }
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw()?;
    Ok(())
}

/// Fill the plotting area of `chart` with the density's background shading, pixel by pixel.
fn shade(chart: &Chart<'_, '_>, grid: &DensityGrid, (lo, hi): (f64, f64)) -> DrawResult<()> {
    let area = chart.plotting_area().strip_coord_spec();
    let (w, h) = area.dim_in_pixel();
    // Like plotters' mapping: the first and last pixels of each axis are lo and hi.
    let (sx, sy) = ((hi - lo) / (w - 1) as f64, (hi - lo) / (h - 1) as f64);
    for py in 0..h {
        let y = hi - py as f64 * sy;
        for px in 0..w {
            let x = lo + px as f64 * sx;
            let t = (1.0 + (grid.at(x, y) - grid.max) / SHADE_DEPTH).clamp(0.0, 1.0);
            let mix = |white: u8, c: u8| (white as f64 + (c as f64 - white as f64) * t) as u8;
            let c = RGBColor(mix(255, SHADE.0), mix(255, SHADE.1), mix(255, SHADE.2));
            if t > 0.0 {
                area.draw_pixel((px as i32, py as i32), &c)?;
            }
        }
    }
    Ok(())
}

/// Draw line `segments` (data coordinates) one pixel wide in `colour` on the plotting area.
///
/// Rasterised here (one pixel per step along the longer axis) rather than by plotters, whose
/// short anti-aliased lines leave gaps between consecutive segments.
fn draw_segments(
    chart: &Chart<'_, '_>,
    segments: &[[(f64, f64); 2]],
    (lo, hi): (f64, f64),
    colour: RGBColor,
) -> DrawResult<()> {
    let area = chart.plotting_area().strip_coord_spec();
    let (w, h) = area.dim_in_pixel();
    let (sx, sy) = ((w - 1) as f64 / (hi - lo), (h - 1) as f64 / (hi - lo));
    let to_px = |(x, y): (f64, f64)| ((x - lo) * sx, (hi - y) * sy);
    for &[a, b] in segments {
        let ((x0, y0), (x1, y1)) = (to_px(a), to_px(b));
        let n = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as usize;
        for k in 0..=n {
            let t = k as f64 / n as f64;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            area.draw_pixel((x.round() as i32, y.round() as i32), &colour)?;
        }
    }
    Ok(())
}

/// The log density on a GRID x GRID lattice of nodes covering [lo, hi]^2.
struct DensityGrid {
    lo: f64,
    /// Spacing of the nodes.
    step: f64,
    /// `values[j * GRID + i]` is the log density at (lo + i step, lo + j step), with non-finite
    /// values replaced by `max - FLOOR_DROP`.
    values: Vec<f64>,
    /// Largest finite value.
    max: f64,
}

impl DensityGrid {
    /// Evaluate `log_density` on the lattice; `None` if no value is finite.
    fn new((lo, hi): (f64, f64), log_density: &dyn Fn(f64, f64) -> f64) -> Option<Self> {
        let step = (hi - lo) / (GRID - 1) as f64;
        let mut values = Vec::with_capacity(GRID * GRID);
        for j in 0..GRID {
            let y = lo + j as f64 * step;
            for i in 0..GRID {
                values.push(log_density(lo + i as f64 * step, y));
            }
        }
        let max = values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return None;
        }
        for v in &mut values {
            if !v.is_finite() {
                *v = max - FLOOR_DROP;
            }
        }
        Some(Self {
            lo,
            step,
            values,
            max,
        })
    }

    /// Bilinear interpolation of the lattice at (x, y) (clamped to the square).
    fn at(&self, x: f64, y: f64) -> f64 {
        let cell = |v: f64| {
            let f = ((v - self.lo) / self.step).clamp(0.0, (GRID - 1) as f64);
            let i = (f.floor() as usize).min(GRID - 2);
            (i, f - i as f64)
        };
        let ((i, s), (j, t)) = (cell(x), cell(y));
        let v = |i: usize, j: usize| self.values[j * GRID + i];
        let bottom = v(i, j) * (1.0 - s) + v(i + 1, j) * s;
        let top = v(i, j + 1) * (1.0 - s) + v(i + 1, j + 1) * s;
        bottom * (1.0 - t) + top * t
    }

    /// Line segments of the contour at `level` (marching squares; saddles resolved by the
    /// cell's mean), in data coordinates.
    fn contour(&self, level: f64) -> Vec<[(f64, f64); 2]> {
        let mut out = Vec::new();
        let v = |i: usize, j: usize| self.values[j * GRID + i];
        let node = |i: usize, j: usize| {
            (
                self.lo + i as f64 * self.step,
                self.lo + j as f64 * self.step,
            )
        };
        // The point where the contour crosses the edge from node p (value a) to node q (b).
        let cross = |p: (f64, f64), q: (f64, f64), a: f64, b: f64| {
            let t = ((level - a) / (b - a)).clamp(0.0, 1.0);
            (p.0 + (q.0 - p.0) * t, p.1 + (q.1 - p.1) * t)
        };
        for j in 0..GRID - 1 {
            for i in 0..GRID - 1 {
                // Corners: a bottom-left, b bottom-right, c top-right, d top-left.
                let (a, b, c, d) = (v(i, j), v(i + 1, j), v(i + 1, j + 1), v(i, j + 1));
                let case = (a >= level) as u8
                    | ((b >= level) as u8) << 1
                    | ((c >= level) as u8) << 2
                    | ((d >= level) as u8) << 3;
                if case == 0 || case == 15 {
                    continue;
                }
                let (pa, pb, pc, pd) = (
                    node(i, j),
                    node(i + 1, j),
                    node(i + 1, j + 1),
                    node(i, j + 1),
                );
                let bottom = || cross(pa, pb, a, b);
                let right = || cross(pb, pc, b, c);
                let top = || cross(pd, pc, d, c);
                let left = || cross(pa, pd, a, d);
                let centre_above = (a + b + c + d) / 4.0 >= level;
                match case {
                    1 | 14 => out.push([left(), bottom()]),
                    2 | 13 => out.push([bottom(), right()]),
                    3 | 12 => out.push([left(), right()]),
                    4 | 11 => out.push([right(), top()]),
                    6 | 9 => out.push([bottom(), top()]),
                    7 | 8 => out.push([left(), top()]),
                    // a and c above: joined through an above centre, else each cut off.
                    5 => {
                        if centre_above {
                            out.push([bottom(), right()]);
                            out.push([left(), top()]);
                        } else {
                            out.push([left(), bottom()]);
                            out.push([right(), top()]);
                        }
                    }
                    // b and d above.
                    _ => {
                        if centre_above {
                            out.push([left(), bottom()]);
                            out.push([right(), top()]);
                        } else {
                            out.push([bottom(), right()]);
                            out.push([left(), top()]);
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Image = (u32, u32, Vec<u8>);

    use crate::output::plot::tests::decode;

    fn pixel(img: &Image, x: u32, y: u32) -> (u8, u8, u8) {
        let i = ((y * img.0 + x) * 3) as usize;
        (img.2[i], img.2[i + 1], img.2[i + 2])
    }

    fn pixel_colour(img: &Image, x: u32, y: u32) -> RGBColor {
        let (r, g, b) = pixel(img, x, y);
        RGBColor(r, g, b)
    }

    /// Pixels (x, y) where two images of the same size differ.
    fn diff(a: &Image, b: &Image) -> Vec<(u32, u32)> {
        assert_eq!((a.0, a.1), (b.0, b.1));
        (0..a.1)
            .flat_map(|y| (0..a.0).map(move |x| (x, y)))
            .filter(|&(x, y)| pixel(a, x, y) != pixel(b, x, y))
            .collect()
    }

    /// Pixel of data point (x, y) in panel `k` (0-based) over `range`, mapped as plotters
    /// does: the plotting area's first to last pixel span [lo, hi], rounding down.
    fn to_pixel(k: u32, (lo, hi): (f64, f64), x: f64, y: f64) -> (u32, u32) {
        let last = (PLOT_SIDE - 1) as f64;
        let x0 = k * PANEL_W + MARGIN + Y_LABEL_W;
        let y1 = TITLE_H + PLOT_SIDE - 1;
        let dx = (last * (x - lo) / (hi - lo) + 1e-3).floor() as i64;
        let dy = (last * (y - lo) / (hi - lo) + 1e-3).floor() as i64;
        ((x0 as i64 + dx) as u32, (y1 as i64 - dy) as u32)
    }

    /// Whether pixel `p` lies within `tol` pixels of `q` on both axes.
    fn near(p: (u32, u32), q: (u32, u32), tol: u32) -> bool {
        p.0.abs_diff(q.0) <= tol && p.1.abs_diff(q.1) <= tol
    }

    fn file_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Log density of a standard 2-D Gaussian at the origin (unnormalised).
    fn gauss(x: f64, y: f64) -> f64 {
        -(x * x + y * y) / 2.0
    }

    /// A small deterministic generator: uniforms by xorshift, normals by Box-Muller.
    struct Rng(u64);

    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let u = 1.0 - self.uniform();
            let v = self.uniform();
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    const GMM_VAR: f64 = 0.3;
    const GMM_MEANS: [f64; 5] = [-10.0, -5.0, 0.0, 5.0, 10.0];

    /// Log density of the 25-Gaussian mixture (means on the 5x5 lattice, covariance 0.3 I).
    fn gmm25(x: f64, y: f64) -> f64 {
        let norm = -(2.0 * std::f64::consts::PI * GMM_VAR).ln() - 25f64.ln();
        let terms: Vec<f64> = GMM_MEANS
            .iter()
            .flat_map(|&a| GMM_MEANS.iter().map(move |&b| (a, b)))
            .map(|(a, b)| -((x - a).powi(2) + (y - b).powi(2)) / (2.0 * GMM_VAR))
            .collect();
        let m = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        norm + m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln()
    }

    fn gmm25_samples(rng: &mut Rng, n: usize) -> Vec<[f64; 2]> {
        (0..n)
            .map(|_| {
                let a = GMM_MEANS[(rng.uniform() * 5.0) as usize % 5];
                let b = GMM_MEANS[(rng.uniform() * 5.0) as usize % 5];
                let s = GMM_VAR.sqrt();
                [a + s * rng.normal(), b + s * rng.normal()]
            })
            .collect()
    }

    /// One Manywell double-well coordinate, density ∝ exp(-x^4 + 6x^2 + x/2), by rejection
    /// from N(0, 2^2) (the ratio is bounded on the real line).
    fn double_well(rng: &mut Rng) -> f64 {
        let log_p = |x: f64| -x.powi(4) + 6.0 * x * x + 0.5 * x;
        let log_q = |x: f64| -x * x / 8.0;
        // max of log_p - log_q, found on a fine grid, plus slack.
        let bound = (0..=6000)
            .map(|i| -3.0 + i as f64 * 1e-3)
            .map(|x| log_p(x) - log_q(x))
            .fold(f64::NEG_INFINITY, f64::max)
            + 0.01;
        loop {
            let x = 2.0 * rng.normal();
            if rng.uniform().ln() < log_p(x) - log_q(x) - bound {
                return x;
            }
        }
    }

    #[test]
    fn density_png_size_no_temp_and_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/samples.png");
        let samples = [[0.0, 0.0], [1.0, -1.0], [20.0, 0.0], [f64::NAN, 1.0]];
        samples_over_density(&path, "samples, step 10", (-5.0, 5.0), &gauss, &samples).unwrap();
        let img = decode(&path);
        assert_eq!((img.0, img.1), (PANEL_W, TITLE_H + PANEL_H));
        assert!((560..=660).contains(&img.0) && (560..=660).contains(&img.1));
        assert_eq!(file_names(path.parent().unwrap()), vec!["samples.png"]);
        // The title band holds dark text pixels.
        let dark = (0..TITLE_H)
            .flat_map(|y| (0..img.0).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let p = pixel(&img, x, y);
                p.0 < 100 && p.1 < 100 && p.2 < 100
            })
            .count();
        assert!(dark > 50, "title not drawn: {dark}");
        // The background is tinted at the mode and white far from it (a corner, 7 sigma).
        let (mx, my) = to_pixel(0, (-5.0, 5.0), 0.3, 0.3);
        let at_mode = pixel(&img, mx, my);
        assert!(at_mode.2 > at_mode.0 && at_mode.0 < 230, "{at_mode:?}");
        let (cx, cy) = to_pixel(0, (-5.0, 5.0), 4.8, 4.8);
        assert_eq!(pixel(&img, cx, cy), (255, 255, 255));

        // Overwriting an existing (even non-PNG) file works and leaves one file.
        std::fs::write(&path, b"old").unwrap();
        samples_over_density(&path, "", (-5.0, 5.0), &gauss, &[]).unwrap();
        assert_eq!(decode(&path).0, PANEL_W);
        assert_eq!(file_names(path.parent().unwrap()), vec!["samples.png"]);
    }

    #[test]
    fn density_sample_drawn_at_its_pixel() {
        let dir = tempfile::tempdir().unwrap();
        let range = (-10.0, 10.0);
        let (bare, dot, out) = (
            dir.path().join("bare.png"),
            dir.path().join("dot.png"),
            dir.path().join("out.png"),
        );
        samples_over_density(&bare, "t", range, &gauss, &[]).unwrap();
        samples_over_density(&dot, "t", range, &gauss, &[[7.0, -6.0]]).unwrap();
        // A sample outside the range is skipped, not clamped to the border.
        samples_over_density(
            &out,
            "t",
            range,
            &gauss,
            &[[10.5, -6.0], [0.0, f64::INFINITY]],
        )
        .unwrap();
        let (bare, dot, out) = (decode(&bare), decode(&dot), decode(&out));
        assert!(diff(&bare, &out).is_empty());
        let changed = diff(&bare, &dot);
        assert!(changed.len() >= 5, "dot too small: {}", changed.len());
        let at = to_pixel(0, range, 7.0, -6.0);
        for &p in &changed {
            assert!(
                near(p, at, 3),
                "changed pixel {p:?} is far from the sample at {at:?}"
            );
        }
        // The dot's centre is orange-red on the white background.
        let p = pixel(&dot, at.0, at.1);
        assert!(p.0 > 200 && p.1 < 200 && p.2 < 180, "{p:?}");
    }

    #[test]
    fn density_contours_drawn_around_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        let range = (-5.0, 5.0);
        samples_over_density(&path, "", range, &gauss, &[]).unwrap();
        let img = decode(&path);
        // Along the row through the mode, dark contour pixels lie near radii 1, 2, 3 and 4.
        for r in [1.0, 2.0, 3.0, 4.0] {
            let (x, y) = to_pixel(0, range, r, 0.0);
            let found =
                (x - 2..=x + 2).any(|x| CONTOUR_COLOURS.contains(&pixel_colour(&img, x, y)));
            assert!(found, "no contour at radius {r}");
        }
        // Between the contours at radii 1 and 2 the background is light.
        let (x, y) = to_pixel(0, range, 1.2, 0.8);
        let p = pixel(&img, x, y);
        assert!(p.0 > 180 && p.2 > 220, "{p:?}");
        // A density that is -inf everywhere draws no background or contours.
        let empty = dir.path().join("e.png");
        samples_over_density(&empty, "", range, &|_, _| f64::NEG_INFINITY, &[]).unwrap();
        let img = decode(&empty);
        let (cx, cy) = to_pixel(0, range, 0.3, 0.3);
        assert_eq!(pixel(&img, cx, cy), (255, 255, 255));
    }

    #[test]
    fn marginals_png_size_pixels_and_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.png");
        let range = (-3.0, 3.0);
        let exact = [[-1.0, 1.0], [1.0, 1.0]];
        let model = [[2.0, -2.0]];
        let panel = |model| MarginalPanel {
            x_label: "x0",
            y_label: "x1",
            model,
            exact: &exact,
        };
        marginals(&path, "marginals", range, &[panel(&[]), panel(&[])]).unwrap();
        let bare = decode(&path);
        assert_eq!((bare.0, bare.1), (2 * PANEL_W, TITLE_H + PANEL_H));
        // Overwrite, with one model point in the second panel only.
        marginals(&path, "marginals", range, &[panel(&[]), panel(&model)]).unwrap();
        let dot = decode(&path);
        assert_eq!(file_names(dir.path()), vec!["m.png"]);
        let changed = diff(&bare, &dot);
        assert!(changed.len() >= 5);
        let at = to_pixel(1, range, 2.0, -2.0);
        assert!(changed.iter().all(|&p| near(p, at, 3)));
        let p = pixel(&dot, at.0, at.1);
        assert!(
            p.0 > 200 && p.1 < 200 && p.2 < 200,
            "model dot not red: {p:?}"
        );
        // Exact points are grey, in both panels.
        for k in 0..2 {
            let (x, y) = to_pixel(k, range, -1.0, 1.0);
            let p = pixel(&dot, x, y);
            assert!(
                p.0 == p.1 && p.1 == p.2 && p.0 < 230,
                "exact dot not grey: {p:?}"
            );
        }
        // A single panel is one panel wide.
        marginals(&path, "", range, &[panel(&model)]).unwrap();
        assert_eq!(decode(&path).0, PANEL_W);
    }

    #[test]
    fn error_cases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.png");
        let err = marginals(&path, "t", (-3.0, 3.0), &[]).unwrap_err();
        assert!(matches!(err, PlotError::Draw { .. }), "{err}");
        assert!(err.to_string().contains("bad.png"), "{err}");
        let panel = MarginalPanel {
            x_label: "x0",
            y_label: "x1",
            model: &[],
            exact: &[],
        };
        for range in [
            (f64::NAN, 1.0),
            (0.0, f64::INFINITY),
            (1.0, 1.0),
            (2.0, -2.0),
        ] {
            let err = marginals(&path, "t", range, &[panel]).unwrap_err();
            assert!(matches!(err, PlotError::Draw { .. }), "{err}");
            let err = samples_over_density(&path, "t", range, &gauss, &[]).unwrap_err();
            assert!(matches!(err, PlotError::Draw { .. }), "{err}");
        }
        // A path whose parent is a file cannot be written: an I/O error, nothing left behind.
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err =
            samples_over_density(&file.join("p.png"), "t", (-1.0, 1.0), &gauss, &[]).unwrap_err();
        assert!(matches!(err, PlotError::Io { .. }), "{err}");
        assert_eq!(file_names(dir.path()), vec!["file"]);
    }

    #[test]
    fn ten_thousand_points_draw() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let samples = gmm25_samples(&mut rng, 10_000);
        samples_over_density(
            &dir.path().join("d.png"),
            "t",
            (-15.0, 15.0),
            &gmm25,
            &samples,
        )
        .unwrap();
        let panel = MarginalPanel {
            x_label: "x0",
            y_label: "x1",
            model: &samples,
            exact: &samples,
        };
        marginals(
            &dir.path().join("m.png"),
            "t",
            (-15.0, 15.0),
            &[panel, panel],
        )
        .unwrap();
        // Generous: both pictures take well under a second in an optimised build.
        assert!(dir.path().join("d.png").exists() && dir.path().join("m.png").exists());
    }

    #[test]
    fn tick_labels() {
        assert_eq!(tick_label(&0.0), "0");
        assert_eq!(tick_label(&-0.0), "0");
        assert_eq!(tick_label(&-15.0), "-15");
        assert_eq!(tick_label(&2.5), "2.5");
        assert_eq!(tick_label(&0.125), "0.125");
    }

    /// Writes /tmp/scatter_gmm25.png and /tmp/scatter_manywell.png for a person to look at
    /// (run with `--ignored`).
    #[test]
    #[ignore]
    fn example_pngs() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let samples = gmm25_samples(&mut rng, 2000);
        samples_over_density(
            Path::new("/tmp/scatter_gmm25.png"),
            "25GMM: 2000 samples of the target, step 1000",
            (-15.0, 15.0),
            &gmm25,
            &samples,
        )
        .unwrap();
        // Manywell-like: x0 a double well, x1 and x2 standard normal; the "model" misses
        // most of the left well and is too wide in x2.
        let n = 2000;
        let exact: Vec<[f64; 3]> = (0..n)
            .map(|_| [double_well(&mut rng), rng.normal(), rng.normal()])
            .collect();
        let model: Vec<[f64; 3]> = (0..n)
            .map(|_| {
                let x0 = if rng.uniform() < 0.15 {
                    -1.7 + 0.3 * rng.normal()
                } else {
                    1.75 + 0.3 * rng.normal()
                };
                [x0, rng.normal(), 1.4 * rng.normal()]
            })
            .collect();
        let pairs = |s: &[[f64; 3]], k: usize| s.iter().map(|p| [p[0], p[k]]).collect::<Vec<_>>();
        let (m1, e1, m2, e2) = (
            pairs(&model, 1),
            pairs(&exact, 1),
            pairs(&model, 2),
            pairs(&exact, 2),
        );
        marginals(
            Path::new("/tmp/scatter_manywell.png"),
            "Manywell (32-d): 2-d marginals, step 1000",
            (-3.0, 3.0),
            &[
                MarginalPanel {
                    x_label: "x0",
                    y_label: "x1",
                    model: &m1,
                    exact: &e1,
                },
                MarginalPanel {
                    x_label: "x0",
                    y_label: "x2",
                    model: &m2,
                    exact: &e2,
                },
            ],
        )
        .unwrap();
    }
}
