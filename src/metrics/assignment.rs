//! Exact linear assignment (Jonker–Volgenant, LAPJV) and the 2-Wasserstein
//! distance between two equal-size point sets with uniform weights.
//!
//! [`assign`] keeps column dual potentials `v` and works on reduced costs
//! `c[i][j] - v[j]`: column reduction with reduction transfer, two passes of
//! augmenting row reduction, then a Dijkstra-style shortest augmenting path
//! from every row still free, each path ending with a dual update. All in f64;
//! worst case O(n^3) time and O(n) memory beyond the cost matrix. [`w2`] builds
//! the dense n x n f64 matrix of squared distances (8 n^2 bytes) and solves it.

use rayon::prelude::*;

/// Marker for a row or column without a partner.
const UNASSIGNED: usize = usize::MAX;

/// Row scans allowed to the augmenting row reduction per row of the matrix.
/// That phase is only a warm start (the shortest augmenting paths finish
/// exactly whatever it leaves free); the budget just bounds its running time.
const ROW_REDUCTION_SCANS_PER_ROW: usize = 8;

/// Optimal assignment of a dense square cost matrix `cost` (row-major, `n x n`).
///
/// Returns `(col_of_row, total)`: row `i` is assigned column `col_of_row[i]`,
/// `col_of_row` is a permutation of `0..n`, and `total` is the sum of the
/// chosen costs, which is minimal over all permutations. Exact (shortest
/// augmenting paths with dual potentials, as in Jonker–Volgenant), up to f64
/// rounding in the dual updates. `n = 0` gives `(vec![], 0.0)`.
///
/// # Panics
/// If `cost.len() != n * n` or a cost is not finite.
pub fn assign(cost: &[f64], n: usize) -> (Vec<usize>, f64) {
    assert_eq!(
        Some(cost.len()),
        n.checked_mul(n),
        "assign: cost matrix has {} entries, expected n * n with n = {n}",
        cost.len()
    );
    assert!(
        cost.iter().all(|c| c.is_finite()),
        "assign: cost matrix contains a non-finite entry"
    );
    match n {
        0 => (Vec::new(), 0.0),
        1 => (vec![0], cost[0]),
        _ => {
            let mut solver = Solver::new(cost, n);
            let free_rows = solver.column_reduction();
            let free_rows = solver.augmenting_row_reduction(free_rows);
            solver.augment_all(&free_rows);
            let total = (0..n).map(|i| cost[i * n + solver.col_of_row[i]]).sum();
            (solver.col_of_row, total)
        }
    }
}

/// 2-Wasserstein distance between point sets `a` and `b` (row-major
/// `[n, dim]` each, the same `n`) with uniform weights `1/n`:
/// `sqrt((1/n) * min over permutations sigma of sum_i |a_i - b_sigma(i)|^2)`.
///
/// Builds the `n x n` f64 matrix of squared Euclidean distances (rows in
/// parallel, each entry computed the same way whatever the thread count, so the
/// result is deterministic) and solves it exactly with [`assign`]. Memory is
/// `8 n^2` bytes (800 MB at `n = 10_000`). Empty sets give 0.0; a
/// non-finite point or squared distance (samples of a diverged sampler, or
/// coordinates near the f64 limit) gives NaN: no assignment is defined.
///
/// # Panics
/// If `dim == 0`, `a.len() != b.len()`, or the length is not a multiple of `dim`.
pub fn w2(a: &[f64], b: &[f64], dim: usize) -> f64 {
    assert!(dim > 0, "w2: dim must be positive");
    assert_eq!(
        a.len(),
        b.len(),
        "w2: point sets differ in size ({} vs {} values)",
        a.len(),
        b.len()
    );
    assert!(
        a.len().is_multiple_of(dim),
        "w2: {} values is not a whole number of points of dim {dim}",
        a.len()
    );
    let n = a.len() / dim;
    if n == 0 {
        return 0.0;
    }
    let mut cost = vec![0.0f64; n * n];
    cost.par_chunks_mut(n)
        .zip(a.par_chunks(dim))
        .for_each(|(cost_row, a_i)| {
            for (c, b_j) in cost_row.iter_mut().zip(b.chunks_exact(dim)) {
                *c = squared_distance(a_i, b_j);
            }
        });
    if !cost.iter().all(|c| c.is_finite()) {
        return f64::NAN;
    }
    let (_, total) = assign(&cost, n);
    (total.max(0.0) / n as f64).sqrt()
}

