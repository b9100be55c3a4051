//! Minimum-free-energy duplex of two RNA strands with intermolecular pairs
//! only, reproducing ViennaRNA's duplexfold (37 °C, dangles = 2, interior
//! loops of up to 30 unpaired bases).
//!
//! # Model
//!
//! Strand `s1` (the target, 5'→3') pairs with strand `s2` (the candidate,
//! read 3'→5' along the helix).  A cell `(i, j)` is the pair of `s1[i]` with
//! `s2[j]` (1-based).  `C(i, j)` is the best energy of a helix whose
//! left-most pair (smallest `i`, largest `j`) starts the duplex and whose
//! right-most pair is `(i, j)`:
//!
//! * start: `Misc` duplex initiation + exterior-stem term at the left end;
//! * extend: `C(k, l)` + interior-loop energy of the loop closed by `(k, l)`
//!   and `(i, j)`, for `k < i`, `l > j` and at most 30 unpaired bases.
//!
//! The duplex energy is the minimum over cells of `C(i, j)` + the
//! exterior-stem term at the right end.  An exterior-stem term is the
//! `mismatch_exterior` entry when both neighbouring bases exist, else the
//! `dangle5` / `dangle3` entry for the one that exists (a strand end has no
//! neighbour), plus the `Misc` terminal AU/GU penalty; positive
//! `mismatch_exterior`, `dangle5` and `dangle3` entries count as 0.
//!
//! Interior loops with `n1` unpaired bases on `s1` and `n2` on `s2`:
//! * 0×0: `stack`;
//! * 0×1: `bulge[1]` + `stack` of the adjacent pairs;
//! * 0×n (n ≥ 2): `bulge[n]` + terminal AU/GU penalty for each pair;
//! * 1×1, 1×2, 2×2: `int11`, `int21`, `int22`;
//! * 1×n (n ≥ 3): `internal[n+1]` + min(`NINIO` max, (n−1)·`NINIO` m) +
//!   `mismatch_internal_1n` for both pairs;
//! * 2×3: `internal[5]` + `NINIO` m + `mismatch_internal_23` for both pairs;
//! * otherwise: `internal[n1+n2]` + min(`NINIO` max, |n1−n2|·`NINIO` m) +
//!   `mismatch_internal` for both pairs.
//!
//! Ties are resolved as in ViennaRNA's duplexfold: the end cell is the first
//! minimum scanning `i` upwards and, within a row, `j` downwards; the
//! backtrace takes the first matching predecessor scanning `k` downwards
//! from `i − 1` and, for each `k`, `l` upwards from `j + 1`.

use super::params::{EnergyParams, INF, MAXLOOP, NBPAIRS};
use std::cell::RefCell;

/// Base codes: 0 = unknown, 1 = A, 2 = C, 3 = G, 4 = U.
const BASES: usize = 5;
/// Pseudo base code for "no neighbour" (beyond a strand end) in the exterior table.
const NONE: usize = 5;
/// Energy of an impossible cell; large but safe to add a few loop terms to.
const BIG: i32 = 1 << 29;

/// Pair type of a 5' base with a 3' base (codes as above):
/// CG = 1, GC = 2, GU = 3, UG = 4, AU = 5, UA = 6, no pair = 0.
const PAIR: [[u8; BASES]; BASES] = [
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 5],
    [0, 0, 0, 1, 0],
    [0, 0, 2, 0, 3],
    [0, 6, 0, 4, 0],
];
/// The pair type read from the other strand: `RTYPE[PAIR[a][b]] == PAIR[b][a]`.
const RTYPE: [usize; NBPAIRS + 1] = [0, 2, 1, 4, 3, 6, 5, 7];

/// Result of a duplex fold.
#[derive(Clone, Debug, PartialEq)]
pub struct Duplex {
    /// Minimum free energy in kcal/mol (100000.0 if no pair is possible).
    pub energy: f64,
    /// Dot-bracket structure `s1part&s2part`, covering the paired region plus
    /// one flanking base on each side where the strand has one.
    pub structure: String,
    /// 1-based position in `s1` one past the 3'-most paired base (clamped to
    /// the length of `s1`), as ViennaRNA reports it.
    pub i: usize,
    /// 1-based position in `s2` one before the 5'-most paired base (not below
    /// 1), as ViennaRNA reports it.
    pub j: usize,
}

