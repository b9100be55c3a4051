//! Training objectives: the family-neutral view of a batch they consume
//! ([`balance`]) and one [`Objective`] per balance condition ([`tb`], [`db`],
//! [`subtb`]), whose residuals come with their [`Pieces`] (the teacher
//! signals of any objective are `behaviour::teacher::signals`).
//! The grid's packed batch ([`PackedBatch`]) lives here too: it is the
//! layout that GAFN's edge-augmented TB also reads.

pub mod balance;
pub mod db;
pub mod subtb;
pub mod tb;

use crate::check::Invalid;
use crate::flops::matmul;
use balance::{Balance, Layout};
use candle_core::{Device, Result, Tensor, D};

/// How the residuals of an objective belong to the entries of the batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Pieces {
    /// One residual per entry `[B]` (TB).
    Entries,
    /// One residual per transition `[M]` (DB).
    Transitions {
        /// The entry of each transition `[M]`.
        owner: Vec<usize>,
        /// Whether each transition is its entry's last `[M]`.
        last: Vec<bool>,
    },
    /// One residual per pair of states (i, j) of each entry, `[B, K, K]`
    /// (the sub-trajectory s_i -> s_j), with its weight in the entry's loss
    /// (zero unless i < j <= n_b) (SubTB).
    SubTrajectories {
        /// K: states of the longest entry.
        k: usize,
        /// The weight of every residual `[B, K, K]`.
        weights: Vec<f32>,
    },
}

/// What one objective step computes: the residuals (their layout in
/// `pieces`) and the scalar loss.
pub struct Trained {
    /// The residuals, with gradient.
    pub delta: Tensor,
    /// The loss to minimise.
    pub loss: Tensor,
    /// How `delta` maps to the entries.
    pub pieces: Pieces,
}

/// A training objective: residuals and loss of a batch's [`Balance`]
/// towards a terminal log-reward per entry.
pub trait Objective: Send + Sync {
    /// The residuals and loss of `balance` towards `log_target` `[B]` (log
    /// R, or the teacher's target), with the learned `log_z` where the
    /// objective has one.
    fn train(
        &self,
        balance: &Balance,
        log_target: &[f64],
        log_z: Option<&Tensor>,
    ) -> Result<Trained>;
}

/// The objective of a run, resolved by the plan (the registry's
/// `ObjectiveConfig` stays in the plan).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ObjectiveKind {
    /// Trajectory balance.
    Tb(tb::Tb),
    /// Detailed balance.
    Db(db::Db),
    /// Sub-trajectory balance.
    SubTb(subtb::SubTb),
}

impl ObjectiveKind {
    /// The objective itself.
    pub fn get(&self) -> &dyn Objective {
        match self {
            ObjectiveKind::Tb(o) => o,
            ObjectiveKind::Db(o) => o,
            ObjectiveKind::SubTb(o) => o,
        }
    }

    /// Whether the objective reads the network's state flow log F(s).
    pub fn needs_flow(&self) -> bool {
        !matches!(self, ObjectiveKind::Tb(_))
    }

    /// TB's clamp of each squared residual (0: none; the other objectives
    /// have none).
    pub fn loss_clamp(&self) -> f64 {
        match self {
            ObjectiveKind::Tb(tb) => tb.loss_clamp,
            _ => 0.0,
        }
    }
}

/// What the plan needs of an `[objective]` table: its checks, the
/// environment's defaults of the keys left unset, and the sampler's
/// settings with the objective resolved. Each objective's config implements
/// it next to the objective (the registry dispatches), so an objective is
/// added in its own module, the registry and [`ObjectiveKind`].
pub trait ObjectiveTable {
    /// Range checks of the table's own keys (named `objective.<key>`); the
    /// shared ones are [`ObjectiveSettings::check`].
    fn check(&self) -> std::result::Result<(), Invalid> {
        Ok(())
    }

    /// Give every key left unset its value in `defaults` (the plan does it
    /// first, with the environment's defaults, and records the values).
    fn fill(&mut self, defaults: &ObjectiveDefaults);

    /// The optimiser settings and the objective of the table (a key still
    /// unset reads as [`ObjectiveDefaults::GENERIC`]'s).
    fn settings(&self) -> ObjectiveSettings;
}

