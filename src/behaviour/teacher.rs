//! The adaptive Teacher (paper Sec. 4): its `[behaviour]` table and the
//! teacher reward R_T that it is trained towards.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::check_epsilon;
use super::Step;
use crate::check::Invalid;
use crate::objective::Pieces;

/// The adaptive Teacher (paper Sec. 4): a second network of the student's shape
/// with its own log Z and optimiser, trained with TB on the same batches as the
/// student, towards the teacher reward R_T (see `teacher_log_reward`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TeacherConfig {
    /// Uniform exploration mixed into both student and teacher training
    /// rollouts. Unset: the task table's eps on the sequence tasks (0.01;
    /// sehstr 0.05), else 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// C of the paper: extra weight of under-sampled states (delta > 0).
    pub c: f64,
    /// Exponent of the task reward in R_T (0: the teacher ignores R). Unset:
    /// 0.5 on the sequence tasks (docs/discovery.md "Teacher"), else 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Use `log(1 + 1e-3 + delta^2 (1 + C [delta > 0]))` rather than the raw weighted delta^2.
    pub log: bool,
    /// Exponent applied to the teacher reward in the teacher's TB balance.
    pub beta_teacher: f64,
    /// Adam learning rate of the teacher's network. Unset: 5e-4 on the
    /// sequence tasks (the discovery reference's, against the student's
    /// 1e-4), else the objective's `lr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Clip the teacher's gradient norm to this (0 disables). Unset: the
    /// objective's `clip_grad_norm` (the diffusion teacher's 0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
    /// What the teacher's clip covers: `all` or `time_encoder` (the
    /// `diffusion` policy's time encoder only, as the diffusion reference).
    /// Unset: `time_encoder` on the diffusion energies, `all` elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_scope: Option<crate::optim::ClipScope>,
    /// The batches of step i: `schedule[i % len]`, each entry a source
    /// (`student`, `teacher`, `buffer`, `student+ls`, `teacher+ls`,
    /// `student->buffer`, `teacher->buffer`) or a list of sources trained in
    /// order. Unset: the paper's schedule for the environment, buffer and
    /// local search (grid: S S T T, S B T B with a buffer; discovery tasks:
    /// S S T, each followed by a buffer batch); the resolved config records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Vec<Step>>,
}

impl Default for TeacherConfig {
    fn default() -> Self {
        Self {
            epsilon: None,
            c: 19.0,
            alpha: None,
            log: true,
            beta_teacher: 1.0,
            lr: None,
            clip_grad_norm: None,
            clip_scope: None,
            schedule: None,
        }
    }
}

impl TeacherConfig {
    /// Range checks.
    pub fn check(&self) -> Result<(), Invalid> {
        check_epsilon(self.epsilon())?;
        if !(self.c.is_finite() && self.c >= 0.0) {
            return Err(Invalid::new("behaviour.c", "must be >= 0"));
        }
        // R^alpha with alpha < 0 would reward the teacher for low-reward
        // states, the opposite of the paper's term (alpha = 0 ignores R).
        let alpha = self.alpha();
        if !(alpha.is_finite() && alpha >= 0.0) {
            return Err(Invalid::new(
                "behaviour.alpha",
                format!(
                    "is {alpha}; must be >= 0 (the exponent of the task reward R in the teacher \
                     reward R_T; 0 ignores R)"
                ),
            ));
        }
        if !(self.beta_teacher.is_finite() && self.beta_teacher > 0.0) {
            return Err(Invalid::new("behaviour.beta_teacher", "must be > 0"));
        }
        if self
            .clip_grad_norm
            .is_some_and(|c| !(c.is_finite() && c >= 0.0))
        {
            return Err(Invalid::new(
                "behaviour.clip_grad_norm",
                "must be >= 0 (0 disables clipping)",
            ));
        }
        if self.lr.is_some_and(|lr| !(lr.is_finite() && lr > 0.0)) {
            return Err(Invalid::new("behaviour.lr", "must be a positive number"));
        }
        Ok(())
    }

    /// The exploration of training rollouts (unset: none; the plan fills
    /// the environment's default first).
    pub fn epsilon(&self) -> f64 {
        self.epsilon.unwrap_or(0.0)
    }

    /// The exponent of R in the teacher reward (unset: 0, the grid's; the
    /// plan fills the environment's default first).
    pub fn alpha(&self) -> f64 {
        self.alpha.unwrap_or(0.0)
    }

