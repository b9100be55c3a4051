//! The diffusion sampler's policy network (docs/diffusion.md "Policy
//! `diffusion`"): the mean (and optionally the log-variance) of every
//! Gaussian step of the forward process, from the state and the time.
//!
//! time t -> [sin(2 pi k t), cos(2 pi k t)]_{k=1..K} -> Linear(2K, H) GELU Linear(H, H) GELU
//! state s -> Linear(d, H) GELU Linear(H, H) GELU
//! joint [state; time] -> Linear(2H, H) GELU (Linear(H, H) GELU) x layers -> Linear(H, 2d)
//!
//! The output layer starts at zero, so an untrained sampler's terminal
//! states are exactly N(0, sigma^2 I). The first joint layer is stored as its
//! two halves (state rows, time rows): the time half is applied to the T
//! distinct times once and broadcast over the batch, which is the same
//! function as the concatenation at a fraction of the cost. GELU is the exact
//! (erf) form.

use candle_core::{DType, Device, Result, Tensor, Var};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::mlp::torch_linear;
use crate::check::Invalid;
use crate::flops::matmul;
use crate::ops::bias_gelu;
use crate::rng::Rng;

/// The diffusion sampler's network and its exploration (docs/diffusion.md
/// "Policy `diffusion`").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DiffusionNetConfig {
    /// Width H of every hidden layer (the reference's 256).
    pub hidden: usize,
    /// Number K of Fourier frequencies of the time encoding (features
    /// sin(2 pi k t), cos(2 pi k t) for k = 1..K; the reference's 256).
    pub harmonics: usize,
    /// Hidden layers of the joint head after its first (the reference's 1).
    pub joint_layers: usize,
    /// Learn the log-variance of each step: log sigma^2 + 4 tanh(output)
    /// (off in the paper's runs: fixed variance sigma^2).
    pub learned_variance: bool,
    /// Langevin parametrisation: add a learned, time-dependent scale (one per
    /// dimension, from the time encoding) times the gradient of log R at the
    /// state to the mean (off in the paper's runs).
    pub langevin: bool,
    /// Exploration of training rollouts: the sampling variance of each step
    /// becomes logaddexp(v, 2 log(exploration / sqrt(dt))); 0 disables it
    /// (the paper's runs). Evaluation never explores.
    pub exploration: f64,
    /// Decay the exploration linearly to 0 over this many iterations (0: constant).
    pub exploration_decay: u64,
}

impl Default for DiffusionNetConfig {
    fn default() -> Self {
        Self {
            hidden: 256,
            harmonics: 256,
            joint_layers: 1,
            learned_variance: false,
            langevin: false,
            exploration: 0.0,
            exploration_decay: 0,
        }
    }
}

impl DiffusionNetConfig {
    /// Range checks.
    pub fn check(&self) -> std::result::Result<(), Invalid> {
        crate::check::nonzero("policy.hidden", Some(self.hidden))?;
        crate::check::nonzero("policy.harmonics", Some(self.harmonics))?;
        if !(self.exploration.is_finite() && self.exploration >= 0.0) {
            return Err(Invalid::new("policy.exploration", "must be >= 0"));
        }
        Ok(())
    }

    /// The exploration standard deviation at training iteration `i`.
    pub fn exploration_at(&self, i: u64) -> f64 {
        match self.exploration_decay {
            0 => self.exploration,
            n => self.exploration * (1.0 - i as f64 / n as f64).max(0.0),
        }
    }
}

/// A linear layer `(weight [in, out], bias [out])`.
struct Linear {
    w: Var,
    b: Var,
}

impl Linear {
    fn new(fan_in: usize, fan_out: usize, device: &Device, rng: &mut Rng) -> Result<Self> {
        let (w, b) = torch_linear(fan_in, fan_out, device, rng)?;
        Ok(Self { w, b })
    }

    fn zeros(fan_in: usize, fan_out: usize, device: &Device) -> Result<Self> {
        Ok(Self {
            w: Var::zeros((fan_in, fan_out), DType::F32, device)?,
            b: Var::zeros(fan_out, DType::F32, device)?,
        })
    }

    /// `[n, in] -> [n, out]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        matmul(x, self.w.as_tensor())?.broadcast_add(self.b.as_tensor())
    }

    /// GELU(x W + b) `[n, out]`, the bias added inside the activation's pass.
    fn forward_gelu(&self, x: &Tensor) -> Result<Tensor> {
        bias_gelu(&matmul(x, self.w.as_tensor())?, self.b.as_tensor())
    }

    fn vars(&self) -> [Var; 2] {
        [self.w.clone(), self.b.clone()]
    }
}

