//! The component registry: one internally tagged enum per component kind.
//!
//! The `kind` key of a component table selects the variant; every variant wraps
//! its own `XConfig` struct (`#[serde(deny_unknown_fields)]`, documented
//! fields), which lives next to the component it builds. Adding a component is
//! adding one line here plus its config struct: the compiler then checks every
//! `match`, and the JSON schema picks it up.
//!
//! Serde loses the key path of errors inside internally tagged enums (it
//! buffers the table first), so each enum also gets `check_table`, which
//! deserializes the selected variant's struct on its own; `config::load_file` uses
//! it to report `env.horizon`-precise errors.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::behaviour::{GafnConfig, OnPolicyConfig, TeacherConfig};
use crate::buffer::{RecentBufferConfig, TerminalBufferConfig, TransitionBufferConfig};
use crate::check::Invalid;
use crate::envs::diffusion::funnel::Funnel;
use crate::envs::diffusion::gmm25::Gmm25;
use crate::envs::diffusion::gmm40::Gmm40;
use crate::envs::diffusion::many_well::ManyWell;
use crate::envs::diffusion::program::ProgramEnergyConfig;
use crate::envs::diffusion::target::Target;
use crate::envs::diffusion::DiffusionEnvConfig;
use crate::envs::grid::GridConfig;
use crate::envs::sequence::bitseq::BitSeqConfig;
use crate::envs::sequence::declared::DeclaredSeqConfig;
use crate::envs::sequence::oracle::Task;
use crate::envs::sequence::task::{RnaEnvConfig, SeqEnvConfig};
use crate::objective::db::DbConfig;
use crate::objective::subtb::SubTbConfig;
use crate::objective::tb::TbConfig;
use crate::objective::ObjectiveTable;
use crate::policy::diffusion::DiffusionNetConfig;
use crate::policy::mlp::MlpConfig;
use crate::policy::ssr::SsrConfig;
use crate::search::{BackAndForthConfig, MalaConfig};

macro_rules! registry {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($cfg:ty) = $kind:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(tag = "kind")]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $kind)] $variant($cfg), )+
        }

        impl $name {
            /// Every accepted value of `kind`.
            pub const KINDS: &'static [&'static str] = &[$($kind),+];

            /// The `kind` of this component.
            pub fn kind(&self) -> &'static str {
                match self { $( Self::$variant(_) => $kind, )+ }
            }

            /// Deserialize a table (without its `kind` key) as the config of
            /// `kind`; `None` for an unknown kind.
            pub(crate) fn check_table(
                kind: &str,
                table: &figment::Figment,
            ) -> Option<Result<(), figment::Error>> {
                match kind {
                    $( $kind => Some(table.extract::<$cfg>().map(|_| ())), )+
                    _ => None,
                }
            }
        }
    };
}

registry! {
    /// The environment (reward and state space) to sample from.
    EnvConfig {
        /// Gridworld (docs/grid.md): the paper's deceptive reward, or the
        /// original hypergrid reward with `reward = "original"`.
        Grid(GridConfig) = "grid",
        /// QM9 molecules as strings of 11 blocks, length 5 (lookup oracle; docs/discovery.md).
        Qm9Str(SeqEnvConfig) = "qm9str",
        /// sEH binding proxy, 18 blocks, length 6 (100 gradient-boosted trees).
        SehStr(SeqEnvConfig) = "sehstr",
        /// TF binding of DNA 8-mers (lookup oracle).
        TfBind8(SeqEnvConfig) = "tfbind8",
        /// 14-nt RNA binding one of three targets (duplex free energy; L14_RNA1..3).
        Rna(RnaEnvConfig) = "rna",
        /// Bit sequences (Malkin et al. 2022): n bits in words of k, reward
        /// exp(-Hamming distance to the nearest mode / temperature).
        BitSeq(BitSeqConfig) = "bitseq",
        /// A sequence task of your own: alphabet, length, and a reward from a
        /// table or a program (docs/tasks.md).
        Sequence(DeclaredSeqConfig) = "sequence",
        /// Diffusion sampler: mixture of 25 Gaussians in 2-d, log Z = 0 (docs/diffusion.md).
        Gmm25(DiffusionEnvConfig) = "gmm25",
        /// Diffusion sampler: 32-d Manywell, 16 double wells, log Z = 164.69567532.
        ManyWell(DiffusionEnvConfig) = "many_well",
        /// Diffusion sampler: 10-d Neal's funnel, x0 ~ N(0, 9), x1..x9 ~ N(0, e^x0), log Z = 0.
        Funnel(DiffusionEnvConfig) = "funnel",
        /// Diffusion sampler: 2-d mixture of 40 Gaussians in [-40, 40]^2 (FAB's), log Z = 0.
        Gmm40(DiffusionEnvConfig) = "gmm40",
        /// A target of your own: the log density from a program (docs/tasks.md).
        Energy(ProgramEnergyConfig) = "energy",
    }
}

