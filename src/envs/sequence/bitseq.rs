//! The bit sequences of Malkin et al. 2022 ("Trajectory balance", the
//! benchmark torchgfn calls `BitSequence`), as a built-in sequence task
//! (`[env] kind = "bitseq"`, docs/discovery.md "Bit sequences").
//!
//! A string is n bits written as n / k words of k bits; a word is one symbol
//! of an alphabet of 2^k letters (`0-9a-v`...; word w is the w-th letter, its
//! bits most significant first). The modes M are `n_modes` distinct strings,
//! each a concatenation of n / 8 blocks drawn uniformly from five 8-bit
//! patterns (00000000, 11111111, 11110000, 00001111, 00111100), drawn from
//! the task's own seeded stream (`mode_seed`). The reward is
//!
//!   R(x) = exp(-d(x, M) / temperature),  d(x, M) = min_m Hamming(x, m)
//!
//! in bits. The sequence tasks' reward pipeline is R = max(r, 0.001)^beta ·
//! scale; here the oracle's raw value is r(x) = exp(-d(x, M) / n) (in
//! [e^-1, 1], never floored), the default beta is n / temperature and the
//! scale is 1, so that log R = -d(x, M) / temperature exactly as the
//! reference defines it. The whole space (2^n strings) cannot be enumerated:
//! log Z and E[r] are unknown (`log_z_gap`, `expected_reward_gap` and `eubo`
//! are left empty).
//!
//! Metrics of the benchmark, through the sequence tasks' columns:
//! * `num_modes_all` / `num_modes_onpolicy`: the modes reached, a mode
//!   counting when a sample lies within Hamming distance `threshold` of it;
//! * `pearson`: the correlation of log p(x) (the sum of log P_F of the
//!   string's trajectory: exact for the default append-only MDP, whose
//!   strings have one trajectory each) and log R(x) over a test set of
//!   `test_per_mode` strings per mode, each the mode with a uniformly random
//!   number (0 to n-1) of its bits flipped at distinct random positions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use rand::seq::SliceRandom as _;
use rand::Rng as _;
use rand::SeedableRng as _;

use crate::check::Invalid;
use crate::envs::sequence::mdp::SeqMdpKind;
use crate::envs::sequence::oracle::{
    fnv1a, ConstantsSource, ExactSource, Oracle, OracleBuilder, OracleSource, RewardFloor, Task,
    TaskSpec, FNV_OFFSET,
};
use crate::rng::Rng;

/// The five 8-bit patterns the modes are made of (the reference's `H`).
pub const PATTERNS: [[u8; 8]; 5] = [
    [0, 0, 0, 0, 0, 0, 0, 0],
    [1, 1, 1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 0, 0, 0, 0],
    [0, 0, 0, 0, 1, 1, 1, 1],
    [0, 0, 1, 1, 1, 1, 0, 0],
];

/// Letters of the words, in order (word w is `LETTERS[w]`).
const LETTERS: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";

/// `[env] kind = "bitseq"`: the bit-sequence benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BitSeqConfig {
    /// Bits n of a string (a multiple of 8 and of `k`; default 120).
    pub n: usize,
    /// Bits k of a word, one action (1 to 6; default 4, so 2^4 = 16 letters).
    pub k: usize,
    /// Number of modes |M| (default 60).
    pub n_modes: usize,
    /// Temperature of the reward exp(-d(x, M) / temperature) (default 1).
    pub temperature: f64,
    /// Seed of the draw of the modes and of the test set (default 0).
    pub mode_seed: u64,
    /// A mode counts as reached by a sample within this Hamming distance
    /// (bits; default n / 4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<usize>,
    /// Test strings per mode for `pearson` (default 10).
    pub test_per_mode: usize,
    /// Reward exponent beta over r(x) = exp(-d(x, M) / n). Unset: n /
    /// temperature, which gives R(x) = exp(-d(x, M) / temperature).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// How a string is built: `append` (default: the benchmark's append-only
    /// MDP), `prepend_append` or `insert`.
    pub mdp: SeqMdpKind,
}

impl Default for BitSeqConfig {
    fn default() -> Self {
        BitSeqConfig {
            n: 120,
            k: 4,
            n_modes: 60,
            temperature: 1.0,
            mode_seed: 0,
            threshold: None,
            test_per_mode: 10,
            beta: None,
            mdp: SeqMdpKind::Autoregressive,
        }
    }
}

