//! The diffusion energies' part of the plan: their composition rules and
//! the paper's defaults (docs/diffusion.md "Sampler", "Behaviour policies").

use std::sync::Arc;

use super::{
    explicit_schedule, objective_kind, scaled_steps, EvalPlan, FamilyDefaults, FamilyPlan,
    ShortBuffer,
};
use crate::behaviour::teacher::RewardForm;
use crate::behaviour::{Source, Step};
use crate::buffer::Priority;
use crate::check::Invalid;
use crate::config::Experiment;
use crate::envs::diffusion::sde::Sde;
use crate::envs::diffusion::target::Target;
use crate::envs::diffusion::DiffusionEnvConfig;
use crate::optim::ClipScope;
use crate::policy::diffusion::DiffusionNetConfig;
use crate::registry::{BehaviourConfig, BufferConfig, LocalSearchConfig, PolicyConfig};
use crate::search::MalaConfig;

/// Iterations when unset (the reference's 10,000).
pub const DIFFUSION_STEPS: u64 = 10_000;
/// Trajectories per batch when unset (the reference's 500).
pub const DIFFUSION_BATCH: usize = 500;
/// Buffer capacity when unset (the reference's 50,000).
pub const DIFFUSION_BUFFER: usize = 50_000;
/// Evaluation cadence when unset (the reference's 100 iterations).
pub const DIFFUSION_EVAL_EVERY: u64 = 100;
/// Model and exact samples per evaluation when unset (the reference's 2000).
pub const DIFFUSION_EVAL_SAMPLES: usize = 2000;
/// Samples of the final evaluation when unset (the reference's 10,000).
pub const DIFFUSION_FINAL_SAMPLES: usize = 10_000;
/// Trajectories per network call at evaluation when unset.
pub const DIFFUSION_EVAL_CHUNK: usize = 500;

/// A diffusion-sampler run.
#[derive(Debug, Clone)]
pub struct DiffusionPlan {
    /// The target.
    pub energy: Arc<dyn Target>,
    /// The time grid and noise scale.
    pub sde: Sde,
    /// The policy network and its exploration.
    pub net: DiffusionNetConfig,
    /// Whether the network has a time-conditioned state-flow head log F(x, t) (DB, SubTB).
    pub flow_head: bool,
    /// The replay buffer.
    pub buffer: Option<BufferPlan>,
    /// MALA local search.
    pub local_search: Option<MalaConfig>,
    /// Samples of the final evaluation (0: the usual number).
    pub final_samples: usize,
    /// Write sample pictures at each evaluation.
    pub plot: bool,
}

/// The buffer of terminal states, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BufferPlan {
    /// Capacity (FIFO beyond it).
    pub size: usize,
    /// Ranking of the entries: `uniform`, `reward` (log R) or
    /// `teacher_reward` (r_T, PER).
    pub priority: Priority,
    /// States per replayed batch.
    pub batch: usize,
}

