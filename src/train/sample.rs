//! `runner sample`: draw samples from the trained student of a run
//! directory, from its latest checkpoint.
//!
//! The run's `config.toml` rebuilds the family and the student's network;
//! the checkpoint's weights replace the initial ones; `n` trajectories are
//! then rolled out without exploration from the [`Stream::Export`] stream of
//! the given seed, in chunks of the run's evaluation batch size. The table's
//! columns are the family's ([`DrawSamples::draw_samples`], `train::draw`).

use std::path::PathBuf;

use candle_core::Device;

use super::checkpoint;
use super::draw::{DrawSamples, SampleTable};
use super::sampler::Sampler;
use super::{make_device, RunError, RunOptions};
use crate::behaviour::hooks::StudentObjective;
use crate::config::ExperimentFile;
use crate::optim::Adam;
use crate::plan::{FamilyPlan, Plan};
use crate::rng::{self, Stream};

/// The most samples one call draws (the table is held in memory).
pub const MAX_SAMPLES: usize = 10_000_000;

/// What `runner sample` asks for.
pub struct SampleRequest {
    /// The run directory (`<out>/<name>/<run id>`).
    pub run_dir: PathBuf,
    /// Number of samples.
    pub n: usize,
    /// Seed of the sampling stream.
    pub seed: u64,
    /// Add each trajectory's log P_F.
    pub log_pf: bool,
    /// Datasets root (sequence tasks).
    pub datasets: PathBuf,
}

/// Draw the samples `req` asks for; the step of the checkpoint used comes
/// with them.
pub fn sample(req: &SampleRequest) -> anyhow::Result<(SampleTable, u64)> {
    let dir = &req.run_dir;
    let config = dir.join("config.toml");
    if !config.is_file() {
        anyhow::bail!(
            "{} is not a run directory (it has no config.toml); give one of `<out>/<name>/<run id>`",
            dir.display()
        );
    }
    let Some(path) = checkpoint::latest(dir) else {
        anyhow::bail!(
            "{} has no checkpoint ({}/step-*.safetensors): the run was trained by a runner \
             without checkpoints or has not finished a step yet; train it again \
             (the same command resumes an interrupted run)",
            dir.display(),
            checkpoint::DIR
        );
    };
    if req.n == 0 || req.n > MAX_SAMPLES {
        anyhow::bail!(
            "-n {}: ask for 1 to {MAX_SAMPLES} samples (call again with other seeds for more)",
            req.n
        );
    }
    let plan = crate::plan::load_file(&ExperimentFile::read(&config)?, &[])?;
    let device = make_device(plan.device)?;
    let (tensors, state) = checkpoint::read(&path)?;
    if state.config != checkpoint::config_identity(&plan.resolved) {
        anyhow::bail!(
            "{}: the checkpoint was written for another config than {}; \
             the directory mixes two runs (rerun it with --force)",
            path.display(),
            config.display()
        );
    }
    let opts = RunOptions {
        dir: dir.clone(),
        train_only: true,
        parallel_teacher: false,
        progress: false,
        datasets: req.datasets.clone(),
    };
    let table = match &plan.family {
        FamilyPlan::Grid(g) => {
            let f = super::grid::GridFamily::new(&plan, g, &opts, &device)?;
            // GAFN's predictor optimiser, whose state the checkpoint holds.
            let aux = match f.gafn(&plan, g)? {
                Some(gafn) => gafn.aux_optimisers()?,
                None => Vec::new(),
            };
            draw_from(&plan, f, aux, &device, &tensors, &state, req)
        }
        FamilyPlan::Sequence(s) => {
            let f = super::sequence::SequenceFamily::new(&plan, s, &opts, &device)?;
            draw_from(&plan, f, Vec::new(), &device, &tensors, &state, req)
        }
        FamilyPlan::Diffusion(d) => {
            let f = super::diffusion::DiffusionFamily::new(&plan, d, &opts, &device)?;
            draw_from(&plan, f, Vec::new(), &device, &tensors, &state, req)
        }
    }?;
    Ok((table, state.step))
}

/// The student of `family` with the checkpoint's weights, and its samples.
fn draw_from<F: DrawSamples>(
    plan: &Plan,
    family: F,
    aux: Vec<Adam>,
    device: &Device,
    tensors: &std::collections::HashMap<String, candle_core::Tensor>,
    state: &checkpoint::LoopState,
    req: &SampleRequest,
) -> Result<SampleTable, RunError> {
    let net = family.new_net(&mut rng::stream(plan.seed, Stream::InitStudent))?;
    let mut student = aux
        .into_iter()
        .fold(Sampler::new(net, &plan.student, device)?, Sampler::with_aux);
    student.restore("student", tensors, &state.student_steps)?;
    let mut rng = rng::stream(req.seed, Stream::Export);
    family.draw_samples(&student.net, req.n, req.log_pf, &mut rng)
}

/// The table as CSV text (header, then one line per row).
pub fn to_csv(table: &SampleTable) -> String {
    let mut text = table.columns.join(",");
    text.push('\n');
    for row in &table.rows {
        text.push_str(&row.join(","));
        text.push('\n');
    }
    text
}