/// What the network computes once per distinct time of a batch.
pub struct TimeTerms {
    /// Time half of the first joint layer plus its bias `[n_t, H]`.
    joint: Tensor,
    /// Langevin scale per dimension `[n_t, d]` (with `langevin`).
    langevin: Option<Tensor>,
}

impl TimeTerms {
    /// The terms of the `i`-th time only.
    pub fn row(&self, i: usize) -> Result<TimeTerms> {
        Ok(TimeTerms {
            joint: self.joint.narrow(0, i, 1)?,
            langevin: match &self.langevin {
                Some(l) => Some(l.narrow(0, i, 1)?),
                None => None,
            },
        })
    }
}

/// The network's outputs for a block of states.
pub struct StepParams {
    /// Mean mu of the step's drift `[n, d]`.
    pub mean: Tensor,
    /// Learned part of the log-variance, 4 tanh(.) `[n, d]` (with `learned_variance`).
    pub log_var: Option<Tensor>,
    /// log F(x, t) of every state `[n]` (with a flow head).
    pub log_flow: Option<Tensor>,
}

/// The diffusion policy network (see the module documentation).
pub struct DiffusionNet {
    dim: usize,
    harmonics: usize,
    time: [Linear; 2],
    state: [Linear; 2],
    /// Rows of the first joint layer that multiply the state embedding `[H, H]`.
    joint_state: Var,
    /// Rows of the first joint layer that multiply the time embedding, and its bias.
    joint_time: Linear,
    joint_hidden: Vec<Linear>,
    out: Linear,
    langevin: Option<Linear>,
    learned_variance: bool,
    /// The state-flow head log F(x, t): a linear map of the joint (state
    /// and time) embedding, zero-initialised (DB, SubTB).
    flow: Option<Linear>,
}

impl DiffusionNet {
    /// A network for `dim`-dimensional states; PyTorch's default init from
    /// `rng` (the first joint layer with the fan-in of the concatenation,
    /// 2H), the output layer at zero.
    pub fn new(
        cfg: &DiffusionNetConfig,
        dim: usize,
        device: &Device,
        rng: &mut Rng,
    ) -> Result<Self> {
        let h = cfg.hidden;
        let time = [
            Linear::new(2 * cfg.harmonics, h, device, rng)?,
            Linear::new(h, h, device, rng)?,
        ];
        let state = [
            Linear::new(dim, h, device, rng)?,
            Linear::new(h, h, device, rng)?,
        ];
        // One nn.Linear(2H, H) drawn whole (weight then bias), then split.
        let (w, b) = torch_linear(2 * h, h, device, rng)?;
        let joint_state = Var::from_tensor(&w.as_tensor().narrow(0, 0, h)?.contiguous()?)?;
        let joint_time = Linear {
            w: Var::from_tensor(&w.as_tensor().narrow(0, h, h)?.contiguous()?)?,
            b,
        };
        let joint_hidden = (0..cfg.joint_layers)
            .map(|_| Linear::new(h, h, device, rng))
            .collect::<Result<Vec<_>>>()?;
        let out = Linear::zeros(h, 2 * dim, device)?;
        let langevin = match cfg.langevin {
            true => Some(Linear::new(h, dim, device, rng)?),
            false => None,
        };
        Ok(Self {
            dim,
            harmonics: cfg.harmonics,
            time,
            state,
            joint_state,
            joint_time,
            joint_hidden,
            out,
            langevin,
            learned_variance: cfg.learned_variance,
            flow: None,
        })
    }

    /// The same network with a time-conditioned state-flow head log F(x, t)
    /// on the joint embedding (zero at the start: no random draw, so the
    /// policy's weights are those of [`DiffusionNet::new`]).
    pub fn with_flow_head(mut self) -> Result<Self> {
        let h = self.joint_state.dim(1)?;
        self.flow = Some(Linear::zeros(h, 1, self.joint_state.device())?);
        Ok(self)
    }

    /// Whether the network has a state-flow head.
    pub fn has_flow_head(&self) -> bool {
        self.flow.is_some()
    }

    /// State dimension d.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether the mean needs the gradient of log R at each state.
    pub fn uses_langevin(&self) -> bool {
        self.langevin.is_some()
    }

