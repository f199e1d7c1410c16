//! The tuner's learned cost model: it ranks candidates of a workload on a
//! target (higher score = faster) so that search measures only promising
//! ones, and it transfers to new hardware with few measurements.
//!
//! # Features ([`mod@features`])
//! One fixed-length vector per candidate:
//!
//! | offset | length | content |
//! |-------:|-------:|---------|
//! | 0 | 1 | 1 for a loop nest, 0 for a hand-written kernel |
//! | 1 | 143 (`NEST_LEN`) | nest block: 44 per-store values summed over stores, the same 44 maxed, 3 counts (stores, steps, inputs), 36 step tokens (9 kinds x 4 quarters), 16 hashed (kind, log2 parameter) tokens |
//! | 144 | 109 (`KERNEL_LEN`) | kernel block: 16 + 16 hashed family and family/variant one-hots, 13 numbers, 32 knob values by hashed name, 32 hashed (name, value) one-hots |
//! | 253 (`FEATURE_LEN`) | caller's | target descriptor |
//!
//! - The nest block (JIT loop nests): per store (the output store, and one
//!   per staged input's copy) 44 values in the spirit of TVM's per-store
//!   features — float add/mul/div/special/min-max/compare/select/reduce op
//!   counts, integer index ops, loads and stores with bytes, innermost and
//!   vector-loop stride classes (broadcast/contiguous/strided/irregular),
//!   reuse count and distance, loop extents, vector lanes and loop,
//!   unrolling, parallel extent, working set against L1/L2/L3 — summed and
//!   maxed over stores; then the store and step counts and the schedule's
//!   steps as tokens (step kind x quarter of the schedule, and hashed
//!   (kind, log2 parameter) pairs).
//! - The kernel block (hand-written kernels, [`KernelDescriptor`]): hashed
//!   one-hots of family and variant, log-scaled flops, bytes, working set,
//!   threads, arithmetic intensity, working set against each cache, and
//!   knob values hashed into buckets (signed log2 by name, one-hot by
//!   (name, value)).
//! - The caller's numeric target descriptor (peak FLOP/s, bandwidth,
//!   caches, SIMD width, cores, ...), appended, so that unseen hardware has
//!   a representation. [`CostConfig::target_dims`] says how many trailing
//!   values it has (it picks the nearest head for a new target).
//!
//! # Model ([`mlp`], [`rank`])
//! Inputs are standardised with the mean and deviation of the first
//! training set (kept afterwards, so that heads stay comparable). A trunk
//! of dense ReLU layers ([`CostConfig::hidden`]) is shared by all targets;
//! each target has a linear head giving a score. Training minimises
//! LambdaRank (or plain pairwise logistic) loss within each (workload,
//! target) group with Adam, from a seed (`rand_chacha`): the same data and
//! seed give the same model. [`CostModel::update`] retrains online on a
//! replay buffer of the latest samples; [`CostModel::adapt`] adds a head
//! for a new target, initialised from the existing ones (mean, or nearest
//! by target features) and fine-tuned with the trunk at a lower rate,
//! replaying some known targets' workloads so the trunk keeps what it
//! knows ([`transfer`]).
//! [`metrics`] gives pairwise accuracy and TenSet's top-k scores on
//! held-out workloads.
//!
//! # Why ndarray
//! The model is a few matrix products and element-wise maps on batches of
//! at most thousands of rows by a few hundred features; ndarray (with
//! matrixmultiply) does that fast enough on one core (a full training run
//! takes seconds), is pure Rust, and adds no native library, GPU runtime or
//! autodiff framework to the build. Gradients are written by hand.
//!
//! Saved models (`to_json`) hold the configuration, normalisation, weights
//! and target descriptors, not the replay buffer (the tuning database has
//! the samples) nor Adam's moments.

pub mod features;
pub mod metrics;
pub mod mlp;
pub mod rank;
pub mod transfer;

pub use features::{features, CacheSizes, Candidate, KernelDescriptor, FEATURE_LEN};
pub use metrics::{Evaluation, Scored};
pub use rank::RankLoss;
pub use transfer::{HeadInit, Share, TransferPlan, TransferPoint, TransferReport};

use crate::TunerError;
use mlp::{Mlp, MlpState, Rates};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

type Result<T> = std::result::Result<T, TunerError>;

