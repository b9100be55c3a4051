//! Replay buffer with FIFO eviction and rank-based prioritised sampling.
//!
//! This follows the replay buffer of "Adaptive Teachers for Amortized
//! Samplers" (ICLR 2025):
//!
//! - Entries store a value `V` (for example a state and its reward) and a
//!   priority (`f64`), and optionally a key `K` (a terminal state, or a
//!   transition) for de-duplication: [`ReplayBuffer::add`] takes a key,
//!   [`ReplayBuffer::push`] none (states that cannot be hashed, such as
//!   continuous ones).
//! - Adding a key that is already present replaces its value and priority and
//!   moves it to the newest position. Adding a new entry to a full buffer
//!   evicts the oldest entry (FIFO).
//! - Sampling is with replacement. Uniform sampling draws every entry with
//!   probability `1 / N`. Prioritised sampling is rank based: entries are
//!   ranked by descending priority (rank 0 = highest), rank `r` gets weight
//!   `1 / (rank_weight * N + r)`, and the weights are normalised.
//!   `N` is the current number of entries.
//! - Ties in priority are broken by FIFO order, older entry first (a stable
//!   sort by descending priority over the entries in oldest-to-newest order).
//!   NaN priorities rank below every other priority (including `-inf`);
//!   several NaN entries keep their FIFO order among themselves.
//!
//! Determinism: nothing depends on `HashMap` iteration order; every iteration
//! is in FIFO order, and every sample consumes exactly one
//! `rng.random::<f64>()`. The same sequence of `add` calls and the same RNG
//! state therefore give the same samples.
//!
//! Implementation: entries live in a slab (`Vec<Option<Entry>>` plus a free
//! list) and a `HashMap<K, slot>` finds a key's slot. FIFO order is a
//! `VecDeque<(seq, slot)>` of insertion records; a record is live when the
//! entry in its slot carries the same sequence number. Re-adding a key gives
//! it a new sequence number and pushes a new record, leaving the old one
//! stale; stale records are skipped lazily and dropped in one pass when the
//! deque grows past about twice the number of entries. `add` is O(1)
//! amortised; uniform `sample` is O(N + n) at worst (no sorting); prioritised
//! `sample` is O(N log N + n log N).

mod config;
pub mod recent;

pub use config::{Priority, RecentBufferConfig, TerminalBufferConfig, TransitionBufferConfig};

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use serde::{Deserialize, Serialize};

/// Default `rank_weight` of rank-based prioritised sampling (the paper's `k`).
pub const DEFAULT_RANK_WEIGHT: f64 = 0.01;

/// One stored entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry<K, V> {
    key: Option<K>,
    value: V,
    priority: f64,
    /// Sequence number of the entry's latest insertion; matches exactly one
    /// record of the FIFO deque (the live one).
    seq: u64,
}

/// A keyed replay buffer with FIFO eviction and uniform or rank-based
/// prioritised sampling with replacement (see the module documentation).
///
/// Serializable whole (checkpoints): slots, free list, index and FIFO
/// records, so a restored buffer evicts and samples as the original.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash, V: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, V: Deserialize<'de>"
))]
pub struct ReplayBuffer<K, V> {
    /// Maximum number of entries, at least 1.
    capacity: usize,
    /// Rank-based prioritised sampling when true, uniform otherwise.
    prioritized: bool,
    /// The `k` of the rank weight `1 / (k * N + rank)`; finite and positive.
    rank_weight: f64,
    /// Slab of entries; `None` marks a free slot (listed in `free`).
    slots: Vec<Option<Entry<K, V>>>,
    /// Free slot indices of `slots`.
    free: Vec<usize>,
    /// Key -> slot index of its entry (keyed entries only).
    index: HashMap<K, usize>,
    /// Number of entries (keyed or not).
    len: usize,
    /// Insertion records `(seq, slot)`, oldest at the front; may hold stale
    /// records (see [`is_live`]).
    order: VecDeque<(u64, usize)>,
    /// Next sequence number to hand out.
    next_seq: u64,
}

