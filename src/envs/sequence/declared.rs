//! A researcher's own sequence task, declared in the experiment file
//! (`[env] kind = "sequence"`, docs/tasks.md): an alphabet, a length, the
//! MDP, and a reward from a table that covers every string
//! ([`TableSource`], exact metrics as for the built-in tables) or from a
//! program over the line protocol ([`CommandOracle`], cached and
//! checkpointed; the metrics that need the whole space are left empty).
//!
//! The task becomes a row of the task table of its own ([`Task::declare`]),
//! so everything downstream (MDP, policy, objectives, buffers, local
//! search, metrics, `runner score`, `runner sample`) is the built-in tasks'
//! code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::Invalid;
use crate::datasets::{self, column, DataError};
use crate::envs::program::{self, parse_finite, Program, ProgramError, ProgramSpec, StderrTo};
use crate::envs::sequence::mdp::SeqMdpKind;
use crate::envs::sequence::oracle::{
    floored_log, fnv1a, ConstantsSource, ExactSource, LookupOracle, Oracle, OracleSource,
    RewardFloor, Task, TaskSpec, FNV_OFFSET,
};

/// Most strings a reward table may cover (k^L): 2^26, about 256 MB of values.
pub const MAX_TABLE_STRINGS: u64 = 1 << 26;

/// Largest alphabet (symbols are bytes; the SSR encoder one-hots them).
pub const MAX_ALPHABET: usize = 64;

/// Longest string of a declared task.
pub const MAX_LENGTH: usize = 64;

/// Default R_max of a table task (the scale makes the largest R this).
pub const DEFAULT_R_MAX: f64 = 10.0;

/// The floor on the training reward R of a declared task: max(R, 1e-20).
pub const DECLARED_FLOOR: f64 = 1e-20;

/// `[env] kind = "sequence"`: a sequence task of the researcher's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclaredSeqConfig {
    /// Name of the task in messages and sample files (default `sequence`).
    #[serde(default = "default_name")]
    pub name: String,
    /// The alphabet in action order: symbol i is the i-th character (distinct
    /// printable ASCII characters, at most 64), e.g. `"ACGT"`.
    pub alphabet: String,
    /// Length L of a complete string (1 to 64).
    pub length: usize,
    /// How a string is built: `prepend_append` (default, the paper's),
    /// `append` (also called `autoregressive`) or `insert`.
    #[serde(default)]
    pub mdp: SeqMdpKind,
    /// Reward exponent beta: the target is p(x) ~ max(r(x), 0.001)^beta (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// Scale the training reward so that its largest value is `r_max`
    /// (tables only; default 10 with a table unless `scale` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r_max: Option<f64>,
    /// The largest r(x) of the whole space, where a program serves the
    /// reward and you know it: with `r_max`, the scale becomes the one a
    /// table would give (R_max / max(max_reward, 0.001)^beta).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_reward: Option<f64>,
    /// A fixed scale of the training reward: R(x) = max(r, 0.001)^beta * scale
    /// (default 1 with a command; not together with `r_max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// A CSV file with a column `x` of strings counted as modes
    /// (`num_modes_*` metrics); relative paths start at the experiment file's
    /// directory. Without it the mode counts are 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<PathBuf>,
    /// Where r(x) comes from: `{ table = "rewards.csv" }` or
    /// `{ command = ["python3", "oracle.py"], batch = 256, timeout_s = 60 }`.
    pub reward: RewardSourceConfig,
    /// The directory that relative paths (`modes`, `reward.table`) start
    /// from and the program runs in. Default: the experiment file's
    /// directory; a relative `dir` starts there too. The loader writes the
    /// absolute directory into the run's recorded config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

fn default_name() -> String {
    "sequence".into()
}

