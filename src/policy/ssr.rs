//! The "SSR" policy of the sequence tasks (docs/discovery.md "Policy (\"SSR\"
//! network)"): a state encoder and a pairwise (state, child) scorer.
//!
//! encoder = MLP[L*k, H, E], scorer = MLP[2E, H, 1] (LeakyReLU(0.01) between
//! layers, none after the last), H = E = `hidden`. For a state s with ordered
//! unique children c_1..c_m, with z = encoder(features):
//!
//! ```text
//! score_i = clamp(scorer([z_s, z_ci]), -50, 50)
//! log P_F(c_i | s) = score_i - logsumexp_j score_j
//! ```
//!
//! and a state with one child has log P_F = 0 for it.
//!
//! A batch is a list of (parent, children) pairs, evaluated as a handful of
//! tensor ops whatever its size:
//!
//! 1. every distinct state needed (keyed by content, so a leaf shares the row
//!    of its non-leaf twin: their features are equal) is encoded once, in one
//!    `[u, L*k]` matrix;
//! 2. the scorer's first layer W1 `[2E, H]` is split into the state half W_s
//!    (rows `0..E`) and the child half W_c (rows `E..2E`), so
//!    `[z_s, z_c] W1 + b1 = z_s W_s + (z_c W_c + b1)`: P = Z W_s is computed
//!    once per distinct parent and Q = Z W_c + b1 once per distinct state, and
//!    the first hidden layer of a pair is a sum of two gathered rows (no
//!    `[pairs, 2E]` concatenation, no per-pair first-layer matmul);
//! 3. Q never needs the embedding Z itself: with the encoder's hidden
//!    activation G (Z = G W_e + b_e), Q = G (W_e W_c) + (b_e W_c + b1), one
//!    `[H, H]` product per state instead of two, for one `[H, H] x [H, H]`
//!    product per call: used when there are more states than H (training
//!    batches, evaluation), not for small sampling steps; Z is formed for the
//!    parents only;
//! 4. the per-parent log-softmax runs on a padded `[n_parents, max_children]`
//!    score matrix with an additive mask of [`MASKED_LOGIT`].
//!
//! Parents with a single child need no network at all (log P_F = 0 exactly,
//! no gradient), so their pairs are not scored and their states are not
//! encoded unless another pair needs them.

use std::collections::HashMap;

use candle_core::{DType, Device, Error, Result, Tensor, Var, D};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::Invalid;
use crate::envs::sequence::mdp::{SeqMdp, SeqState};
use crate::envs::sequence::traj::SequencePolicy;
use crate::flops::matmul;
use crate::objective::MASKED_LOGIT;
use crate::policy::mlp::{leaky_relu, Mlp};
use crate::rng::Rng;

/// Scores are clipped to `[-SCORE_CLIP, SCORE_CLIP]` before the softmax.
pub const SCORE_CLIP: f64 = 50.0;

/// Configuration of the SSR policy (docs/discovery.md "Policy").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SsrConfig {
    /// Width H = E of the encoder's hidden layer and embedding and of the
    /// scorer's hidden layer. Unset: the task table's (qm9str and sehstr
    /// 1024; tfbind8, rna and bitseq 128; a declared task 1024).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<usize>,
}

impl SsrConfig {
    /// Range checks.
    pub fn check(&self) -> std::result::Result<(), Invalid> {
        crate::check::nonzero("policy.hidden", self.hidden)
    }
}

/// The SSR policy network: an encoder MLP[L*k, H, E] and a scorer
/// MLP[2E, H, 1] whose first layer is applied in split form (see the module
/// documentation).
pub struct Ssr {
    /// MLP[L*k, H, E].
    encoder: Mlp,
    /// Scorer layer 1 weight `[2E, H]`: rows `0..E` act on z_s, `E..2E` on z_c.
    w1: Var,
    /// Scorer layer 1 bias `[H]`.
    b1: Var,
    /// Scorer layer 2 weight `[H, 1]`.
    w2: Var,
    /// Scorer layer 2 bias `[1]`.
    b2: Var,
    /// Input width L*k.
    feature_dim: usize,
    /// H = E.
    hidden: usize,
    /// The state-flow head MLP[E, H, 1] on the encoding, log F(s) (DB, SubTB).
    flow: Option<Mlp>,
}

