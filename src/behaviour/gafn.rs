//! GAFN (arXiv 2210.03308): random-network-distillation intrinsic rewards and
//! edge-augmented trajectory balance (docs/grid.md "Behaviour policies", `gafn`).

use candle_core::{Device, Result, Tensor, D};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::check_epsilon;
use super::hooks::StudentObjective;
use crate::check::Invalid;
use crate::envs::Trajectories;
use crate::flops::matmul;
use crate::objective::tb::tb_loss_clamped;
use crate::objective::{PackedBatch, Pieces, Trained};
use crate::optim::Adam;
use crate::policy::mlp::Mlp;
use crate::rng::Rng;

/// GAFN (arXiv 2210.03308): exploration by an intrinsic reward from random
/// network distillation, with edge-augmented TB (docs/grid.md `gafn`). The
/// policy gets one extra output, log F(s). No buffer, no local search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GafnConfig {
    /// Uniform exploration mixed into training rollouts.
    pub epsilon: f64,
    /// Scale of the intrinsic reward ||pred(s) - target(s)||_2.
    pub ri_scale: f64,
    /// Weight of the predictor's distillation loss in the total loss.
    pub ri_loss_weight: f64,
    /// Hidden width of the target and predictor networks (two hidden layers).
    pub rnd_hidden: usize,
    /// Output width of the target and predictor networks.
    pub rnd_latent: usize,
    /// Adam learning rate of the predictor (not clipped).
    pub rnd_lr: f64,
    /// Augment the backward factors of intermediate states with ri(s)/F(s)
    /// (edge-based intrinsic reward); off: only the terminal reward is augmented.
    pub edge_ri: bool,
}

impl Default for GafnConfig {
    fn default() -> Self {
        Self {
            epsilon: 0.0,
            ri_scale: 0.01,
            ri_loss_weight: 1.0,
            rnd_hidden: 256,
            rnd_latent: 128,
            rnd_lr: 1e-3,
            edge_ri: true,
        }
    }
}

impl GafnConfig {
    /// Range checks.
    pub fn check(&self) -> std::result::Result<(), Invalid> {
        check_epsilon(self.epsilon)?;
        if !(self.ri_scale.is_finite() && self.ri_scale >= 0.0) {
            return Err(Invalid::new("behaviour.ri_scale", "must be >= 0"));
        }
        if !(self.ri_loss_weight.is_finite() && self.ri_loss_weight >= 0.0) {
            return Err(Invalid::new("behaviour.ri_loss_weight", "must be >= 0"));
        }
        crate::check::nonzero("behaviour.rnd_hidden", Some(self.rnd_hidden))?;
        crate::check::nonzero("behaviour.rnd_latent", Some(self.rnd_latent))?;
        if !(self.rnd_lr.is_finite() && self.rnd_lr > 0.0) {
            return Err(Invalid::new(
                "behaviour.rnd_lr",
                "must be a positive number",
            ));
        }
        Ok(())
    }
}

/// The random-network-distillation pair: a fixed random target and a trained
/// predictor, both `[obs_dim, hidden, hidden, latent]` MLPs with LeakyReLU.
pub struct Rnd {
    target: Mlp,
    /// The trained network.
    pub predictor: Mlp,
}

impl Rnd {
    /// Both networks drawn from `rng` (target first).
    pub fn new(obs_dim: usize, cfg: &GafnConfig, device: &Device, rng: &mut Rng) -> Result<Self> {
        let dims = [obs_dim, cfg.rnd_hidden, cfg.rnd_hidden, cfg.rnd_latent];
        Ok(Self {
            target: Mlp::new(&dims, device, rng)?,
            predictor: Mlp::new(&dims, device, rng)?,
        })
    }

    /// ||pred(s) - target(s)||_2 of every row of `obs`, `[N]`; the target is detached.
    pub fn errors(&self, obs: &Tensor) -> Result<Tensor> {
        let diff = (self.predictor.forward(obs)? - self.target.forward(obs)?.detach())?;
        diff.sqr()?.sum(D::Minus1)?.sqrt()
    }
}

/// GAFN on the gridworld: its networks and settings, the student's
/// objective in place of the plan's (GAFN is planned with TB only, so the
/// student has a log Z).
pub struct Gafn {
    rnd: Rnd,
    cfg: GafnConfig,
}

impl Gafn {
    /// GAFN of `cfg` on observations of width `obs_dim`, its networks drawn
    /// from `rng`.
    pub fn new(obs_dim: usize, cfg: &GafnConfig, device: &Device, rng: &mut Rng) -> Result<Self> {
        Ok(Self {
            rnd: Rnd::new(obs_dim, cfg, device, rng)?,
            cfg: cfg.clone(),
        })
    }
}

