//! `runner score`: score a researcher's own candidates with the reward of
//! an experiment's environment, built-in or declared:
//!
//! * a sequence task's strings, one a line over the task's alphabet: `x,reward`
//!   with the raw oracle value r(x) (the value of the datasets' `reward`
//!   columns, of the RNA fitness, of a declared table or program), and for
//!   RNA a third column `energy`, the duplex free energy in kcal/mol;
//! * grid states as comma-separated coordinates ([`score_grid`]);
//! * points of a diffusion energy as numbers separated by spaces or commas
//!   ([`score_points`]): `x,log_reward`, log R(x) the target's log density.
//!
//! Blank lines and surrounding spaces are ignored. Every line is checked
//! before anything is scored, so an invalid candidate fails the whole call
//! with its line number and no partial output.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context};

use crate::check::excerpt;
use crate::config::SetArg;
use std::sync::Arc;

use crate::envs::diffusion::target::Target;
use crate::envs::grid::GridConfig;
use crate::envs::program::StderrTo;
use crate::envs::sequence::oracle::Task;
use crate::envs::sequence::task::load_oracle;
use crate::plan::FamilyPlan;
use crate::sweep;

/// What an experiment file scores: its environment's reward.
pub enum Scorer {
    /// A sequence task's strings.
    Sequence(Task),
    /// Grid states.
    Grid(GridConfig),
    /// Points of a diffusion energy.
    Energy(Arc<dyn Target>),
}

/// What experiment `file` (with `sets` applied) scores. A sweep must keep
/// one environment across its runs (the reward exponent may vary: the raw
/// reward does not depend on it).
pub fn scorer_of(file: &Path, sets: &[SetArg]) -> anyhow::Result<Scorer> {
    let specs = sweep::expand(file, sets)?;
    let varies = |what: &str, hint: &str| {
        anyhow::anyhow!(
            "{}: its sweep varies the {what}; score with a file of one, e.g. {hint}",
            file.display()
        )
    };
    let mut scorer: Option<Scorer> = None;
    for spec in &specs {
        let this = match &spec.plan.family {
            FamilyPlan::Sequence(s) => Scorer::Sequence(s.task),
            FamilyPlan::Grid(g) => Scorer::Grid(g.grid.clone()),
            FamilyPlan::Diffusion(d) => Scorer::Energy(Arc::clone(&d.energy)),
        };
        match (&scorer, &this) {
            (None, _) => scorer = Some(this),
            (Some(Scorer::Sequence(a)), Scorer::Sequence(b)) if a == b => {}
            (Some(Scorer::Grid(a)), Scorer::Grid(b)) if a == b => {}
            (Some(Scorer::Energy(a)), Scorer::Energy(b))
                if a.name() == b.name() && a.dim() == b.dim() => {}
            (Some(Scorer::Grid(_)), _) => {
                return Err(varies("grid or its reward", "--set env.horizon=16"))
            }
            (Some(Scorer::Energy(_)), _) => return Err(varies("energy", "--set env.kind=gmm25")),
            (Some(Scorer::Sequence(t)), _) => {
                return Err(varies(
                    &format!("task ({} and another)", t.name()),
                    "experiments/rna1_tb.toml --set env.target=2",
                ))
            }
        }
    }
    scorer.with_context(|| format!("{}: the sweep expands to no run", file.display()))
}

/// Score the candidates read from `input` (named `source` in errors) with
/// `scorer` (a sequence task's oracle loaded from the datasets `root`);
/// write the CSV to `out`. Returns the number of candidates scored.
pub fn score_with(
    scorer: &Scorer,
    root: &Path,
    input: impl BufRead,
    source: &str,
    out: impl Write,
) -> anyhow::Result<usize> {
    match scorer {
        Scorer::Sequence(task) => score(*task, root, input, source, out),
        Scorer::Grid(grid) => score_grid(grid, input, source, out),
        Scorer::Energy(target) => score_points(target.as_ref(), input, source, out),
    }
}

