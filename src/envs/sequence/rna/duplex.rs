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
//!
//! # Implementation
//!
//! The last three loop classes split into an outer-pair term, a size term
//! and an inner-pair term.  The outer-pair term is stored with `C` in three
//! extra matrices, so those loops become min-plus scans over fixed-width
//! windows of `n1` (see [`WIN`]), which the compiler vectorises.  When the
//! energies are provably within range, those matrices are kept as `i16`
//! (twice the lanes, and native `i16` min on baseline x86-64); otherwise as
//! `i32`.  Both give the same integers.

use super::params::{EnergyParams, INF, MAXLOOP, NBPAIRS};
use std::cell::RefCell;

/// Base codes: 0 = unknown, 1 = A, 2 = C, 3 = G, 4 = U.
const BASES: usize = 5;
/// Pseudo base code for "no neighbour" (beyond a strand end) in the exterior table.
const NONE: usize = 5;
/// Energy of an impossible cell; large but safe to add a few loop terms to.
const BIG: i32 = 1 << 29;

/// Width of the windows scanned over `n1` (the s1-side loop length): one
/// more than the largest loop, so slot `r` of a window ending just before
/// row `i` is `n1 = WIN - 1 - r`.  Matrix columns carry `WIN` rows of
/// padding in front, so windows never run off the start of the target.
const WIN: usize = 32;

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

/// Storage type of the window matrices and tables.
///
/// `BIG` marks an impossible entry; adding terms to it must stay far above
/// any real energy (`i32`: plain addition with headroom; `i16`: saturation).
trait Lane: Copy + Ord {
    const BIG: Self;
    /// Convert, saturating at the type's range.
    fn narrow(v: i32) -> Self;
    fn widen(self) -> i32;
    fn plus(self, other: Self) -> Self;
}

impl Lane for i32 {
    const BIG: i32 = BIG;
    #[inline(always)]
    fn narrow(v: i32) -> i32 {
        v
    }
    #[inline(always)]
    fn widen(self) -> i32 {
        self
    }
    #[inline(always)]
    fn plus(self, other: i32) -> i32 {
        self + other
    }
}

impl Lane for i16 {
    const BIG: i16 = i16::MAX;
    #[inline(always)]
    fn narrow(v: i32) -> i16 {
        v.clamp(i16::MIN as i32, i16::MAX as i32) as i16
    }
    #[inline(always)]
    fn widen(self) -> i32 {
        self as i32
    }
    #[inline(always)]
    fn plus(self, other: i16) -> i16 {
        self.saturating_add(other)
    }
}

/// `acc[r] = min(acc[r], m[start + r] + b[r])` over a window.
#[inline(always)]
fn min_plus_into<L: Lane>(acc: &mut [L; WIN], m: &[L], start: usize, b: &[L; WIN]) {
    let a: &[L; WIN] = m[start..start + WIN].try_into().expect("window");
    for ((m, &x), &y) in acc.iter_mut().zip(a).zip(b) {
        *m = (*m).min(x.plus(y));
    }
}

/// Smallest entry of a window.
#[inline(always)]
fn window_min<L: Lane>(acc: &[L; WIN]) -> L {
    acc.iter().copied().fold(L::BIG, L::min)
}

