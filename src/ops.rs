//! Tensor operations that candle's CPU backend runs slowly, each fused into
//! one pass with the bias of the preceding linear layer:
//! - the exact (erf) GELU and its derivative, elementwise over large
//!   activations, computed in parallel over chunks (rayon) ([`bias_gelu`]);
//! - the first layer of a one-hot input as a lookup ([`one_hot_layer`]): the
//!   sum of the weight rows of the k ones, forward in one pass and its
//!   gradient scattered in one pass, where candle needs k row selections,
//!   k - 1 additions and k scatters;
//! - LeakyReLU and its derivative ([`bias_leaky_relu`]), which candle
//!   composes from four full-size tensor ops forward (compare, cast, affine,
//!   multiply) plus the bias addition: on the grid's small networks these
//!   passes and their allocations cost more than the matrix products.
//!
//! Other devices use candle's own kernels. Results do not depend on the
//! number of threads: every element is computed on its own.
//!
//! Phi(x) = 0.5 (1 + erf(x / sqrt 2)) uses Abramowitz & Stegun 7.1.26
//! (|error of erf| <= 1.5e-7, i.e. f32 precision for Phi in [0, 1]) with a
//! branch-free exp (Cody–Waite reduction and a degree-6 polynomial, ~1 ulp),
//! so the loops vectorise.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// 1 / sqrt(2).
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi).
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// y = GELU(x + b) over one row.
#[inline(always)]
fn gelu_row(y: &mut [f32], x: &[f32], b: &[f32]) {
    for ((y, &x), &b) in y.iter_mut().zip(x).zip(b) {
        let v = x + b;
        *y = v * phi_cdf(v);
    }
}

/// y = g GELU'(x + b) over one row.
#[inline(always)]
fn gelu_grad_row(y: &mut [f32], x: &[f32], g: &[f32], b: &[f32]) {
    for (((y, &x), &g), &b) in y.iter_mut().zip(x).zip(g).zip(b) {
        let v = x + b;
        let (cdf, pdf) = phi(v);
        *y = g * (cdf + v * pdf);
    }
}

/// The row kernels compiled for AVX2 (8 lanes instead of SSE2's 4). FMA
/// stays off, so every operation rounds as on the baseline path and the
/// results do not depend on the CPU.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    #[target_feature(enable = "avx2")]
    pub fn gelu_row(y: &mut [f32], x: &[f32], b: &[f32]) {
        super::gelu_row(y, x, b)
    }

    #[target_feature(enable = "avx2")]
    pub fn gelu_grad_row(y: &mut [f32], x: &[f32], g: &[f32], b: &[f32]) {
        super::gelu_grad_row(y, x, g, b)
    }
}

