//! The one training loop, written once for every family (see [`Family`]),
//! driving the family's other seams: its replay ([`Replay`]), local search
//! ([`LocalSearch`]), evaluations ([`Evaluator`]) and checkpoint state
//! ([`Checkpointed`]), and the
//! behaviour's hooks ([`crate::behaviour::hooks`]: GAFN's objective, the
//! teacher's target and the family's rules for it, [`Family::teaching`]).
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

use super::checkpoint::{self, Checkpointed};
use super::evaluate::{Counters, Evaluator};
use super::family::{Draw, Family};
use super::local_search::LocalSearch;
use super::replay::Replay;
use super::sampler::Sampler;
use super::watch::{divergence_advice, ParamWatch};
use super::{RunError, RunOptions, RunSummary, Which};
use crate::behaviour::hooks::{teacher_targets, StudentObjective};
use crate::behaviour::teacher::signals;
use crate::behaviour::Source;
use crate::metrics::{tail_mean, Metric, MetricSink};
use crate::objective::Trained;
use crate::output::tensorboard::{self, TensorBoardSink};
use crate::output::{CsvSink, Progress};
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

/// A family as the loop drives it: its core seam and the seams beside it.
pub(crate) trait Trainable:
    Family + Replay + LocalSearch + Evaluator + Checkpointed
{
}

impl<F: Family + Replay + LocalSearch + Evaluator + Checkpointed> Trainable for F {}

/// A behaviour's objective for the student on family `F`'s types.
pub(crate) type Objective<'a, F> =
    &'a dyn StudentObjective<<F as Family>::Net, <F as Family>::Batch, <F as Family>::Packed>;

/// The loop's state: the plan, the family, the two samplers.
struct Trainer<'a, F: Trainable> {
    plan: &'a Plan,
    opts: &'a RunOptions,
    family: F,
    /// The behaviour's objective for the student (GAFN's), else the plan's.
    objective: Option<Objective<'a, F>>,
    student: Sampler<F::Net>,
    teacher: Option<Sampler<F::Net>>,
    tally: Tally,
    /// Batches trained on.
    batches: u64,
    /// The student's parameters at the last evaluation.
    watch: ParamWatch,
    /// [`checkpoint::config_identity`] of the plan.
    identity: String,
}

/// Train `family` as `plan` says and write `metrics.csv` into the run
/// directory, resuming from the run's latest checkpoint when it has one of
/// the same config (see [`checkpoint`]). With `objective` the student
/// trains on the behaviour's objective (GAFN's) rather than the plan's.
pub(crate) fn train<'a, F: Trainable>(
    plan: &'a Plan,
    family: F,
    objective: Option<Objective<'a, F>>,
    opts: &'a RunOptions,
    device: &Device,
    start: Instant,
) -> Result<RunSummary, RunError> {
    let net = family.new_net(&mut rng::stream(plan.seed, Stream::InitStudent))?;
    let aux = match objective {
        Some(o) => o.aux_optimisers()?,
        None => Vec::new(),
    };
    let student = aux
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
        objective,
        student,
        teacher,
        tally: Tally::default(),
        batches: 0,
        watch: ParamWatch::default(),
        identity: checkpoint::config_identity(&plan.resolved),
    };
    let resumed = match opts.train_only {
        true => None,
        false => trainer.resume()?,
    };
    trainer.run(start, resumed)
}

/// Where the metrics rows go: `metrics.csv`, and TensorBoard's event file
/// in the run directory (one TensorBoard run per run directory).
struct Sinks {
    csv: CsvSink,
    /// `None` when only training (the benchmark).
    tensorboard: Option<TensorBoardSink>,
    /// The run's first start, unix seconds.
    started_unix: f64,
}

impl Sinks {
    /// The sinks of a run starting now.
    fn new(csv: CsvSink, dir: &std::path::Path, tensorboard: bool) -> Self {
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let tensorboard = tensorboard.then(|| TensorBoardSink::new(dir, started_unix));
        if let Some(tb) = &tensorboard {
            remove_other_event_files(dir, tb.path());
        }
        Self {
            csv,
            tensorboard,
            started_unix,
        }
    }

