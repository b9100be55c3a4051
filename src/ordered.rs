//! Matrix products in a reduction order fixed by the program, not by the
//! CPU's caches (docs/reproducibility.md).
//!
//! candle's CPU matmul calls the `gemm` crate (0.19), which sums the shared
//! dimension k in blocks: each block of kc terms is accumulated from zero by
//! FMA in order of k, and the blocks' sums are added to the destination one
//! after the other. For most shapes kc is derived at run time from the L1
//! data cache's size and associativity (gemm-common 0.19.0, `src/cache.rs`,
//! `kernel_params`): on a 32 KiB 8-way L1d a reduction of k = 4862 is summed
//! in 10 blocks of 487, on a 48 KiB 12-way one in 5 blocks of 973, and the
//! last bits of the product differ. Here every product whose reduction gemm
//! would block by the caches is computed as the sum of the products over
//! fixed blocks of k, added in order, each at most [`BLOCK`] long, a length
//! that gemm keeps in one block on every machine. The blocks are those gemm
//! itself uses on a 32 KiB 8-way L1d, so products there keep their bits.
//!
//! The backward pass goes through the same function: the weight gradient
//! `a^T g` (a sum over the batch rows) and the input gradient `g b^T` (a sum
//! over the output columns) are products like any other. Products that gemm
//! does not block by the caches (at most [`BLOCK`] terms, small or thin
//! products, matrix-vector products) are candle's product unchanged. Other
//! devices use candle's product (cuBLAS on CUDA, whose order is not
//! addressed here).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

/// The longest block of a reduction: gemm never splits a reduction of at
/// most 512 terms, whatever the caches. Its cache-sized block is
/// `auto_kc = (kc_0 * kc_multiplier.next_power_of_two()).max(512).min(k)`
/// (gemm-common 0.19.0, `src/cache.rs`, `kernel_params`), so k <= 512 gives
/// kc = k; its other kernels use kc = 1024 (horizontal kernels) or
/// kc = min(k, 512) (products at most 64 x 64, `src/gemm.rs`,
/// `gemm_basic_generic`), or sum without blocks (matrix-vector products).
/// On a 32 KiB 8-way L1d with 64-byte lines (64 sets) the f32 FMA kernel
/// (MR = 16 rows of 4 bytes, NR = 6) gets kc_0 = 64 and a multiplier of 8:
/// 512, the floor itself; a 48 KiB 12-way L1d gets 64 x 16 = 1024.
pub const BLOCK: usize = 512;

/// `a [.., m, k] x b [.., k, n] -> [.., m, n]`, as `a.matmul(b)`, with the
/// reduction over k (and, in the backward pass, over m and n) in the order
/// of [`blocks`] wherever gemm would choose it from the CPU's caches. f32
/// and f64 on the CPU; other dtypes and devices, and shapes that candle
/// rejects or that are empty, are `a.matmul(b)`.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let ordered = a.device().is_cpu()
        && matches!(a.dtype(), DType::F32 | DType::F64)
        && dims(a.dims(), b.dims()).is_some();
    match ordered {
        true => a.apply_op2(b, Ordered),
        false => a.matmul(b),
    }
}

/// `(batch, m, n, k)` of a product candle accepts and that is not empty.
fn dims(a: &[usize], b: &[usize]) -> Option<(usize, usize, usize, usize)> {
    let r = a.len();
    if r < 2 || b.len() != r || a[r - 1] != b[r - 2] {
        return None;
    }
    let (batch, batch_b) = (
        a[..r - 2].iter().product::<usize>(),
        b[..r - 2].iter().product::<usize>(),
    );
    let (m, k, n) = (a[r - 2], a[r - 1], b[r - 1]);
    (batch == batch_b && batch * m * n * k > 0).then_some((batch, m, n, k))
}

/// The blocks `(start, len)` of a reduction of k terms, in the order they
/// are added: `ceil(k / BLOCK)` blocks of `ceil(k / count)` terms, the last
/// one shorter. This is gemm's own blocking when its cache-sized block is
/// 512 (`kernel_params`: `k_iter = k.div_ceil(auto_kc)`,
/// `kc = k.div_ceil(k_iter)`; `gemm_basic_generic` then takes
/// `kc.min(k - depth)` terms at a time).
pub fn blocks(k: usize) -> impl Iterator<Item = (usize, usize)> {
    let len = k.div_ceil(k.div_ceil(BLOCK).max(1)).max(1);
    (0..k)
        .step_by(len)
        .map(move |start| (start, len.min(k - start)))
}

/// A matrix operand's strides in elements: row stride, column stride.
#[derive(Debug, Clone, Copy)]
struct Strides {
    rs: usize,
    cs: usize,
}