impl Ssr {
    /// A fresh network for features of width `feature_dim` (L*k) with
    /// H = E = `hidden`. Weights are drawn from `rng` as [`Mlp::new`] does
    /// (PyTorch `nn.Linear` init), the encoder's first, then the scorer's.
    /// Errors when either size is zero.
    pub fn new(feature_dim: usize, hidden: usize, device: &Device, rng: &mut Rng) -> Result<Self> {
        if feature_dim == 0 || hidden == 0 {
            return Err(Error::Msg(format!(
                "ssr: feature_dim ({feature_dim}) and hidden ({hidden}) must be at least 1"
            )));
        }
        let two_e = hidden
            .checked_mul(2)
            .ok_or_else(|| Error::Msg(format!("ssr: hidden {hidden} overflows")))?;
        let encoder = Mlp::new(&[feature_dim, hidden, hidden], device, rng)?;
        let scorer = Mlp::new(&[two_e, hidden, 1], device, rng)?;
        let [w1, b1, w2, b2]: [Var; 4] = scorer
            .vars()
            .try_into()
            .map_err(|_| Error::Msg("ssr: scorer must have two layers".into()))?;
        Ok(Self {
            encoder,
            w1,
            b1,
            w2,
            b2,
            feature_dim,
            hidden,
            flow: None,
        })
    }

    /// The same network with a state-flow head MLP[E, H, 1] on the state
    /// encoding, drawn from `rng` after every other weight (so the policy's
    /// own weights are those of [`Ssr::new`]).
    pub fn with_flow_head(mut self, rng: &mut Rng) -> Result<Self> {
        let device = self.w1.device().clone();
        self.flow = Some(Mlp::new(&[self.hidden, self.hidden, 1], &device, rng)?);
        Ok(self)
    }

    /// log F(s) of every state `[n]` from the flow head (an error without one).
    pub fn log_flow(&self, mdp: &SeqMdp, states: &[SeqState]) -> Result<Tensor> {
        let Some(flow) = &self.flow else {
            return Err(Error::Msg("ssr: the network has no state-flow head".into()));
        };
        let device = self.w1.device();
        let mut features = vec![0f32; states.len() * self.feature_dim];
        for (row, s) in features.chunks_exact_mut(self.feature_dim).zip(states) {
            mdp.features(s, row);
        }
        let x = Tensor::from_vec(features, (states.len(), self.feature_dim), device)?; // [n, L*k]
        let z = self.encoder.forward(&x)?; // [n, E]
        flow.forward(&z)?.squeeze(1) // [n]
    }

    /// The trainable variables: the encoder's (weight, bias per layer), then
    /// the scorer's (W1 `[2E, H]`, b1, W2 `[H, 1]`, b2), then the flow head's.
    pub fn vars(&self) -> Vec<Var> {
        let mut v = self.encoder.vars();
        v.extend([
            self.w1.clone(),
            self.b1.clone(),
            self.w2.clone(),
            self.b2.clone(),
        ]);
        v.extend(self.flow.iter().flat_map(Mlp::vars));
        v
    }

    /// Input width L*k.
    pub fn feature_dim(&self) -> usize {
        self.feature_dim
    }