/// A duplex folder for one fixed target (s1), reusable across many candidates (s2); Send + Sync.
#[derive(Clone, Debug)]
pub struct DuplexFolder {
    /// Target base codes, 1-based: index 0 and `n1 + 1` are padding.
    s1: Vec<u8>,
    /// `ptype[b][i]`: pair type of target base `i` with candidate base `b`.
    ptype: [Vec<u8>; BASES],
    /// Energy tables derived from the parameter file.
    e: Tables,
}

/// The energy terms of the model, arranged for fast lookup.
#[derive(Clone, Debug)]
struct Tables {
    duplex_init: i32,
    /// Terminal AU/GU penalty by pair type.
    au: [i32; NBPAIRS + 1],
    /// Exterior-stem term by pair type, 5' neighbour and 3' neighbour
    /// (`NONE` for a strand end), terminal penalty included.
    ext: [[[i32; BASES + 1]; BASES + 1]; NBPAIRS + 1],
    stack: [[i32; NBPAIRS + 1]; NBPAIRS + 1],
    bulge: [i32; MAXLOOP + 1],
    mm_i: [[[i32; BASES]; BASES]; NBPAIRS + 1],
    mm_1n: [[[i32; BASES]; BASES]; NBPAIRS + 1],
    mm_23: [[[i32; BASES]; BASES]; NBPAIRS + 1],
    int11: Box<super::params::Int11Table>,
    int21: Box<super::params::Int21Table>,
    int22: Box<super::params::Int22Table>,
    /// Loop-size part of a 1×n loop, by n (valid for 3..=29).
    size_1n: [i32; MAXLOOP + 1],
    /// Loop-size part of a 2×3 loop.
    size_23: i32,
    /// Loop-size part of a generic loop, `[n1][n2]` (valid where generic).
    size_gen: Box<[[i32; MAXLOOP + 1]; MAXLOOP + 1]>,
}

impl Tables {
    fn new(p: &EnergyParams) -> Tables {
        let clip = |v: i32| v.min(0);
        let mut au = [0; NBPAIRS + 1];
        for (t, a) in au.iter_mut().enumerate() {
            if t > 2 {
                *a = p.terminal_au;
            }
        }
        let mut ext = [[[0; BASES + 1]; BASES + 1]; NBPAIRS + 1];
        for t in 1..=NBPAIRS {
            for a in 0..=BASES {
                for b in 0..=BASES {
                    let d = match (a < BASES, b < BASES) {
                        (true, true) => clip(p.mismatch_exterior[t][a][b]),
                        (true, false) => clip(p.dangle5[t][a]),
                        (false, true) => clip(p.dangle3[t][b]),
                        (false, false) => 0,
                    };
                    ext[t][a][b] = d + au[t];
                }
            }
        }
        let asym = |d: usize| (p.max_ninio).min(d as i32 * p.ninio);
        let mut size_1n = [INF; MAXLOOP + 1];
        for (n, s) in size_1n.iter_mut().enumerate().take(MAXLOOP).skip(3) {
            *s = p.internal[n + 1] + asym(n - 1);
        }
        let mut size_gen = Box::new([[INF; MAXLOOP + 1]; MAXLOOP + 1]);
        for n1 in 0..=MAXLOOP {
            for n2 in 0..=MAXLOOP - n1 {
                size_gen[n1][n2] = p.internal[n1 + n2] + asym(n1.abs_diff(n2));
            }
        }
        Tables {
            duplex_init: p.duplex_init,
            au,
            ext,
            stack: p.stack,
            bulge: p.bulge,
            mm_i: p.mismatch_internal,
            mm_1n: p.mismatch_internal_1n,
            mm_23: p.mismatch_internal_23,
            int11: p.int11.clone(),
            int21: p.int21.clone(),
            int22: p.int22.clone(),
            size_1n,
            size_23: p.internal[5] + p.ninio,
            size_gen,
        }
    }

