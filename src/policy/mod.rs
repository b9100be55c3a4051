//! Policy networks.

pub mod mlp;
pub mod ssr;