/// Check a diffusion energy's composition and fill its defaults into `resolved`.
pub(crate) fn resolve(
    exp: &Experiment,
    energy: Arc<dyn Target>,
    env: &DiffusionEnvConfig,
    resolved: &mut Experiment,
) -> Result<(FamilyPlan, FamilyDefaults), Invalid> {
    let err = |k: &str, m: &str| Err(Invalid::new(k, m));
    let PolicyConfig::Diffusion(net) = &exp.policy else {
        return err(
            "policy.kind",
            "the diffusion energies use the `diffusion` policy",
        );
    };
    if net.langevin && !energy.has_gradient() {
        return Err(Invalid::new(
            "policy.langevin",
            format!(
                "the Langevin policy needs the gradient of log R, and the target `{}` has none: set `langevin = false`",
                energy.name()
            ),
        ));
    }
    let (teacher, epsilon) = match &exp.behaviour {
        BehaviourConfig::OnPolicy(b) => (false, b.epsilon()),
        BehaviourConfig::Teacher(t) => (true, t.epsilon()),
        BehaviourConfig::Gafn(_) => {
            return err(
                "behaviour.kind",
                "the diffusion energies support `on_policy` and `teacher` (gafn is implemented for the grid only)",
            )
        }
    };
    if epsilon != 0.0 {
        return err(
            "behaviour.epsilon",
            "uniform exploration has no meaning on continuous states; use `policy.exploration`",
        );
    }
    let batch_size = exp.train.batch_size.unwrap_or(DIFFUSION_BATCH);
    let buffer = match &exp.buffer {
        None => None,
        Some(BufferConfig::Terminal(b)) if b.pre_fix_pairing => {
            return err(
                "buffer.pre_fix_pairing",
                "reproduces a bug of the official gridworld code; the diffusion energies never had it",
            )
        }
        Some(BufferConfig::Terminal(b)) if b.priority == Priority::Loss => {
            return err(
                "buffer.priority",
                "allowed on the diffusion energies: `uniform`, `reward` (log R), `teacher_reward` (PER)",
            )
        }
        Some(BufferConfig::Terminal(b)) => Some(BufferPlan {
            size: b.size.unwrap_or(DIFFUSION_BUFFER),
            priority: b.priority,
            batch: batch_size,
        }),
        Some(_) => {
            return err(
                "buffer.kind",
                "the diffusion energies replay terminal states: use `kind = \"terminal\"`",
            )
        }
    };
    if teacher && buffer.is_none() {
        return err(
            "buffer",
            "the diffusion Teacher reaches the student through the buffer: add a `[buffer]` table (`kind = \"terminal\"`)",
        );
    }
    let local_search = match &exp.local_search {
        None => None,
        Some(LocalSearchConfig::Mala(_)) if !energy.has_gradient() => {
            return Err(Invalid::new(
                "local_search.kind",
                format!(
                    "MALA needs the gradient of log R, and the target `{}` has none: remove the `[local_search]` table",
                    energy.name()
                ),
            ))
        }
        Some(LocalSearchConfig::Mala(m)) if buffer.is_some() => Some(m.clone()),
        Some(LocalSearchConfig::Mala(_)) => {
            return err(
                "local_search",
                "MALA refines buffer samples: add a `[buffer]` table",
            )
        }
        Some(_) => return err(
            "local_search.kind",
            "the diffusion energies use `mala` (back_and_forth is for the grid and sequence tasks)",
        ),
    };
    let schedule = explicit_schedule(exp).unwrap_or_else(|| {
        diffusion_schedule(
            teacher,
            buffer.is_some(),
            local_search.as_ref().map(|m| m.every),
        )
    });
    let steps = exp
        .train
        .steps
        .unwrap_or(scaled_steps(exp, DIFFUSION_STEPS as f64));
    let eval = EvalPlan {
        every: exp.eval.every.unwrap_or(DIFFUSION_EVAL_EVERY),
        samples: exp.eval.samples.unwrap_or(DIFFUSION_EVAL_SAMPLES),
        batch_size: exp.eval.batch_size.unwrap_or(DIFFUSION_EVAL_CHUNK),
    };
    let plan = DiffusionPlan {
        sde: Sde {
            steps: env.steps,
            dim: energy.dim(),
            t_scale: env.t_scale,
        },
        energy,
        net: net.clone(),
        flow_head: objective_kind(exp).needs_flow(),
        buffer,
        local_search,
        final_samples: exp.eval.final_samples.unwrap_or(DIFFUSION_FINAL_SAMPLES),
        plot: exp.eval.plot,
    };
    resolved.train.steps = Some(steps);
    resolved.train.batch_size = Some(batch_size);
    resolved.eval.samples = Some(eval.samples);
    resolved.eval.batch_size = Some(eval.batch_size);
    resolved.eval.every = Some(eval.every);
    resolved.eval.final_samples = Some(plan.final_samples);
    if let (Some(BufferConfig::Terminal(b)), Some(p)) = (&mut resolved.buffer, &plan.buffer) {
        b.size = Some(p.size);
    }
    if let BehaviourConfig::Teacher(t) = &mut resolved.behaviour {
        t.clip_scope.get_or_insert(ClipScope::TimeEncoder);
    }
    let defaults = FamilyDefaults {
        steps,
        batch_size,
        schedule,
        eval,
        short_buffer: ShortBuffer::Student,
        reward_form: RewardForm::LogSpace,
        loss_scale: 0.5,
        clip_scope: ClipScope::TimeEncoder,
    };
    Ok((FamilyPlan::Diffusion(plan), defaults))
}

