//! Policy networks.

pub mod mlp;