    /// The per-time terms of the times `t` (in [0, 1]) `[n_t]`.
    pub fn time_terms(&self, t: &[f64], device: &Device) -> Result<TimeTerms> {
        let k = self.harmonics;
        let mut feats = Vec::with_capacity(t.len() * 2 * k);
        for &ti in t {
            let phase = |j: usize| 2.0 * std::f64::consts::PI * (j + 1) as f64 * ti;
            feats.extend((0..k).map(|j| phase(j).sin() as f32));
            feats.extend((0..k).map(|j| phase(j).cos() as f32));
        }
        let feats = Tensor::from_vec(feats, (t.len(), 2 * k), device)?; // [n_t, 2K]
        let emb = self.time[1].forward_gelu(&self.time[0].forward_gelu(&feats)?)?; // [n_t, H]
        Ok(TimeTerms {
            joint: self.joint_time.forward(&emb)?,
            langevin: match &self.langevin {
                Some(l) => Some(l.forward(&emb)?),
                None => None,
            },
        })
    }

    /// The step parameters of `x` `[n_t * b, d]`, a block of `b` states per
    /// time of `terms` (time-major), with `grad` = grad log R at each state
    /// `[n_t * b, d]` for the Langevin parametrisation.
    pub fn forward(
        &self,
        x: &Tensor,
        terms: &TimeTerms,
        b: usize,
        grad: Option<&Tensor>,
    ) -> Result<StepParams> {
        let n_t = terms.joint.dim(0)?;
        let h = self.joint_state.dim(1)?;
        let s = self.state[1].forward_gelu(&self.state[0].forward_gelu(x)?)?; // [n, H]
                                                                              // The time half of the joint layer (one row per time) is the bias of its block of b rows.
        let a = matmul(&s, self.joint_state.as_tensor())?; // [n_t * b, H]
        debug_assert_eq!(a.dims2()?, (n_t * b, h));
        let mut z = bias_gelu(&a, &terms.joint)?;
        for l in &self.joint_hidden {
            z = l.forward_gelu(&z)?;
        }
        let out = self.out.forward(&z)?; // [n, 2d]
        let d = self.dim;
        let mut mean = out.narrow(1, 0, d)?;
        if let (Some(scale), Some(g)) = (&terms.langevin, grad) {
            let g = g.reshape((n_t, b, d))?;
            let scaled = g
                .broadcast_mul(&scale.unsqueeze(1)?)?
                .reshape((n_t * b, d))?;
            mean = (mean + scaled)?;
        }
        let log_var = match self.learned_variance {
            true => Some((out.narrow(1, d, d)?.tanh()? * 4.0)?),
            false => None,
        };
        let log_flow = match &self.flow {
            Some(f) => Some(f.forward(&z)?.squeeze(1)?), // [n]
            None => None,
        };
        Ok(StepParams {
            mean,
            log_var,
            log_flow,
        })
    }

    /// The time encoder's variables (the teacher's gradient clip may cover only these).
    pub fn time_vars(&self) -> Vec<Var> {
        self.time.iter().flat_map(Linear::vars).collect()
    }

    /// Every trainable variable: the time encoder's first, then the rest.
    pub fn vars(&self) -> Vec<Var> {
        let mut v = self.time_vars();
        v.extend(self.state.iter().flat_map(Linear::vars));
        v.push(self.joint_state.clone());
        v.extend(self.joint_time.vars());
        v.extend(self.joint_hidden.iter().flat_map(Linear::vars));
        v.extend(self.out.vars());
        v.extend(self.langevin.iter().flat_map(Linear::vars));
        v.extend(self.flow.iter().flat_map(Linear::vars));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Stream};

    /// Shapes, the zero output at init (mean exactly 0), and the learned
    /// variance's range.
    #[test]
    fn shapes_and_zero_initial_output() {
        let dev = Device::Cpu;
        let cfg = DiffusionNetConfig {
            hidden: 16,
            harmonics: 4,
            learned_variance: true,
            ..Default::default()
        };
        let net = DiffusionNet::new(&cfg, 3, &dev, &mut stream(0, Stream::InitStudent)).unwrap();
        let terms = net.time_terms(&[0.0, 0.5], &dev).unwrap();
        let x = Tensor::ones((2 * 5, 3), DType::F32, &dev).unwrap();
        let p = net.forward(&x, &terms, 5, None).unwrap();
        assert_eq!(p.mean.dims(), &[10, 3]);
        let m: Vec<f32> = p.mean.flatten_all().unwrap().to_vec1().unwrap();
        assert!(m.iter().all(|&v| v == 0.0));
        let v: Vec<f32> = p.log_var.unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert!(v.iter().all(|&v| v == 0.0));
        // time 2 x (2K x H + H + H x H + H), state 2 x ..., joint, out.
        assert_eq!(net.time_vars().len(), 4);
        assert_eq!(net.vars().len(), 4 + 4 + 1 + 2 + 2 + 2);
    }
}