    /// H = E.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Log-probabilities of every child of every parent.
    ///
    /// `children[i]` must be the ordered unique children of `parents[i]`
    /// (`mdp.children(&parents[i])`, not checked) and non-empty. Returns a
    /// `[n_parents, max_children]` f32 tensor whose entry `(i, j)` is
    /// log P_F(children[i][j] | parents[i]) for `j < children[i].len()`; the
    /// padding entries are about [`MASKED_LOGIT`] (so `exp` of a row is the
    /// distribution over the children, zero on the padding). A row with one
    /// child is exactly `[0, MASKED_LOGIT, ..]`. An empty batch gives `[0, 0]`.
    ///
    /// A sampler takes `to_vec2` of the result and draws column `j` of row `i`
    /// with probability `exp(row[j])` on the host.
    ///
    /// Errors (no panic) when the lengths differ, a children list is empty, or
    /// `mdp.feature_dim()` is not this network's input width.
    pub fn log_pf_all(
        &self,
        mdp: &SeqMdp,
        parents: &[SeqState],
        children: &[Vec<SeqState>],
    ) -> Result<Tensor> {
        if mdp.feature_dim() != self.feature_dim {
            return Err(Error::Msg(format!(
                "ssr: the MDP's feature dimension {} is not the network's {}",
                mdp.feature_dim(),
                self.feature_dim
            )));
        }
        let index = BatchIndex::build(parents, children)?;
        let device = self.w1.device();
        let (n, width) = (index.n_parents, index.max_children);
        if n == 0 {
            return Tensor::zeros((0, 0), DType::F32, device);
        }
        let scores = self.pair_scores(mdp, &index)?; // [pairs + 1], last = 0
        let slot = Tensor::from_vec(index.slot, n * width, device)?; // [n * w]
        let mask = Tensor::from_vec(index.mask, (n, width), device)?; // [n, w]
        let padded = (scores.index_select(&slot, 0)?.reshape((n, width))? + mask)?; // [n, w]
                                                                                    // Row-wise log-softmax; the shift by the row maximum is a constant
                                                                                    // (detached) for the gradient, as the result does not depend on it.
        let max = padded.max_keepdim(D::Minus1)?.detach(); // [n, 1]
        let lse = (padded
            .broadcast_sub(&max)?
            .exp()?
            .sum_keepdim(D::Minus1)?
            .log()?
            + max)?; // [n, 1]
        padded.broadcast_sub(&lse) // [n, w]
    }

    /// log P_F of the chosen child of each transition: `[n_parents]`, entry
    /// `i` being log P_F(children[i][chosen[i]] | parents[i]) (for TB sums).
    /// The same computation as [`Ssr::log_pf_all`] followed by one gather
    /// ([`Ssr::select_chosen`]); errors also when a `chosen[i]` is out of
    /// range or `chosen` has the wrong length.
    pub fn log_pf_chosen(
        &self,
        mdp: &SeqMdp,
        parents: &[SeqState],
        children: &[Vec<SeqState>],
        chosen: &[usize],
    ) -> Result<Tensor> {
        check_chosen(children, chosen)?;
        let all = self.log_pf_all(mdp, parents, children)?; // [n, w]
        Self::select_chosen(&all, chosen)
    }

