//! Multi-layer perceptron with host-side, seeded initialisation.

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{Linear, Module};
use rand::Rng as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// MLP policy: `[obs_dim, hidden x layers, out]` with LeakyReLU(0.01) between
/// layers and none after the last (spec/grid.md "Policy `mlp`").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MlpConfig {
    /// Width of every hidden layer.
    pub hidden: usize,
    /// Number of hidden layers.
    pub layers: usize,
    /// Learn the backward policy P_B (extra outputs) instead of the uniform one.
    pub learn_pb: bool,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            hidden: 256,
            layers: 2,
            learn_pb: false,
        }
    }
}

impl MlpConfig {
    /// Range checks; `(key, message)` on failure.
    pub fn check(&self) -> std::result::Result<(), (String, String)> {
        if self.hidden == 0 || self.layers == 0 {
            return Err((
                "policy".into(),
                "`hidden` and `layers` must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Slope of the LeakyReLU (PyTorch's default, as in the reference).
const LEAKY_SLOPE: f64 = 0.01;

/// A trainable MLP. Weights are drawn on the host from our seeded RNG with
/// PyTorch's default `nn.Linear` init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
/// weights and biases, then uploaded.
pub struct Mlp {
    layers: Vec<Linear>,
    vars: Vec<Var>,
}

impl Mlp {
    /// `dims = [in, hidden..., out]`.
    pub fn new(dims: &[usize], device: &Device, rng: &mut Rng) -> Result<Self> {
        let mut layers = Vec::new();
        let mut vars = Vec::new();
        for w in dims.windows(2) {
            let (fan_in, fan_out) = (w[0], w[1]);
            let bound = 1.0 / (fan_in as f32).sqrt();
            let mut uniform = |n: usize| -> Vec<f32> {
                (0..n)
                    .map(|_| rng.random_range(-bound..bound))
                    .collect::<Vec<f32>>()
            };
            // PyTorch layout: weight [out, in], bias [out].
            let weight = Var::from_tensor(&Tensor::from_vec(
                uniform(fan_in * fan_out),
                (fan_out, fan_in),
                device,
            )?)?;
            let bias = Var::from_tensor(&Tensor::from_vec(uniform(fan_out), fan_out, device)?)?;
            layers.push(Linear::new(
                weight.as_tensor().clone(),
                Some(bias.as_tensor().clone()),
            ));
            vars.push(weight);
            vars.push(bias);
        }
        Ok(Self { layers, vars })
    }

    /// `[n, in] -> [n, out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.to_dtype(DType::F32)?;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h)?;
            if i + 1 < self.layers.len() {
                h = candle_nn::ops::leaky_relu(&h, LEAKY_SLOPE)?;
            }
        }
        Ok(h)
    }

    /// The trainable variables (weight, bias per layer).
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Stream};

    #[test]
    fn shapes_and_init_bounds() {
        let dev = Device::Cpu;
        let mut rng = stream(0, Stream::InitStudent);
        let mlp = Mlp::new(&[8, 16, 3], &dev, &mut rng).unwrap();
        let y = mlp.forward(&Tensor::ones((5, 8), DType::F32, &dev).unwrap()).unwrap();
        assert_eq!(y.dims(), &[5, 3]);
        let w: Vec<f32> = mlp.vars()[0].flatten_all().unwrap().to_vec1().unwrap();
        let bound = 1.0 / 8f32.sqrt();
        assert!(w.iter().all(|x| x.abs() <= bound));
        // LeakyReLU: a hand case through a 1x1 -> 1x1 net.
        let l = candle_nn::ops::leaky_relu(&Tensor::new(&[-2f32, 3.0], &dev).unwrap(), 0.01)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(l, vec![-0.02, 3.0]);
    }
}
