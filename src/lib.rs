//! Reference experiment runner for amortized samplers trained as GFlowNets,
//! the system of "Adaptive Teachers for Amortized Samplers" (ICLR 2025).
//!
//! An experiment file ([`config`]) composes components from the
//! [`registry`]; [`plan`] checks and resolves it; [`train::run`] trains any
//! combination with one loop; [`sweep`] expands and runs many; results are
//! CSV files (see README).

pub mod behaviour;
pub mod buffer;
pub mod check;
pub mod config;
pub mod console;
pub mod datasets;
pub mod envs;
pub mod flops;
pub mod interrupt;
pub mod metrics;
pub mod objective;
pub mod ops;
pub mod optim;
pub mod ordered;
pub mod output;
pub mod plan;
pub mod policy;
pub mod registry;
pub mod report;
pub mod rng;
pub mod score;
pub mod search;
pub mod show;
pub mod sweep;
pub mod train;

/// JSON Schema of the experiment file, generated from the Rust types.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(config::Experiment);
    serde_json::to_string_pretty(&schema).expect("schema serializes") + "\n"
}