/// The values of the `[objective]` keys whose paper value depends on the
/// environment, for a table that leaves them unset (each objective reads
/// those of its keys it has).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObjectiveDefaults {
    /// Adam learning rate of the network.
    pub lr: f64,
    /// Adam learning rate of log Z.
    pub log_z_lr: f64,
    /// Initial log Z.
    pub log_z_init: f64,
    /// Clip of the global gradient norm (0: none).
    pub clip_grad_norm: f64,
    /// TB's clamp of each squared residual (0: none).
    pub loss_clamp: f64,
    /// Clamp of log Z after every step (`None`: none).
    pub log_z_min: Option<f64>,
}

impl ObjectiveDefaults {
    /// The defaults of every environment without a table of its own: the
    /// gridworld's (docs/grid.md "Policy `mlp`": Adam 1e-3, log Z at 1e-1
    /// from 0, the global gradient norm clipped at 1, no clamps). The
    /// sequence tasks' are `plan::sequence::SEQ_OBJECTIVE`.
    pub const GENERIC: ObjectiveDefaults = ObjectiveDefaults {
        lr: 1e-3,
        log_z_lr: 1e-1,
        log_z_init: 0.0,
        clip_grad_norm: 1.0,
        loss_clamp: 0.0,
        log_z_min: None,
    };
}

/// The learned scalar log Z (TB, SubTB).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogZPlan {
    /// Initial value.
    pub init: f64,
    /// Adam learning rate.
    pub lr: f64,
    /// Clamp to at least this after every step.
    pub min: Option<f64>,
}

/// The optimiser settings of an `[objective]` table and its objective, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectiveSettings {
    /// Adam learning rate of the policy network.
    pub lr: f64,
    /// The learned log Z, for objectives with one.
    pub log_z: Option<LogZPlan>,
    /// Clip of the global gradient norm (0: none).
    pub clip_grad_norm: f64,
    /// Coupled L2 weight decay.
    pub weight_decay: f64,
    /// Iterations at which every learning rate is multiplied by `lr_gamma`.
    pub lr_milestones: Vec<u64>,
    /// The factor of each milestone.
    pub lr_gamma: f64,
    /// The objective.
    pub objective: ObjectiveKind,
}

impl ObjectiveSettings {
    /// Range checks of the optimiser settings, naming the `objective.` key.
    pub fn check(&self) -> std::result::Result<(), Invalid> {
        let rates = [
            ("objective.lr", Some(self.lr)),
            ("objective.log_z_lr", self.log_z.map(|z| z.lr)),
        ];
        for (k, v) in rates.iter().filter_map(|(k, v)| v.map(|v| (k, v))) {
            if !(v.is_finite() && v > 0.0) {
                return Err(Invalid::new(*k, "must be a positive number"));
            }
        }
        if !(self.clip_grad_norm.is_finite() && self.clip_grad_norm >= 0.0) {
            return Err(Invalid::new(
                "objective.clip_grad_norm",
                "must be >= 0 (0 disables clipping)",
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Invalid::new("objective.weight_decay", "must be >= 0"));
        }
        if !(self.lr_gamma.is_finite() && self.lr_gamma > 0.0) {
            return Err(Invalid::new(
                "objective.lr_gamma",
                "must be a positive number",
            ));
        }
        if self.lr_milestones.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Invalid::new(
                "objective.lr_milestones",
                "must be strictly increasing iterations",
            ));
        }
        if self
            .log_z
            .and_then(|z| z.min)
            .is_some_and(|m| !m.is_finite())
        {
            return Err(Invalid::new("objective.log_z_min", "must be a number"));
        }
        Ok(())
    }

    /// The learning-rate keys of the table, for the advice of a diverging loss.
    pub fn lr_keys(&self) -> &'static str {
        match self.log_z {
            Some(_) => "objective.lr, objective.log_z_lr",
            None => "objective.lr",
        }
    }
}

/// Serde: omit a zero (the default weight decay) from the resolved config.
pub(crate) fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Serde: omit the default decay factor 0.1.
pub(crate) fn is_default_gamma(v: &f64) -> bool {
    *v == 0.1
}

/// Additive logit for a masked (invalid) action, as the reference's `-1e9`.
pub const MASKED_LOGIT: f32 = -1e9;

