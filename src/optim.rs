//! Adam with parameter groups and global gradient-norm clipping, written to
//! match PyTorch's `Adam` + `clip_grad_norm_` as the reference uses them.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// Adam over groups of variables, each group with its own learning rate.
pub struct Adam {
    groups: Vec<Group>,
    /// Clip the global L2 norm of all gradients of this optimiser to this value (`None`: no clipping).
    clip: Option<f64>,
    t: i32,
}

struct Group {
    lr: f64,
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl Adam {
    /// An optimiser over `(variables, learning rate)` groups.
    pub fn new(groups: Vec<(Vec<Var>, f64)>, clip: Option<f64>) -> Result<Self> {
        let groups = groups
            .into_iter()
            .map(|(vars, lr)| {
                let zeros = vars
                    .iter()
                    .map(|v| v.zeros_like())
                    .collect::<Result<Vec<_>>>()?;
                Ok(Group {
                    lr,
                    m: zeros.clone(),
                    v: zeros,
                    vars,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { groups, clip, t: 0 })
    }

    /// Apply one update from `grads`; returns the global gradient norm before clipping.
    /// A variable without a gradient is left unchanged (its moments too).
    pub fn step(&mut self, grads: &GradStore) -> Result<f64> {
        // Global norm over every gradient of this optimiser (one host sync).
        let sq: Vec<Tensor> = self
            .groups
            .iter()
            .flat_map(|g| g.vars.iter())
            .filter_map(|v| grads.get(v))
            .map(|g| g.sqr()?.sum_all())
            .collect::<Result<_>>()?;
        let norm = if sq.is_empty() {
            0.0
        } else {
            (Tensor::stack(&sq, 0)?.sum_all()?.to_scalar::<f32>()? as f64).sqrt()
        };
        // PyTorch: coef = max_norm / (norm + 1e-6), applied when below 1.
        let scale = match self.clip {
            Some(max) => (max / (norm + 1e-6)).min(1.0),
            None => 1.0,
        };
        self.t += 1;
        let bc1 = 1.0 - BETA1.powi(self.t);
        let bc2 = 1.0 - BETA2.powi(self.t);
        for group in &mut self.groups {
            for (i, var) in group.vars.iter().enumerate() {
                let Some(g) = grads.get(var) else { continue };
                // Detached: a gradient built from variables records its graph,
                // and the moments would otherwise keep every step's graph alive.
                let g = g.detach();
                let g = if scale < 1.0 {
                    g.affine(scale, 0.0)?
                } else {
                    g
                };
                let m = ((&group.m[i] * BETA1)? + (&g * (1.0 - BETA1))?)?;
                let v = ((&group.v[i] * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
                let denom = ((&v * (1.0 / bc2))?.sqrt()? + EPS)?;
                let update = ((&m * (group.lr / bc1))? / denom)?;
                var.set(&(var.as_tensor() - update)?)?;
                group.m[i] = m;
                group.v[i] = v;
            }
        }
        Ok(norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// First Adam step moves every coordinate by lr * sign(g) (bias-corrected
    /// m/sqrt(v) = g/|g|); clipping rescales the gradient, not the first step.
    #[test]
    fn first_step_is_lr_times_sign_and_norm_is_reported() {
        let dev = Device::Cpu;
        let x = Var::new(&[1.0f32, -2.0], &dev).unwrap();
        let loss = (x.as_tensor() * &Tensor::new(&[3.0f32, 4.0], &dev).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let mut adam = Adam::new(vec![(vec![x.clone()], 0.1)], Some(1.0)).unwrap();
        let norm = adam.step(&grads).unwrap();
        assert!((norm - 5.0).abs() < 1e-6, "norm {norm}"); // sqrt(3^2 + 4^2)
        let after: Vec<f32> = x.as_tensor().to_vec1().unwrap();
        assert!(
            (after[0] - 0.9).abs() < 1e-6 && (after[1] + 2.1).abs() < 1e-6,
            "{after:?}"
        );
    }
}
