//! Configuration of the replay buffers (`[buffer]`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::Invalid;

/// How replayed entries are chosen (docs/grid.md "Replay buffer"; the
/// `recent` buffer of the sequence tasks splits its draws at a percentile of
/// the same keys, docs/discovery.md "Training loop").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Uniform sampling (also accepted as `none`).
    #[default]
    #[serde(alias = "none")]
    Uniform,
    /// PRT: by the reward R(x).
    Reward,
    /// By the student's squared residual delta^2 (grid buffers only).
    Loss,
    /// PER: by the teacher reward R_T of the student's residual.
    TeacherReward,
}

/// The older spelling of the `recent` buffer's selection (`selection =
/// "prt"`), read and recorded as `priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// `priority = "uniform"`.
    Uniform,
    /// `priority = "reward"` (PRT).
    Prt,
    /// `priority = "teacher_reward"` (PER).
    Per,
}

impl From<Selection> for Priority {
    fn from(s: Selection) -> Priority {
        match s {
            Selection::Uniform => Priority::Uniform,
            Selection::Prt => Priority::Reward,
            Selection::Per => Priority::TeacherReward,
        }
    }
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
    /// Reproduce the official gridworld code before its buffer fix (April
    /// 2025, after the paper), which produced the paper's buffer figures: a
    /// freshly sampled batch (not one refined by local search) enters the
    /// buffer with its terminal states in the order their trajectories
    /// finished (fewest actions first, ties in batch order) but its rewards
    /// and priorities in batch order, so most states are stored with another
    /// trajectory's reward and priority. Default `false`: each state with its
    /// own. Grid only (docs/grid.md "Differences from the official code").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pre_fix_pairing: bool,
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
    /// Range checks.
    pub fn check(&self) -> Result<(), Invalid> {
        check_size(self.size)
    }
}

impl TransitionBufferConfig {
    /// Range checks.
    pub fn check(&self) -> Result<(), Invalid> {
        check_size(self.size)?;
        if self.priority == Priority::Reward {
            return Err(Invalid::new("buffer.priority", "`reward` is not defined for transitions; allowed: `uniform`, `loss`, `teacher_reward`"));
        }
        if self.batch == Some(0) {
            return Err(Invalid::new("buffer.batch", "must be at least 1"));
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
    /// Offline-batch selection: `uniform`, `reward` (PRT: half the draws from
    /// R >= its 90th percentile, half from below) or `teacher_reward` (PER:
    /// the same split on each entry's latest teacher signal r_T). Unset:
    /// `selection`, else `uniform`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// The older spelling of `priority`: `uniform`, `prt` (= `reward`) or
    /// `per` (= `teacher_reward`); recorded as `priority`. Only one of the
    /// two keys may be given.
    #[serde(skip_serializing)]
    pub selection: Option<Selection>,
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
            priority: None,
            selection: None,
            batch: None,
            min_size: 10,
        }
    }
}

impl RecentBufferConfig {
    /// The selection of the offline batch: `priority`, or the older
    /// `selection`, or uniform; both keys at once are refused.
    pub fn priority(&self) -> Result<Priority, Invalid> {
        match (self.priority, self.selection) {
            (Some(_), Some(_)) => Err(Invalid::new(
                "buffer.selection",
                "is the older spelling of `buffer.priority`, which is given too: keep one \
                 (`priority` = `uniform` | `reward` (PRT) | `teacher_reward` (PER))",
            )),
            (Some(p), None) => Ok(p),
            (None, s) => Ok(s.map_or(Priority::Uniform, Priority::from)),
        }
    }

    /// Range checks.
    pub fn check(&self) -> Result<(), Invalid> {
        check_size(Some(self.size))?;
        if self.priority()? == Priority::Loss {
            return Err(Invalid::new(
                "buffer.priority",
                "`loss` is not defined for `recent`; allowed: `uniform`, `reward`, `teacher_reward`",
            ));
        }
        if self.batch == Some(0) {
            return Err(Invalid::new("buffer.batch", "must be at least 1"));
        }
        if self.min_size > self.size {
            return Err(Invalid::new(
                "buffer.min_size",
                format!(
                    "is {} but buffer.size is {}: the buffer never holds that many, so \
                     replay would never happen",
                    self.min_size, self.size
                ),
            ));
        }
        Ok(())
    }
}

fn check_size(size: Option<usize>) -> Result<(), Invalid> {
    if size == Some(0) {
        return Err(Invalid::new("buffer.size", "must be at least 1"));
    }
    Ok(())
}
