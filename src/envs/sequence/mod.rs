//! The sequence tasks of the biochemical discovery study (docs/discovery.md):
//! strings built by a sequence MDP ([`mdp`]), scored by a real reward oracle
//! ([`oracle`]), loaded as a task ([`task`], one row of the task table each),
//! and batches of trajectories sampled with a forward policy ([`traj`]).

pub mod bitseq;
pub mod declared;
pub mod mdp;
pub mod oracle;
pub mod rna;
pub mod task;
pub mod traj;
