//! The learned cost model in the tuning loop: every measured candidate
//! becomes a training sample (features of its kernel descriptor, the
//! target's numeric description appended), the model is retrained online
//! every few batches, and it ranks the evolutionary search's proposals.
//!
//! Candidates of hand-written kernels are described by their workload's
//! family, the `variant` knob when there is one, flops and bytes of the
//! workload, threads, and every numeric knob ([`KernelDescriptor`]).

use crate::cost::CostConfig;
use crate::cost::{features, CacheSizes, Candidate, CostModel, KernelDescriptor, Sample};
use crate::measure::Outcome;
use crate::record::Record;
use crate::search::Ranker;
use crate::target::TargetDescriptor;
use crate::tune::Trial;
use crate::TunerError;
use kiln_ir::Graph;
use kiln_runtime::tuning::{Config, Knob};

/// What the guide knows of a workload besides its knobs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkloadInfo {
    pub key: u128,
    pub family: String,
    pub flops: f64,
    pub bytes_read: f64,
    pub bytes_written: f64,
}

impl WorkloadInfo {
    /// Flops (2 per multiply-add of Conv/ConvTranspose/MatMul/Gemm, one per
    /// output element otherwise) and bytes of a workload's subgraph.
    pub fn of(g: &Graph, family: &str, canonical: &[u8]) -> WorkloadInfo {
        let bytes =
            |vs: &[kiln_ir::ValueId]| vs.iter().map(|&v| g.value(v).ty.bytes() as f64).sum();
        let flops = g.nodes().iter().map(|n| node_flops(g, n)).sum();
        WorkloadInfo {
            key: xxhash_rust::xxh3::xxh3_128(canonical),
            family: family.to_string(),
            flops,
            bytes_read: bytes(g.inputs())
                + g.consts().map(|(_, t)| t.ty().bytes() as f64).sum::<f64>(),
            bytes_written: bytes(g.outputs()),
        }
    }
}

fn node_flops(g: &Graph, n: &kiln_ir::Node) -> f64 {
    let out: f64 = n
        .outputs
        .iter()
        .map(|&o| g.value(o).ty.numel() as f64)
        .sum();
    let shape = |i: usize| {
        n.inputs
            .get(i)
            .map(|&v| g.value(v).ty.shape.clone())
            .unwrap_or_default()
    };
    match n.op.kind.as_str() {
        // Each output element sums C_in/groups · kernel taps products.
        "Conv" => 2.0 * out * shape(1).iter().skip(1).product::<usize>() as f64,
        "ConvTranspose" => {
            2.0 * shape(0).iter().product::<usize>() as f64
                * shape(1).iter().skip(1).product::<usize>() as f64
        }
        "MatMul" | "Gemm" => {
            let a = shape(0);
            let k = if n.op.kind == "Gemm" && n.op.attrs.int_or("transA", 0).ok() == Some(1) {
                a.first().copied()
            } else {
                a.last().copied()
            };
            2.0 * out * k.unwrap_or(1) as f64
        }
        _ => out,
    }
}

/// The cost model with its target, learning as candidates are measured.
pub struct Guide {
    model: CostModel,
    target: String,
    target_features: Vec<f32>,
    caches: CacheSizes,
    threads: u32,
    fresh: Vec<Sample>,
    /// Stored samples the model was pretrained on (0: it learns online only).
    pretrained: usize,
    /// Retrain once this many new samples have come in.
    pub retrain_every: usize,
    /// Batches observed so far (each one's trials were timed together).
    batches: u64,
}

impl Guide {
    pub fn new(
        model: CostModel,
        target: &str,
        target_features: Vec<f32>,
        caches: CacheSizes,
        threads: usize,
    ) -> Guide {
        Guide {
            model,
            target: target.to_string(),
            target_features,
            caches,
            threads: threads as u32,
            fresh: Vec::new(),
            pretrained: 0,
            retrain_every: 32,
            batches: 0,
        }
    }

    /// A guide for `target` with a fresh model (`seed`), its cache sizes
    /// and numeric features from the descriptor.
    pub fn for_target(
        target: &TargetDescriptor,
        threads: usize,
        seed: u64,
    ) -> Result<Guide, TunerError> {
        let features = target.numeric_features();
        let model = CostModel::new(CostConfig {
            target_dims: features.len(),
            seed,
            ..Default::default()
        })?;
        Ok(Guide::new(
            model,
            &target_key(target),
            features,
            caches_of(target),
            threads,
        ))
    }

    /// The model (to save it).
    pub fn model(&self) -> &CostModel {
        &self.model
    }

