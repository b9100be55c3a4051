//! The diffusion samplers' log Z estimates and bounds (docs/diffusion.md
//! "Metrics"), from per-trajectory log-weights
//! log w = log R(x) + sum log P_B - sum log P_F:
//!
//! - over forward samples of the model: `log_z_is` = log mean exp(log w)
//!   (importance sampling) and `elbo` = mean log w <= log Z;
//! - over one backward trajectory of each exact target sample: `eubo` =
//!   mean log w >= log Z.
//!
//! W2 between the model's samples and exact ones is [`super::assignment::w2`].

use super::{log_mean_exp, mean};

/// The estimates of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Importance-sampled log Z over forward samples.
    pub log_z_is: f64,
    /// Evidence lower bound: mean forward log-weight.
    pub elbo: f64,
    /// Evidence upper bound: mean log-weight of backward trajectories of exact samples.
    pub eubo: f64,
}

/// The estimates from forward log-weights `fwd` and backward log-weights
/// of exact samples `bwd` (NaN where a set is empty).
pub fn bounds(fwd: &[f64], bwd: &[f64]) -> Bounds {
    let m = |v: &[f64]| if v.is_empty() { f64::NAN } else { mean(v) };
    Bounds {
        log_z_is: log_mean_exp(fwd),
        elbo: m(fwd),
        eubo: m(bwd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand values: log-weights ln 1 and ln 3 give log mean exp = ln 2,
    /// mean (ln 3) / 2; the bounds bracket the estimate (Jensen).
    #[test]
    fn bounds_on_hand_values() {
        let fwd = [0.0, 3f64.ln()];
        let b = bounds(&fwd, &[1.0, 2.0]);
        assert!((b.log_z_is - 2f64.ln()).abs() < 1e-12);
        assert!((b.elbo - 3f64.ln() / 2.0).abs() < 1e-12);
        assert_eq!(b.eubo, 1.5);
        assert!(b.elbo <= b.log_z_is);
        assert!(bounds(&[], &[]).eubo.is_nan());
    }
}