/// The `reward` table of a declared task: exactly one of `table` and `command`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardSourceConfig {
    /// A CSV file with columns `x` (every string of the task exactly once,
    /// in any order) and `reward` (r(x) >= 0, finite; read as 32-bit floats,
    /// as the built-in tables). Relative to the experiment file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<PathBuf>,
    /// A program and its arguments (no shell) that answers the line protocol
    /// (docs/tasks.md); it runs in the experiment file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Most candidates sent to the program in one batch (default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// Longest wait for one batch's answers, in seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
}

/// Where a declared task's r(x) comes from, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum RewardSource {
    /// A table file.
    Table(PathBuf),
    /// A program.
    Command(ProgramSpec),
}

impl DeclaredSeqConfig {
    /// Range and consistency checks, naming the key.
    pub fn check(&self) -> Result<(), Invalid> {
        let bad = |k: &str, m: String| Err(Invalid::new(k, m));
        let a = &self.alphabet;
        if a.is_empty() || a.len() > MAX_ALPHABET {
            return bad(
                "env.alphabet",
                format!(
                    "has {} characters; must have 1 to {MAX_ALPHABET}",
                    a.chars().count()
                ),
            );
        }
        if let Some(c) = a.chars().find(|c| !c.is_ascii_graphic() || *c == ',') {
            return bad(
                "env.alphabet",
                format!("{c:?} is not allowed: use printable ASCII characters other than ','"),
            );
        }
        for (i, c) in a.char_indices() {
            if a[..i].contains(c) {
                return bad("env.alphabet", format!("{c:?} appears twice"));
            }
        }
        if self.length == 0 || self.length > MAX_LENGTH {
            return bad(
                "env.length",
                format!("is {}; must be in 1..={MAX_LENGTH}", self.length),
            );
        }
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return bad(
                "env.name",
                format!("{:?}: use letters, digits, '_', '-' or '.'", self.name),
            );
        }
        let positive = |k: &str, v: Option<f64>| match v {
            Some(v) if !(v.is_finite() && v > 0.0) => {
                bad(k, format!("is {v}; must be a positive number"))
            }
            _ => Ok(()),
        };
        positive("env.beta", self.beta)?;
        positive("env.r_max", self.r_max)?;
        positive("env.scale", self.scale)?;
        positive("env.max_reward", self.max_reward)?;
        if self.r_max.is_some() && self.scale.is_some() {
            return bad(
                "env.scale",
                "give either `env.r_max` (scale from the table's largest reward) or `env.scale`, not both".into(),
            );
        }
        let r = &self.reward;
        match (&r.table, &r.command) {
            (Some(_), Some(_)) => {
                return bad(
                    "env.reward",
                    "give either `table` or `command`, not both".into(),
                )
            }
            (None, None) => {
                return bad(
                    "env.reward",
                    "needs `table = \"rewards.csv\"` or `command = [\"python3\", \"oracle.py\"]`"
                        .into(),
                )
            }
            (Some(_), None) => {
                if self.max_reward.is_some() {
                    return bad(
                        "env.max_reward",
                        "is for a `command`: a table's largest reward is read from the table"
                            .into(),
                    );
                }
                if r.batch.is_some() || r.timeout_s.is_some() {
                    let k = if r.batch.is_some() {
                        "env.reward.batch"
                    } else {
                        "env.reward.timeout_s"
                    };
                    return bad(k, "applies to a `command` only".into());
                }
                let n = (a.len() as f64).powi(self.length as i32);
                if n > MAX_TABLE_STRINGS as f64 {
                    return bad(
                        "env.reward.table",
                        format!(
                            "a table of {} strings ({}^{}) is more than {MAX_TABLE_STRINGS}; serve \
                             the reward with a `command` instead",
                            n,
                            a.len(),
                            self.length
                        ),
                    );
                }
            }
            (None, Some(cmd)) => {
                if self.r_max.is_some() != self.max_reward.is_some() {
                    return bad(
                        if self.r_max.is_some() { "env.r_max" } else { "env.max_reward" },
                        "with a `command`, `env.r_max` needs the largest reward of the whole space \
                         as `env.max_reward` (and the other way round); or use `env.scale`"
                            .into(),
                    );
                }
                program::check_settings("env.reward", cmd, r.batch, r.timeout_s)?;
            }
        }
        Ok(())
    }

    /// Make `dir` absolute, starting from `file_dir` (the experiment
    /// file's directory).
    pub fn set_base_dir(&mut self, file_dir: &Path) {
        self.dir = Some(program::base_dir(file_dir, self.dir.as_deref()));
    }

    /// The directory relative paths start from.
    fn base_dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| PathBuf::from("."))
    }

    /// The resolved reward source.
    pub fn source(&self) -> RewardSource {
        match (&self.reward.table, &self.reward.command) {
            (Some(t), _) => RewardSource::Table(program::resolve(&self.base_dir(), t)),
            (None, cmd) => RewardSource::Command(ProgramSpec {
                command: cmd.clone().unwrap_or_default(),
                batch: self.reward.batch.unwrap_or(program::DEFAULT_BATCH),
                timeout: Duration::from_secs_f64(
                    self.reward.timeout_s.unwrap_or(program::DEFAULT_TIMEOUT_S),
                ),
                dir: self.base_dir(),
            }),
        }
    }

    /// The task's row of the task table (checked config).
    pub fn task(&self) -> Task {
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let path = |p: &Path| leak(p.display().to_string());
        let (oracle, constants, exact) = match self.source() {
            RewardSource::Table(p) => (
                OracleSource::Table(path(&p)),
                ConstantsSource::Enumerate,
                ExactSource::Enumerate,
            ),
            RewardSource::Command(spec) => (
                OracleSource::Command(Box::leak(Box::new(spec))),
                ConstantsSource::Unknown {
                    log_scale: match (self.r_max, self.max_reward) {
                        // The table's formula (oracle::constants).
                        (Some(r_max), Some(max)) => {
                            r_max.ln() - self.beta.unwrap_or(1.0) * floored_log(max)
                        }
                        _ => self.scale.unwrap_or(1.0).ln(),
                    },
                },
                ExactSource::Unavailable,
            ),
        };
        let length = self.length;
        let alphabet = leak(self.alphabet.clone());
        Task::declare(TaskSpec {
            name: leak(self.name.clone()),
            alphabet,
            letters: super::oracle::letters_for(alphabet),
            length,
            beta: 1.0,
            r_max: self.r_max.unwrap_or(DEFAULT_R_MAX),
            fixed_scale: self.scale,
            floor: RewardFloor::Max(DECLARED_FLOOR),
            modes_file: self
                .modes
                .as_ref()
                .map(|m| path(&program::resolve(&self.base_dir(), m))),
            oracle,
            constants,
            exact,
            rounds: 2000,
            eval_every: 50,
            ls_k: 3.min(length.saturating_sub(1)).max(1),
            epsilon: 0.01,
            hidden: 1024,
        })
    }
}