/// A batch as tensors, packed without padding: every state of every entry
/// (a trajectory, or a single replayed transition) is one row (N rows), every
/// transition one position (M positions). Per-entry sums are products with a
/// 0/1 segment matrix, so a whole batch is a handful of tensor ops whatever
/// the trajectory lengths.
pub struct PackedBatch {
    /// Number of entries B.
    pub batch: usize,
    /// Network input of every state: `[N, obs_dim]` f32, or `[N, k]` u32
    /// positions of the ones of a one-hot observation (see `Mlp::forward`).
    pub obs: Tensor,
    /// `[N, A]` additive mask of invalid forward actions (0 or `MASKED_LOGIT`).
    pub fwd_mask: Tensor,
    /// `[M]` u32: `row(s_t) * A + a_t`, into the flattened `[N * A]` log-probs.
    pub pf_index: Tensor,
    /// `[M]` u32: row of s_t.
    pub src_row: Tensor,
    /// `[M]` u32: row of s_{t+1}.
    pub next_row: Tensor,
    /// `[B, M]`: 1 where transition m belongs to entry b.
    pub segment: Tensor,
    /// Backward log-probabilities.
    pub log_pb: LogPb,
    /// `[M]` f32: 1 where the transition reaches the terminal state of its entry.
    pub ends_entry: Tensor,
    /// `[M]` f32: 1 where GAFN augments the backward factor (non-stop
    /// transitions into a state that is not the terminal state of the entry).
    pub augmentable: Tensor,
    /// Transitions of each entry `[B]`.
    pub lengths: Vec<usize>,
    /// Whether each entry ends at its terminal state `[B]`.
    pub terminal: Vec<bool>,
}

/// How log P_B(s_t | s_{t+1}) of each transition is obtained.
pub enum LogPb {
    /// Uniform P_B: constants computed on the host, `[M]` (0 for stop actions).
    Fixed(Tensor),
    /// Learned P_B from the network's backward logits (`Ab` of them, after the A forward ones).
    Learned {
        /// `[N, Ab]` additive mask of invalid parents.
        mask: Tensor,
        /// `[M]` u32: `row(s_{t+1}) * Ab + a_t` (0 for stop actions).
        index: Tensor,
        /// `[M]` f32: 0 for stop actions (probability 1), else 1.
        valid: Tensor,
    },
}

impl PackedBatch {
    /// log P_F(s_{t+1} | s_t) of every transition `[M]` from outputs `[N, out]`.
    pub fn log_pf(&self, out: &Tensor) -> Result<Tensor> {
        let a_dim = self.fwd_mask.dim(1)?;
        // [N, A] -> log-softmax over valid actions -> [N*A] -> [M]
        let lp =
            candle_nn::ops::log_softmax(&(out.narrow(1, 0, a_dim)? + &self.fwd_mask)?, D::Minus1)?;
        lp.flatten_all()?.index_select(&self.pf_index, 0)
    }

    /// log P_B(s_t | s_{t+1}) of every transition `[M]`.
    pub fn log_pb(&self, out: &Tensor) -> Result<Tensor> {
        match &self.log_pb {
            LogPb::Fixed(t) => Ok(t.clone()),
            LogPb::Learned { mask, index, valid } => {
                let (a_dim, b_dim) = (self.fwd_mask.dim(1)?, mask.dim(1)?);
                let lp = candle_nn::ops::log_softmax(
                    &(out.narrow(1, a_dim, b_dim)? + mask)?,
                    D::Minus1,
                )?;
                lp.flatten_all()?.index_select(index, 0)? * valid
            }
        }
    }

    /// Per-entry sums of a per-transition quantity: `[M] -> [B]`.
    pub fn per_entry(&self, x: &Tensor) -> Result<Tensor> {
        matmul(&self.segment, &x.unsqueeze(1)?)?.squeeze(1)
    }

