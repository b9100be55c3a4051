//! The behaviour's hooks in the learning step of one batch, which the
//! trainer applies: a behaviour that replaces the student's objective
//! ([`StudentObjective`], GAFN's), and the teacher's rules — its target
//! ([`teacher_targets`]), the entries and tensors it trains on and a
//! family's gate on the signals, given by the family as data ([`Teaching`],
//! [`SignalGate`]).

use candle_core::Tensor;

use super::teacher::{Signals, TeacherReward};
use crate::objective::Trained;
use crate::optim::Adam;

/// A behaviour whose student trains on its own objective rather than the
/// plan's (GAFN's edge-augmented TB with the predictor's loss), on a
/// family's network `Net`, batch `Batch` and tensors `Packed`.
pub trait StudentObjective<Net, Batch, Packed>: Sync {
    /// Optimisers of auxiliary modules trained with the student's loss and
    /// stepped on its gradients (GAFN's predictor).
    fn aux_optimisers(&self) -> candle_core::Result<Vec<Adam>>;

    /// The student's residuals and loss on `batch` (tensors `packed`) under
    /// `net`, with the student's log Z and loss clamp.
    fn loss(
        &self,
        net: &Net,
        log_z: &Tensor,
        loss_clamp: f64,
        packed: &Packed,
        batch: &Batch,
    ) -> candle_core::Result<Trained>;
}

/// A family's rule on the teacher signals (the diffusion energies'
/// threshold tau): an entry whose log R is below `threshold` gets the fixed
/// `signal`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalGate {
    /// The threshold on log R.
    pub threshold: f64,
    /// The signal of an entry below it.
    pub signal: f64,
}

impl SignalGate {
    /// Apply the gate to the per-entry `signals` of entries with log R `log_r`.
    pub fn apply(&self, signals: &mut Signals, log_r: &[f64]) {
        for (s, &lr) in signals.per_entry.iter_mut().zip(log_r) {
            if lr < self.threshold {
                *s = self.signal;
            }
        }
    }
}

/// What a family says about the teacher on one batch, as data: the gate on
/// the signals, and the tensors and entries the teacher trains on.
pub struct Teaching<'a, P> {
    /// The family's gate on the signals, if any (applied whether or not
    /// there is a teacher: the signals are also buffer priorities).
    pub gate: Option<SignalGate>,
    /// The tensors of the teacher's objective; `None`: no teacher step on
    /// this batch.
    pub packed: Option<&'a P>,
    /// The batch's entries those tensors hold, in order; `None`: all of them.
    pub entries: Option<&'a [usize]>,
}

impl<'a, P> Teaching<'a, P> {
    /// The teacher trains on the student's tensors `packed`, every entry;
    /// no gate.
    pub fn all(packed: &'a P) -> Self {
        Self {
            gate: None,
            packed: Some(packed),
            entries: None,
        }
    }
}

/// The teacher's target log-reward of each entry of `entries` (all when
/// `None`), from its signal and log R.
pub fn teacher_targets(
    reward: &TeacherReward,
    signals: &Signals,
    log_r: &[f64],
    entries: Option<&[usize]>,
) -> Vec<f64> {
    let target = |j: usize| reward.log_target(signals.per_entry[j], log_r[j]);
    match entries {
        Some(entries) => entries.iter().map(|&j| target(j)).collect(),
        None => (0..signals.per_entry.len().min(log_r.len()))
            .map(target)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::teacher::RewardForm;
    use crate::behaviour::TeacherConfig;

    /// The gate replaces the signals of entries strictly below the
    /// threshold; the targets of a subset of entries are those of all
    /// entries, selected.
    #[test]
    fn gate_and_targets_of_a_subset() {
        let mut signals = Signals {
            per_entry: vec![2.0, 3.0, 4.0],
            ..Signals::default()
        };
        let log_r = [-1.0, -4.0, -5.0];
        let gate = SignalGate {
            threshold: -4.0,
            signal: 0.5,
        };
        gate.apply(&mut signals, &log_r);
        assert_eq!(signals.per_entry, vec![2.0, 3.0, 0.5]);
        let reward = TeacherConfig::default().reward(RewardForm::LogSpace, 0.0);
        let all = teacher_targets(&reward, &signals, &log_r, None);
        assert_eq!(all.len(), 3);
        assert_eq!(
            teacher_targets(&reward, &signals, &log_r, Some(&[2, 0])),
            vec![all[2], all[0]]
        );
    }
}