/// The table oracle of a declared task: every string's r(x), from a CSV
/// file listing each string once in any order.
pub fn load_table(path: &Path, task: Task) -> Result<LookupOracle, DataError> {
    let bytes = std::fs::read(path).map_err(|cause| match cause.kind() {
        std::io::ErrorKind::NotFound => DataError::Missing {
            path: path.to_path_buf(),
            hint: "`env.reward.table` is relative to the experiment file's directory".into(),
        },
        _ => DataError::Io {
            path: path.to_path_buf(),
            cause,
        },
    })?;
    if path.is_dir() {
        return Err(DataError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    let text = String::from_utf8(bytes.clone()).map_err(|e| DataError::Invalid {
        path: path.to_path_buf(),
        message: format!("not UTF-8 text: {e}"),
    })?;
    let (header, rows) = datasets::parse_csv(path, &text)?;
    let cx = column(path, &header, "x")?;
    let cr = column(path, &header, "reward")?;
    let n = task.num_strings() as usize;
    let mut values = vec![f32::NAN; n];
    let mut line_of = vec![0usize; n];
    for (line, row) in &rows {
        let err = |message: String| DataError::Parse {
            path: path.to_path_buf(),
            line: *line,
            message,
        };
        let x = task.encode(&row[cx]).map_err(|e| err(e.to_string()))?;
        let i = task.index(&x).expect("encoded");
        if line_of[i] != 0 {
            return Err(err(format!(
                "{:?} is listed twice (lines {} and {line})",
                row[cx], line_of[i]
            )));
        }
        let v: f32 = row[cr]
            .parse()
            .map_err(|e| err(format!("reward {:?}: {e}", crate::check::excerpt(&row[cr]))))?;
        if !v.is_finite() || v < 0.0 {
            return Err(err(format!(
                "reward {:?} of {:?}: rewards must be finite and at least 0",
                crate::check::excerpt(&row[cr]),
                row[cx]
            )));
        }
        values[i] = v;
        line_of[i] = *line;
    }
    let missing = line_of.iter().filter(|&&l| l == 0).count();
    if missing > 0 {
        let first = line_of.iter().position(|&l| l == 0).expect("missing");
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "{missing} of the {n} strings of {} are missing (the first: {:?}); the table \
                 must cover every string of the alphabet {:?} and length {}, or serve the \
                 reward with a `command`",
                task.name(),
                task.decode(&task.string_at(first)),
                task.alphabet(),
                task.length()
            ),
        });
    }
    Ok(LookupOracle::from_values(
        task,
        values,
        fnv1a(FNV_OFFSET, &bytes),
    ))
}

