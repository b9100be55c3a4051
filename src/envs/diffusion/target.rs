//! The continuous target of a diffusion sampler, as the trainer and the
//! metrics see it: the [`Target`] trait.
//!
//! A target is known through its log reward log R(x) (its log density, an
//! unnormalised one allowed; log R = -E for an energy E) on R^dim. What else
//! it offers is optional, and each use checks for it:
//!
//! * the gradient of log R: needed by MALA local search (`[local_search]
//!   kind = "mala"`) and the Langevin policy (`policy.langevin = true`); the
//!   plan refuses both, naming the key, for a target without one;
//! * exact samples: the EUBO and the W2 distance are left empty (empty cells
//!   of `metrics.csv`) without them, and the sample pictures show the model
//!   alone;
//! * the true log Z = log ∫ R(x) dx: `delta_log_z` is left empty without it.
//!
//! Each built-in energy lives in a file of its own next to this one and is
//! registered in `src/registry.rs` (`EnvConfig` and `EnvConfig::family`).
//! Their evaluation never fails; the batch call is fallible so that a target
//! evaluated elsewhere (another program, say) can report a failure, which
//! stops the run with [`TargetError`]'s message.

use std::fmt;

use crate::rng::Rng;

/// A failed evaluation of a target's log reward.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("target `{target}`: {message}")]
pub struct TargetError {
    /// The target's name (`env.kind`).
    pub target: String,
    /// What went wrong.
    pub message: String,
}

impl TargetError {
    /// The error `message` of the target `target`.
    pub fn new(target: &str, message: impl Into<String>) -> Self {
        Self {
            target: target.to_string(),
            message: message.into(),
        }
    }
}

/// The answer of [`Target::grad_log_reward`] for a target without a gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the target has no gradient of its log reward")]
pub struct NoGradient;

/// How the sample pictures of a target are drawn (`eval.plot`).
#[derive(Debug, Clone, PartialEq)]
pub enum Picture {
    /// A 2-d target: the model's samples over the target's log density,
    /// both axes over `range` (the log reward is evaluated on a 200 x 200
    /// grid, so only for cheap targets).
    Density {
        /// (lo, hi) of both axes.
        range: (f64, f64),
    },
    /// One panel per coordinate pair (i, j): the 2-d marginal of the model's
    /// samples over that of exact samples (when the target has them), both
    /// axes over `range`.
    Marginals {
        /// (lo, hi) of both axes.
        range: (f64, f64),
        /// The coordinates (horizontal, vertical) of each panel (1 to 16 panels).
        pairs: Vec<(usize, usize)>,
    },
}

/// A continuous target of the diffusion samplers (object safe: the trainer
/// holds an `Arc<dyn Target>`).
///
/// Points are `f64` slices of length [`Target::dim`]; batches are `[n, dim]`
/// row-major.
pub trait Target: Send + Sync + fmt::Debug {
    /// The registry name of the target (its `env.kind`).
    fn name(&self) -> &str;

    /// The dimension of the sample space.
    fn dim(&self) -> usize;

    /// log R of each row of `xs` (`[n, dim]`, row-major) -> `[n]`: the
    /// primary entry point (training and evaluation call it once per batch).
    /// `xs.len()` is a multiple of `dim`.
    fn log_reward_batch(&self, xs: &[f64]) -> Result<Vec<f64>, TargetError>;

    /// log R of one point (`x.len() == dim`); by default a batch of one.
    fn log_reward(&self, x: &[f64]) -> Result<f64, TargetError> {
        let v = self.log_reward_batch(x)?;
        v.first()
            .copied()
            .ok_or_else(|| TargetError::new(self.name(), "no value for a batch of one point"))
    }

    /// Whether [`Target::grad_log_reward`] answers (MALA and the Langevin
    /// policy need it; the plan checks it). False by default.
    fn has_gradient(&self) -> bool {
        false
    }

    /// Writes ∇ log R(x) into `out` (both of length `dim`); an error (the
    /// default: [`NoGradient`]) when the target has none or its evaluation
    /// failed.
    fn grad_log_reward(&self, x: &[f64], out: &mut [f64]) -> Result<(), TargetError> {
        let _ = (x, out);
        Err(TargetError::new(self.name(), NoGradient.to_string()))
    }

    /// ∇ log R at every row of `xs` (`[n, dim]`) into `out` (`[n, dim]`): by
    /// default one [`Target::grad_log_reward`] per row; a target evaluated
    /// elsewhere answers the batch at once.
    fn grad_log_reward_batch(&self, xs: &[f64], out: &mut [f64]) -> Result<(), TargetError> {
        let d = self.dim();
        for (x, g) in xs.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            self.grad_log_reward(x, g)?;
        }
        Ok(())
    }

    /// The run directory, given before the first evaluation (a program
    /// target writes its standard error there); nothing by default.
    fn set_run_dir(&self, dir: &std::path::Path) {
        let _ = dir;
    }

    /// `n` independent exact samples of the normalised target (`[n, dim]`,
    /// row-major), drawn from `rng` in a fixed order, or `None` (the default)
    /// when the target has no exact sampler.
    fn sample(&self, n: usize, rng: &mut Rng) -> Option<Vec<f64>> {
        let _ = (n, rng);
        None
    }

    /// The true log partition function log ∫ R(x) dx, or `None` (the
    /// default) when it is unknown.
    fn log_z(&self) -> Option<f64> {
        None
    }

    /// How the sample pictures are drawn; by default the marginal panels
    /// (x0, x1) and (x0, x2) (as many as the dimension allows) over (-5, 5).
    fn picture(&self) -> Picture {
        let pairs = match self.dim() {
            0 | 1 => vec![(0, 0)],
            2 => vec![(0, 1)],
            _ => vec![(0, 1), (0, 2)],
        };
        Picture::Marginals {
            range: (-5.0, 5.0),
            pairs,
        }
    }
}