/// Call a row kernel, in its AVX2 build when the CPU has AVX2.
macro_rules! dispatch {
    ($f:ident($($a:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                unsafe { avx2::$f($($a),*) }
            } else {
                $f($($a),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $f($($a),*)
        }
    }};
}

/// GELU(pre + bias), the bias of a linear layer added in the same pass:
/// `pre` `[n, h]`, `bias` `[r, h]` with n a multiple of r, row i of `pre`
/// taking bias row i / (n / r) (r = 1: one bias for every row; r = T: one
/// per block of rows of the same time).
pub fn bias_gelu(pre: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let bias = match bias.rank() {
        1 => bias.unsqueeze(0)?,
        _ => bias.clone(),
    };
    if pre.device().is_cpu() && pre.dtype() == candle_core::DType::F32 {
        pre.contiguous()?.apply_op2(&bias.contiguous()?, BiasGelu)
    } else {
        let (n, h) = pre.dims2()?;
        let r = bias.dim(0)?;
        pre.reshape((r, n / r, h))?
            .broadcast_add(&bias.unsqueeze(1)?)?
            .reshape((n, h))?
            .gelu_erf()
    }
}

/// LeakyReLU(pre + bias) with negative slope `slope`: `pre` `[n, h]`, `bias`
/// `[h]`. The same numbers as candle's composition `v * (slope + (1 -
/// slope) [v > 0])` with the factor detached (which is exactly v or
/// v * slope in f32), in one pass forward and one backward (the pre
/// gradient; the bias gradient is its column sum, as candle's broadcast).
pub fn bias_leaky_relu(pre: &Tensor, bias: &Tensor, slope: f32) -> Result<Tensor> {
    if pre.device().is_cpu() && pre.dtype() == candle_core::DType::F32 {
        pre.contiguous()?
            .apply_op2(&bias.contiguous()?, BiasLeaky { slope })
    } else {
        let v = pre.broadcast_add(bias)?;
        let factor = v
            .gt(0f32)?
            .to_dtype(v.dtype())?
            .affine(1.0 - slope as f64, slope as f64)?
            .detach();
        v * factor
    }
}

/// `x W` for the one-hot input whose ones are at `cols` `[n, k]` (u32, one
/// per row and block): `[n, out]` = sum over j of row `cols[i, j]` of `w`
/// `[in, out]`, added in order j = 0, 1, ... as candle's chain of
/// `index_select`s and additions, whose numbers it gives bit for bit
/// (forward, and the weight gradient: each row of `w` receives the rows of
/// the gradient in increasing i, from zero, as candle's `index_add`; the
/// blocks of `cols` must use disjoint rows of `w`, as one-hot blocks do).
pub fn one_hot_layer(w: &Tensor, cols: &Tensor) -> Result<Tensor> {
    if w.device().is_cpu() && w.dtype() == candle_core::DType::F32 {
        w.contiguous()?.apply_op2(&cols.contiguous()?, OneHotLayer)
    } else {
        let cols = cols.t()?.contiguous()?; // [k, n]
        let mut acc = w.index_select(&cols.get(0)?, 0)?;
        for j in 1..cols.dim(0)? {
            acc = (acc + w.index_select(&cols.get(j)?, 0)?)?;
        }
        Ok(acc)
    }
}

/// The one-hot first layer.
struct OneHotLayer;

/// The u32 slice of a contiguous CPU storage.
fn contiguous_u32<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [u32]> {
    let CpuStorage::U32(v) = s else {
        candle_core::bail!("one_hot_layer: u32 positions only")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("one_hot_layer: contiguous positions only"),
    }
}

impl CustomOp2 for OneHotLayer {
    fn name(&self) -> &'static str {
        "one-hot-layer"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (w, cols) = (contiguous(s1, l1)?, contiguous_u32(s2, l2)?);
        let (rows, out) = l1.shape().dims2()?;
        let (n, k) = l2.shape().dims2()?;
        if k == 0 || cols.iter().any(|&c| c as usize >= rows) {
            candle_core::bail!(
                "one_hot_layer: positions must be in 0..{rows}, at least one per row"
            )
        }
        let row = |c: u32| &w[c as usize * out..(c as usize + 1) * out];
        let mut y = Vec::with_capacity(n * out);
        for c in cols.chunks_exact(k) {
            let start = y.len();
            y.extend_from_slice(row(c[0]));
            for &cj in &c[1..] {
                for (a, &v) in y[start..].iter_mut().zip(row(cj)) {
                    *a += v;
                }
            }
        }
        Ok((CpuStorage::F32(y), Shape::from((n, out))))
    }

    fn bwd(
        &self,
        w: &Tensor,
        cols: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let gw = w.apply_op2_no_bwd(&cols.contiguous()?, &OneHotScatter(grad_res.contiguous()?))?;
        Ok((Some(gw), None))
    }
}

/// The weight gradient of [`OneHotLayer`]: `[in, out]`, the gradient's rows
/// added to the rows of their positions (the weights only give the shape).
struct OneHotScatter(Tensor);

