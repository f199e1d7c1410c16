//! `kiln db eval-cost MODEL... [--held-out 0.25] [--seed 0] [--threads 2,16] [--json]`:
//! the learned cost model on the database's real measurements.
//!
//! The records of every workload of the given models (their workloads as
//! compiled with each thread count listed, so targets that ran with other
//! thread counts find theirs) become samples; per target, a held-out share of
//! the workloads (never of samples) is kept apart. Reports, per target:
//! - same target: a model trained on the other workloads of that target,
//!   evaluated on the held-out ones (pairwise accuracy, TenSet top-1/top-5);
//! - transfer (with records of two or more targets): a model trained on
//!   every other target, adapted to this one with 0%, 5% and 100% of its
//!   training samples, evaluated on the same held-out workloads.

use anyhow::{bail, Result};
use kiln_models::onnx::ImportOptions;
use kiln_runtime::CompileOptions;
use kiln_tuner::cost::transfer::transfer_report;
use kiln_tuner::cost::{metrics, CostConfig, CostModel, Evaluation, Sample, TransferPlan};
use kiln_tuner::cost::{TransferReport, FEATURE_LEN};
use kiln_tuner::db::TuningDb;
use kiln_tuner::guide::{samples_of, target_key, WorkloadInfo};
use kiln_tuner::record::Record;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// Options of `kiln db eval-cost`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The ONNX models whose workloads to evaluate on.
    #[arg(required = true)]
    models: Vec<PathBuf>,
    /// Share of each target's workloads held out for evaluation.
    #[arg(long, default_value_t = 0.25)]
    held_out: f64,
    /// Seed of the split and of the models.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Thread counts whose compiled workloads are looked up (comma-separated).
    #[arg(long, default_value = "1,2,16", value_delimiter = ',')]
    threads: Vec<usize>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct TargetReport {
    target: String,
    summary: String,
    samples: usize,
    workloads: usize,
    same_target: Option<Evaluation>,
    transfer: Option<TransferReport>,
    /// Why an evaluation above is missing (too few workloads to split...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    not_evaluated: Vec<String>,
}

/// Runs `kiln db eval-cost`.
pub fn run(db: &TuningDb, a: &EvalArgs) -> Result<()> {
    let stored = stored_records(db, a)?;
    let samples = samples_of(&stored);
    let mut summary: BTreeMap<String, String> = BTreeMap::new();
    let mut desc: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    for (_, r) in &stored {
        let key = target_key(&r.target);
        summary
            .entry(key.clone())
            .or_insert_with(|| r.target.summary());
        desc.entry(key)
            .or_insert_with(|| r.target.numeric_features());
    }
    let mut by_target: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    for s in &samples {
        by_target
            .entry(s.target.clone())
            .or_default()
            .push(s.clone());
    }
    if by_target.is_empty() {
        bail!(
            "no usable records of these models' workloads in {}",
            db.path().display()
        );
    }
    let mut out = Vec::new();
    for (t, mine) in &by_target {
        let dims = desc.get(t).map_or(0, Vec::len);
        let others: Vec<Sample> = samples.iter().filter(|s| &s.target != t).cloned().collect();
        let mut not_evaluated = Vec::new();
        let same = same_target(mine, a, dims)
            .map_err(|e| not_evaluated.push(format!("same target: {e:#}")))
            .ok();
        let moved = match transfer(&others, t, desc.get(t), mine, a) {
            Ok(None) => {
                not_evaluated.push("transfer: no records of another target".into());
                None
            }
            Ok(r) => r,
            Err(e) => {
                not_evaluated.push(format!("transfer: {e:#}"));
                None
            }
        };
        out.push(TargetReport {
            target: t.clone(),
            summary: summary.get(t).cloned().unwrap_or_default(),
            samples: mine.len(),
            workloads: mine
                .iter()
                .map(|s| s.workload)
                .collect::<HashSet<_>>()
                .len(),
            same_target: same,
            transfer: moved,
            not_evaluated,
        });
    }
    print(&out, a.json)
}

/// (workload, record) pairs of every workload of the models, each workload once.
fn stored_records(db: &TuningDb, a: &EvalArgs) -> Result<Vec<(WorkloadInfo, Record)>> {
    let (mut stored, mut seen) = (Vec::new(), HashSet::new());
    for path in &a.models {
        let m = kiln_models::onnx::load(path, &ImportOptions::default())?;
        for &t in &a.threads {
            let opts = CompileOptions::default().with_threads(t.max(1));
            for w in kiln_runtime::tuning::workloads(&m.graph, &opts)? {
                if !seen.insert((w.family.clone(), w.canonical.clone())) {
                    continue;
                }
                let key = super::tuning_db::key_of(&w);
                let sub = kiln_runtime::tuning::subgraph(&m.graph, &w.nodes)?;
                let info = WorkloadInfo::of(&sub, &w.family, &w.canonical);
                let recs = db.near(&key)?;
                let mine = recs.into_iter().filter(|r| r.workload.same_workload(&key));
                stored.extend(mine.map(|r| (info.clone(), r)));
            }
        }
    }
    Ok(stored)
}

fn config(a: &EvalArgs, dims: usize) -> CostConfig {
    CostConfig {
        target_dims: dims,
        seed: a.seed,
        ..CostConfig::default()
    }
}

/// Trained on this target's training workloads, evaluated on its held-out ones.
fn same_target(mine: &[Sample], a: &EvalArgs, dims: usize) -> Result<Evaluation> {
    let (train, test) = metrics::split_by_workload(mine, a.held_out, a.seed);
    let mut m = CostModel::new(config(a, dims))?;
    m.train(&train)?;
    Ok(m.evaluate(&test)?)
}

/// Trained on the other targets, adapted to this one (0%, 5%, 100%).
fn transfer(
    others: &[Sample],
    target: &str,
    desc: Option<&Vec<f32>>,
    mine: &[Sample],
    a: &EvalArgs,
) -> Result<Option<TransferReport>> {
    let Some(desc) = desc.filter(|_| !others.is_empty()) else {
        return Ok(None);
    };
    let mut base = CostModel::new(config(a, desc.len()))?;
    base.train(others)?;
    let plan = TransferPlan {
        held_out: a.held_out,
        seed: a.seed,
        ..TransferPlan::default()
    };
    Ok(Some(transfer_report(&base, target, desc, mine, &plan)?))
}

fn print(out: &[TargetReport], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(out)?);
        return Ok(());
    }
    let show = |e: &Evaluation| {
        format!(
            "pairwise {:.3}, top-1 {:.3}, top-5 {:.3} ({} held-out workload runs, {} samples)",
            e.pairwise, e.top1, e.top5, e.workloads, e.samples
        )
    };
    println!("cost model ({FEATURE_LEN} features per candidate) on real records");
    for r in out {
        println!(
            "target {} [{}]: {} samples, {} workloads",
            r.summary,
            &r.target[..8.min(r.target.len())],
            r.samples,
            r.workloads
        );
        if let Some(e) = &r.same_target {
            println!("  same target: {}", show(e));
        }
        for p in r.transfer.iter().flat_map(|t| &t.points) {
            let pct = p.fraction * 100.0;
            println!(
                "  transfer, {pct:.0}% of its data ({} samples): {}",
                p.samples,
                show(&p.eval)
            );
        }
        for why in &r.not_evaluated {
            println!("  not evaluated: {why}");
        }
    }
    Ok(())
}
