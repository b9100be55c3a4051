//! Metropolis-adjusted Langevin (MALA) local search for the diffusion samplers.
//!
//! Starting from a batch of points (typically drawn from the replay buffer),
//! every point runs its own MALA chain on the target density R. One iteration
//! takes a Langevin step x' = x + h·∇log R(x) + √(2h)·ξ, ξ ~ N(0, I), and keeps it
//! with the Metropolis–Hastings probability min(1, α),
//!
//! log α = log R(x') - log R(x) + log q(x | x') - log q(x' | x),
//! log q(y | x) = -|y - x - h·∇log R(x)|² / (4h),
//!
//! which makes R the stationary law of each chain for a fixed h. The output is
//! every *accepted proposal* of the iterations after burn-in (rejections add
//! nothing), in iteration order and, within an iteration, in chain order; these
//! become new buffer entries.
//!
//! The step size h adapts towards a target acceptance rate: the rate is the
//! fraction of proposals accepted over a window of iterations, recomputed at
//! every iteration i with i % `rate_window` == 0 (the first window is iteration
//! 0 alone, then iterations 1..=5, 6..=10, ... for a window of 5), and at every
//! iteration i ≥ 1 the step grows by 1% if the latest rate exceeds the target
//! and shrinks by 1% otherwise. This is the reference implementation's rule
//! (docs/diffusion.md "Local search").
//!
//! Because only accepted proposals are collected, the collected points are
//! distributed (at stationarity) as R(x)·a(x) rather than R(x), where a(x) is
//! the acceptance probability of a move out of x; the bias vanishes as the
//! acceptance rate approaches 1. This is the reference's behaviour and is kept.
//!
//! Random numbers are drawn in a fixed order, so a run is a function of its
//! inputs and the generator state: per iteration, first the `n·dim` standard
//! normals ξ of all chains (row-major: chain 0's coordinates, then chain 1's, ...),
//! then one uniform u ∈ [0, 1) per chain in chain order (accept iff u < min(1, α)).

use rand::Rng as _;
use rand_distr::StandardNormal;

use crate::rng::Rng;

/// Settings of MALA.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MalaSettings {
    /// Number of MALA iterations run by every chain (default 200; reference `max_iter_ls`).
    pub steps: usize,
    /// Accepted proposals are collected only at iterations i > `burn_in`
    /// (0-based, strict; default 100; reference `burn_in`).
    pub burn_in: usize,
    /// Initial Langevin step size h, used as is at iteration 0 (default 0.001;
    /// reference `ld_step`).
    pub step_size: f64,
    /// Acceptance rate the adaptation aims at: the step grows by 1% while the
    /// latest windowed rate is strictly above it and shrinks by 1% otherwise
    /// (default 0.574; reference `target_acceptance_rate`).
    pub target_acceptance: f64,
    /// Whether the step size adapts (default true; reference `ld_schedule`,
    /// always on there). When false, every iteration uses `step_size`.
    pub adapt: bool,
    /// The windowed acceptance rate is recomputed (and its counters reset) at
    /// iterations i with i % `rate_window` == 0 (default 5, as hard-coded in the
    /// reference). Must be at least 1.
    pub rate_window: usize,
}

impl Default for MalaSettings {
    fn default() -> Self {
        Self {
            steps: 200,
            burn_in: 100,
            step_size: 0.001,
            target_acceptance: 0.574,
            adapt: true,
            rate_window: 5,
        }
    }
}

/// Result of one MALA run.
#[derive(Debug, Clone, PartialEq)]
pub struct MalaOutput {
    /// `[m, dim]`, row-major: every proposal accepted at an iteration after
    /// burn-in, in iteration order, then chain order within an iteration.
    pub samples: Vec<f64>,
    /// `[m]`: log R of each collected sample.
    pub log_r: Vec<f64>,
    /// Target evaluations: one per log R evaluation of one point plus one per
    /// gradient evaluation of one point. Each chain evaluates both at its start
    /// and at each proposal (the gradient at the current point is reused), so
    /// this is 2·n·(steps + 1).
    pub energy_calls: u64,
    /// Step size used at the last iteration (`step_size` when `steps` is 0).
    pub final_step: f64,
    /// Fraction of all proposals (all iterations, all chains) accepted; 0 when
    /// nothing was proposed.
    pub acceptance: f64,
}

