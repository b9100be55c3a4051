//! Host-side logic of the sequence MDPs (docs/discovery.md "Sequence MDP" and
//! the "Policy" features paragraph).
//!
//! A state is a [`SeqState`]: a string of symbol indices `0..k` (position 0
//! first) and a leaf flag. The root is the empty non-leaf string; a terminal
//! state x is the leaf twin of a string of the final length L. Three variants
//! ([`SeqMdpKind`]) differ in how a symbol is added:
//!
//! * prepend/append (the one every task uses): `c+s` for each symbol `c` in
//!   alphabet order, then `s+c` for each `c`; parents `s[1:]`, `s[:-1]`;
//! * insert: any symbol at any position; parents are the distinct single
//!   deletions;
//! * autoregressive: append only; the single parent is `s[:-1]`.
//!
//! In every variant a string of length L has the leaf twin as its only child
//! (the stop action), so every complete trajectory has exactly L+1 transitions
//! (L+2 states, root and leaf included). The backward policy P_B is uniform
//! over the unique parents and has no parameters.
//!
//! Duplicates among the children (and parents) are merged keeping the first
//! occurrence. They are detected in O(1) per candidate instead of by comparing
//! strings: `c+s == s+d` only when `c == d` and `s` is empty or a run of `c`;
//! inserting `c` at positions `i < j` gives the same string only when
//! `s[i..j]` is all `c`, so an insertion is new exactly when its left
//! neighbour differs from `c`; likewise deleting position `i` repeats
//! deleting `i-1` exactly when `s[i] == s[i-1]`.
//!
//! Invalid states (content longer than L, a symbol `>= k`, or a leaf whose
//! content is not of length L) are never produced from valid ones; the
//! functions here answer them without panicking: no children, no parents,
//! `log_pb` of minus infinity and an empty backward trajectory.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Which actions build a string (docs/discovery.md "Sequence MDP").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SeqMdpKind {
    /// Prepend or append one symbol (`prepend_append`); used by all tasks.
    #[default]
    PrependAppend,
    /// Insert one symbol at any position (`insert`).
    Insert,
    /// Append one symbol (`autoregressive`; `append` is accepted too).
    #[serde(alias = "append")]
    Autoregressive,
}

/// Why [`SeqMdp::new`] refused its arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeqMdpError {
    /// Symbols are stored as `u8`, so the alphabet holds 1 to 256 symbols.
    #[error("alphabet size k = {0} is outside 1..=256")]
    AlphabetSize(usize),
    /// The feature dimension L*k does not fit in `usize`.
    #[error("feature dimension L*k = {len}*{k} overflows")]
    FeatureOverflow {
        /// Final length L.
        len: usize,
        /// Alphabet size k.
        k: usize,
    },
}

/// A state of a sequence MDP.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct SeqState {
    /// Symbol indices `0..k`, position 0 first.
    pub content: Vec<u8>,
    /// True for the terminal twin reached by the stop action.
    pub leaf: bool,
}

impl SeqState {
    /// The root: the empty string, not a leaf.
    pub fn root() -> Self {
        SeqState::default()
    }

    /// True for the root (empty content, not a leaf).
    pub fn is_root(&self) -> bool {
        self.content.is_empty() && !self.leaf
    }

    /// A non-leaf state with the given content.
    pub fn inner(content: impl Into<Vec<u8>>) -> Self {
        SeqState {
            content: content.into(),
            leaf: false,
        }
    }
}

/// A sequence MDP: variant, alphabet size k and final length L.
///
/// The fields are public for construction by literal; [`SeqMdp::new`]
/// validates them. No method panics whatever the fields hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SeqMdp {
    /// How symbols are added.
    pub kind: SeqMdpKind,
    /// Alphabet size k (symbols `0..k`).
    pub k: usize,
    /// Final length L of a terminal string.
    pub len: usize,
}

impl SeqMdp {
    /// An MDP of the given kind over `k` symbols with final length `len`;
    /// `k` must be in `1..=256` and `len * k` must fit in `usize`.
    pub fn new(kind: SeqMdpKind, k: usize, len: usize) -> Result<Self, SeqMdpError> {
        if !(1..=256).contains(&k) {
            return Err(SeqMdpError::AlphabetSize(k));
        }
        if len.checked_mul(k).is_none() {
            return Err(SeqMdpError::FeatureOverflow { len, k });
        }
        Ok(SeqMdp { kind, k, len })
    }

