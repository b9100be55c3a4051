//! A sampler being trained — the student, or the teacher, which is the same
//! type: a policy network, a learned log Z (TB, SubTB), one Adam optimiser
//! and the objective it is trained with.

use candle_core::{Device, Tensor, Var};

use super::RunError;
use crate::objective::balance::Balance;
use crate::objective::{ObjectiveKind, Trained};
use crate::optim::Adam;
use crate::optim::ClipScope;
use crate::plan::SamplerPlan;
use crate::policy::diffusion::DiffusionNet;
use crate::policy::mlp::Mlp;
use crate::policy::ssr::Ssr;

/// A policy network: its trainable variables.
pub trait Policy: Send + Sync {
    /// Every trainable variable, in a fixed order (the optimiser's).
    fn vars(&self) -> Vec<Var>;

    /// How many of the first [`Policy::vars`] form the time encoder (none by default).
    fn time_encoder_len(&self) -> usize {
        0
    }
}

impl Policy for DiffusionNet {
    fn vars(&self) -> Vec<Var> {
        DiffusionNet::vars(self)
    }

    fn time_encoder_len(&self) -> usize {
        self.time_vars().len()
    }
}

impl Policy for Mlp {
    fn vars(&self) -> Vec<Var> {
        Mlp::vars(self)
    }
}

impl Policy for Ssr {
    fn vars(&self) -> Vec<Var> {
        Ssr::vars(self)
    }
}

/// A sampler being trained.
pub struct Sampler<N> {
    /// The policy network.
    pub net: N,
    /// log Z (TB, SubTB); `None` for DB.
    log_z: Option<Var>,
    /// The objective and the factor of its loss.
    objective: ObjectiveKind,
    loss_scale: f64,
    /// Adam over the network (the plan's `lr`) and log Z (its own `lr`).
    opt: Adam,
    /// Optimisers of auxiliary modules trained by the same loss (GAFN's RND
    /// predictor), stepped on the same gradients after `opt`.
    aux: Vec<Adam>,
    /// Squared residuals are clamped to this (0: no clamp).
    pub loss_clamp: f64,
    /// log Z is clamped to at least this after every step.
    log_z_min: Option<f64>,
}

impl<N: Policy> Sampler<N> {
    /// A sampler of `net` with the optimiser and clamps of `plan`.
    pub fn new(net: N, plan: &SamplerPlan, device: &Device) -> Result<Self, RunError> {
        let log_z = match &plan.log_z {
            Some(z) => Some((
                Var::from_tensor(&Tensor::new(z.init as f32, device)?)?,
                z.lr,
            )),
            None => None,
        };
        let mut vars = net.vars();
        let mut groups = Vec::new();
        let clip_groups = match plan.clip_scope {
            ClipScope::All => usize::MAX,
            ClipScope::TimeEncoder => {
                let rest = vars.split_off(net.time_encoder_len());
                groups.push((std::mem::replace(&mut vars, rest), plan.lr));
                1
            }
        };
        groups.push((vars, plan.lr));
        if let Some((z, z_lr)) = &log_z {
            groups.push((vec![z.clone()], *z_lr));
        }
        let opt = Adam::new(groups, plan.clip)?
            .clip_first_groups(clip_groups)
            .with_weight_decay(plan.weight_decay);
        Ok(Self {
            net,
            opt,
            log_z: log_z.map(|(z, _)| z),
            aux: Vec::new(),
            loss_clamp: plan.loss_clamp(),
            objective: plan.objective,
            loss_scale: plan.loss_scale,
            log_z_min: plan.log_z.and_then(|z| z.min),
        })
    }

    /// The residuals and loss of the sampler's objective on `balance` (built
    /// from this sampler's network) towards `log_target` `[B]`.
    pub fn train_loss(&self, balance: &Balance, log_target: &[f64]) -> Result<Trained, RunError> {
        let mut t = self
            .objective
            .get()
            .train(balance, log_target, self.log_z())?;
        if self.loss_scale != 1.0 {
            t.loss = (t.loss * self.loss_scale)?;
        }
        Ok(t)
    }

    /// The same sampler, with `opt` also stepped on every update.
    pub fn with_aux(mut self, opt: Adam) -> Self {
        self.aux.push(opt);
        self
    }

    /// log Z as a scalar tensor (`None` for DB).
    pub fn log_z(&self) -> Option<&Tensor> {
        self.log_z.as_ref().map(Var::as_tensor)
    }

    /// log Z as a number (NaN for DB).
    pub fn log_z_value(&self) -> Result<f64, RunError> {
        Ok(match &self.log_z {
            Some(z) => z.as_tensor().to_scalar::<f32>()? as f64,
            None => f64::NAN,
        })
    }

    /// Multiply the learning rates of the sampler's own optimiser by `scale`
    /// from the next step on (the auxiliary optimisers keep theirs).
    pub fn set_lr_scale(&mut self, scale: f64) {
        self.opt.set_lr_scale(scale);
    }

    /// The sampler's state for a checkpoint: the tensors of its optimiser
    /// (network weights, log Z, Adam's moments; `{prefix}.opt.*`) and of its
    /// auxiliary optimisers (`{prefix}.aux{k}.*`), and the step count of each
    /// (the main one first).
    pub fn state(&self, prefix: &str) -> (Vec<(String, Tensor)>, Vec<i32>) {
        let (mut tensors, t) = self.opt.state(&format!("{prefix}.opt"));
        let mut steps = vec![t];
        for (k, opt) in self.aux.iter().enumerate() {
            let (more, t) = opt.state(&format!("{prefix}.aux{k}"));
            tensors.extend(more);
            steps.push(t);
        }
        (tensors, steps)
    }

    /// Restore the state [`Sampler::state`] saved under `prefix`.
    pub fn restore(
        &mut self,
        prefix: &str,
        tensors: &std::collections::HashMap<String, Tensor>,
        steps: &[i32],
    ) -> Result<(), RunError> {
        if steps.len() != 1 + self.aux.len() {
            return Err(RunError::Checkpoint(format!(
                "`{prefix}` has {} optimiser(s) in the checkpoint, {} here",
                steps.len(),
                1 + self.aux.len()
            )));
        }
        self.opt
            .restore(&format!("{prefix}.opt"), tensors, steps[0])?;
        for (k, opt) in self.aux.iter_mut().enumerate() {
            opt.restore(&format!("{prefix}.aux{k}"), tensors, steps[k + 1])?;
        }
        Ok(())
    }

    /// Backpropagate `loss`, take one optimiser step (and one of every
    /// auxiliary optimiser), then apply the log Z clamp.
    pub fn update(&mut self, loss: &Tensor) -> Result<(), RunError> {
        let grads = loss.backward()?;
        self.opt.step(&grads)?;
        for opt in &mut self.aux {
            opt.step(&grads)?;
        }
        if let (Some(min), Some(z)) = (self.log_z_min, &self.log_z) {
            if (z.as_tensor().to_scalar::<f32>()? as f64) < min {
                z.set(&Tensor::new(min as f32, z.device())?)?;
            }
        }
        Ok(())
    }
}