/// Features and latencies of one group's candidates.
/// Sample indices by (workload, target, batch): the groups candidates are
/// ranked in, for training and for scoring (see [`Sample::batch`]).
fn ranking_groups(samples: &[Sample]) -> BTreeMap<(u128, &str, u64), Vec<usize>> {
    let mut groups: BTreeMap<(u128, &str, u64), Vec<usize>> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        groups
            .entry((s.workload, &s.target, s.batch))
            .or_default()
            .push(i);
    }
    groups
}

/// One measured candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The workload key; candidates are ranked within a workload.
    pub workload: u128,
    /// The target key (one head per target).
    pub target: String,
    /// The candidate's features (see [`features()`]).
    pub features: Vec<f32>,
    /// Measured latency; NaN, infinite or non-positive samples are skipped.
    pub latency_ns: f64,
    /// The measurement run it came from: candidates are ranked, and scored,
    /// only against others of their workload measured in the same run
    /// (interleaved, close in time). Across runs the same configs were
    /// ordered no better than chance on the 2-core machines (re-measured
    /// configs of `tuner/data/`: 0.44-0.47 pairwise), so cross-run pairs
    /// are mostly noise to learn from and to score on.
    pub batch: u64,
}

/// The cost model's knobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostConfig {
    /// Widths of the trunk's hidden layers (at least one).
    pub hidden: Vec<usize>,
    /// Adam's learning rate.
    pub lr: f32,
    /// Epochs of [`CostModel::train`].
    pub epochs: usize,
    /// Epochs over the replay buffer per [`CostModel::update`].
    pub update_epochs: usize,
    /// Workload groups per mini-batch.
    pub groups_per_batch: usize,
    pub loss: RankLoss,
    /// LambdaRank: weight added to every pair, spread over the group's
    /// pairs (0: pure LambdaRank).
    pub pair_floor: f32,
    /// Samples kept for online retraining (the newest).
    pub replay_capacity: usize,
    /// Trailing feature values that describe the target.
    pub target_dims: usize,
    /// Epochs of [`CostModel::adapt`] on the new target's samples...
    pub adapt_epochs: usize,
    /// ... or more, to make at least this many optimiser steps (a small
    /// share of a new target is few mini-batches per epoch).
    pub adapt_steps: usize,
    /// While adapting, samples of known targets replayed alongside the new
    /// ones (whole workloads, up to this multiple of the new samples) so
    /// that the shared trunk keeps what it learned (0: none).
    pub adapt_replay: f32,
    /// Trunk learning rate relative to `lr` while adapting.
    pub adapt_trunk_rate: f32,
    pub seed: u64,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig {
            hidden: vec![64, 32],
            lr: 2e-3,
            epochs: 60,
            update_epochs: 8,
            groups_per_batch: 8,
            loss: RankLoss::LambdaRank,
            pair_floor: 3.0,
            replay_capacity: 50_000,
            target_dims: 0,
            adapt_epochs: 60,
            adapt_steps: 300,
            adapt_replay: 1.0,
            adapt_trunk_rate: 0.3,
            seed: 0x6b696c6e,
        }
    }
}

impl CostConfig {
    fn check(&self) -> Result<()> {
        let bad = |what: &str| {
            Err(TunerError::CostConfig {
                what: what.to_string(),
            })
        };
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return bad("hidden layers must be non-empty with non-zero widths");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr must be positive");
        }
        if !(self.adapt_trunk_rate.is_finite() && self.adapt_trunk_rate >= 0.0) {
            return bad("adapt_trunk_rate must be non-negative");
        }
        if !(self.adapt_replay.is_finite() && self.adapt_replay >= 0.0) {
            return bad("adapt_replay must be non-negative");
        }
        if !(self.pair_floor.is_finite() && self.pair_floor >= 0.0) {
            return bad("pair_floor must be non-negative");
        }
        if self.replay_capacity == 0 {
            return bad("replay_capacity must be positive");
        }
        Ok(())
    }
}

/// What a training call used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainReport {
    /// Samples in the training set.
    pub samples: usize,
    /// New samples skipped (non-finite or non-positive latency or feature).
    pub skipped: usize,
    /// (workload, target) groups with at least two samples.
    pub groups: usize,
    /// Mean loss per group in the last epoch.
    pub loss: f32,
}

/// The trained state.
#[derive(Clone, Debug)]
struct Trained {
    mlp: Mlp,
    mean: Vec<f32>,
    scale: Vec<f32>,
}

