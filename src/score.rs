//! `runner score`: score a researcher's own candidate strings with the reward
//! oracle of an experiment's sequence task (qm9str, sehstr, tfbind8, rna), or
//! grid states with a grid experiment's reward ([`score_grid`]).
//!
//! Input: one string per line over the task's alphabet (blank lines and
//! surrounding spaces are ignored). Output: CSV on the writer, in input order,
//! `x,reward` with the raw oracle value r(x) (the value of the datasets'
//! `reward` columns and of the RNA fitness, before floor, exponent and scale),
//! and for RNA a third column `energy`, the duplex free energy in kcal/mol.
//! Every line is checked before anything is written, so an invalid string
//! (wrong length or symbol) fails the whole call with its line number and no
//! partial output.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context};

use crate::check::excerpt;
use crate::config::SetArg;
use crate::envs::grid::GridConfig;
use crate::envs::program::StderrTo;
use crate::envs::sequence::oracle::{OracleSource, Task};
use crate::envs::sequence::task::load_oracle;
use crate::plan::FamilyPlan;
use crate::sweep;

/// The sequence task of experiment `file` (with `sets` applied). A sweep must
/// keep one task across its runs.
pub fn task_of(file: &Path, sets: &[SetArg]) -> anyhow::Result<Task> {
    let specs = sweep::expand(file, sets)?;
    let mut task: Option<Task> = None;
    for spec in &specs {
        let FamilyPlan::Sequence(s) = &spec.plan.family else {
            bail!(
                "{}: env.kind = {:?} has no string oracle; `runner score` works for the \
                 sequence tasks (qm9str, sehstr, tfbind8, rna) and the grid",
                file.display(),
                spec.plan.resolved.env.kind()
            );
        };
        match task {
            Some(t) if t != s.task => bail!(
                "{}: its sweep varies the task ({} and {}); score with a file of one task, \
                 e.g. experiments/rna1_tb.toml --set env.target=2",
                file.display(),
                t.name(),
                s.task.name()
            ),
            _ => task = Some(s.task),
        }
    }
    task.with_context(|| format!("{}: the sweep expands to no run", file.display()))
}

/// The grid of experiment `file` (with `sets` applied, the reward family's
/// defaults filled in), or `None` when it is not a grid experiment. A sweep
/// must keep one grid across its runs.
pub fn grid_of(file: &Path, sets: &[SetArg]) -> anyhow::Result<Option<GridConfig>> {
    let specs = sweep::expand(file, sets)?;
    let mut grid: Option<GridConfig> = None;
    for spec in &specs {
        let FamilyPlan::Grid(g) = &spec.plan.family else {
            return Ok(None);
        };
        match &grid {
            Some(first) if *first != g.grid => bail!(
                "{}: its sweep varies the grid or its reward; score with a file of one grid, \
                 e.g. --set env.horizon=16",
                file.display()
            ),
            _ => grid = Some(g.grid.clone()),
        }
    }
    Ok(grid)
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
    let mut xs = Vec::new();
    let mut input = input;
    let mut buf = Vec::new();
    for i in 0.. {
        if !read_line(&mut input, &mut buf)
            .with_context(|| format!("{source}: cannot read line {}", i + 1))?
        {
            break;
        }
        if buf.len() > MAX_LINE {
            bail!(
                "{source}:{}: the line is longer than {MAX_LINE} bytes; give one string per line \
                 ({} strings are {} symbols long)",
                i + 1,
                task.name(),
                task.length()
            );
        }
        let line = std::str::from_utf8(&buf)
            .with_context(|| format!("{source}:{}: not UTF-8 text", i + 1))?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let x = task
            .encode(text)
            .with_context(|| format!("{source}:{}: not a string of {}", i + 1, task.name()))?;
        if xs.len() == MAX_STRINGS {
            bail!("{source}: more than {MAX_STRINGS} strings; split the input into smaller files");
        }
        xs.push((text.to_string(), x));
    }
    let oracle = load_oracle(root, task, &StderrTo::Inherit)?;
    let refs: Vec<&[u8]> = xs.iter().map(|(_, x)| x.as_slice()).collect();
    let (rewards, energies) = match task.spec().oracle {
        OracleSource::Command(_) => (oracle.try_raw_many(&refs)?, None),
        _ => oracle.raw_and_energy_many(&refs),
    };
    let mut w = std::io::BufWriter::new(&mut out);
    match &energies {
        Some(energies) => {
            writeln!(w, "x,reward,energy")?;
            for (((text, _), r), e) in xs.iter().zip(&rewards).zip(energies) {
                writeln!(w, "{text},{r},{e}")?;
            }
        }
        None => {
            writeln!(w, "x,reward")?;
            for ((text, _), r) in xs.iter().zip(&rewards) {
                writeln!(w, "{text},{r}")?;
            }
        }
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
    let mut states: Vec<u16> = Vec::new();
    let mut input = input;
    let mut buf = Vec::new();
    let mut n = 0usize;
    for i in 0.. {
        let at = format!("{source}:{}", i + 1);
        if !read_line(&mut input, &mut buf).with_context(|| format!("{at}: cannot read"))? {
            break;
        }
        if buf.len() > MAX_LINE {
            bail!("{at}: the line is longer than {MAX_LINE} bytes; give one state a line");
        }
        let line = std::str::from_utf8(&buf).with_context(|| format!("{at}: not UTF-8 text"))?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        if parts.len() != d {
            bail!(
                "{at}: `{}` has {} coordinates; this grid has env.ndim = {d} \
                 (one state a line, coordinates separated by commas)",
                excerpt(text),
                parts.len()
            );
        }
        if n == MAX_STRINGS {
            bail!("{source}: more than {MAX_STRINGS} states; split the input into smaller files");
        }
        for (k, p) in parts.iter().enumerate() {
            let c: i64 = p.parse().map_err(|_| {
                anyhow::anyhow!(
                    "{at}: coordinate {} `{}` is not an integer",
                    k + 1,
                    excerpt(p)
                )
            })?;
            if c < 0 || c >= h as i64 {
                bail!(
                    "{at}: coordinate {} is {c}, outside 0..={} (env.horizon = {h})",
                    k + 1,
                    h - 1
                );
            }
            states.push(c as u16);
        }
        n += 1;
    }
    let mut w = std::io::BufWriter::new(&mut out);
    writeln!(w, "x,reward,log_reward")?;
    for s in states.chunks_exact(d.max(1)) {
        let r = reward.reward(s, h);
        let x: Vec<String> = s.iter().map(u16::to_string).collect();
        writeln!(w, "\"{}\",{r},{}", x.join(","), r.ln())?;
    }
    w.flush()?;
    Ok(n)
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