/// Result of a duplex fold.
#[derive(Clone, Debug, PartialEq)]
pub struct Duplex {
    /// Minimum free energy in kcal/mol (100000.0 if no pair is possible).
    pub energy: f64,
    /// Dot-bracket structure `s1part&s2part`, covering the paired region plus
    /// one flanking base on each side where the strand has one.
    pub structure: String,
    /// 1-based position in `s1` one past the 3'-most paired base (clamped to
    /// the length of `s1`), as ViennaRNA's duplexfold reports it.
    pub i: usize,
    /// 1-based position in `s2` one before the 5'-most paired base (not below
    /// 1), as ViennaRNA's duplexfold reports it.
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

/// Size terms of the windowed loop classes, one slot per `n1` (slot `r`
/// holds `n1 = WIN - 1 - r`), `BIG` where the class does not apply.
#[derive(Clone, Debug)]
struct WindowTables<L> {
    /// `n2 = 0`: bulges of two or more bases on s1.
    bulge: [L; WIN],
    /// `n2 = 1`: 1×n loops with n ≥ 3 bases on s1.
    one_n: [L; WIN],
    /// `generic[n2]`: generic loops.
    generic: Box<[[L; WIN]; MAXLOOP + 1]>,
}

impl<L: Lane> WindowTables<L> {
    fn new(bulge: &[i32; WIN], one_n: &[i32; WIN], generic: &[[i32; WIN]; MAXLOOP + 1]) -> Self {
        let conv = |w: &[i32; WIN]| -> [L; WIN] {
            std::array::from_fn(|r| if w[r] >= INF { L::BIG } else { L::narrow(w[r]) })
        };
        WindowTables {
            bulge: conv(bulge),
            one_n: conv(one_n),
            generic: Box::new(std::array::from_fn(|n2| conv(&generic[n2]))),
        }
    }
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
    win32: WindowTables<i32>,
    win16: WindowTables<i16>,
    /// Longest helix (in pairs) for which every windowed value is sure to
    /// fit in `i16`.
    narrow_pairs: usize,
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
        for (t, per_pair) in ext.iter_mut().enumerate().skip(1) {
            for (a, row) in per_pair.iter_mut().enumerate() {
                for (b, cell) in row.iter_mut().enumerate() {
                    let d = match (a < BASES, b < BASES) {
                        (true, true) => clip(p.mismatch_exterior[t][a][b]),
                        (true, false) => clip(p.dangle5[t][a]),
                        (false, true) => clip(p.dangle3[t][b]),
                        (false, false) => 0,
                    };
                    *cell = d + au[t];
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
        let size_23 = p.internal[5] + p.ninio;

        // Window slot r holds n1 = WIN - 1 - r.
        let window = |f: &dyn Fn(usize) -> Option<i32>| -> [i32; WIN] {
            std::array::from_fn(|r| f(WIN - 1 - r).unwrap_or(INF))
        };
        let win_bulge = window(&|n1| (2..=MAXLOOP).contains(&n1).then(|| p.bulge[n1]));
        let win_1n = window(&|n1| (3..MAXLOOP).contains(&n1).then(|| size_1n[n1]));
        let win_gen: [[i32; WIN]; MAXLOOP + 1] = std::array::from_fn(|n2| {
            window(&|n1| {
                let generic = n1 >= 2
                    && n2 >= 2
                    && n1 + n2 <= MAXLOOP
                    && !matches!((n1, n2), (2, 2) | (2, 3) | (3, 2));
                generic.then(|| size_gen[n1][n2])
            })
        });

        // Range analysis for the i16 windows.  Any C value is at least
        // init + 2 * (most negative exterior term) + (pairs - 1) * (most
        // negative loop), and a windowed value adds at most one mismatch
        // term and one size term to it.
        let pairs = 1..NBPAIRS;
        let bases = 0..BASES;
        let mut min_loop = 0;
        let mut min_mm = 0;
        for t in pairs.clone() {
            for t2 in pairs.clone() {
                min_loop = min_loop
                    .min(p.stack[t][t2])
                    .min(p.bulge[1] + p.stack[t][t2]);
                for a in bases.clone() {
                    for b in bases.clone() {
                        min_loop = min_loop.min(p.int11[t][t2][a][b]);
                        for c in bases.clone() {
                            min_loop = min_loop.min(p.int21[t][t2][a][b][c]);
                            for d in bases.clone() {
                                min_loop = min_loop.min(p.int22[t][t2][a][b][c][d]);
                            }
                        }
                    }
                }
            }
            for a in bases.clone() {
                for b in bases.clone() {
                    min_mm = min_mm
                        .min(p.mismatch_internal[t][a][b])
                        .min(p.mismatch_internal_1n[t][a][b])
                        .min(p.mismatch_internal_23[t][a][b]);
                }
            }
        }
        let min_size = [&win_bulge, &win_1n]
            .into_iter()
            .chain(win_gen.iter())
            .flatten()
            .chain(&size_1n[3..MAXLOOP])
            .chain(&[size_23])
            .copied()
            .fold(0, i32::min);
        min_loop = min_loop.min(min_size + 2 * min_mm);
        let min_ext = ext.iter().flatten().flatten().copied().fold(0, i32::min);
        let floor = p.duplex_init.min(0) + 2 * min_ext + min_mm + min_size - 1000;
        let headroom = floor - (i16::MIN as i32);
        let narrow_pairs = if headroom <= 0 {
            0
        } else if min_loop == 0 {
            usize::MAX
        } else {
            1 + (headroom / -min_loop) as usize
        };

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
            size_23,
            size_gen,
            win32: WindowTables::new(&win_bulge, &win_1n, &win_gen),
            win16: WindowTables::new(&win_bulge, &win_1n, &win_gen),
            narrow_pairs,
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

/// Storage order of the DP matrices: by s2 position `l` (column), then by
/// s1 position `k`, each column led by `WIN` rows of padding so that
/// `k` may run down to `1 - WIN`.
#[derive(Clone, Copy)]
struct Layout {
    column: usize,
}

impl Layout {
    fn new(n1: usize) -> Layout {
        Layout {
            column: WIN + n1 + 1,
        }
    }

    /// Number of entries for `n2` candidate positions (columns 0..=n2+1).
    fn len(self, n2: usize) -> usize {
        (n2 + 2) * self.column
    }

    /// Index of cell `(k, l)`.
    #[inline(always)]
    fn at(self, k: usize, l: usize) -> usize {
        l * self.column + WIN + k
    }

    /// Index of cell `(i - WIN, l)`, the start of the window before row `i`.
    #[inline(always)]
    fn window_start(self, i: usize, l: usize) -> usize {
        l * self.column + i
    }
}

/// `C(k, l)` plus the outer-pair term of each windowed loop class.
#[derive(Default)]
struct WindowMatrices<L> {
    /// Plus the terminal AU/GU penalty of `(k, l)` (bulges).
    au: Vec<L>,
    /// Plus `mismatch_internal` of `(k, l)` toward the loop.
    mi: Vec<L>,
    /// Plus `mismatch_internal_1n` of `(k, l)` toward the loop.
    m1n: Vec<L>,
}

impl<L: Lane> WindowMatrices<L> {
    fn reset(&mut self, cells: usize) {
        for v in [&mut self.au, &mut self.mi, &mut self.m1n] {
            v.clear();
            v.resize(cells, L::BIG);
        }
    }
}

/// Candidate encoding, pair types and `C`, shared by both lane types.
#[derive(Default)]
struct Core {
    /// Candidate base codes, 1-based with padding at 0 and `n2 + 1`.
    s2: Vec<u8>,
    /// Pair type of every cell `(k, l)` (0 in the padding), see [`Layout`].
    pt: Vec<u8>,
    /// `C(k, l)`, see [`Layout`].
    c: Vec<i32>,
}

/// Per-thread work space, reused across calls.
#[derive(Default)]
struct Scratch {
    core: Core,
    w32: WindowMatrices<i32>,
    w16: WindowMatrices<i16>,
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
            let sc = &mut *cell.borrow_mut();
            self.fill(candidate, sc).energy as f64 / 100.0
        })
    }

    /// Energy plus structure and pair ends as ViennaRNA prints them.
    pub fn fold(&self, candidate: &[u8]) -> Duplex {
        SCRATCH.with(|cell| {
            let sc = &mut *cell.borrow_mut();
            let best = self.fill(candidate, sc);
            let structure = self.backtrack(&sc.core, best.i, best.j);
            let n1 = self.target_len();
            Duplex {
                energy: best.energy as f64 / 100.0,
                structure,
                i: if best.i < n1 { best.i + 1 } else { best.i },
                j: if best.j > 1 { best.j - 1 } else { best.j },
            }
        })
    }

    /// Encode `candidate`, fill `C` and find the best end cell.
    fn fill(&self, candidate: &[u8], sc: &mut Scratch) -> Best {
        let n1 = self.target_len();
        let n2 = candidate.len();
        let lay = Layout::new(n1);
        let cells = lay.len(n2);

        let core = &mut sc.core;
        core.s2.clear();
        core.s2.push(0);
        core.s2.extend(candidate.iter().map(|&b| encode(b)));
        core.s2.push(0);
        core.c.clear();
        core.c.resize(cells, BIG);
        core.pt.clear();
        core.pt.resize(cells, 0);
        for l in 1..=n2 {
            let col = lay.at(0, l);
            core.pt[col..col + n1 + 1].copy_from_slice(&self.ptype[core.s2[l] as usize][..=n1]);
        }

        if n1.min(n2) <= self.e.narrow_pairs {
            sc.w16.reset(cells);
            self.fill_with(core, &mut sc.w16, &self.e.win16)
        } else {
            sc.w32.reset(cells);
            self.fill_with(core, &mut sc.w32, &self.e.win32)
        }
    }

    /// The recursion, with the windowed loop classes stored as `L`.
    ///
    /// Matrices are stored by column `l` (see [`Layout`]), so that the scans
    /// over `k` for a fixed `l` are contiguous fixed-width windows.
    fn fill_with<L: Lane>(
        &self,
        core: &mut Core,
        wm: &mut WindowMatrices<L>,
        wt: &WindowTables<L>,
    ) -> Best {
        let n1 = self.target_len();
        let lay = Layout::new(n1);
        let e = &self.e;
        let s1 = &self.s1[..];
        let s2 = &core.s2[..];
        let n2 = s2.len() - 2;
        let ptm = &core.pt[..];
        let c = &mut core.c[..];
        let (c_au, c_mi, c_m1n) = (&mut wm.au[..], &mut wm.mi[..], &mut wm.m1n[..]);

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
                let t = ptm[lay.at(i, j)] as usize;
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
                    // Outer pair with u1 / u2 unpaired bases on s1 / s2.
                    let at = |u1: usize, u2: usize| lay.at(i - 1 - u1, j + 1 + u2);
                    // Window of outer pairs (i - WIN ..= i - 1, j + 1 + u2).
                    let win = |u2: usize| lay.window_start(i, j + 1 + u2);

                    // Small loops with sequence-specific tables.  A non-pair
                    // outer cell has type 0, whose table rows are INF, and
                    // C = BIG, so no branch on the pair type is needed.
                    let outer = |u1: usize, u2: usize| {
                        let o = at(u1, u2);
                        // Loop bases next to the outer pair: s1[k + 1], s2[l - 1].
                        let x = s1[i - u1] as usize;
                        let y = s2[j + u2] as usize;
                        (ptm[o] as usize, x, y, c[o])
                    };
                    let (t2, _, _, ck) = outer(0, 0);
                    v = v.min(ck + e.stack[t2][rt]);
                    if max_n1 >= 1 {
                        let (t2, _, _, ck) = outer(1, 0);
                        v = v.min(ck + e.bulge[1] + e.stack[t2][rt]);
                    }
                    if max_n2 >= 1 {
                        let (t2, _, _, ck) = outer(0, 1);
                        v = v.min(ck + e.bulge[1] + e.stack[t2][rt]);
                    }
                    if max_n1 >= 1 && max_n2 >= 1 {
                        let (t2, x, y, ck) = outer(1, 1);
                        v = v.min(ck + e.int11[t2][rt][x][y]);
                    }
                    if max_n1 >= 1 && max_n2 >= 2 {
                        let (t2, x, y, ck) = outer(1, 2);
                        v = v.min(ck + e.int21[t2][rt][x][q][y]);
                    }
                    if max_n1 >= 2 && max_n2 >= 1 {
                        let (t2, x, _, ck) = outer(2, 1);
                        v = v.min(ck + e.int21[rt][t2][q][x][p]);
                    }
                    if max_n1 >= 2 && max_n2 >= 2 {
                        let (t2, x, y, ck) = outer(2, 2);
                        v = v.min(ck + e.int22[t2][rt][x][p][q][y]);
                    }
                    let mm23_in = e.size_23 + e.mm_23[rt][q][p];
                    if max_n1 >= 2 && max_n2 >= 3 {
                        let (t2, x, y, ck) = outer(2, 3);
                        v = v.min(ck + e.mm_23[t2][x][y] + mm23_in);
                    }
                    if max_n1 >= 3 && max_n2 >= 2 {
                        let (t2, x, y, ck) = outer(3, 2);
                        v = v.min(ck + e.mm_23[t2][x][y] + mm23_in);
                    }

                    // Loop classes whose energy splits into an outer-pair
                    // term (stored with C), a size term and an inner-pair
                    // term: bulges of 2 or more, 1×n (n ≥ 3) and generic.
                    let au_in = e.au[rt];
                    let m1n_in = e.mm_1n[rt][q][p];
                    let mi_in = e.mm_i[rt][q][p];
                    // Windows over n1 for fixed n2: generic (n2 ≥ 2), then
                    // bulges on s1 (n2 = 0) and 1×n with one base on s2
                    // (n2 = 1).
                    let mut acc = [L::BIG; WIN];
                    for u2 in 2..=max_n2.min(MAXLOOP - 2) {
                        min_plus_into(&mut acc, c_mi, win(u2), &wt.generic[u2]);
                    }
                    let mut m = window_min(&acc).widen() + mi_in;
                    let mut acc = [L::BIG; WIN];
                    min_plus_into(&mut acc, c_au, win(0), &wt.bulge);
                    m = m.min(window_min(&acc).widen() + au_in);
                    if max_n2 >= 1 {
                        let mut acc = [L::BIG; WIN];
                        min_plus_into(&mut acc, c_m1n, win(1), &wt.one_n);
                        m = m.min(window_min(&acc).widen() + m1n_in);
                    }
                    // The rows n1 = 0 (bulges on s2) and n1 = 1 (1×n with
                    // one base on s1), scanned over n2.
                    for u in 2..=max_n2 {
                        m = m.min(c_au[at(0, u)].widen() + e.bulge[u] + au_in);
                    }
                    if max_n1 >= 1 {
                        for u in 3..=max_n2.min(MAXLOOP - 1) {
                            m = m.min(c_m1n[at(1, u)].widen() + e.size_1n[u] + m1n_in);
                        }
                    }
                    v = v.min(m);
                }

                let cell = lay.at(i, j);
                c[cell] = v;
                c_au[cell] = L::narrow(v + e.au[t]);
                if i < n1 && j > 1 {
                    let x = s1[i + 1] as usize;
                    let y = s2[j - 1] as usize;
                    c_mi[cell] = L::narrow(v + e.mm_i[t][x][y]);
                    c_m1n[cell] = L::narrow(v + e.mm_1n[t][x][y]);
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
    fn backtrack(&self, core: &Core, i_end: usize, j_end: usize) -> String {
        let n1 = self.target_len();
        let s2 = &core.s2[..];
        let n2 = s2.len() - 2;
        let lay = Layout::new(n1);
        let s1 = &self.s1;
        let e = &self.e;
        let pt = |k: usize, l: usize| core.pt[lay.at(k, l)] as usize;

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
            let v = core.c[lay.at(i, j)];
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
                    if v == core.c[lay.at(k, l)] + le {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The recursion written out directly, every loop through `Tables::interior`.
    fn naive(f: &DuplexFolder, candidate: &[u8]) -> i32 {
        let n1 = f.target_len();
        let n2 = candidate.len();
        let s1 = &f.s1;
        let mut s2 = vec![0u8];
        s2.extend(candidate.iter().map(|&b| encode(b)));
        s2.push(0);
        let w = n2 + 2;
        let mut c = vec![INF; (n1 + 1) * w];
        let mut best = INF;
        for i in 1..=n1 {
            for j in (1..=n2).rev() {
                let t = PAIR[s1[i] as usize][s2[j] as usize] as usize;
                if t == 0 {
                    continue;
                }
                let a = if i > 1 { s1[i - 1] as usize } else { NONE };
                let b = if j < n2 { s2[j + 1] as usize } else { NONE };
                let mut v = f.e.duplex_init + f.e.ext[t][a][b];
                for k in (1..i).rev().take(MAXLOOP + 1) {
                    for l in j + 1..=n2 {
                        let (u1, u2) = (i - k - 1, l - j - 1);
                        if u1 + u2 > MAXLOOP {
                            break;
                        }
                        let t2 = PAIR[s1[k] as usize][s2[l] as usize] as usize;
                        if t2 == 0 {
                            continue;
                        }
                        let le = f.e.interior(
                            u1,
                            u2,
                            t2,
                            RTYPE[t],
                            s1[k + 1] as usize,
                            s2[l - 1] as usize,
                            s1[i - 1] as usize,
                            s2[j + 1] as usize,
                        );
                        v = v.min(c[k * w + l] + le);
                    }
                }
                c[i * w + j] = v;
                let a = if j > 1 { s2[j - 1] as usize } else { NONE };
                let b = if i < n1 { s1[i + 1] as usize } else { NONE };
                best = best.min(v + f.e.ext[RTYPE[t]][a][b]);
            }
        }
        best
    }

    /// The shipped Turner 2004 parameters (`rna/rna_turner2004.par`).
    pub(super) fn params() -> EnergyParams {
        let path = crate::datasets::test_root().join("rna/rna_turner2004.par");
        EnergyParams::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn fast_fill_matches_naive_recursion() {
        let p = params();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |m: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % m
        };
        for round in 0..300 {
            let n1 = 1 + next(70) as usize;
            let n2 = next(45) as usize;
            let target: String = (0..n1).map(|_| b"ACGU"[next(4) as usize] as char).collect();
            // Candidates occasionally contain unknown letters.
            let cand: Vec<u8> = (0..n2)
                .map(|_| {
                    if round % 5 == 0 && next(10) == 0 {
                        b'N'
                    } else {
                        b"ACGU"[next(4) as usize]
                    }
                })
                .collect();
            let f = DuplexFolder::new(&p, &target).unwrap();
            let want = naive(&f, &cand);
            let got = f.fold(&cand);
            assert_eq!(
                got.energy,
                want as f64 / 100.0,
                "{target} / {}",
                String::from_utf8_lossy(&cand)
            );
            assert_eq!(f.energy(&cand), got.energy);
        }
    }

    #[test]
    fn wide_path_matches_naive_recursion() {
        // Long, nearly complementary strands push energies beyond the range
        // where i16 windows are provably safe, so the i32 path is used.
        let p = params();
        let f0 = DuplexFolder::new(&p, "A").unwrap();
        let limit = f0.e.narrow_pairs;
        println!("i16 windows up to {limit} pairs");
        assert!((14..100).contains(&limit), "i16 limit {limit} pairs");
        let mut state = 12345u64;
        let mut next = move |m: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % m
        };
        for _ in 0..3 {
            let n = limit + 20 + next(30) as usize;
            let target: String = (0..n).map(|_| b"ACGU"[next(4) as usize] as char).collect();
            let cand: Vec<u8> = target
                .bytes()
                .rev()
                .map(|b| match b {
                    b'A' => b'U',
                    b'U' => b'A',
                    b'C' => b'G',
                    _ => b'C',
                })
                .enumerate()
                .map(|(k, b)| if k % 17 == 5 { b'A' } else { b })
                .collect();
            let f = DuplexFolder::new(&p, &target).unwrap();
            let want = naive(&f, &cand);
            assert!(n.min(cand.len()) > limit && want < -10000, "{n}: {want}");
            assert_eq!(f.energy(&cand), want as f64 / 100.0);
            assert_eq!(f.fold(&cand).energy, want as f64 / 100.0);
        }
    }

    #[test]
    fn folder_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<DuplexFolder>();
    }
}

/// Small duplexes whose energy is worked out by hand from the parameter file
/// (`rna/rna_turner2004.par`). Pair types name the s1 base first (s1 runs
/// 5'->3', s2 pairs antiparallel). A stack between pair (i, j) and the next
/// pair (i+1, j-1) is `stack[type(i, j)][type(j-1, i+1)]`, the second pair
/// read from s2. `Misc`: duplex initiation 410, terminal AU/GU 50 (dcal/mol).
#[cfg(test)]
mod hand_tests {
    use super::*;

    use super::tests::params;

    fn fold(s1: &str, s2: &str) -> Duplex {
        DuplexFolder::new(&params(), s1)
            .unwrap()
            .fold(s2.as_bytes())
    }

    #[test]
    fn gcgc_blunt_helix() {
        // s1 GCGC / s2 GCGC: pairs G1-C4 (GC), C2-G3 (CG), G3-C2 (GC), C4-G1 (CG).
        //   stack[GC][GC] = -340, stack[CG][CG] = -240, stack[GC][GC] = -340
        //   no neighbours at either end, no AU/GU end: exterior terms 0
        //   410 - 340 - 240 - 340 = -510
        let d = fold("GCGC", "GCGC");
        assert_eq!(d.energy, -5.10);
        assert_eq!(d.structure, "((((&))))");
        assert_eq!((d.i, d.j), (4, 1));
    }

    #[test]
    fn gcgc_with_3prime_dangle() {
        // s1 GCGCA / s2 GCGC: the same helix.  The right-end pair C4 (s1) - G1
        // (s2), read from s2, is GC; s1's A5 dangles 3' of it and there is no
        // base 5' of it (s2 ends), so dangle3 applies, not mismatch_exterior.
        //   -510 + dangle3[GC][A] (-170) = -680
        let d = fold("GCGCA", "GCGC");
        assert_eq!(d.energy, -6.80);
        assert_eq!(d.structure, "((((.&))))");
        assert_eq!((d.i, d.j), (5, 1));
    }

    #[test]
    fn agcgca_mismatches_at_both_ends() {
        // s1 AGCGCA / s2 AGCGCA: helix G2-C5 .. C5-G2 flanked by A on all four
        // sides.  Left end: pair G2 (s1) - C5 (s2) is GC, 5' neighbour A1 (s1),
        // 3' neighbour A6 (s2).  Right end: pair C5 (s1) - G2 (s2), read from s2,
        // is GC, 5' neighbour A1 (s2), 3' neighbour A6 (s1).
        //   410 + (-340 - 240 - 340) + 2 * mismatch_exterior[GC][A][A] (-150)
        //   = 410 - 920 - 300 = -810
        let d = fold("AGCGCA", "AGCGCA");
        assert_eq!(d.energy, -8.10);
        assert_eq!(d.structure, ".((((.&.)))).");
        assert_eq!((d.i, d.j), (6, 1));
    }

    #[test]
    fn agcgcu_terminal_au_penalties() {
        // s1 AGCGCU / s2 AGCGCU: six pairs A1-U6 (AU) ... U6-A1 (UA), blunt ends.
        //   stack[AU][CG] = -210, stack[GC][GC] = -340, stack[CG][CG] = -240,
        //   stack[GC][GC] = -340, stack[CG][AU] = -210         sum -1340
        //   terminal AU penalty at both ends: 2 * 50 = 100
        //   410 - 1340 + 100 = -830
        let d = fold("AGCGCU", "AGCGCU");
        assert_eq!(d.energy, -8.30);
        assert_eq!(d.structure, "((((((&))))))");
        assert_eq!((d.i, d.j), (6, 1));
    }

    #[test]
    fn no_possible_pair() {
        // Nothing pairs: ViennaRNA's duplexfold reports INF / 100 (INF = 10^7
        // dcal/mol) and a stub structure.
        let d = fold("AAAA", "AAAA");
        assert_eq!(d.energy, 100000.0);
        assert_eq!(d.structure, ".&.");
        assert_eq!((d.i, d.j), (1, 0));
    }

    #[test]
    fn target_letters() {
        let p = params();
        // T is U, lower case is accepted.
        let a = DuplexFolder::new(&p, "GGGAAATCC").unwrap();
        let b = DuplexFolder::new(&p, "gggaaaucc").unwrap();
        assert_eq!(a.energy(b"GGAUUUCCC"), b.energy(b"GGAUUUCCC"));
        let err = DuplexFolder::new(&p, "GGGANCC").unwrap_err();
        assert!(err.contains("position 5"), "{err}");
    }

    #[test]
    fn empty_inputs_do_not_panic() {
        let d = fold("GGG", "");
        assert_eq!((d.energy, d.structure.as_str()), (100000.0, ".&"));
        let d = fold("", "CCC");
        assert_eq!((d.energy, d.structure.as_str()), (100000.0, "&."));
    }
}
