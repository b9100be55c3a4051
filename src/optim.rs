//! Adam with parameter groups, gradient-norm clipping, coupled L2 weight
//! decay and step-wise learning-rate decay, written to match PyTorch's
//! `Adam(weight_decay=..)` + `clip_grad_norm_` + `MultiStepLR` as the
//! references use them.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which variables a gradient-norm clip measures and scales.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClipScope {
    /// Every variable of the sampler (network and log Z).
    #[default]
    All,
    /// Only the time encoder of the `diffusion` policy (the diffusion
    /// reference clips its teacher's first parameter group only).
    TimeEncoder,
}

/// Adam over groups of variables, each group with its own learning rate.
pub struct Adam {
    groups: Vec<Group>,
    /// Clip the global L2 norm of all gradients of this optimiser to this value (`None`: no clipping).
    clip: Option<f64>,
    /// The clip's norm is over (and its scaling applies to) only the first
    /// this many groups (PyTorch's `clip_grad_norm_(param_groups[0])`).
    clip_groups: usize,
    /// Coupled L2 weight decay: `g + weight_decay * p` enters the moments
    /// (after clipping, as in PyTorch), for every group.
    weight_decay: f64,
    /// Every group's learning rate is multiplied by this (`MultiStepLR`).
    lr_scale: f64,
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
        Ok(Self {
            groups,
            clip,
            clip_groups: usize::MAX,
            weight_decay: 0.0,
            lr_scale: 1.0,
            t: 0,
        })
    }

    /// The same optimiser with its clip restricted to the first `n` groups.
    pub fn clip_first_groups(mut self, n: usize) -> Self {
        self.clip_groups = n;
        self
    }

    /// The same optimiser with coupled L2 weight decay `wd`.
    pub fn with_weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }

    /// Multiply every group's learning rate by `scale` from the next step on.
    pub fn set_lr_scale(&mut self, scale: f64) {
        self.lr_scale = scale;
    }

    /// The optimiser's state for a checkpoint (`crate::train::checkpoint`):
    /// every variable's value and both moments as named tensors
    /// `{prefix}.g{group}.{i}.{w,m,v}` (shapes of the variable), and the step
    /// count. The learning-rate scale is not state: the loop sets it from the
    /// step before every step.
    pub fn state(&self, prefix: &str) -> (Vec<(String, Tensor)>, i32) {
        let mut out = Vec::new();
        for (g, group) in self.groups.iter().enumerate() {
            for (i, var) in group.vars.iter().enumerate() {
                let name = format!("{prefix}.g{g}.{i}");
                out.push((format!("{name}.w"), var.as_tensor().detach()));
                out.push((format!("{name}.m"), group.m[i].clone()));
                out.push((format!("{name}.v"), group.v[i].clone()));
            }
        }
        (out, self.t)
    }

    /// Restore the state [`Adam::state`] saved under `prefix`: every tensor
    /// must be present with its variable's shape and dtype (an error names
    /// the first that is not).
    pub fn restore(
        &mut self,
        prefix: &str,
        tensors: &std::collections::HashMap<String, Tensor>,
        t: i32,
    ) -> Result<()> {
        for (g, group) in self.groups.iter_mut().enumerate() {
            for (i, var) in group.vars.iter().enumerate() {
                let name = format!("{prefix}.g{g}.{i}");
                let get = |part: &str| -> Result<Tensor> {
                    let key = format!("{name}.{part}");
                    let x = tensors.get(&key).ok_or_else(|| {
                        candle_core::Error::Msg(format!("the checkpoint has no tensor `{key}`"))
                    })?;
                    if x.dims() != var.dims() || x.dtype() != var.dtype() {
                        return Err(candle_core::Error::Msg(format!(
                            "the checkpoint's `{key}` is {:?} {:?}, the network's {:?} {:?}",
                            x.dtype(),
                            x.dims(),
                            var.dtype(),
                            var.dims()
                        )));
                    }
                    x.to_device(var.device())
                };
                var.set(&get("w")?)?;
                group.m[i] = get("m")?;
                group.v[i] = get("v")?;
            }
        }
        self.t = t;
        Ok(())
    }

    /// Apply one update from `grads`; returns the global gradient norm before clipping.
    /// A variable without a gradient is left unchanged (its moments too).
    pub fn step(&mut self, grads: &GradStore) -> Result<f64> {
        // Global norm over every gradient of this optimiser (one host sync).
        let sq: Vec<Tensor> = self
            .groups
            .iter()
            .take(self.clip_groups)
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
        for (k, group) in self.groups.iter_mut().enumerate() {
            let scale = if k < self.clip_groups { scale } else { 1.0 };
            let lr = group.lr * self.lr_scale;
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
                // Detached parameters: otherwise the moments would record a
                // graph through every past value of the variable.
                let g = if self.weight_decay > 0.0 {
                    (g + (var.as_tensor().detach() * self.weight_decay)?)?
                } else {
                    g
                };
                let m = ((&group.m[i] * BETA1)? + (&g * (1.0 - BETA1))?)?;
                let v = ((&group.v[i] * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
                let denom = ((&v * (1.0 / bc2))?.sqrt()? + EPS)?;
                let update = ((&m * (lr / bc1))? / denom)?;
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

    /// Coupled weight decay enters the gradient (PyTorch's Adam: the first
    /// step is still lr * sign(g + wd p)); the clip over the first group only
    /// leaves the second's gradient alone; the lr scale shrinks the step.
    #[test]
    fn weight_decay_group_clip_and_lr_scale() {
        let dev = Device::Cpu;
        let a = Var::new(&[1.0f32], &dev).unwrap();
        let b = Var::new(&[1.0f32], &dev).unwrap();
        // loss = 3a - 0.5 b: g_a = 3, g_b = -0.5; wd 10: g_b + 10 b = 9.5 > 0.
        let loss = ((a.as_tensor() * 3.0).unwrap() - (b.as_tensor() * 0.5).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let mut adam = Adam::new(
            vec![(vec![a.clone()], 0.1), (vec![b.clone()], 0.1)],
            Some(1.0),
        )
        .unwrap()
        .clip_first_groups(1)
        .with_weight_decay(10.0);
        adam.set_lr_scale(0.5);
        let norm = adam.step(&grads).unwrap();
        assert!(
            (norm - 3.0).abs() < 1e-6,
            "only group 0 is measured: {norm}"
        );
        let (a1, b1) = (
            a.as_tensor().to_vec1::<f32>().unwrap()[0],
            b.as_tensor().to_vec1::<f32>().unwrap()[0],
        );
        // The moments hold no graph: a decay term built from the variable
        // itself once kept every step's parameters alive (a leak of a copy
        // of the network per step).
        for g in &adam.groups {
            assert!(g.m.iter().chain(&g.v).all(|t| !t.track_op()));
        }
        // Both move by lr * scale = 0.05 against the sign of their (decayed) gradient.
        assert!(
            (a1 - 0.95).abs() < 1e-6 && (b1 - 0.95).abs() < 1e-6,
            "{a1} {b1}"
        );
    }

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
