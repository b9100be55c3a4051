//! The sequence tasks' part of the plan: their composition rules and the
//! defaults of the task table (docs/discovery.md "Tasks", "Training loop").

use super::{
    back_and_forth, explicit_schedule, objective_kind, scaled_steps, ComponentDefaults, EvalPlan,
    FamilyDefaults, FamilyPlan, ShortBuffer,
};
use crate::behaviour::discovery_schedule;
use crate::behaviour::teacher::RewardForm;
use crate::buffer::Priority;
use crate::check::Invalid;
use crate::config::Experiment;
use crate::envs::sequence::mdp::SeqMdpKind;
use crate::envs::sequence::oracle::Task;
use crate::envs::sequence::task::SeqEnvConfig;
use crate::objective::ObjectiveDefaults;
use crate::optim::ClipScope;
use crate::registry::{BehaviourConfig, BufferConfig, LocalSearchConfig, PolicyConfig};
use crate::search::BackAndForth;

/// Trajectories per online and offline batch when unset (the reference's 32).
pub const SEQ_BATCH: usize = 32;
/// On-policy evaluation samples when unset (docs/discovery.md: 2048).
pub const SEQ_EVAL_SAMPLES: usize = 2048;
/// Rollouts per network call at evaluation when unset.
pub const SEQ_EVAL_CHUNK: usize = 256;

/// The discovery reference's optimiser, the default of every `[objective]`
/// key a file leaves unset on a sequence task (docs/discovery.md "Policy",
/// "Student objective: TB"): Adam 1e-4, log Z at 1e-2 from 5.0 and clamped
/// at 0 after every step, no gradient clipping (the paper's effective
/// setting), squared residuals clamped at 5000.
pub const SEQ_OBJECTIVE: ObjectiveDefaults = ObjectiveDefaults {
    lr: 1e-4,
    log_z_lr: 1e-2,
    log_z_init: 5.0,
    clip_grad_norm: 0.0,
    loss_clamp: 5000.0,
    log_z_min: Some(0.0),
};

/// The teacher's own learning rate on the sequence tasks (docs/discovery.md "Teacher").
pub const SEQ_TEACHER_LR: f64 = 5e-4;

/// The exponent of R in the teacher's target on the sequence tasks
/// (docs/discovery.md "Teacher").
pub const SEQ_TEACHER_ALPHA: f64 = 0.5;

/// The defaults of the components on `task`: the reference's optimiser and
/// teacher, the task table's eps and width.
pub(crate) fn defaults(task: Task) -> ComponentDefaults {
    ComponentDefaults {
        objective: SEQ_OBJECTIVE,
        teacher_lr: Some(SEQ_TEACHER_LR),
        teacher_alpha: SEQ_TEACHER_ALPHA,
        epsilon: task.spec().epsilon,
        hidden: Some(task.spec().hidden),
    }
}

/// A sequence-task run.
#[derive(Debug, Clone)]
pub struct SequencePlan {
    /// The task (its row of the task table).
    pub task: Task,
    /// Reward exponent.
    pub beta: f64,
    /// How strings are built.
    pub mdp: SeqMdpKind,
    /// Width of the SSR network.
    pub hidden: usize,
    /// Whether the network has a state-flow head log F(s) (DB, SubTB).
    pub flow_head: bool,
    /// Replay of the recent discoveries.
    pub buffer: Option<RecentPlan>,
    /// Back-and-forth local search.
    pub local_search: Option<BackAndForth>,
}

/// The `recent` buffer, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecentPlan {
    /// Capacity.
    pub size: usize,
    /// Selection of the offline batch (`uniform`, `reward`, `teacher_reward`).
    pub priority: Priority,
    /// States per offline batch.
    pub batch: usize,
    /// No offline batch below this many entries.
    pub min_size: usize,
}

