//! TEMPORARY STUB (replaced by the real module).
pub fn assign(_cost: &[f64], n: usize) -> (Vec<usize>, f64) {
    ((0..n).collect(), 0.0)
}
pub fn w2(_a: &[f64], _b: &[f64], _dim: usize) -> f64 {
    0.0
}