    /// Entry `(i, chosen[i])` of each row of a `[n, w]` tensor such as the
    /// result of [`Ssr::log_pf_all`]: `[n]`, differentiable. Errors when
    /// `chosen` has not `n` entries or one is `>= w`.
    pub fn select_chosen(all: &Tensor, chosen: &[usize]) -> Result<Tensor> {
        let (n, width) = all.dims2()?;
        if chosen.len() != n {
            return Err(Error::Msg(format!(
                "ssr: {} chosen indices for {n} rows",
                chosen.len()
            )));
        }
        let flat: Vec<u32> = chosen
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                if c >= width {
                    return Err(Error::Msg(format!(
                        "ssr: chosen index {c} of row {i} is out of range (width {width})"
                    )));
                }
                to_u32(i * width + c)
            })
            .collect::<Result<_>>()?;
        let flat = Tensor::from_vec(flat, n, all.device())?; // [n]
        all.flatten_all()?.index_select(&flat, 0) // [n]
    }

    /// The clamped score of every scored pair, followed by one zero (the
    /// value gathered by single-child rows and padding): `[pairs + 1]`.
    fn pair_scores(&self, mdp: &SeqMdp, index: &BatchIndex) -> Result<Tensor> {
        let device = self.w1.device();
        let zero = Tensor::zeros(1, DType::F32, device)?; // [1]
        let pairs = index.pair_parent.len();
        if pairs == 0 {
            return Ok(zero);
        }
        let (u, e) = (index.states.len(), self.hidden);
        let mut features = vec![0f32; u * self.feature_dim];
        for (row, s) in features
            .chunks_exact_mut(self.feature_dim)
            .zip(&index.states)
        {
            mdp.features(s, row);
        }
        let x = Tensor::from_vec(features, (u, self.feature_dim), device)?; // [u, L*k]
                                                                            // z = g W_e + b_e with g the encoder's hidden activation [u, H].
        let g = self.encoder.forward_hidden(&x)?; // [u, H]
        let (w_e, b_e) = self.encoder.last_layer(); // [H, E], [E]
        let w_s = self.w1.as_tensor().narrow(0, 0, e)?; // [E, H]
        let w_c = self.w1.as_tensor().narrow(0, e, e)?; // [E, H]
        let n_up = index.parent_rows.len();
        let parent_rows = Tensor::from_vec(index.parent_rows.clone(), n_up, device)?; // [up]
                                                                                      // P = z_s W_s for the distinct parents only.
        let z_parents = matmul(&g.index_select(&parent_rows, 0)?, w_e.as_tensor())?
            .broadcast_add(b_e.as_tensor())?; // [up, E]
        let p = matmul(&z_parents, &w_s)?; // [up, H]
                                           // Q = z W_c + b1. With many states (u > H, training batches and
                                           // evaluation), fuse the two linear maps: Q = g (W_e W_c) + (b_e W_c + b1),
                                           // one [H, H] product per state plus one [H, H] x [H, H] per call,
                                           // instead of two per state; small sampling steps keep the direct form.
        let q = if u > self.hidden {
            let fused = matmul(w_e.as_tensor(), &w_c)?; // [H, H]
            let offset =
                (matmul(&b_e.as_tensor().unsqueeze(0)?, &w_c)?.squeeze(0)? + self.b1.as_tensor())?; // [H]
            matmul(&g, &fused)?.broadcast_add(&offset)? // [u, H]
        } else {
            let z = matmul(&g, w_e.as_tensor())?.broadcast_add(b_e.as_tensor())?; // [u, E]
            matmul(&z, &w_c)?.broadcast_add(self.b1.as_tensor())? // [u, H]
        };
        let pair_parent = Tensor::from_vec(index.pair_parent.clone(), pairs, device)?; // [pairs]
        let pair_child = Tensor::from_vec(index.pair_child.clone(), pairs, device)?; // [pairs]
        let h = (p.index_select(&pair_parent, 0)? + q.index_select(&pair_child, 0)?)?; // [pairs, H]
        let h = leaky_relu(&h)?;
        let s = matmul(&h, self.w2.as_tensor())? // [pairs, 1]
            .broadcast_add(self.b2.as_tensor())?
            .flatten_all()? // [pairs]
            .clamp(-SCORE_CLIP, SCORE_CLIP)?;
        Tensor::cat(&[&s, &zero], 0) // [pairs + 1]
    }
}

/// The sequence tasks' forward policy: [`Ssr::log_pf_all`] and
/// [`Ssr::log_pf_chosen`].
impl SequencePolicy for Ssr {
    fn log_pf_all(
        &self,
        mdp: &SeqMdp,
        parents: &[SeqState],
        children: &[Vec<SeqState>],
    ) -> Result<Tensor> {
        Ssr::log_pf_all(self, mdp, parents, children)
    }

    fn log_pf_chosen(
        &self,
        mdp: &SeqMdp,
        parents: &[SeqState],
        children: &[Vec<SeqState>],
        chosen: &[usize],
    ) -> Result<Tensor> {
        Ssr::log_pf_chosen(self, mdp, parents, children, chosen)
    }
}

/// Checks `chosen` against the children lists.
fn check_chosen(children: &[Vec<SeqState>], chosen: &[usize]) -> Result<()> {
    if chosen.len() != children.len() {
        return Err(Error::Msg(format!(
            "ssr: {} chosen indices for {} parents",
            chosen.len(),
            children.len()
        )));
    }
    for (i, (&c, ch)) in chosen.iter().zip(children).enumerate() {
        if c >= ch.len() {
            return Err(Error::Msg(format!(
                "ssr: chosen child {c} of parent {i} is out of range ({} children)",
                ch.len()
            )));
        }
    }
    Ok(())
}

/// A host index in u32 (candle's index dtype), or an error if it overflows.
fn to_u32(i: usize) -> Result<u32> {
    u32::try_from(i).map_err(|_| Error::Msg(format!("ssr: index {i} overflows u32")))
}

