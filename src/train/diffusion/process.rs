//! The diffusion sampler as a process (docs/diffusion.md "Sampler"):
//! forward rollouts of a policy network, the tensors of a batch of
//! trajectories and the objectives' view of them ([`Balance`], time-major),
//! where log P_F of the whole batch is one network pass over all T x B
//! states (`[T * B, d]` rows; the states themselves are sampled without a
//! graph, as the reference's detached sampling).

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use rand_distr::{Distribution, StandardNormal};

use crate::envs::diffusion::sde::{Paths, Sde, LN_2PI};
use crate::envs::diffusion::target::Target;
use crate::objective::balance::{Balance, Layout};
use crate::policy::diffusion::DiffusionNet;
use crate::rng::Rng;
use crate::train::RunError;

/// One set of trajectories as tensors.
pub struct PathTensors {
    /// s_0 .. s_{T-1} `[T * B, d]`.
    pub sources: Tensor,
    /// s_{i+1} - s_i `[T * B, d]`.
    pub increments: Tensor,
    /// grad log R at every source state `[T * B, d]` (Langevin policy only).
    pub grad: Option<Tensor>,
    /// The host constants of log P_F - log P_B of every step `[T * B]`
    /// time-major: the Gaussian normaliser of log P_F minus log P_B (the
    /// backward process has no parameter).
    pub fixed: Vec<f64>,
    /// Trajectories B.
    pub batch: usize,
}

/// The target, the time grid and the device of a run.
pub struct Process {
    /// The target energy.
    pub energy: Arc<dyn Target>,
    /// The time grid and noise scale.
    pub sde: Sde,
    /// Where tensors live.
    pub device: Device,
}

impl Process {
    /// log R of the rows of `x` `[B, d]`.
    pub fn log_rewards_of(&self, x: &[f32]) -> Result<Vec<f64>, RunError> {
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        Ok(self.energy.log_reward_batch(&x64)?)
    }

    /// grad log R at every row of `x` `[n, d]` as a tensor (Langevin only).
    fn grad_tensor(&self, x: &[f32], rows: usize) -> Result<Tensor, RunError> {
        let d = self.sde.dim;
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let mut g = vec![0f64; x.len()];
        self.energy.grad_log_reward_batch(&x64, &mut g)?;
        let out: Vec<f32> = g.iter().map(|&v| v as f32).collect();
        Ok(Tensor::from_vec(out, (rows, d), &self.device)?)
    }

    /// `n` forward trajectories of `net` with exploration std `expl`:
    /// the paths and the sum of log P_F of each (host, f64) `[n]`.
    pub fn rollout(
        &self,
        net: &DiffusionNet,
        n: usize,
        expl: f64,
        rng: &mut Rng,
    ) -> Result<(Paths, Vec<f64>), RunError> {
        let (t, d) = (self.sde.steps, self.sde.dim);
        let dt = self.sde.dt();
        let terms = net.time_terms(&self.sde.times(), &self.device)?;
        let mut p = Paths::zeros(t, n, d);
        let mut log_pf = vec![0f64; n];
        let base_v = self.sde.log_var();
        let ln_dt = dt.ln();
        for i in 0..t {
            let x = Tensor::from_slice(p.at(i), (n, d), &self.device)?;
            let grad = match net.uses_langevin() {
                true => Some(self.grad_tensor(p.at(i), n)?),
                false => None,
            };
            let out = net.forward(&x, &terms.row(i)?, n, grad.as_ref())?;
            let mean: Vec<f32> = out.mean.flatten_all()?.to_vec1()?;
            let lv: Option<Vec<f32>> = match out.log_var {
                Some(v) => Some(v.flatten_all()?.to_vec1()?),
                None => None,
            };
            let n_el = n * d;
            let (lo, hi) = p.states.split_at_mut((i + 1) * n_el);
            let (cur, next) = (&lo[i * n_el..], &mut hi[..n_el]);
            // The per-element constants, computed once when the variance is fixed.
            let consts = |v: f64| {
                // Sampling variance, widened by exploration (docs/diffusion.md "Sampler").
                let v_sample = match expl > 0.0 {
                    true => log_add_exp(v, 2.0 * (expl / dt.sqrt()).ln()),
                    false => v,
                };
                (
                    dt.sqrt() * (v_sample / 2.0).exp(),
                    dt.sqrt() * (v / 2.0).exp(),
                )
            };
            let fixed = (base_v + 0.0, consts(base_v + 0.0));
            for k in 0..n_el {
                let (v, (c_step, c_z)) = match &lv {
                    None => fixed,
                    Some(l) => {
                        let v = base_v + l[k] as f64;
                        (v, consts(v))
                    }
                };
                let eps: f64 = StandardNormal.sample(rng);
                let step = dt * mean[k] as f64 + c_step * eps;
                let s_next = (cur[k] as f64 + step) as f32;
                next[k] = s_next;
                let z = (s_next as f64 - cur[k] as f64 - dt * mean[k] as f64) / c_z;
                log_pf[k / d] += -0.5 * (z * z + LN_2PI + ln_dt + v);
            }
        }
        Ok((p, log_pf))
    }