impl Strides {
    /// The strides of the last two dimensions of `l`.
    fn of(l: &Layout) -> Self {
        let s = l.stride();
        Self {
            rs: s[s.len() - 2],
            cs: s[s.len() - 1],
        }
    }

    /// The transposed operand's.
    fn t(self) -> Self {
        Self {
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// Whether gemm 0.19 sums the reduction of `[m, k] x [k, n]` in blocks
/// sized from the CPU's caches (`kernel_params`), for operands with these
/// strides and the contiguous row-major destination candle writes
/// (candle-core 0.9.2, `src/cpu_backend/mod.rs`, `MatMul`). This follows
/// the tests of gemm 0.19.0 (`src/gemm.rs`, `gemm`) and gemm-common 0.19.0
/// (`src/gemm.rs`, `gemm_basic_generic`) in their order. `horizontal`:
/// whether gemm's kernels for this CPU have horizontal kernels; when unsure,
/// false (the product may then be split where gemm would not block it:
/// other bits than candle's, the same on every machine).
fn cache_blocked(
    m: usize,
    n: usize,
    k: usize,
    lhs: Strides,
    rhs: Strides,
    horizontal: bool,
) -> bool {
    // One block on every machine (BLOCK); this also covers `gevv` (k <= 2).
    if k <= BLOCK {
        return false;
    }
    // `gemm` computes C^T = B^T A^T when the destination's column stride
    // (1) is smaller than its row stride (n).
    let (m, n, lhs, rhs, dst) = match n > 1 {
        true => (n, m, rhs.t(), lhs.t(), Strides { rs: 1, cs: n }),
        false => (m, n, lhs, rhs, Strides { rs: n, cs: 1 }),
    };
    // Horizontal kernels: kc = 1024 on every machine.
    if horizontal && lhs.cs == 1 && rhs.rs == 1 && m * n <= 16 * 16 {
        return false;
    }
    // Matrix-vector products: no blocks.
    let gemv = (n <= 1 && lhs.rs == 1 && dst.rs == 1)
        || (n <= 1 && lhs.cs == 1 && rhs.rs == 1)
        || (m <= 1 && rhs.cs == 1 && dst.cs == 1)
        || (m <= 1 && rhs.rs == 1 && lhs.cs == 1);
    // Products at most 64 x 64: kc = min(k, 512) on every machine.
    let small = m <= 64 && n <= 64;
    !gemv && !small
}

/// Whether gemm runs this CPU's f32 and f64 products with its FMA kernels,
/// the only x86-64 ones with horizontal kernels (gemm-f32 and gemm-f64
/// 0.19.0, `src/microkernel.rs`, `H_M`/`H_N`; chosen by the same run-time
/// test, gemm-common 0.19.0 `src/gemm.rs`, `gemm_def!`). Elsewhere false,
/// the safe answer for [`cache_blocked`].
fn horizontal_kernels() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `sum += part`, elementwise: the addition gemm makes between two blocks
/// (its destination update `beta * acc + dst` with beta = 1, one rounding).
fn add_assign(sum: &mut CpuStorage, part: &CpuStorage) -> Result<()> {
    match (sum, part) {
        (CpuStorage::F32(s), CpuStorage::F32(p)) => s.iter_mut().zip(p).for_each(|(s, p)| *s += p),
        (CpuStorage::F64(s), CpuStorage::F64(p)) => s.iter_mut().zip(p).for_each(|(s, p)| *s += p),
        _ => candle_core::bail!("ordered matmul: f32 or f64 operands only"),
    }
    Ok(())
}

/// The product as a custom op: its forward in blocks, its backward through
/// [`matmul`] again.
struct Ordered;

impl CustomOp2 for Ordered {
    fn name(&self) -> &'static str {
        "ordered-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let Some((batch, m, n, k)) = dims(l1.dims(), l2.dims()) else {
            candle_core::bail!("ordered matmul: shapes {:?} x {:?}", l1.dims(), l2.dims())
        };
        let r = l1.dims().len();
        let shape = Shape::from(&l1.dims()[..r - 2]).extend(&[m, n]);
        // Batched products: candle may fold the batch into the rows, which
        // changes gemm's path; block every long reduction.
        let split = match r {
            2 => cache_blocked(
                m,
                n,
                k,
                Strides::of(l1),
                Strides::of(l2),
                horizontal_kernels(),
            ),
            _ => k > BLOCK,
        };
        if !split {
            return Ok((s1.matmul(s2, (batch, m, n, k), l1, l2)?, shape));
        }
        let mut sum: Option<CpuStorage> = None;
        for (start, len) in blocks(k) {
            // a[.., :, block] x b[.., block, :], one gemm block each.
            let part = s1.matmul(
                s2,
                (batch, m, n, len),
                &l1.narrow(r - 1, start, len)?,
                &l2.narrow(r - 2, start, len)?,
            )?;
            match sum.as_mut() {
                None => sum = Some(part),
                Some(s) => add_assign(s, &part)?,
            }
        }
        Ok((sum.expect("k > BLOCK: two blocks or more"), shape))
    }

    /// candle's matmul gradients (candle-core 0.9.2, `src/backprop.rs`,
    /// `Op::Matmul`: `grad b^T` and `a^T grad`, both computed, with the
    /// same layouts), each a product in fixed order.
    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(matmul(grad, &b.t()?)?), Some(matmul(&a.t()?, grad)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::bits;
    use candle_core::{Device, Var};
    use rand::Rng as _;

    /// Seeded values in [-1, 1) as an `[rows, cols]` tensor (and its data).
    fn random(rows: usize, cols: usize, seed: u64) -> (Tensor, Vec<f32>) {
        let mut rng = crate::rng::stream(seed, crate::rng::Stream::InitStudent);
        let v: Vec<f32> = (0..rows * cols)
            .map(|_| rng.random_range(-1f32..1f32))
            .collect();
        (
            Tensor::from_vec(v.clone(), (rows, cols), &Device::Cpu).unwrap(),
            v,
        )
    }

    /// The blocks of a few lengths, by hand: one block up to 512; 513 is
    /// 257 + 256; 4862 (the report's SSR batch) is 9 x 487 + 479; and every
    /// length up to 3000 is covered in order by at most `BLOCK`-long blocks,
    /// `ceil(k / 512)` of them.
    #[test]
    fn blocks_by_hand() {
        let of = |k| blocks(k).collect::<Vec<_>>();
        assert_eq!(of(1), vec![(0, 1)]);
        assert_eq!(of(512), vec![(0, 512)]);
        assert_eq!(of(513), vec![(0, 257), (257, 256)]);
        assert_eq!(of(1100), vec![(0, 367), (367, 367), (734, 366)]);
        let b = of(4862);
        assert_eq!(b.len(), 10);
        assert!(b[..9].iter().all(|&(_, len)| len == 487));
        assert_eq!(b[9], (9 * 487, 479));
        for k in 1..=3000 {
            let b = of(k);
            assert_eq!(b.len(), k.div_ceil(BLOCK), "k = {k}");
            let mut next = 0;
            for (start, len) in b {
                assert!(start == next && (1..=BLOCK).contains(&len), "k = {k}");
                next += len;
            }
            assert_eq!(next, k);
        }
    }

    /// Which products gemm blocks by the caches, by hand from its dispatch
    /// (row-major operands: strides (k, 1) and (n, 1)).
    #[test]
    fn cache_blocked_products_by_hand() {
        let row = |cols| Strides { rs: cols, cs: 1 };
        let blocked = |m, n, k| cache_blocked(m, n, k, row(k), row(n), true);
        // Long reduction, a side over 64: kernel_params.
        assert!(blocked(80, 80, 600));
        assert!(blocked(4862, 16, 600));
        assert!(blocked(2, 100, 600)); // thin, but both row-major: not horizontal
                                       // At most BLOCK terms: one block everywhere.
        assert!(!blocked(80, 80, 512));
        // Both sides at most 64: kc = min(k, 512) everywhere.
        assert!(!blocked(64, 64, 5000));
        // Matrix-vector products (a column: the objectives' per-entry sums).
        assert!(!blocked(1, 80, 600));
        assert!(!blocked(80, 1, 600));
        // Horizontal kernels (a row-major, b column-major, at most 256
        // outputs): kc = 1024 everywhere; without them, blocked.
        assert!(!cache_blocked(2, 100, 600, row(600), row(600).t(), true));
        assert!(cache_blocked(2, 100, 600, row(600), row(600).t(), false));
        // A transposed left operand ([k, m] stored, as in a^T g) changes
        // nothing for a large product.
        assert!(cache_blocked(80, 80, 600, row(80).t(), row(80), true));
    }

    /// gemm's own block for the f32 FMA kernel (MR = 16, NR = 6, 4 bytes)
    /// and the f64 one (MR = 8, NR = 6, 8 bytes) on this machine's caches:
    /// a reduction of at most `BLOCK` terms is one block, for thin and large
    /// products (the floor of 512 holds on every machine; this checks it
    /// against the function itself).
    #[test]
    fn gemm_keeps_a_block_whole() {
        use gemm_common::cache::kernel_params;
        for (mr, size) in [(16, 4), (8, 8)] {
            for (m, n) in [(65, 65), (4862, 16), (16, 4862), (1024, 1024)] {
                for k in [1, 3, 257, 487, 500, BLOCK] {
                    assert_eq!(kernel_params(m, n, k, mr, 6, size).kc, k, "{m} x {k} x {n}");
                }
            }
        }
    }

    /// Products that gemm does not block by the caches are not split, so
    /// they are candle's bit for bit, and so are their gradients: a small
    /// product, a matrix-vector one with a long reduction, one of `BLOCK`
    /// terms and, where gemm has horizontal kernels, a thin one with a long
    /// reduction and a transposed right operand (as in `g w^T`).
    #[test]
    fn unblocked_products_are_candles() {
        let mut shapes = vec![(7, 5, 3, false), (16, 900, 1, false), (80, 512, 70, false)];
        if horizontal_kernels() {
            shapes.push((2, 900, 100, true));
        }
        for (m, k, n, transposed) in shapes {
            let a = Var::from_tensor(&random(m, k, 1).0).unwrap();
            let b = match transposed {
                true => Var::from_tensor(&random(n, k, 2).0).unwrap(),
                false => Var::from_tensor(&random(k, n, 2).0).unwrap(),
            };
            let bt = match transposed {
                true => b.t().unwrap(),
                false => b.as_tensor().clone(),
            };
            let (sa, sb) = (Strides::of(a.layout()), Strides::of(bt.layout()));
            assert!(!cache_blocked(m, n, k, sa, sb, horizontal_kernels()));
            let (w, _) = random(m, n, 3);
            let ours = matmul(&a, &bt).unwrap();
            let theirs = a.matmul(&bt).unwrap();
            assert_eq!(bits(&ours), bits(&theirs), "{m} x {k} x {n}");
            let g1 = (ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (theirs * &w)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&a, &b] {
                assert_eq!(bits(g1.get(v).unwrap()), bits(g2.get(v).unwrap()));
            }
        }
    }

    /// `a [m, k] x b [k, n]` on the host in the documented order: for each
    /// output, each block of [`blocks`] accumulated from zero in order of k
    /// (by FMA when gemm's kernels use it, one rounding per term), the
    /// blocks' sums added in order. The bit patterns.
    fn reference(a: &[f32], b: &[f32], (m, k, n): (usize, usize, usize), fma: bool) -> Vec<u32> {
        let mut out = vec![0u32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut sum = 0f32;
                for (bi, (start, len)) in blocks(k).enumerate() {
                    let mut acc = 0f32;
                    for p in start..start + len {
                        let (x, y) = (a[i * k + p], b[p * n + j]);
                        acc = match fma {
                            true => x.mul_add(y, acc),
                            false => x * y + acc,
                        };
                    }
                    sum = if bi == 0 { acc } else { sum + acc };
                }
                out[i * n + j] = sum.to_bits();
            }
        }
        out
    }

    /// The transpose of a row-major `[rows, cols]` matrix.
    fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..cols * rows)
            .map(|i| x[(i % rows) * cols + i / rows])
            .collect()
    }

    /// Every long reduction follows the documented order on this machine,
    /// whatever its caches: the forward product over k = 1100 (blocks 367,
    /// 367, 366), and for `y = x w` with x [530, 70], w [70, 530] and the
    /// loss sum(y * r) (so dL/dy = r exactly), the weight gradient x^T r
    /// over the 530 rows and the input gradient r w^T over the 530 columns
    /// (blocks 265 + 265 each). On a machine whose gemm blocked these sums
    /// by its caches (one block of 1100 or 530 on a 48 KiB 12-way L1d),
    /// the bits would differ from this reference. x86-64 only: the kernels
    /// of other architectures were not inspected.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn long_reductions_follow_the_fixed_order() {
        let fma = std::arch::is_x86_feature_detected!("fma");
        let f32s = |t: &Tensor| -> Vec<u32> {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            v.iter().map(|x| x.to_bits()).collect()
        };
        let (a, av) = random(70, 1100, 4);
        let (b, bv) = random(1100, 80, 5);
        assert_eq!(
            f32s(&matmul(&a, &b).unwrap()),
            reference(&av, &bv, (70, 1100, 80), fma)
        );

        let (x, xv) = random(530, 70, 6);
        let (w, wv) = random(70, 530, 7);
        let (r, rv) = random(530, 530, 8);
        let (x, w) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap());
        let y = matmul(&x, &w).unwrap();
        assert_eq!(f32s(&y), reference(&xv, &wv, (530, 70, 530), fma));
        let g = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let xt = transpose(&xv, 530, 70);
        let wt = transpose(&wv, 70, 530);
        assert_eq!(
            f32s(g.get(&w).unwrap()),
            reference(&xt, &rv, (70, 530, 530), fma)
        );
        assert_eq!(
            f32s(g.get(&x).unwrap()),
            reference(&rv, &wt, (530, 530, 70), fma)
        );
    }
}