    /// The sinks of a run resumed at `step`: `metrics.csv` as the checkpoint
    /// holds it, the event file's rows up to `step` (the later ones are
    /// computed again; an unreadable event file starts empty).
    fn resume(
        mut csv: CsvSink,
        dir: &std::path::Path,
        started_unix: f64,
        step: u64,
        metrics_csv: &str,
    ) -> Result<Self, RunError> {
        csv.restore(metrics_csv).map_err(|cause| RunError::Io {
            path: csv.path().to_path_buf(),
            cause,
        })?;
        let tb = TensorBoardSink::new(dir, started_unix);
        remove_other_event_files(dir, tb.path());
        let mut rows = std::fs::read(tb.path())
            .ok()
            .and_then(|bytes| tensorboard::decode(&bytes).ok())
            .map(|(_, rows)| rows)
            .unwrap_or_default();
        rows.retain(|r| r.step <= step);
        let tb = tb.with_rows(rows);
        tb.rewrite().map_err(|cause| RunError::Io {
            path: tb.path().to_path_buf(),
            cause,
        })?;
        Ok(Self {
            csv,
            tensorboard: Some(tb),
            started_unix,
        })
    }

    /// Append `row` of `step` to every sink.
    fn write_row(&mut self, step: u64, row: &[Metric]) -> Result<(), RunError> {
        self.csv
            .write_row(step, row)
            .map_err(|cause| RunError::Io {
                path: self.csv.path().to_path_buf(),
                cause,
            })?;
        if let Some(tb) = &mut self.tensorboard {
            tb.write_row(step, row).map_err(|cause| RunError::Io {
                path: tb.path().to_path_buf(),
                cause,
            })?;
        }
        Ok(())
    }
}