    /// The terminal state (leaf) of the given content. Whether it belongs to
    /// this MDP is checked by [`SeqMdp::is_terminal`].
    pub fn leaf_of(content: impl Into<Vec<u8>>) -> SeqState {
        SeqState {
            content: content.into(),
            leaf: true,
        }
    }

    /// True when `s` is a state of this MDP: content of length at most L with
    /// every symbol below k, and content of length exactly L if `s` is a leaf.
    pub fn is_valid(&self, s: &SeqState) -> bool {
        let n = s.content.len();
        n <= self.len
            && (!s.leaf || n == self.len)
            && s.content.iter().all(|&c| usize::from(c) < self.k)
    }

    /// True when `s` is a terminal state x of this MDP: a valid leaf.
    pub fn is_terminal(&self, s: &SeqState) -> bool {
        s.leaf && self.is_valid(s)
    }

    /// Number of transitions of every complete trajectory: L+1 (L symbols,
    /// then the stop action), in every variant.
    pub fn n_transitions(&self) -> usize {
        self.len.saturating_add(1)
    }

    /// The unique children of `s` in action order, duplicates merged keeping
    /// the first occurrence.
    ///
    /// * A leaf has none; a string of length L has its leaf twin only.
    /// * Prepend/append: `c+s` for `c = 0..k`, then `s+c` for `c = 0..k`
    ///   (`s+c` is dropped when it equals `c+s`, i.e. when `s` is empty or
    ///   all `c`), so the root has the k single symbols as children.
    /// * Insert: for position `i = 0..=|s|` in increasing order, for symbol
    ///   `c = 0..k` in alphabet order, `s[..i] + c + s[i..]`; dropped when
    ///   `i > 0` and `s[i-1] == c` (the same string came from position `i-1`).
    ///   There are `(|s|+1)(k-1)+1` of them.
    /// * Autoregressive: `s+c` for `c = 0..k`.
    ///
    /// An invalid state (see [`SeqMdp::is_valid`]) has none.
    pub fn children(&self, s: &SeqState) -> Vec<SeqState> {
        if s.leaf || !self.is_valid(s) {
            return Vec::new();
        }
        let n = s.content.len();
        if n == self.len {
            return vec![SeqMdp::leaf_of(s.content.clone())];
        }
        // A literal `k` above 256 cannot be spelled in `u8`: use the first 256.
        let symbols = (0..self.k.min(256)).map(|c| c as u8);
        let with = |i: usize, c: u8| {
            let mut v = Vec::with_capacity(n + 1);
            v.extend_from_slice(&s.content[..i]);
            v.push(c);
            v.extend_from_slice(&s.content[i..]);
            SeqState::inner(v)
        };
        match self.kind {
            SeqMdpKind::PrependAppend => {
                let mut out: Vec<SeqState> = symbols.clone().map(|c| with(0, c)).collect();
                let run = run_symbol(&s.content);
                out.extend(
                    symbols
                        .filter(|&c| !matches!(run, Run::Empty) && run != Run::Of(c))
                        .map(|c| with(n, c)),
                );
                out
            }
            SeqMdpKind::Insert => (0..=n)
                .flat_map(|i| symbols.clone().map(move |c| (i, c)))
                .filter(|&(i, c)| i == 0 || s.content[i - 1] != c)
                .map(|(i, c)| with(i, c))
                .collect(),
            SeqMdpKind::Autoregressive => symbols.map(|c| with(n, c)).collect(),
        }
    }