impl CustomOp2 for OneHotScatter {
    fn name(&self) -> &'static str {
        "one-hot-layer-grad"
    }

    fn cpu_fwd(
        &self,
        _s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let cols = contiguous_u32(s2, l2)?;
        let (rows, out) = l1.shape().dims2()?;
        let (_, k) = l2.shape().dims2()?;
        let (storage, layout) = self.0.storage_and_layout();
        let candle_core::Storage::Cpu(g) = &*storage else {
            candle_core::bail!("one_hot_layer: the gradient is not on the CPU")
        };
        let g = contiguous(g, layout)?;
        let mut gw = vec![0f32; rows * out];
        for (c, g) in cols.chunks_exact(k).zip(g.chunks_exact(out)) {
            for &cj in c {
                let dst = &mut gw[cj as usize * out..(cj as usize + 1) * out];
                for (d, &v) in dst.iter_mut().zip(g) {
                    *d += v;
                }
            }
        }
        Ok((CpuStorage::F32(gw), l1.shape().clone()))
    }
}

/// The fused bias and LeakyReLU.
struct BiasLeaky {
    slope: f32,
}

impl CustomOp2 for BiasLeaky {
    fn name(&self) -> &'static str {
        "bias-leaky-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, b) = (contiguous(s1, l1)?, contiguous(s2, l2)?);
        let (n, h) = l1.shape().dims2()?;
        if l2.shape().dims() != [h] {
            candle_core::bail!(
                "bias_leaky_relu: pre {:?} and bias {:?} do not match",
                l1.shape(),
                l2.shape()
            )
        }
        let slope = self.slope;
        let mut y = Vec::with_capacity(n * h);
        for x in x.chunks_exact(h) {
            y.extend(x.iter().zip(b).map(|(&x, &b)| {
                let v = x + b;
                if v > 0.0 {
                    v
                } else {
                    v * slope
                }
            }));
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _pre: &Tensor,
        _bias: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // res > 0 exactly where pre + bias > 0 (slope > 0).
        let gz = res.apply_op2_no_bwd(&grad_res.contiguous()?, &LeakyGrad { slope: self.slope })?; // [n, h]
        let gb = column_sum(&gz)?; // [h]
        Ok((Some(gz), Some(gb)))
    }
}

/// The column sums `[h]` of `x` `[n, h]`, each accumulated in row order from
/// 0 in f32: candle's `sum(0)` bit for bit, without its per-element index
/// arithmetic.
fn column_sum(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        x.contiguous()?.apply_op1_no_bwd(&ColumnSum)
    } else {
        x.sum(0)
    }
}

struct ColumnSum;

impl candle_core::CustomOp1 for ColumnSum {
    fn name(&self) -> &'static str {
        "column-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l)?;
        let (_, h) = l.shape().dims2()?;
        let mut acc = vec![0f32; h];
        for row in x.chunks_exact(h) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v;
            }
        }
        Ok((CpuStorage::F32(acc), Shape::from(h)))
    }
}

/// grad * (1 where res > 0, else slope).
struct LeakyGrad {
    slope: f32,
}

impl CustomOp2 for LeakyGrad {
    fn name(&self) -> &'static str {
        "leaky-relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (r, g) = (contiguous(s1, l1)?, contiguous(s2, l2)?);
        let slope = self.slope;
        let y = r
            .iter()
            .zip(g)
            .map(|(&r, &g)| if r > 0.0 { g } else { g * slope })
            .collect();
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }
}

/// Rows of `pre` per bias row, and the width, checked.
fn block(pre: &Layout, bias: &Layout) -> Result<(usize, usize)> {
    let (n, h) = pre.shape().dims2()?;
    let (r, hb) = bias.shape().dims2()?;
    if hb != h || r == 0 || n % r != 0 {
        candle_core::bail!(
            "bias_gelu: pre {:?} and bias {:?} do not match",
            pre.shape(),
            bias.shape()
        )
    }
    Ok((n / r, h))
}

struct BiasGelu;

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "bias-gelu-par"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, b) = (contiguous(s1, l1)?, contiguous(s2, l2)?);
        let (per, h) = block(l1, l2)?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(h)
            .zip(x.par_chunks(h))
            .enumerate()
            .with_min_len(CHUNK / h.max(1))
            .for_each(|(row, (y, x))| {
                let b = &b[(row / per) * h..(row / per + 1) * h];
                dispatch!(gelu_row(y, x, b));
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        pre: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad_res.contiguous()?;
        let gz = pre.apply_op3_no_bwd(bias, &g, &BiasGeluGrad)?; // [n, h]
        let (n, h) = gz.dims2()?;
        let r = bias.dim(0)?;
        let gb = gz.reshape((r, n / r, h))?.sum(1)?; // [r, h]
        Ok((Some(gz), Some(gb)))
    }
}