impl BitSeqConfig {
    /// Range checks, naming the key.
    pub fn check(&self) -> Result<(), Invalid> {
        let bad = |k: &str, m: String| Err(Invalid::new(k, m));
        if !(1..=6).contains(&self.k) {
            return bad("env.k", format!("is {}; must be in 1..=6", self.k));
        }
        if self.n == 0 || !self.n.is_multiple_of(8) || !self.n.is_multiple_of(self.k) {
            return bad(
                "env.n",
                format!(
                    "is {}; must be a positive multiple of 8 (the modes' blocks) and of env.k = {}",
                    self.n, self.k
                ),
            );
        }
        if self.n / self.k > super::declared::MAX_LENGTH {
            return bad(
                "env.n",
                format!(
                    "n / k = {} words; at most {} (raise env.k)",
                    self.n / self.k,
                    super::declared::MAX_LENGTH
                ),
            );
        }
        let blocks = (self.n / 8) as f64;
        if self.n_modes == 0 || self.n_modes as f64 > 5f64.powf(blocks) {
            return bad(
                "env.n_modes",
                format!(
                    "is {}; must be in 1..={} (the distinct strings of n/8 = {} blocks of 5 patterns)",
                    self.n_modes,
                    5f64.powf(blocks),
                    self.n / 8
                ),
            );
        }
        if self.n_modes > 100_000 {
            return bad(
                "env.n_modes",
                format!("is {}; at most 100000", self.n_modes),
            );
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return bad(
                "env.temperature",
                format!("is {}; must be positive", self.temperature),
            );
        }
        if let Some(t) = self.threshold {
            if t > self.n {
                return bad(
                    "env.threshold",
                    format!("is {t}; at most env.n = {}", self.n),
                );
            }
        }
        if self.test_per_mode == 0 || self.test_per_mode > 1000 {
            return bad(
                "env.test_per_mode",
                format!("is {}; must be in 1..=1000", self.test_per_mode),
            );
        }
        if let Some(b) = self.beta {
            if !(b.is_finite() && b > 0.0) {
                return bad("env.beta", format!("is {b}; must be a positive number"));
            }
        }
        Ok(())
    }

    /// The fields every sequence task shares (beta resolved).
    pub fn sequence(&self) -> crate::envs::sequence::task::SeqEnvConfig {
        crate::envs::sequence::task::SeqEnvConfig {
            beta: Some(self.beta.unwrap_or(self.n as f64 / self.temperature)),
            mdp: self.mdp,
        }
    }

    /// The task's row of the task table (checked config).
    pub fn task(&self) -> Task {
        let builder: &'static BitSeqBuilder =
            Box::leak(Box::new(BitSeqBuilder { cfg: self.clone() }));
        Task::declare(TaskSpec {
            name: "bitseq",
            alphabet: &LETTERS[..1 << self.k],
            letters: crate::envs::sequence::oracle::letters_for(&LETTERS[..1 << self.k]),
            length: self.n / self.k,
            beta: self.n as f64 / self.temperature,
            r_max: 1.0,
            fixed_scale: Some(1.0),
            floor: RewardFloor::Max(f64::MIN_POSITIVE),
            modes_file: None,
            oracle: OracleSource::Built(builder),
            constants: ConstantsSource::Unknown { log_scale: 0.0 },
            exact: ExactSource::TestSet,
            rounds: 2000,
            eval_every: 50,
            ls_k: 3,
            epsilon: 0.01,
            hidden: 128,
        })
    }
}

/// Builds the oracle of a bit-sequence task from its settings.
#[derive(Debug)]
struct BitSeqBuilder {
    cfg: BitSeqConfig,
}

impl OracleBuilder for BitSeqBuilder {
    fn build(&self, task: Task) -> Box<dyn Oracle> {
        Box::new(BitSeqOracle::new(task, &self.cfg))
    }
}

/// The bit-sequence reward: distances to the modes, bit-packed.
pub struct BitSeqOracle {
    task: Task,
    n: usize,
    k: usize,
    threshold: usize,
    test_per_mode: usize,
    seed: u64,
    /// Each mode's bits packed into u64 words, `[n_modes, words]`.
    modes: Vec<u64>,
    words: usize,
}