/// Whether the FIFO record `(seq, slot)` is the live record of its entry.
fn is_live<K, V>(slots: &[Option<Entry<K, V>>], seq: u64, slot: usize) -> bool {
    matches!(slots.get(slot), Some(Some(e)) if e.seq == seq)
}

/// Ordering for a stable sort by descending priority with NaN lowest:
/// `Less` means `a` ranks before (higher than) `b`.
fn rank_order(a: f64, b: f64) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
    }
}

impl<K: Eq + Hash + Clone, V: Clone> ReplayBuffer<K, V> {
    /// An empty buffer holding at most `capacity` entries, with uniform
    /// (`prioritized == false`) or rank-based prioritised sampling and
    /// `rank_weight` [`DEFAULT_RANK_WEIGHT`]. A capacity of 0 is treated as 1.
    pub fn new(capacity: usize, prioritized: bool) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            prioritized,
            rank_weight: DEFAULT_RANK_WEIGHT,
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            len: 0,
            order: VecDeque::new(),
            next_seq: 0,
        }
    }

    /// The same buffer with rank weight `rank_weight` (the `k` in
    /// `1 / (k * N + rank)`); only affects prioritised sampling. Smaller values
    /// concentrate sampling on the top ranks.
    ///
    /// # Panics
    ///
    /// If `rank_weight` is not finite and strictly positive (0 would give the
    /// top rank an infinite weight).
    #[must_use]
    pub fn with_rank_weight(mut self, rank_weight: f64) -> Self {
        assert!(
            rank_weight.is_finite() && rank_weight > 0.0,
            "rank_weight must be finite and positive, got {rank_weight}"
        );
        self.rank_weight = rank_weight;
        self
    }

    /// Adds `key` with `value` and `priority` as the newest entry. An existing
    /// `key` has its value and priority replaced and moves to the newest
    /// position (nothing is evicted); a new key in a full buffer first evicts
    /// the oldest entry. O(1) amortised.
    pub fn add(&mut self, key: K, value: V, priority: f64) {
        self.insert(Some(key), value, priority);
    }

    /// Adds `value` with `priority` as the newest entry, without a key (never
    /// de-duplicated); a full buffer first evicts the oldest entry.
    pub fn push(&mut self, value: V, priority: f64) {
        self.insert(None, value, priority);
    }

    fn insert(&mut self, key: Option<K>, value: V, priority: f64) {
        let seq = self.next_seq;
        self.next_seq += 1;

        let existing = key.as_ref().and_then(|k| self.index.get(k).copied());
        let slot = match existing.and_then(|s| self.slots.get_mut(s).map(|e| (s, e))) {
            Some((slot, Some(entry))) => {
                // Replace in place; the old FIFO record becomes stale.
                entry.value = value;
                entry.priority = priority;
                entry.seq = seq;
                slot
            }
            _ => {
                if self.len >= self.capacity {
                    self.evict_oldest();
                }
                let entry = Entry {
                    key: key.clone(),
                    value,
                    priority,
                    seq,
                };
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.slots[slot] = Some(entry);
                        slot
                    }
                    None => {
                        self.slots.push(Some(entry));
                        self.slots.len() - 1
                    }
                };
                if let Some(key) = key {
                    self.index.insert(key, slot);
                }
                self.len += 1;
                slot
            }
        };
        self.order.push_back((seq, slot));

        // Drop stale records once they make up about half of the deque.
        if self.order.len() > 2 * self.len + 16 {
            let slots = &self.slots;
            self.order.retain(|&(seq, slot)| is_live(slots, seq, slot));
        }
    }

    /// Removes the oldest live entry, if any.
    fn evict_oldest(&mut self) {
        while let Some((seq, slot)) = self.order.pop_front() {
            if is_live(&self.slots, seq, slot) {
                if let Some(entry) = self.slots[slot].take() {
                    if let Some(key) = &entry.key {
                        self.index.remove(key);
                    }
                    self.len -= 1;
                    self.free.push(slot);
                }
                return;
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum number of entries (at least 1).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether sampling is rank-based prioritised (true) or uniform (false).
    pub fn is_prioritized(&self) -> bool {
        self.prioritized
    }

    /// The `k` of the rank weight `1 / (k * N + rank)`.
    pub fn rank_weight(&self) -> f64 {
        self.rank_weight
    }

    /// Slot indices of all entries in FIFO order (oldest first); length `N`.
    fn fifo_slots(&self) -> Vec<usize> {
        self.order
            .iter()
            .filter(|&&(seq, slot)| is_live(&self.slots, seq, slot))
            .map(|&(_, slot)| slot)
            .collect()
    }

    /// Priority of the entry in `slot` (NaN for a free slot, never the case
    /// for slots from [`Self::fifo_slots`]).
    fn priority_at(&self, slot: usize) -> f64 {
        match self.slots.get(slot) {
            Some(Some(e)) => e.priority,
            _ => f64::NAN,
        }
    }

    /// `(ranked, cdf)` for prioritised sampling: `ranked[r]` is the slot of
    /// the entry of rank `r` (length `N`), `cdf[r]` the cumulative normalised
    /// weight of ranks `0..=r` (length `N`, non-decreasing, last ~1).
    fn ranked_cdf(&self) -> (Vec<usize>, Vec<f64>) {
        let mut ranked = self.fifo_slots();
        // Stable: equal priorities keep FIFO order, older first.
        ranked.sort_by(|&a, &b| rank_order(self.priority_at(a), self.priority_at(b)));
        let probs = self.rank_probabilities(ranked.len());
        let mut acc = 0.0;
        let cdf = probs
            .iter()
            .map(|p| {
                acc += p;
                acc
            })
            .collect();
        (ranked, cdf)
    }

    /// Normalised rank-based probabilities of ranks `0..n`:
    /// `p_r = w_r / sum(w)` with `w_r = 1 / (rank_weight * n + r)`.
    fn rank_probabilities(&self, n: usize) -> Vec<f64> {
        let offset = self.rank_weight * n as f64;
        let weights: Vec<f64> = (0..n).map(|r| 1.0 / (offset + r as f64)).collect();
        let total: f64 = weights.iter().sum();
        weights.into_iter().map(|w| w / total).collect()
    }

    /// Entry `(key, value)` in `slot`, cloned.
    fn pair_at(&self, slot: usize) -> Option<(Option<K>, V)> {
        match self.slots.get(slot) {
            Some(Some(e)) => Some((e.key.clone(), e.value.clone())),
            _ => None,
        }
    }

    /// `n` values drawn with replacement (see [`ReplayBuffer::sample_keyed`]).
    pub fn sample<R: rand::Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Vec<V> {
        self.sample_keyed(n, rng)
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    /// `n` entries `(key, value)` drawn with replacement, each draw consuming
    /// exactly one `rng.random::<f64>()` (`u` in `[0, 1)`). Uniform: the entry
    /// at FIFO position `min(floor(u * N), N - 1)`. Prioritised: the entry of
    /// the first rank whose cumulative normalised weight exceeds `u` (clamped
    /// to the last rank). Returns an empty `Vec` (and draws nothing) if the
    /// buffer is empty.
    pub fn sample_keyed<R: rand::Rng + ?Sized>(
        &self,
        n: usize,
        rng: &mut R,
    ) -> Vec<(Option<K>, V)> {
        let len = self.len();
        if len == 0 {
            return Vec::new();
        }
        if self.prioritized {
            let (ranked, cdf) = self.ranked_cdf();
            (0..n)
                .filter_map(|_| {
                    let u = rng.random::<f64>();
                    let rank = cdf.partition_point(|&c| c <= u).min(len - 1);
                    self.pair_at(ranked[rank])
                })
                .collect()
        } else {
            // Without stale records the deque is the FIFO order itself.
            let fifo = if self.order.len() == len {
                None
            } else {
                Some(self.fifo_slots())
            };
            (0..n)
                .filter_map(|_| {
                    let u = rng.random::<f64>();
                    let pos = ((u * len as f64) as usize).min(len - 1);
                    let slot = match &fifo {
                        Some(slots) => slots[pos],
                        None => self.order[pos].1,
                    };
                    self.pair_at(slot)
                })
                .collect()
        }
    }

    /// The normalised sampling probability of every entry, as `(key, p)` in
    /// FIFO order (oldest first); the `p` sum to 1. Uniform: `1 / N` each.
    /// Prioritised: the rank-based probability of the entry's rank. For tests
    /// and diagnostics (O(N log N)).
    pub fn rank_weights(&self) -> Vec<(Option<K>, f64)> {
        let fifo = self.fifo_slots();
        let len = fifo.len();
        if !self.prioritized {
            return fifo
                .iter()
                .filter_map(|&slot| self.pair_at(slot).map(|(k, _)| (k, 1.0 / len as f64)))
                .collect();
        }
        // FIFO positions sorted into rank order (stable: ties keep FIFO order).
        let mut by_rank: Vec<usize> = (0..len).collect();
        by_rank.sort_by(|&a, &b| rank_order(self.priority_at(fifo[a]), self.priority_at(fifo[b])));
        let probs = self.rank_probabilities(len);
        let mut prob_at_pos = vec![0.0; len];
        for (rank, &pos) in by_rank.iter().enumerate() {
            prob_at_pos[pos] = probs[rank];
        }
        fifo.iter()
            .zip(prob_at_pos)
            .filter_map(|(&slot, p)| self.pair_at(slot).map(|(k, _)| (k, p)))
            .collect()
    }

    /// All entries as `(key, value, priority)` in FIFO order (oldest first).
    pub fn iter(&self) -> impl Iterator<Item = (Option<&K>, &V, f64)> + '_ {
        self.order
            .iter()
            .filter_map(move |&(seq, slot)| match self.slots.get(slot) {
                Some(Some(e)) if e.seq == seq => Some((e.key.as_ref(), &e.value, e.priority)),
                _ => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// `sample_keyed` of a buffer whose entries all have keys.
    fn sample_kv<K: Eq + Hash + Clone, V: Clone>(
        buf: &ReplayBuffer<K, V>,
        n: usize,
        rng: &mut impl rand::Rng,
    ) -> Vec<(K, V)> {
        buf.sample_keyed(n, rng)
            .into_iter()
            .map(|(k, v)| (k.unwrap(), v))
            .collect()
    }

    /// `rank_weights` of a buffer whose entries all have keys.
    fn weights_kv<K: Eq + Hash + Clone, V: Clone>(buf: &ReplayBuffer<K, V>) -> Vec<(K, f64)> {
        buf.rank_weights()
            .into_iter()
            .map(|(k, p)| (k.unwrap(), p))
            .collect()
    }

    /// `iter` of a buffer whose entries all have keys.
    fn entries<K: Eq + Hash + Clone, V: Clone>(buf: &ReplayBuffer<K, V>) -> Vec<(&K, &V, f64)> {
        buf.iter().map(|(k, v, p)| (k.unwrap(), v, p)).collect()
    }
    use rand_chacha::ChaCha8Rng;

    fn keys<V: Clone>(buf: &ReplayBuffer<&'static str, V>) -> Vec<&'static str> {
        entries(buf).into_iter().map(|(k, _, _)| *k).collect()
    }

    #[test]
    fn fifo_eviction() {
        let mut buf = ReplayBuffer::new(3, false);
        for (i, k) in ["a", "b", "c", "d"].into_iter().enumerate() {
            buf.add(k, i, 0.0);
        }
        // Capacity 3: adding d evicts a, the oldest -> b, c, d.
        assert_eq!(buf.len(), 3);
        assert_eq!(keys(&buf), vec!["b", "c", "d"]);
        let values: Vec<usize> = entries(&buf).into_iter().map(|(_, v, _)| *v).collect();
        assert_eq!(values, vec![1, 2, 3]);
    }

    #[test]
    fn replacement_moves_to_newest() {
        let mut buf = ReplayBuffer::new(3, false);
        buf.add("a", 1, 1.0);
        buf.add("b", 2, 2.0);
        buf.add("c", 3, 3.0);
        buf.add("a", 10, 5.0);
        // Re-adding a moves it to the newest position: b, c, a; no eviction.
        assert_eq!(buf.len(), 3);
        assert_eq!(keys(&buf), vec!["b", "c", "a"]);
        let a = entries(&buf).into_iter().find(|(k, _, _)| **k == "a");
        assert_eq!(a.map(|(_, v, p)| (*v, p)), Some((10, 5.0)));
        // d evicts b (now the oldest), not a.
        buf.add("d", 4, 4.0);
        assert_eq!(keys(&buf), vec!["c", "a", "d"]);
        assert_eq!(buf.len(), 3);
    }

    fn case3() -> ReplayBuffer<&'static str, u32> {
        let mut buf = ReplayBuffer::new(10, true);
        buf.add("a", 0, 1.0);
        buf.add("b", 1, 3.0);
        buf.add("c", 2, 2.0);
        buf
    }

    /// Hand-computed probabilities of case 3, in FIFO order a, b, c.
    /// N = 3, k = 0.01 -> k*N = 0.03. Ranks by descending priority:
    /// b (3) rank 0, c (2) rank 1, a (1) rank 2.
    /// w_b = 1/0.03 = 33.333.., w_c = 1/1.03 = 0.97087.., w_a = 1/2.03 = 0.49261..
    /// total = 34.79682..; p_b = 0.95793.., p_c = 0.02790.., p_a = 0.01416..
    fn case3_expected() -> Vec<(&'static str, f64)> {
        let (wb, wc, wa) = (1.0 / 0.03, 1.0 / 1.03, 1.0 / 2.03);
        let total = wa + wb + wc;
        vec![("a", wa / total), ("b", wb / total), ("c", wc / total)]
    }

    #[test]
    fn rank_weights_match_hand_computation() {
        let got = weights_kv(&case3());
        let want = case3_expected();
        assert_eq!(got.len(), 3);
        for ((gk, gp), (wk, wp)) in got.iter().zip(&want) {
            assert_eq!(gk, wk);
            assert!((gp - wp).abs() < 1e-12, "{gk}: {gp} vs {wp}");
        }
        // Sanity on the rounded hand values.
        assert!((want[1].1 - 0.95793).abs() < 1e-4);
        assert!((want[2].1 - 0.02790).abs() < 1e-4);
        assert!((want[0].1 - 0.01416).abs() < 1e-4);
    }

    #[test]
    fn ties_follow_fifo_order() {
        let mut buf = ReplayBuffer::new(10, true);
        for k in ["x", "y", "z", "w"] {
            buf.add(k, (), 7.0);
        }
        // All equal -> rank = FIFO position: x 0, y 1, z 2, w 3.
        // N = 4, k*N = 0.04: w_r = 1/(0.04 + r), strictly decreasing in r.
        let w: Vec<f64> = (0..4).map(|r| 1.0 / (0.04 + r as f64)).collect();
        let total: f64 = w.iter().sum();
        let got = weights_kv(&buf);
        assert_eq!(
            got.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            ["x", "y", "z", "w"]
        );
        for ((_, p), wr) in got.iter().zip(&w) {
            assert!((p - wr / total).abs() < 1e-12);
        }
    }

    #[test]
    fn nan_priority_ranks_lowest() {
        let mut buf = ReplayBuffer::new(10, true);
        buf.add("nan", (), f64::NAN);
        buf.add("low", (), f64::NEG_INFINITY);
        buf.add("high", (), 1.0);
        // Ranks: high 0, low 1, nan 2 (NaN below -inf). N = 3, k*N = 0.03.
        let w = [1.0 / 2.03, 1.0 / 1.03, 1.0 / 0.03]; // FIFO order: nan, low, high
        let total: f64 = w.iter().sum();
        for ((_, p), wr) in weights_kv(&buf).iter().zip(w) {
            assert!((p - wr / total).abs() < 1e-12);
        }
    }

    #[test]
    fn sampling_frequencies_match_weights() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let buf = case3();
        let draws = 200_000;
        let samples = sample_kv(&buf, draws, &mut rng);
        assert_eq!(samples.len(), draws);
        for (k, p) in case3_expected() {
            let freq = samples.iter().filter(|(sk, _)| *sk == k).count() as f64 / draws as f64;
            assert!((freq - p).abs() < 0.01, "{k}: {freq} vs {p}");
        }
        // Values travel with keys.
        assert!(samples.iter().all(|(k, v)| match *k {
            "a" => *v == 0,
            "b" => *v == 1,
            _ => *v == 2,
        }));

        // Uniform, 4 entries (with a stale record from a re-add): ~0.25 each.
        let mut uni = ReplayBuffer::new(4, false);
        for (i, k) in ["p", "q", "r", "s"].into_iter().enumerate() {
            uni.add(k, i, i as f64);
        }
        uni.add("p", 0, 100.0);
        let samples = sample_kv(&uni, draws, &mut rng);
        for k in ["p", "q", "r", "s"] {
            let freq = samples.iter().filter(|(sk, _)| *sk == k).count() as f64 / draws as f64;
            assert!((freq - 0.25).abs() < 0.01, "{k}: {freq}");
        }
        for (_, p) in weights_kv(&uni) {
            assert!((p - 0.25).abs() < 1e-15);
        }
    }

    #[test]
    fn empty_and_capacity_zero() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut buf: ReplayBuffer<u32, u32> = ReplayBuffer::new(0, true);
        assert_eq!(buf.capacity(), 1);
        assert!(buf.is_empty());
        assert!(sample_kv(&buf, 5, &mut rng).is_empty());
        buf.add(1, 1, 0.0);
        buf.add(2, 2, 0.0);
        assert_eq!(
            entries(&buf)
                .into_iter()
                .map(|(k, _, _)| *k)
                .collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(sample_kv(&buf, 3, &mut rng), vec![(2, 2); 3]);
    }

    #[test]
    fn draw_rule_is_exact() {
        // Replays the documented rule from a cloned RNG: one u per draw;
        // uniform -> FIFO position floor(u * N); prioritised -> first rank with
        // cumulative probability > u.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for stale in [false, true] {
            let mut uni = ReplayBuffer::new(5, false);
            for k in 0..5u32 {
                uni.add(k, k * 10, 0.0);
            }
            if stale {
                uni.add(0, 0, 0.0); // FIFO now 1, 2, 3, 4, 0 with a stale record
            }
            let fifo: Vec<u32> = entries(&uni).into_iter().map(|(k, _, _)| *k).collect();
            let mut replay = rng.clone();
            let got = sample_kv(&uni, 100, &mut rng);
            for (k, v) in got {
                let u = replay.random::<f64>();
                assert_eq!(k, fifo[(u * 5.0) as usize]);
                assert_eq!(v, k * 10);
            }
        }
        // Case 3: rank order b, c, a with cumulative p_b, p_b + p_c, 1.
        let buf = case3();
        let want = case3_expected();
        let (pa, pb, pc) = (want[0].1, want[1].1, want[2].1);
        let mut replay = rng.clone();
        for (k, _) in sample_kv(&buf, 1000, &mut rng) {
            let u = replay.random::<f64>();
            let expect = if u < pb {
                "b"
            } else if u < pb + pc {
                "c"
            } else {
                "a"
            };
            assert_eq!(k, expect, "u = {u}, p_a = {pa}");
        }
    }

    #[test]
    fn determinism() {
        for prioritized in [false, true] {
            let build = || {
                let mut buf = ReplayBuffer::new(50, prioritized);
                let mut rng = ChaCha8Rng::seed_from_u64(42);
                for i in 0..200u32 {
                    let key = rng.random_range(0..80u32);
                    buf.add(key, i, rng.random::<f64>());
                }
                buf
            };
            let (b1, b2) = (build(), build());
            let mut r1 = ChaCha8Rng::seed_from_u64(7);
            let mut r2 = ChaCha8Rng::seed_from_u64(7);
            for _ in 0..20 {
                let s1 = sample_kv(&b1, 16, &mut r1);
                assert_eq!(s1, sample_kv(&b2, 16, &mut r2));
                assert_eq!(s1.len(), 16);
            }
            // Exactly one f64 per draw: both streams are still in lockstep
            // with a fresh stream advanced by 20 * 16 draws.
            let mut r3 = ChaCha8Rng::seed_from_u64(7);
            for _ in 0..20 * 16 {
                r3.random::<f64>();
            }
            assert_eq!(r1.random::<u64>(), r3.random::<u64>());
        }
    }

    #[test]
    fn stress_matches_naive_reference() {
        let cap = 1000;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut buf = ReplayBuffer::new(cap, true);
        // Naive reference: Vec of (key, value, priority), oldest first.
        let mut naive: Vec<(u32, u32, f64)> = Vec::new();
        let mut next_key = 0u32;
        for step in 0..20_000u32 {
            let key = if !naive.is_empty() && rng.random::<f64>() < 0.3 {
                // Re-add a key currently stored.
                naive[rng.random_range(0..naive.len())].0
            } else {
                next_key = (next_key + 1) % 1500;
                next_key
            };
            let priority = (rng.random_range(0..10u32)) as f64;
            buf.add(key, step, priority);
            if let Some(pos) = naive.iter().position(|e| e.0 == key) {
                naive.remove(pos);
            } else if naive.len() == cap {
                naive.remove(0);
            }
            naive.push((key, step, priority));

            assert!(buf.len() <= cap);
            assert!(buf.order.len() <= 2 * buf.len() + 17);
            if step % 97 == 0 || step > 19_900 {
                let got: Vec<(u32, u32, f64)> = entries(&buf)
                    .into_iter()
                    .map(|(k, v, p)| (*k, *v, p))
                    .collect();
                assert_eq!(got.len(), buf.len());
                let distinct: std::collections::HashSet<u32> = got.iter().map(|e| e.0).collect();
                assert_eq!(distinct.len(), got.len());
                assert_eq!(got, naive);
                let total: f64 = weights_kv(&buf).iter().map(|e| e.1).sum();
                assert!((total - 1.0).abs() < 1e-9);
                for (k, v) in sample_kv(&buf, 16, &mut rng) {
                    assert!(naive.iter().any(|e| e.0 == k && e.1 == v));
                }
            }
        }
        assert_eq!(buf.len(), cap);
    }

    /// Entries without a key are never de-duplicated, count towards the
    /// capacity and leave FIFO order like the others; keyed entries still
    /// replace their older copy.
    #[test]
    fn unkeyed_entries() {
        let mut buf: ReplayBuffer<u32, f64> = ReplayBuffer::new(3, true);
        buf.push(0.5, 1.0);
        buf.push(0.5, 2.0);
        buf.add(7, 1.5, 3.0);
        assert_eq!(buf.len(), 3);
        buf.add(7, 2.5, 0.0); // replaces the keyed entry
        assert_eq!(buf.len(), 3);
        buf.push(9.0, 5.0); // evicts the oldest (an unkeyed one)
        let got: Vec<(Option<u32>, f64)> = buf.iter().map(|(k, v, _)| (k.copied(), *v)).collect();
        assert_eq!(got, vec![(None, 0.5), (Some(7), 2.5), (None, 9.0)]);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        // The highest priority (5.0, the last push) ranks first.
        assert_eq!(buf.rank_weights()[2].0, None);
        assert_eq!(buf.sample(4, &mut rng).len(), 4);
    }
}
