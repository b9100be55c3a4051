//! The replay of the discovery tasks (docs/discovery.md "Training loop"): the
//! last `capacity` distinct terminal states ever discovered, in insertion
//! order, and the selection of an offline batch from them (uniform, PRT or PER
//! split at a percentile).

use std::collections::{HashMap, VecDeque};

use rand::Rng as _;
use serde::{Deserialize, Serialize};

use super::Priority;
use crate::rng::Rng;

/// One discovered terminal state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discovery<K> {
    /// The terminal state.
    pub x: K,
    /// Its training reward R(x).
    pub reward: f64,
    /// The latest student teacher signal r_T seen for it (PER priority).
    pub signal: f64,
}

/// The last `capacity` distinct discoveries (a state seen before is not added
/// again and keeps its position; its PER signal can be updated).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + std::hash::Hash",
    deserialize = "K: Deserialize<'de> + Eq + std::hash::Hash"
))]
pub struct RecentDiscoveries<K> {
    capacity: usize,
    entries: VecDeque<Discovery<K>>,
    /// Every state ever discovered (also those evicted), so that "new" means never seen.
    seen: HashMap<K, ()>,
}

/// Linear-interpolation percentile (numpy's default) of `values`, `p` in [0, 100].
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = p / 100.0 * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

impl<K: Clone + Eq + std::hash::Hash> RecentDiscoveries<K> {
    /// An empty buffer of `capacity` (>= 1) entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: VecDeque::new(),
            seen: HashMap::new(),
        }
    }

    /// Record `x` if it was never discovered before; returns whether it was new.
    pub fn record(&mut self, x: K, reward: f64, signal: f64) -> bool {
        if self.seen.contains_key(&x) {
            return false;
        }
        self.seen.insert(x.clone(), ());
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(Discovery { x, reward, signal });
        true
    }

    /// Update the PER signal of `x` if it is in the buffer (`x` may be a
    /// borrowed form of the key, e.g. a slice of a `Vec<u8>` key).
    pub fn update_signal<Q>(&mut self, x: &Q, signal: f64)
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        if let Some(e) = self.entries.iter_mut().find(|e| e.x.borrow() == x) {
            e.signal = signal;
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing was discovered yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of distinct states ever discovered.
    pub fn n_discovered(&self) -> usize {
        self.seen.len()
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Discovery<K>> {
        self.entries.iter()
    }

    /// Draw `n` entries (with replacement); `None` when fewer than `min_len`
    /// entries exist (the reference skips the offline step below 10). For PRT and
    /// PER, `n / 2` draws come from the entries at or above the 90th percentile
    /// of the key and the rest from those at or below it.
    pub fn select(
        &self,
        n: usize,
        how: Priority,
        min_len: usize,
        rng: &mut Rng,
    ) -> Option<Vec<&Discovery<K>>> {
        if self.entries.len() < min_len.max(1) {
            return None;
        }
        let all: Vec<&Discovery<K>> = self.entries.iter().collect();
        fn draw<'a, K>(
            pool: &[&'a Discovery<K>],
            k: usize,
            rng: &mut Rng,
        ) -> Vec<&'a Discovery<K>> {
            (0..k)
                .map(|_| pool[rng.random_range(0..pool.len())])
                .collect()
        }
        let key = match how {
            // `loss` is refused by the config check; it draws uniformly here.
            Priority::Uniform | Priority::Loss => return Some(draw(&all, n, rng)),
            Priority::Reward => |e: &Discovery<K>| e.reward,
            Priority::TeacherReward => |e: &Discovery<K>| e.signal,
        };
        let values: Vec<f64> = all.iter().map(|e| key(e)).collect();
        let t = percentile(&values, 90.0);
        let high: Vec<&Discovery<K>> = all.iter().copied().filter(|e| key(e) >= t).collect();
        let low: Vec<&Discovery<K>> = all.iter().copied().filter(|e| key(e) <= t).collect();
        let mut out = draw(&high, n / 2, rng);
        out.extend(draw(&low, n - n / 2, rng));
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Stream};

    /// numpy.percentile([1, 2, 3, 4], 90) = 3.7 (pos = 0.9 * 3 = 2.7).
    #[test]
    fn percentile_by_hand() {
        assert!((percentile(&[4.0, 1.0, 3.0, 2.0], 90.0) - 3.7).abs() < 1e-12);
        assert_eq!(percentile(&[5.0], 90.0), 5.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    /// Only never-seen states enter; the oldest leaves when full; an evicted
    /// state does not come back.
    #[test]
    fn keeps_the_last_distinct_discoveries() {
        let mut b = RecentDiscoveries::new(3);
        for (x, r) in [(1, 1.0), (2, 2.0), (1, 9.0), (3, 3.0), (4, 4.0)] {
            b.record(x, r, 0.0);
        }
        let xs: Vec<i32> = b.iter().map(|e| e.x).collect();
        assert_eq!(xs, vec![2, 3, 4]);
        assert!(!b.record(1, 5.0, 0.0), "1 was discovered before");
        assert_eq!(b.n_discovered(), 4);
        b.update_signal(&3, 7.0);
        assert_eq!(b.iter().find(|e| e.x == 3).unwrap().signal, 7.0);
    }

    /// PRT split on a hand buffer: rewards 1..=10 -> t = 9.1 (pos 8.1), so the
    /// high pool is {10} and the low pool {1..9}: 16 draws of x=10, 16 of <= 9.
    #[test]
    fn prt_split_on_a_hand_buffer() {
        let mut b = RecentDiscoveries::new(1000);
        for x in 1..=10 {
            b.record(x, x as f64, (11 - x) as f64);
        }
        let mut rng = stream(0, Stream::Buffer);
        let s = b.select(32, Priority::Reward, 10, &mut rng).unwrap();
        assert_eq!(s.len(), 32);
        assert!(s[..16].iter().all(|e| e.x == 10));
        assert!(s[16..].iter().all(|e| e.x <= 9));
        // PER splits on the signal: signal 10 belongs to x = 1.
        let s = b.select(32, Priority::TeacherReward, 10, &mut rng).unwrap();
        assert!(s[..16].iter().all(|e| e.x == 1));
        // Fewer than 10 entries: no offline batch.
        let mut small = RecentDiscoveries::new(1000);
        small.record(1, 1.0, 0.0);
        assert!(small.select(32, Priority::Uniform, 10, &mut rng).is_none());
    }
}
