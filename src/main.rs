//! `runner`: the command line. Everything else lives in the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use runner::config::{self, ConfigError, ExperimentFile, SetArg};
use runner::plan::{self, FamilyPlan};
use runner::sweep::{self, SweepOptions};
use runner::train::{self, RunOptions};

/// `println!` that never panics (src/console.rs).
macro_rules! outln {
    ($($arg:tt)*) => { runner::console::outln(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics (src/console.rs).
macro_rules! errln {
    ($($arg:tt)*) => { runner::console::errln(format_args!($($arg)*)) };
}

/// Experiment runner for amortized samplers trained as GFlowNets.
///
/// `runner FILE` trains the experiment in FILE and writes its results under
/// `<out>/<name>/<run_id>/`: config.toml (the resolved experiment),
/// metrics.csv (a row at step 0 and after every evaluation),
/// events.out.tfevents.<start>.runner (the same rows for TensorBoard),
/// checkpoints/ (the latest step-N.safetensors), plots/ (grid density
/// heatmaps, diffusion sample pictures), oracle_stderr.log (a reward or
/// energy program's standard error), status.toml (written when the run
/// ends), report/ (after `runner report` on the run) and .lock (while a
/// runner executes it). Beside the runs, `<out>/<name>/` holds runs.csv,
/// summary.csv, a sweep's report/ and `runner slurm`'s slurm.sbatch and
/// slurm/ logs (docs/results.md). `runner show FILE` prints the resolved
/// experiment first, every default filled in, with where each value comes
/// from. Progress goes to stderr: a bar on a terminal, else a line every
/// 30 s ($RUNNER_PROGRESS_SECS) and at each evaluation.
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
    /// Runs executing at once [default: number of cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Start no new run after the first failure.
    #[arg(long)]
    fail_fast: bool,
    /// Rerun complete runs whose resolved config changed (otherwise refused).
    #[arg(long)]
    force: bool,
    /// Execute only run K of the sweep's expansion (0-based; SLURM array tasks).
    #[arg(long, value_name = "K")]
    index: Option<usize>,
    /// Do not write the sweep's report (<out>/<name>/report/) at its end.
    #[arg(long)]
    no_report: bool,
}

#[derive(Args, Clone)]
struct Common {
    /// Override a key: dotted path, TOML value (repeatable), e.g. --set env.horizon=16.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Results root directory.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Dataset directory [default: $RUNNER_DATASETS, else `./datasets` if
    /// present, else the source tree's `datasets/`].
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
    /// Print the resolved experiment as TOML (every default filled in: what
    /// a run records as config.toml), each value followed by where it comes
    /// from (`# file`, `# --set`, `# RUNNER_...`, `# sweep`, `# default`, `#
    /// task table (...)`); of a sweep, its number of runs and its base, or
    /// run K with --index K. Nothing is run or written.
    Show {
        /// Experiment file.
        file: PathBuf,
        /// Show run K of the sweep's expansion (0-based) instead of its base.
        #[arg(long, value_name = "K")]
        index: Option<usize>,
        #[command(flatten)]
        common: Common,
    },
    /// Print the JSON Schema of the experiment file.
    Schema,
    /// Measure training steps (sequence tasks: rounds) per second (no evaluation, nothing written).
    Bench {
        /// Experiment files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Timed training steps (rounds) per file (after the untimed warm-up steps).
        #[arg(long, default_value_t = 300)]
        steps: u64,
        /// Untimed warm-up steps per file.
        #[arg(long, default_value_t = 20)]
        warmup: u64,
        /// Skip the measurement of the machine's f32 matrix-product peak
        /// (by default it comes first: a few seconds).
        #[arg(long)]
        no_peak: bool,
        /// Accepted for old scripts: the peak is measured by default.
        #[arg(long, hide = true)]
        peak: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Write a SLURM job-array script running every run of the sweep.
    Slurm {
        /// Experiment file.
        file: PathBuf,
        #[command(flatten)]
        common: Common,
        /// Where to write the script [default: <out>/<name>/slurm.sbatch].
        #[arg(long)]
        script: Option<PathBuf>,
        /// Partition (overrides [slurm] partition).
        #[arg(long)]
        partition: Option<String>,
        /// Time limit per task (overrides [slurm] time).
        #[arg(long)]
        time: Option<String>,
        /// CPUs per task (overrides [slurm] cpus_per_task).
        #[arg(long)]
        cpus: Option<usize>,
        /// Memory per task (overrides [slurm] mem).
        #[arg(long)]
        mem: Option<String>,
        /// Array tasks at once (overrides [slurm] concurrency).
        #[arg(long)]
        concurrency: Option<usize>,
    },
    /// Score your own candidates with the reward of FILE's environment, CSV
    /// on stdout in input order: strings of a sequence task (`x,reward`; RNA:
    /// `x,reward,energy`), grid states as comma-separated coordinates
    /// (`0,0,31,5`: `x,reward,log_reward`, R before beta), points of a
    /// diffusion energy as numbers (`4 4`: `x,log_reward`).
    Score {
        /// Experiment file (its env selects the task, built-in or declared).
        file: PathBuf,
        /// Candidates, one per line [default: standard input].
        strings: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Charts (PNG) and a page (report.md) of results, in <results>/report/:
    /// one chart per task and metric, one line per group of runs with a 95%
    /// band over seeds (docs/reports.md).
    Report {
        /// Run directories, sweeps' results directories (<out>/<name>), or
        /// experiment files (with the --out and --set they ran with); several
        /// go on one report.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Where to write the report [default: <results>/report/ for one
        /// path; <common parent>/reports/<name>+<name>/ for several].
        #[arg(long, value_name = "DIR")]
        output: Option<PathBuf>,
        /// Metrics to draw, comma-separated [default: the headline metrics
        /// the runs have: goals and L1 (grid), modes and log Z bounds
        /// (sequences), bounds and W2 (diffusion)].
        #[arg(long, value_delimiter = ',', value_name = "A,B")]
        metrics: Option<Vec<String>>,
        #[command(flatten)]
        common: Common,
    },
    /// Samples of a trained run's student (from its latest checkpoint) as
    /// CSV: grid states with their reward, strings with their reward and
    /// log R, diffusion vectors with log R; with --log-pf, each
    /// trajectory's log P_F.
    Sample {
        /// The run directory (<out>/<name>/<run id>).
        run_dir: PathBuf,
        /// Number of samples.
        #[arg(short = 'n', long = "samples", default_value_t = 1000)]
        n: usize,
        /// Seed of the samples (the same seed gives the same samples).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Add a `log_pf` column: the log P_F of each sample's trajectory.
        #[arg(long)]
        log_pf: bool,
        /// Write the CSV to this file (atomically) instead of standard output.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        /// Dataset directory (sequence tasks) [default: as for a run].
        #[arg(long)]
        datasets: Option<PathBuf>,
    },
    /// Rebuild runs.csv and summary.csv from the run directories.
    Collect {
        /// Experiment file.
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
}

/// The subcommands, for [`misspelled_command`].
const COMMANDS: &[&str] = &[
    "validate", "show", "schema", "bench", "slurm", "score", "report", "collect", "sample",
];

/// A first argument that is no file but is one or two edits away from a
/// subcommand (`valdate`) gets a suggestion instead of clap's message about
/// the experiment file.
fn misspelled_command(first: Option<&str>) -> Option<String> {
    let word = first?;
    if word.starts_with('-') || word.contains(['.', '/']) || Path::new(word).exists() {
        return None;
    }
    if COMMANDS.contains(&word) {
        return None;
    }
    let near = COMMANDS.iter().find(|c| edit_distance(word, c) <= 2)?;
    Some(format!(
        "unknown command `{word}`; did you mean `runner {near}`? (commands: {})",
        COMMANDS.join(", ")
    ))
}

/// Levenshtein distance of two short words.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Whether the experiment `file` trains large matrix products (see
/// [`plan::large_products`]; invalid files count as not: their errors
/// come later, from the command itself).
fn has_large_products(file: &ExperimentFile) -> bool {
    plan::load_experiment(file, &[]).is_ok_and(|(exp, _)| plan::large_products(&exp))
}

impl Cli {
    /// The experiment files the command trains.
    fn files(&self) -> Vec<&Path> {
        match &self.command {
            Some(Command::Bench { files, .. }) => files.iter().map(PathBuf::as_path).collect(),
            Some(Command::Slurm { file, .. }) | Some(Command::Show { file, .. }) => {
                vec![file.as_path()]
            }
            None => self.run.file.iter().map(PathBuf::as_path).collect(),
            _ => Vec::new(),
        }
    }
}

fn parse_sets(raw: &[String]) -> anyhow::Result<Vec<SetArg>> {
    raw.iter()
        .map(|s| config::parse_set(s).map_err(anyhow::Error::from))
        .collect()
}

/// Keep freed memory in the process: glibc serves large allocations (the
/// diffusion sampler's [T * B, 256] activations, 51 MB each) by mmap and
/// returns them on free, so every training step paid for page faults and
/// the kernel's zeroing of fresh pages (more than half its time, measured
/// with perf). Without mmap and trimming, freed buffers are reused.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    runner::interrupt::install();
    if let Some(msg) = misspelled_command(std::env::args().nth(1).as_deref()) {
        errln!("error: {msg}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    // One thread per matrix product on the grid and on sequence tasks with
    // small networks: their products are small, so candle's multi-threaded
    // gemm costs more than it gains; parallelism comes from running runs side
    // by side (and a teacher run's second thread). Large products use every
    // core: the diffusion samplers' ([T * B, 256] x [256, 256]) and those of
    // sequence networks at least `plan::WIDE_SSR` wide (QM9's 1024: 87 GFLOP a
    // round, 84% of one core's peak on one thread). Decided before any
    // thread starts; set RAYON_NUM_THREADS to override.
    // Each experiment file is read once, here (a pipe can be read only once).
    let mut files: Vec<Result<ExperimentFile, ConfigError>> =
        cli.files().into_iter().map(ExperimentFile::read).collect();
    if std::env::var_os("RAYON_NUM_THREADS").is_none()
        && !files.iter().flatten().any(has_large_products)
    {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let result = match cli.command {
        Some(Command::Schema) => {
            runner::console::write(runner::console::Stream::Out, &runner::schema_json());
            Ok(())
        }
        Some(Command::Validate { files, common }) => validate(&files, &common),
        Some(Command::Show { index, common, .. }) => show(files.remove(0), index, &common),
        Some(Command::Score {
            file,
            strings,
            common,
        }) => score(&file, strings.as_deref(), &common),
        Some(Command::Bench {
            steps,
            warmup,
            no_peak,
            peak: _,
            common,
            ..
        }) => bench(files, steps, warmup, !no_peak, &common),
        Some(Command::Slurm {
            file: _,
            common,
            script,
            partition,
            time,
            cpus,
            mem,
            concurrency,
        }) => slurm(
            files.remove(0),
            &common,
            script,
            SlurmOverrides {
                partition,
                time,
                cpus,
                mem,
                concurrency,
            },
        ),
        Some(Command::Report {
            paths,
            output,
            metrics,
            common,
        }) => report(&paths, output, metrics, &common),
        Some(Command::Collect { file, common }) => collect(&file, &common),
        Some(Command::Sample {
            run_dir,
            n,
            seed,
            log_pf,
            output,
            datasets,
        }) => sample(
            runner::train::sample::SampleRequest {
                run_dir,
                n,
                seed,
                log_pf,
                datasets: runner::datasets::resolve_root(datasets.as_deref()),
            },
            output.as_deref(),
        ),
        None => match files.pop() {
            Some(file) => file.map_err(anyhow::Error::from).and_then(|f| run(&f, &cli.run)),
            None => Err(anyhow::anyhow!(
                "no experiment file given; usage: runner FILE [--set KEY=VALUE] [--out DIR] (see runner --help)"
            )),
        },
    };
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            errln!("error: {e:#}");
            if runner::interrupt::requested() {
                // 128 + SIGINT, as shells report an interrupted command.
                130
            } else {
                1
            }
        }
    };
    // A failed write to stdout or stderr (a closed pipe, a full disk) decides
    // the status when the command itself succeeded (src/console.rs).
    match runner::console::exit_code() {
        Some(failed) if code == 0 => ExitCode::from(failed),
        _ => ExitCode::from(code),
    }
}

fn run(source: &ExperimentFile, args: &RunArgs) -> anyhow::Result<()> {
    let file = source.path.as_path();
    let sets = parse_sets(&args.common.sets)?;
    // An array task resolves its own run only (a sweep of 10,000 runs would
    // otherwise resolve all of them in every task).
    let specs = match args.index {
        Some(k) => {
            let expansion = sweep::Expansion::new(source, &sets)?;
            if k >= expansion.len() {
                anyhow::bail!(
                    "--index {k} is out of range: {} has {} run(s) (0..{})",
                    file.display(),
                    expansion.len(),
                    expansion.len()
                );
            }
            vec![expansion.one(k)?]
        }
        None => sweep::expand_file(source, &sets)?,
    };
    if args.jobs == Some(0) {
        anyhow::bail!("--jobs 0: at least one run must execute at a time");
    }
    // An array task leaves them to the whole sweep's commands (validate,
    // slurm), which see every run.
    if args.index.is_none() {
        for w in sweep::warnings(&specs) {
            errln!("warning: {}: {w}", file.display());
        }
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(specs.len())
        .max(1);
    let opts = SweepOptions {
        out: args.common.out.clone(),
        jobs,
        fail_fast: args.fail_fast,
        force: args.force,
        datasets: runner::datasets::resolve_root(args.common.datasets.as_deref()),
        // An array task leaves the tables to `runner collect`: thousands of
        // tasks would each reread every run directory.
        tables: args.index.is_none(),
    };
    let report = sweep::run_sweep(&specs, &opts)?;
    let interrupted = runner::interrupt::requested();
    if args.index.is_none() {
        let mut stopped = String::new();
        if report.interrupted > 0 {
            stopped.push_str(&format!(", {} interrupted", report.interrupted));
        }
        if !report.not_run.is_empty() {
            stopped.push_str(&format!(
                ", {} held by another runner",
                report.not_run.len()
            ));
        }
        if report.not_started > 0 {
            let why = if interrupted {
                "after the interruption"
            } else {
                "after a failure, --fail-fast"
            };
            stopped.push_str(&format!(", {} not started ({why})", report.not_started));
        }
        outln!(
            "{}: {} run(s) executed, {} complete and skipped, {} failed{stopped} -> {}",
            file.display(),
            report.ran,
            report.skipped,
            report.failed.len(),
            report.dir.display()
        );
    }
    if interrupted {
        anyhow::bail!(
            "interrupted: {} run(s) stopped midway and {} not started are left incomplete; \
             rerun the same command to resume",
            report.interrupted,
            report.not_started
        );
    }
    for (id, msg) in &report.failed {
        errln!("failed: {id}: {msg}");
    }
    for (id, msg) in &report.not_run {
        errln!("not run: {id}: {msg}");
    }
    if let Some(e) = &report.table_error {
        errln!("error: the sweep's tables: {e}");
    }
    // A sweep's charts and page, also after failures (they list them); a
    // failure to draw is a warning: the runs' results are written.
    if specs.len() > 1 && args.index.is_none() && !args.no_report {
        match runner::report::report_specs(&specs, &opts.out, &Default::default()) {
            Ok(r) => outln!("report: {}", r.page.display()),
            Err(e) => errln!("warning: the sweep's report: {e}"),
        }
    }
    if !report.failed.is_empty() {
        anyhow::bail!("{} of {} run(s) failed", report.failed.len(), specs.len());
    }
    if !report.not_run.is_empty() {
        anyhow::bail!(
            "{} of {} run(s) not run here: another runner holds them (see `not run` above); \
             rerun the same command once it is done",
            report.not_run.len(),
            specs.len()
        );
    }
    if report.table_error.is_some() {
        anyhow::bail!("the runs finished but runs.csv / summary.csv could not be written");
    }
    if report.not_started > 0 {
        anyhow::bail!("stopped after a failure (--fail-fast)");
    }
    Ok(())
}

fn report(
    paths: &[PathBuf],
    output: Option<PathBuf>,
    metrics: Option<Vec<String>>,
    common: &Common,
) -> anyhow::Result<()> {
    use runner::report::{InputKind, Source};
    let opts = runner::report::ReportOptions { metrics, output };
    let kinds = paths
        .iter()
        .map(|p| runner::report::input_kind(p))
        .collect::<Result<Vec<_>, _>>()?;
    let sets = parse_sets(&common.sets)?;
    let mut expansions = Vec::new();
    for (path, kind) in paths.iter().zip(&kinds) {
        if *kind == InputKind::Experiment {
            expansions.push(sweep::expand(path, &sets)?);
        }
    }
    let mut specs = expansions.iter();
    let sources: Vec<Source> = paths
        .iter()
        .zip(&kinds)
        .filter_map(|(path, kind)| match kind {
            InputKind::Results => Some(Source::Dir(path)),
            InputKind::Experiment => specs.next().map(|specs| Source::Specs {
                specs,
                out: &common.out,
            }),
        })
        .collect();
    let r = runner::report::report(&sources, &opts)?;
    outln!(
        "{}: {} chart(s); {} run(s): {}",
        r.page.display(),
        r.charts.len(),
        r.counts.runs,
        r.counts.describe()
    );
    if r.counts.runs == r.counts.failed {
        errln!("warning: every run failed; report.md lists their errors");
    }
    Ok(())
}

fn score(file: &Path, strings: Option<&Path>, common: &Common) -> anyhow::Result<()> {
    let sets = parse_sets(&common.sets)?;
    let scorer = runner::score::scorer_of(file, &sets)?;
    let root = runner::datasets::resolve_root(common.datasets.as_deref());
    let stdout = std::io::stdout().lock();
    match strings {
        Some(p) => {
            let f =
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            let name = p.display().to_string();
            runner::score::score_with(&scorer, &root, std::io::BufReader::new(f), &name, stdout)?;
        }
        None => {
            let stdin = std::io::stdin().lock();
            runner::score::score_with(&scorer, &root, stdin, "<stdin>", stdout)?;
        }
    }
    Ok(())
}

fn validate(files: &[PathBuf], common: &Common) -> anyhow::Result<()> {
    let sets = parse_sets(&common.sets)?;
    let mut failed = 0;
    for file in files {
        match sweep::expand(file, &sets) {
            Ok(specs) => {
                let plan = &specs[0].plan;
                let exp = &plan.resolved;
                let keys = sweep::varied_keys(&specs);
                let sweep_note = if specs.len() > 1 {
                    format!("; {} runs varying {}", specs.len(), keys.join(", "))
                } else {
                    String::new()
                };
                for w in sweep::warnings(&specs) {
                    errln!("warning: {}: {w}", file.display());
                }
                let unit = plan.family.unit();
                outln!(
                    "ok {}: {} on {}, behaviour {}, {} {unit}{sweep_note}",
                    file.display(),
                    exp.objective.kind(),
                    exp.env.kind(),
                    exp.behaviour.kind(),
                    plan.steps
                );
            }
            Err(e) => {
                failed += 1;
                errln!("error: {e}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} files invalid", files.len());
    }
    Ok(())
}

fn show(
    source: Result<ExperimentFile, ConfigError>,
    index: Option<usize>,
    common: &Common,
) -> anyhow::Result<()> {
    let sets = parse_sets(&common.sets)?;
    let text = runner::show::show(&source?, &sets, index, &common.out)?;
    outln!("{}", text.trim_end());
    Ok(())
}

fn bench(
    files: Vec<Result<ExperimentFile, ConfigError>>,
    steps: u64,
    warmup: u64,
    peak: bool,
    common: &Common,
) -> anyhow::Result<()> {
    let sets = parse_sets(&common.sets)?;
    if steps == 0 {
        anyhow::bail!("--steps 0: the bench needs at least one timed step");
    }
    // The yardstick first, with the threads the runs' products get.
    let peak = match peak {
        true => {
            let p = matmul_peak()?;
            outln!(
                "matmul peak: {p:.1} GFLOP/s (f32 [2048, 2048]^2, {} thread(s), best of 5)",
                candle_core::utils::get_num_threads()
            );
            Some(p)
        }
        false => None,
    };
    for file in files {
        let file = file?;
        let with_steps = |n: u64| {
            let mut all = sets.clone();
            all.push(SetArg::internal(
                "train.steps",
                toml::Value::Integer(n as i64),
                "runner bench --steps",
            ));
            plan::load_file(&file, &all)
        };
        let opts = RunOptions {
            dir: std::env::temp_dir(),
            train_only: true,
            parallel_teacher: true,
            progress: false,
            datasets: runner::datasets::resolve_root(common.datasets.as_deref()),
        };
        train::run(&with_steps(warmup.max(1))?, &opts)?;
        let plan = with_steps(steps.max(1))?;
        runner::flops::take();
        let t0 = Instant::now();
        let s = train::run(&plan, &opts)?;
        let secs = t0.elapsed().as_secs_f64();
        let flops = runner::flops::total(runner::flops::take());
        let unit = plan.family.unit();
        let gflops = flops / secs / 1e9;
        // The peak is the CPU's: no fraction for a run on another device.
        let of_peak = match (peak, plan.device) {
            (Some(p), runner::config::DeviceKind::Cpu) => {
                format!(", {:.0}% of the peak", 100.0 * gflops / p)
            }
            _ => String::new(),
        };
        let extra = match &plan.family {
            FamilyPlan::Sequence(q) => {
                let o = runner::score::oracle_speed(q.task, &opts.datasets, 1.0)?;
                format!(
                    "; oracle {:.0} calls/s on one thread, a batch of 32 in {:.2} ms",
                    o.serial_per_s, o.batch32_ms
                )
            }
            _ => String::new(),
        };
        outln!(
            "{}: {:.2} {unit}/s ({} {unit} in {:.2}s; {:.0} states per batch; {gflops:.1} GFLOP/s{of_peak}, {:.2} GFLOP per {}; {}{extra}; max RSS so far {})",
            plan.resolved.name,
            steps as f64 / secs,
            steps,
            secs,
            s.mean_batch_states,
            flops / steps as f64 / 1e9,
            unit.trim_end_matches('s'),
            s.headline,
            max_rss()
        );
    }
    Ok(())
}

/// The process's peak resident memory so far (bench one file per process to
/// read each file's own), or `?` where it cannot be read.
fn max_rss() -> String {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getrusage writes into the zeroed struct we own.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } == 0 {
            // Linux reports kilobytes.
            return format!("{:.2} GB", u.ru_maxrss as f64 / 1e6);
        }
    }
    "?".to_string()
}

/// The best achieved GFLOP/s of candle's f32 matrix product over 5 runs
/// of [2048, 2048] x [2048, 2048] on the CPU, all cores.
fn matmul_peak() -> anyhow::Result<f64> {
    use candle_core::{Device, Tensor};
    let n = 2048;
    let a = Tensor::ones((n, n), candle_core::DType::F32, &Device::Cpu)?;
    let b = (a.clone() * 0.5)?;
    let _ = a.matmul(&b)?;
    let mut best = 0f64;
    for _ in 0..5 {
        let t = Instant::now();
        let c = a.matmul(&b)?;
        let secs = t.elapsed().as_secs_f64();
        drop(c);
        best = best.max(2.0 * (n as f64).powi(3) / secs / 1e9);
    }
    Ok(best)
}

struct SlurmOverrides {
    partition: Option<String>,
    time: Option<String>,
    cpus: Option<usize>,
    mem: Option<String>,
    concurrency: Option<usize>,
}

fn slurm(
    source: Result<ExperimentFile, ConfigError>,
    common: &Common,
    script_path: Option<PathBuf>,
    o: SlurmOverrides,
) -> anyhow::Result<()> {
    let source = source?;
    let file = source.path.as_path();
    let sets = parse_sets(&common.sets)?;
    let (base, _) = plan::load_experiment(&source, &sets)?;
    let specs = sweep::expand_file(&source, &sets)?;
    let mut cfg = base.slurm.clone().unwrap_or_default();
    if o.partition.is_some() {
        cfg.partition = o.partition;
    }
    cfg.time = o.time.unwrap_or(cfg.time);
    cfg.cpus_per_task = o.cpus.unwrap_or(cfg.cpus_per_task);
    cfg.mem = o.mem.unwrap_or(cfg.mem);
    cfg.concurrency = o.concurrency.unwrap_or(cfg.concurrency);
    // The flags' values reach the script too.
    cfg.check().map_err(|e| {
        anyhow::anyhow!("invalid SLURM setting {e} (from a flag or the file's [slurm] table)")
    })?;
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let runner = std::env::current_exe().context("cannot locate the runner executable")?;
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let text = sweep::slurm::script(
        &specs,
        &cfg,
        &runner,
        &abs(file),
        &abs(&common.out),
        &cwd,
        &common.sets,
        common.datasets.as_deref().map(abs).as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    let path = script_path.unwrap_or_else(|| common.out.join(&base.name).join("slurm.sbatch"));
    std::fs::create_dir_all(common.out.join(&base.name).join("slurm"))
        .with_context(|| format!("cannot create {}", common.out.display()))?;
    runner::output::write_atomic(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    let quoted = |p: &Path| runner::sweep::slurm::sh(&p.display().to_string());
    outln!(
        "wrote {} ({} array tasks); submit with: sbatch {}; then: {}",
        path.display(),
        specs.len(),
        quoted(&path),
        sweep::slurm::collect_command(file, &common.out, &common.sets)
    );
    Ok(())
}

fn sample(req: runner::train::sample::SampleRequest, output: Option<&Path>) -> anyhow::Result<()> {
    let (table, step) = runner::train::sample::sample(&req)?;
    let text = runner::train::sample::to_csv(&table);
    match output {
        Some(path) => {
            runner::output::write_atomic(path, text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            errln!(
                "wrote {} samples of {} (checkpoint at step {step}) to {}",
                table.rows.len(),
                req.run_dir.display(),
                path.display()
            );
        }
        None => runner::console::write(runner::console::Stream::Out, &text),
    }
    Ok(())
}

fn collect(file: &Path, common: &Common) -> anyhow::Result<()> {
    let specs = sweep::expand(file, &parse_sets(&common.sets)?)?;
    let rows = sweep::collect(&common.out, &specs)
        .map_err(|(p, e)| anyhow::anyhow!("cannot write {}: {e}", p.display()))?;
    outln!(
        "{}: {} -> {}",
        file.display(),
        sweep::describe_rows(&rows),
        common.out.join(&specs[0].plan.resolved.name).display()
    );
    Ok(())
}