/// log R of each row of `xs` by `point` (the batch call of the built-in
/// energies, whose evaluation never fails).
pub(crate) fn rows(dim: usize, xs: &[f64], point: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    assert_eq!(xs.len() % dim, 0, "batch length is not a multiple of dim");
    xs.chunks_exact(dim).map(point).collect()
}

/// Checks shared by the built-in energies' tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::Target;

    /// Composite Simpson rule of `f` on [lo, hi] with `n` (even) intervals.
    pub fn simpson(f: impl Fn(f64) -> f64, lo: f64, hi: f64, n: usize) -> f64 {
        assert!(n.is_multiple_of(2));
        let h = (hi - lo) / n as f64;
        let mut s = f(lo) + f(hi);
        for i in 1..n {
            let w = if i % 2 == 1 { 4.0 } else { 2.0 };
            s += w * f(lo + i as f64 * h);
        }
        s * h / 3.0
    }

    /// ∫∫ exp(log R) over the square [lo, hi]^2 of a 2-d target by the
    /// composite Simpson rule with `n` (even) intervals per axis.
    pub fn integral_2d(target: &dyn Target, lo: f64, hi: f64, n: usize) -> f64 {
        assert!(n.is_multiple_of(2));
        let h = (hi - lo) / n as f64;
        let w = |i: usize| {
            if i == 0 || i == n {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            }
        };
        let mut total = 0.0;
        for i in 0..=n {
            for j in 0..=n {
                let x = [lo + i as f64 * h, lo + j as f64 * h];
                total += w(i) * w(j) * target.log_reward(&x).unwrap().exp();
            }
        }
        total * h * h / 9.0
    }

    /// The analytic gradient of `target` at `x` equals central finite
    /// differences (step 1e-5, relative tolerance `tol`).
    pub fn check_gradient(target: &dyn Target, x: &[f64], tol: f64) {
        let dim = target.dim();
        let mut g = vec![0.0; dim];
        target.grad_log_reward(x, &mut g).unwrap();
        let h = 1e-5;
        let mut xp = x.to_vec();
        for d in 0..dim {
            xp[d] = x[d] + h;
            let up = target.log_reward(&xp).unwrap();
            xp[d] = x[d] - h;
            let down = target.log_reward(&xp).unwrap();
            xp[d] = x[d];
            let fd = (up - down) / (2.0 * h);
            assert!(
                (fd - g[d]).abs() <= tol * (1.0 + g[d].abs()),
                "{} coord {d} at {x:?}: analytic {} vs fd {fd}",
                target.name(),
                g[d]
            );
        }
    }

    /// The batch call equals the point call on every row of 37 exact samples.
    pub fn check_batch_matches_pointwise(target: &dyn Target, rng: &mut crate::rng::Rng) {
        let xs = target.sample(37, rng).unwrap();
        let batch = target.log_reward_batch(&xs).unwrap();
        assert_eq!(batch.len(), 37);
        for (x, lr) in xs.chunks_exact(target.dim()).zip(&batch) {
            assert_eq!(*lr, target.log_reward(x).unwrap());
        }
    }

    /// The same generator state gives the same samples, another one others.
    pub fn check_reproducible(target: &dyn Target) {
        use rand::SeedableRng;
        let rng = |s| crate::rng::Rng::seed_from_u64(s);
        let a = target.sample(50, &mut rng(9)).unwrap();
        let b = target.sample(50, &mut rng(9)).unwrap();
        let c = target.sample(50, &mut rng(10)).unwrap();
        assert_eq!(a.len(), 50 * target.dim());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    /// (mean, variance, standard error of the mean, standard error of the variance).
    pub fn moments(v: &[f64]) -> (f64, f64, f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let m2 = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let m4 = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n;
        (mean, m2, (m2 / n).sqrt(), ((m4 - m2 * m2) / n).sqrt())
    }

    /// Column `d` of `xs` (`[n, dim]`).
    pub fn column(xs: &[f64], dim: usize, d: usize) -> Vec<f64> {
        xs.iter().skip(d).step_by(dim).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target with nothing optional: a standard normal in 3-d, unnormalised.
    #[derive(Debug)]
    struct Bare;

    impl Target for Bare {
        fn name(&self) -> &str {
            "bare"
        }
        fn dim(&self) -> usize {
            3
        }
        fn log_reward_batch(&self, xs: &[f64]) -> Result<Vec<f64>, TargetError> {
            Ok(rows(3, xs, |x| -0.5 * x.iter().map(|v| v * v).sum::<f64>()))
        }
    }

    /// The defaults: a point call through the batch call, no gradient, no
    /// samples, no log Z, two marginal panels.
    #[test]
    fn defaults_of_a_bare_target() {
        let t: std::sync::Arc<dyn Target> = std::sync::Arc::new(Bare);
        assert_eq!(t.log_reward(&[1.0, 0.0, 1.0]).unwrap(), -1.0);
        assert!(!t.has_gradient());
        let mut g = [0.0; 3];
        let e = t.grad_log_reward(&[0.0; 3], &mut g).unwrap_err();
        assert_eq!(e.message, NoGradient.to_string());
        use rand::SeedableRng;
        assert!(t.sample(4, &mut Rng::seed_from_u64(0)).is_none());
        assert!(t.log_z().is_none());
        assert_eq!(
            t.picture(),
            Picture::Marginals {
                range: (-5.0, 5.0),
                pairs: vec![(0, 1), (0, 2)]
            }
        );
        let e = TargetError::new("bare", "the program exited with status 1");
        assert_eq!(
            e.to_string(),
            "target `bare`: the program exited with status 1"
        );
    }
}
