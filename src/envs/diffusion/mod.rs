//! The diffusion samplers' environments (docs/diffusion.md): a continuous
//! target ([`target::Target`], one file per energy: [`gmm25`], [`many_well`],
//! [`funnel`], [`gmm40`]) reached by T Gaussian steps from the origin, and
//! the fixed process around the learned forward policy ([`sde`]): the
//! Brownian-bridge backward process, backward trajectories from given
//! terminal states and their log P_B.

pub mod funnel;
pub mod gmm25;
pub mod gmm40;
pub mod many_well;
pub mod program;
pub mod sde;
pub mod target;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::Invalid;

/// The sampler settings of a diffusion-sampler target (`gmm25`, `gmm40`:
/// 2-d; `funnel`: 10-d; `many_well`: 32-d): the time discretisation and
/// noise scale (docs/diffusion.md "Sampler").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DiffusionEnvConfig {
    /// Number T of Gaussian steps from 0 to a sample (dt = 1 / T; the paper's 100).
    pub steps: usize,
    /// Variance sigma^2 of the Brownian motion per unit time (`t_scale`; the paper's 1).
    pub t_scale: f64,
}

impl Default for DiffusionEnvConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            t_scale: 1.0,
        }
    }
}

impl DiffusionEnvConfig {
    /// Range checks.
    pub fn check(&self) -> Result<(), Invalid> {
        if self.steps < 2 {
            return Err(Invalid::new("env.steps", "must be at least 2"));
        }
        // The noise scale is sqrt(t_scale * dt): far outside [1e-6, 1e6]
        // the states leave f32's range or the noise vanishes below its
        // precision, and the metrics are meaningless.
        if !(self.t_scale.is_finite() && (1e-6..=1e6).contains(&self.t_scale)) {
            return Err(Invalid::new(
                "env.t_scale",
                format!(
                    "is {:e}; must be in [1e-6, 1e6] (the variance of the noise per unit time; the paper's 1)",
                    self.t_scale
                ),
            ));
        }
        Ok(())
    }
}