/// What an environment is, as the plan sees it: one arm per family, so the
/// plan's match on it is exhaustive without naming every kind.
pub enum EnvFamily<'a> {
    /// The gridworld.
    Grid(&'a GridConfig),
    /// A sequence task: its row of the task table and the settings every
    /// sequence task shares.
    Sequence(Task, SeqEnvConfig),
    /// A diffusion energy: its target and the sampler's settings.
    Diffusion(Arc<dyn Target>, DiffusionEnvConfig),
}

impl EnvConfig {
    /// Range checks of the table, naming the key.
    pub fn check(&self) -> Result<(), Invalid> {
        match self {
            EnvConfig::Grid(g) => g.check(),
            EnvConfig::Qm9Str(c) | EnvConfig::SehStr(c) | EnvConfig::TfBind8(c) => c.check(),
            EnvConfig::Rna(c) => c.check(),
            EnvConfig::Sequence(c) => c.check(),
            EnvConfig::BitSeq(c) => c.check(),
            EnvConfig::Gmm25(c)
            | EnvConfig::ManyWell(c)
            | EnvConfig::Funnel(c)
            | EnvConfig::Gmm40(c) => c.check(),
            EnvConfig::Energy(c) => c.check(),
        }
    }

    /// The family of the environment and what it needs (checked table). A
    /// new energy is one file in `src/envs/diffusion/` (a [`Target`]), its
    /// variant above and its lines here; a new sequence task, its row.
    pub fn family(&self) -> Result<EnvFamily<'_>, Invalid> {
        let diffusion =
            |t: Arc<dyn Target>, c: &DiffusionEnvConfig| Ok(EnvFamily::Diffusion(t, c.clone()));
        match self {
            EnvConfig::Grid(g) => Ok(EnvFamily::Grid(g)),
            EnvConfig::Qm9Str(c) => Ok(EnvFamily::Sequence(Task::Qm9Str, c.clone())),
            EnvConfig::SehStr(c) => Ok(EnvFamily::Sequence(Task::SehStr, c.clone())),
            EnvConfig::TfBind8(c) => Ok(EnvFamily::Sequence(Task::TfBind8, c.clone())),
            EnvConfig::Rna(c) => Ok(EnvFamily::Sequence(c.task()?, c.sequence())),
            EnvConfig::Sequence(c) => Ok(EnvFamily::Sequence(
                c.task(),
                SeqEnvConfig {
                    beta: c.beta,
                    mdp: c.mdp,
                },
            )),
            EnvConfig::BitSeq(c) => Ok(EnvFamily::Sequence(c.task(), c.sequence())),
            EnvConfig::Gmm25(c) => diffusion(Arc::new(Gmm25), c),
            EnvConfig::ManyWell(c) => diffusion(Arc::new(ManyWell), c),
            EnvConfig::Funnel(c) => diffusion(Arc::new(Funnel), c),
            EnvConfig::Gmm40(c) => diffusion(Arc::new(Gmm40), c),
            EnvConfig::Energy(c) => diffusion(Arc::new(c.target()), &c.sampler()),
        }
    }

    /// Write the resolved reward exponent of a sequence task into its table
    /// (the run's recorded config); the other environments have no such key
    /// to fill.
    pub fn record_beta(&mut self, beta: f64) {
        match self {
            EnvConfig::Qm9Str(c) | EnvConfig::SehStr(c) | EnvConfig::TfBind8(c) => {
                c.beta = Some(beta)
            }
            EnvConfig::Rna(c) => c.beta = Some(beta),
            EnvConfig::BitSeq(c) => c.beta = Some(beta),
            EnvConfig::Sequence(c) => c.beta = Some(beta),
            EnvConfig::Grid(_)
            | EnvConfig::Gmm25(_)
            | EnvConfig::ManyWell(_)
            | EnvConfig::Funnel(_)
            | EnvConfig::Gmm40(_)
            | EnvConfig::Energy(_) => {}
        }
    }
}

