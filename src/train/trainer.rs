//! The one training loop, written once for every family (see [`Family`]).
//!
//! Step i runs the batches of `schedule[i % len]` in order. Each batch comes
//! from its source: fresh samples of the student or the teacher (refined by
//! local search for `+ls` sources), or a replay from the buffer (when the
//! buffer cannot give one, the plan's `short_buffer` rule applies). On a
//! batch the student takes one step of its objective; with a teacher, the
//! teacher then takes one on the same batch towards the teacher reward of the
//! student's residuals (on a second thread when `parallel_teacher`); the
//! batch then enters (fresh) or updates (replayed) the buffer. `->buffer`
//! sources only fill the buffer. With `lr_milestones`, every learning rate
//! is multiplied by `gamma` from each milestone iteration on. Evaluations run at step 0, every
//! `eval.every` steps and after the last, each appending a row to
//! `metrics.csv`.

use std::time::Instant;

use candle_core::{Device, Tensor};

use super::family::{Counters, Family};
use super::sampler::Sampler;
use super::watch::{divergence_advice, ParamWatch};
use super::{RunError, RunOptions, RunSummary, Which};
use crate::behaviour::teacher::signals;
use crate::behaviour::Source;
use crate::metrics::{tail_mean, Metric, MetricSink};
use crate::objective::Trained;
use crate::output::{progress_bar, CsvSink};
use crate::plan::{Plan, ShortBuffer};
use crate::rng::{self, Stream};

/// Running totals of a run.
#[derive(Default)]
struct Tally {
    /// Student loss of every trained batch.
    losses: Vec<f32>,
    /// Teacher loss of every trained batch.
    teacher_losses: Vec<f32>,
    /// States over all trained batches.
    states: u64,
    /// Reward calls for training.
    reward_calls: u64,
}

/// The loop's state: the plan, the family, the two samplers.
struct Trainer<'a, F: Family> {
    plan: &'a Plan,
    opts: &'a RunOptions,
    family: F,
    student: Sampler<F::Net>,
    teacher: Option<Sampler<F::Net>>,
    tally: Tally,
}

/// Train `family` as `plan` says and write `metrics.csv` into the run directory.
pub(crate) fn train<F: Family>(
    plan: &Plan,
    family: F,
    opts: &RunOptions,
    device: &Device,
    start: Instant,
) -> Result<RunSummary, RunError> {
    let net = family.new_net(&mut rng::stream(plan.seed, Stream::InitStudent))?;
    let student = family
        .student_aux()?
        .into_iter()
        .fold(Sampler::new(net, &plan.student, device)?, Sampler::with_aux);
    let teacher = match &plan.teacher {
        Some(t) => Some(Sampler::new(
            family.new_net(&mut rng::stream(plan.seed, Stream::InitTeacher))?,
            t,
            device,
        )?),
        None => None,
    };
    let mut trainer = Trainer {
        plan,
        opts,
        family,
        student,
        teacher,
        tally: Tally::default(),
    };
    trainer.run(start)
}

