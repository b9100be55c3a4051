//! Behaviour policies: which sampler produces each training batch.
//!
//! A behaviour is a schedule of sources cycled over training steps (step i
//! uses `schedule[i % len]`), as data in the config rather than modulo
//! arithmetic in the loop.

pub mod gafn;

pub use gafn::GafnConfig;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a training batch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Source {
    /// Fresh samples of the student (with the behaviour's epsilon).
    #[serde(rename = "student")]
    Student,
    /// Fresh samples of the teacher (with the behaviour's epsilon).
    #[serde(rename = "teacher")]
    Teacher,
    /// Replay from the `[buffer]` (terminal states get fresh backward trajectories).
    #[serde(rename = "buffer")]
    Buffer,
    /// Student samples refined by the `[local_search]`.
    #[serde(rename = "student+ls")]
    StudentLs,
    /// Teacher samples refined by the `[local_search]` (accepting by teacher reward).
    #[serde(rename = "teacher+ls")]
    TeacherLs,
}

impl Source {
    /// Whether the batch is freshly sampled (counted in the metrics and added to the buffer).
    pub fn is_fresh(self) -> bool {
        self != Source::Buffer
    }

    /// Whether local search refines the batch.
    pub fn local_search(self) -> bool {
        matches!(self, Source::StudentLs | Source::TeacherLs)
    }

    /// Whether the teacher network samples the batch.
    pub fn teacher(self) -> bool {
        matches!(self, Source::Teacher | Source::TeacherLs)
    }
}

/// The paper's schedule (spec/grid.md "Source schedule" and "Back-and-forth
/// local search"), as one period of 16 steps, shortened to its smallest period:
/// - without a buffer, step i samples from the student, or with a teacher from
///   the student when (i/2) % 2 == 0 and from the teacher otherwise (S S T T);
/// - with a buffer, odd steps replay and even steps sample as above (S B T B);
/// - local search refines student steps where (i/2) % 8 == 7 (no teacher) or
///   teacher steps where (i/4) % 4 == 3.
pub fn paper_schedule(teacher: bool, buffer: bool, local_search: bool) -> Vec<Source> {
    let full: Vec<Source> = (0..16)
        .map(|i| {
            if buffer && i % 2 == 1 {
                return Source::Buffer;
            }
            let from_teacher = teacher && (i / 2) % 2 == 1;
            match (from_teacher, local_search) {
                (true, true) if (i / 4) % 4 == 3 => Source::TeacherLs,
                (true, _) => Source::Teacher,
                (false, true) if !teacher && (i / 2) % 8 == 7 => Source::StudentLs,
                (false, _) => Source::Student,
            }
        })
        .collect();
    let period = [1, 2, 4, 8, 16]
        .into_iter()
        .find(|&p| (0..16).all(|i| full[i] == full[i % p]))
        .unwrap_or(16);
    full[..period].to_vec()
}

/// The online-batch schedule of the discovery tasks (spec/discovery.md
/// "Training loop"): round r samples from the student when r % 3 is 0 or 1
/// and from the teacher when it is 2 (`[student]` without a teacher); with
/// local search every online batch is refined.
pub fn discovery_schedule(teacher: bool, local_search: bool) -> Vec<Source> {
    let (s, t) = if local_search {
        (Source::StudentLs, Source::TeacherLs)
    } else {
        (Source::Student, Source::Teacher)
    };
    if teacher {
        vec![s, s, t]
    } else {
        vec![s]
    }
}

/// The student's own samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OnPolicyConfig {
    /// Probability mass mixed uniformly into every action distribution while
    /// training: p = (1 - epsilon) p + epsilon / n_actions.
    pub epsilon: f64,
    /// Source of the batch at step i: `schedule[i % len]` (`student`,
    /// `buffer`, `student+ls`). Unset: the paper's schedule for the configured
    /// buffer and local search (see `paper_schedule`); the resolved config records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Vec<Source>>,
}

impl Default for OnPolicyConfig {
    fn default() -> Self {
        Self {
            epsilon: 0.0,
            schedule: None,
        }
    }
}

impl OnPolicyConfig {
    /// Range checks; `(key, message)` on failure.
    pub fn check(&self) -> Result<(), (String, String)> {
        check_epsilon(self.epsilon)
    }
}

pub(crate) fn check_epsilon(e: f64) -> Result<(), (String, String)> {
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
    /// Adam learning rate of the teacher's network. Unset: the objective's
    /// `lr` (the discovery tasks' teacher uses 5e-4 against the student's 1e-4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Source of the batch at step i: `schedule[i % len]` (`student`,
    /// `teacher`, `buffer`, `student+ls`, `teacher+ls`). Unset: the paper's
    /// schedule for the configured buffer and local search (S S T T without a
    /// buffer, S B T B with one; see `paper_schedule`); the resolved config records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Vec<Source>>,
}

impl Default for TeacherConfig {
    fn default() -> Self {
        Self {
            epsilon: 0.0,
            c: 19.0,
            alpha: 0.0,
            log: true,
            beta_teacher: 1.0,
            lr: None,
            schedule: None,
        }
    }
}

impl TeacherConfig {
    /// Range checks; `(key, message)` on failure.
    pub fn check(&self) -> Result<(), (String, String)> {
        check_epsilon(self.epsilon)?;
        if !(self.c.is_finite() && self.c >= 0.0) {
            return Err(("behaviour.c".into(), "must be >= 0".into()));
        }
        if !(self.beta_teacher.is_finite() && self.beta_teacher > 0.0) {
            return Err(("behaviour.beta_teacher".into(), "must be > 0".into()));
        }
        if self.lr.is_some_and(|lr| !(lr.is_finite() && lr > 0.0)) {
            return Err(("behaviour.lr".into(), "must be a positive number".into()));
        }
        Ok(())
    }