/// Remove the TensorBoard event files of `dir` other than `keep`: those of
/// an earlier start of the run (a run started again after a config change),
/// which TensorBoard would otherwise merge into this run's curves. Errors
/// are ignored (a stale file is only clutter).
fn remove_other_event_files(dir: &std::path::Path, keep: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let is_events = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("events.out.tfevents."));
        if is_events && path != keep {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Where a resumed run goes on from.
struct Resumed {
    /// Steps done.
    step: u64,
    /// `metrics.csv` at that step.
    metrics_csv: String,
    /// Wall seconds spent before.
    wall_s: f64,
    /// The run's first start, unix seconds.
    started_unix: f64,
}

impl<F: Trainable> Trainer<'_, F> {
    /// Restore the latest checkpoint of the run directory. One written for
    /// another config (or format) is not resumed: every checkpoint of the
    /// directory is removed and the run starts again, as is done without one.
    fn resume(&mut self) -> Result<Option<Resumed>, RunError> {
        let dir = &self.opts.dir;
        let Some(path) = checkpoint::latest(dir) else {
            return Ok(None);
        };
        let (tensors, state) = checkpoint::read(&path).map_err(|e| {
            RunError::Checkpoint(format!(
                "{e}; remove {} to start the run again",
                dir.join(checkpoint::DIR).display()
            ))
        })?;
        if state.format != checkpoint::FORMAT || state.config != self.identity {
            checkpoint::remove_all(dir)?;
            return Ok(None);
        }
        self.student
            .restore("student", &tensors, &state.student_steps)?;
        match (&mut self.teacher, &state.teacher_steps) {
            (Some(t), Some(steps)) => t.restore("teacher", &tensors, steps)?,
            (None, None) => {}
            _ => {
                return Err(RunError::Checkpoint(format!(
                    "{}: the teacher does not match the run's",
                    path.display()
                )))
            }
        }
        self.family.load_state(&state.family)?;
        self.tally = Tally {
            losses: state.losses,
            teacher_losses: state.teacher_losses,
            states: state.states,
            reward_calls: state.reward_calls,
        };
        self.batches = state.batches;
        self.watch = ParamWatch::from_state(state.watch);
        crate::console::errln(format_args!(
            "{}: resuming from step {} of {} ({})",
            dir.display(),
            state.step,
            self.plan.steps,
            path.display()
        ));
        Ok(Some(Resumed {
            step: state.step,
            metrics_csv: state.metrics_csv,
            wall_s: state.wall_s,
            started_unix: state.started_unix,
        }))
    }

    /// Write the checkpoint after `step` steps, with the metrics so far.
    fn checkpoint(&self, step: u64, sinks: &Sinks, wall_s: f64) -> Result<(), RunError> {
        let (mut tensors, student_steps) = self.student.state("student");
        let teacher_steps = self.teacher.as_ref().map(|t| {
            let (more, steps) = t.state("teacher");
            tensors.extend(more);
            steps
        });
        let state = checkpoint::LoopState {
            format: checkpoint::FORMAT,
            step,
            config: self.identity.clone(),
            metrics_csv: sinks.csv.text().to_string(),
            wall_s,
            started_unix: sinks.started_unix,
            losses: self.tally.losses.clone(),
            teacher_losses: self.tally.teacher_losses.clone(),
            states: self.tally.states,
            reward_calls: self.tally.reward_calls,
            batches: self.batches,
            watch: self.watch.state(),
            student_steps,
            teacher_steps,
            family: self.family.save_state()?,
        };
        checkpoint::write(&self.opts.dir, tensors, &state, self.plan.keep_checkpoints)?;
        Ok(())
    }

    /// Evaluate after `step` steps and append the row to the sinks.
    fn evaluate(&mut self, step: u64, sinks: &mut Sinks, wall_s: f64) -> Result<(), RunError> {
        let plan = self.plan;
        let mut row = vec![
            Metric::new("loss", tail_mean(&self.tally.losses, plan.loss_window)),
            Metric::new(
                "teacher_loss",
                tail_mean(&self.tally.teacher_losses, plan.loss_window),
            ),
            Metric::new(F::LOG_Z_COLUMN, self.student.log_z_value()?),
        ];
        let counters = Counters {
            reward_calls: self.tally.reward_calls,
            grad_steps: self.tally.losses.len() as u64,
        };
        let metrics = self.family.evaluate(step, &self.student, &counters)?;
        debug_assert!(
            metrics
                .iter()
                .map(|m| m.name)
                .eq(F::METRICS.iter().copied()),
            "the family's metrics must be its METRICS, in order"
        );
        row.extend(metrics);
        row.push(Metric::new("wall_s", wall_s));
        sinks.write_row(step, &row)?;
        self.watch
            .check(&self.student.net, self.tally.losses.len(), step, plan)
    }

    fn run(&mut self, start: Instant, resumed: Option<Resumed>) -> Result<RunSummary, RunError> {
        let (plan, opts) = (self.plan, self.opts);
        let mut columns = vec!["loss", "teacher_loss", F::LOG_Z_COLUMN];
        columns.extend(F::METRICS);
        columns.push("wall_s");
        let path = opts.dir.join("metrics.csv");
        let csv = CsvSink::new(path.clone(), F::STEP_COLUMN, &columns).with_decimals("wall_s", 3);
        let (first, wall_before, mut sinks) = match resumed {
            Some(r) => (
                r.step,
                r.wall_s,
                Sinks::resume(csv, &opts.dir, r.started_unix, r.step, &r.metrics_csv)?,
            ),
            None => (0, 0.0, Sinks::new(csv, &opts.dir, !opts.train_only)),
        };
        // A resumed run's wall time goes on from the checkpoint's.
        let wall = || wall_before + start.elapsed().as_secs_f64();
        if !opts.train_only && first == 0 {
            self.evaluate(0, &mut sinks, wall())
                .map_err(|e| interrupted_at(e, 0))?;
        }
        let mut bar = Progress::new(
            plan.steps,
            plan.progress && opts.progress && !opts.train_only,
            &plan.resolved.name,
            plan.family.unit(),
        );
        bar.set_position(first);
        let mut saved = first;
        for i in first..plan.steps {
            if crate::interrupt::requested() {
                // Ctrl-C, SIGTERM (a SLURM time limit): keep what was done.
                if !opts.train_only && i > saved {
                    self.checkpoint(i, &sinks, wall())?;
                }
                return Err(RunError::Interrupted { step: i });
            }
            if !plan.lr_schedule.milestones.is_empty() {
                let scale = plan.lr_schedule.scale(i);
                self.student.set_lr_scale(scale);
                if let Some(t) = &mut self.teacher {
                    t.set_lr_scale(scale);
                }
            }
            let step = &plan.schedule[i as usize % plan.schedule.len()];
            for &source in step.sources() {
                let trained = self.batch(source, i).map_err(|e| interrupted_at(e, i))?;
                self.batches += u64::from(trained);
            }
            bar.inc(1);
            let done = i + 1;
            if opts.train_only {
                continue;
            }
            if done % plan.eval.every == 0 || done == plan.steps {
                self.evaluate(done, &mut sinks, wall())
                    .map_err(|e| interrupted_at(e, done))?;
                bar.event(self.family.progress());
            }
            let every = plan.checkpoint_every;
            if done == plan.steps || (every > 0 && done % every == 0) {
                self.checkpoint(done, &sinks, wall())?;
                saved = done;
            }
        }
        bar.finish();
        Ok(RunSummary {
            dir: opts.dir.clone(),
            steps: plan.steps,
            headline: self.family.headline(),
            wall_s: wall(),
            mean_batch_states: self.tally.states as f64 / self.batches.max(1) as f64,
        })
    }

    /// One batch of `source` at step `i`; whether it was trained on.
    fn batch(&mut self, source: Source, i: u64) -> Result<bool, RunError> {
        let mut source = source;
        if source == Source::Buffer {
            match (self.family.replay()?, self.plan.short_buffer) {
                (Some(batch), _) => return self.learn(batch, false, true, i).map(|_| true),
                (None, ShortBuffer::Skip) => return Ok(false),
                (None, ShortBuffer::Student) => source = Source::Student,
            }
        }
        let net = match (&self.teacher, source.teacher()) {
            (Some(t), true) => &t.net,
            _ => &self.student.net,
        };
        let local_search = source.local_search();
        let draw = Draw {
            step: i,
            size: match local_search {
                true => self.family.search_start(self.plan.batch_size),
                false => self.plan.batch_size,
            },
            local_search,
            by_teacher: source.teacher() && self.teacher.is_some(),
        };
        let mut fresh = self.family.sample(net, draw, &self.student)?;
        if local_search {
            fresh = self.family.refine(net, fresh, draw, &self.student)?;
        }
        self.family.observe(&fresh.batch);
        self.tally.reward_calls += fresh.reward_calls;
        let remembered = self.learn(fresh.batch, true, source.trains(), i)?;
        if local_search && remembered {
            self.family.search_buffer()?;
        }
        Ok(source.trains())
    }

    /// The student's residuals on `batch` (its objective's, or the
    /// behaviour's) and their teacher signals, gated as the family says;
    /// with `train`, the student's step, then the teacher's on the family's
    /// tensors for it; then the buffer (a `->buffer` source only fills it).
    /// Whether the batch was remembered (an empty one is not).
    fn learn(
        &mut self,
        batch: F::Batch,
        fresh: bool,
        train: bool,
        i: u64,
    ) -> Result<bool, RunError> {
        let family = &self.family;
        if family.n_states(&batch) == 0 {
            // Nothing survived the family's filter (e.g. no teacher sample
            // above the diffusion threshold): nothing to learn or remember.
            return Ok(false);
        }
        let packed = family.pack(&batch)?;
        let log_r = family.log_rewards(&batch);
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
        } = crate::flops::training(|| {
            let student = &self.student;
            match (self.objective, student.log_z()) {
                (Some(o), Some(z)) => {
                    Ok(o.loss(&student.net, z, student.loss_clamp, &packed, &batch)?)
                }
                _ => student.train_loss(&family.balance(&student.net, &packed)?, &log_r),
            }
        })?;
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
        let teaching = family.teaching(&batch, &packed);
        if let Some(gate) = teaching.gate {
            gate.apply(&mut signals, &log_r);
        }
        match (&mut self.teacher, train) {
            (_, false) => {}
            (Some(t), true) => {
                let target = teacher_targets(
                    &self.plan.teacher_reward,
                    &signals,
                    &log_r,
                    teaching.entries,
                );
                let teacher_step = |t: &mut Sampler<F::Net>| -> Result<Option<f32>, RunError> {
                    // The teacher's objective on the family's tensors for it
                    // (no step where the family gives none).
                    let Some(tp) = teaching.packed else {
                        return Ok(None);
                    };
                    let l = crate::flops::training(|| {
                        Ok::<_, RunError>(t.train_loss(&family.balance(&t.net, tp)?, &target)?.loss)
                    })?;
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
        Ok(true)
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

/// A reward program's wait cut short by Ctrl-C or SIGTERM is an interrupted
/// run (left incomplete, resumed from its last checkpoint), not a failed one.
fn interrupted_at(e: RunError, step: u64) -> RunError {
    match e {
        RunError::Program(p) if p.interrupted => RunError::Interrupted { step },
        e => e,
    }
}