/// The host-side layout of a batch: distinct states, scored pairs and the
/// padded score matrix.
struct BatchIndex<'a> {
    /// One representative per distinct content among the states to encode
    /// (parents with at least two children, and their children): `u` rows.
    states: Vec<&'a SeqState>,
    /// Distinct rows (into `states`) of the scored parents: `up` entries.
    parent_rows: Vec<u32>,
    /// Per scored pair, its parent's position in `parent_rows` (a row of P).
    pair_parent: Vec<u32>,
    /// Per scored pair, its child's row in `states` (a row of Q).
    pair_child: Vec<u32>,
    /// `[n_parents * max_children]`: index into the pair scores, `pairs`
    /// (the appended zero) for single-child rows and padding.
    slot: Vec<u32>,
    /// `[n_parents * max_children]`: 0 on a child, `MASKED_LOGIT` on padding.
    mask: Vec<f32>,
    /// Number of parents (rows).
    n_parents: usize,
    /// Width of the padded matrix (at least 1 when there is a parent).
    max_children: usize,
}

impl<'a> BatchIndex<'a> {
    /// Builds the layout; errors when the lengths differ or a children list
    /// is empty.
    fn build(parents: &'a [SeqState], children: &'a [Vec<SeqState>]) -> Result<Self> {
        if parents.len() != children.len() {
            return Err(Error::Msg(format!(
                "ssr: {} parents but {} children lists",
                parents.len(),
                children.len()
            )));
        }
        if let Some(i) = children.iter().position(|c| c.is_empty()) {
            return Err(Error::Msg(format!("ssr: parent {i} has no children")));
        }
        let n = parents.len();
        let width = children.iter().map(Vec::len).max().unwrap_or(0);
        let cells = n
            .checked_mul(width)
            .ok_or_else(|| Error::Msg("ssr: batch too large".into()))?;
        let mut rows: HashMap<&'a [u8], u32> = HashMap::new();
        let mut states: Vec<&'a SeqState> = Vec::new();
        let mut row_of = |s: &'a SeqState| -> Result<u32> {
            if let Some(&r) = rows.get(s.content.as_slice()) {
                return Ok(r);
            }
            let r = to_u32(states.len())?;
            rows.insert(s.content.as_slice(), r);
            states.push(s);
            Ok(r)
        };
        let mut parent_pos: HashMap<u32, u32> = HashMap::new();
        let mut parent_rows = Vec::new();
        let mut pair_parent = Vec::new();
        let mut pair_child = Vec::new();
        let mut pair_slot: Vec<Option<u32>> = vec![None; cells];
        for (i, (s, ch)) in parents.iter().zip(children).enumerate() {
            if ch.len() < 2 {
                continue;
            }
            let r = row_of(s)?;
            let pos = match parent_pos.get(&r) {
                Some(&p) => p,
                None => {
                    let p = to_u32(parent_rows.len())?;
                    parent_pos.insert(r, p);
                    parent_rows.push(r);
                    p
                }
            };
            for (j, c) in ch.iter().enumerate() {
                pair_slot[i * width + j] = Some(to_u32(pair_parent.len())?);
                pair_parent.push(pos);
                pair_child.push(row_of(c)?);
            }
        }
        let zero_slot = to_u32(pair_parent.len())?;
        let slot = pair_slot.iter().map(|p| p.unwrap_or(zero_slot)).collect();
        let mut mask = vec![MASKED_LOGIT; cells];
        for (i, ch) in children.iter().enumerate() {
            mask[i * width..i * width + ch.len()].fill(0.0);
        }
        Ok(Self {
            states,
            parent_rows,
            pair_parent,
            pair_child,
            slot,
            mask,
            n_parents: n,
            max_children: width,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envs::sequence::mdp::SeqMdpKind;
    use crate::rng::{stream, Stream};
    use rand::Rng as _;

    fn st(s: &str) -> SeqState {
        SeqState::inner(s.bytes().map(|b| b - b'0').collect::<Vec<u8>>())
    }

    fn mdp(k: usize, len: usize) -> SeqMdp {
        SeqMdp::new(SeqMdpKind::PrependAppend, k, len).unwrap()
    }

    fn net(m: &SeqMdp, hidden: usize) -> Ssr {
        let mut rng = stream(3, Stream::InitStudent);
        Ssr::new(m.feature_dim(), hidden, &Device::Cpu, &mut rng).unwrap()
    }

    /// Root (3 children: "0", "1", "2"), "0" (5: "00", "10", "20", then "01",
    /// "02"; "00" is not repeated), "01" (6: "001", "101", "201", "010",
    /// "011", "012"), "012" (1: its leaf).
    fn batch(m: &SeqMdp) -> (Vec<SeqState>, Vec<Vec<SeqState>>) {
        let parents = vec![SeqState::root(), st("0"), st("01"), st("012")];
        let children: Vec<Vec<SeqState>> = parents.iter().map(|p| m.children(p)).collect();
        let sizes: Vec<usize> = children.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 5, 6, 1]);
        (parents, children)
    }