/// The non-blank lines of `input` (named `source` in errors), each parsed
/// by `parse` (its error names what is wrong; the caller's `what` says what
/// a line holds, e.g. "one string a line").
fn read_candidates<T>(
    mut input: impl BufRead,
    source: &str,
    what: &str,
    mut parse: impl FnMut(&str) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<(String, T)>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for i in 0.. {
        let at = format!("{source}:{}", i + 1);
        if !read_line(&mut input, &mut buf).with_context(|| format!("{at}: cannot read"))? {
            break;
        }
        if buf.len() > MAX_LINE {
            bail!("{at}: the line is longer than {MAX_LINE} bytes; give {what}");
        }
        let line = std::str::from_utf8(&buf).with_context(|| format!("{at}: not UTF-8 text"))?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if out.len() == MAX_STRINGS {
            bail!(
                "{source}: more than {MAX_STRINGS} candidates; split the input into smaller files"
            );
        }
        let v = parse(text).with_context(|| at.clone())?;
        out.push((text.to_string(), v));
    }
    Ok(out)
}

/// The longest line `score` reads, in bytes (a string of every task is at
/// most 100 symbols); a longer one (a binary file, `/dev/zero`) is an error
/// before it fills the memory.
pub const MAX_LINE: usize = 4096;

/// The most strings one call scores (about 1 GB of strings and their
/// encodings at the longest task's length).
pub const MAX_STRINGS: usize = 10_000_000;

/// Read one line of `input` into `buf` (without its `\n`), at most
/// [`MAX_LINE`] + 1 bytes of it (the caller refuses a longer line). Returns
/// false at the end of the input.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    use std::io::Read as _;
    buf.clear();
    let n = input
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', buf)?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    Ok(n > 0)
}

/// Score the strings read from `input` (named `source` in errors) with the
/// oracle of `task` loaded from the datasets `root`; write the CSV to `out`.
/// Returns the number of strings scored.
pub fn score(
    task: Task,
    root: &Path,
    input: impl BufRead,
    source: &str,
    mut out: impl Write,
) -> anyhow::Result<usize> {
    let what = format!(
        "one string a line ({} strings are {} of {:?} long)",
        task.name(),
        task.length(),
        task.letters()
    );
    let xs = read_candidates(input, source, &what, |text| {
        task.parse(text)
            .with_context(|| format!("not a string of {}", task.name()))
    })?;
    let oracle = load_oracle(root, task, &StderrTo::Inherit)?;
    let refs: Vec<&[u8]> = xs.iter().map(|(_, x)| x.as_slice()).collect();
    let (rewards, energies) = oracle.raw_and_energy_many(&refs)?;
    let mut w = std::io::BufWriter::new(&mut out);
    match &energies {
        Some(energies) => {
            writeln!(w, "x,reward,energy")?;
            for (((_, x), r), e) in xs.iter().zip(&rewards).zip(energies) {
                writeln!(w, "{},{r},{e}", task.to_letters(x))?;
            }
        }
        None => {
            writeln!(w, "x,reward")?;
            for ((_, x), r) in xs.iter().zip(&rewards) {
                writeln!(w, "{},{r}", task.to_letters(x))?;
            }
        }
    }
    w.flush()?;
    Ok(xs.len())
}

/// Score the points read from `input` (named `source` in errors), one a
/// line as numbers separated by spaces or commas, with `target`'s log
/// density; write the CSV to `out`: `x,log_reward`, `x` the point as given
/// (in double quotes), then log R(x). A wrong number of coordinates or a
/// coordinate that is not a finite number fails the call with its line.
pub fn score_points(
    target: &dyn Target,
    input: impl BufRead,
    source: &str,
    mut out: impl Write,
) -> anyhow::Result<usize> {
    let d = target.dim();
    let what = format!("one point a line ({d} numbers)");
    let xs = read_candidates(input, source, &what, |text| {
        let v: Vec<f64> = text
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|t| !t.is_empty())
            .map(|t| {
                t.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .with_context(|| format!("`{}` is not a finite number", excerpt(t)))
            })
            .collect::<anyhow::Result<_>>()?;
        if v.len() != d {
            bail!(
                "`{}` has {} coordinates; `{}` is {d}-dimensional",
                excerpt(text),
                v.len(),
                target.name()
            );
        }
        Ok(v)
    })?;
    let flat: Vec<f64> = xs.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    let log_r = target.log_reward_batch(&flat)?;
    let mut w = std::io::BufWriter::new(&mut out);
    writeln!(w, "x,log_reward")?;
    for ((text, _), lr) in xs.iter().zip(&log_r) {
        writeln!(w, "\"{}\",{lr}", text.replace('"', ""))?;
    }
    w.flush()?;
    Ok(xs.len())
}

