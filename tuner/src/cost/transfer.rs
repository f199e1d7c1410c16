//! Transfer to a new target: a head for it, initialised from the heads of
//! the targets the model knows, then fine-tuned on the new target's share
//! of samples (the head at the full rate, the shared trunk at
//! [`CostConfig::adapt_trunk_rate`](super::CostConfig) times it).
//!
//! [`transfer_report`] measures what that buys: it holds out some of the
//! new target's workloads and reports pairwise accuracy and top-k on them
//! after adapting with 0%, 5%, 100% (any fractions) of the rest.

use super::{metrics, CostModel, Evaluation, Result, Sample, TrainReport};
use crate::TunerError;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a new target's head starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeadInit {
    /// The mean of all heads.
    Mean,
    /// The head of the known target whose descriptor is nearest
    /// (Euclidean, in standardised units); the mean without descriptors.
    Nearest,
}

impl CostModel {
    /// Creates (or re-creates) `target`'s head from the existing heads.
    pub(super) fn init_head(&mut self, target: &str, desc: &[f32], init: HeadInit) {
        let Some(t) = self.trained.as_mut() else {
            return;
        };
        let names: Vec<String> = t.mlp.head_names().to_vec();
        let mut weights: Vec<f32> = names.iter().map(|n| (n != target) as u8 as f32).collect();
        let d = self.config.target_dims;
        let off = t.mean.len().saturating_sub(d);
        let dist = |other: &[f32]| -> f32 {
            desc.iter()
                .zip(other)
                .enumerate()
                .map(|(k, (a, b))| ((a - b) * t.scale[off + k]).powi(2))
                .sum()
        };
        if init == HeadInit::Nearest && d > 0 && desc.len() == d {
            let best = names
                .iter()
                .enumerate()
                .filter(|(_, n)| n.as_str() != target)
                .filter_map(|(k, n)| self.targets.get(n).map(|o| (k, dist(o))))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((k, _)) = best {
                weights = vec![0.0; names.len()];
                weights[k] = 1.0;
            }
        }
        t.mlp.add_head_from(target, &weights);
    }

    /// Adapts the model to `target` (described by `desc`, the trailing
    /// `target_dims` feature values): a new head from `init`, fine-tuned
    /// on `samples` (which join the replay buffer) when there are any.
    pub fn adapt(
        &mut self,
        target: &str,
        desc: &[f32],
        samples: &[Sample],
        init: HeadInit,
    ) -> Result<TrainReport> {
        let width = self.trained()?.mlp.inputs();
        if let Some(s) = samples.iter().find(|s| s.target != target) {
            return Err(TunerError::CostConfig {
                what: format!("adapt to `{target}` was given a sample of `{}`", s.target),
            });
        }
        let (clean, skipped) = super::clean(samples, width)?;
        self.targets.insert(target.to_string(), desc.to_vec());
        self.init_head(target, desc, init);
        let none = TrainReport {
            samples: 0,
            skipped,
            groups: 0,
            loss: 0.0,
        };
        if clean.is_empty() {
            return Ok(none);
        }
        let c = &self.config;
        let (epochs, steps, rate) = (c.adapt_epochs, c.adapt_steps, c.adapt_trunk_rate);
        let mut set = self.replay(target, clean.len());
        set.extend(clean.iter().cloned());
        // Without a pair of the new target, the initial head stands.
        let r = if has_pair(&clean) {
            self.fit(&set, epochs, steps, rate)?
        } else {
            none
        };
        self.buffer.extend(clean);
        self.trim_buffer();
        Ok(TrainReport { skipped, ..r })
    }
}

