//! PNG heatmaps of 2-D arrays (densities on a gridworld), drawn with `plotters`' bitmap backend.
//!
//! Text (the title and the colour-bar scale) is rendered through plotters' `ab_glyph` feature
//! with DejaVu Sans embedded in the binary by the `dejavu` crate, so no system font is looked up
//! at run time. Should registering that font ever fail, the picture is drawn without text.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontFamily, FontStyle};

/// Errors of plotting.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// `values.len()` is not `width * height`.
    #[error("heatmap {path}: {len} values do not fill a {width}x{height} grid")]
    Shape {
        path: PathBuf,
        len: usize,
        width: usize,
        height: usize,
    },
    /// The grid is empty or too large to draw.
    #[error("heatmap {path}: cannot draw a {width}x{height} grid ({reason})")]
    Size {
        path: PathBuf,
        width: usize,
        height: usize,
        reason: &'static str,
    },
    /// Creating the directory, or moving the finished file into place, failed.
    #[error("heatmap {path}: {cause}")]
    Io {
        path: PathBuf,
        /// The OS error (in the message, so printed once).
        cause: std::io::Error,
    },
    /// plotters failed to draw or to encode the image.
    #[error("heatmap {path}: drawing failed: {message}")]
    Draw { path: PathBuf, message: String },
}

/// Viridis anchors at t = k / 9, k = 0..=9 (matplotlib's viridis sampled at 10 points).
const VIRIDIS: [(u8, u8, u8); 10] = [
    (68, 1, 84),
    (72, 40, 120),
    (62, 74, 137),
    (49, 104, 142),
    (38, 130, 142),
    (31, 158, 137),
    (53, 183, 121),
    (109, 205, 89),
    (180, 222, 44),
    (253, 231, 37),
];

/// Colour of cells whose value is NaN.
const NAN_COLOUR: (u8, u8, u8) = (128, 128, 128);

/// Viridis-like colour of `t` in [0, 1] (clamped; NaN maps to 0): piecewise-linear through
/// ten viridis anchors, from dark purple (68, 1, 84) at 0 to yellow (253, 231, 37) at 1.
pub fn viridis(t: f64) -> (u8, u8, u8) {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let x = t * (VIRIDIS.len() - 1) as f64;
    let k = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - k as f64;
    let (a, b) = (VIRIDIS[k], VIRIDIS[k + 1]);
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * f).round() as u8;
    (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Largest grid side (in cells) drawn; the image is at most about this many pixels wide.
const MAX_SIDE: usize = 8192;
const PAD: u32 = 12;
const TITLE_H: u32 = 36;
const TITLE_SIZE: f64 = 20.0;
const BAR_GAP: u32 = 16;
const BAR_W: u32 = 20;
const LABEL_GAP: u32 = 6;
const LABEL_W: u32 = 84;
const LABEL_SIZE: f64 = 15.0;
/// ab_glyph centres text a little high; this moves a label's digits onto its tick.
const LABEL_NUDGE: i32 = (LABEL_SIZE / 4.0) as i32;
/// The colour bar is at least this tall, even for a grid only a few pixels high.
const MIN_BAR_H: u32 = 120;
pub(super) const FONT_NAME: &str = "runner-dejavu-sans";

/// Pixel geometry of one heatmap image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    cell: u32,
    /// Upper-left corner of the grid.
    grid_x: u32,
    grid_y: u32,
    grid_w: u32,
    grid_h: u32,
    bar_x: u32,
    bar_y: u32,
    bar_h: u32,
    img_w: u32,
    img_h: u32,
}

impl Layout {
    fn new(width: usize, height: usize) -> Self {
        let cell = (768 / width.max(height)).max(1) as u32;
        let grid_w = width as u32 * cell;
        let grid_h = height as u32 * cell;
        let bar_h = grid_h.max(MIN_BAR_H);
        let grid_x = PAD;
        let grid_y = TITLE_H + (bar_h - grid_h) / 2;
        let bar_x = grid_x + grid_w + BAR_GAP;
        Layout {
            cell,
            grid_x,
            grid_y,
            grid_w,
            grid_h,
            bar_x,
            bar_y: TITLE_H,
            bar_h,
            img_w: bar_x + BAR_W + LABEL_GAP + LABEL_W + PAD,
            img_h: TITLE_H + bar_h + PAD,
        }
    }