    /// The unique parents of `s`, duplicates merged keeping the first
    /// occurrence; the order is the one [`SeqMdp::sample_backward`] indexes.
    ///
    /// * A leaf: its non-leaf twin. The root: none.
    /// * Prepend/append: `[s[1:], s[:-1]]` (undo a prepend, then undo an
    ///   append), a single element when they are equal (`|s| = 1` or `s` a
    ///   run of one symbol).
    /// * Insert: `s` without position `i` for `i = 0..|s|` in increasing
    ///   order, dropped when `s[i] == s[i-1]`; one per run of equal symbols.
    /// * Autoregressive: `[s[:-1]]`.
    ///
    /// An invalid state (see [`SeqMdp::is_valid`]) has none.
    pub fn parents(&self, s: &SeqState) -> Vec<SeqState> {
        if !self.is_valid(s) {
            return Vec::new();
        }
        if s.leaf {
            return vec![SeqState::inner(s.content.clone())];
        }
        let c = &s.content;
        let n = c.len();
        if n == 0 {
            return Vec::new();
        }
        match self.kind {
            SeqMdpKind::PrependAppend => {
                let mut out = vec![SeqState::inner(&c[1..])];
                if !matches!(run_symbol(c), Run::Of(_)) {
                    out.push(SeqState::inner(&c[..n - 1]));
                }
                out
            }
            SeqMdpKind::Insert => (0..n)
                .filter(|&i| i == 0 || c[i] != c[i - 1])
                .map(|i| {
                    let mut v = Vec::with_capacity(n - 1);
                    v.extend_from_slice(&c[..i]);
                    v.extend_from_slice(&c[i + 1..]);
                    SeqState::inner(v)
                })
                .collect(),
            SeqMdpKind::Autoregressive => vec![SeqState::inner(&c[..n - 1])],
        }
    }

    /// Number of unique parents of `s` (the length of [`SeqMdp::parents`]),
    /// without building them.
    pub fn n_parents(&self, s: &SeqState) -> usize {
        if !self.is_valid(s) {
            return 0;
        }
        if s.leaf {
            return 1;
        }
        let c = &s.content;
        if c.is_empty() {
            return 0;
        }
        match self.kind {
            SeqMdpKind::PrependAppend => {
                if matches!(run_symbol(c), Run::Of(_)) {
                    1
                } else {
                    2
                }
            }
            SeqMdpKind::Insert => 1 + c.windows(2).filter(|w| w[0] != w[1]).count(),
            SeqMdpKind::Autoregressive => 1,
        }
    }

    /// True when `parent` is one of [`SeqMdp::parents`] of `child`.
    pub fn is_parent(&self, parent: &SeqState, child: &SeqState) -> bool {
        if !self.is_valid(child) || parent.leaf {
            return false;
        }
        if child.leaf {
            return parent.content == child.content;
        }
        let (p, c) = (&parent.content, &child.content);
        let n = c.len();
        if n == 0 || p.len() + 1 != n {
            return false;
        }
        match self.kind {
            SeqMdpKind::PrependAppend => p[..] == c[1..] || p[..] == c[..n - 1],
            SeqMdpKind::Insert => {
                let i = p.iter().zip(c).take_while(|(a, b)| a == b).count();
                p[i..] == c[i + 1..]
            }
            SeqMdpKind::Autoregressive => p[..] == c[..n - 1],
        }
    }

    /// log P_B(parent | child) of the uniform backward policy:
    /// `-ln(n_parents(child))`, so 0 for the leaf step and for any child with
    /// a single parent. Minus infinity when `parent` is not a parent of
    /// `child` (or `child` is invalid).
    pub fn log_pb(&self, parent: &SeqState, child: &SeqState) -> f64 {
        if !self.is_parent(parent, child) {
            return f64::NEG_INFINITY;
        }
        match self.n_parents(child) {
            0 | 1 => 0.0,
            m => -(m as f64).ln(),
        }
    }

    /// Length of the feature vector: L*k (saturating).
    pub fn feature_dim(&self) -> usize {
        self.len.saturating_mul(self.k)
    }

    /// The policy features of `s`: L*k floats, position `j < |s|` holding the
    /// one-hot of `s[j]` (index `j*k + s[j]`), the rest zero; a leaf and its
    /// twin have the same features.
    ///
    /// Writes `out[..min(out.len(), feature_dim)]` (zeroing it first) and
    /// leaves anything beyond untouched; positions `>= L` and symbols `>= k`
    /// of an invalid state are skipped.
    pub fn features(&self, s: &SeqState, out: &mut [f32]) {
        let m = out.len().min(self.feature_dim());
        let out = &mut out[..m];
        out.fill(0.0);
        for (j, &c) in s.content.iter().enumerate().take(self.len) {
            let c = usize::from(c);
            let index = j.checked_mul(self.k).and_then(|v| v.checked_add(c));
            if let (true, Some(slot)) = (c < self.k, index.and_then(|i| out.get_mut(i))) {
                *slot = 1.0;
            }
        }
    }

