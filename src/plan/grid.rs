//! The gridworld's part of the plan: its composition rules and defaults
//! (docs/grid.md "Budgets", "Replay buffer", "Metrics").

use super::{
    back_and_forth, explicit_schedule, objective_kind, scaled_steps, EvalPlan, FamilyDefaults,
    FamilyPlan, ShortBuffer,
};
use crate::behaviour::teacher::RewardForm;
use crate::behaviour::{paper_schedule, GafnConfig, Source};
use crate::buffer::Priority;
use crate::check::Invalid;
use crate::config::{EvalMethod, Experiment};
use crate::envs::grid::GridConfig;
use crate::objective::ObjectiveKind;
use crate::optim::ClipScope;
use crate::policy::mlp::MlpConfig;
use crate::registry::{BehaviourConfig, BufferConfig, EnvConfig, LocalSearchConfig, PolicyConfig};
use crate::search::BackAndForth;

/// A gridworld run.
#[derive(Debug, Clone)]
pub struct GridPlan {
    /// The grid.
    pub grid: GridConfig,
    /// The policy network.
    pub net: MlpConfig,
    /// Whether the network has a state-flow output log F(s) (DB, SubTB, GAFN).
    pub flow_head: bool,
    /// GAFN's intrinsic-reward settings, when the behaviour is `gafn`.
    pub gafn: Option<GafnConfig>,
    /// The replay buffer.
    pub replay: Option<GridReplay>,
    /// Back-and-forth local search.
    pub local_search: Option<BackAndForth>,
    /// Training samples behind `empirical_l1`.
    pub window: usize,
    /// Write PNG heatmaps.
    pub plot: bool,
    /// Evaluate with the exact terminal distribution (else by rollouts).
    pub exact_eval: bool,
}

/// The grid's replay buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GridReplay {
    /// Terminal states (TB).
    Terminal {
        /// Capacity.
        size: usize,
        /// Sampling priority.
        priority: Priority,
        /// Pair states with rewards as the official code before its buffer
        /// fix (`TerminalBufferConfig::pre_fix_pairing`).
        pre_fix_pairing: bool,
    },
    /// Transitions (DB).
    Transition {
        /// Capacity.
        size: usize,
        /// Sampling priority.
        priority: Priority,
        /// Transitions per replayed batch.
        batch: usize,
    },
}

/// Check the grid's composition and fill its defaults into `resolved`.
pub(crate) fn resolve(
    exp: &Experiment,
    g: &GridConfig,
    resolved: &mut Experiment,
) -> Result<(FamilyPlan, FamilyDefaults), Invalid> {
    let err = |k: &str, m: &str| Err(Invalid::new(k, m));
    let PolicyConfig::Mlp(net) = &exp.policy else {
        return err(
            "policy.kind",
            "`ssr` scores the children of sequence states; the grid uses `mlp`",
        );
    };
    let objective = objective_kind(exp);
    let db = matches!(objective, ObjectiveKind::Db(_));
    let gafn = match &exp.behaviour {
        BehaviourConfig::Gafn(_) if !matches!(objective, ObjectiveKind::Tb(_)) => {
            return err(
                "objective.kind",
                "behaviour `gafn` trains with edge-augmented TB: use objective `tb`",
            )
        }
        BehaviourConfig::Gafn(_) if exp.buffer.is_some() || exp.local_search.is_some() => {
            return err(
                "behaviour.kind",
                "behaviour `gafn` uses no `[buffer]` and no `[local_search]`",
            )
        }
        BehaviourConfig::Gafn(c) => Some(c.clone()),
        _ => None,
    };
    let local_search = match back_and_forth(exp)? {
        Some(l) => Some(l.grid()?),
        None => None,
    };
    let schedule = explicit_schedule(exp).unwrap_or_else(|| {
        paper_schedule(
            matches!(exp.behaviour, BehaviourConfig::Teacher(_)),
            exp.buffer.is_some(),
            local_search.is_some(),
        )
    });
    // docs/grid.md "Budgets": x1.5 without local search, x2 when the schedule
    // replays from a buffer; then the user's scale.
    let mut base = g.base_steps() as f64;
    if local_search.is_none() {
        base *= 1.5;
    }
    if schedule
        .iter()
        .any(|s| s.sources().contains(&Source::Buffer))
    {
        base *= 2.0;
    }
    let steps = exp.train.steps.unwrap_or(scaled_steps(exp, base));
    let batch_size = exp.train.batch_size.unwrap_or(16);
    let replay = replay(exp, g, db, batch_size)?;
    let samples = exp.eval.samples.unwrap_or(100_000);
    let exact_eval = exact_eval(exp.eval.method, g, samples);
    // The reward family's defaults (`r0`.. of `original`), recorded.
    let mut grid = g.clone();
    grid.fill_reward_defaults();
    let plan = GridPlan {
        grid,
        net: net.clone(),
        flow_head: objective.needs_flow() || gafn.is_some(),
        gafn,
        replay,
        local_search,
        window: exp.eval.window.unwrap_or(g.default_window()),
        plot: exp.eval.plot,
        exact_eval,
    };
    let eval = EvalPlan {
        every: exp
            .eval
            .every
            .unwrap_or((steps / exp.train.n_evals as u64).max(1)),
        samples,
        batch_size: exp.eval.batch_size.unwrap_or(10_000),
    };
    record(resolved, steps, batch_size, &plan, &eval);
    let defaults = FamilyDefaults {
        steps,
        batch_size,
        schedule,
        eval,
        short_buffer: ShortBuffer::Student,
        loss_scale: 1.0,
        clip_scope: ClipScope::All,
        reward_form: RewardForm::Product,
    };
    Ok((FamilyPlan::Grid(plan), defaults))
}