    /// Energy of the interior loop closed by the outer pair of type `t_out`
    /// and the inner pair whose type, read from the loop side, is `t_in`,
    /// with `n1` / `n2` unpaired bases.  `x`, `y` are the loop bases next to
    /// the outer pair (on the first and second strand), `p`, `q` those next
    /// to the inner pair (first and second strand).
    #[allow(clippy::too_many_arguments)]
    fn interior(
        &self,
        n1: usize,
        n2: usize,
        t_out: usize,
        t_in: usize,
        x: usize,
        y: usize,
        p: usize,
        q: usize,
    ) -> i32 {
        let (nl, ns) = if n1 > n2 { (n1, n2) } else { (n2, n1) };
        match (ns, nl) {
            (0, 0) => self.stack[t_out][t_in],
            (0, 1) => self.bulge[1] + self.stack[t_out][t_in],
            (0, _) => self.bulge[nl] + self.au[t_out] + self.au[t_in],
            (1, 1) => self.int11[t_out][t_in][x][y],
            (1, 2) if n1 == 1 => self.int21[t_out][t_in][x][q][y],
            (1, 2) => self.int21[t_in][t_out][q][x][p],
            (1, _) => self.size_1n[nl] + self.mm_1n[t_out][x][y] + self.mm_1n[t_in][q][p],
            (2, 2) => self.int22[t_out][t_in][x][p][q][y],
            (2, 3) => self.size_23 + self.mm_23[t_out][x][y] + self.mm_23[t_in][q][p],
            _ => self.size_gen[n1][n2] + self.mm_i[t_out][x][y] + self.mm_i[t_in][q][p],
        }
    }
}

/// Per-thread work space, reused across calls.
#[derive(Default)]
struct Scratch {
    /// Candidate base codes, 1-based with padding at 0 and `n2 + 1`.
    s2: Vec<u8>,
    /// `C(i, j)`, row-major with row length `n2 + 2`.
    c: Vec<i32>,
    /// `C(k, l)` + terminal AU/GU penalty of the pair `(k, l)` (for bulges).
    c_au: Vec<i32>,
    /// `C(k, l)` + `mismatch_internal` of `(k, l)` toward the loop.
    c_mi: Vec<i32>,
    /// `C(k, l)` + `mismatch_internal_1n` of `(k, l)` toward the loop.
    c_m1n: Vec<i32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Encode one letter: A, C, G, U (T = U), either case; anything else is the
/// unknown base 0, which pairs with nothing.
fn encode(b: u8) -> u8 {
    match b.to_ascii_uppercase() {
        b'A' => 1,
        b'C' => 2,
        b'G' => 3,
        b'U' | b'T' => 4,
        _ => 0,
    }
}

/// Outcome of the matrix fill: best energy and its end cell (0, 0 if none).
struct Best {
    energy: i32,
    i: usize,
    j: usize,
}

impl DuplexFolder {
    /// `target`: RNA letters ACGU (T accepted as U; other letters an error naming the position).
    ///
    /// Lower-case letters are accepted as well.
    pub fn new(params: &EnergyParams, target: &str) -> Result<DuplexFolder, String> {
        let mut s1 = Vec::with_capacity(target.len() + 2);
        s1.push(0);
        for (pos, ch) in target.chars().enumerate() {
            let code = if ch.is_ascii() { encode(ch as u8) } else { 0 };
            if code == 0 {
                return Err(format!(
                    "target position {}: `{ch}` is not one of A, C, G, U, T",
                    pos + 1
                ));
            }
            s1.push(code);
        }
        s1.push(0);
        let ptype = std::array::from_fn(|b| s1.iter().map(|&a| PAIR[a as usize][b]).collect());
        Ok(DuplexFolder {
            s1,
            ptype,
            e: Tables::new(params),
        })
    }

    /// Length of the target.
    pub fn target_len(&self) -> usize {
        self.s1.len() - 2
    }