    /// The objectives' view of the batch under network outputs `out`
    /// `[N, out]`; with `flow`, log F(s) is the last output column.
    pub fn balance(&self, out: &Tensor, flow: bool) -> Result<Balance> {
        let log_flow = match flow {
            true => {
                let last = out.dim(1)? - 1;
                Some(out.narrow(1, last, 1)?.squeeze(1)?.contiguous()?) // [N]
            }
            false => None,
        };
        Ok(Balance {
            batch: self.batch,
            layout: Layout::Packed {
                segment: self.segment.clone(),
                src_row: self.src_row.clone(),
                next_row: self.next_row.clone(),
                ends: self.ends_entry.clone(),
                lengths: self.lengths.clone(),
            },
            log_pf: self.log_pf(out)?,
            log_pb: Some(self.log_pb(out)?),
            fixed: Vec::new(),
            log_flow,
            terminal: self.terminal.clone(),
        })
    }
}

/// One transition of a batch being packed (see `TransitionIndex`).
pub struct TransitionRow {
    /// Entry (trajectory) index.
    pub traj: usize,
    /// Row of s_t (s_{t+1} is the next row).
    pub row: usize,
    /// Forward action a_t.
    pub action: u32,
    /// Number of forward actions A.
    pub a_dim: usize,
    /// Number of backward actions Ab.
    pub b_dim: usize,
    /// Whether a_t is the stop action.
    pub stop: bool,
    /// log P_B under the uniform backward policy.
    pub log_pb: f32,
    /// Whether s_{t+1} is the terminal state of the entry.
    pub ends_entry: bool,
    /// Whether GAFN augments this backward factor.
    pub augmentable: bool,
}

/// Host-side builder of the per-transition tensors of a `PackedBatch`.
pub struct TransitionIndex {
    batch: usize,
    rows: Vec<TransitionRow>,
}

impl TransitionIndex {
    /// An empty index for `batch` entries and about `m` transitions.
    pub fn with_capacity(batch: usize, m: usize) -> Self {
        Self {
            batch,
            rows: Vec::with_capacity(m),
        }
    }

    /// Add the next transition (entries in order, transitions in order).
    pub fn push(&mut self, t: TransitionRow) {
        self.rows.push(t);
    }

    /// Build the batch; `learned_pb` carries the `[N, Ab]` parent mask when P_B is learned.
    pub fn into_packed(
        self,
        obs: Tensor,
        fwd_mask: Tensor,
        learned_pb: Option<(Vec<f32>, usize, usize)>,
        device: &Device,
    ) -> Result<PackedBatch> {
        let (b, m) = (self.batch, self.rows.len());
        let mut segment = vec![0f32; b * m];
        let mut lengths = vec![0usize; b];
        let mut terminal = vec![false; b];
        let f32s = |f: &dyn Fn(&TransitionRow) -> f32| -> Result<Tensor> {
            Tensor::from_vec(self.rows.iter().map(f).collect::<Vec<f32>>(), m, device)
        };
        let u32s = |f: &dyn Fn(&TransitionRow) -> u32| -> Result<Tensor> {
            Tensor::from_vec(self.rows.iter().map(f).collect::<Vec<u32>>(), m, device)
        };
        for (k, t) in self.rows.iter().enumerate() {
            segment[t.traj * m + k] = 1.0;
            lengths[t.traj] += 1;
            terminal[t.traj] |= t.ends_entry;
        }
        let log_pb = match learned_pb {
            None => LogPb::Fixed(f32s(&|t| t.log_pb)?),
            Some((mask, n, ab)) => LogPb::Learned {
                mask: Tensor::from_vec(mask, (n, ab), device)?,
                index: u32s(&|t| {
                    if t.stop {
                        0
                    } else {
                        ((t.row + 1) * t.b_dim) as u32 + t.action
                    }
                })?,
                valid: f32s(&|t| if t.stop { 0.0 } else { 1.0 })?,
            },
        };
        Ok(PackedBatch {
            batch: b,
            obs,
            fwd_mask,
            pf_index: u32s(&|t| (t.row * t.a_dim) as u32 + t.action)?,
            src_row: u32s(&|t| t.row as u32)?,
            next_row: u32s(&|t| t.row as u32 + 1)?,
            segment: Tensor::from_vec(segment, (b, m), device)?,
            log_pb,
            ends_entry: f32s(&|t| t.ends_entry as u8 as f32)?,
            augmentable: f32s(&|t| t.augmentable as u8 as f32)?,
            lengths,
            terminal,
        })
    }
}
