//! Configuration of the replay buffers (`[buffer]`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::recent::Selection;

/// How replayed entries are chosen (spec/grid.md "Replay buffer").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Uniform sampling (the spec's `none`).
    #[default]
    #[serde(alias = "none")]
    Uniform,
    /// PRT: priority = R(x).
    Reward,
    /// Priority = the student's squared residual delta^2.
    Loss,
    /// PER: priority = the teacher reward R_T of the student's residual.
    TeacherReward,
}

/// Replay of terminal states keyed by state (for TB): FIFO eviction, adding an
/// existing state moves it to the newest position; replayed states get a fresh
/// backward trajectory from the uniform P_B. Prioritised sampling is rank based:
/// weight 1 / (0.01 N + rank), rank 0 = highest priority, with replacement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TerminalBufferConfig {
    /// Capacity. Unset: the environment's default (grid: int(0.1 (H-1+d) (H-1)^(d-1))).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// Sampling priority: `uniform`, `reward` (PRT), `loss`, `teacher_reward` (PER).
    pub priority: Priority,
}

/// Replay of transitions (s, a, s', r, terminal) keyed by (s, s') (for DB).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TransitionBufferConfig {
    /// Capacity. Unset: the environment's default, as for terminal states.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// Sampling priority: `uniform`, `loss` or `teacher_reward` (PER, per transition).
    pub priority: Priority,
    /// Transitions per replayed batch. Unset: batch_size * (H / 2) on the grid, as the reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
}

impl TerminalBufferConfig {
    /// Range checks; `(key, message)` on failure.
    pub fn check(&self) -> Result<(), (String, String)> {
        check_size(self.size)
    }
}

impl TransitionBufferConfig {
    /// Range checks; `(key, message)` on failure.
    pub fn check(&self) -> Result<(), (String, String)> {
        check_size(self.size)?;
        if self.priority == Priority::Reward {
            return Err((
                "buffer.priority".into(),
                "`reward` is not defined for transitions; allowed: `uniform`, `loss`, `teacher_reward`".into(),
            ));
        }
        if self.batch == Some(0) {
            return Err(("buffer.batch".into(), "must be at least 1".into()));
        }
        Ok(())
    }
}

/// Replay of the discovery tasks: the last `size` distinct terminal states
/// ever discovered (insertion order, the oldest leaves first). Every round,
/// after the online batch, an offline batch of `batch` states is drawn from
/// it, each given a fresh backward trajectory from the uniform P_B.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RecentBufferConfig {
    /// Capacity: the last this many distinct discoveries.
    pub size: usize,
    /// Offline-batch selection: `uniform`, `prt` or `per`.
    pub selection: Selection,
    /// States per offline batch. Unset: `train.batch_size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// The offline step is skipped while the buffer holds fewer entries.
    pub min_size: usize,
}

impl Default for RecentBufferConfig {
    fn default() -> Self {
        Self {
            size: 1000,
            selection: Selection::Uniform,
            batch: None,
            min_size: 10,
        }
    }
}

impl RecentBufferConfig {
    /// Range checks; `(key, message)` on failure.
    pub fn check(&self) -> Result<(), (String, String)> {
        check_size(Some(self.size))?;
        if self.batch == Some(0) {
            return Err(("buffer.batch".into(), "must be at least 1".into()));
        }
        Ok(())
    }
}

fn check_size(size: Option<usize>) -> Result<(), (String, String)> {
    if size == Some(0) {
        return Err(("buffer.size".into(), "must be at least 1".into()));
    }
    Ok(())
}
