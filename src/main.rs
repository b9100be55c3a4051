//! `runner`: the command line. Everything else lives in the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use runner::config::{self, SetArg};
use runner::train::{self, RunOptions};

/// Experiment runner for amortized samplers trained as GFlowNets.
///
/// `runner FILE` trains the experiment in FILE and writes its results under
/// `<out>/<name>/<run_id>/` (config.toml and metrics.csv).
#[derive(Parser)]
#[command(name = "runner", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
struct RunArgs {
    /// Experiment file (TOML) to run.
    file: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
    /// Results root directory.
    #[arg(long, default_value = "results")]
    out: PathBuf,
}

#[derive(Args, Clone)]
struct Common {
    /// Override a key: dotted path, TOML value (repeatable), e.g. --set env.horizon=16.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Dataset directory [default: $RUNNER_DATASETS, else `datasets`].
    #[arg(long)]
    datasets: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Load, resolve and check experiment files without running them.
    Validate {
        /// Experiment files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Print the JSON Schema of the experiment file.
    Schema,
    /// Measure training steps per second (no evaluation, nothing written).
    Bench {
        /// Experiment files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Timed training steps per file (after the untimed warm-up steps).
        #[arg(long, default_value_t = 300)]
        steps: u64,
        /// Untimed warm-up steps per file.
        #[arg(long, default_value_t = 20)]
        warmup: u64,
        #[command(flatten)]
        common: Common,
    },
}

fn parse_sets(raw: &[String]) -> anyhow::Result<Vec<SetArg>> {
    raw.iter()
        .map(|s| config::parse_set(s).map_err(anyhow::Error::from))
        .collect()
}

fn main() -> ExitCode {
    // One thread per matrix product: the networks are small, so candle's
    // multi-threaded gemm costs more than it gains; a teacher run uses a second
    // thread for the teacher's step instead. Set RAYON_NUM_THREADS to override.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Schema) => {
            print!("{}", runner::schema_json());
            Ok(())
        }
        Some(Command::Validate { files, common }) => validate(&files, &common),
        Some(Command::Bench {
            files,
            steps,
            warmup,
            common,
        }) => bench(&files, steps, warmup, &common),
        None => match cli.run.file {
            Some(file) => run(&file, &cli.run.common, &cli.run.out),
            None => Err(anyhow::anyhow!(
                "no experiment file given; usage: runner FILE [--set KEY=VALUE] [--out DIR] (see runner --help)"
            )),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(file: &Path, common: &Common, out: &Path) -> anyhow::Result<()> {
    let exp = config::load(file, &parse_sets(&common.sets)?)?;
    let summary = train::run(
        &exp,
        &RunOptions {
            out: out.to_path_buf(),
            train_only: false,
        },
    )
    .with_context(|| format!("run of {} failed", file.display()))?;
    println!(
        "{}: {} steps, {} goals found, eval_empirical_l1 {:.3e}, {:.1}s -> {}",
        exp.name,
        summary.steps,
        summary.n_goals_found,
        summary.eval_empirical_l1,
        summary.wall_s,
        summary.dir.display()
    );
    Ok(())
}

fn validate(files: &[PathBuf], common: &Common) -> anyhow::Result<()> {
    let sets = parse_sets(&common.sets)?;
    let mut failed = 0;
    for file in files {
        match config::load(file, &sets) {
            Ok(exp) => {
                let exp = train::resolve(&exp);
                println!(
                    "ok {}: {} on {}, behaviour {}, {} steps",
                    file.display(),
                    exp.objective.kind(),
                    exp.env.kind(),
                    exp.behaviour.kind(),
                    exp.train.steps.unwrap_or_default()
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} files invalid", files.len());
    }
    Ok(())
}

fn bench(files: &[PathBuf], steps: u64, warmup: u64, common: &Common) -> anyhow::Result<()> {
    let sets = parse_sets(&common.sets)?;
    for file in files {
        let mut exp = config::load(file, &sets)?;
        let opts = RunOptions {
            out: std::env::temp_dir(),
            train_only: true,
        };
        exp.train.steps = Some(warmup.max(1));
        train::run(&exp, &opts)?;
        exp.train.steps = Some(steps);
        let t0 = Instant::now();
        let s = train::run(&exp, &opts)?;
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "{}: {:.1} training steps/s ({} steps in {:.2}s; {:.0} states per batch; goals found {})",
            exp.name,
            steps as f64 / secs,
            steps,
            secs,
            s.mean_batch_states,
            s.n_goals_found
        );
    }
    Ok(())
}