registry! {
    /// The policy network of the student (and of the teacher, which has the same shape).
    PolicyConfig {
        /// Multi-layer perceptron on the one-hot observation.
        Mlp(MlpConfig) = "mlp",
        /// The sequence tasks' state encoder and (state, child) pair scorer.
        Ssr(SsrConfig) = "ssr",
        /// The diffusion sampler's time/state encoders and joint Gaussian head.
        Diffusion(DiffusionNetConfig) = "diffusion",
    }
}

registry! {
    /// The training objective of the student (the teacher uses the same one).
    ObjectiveConfig {
        /// Trajectory balance with a learned log Z.
        Tb(TbConfig) = "tb",
        /// Detailed balance with a learned state flow log F(s).
        Db(DbConfig) = "db",
        /// Sub-trajectory balance (lambda-weighted) with log Z and a learned state flow.
        SubTb(SubTbConfig) = "subtb",
    }
}

impl ObjectiveConfig {
    /// The table as what the plan needs of it (its checks and settings).
    pub fn table(&self) -> &dyn ObjectiveTable {
        match self {
            ObjectiveConfig::Tb(c) => c,
            ObjectiveConfig::Db(c) => c,
            ObjectiveConfig::SubTb(c) => c,
        }
    }

    /// The table, to fill its unset keys with the environment's defaults.
    pub fn table_mut(&mut self) -> &mut dyn ObjectiveTable {
        match self {
            ObjectiveConfig::Tb(c) => c,
            ObjectiveConfig::Db(c) => c,
            ObjectiveConfig::SubTb(c) => c,
        }
    }
}

registry! {
    /// The behaviour policy: which sampler produces each training batch.
    BehaviourConfig {
        /// The student's own samples, optionally epsilon-uniform.
        OnPolicy(OnPolicyConfig) = "on_policy",
        /// The adaptive Teacher: a second sampler trained on the student's loss.
        Teacher(TeacherConfig) = "teacher",
        /// GAFN: intrinsic rewards from random network distillation.
        Gafn(GafnConfig) = "gafn",
    }
}

registry! {
    /// The replay buffer (optional).
    BufferConfig {
        /// Terminal states, replayed with fresh backward trajectories (TB, GAFN
        /// excluded; on the diffusion energies unkeyed, priorities fixed at insertion).
        Terminal(TerminalBufferConfig) = "terminal",
        /// Transitions (DB).
        Transition(TransitionBufferConfig) = "transition",
        /// The last distinct discoveries, offline batch every round (sequence tasks).
        Recent(RecentBufferConfig) = "recent",
    }
}

registry! {
    /// Local search (optional); the schedule's `+ls` sources say when it runs.
    LocalSearchConfig {
        /// Back-and-forth: destroy the end of a trajectory, rebuild it, keep the better.
        BackAndForth(BackAndForthConfig) = "back_and_forth",
        /// Metropolis-adjusted Langevin on buffer samples (diffusion energies).
        Mala(MalaConfig) = "mala",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every diffusion kind's target carries its `kind` as its name; the
    /// discrete environments have none.
    #[test]
    fn diffusion_targets_are_named_by_their_kind() {
        let mut names = Vec::new();
        for kind in EnvConfig::KINDS {
            let Ok(env) = toml::from_str::<EnvConfig>(&format!("kind = \"{kind}\"")) else {
                continue;
            };
            if let Ok(EnvFamily::Diffusion(target, _)) = env.family() {
                assert_eq!(target.name(), *kind);
                names.push(target.name().to_string());
            }
        }
        assert_eq!(names, ["gmm25", "many_well", "funnel", "gmm40"]);
        let grid: EnvConfig = toml::from_str("kind = \"grid\"\nndim = 2\nhorizon = 8").unwrap();
        assert!(matches!(grid.family(), Ok(EnvFamily::Grid(_))));
    }
}