impl CostModel {
    /// Buffered samples of other targets to replay while adapting to
    /// `target` with `n` new samples: whole (workload, target) groups in
    /// seeded random order.
    fn replay(&self, target: &str, n: usize) -> Vec<Sample> {
        let want = (n as f64 * self.config.adapt_replay as f64).round() as usize;
        let mut groups: BTreeMap<(u128, &str), Vec<&Sample>> = BTreeMap::new();
        for s in self.buffer.iter().filter(|s| s.target != target) {
            groups.entry((s.workload, &s.target)).or_default().push(s);
        }
        let mut groups: Vec<Vec<&Sample>> = groups.into_values().collect();
        let seed = self.config.seed ^ self.rounds.wrapping_mul(0x2545_f491_4f6c_dd1d);
        groups.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let mut out = vec![];
        for g in groups {
            if out.len() >= want {
                break;
            }
            out.extend(g.into_iter().cloned());
        }
        out
    }
}

/// True when two samples share a workload.
fn has_pair(samples: &[Sample]) -> bool {
    let mut ws: Vec<u128> = samples.iter().map(|s| s.workload).collect();
    ws.sort_unstable();
    ws.windows(2).any(|w| w[0] == w[1])
}

/// Accuracy on a new target after adapting with a share of its data.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransferPoint {
    /// Share of the new target's training samples used.
    pub fraction: f64,
    pub samples: usize,
    /// On the held-out workloads.
    pub eval: Evaluation,
}

/// [`transfer_report`]'s result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransferReport {
    pub target: String,
    pub held_out_workloads: usize,
    pub points: Vec<TransferPoint>,
}

/// How the share of the new target's samples is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Share {
    /// Samples at random from all training workloads.
    Samples,
    /// Whole workloads in random order (the last one cut to length): a
    /// new target is measured a batch of one workload's candidates at a
    /// time, and ranking learns from pairs within a workload.
    Workloads,
}

/// What [`transfer_report`] measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransferPlan {
    /// Shares of the new target's training samples (0.0, 0.05, 1.0).
    pub fractions: Vec<f64>,
    /// Share of the new target's workloads held out for evaluation.
    pub held_out: f64,
    pub share: Share,
    pub init: HeadInit,
    pub seed: u64,
}

impl Default for TransferPlan {
    fn default() -> Self {
        TransferPlan {
            fractions: vec![0.0, 0.05, 1.0],
            held_out: 0.25,
            share: Share::Workloads,
            init: HeadInit::Nearest,
            seed: 0,
        }
    }
}

/// Adapts copies of `base` to `target` with each of the plan's fractions
/// of the target's samples outside the held-out workloads, and evaluates
/// each on the held-out workloads. Deterministic for the plan's seed.
pub fn transfer_report(
    base: &CostModel,
    target: &str,
    desc: &[f32],
    samples: &[Sample],
    plan: &TransferPlan,
) -> Result<TransferReport> {
    let (train, test) = metrics::split_by_workload(samples, plan.held_out, plan.seed);
    if test.is_empty() {
        return Err(TunerError::CostNoData {
            what: format!("no held-out workloads of `{target}` to evaluate on"),
        });
    }
    let ordered = share_order(train, plan.share, plan.seed);
    let mut points = vec![];
    for &f in &plan.fractions {
        let n = (ordered.len() as f64 * f.clamp(0.0, 1.0)).round() as usize;
        let mut m = base.clone();
        m.adapt(target, desc, &ordered[..n], plan.init)?;
        points.push(TransferPoint {
            fraction: f,
            samples: n,
            eval: m.evaluate(&test)?,
        });
    }
    let held: std::collections::BTreeSet<u128> = test.iter().map(|s| s.workload).collect();
    Ok(TransferReport {
        target: target.to_string(),
        held_out_workloads: held.len(),
        points,
    })
}

/// The samples in the order a share takes them (a prefix is the share).
fn share_order(mut train: Vec<Sample>, share: Share, seed: u64) -> Vec<Sample> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    train.shuffle(&mut rng);
    if share == Share::Workloads {
        let mut ws: Vec<u128> = train.iter().map(|s| s.workload).collect();
        ws.sort_unstable();
        ws.dedup();
        ws.shuffle(&mut rng);
        let rank = |w: u128| ws.iter().position(|&x| x == w).unwrap_or(usize::MAX);
        train.sort_by_key(|s| rank(s.workload));
    }
    train
}