impl<F: Family> Trainer<'_, F> {
    fn run(&mut self, start: Instant) -> Result<RunSummary, RunError> {
        let (plan, opts) = (self.plan, self.opts);
        let mut columns = vec!["loss", "teacher_loss", F::LOG_Z_COLUMN];
        columns.extend(F::METRICS);
        columns.push("wall_s");
        let path = opts.dir.join("metrics.csv");
        let mut sink =
            CsvSink::new(path.clone(), F::STEP_COLUMN, &columns).with_decimals("wall_s", 3);
        let mut watch = ParamWatch::default();
        let mut evaluate = |t: &mut Self, step: u64| -> Result<(), RunError> {
            let mut row = vec![
                Metric::new("loss", tail_mean(&t.tally.losses, plan.loss_window)),
                Metric::new(
                    "teacher_loss",
                    tail_mean(&t.tally.teacher_losses, plan.loss_window),
                ),
                Metric::new(F::LOG_Z_COLUMN, t.student.log_z_value()?),
            ];
            let counters = Counters {
                reward_calls: t.tally.reward_calls,
                grad_steps: t.tally.losses.len() as u64,
            };
            let metrics = t.family.evaluate(step, &t.student, &counters)?;
            debug_assert!(
                metrics
                    .iter()
                    .map(|m| m.name)
                    .eq(F::METRICS.iter().copied()),
                "the family's metrics must be its METRICS, in order"
            );
            row.extend(metrics);
            row.push(Metric::new("wall_s", start.elapsed().as_secs_f64()));
            sink.write_row(step, &row).map_err(|source| RunError::Io {
                path: path.clone(),
                cause: source,
            })?;
            watch.check(&t.student.net, t.tally.losses.len(), step, plan)
        };
        if !opts.train_only {
            evaluate(self, 0)?;
        }
        let bar = progress_bar(
            plan.steps,
            plan.progress && opts.progress && !opts.train_only,
            &plan.resolved.name,
        );
        let mut batches = 0u64;
        for i in 0..plan.steps {
            if crate::interrupt::requested() {
                return Err(RunError::Interrupted { step: i });
            }
            if !plan.lr_schedule.milestones.is_empty() {
                let scale = plan.lr_schedule.scale(i);
                self.student.set_lr_scale(scale);
                if let Some(t) = &mut self.teacher {
                    t.set_lr_scale(scale);
                }
            }
            self.family.start_step(i);
            let step = &plan.schedule[i as usize % plan.schedule.len()];
            for &source in step.sources() {
                batches += u64::from(self.batch(source, i)?);
            }
            bar.inc(1);
            let done = i + 1;
            if !opts.train_only && (done % plan.eval.every == 0 || done == plan.steps) {
                bar.set_message(self.family.progress());
                evaluate(self, done)?;
            }
        }
        bar.finish_and_clear();
        Ok(RunSummary {
            dir: opts.dir.clone(),
            steps: plan.steps,
            headline: self.family.headline(),
            wall_s: start.elapsed().as_secs_f64(),
            mean_batch_states: self.tally.states as f64 / batches.max(1) as f64,
        })
    }

    /// One batch of `source` at step `i`; whether it was trained on.
    fn batch(&mut self, source: Source, i: u64) -> Result<bool, RunError> {
        let mut source = source;
        if source == Source::Buffer {
            match (self.family.replay()?, self.plan.short_buffer) {
                (Some(batch), _) => return self.learn(batch, false, true, i).map(|()| true),
                (None, ShortBuffer::Skip) => return Ok(false),
                (None, ShortBuffer::Student) => source = Source::Student,
            }
        }
        let net = match (&self.teacher, source.teacher()) {
            (Some(t), true) => &t.net,
            _ => &self.student.net,
        };
        let by_teacher = source.teacher() && self.teacher.is_some();
        let fresh = self
            .family
            .sample(net, source.local_search(), by_teacher, &self.student)?;
        self.tally.reward_calls += fresh.reward_calls;
        self.learn(fresh.batch, true, source.trains(), i)?;
        Ok(source.trains())
    }

    /// The student's residuals on `batch` and their teacher signals; with
    /// `train`, the student's step, then the teacher's; then the buffer
    /// (a `->buffer` source only fills it).
    fn learn(&mut self, batch: F::Batch, fresh: bool, train: bool, i: u64) -> Result<(), RunError> {
        let family = &self.family;
        if family.n_states(&batch) == 0 {
            // Nothing survived the family's filter (e.g. no teacher sample
            // above the diffusion threshold): nothing to learn or remember.
            return Ok(());
        }
        let packed = family.pack(&batch)?;
        let plan = self.plan;
        // Whether each sampler took a step before this batch (a loss that
        // overflows before any step is not the learning rate's doing).
        let (student_updated, teacher_updated) = (
            !self.tally.losses.is_empty(),
            !self.tally.teacher_losses.is_empty(),
        );
        let Trained {
            delta,
            loss,
            pieces,
        } = crate::flops::training(|| family.student_loss(&self.student, &packed, &batch))?;
        if train {
            self.tally.states += family.n_states(&batch) as u64;
            self.tally
                .losses
                .push(finite(&loss, Which::Student, i, plan, student_updated)?);
        }
        let delta_host: Vec<f32> = delta.detach().to_vec1()?;
        let mut signals = signals(
            &pieces,
            &delta_host,
            &self.plan.teacher_reward,
            &family.rewards(&batch),
        );
        family.adjust_signals(&batch, &mut signals);
        match (&mut self.teacher, train) {
            (_, false) => {}
            (Some(t), true) => {
                let target = family.teacher_target(&self.plan.teacher_reward, &signals, &batch);
                let teacher_step = |t: &mut Sampler<F::Net>| -> Result<Option<f32>, RunError> {
                    let Some(l) = crate::flops::training(|| {
                        family.teacher_loss(t, &packed, &batch, &target)
                    })?
                    else {
                        return Ok(None);
                    };
                    let v = finite(&l, Which::Teacher, i, plan, teacher_updated)?;
                    t.update(&l)?;
                    Ok(Some(v))
                };
                let student = &mut self.student;
                let tloss = update_both(
                    self.opts.parallel_teacher,
                    || student.update(&loss),
                    || teacher_step(t),
                )?;
                self.tally.teacher_losses.extend(tloss);
            }
            (None, true) => self.student.update(&loss)?,
        }
        self.family.remember(batch, fresh, &delta_host, &signals);
        Ok(())
    }
}

/// The student's update and the teacher's step (which returns its loss, or
/// `None` when it skipped): independent given the student's residuals, so
/// with `parallel` the teacher runs on a second thread while the student
/// updates on this one.
fn update_both(
    parallel: bool,
    student: impl FnOnce() -> Result<(), RunError>,
    teacher: impl FnOnce() -> Result<Option<f32>, RunError> + Send,
) -> Result<Option<f32>, RunError> {
    if parallel {
        std::thread::scope(|scope| {
            let handle = scope.spawn(teacher);
            student()?;
            handle.join().unwrap_or(Err(RunError::TeacherPanicked))
        })
    } else {
        student()?;
        teacher()
    }
}

/// The value of a scalar loss; an error for NaN or infinity, with the
/// likely cause in the user's keys (`updated`: whether the sampler took a
/// step before).
fn finite(
    loss: &Tensor,
    which: Which,
    step: u64,
    plan: &Plan,
    updated: bool,
) -> Result<f32, RunError> {
    let value = loss.to_scalar::<f32>()?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(RunError::NonFiniteLoss {
            which,
            value,
            step,
            advice: divergence_advice(plan, which, updated),
        })
    }
}
