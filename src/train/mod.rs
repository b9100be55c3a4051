//! Training: the one loop ([`trainer`]), the sampler that student and teacher
//! share ([`sampler`]), the seam to the environment families ([`family`]),
//! the seams the loop drives beside it — replay ([`replay`]), evaluation
//! ([`evaluate`]), checkpoint state ([`checkpoint`]) — and one adapter per
//! family ([`grid`], [`sequence`], [`diffusion`]). [`run`] picks the
//! adapter from the plan (the only `match` on the family after resolution)
//! and writes the run's results.

pub mod checkpoint;
pub mod diffusion;
pub mod draw;
pub mod evaluate;
pub mod family;
pub mod grid;
pub mod local_search;
pub mod replay;
pub mod sample;
pub mod sampler;
pub mod sequence;
mod trainer;
mod watch;

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;

use crate::config::DeviceKind;
use crate::output::write_atomic;
use crate::plan::{FamilyPlan, Plan};

/// Which sampler's loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The student's.
    Student,
    /// The teacher's.
    Teacher,
}

impl std::fmt::Display for Which {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Which::Student => "student",
            Which::Teacher => "teacher",
        })
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A tensor operation failed.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// Results could not be written.
    #[error("cannot write {path}: {cause}")]
    Io {
        path: PathBuf,
        /// The OS error (in the message, so printed once).
        cause: std::io::Error,
    },
    /// The loss became NaN or infinite.
    #[error("non-finite {which} loss ({value}) at training step {step}; {advice}")]
    NonFiniteLoss {
        which: Which,
        value: f32,
        step: u64,
        /// The likely cause, in the user's keys (`watch::divergence_advice`).
        advice: String,
    },
    /// A parameter of the student network became NaN or infinite.
    #[error("a parameter of the student network is not finite at step {step}; try a smaller learning rate ({lr_keys})")]
    NonFiniteParameters {
        step: u64,
        /// The objective's learning-rate keys.
        lr_keys: &'static str,
    },
    /// The student network's parameters did not change between two
    /// evaluations although batches were trained on.
    #[error(
        "the student network stopped changing: its parameters at step {step} are bit for bit \
         those of step {since}, after {batches} trained batches, so its evaluations are frozen; \
         a learning rate far too large saturates the network (every gradient becomes zero) and \
         one far too small moves no weight: check {lr_keys} (and `objective.lr_gamma` with \
         `objective.lr_milestones`)"
    )]
    Frozen {
        since: u64,
        step: u64,
        batches: usize,
        /// The objective's learning-rate keys.
        lr_keys: &'static str,
    },
    /// A dataset of a sequence task is missing or malformed.
    #[error(transparent)]
    Data(#[from] crate::datasets::DataError),
    /// A diffusion target's log reward (or its gradient) could not be evaluated.
    #[error(transparent)]
    Target(#[from] crate::envs::diffusion::target::TargetError),
    /// A picture could not be written.
    #[error(transparent)]
    Plot(#[from] crate::output::plot::PlotError),
    /// CUDA was asked for in a build without it.
    #[error("device = \"cuda\" needs a runner built with the `cuda` feature: cargo build --release --features cuda")]
    NoCuda,
    /// A CUDA build found no GPU it can use (no driver, no device, or the
    /// link-time stub driver on the library path).
    #[error("device = \"cuda\": no usable CUDA GPU ({cause}); check the driver with nvidia-smi, or use device = \"cpu\"")]
    CudaUnavailable { cause: String },
    /// Ctrl-C or SIGTERM arrived; the run stopped before step `step` and is
    /// left incomplete.
    #[error("interrupted before step {step} (the run is left incomplete; rerun to resume)")]
    Interrupted { step: u64 },
    /// The run's directory is being written by another runner process.
    #[error("{dir} is in use by another runner ({holder}); wait for it, or remove {dir}/.lock if no runner is running")]
    Locked { dir: PathBuf, holder: String },
    /// The teacher's thread panicked (a bug).
    #[error("the teacher's training step panicked")]
    TeacherPanicked,
    /// A checkpoint could not be read or does not fit the run.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A declared task's reward program failed (crash, timeout, bad answer).
    #[error(
        "{0}; the last checkpoint is kept: fix the program and run the same command to resume"
    )]
    Program(#[from] crate::envs::program::ProgramError),
    /// The run panicked (a bug in the runner): the panic's message.
    #[error("the run stopped on an internal error (a bug; please report it with the config): {0}")]
    Panicked(String),
}

impl From<crate::envs::sequence::task::SeqError> for RunError {
    fn from(e: crate::envs::sequence::task::SeqError) -> Self {
        use crate::envs::sequence::task::SeqError;
        match e {
            SeqError::Candle(e) => RunError::Candle(e),
            SeqError::Program(e) => RunError::Program(e),
        }
    }
}

/// The candle device for `kind`.
pub fn make_device(kind: DeviceKind) -> Result<Device, RunError> {
    match kind {
        DeviceKind::Cpu => Ok(Device::Cpu),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => Device::new_cuda(0).map_err(|e| RunError::CudaUnavailable {
            cause: cuda_cause(&e.to_string()),
        }),
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda => Err(RunError::NoCuda),
    }
}

/// The first line of a CUDA start-up error (candle appends a backtrace when
/// RUST_BACKTRACE is set), with what its driver code means.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn cuda_cause(error: &str) -> String {
    let first = error.lines().next().unwrap_or("").trim().to_string();
    let meaning = [
        (
            "CUDA_ERROR_STUB_LIBRARY",
            "the link-time stub libcuda.so is on the library path, not a driver",
        ),
        ("CUDA_ERROR_NO_DEVICE", "the driver sees no GPU"),
        (
            "CUDA_ERROR_INSUFFICIENT_DRIVER",
            "the driver is older than the CUDA this runner was built with",
        ),
        (
            "CUDA_ERROR_INVALID_DEVICE",
            "GPU 0 does not exist (CUDA_VISIBLE_DEVICES?)",
        ),
    ]
    .iter()
    .find(|(code, _)| first.contains(code));
    match meaning {
        Some((_, m)) => format!("{m}: {first}"),
        None => first,
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Directory of the run's results.
    pub dir: PathBuf,
    /// Training steps done.
    pub steps: u64,
    /// The run's headline result in words, e.g. `goals found 13` or `modes found 42`.
    pub headline: String,
    /// Wall time of the whole run, seconds.
    pub wall_s: f64,
    /// Mean number of states per trained batch (the cost driver).
    pub mean_batch_states: f64,
}

/// Options of one run that are not part of the experiment.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Directory of the run's results.
    pub dir: PathBuf,
    /// Skip evaluations and outputs (benchmarking): only train.
    pub train_only: bool,
    /// Overlap the student's update and the teacher's step on two threads
    /// (off when several runs already share the cores).
    pub parallel_teacher: bool,
    /// Allow the run's own progress bar (a sweep shows one bar for all runs instead).
    pub progress: bool,
    /// Root of the datasets the sequence tasks read (`--datasets`,
    /// `RUNNER_DATASETS` or `datasets/`; see `datasets::resolve_root`).
    pub datasets: PathBuf,
}