/// `|x - y|^2` with four independent partial sums, so the loop vectorises.
fn squared_distance(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let x_chunks = x.chunks_exact(4);
    let y_chunks = y.chunks_exact(4);
    let tail: f64 = x_chunks
        .remainder()
        .iter()
        .zip(y_chunks.remainder())
        .map(|(p, q)| (p - q) * (p - q))
        .sum();
    for (xs, ys) in x_chunks.zip(y_chunks) {
        for k in 0..4 {
            let diff = xs[k] - ys[k];
            acc[k] += diff * diff;
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// LAPJV state. Invariant between phases: every assigned row's column has the
/// smallest reduced cost `cost[i][j] - v[j]` of that row (so the implied row
/// potentials make all reduced costs non-negative and the matched ones zero).
struct Solver<'a> {
    cost: &'a [f64],
    n: usize,
    /// Column dual potentials.
    v: Vec<f64>,
    col_of_row: Vec<usize>,
    row_of_col: Vec<usize>,
}

impl<'a> Solver<'a> {
    fn new(cost: &'a [f64], n: usize) -> Self {
        Solver {
            cost,
            n,
            v: vec![0.0; n],
            col_of_row: vec![UNASSIGNED; n],
            row_of_col: vec![UNASSIGNED; n],
        }
    }

    fn row(&self, i: usize) -> &'a [f64] {
        &self.cost[i * self.n..(i + 1) * self.n]
    }

    /// Column reduction (`v[j]` = column minimum, each column tentatively given
    /// to its minimising row) followed by reduction transfer. Returns the rows
    /// left free.
    fn column_reduction(&mut self) -> Vec<usize> {
        let n = self.n;
        // Column minima by a row-major sweep (first minimising row wins ties).
        let mut argmin = vec![0usize; n];
        let first_row = self.row(0);
        self.v.copy_from_slice(first_row);
        for i in 1..n {
            let row = self.row(i);
            for j in 0..n {
                if row[j] < self.v[j] {
                    self.v[j] = row[j];
                    argmin[j] = i;
                }
            }
        }
        let mut matches = vec![0usize; n];
        for j in (0..n).rev() {
            let i = argmin[j];
            matches[i] += 1;
            if matches[i] == 1 {
                self.col_of_row[i] = j;
                self.row_of_col[j] = i;
            } else if self.v[j] < self.v[self.col_of_row[i]] {
                let previous = self.col_of_row[i];
                self.row_of_col[previous] = UNASSIGNED;
                self.col_of_row[i] = j;
                self.row_of_col[j] = i;
            }
        }
        // Reduction transfer: a row that won exactly one column passes the gap
        // to its second-best reduced cost on to that column's potential.
        let mut free_rows = Vec::new();
        for (i, &won) in matches.iter().enumerate() {
            match won {
                0 => free_rows.push(i),
                1 => {
                    let own = self.col_of_row[i];
                    let second = self
                        .row(i)
                        .iter()
                        .zip(&self.v)
                        .enumerate()
                        .filter(|&(j, _)| j != own)
                        .map(|(_, (c, v))| c - v)
                        .fold(f64::INFINITY, f64::min);
                    self.v[own] -= second;
                }
                _ => {}
            }
        }
        free_rows
    }

    /// Two passes of augmenting row reduction: each free row takes the column
    /// of its smallest reduced cost, lowering that column's potential down to
    /// the row's second smallest, and evicts the previous owner. Returns the
    /// rows still free.
    fn augmenting_row_reduction(&mut self, mut free_rows: Vec<usize>) -> Vec<usize> {
        let mut budget = ROW_REDUCTION_SCANS_PER_ROW.saturating_mul(self.n);
        for _pass in 0..2 {
            let mut pending = std::mem::take(&mut free_rows);
            let mut k = 0;
            while k < pending.len() {
                if budget == 0 {
                    free_rows.extend_from_slice(&pending[k..]);
                    return free_rows;
                }
                budget -= 1;
                let i = pending[k];
                k += 1;
                let (u_min, j_min, u_sub, j_sub) = self.two_smallest_reduced(i);
                let mut target = j_min;
                let mut lowered = false;
                if u_min < u_sub {
                    let lowered_v = self.v[j_min] - (u_sub - u_min);
                    lowered = lowered_v < self.v[j_min];
                    self.v[j_min] = lowered_v;
                } else if self.row_of_col[j_min] != UNASSIGNED {
                    target = j_sub;
                }
                let evicted = self.row_of_col[target];
                self.col_of_row[i] = target;
                self.row_of_col[target] = i;
                if evicted != UNASSIGNED {
                    self.col_of_row[evicted] = UNASSIGNED;
                    if lowered {
                        // Retry the evicted row at once, in this slot.
                        k -= 1;
                        pending[k] = evicted;
                    } else {
                        free_rows.push(evicted);
                    }
                }
            }
        }
        free_rows
    }

    /// The smallest and second smallest reduced costs of row `i` with their
    /// columns (`n >= 2`).
    fn two_smallest_reduced(&self, i: usize) -> (f64, usize, f64, usize) {
        let row = self.row(i);
        let (mut u_min, mut j_min) = (row[0] - self.v[0], 0);
        let (mut u_sub, mut j_sub) = (f64::INFINITY, UNASSIGNED);
        for (j, (&c, &v)) in row.iter().zip(&self.v).enumerate().skip(1) {
            let h = c - v;
            if h < u_sub {
                if h >= u_min {
                    u_sub = h;
                    j_sub = j;
                } else {
                    u_sub = u_min;
                    j_sub = j_min;
                    u_min = h;
                    j_min = j;
                }
            }
        }
        (u_min, j_min, u_sub, j_sub)
    }

    /// Shortest augmenting path from each free row in turn.
    fn augment_all(&mut self, free_rows: &[usize]) {
        let n = self.n;
        let mut dist = vec![0.0f64; n];
        let mut pred = vec![0usize; n];
        let mut cols = vec![0usize; n];
        for &free_row in free_rows {
            self.augment(free_row, &mut dist, &mut pred, &mut cols);
        }
    }

    /// Dijkstra over columns from `free_row` on reduced costs, until an
    /// unassigned column is reached; then update the potentials of the
    /// finalised columns and flip the assignment along the path.
    fn augment(
        &mut self,
        free_row: usize,
        dist: &mut [f64],
        pred: &mut [usize],
        cols: &mut [usize],
    ) {
        let (end, n_ready, min_dist) = self.shortest_path(free_row, dist, pred, cols);
        for &j in &cols[..n_ready] {
            self.v[j] += dist[j] - min_dist;
        }
        let mut j = end;
        loop {
            let i = pred[j];
            self.row_of_col[j] = i;
            let next = self.col_of_row[i];
            self.col_of_row[i] = j;
            if i == free_row {
                break;
            }
            j = next;
        }
    }

    /// The search of [`Solver::augment`]. `cols` is kept partitioned as
    /// `[scanned | todo | unseen]` by `low` and `up`: `cols[..low]` are final,
    /// `cols[low..up]` sit at the current minimum distance `min_dist`, the rest
    /// are still being relaxed. Returns the unassigned column reached, the
    /// number of columns finalised below `min_dist` (a prefix of `cols`), and
    /// `min_dist`.
    fn shortest_path(
        &self,
        free_row: usize,
        dist: &mut [f64],
        pred: &mut [usize],
        cols: &mut [usize],
    ) -> (usize, usize, f64) {
        let n = self.n;
        let (v, row_of_col) = (&self.v[..], &self.row_of_col[..]);
        let start = self.row(free_row);
        for (j, ((d, p), c)) in dist
            .iter_mut()
            .zip(pred.iter_mut())
            .zip(cols.iter_mut())
            .enumerate()
        {
            *d = start[j] - v[j];
            *p = free_row;
            *c = j;
        }
        let (mut low, mut up) = (0usize, 0usize);
        let mut n_ready = 0usize;
        let mut min_dist = 0.0f64;
        loop {
            if up == low {
                // Next distance level: move every column at the minimum to the
                // front of the unseen part.
                n_ready = low;
                assert!(up < n, "assign: no unassigned column reachable");
                min_dist = dist[cols[up]];
                up += 1;
                let mut k = up;
                while k < n {
                    let h = dist[cols[k]];
                    if h <= min_dist {
                        if h < min_dist {
                            up = low;
                            min_dist = h;
                        }
                        cols.swap(k, up);
                        up += 1;
                    }
                    k += 1;
                }
                if let Some(&j) = cols[low..up].iter().find(|&&j| row_of_col[j] == UNASSIGNED) {
                    return (j, n_ready, min_dist);
                }
            }
            // Relax through the row matched to the next column at `min_dist`.
            let j_scan = cols[low];
            low += 1;
            let i = row_of_col[j_scan];
            let row = self.row(i);
            let offset = row[j_scan] - v[j_scan] - min_dist;
            let mut k = up;
            while k < n {
                let j = cols[k];
                let through_i = row[j] - v[j] - offset;
                if through_i < dist[j] {
                    pred[j] = i;
                    if through_i == min_dist {
                        if row_of_col[j] == UNASSIGNED {
                            return (j, n_ready, min_dist);
                        }
                        cols.swap(k, up);
                        up += 1;
                    }
                    dist[j] = through_i;
                }
                k += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64 step: a tiny deterministic generator for the tests.
    fn next_u64(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(state: &mut u64) -> f64 {
        (next_u64(state) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Minimum total cost over all permutations (Heap's algorithm).
    fn brute_force(cost: &[f64], n: usize) -> f64 {
        fn total(cost: &[f64], n: usize, perm: &[usize]) -> f64 {
            (0..n).map(|i| cost[i * n + perm[i]]).sum()
        }
        let mut perm: Vec<usize> = (0..n).collect();
        let mut best = total(cost, n, &perm);
        let mut counters = vec![0usize; n];
        let mut i = 1;
        while i < n {
            if counters[i] < i {
                let swap_with = if i % 2 == 0 { 0 } else { counters[i] };
                perm.swap(swap_with, i);
                best = best.min(total(cost, n, &perm));
                counters[i] += 1;
                i = 1;
            } else {
                counters[i] = 0;
                i += 1;
            }
        }
        best
    }

    /// Checks that `col_of_row` is a permutation whose cost is `total`.
    fn check_solution(cost: &[f64], n: usize, col_of_row: &[usize], total: f64) {
        assert_eq!(col_of_row.len(), n);
        let mut seen = vec![false; n];
        for &j in col_of_row {
            assert!(j < n && !seen[j], "not a permutation: {col_of_row:?}");
            seen[j] = true;
        }
        let recomputed: f64 = (0..n).map(|i| cost[i * n + col_of_row[i]]).sum();
        assert!(
            (recomputed - total).abs() <= 1e-9,
            "{recomputed} vs {total}"
        );
    }

    fn random_points(state: &mut u64, n: usize, dim: usize) -> Vec<f64> {
        (0..n * dim).map(|_| 2.0 * next_f64(state) - 1.0).collect()
    }

    #[test]
    fn assign_matches_brute_force_on_small_matrices() {
        let mut state = 0x5EED_u64;
        for n in 1..=7 {
            for trial in 0..60 {
                let cost: Vec<f64> = (0..n * n)
                    .map(|_| match trial % 4 {
                        // Few distinct integers: many ties.
                        0 => (next_u64(&mut state) % 3) as f64,
                        1 => (next_u64(&mut state) % 100) as f64 - 50.0,
                        2 => 1e3 * next_f64(&mut state),
                        _ => next_f64(&mut state) - 0.5,
                    })
                    .collect();
                let (col_of_row, total) = assign(&cost, n);
                check_solution(&cost, n, &col_of_row, total);
                let best = brute_force(&cost, n);
                assert!(
                    (total - best).abs() <= 1e-9,
                    "n = {n}, trial {trial}: {total} vs brute force {best}, cost {cost:?}"
                );
            }
        }
    }

    /// Independent reference: the O(n^3) Hungarian method with row and column
    /// potentials (e-maxx formulation), 1-based internally.
    fn hungarian(cost: &[f64], n: usize) -> f64 {
        let (mut u, mut v) = (vec![0.0f64; n + 1], vec![0.0f64; n + 1]);
        let (mut row_of_col, mut way) = (vec![0usize; n + 1], vec![0usize; n + 1]);
        for i in 1..=n {
            row_of_col[0] = i;
            let mut j0 = 0;
            let mut min_v = vec![f64::INFINITY; n + 1];
            let mut used = vec![false; n + 1];
            loop {
                used[j0] = true;
                let i0 = row_of_col[j0];
                let (mut delta, mut j1) = (f64::INFINITY, 0);
                for j in 1..=n {
                    if !used[j] {
                        let reduced = cost[(i0 - 1) * n + j - 1] - u[i0] - v[j];
                        if reduced < min_v[j] {
                            min_v[j] = reduced;
                            way[j] = j0;
                        }
                        if min_v[j] < delta {
                            delta = min_v[j];
                            j1 = j;
                        }
                    }
                }
                for j in 0..=n {
                    if used[j] {
                        u[row_of_col[j]] += delta;
                        v[j] -= delta;
                    } else {
                        min_v[j] -= delta;
                    }
                }
                j0 = j1;
                if row_of_col[j0] == 0 {
                    break;
                }
            }
            while j0 != 0 {
                let j1 = way[j0];
                row_of_col[j0] = row_of_col[j1];
                j0 = j1;
            }
        }
        (1..=n).map(|j| cost[(row_of_col[j] - 1) * n + j - 1]).sum()
    }

    #[test]
    fn assign_matches_hungarian_on_medium_matrices() {
        let mut state = 0xABCD_u64;
        for (trial, n) in [8, 13, 30, 64, 100, 150].into_iter().enumerate() {
            for kind in 0..3 {
                let cost: Vec<f64> = (0..n * n)
                    .map(|_| match kind {
                        0 => (next_u64(&mut state) % 4) as f64,
                        1 => (next_u64(&mut state) % 1000) as f64,
                        _ => next_f64(&mut state),
                    })
                    .collect();
                let (col_of_row, total) = assign(&cost, n);
                check_solution(&cost, n, &col_of_row, total);
                let reference = hungarian(&cost, n);
                assert!(
                    (total - reference).abs() <= 1e-9 * (1.0 + reference.abs()),
                    "trial {trial}, n = {n}, kind {kind}: {total} vs {reference}"
                );
            }
        }
    }

    #[test]
    fn assign_handles_empty_constant_and_identity_optimum() {
        assert_eq!(assign(&[], 0), (Vec::new(), 0.0));
        assert_eq!(assign(&[4.5], 1), (vec![0], 4.5));
        let n = 40;
        let (col_of_row, total) = assign(&vec![2.0; n * n], n);
        check_solution(&vec![2.0; n * n], n, &col_of_row, total);
        assert_eq!(total, 2.0 * n as f64);
        // Zero diagonal, positive elsewhere: the identity is the unique optimum.
        let mut state = 7u64;
        let cost: Vec<f64> = (0..n * n)
            .map(|k| {
                if k / n == k % n {
                    0.0
                } else {
                    1.0 + next_f64(&mut state)
                }
            })
            .collect();
        let (col_of_row, total) = assign(&cost, n);
        assert_eq!(col_of_row, (0..n).collect::<Vec<_>>());
        assert_eq!(total, 0.0);
    }

    #[test]
    #[should_panic(expected = "expected n * n")]
    fn assign_rejects_wrong_length() {
        assign(&[1.0, 2.0, 3.0], 2);
    }

    #[test]
    fn w2_of_identical_sets_is_zero() {
        let mut state = 11u64;
        let a = random_points(&mut state, 50, 3);
        assert_eq!(w2(&a, &a, 3), 0.0);
        assert_eq!(w2(&[], &[], 3), 0.0);
    }

    #[test]
    fn w2_of_a_translate_is_the_shift_length() {
        let mut state = 13u64;
        let (n, dim) = (60, 3);
        let a = random_points(&mut state, n, dim);
        let shift = [0.3, -0.4, 1.2];
        let b: Vec<f64> = a
            .iter()
            .enumerate()
            .map(|(k, x)| x + shift[k % dim])
            .collect();
        let expected = shift.iter().map(|s| s * s).sum::<f64>().sqrt();
        assert!((w2(&a, &b, dim) - expected).abs() <= 1e-9);
    }

    #[test]
    fn w2_in_one_dimension_is_the_sorted_matching() {
        let mut state = 17u64;
        let n = 200;
        let mut a: Vec<f64> = (0..n).map(|_| next_f64(&mut state)).collect();
        let mut b: Vec<f64> = (0..n).map(|_| 3.0 * next_f64(&mut state) - 1.0).collect();
        let got = w2(&a, &b, 1);
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let sorted = (a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            / n as f64)
            .sqrt();
        assert!((got - sorted).abs() <= 1e-9, "{got} vs {sorted}");
    }

    #[test]
    fn w2_of_swapped_points_is_zero() {
        let a = [0.0, 0.0, 1.0, 0.0];
        let b = [1.0, 0.0, 0.0, 0.0];
        assert_eq!(w2(&a, &b, 2), 0.0);
        assert_eq!(w2(&[1.0, 2.0], &[4.0, 6.0], 2), 5.0);
    }

    /// Points whose squared distance overflows (coordinates of 1e300) have
    /// no assignment: NaN, not a panic.
    #[test]
    fn non_finite_costs_give_nan() {
        assert!(w2(&[1e300, 0.0], &[-1e300, 0.0], 1).is_nan());
        assert!(w2(&[f64::NAN, 0.0], &[0.0, 0.0], 2).is_nan());
    }

    #[test]
    #[should_panic(expected = "differ in size")]
    fn w2_rejects_unequal_sets() {
        w2(&[0.0, 1.0], &[0.0, 1.0, 2.0, 3.0], 2);
    }

    #[test]
    #[should_panic(expected = "whole number of points")]
    fn w2_rejects_partial_points() {
        w2(&[0.0, 1.0, 2.0], &[0.0, 1.0, 2.0], 2);
    }
}
