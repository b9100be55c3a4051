//! Policy networks: [`mlp`] (grid), [`ssr`] (sequence tasks), [`diffusion`]
//! (diffusion samplers).

pub mod diffusion;
pub mod mlp;
pub mod ssr;