    /// The tensors of `paths`.
    pub fn tensors(&self, net_langevin: bool, paths: &Paths) -> Result<PathTensors, RunError> {
        let (t, b, d) = (paths.steps, paths.batch, paths.dim);
        let rows = t * b;
        Ok(PathTensors {
            sources: Tensor::from_slice(paths.sources(), (rows, d), &self.device)?,
            increments: Tensor::from_vec(paths.increments(), (rows, d), &self.device)?,
            grad: match net_langevin {
                true => Some(self.grad_tensor(paths.sources(), rows)?),
                false => None,
            },
            fixed: {
                // log P_F's constant per step: -0.5 d (ln 2 pi + ln dt + ln sigma^2)
                let c = -0.5 * d as f64 * (LN_2PI + self.sde.dt().ln() + self.sde.log_var());
                let pb = self.sde.log_pb_steps(paths);
                pb.iter().map(|p| c - p).collect()
            },
            batch: b,
        })
    }

    /// The objectives' view of `pt` under `net`: time-major `[T, B]`
    /// transitions; the network's part of log P_F of a step is
    /// -0.5 sum_d [r^2 e^{-lv} / (dt sigma^2) + lv], r = increment - dt mu
    /// (its constant and log P_B are host constants); log F(x, t) of the
    /// sources from the flow head, the terminal row left at 0 (replaced by
    /// log R).
    pub fn balance(&self, net: &DiffusionNet, pt: &PathTensors) -> Result<Balance, RunError> {
        let (t, b, d) = (self.sde.steps, pt.batch, self.sde.dim);
        let dt = self.sde.dt();
        let terms = net.time_terms(&self.sde.times(), &self.device)?;
        let out = net.forward(&pt.sources, &terms, b, pt.grad.as_ref())?;
        let r = (&pt.increments - (out.mean * dt)?)?; // [T*B, d]
        let scale = 1.0 / (dt * self.sde.t_scale);
        let quad = match &out.log_var {
            None => (r.sqr()? * scale)?,
            Some(lv) => ((r.sqr()? * (lv.neg()?.exp()? * scale)?)? + lv)?,
        };
        let log_pf = (quad.reshape((t, b, d))?.sum(2)? * -0.5)?.flatten_all()?; // [T*B]
        let log_flow = match out.log_flow {
            Some(f) => Some(Tensor::cat(
                &[&f, &Tensor::zeros(b, DType::F32, &self.device)?],
                0,
            )?), // [(T+1)*B]
            None => None,
        };
        Ok(Balance {
            batch: b,
            layout: Layout::TimeMajor { steps: t },
            log_pf,
            log_pb: None,
            fixed: pt.fixed.clone(),
            log_flow,
            terminal: vec![true; b],
        })
    }
}

