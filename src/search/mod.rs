//! Local search: back-and-forth refinement of sampled trajectories, written
//! once for every discrete environment ([`back_and_forth`]: docs/grid.md
//! "Back-and-forth local search", docs/discovery.md "Local search"), and
//! Metropolis-adjusted Langevin moves of buffer samples on the diffusion
//! energies ([`mala`]: docs/diffusion.md "Local search"). This module holds
//! the `[local_search]` tables and their resolved settings per family.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::Invalid;

pub mod back_and_forth;
pub mod mala;

pub use back_and_forth::{BackAndForth, Destroy};
pub use mala::MalaSettings;

/// Back-and-forth local search: destroy the last part of each trajectory by
/// walking back along a fresh uniform-P_B trajectory, rebuild it forward with
/// the sampling network (epsilon 0), keep the candidate if it scores higher.
/// Which batches use it is set by `student+ls` / `teacher+ls` in the behaviour's schedule.
///
/// On the grid, `back_ratio` sets how much is destroyed and each batch is
/// refined in place. On the sequence tasks (docs/discovery.md "Local search"),
/// `k` states are walked back and rebuilt; of a batch of B, B / (iterations+1)
/// trajectories are sampled fresh and every proposal of every iteration is
/// training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BackAndForthConfig {
    /// Grid: fraction of the states destroyed (floor(n_states * back_ratio) are walked back).
    pub back_ratio: f64,
    /// Destroy-and-rebuild iterations per batch (each costs one reward call
    /// per trajectory). Unset: 4 on the grid, 7 on the sequence tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterations: Option<usize>,
    /// Sequence tasks: steps walked back with P_B and rebuilt with P_F. Unset: 3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Sequence tasks: keep a proposal x' when log R(x') > log R(x)
    /// (`deterministic`), or with probability sigmoid(log R(x') - log R(x) +
    /// log q_rev - log q_fwd) (`stochastic`, Metropolis-Hastings style).
    pub acceptance: Acceptance,
}

/// How a local-search proposal is accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Acceptance {
    /// Keep the proposal when it scores strictly higher.
    #[default]
    Deterministic,
    /// Keep it with the Metropolis-Hastings-style probability (sequence tasks).
    Stochastic,
}

/// Iterations on the grid when unset (the reference's default).
pub const GRID_ITERATIONS: usize = 4;
/// Iterations on the sequence tasks when unset (docs/discovery.md: i = 7).
pub const SEQ_ITERATIONS: usize = 7;

impl Default for BackAndForthConfig {
    fn default() -> Self {
        Self {
            back_ratio: 0.5,
            iterations: None,
            k: None,
            acceptance: Acceptance::Deterministic,
        }
    }
}

impl BackAndForthConfig {
    /// Range checks.
    pub fn check(&self) -> Result<(), Invalid> {
        if !(0.0..=1.0).contains(&self.back_ratio) {
            return Err(Invalid::new("local_search.back_ratio", "must be in [0, 1]"));
        }
        if self.iterations == Some(0) {
            return Err(Invalid::new(
                "local_search.iterations",
                "must be at least 1",
            ));
        }
        if self.k == Some(0) {
            return Err(Invalid::new("local_search.k", "must be at least 1"));
        }
        Ok(())
    }

    /// The settings of a grid run: `k` and stochastic acceptance are
    /// sequence-task options; `iterations` defaults to [`GRID_ITERATIONS`].
    pub fn grid(&self) -> Result<BackAndForth, Invalid> {
        self.check()?;
        if self.k.is_some() {
            return Err(Invalid::new(
                "local_search.k",
                "is a sequence-task option; the grid uses `back_ratio`",
            ));
        }
        if self.acceptance != Acceptance::Deterministic {
            return Err(Invalid::new(
                "local_search.acceptance",
                "the grid supports `deterministic` only",
            ));
        }
        Ok(BackAndForth {
            destroy: Destroy::Fraction(self.back_ratio),
            iterations: self.iterations.unwrap_or(GRID_ITERATIONS),
            acceptance: Acceptance::Deterministic,
        })
    }

    /// The settings of a sequence-task run: `k` defaults to `default_k` (the
    /// task's), `iterations` to [`SEQ_ITERATIONS`].
    /// `length` is the task's string length L: a complete trajectory has
    /// L + 1 steps, and `k` may not exceed L (the walk back would destroy the
    /// whole string, which is no local search).
    pub fn sequence(&self, default_k: usize, length: usize) -> Result<BackAndForth, Invalid> {
        self.check()?;
        let k = self.k.unwrap_or(default_k);
        if k > length {
            return Err(Invalid::new(
                "local_search.k",
                format!("is {k}: at most the task's string length {length}"),
            ));
        }
        Ok(BackAndForth {
            destroy: Destroy::Steps(k),
            iterations: self.iterations.unwrap_or(SEQ_ITERATIONS),
            acceptance: self.acceptance,
        })
    }
}

/// MALA local search of the diffusion energies (docs/diffusion.md "Local
/// search"): on `student+ls` iterations, a batch drawn from the buffer is
/// moved by `steps` Metropolis-adjusted Langevin steps with an adaptive step
/// size; every accepted proposal after `burn_in` enters the buffer with
/// priority log R, and that iteration's on-policy batch does not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MalaConfig {
    /// Run every this many iterations (the schedule's period; the reference's 50).
    pub every: u64,
    /// Langevin steps per run (the reference's 200).
    pub steps: usize,
    /// Proposals of steps after this one are collected (the reference's 100).
    pub burn_in: usize,
    /// Initial step size (the reference's 0.001).
    pub step_size: f64,
    /// Adapt the step size by 1% per step towards this acceptance rate (the reference's 0.574).
    pub target_acceptance: f64,
    /// Adapt the step size (off: fixed `step_size`).
    pub adapt: bool,
}

impl Default for MalaConfig {
    fn default() -> Self {
        let m = MalaSettings::default();
        Self {
            every: 50,
            steps: m.steps,
            burn_in: m.burn_in,
            step_size: m.step_size,
            target_acceptance: m.target_acceptance,
            adapt: m.adapt,
        }
    }
}

impl MalaConfig {
    /// Range checks.
    pub fn check(&self) -> Result<(), Invalid> {
        crate::check::nonzero("local_search.every", Some(self.every))?;
        crate::check::nonzero("local_search.steps", Some(self.steps))?;
        if self.burn_in >= self.steps {
            return Err(Invalid::new(
                "local_search.burn_in",
                "must be below `steps` (nothing would be collected)",
            ));
        }
        if !(self.step_size.is_finite() && self.step_size > 0.0) {
            return Err(Invalid::new(
                "local_search.step_size",
                "must be a positive number",
            ));
        }
        if !(self.target_acceptance > 0.0 && self.target_acceptance < 1.0) {
            return Err(Invalid::new(
                "local_search.target_acceptance",
                "must be in (0, 1)",
            ));
        }
        Ok(())
    }

    /// The settings of one run of the sampler.
    pub fn settings(&self) -> MalaSettings {
        MalaSettings {
            steps: self.steps,
            burn_in: self.burn_in,
            step_size: self.step_size,
            target_acceptance: self.target_acceptance,
            adapt: self.adapt,
            ..MalaSettings::default()
        }
    }
}
