//! A continuous target of your own, served by a program (`[env] kind =
//! "energy"`, docs/tasks.md "An energy from a program"): the program answers
//! the line protocol of [`crate::envs::program`] with log R(x) (and, with
//! `gradient = true`, ∇ log R(x)) for points sent as numbers separated by
//! spaces, one point a line.
//!
//! Points are not cached (continuous points rarely repeat), so there is no
//! state to checkpoint. The program starts at the first evaluation and ends
//! with the run; its standard error goes to the run's `oracle_stderr.log`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::target::{Picture, Target, TargetError};
use super::DiffusionEnvConfig;
use crate::check::Invalid;
use crate::envs::program::{self, parse_finite, Program, ProgramSpec, StderrTo};

/// Largest dimension of a program target.
pub const MAX_DIM: usize = 10_000;

/// `[env] kind = "energy"`: a target whose log density a program computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramEnergyConfig {
    /// Name of the target in messages (default `energy`).
    #[serde(default = "default_name")]
    pub name: String,
    /// Dimension D of the points (1 to 10,000).
    pub dim: usize,
    /// The program: `{ command = ["python3", "energy.py"], batch = 256, timeout_s = 60 }`.
    pub log_density: ProgramConfig,
    /// Whether each answer line also carries ∇ log R(x) (D more numbers after
    /// log R): needed by MALA local search and the Langevin policy, which are
    /// refused without it (default false).
    #[serde(default)]
    pub gradient: bool,
    /// Number T of Gaussian steps from 0 to a sample (dt = 1 / T; default 100).
    #[serde(default = "default_steps")]
    pub steps: usize,
    /// Variance sigma^2 of the Brownian motion per unit time (default 1).
    #[serde(default = "default_t_scale")]
    pub t_scale: f64,
    /// Both axes of the sample pictures (default [-5, 5]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plot_range: Option<[f64; 2]>,
    /// The directory the program runs in. Default: the experiment file's
    /// directory; a relative `dir` starts there too. The loader writes the
    /// absolute directory into the run's recorded config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

/// A program that answers the line protocol.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramConfig {
    /// The program and its arguments (no shell).
    pub command: Vec<String>,
    /// Most points sent in one batch (default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// Longest wait for one batch's answers, in seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
}

fn default_name() -> String {
    "energy".into()
}

fn default_steps() -> usize {
    DiffusionEnvConfig::default().steps
}

fn default_t_scale() -> f64 {
    DiffusionEnvConfig::default().t_scale
}

impl ProgramEnergyConfig {
    /// Range checks, naming the key.
    pub fn check(&self) -> Result<(), Invalid> {
        let bad = |k: &str, m: String| Err(Invalid::new(k, m));
        if self.dim == 0 || self.dim > MAX_DIM {
            return bad(
                "env.dim",
                format!("is {}; must be in 1..={MAX_DIM}", self.dim),
            );
        }
        let p = &self.log_density;
        if p.command.is_empty() || p.command[0].is_empty() {
            return bad(
                "env.log_density.command",
                "must name a program, e.g. [\"python3\", \"energy.py\"]".into(),
            );
        }
        if p.batch == Some(0) {
            return bad("env.log_density.batch", "must be at least 1".into());
        }
        if let Some(t) = p.timeout_s {
            if !(t.is_finite() && t > 0.0 && t <= 86_400.0) {
                return bad(
                    "env.log_density.timeout_s",
                    format!("is {t}; must be in (0, 86400]"),
                );
            }
        }
        if let Some([lo, hi]) = self.plot_range {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return bad(
                    "env.plot_range",
                    format!("[{lo}, {hi}] must be finite and increasing"),
                );
            }
        }
        self.sampler().check()
    }

    /// The sampler settings every diffusion target has.
    pub fn sampler(&self) -> DiffusionEnvConfig {
        DiffusionEnvConfig {
            steps: self.steps,
            t_scale: self.t_scale,
        }
    }

    /// Make `dir` absolute, starting from `file_dir` (the experiment file's directory).
    pub fn set_base_dir(&mut self, file_dir: &Path) {
        self.dir = Some(program::base_dir(file_dir, self.dir.as_deref()));
    }

    /// The target (a checked config); its program starts at the first evaluation.
    pub fn target(&self) -> ProgramTarget {
        let p = &self.log_density;
        ProgramTarget {
            name: self.name.clone(),
            dim: self.dim,
            gradient: self.gradient,
            range: self.plot_range.map_or((-5.0, 5.0), |[lo, hi]| (lo, hi)),
            spec: ProgramSpec {
                command: p.command.clone(),
                batch: p.batch.unwrap_or(program::DEFAULT_BATCH),
                timeout: Duration::from_secs_f64(p.timeout_s.unwrap_or(program::DEFAULT_TIMEOUT_S)),
                dir: self.dir.clone().unwrap_or_else(|| PathBuf::from(".")),
            },
            state: Mutex::new(ProgramState::default()),
        }
    }
}