/// ln(e^a + e^b).
fn log_add_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::tb::tb_residuals;
    use crate::policy::diffusion::DiffusionNetConfig;
    use crate::rng::{stream, Stream};

    /// The 2-d 25GMM process with `steps` steps, sigma^2 = 1.
    fn process(steps: usize) -> Process {
        Process {
            energy: Arc::new(crate::envs::diffusion::gmm25::Gmm25),
            sde: Sde {
                steps,
                dim: 2,
                t_scale: 1.0,
            },
            device: Device::Cpu,
        }
    }

    /// A small untrained network (zero output layer).
    fn untrained(p: &Process) -> DiffusionNet {
        let cfg = DiffusionNetConfig {
            hidden: 8,
            harmonics: 2,
            ..Default::default()
        };
        DiffusionNet::new(
            &cfg,
            p.sde.dim,
            &p.device,
            &mut stream(0, Stream::InitStudent),
        )
        .unwrap()
    }

    /// log P_F and log P_B of a hand-built 2-step trajectory 0 -> s_1 -> s_2
    /// in 2-d (T = 2, dt = 0.5, sigma^2 = 1) under the untrained network
    /// (mean 0): log P_F = sum over steps and dimensions of
    /// -0.5 (z^2 + ln 2 pi + ln dt), z = increment / sqrt(dt); log P_B =
    /// log N(s_1; s_2 / 2, 0.25 I). The residual towards log R = 0 with no
    /// log Z is log P_B - log P_F.
    #[test]
    fn log_pf_and_log_pb_of_a_hand_trajectory() {
        let f = process(2);
        let net = untrained(&f);
        let s1 = [0.3f32, -0.2];
        let s2 = [1.0f32, 0.5];
        let paths = Paths {
            steps: 2,
            batch: 1,
            dim: 2,
            states: vec![0.0, 0.0, s1[0], s1[1], s2[0], s2[1]],
        };
        let dt: f64 = 0.5;
        let mut log_pf = 0.0;
        for (a, b) in [([0f32, 0.0], s1), (s1, s2)] {
            for k in 0..2 {
                let z = (b[k] - a[k]) as f64 / dt.sqrt();
                log_pf += -0.5 * (z * z + LN_2PI + dt.ln());
            }
        }
        let mut log_pb = 0.0;
        for k in 0..2 {
            let r = s1[k] as f64 - s2[k] as f64 / 2.0;
            log_pb += -0.5 * (r * r / 0.25 + LN_2PI + 0.25f64.ln());
        }
        assert!((f.sde.log_pb(&paths)[0] - log_pb).abs() < 1e-6);
        let pt = f.tensors(false, &paths).unwrap();
        let delta: Vec<f32> = tb_residuals(&f.balance(&net, &pt).unwrap(), &[0.0], None)
            .unwrap()
            .to_vec1()
            .unwrap();
        let expected = log_pb - log_pf;
        assert!(
            (delta[0] as f64 - expected).abs() < 1e-4,
            "{delta:?} vs {expected}"
        );
    }

    /// An untrained sampler's terminal states are N(0, I) exactly in law
    /// (zero output layer): mean 0 and variance 1 over 4000 2-d samples,
    /// and its forward log P_F equals that of the Brownian motion.
    #[test]
    fn untrained_rollout_is_brownian() {
        let f = process(10);
        let net = untrained(&f);
        let (p, log_pf) = f
            .rollout(&net, 2000, 0.0, &mut stream(0, Stream::Sampling))
            .unwrap();
        let x = p.terminal();
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / x.len() as f64;
        assert!(
            mean.abs() < 0.07 && (var - 1.0).abs() < 0.07,
            "{mean} {var}"
        );
        // The batched residual pass agrees with the rollout's own log P_F.
        let sel = p.select(&[0, 1]);
        let pt = f.tensors(false, &sel).unwrap();
        let delta: Vec<f32> = tb_residuals(&f.balance(&net, &pt).unwrap(), &[0.0, 0.0], None)
            .unwrap()
            .to_vec1()
            .unwrap();
        let log_pb = f.sde.log_pb(&sel);
        for j in 0..2 {
            let want = log_pb[j] - log_pf[j];
            assert!(
                (delta[j] as f64 - want).abs() < 1e-3,
                "{} vs {want}",
                delta[j]
            );
        }
    }

    /// Every objective on the hand-built 2-step trajectory above (T = 2,
    /// 2-d, dt = 0.5) under the untrained network with a flow head (zero:
    /// log F(s_0) = log F(s_1) = 0), log Z = 0.3, log R = -1: with the
    /// per-step p_t = log P_F and b_t = log P_B (b_0 = 0),
    /// TB = -1 + b_1 - 0.3 - p_0 - p_1; DB = (p_0, p_1 + 1 - b_1);
    /// SubTB(0.5): u = (0.3, -p_0, -1 - p_0 - p_1 + b_1), pieces
    /// (0,1) = -p_0 - 0.3, (1,2) = -1 - p_1 + b_1, (0,2) = TB.
    #[test]
    fn every_objective_on_a_two_step_hand_trajectory() {
        use crate::objective::db::Db;
        use crate::objective::subtb::SubTb;
        use crate::objective::tb::Tb;
        use crate::objective::Objective;
        let f = process(2);
        let net = untrained(&f).with_flow_head().unwrap();
        let (s1, s2) = ([0.3f32, -0.2], [1.0f32, 0.5]);
        let paths = Paths {
            steps: 2,
            batch: 1,
            dim: 2,
            states: vec![0.0, 0.0, s1[0], s1[1], s2[0], s2[1]],
        };
        let dt: f64 = 0.5;
        let step_pf = |a: [f32; 2], b: [f32; 2]| -> f64 {
            (0..2)
                .map(|k| {
                    let z = (b[k] - a[k]) as f64 / dt.sqrt();
                    -0.5 * (z * z + LN_2PI + dt.ln())
                })
                .sum()
        };
        let (p0, p1) = (step_pf([0.0, 0.0], s1), step_pf(s1, s2));
        let b1: f64 = (0..2)
            .map(|k| {
                let r = s1[k] as f64 - s2[k] as f64 / 2.0;
                -0.5 * (r * r / 0.25 + LN_2PI + 0.25f64.ln())
            })
            .sum();
        let b = f.balance(&net, &f.tensors(false, &paths).unwrap()).unwrap();
        let z = Tensor::new(0.3f32, &Device::Cpu).unwrap();
        let close = |a: &[f32], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (*x as f64 - y).abs() < 1e-4)
        };
        let tb_want = -1.0 + b1 - 0.3 - p0 - p1;
        let tb: Vec<f32> = (Tb { loss_clamp: 0.0 })
            .train(&b, &[-1.0], Some(&z))
            .unwrap()
            .delta
            .to_vec1()
            .unwrap();
        assert!(close(&tb, &[tb_want]), "{tb:?} vs {tb_want}");
        let db: Vec<f32> = Db
            .train(&b, &[-1.0], None)
            .unwrap()
            .delta
            .to_vec1()
            .unwrap();
        assert!(close(&db, &[p0, p1 + 1.0 - b1]), "{db:?}");
        let sub = SubTb { lambda: 0.5 }.train(&b, &[-1.0], Some(&z)).unwrap();
        let d: Vec<f32> = sub.delta.to_vec1().unwrap();
        let pieces = [-p0 - 0.3, -1.0 - p1 + b1, tb_want];
        assert!(close(&[d[1], d[5], d[2]], &pieces), "{d:?} vs {pieces:?}");
    }
}