/// grad * GELU'(pre + bias).
struct BiasGeluGrad;

impl candle_core::CustomOp3 for BiasGeluGrad {
    fn name(&self) -> &'static str {
        "bias-gelu-grad-par"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, b, g) = (
            contiguous(s1, l1)?,
            contiguous(s2, l2)?,
            contiguous(s3, l3)?,
        );
        let (per, h) = block(l1, l2)?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(h)
            .zip(x.par_chunks(h).zip(g.par_chunks(h)))
            .enumerate()
            .with_min_len(CHUNK / h.max(1))
            .for_each(|(row, (y, (x, g)))| {
                let b = &b[(row / per) * h..(row / per + 1) * h];
                dispatch!(gelu_grad_row(y, x, g, b));
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }
}

/// The f32 slice of a contiguous CPU storage.
fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("gelu: f32 only")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("gelu: contiguous input only"),
    }
}

/// e^x for x <= 0 down to about -87 (below: 0), branch-free: x = n ln 2 + r,
/// |r| <= ln 2 / 2, e^r by its degree-6 Taylor polynomial (relative error
/// below 2e-7), 2^n from the exponent bits.
#[inline(always)]
fn exp_neg(x: f32) -> f32 {
    let x = x.max(-87.0);
    // Round to nearest by the 1.5 * 2^23 trick (vectorises without SSE4.1).
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// Phi(x) = 0.5 (1 + erf(x / sqrt 2)) and phi(x) = e^{-x^2/2} / sqrt(2 pi).
#[inline(always)]
fn phi(x: f32) -> (f32, f32) {
    // A&S 7.1.26 on z = |x| / sqrt 2: erf(z) = 1 - t (a1 + t (a2 + ...)) e^{-z^2}, t = 1 / (1 + p z).
    let z = x.abs() * FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let g = exp_neg(-0.5 * x * x); // e^{-z^2}
    let erf_abs = 1.0 - poly * g;
    let erf = if x < 0.0 { -erf_abs } else { erf_abs };
    (0.5 * (1.0 + erf), FRAC_1_SQRT_2PI * g)
}

/// Phi(x).
#[inline(always)]
fn phi_cdf(x: f32) -> f32 {
    phi(x).0
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The bit patterns of a tensor's f32 values (for bit-for-bit checks).
    pub(crate) fn bits(t: &Tensor) -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect()
    }

    /// The fused bias + GELU equals GELU(pre + bias broadcast per block of
    /// rows), and its gradients (pre and bias) equal candle's.
    #[test]
    fn bias_gelu_matches_the_unfused_form() {
        let dev = Device::Cpu;
        let pre = Var::from_tensor(&Tensor::randn(0f32, 2.0, (6, 5), &dev).unwrap()).unwrap();
        let bias = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 5), &dev).unwrap()).unwrap();
        let w = Tensor::randn(0f32, 1.0, (6, 5), &dev).unwrap();
        let ours = bias_gelu(&pre, &bias).unwrap();
        let theirs = pre
            .reshape((3, 2, 5))
            .unwrap()
            .broadcast_add(&bias.unsqueeze(1).unwrap())
            .unwrap()
            .reshape((6, 5))
            .unwrap()
            .gelu_erf()
            .unwrap();
        let max = |t: Tensor| {
            t.abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        assert!(max((&ours - &theirs).unwrap()) < 1e-6);
        let g1 = (ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (theirs * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [&pre, &bias] {
            let d = (g1.get(v).unwrap() - g2.get(v).unwrap()).unwrap();
            assert!(max(d) < 1e-5);
        }
    }

    /// The fused bias + LeakyReLU gives candle's composition bit for bit,
    /// forward and both gradients (including exact zeros and a NaN-free
    /// negative range), so the grid's golden metrics do not move.
    #[test]
    fn bias_leaky_relu_is_the_composition_bit_for_bit() {
        let dev = Device::Cpu;
        let mut rng = crate::rng::stream(1, crate::rng::Stream::InitStudent);
        let mut draw = |n: usize| -> Vec<f32> {
            use rand::Rng as _;
            (0..n).map(|_| rng.random_range(-2f32..2f32)).collect()
        };
        let mut x = draw(7 * 5);
        x[3] = 0.0; // v = b: the sign of the bias decides
        let pre = Var::from_tensor(&Tensor::from_vec(x, (7, 5), &dev).unwrap()).unwrap();
        let bias = Var::from_tensor(&Tensor::from_vec(draw(5), 5, &dev).unwrap()).unwrap();
        let w = Tensor::from_vec(draw(7 * 5), (7, 5), &dev).unwrap();
        let fused = bias_leaky_relu(&pre, &bias, 0.01).unwrap();
        let v = pre.broadcast_add(&bias).unwrap();
        let factor = v
            .gt(0f32)
            .unwrap()
            .to_dtype(candle_core::DType::F32)
            .unwrap()
            .affine(0.99, 0.01)
            .unwrap()
            .detach();
        let composed = (&v * factor).unwrap();
        assert_eq!(bits(&fused), bits(&composed));
        let g1 = (fused * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (composed * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [&pre, &bias] {
            assert_eq!(bits(g1.get(v).unwrap()), bits(g2.get(v).unwrap()));
        }
    }

    /// The one-hot layer gives candle's chain of selections and additions
    /// bit for bit, forward and weight gradient (two blocks of 3 rows, a
    /// repeated position within a block, through a nonlinear use).
    #[test]
    fn one_hot_layer_is_the_chain_bit_for_bit() {
        let dev = Device::Cpu;
        let mut rng = crate::rng::stream(2, crate::rng::Stream::InitStudent);
        let vals: Vec<f32> = {
            use rand::Rng as _;
            (0..6 * 4).map(|_| rng.random_range(-1f32..1f32)).collect()
        };
        let w = Var::from_tensor(&Tensor::from_vec(vals, (6, 4), &dev).unwrap()).unwrap();
        // Block 0 uses rows 0..3, block 1 rows 3..6.
        let cols = Tensor::from_vec(vec![0u32, 3, 2, 5, 0, 4, 1, 3], (4, 2), &dev).unwrap();
        let fused = one_hot_layer(&w, &cols).unwrap();
        let c = cols.t().unwrap().contiguous().unwrap();
        let chain = (w.index_select(&c.get(0).unwrap(), 0).unwrap()
            + w.index_select(&c.get(1).unwrap(), 0).unwrap())
        .unwrap();
        assert_eq!(bits(&fused), bits(&chain));
        let g1 = fused.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = chain.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(bits(g1.get(&w).unwrap()), bits(g2.get(&w).unwrap()));
        assert!(one_hot_layer(&w, &Tensor::new(&[[6u32]], &dev).unwrap()).is_err());
    }

    /// Phi and phi against f64 references over [-10, 10] (A&S 7.1.26:
    /// |error| <= 1.5e-7 on erf, so <= 1e-7 on Phi, plus f32 rounding; phi
    /// to a relative 5e-7 (1 + x^2 / 2), a few f32 ulps: the polynomial's
    /// roundings, and the f32 exponent -x^2/2 alone is off by up to
    /// x^2/2 x 6e-8).
    #[test]
    fn phi_is_accurate_to_f32_precision() {
        for i in -10_000..=10_000 {
            let x = i as f32 / 1000.0;
            let (cdf, pdf) = phi(x);
            let want = 0.5 * (1.0 + candle_core::cpu::erf::erf_f64(x as f64 / 2f64.sqrt()));
            let want_pdf = (-0.5 * (x as f64).powi(2)).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!(
                (cdf as f64 - want).abs() < 2.5e-7,
                "Phi({x}) {cdf} vs {want}"
            );
            assert!(
                (pdf as f64 - want_pdf).abs()
                    <= 5e-7 * (1.0 + 0.5 * (x as f64).powi(2)) * want_pdf + 1e-30,
                "phi({x}) {pdf} vs {want_pdf}"
            );
        }
    }
}