/// A target whose log density (and gradient) a program computes.
#[derive(Debug)]
pub struct ProgramTarget {
    name: String,
    dim: usize,
    gradient: bool,
    range: (f64, f64),
    spec: ProgramSpec,
    state: Mutex<ProgramState>,
}

/// The program, once started, and where its standard error goes.
#[derive(Default)]
struct ProgramState {
    program: Option<Program>,
    stderr: Option<PathBuf>,
}

impl std::fmt::Debug for ProgramState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgramState")
            .field("started", &self.program.is_some())
            .finish()
    }
}

impl ProgramTarget {
    /// The answers for the rows of `xs`: log R and, with a gradient, ∇ log R
    /// (written to `grad` when given).
    fn ask(&self, xs: &[f64], mut grad: Option<&mut [f64]>) -> Result<Vec<f64>, TargetError> {
        let d = self.dim;
        if !xs.len().is_multiple_of(d) {
            return Err(TargetError::new(
                &self.name,
                format!(
                    "a batch of {} numbers is not made of {d}-d points",
                    xs.len()
                ),
            ));
        }
        let lines: Vec<String> = xs
            .chunks_exact(d)
            .map(|x| {
                x.iter()
                    .map(|v| format!("{v:?}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let width = if self.gradient { d + 1 } else { 1 };
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.program.is_none() {
            let stderr = match &st.stderr {
                Some(p) => StderrTo::File(p.clone()),
                None => StderrTo::Inherit,
            };
            let started = Program::start(&self.spec, &stderr).map_err(|e| self.error(e))?;
            st.program = Some(started);
        }
        let program = st.program.as_mut().expect("started");
        let answers = program
            .ask(&lines, |s| parse_point_answer(s, width))
            .map_err(|e| self.error(e))?;
        let mut out = Vec::with_capacity(answers.len());
        for (i, a) in answers.into_iter().enumerate() {
            out.push(a[0]);
            if let Some(g) = grad.as_deref_mut() {
                g[i * d..(i + 1) * d].copy_from_slice(&a[1..]);
            }
        }
        Ok(out)
    }

    fn error(&self, e: program::ProgramError) -> TargetError {
        TargetError::new(&self.name, e.to_string())
    }
}

/// `width` finite numbers separated by spaces or commas.
fn parse_point_answer(s: &str, width: usize) -> Result<Vec<f64>, String> {
    let v: Vec<f64> = s
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .map(parse_finite)
        .collect::<Result<_, _>>()?;
    if v.len() != width {
        return Err(format!(
            "{} numbers, expected {width} (log R{})",
            v.len(),
            if width > 1 { " and the gradient" } else { "" }
        ));
    }
    Ok(v)
}

impl Target for ProgramTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn log_reward_batch(&self, xs: &[f64]) -> Result<Vec<f64>, TargetError> {
        self.ask(xs, None)
    }

    fn has_gradient(&self) -> bool {
        self.gradient
    }

    fn grad_log_reward(&self, x: &[f64], out: &mut [f64]) -> Result<(), TargetError> {
        self.grad_log_reward_batch(x, out)
    }

    fn grad_log_reward_batch(&self, xs: &[f64], out: &mut [f64]) -> Result<(), TargetError> {
        if !self.gradient {
            return Err(TargetError::new(
                &self.name,
                "the program gives no gradient (`env.gradient = false`)",
            ));
        }
        self.ask(xs, Some(out)).map(|_| ())
    }

    fn set_run_dir(&self, dir: &Path) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.stderr = Some(dir.join(crate::envs::program::STDERR_FILE));
    }

    fn picture(&self) -> Picture {
        // Marginal panels only: a density picture would ask the program for
        // a 200 x 200 grid one point at a time.
        let pairs = match self.dim {
            1 => vec![(0, 0)],
            2 => vec![(0, 1)],
            _ => vec![(0, 1), (0, 2)],
        };
        Picture::Marginals {
            range: self.range,
            pairs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> ProgramEnergyConfig {
        toml::from_str(text).unwrap()
    }

    /// A 2-d program: log R = -(x² + y²)/2, gradient (-x, -y).
    const GAUSS: &str = "while IFS= read -r l; do if [ -z \"$l\" ]; then continue; fi; \
                         set -- $l; echo \"$(awk -v x=$1 -v y=$2 'BEGIN { print -(x*x+y*y)/2, -x, -y }')\"; done";

    #[test]
    fn a_program_answers_log_density_and_gradient() {
        let mut c = config(
            "dim = 2\ngradient = true\nlog_density = { command = [\"sh\", \"-c\", \"\"] }\n",
        );
        c.log_density.command[2] = GAUSS.into();
        c.set_base_dir(&std::env::temp_dir());
        c.check().unwrap();
        let t = c.target();
        let xs = [1.0, 2.0, 0.5, -1.0];
        assert_eq!(t.log_reward_batch(&xs).unwrap(), vec![-2.5, -0.625]);
        let mut g = [0.0; 4];
        t.grad_log_reward_batch(&xs, &mut g).unwrap();
        assert_eq!(g, [-1.0, -2.0, -0.5, 1.0]);
        assert!(t.has_gradient());
        assert_eq!(
            t.sample(3, &mut crate::rng::stream(0, crate::rng::Stream::Eval)),
            None
        );
        assert_eq!(t.log_z(), None);
    }

    #[test]
    fn wrong_answers_and_config_errors() {
        assert!(parse_point_answer("1 2", 1)
            .unwrap_err()
            .contains("2 numbers, expected 1"));
        assert!(parse_point_answer("1,2,3", 3).is_ok());
        assert!(parse_point_answer("1 nan", 2)
            .unwrap_err()
            .contains("finite"));
        let why = |t: &str| config(t).check().unwrap_err().to_string();
        let cmd = "log_density = { command = [\"x\"] }\n";
        assert!(why(&format!("dim = 0\n{cmd}")).contains("`env.dim`"));
        assert!(
            why("dim = 2\nlog_density = { command = [] }\n").contains("`env.log_density.command`")
        );
        assert!(why(&format!("dim = 2\nsteps = 1\n{cmd}")).contains("`env.steps`"));
        assert!(why(&format!("dim = 2\nplot_range = [1, 0]\n{cmd}")).contains("`env.plot_range`"));
        assert!(
            toml::from_str::<ProgramEnergyConfig>(&format!("dim = 2\n{cmd}colour = 1\n")).is_err()
        );
        let t = config(&format!("dim = 2\n{cmd}")).target();
        let mut g = [0.0; 2];
        assert!(t
            .grad_log_reward(&[0.0, 0.0], &mut g)
            .unwrap_err()
            .to_string()
            .contains("no gradient"));
    }
}
