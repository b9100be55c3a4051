//! Policy networks.

pub mod diffusion;
pub mod mlp;
pub mod ssr;