/// The learned cost model (see the module doc).
#[derive(Clone, Debug)]
pub struct CostModel {
    config: CostConfig,
    trained: Option<Trained>,
    /// Target descriptor per head (the trailing `target_dims` features).
    targets: BTreeMap<String, Vec<f32>>,
    buffer: Vec<Sample>,
    /// Training runs so far (seeds each run's shuffling).
    rounds: u64,
}

impl CostModel {
    /// An untrained model.
    pub fn new(config: CostConfig) -> Result<CostModel> {
        config.check()?;
        Ok(CostModel {
            config,
            trained: None,
            targets: BTreeMap::new(),
            buffer: vec![],
            rounds: 0,
        })
    }

    pub fn config(&self) -> &CostConfig {
        &self.config
    }

    /// Feature length the model takes (`None` before training).
    pub fn inputs(&self) -> Option<usize> {
        self.trained.as_ref().map(|t| t.mlp.inputs())
    }

    /// Targets with a head.
    pub fn targets(&self) -> Vec<String> {
        self.trained
            .as_ref()
            .map_or(vec![], |t| t.mlp.head_names().to_vec())
    }

    /// Samples in the replay buffer.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Trains from scratch (weights from the seed) on `samples`, which
    /// replace the replay buffer.
    pub fn train(&mut self, samples: &[Sample]) -> Result<TrainReport> {
        let width = samples.first().map(|s| s.features.len()).unwrap_or(0);
        let (clean, skipped) = clean(samples, width)?;
        if clean.is_empty() {
            return Err(no_data(samples.len(), skipped));
        }
        self.targets.clear();
        self.buffer = clean;
        self.trim_buffer();
        let (mean, scale) = moments(&self.buffer, width);
        let mut mlp = Mlp::new(width, &self.config.hidden, self.config.seed);
        for (k, name) in target_names(&self.buffer).iter().enumerate() {
            mlp.add_head(name, self.config.seed.wrapping_add(1 + k as u64));
        }
        self.trained = Some(Trained { mlp, mean, scale });
        self.note_targets();
        let epochs = self.config.epochs;
        let mut r = self.fit_buffer(epochs, 1.0)?;
        r.skipped = skipped;
        Ok(r)
    }

    /// Adds `samples` to the replay buffer and retrains from the current
    /// weights for `update_epochs` (trains from scratch when untrained).
    pub fn update(&mut self, samples: &[Sample]) -> Result<TrainReport> {
        let Some(width) = self.inputs() else {
            return self.train(samples);
        };
        let (clean, skipped) = clean(samples, width)?;
        self.buffer.extend(clean);
        self.trim_buffer();
        self.note_targets();
        for name in target_names(&self.buffer) {
            if self.head(&name).is_none() {
                let desc = self.targets.get(&name).cloned().unwrap_or_default();
                self.init_head(&name, &desc, HeadInit::Nearest);
            }
        }
        let epochs = self.config.update_epochs;
        let mut r = self.fit_buffer(epochs, 1.0)?;
        r.skipped = skipped;
        Ok(r)
    }

    /// Scores of candidates on `target` (higher = predicted faster).
    pub fn predict(&self, features: &[Vec<f32>], target: &str) -> Result<Vec<f32>> {
        let t = self.trained()?;
        let head = self.head_or_err(target)?;
        if features.is_empty() {
            return Ok(vec![]);
        }
        let x = self.matrix(t, features.iter().map(|f| f.as_slice()))?;
        Ok(t.mlp.predict(x, &vec![head; features.len()]).to_vec())
    }

    /// Pairwise accuracy and top-1/top-5 of the model on `samples`
    /// (grouped by workload and target; unusable samples skipped).
    pub fn evaluate(&self, samples: &[Sample]) -> Result<Evaluation> {
        let width = self.trained()?.mlp.inputs();
        let (clean, _) = clean(samples, width)?;
        let mut scored = vec![];
        for ((_, target, _), rows) in ranking_groups(&clean) {
            let f: Vec<Vec<f32>> = rows.iter().map(|&i| clean[i].features.clone()).collect();
            let latency = rows.iter().map(|&i| clean[i].latency_ns).collect();
            let scores = self.predict(&f, target)?;
            scored.push(Scored {
                scores,
                latency,
                weight: 1.0,
            });
        }
        metrics::evaluate(&scored).ok_or_else(|| TunerError::CostNoData {
            what: "no workload has two candidates of different latency to compare".into(),
        })
    }