impl StudentObjective<Mlp, Trajectories, PackedBatch> for Gafn {
    /// The predictor's optimiser.
    fn aux_optimisers(&self) -> Result<Vec<Adam>> {
        Ok(vec![Adam::new(
            vec![(self.rnd.predictor.vars(), self.cfg.rnd_lr)],
            None,
        )?])
    }

    /// Edge-augmented TB ([`gafn_delta`], loss clamped as TB's) plus the
    /// predictor's weighted loss ([`rnd_loss`]).
    fn loss(
        &self,
        net: &Mlp,
        log_z: &Tensor,
        loss_clamp: f64,
        packed: &PackedBatch,
        batch: &Trajectories,
    ) -> Result<Trained> {
        let cfg = &self.cfg;
        let out = net.forward(&packed.obs)?; // [N, out]
        let errors = self.rnd.errors(&packed.obs)?; // [N]
        let ri = (errors.detach() * cfg.ri_scale)?;
        let (reward, last_row, row_weight) = gafn_inputs(batch, packed.obs.device())?;
        let delta = gafn_delta(&out, packed, log_z, &ri, &reward, &last_row, cfg.edge_ri)?;
        let loss = (tb_loss_clamped(&delta, loss_clamp)?
            + (rnd_loss(&errors, &row_weight)? * cfg.ri_loss_weight)?)?;
        Ok(Trained {
            delta,
            loss,
            pieces: Pieces::Entries,
        })
    }
}

/// GAFN inputs of a batch: R(x) `[B]`, the row of each x `[B]`, and the
/// `[B, N]` matrix averaging each entry's states.
fn gafn_inputs(trajs: &Trajectories, device: &Device) -> Result<(Tensor, Tensor, Tensor)> {
    let (b, n) = (trajs.len(), trajs.n_states());
    let reward: Vec<f32> = trajs.reward.iter().map(|&r| r as f32).collect();
    let last: Vec<u32> = trajs.offsets[1..].iter().map(|&o| o as u32 - 1).collect();
    let mut weight = vec![0f32; b * n];
    for e in 0..b {
        let (lo, hi) = (trajs.offsets[e], trajs.offsets[e + 1]);
        for r in lo..hi {
            weight[e * n + r] = 1.0 / (hi - lo) as f32;
        }
    }
    Ok((
        Tensor::from_vec(reward, b, device)?,
        Tensor::from_vec(last, b, device)?,
        Tensor::from_vec(weight, (b, n), device)?,
    ))
}

/// Edge-augmented TB residuals `[B]` (as the reference's GAFN agent):
/// delta = log Z + sum log P_F - log(R(x) + ri(x) + 1e-8)
///         - sum_t log(P_B(s_t|s_{t+1}) + ri(s_{t+1}) / F(s_{t+1})),
/// where the augmentation applies to transitions flagged `augmentable` (into
/// states other than an edge-terminated final state; never the stop action).
/// `out`: `[N, out]` with log F(s) last; `ri`: `[N]` scaled intrinsic rewards
/// (detached); `reward`: `[B]` R(x); `last_row`: `[B]` u32 row of each x.
pub fn gafn_delta(
    out: &Tensor,
    batch: &PackedBatch,
    log_z: &Tensor,
    ri: &Tensor,
    reward: &Tensor,
    last_row: &Tensor,
    edge_ri: bool,
) -> Result<Tensor> {
    let last = out.dim(1)? - 1;
    let log_f = out.narrow(1, last, 1)?.squeeze(1)?.contiguous()?; // [N]
    let log_pb = batch.log_pb(out)?; // [M]
    let back = if edge_ri {
        // log(P_B + aug * ri(s') / F(s')) per transition [M]
        let ri_next = ri.index_select(&batch.next_row, 0)?;
        let f_next = log_f.index_select(&batch.next_row, 0)?.exp()?;
        (log_pb.exp()? + ((ri_next * &batch.augmentable)? / f_next)?)?.log()?
    } else {
        log_pb
    };
    let balance = batch.per_entry(&(batch.log_pf(out)? - back)?)?; // [B]
    let log_r = ((reward + ri.index_select(last_row, 0)?)? + 1e-8)?.log()?;
    (balance - log_r)?.broadcast_add(log_z)
}