    /// Features of a batch: `[states.len(), feature_dim]`, row-major, row `i`
    /// as [`SeqMdp::features`] of `states[i]`.
    pub fn features_batch(&self, states: &[SeqState]) -> Vec<f32> {
        let dim = self.feature_dim();
        let mut out = vec![0.0; states.len().saturating_mul(dim)];
        if dim > 0 {
            for (row, s) in out.chunks_exact_mut(dim).zip(states) {
                self.features(s, row);
            }
        }
        out
    }

    /// A trajectory root..x drawn from the uniform P_B: the states in forward
    /// order, the root first and `x` last (L+2 states for a terminal `x`;
    /// `x` may also be any valid non-terminal state).
    ///
    /// Random draws, for reproducible streams: walking from `x` towards the
    /// root, at each state with `m > 1` parents exactly one
    /// `rng.random_range(0..m)` (a `usize` range) is drawn and the parent of
    /// that index in [`SeqMdp::parents`] order is taken; states with one
    /// parent draw nothing. For prepend/append that is one draw with `m = 2`
    /// (0: drop the first symbol, 1: drop the last) at each visited string of
    /// length >= 2 that is not a run of one symbol; the autoregressive MDP
    /// draws nothing; for insert, `m` is the number of runs of equal symbols.
    ///
    /// An invalid `x` (see [`SeqMdp::is_valid`]) gives an empty vector and
    /// draws nothing.
    pub fn sample_backward(&self, x: &SeqState, rng: &mut impl Rng) -> Vec<SeqState> {
        if !self.is_valid(x) {
            return Vec::new();
        }
        let mut path = Vec::with_capacity(x.content.len() + 2);
        let mut cur = x.clone();
        loop {
            let parents = self.parents(&cur);
            let m = parents.len();
            let pick = match m {
                0 => None,
                1 => Some(0),
                _ => Some(rng.random_range(0..m)),
            };
            let next = pick.and_then(|i| parents.into_iter().nth(i));
            path.push(cur);
            match next {
                Some(p) => cur = p,
                None => break,
            }
        }
        path.reverse();
        path
    }
}

/// Whether a string is empty, a run of one symbol, or mixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Empty,
    Of(u8),
    Mixed,
}

