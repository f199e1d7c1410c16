//! Ranking losses within one workload group, and the training loop.
//!
//! Relevance is normalised throughput: `min latency / latency` in `(0, 1]`
//! within the group. Two losses:
//! - [`RankLoss::LambdaRank`]: every pair `(i, j)` with `rel_i > rel_j`
//!   contributes `|delta NDCG_ij| * log(1 + exp(-(s_i - s_j)))`, where
//!   `delta NDCG_ij` is the change of the group's NDCG (gains `2^rel - 1`,
//!   positions from the current scores) if `i` and `j` swapped places;
//!   `pair_floor` is added to that weight so that pairs far from the top
//!   still count a little;
//! - [`RankLoss::Pairwise`]: the same logistic loss with weight 1 per pair,
//!   divided by the group's pair count.
//!
//! [`train_epochs`] runs mini-batches of whole groups through the MLP.

use super::mlp::{Mlp, Rates};
use ndarray::{Array1, Array2};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Which ranking loss trains the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RankLoss {
    LambdaRank,
    Pairwise,
}

/// One group: rows of the training matrix and their relevance.
#[derive(Clone, Debug)]
pub struct Group {
    pub rows: Vec<usize>,
    pub rel: Vec<f32>,
    pub head: usize,
}

/// Relevance of latencies: `min / latency` (all latencies positive).
pub fn relevance(latency: &[f64]) -> Vec<f32> {
    let best = latency.iter().copied().fold(f64::INFINITY, f64::min);
    latency.iter().map(|&l| (best / l) as f32).collect()
}

fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Adds the gradient of the group's loss at `scores` to `grad`; returns
/// the loss.
pub fn group_loss(
    kind: RankLoss,
    pair_floor: f32,
    scores: &[f32],
    rel: &[f32],
    grad: &mut [f32],
) -> f32 {
    let n = scores.len();
    if n < 2 {
        return 0.0;
    }
    let gain: Vec<f32> = rel.iter().map(|r| r.exp2() - 1.0).collect();
    // Current position (0-based) of each item by descending score.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut pos = vec![0usize; n];
    for (p, &i) in order.iter().enumerate() {
        pos[i] = p;
    }
    let disc = |p: usize| 1.0 / ((p + 2) as f32).log2();
    let mut ideal = gain.clone();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f32 = ideal.iter().enumerate().map(|(p, g)| g * disc(p)).sum();
    let pairs = (n * (n - 1) / 2) as f32;
    let mut loss = 0.0;
    for i in 0..n {
        for j in 0..n {
            if rel[i] <= rel[j] {
                continue;
            }
            let w = match kind {
                RankLoss::Pairwise => 1.0 / pairs,
                RankLoss::LambdaRank if idcg > 0.0 => {
                    let d = (gain[i] - gain[j]) * (disc(pos[i]) - disc(pos[j]));
                    d.abs() / idcg + pair_floor / pairs
                }
                RankLoss::LambdaRank => pair_floor / pairs,
            };
            let diff = scores[i] - scores[j];
            loss += w * softplus(-diff);
            let rho = w * sigmoid(-diff);
            grad[i] -= rho;
            grad[j] += rho;
        }
    }
    loss
}

/// Settings of a training run.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub epochs: usize,
    pub groups_per_batch: usize,
    pub rates: Rates,
    pub loss: RankLoss,
    pub pair_floor: f32,
}

/// Trains `mlp` on the rows of `x` grouped by `groups`; returns the mean
/// loss per group of the last epoch.
pub fn train_epochs(
    mlp: &mut Mlp,
    x: &Array2<f32>,
    groups: &[Group],
    run: &Run,
    rng: &mut ChaCha8Rng,
) -> f32 {
    let mut order: Vec<usize> = (0..groups.len()).collect();
    let mut last = 0.0;
    for _ in 0..run.epochs {
        order.shuffle(rng);
        let mut total = 0.0;
        for batch in order.chunks(run.groups_per_batch.max(1)) {
            total += train_batch(mlp, x, groups, batch, run);
        }
        last = total / groups.len().max(1) as f32;
    }
    last
}

fn train_batch(
    mlp: &mut Mlp,
    x: &Array2<f32>,
    groups: &[Group],
    batch: &[usize],
    run: &Run,
) -> f32 {
    let rows: Vec<usize> = batch.iter().flat_map(|&g| groups[g].rows.clone()).collect();
    let heads: Vec<usize> = batch
        .iter()
        .flat_map(|&g| std::iter::repeat_n(groups[g].head, groups[g].rows.len()))
        .collect();
    let xb = x.select(ndarray::Axis(0), &rows);
    let mut f = |s: &Array1<f32>| {
        let mut grad = Array1::zeros(s.len());
        let (mut loss, mut at) = (0.0, 0);
        for &g in batch {
            let n = groups[g].rows.len();
            let sl = s.as_slice().map(|v| &v[at..at + n]).unwrap_or(&[]);
            let gr = grad.as_slice_mut().map(|v| &mut v[at..at + n]);
            if let Some(gr) = gr {
                loss += group_loss(run.loss, run.pair_floor, sl, &groups[g].rel, gr);
            }
            at += n;
        }
        (loss, grad)
    };
    mlp.step(xb, &heads, run.rates, &mut f)
}
