//! Behaviour policies: which sampler produces each training batch.
//!
//! A behaviour is a schedule of sources cycled over training steps (step i
//! uses `schedule[i % len]`), as data in the config rather than modulo
//! arithmetic in the loop.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a training batch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Fresh samples of the student (with the behaviour's epsilon).
    Student,
    /// Fresh samples of the teacher (with the behaviour's epsilon).
    Teacher,
}

/// The student's own samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OnPolicyConfig {
    /// Probability mass mixed uniformly into every action distribution while
    /// training: p = (1 - epsilon) p + epsilon / n_actions.
    pub epsilon: f64,
}

impl Default for OnPolicyConfig {
    fn default() -> Self {
        Self { epsilon: 0.0 }
    }
}

impl OnPolicyConfig {
    /// Range checks; `(key, message)` on failure.
    pub fn check(&self) -> Result<(), (String, String)> {
        check_epsilon(self.epsilon)
    }
}

fn check_epsilon(e: f64) -> Result<(), (String, String)> {
    if (0.0..=1.0).contains(&e) {
        Ok(())
    } else {
        Err(("behaviour.epsilon".into(), "must be in [0, 1]".into()))
    }
}

/// The adaptive Teacher (paper Sec. 4): a second network of the student's shape
/// with its own log Z and optimiser, trained with TB on the same batches as the
/// student, towards the teacher reward R_T (see `teacher_log_reward`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TeacherConfig {
    /// Uniform exploration mixed into both student and teacher training rollouts.
    pub epsilon: f64,
    /// C of the paper: extra weight of under-sampled states (delta > 0).
    pub c: f64,
    /// Exponent of the task reward in R_T (0: the teacher ignores R).
    pub alpha: f64,
    /// Use log(1 + 1e-3 + delta^2 (1 + C [delta > 0])) rather than the raw weighted delta^2.
    pub log: bool,
    /// Exponent applied to the teacher reward in the teacher's TB balance.
    pub beta_teacher: f64,
    /// Source of the batch at step i: `schedule[i % len]`. The paper's grid
    /// schedule without a buffer is student, student, teacher, teacher.
    pub schedule: Vec<Source>,
}

impl Default for TeacherConfig {
    fn default() -> Self {
        Self {
            epsilon: 0.0,
            c: 19.0,
            alpha: 0.0,
            log: true,
            beta_teacher: 1.0,
            schedule: vec![
                Source::Student,
                Source::Student,
                Source::Teacher,
                Source::Teacher,
            ],
        }
    }
}

impl TeacherConfig {
    /// Range checks; `(key, message)` on failure.
    pub fn check(&self) -> Result<(), (String, String)> {
        check_epsilon(self.epsilon)?;
        if self.schedule.is_empty() {
            return Err((
                "behaviour.schedule".into(),
                "must list at least one source (`student`, `teacher`)".into(),
            ));
        }
        if !(self.c.is_finite() && self.c >= 0.0) {
            return Err(("behaviour.c".into(), "must be >= 0".into()));
        }
        if !(self.beta_teacher.is_finite() && self.beta_teacher > 0.0) {
            return Err(("behaviour.beta_teacher".into(), "must be > 0".into()));
        }
        Ok(())
    }

    /// The teacher's log-reward of one trajectory, from the student's TB
    /// residual `delta` (no gradient) and the task reward `r`:
    /// R_T = log(1 + 1e-3 + delta^2 (1 + C [delta > 0])) * R^alpha (with `log`;
    /// without it, delta^2 (1 + C [delta > 0]) * R^alpha), and the teacher's TB
    /// uses beta_teacher * log(R_T + 1e-8) in place of log R.
    pub fn teacher_log_reward(&self, delta: f64, r: f64) -> f64 {
        let weighted = delta * delta * (1.0 + if delta > 0.0 { self.c } else { 0.0 });
        let base = if self.log {
            (1.0 + 1e-3 + weighted).ln()
        } else {
            weighted
        };
        let r_t = base * r.powf(self.alpha);
        self.beta_teacher * (r_t + 1e-8).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand values of the teacher reward (paper Eq. for R_T, C = 19, alpha = 0).
    #[test]
    fn teacher_reward_formula() {
        let t = TeacherConfig::default();
        // delta = 2 > 0: log(1.001 + 4 * 20) = log(81.001).
        let expected = (81.001f64.ln() + 1e-8).ln();
        assert!((t.teacher_log_reward(2.0, 5.0) - expected).abs() < 1e-12);
        // delta = -2: no C bonus: log(1.001 + 4).
        let expected = (5.001f64.ln() + 1e-8).ln();
        assert!((t.teacher_log_reward(-2.0, 5.0) - expected).abs() < 1e-12);
        // alpha = 1 multiplies by R; beta_teacher scales the log.
        let t2 = TeacherConfig {
            alpha: 1.0,
            beta_teacher: 2.0,
            ..TeacherConfig::default()
        };
        let expected = 2.0 * (81.001f64.ln() * 5.0 + 1e-8).ln();
        assert!((t2.teacher_log_reward(2.0, 5.0) - expected).abs() < 1e-12);
        // log off: raw weighted square.
        let t3 = TeacherConfig {
            log: false,
            ..TeacherConfig::default()
        };
        assert!((t3.teacher_log_reward(2.0, 1.0) - (80.0f64 + 1e-8).ln()).abs() < 1e-12);
        // delta = 0 gives the floor log(log(1.001)).
        assert!((t.teacher_log_reward(0.0, 1.0) - (1.001f64.ln() + 1e-8).ln()).abs() < 1e-12);
    }
}