    fn rows(t: &Tensor) -> Vec<Vec<f32>> {
        t.to_vec2::<f32>().unwrap()
    }

    /// Host f64 layer: y = x W + b, W stored `[in, out]`.
    fn host_linear(x: &[f64], w: &Var, b: &Var) -> Vec<f64> {
        let w = w.as_tensor().to_vec2::<f32>().unwrap();
        let b = b.as_tensor().to_vec1::<f32>().unwrap();
        (0..b.len())
            .map(|o| {
                b[o] as f64
                    + x.iter()
                        .zip(&w)
                        .map(|(xi, r)| xi * r[o] as f64)
                        .sum::<f64>()
            })
            .collect()
    }

    fn host_leaky(x: Vec<f64>) -> Vec<f64> {
        x.into_iter()
            .map(|v| if v > 0.0 { v } else { 0.01 * v })
            .collect()
    }

    /// The naive formulation on the host in f64: each state encoded on its
    /// own, each pair scored through the full W1 = [W_s; W_c] on the
    /// concatenation [z_s, z_c], clamped, then log-softmax per parent.
    fn naive_log_pf(net: &Ssr, m: &SeqMdp, parent: &SeqState, ch: &[SeqState]) -> Vec<f64> {
        let v = net.encoder.vars();
        let encode = |s: &SeqState| {
            let mut f = vec![0f32; m.feature_dim()];
            m.features(s, &mut f);
            let x: Vec<f64> = f.iter().map(|&a| a as f64).collect();
            let h = host_leaky(host_linear(&x, &v[0], &v[1]));
            host_linear(&h, &v[2], &v[3])
        };
        // W1 rebuilt from its two halves, to score the concatenation.
        let e = net.hidden;
        let w1 = Var::from_tensor(
            &Tensor::cat(
                &[
                    net.w1.as_tensor().narrow(0, 0, e).unwrap(),
                    net.w1.as_tensor().narrow(0, e, e).unwrap(),
                ],
                0,
            )
            .unwrap(),
        )
        .unwrap();
        let zs = encode(parent);
        let scores: Vec<f64> = ch
            .iter()
            .map(|c| {
                let cat: Vec<f64> = zs.iter().copied().chain(encode(c)).collect();
                let h = host_leaky(host_linear(&cat, &w1, &net.b1));
                host_linear(&h, &net.w2, &net.b2)[0].clamp(-50.0, 50.0)
            })
            .collect();
        let mx = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = mx + scores.iter().map(|s| (s - mx).exp()).sum::<f64>().ln();
        scores.iter().map(|s| s - lse).collect()
    }