    /// The teacher reward of a run whose family puts it in `form`, with the
    /// squared residuals clamped at `clamp` (0: no clamp).
    pub fn reward(&self, form: RewardForm, clamp: f64) -> TeacherReward {
        TeacherReward {
            c: self.c,
            alpha: self.alpha(),
            log: self.log,
            beta_teacher: self.beta_teacher,
            clamp,
            form,
            loss_scale: 1.0,
        }
    }
}

/// How the task reward R enters the teacher reward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewardForm {
    /// The paper's form, used on the grid: R_T = r_T(delta) * R^alpha and the
    /// teacher's target log-reward beta_teacher * ln(R_T + 1e-8).
    Product,
    /// In log space, used on the discovery tasks, where R reaches e^-46:
    /// R_T = r_T(delta) and the target beta_teacher * (ln R_T + alpha ln R).
    LogSpace,
}

/// The teacher reward R_T (paper Sec. 4, Eq. 5), resolved for one run: the
/// only definition of what the teacher is trained towards and of the PER
/// priority. With the student's residual delta (no gradient) and l =
/// min(delta^2, clamp):
///
/// `r_T(delta) = log(1 + 1e-3 + l (1 + C [delta > 0]))` (`log`; else `l (1 + C [delta > 0])`),
///
/// `delta > 0` meaning the student under-samples the trajectory (its forward
/// flow is below the backward one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TeacherReward {
    /// C: extra weight of under-sampled trajectories.
    pub c: f64,
    /// Exponent of the task reward.
    pub alpha: f64,
    /// Take the log of the weighted squared residual.
    pub log: bool,
    /// Exponent of R_T in the teacher's balance.
    pub beta_teacher: f64,
    /// Squared residuals are clamped to this (0: no clamp).
    pub clamp: f64,
    /// How R enters.
    pub form: RewardForm,
    /// The squared residual enters as `loss_scale * delta^2` (1; 0.5 on the
    /// diffusion energies, whose loss is 0.5 delta^2).
    pub loss_scale: f64,
}

impl TeacherReward {
    /// The same reward with the squared residual scaled by `scale`.
    pub fn with_loss_scale(mut self, scale: f64) -> Self {
        self.loss_scale = scale;
        self
    }

    /// R_T of a residual `delta` of a trajectory with task reward `r`
    /// (linear; only [`RewardForm::Product`] uses it): the PER priority and
    /// the input of [`TeacherReward::log_target`].
    pub fn of(&self, delta: f64, r: f64) -> f64 {
        let sq = delta * delta;
        let sq = if self.loss_scale == 1.0 {
            sq
        } else {
            self.loss_scale * sq
        };
        let l = if self.clamp > 0.0 {
            sq.min(self.clamp)
        } else {
            sq
        };
        let weighted = l * (1.0 + if delta > 0.0 { self.c } else { 0.0 });
        let r_t = if self.log {
            (1.0 + 1e-3 + weighted).ln()
        } else {
            weighted
        };
        match self.form {
            RewardForm::Product => r_t * r.powf(self.alpha),
            RewardForm::LogSpace => r_t,
        }
    }

    /// The teacher's target log-reward (what replaces log R in its balance)
    /// of a trajectory with teacher reward `r_t` and task log-reward `log_r`.
    pub fn log_target(&self, r_t: f64, log_r: f64) -> f64 {
        match self.form {
            RewardForm::Product => self.beta_teacher * (r_t + 1e-8).ln(),
            RewardForm::LogSpace => self.beta_teacher * (r_t.ln() + self.alpha * log_r),
        }
    }
}

/// The student's teacher signals of one batch (no gradient).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signals {
    /// R_T of each entry of the batch `[B]`: the PER priority, and the input
    /// of the teacher's target.
    pub per_entry: Vec<f64>,
    /// R_T of each transition `[M]`, for objectives with per-transition
    /// residuals (DB); empty otherwise.
    pub per_transition: Vec<f64>,
    /// The entry's own loss `[B]`: delta^2 (TB), the sum of its
    /// transitions' delta^2 (DB), the weighted sum over its
    /// sub-trajectories (SubTB); the `loss` buffer priority.
    pub entry_loss: Vec<f64>,
}

