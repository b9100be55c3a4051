//! Multi-layer perceptron with host-side, seeded initialisation.

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::Rng as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::Invalid;
use crate::envs::grid::GridPolicy;
use crate::flops::matmul;
use crate::ops::{bias_leaky_relu, one_hot_layer};
use crate::rng::Rng;

/// MLP policy: `[obs_dim, hidden x layers, out]` with LeakyReLU(0.01) between
/// layers and none after the last (docs/grid.md "Policy `mlp`").
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
    /// Range checks.
    pub fn check(&self) -> std::result::Result<(), Invalid> {
        crate::check::nonzero("policy.hidden", Some(self.hidden))?;
        crate::check::nonzero("policy.layers", Some(self.layers))
    }
}

/// One `nn.Linear(fan_in, fan_out)` with PyTorch's default init, drawn on
/// the host from `rng`: `(weight [in, out], bias [out])`, both
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the weight drawn first.
pub fn torch_linear(
    fan_in: usize,
    fan_out: usize,
    device: &Device,
    rng: &mut Rng,
) -> Result<(Var, Var)> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    let mut uniform = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| rng.random_range(-bound..bound))
            .collect::<Vec<f32>>()
    };
    let weight = Var::from_tensor(&Tensor::from_vec(
        uniform(fan_in * fan_out),
        (fan_in, fan_out),
        device,
    )?)?;
    let bias = Var::from_tensor(&Tensor::from_vec(uniform(fan_out), fan_out, device)?)?;
    Ok((weight, bias))
}

/// Slope of the LeakyReLU (PyTorch's default, as in the reference).
const LEAKY_SLOPE: f64 = 0.01;

/// A trainable MLP. Weights are drawn on the host from our seeded RNG with
/// PyTorch's default `nn.Linear` init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
/// weights and biases, then uploaded. Weights are stored `[in, out]`.
pub struct Mlp {
    /// `(weight [in, out], bias [out])` per layer.
    layers: Vec<(Var, Var)>,
}

impl Mlp {
    /// `dims = [in, hidden..., out]`.
    pub fn new(dims: &[usize], device: &Device, rng: &mut Rng) -> Result<Self> {
        let layers = dims
            .windows(2)
            .map(|w| torch_linear(w[0], w[1], device, rng))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    /// `[n, in] -> [n, out]` for a dense f32 input. A u32 input `[n, k]` is
    /// the positions of the k ones of a one-hot input: the first layer is then
    /// the sum of k weight rows (the same function as multiplying the one-hot
    /// vector, without the multiplications by zero or an input gradient).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = Tensor::zeros(1, DType::F32, x.device())?; // replaced below
        for (i, (w, b)) in self.layers.iter().enumerate() {
            h = if i == 0 && x.dtype() == DType::U32 {
                // sum over the k ones of rows of w [in, out]: [n, k] -> [n, out]
                one_hot_layer(w.as_tensor(), x)?
            } else if i == 0 {
                matmul(&x.to_dtype(DType::F32)?, w.as_tensor())?
            } else {
                matmul(&h, w.as_tensor())?
            };
            h = match i + 1 < self.layers.len() {
                true => bias_leaky_relu(&h, b.as_tensor(), LEAKY_SLOPE as f32)?,
                false => h.broadcast_add(b.as_tensor())?,
            };
        }
        Ok(h)
    }

    /// The last hidden activation `[n, hidden]`: every layer but the last,
    /// each followed by its LeakyReLU (`forward` is this, then `last_layer`).
    /// A dense f32 input only.
    pub fn forward_hidden(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.to_dtype(DType::F32)?;
        for (w, b) in &self.layers[..self.layers.len().saturating_sub(1)] {
            h = bias_leaky_relu(
                &matmul(&h, w.as_tensor())?,
                b.as_tensor(),
                LEAKY_SLOPE as f32,
            )?;
        }
        Ok(h)
    }

    /// The last layer's `(weight [hidden, out], bias [out])`.
    pub fn last_layer(&self) -> (&Var, &Var) {
        let (w, b) = self.layers.last().expect("an MLP has a layer");
        (w, b)
    }

    /// The trainable variables (weight, bias per layer).
    pub fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect()
    }
}

/// The grid's forward policy: [`Mlp::forward`] on the one-hot positions.
impl GridPolicy for Mlp {
    fn forward(&self, obs: &Tensor) -> Result<Tensor> {
        Mlp::forward(self, obs)
    }

    fn device(&self) -> &Device {
        self.layers[0].0.device()
    }
}

/// LeakyReLU as x * (slope + (1 - slope) [x > 0]) with the factor detached:
/// one multiplication in the backward pass (candle_nn's version costs about ten
/// full-size tensor ops per layer forward and backward).
pub(crate) fn leaky_relu(x: &Tensor) -> Result<Tensor> {
    let factor = x
        .gt(0f32)?
        .to_dtype(DType::F32)?
        .affine(1.0 - LEAKY_SLOPE, LEAKY_SLOPE)?
        .detach();
    x * factor
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
        let y = mlp
            .forward(&Tensor::ones((5, 8), DType::F32, &dev).unwrap())
            .unwrap();
        assert_eq!(y.dims(), &[5, 3]);
        let w: Vec<f32> = mlp.vars()[0].flatten_all().unwrap().to_vec1().unwrap();
        let bound = 1.0 / 8f32.sqrt();
        assert!(w.iter().all(|x| x.abs() <= bound));
        // One-hot indices give the same output as the dense one-hot input.
        let dense = Tensor::new(
            &[
                [0f32, 1., 0., 0., 0., 0., 1., 0.],
                [1., 0., 0., 0., 0., 0., 0., 1.],
            ],
            &dev,
        )
        .unwrap();
        let idx = Tensor::new(&[[1u32, 6], [0, 7]], &dev).unwrap();
        let a: Vec<f32> = mlp
            .forward(&dense)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let b: Vec<f32> = mlp
            .forward(&idx)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5);
        }
        // LeakyReLU and its gradient on a hand case.
        let x = Var::new(&[-2f32, 3.0], &dev).unwrap();
        let y = leaky_relu(x.as_tensor()).unwrap();
        assert_eq!(y.to_vec1::<f32>().unwrap(), vec![-0.02, 3.0]);
        let g = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(
            g.get(&x).unwrap().to_vec1::<f32>().unwrap(),
            vec![0.01, 1.0]
        );
    }
}