/// r(x) from a program: each distinct string is asked once per run (the
/// cache is part of the checkpoint), in batches of the spec's size.
pub struct CommandOracle {
    task: Task,
    spec: ProgramSpec,
    stderr: StderrTo,
    state: Mutex<CommandState>,
}

/// The program (started at the first request) and what it answered.
struct CommandState {
    program: Option<Program>,
    cache: HashMap<Vec<u8>, f64>,
}

impl CommandOracle {
    /// The oracle of `task` (a command task) whose program's standard error
    /// goes to `stderr`. The program starts at the first request.
    pub fn new(task: Task, spec: ProgramSpec, stderr: StderrTo) -> Self {
        CommandOracle {
            task,
            spec,
            stderr,
            state: Mutex::new(CommandState {
                program: None,
                cache: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CommandState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Oracle for CommandOracle {
    fn task(&self) -> Task {
        self.task
    }

    /// NaN when the program fails (only the fallible
    /// [`Oracle::try_raw_many`] is used for training).
    fn raw(&self, x: &[u8]) -> f64 {
        self.try_raw_many(&[x]).map_or(f64::NAN, |v| v[0])
    }

    fn fingerprint(&self) -> u64 {
        fnv1a(FNV_OFFSET, self.spec.display().as_bytes())
    }

    fn raw_many(&self, xs: &[&[u8]]) -> Vec<f64> {
        self.try_raw_many(xs)
            .unwrap_or_else(|_| vec![f64::NAN; xs.len()])
    }

    fn try_raw_many(&self, xs: &[&[u8]]) -> Result<Vec<f64>, ProgramError> {
        let mut st = self.lock();
        let mut ask: Vec<&[u8]> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for &x in xs {
            if !st.cache.contains_key(x) && seen.insert(x) {
                ask.push(x);
            }
        }
        if !ask.is_empty() {
            let lines: Vec<String> = ask.iter().map(|x| self.task.decode(x)).collect();
            if st.program.is_none() {
                st.program = Some(Program::start(&self.spec, &self.stderr)?);
            }
            let answers = st.program.as_mut().expect("started").ask(&lines, |s| {
                let v = parse_finite(s)?;
                match v >= 0.0 {
                    true => Ok(v),
                    false => Err("a reward must be at least 0".into()),
                }
            })?;
            for (x, v) in ask.into_iter().zip(answers) {
                st.cache.insert(x.to_vec(), v);
            }
        }
        Ok(xs.iter().map(|x| st.cache[*x]).collect())
    }

    fn saved_answers(&self) -> Option<Vec<(Vec<u8>, f64)>> {
        let st = self.lock();
        let mut v: Vec<(Vec<u8>, f64)> = st.cache.iter().map(|(k, &r)| (k.clone(), r)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Some(v)
    }

    fn restore_answers(&self, answers: Vec<(Vec<u8>, f64)>) {
        self.lock().cache = answers.into_iter().collect();
    }

    fn distinct_calls(&self) -> Option<usize> {
        Some(self.lock().cache.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> DeclaredSeqConfig {
        toml::from_str(text).unwrap()
    }

    const BASE: &str = "alphabet = \"ACGT\"\nlength = 2\n";

    fn why(text: &str) -> String {
        config(text).check().unwrap_err().to_string()
    }

    #[test]
    fn config_errors_name_the_key() {
        let t = "reward = { table = \"t.csv\" }\n";
        assert!(why(&format!("alphabet = \"AA\"\nlength = 2\n{t}")).contains("`env.alphabet`"));
        assert!(why(&format!("alphabet = \"A,\"\nlength = 2\n{t}")).contains("','"));
        assert!(why(&format!("alphabet = \"\"\nlength = 2\n{t}")).contains("1 to 64"));
        assert!(why(&format!("alphabet = \"AC\"\nlength = 0\n{t}")).contains("`env.length`"));
        assert!(why(&format!("{BASE}beta = -1\n{t}")).contains("`env.beta`"));
        assert!(why(&format!("{BASE}r_max = 1\nscale = 2\n{t}")).contains("not both"));
        assert!(why(&format!("{BASE}reward = {{}}\n")).contains("needs `table"));
        let both = "reward = { table = \"t.csv\", command = [\"x\"] }\n";
        assert!(why(&format!("{BASE}{both}")).contains("not both"));
        let cmd = "reward = { command = [\"python3\", \"o.py\"] }\n";
        assert!(why(&format!("{BASE}r_max = 5\n{cmd}")).contains("`env.r_max`"));
        assert!(why(&format!("{BASE}max_reward = 5\n{cmd}")).contains("`env.max_reward`"));
        assert!(why(&format!("{BASE}max_reward = 5\n{t}")).contains("read from the table"));
        config(&format!("{BASE}max_reward = 5\nr_max = 2\n{cmd}"))
            .check()
            .unwrap();
        let huge = "alphabet = \"ACGT\"\nlength = 20\nreward = { table = \"t.csv\" }\n";
        assert!(why(huge).contains("`env.reward.table`"));
        let zero = "reward = { command = [\"x\"], batch = 0 }\n";
        assert!(why(&format!("{BASE}{zero}")).contains("`env.reward.batch`"));
        let t0 = "reward = { command = [\"x\"], timeout_s = 0 }\n";
        assert!(why(&format!("{BASE}{t0}")).contains("`env.reward.timeout_s`"));
        assert!(toml::from_str::<DeclaredSeqConfig>(&format!("{BASE}{t}colour = 1\n")).is_err());
        config(&format!("{BASE}{cmd}")).check().unwrap();
    }

    fn table_task(dir: &Path) -> Task {
        let mut c = config(&format!("{BASE}reward = {{ table = \"t.csv\" }}\n"));
        c.set_base_dir(dir);
        c.task()
    }

    #[test]
    fn tables_in_any_order_and_their_errors() {
        let dir = tempfile::tempdir().unwrap();
        let task = table_task(dir.path());
        let all: Vec<String> = (0..16).map(|i| task.decode(&task.string_at(i))).collect();
        let write = |rows: &[String]| {
            let mut s = String::from("x,reward\n");
            for r in rows {
                s.push_str(r);
                s.push('\n');
            }
            std::fs::write(dir.path().join("t.csv"), s).unwrap();
        };
        let path = dir.path().join("t.csv");
        // Reversed order is fine; values land at their strings.
        let rows: Vec<String> = all
            .iter()
            .enumerate()
            .rev()
            .map(|(i, x)| format!("{x},{i}"))
            .collect();
        write(&rows);
        let o = load_table(&path, task).unwrap();
        assert_eq!(o.raw(&[0, 0]), 0.0);
        assert_eq!(o.raw(&[3, 3]), 15.0);
        assert_eq!(o.raw(&task.encode("CG").unwrap()), 6.0);
        // Each fault, named with its line.
        let cases: Vec<(Vec<String>, &str)> = vec![
            (rows[1..].to_vec(), "1 of the 16 strings"),
            (
                [rows.clone(), vec!["AA,1".into()]].concat(),
                "listed twice (lines 17 and 18)",
            ),
            (
                [&rows[1..], &["AU,1".to_string()]].concat(),
                "unknown character 'U'",
            ),
            ([&rows[1..], &["AAA,1".to_string()]].concat(), "length 3"),
            ([&rows[..15], &["AA,-1".to_string()]].concat(), "at least 0"),
            ([&rows[..15], &["AA,inf".to_string()]].concat(), "finite"),
            ([&rows[..15], &["AA,nan".to_string()]].concat(), "finite"),
        ];
        for (rows, want) in cases {
            write(&rows);
            let e = load_table(&path, task).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
            assert!(e.contains("t.csv"), "{e}");
        }
        std::fs::remove_file(&path).unwrap();
        let e = load_table(&path, task).unwrap_err().to_string();
        assert!(e.contains("not found"), "{e}");
    }

    #[test]
    fn a_command_is_asked_once_per_distinct_string() {
        let dir = tempfile::tempdir().unwrap();
        // Answers the string's number of 'A's; counts its calls on stderr.
        let script = "while IFS= read -r l; do if [ -z \"$l\" ]; then continue; fi; \
                      echo \"$l\" >&2; n=$(printf %s \"$l\" | tr -cd A | wc -c); echo $n; done";
        let spec = ProgramSpec {
            command: vec!["sh".into(), "-c".into(), script.into()],
            batch: 3,
            timeout: Duration::from_secs(10),
            dir: dir.path().to_path_buf(),
        };
        let mut c = config(&format!("{BASE}reward = {{ command = [\"sh\"] }}\n"));
        c.set_base_dir(dir.path());
        let task = c.task();
        let log = dir.path().join("err.log");
        let o = CommandOracle::new(task, spec, StderrTo::File(log.clone()));
        let x = |s: &str| task.encode(s).unwrap();
        let (aa, ac, cc) = (x("AA"), x("AC"), x("CC"));
        let got = o.try_raw_many(&[&aa, &ac, &aa, &cc]).unwrap();
        assert_eq!(got, vec![2.0, 1.0, 2.0, 0.0]);
        assert_eq!(o.try_raw_many(&[&cc, &aa]).unwrap(), vec![0.0, 2.0]);
        assert_eq!(o.distinct_calls(), Some(3));
        drop(o);
        let asked = std::fs::read_to_string(&log).unwrap();
        assert_eq!(asked, "AA\nAC\nCC\n");
        // Saved answers restore without asking.
        let o = CommandOracle::new(
            task,
            ProgramSpec {
                command: vec!["false".into()],
                ..spec_of(dir.path())
            },
            StderrTo::Inherit,
        );
        o.restore_answers(vec![(aa.clone(), 2.0)]);
        assert_eq!(o.try_raw_many(&[&aa]).unwrap(), vec![2.0]);
        assert!(o.try_raw_many(&[&cc]).is_err());
    }

    fn spec_of(dir: &Path) -> ProgramSpec {
        ProgramSpec {
            command: vec![],
            batch: 1,
            timeout: Duration::from_secs(5),
            dir: dir.to_path_buf(),
        }
    }
}