/// The reference's step rule: h·(1 + 0.01) when `rate` > `target`, else h·(1 - 0.01).
fn adjust_step(step: f64, rate: f64, target: f64) -> f64 {
    const FACTOR: f64 = 0.01;
    if rate > target {
        step + FACTOR * step
    } else {
        step - FACTOR * step
    }
}

/// Run MALA from the n points `x0` ([n, dim], row-major) on the target with
/// log density `log_r` and gradient `grad` (`grad(x, out)` writes ∇log R(x)
/// into `out`).
///
/// A proposal whose log acceptance ratio is NaN (e.g. log R = -∞ at both ends)
/// is rejected; one with log R(x) = -∞ and finite log R(x') is accepted.
///
/// # Panics
/// If `dim` is 0, `x0.len()` is not a multiple of `dim`, or `rate_window` is 0.
pub fn mala(
    dim: usize,
    x0: &[f64],
    log_r: impl Fn(&[f64]) -> f64,
    grad: impl Fn(&[f64], &mut [f64]),
    settings: &MalaSettings,
    rng: &mut Rng,
) -> MalaOutput {
    run_chains(dim, x0, log_r, grad, settings, rng).0
}

/// [`mala`], also returning the chains' final states (`[n, dim]`).
fn run_chains(
    dim: usize,
    x0: &[f64],
    log_r: impl Fn(&[f64]) -> f64,
    grad: impl Fn(&[f64], &mut [f64]),
    settings: &MalaSettings,
    rng: &mut Rng,
) -> (MalaOutput, Vec<f64>) {
    assert!(dim > 0, "dim must be positive");
    assert_eq!(x0.len() % dim, 0, "x0 length is not a multiple of dim");
    assert!(settings.rate_window > 0, "rate_window must be at least 1");
    let n = x0.len() / dim;

    let mut x = x0.to_vec();
    let mut lr: Vec<f64> = x.chunks_exact(dim).map(&log_r).collect();
    let mut g = vec![0.0; n * dim];
    for (gi, xi) in g.chunks_exact_mut(dim).zip(x.chunks_exact(dim)) {
        grad(xi, gi);
    }
    let mut energy_calls = 2 * n as u64;

    let mut xn = vec![0.0; n * dim];
    let mut gn = vec![0.0; n * dim];
    let mut lrn = vec![0.0; n];
    let mut log_alpha = vec![0.0; n];

    let mut samples = Vec::new();
    let mut out_lr = Vec::new();
    let mut step = settings.step_size;
    let mut rate = 0.0;
    let (mut window_accepted, mut window_proposed) = (0u64, 0u64);
    let (mut total_accepted, mut total_proposed) = (0u64, 0u64);

    for i in 0..settings.steps {
        if settings.adapt && i > 0 {
            step = adjust_step(step, rate, settings.target_acceptance);
        }
        let noise_scale = (2.0 * step).sqrt();

        // Proposals of all chains (all normals of the iteration first).
        for ((xn_j, &x_j), &g_j) in xn.iter_mut().zip(&x).zip(&g) {
            let xi: f64 = rng.sample(StandardNormal);
            *xn_j = x_j + step * g_j + noise_scale * xi;
        }

        for c in 0..n {
            let r = c * dim..(c + 1) * dim;
            let (xc, xnc) = (&x[r.clone()], &xn[r.clone()]);
            lrn[c] = log_r(xnc);
            grad(xnc, &mut gn[r.clone()]);
            let (gc, gnc) = (&g[r.clone()], &gn[r]);
            let mut fwd = 0.0;
            let mut bwd = 0.0;
            for d in 0..dim {
                let f = xnc[d] - xc[d] - step * gc[d];
                let b = xc[d] - xnc[d] - step * gnc[d];
                fwd += f * f;
                bwd += b * b;
            }
            let log_q_fwd = -fwd / (4.0 * step);
            let log_q_bwd = -bwd / (4.0 * step);
            log_alpha[c] = (lrn[c] - lr[c]) + log_q_bwd - log_q_fwd;
        }
        energy_calls += 2 * n as u64;

        // Acceptance tests (one uniform per chain), collection, update.
        let collect = i > settings.burn_in;
        for c in 0..n {
            let u: f64 = rng.random();
            let la = log_alpha[c];
            // NaN >= 0 is false and exp(NaN) is NaN, so a NaN ratio is rejected.
            let p = if la >= 0.0 { 1.0 } else { la.exp() };
            if u < p {
                let r = c * dim..(c + 1) * dim;
                if collect {
                    samples.extend_from_slice(&xn[r.clone()]);
                    out_lr.push(lrn[c]);
                }
                x[r.clone()].copy_from_slice(&xn[r.clone()]);
                g[r.clone()].copy_from_slice(&gn[r]);
                lr[c] = lrn[c];
                window_accepted += 1;
                total_accepted += 1;
            }
        }
        window_proposed += n as u64;
        total_proposed += n as u64;

        if i % settings.rate_window == 0 {
            rate = if window_proposed > 0 {
                window_accepted as f64 / window_proposed as f64
            } else {
                0.0
            };
            window_accepted = 0;
            window_proposed = 0;
        }
    }

    let out = MalaOutput {
        samples,
        log_r: out_lr,
        energy_calls,
        final_step: step,
        acceptance: if total_proposed > 0 {
            total_accepted as f64 / total_proposed as f64
        } else {
            0.0
        },
    };
    (out, x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::cell::Cell;

    fn rng(seed: u64) -> Rng {
        Rng::seed_from_u64(seed)
    }

    type LogR = Box<dyn Fn(&[f64]) -> f64>;
    type Grad = Box<dyn Fn(&[f64], &mut [f64])>;

    /// Diagonal Gaussian N(mu, diag(s²)): (log density up to a constant, gradient).
    fn gaussian(mu: &[f64], s: &[f64]) -> (LogR, Grad) {
        let (m1, s1) = (mu.to_vec(), s.to_vec());
        let (m2, s2) = (mu.to_vec(), s.to_vec());
        let lr = move |x: &[f64]| {
            x.iter()
                .zip(&m1)
                .zip(&s1)
                .map(|((x, m), s)| -0.5 * ((x - m) / s).powi(2))
                .sum()
        };
        let gr = move |x: &[f64], out: &mut [f64]| {
            for (((o, x), m), s) in out.iter_mut().zip(x).zip(&m2).zip(&s2) {
                *o = -(x - m) / (s * s);
            }
        };
        (Box::new(lr), Box::new(gr))
    }

    /// Per-coordinate (mean, variance) of `[m, dim]` rows.
    fn column_moments(xs: &[f64], dim: usize) -> Vec<(f64, f64)> {
        let m = (xs.len() / dim) as f64;
        (0..dim)
            .map(|d| {
                let mean = xs.iter().skip(d).step_by(dim).sum::<f64>() / m;
                let var = xs
                    .iter()
                    .skip(d)
                    .step_by(dim)
                    .map(|x| (x - mean).powi(2))
                    .sum::<f64>()
                    / m;
                (mean, var)
            })
            .collect()
    }

    fn exact_gaussian(n: usize, mu: &[f64], s: &[f64], r: &mut Rng) -> Vec<f64> {
        let mut v = Vec::with_capacity(n * mu.len());
        for _ in 0..n {
            for (m, sd) in mu.iter().zip(s) {
                v.push(m + sd * r.sample::<f64, _>(StandardNormal));
            }
        }
        v
    }

    /// Runs 2000 chains started from exact samples of N(mu, diag(s²)) for 300
    /// iterations. The final chain states must again be exact samples (checked
    /// to 4 standard errors of 2000 independent draws); with `check_collected`
    /// the collected post-burn-in samples must match too (the same bounds hold
    /// for them, since each chain's time average has variance at most s²).
    fn check_invariance(
        mu: &[f64],
        s: &[f64],
        settings: MalaSettings,
        seed: u64,
        check_collected: bool,
    ) {
        let dim = mu.len();
        let n = 2000;
        let mut r = rng(seed);
        let x0 = exact_gaussian(n, mu, s, &mut r);
        let (lr, gr) = gaussian(mu, s);
        let (out, states) = run_chains(dim, &x0, &lr, &gr, &settings, &mut r);
        let m = out.log_r.len();
        assert!(m > 50 * n, "only {m} samples collected");
        assert_eq!(out.samples.len(), m * dim);
        for (x, l) in out.samples.chunks_exact(dim).zip(&out.log_r) {
            assert_eq!(*l, lr(x));
        }
        let mut sets = vec![("states", states)];
        if check_collected {
            sets.push(("collected", out.samples));
        }
        for (what, xs) in sets {
            for (d, (mean, var)) in column_moments(&xs, dim).into_iter().enumerate() {
                let s2 = s[d] * s[d];
                let se_mean = s[d] / (n as f64).sqrt();
                let se_var = s2 * (2.0 / n as f64).sqrt();
                assert!(
                    (mean - mu[d]).abs() < 4.0 * se_mean,
                    "{what} coord {d}: mean {mean}"
                );
                assert!(
                    (var - s2).abs() < 4.0 * se_var,
                    "{what} coord {d}: var {var} vs {s2}"
                );
            }
        }
    }

    fn settings(steps: usize, step_size: f64, adapt: bool) -> MalaSettings {
        MalaSettings {
            steps,
            step_size,
            adapt,
            ..MalaSettings::default()
        }
    }

    #[test]
    fn mala_keeps_a_1d_gaussian_invariant() {
        // Small steps (acceptance near 1): states and collected samples.
        check_invariance(&[1.5], &[0.7], settings(300, 0.001, true), 1, true);
        // Large adapted steps (acceptance near the target): the chain states.
        check_invariance(&[-0.5], &[0.3], settings(300, 0.05, true), 2, false);
    }

    #[test]
    fn mala_keeps_a_2d_gaussian_invariant() {
        check_invariance(
            &[1.0, -2.0],
            &[0.5, 1.5],
            settings(300, 0.001, true),
            3,
            true,
        );
        check_invariance(
            &[1.0, -2.0],
            &[0.5, 1.5],
            settings(300, 0.05, true),
            4,
            false,
        );
    }

    #[test]
    fn collected_accepted_proposals_are_overdispersed_at_moderate_acceptance() {
        // Like the reference, only accepted proposals are collected, and these
        // follow R(x)·a(x), not R(x). With a fixed step h = 1.5 s² on N(0, s²)
        // (acceptance about 0.63) their variance is about 1.15 s², while the
        // chain states stay exact.
        let s = 0.3;
        let h = 1.5 * s * s;
        check_invariance(&[0.0], &[s], settings(300, h, false), 5, false);
        let mut r = rng(6);
        let x0 = exact_gaussian(2000, &[0.0], &[s], &mut r);
        let (lr, gr) = gaussian(&[0.0], &[s]);
        let out = mala(1, &x0, &lr, &gr, &settings(300, h, false), &mut r);
        let (_, var) = column_moments(&out.samples, 1)[0];
        assert!(
            var / (s * s) > 1.08,
            "collected var ratio {}",
            var / (s * s)
        );
        assert!(
            out.acceptance > 0.55 && out.acceptance < 0.72,
            "{}",
            out.acceptance
        );
    }

    #[test]
    fn mala_moves_chains_started_at_one_point_towards_the_target() {
        let (mu, s) = ([2.0, -1.0], [0.5, 0.4]);
        let dim = 2;
        let n = 2000;
        let x0: Vec<f64> = (0..n).flat_map(|_| [0.0, 0.0]).collect();
        let (lr, gr) = gaussian(&mu, &s);
        let settings = MalaSettings {
            steps: 300,
            burn_in: 150,
            step_size: 0.01,
            ..MalaSettings::default()
        };
        let (out, states) = run_chains(dim, &x0, &lr, &gr, &settings, &mut rng(7));
        let collected = column_moments(&out.samples, dim);
        let last = column_moments(&states, dim);
        for d in 0..dim {
            let s2 = s[d] * s[d];
            // Final states: converged (4 standard errors of 2000 exact draws).
            let (mean, var) = last[d];
            assert!(
                (mean - mu[d]).abs() < 4.0 * s[d] / (n as f64).sqrt(),
                "state mean {mean}"
            );
            assert!(
                (var - s2).abs() < 4.0 * s2 * (2.0 / n as f64).sqrt(),
                "state var {var}"
            );
            // Collected post-burn-in samples: close to the target moments (the
            // variance is loosely bounded: see the overdispersion test).
            let (mean, var) = collected[d];
            assert!((mean - mu[d]).abs() < 0.05 * s[d], "coord {d}: mean {mean}");
            assert!((var - s2).abs() < 0.15 * s2, "coord {d}: var {var} vs {s2}");
        }
        assert!(out.acceptance > 0.5 && out.acceptance <= 1.0);
    }

    #[test]
    fn flat_target_grows_the_step_one_percent_per_iteration() {
        // log R = 0, gradient 0: x' - x = -(x - x') exactly, so log alpha = 0 and
        // every proposal is accepted. The window rate is 1 > 0.574 from iteration
        // 0 on, so iterations 1..k-1 each multiply the step by 1.01 and the step
        // used at the last of k iterations is 0.001 * 1.01^(k-1).
        let n = 10;
        let x0 = vec![0.0; n * 3];
        for k in [1usize, 2, 6, 50, 200] {
            let settings = MalaSettings {
                steps: k,
                ..MalaSettings::default()
            };
            let out = mala(3, &x0, |_| 0.0, |_, g| g.fill(0.0), &settings, &mut rng(0));
            let want = 0.001 * 1.01f64.powi(k as i32 - 1);
            assert!((out.final_step / want - 1.0).abs() < 1e-12, "k = {k}");
            assert_eq!(out.acceptance, 1.0);
            assert_eq!(out.energy_calls, 2 * n as u64 * (k as u64 + 1));
            // Collected: iterations burn_in+1 .. k-1, all n chains each.
            let collected = k.saturating_sub(settings.burn_in + 1) * n;
            assert_eq!(out.log_r.len(), collected);
        }
        // Rate 1 is not above a target of 1: the step shrinks by 1% instead.
        let settings = MalaSettings {
            steps: 40,
            target_acceptance: 1.0,
            ..MalaSettings::default()
        };
        let out = mala(3, &x0, |_| 0.0, |_, g| g.fill(0.0), &settings, &mut rng(0));
        assert!((out.final_step / (0.001 * 0.99f64.powi(39)) - 1.0).abs() < 1e-12);
        // No adaptation: constant step.
        let settings = MalaSettings {
            adapt: false,
            ..MalaSettings::default()
        };
        let out = mala(3, &x0, |_| 0.0, |_, g| g.fill(0.0), &settings, &mut rng(0));
        assert_eq!(out.final_step, 0.001);
    }

    #[test]
    fn acceptance_window_timing() {
        // One chain on a flat target whose proposals are forced to be accepted
        // (log R = 0) or rejected (log R = -inf) by iteration: accept at
        // iteration 0, reject at 1..=5, accept at 6..=11.
        // Rates: after i = 0: 1/1 (> target) -> steps at i = 1..=5 grow;
        // after i = 5: 0/5 -> steps at i = 6..=10 shrink; after i = 10: 5/5 ->
        // the step at i = 11 grows. Final step = 0.001 * 1.01^6 * 0.99^5.
        let calls = Cell::new(0usize);
        let log_r = |_: &[f64]| {
            let c = calls.get();
            calls.set(c + 1);
            // Call 0 is the start point; call i + 1 is the proposal of iteration i.
            match c {
                0 => 0.0,
                c if (2..=6).contains(&c) => f64::NEG_INFINITY,
                _ => 0.0,
            }
        };
        let settings = MalaSettings {
            steps: 12,
            burn_in: 0,
            ..MalaSettings::default()
        };
        let out = mala(1, &[0.0], log_r, |_, g| g.fill(0.0), &settings, &mut rng(0));
        let want = 0.001 * 1.01f64.powi(6) * 0.99f64.powi(5);
        assert!(
            (out.final_step / want - 1.0).abs() < 1e-12,
            "{}",
            out.final_step
        );
        // Collected: accepted proposals at i > 0, i.e. iterations 6..=11.
        assert_eq!(out.log_r, vec![0.0; 6]);
        assert!((out.acceptance - 7.0 / 12.0).abs() < 1e-15);
    }

    #[test]
    fn nan_ratio_is_rejected() {
        // Start at log R = -inf and propose log R = -inf: log alpha is NaN.
        let out = mala(
            1,
            &[0.0, 1.0],
            |_| f64::NEG_INFINITY,
            |_, g| g.fill(0.0),
            &MalaSettings {
                steps: 10,
                burn_in: 0,
                ..MalaSettings::default()
            },
            &mut rng(0),
        );
        assert_eq!(out.acceptance, 0.0);
        assert!(out.samples.is_empty());
    }

    #[test]
    fn same_seed_same_output() {
        let energy_like = |x: &[f64]| -x.iter().map(|v| v.powi(4) - 2.0 * v * v).sum::<f64>();
        let grad = |x: &[f64], g: &mut [f64]| {
            for (o, v) in g.iter_mut().zip(x) {
                *o = -(4.0 * v.powi(3) - 4.0 * v);
            }
        };
        let x0: Vec<f64> = (0..64).map(|i| (i as f64 * 0.37).sin()).collect();
        let settings = MalaSettings {
            steps: 60,
            burn_in: 10,
            step_size: 0.05,
            ..MalaSettings::default()
        };
        let a = mala(4, &x0, energy_like, grad, &settings, &mut rng(42));
        let b = mala(4, &x0, energy_like, grad, &settings, &mut rng(42));
        let c = mala(4, &x0, energy_like, grad, &settings, &mut rng(43));
        assert_eq!(a, b);
        assert!(!a.samples.is_empty());
        assert_ne!(a.samples, c.samples);
    }

    #[test]
    fn no_chains_or_no_steps() {
        let out = mala(
            2,
            &[],
            |_| 0.0,
            |_, g| g.fill(0.0),
            &MalaSettings::default(),
            &mut rng(0),
        );
        assert!(out.samples.is_empty());
        assert_eq!(out.energy_calls, 0);
        assert_eq!(out.acceptance, 0.0);
        let settings = MalaSettings {
            steps: 0,
            ..MalaSettings::default()
        };
        let out = mala(
            2,
            &[1.0, 2.0],
            |_| 0.0,
            |_, g| g.fill(0.0),
            &settings,
            &mut rng(0),
        );
        assert_eq!(out.final_step, 0.001);
        assert_eq!(out.energy_calls, 2);
    }
}