fn run_symbol(s: &[u8]) -> Run {
    match s.first() {
        None => Run::Empty,
        Some(&f) if s.iter().all(|&c| c == f) => Run::Of(f),
        Some(_) => Run::Mixed,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, VecDeque};

    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    const KINDS: [SeqMdpKind; 3] = [
        SeqMdpKind::PrependAppend,
        SeqMdpKind::Insert,
        SeqMdpKind::Autoregressive,
    ];

    /// A non-leaf state from digits, e.g. "010".
    fn st(s: &str) -> SeqState {
        SeqState::inner(s.bytes().map(|b| b - b'0').collect::<Vec<u8>>())
    }

    fn leaf(s: &str) -> SeqState {
        SeqMdp::leaf_of(st(s).content)
    }

    fn sts(v: &[&str]) -> Vec<SeqState> {
        v.iter().map(|s| st(s)).collect()
    }

    fn mdp(kind: SeqMdpKind, k: usize, len: usize) -> SeqMdp {
        SeqMdp::new(kind, k, len).unwrap()
    }

    /// Brute-force children: all candidates in the documented order, merged
    /// by a linear search (the definition the fast version must match).
    fn children_ref(m: &SeqMdp, s: &SeqState) -> Vec<SeqState> {
        if s.leaf {
            return vec![];
        }
        if s.content.len() == m.len {
            return vec![SeqMdp::leaf_of(s.content.clone())];
        }
        let n = s.content.len();
        let mut cand = Vec::new();
        let ins = |i: usize, c: u8| {
            let mut v = s.content.clone();
            v.insert(i, c);
            SeqState::inner(v)
        };
        match m.kind {
            SeqMdpKind::PrependAppend => {
                cand.extend((0..m.k as u8).map(|c| ins(0, c)));
                cand.extend((0..m.k as u8).map(|c| ins(n, c)));
            }
            SeqMdpKind::Insert => {
                for i in 0..=n {
                    cand.extend((0..m.k as u8).map(|c| ins(i, c)));
                }
            }
            SeqMdpKind::Autoregressive => cand.extend((0..m.k as u8).map(|c| ins(n, c))),
        }
        dedup(cand)
    }

    fn parents_ref(m: &SeqMdp, s: &SeqState) -> Vec<SeqState> {
        if s.leaf {
            return vec![SeqState::inner(s.content.clone())];
        }
        let n = s.content.len();
        if n == 0 {
            return vec![];
        }
        let del = |i: usize| {
            let mut v = s.content.clone();
            v.remove(i);
            SeqState::inner(v)
        };
        let cand = match m.kind {
            SeqMdpKind::PrependAppend => vec![del(0), del(n - 1)],
            SeqMdpKind::Insert => (0..n).map(del).collect(),
            SeqMdpKind::Autoregressive => vec![del(n - 1)],
        };
        dedup(cand)
    }

    fn dedup(cand: Vec<SeqState>) -> Vec<SeqState> {
        let mut out: Vec<SeqState> = Vec::new();
        for c in cand {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// Every state reachable from the root, by breadth-first search.
    fn reachable(m: &SeqMdp) -> Vec<SeqState> {
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([SeqState::root()]);
        seen.insert(SeqState::root());
        let mut out = Vec::new();
        while let Some(s) = queue.pop_front() {
            for c in m.children(&s) {
                if seen.insert(c.clone()) {
                    queue.push_back(c);
                }
            }
            out.push(s);
        }
        out
    }

    #[test]
    fn children_hand_cases() {
        let m = mdp(SeqMdpKind::PrependAppend, 2, 3);
        // Root: prepend 0, 1 -> "0", "1"; append gives the same strings.
        assert_eq!(m.children(&SeqState::root()), sts(&["0", "1"]));
        // "0": prepend "00", "10"; append "00" (merged), "01".
        assert_eq!(m.children(&st("0")), sts(&["00", "10", "01"]));
        // "01": prepend "001", "101"; append "010", "011"; all distinct.
        assert_eq!(m.children(&st("01")), sts(&["001", "101", "010", "011"]));
        // |s| = L: the stop action only.
        assert_eq!(m.children(&st("010")), vec![leaf("010")]);
        assert_eq!(m.children(&leaf("010")), vec![]);
        // "11": prepend "011", "111"; append "110", "111" (merged).
        assert_eq!(m.children(&st("11")), sts(&["011", "111", "110"]));
    }

    #[test]
    fn parents_hand_cases() {
        let m = mdp(SeqMdpKind::PrependAppend, 2, 3);
        // s[1:] = "1", s[:-1] = "0".
        assert_eq!(m.parents(&st("01")), sts(&["1", "0"]));
        // s[1:] = s[:-1] = "0": merged.
        assert_eq!(m.parents(&st("00")), sts(&["0"]));
        assert_eq!(m.parents(&leaf("010")), sts(&["010"]));
        // |s| = 1: s[1:] = s[:-1] = root.
        assert_eq!(m.parents(&st("1")), vec![SeqState::root()]);
        assert_eq!(m.parents(&SeqState::root()), vec![]);
        // "010": s[1:] = "10", s[:-1] = "01".
        assert_eq!(m.parents(&st("010")), sts(&["10", "01"]));
        for s in [st("01"), st("00"), leaf("010"), st("1"), st("010"), st("")] {
            assert_eq!(m.n_parents(&s), m.parents(&s).len(), "{s:?}");
        }
    }

    #[test]
    fn log_pb_uniform_over_parents() {
        let m = mdp(SeqMdpKind::PrependAppend, 2, 3);
        let ln2 = std::f64::consts::LN_2;
        // "01" has two parents "1" and "0": P_B = 1/2 each.
        assert!((m.log_pb(&st("1"), &st("01")) + ln2).abs() < 1e-12);
        assert!((m.log_pb(&st("0"), &st("01")) + ln2).abs() < 1e-12);
        // "00" has the single parent "0".
        assert_eq!(m.log_pb(&st("0"), &st("00")), 0.0);
        // Leaf step.
        assert_eq!(m.log_pb(&st("010"), &leaf("010")), 0.0);
        // |s| = 1: the root is the only parent.
        assert_eq!(m.log_pb(&SeqState::root(), &st("1")), 0.0);
        // Not a parent: probability 0.
        assert_eq!(m.log_pb(&st("1"), &st("00")), f64::NEG_INFINITY);
        assert_eq!(m.log_pb(&leaf("01"), &st("010")), f64::NEG_INFINITY);
        assert_eq!(m.log_pb(&st("0"), &st("010")), f64::NEG_INFINITY);
        // Insert: "010" has 3 parents -> -ln 3.
        let mi = mdp(SeqMdpKind::Insert, 2, 3);
        assert!((mi.log_pb(&st("00"), &st("010")) + 3f64.ln()).abs() < 1e-12);
        // Autoregressive: always one parent.
        let ma = mdp(SeqMdpKind::Autoregressive, 2, 3);
        assert_eq!(ma.log_pb(&st("01"), &st("010")), 0.0);
        assert_eq!(ma.log_pb(&st("10"), &st("010")), f64::NEG_INFINITY);
    }

    #[test]
    fn consistency_on_small_spaces() {
        for kind in KINDS {
            for (k, len) in [(3, 3), (2, 4), (1, 3), (4, 2)] {
                let m = mdp(kind, k, len);
                let all = reachable(&m);
                let set: BTreeSet<_> = all.iter().cloned().collect();
                let mut terminals = 0;
                for s in &all {
                    assert!(m.is_valid(s));
                    let ch = m.children(s);
                    let pa = m.parents(s);
                    // Fast dedup matches the brute-force definition, order included.
                    assert_eq!(ch, children_ref(&m, s), "{kind:?} {s:?}");
                    assert_eq!(pa, parents_ref(&m, s), "{kind:?} {s:?}");
                    assert_eq!(m.n_parents(s), pa.len());
                    if kind == SeqMdpKind::Insert && !s.leaf && s.content.len() < len {
                        assert_eq!(ch.len(), (s.content.len() + 1) * (k - 1) + 1);
                    }
                    for c in &ch {
                        assert!(m.parents(c).contains(s), "{kind:?} {s:?} -> {c:?}");
                        assert!(m.is_parent(s, c));
                        assert!(m.log_pb(s, c).is_finite());
                    }
                    for p in &pa {
                        assert!(set.contains(p));
                        assert!(m.children(p).contains(s), "{kind:?} {p:?} -> {s:?}");
                    }
                    // P_B sums to one over the parents.
                    if !pa.is_empty() {
                        let total: f64 = pa.iter().map(|p| m.log_pb(p, s).exp()).sum();
                        assert!((total - 1.0).abs() < 1e-12);
                    }
                    assert_eq!(m.is_terminal(s), s.leaf);
                    if m.is_terminal(s) {
                        terminals += 1;
                        assert!(ch.is_empty());
                    }
                }
                // Every string of length L is reachable, once, as a leaf.
                assert_eq!(terminals, k.pow(len as u32), "{kind:?} k={k} L={len}");
            }
        }
    }

    #[test]
    fn backward_sampling_valid_trajectories() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for kind in KINDS {
            let m = mdp(kind, 3, 4);
            for _ in 0..200 {
                let content: Vec<u8> = (0..m.len).map(|_| rng.random_range(0..3u8)).collect();
                let x = SeqMdp::leaf_of(content);
                let traj = m.sample_backward(&x, &mut rng);
                assert_eq!(traj.len(), m.len + 2);
                assert_eq!(traj.len(), m.n_transitions() + 1);
                assert_eq!(traj.first(), Some(&SeqState::root()));
                assert_eq!(traj.last(), Some(&x));
                for w in traj.windows(2) {
                    assert!(m.children(&w[0]).contains(&w[1]), "{kind:?} {w:?}");
                }
            }
        }
    }

    /// Empirical frequencies of the trajectories to `x` match the products
    /// of the uniform P_B along them.
    fn check_frequencies(m: &SeqMdp, x: &SeqState, expected: &[(Vec<SeqState>, f64)]) {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let n = 40_000;
        let mut counts: BTreeMap<Vec<SeqState>, usize> = BTreeMap::new();
        for _ in 0..n {
            *counts.entry(m.sample_backward(x, &mut rng)).or_default() += 1;
        }
        assert_eq!(counts.len(), expected.len());
        for (traj, p) in expected {
            let prod: f64 = traj
                .windows(2)
                .map(|w| m.log_pb(&w[0], &w[1]))
                .sum::<f64>()
                .exp();
            assert!((prod - p).abs() < 1e-12, "{traj:?}");
            let freq = counts.get(traj).copied().unwrap_or(0) as f64 / n as f64;
            // Standard error at most 0.0025; allow 6 of them.
            assert!((freq - p).abs() < 0.015, "{traj:?}: {freq} vs {p}");
        }
    }

    #[test]
    fn backward_sampling_frequencies() {
        let m = mdp(SeqMdpKind::PrependAppend, 2, 3);
        let r = SeqState::root();
        // x = "010": "010" has parents "10", "01" (1/2 each); "10" has parents
        // "0", "1" (1/2 each), as does "01". Four trajectories of 1/4 each.
        let x = leaf("010");
        let t = |a: &str, b: &str| vec![r.clone(), st(a), st(b), st("010"), x.clone()];
        check_frequencies(
            &m,
            &x,
            &[
                (t("0", "10"), 0.25),
                (t("1", "10"), 0.25),
                (t("0", "01"), 0.25),
                (t("1", "01"), 0.25),
            ],
        );
        // x = "001": parents "01" and "00" (1/2 each); "01" -> "1" or "0"
        // (1/2 each), "00" -> "0" only. Probabilities 1/4, 1/4, 1/2.
        let x = leaf("001");
        let t = |a: &str, b: &str| vec![r.clone(), st(a), st(b), st("001"), x.clone()];
        check_frequencies(
            &m,
            &x,
            &[
                (t("1", "01"), 0.25),
                (t("0", "01"), 0.25),
                (t("0", "00"), 0.5),
            ],
        );
    }

    #[test]
    fn backward_sampling_draws_as_documented() {
        let m = mdp(SeqMdpKind::PrependAppend, 2, 3);
        // "000" and its ancestors each have one parent: no draw at all.
        let mut a = ChaCha8Rng::seed_from_u64(3);
        let mut b = a.clone();
        let traj = m.sample_backward(&leaf("000"), &mut a);
        assert_eq!(
            traj,
            vec![st(""), st("0"), st("00"), st("000"), leaf("000")]
        );
        assert_eq!(a.next_u64(), b.next_u64());
        // "010": draw at "010" then at the chosen length-2 string, each
        // random_range(0..2) indexing parents() order.
        let mut a = ChaCha8Rng::seed_from_u64(5);
        let mut b = a.clone();
        let traj = m.sample_backward(&leaf("010"), &mut a);
        let i = b.random_range(0..2usize);
        let mid = m.parents(&st("010"))[i].clone();
        let j = b.random_range(0..2usize);
        let first = m.parents(&mid)[j].clone();
        assert_eq!(traj, vec![st(""), first, mid, st("010"), leaf("010")]);
        assert_eq!(a.next_u64(), b.next_u64());
        // Autoregressive never draws.
        let ma = mdp(SeqMdpKind::Autoregressive, 2, 3);
        let mut a = ChaCha8Rng::seed_from_u64(9);
        let mut b = a.clone();
        let traj = ma.sample_backward(&leaf("011"), &mut a);
        assert_eq!(
            traj,
            vec![st(""), st("0"), st("01"), st("011"), leaf("011")]
        );
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn insert_and_autoregressive_hand_cases() {
        let mi = mdp(SeqMdpKind::Insert, 2, 3);
        // "01": position 0: "001", "101"; position 1: 0 -> "001" (dup, left
        // neighbour is 0), 1 -> "011"; position 2: 0 -> "010", 1 -> "011" (dup).
        assert_eq!(mi.children(&st("01")), sts(&["001", "101", "011", "010"]));
        // "00": position 0: "000", "100"; position 1: "010"; position 2: "001".
        assert_eq!(mi.children(&st("00")), sts(&["000", "100", "010", "001"]));
        assert_eq!(mi.children(&SeqState::root()), sts(&["0", "1"]));
        // Deleting position 0, 1, 2 of "010" -> "10", "00", "01".
        assert_eq!(mi.parents(&st("010")), sts(&["10", "00", "01"]));
        // "001": deleting 0 -> "01", 1 -> "01" (dup), 2 -> "00".
        assert_eq!(mi.parents(&st("001")), sts(&["01", "00"]));
        assert_eq!(mi.parents(&st("000")), sts(&["00"]));
        assert_eq!(mi.parents(&leaf("001")), sts(&["001"]));

        let ma = mdp(SeqMdpKind::Autoregressive, 2, 3);
        assert_eq!(ma.children(&SeqState::root()), sts(&["0", "1"]));
        assert_eq!(ma.children(&st("01")), sts(&["010", "011"]));
        assert_eq!(ma.children(&st("011")), vec![leaf("011")]);
        assert_eq!(ma.parents(&st("01")), sts(&["0"]));
        assert_eq!(ma.parents(&st("1")), vec![SeqState::root()]);
    }

    #[test]
    fn features_one_hot() {
        let m = mdp(SeqMdpKind::PrependAppend, 2, 3);
        assert_eq!(m.feature_dim(), 6);
        let mut out = [9.0f32; 6];
        // Position 0 holds 1 -> [0,1]; position 1 holds 0 -> [1,0]; empty -> [0,0].
        m.features(&st("10"), &mut out);
        assert_eq!(out, [0., 1., 1., 0., 0., 0.]);
        let mut twin = [9.0f32; 6];
        m.features(&leaf("101"), &mut twin);
        m.features(&st("101"), &mut out);
        assert_eq!(out, twin);
        assert_eq!(out, [0., 1., 1., 0., 0., 1.]);
        m.features(&SeqState::root(), &mut out);
        assert_eq!(out, [0.; 6]);
        let batch = m.features_batch(&[st("10"), SeqState::root(), leaf("101")]);
        assert_eq!(
            batch,
            vec![0., 1., 1., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 1., 1., 0., 0., 1.]
        );
        // A short buffer is filled as far as it goes; a long one beyond L*k is untouched.
        let mut short = [9.0f32; 3];
        m.features(&st("10"), &mut short);
        assert_eq!(short, [0., 1., 1.]);
        let mut long = [9.0f32; 8];
        m.features(&st("10"), &mut long);
        assert_eq!(long, [0., 1., 1., 0., 0., 0., 9., 9.]);
    }

    #[test]
    fn invalid_input_does_not_panic() {
        assert_eq!(
            SeqMdp::new(SeqMdpKind::Insert, 0, 3),
            Err(SeqMdpError::AlphabetSize(0))
        );
        assert_eq!(
            SeqMdp::new(SeqMdpKind::Insert, 257, 3),
            Err(SeqMdpError::AlphabetSize(257))
        );
        assert!(matches!(
            SeqMdp::new(SeqMdpKind::Insert, 2, usize::MAX),
            Err(SeqMdpError::FeatureOverflow { .. })
        ));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for kind in KINDS {
            let m = mdp(kind, 2, 3);
            // Symbol out of range, too long, leaf of the wrong length.
            for s in [st("02"), st("0101"), leaf("01")] {
                assert!(!m.is_valid(&s));
                assert!(!m.is_terminal(&s));
                assert_eq!(m.children(&s), vec![]);
                assert_eq!(m.parents(&s), vec![]);
                assert_eq!(m.n_parents(&s), 0);
                assert_eq!(m.sample_backward(&s, &mut rng), vec![]);
                let mut out = [0.0f32; 6];
                m.features(&s, &mut out);
            }
            assert_eq!(m.log_pb(&st("01"), &leaf("01")), f64::NEG_INFINITY);
            // A non-terminal valid state: the trajectory stops at it.
            assert_eq!(m.sample_backward(&st("1"), &mut rng), vec![st(""), st("1")]);
            // Degenerate literal MDPs do not panic.
            for (k, len) in [(0, 2), (2, 0), (0, 0)] {
                let d = SeqMdp { kind, k, len };
                let _ = d.children(&SeqState::root());
                assert!(d.features_batch(&[SeqState::root()]).is_empty() || d.feature_dim() > 0);
                let _ = d.sample_backward(&SeqMdp::leaf_of(vec![]), &mut rng);
            }
        }
        // L = 0: the root's only child is the empty leaf (one transition).
        let z = SeqMdp {
            kind: SeqMdpKind::PrependAppend,
            k: 2,
            len: 0,
        };
        assert_eq!(z.children(&SeqState::root()), vec![leaf("")]);
        assert_eq!(
            z.sample_backward(&leaf(""), &mut rng),
            vec![st(""), leaf("")]
        );
    }

    #[test]
    fn kind_serde_names() {
        for (kind, name) in [
            (SeqMdpKind::PrependAppend, "prepend_append"),
            (SeqMdpKind::Insert, "insert"),
            (SeqMdpKind::Autoregressive, "autoregressive"),
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<SeqMdpKind>(&json).unwrap(), kind);
        }
    }
}
