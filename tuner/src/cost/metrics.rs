//! Ranking quality on held-out workloads, and the split that holds them out.
//!
//! - [`pairwise_accuracy`]: over all pairs of candidates of the same
//!   workload with different latencies, the fraction the scores order
//!   correctly (faster = higher score); equal scores count one half.
//!   Pairs are pooled over workloads.
//! - [`top_k_score`]: TenSet's top-k score: for each workload `w` with
//!   weight `a_w`, `L_w` is its best true latency and `T_w` the best true
//!   latency among the `k` candidates the model scores highest; the score
//!   is `sum a_w L_w / sum a_w T_w` (TenSet's
//!   `eval_cost_model_on_weighted_tasks`: the latency of a network built
//!   from the model's picks against the best possible). With one workload
//!   it is the best throughput among the top-k over the best throughput.
//! - [`split_by_workload`]: a held-out split by workload, never by sample.

use super::Sample;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One workload's candidates: model scores and true latencies.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub scores: Vec<f32>,
    pub latency: Vec<f64>,
    /// Weight of the workload (e.g. how often it occurs in a model).
    pub weight: f64,
}

/// Pairwise comparison accuracy pooled over groups; `None` when no group
/// has two candidates of different latency.
pub fn pairwise_accuracy(groups: &[Scored]) -> Option<f64> {
    let (mut right, mut pairs) = (0.0, 0usize);
    for g in groups {
        let n = g.scores.len().min(g.latency.len());
        for i in 0..n {
            for j in i + 1..n {
                let (li, lj) = (g.latency[i], g.latency[j]);
                if li == lj || !li.is_finite() || !lj.is_finite() {
                    continue;
                }
                pairs += 1;
                let (si, sj) = (g.scores[i], g.scores[j]);
                if si == sj {
                    right += 0.5;
                } else if (si > sj) == (li < lj) {
                    right += 1.0;
                }
            }
        }
    }
    (pairs > 0).then(|| right / pairs as f64)
}

/// TenSet's top-k score (see the module doc); `None` without candidates.
/// Ties in score keep the candidates' order.
pub fn top_k_score(groups: &[Scored], k: usize) -> Option<f64> {
    let (mut best, mut picked) = (0.0, 0.0);
    for g in groups {
        let n = g.scores.len().min(g.latency.len());
        if n == 0 || g.weight <= 0.0 {
            continue;
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| g.scores[b].total_cmp(&g.scores[a]));
        let min = |it: &mut dyn Iterator<Item = usize>| {
            it.map(|i| g.latency[i]).fold(f64::INFINITY, f64::min)
        };
        best += g.weight * min(&mut (0..n));
        picked += g.weight * min(&mut order.into_iter().take(k.max(1)));
    }
    (picked > 0.0 && picked.is_finite()).then(|| best / picked)
}

/// Quality of a model on a set of workloads.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub pairwise: f64,
    pub top1: f64,
    pub top5: f64,
    /// Groups scored: a workload's candidates on one target from one
    /// measurement run ([`super::Sample::batch`]), so a workload measured in
    /// several runs counts once per run.
    pub workloads: usize,
    pub samples: usize,
}

/// Every metric over `groups`; `None` when there is nothing to compare.
pub fn evaluate(groups: &[Scored]) -> Option<Evaluation> {
    Some(Evaluation {
        pairwise: pairwise_accuracy(groups)?,
        top1: top_k_score(groups, 1)?,
        top5: top_k_score(groups, 5)?,
        workloads: groups.len(),
        samples: groups.iter().map(|g| g.scores.len()).sum(),
    })
}

/// Splits samples by workload: a `held_out` fraction of the distinct
/// workloads (at least one when there are two or more), chosen by `seed`,
/// goes to the second set with all their samples.
pub fn split_by_workload(
    samples: &[Sample],
    held_out: f64,
    seed: u64,
) -> (Vec<Sample>, Vec<Sample>) {
    let ws: BTreeSet<u128> = samples.iter().map(|s| s.workload).collect();
    let mut ws: Vec<u128> = ws.into_iter().collect();
    ws.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut n = (ws.len() as f64 * held_out.clamp(0.0, 1.0)).round() as usize;
    if ws.len() >= 2 && held_out > 0.0 {
        n = n.clamp(1, ws.len() - 1);
    }
    let test: BTreeSet<u128> = ws[..n.min(ws.len())].iter().copied().collect();
    samples
        .iter()
        .cloned()
        .partition(|s| !test.contains(&s.workload))
}
