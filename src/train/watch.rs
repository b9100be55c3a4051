//! What a loss alone does not show: a student network that training no
//! longer changes, and the likely cause of a loss that overflows.
//!
//! At every evaluation the student network's parameters are read once (a
//! hash of their bits): a non-finite parameter, or parameters bit for bit
//! those of the previous evaluation although batches were trained on in
//! between, fail the run with the keys that cause it. A learning rate far
//! too large saturates the network (every gradient becomes exactly zero, so
//! its evaluations freeze while log Z still moves the loss), one far too
//! small cannot move a weight by one unit in the last place; no healthy run
//! keeps every weight bit for bit over an evaluation interval. Reading the
//! parameters changes no number of the run.

use super::sampler::Policy;
use super::{RunError, Which};
use crate::plan::Plan;

/// The student network's parameters at the last evaluation.
#[derive(Debug, Default)]
pub(crate) struct ParamWatch {
    /// The hash of the parameters' bits, the trained batches so far, the step.
    last: Option<(u64, usize, u64)>,
}

impl ParamWatch {
    /// The watch's memory, for a checkpoint.
    pub(crate) fn state(&self) -> Option<(u64, usize, u64)> {
        self.last
    }

    /// A watch that remembers `last` ([`ParamWatch::state`]).
    pub(crate) fn from_state(last: Option<(u64, usize, u64)>) -> Self {
        Self { last }
    }

    /// Compare the parameters of `net` at evaluation `step`, after `trained`
    /// trained batches in all, with those of the previous evaluation.
    pub(crate) fn check<N: Policy>(
        &mut self,
        net: &N,
        trained: usize,
        step: u64,
        plan: &Plan,
    ) -> Result<(), RunError> {
        let mut hash = crate::envs::sequence::oracle::FNV_OFFSET;
        for var in net.vars() {
            let values: Vec<f32> = var
                .as_tensor()
                .flatten_all()?
                .to_dtype(candle_core::DType::F32)?
                .to_vec1()?;
            if values.iter().any(|v| !v.is_finite()) {
                return Err(RunError::NonFiniteParameters {
                    step,
                    lr_keys: plan.lr_keys,
                });
            }
            let bytes: Vec<u8> = values
                .iter()
                .flat_map(|v| v.to_bits().to_le_bytes())
                .collect();
            hash = crate::envs::sequence::oracle::fnv1a(hash, &bytes);
        }
        if let Some((last, before, since)) = self.last {
            if last == hash && trained > before {
                return Err(RunError::Frozen {
                    since,
                    step,
                    batches: trained - before,
                    lr_keys: plan.lr_keys,
                });
            }
        }
        self.last = Some((hash, trained, step));
        Ok(())
    }
}

/// Values at least this large (in absolute value) among the keys that set
/// the magnitude of a loss are named as the likely cause of an overflow.
pub const VERY_LARGE: f64 = 1e6;

/// Why the loss of `which` may have become non-finite, in the user's keys:
/// with no update of its parameters before (`updated` false) the learning
/// rate cannot be the cause; a very large value among `plan.magnitudes`
/// (an exploration, log Z's initial value, a reward exponent) is named first.
pub(crate) fn divergence_advice(plan: &Plan, which: Which, updated: bool) -> String {
    let large: Vec<String> = plan
        .magnitudes
        .iter()
        .filter(|(_, v)| v.abs() >= VERY_LARGE)
        .map(|(k, v)| format!("`{k}` = {v:e}"))
        .collect();
    let keys = plan
        .magnitudes
        .iter()
        .map(|(k, _)| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let lr = plan.lr_keys;
    let large = match large.len() {
        0 => None,
        1 => Some(format!("{} is very large", large[0])),
        _ => Some(format!("{} are very large", large.join(", "))),
    };
    match (updated, large) {
        (false, Some(large)) => format!(
            "the {which} had not been updated yet, so its learning rate is not the cause: {large}"
        ),
        (false, None) => format!(
            "the {which} had not been updated yet, so its learning rate is not the cause; \
             check the values that set the loss's magnitude ({keys})"
        ),
        (true, Some(large)) => {
            format!("{large}; if that is intended, try a smaller learning rate ({lr})")
        }
        (true, None) => format!(
            "try a smaller learning rate ({lr}), or check the values that set the loss's \
             magnitude ({keys})"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(extra_policy: &str) -> Plan {
        let text = format!(
            "name = \"t\"\n[env]\nkind = \"gmm25\"\n[policy]\nkind = \"diffusion\"\n{extra_policy}\n\
             [objective]\nkind = \"tb\"\n[behaviour]\nkind = \"on_policy\""
        );
        crate::plan::resolve(&toml::from_str(&text).unwrap()).unwrap()
    }

    /// Before any update the learning rate is not blamed; a very large
    /// magnitude is named first; otherwise the learning-rate keys lead.
    #[test]
    fn divergence_advice_names_the_likely_cause() {
        let huge = plan("exploration = 1e300");
        let a = divergence_advice(&huge, Which::Student, false);
        assert!(a.contains("learning rate is not the cause"), "{a}");
        assert!(
            a.contains("`policy.exploration` = 1e300 is very large"),
            "{a}"
        );
        let a = divergence_advice(&huge, Which::Student, true);
        assert!(
            a.starts_with("`policy.exploration` = 1e300 is very large"),
            "{a}"
        );
        let normal = plan("");
        let a = divergence_advice(&normal, Which::Teacher, false);
        assert!(a.contains("the teacher had not been updated yet"), "{a}");
        assert!(a.contains("`env.t_scale`"), "{a}");
        assert!(!a.contains("smaller learning rate"), "{a}");
        let a = divergence_advice(&normal, Which::Student, true);
        assert!(
            a.starts_with("try a smaller learning rate (objective.lr"),
            "{a}"
        );
    }
}