/// Whether the evaluation is exact (`eval.method`; unset: exact when the
/// (H-1)^d network rows it needs are no more than the samples x d(H-1)
/// states of the rollouts at their longest). Its H^d visit probabilities
/// always fit: a grid has at most `MAX_STATES` states.
fn exact_eval(method: Option<EvalMethod>, g: &GridConfig, samples: usize) -> bool {
    match method {
        Some(EvalMethod::Rollout) => false,
        Some(EvalMethod::Exact) => true,
        None => {
            let interior = (g.horizon.saturating_sub(1) as f64).powi(g.ndim as i32);
            let rollout_rows = samples as f64 * (g.ndim * g.horizon.saturating_sub(1)) as f64;
            interior <= rollout_rows
        }
    }
}

/// The grid's buffer: terminal states for TB, transitions for DB.
fn replay(
    exp: &Experiment,
    g: &GridConfig,
    db: bool,
    batch_size: usize,
) -> Result<Option<GridReplay>, Invalid> {
    let err = |m: &str| Err(Invalid::new("buffer.kind", m));
    let size = g.default_buffer_size();
    Ok(match &exp.buffer {
        None => None,
        Some(BufferConfig::Recent(_)) => return err(
            "`recent` is the sequence tasks' replay; on the grid use `terminal` or `transition`",
        ),
        Some(BufferConfig::Terminal(_)) if db => {
            return err("objective `db` replays transitions: use `kind = \"transition\"`")
        }
        Some(BufferConfig::Transition(_)) if !db => {
            return err("a `transition` buffer needs objective `db` (`tb` and `subtb` train on whole trajectories); use `kind = \"terminal\"`")
        }
        Some(BufferConfig::Terminal(b)) => Some(GridReplay::Terminal {
            size: b.size.unwrap_or(size),
            priority: b.priority,
            pre_fix_pairing: b.pre_fix_pairing,
        }),
        Some(BufferConfig::Transition(b)) => Some(GridReplay::Transition {
            size: b.size.unwrap_or(size),
            priority: b.priority,
            batch: b.batch.unwrap_or(batch_size * (g.horizon / 2).max(1)),
        }),
    })
}

/// Write the resolved defaults into the experiment recorded as `config.toml`.
fn record(
    resolved: &mut Experiment,
    steps: u64,
    batch_size: usize,
    plan: &GridPlan,
    eval: &EvalPlan,
) {
    if let EnvConfig::Grid(g) = &mut resolved.env {
        *g = plan.grid.clone();
    }
    resolved.train.steps = Some(steps);
    resolved.eval.window = Some(plan.window);
    resolved.train.batch_size = Some(batch_size);
    resolved.eval.samples = Some(eval.samples);
    resolved.eval.batch_size = Some(eval.batch_size);
    resolved.eval.every = Some(eval.every);
    resolved.eval.method = Some(match plan.exact_eval {
        true => EvalMethod::Exact,
        false => EvalMethod::Rollout,
    });
    if let (Some(LocalSearchConfig::BackAndForth(l)), Some(ls)) =
        (&mut resolved.local_search, &plan.local_search)
    {
        l.iterations = Some(ls.iterations);
    }
    match (&mut resolved.buffer, &plan.replay) {
        (Some(BufferConfig::Terminal(b)), Some(GridReplay::Terminal { size, .. })) => {
            b.size = Some(*size);
        }
        (Some(BufferConfig::Transition(b)), Some(GridReplay::Transition { size, batch, .. })) => {
            b.size = Some(*size);
            b.batch = Some(*batch);
        }
        _ => {}
    }
}
