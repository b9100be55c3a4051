//! Tensor operations that candle's CPU backend runs slowly: the exact (erf)
//! GELU and its derivative, elementwise over large activations, computed in
//! parallel over chunks (rayon) in one pass each. Other devices use candle's
//! own kernels. Results do not depend on the number of threads: every
//! element is computed on its own.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// 1 / sqrt(2).
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi).
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// GELU(x) = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), the exact form.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        x.contiguous()?.apply_op1(Gelu)
    } else {
        x.gelu_erf()
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

/// Phi(x) = 0.5 (1 + erf(x / sqrt 2)).
fn phi_cdf(x: f32) -> f32 {
    0.5 * (1.0 + candle_core::cpu::erf::erf_f32(x * FRAC_1_SQRT_2))
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-erf-par"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l)?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| {
                for (y, &x) in y.iter_mut().zip(x) {
                    *y = x * phi_cdf(x);
                }
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let g = grad_res.contiguous()?;
        Ok(Some(arg.apply_op2_no_bwd(&g, &GeluGrad)?))
    }
}

/// grad * GELU'(x), GELU'(x) = Phi(x) + x phi(x).
struct GeluGrad;

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "gelu-erf-grad-par"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (contiguous(s1, l1)?, contiguous(s2, l2)?);
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
            .for_each(|(y, (x, g))| {
                for ((y, &x), &g) in y.iter_mut().zip(x).zip(g) {
                    let pdf = FRAC_1_SQRT_2PI * (-0.5 * x * x).exp();
                    *y = g * (phi_cdf(x) + x * pdf);
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Values and gradients against candle's own exact GELU on a range
    /// of inputs (including a non-contiguous view).
    #[test]
    fn matches_candle_gelu_erf_and_its_gradient() {
        let dev = Device::Cpu;
        let xs: Vec<f32> = (0..4000).map(|i| (i as f32 - 2000.0) / 250.0).collect();
        let x = Var::from_tensor(&Tensor::from_vec(xs, (40, 100), &dev).unwrap()).unwrap();
        let ours = gelu(&x.t().unwrap()).unwrap();
        let theirs = x.t().unwrap().gelu_erf().unwrap();
        let diff = (&ours - &theirs)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "{diff}");
        let w = Tensor::rand(0f32, 1.0, (100, 40), &dev).unwrap();
        let g1 = (ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (theirs * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let d = (g1.get(&x).unwrap() - g2.get(&x).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-5, "{d}");
    }
}