impl BitSeqOracle {
    /// The oracle of `cfg` (checked) for `task`: draws the modes.
    pub fn new(task: Task, cfg: &BitSeqConfig) -> Self {
        let words = cfg.n.div_ceil(64);
        let mut rng = Rng::seed_from_u64(cfg.mode_seed);
        let blocks = cfg.n / 8;
        let mut seen = std::collections::HashSet::new();
        let mut modes = Vec::with_capacity(cfg.n_modes * words);
        while seen.len() < cfg.n_modes {
            let pick: Vec<u8> = (0..blocks).map(|_| rng.random_range(0..5u8)).collect();
            if seen.insert(pick.clone()) {
                let bits: Vec<u8> = pick.iter().flat_map(|&p| PATTERNS[p as usize]).collect();
                modes.extend(pack(&bits, words));
            }
        }
        BitSeqOracle {
            task,
            n: cfg.n,
            k: cfg.k,
            threshold: cfg.threshold.unwrap_or(cfg.n / 4),
            test_per_mode: cfg.test_per_mode,
            seed: cfg.mode_seed,
            modes,
            words,
        }
    }

    /// The bits of string `x` (words of k bits, most significant first).
    pub fn bits(&self, x: &[u8]) -> Vec<u8> {
        x.iter()
            .flat_map(|&w| (0..self.k).rev().map(move |b| (w >> b) & 1))
            .collect()
    }

    /// The string of `bits`.
    fn string(&self, bits: &[u8]) -> Vec<u8> {
        bits.chunks(self.k)
            .map(|c| c.iter().fold(0u8, |acc, &b| (acc << 1) | b))
            .collect()
    }

    /// The Hamming distance of `x`'s bits to each mode.
    fn distances(&self, x: &[u8]) -> Option<Vec<u32>> {
        if !self.task.is_valid(x) {
            return None;
        }
        let xb = pack(&self.bits(x), self.words);
        Some(
            self.modes
                .chunks_exact(self.words)
                .map(|m| m.iter().zip(&xb).map(|(a, b)| (a ^ b).count_ones()).sum())
                .collect(),
        )
    }

    /// The mode strings (for tests and docs).
    pub fn mode_strings(&self) -> Vec<Vec<u8>> {
        self.modes
            .chunks_exact(self.words)
            .map(|m| {
                let bits: Vec<u8> = (0..self.n)
                    .map(|i| ((m[i / 64] >> (i % 64)) & 1) as u8)
                    .collect();
                self.string(&bits)
            })
            .collect()
    }
}

/// `bits` (0/1) packed little-endian into `words` u64s.
fn pack(bits: &[u8], words: usize) -> Vec<u64> {
    let mut out = vec![0u64; words];
    for (i, &b) in bits.iter().enumerate() {
        out[i / 64] |= (b as u64) << (i % 64);
    }
    out
}

impl Oracle for BitSeqOracle {
    fn task(&self) -> Task {
        self.task
    }

    /// r(x) = exp(-d(x, M) / n); NaN for an invalid string.
    fn raw(&self, x: &[u8]) -> f64 {
        match self.distances(x) {
            Some(d) => (-(*d.iter().min().expect("modes") as f64) / self.n as f64).exp(),
            None => f64::NAN,
        }
    }

    fn fingerprint(&self) -> u64 {
        let mut h = FNV_OFFSET;
        for m in &self.modes {
            h = fnv1a(h, &m.to_le_bytes());
        }
        h
    }

    fn modes_near(&self, x: &[u8], out: &mut Vec<u32>) -> bool {
        out.clear();
        if let Some(d) = self.distances(x) {
            out.extend(
                d.iter()
                    .zip(0u32..)
                    .filter(|(&d, _)| d as usize <= self.threshold)
                    .map(|(_, i)| i),
            );
        }
        true
    }