    fn trained(&self) -> Result<&Trained> {
        self.trained.as_ref().ok_or_else(|| TunerError::CostNoData {
            what: "the model is not trained yet".into(),
        })
    }

    fn head(&self, target: &str) -> Option<usize> {
        self.trained.as_ref().and_then(|t| t.mlp.head(target))
    }

    fn head_or_err(&self, target: &str) -> Result<usize> {
        self.head(target)
            .ok_or_else(|| TunerError::CostUnknownTarget {
                target: target.to_string(),
                known: self.targets().join(", "),
            })
    }

    /// Standardised rows; errors name a row of the wrong length or with a
    /// non-finite value.
    fn matrix<'a>(
        &self,
        t: &Trained,
        rows: impl ExactSizeIterator<Item = &'a [f32]>,
    ) -> Result<Array2<f32>> {
        let width = t.mlp.inputs();
        let n = rows.len();
        let mut x = Array2::zeros((n, width));
        for (i, r) in rows.enumerate() {
            check_row(i, r, width)?;
            for (j, v) in r.iter().enumerate() {
                x[[i, j]] = (v - t.mean[j]) * t.scale[j];
            }
        }
        Ok(x)
    }

    /// Records each buffered target's descriptor (first sample seen).
    fn note_targets(&mut self) {
        let d = self.config.target_dims;
        for s in &self.buffer {
            if d > 0 && s.features.len() >= d && !self.targets.contains_key(&s.target) {
                let desc = s.features[s.features.len() - d..].to_vec();
                self.targets.insert(s.target.clone(), desc);
            }
        }
    }

    fn trim_buffer(&mut self) {
        let cap = self.config.replay_capacity;
        if self.buffer.len() > cap {
            let extra = self.buffer.len() - cap;
            self.buffer.drain(..extra);
        }
    }

    /// Trains on the whole buffer (trunk at `trunk_rate` x lr).
    fn fit_buffer(&mut self, epochs: usize, trunk_rate: f32) -> Result<TrainReport> {
        let buffer = std::mem::take(&mut self.buffer);
        let r = self.fit(&buffer, epochs, 0, trunk_rate);
        self.buffer = buffer;
        r
    }

    /// Trains on `samples` (clean, with heads) for `epochs`, or more to
    /// make `min_steps` steps.
    fn fit(
        &mut self,
        samples: &[Sample],
        epochs: usize,
        min_steps: usize,
        trunk_rate: f32,
    ) -> Result<TrainReport> {
        let mut groups = vec![];
        for ((_, target, _), rows) in ranking_groups(samples) {
            if rows.len() < 2 {
                continue;
            }
            let lat: Vec<f64> = rows.iter().map(|&i| samples[i].latency_ns).collect();
            let head = self.head_or_err(target)?;
            groups.push(rank::Group {
                rel: rank::relevance(&lat),
                rows,
                head,
            });
        }
        if groups.is_empty() {
            return Err(TunerError::CostNoData {
                what: format!(
                    "no workload has two usable samples on one target ({} samples)",
                    samples.len()
                ),
            });
        }
        let seed = self.config.seed ^ self.rounds.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.rounds += 1;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let batches = groups.len().div_ceil(self.config.groups_per_batch.max(1));
        let run = rank::Run {
            epochs: epochs.max(min_steps.div_ceil(batches)),
            groups_per_batch: self.config.groups_per_batch,
            rates: Rates {
                trunk: self.config.lr * trunk_rate,
                head: self.config.lr,
            },
            loss: self.config.loss,
            pair_floor: self.config.pair_floor,
        };
        let t = self.trained()?;
        let x = self.matrix(t, samples.iter().map(|s| s.features.as_slice()))?;
        let t = self.trained.as_mut().expect("checked above");
        let loss = rank::train_epochs(&mut t.mlp, &x, &groups, &run, &mut rng);
        tracing::debug!(
            samples = samples.len(),
            groups = groups.len(),
            loss,
            "cost model trained"
        );
        Ok(TrainReport {
            samples: samples.len(),
            skipped: 0,
            groups: groups.len(),
            loss,
        })
    }

    /// The JSON form of the model.
    pub fn to_json(&self) -> Result<String> {
        let t = self.trained()?;
        let state = SavedModel {
            version: SAVE_VERSION,
            config: self.config.clone(),
            mean: t.mean.clone(),
            scale: t.scale.clone(),
            mlp: t.mlp.state(),
            targets: self.targets.clone(),
            rounds: self.rounds,
        };
        serde_json::to_string(&state).map_err(|e| TunerError::CostFormat {
            what: e.to_string(),
        })
    }

    /// A model from its JSON form (empty replay buffer).
    pub fn from_json(s: &str) -> Result<CostModel> {
        let bad = |what: String| TunerError::CostFormat { what };
        let st: SavedModel = serde_json::from_str(s).map_err(|e| bad(e.to_string()))?;
        if st.version != SAVE_VERSION {
            return Err(bad(format!(
                "version {} (expected {SAVE_VERSION})",
                st.version
            )));
        }
        st.config.check()?;
        let mlp = Mlp::from_state(&st.mlp).map_err(bad)?;
        let w = mlp.inputs();
        if st.mean.len() != w || st.scale.len() != w {
            return Err(bad(format!("normalisation does not have {w} values")));
        }
        Ok(CostModel {
            config: st.config,
            trained: Some(Trained {
                mlp,
                mean: st.mean,
                scale: st.scale,
            }),
            targets: st.targets,
            buffer: vec![],
            rounds: st.rounds,
        })
    }

    /// Saves the JSON form to `path`.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        std::fs::write(path, self.to_json()?).map_err(|source| TunerError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Loads a model saved by [`CostModel::save`].
    pub fn load(path: &std::path::Path) -> Result<CostModel> {
        let s = std::fs::read_to_string(path).map_err(|source| TunerError::Io {
            path: path.display().to_string(),
            source,
        })?;
        CostModel::from_json(&s)
    }
}

