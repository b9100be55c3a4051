//! Evaluation metrics, one module per family ([`grid`]: goals found and
//! empirical L1 errors; [`sequence`]: modes, log Z estimates, ELBO, EUBO,
//! Pearson and reward statistics; [`diffusion`]: log Z estimates and bounds),
//! the exact optimal assignment behind W2 ([`assignment`]), and the
//! reductions they share.

pub mod assignment;
pub mod diffusion;
pub mod grid;
pub mod sequence;

/// One named value of a row of metrics (a column of `metrics.csv`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    /// The column's name.
    pub name: &'static str,
    /// The value; `None` when there is no data (an empty cell), while a NaN
    /// value is a computed NaN (`nan`).
    pub value: Option<f64>,
}

impl Metric {
    /// The metric `name` with the value `value`.
    pub fn new(name: &'static str, value: f64) -> Self {
        Self {
            name,
            value: Some(value),
        }
    }

    /// The metric `name` with the value `value`, or no data for `None`.
    pub fn optional(name: &'static str, value: Option<f64>) -> Self {
        Self { name, value }
    }
}

/// Where the rows of metrics of a run go (`metrics.csv` is today's only one:
/// `output::CsvSink`).
pub trait MetricSink {
    /// Record the metrics `row` of step `step`, in the sink's column order.
    fn write_row(&mut self, step: u64, row: &[Metric]) -> std::io::Result<()>;
}

/// The q-quantile of `v` with linear interpolation between order statistics
/// (numpy's and torch's default).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let pos = q * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

/// Mean of the last `window` values as f64; NaN when there are none (the
/// `loss` columns of `metrics.csv`).
pub fn tail_mean(xs: &[f32], window: usize) -> f64 {
    let tail = &xs[xs.len().saturating_sub(window)..];
    if tail.is_empty() {
        f64::NAN
    } else {
        tail.iter().map(|&x| x as f64).sum::<f64>() / tail.len() as f64
    }
}

/// log(mean(exp(w))), stable; NaN for an empty slice.
pub fn log_mean_exp(w: &[f64]) -> f64 {
    if w.is_empty() {
        return f64::NAN;
    }
    let m = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + (w.iter().map(|x| (x - m).exp()).sum::<f64>() / w.len() as f64).ln()
}

/// Arithmetic mean; NaN for an empty slice.
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Pearson correlation of `a` and `b` (equal lengths); NaN when either is constant or empty.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand values: log mean exp of (0, ln 3) = ln 2; correlation of a line is 1.
    #[test]
    fn reductions() {
        assert!((log_mean_exp(&[0.0, 3f64.ln()]) - 2f64.ln()).abs() < 1e-12);
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // (1,2,3) vs (1,3,2): cov 0.5*... = r = 0.5.
        assert!((pearson(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]) - 0.5).abs() < 1e-12);
        assert!(pearson(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
        assert!(log_mean_exp(&[]).is_nan());
    }

    /// Linear-interpolation quantiles (numpy's default): the 90th percentile
    /// of 1..=11 is 10; of [1, 2] it is 1.9.
    #[test]
    fn quantile_interpolates() {
        let v: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.9), 10.0);
        assert!((quantile(&[2.0, 1.0], 0.9) - 1.9).abs() < 1e-12);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