/// Check a sequence task's composition and fill its defaults into `resolved`.
pub(crate) fn resolve(
    exp: &Experiment,
    task: Task,
    env: &SeqEnvConfig,
    resolved: &mut Experiment,
) -> Result<(FamilyPlan, FamilyDefaults), Invalid> {
    let err = |k: &str, m: &str| Err(Invalid::new(k, m));
    let PolicyConfig::Ssr(net) = &exp.policy else {
        return err(
            "policy.kind",
            "sequence tasks use the `ssr` policy (encoder + pair scorer)",
        );
    };
    // Decision: GAFN exists for the grid only so far; say so rather than
    // train something else.
    if let BehaviourConfig::Gafn(_) = exp.behaviour {
        return err(
            "behaviour.kind",
            "sequence tasks support `on_policy` and `teacher` (gafn is implemented for the grid only)",
        );
    }
    let spec = task.spec();
    let batch_size = exp.train.batch_size.unwrap_or(SEQ_BATCH);
    let buffer =
        match &exp.buffer {
            None => None,
            Some(BufferConfig::Recent(b)) => Some(RecentPlan {
                size: b.size,
                priority: b.priority()?,
                batch: b.batch.unwrap_or(batch_size),
                min_size: b.min_size,
            }),
            Some(_) => return err(
                "buffer.kind",
                "sequence tasks replay with `kind = \"recent\"` (the last distinct discoveries)",
            ),
        };
    let local_search = match back_and_forth(exp)? {
        Some(l) => Some(l.sequence(spec.ls_k, spec.length)?),
        None => None,
    };
    let schedule = explicit_schedule(exp).unwrap_or_else(|| {
        discovery_schedule(
            matches!(exp.behaviour, BehaviourConfig::Teacher(_)),
            buffer.is_some(),
            local_search.is_some(),
        )
    });
    let steps = exp
        .train
        .steps
        .unwrap_or(scaled_steps(exp, spec.rounds as f64));
    let eval = EvalPlan {
        every: exp.eval.every.unwrap_or(spec.eval_every),
        samples: exp.eval.samples.unwrap_or(SEQ_EVAL_SAMPLES),
        batch_size: exp.eval.batch_size.unwrap_or(SEQ_EVAL_CHUNK),
    };
    let plan = SequencePlan {
        task,
        beta: env.beta.unwrap_or(spec.beta),
        mdp: env.mdp,
        hidden: net.hidden.unwrap_or(spec.hidden),
        flow_head: objective_kind(exp).needs_flow(),
        buffer,
        local_search,
    };
    record(resolved, steps, batch_size, &plan, &eval);
    let defaults = FamilyDefaults {
        steps,
        batch_size,
        schedule,
        eval,
        short_buffer: ShortBuffer::Skip,
        loss_scale: 1.0,
        clip_scope: ClipScope::All,
        reward_form: RewardForm::LogSpace,
    };
    Ok((FamilyPlan::Sequence(plan), defaults))
}

/// Write the resolved defaults into the experiment recorded as `config.toml`.
fn record(
    resolved: &mut Experiment,
    steps: u64,
    batch_size: usize,
    plan: &SequencePlan,
    eval: &EvalPlan,
) {
    resolved.train.steps = Some(steps);
    resolved.train.batch_size = Some(batch_size);
    resolved.eval.samples = Some(eval.samples);
    resolved.eval.batch_size = Some(eval.batch_size);
    resolved.eval.every = Some(eval.every);
    resolved.env.record_beta(plan.beta);
    if let (Some(BufferConfig::Recent(b)), Some(r)) = (&mut resolved.buffer, &plan.buffer) {
        b.batch = Some(r.batch);
        // The older spelling (`selection = "prt"`) is recorded as `priority`.
        b.priority = Some(r.priority);
        b.selection = None;
    }
    if let (Some(LocalSearchConfig::BackAndForth(l)), Some(ls)) =
        (&mut resolved.local_search, &plan.local_search)
    {
        l.iterations = Some(ls.iterations);
        if let crate::search::Destroy::Steps(k) = ls.destroy {
            l.k = Some(k);
        }
    }
}