    /// Energy only (the fast path for rewards), kcal/mol, same value as `fold(..).energy`.
    ///
    /// Letters other than A, C, G, U, T (either case) are unknown bases that
    /// pair with nothing.
    pub fn energy(&self, candidate: &[u8]) -> f64 {
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let sc = &mut *guard;
            self.fill(candidate, sc).energy as f64 / 100.0
        })
    }

    /// Energy plus structure and pair ends as ViennaRNA prints them.
    pub fn fold(&self, candidate: &[u8]) -> Duplex {
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let sc = &mut *guard;
            let best = self.fill(candidate, sc);
            let structure = self.backtrack(sc, best.i, best.j);
            let n1 = self.target_len();
            Duplex {
                energy: best.energy as f64 / 100.0,
                structure,
                i: if best.i < n1 { best.i + 1 } else { best.i },
                j: if best.j > 1 { best.j - 1 } else { best.j },
            }
        })
    }

    /// Fill the `C` matrix for `candidate` into `sc` and find the best end cell.
    fn fill(&self, candidate: &[u8], sc: &mut Scratch) -> Best {
        let n1 = self.target_len();
        let n2 = candidate.len();
        let w = n2 + 2;
        let e = &self.e;
        let s1 = &self.s1;

        sc.s2.clear();
        sc.s2.push(0);
        sc.s2.extend(candidate.iter().map(|&b| encode(b)));
        sc.s2.push(0);
        let cells = (n1 + 1) * w;
        for v in [&mut sc.c, &mut sc.c_au, &mut sc.c_mi, &mut sc.c_m1n] {
            v.clear();
            v.resize(cells, BIG);
        }
        let s2 = &sc.s2[..];
        let (c, c_au, c_mi, c_m1n) = (&mut sc.c, &mut sc.c_au, &mut sc.c_mi, &mut sc.c_m1n);
        let pt = |k: usize, l: usize| self.ptype[s2[l] as usize][k] as usize;

        let mut best = Best {
            energy: INF,
            i: 0,
            j: 0,
        };
        for i in 1..=n1 {
            // Neighbours of target position i (NONE beyond the ends).
            let left1 = if i > 1 { s1[i - 1] as usize } else { NONE };
            let right1 = if i < n1 { s1[i + 1] as usize } else { NONE };
            for j in (1..=n2).rev() {
                let t = pt(i, j);
                if t == 0 {
                    continue;
                }
                let rt = RTYPE[t];
                let left2 = if j < n2 { s2[j + 1] as usize } else { NONE };
                let mut v = e.duplex_init + e.ext[t][left1][left2];

                if i > 1 && j < n2 {
                    // Loop bases next to the inner pair (i, j).
                    let p = s1[i - 1] as usize;
                    let q = s2[j + 1] as usize;
                    let max_n1 = (i - 2).min(MAXLOOP);
                    let max_n2 = (n2 - j - 1).min(MAXLOOP);
                    let at = |n1: usize, n2: usize| (i - 1 - n1) * w + j + 1 + n2;

                    // Loops with sequence-specific tables, looked up directly.
                    let mut direct = |n1: usize, n2: usize| {
                        if n1 <= max_n1 && n2 <= max_n2 {
                            let (k, l) = (i - 1 - n1, j + 1 + n2);
                            let t2 = pt(k, l);
                            if t2 != 0 {
                                let x = s1[k + 1] as usize;
                                let y = s2[l - 1] as usize;
                                let le = e.interior(n1, n2, t2, rt, x, y, p, q);
                                v = v.min(c[k * w + l] + le);
                            }
                        }
                    };
                    for (n1, n2) in [
                        (0, 0),
                        (1, 0),
                        (0, 1),
                        (1, 1),
                        (1, 2),
                        (2, 1),
                        (2, 2),
                        (2, 3),
                        (3, 2),
                    ] {
                        direct(n1, n2);
                    }

                    // Bulges of two or more bases.
                    let au_in = e.au[rt];
                    let mut m = BIG;
                    for n in 2..=max_n2 {
                        m = m.min(c_au[at(0, n)] + e.bulge[n]);
                    }
                    for n in 2..=max_n1 {
                        m = m.min(c_au[at(n, 0)] + e.bulge[n]);
                    }
                    v = v.min(m + au_in);

                    // 1×n loops (n ≥ 3).
                    let mut m = BIG;
                    if max_n1 >= 1 {
                        for n in 3..=max_n2.min(MAXLOOP - 1) {
                            m = m.min(c_m1n[at(1, n)] + e.size_1n[n]);
                        }
                    }
                    if max_n2 >= 1 {
                        for n in 3..=max_n1.min(MAXLOOP - 1) {
                            m = m.min(c_m1n[at(n, 1)] + e.size_1n[n]);
                        }
                    }
                    v = v.min(m + e.mm_1n[rt][q][p]);

                    // Generic loops: both sides ≥ 2 unpaired, not 2×2 / 2×3 / 3×2.
                    let mut m = BIG;
                    for n1 in 2..=max_n1.min(MAXLOOP - 2) {
                        let lo = match n1 {
                            2 => 4,
                            3 => 3,
                            _ => 2,
                        };
                        let hi = max_n2.min(MAXLOOP - n1);
                        if lo > hi {
                            continue;
                        }
                        let row = &c_mi[at(n1, lo)..=at(n1, hi)];
                        let sizes = &e.size_gen[n1][lo..=hi];
                        let r = row
                            .iter()
                            .zip(sizes)
                            .map(|(a, b)| a + b)
                            .min()
                            .unwrap_or(BIG);
                        m = m.min(r);
                    }
                    v = v.min(m + e.mm_i[rt][q][p]);
                }

                let cell = i * w + j;
                c[cell] = v;
                c_au[cell] = v + e.au[t];
                if i < n1 && j > 1 {
                    let x = s1[i + 1] as usize;
                    let y = s2[j - 1] as usize;
                    c_mi[cell] = v + e.mm_i[t][x][y];
                    c_m1n[cell] = v + e.mm_1n[t][x][y];
                }

                let right2 = if j > 1 { s2[j - 1] as usize } else { NONE };
                let total = v + e.ext[rt][right2][right1];
                if total < best.energy {
                    best = Best {
                        energy: total,
                        i,
                        j,
                    };
                }
            }
        }
        best
    }

    /// Trace the helix back from its right-most pair `(i, j)` and render it.
    fn backtrack(&self, sc: &Scratch, i_end: usize, j_end: usize) -> String {
        let n1 = self.target_len();
        let s2 = &sc.s2[..];
        let n2 = s2.len() - 2;
        let w = n2 + 2;
        let s1 = &self.s1;
        let e = &self.e;
        let pt = |k: usize, l: usize| self.ptype[s2[l] as usize][k] as usize;

        if i_end == 0 {
            // No pair possible: one unpaired base of each strand, if any.
            let one = |n: usize| if n > 0 { "." } else { "" };
            return format!("{}&{}", one(n1), one(n2));
        }

        let mut st1 = vec![b'.'; n1 + 1];
        let mut st2 = vec![b'.'; n2 + 1];
        let (mut i, mut j) = (i_end, j_end);
        loop {
            st1[i] = b'(';
            st2[j] = b')';
            let v = sc.c[i * w + j];
            let t = pt(i, j);
            let rt = RTYPE[t];
            let mut next = None;
            'search: for k in (i.saturating_sub(MAXLOOP + 1).max(1)..i).rev() {
                for l in j + 1..=n2 {
                    let (u1, u2) = (i - k - 1, l - j - 1);
                    if u1 + u2 > MAXLOOP {
                        break;
                    }
                    let t2 = pt(k, l);
                    if t2 == 0 {
                        continue;
                    }
                    let le = e.interior(
                        u1,
                        u2,
                        t2,
                        rt,
                        s1[k + 1] as usize,
                        s2[l - 1] as usize,
                        s1[i - 1] as usize,
                        s2[j + 1] as usize,
                    );
                    if v == sc.c[k * w + l] + le {
                        next = Some((k, l));
                        break 'search;
                    }
                }
            }
            match next {
                Some((k, l)) => (i, j) = (k, l),
                None => {
                    debug_assert_eq!(
                        v - e.ext[t][if i > 1 { s1[i - 1] as usize } else { NONE }]
                            [if j < n2 { s2[j + 1] as usize } else { NONE }],
                        e.duplex_init,
                        "backtrace found no predecessor"
                    );
                    break;
                }
            }
        }
        let first1 = if i > 1 { i - 1 } else { i };
        let last1 = (i_end + 1).min(n1);
        let first2 = if j_end > 1 { j_end - 1 } else { 1 };
        let last2 = if j < n2 { j + 1 } else { j };
        let mut out = String::with_capacity(last1 - first1 + last2 - first2 + 3);
        out.extend(st1[first1..=last1].iter().map(|&b| b as char));
        out.push('&');
        out.extend(st2[first2..=last2].iter().map(|&b| b as char));
        out
    }
}