    /// Each mode `test_per_mode` times with a uniform number of distinct bits
    /// flipped (the draw uses the task's seed, not `rng`: the test set is a
    /// property of the task, the same for every run seed).
    fn test_set(&self, _rng: &mut Rng) -> Vec<Vec<u8>> {
        let mut rng = Rng::seed_from_u64(self.seed ^ 0x07e5_75e7);
        let mut out = Vec::new();
        let mut positions: Vec<usize> = (0..self.n).collect();
        for m in self.mode_strings() {
            let bits = self.bits(&m);
            for _ in 0..self.test_per_mode {
                let flips = rng.random_range(0..self.n);
                positions.shuffle(&mut rng);
                let mut b = bits.clone();
                for &p in &positions[..flips] {
                    b[p] ^= 1;
                }
                out.push(self.string(&b));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oracle(text: &str) -> (Task, BitSeqOracle) {
        let cfg: BitSeqConfig = toml::from_str(text).unwrap();
        cfg.check().unwrap();
        let task = cfg.task();
        (task, BitSeqOracle::new(task, &cfg))
    }

    /// By hand, n = 8, k = 4, one mode: the mode is one of the five patterns
    /// (its two words); one bit off is distance 1: r = e^-1/8, and with
    /// the default beta = n / T = 8, R = e^-1.
    #[test]
    fn rewards_and_modes_by_hand() {
        let (task, o) = oracle("n = 8\nk = 4\nn_modes = 1\nthreshold = 1\n");
        assert_eq!(task.alphabet(), "0123456789abcdef");
        assert_eq!(task.length(), 2);
        let modes = o.mode_strings();
        assert_eq!(modes.len(), 1);
        let m = &modes[0];
        let bits = o.bits(m);
        assert!(PATTERNS.iter().any(|p| p[..] == bits[..]), "{bits:?}");
        assert_eq!(o.raw(m), 1.0);
        let mut off = m.clone();
        off[1] ^= 1; // the last bit
        assert_eq!(o.raw(&off), (-1.0f64 / 8.0).exp());
        let beta = task.spec().beta;
        assert_eq!(beta, 8.0);
        assert!((beta * o.raw(&off).ln() - -1.0).abs() < 1e-15);
        let mut near = Vec::new();
        assert!(o.modes_near(&off, &mut near));
        assert_eq!(near, vec![0]);
        let mut far = m.clone();
        far[0] ^= 0b1100; // two more bits
        far[1] ^= 1;
        o.modes_near(&far, &mut near);
        assert!(near.is_empty());
        assert_eq!(o.raw(&far), (-3.0f64 / 8.0).exp());
        assert!(o.raw(&[16, 0]).is_nan());
    }

    /// The default task: 60 distinct modes of 120 bits made of the patterns,
    /// 30 words of 16 letters; the test set has 10 strings per mode, each at
    /// the distance of its flips from its mode (or nearer another).
    #[test]
    fn default_task_and_test_set() {
        let (task, o) = oracle("");
        assert_eq!((task.k(), task.length()), (16, 30));
        let modes = o.mode_strings();
        assert_eq!(modes.len(), 60);
        let distinct: std::collections::HashSet<_> = modes.iter().collect();
        assert_eq!(distinct.len(), 60);
        for m in &modes {
            let bits = o.bits(m);
            for block in bits.chunks(8) {
                assert!(PATTERNS.iter().any(|p| p[..] == *block));
            }
            assert_eq!(o.raw(m), 1.0);
        }
        let mut rng = crate::rng::stream(0, crate::rng::Stream::Eval);
        let t = o.test_set(&mut rng);
        assert_eq!(t.len(), 600);
        assert_eq!(
            t,
            o.test_set(&mut crate::rng::stream(9, crate::rng::Stream::Eval))
        );
        assert!(t.iter().all(|x| task.is_valid(x)));
        // Same seed, same modes; another seed, others.
        assert_eq!(oracle("").1.mode_strings(), modes);
        assert_ne!(oracle("mode_seed = 1").1.mode_strings(), modes);
    }

    #[test]
    fn config_errors_name_the_key() {
        let why = |t: &str| {
            toml::from_str::<BitSeqConfig>(t)
                .unwrap()
                .check()
                .unwrap_err()
                .to_string()
        };
        assert!(why("k = 7").contains("`env.k`"));
        assert!(why("n = 12\nk = 4").contains("`env.n`"));
        assert!(why("n = 120\nk = 1").contains("at most 64"));
        assert!(why("n = 8\nn_modes = 6").contains("`env.n_modes`"));
        assert!(why("temperature = 0").contains("`env.temperature`"));
        assert!(why("threshold = 121").contains("`env.threshold`"));
        assert!(toml::from_str::<BitSeqConfig>("colour = 1").is_err());
    }
}
