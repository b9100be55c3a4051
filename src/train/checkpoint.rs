//! Checkpoints: everything a run needs to continue exactly where it
//! stopped, in one safetensors file per checkpoint.
//!
//! `<run dir>/checkpoints/step-NNNNNNNNNN.safetensors` (the steps done, ten
//! digits so that names sort by step) holds:
//! - per sampler (`student`, `teacher`), per optimiser (`opt`, and `aux0`...
//!   for GAFN's predictor), per group `g` and variable `i`:
//!   `{sampler}.{opt}.g{g}.{i}.w` (the weights, log Z included), `.m` and
//!   `.v` (Adam's moments), f32 in the variable's shape;
//! - `state`: a u8 tensor, the bincode encoding of [`LoopState`]: the steps
//!   done, the resolved config's identity, the metrics rows so far, the
//!   loop's tallies (losses of every trained batch), Adam's step counts, and
//!   the family's own state (its RNG streams, replay buffer, discoveries and
//!   counters; see [`Checkpointed::save_state`]).
//!
//! The file's metadata repeats the format, the step and the config identity
//! for a reader (`safetensors` tools show it). A checkpoint is written
//! atomically (a temporary file, then a rename): a crash leaves the previous
//! ones intact; the oldest beyond `train.keep_checkpoints` are removed after
//! each write.
//!
//! What a run rebuilds from its plan and seed alone (the target, the
//! evaluation's exact samples, GAFN's fixed random network) is not stored:
//! the resumed run builds it again, then overwrites everything that training
//! changes, so its later steps draw exactly the numbers the uninterrupted
//! run would have drawn.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::RunError;
use crate::config::Experiment;

/// The checkpoint-state seam: what a family changes while training, saved
/// with every checkpoint and restored on resume.
pub trait Checkpointed {
    /// The family's training state for a checkpoint, encoded ([`encode`]):
    /// everything sampling, replay, bookkeeping and evaluation change (RNG
    /// streams, the replay buffer, discoveries, counters). What the family
    /// builds from its plan alone is left out; networks are the samplers'.
    fn save_state(&self) -> Result<Vec<u8>, RunError>;

    /// Restore what [`Checkpointed::save_state`] wrote, over a family just
    /// built from the same plan.
    fn load_state(&mut self, state: &[u8]) -> Result<(), RunError>;
}

/// The run directory's subdirectory of checkpoints.
pub const DIR: &str = "checkpoints";

/// The version of [`LoopState`]'s layout; a checkpoint of another version
/// is not resumed (the run starts again).
pub const FORMAT: u32 = 1;

/// The name of the tensor holding the encoded [`LoopState`].
const STATE_TENSOR: &str = "state";

/// The training loop's state at a checkpoint (the tensors aside).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoopState {
    /// [`FORMAT`] of the writer.
    pub format: u32,
    /// Training steps done.
    pub step: u64,
    /// [`config_identity`] of the run's resolved config.
    pub config: String,
    /// `metrics.csv` as it was after `step` steps (header and rows).
    pub metrics_csv: String,
    /// Seconds of wall time the run had spent (its `wall_s` goes on from here).
    pub wall_s: f64,
    /// The run's first start, unix seconds (the TensorBoard file's name and
    /// time origin stay the same across resumes).
    pub started_unix: f64,
    /// The student's loss of every trained batch.
    pub losses: Vec<f32>,
    /// The teacher's loss of every trained batch.
    pub teacher_losses: Vec<f32>,
    /// States over all trained batches.
    pub states: u64,
    /// Reward calls for training.
    pub reward_calls: u64,
    /// Batches trained on.
    pub batches: u64,
    /// The parameter watch's last evaluation (hash, trained batches, step).
    pub watch: Option<(u64, usize, u64)>,
    /// Adam's step count of each of the student's optimisers.
    pub student_steps: Vec<i32>,
    /// The same for the teacher, when there is one.
    pub teacher_steps: Option<Vec<i32>>,
    /// The family's own state ([`Checkpointed::save_state`]).
    pub family: Vec<u8>,
}

/// Encode `value` for a checkpoint (bincode: exact for every f64 and f32,
/// NaN and infinities included).
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, RunError> {
    bincode::serialize(value).map_err(|e| RunError::Checkpoint(format!("cannot encode: {e}")))
}

/// Decode what [`encode`] wrote.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, RunError> {
    bincode::deserialize(bytes)
        .map_err(|e| RunError::Checkpoint(format!("cannot decode the state: {e}")))
}

/// Put a family's saved replay buffer into its place: both present, or
/// both absent (a run without a buffer); otherwise the checkpoint is not
/// this run's.
pub fn restore_buffer<T>(slot: Option<&mut T>, saved: Option<T>) -> Result<(), RunError> {
    match (slot, saved) {
        (Some(b), Some(saved)) => *b = saved,
        (None, None) => {}
        _ => {
            return Err(RunError::Checkpoint(
                "the checkpoint's replay buffer is not this run's".into(),
            ))
        }
    }
    Ok(())
}

/// The identity of a resolved config: the SHA-256 of its TOML with the
/// settings that never change results cleared (checkpoint cadence, progress
/// bar). A checkpoint resumes only a run of the same identity.
pub fn config_identity(resolved: &Experiment) -> String {
    let mut e = resolved.clone();
    e.train.checkpoint_every = None;
    e.train.keep_checkpoints = None;
    e.train.progress = true;
    let text = toml::to_string(&e).expect("an experiment serializes to TOML");
    crate::datasets::sha256_hex(text.as_bytes())
}

/// The file name of the checkpoint after `step` steps.
pub fn file_name(step: u64) -> String {
    format!("step-{step:010}.safetensors")
}

