//! Measured selection after rewriting: the original graph and the rewrite
//! stage's top-k candidates ([`kiln_rewrite::top_k`]) are each compiled and
//! timed on the same random non-zero inputs, and the fastest is kept. The
//! original is always measured, so rewriting never keeps a graph that was
//! slower in this measurement.

use anyhow::Result;
use kiln_ir::Graph;
use kiln_runtime::{CompileOptions, Executable};
use serde::Serialize;
use std::time::Instant;

/// Candidates the rewrite stage extracts besides the original (`--candidates`).
pub const DEFAULT_CANDIDATES: usize = 3;

/// How each candidate is timed.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasureOptions {
    /// Untimed runs before timing (default 1).
    pub warmup: usize,
    /// Timed runs; their median decides (default 5).
    pub runs: usize,
}

impl Default for MeasureOptions {
    fn default() -> Self {
        MeasureOptions { warmup: 1, runs: 5 }
    }
}

/// One measured candidate.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    /// `original`, `greedy`, `alt:<op>` or `perturbed:<n>`.
    pub origin: String,
    /// Estimated cost under the rewrite stage's model (microseconds).
    pub estimated_us: f64,
    /// Median measured latency (milliseconds).
    pub median_ms: f64,
    pub nodes: usize,
}

/// What the selection did.
#[derive(Clone, Debug, Serialize)]
pub struct Selection {
    pub candidates: Vec<Measured>,
    /// Index of the kept candidate in `candidates`.
    pub chosen: usize,
    pub rewrite_ms: f64,
    /// Saturation, extraction, compiling and measuring every candidate.
    pub total_ms: f64,
}

/// Rewrites `g`, measures the original and up to `k` candidates, and
/// returns the fastest compiled, with what was measured.
pub fn select(
    g: &Graph,
    opts: &CompileOptions,
    k: usize,
    measure: &MeasureOptions,
) -> Result<(Executable, Selection)> {
    let t0 = Instant::now();
    let model = kiln_rewrite::Roofline::default();
    let top = kiln_rewrite::TopK {
        k,
        ..Default::default()
    };
    let cands = kiln_rewrite::candidates(g, &Default::default(), &model, &top)?;
    let rewrite_ms = t0.elapsed().as_secs_f64() * 1e3;
    let (inputs, _) = super::bench::feeds(g, Default::default())?;
    let mut graphs = vec![(
        "original".to_string(),
        kiln_rewrite::graph_cost(g, &model),
        g,
    )];
    graphs.extend(cands.iter().map(|c| (c.origin.clone(), c.cost, &c.graph)));
    let mut best: Option<(Executable, f64)> = None;
    let (mut measured, mut chosen) = (Vec::new(), 0);
    for (origin, estimated_us, graph) in graphs {
        let exe = kiln_runtime::compile(graph, opts)?;
        let median_ms = time(&exe, &inputs, measure)?;
        if best.as_ref().is_none_or(|b| median_ms < b.1) {
            chosen = measured.len();
            best = Some((exe, median_ms));
        }
        measured.push(Measured {
            origin,
            estimated_us,
            median_ms,
            nodes: graph.nodes().len(),
        });
    }
    let Some((exe, _)) = best else {
        anyhow::bail!("no candidate was measured");
    };
    let sel = Selection {
        candidates: measured,
        chosen,
        rewrite_ms,
        total_ms: t0.elapsed().as_secs_f64() * 1e3,
    };
    tracing::info!(chosen = %sel.candidates[chosen].origin, ms = sel.total_ms, "selected");
    Ok((exe, sel))
}

/// Median latency in milliseconds.
fn time(
    exe: &Executable,
    inputs: &std::collections::HashMap<String, kiln_ir::Tensor>,
    m: &MeasureOptions,
) -> Result<f64> {
    for _ in 0..m.warmup {
        exe.run(inputs)?;
    }
    let mut t = Vec::with_capacity(m.runs.max(1));
    for _ in 0..m.runs.max(1) {
        let s = Instant::now();
        exe.run(inputs)?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}