/// The teacher signals of residuals `delta` laid out as `pieces`, for
/// entries with task reward `reward_of_entry` `[B]` (linear R):
/// - one residual per entry: R_T(delta_b, R_b);
/// - per transition: R_T(delta_t, r_t) with r_t = 1, plus R(x) at the
///   entry's last transition (the reference's Teacher-DB), summed per entry;
/// - per sub-trajectory: the weighted sum sum_ij w_ij R_T(delta_ij, R_b),
///   so that the whole trajectory alone (weight 1) gives TB's signal.
pub fn signals(
    pieces: &Pieces,
    delta: &[f32],
    reward: &TeacherReward,
    reward_of_entry: &[f64],
) -> Signals {
    let b_dim = reward_of_entry.len();
    match pieces {
        Pieces::Entries => Signals {
            per_entry: delta
                .iter()
                .zip(reward_of_entry)
                .map(|(&d, &r)| reward.of(d as f64, r))
                .collect(),
            per_transition: Vec::new(),
            entry_loss: delta.iter().map(|&d| (d as f64).powi(2)).collect(),
        },
        Pieces::Transitions { owner, last } => {
            let mut out = Signals {
                per_entry: vec![0.0; b_dim],
                per_transition: Vec::with_capacity(delta.len()),
                entry_loss: vec![0.0; b_dim],
            };
            for ((&d, &b), &last) in delta.iter().zip(owner).zip(last) {
                let r = 1.0 + if last { reward_of_entry[b] } else { 0.0 };
                let rt = reward.of(d as f64, r);
                out.per_transition.push(rt);
                out.per_entry[b] += rt;
                out.entry_loss[b] += (d as f64).powi(2);
            }
            out
        }
        Pieces::SubTrajectories { k, weights } => {
            let per = k * k;
            let mut out = Signals {
                per_entry: vec![0.0; b_dim],
                per_transition: Vec::new(),
                entry_loss: vec![0.0; b_dim],
            };
            for (i, (&d, &w)) in delta.iter().zip(weights).enumerate() {
                if w > 0.0 {
                    let b = i / per;
                    out.per_entry[b] += w as f64 * reward.of(d as f64, reward_of_entry[b]);
                    out.entry_loss[b] += w as f64 * (d as f64).powi(2);
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(t: &TeacherConfig) -> TeacherReward {
        t.reward(RewardForm::Product, 0.0)
    }

    /// Hand values of the teacher reward (paper Eq. 5, C = 19, alpha = 0).
    #[test]
    fn teacher_reward_formula() {
        let t = grid(&TeacherConfig::default());
        // delta = 2 > 0: log(1.001 + 4 * 20) = log(81.001).
        let expected = (81.001f64.ln() + 1e-8).ln();
        assert!((t.log_target(t.of(2.0, 5.0), 0.0) - expected).abs() < 1e-12);
        // delta = -2: no C bonus: log(1.001 + 4).
        let expected = (5.001f64.ln() + 1e-8).ln();
        assert!((t.log_target(t.of(-2.0, 5.0), 0.0) - expected).abs() < 1e-12);
        // alpha = 1 multiplies by R; beta_teacher scales the log.
        let t2 = grid(&TeacherConfig {
            alpha: Some(1.0),
            beta_teacher: 2.0,
            ..TeacherConfig::default()
        });
        let expected = 2.0 * (81.001f64.ln() * 5.0 + 1e-8).ln();
        assert!((t2.log_target(t2.of(2.0, 5.0), 0.0) - expected).abs() < 1e-12);
        // log off: raw weighted square.
        let t3 = grid(&TeacherConfig {
            log: false,
            ..TeacherConfig::default()
        });
        assert!((t3.log_target(t3.of(2.0, 1.0), 0.0) - (80.0f64 + 1e-8).ln()).abs() < 1e-12);
        // delta = 0 gives the floor log(log(1.001)).
        assert!((t.log_target(t.of(0.0, 1.0), 0.0) - (1.001f64.ln() + 1e-8).ln()).abs() < 1e-12);
    }

    /// The discovery form (docs/discovery.md "Teacher"): r_T = log(20 l +
    /// 1.001) when delta > 0, log(l + 1.001) otherwise, l = min(delta^2,
    /// 5000); the target beta_teacher (ln r_T + alpha ln R), R not in r_T.
    #[test]
    fn log_space_form() {
        let t = TeacherConfig {
            alpha: Some(0.5),
            ..TeacherConfig::default()
        }
        .reward(RewardForm::LogSpace, 5000.0);
        assert!((t.of(3.0, 1e-30) - (20.0 * 9.0 + 1.001f64).ln()).abs() < 1e-12);
        assert!((t.of(-3.0, 7.0) - (9.0 + 1.001f64).ln()).abs() < 1e-12);
        assert!((t.of(100.0, 1.0) - (20.0 * 5000.0 + 1.001f64).ln()).abs() < 1e-12);
        let r_t = t.of(3.0, 1.0);
        assert!((t.log_target(r_t, -46.0) - (r_t.ln() - 23.0)).abs() < 1e-12);
    }
}