/// The step of a checkpoint file name ([`file_name`]'s form), if it is one.
fn step_of(name: &str) -> Option<u64> {
    name.strip_prefix("step-")?
        .strip_suffix(".safetensors")?
        .parse()
        .ok()
}

/// The checkpoints in `run_dir`, oldest first, with their steps.
pub fn list(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(run_dir.join(DIR)) else {
        return Vec::new();
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let step = step_of(e.file_name().to_str()?)?;
            Some((step, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// The latest checkpoint of `run_dir`, if any.
pub fn latest(run_dir: &Path) -> Option<PathBuf> {
    list(run_dir).pop().map(|(_, p)| p)
}

/// Remove every checkpoint of `run_dir` (a run that starts again).
pub fn remove_all(run_dir: &Path) -> Result<(), RunError> {
    for (_, path) in list(run_dir) {
        std::fs::remove_file(&path).map_err(|cause| RunError::Io { path, cause })?;
    }
    Ok(())
}

/// Write the checkpoint of `state` with `tensors` into `run_dir`
/// atomically, then keep only the `keep` latest. Returns its path.
pub fn write(
    run_dir: &Path,
    tensors: Vec<(String, Tensor)>,
    state: &LoopState,
    keep: usize,
) -> Result<PathBuf, RunError> {
    let encoded = encode(state)?;
    let n = encoded.len();
    let mut all: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_device(&Device::Cpu)?)))
        .collect::<Result<_, RunError>>()?;
    all.push((
        STATE_TENSOR.to_string(),
        Tensor::from_vec(encoded, n, &Device::Cpu)?,
    ));
    let metadata: HashMap<String, String> = [
        ("format", format!("runner-checkpoint-{FORMAT}")),
        ("step", state.step.to_string()),
        ("config_sha256", state.config.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let bytes = safetensors::serialize(all.iter().map(|(k, t)| (k.as_str(), t)), Some(metadata))
        .map_err(|e| RunError::Checkpoint(format!("cannot encode the tensors: {e}")))?;
    let path = run_dir.join(DIR).join(file_name(state.step));
    crate::output::write_atomic(&path, &bytes).map_err(|cause| RunError::Io {
        path: path.clone(),
        cause,
    })?;
    let found = list(run_dir);
    for (_, old) in found.iter().take(found.len().saturating_sub(keep.max(1))) {
        std::fs::remove_file(old).map_err(|cause| RunError::Io {
            path: old.clone(),
            cause,
        })?;
    }
    Ok(path)
}

/// Read the checkpoint at `path`: its tensors (on the CPU; a restore moves
/// each to its variable's device) and its loop state. An error names the
/// file.
pub fn read(path: &Path) -> Result<(HashMap<String, Tensor>, LoopState), RunError> {
    let named = |e: String| RunError::Checkpoint(format!("{}: {e}", path.display()));
    let bytes = std::fs::read(path).map_err(|cause| RunError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let mut tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| named(format!("not a safetensors file: {e}")))?;
    let state = tensors
        .remove(STATE_TENSOR)
        .ok_or_else(|| named("no `state` tensor: not a runner checkpoint".into()))?;
    if state.dtype() != DType::U8 {
        return Err(named("its `state` tensor is not u8".into()));
    }
    let state: Vec<u8> = state.to_vec1()?;
    let state: LoopState = decode(&state).map_err(|e| named(e.to_string()))?;
    Ok((tensors, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(step: u64) -> LoopState {
        LoopState {
            format: FORMAT,
            step,
            config: "abc".into(),
            metrics_csv: "step,loss\n0,1.5\n".into(),
            wall_s: 1.25,
            started_unix: 1.7e9,
            losses: vec![1.0, f32::NAN, f32::INFINITY, -0.0],
            teacher_losses: Vec::new(),
            states: 7,
            reward_calls: 9,
            batches: 3,
            watch: Some((1, 2, 3)),
            student_steps: vec![3],
            teacher_steps: None,
            family: vec![1, 2, 3],
        }
    }

    /// A checkpoint reads back bit for bit (tensors and state, NaN and -0
    /// included), and only the `keep` latest stay.
    #[test]
    fn round_trip_and_pruning() {
        let dir = tempfile::tempdir().unwrap();
        let w = Tensor::new(&[[1.5f32, -2.0], [f32::MIN_POSITIVE, 3.25]], &Device::Cpu).unwrap();
        for step in [10, 20, 30] {
            write(
                dir.path(),
                vec![("student.opt.g0.0.w".into(), w.clone())],
                &state(step),
                2,
            )
            .unwrap();
        }
        let steps: Vec<u64> = list(dir.path()).iter().map(|(s, _)| *s).collect();
        assert_eq!(steps, vec![20, 30]);
        let (tensors, back) = read(&latest(dir.path()).unwrap()).unwrap();
        assert_eq!(back.step, 30);
        assert_eq!(back.metrics_csv, "step,loss\n0,1.5\n");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.losses), bits(&state(0).losses));
        assert_eq!(back.watch, Some((1, 2, 3)));
        let got: Vec<Vec<f32>> = tensors["student.opt.g0.0.w"].to_vec2().unwrap();
        assert_eq!(got, w.to_vec2::<f32>().unwrap());
        assert_eq!(step_of("step-0000000030.safetensors"), Some(30));
        assert_eq!(step_of(".step-1.safetensors.tmp1_2"), None);
    }

    /// A file that is not a checkpoint is an error naming it.
    #[test]
    fn a_foreign_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.safetensors");
        std::fs::write(&p, b"garbage").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.contains("x.safetensors") && e.contains("not a safetensors"),
            "{e}"
        );
    }
}