    /// Pixel (x, y) of the centre of cell (`col`, `row`); row 0 is the bottom row.
    #[cfg(test)]
    fn cell_centre(&self, col: usize, row: usize, height: usize) -> (u32, u32) {
        let x = self.grid_x + col as u32 * self.cell + self.cell / 2;
        let y = self.grid_y + (height - 1 - row) as u32 * self.cell + self.cell / 2;
        (x, y)
    }
}

/// Register the embedded font once; false if that failed (then no text is drawn).
pub(super) fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        plotters::style::register_font(FONT_NAME, FontStyle::Normal, dejavu::sans::regular())
            .is_ok()
    })
}

/// Short label of a colour-bar value.
fn tick_label(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let a = v.abs();
    if (1e-2..1e4).contains(&a) {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        format!("{v:.2e}")
    }
}

/// Upper end of the colour scale: `vmax` if positive, else the largest finite value, else 1.
fn scale_max(values: &[f64], vmax: f64) -> f64 {
    if vmax > 0.0 && vmax.is_finite() {
        return vmax;
    }
    let m = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    if m > 0.0 {
        m
    } else {
        1.0
    }
}

/// The RGB pixels (row-major, top row first) of the heatmap and its colour bar, without text.
fn raster(layout: &Layout, values: &[f64], width: usize, height: usize, vmax: f64) -> Vec<u8> {
    let (w, h) = (layout.img_w as usize, layout.img_h as usize);
    let mut buf = vec![255u8; w * h * 3];
    let mut fill = |x0: u32, y0: u32, x1: u32, y1: u32, c: (u8, u8, u8)| {
        for y in y0 as usize..(y1 as usize).min(h) {
            let row = &mut buf[y * w * 3..(y + 1) * w * 3];
            for px in row[x0 as usize * 3..(x1 as usize).min(w) * 3].chunks_exact_mut(3) {
                px.copy_from_slice(&[c.0, c.1, c.2]);
            }
        }
    };
    let cell = layout.cell;
    for row in 0..height {
        // Row 0 is drawn at the bottom (origin lower-left).
        let y0 = layout.grid_y + (height - 1 - row) as u32 * cell;
        for col in 0..width {
            let v = values[row * width + col];
            let c = if v.is_nan() {
                NAN_COLOUR
            } else {
                viridis(v / vmax)
            };
            let x0 = layout.grid_x + col as u32 * cell;
            fill(x0, y0, x0 + cell, y0 + cell, c);
        }
    }
    // Colour bar: 0 at the bottom, vmax at the top, with a thin dark frame.
    let (bx, by, bh) = (layout.bar_x, layout.bar_y, layout.bar_h);
    for i in 0..bh {
        let t = if bh > 1 {
            1.0 - i as f64 / (bh - 1) as f64
        } else {
            1.0
        };
        fill(bx, by + i, bx + BAR_W, by + i + 1, viridis(t));
    }
    let dark = (40, 40, 40);
    fill(bx - 1, by - 1, bx + BAR_W + 1, by, dark);
    fill(bx - 1, by + bh, bx + BAR_W + 1, by + bh + 1, dark);
    fill(bx - 1, by - 1, bx, by + bh + 1, dark);
    fill(bx + BAR_W, by - 1, bx + BAR_W + 1, by + bh + 1, dark);
    // Ticks at 0, vmax/2, vmax.
    for k in 0..3u32 {
        let y = by + (bh - 1) * (2 - k) / 2;
        fill(
            bx + BAR_W + 1,
            y,
            bx + BAR_W + 1 + LABEL_GAP / 2,
            y + 1,
            dark,
        );
    }
    buf
}