const SAVE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct SavedModel {
    version: u32,
    config: CostConfig,
    mean: Vec<f32>,
    scale: Vec<f32>,
    mlp: MlpState,
    targets: BTreeMap<String, Vec<f32>>,
    rounds: u64,
}

fn check_row(i: usize, r: &[f32], width: usize) -> Result<()> {
    if r.len() != width {
        return Err(TunerError::CostFeatureLength {
            index: i,
            expected: width,
            got: r.len(),
        });
    }
    if let Some(p) = r.iter().position(|v| !v.is_finite()) {
        return Err(TunerError::CostNonFinite {
            index: i,
            position: p,
        });
    }
    Ok(())
}

/// The usable samples and how many were skipped; a feature vector of the
/// wrong length is an error (a caller bug), bad values are skipped.
fn clean(samples: &[Sample], width: usize) -> Result<(Vec<Sample>, usize)> {
    let mut out = Vec::with_capacity(samples.len());
    let mut skipped = 0;
    for (i, s) in samples.iter().enumerate() {
        match check_row(i, &s.features, width) {
            Err(e @ TunerError::CostFeatureLength { .. }) => return Err(e),
            Err(_) => skipped += 1,
            Ok(()) if !(s.latency_ns.is_finite() && s.latency_ns > 0.0) => skipped += 1,
            Ok(()) => out.push(s.clone()),
        }
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "cost model: skipped samples with a non-finite or non-positive latency or feature"
        );
    }
    Ok((out, skipped))
}

fn no_data(given: usize, skipped: usize) -> TunerError {
    TunerError::CostNoData {
        what: format!("no usable samples ({given} given, {skipped} with a bad latency or feature)"),
    }
}

/// Distinct targets in order of first appearance.
fn target_names(samples: &[Sample]) -> Vec<String> {
    let mut names: Vec<String> = vec![];
    for s in samples {
        if !names.contains(&s.target) {
            names.push(s.target.clone());
        }
    }
    names
}

/// Per-feature mean and inverse deviation (1 for constant features).
fn moments(samples: &[Sample], width: usize) -> (Vec<f32>, Vec<f32>) {
    let n = samples.len().max(1) as f64;
    let mut mean = vec![0.0f64; width];
    let mut sq = vec![0.0f64; width];
    for s in samples {
        for (j, &v) in s.features.iter().enumerate() {
            mean[j] += v as f64 / n;
            sq[j] += (v as f64) * (v as f64) / n;
        }
    }
    let scale = mean
        .iter()
        .zip(&sq)
        .map(|(m, q)| {
            let sd = (q - m * m).max(0.0).sqrt();
            if sd > 1e-6 {
                (1.0 / sd) as f32
            } else {
                1.0
            }
        })
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), scale)
}