/// The diffusion reference's iteration schedule (docs/diffusion.md
/// "Behaviour policies"):
/// - on-policy: `[student]`;
/// - PER (a buffer, no teacher): even iterations on-policy, odd ones replay;
/// - Teacher: i even on-policy; i % 4 == 1 the teacher's samples fill the
///   buffer, then a replay; i % 4 == 3 a replay;
/// - with local search every `ls_every` iterations, the on-policy batch of
///   every iteration i with i % ls_every == 0 is `student+ls` (the schedule's
///   period grows to the least common multiple).
pub fn diffusion_schedule(teacher: bool, buffer: bool, ls_every: Option<u64>) -> Vec<Step> {
    let base: Vec<Step> = match (teacher, buffer) {
        (true, _) => vec![
            Step::One(Source::Student),
            Step::Many(vec![Source::TeacherFill, Source::Buffer]),
            Step::One(Source::Student),
            Step::One(Source::Buffer),
        ],
        (false, true) => vec![Step::One(Source::Student), Step::One(Source::Buffer)],
        (false, false) => vec![Step::One(Source::Student)],
    };
    let Some(every) = ls_every else {
        return base;
    };
    let every = every as usize;
    let period = lcm(base.len(), every);
    (0..period)
        .map(|i| match &base[i % base.len()] {
            Step::One(Source::Student) if i % every == 0 => Step::One(Source::StudentLs),
            s => s.clone(),
        })
        .collect()
}

fn lcm(a: usize, b: usize) -> usize {
    let gcd = |mut x: usize, mut y: usize| {
        while y != 0 {
            (x, y) = (y, x % y);
        }
        x
    };
    a / gcd(a, b) * b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The teacher schedule S, [T->B, B], S, B; local search every 50
    /// iterations lands on student steps 0, 50 (i % 4 == 2) of a period of 100.
    #[test]
    fn schedules_of_the_reference() {
        assert_eq!(diffusion_schedule(false, false, None).len(), 1);
        let per = diffusion_schedule(false, true, Some(50));
        assert_eq!(per.len(), 50);
        assert_eq!(per[0], Step::One(Source::StudentLs));
        assert_eq!(per[2], Step::One(Source::Student));
        assert_eq!(per[1], Step::One(Source::Buffer));
        let t = diffusion_schedule(true, true, Some(50));
        assert_eq!(t.len(), 100);
        assert_eq!(t[50], Step::One(Source::StudentLs));
        assert_eq!(t[1], Step::Many(vec![Source::TeacherFill, Source::Buffer]));
        let ls: Vec<usize> = (0..100)
            .filter(|&i| t[i] == Step::One(Source::StudentLs))
            .collect();
        assert_eq!(ls, vec![0, 50]);
    }

    /// A target without a gradient of log R: MALA and the Langevin policy
    /// are refused, each naming its key and the target; plain TB resolves.
    #[test]
    fn gradient_uses_are_refused_for_a_target_without_gradient() {
        use crate::envs::diffusion::target::{rows, TargetError};

        #[derive(Debug)]
        struct NoGrad;
        impl Target for NoGrad {
            fn name(&self) -> &str {
                "no_grad"
            }
            fn dim(&self) -> usize {
                2
            }
            fn log_reward_batch(&self, xs: &[f64]) -> Result<Vec<f64>, TargetError> {
                Ok(rows(2, xs, |x| -x[0] * x[0] - x[1] * x[1]))
            }
        }
        let exp = |extra: &str| -> Experiment {
            toml::from_str(&format!(
                "name = \"t\"\n[env]\nkind = \"gmm25\"\n[policy]\nkind = \"diffusion\"\n\
                 [objective]\nkind = \"tb\"\n[behaviour]\nkind = \"on_policy\"\n{extra}"
            ))
            .unwrap()
        };
        let run = |e: &Experiment| {
            let env = DiffusionEnvConfig::default();
            resolve(e, Arc::new(NoGrad), &env, &mut e.clone())
        };
        assert!(run(&exp("")).is_ok());
        let mala = exp("[buffer]\nkind = \"terminal\"\n[local_search]\nkind = \"mala\"");
        let e = run(&mala).err().unwrap();
        assert_eq!(e.key, "local_search.kind", "{e}");
        assert!(e.message.contains("`no_grad` has none"), "{e}");
        let mut lgv = exp("");
        if let PolicyConfig::Diffusion(n) = &mut lgv.policy {
            n.langevin = true;
        }
        let e = run(&lgv).err().unwrap();
        assert_eq!(e.key, "policy.langevin", "{e}");
        assert!(e.message.contains("`no_grad` has none"), "{e}");
    }
}