/// Draw the title and the colour-bar labels onto `buf`.
fn draw_text(
    buf: &mut [u8],
    layout: &Layout,
    title: &str,
    vmax: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(buf, (layout.img_w, layout.img_h)).into_drawing_area();
    let family = FontFamily::Name(FONT_NAME);
    if !title.is_empty() {
        let style = TextStyle::from((family, TITLE_SIZE).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        root.draw_text(title, &style, (PAD as i32, (TITLE_H / 2) as i32))?;
    }
    let style = TextStyle::from((family, LABEL_SIZE).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let x = (layout.bar_x + BAR_W + LABEL_GAP) as i32;
    for k in 0..3u32 {
        let y = layout.bar_y + (layout.bar_h - 1) * (2 - k) / 2;
        let v = vmax * k as f64 / 2.0;
        root.draw_text(&tick_label(v), &style, (x, y as i32 + LABEL_NUDGE))?;
    }
    root.present()?;
    Ok(())
}

/// Encode the finished RGB `buf` (`w` x `h` pixels) as a PNG at `path`, atomically: to a
/// temporary file in the same directory (created if missing), then renamed; the temporary
/// is removed on failure. Shared by every picture of the runner.
pub(super) fn write_png(path: &Path, buf: &[u8], w: u32, h: u32) -> Result<(), PlotError> {
    let io_err = |source| PlotError::Io {
        path: path.to_path_buf(),
        cause: source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err)?;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("plot");
    // The temporary name ends in ".png" so that the encoder picks PNG.
    let tmp = dir.join(super::temp_name(
        name,
        COUNTER.fetch_add(1, Ordering::Relaxed),
        ".png",
    ));
    let encode = || -> Result<(), Box<dyn std::error::Error>> {
        let mut backend = BitMapBackend::new(&tmp, (w, h));
        backend.blit_bitmap((0, 0), (w, h), buf)?;
        backend.present()?;
        Ok(())
    };
    let written = encode()
        .map_err(|e| PlotError::Draw {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
        .and_then(|()| std::fs::rename(&tmp, path).map_err(io_err));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Write `values` (row-major, `height` rows of `width` cells; row 0 drawn at the bottom, i.e.
/// origin lower-left like matplotlib's `origin="lower"`) as a PNG heatmap at `path`.
///
/// Colour scale: [`viridis`] from 0 to `vmax` (values above saturate, negative ones clamp to 0,
/// NaN cells are grey); `vmax <= 0` or NaN means the largest finite value (1 if none is
/// positive). Each cell is a square of `max(1, 768 / max(width, height))` pixels; a colour bar
/// with its scale stands to the right and `title` above. Written atomically: rendered to a
/// temporary file in the same directory, then renamed; the parent directory is created if
/// missing.
pub fn heatmap_png(
    path: &Path,
    values: &[f64],
    width: usize,
    height: usize,
    title: &str,
    vmax: f64,
) -> Result<(), PlotError> {
    let size_err = |reason| PlotError::Size {
        path: path.to_path_buf(),
        width,
        height,
        reason,
    };
    if width == 0 || height == 0 {
        return Err(size_err("empty grid"));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(size_err("a side exceeds 8192 cells"));
    }
    if width.checked_mul(height) != Some(values.len()) {
        return Err(PlotError::Shape {
            path: path.to_path_buf(),
            len: values.len(),
            width,
            height,
        });
    }
    let draw_err = |e: Box<dyn std::error::Error>| PlotError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    };

    let vmax = scale_max(values, vmax);
    let layout = Layout::new(width, height);
    let mut buf = raster(&layout, values, width, height, vmax);
    if font_ready() {
        draw_text(&mut buf, &layout, title, vmax).map_err(draw_err)?;
    }

    write_png(path, &buf, layout.img_w, layout.img_h)
}

/// Where a grid state lands on the 2-D picture: d coordinates folded as the
/// reference does (`reshape(H^(d/2), H^(d/2))`): the first d/2 coordinates
/// index the row (s_0 most significant), the rest the column. `None` for odd d.
fn fold(grid: &crate::envs::grid::Grid, s: &[u16]) -> Option<(usize, usize)> {
    let d = grid.ndim;
    if !d.is_multiple_of(2) {
        return None;
    }
    let index = |cs: &[u16]| cs.iter().fold(0, |acc, &c| acc * grid.horizon + c as usize);
    Some((index(&s[..d / 2]), index(&s[d / 2..])))
}

/// Draw a density over the grid's terminal set (indexed like `true_density`).
fn grid_density(
    grid: &crate::envs::grid::Grid,
    density: &[f64],
    path: &Path,
    title: &str,
) -> Result<(), PlotError> {
    let side = grid.horizon.pow((grid.ndim / 2) as u32);
    let mut values = vec![0.0; side * side];
    let vmax = grid.true_density.iter().cloned().fold(0.0, f64::max);
    for (i, s) in grid.terminal_states().enumerate() {
        if let Some((r, c)) = fold(grid, &s) {
            values[r * side + c] = density[i];
        }
    }
    heatmap_png(path, &values, side, side, title, vmax)
}

/// `plots/target_density.png`: p(x) folded to 2-D (skipped for odd d).
pub fn target_density(grid: &crate::envs::grid::Grid, dir: &Path) -> Result<(), PlotError> {
    if !grid.ndim.is_multiple_of(2) {
        return Ok(());
    }
    grid_density(
        grid,
        &grid.true_density,
        &dir.join("target_density.png"),
        "target density",
    )
}

/// `plots/empirical_density_step<step>.png`: the empirical distribution of
/// evaluation samples (terminal-set indices), on the target's colour scale.
pub fn empirical_density(
    grid: &crate::envs::grid::Grid,
    samples: &[usize],
    step: u64,
    dir: &Path,
) -> Result<(), PlotError> {
    if !grid.ndim.is_multiple_of(2) || samples.is_empty() {
        return Ok(());
    }
    let mut density = vec![0.0; grid.true_density.len()];
    for &i in samples {
        density[i] += 1.0 / samples.len() as f64;
    }
    let path = dir.join(format!("empirical_density_step{step:06}.png"));
    grid_density(
        grid,
        &density,
        &path,
        &format!("empirical density, step {step}"),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PNG written by this module as (width, height, RGB bytes).
    pub(crate) fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn pixel(img: &(u32, u32, Vec<u8>), x: u32, y: u32) -> (u8, u8, u8) {
        let i = ((y * img.0 + x) * 3) as usize;
        (img.2[i], img.2[i + 1], img.2[i + 2])
    }

    #[test]
    fn viridis_endpoints_and_clamping() {
        assert_eq!(viridis(0.0), (68, 1, 84));
        assert_eq!(viridis(1.0), (253, 231, 37));
        assert_eq!(viridis(-3.0), (68, 1, 84));
        assert_eq!(viridis(7.5), (253, 231, 37));
        assert_eq!(viridis(f64::NAN), (68, 1, 84));
        assert_eq!(viridis(f64::INFINITY), (253, 231, 37));
        // An anchor is hit exactly, and a midpoint lies between its neighbours.
        assert_eq!(viridis(5.0 / 9.0), (31, 158, 137));
        let (r, g, b) = viridis(0.5);
        assert!((31..=38).contains(&r) && (130..=158).contains(&g) && (137..=142).contains(&b));
        // Green rises monotonically along the map.
        let greens: Vec<u8> = (0..=100).map(|i| viridis(i as f64 / 100.0).1).collect();
        assert!(greens.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn heatmap_pixels_orientation_and_no_temp_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/density.png");
        let (w, h) = (32usize, 32usize);
        // Value = column index, except one hot cell at (col 3, row 0) (bottom row).
        let mut values: Vec<f64> = (0..w * h).map(|i| (i % w) as f64).collect();
        values[3] = 100.0;
        heatmap_png(&path, &values, w, h, "density (step 10)", 31.0).unwrap();

        let layout = Layout::new(w, h);
        let img = decode(&path);
        assert_eq!((img.0, img.1), (layout.img_w, layout.img_h));
        assert_eq!(layout.cell, 24);
        assert!((256..=1200).contains(&img.0));
        // The hot cell saturates to yellow, at the bottom of the grid.
        let (x, y) = layout.cell_centre(3, 0, h);
        assert!(y > layout.grid_y + layout.grid_h - layout.cell);
        assert_eq!(pixel(&img, x, y), (253, 231, 37));
        // The same column at the top row holds 3/31.
        let (x, y) = layout.cell_centre(3, h - 1, h);
        assert_eq!(pixel(&img, x, y), viridis(3.0 / 31.0));
        // Column 0 is the low end, column 31 the high end, in any row.
        for row in [0, 17, h - 1] {
            let (x, y) = layout.cell_centre(0, row, h);
            assert_eq!(pixel(&img, x, y), (68, 1, 84));
            let (x, y) = layout.cell_centre(31, row, h);
            assert_eq!(pixel(&img, x, y), (253, 231, 37));
        }
        // The colour bar: yellow at the top, purple at the bottom.
        let bx = layout.bar_x + BAR_W / 2;
        assert_eq!(pixel(&img, bx, layout.bar_y), (253, 231, 37));
        assert_eq!(
            pixel(&img, bx, layout.bar_y + layout.bar_h - 1),
            (68, 1, 84)
        );
        // Text was drawn: the title band holds dark pixels.
        let dark_in_title = (0..TITLE_H)
            .flat_map(|y| (0..img.0).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let p = pixel(&img, x, y);
                p.0 < 100 && p.1 < 100 && p.2 < 100
            })
            .count();
        assert!(dark_in_title > 50, "title not drawn: {dark_in_title}");

        // Only the final file remains; no temporary.
        let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["density.png".to_string()]);
    }

    #[test]
    fn heatmap_auto_vmax_and_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.png");
        std::fs::write(&path, b"old").unwrap();
        let values = [0.0, 0.5, 2.0, f64::NAN, 1.0, -1.0];
        heatmap_png(&path, &values, 3, 2, "", f64::NAN).unwrap();
        let layout = Layout::new(3, 2);
        let img = decode(&path);
        // vmax = 2: row 0 (bottom) is 0, 0.5, 2; row 1 (top) is NaN, 1, -1.
        assert_eq!(
            pixel(
                &img,
                layout.cell_centre(0, 0, 2).0,
                layout.cell_centre(0, 0, 2).1
            ),
            viridis(0.0)
        );
        let c = layout.cell_centre(1, 0, 2);
        assert_eq!(pixel(&img, c.0, c.1), viridis(0.25));
        let c = layout.cell_centre(2, 0, 2);
        assert_eq!(pixel(&img, c.0, c.1), viridis(1.0));
        let c = layout.cell_centre(0, 1, 2);
        assert_eq!(pixel(&img, c.0, c.1), NAN_COLOUR);
        let c = layout.cell_centre(1, 1, 2);
        assert_eq!(pixel(&img, c.0, c.1), viridis(0.5));
        let c = layout.cell_centre(2, 1, 2);
        assert_eq!(pixel(&img, c.0, c.1), viridis(0.0));
        // All-zero values do not divide by zero.
        heatmap_png(&path, &[0.0; 4], 2, 2, "zeros", 0.0).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A flat grid: the colour bar keeps a minimum height, cells stay where computed.
        let values: Vec<f64> = (0..400).map(|i| (i / 200) as f64).collect();
        heatmap_png(&path, &values, 200, 2, "flat", 1.0).unwrap();
        let layout = Layout::new(200, 2);
        let img = decode(&path);
        assert_eq!((img.0, img.1), (layout.img_w, layout.img_h));
        assert_eq!(layout.bar_h, MIN_BAR_H);
        let c = layout.cell_centre(199, 0, 2);
        assert_eq!(pixel(&img, c.0, c.1), viridis(0.0));
        let c = layout.cell_centre(0, 1, 2);
        assert_eq!(pixel(&img, c.0, c.1), viridis(1.0));
    }

    #[test]
    fn heatmap_shape_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.png");
        let err = heatmap_png(&path, &[1.0; 5], 2, 3, "t", 1.0).unwrap_err();
        assert!(matches!(err, PlotError::Shape { len: 5, .. }));
        assert!(err.to_string().contains("bad.png"), "{err}");
        let err = heatmap_png(&path, &[], 0, 3, "t", 1.0).unwrap_err();
        assert!(matches!(err, PlotError::Size { .. }), "{err}");
        let err = heatmap_png(&path, &[], usize::MAX, 2, "t", 1.0).unwrap_err();
        assert!(matches!(err, PlotError::Size { .. }), "{err}");
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn tick_labels() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(0.5), "0.5");
        assert_eq!(tick_label(12.0), "12");
        assert_eq!(tick_label(0.0123), "0.012");
        assert_eq!(tick_label(0.00123), "1.23e-3");
    }

    /// Writes /tmp/plot_example.png for a person to look at (run with `--ignored`).
    #[test]
    #[ignore]
    fn example_png() {
        let (w, h) = (64usize, 64usize);
        let mut values = vec![0.0; w * h];
        // Four Gaussian bumps of different heights; the tallest near the bottom-left.
        let bumps = [
            (16.0, 12.0, 1.0),
            (48.0, 16.0, 0.5),
            (16.0, 48.0, 0.25),
            (48.0, 48.0, 0.75),
        ];
        for row in 0..h {
            for col in 0..w {
                values[row * w + col] = bumps
                    .iter()
                    .map(|&(cx, cy, a)| {
                        let d2 = (col as f64 - cx).powi(2) + (row as f64 - cy).powi(2);
                        a * (-d2 / (2.0 * 36.0)).exp()
                    })
                    .sum();
            }
        }
        heatmap_png(
            Path::new("/tmp/plot_example.png"),
            &values,
            w,
            h,
            "example: tallest bump at bottom-left (row 12, col 16)",
            0.0,
        )
        .unwrap();
    }
}
