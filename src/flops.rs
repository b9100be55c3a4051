//! Counts the floating-point work of the networks' matrix products, for the
//! achieved GFLOP/s of `runner bench`.
//!
//! Every matrix product of a policy or an objective goes through [`matmul`],
//! which computes it in a fixed reduction order ([`crate::ordered`]) and
//! adds 2 m k n (per batch element) to a process-wide counter: the training
//! counter while the calling thread is inside [`training`] (the student's
//! and the teacher's loss), else the inference counter (rollouts,
//! evaluation, signals). A training product is followed by its backward
//! pass, two products of the same size (the gradients of both operands), so
//! the work of a run is `inference + 3 x training`. Elementwise operations,
//! lookups and the host's work are not counted: the figure is the work that
//! a perfect matrix-product engine would still have to do.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{Result, Tensor};

static INFERENCE: AtomicU64 = AtomicU64::new(0);
static TRAINING: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static IN_TRAINING: Cell<bool> = const { Cell::new(false) };
}

/// `a.matmul(b)` in a fixed reduction order ([`crate::ordered::matmul`]),
/// counted.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let out = crate::ordered::matmul(a, b)?;
    let dims = a.dims();
    if let ([.., m, k], Some(&n)) = (dims, b.dims().last()) {
        let batch: usize = dims[..dims.len() - 2].iter().product();
        let flops = 2 * (batch * m * k * n) as u64;
        let counter = match IN_TRAINING.with(Cell::get) {
            true => &TRAINING,
            false => &INFERENCE,
        };
        counter.fetch_add(flops, Ordering::Relaxed);
    }
    Ok(out)
}

/// Run `f` with this thread's products counted as training (forward passes
/// of a loss that is then differentiated).
pub fn training<T>(f: impl FnOnce() -> T) -> T {
    let before = IN_TRAINING.with(|c| c.replace(true));
    let out = f();
    IN_TRAINING.with(|c| c.set(before));
    out
}

/// The work counted so far, `(inference, training)` forward FLOPs, and reset.
pub fn take() -> (u64, u64) {
    (
        INFERENCE.swap(0, Ordering::Relaxed),
        TRAINING.swap(0, Ordering::Relaxed),
    )
}

/// FLOPs of the work counted by `take`: inference plus forward and backward
/// of the training products.
pub fn total((inference, training): (u64, u64)) -> f64 {
    inference as f64 + 3.0 * training as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// [3, 4] x [4, 5] is 2 x 60 FLOPs, counted as training inside
    /// `training`, as inference outside; a batched [2, 3, 4] x [2, 4, 5]
    /// twice that.
    #[test]
    fn products_are_counted_by_kind() {
        // Other tests count too (the counters are process-wide): compare
        // differences within one thread's sequence of calls only loosely.
        let a = Tensor::ones((3, 4), DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::ones((4, 5), DType::F32, &Device::Cpu).unwrap();
        assert!(!IN_TRAINING.with(Cell::get));
        let before = (
            INFERENCE.load(Ordering::Relaxed),
            TRAINING.load(Ordering::Relaxed),
        );
        matmul(&a, &b).unwrap();
        training(|| matmul(&a, &b).unwrap());
        assert!(!IN_TRAINING.with(Cell::get));
        let a3 = Tensor::ones((2, 3, 4), DType::F32, &Device::Cpu).unwrap();
        let b3 = Tensor::ones((2, 4, 5), DType::F32, &Device::Cpu).unwrap();
        training(|| matmul(&a3, &b3).unwrap());
        let after = (
            INFERENCE.load(Ordering::Relaxed),
            TRAINING.load(Ordering::Relaxed),
        );
        assert!(after.0 - before.0 >= 120);
        assert!(after.1 - before.1 >= 120 + 240);
        assert_eq!(total((120, 360)), 120.0 + 3.0 * 360.0);
    }
}