/// Score the grid states read from `input` (named `source` in errors), one
/// a line as comma-separated coordinates (`0,0,31,5`; spaces around them,
/// blank lines ignored), with the reward of `grid`; write the CSV to `out`:
/// `x,reward,log_reward`, `x` the state in double quotes (its commas), then
/// R(s) before the exponent `beta` (as the sequence tasks' raw oracle value)
/// and its natural log. Every line is checked before anything is written: a
/// wrong number of coordinates, a coordinate that is not an integer or is
/// outside 0..=H-1 fails the call with its line and no partial output.
/// Returns the number of states scored.
pub fn score_grid(
    grid: &GridConfig,
    input: impl BufRead,
    source: &str,
    mut out: impl Write,
) -> anyhow::Result<usize> {
    let reward = grid.build_reward()?;
    let (d, h) = (grid.ndim, grid.horizon);
    let what = "one state a line (coordinates separated by commas)";
    let states = read_candidates(input, source, what, |text| {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        if parts.len() != d {
            bail!(
                "`{}` has {} coordinates; this grid has env.ndim = {d} \
                 (one state a line, coordinates separated by commas)",
                excerpt(text),
                parts.len()
            );
        }
        parts
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let c: i64 = p.parse().map_err(|_| {
                    anyhow::anyhow!("coordinate {} `{}` is not an integer", k + 1, excerpt(p))
                })?;
                if c < 0 || c >= h as i64 {
                    bail!(
                        "coordinate {} is {c}, outside 0..={} (env.horizon = {h})",
                        k + 1,
                        h - 1
                    );
                }
                Ok(c as u16)
            })
            .collect::<anyhow::Result<Vec<u16>>>()
    })?;
    let mut w = std::io::BufWriter::new(&mut out);
    writeln!(w, "x,reward,log_reward")?;
    for (_, s) in &states {
        let r = reward.reward(s, h);
        let x: Vec<String> = s.iter().map(u16::to_string).collect();
        writeln!(w, "\"{}\",{r},{}", x.join(","), r.ln())?;
    }
    w.flush()?;
    Ok(states.len())
}

/// Throughput of a task's oracle, measured by [`oracle_speed`].
#[derive(Debug, Clone, Copy)]
pub struct OracleSpeed {
    /// Calls per second on one thread ([`crate::envs::sequence::oracle::Oracle::raw`]).
    pub serial_per_s: f64,
    /// Milliseconds to score a training batch of 32 with `raw_many`.
    pub batch32_ms: f64,
}

/// Time the oracle of `task` (from the datasets `root`) on 1024 uniformly
/// random strings (a fixed seed): one pass one string at a time, then the
/// same strings in batches of 32, each repeated until it took at least
/// `min_secs`.
pub fn oracle_speed(task: Task, root: &Path, min_secs: f64) -> anyhow::Result<OracleSpeed> {
    use rand::Rng as _;
    let oracle = load_oracle(root, task, &StderrTo::Inherit)?;
    let mut rng = crate::rng::stream(0, crate::rng::Stream::Eval);
    let xs: Vec<Vec<u8>> = (0..1024)
        .map(|_| {
            (0..task.length())
                .map(|_| rng.random_range(0..task.k()) as u8)
                .collect()
        })
        .collect();
    let refs: Vec<&[u8]> = xs.iter().map(Vec::as_slice).collect();
    let mut sink = 0.0;
    let time = |f: &mut dyn FnMut() -> usize| {
        let t0 = std::time::Instant::now();
        let mut calls = 0usize;
        while calls == 0 || t0.elapsed().as_secs_f64() < min_secs {
            calls += f();
        }
        (calls, t0.elapsed().as_secs_f64())
    };
    let (n, secs) = time(&mut || {
        sink += refs.iter().map(|x| oracle.raw(x)).sum::<f64>();
        refs.len()
    });
    let serial_per_s = n as f64 / secs;
    let (nb, bsecs) = time(&mut || {
        for chunk in refs.chunks(32) {
            sink += oracle.raw_many(chunk).iter().sum::<f64>();
        }
        refs.len()
    });
    std::hint::black_box(sink);
    Ok(OracleSpeed {
        serial_per_s,
        batch32_ms: bsecs / (nb as f64 / 32.0) * 1e3,
    })
}