    /// Trains on stored measurements of this model's workloads, on any
    /// target (each with its own head; a new target's head starts from the
    /// nearest known one): what other machines learned guides this one.
    /// Returns the samples used (0 when none ranks two configs of one
    /// workload on one target: then it starts cold).
    pub fn pretrain(&mut self, stored: &[(WorkloadInfo, Record)]) -> Result<usize, TunerError> {
        let samples = samples_of(stored);
        if samples.len() < 2 {
            return Ok(0);
        }
        match self.model.train(&samples) {
            Ok(_) => {
                self.pretrained = samples.len();
                Ok(samples.len())
            }
            // Records that rank nothing (one config per workload, as a
            // tune that kept the defaults stores) teach nothing: start cold.
            Err(TunerError::CostNoData { .. }) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The feature vector of `config` of workload `w`.
    pub fn features(&self, w: &WorkloadInfo, config: &Config) -> Vec<f32> {
        let d = descriptor(w, config, self.threads);
        features(&Candidate::Kernel(&d), &self.caches, &self.target_features)
    }

    /// Learns from measured trials (failed ones are not samples).
    pub fn observe(&mut self, w: &WorkloadInfo, trials: &[Trial]) {
        self.batches += 1;
        for t in trials {
            if let Outcome::Ok { .. } = t.outcome {
                self.fresh.push(Sample {
                    workload: w.key,
                    target: self.target.clone(),
                    features: self.features(w, &t.config),
                    latency_ns: t.outcome.median_ns().unwrap_or(f64::NAN),
                    batch: self.batches,
                });
            }
        }
        if self.fresh.len() >= self.retrain_every {
            let batch = std::mem::take(&mut self.fresh);
            if let Err(e) = self.model.update(&batch) {
                tracing::warn!(error = %e, "cost model update failed; search continues unguided");
            }
        }
    }

    /// A ranker for workload `w`'s configs.
    pub fn ranker<'a>(&'a self, w: &'a WorkloadInfo) -> GuideRanker<'a> {
        GuideRanker { guide: self, w }
    }
}

/// Scores configs of one workload with the guide's model (all equal before
/// it has a head for this target).
pub struct GuideRanker<'a> {
    guide: &'a Guide,
    w: &'a WorkloadInfo,
}

impl Ranker for GuideRanker<'_> {
    /// Only a model pretrained on stored records: one that learned online
    /// alone ordered small spaces worse than their plain enumeration
    /// (trials to 95% of the gain on 3 of 4 models, tuner/data/README.md).
    fn informed(&self) -> bool {
        self.guide.pretrained > 0
    }

    fn score(&self, configs: &[Config]) -> Vec<f64> {
        let f: Vec<Vec<f32>> = configs
            .iter()
            .map(|c| self.guide.features(self.w, c))
            .collect();
        match self.guide.model.predict(&f, &self.guide.target) {
            Ok(s) => s.into_iter().map(f64::from).collect(),
            Err(_) => vec![0.0; configs.len()],
        }
    }
}

/// The cost model's samples of stored measurements (any target; failed
/// records and unreadable configs are skipped).
pub fn samples_of(stored: &[(WorkloadInfo, Record)]) -> Vec<Sample> {
    stored
        .iter()
        .filter(|(_, r)| r.is_ok() && r.median_ns > 0.0)
        .filter_map(|(w, r)| {
            let c: Config = serde_json::from_value(r.config.clone()).ok()?;
            let d = descriptor(w, &c, r.protocol.threads);
            let tf = r.target.numeric_features();
            Some(Sample {
                workload: w.key,
                target: target_key(&r.target),
                features: features(&Candidate::Kernel(&d), &caches_of(&r.target), &tf),
                latency_ns: r.median_ns,
                batch: r.timestamp_s,
            })
        })
        .collect()
}

/// The kernel descriptor of `config` of workload `w` at `threads`.
pub fn descriptor(w: &WorkloadInfo, config: &Config, threads: u32) -> KernelDescriptor {
    let variant = match config.get("variant") {
        Some(Knob::Choice(v)) => v.clone(),
        _ => String::new(),
    };
    let knobs = config
        .iter()
        .map(|(k, v)| {
            let x = match v {
                Knob::Bool(b) => f64::from(u8::from(*b)),
                Knob::Int(i) => *i as f64,
                Knob::Choice(s) => xxhash_rust::xxh3::xxh3_64(s.as_bytes()) as f64 % 1024.0,
            };
            (k.clone(), x)
        })
        .collect();
    let t = match config.get("threads") {
        Some(Knob::Int(t)) => *t as u32,
        _ => threads,
    };
    KernelDescriptor {
        family: w.family.clone(),
        variant,
        flops: w.flops,
        bytes_read: w.bytes_read,
        bytes_written: w.bytes_written,
        working_set: w.bytes_read + w.bytes_written,
        threads: t,
        knobs,
    }
}

/// The cost model's name for a target (its descriptor's stable id).
pub fn target_key(t: &TargetDescriptor) -> String {
    format!("{:032x}", t.normalized().id())
}

/// Cache sizes of a CPU target (defaults where unknown or for a GPU).
pub fn caches_of(t: &TargetDescriptor) -> CacheSizes {
    let d = CacheSizes::default();
    let or = |v: u64, dflt: f64| if v > 0 { v as f64 } else { dflt };
    match t {
        TargetDescriptor::Cpu {
            l1d_bytes,
            l2_bytes,
            l3_bytes,
            ..
        } => CacheSizes {
            l1: or(*l1d_bytes, d.l1),
            l2: or(*l2_bytes, d.l2),
            l3: or(*l3_bytes, d.l3),
        },
        TargetDescriptor::Gpu { .. } => d,
    }
}
