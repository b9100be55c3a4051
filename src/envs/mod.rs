//! Environments, one module per family: the deceptive gridworld ([`grid`]),
//! the sequence tasks ([`sequence`]) and the diffusion samplers' continuous
//! energies ([`diffusion`]): state spaces, rewards, batched rollouts with a
//! policy network and backward trajectories.
//!
//! [`Trajectories`] is the gridworld's packed batch of trajectories.

pub mod diffusion;
pub mod discrete;
pub mod grid;
pub mod program;
pub mod sequence;

/// A batch of complete trajectories, packed without padding.
///
/// Trajectory `b` owns the states `offsets[b]..offsets[b+1]` (s_0 .. s_n, the
/// terminal state included; a trajectory that ended with the stop action
/// repeats its last state, as the reference does) and the `n = len - 1`
/// actions starting at `offsets[b] - b`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trajectories {
    /// Coordinates per state.
    pub state_dim: usize,
    /// `[n_states, state_dim]`, row-major.
    pub states: Vec<u16>,
    /// `[n_states - batch]`: the forward action taken from each non-final state.
    pub actions: Vec<u32>,
    /// `[batch + 1]`: state ranges of the trajectories.
    pub offsets: Vec<usize>,
    /// `[batch]`: reward R(x) of each terminal state (0 for a replayed
    /// transition into a non-terminal state).
    pub reward: Vec<f64>,
    /// `[batch]`: whether the entry's last state is its terminal state: true for
    /// every complete trajectory, false for a replayed DB transition that
    /// does not end an episode.
    pub terminated: Vec<bool>,
}

impl Trajectories {
    /// Number of trajectories.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True when the batch holds no trajectory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of states (rows of the packed batch).
    pub fn n_states(&self) -> usize {
        self.states.len() / self.state_dim.max(1)
    }

    /// State `i` of the packed batch.
    pub fn state(&self, i: usize) -> &[u16] {
        &self.states[i * self.state_dim..(i + 1) * self.state_dim]
    }

    /// The terminal state x of trajectory `b`.
    pub fn terminal(&self, b: usize) -> &[u16] {
        self.state(self.offsets[b + 1] - 1)
    }

    /// Actions of trajectory `b`.
    pub fn actions_of(&self, b: usize) -> &[u32] {
        &self.actions[self.offsets[b] - b..self.offsets[b + 1] - b - 1]
    }

    /// Append one complete trajectory given its states (flattened) and actions.
    pub fn push(&mut self, states: &[u16], actions: &[u32], reward: f64) {
        self.push_entry(states, actions, reward, true);
    }

    /// Append one complete trajectory given as a path of states.
    pub fn push_path(&mut self, path: &discrete::Path<Vec<u16>>, reward: f64) {
        let states: Vec<u16> = path.states.iter().flatten().copied().collect();
        let actions: Vec<u32> = path.actions.iter().map(|&a| a as u32).collect();
        self.push(&states, &actions, reward);
    }

    /// Append one entry; `terminated` says whether its last state is terminal.
    pub fn push_entry(&mut self, states: &[u16], actions: &[u32], reward: f64, terminated: bool) {
        debug_assert_eq!(states.len(), (actions.len() + 1) * self.state_dim);
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.states.extend_from_slice(states);
        self.actions.extend_from_slice(actions);
        self.offsets.push(self.n_states());
        self.reward.push(reward);
        self.terminated.push(terminated);
    }
}