/// Train `plan` and write its results (`config.toml`, `metrics.csv`, plots).
///
/// Ctrl-C and SIGTERM ask the run to stop after its current step (a
/// [`crate::interrupt::Graceful`] section). A panic inside the run (a bug)
/// becomes [`RunError::Panicked`], so that a sweep records the run as
/// failed and goes on with the others.
pub fn run(plan: &Plan, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let _graceful = crate::interrupt::Graceful::enter();
    catch_panics(|| run_inner(plan, opts))
}

/// `f`'s result, or [`RunError::Panicked`] with the message of its panic.
fn catch_panics<T>(f: impl FnOnce() -> Result<T, RunError>) -> Result<T, RunError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(RunError::Panicked(panic_message(payload.as_ref()))))
}

/// The message of a panic's payload (a `&str` or a `String`; anything else
/// is unnamed).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

fn run_inner(plan: &Plan, opts: &RunOptions) -> Result<RunSummary, RunError> {
    let start = Instant::now();
    let device = make_device(plan.device)?;
    if !opts.train_only {
        let path = opts.dir.join("config.toml");
        let text = toml::to_string(&plan.resolved).expect("an experiment serializes to TOML");
        write_atomic(&path, text.as_bytes()).map_err(|source| RunError::Io {
            path,
            cause: source,
        })?;
    }
    match &plan.family {
        FamilyPlan::Grid(g) => {
            let family = grid::GridFamily::new(plan, g, opts, &device)?;
            let gafn = family.gafn(plan, g)?;
            let objective = gafn.as_ref().map(|g| g as _);
            trainer::train(plan, family, objective, opts, &device, start)
        }
        FamilyPlan::Sequence(s) => {
            let family = sequence::SequenceFamily::new(plan, s, opts, &device)?;
            trainer::train(plan, family, None, opts, &device, start)
        }
        FamilyPlan::Diffusion(d) => {
            let family = diffusion::DiffusionFamily::new(plan, d, opts, &device)?;
            trainer::train(plan, family, None, opts, &device, start)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cause keeps candle's first line (the driver's code), drops the
    /// backtrace, and says what the code means.
    #[test]
    fn cuda_cause_is_one_line_with_its_meaning() {
        let e =
            "DriverError(CUDA_ERROR_STUB_LIBRARY, \"x\")\n   0: candle_core::error::Error::bt\n";
        assert_eq!(
            cuda_cause(e),
            "the link-time stub libcuda.so is on the library path, not a driver: \
             DriverError(CUDA_ERROR_STUB_LIBRARY, \"x\")"
        );
        assert_eq!(cuda_cause("something else\nbt"), "something else");
    }

    /// A panic inside a run becomes its error, with the panic's message
    /// (a `&str` or a formatted `String`), so that the run is recorded as
    /// failed rather than ending its thread without a status.
    #[test]
    fn a_panic_is_a_run_error() {
        let e = catch_panics::<()>(|| panic!("assign: cost {} is not finite", 1)).unwrap_err();
        assert!(
            matches!(&e, RunError::Panicked(m) if m == "assign: cost 1 is not finite"),
            "{e}"
        );
        assert!(e.to_string().contains("internal error"), "{e}");
        let e = catch_panics::<()>(|| std::panic::panic_any(7u8)).unwrap_err();
        assert!(e.to_string().contains("a panic without a message"), "{e}");
        assert_eq!(catch_panics(|| Ok(3)).unwrap(), 3);
    }

    /// A CPU build refuses CUDA with the way to build it.
    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cpu_build_refuses_cuda() {
        let e = make_device(DeviceKind::Cuda).unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
    }
}