    fn assert_matches_naive(net: &Ssr, m: &SeqMdp, tol: f64) {
        let (parents, children) = batch(m);
        let all = rows(&net.log_pf_all(m, &parents, &children).unwrap());
        assert_eq!(all.len(), 4);
        assert!(all.iter().all(|r| r.len() == 6));
        for (i, (p, ch)) in parents.iter().zip(&children).enumerate() {
            let naive = naive_log_pf(net, m, p, ch);
            for (j, want) in naive.iter().enumerate() {
                let got = all[i][j] as f64;
                assert!((got - want).abs() < tol, "{i},{j}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn ssr_matches_naive_formulation() {
        let m = mdp(3, 3);
        let n = net(&m, 8);
        // More distinct states than H = 8: the fused Q path.
        assert_matches_naive(&n, &m, 1e-5);
        // H = 64 above the number of states: the direct path.
        assert_matches_naive(&net(&m, 64), &m, 1e-5);
        // log_pf_chosen picks the same entries.
        let (parents, children) = batch(&m);
        let all = rows(&n.log_pf_all(&m, &parents, &children).unwrap());
        let chosen = [2, 4, 0, 0];
        let picked = n
            .log_pf_chosen(&m, &parents, &children, &chosen)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (i, &c) in chosen.iter().enumerate() {
            assert_eq!(picked[i], all[i][c]);
        }
    }

    #[test]
    fn ssr_rows_are_log_probabilities() {
        let m = mdp(3, 3);
        let n = net(&m, 8);
        let (parents, children) = batch(&m);
        let all = rows(&n.log_pf_all(&m, &parents, &children).unwrap());
        for (row, ch) in all.iter().zip(&children) {
            // logsumexp over the valid children = ln(sum p) = ln 1 = 0.
            let valid = &row[..ch.len()];
            let mx = valid.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = mx
                + valid
                    .iter()
                    .map(|&v| (v as f64 - mx).exp())
                    .sum::<f64>()
                    .ln();
            assert!(lse.abs() < 1e-5, "{lse}");
            // Padding is masked: exp gives exactly 0.
            for &v in &row[ch.len()..] {
                assert!(v < -1e8);
                assert_eq!(v.exp(), 0.0);
            }
        }
        // "012" has one child: log P_F is exactly 0 (score 0 - logsumexp 0).
        assert_eq!(all[3][0], 0.0);
        let one = n
            .log_pf_chosen(&m, &[st("012")], &[m.children(&st("012"))], &[0])
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(one, vec![0.0]);
    }

    #[test]
    fn ssr_scores_are_clamped() {
        let m = mdp(3, 3);
        let n = net(&m, 8);
        let (parents, children) = batch(&m);
        // W2 = 0 and b2 = +1000: every raw score is 1000, clamped to 50, so
        // each parent's m children tie: log P_F = 50 - (50 + ln m) = -ln m.
        n.w2.set(&n.w2.zeros_like().unwrap()).unwrap();
        for b in [1000f32, -1000.0] {
            n.b2.set(&Tensor::new(&[b], &Device::Cpu).unwrap()).unwrap();
            let index = BatchIndex::build(&parents, &children).unwrap();
            let s = n.pair_scores(&m, &index).unwrap().to_vec1::<f32>().unwrap();
            // 3 + 5 + 6 scored pairs, then the zero.
            assert_eq!(s.len(), 15);
            assert!(s[..14].iter().all(|&v| v == b.signum() * 50.0));
            let all = rows(&n.log_pf_all(&m, &parents, &children).unwrap());
            for (row, ch) in all.iter().zip(&children) {
                let want = -(ch.len() as f64).ln();
                for &v in &row[..ch.len()] {
                    // f32 rounding of 50 + ln m: its ulp is 3.8e-6.
                    assert!((v as f64 - want).abs() < 1e-5, "{v} vs {want}");
                }
            }
        }
        // W2 scaled by 1e4 with b2 = 0: raw scores of either sign far beyond
        // 50 in magnitude; the naive host formulation (with its own clamp)
        // still agrees, so the values reaching the softmax are +-50.
        let mut rng = stream(5, Stream::InitAux);
        let w: Vec<f32> = (0..8).map(|_| rng.random_range(-1e4..1e4f32)).collect();
        n.w2.set(&Tensor::from_vec(w, (8, 1), &Device::Cpu).unwrap())
            .unwrap();
        n.b2.set(&Tensor::new(&[0f32], &Device::Cpu).unwrap())
            .unwrap();
        let index = BatchIndex::build(&parents, &children).unwrap();
        let s = n.pair_scores(&m, &index).unwrap().to_vec1::<f32>().unwrap();
        assert!(s[..14].iter().all(|v| v.abs() <= 50.0));
        assert!(s[..14].iter().any(|v| v.abs() == 50.0));
        assert_matches_naive(&n, &m, 1e-4);
    }

    #[test]
    fn ssr_gradients_flow() {
        let m = mdp(3, 3);
        let n = net(&m, 8);
        let (parents, children) = batch(&m);
        let loss = n
            .log_pf_chosen(&m, &parents, &children, &[1, 3, 5, 0])
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let vars = n.vars();
        assert_eq!(vars.len(), 8);
        let norm = |v: &Var| -> f32 {
            grads
                .get(v)
                .map(|g| {
                    g.abs()
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap()
                })
                .unwrap_or(0.0)
        };
        // Encoder W, b of both layers, scorer W1, b1, W2: all non-zero.
        for (i, v) in vars.iter().enumerate().take(7) {
            assert!(norm(v) > 0.0, "var {i} has no gradient");
        }
        // b2 shifts every score of a row equally, which the log-softmax
        // cancels: d/db2 sum_i (s_ci - lse_i) = sum_i (1 - sum_j p_ij) = 0.
        assert!(norm(&vars[7]) < 1e-5);
    }

    #[test]
    fn ssr_encodes_each_distinct_state_once() {
        let m = mdp(3, 3);
        // Parents root, root, "0", "0", "1", "012". Needed states: root, "0",
        // "1", "2" (root's children), "00", "10", "20", "01", "02" ("0"'s),
        // "11", "21", "12" ("1"'s new ones: "01" and "10" are shared) = 12;
        // "012" has one child, so neither it nor its leaf is encoded.
        let parents = vec![
            SeqState::root(),
            SeqState::root(),
            st("0"),
            st("0"),
            st("1"),
            st("012"),
        ];
        let children: Vec<Vec<SeqState>> = parents.iter().map(|p| m.children(p)).collect();
        let index = BatchIndex::build(&parents, &children).unwrap();
        assert_eq!(index.states.len(), 12);
        // Distinct parents scored: root, "0", "1".
        assert_eq!(index.parent_rows.len(), 3);
        // Pairs: 3 + 3 + 5 + 5 + 5 (the single-child row is not scored).
        assert_eq!(index.pair_parent.len(), 21);
        assert_eq!((index.n_parents, index.max_children), (6, 5));
        // A leaf and its twin share a row (equal features).
        let twins = vec![vec![st("012"), SeqMdp::leaf_of(vec![0, 1, 2])]];
        let index = BatchIndex::build(&parents[..1], &twins).unwrap();
        assert_eq!(index.states.len(), 2);
        assert_eq!(index.pair_child, vec![1, 1]);
        // The dedup does not change the values: the repeated parents' rows
        // equal each other.
        let n = net(&m, 8);
        let all = rows(&n.log_pf_all(&m, &parents, &children).unwrap());
        assert_eq!(all[0], all[1]);
        assert_eq!(all[2], all[3]);
    }

    #[test]
    fn ssr_bad_input_is_an_error() {
        let m = mdp(3, 3);
        let n = net(&m, 8);
        let (parents, children) = batch(&m);
        assert!(n.log_pf_all(&m, &parents[..2], &children).is_err());
        assert!(n.log_pf_all(&m, &[st("012")], &[Vec::new()]).is_err());
        assert!(n
            .log_pf_chosen(&m, &parents, &children, &[0, 0, 0, 1])
            .is_err());
        assert!(n.log_pf_chosen(&m, &parents, &children, &[0]).is_err());
        assert!(n.log_pf_all(&mdp(3, 4), &parents, &children).is_err());
        assert!(Ssr::new(0, 8, &Device::Cpu, &mut stream(0, Stream::InitStudent)).is_err());
        assert!(Ssr::new(9, 0, &Device::Cpu, &mut stream(0, Stream::InitStudent)).is_err());
        // An empty batch is fine.
        assert_eq!(n.log_pf_all(&m, &[], &[]).unwrap().dims(), &[0, 0]);
        assert_eq!(n.log_pf_chosen(&m, &[], &[], &[]).unwrap().dims(), &[0]);
        // Config defaults and checks.
        assert_eq!(SsrConfig::default().hidden, None);
        assert!(SsrConfig { hidden: Some(0) }.check().is_err());
        assert!(serde_json::from_str::<SsrConfig>(r#"{"hiden": 3}"#).is_err());
    }
}