    /// The teacher reward of one residual `delta` of the student (no
    /// gradient) with task reward `r`: R_T = log(1 + 1e-3 + delta^2 (1 + C
    /// [delta > 0])) * r^alpha (with `log`; without it, delta^2 (1 + C
    /// [delta > 0]) * r^alpha). Also the PER priority.
    pub fn teacher_reward(&self, delta: f64, r: f64) -> f64 {
        self.signal(delta * delta, delta > 0.0) * r.powf(self.alpha)
    }

    /// The student's loss signal r_T of a squared residual `sq` (before any
    /// reward factor): log(1 + 1e-3 + sq (1 + C [under])) with `log`, else
    /// sq (1 + C [under]); `under` when the student under-samples the
    /// trajectory (delta > 0, i.e. forward flow below the backward one).
    pub fn signal(&self, sq: f64, under: bool) -> f64 {
        let weighted = sq * (1.0 + if under { self.c } else { 0.0 });
        if self.log {
            (1.0 + 1e-3 + weighted).ln()
        } else {
            weighted
        }
    }

    /// The discovery tasks' teacher signal (spec/discovery.md "Student
    /// objective: TB"): `signal` of l = min(delta^2, clamp) (no clamp when
    /// `clamp` <= 0), so r_T = log(20 l + 1.001) when delta > 0 and
    /// log(l + 1.001) otherwise at C = 19.
    pub fn discovery_signal(&self, delta: f64, clamp: f64) -> f64 {
        let sq = delta * delta;
        let l = if clamp > 0.0 { sq.min(clamp) } else { sq };
        self.signal(l, delta > 0.0)
    }

    /// The teacher's target log-reward on the discovery tasks, in log space
    /// (R can be far below 1e-8 there): beta_teacher (ln r_T + alpha ln R).
    pub fn discovery_log_reward(&self, r_t: f64, log_r: f64) -> f64 {
        self.beta_teacher * (r_t.ln() + self.alpha * log_r)
    }

    /// What replaces log R in the teacher's balance: beta_teacher * log(R_T + 1e-8).
    pub fn teacher_log_reward(&self, r_t: f64) -> f64 {
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
        assert!((t.teacher_log_reward(t.teacher_reward(2.0, 5.0)) - expected).abs() < 1e-12);
        // delta = -2: no C bonus: log(1.001 + 4).
        let expected = (5.001f64.ln() + 1e-8).ln();
        assert!((t.teacher_log_reward(t.teacher_reward(-2.0, 5.0)) - expected).abs() < 1e-12);
        // alpha = 1 multiplies by R; beta_teacher scales the log.
        let t2 = TeacherConfig {
            alpha: 1.0,
            beta_teacher: 2.0,
            ..TeacherConfig::default()
        };
        let expected = 2.0 * (81.001f64.ln() * 5.0 + 1e-8).ln();
        assert!((t2.teacher_log_reward(t2.teacher_reward(2.0, 5.0)) - expected).abs() < 1e-12);
        // log off: raw weighted square.
        let t3 = TeacherConfig {
            log: false,
            ..TeacherConfig::default()
        };
        assert!(
            (t3.teacher_log_reward(t3.teacher_reward(2.0, 1.0)) - (80.0f64 + 1e-8).ln()).abs()
                < 1e-12
        );
        // delta = 0 gives the floor log(log(1.001)).
        assert!(
            (t.teacher_log_reward(t.teacher_reward(0.0, 1.0)) - (1.001f64.ln() + 1e-8).ln()).abs()
                < 1e-12
        );
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::paper_schedule;
    use super::Source::{
        self, Buffer as B, Student as S, StudentLs as SL, Teacher as T, TeacherLs as TL,
    };

    /// The reference trainer's branches evaluated by hand for i = 0..15.
    #[test]
    fn paper_schedules() {
        assert_eq!(paper_schedule(false, false, false), vec![S]);
        assert_eq!(paper_schedule(false, true, false), vec![S, B]);
        assert_eq!(paper_schedule(true, false, false), vec![S, S, T, T]);
        assert_eq!(paper_schedule(true, true, false), vec![S, B, T, B]);
        // TB + LS: on-policy steps with (i/2) % 8 == 7, i.e. i = 14, 15.
        let mut tb_ls: Vec<Source> = vec![S; 14];
        tb_ls.extend([SL, SL]);
        assert_eq!(paper_schedule(false, false, true), tb_ls);
        // TB + LS + buffer: even steps only, i = 14.
        let mut tb_ls_b: Vec<Source> = [S, B].repeat(7);
        tb_ls_b.extend([SL, B]);
        assert_eq!(paper_schedule(false, true, true), tb_ls_b);
        // Teacher + LS: teacher steps with (i/4) % 4 == 3: i = 14, 15.
        let mut t_ls = [S, S, T, T].repeat(3);
        t_ls.extend([S, S, TL, TL]);
        assert_eq!(paper_schedule(true, false, true), t_ls);
        // Teacher + LS + buffer: i = 14 (teacher, even, (14/4) % 4 == 3).
        let mut t_ls_b = [S, B, T, B].repeat(3);
        t_ls_b.extend([S, B, TL, B]);
        assert_eq!(paper_schedule(true, true, true), t_ls_b);
    }
}