/// The predictor's loss: mean over entries of the mean over their states of
/// ||pred - target||, `row_weight` `[B, N]` holding 1/len(entry) per state.
pub fn rnd_loss(errors: &Tensor, row_weight: &Tensor) -> Result<Tensor> {
    matmul(row_weight, &errors.unsqueeze(1)?)?.mean_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::grid::fixtures::{batch, grid_2x4, STOPPED};
    use crate::objective::tb::tb_residuals;
    use crate::rng::{stream, Stream};

    fn obs(dev: &Device) -> Tensor {
        // One-hot positions of (1, 2) and (3, 0) on d=2, H=4.
        Tensor::new(&[[1u32, 6], [3, 4]], dev).unwrap()
    }

    /// A predictor that matches the target (as after learning) gives zero
    /// intrinsic reward; an untrained one does not.
    #[test]
    fn intrinsic_reward_vanishes_for_a_learned_state() {
        let dev = Device::Cpu;
        let cfg = GafnConfig {
            rnd_hidden: 16,
            rnd_latent: 8,
            ..GafnConfig::default()
        };
        let rnd = Rnd::new(8, &cfg, &dev, &mut stream(0, Stream::InitAux)).unwrap();
        let before: Vec<f32> = rnd.errors(&obs(&dev)).unwrap().to_vec1().unwrap();
        assert!(before.iter().all(|&e| e > 0.0));
        // Training the predictor on the states drives their reward towards 0.
        let mut opt = crate::optim::Adam::new(vec![(rnd.predictor.vars(), 1e-2)], None).unwrap();
        for _ in 0..300 {
            let loss = rnd.errors(&obs(&dev)).unwrap().mean_all().unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        }
        let after: Vec<f32> = rnd.errors(&obs(&dev)).unwrap().to_vec1().unwrap();
        assert!(
            after.iter().zip(&before).all(|(a, b)| *a < 0.05 * b),
            "{before:?} -> {after:?}"
        );
        // Exactly learned: predictor weights equal to the target's -> exactly 0.
        for (p, t) in rnd.predictor.vars().iter().zip(rnd.target.vars()) {
            p.set(t.as_tensor()).unwrap();
        }
        let exact: Vec<f32> = rnd.errors(&obs(&dev)).unwrap().to_vec1().unwrap();
        assert_eq!(exact, vec![0.0, 0.0]);
    }

    /// With zero intrinsic reward, edge-augmented TB is plain TB (with the
    /// reference's sign convention: delta_gafn = -delta_tb).
    #[test]
    fn zero_intrinsic_reward_is_plain_tb() {
        let dev = Device::Cpu;
        let g = grid_2x4();
        let t = batch(&g, &[STOPPED, (&[0, 0, 1, 0, 2, 0, 3, 0], &[0, 0, 0])]);
        let p = g.pack(&t, false, &dev).unwrap();
        let n = t.n_states();
        let vals: Vec<f32> = (0..n * 6)
            .map(|i| ((i * 7) % 5) as f32 * 0.3 - 0.5)
            .collect();
        let out = Tensor::from_vec(vals, (n, 6), &dev).unwrap();
        let z = Tensor::new(0.7f32, &dev).unwrap();
        let reward = Tensor::new(&[t.reward[0] as f32, t.reward[1] as f32], &dev).unwrap();
        let last = Tensor::new(&[3u32, 7], &dev).unwrap();
        let ri = Tensor::zeros(n, candle_core::DType::F32, &dev).unwrap();
        let gafn: Vec<f32> = gafn_delta(&out, &p, &z, &ri, &reward, &last, true)
            .unwrap()
            .to_vec1()
            .unwrap();
        let log_r: Vec<f64> = t.reward.iter().map(|r| (r + 1e-8).ln()).collect();
        let balance = p.balance(&out, true).unwrap();
        let tb: Vec<f32> = tb_residuals(&balance, &log_r, Some(&z))
            .unwrap()
            .to_vec1()
            .unwrap();
        for (a, b) in gafn.iter().zip(&tb) {
            assert!((a + b).abs() < 1e-4, "{gafn:?} vs {tb:?}");
        }
        // A positive intrinsic reward on intermediate states raises the backward
        // factors, so delta decreases; the edge-terminated final state (row 7)
        // gets no augmentation but its ri enters the terminal reward.
        let ri = Tensor::new(&[0f32, 0.5, 0.5, 0.5, 0.0, 0.5, 0.5, 0.0], &dev).unwrap();
        let aug: Vec<f32> = gafn_delta(&out, &p, &z, &ri, &reward, &last, true)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(aug[0] < gafn[0] && aug[1] < gafn[1]);
    }
}
