//! Bounded equality saturation and extraction over a graph.
//!
//! Limits are explicit ([`Limits`], documented defaults); the wall-clock
//! limit is a safety net far above what the node and iteration limits allow,
//! so at given limits the result is deterministic. A backoff scheduler keeps
//! explosive rules (commutativity, associativity) from crowding out the rest,
//! and multi-pattern rules search only in the first iterations ([`Limits::multi_iterations`]).

use crate::convert::{from_egraph, to_egraph};
use crate::cost::{CostModel, ModelCost, Roofline};
use crate::lang::TNode;
use crate::rules::{self, RuleDef};
use crate::schedule::Phased;
use crate::{Result, TensorAnalysis};
use egg::{BackoffScheduler, Extractor, Language, Runner, StopReason};
use kiln_ir::Graph;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

/// Search limits.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// E-nodes at which saturation stops (default 20,000).
    pub max_nodes: usize,
    /// Rewrite iterations (default 12).
    pub max_iterations: usize,
    /// Safety net only (default 30 s); the node and iteration limits bind first.
    pub max_time: Duration,
    /// Largest constant (elements) folded in the e-graph (default 4,096).
    pub fold_limit: usize,
    /// Iterations in which multi-pattern rules ([`RuleDef::multi`]) search
    /// (default 2: the merges of the input graph's terms and of what one
    /// round of the other rules exposes; the scheduler module says why).
    pub multi_iterations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_nodes: 20_000,
            max_iterations: 12,
            max_time: Duration::from_secs(30),
            fold_limit: 4096,
            multi_iterations: 2,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Rule name -> times it changed the e-graph.
    pub applied: BTreeMap<String, usize>,
    pub iterations: usize,
    pub egraph_nodes: usize,
    pub egraph_classes: usize,
    pub stop_reason: String,
    pub saturate_ms: f64,
    pub extract_ms: f64,
    /// Estimated cost (model microseconds) before and after.
    pub cost_before: f64,
    pub cost_after: f64,
    /// True when the extracted graph was not cheaper and the input was kept.
    pub kept_original: bool,
    pub ops_before: BTreeMap<String, usize>,
    pub ops_after: BTreeMap<String, usize>,
}

/// Op histogram of a graph.
pub fn histogram(g: &Graph) -> BTreeMap<String, usize> {
    let mut h = BTreeMap::new();
    for n in g.nodes() {
        *h.entry(n.op.kind.clone()).or_default() += 1;
    }
    h
}

/// The estimated cost of a graph under a model (sum over nodes).
pub fn graph_cost(g: &Graph, model: &dyn CostModel) -> f64 {
    g.nodes()
        .iter()
        .map(|n| {
            let ins: Vec<&kiln_ir::TensorType> = n.inputs.iter().map(|&v| &g.value(v).ty).collect();
            n.outputs
                .first()
                .map_or(0.0, |&o| model.op_cost(&n.op, &ins, &g.value(o).ty))
        })
        .sum()
}

/// Saturates `g` with every rule and extracts the cheapest graph under `model`.
pub fn optimize(g: &Graph, limits: &Limits, model: &Roofline) -> Result<(Graph, Report)> {
    optimize_with(g, limits, model, &rules::all())
}

/// An e-graph after saturation, with what is needed to extract from it.
pub struct Saturated {
    pub egraph: crate::TGraph,
    /// Classes of the graph outputs and names of the original values.
    pub outputs: Vec<egg::Id>,
    pub names: std::collections::HashMap<egg::Id, String>,
    /// Rule name -> times it changed the e-graph.
    pub applied: BTreeMap<String, usize>,
    pub iterations: usize,
    pub stop_reason: String,
    pub ms: f64,
    /// The input graph's e-nodes, canonical after saturation.
    pub original: HashSet<TNode>,
}

/// Saturates `g` with `rules` under `limits`.
pub fn saturate(g: &Graph, limits: &Limits, rules: &[RuleDef]) -> Saturated {
    let t0 = Instant::now();
    let conv = to_egraph(g, limits.fold_limit);
    let original: Vec<TNode> = conv
        .egraph
        .classes()
        .flat_map(|c| c.nodes.iter().cloned())
        .collect();
    let rewrites: Vec<_> = rules.iter().map(|r| r.rewrite.clone()).collect();
    let runner: Runner<TNode, TensorAnalysis> = Runner::new(conv.egraph.analysis.clone())
        .with_egraph(conv.egraph)
        .with_node_limit(limits.max_nodes)
        .with_iter_limit(limits.max_iterations)
        .with_time_limit(limits.max_time)
        .with_scheduler(Phased {
            inner: BackoffScheduler::default(),
            multi: rules
                .iter()
                .filter(|r| r.multi)
                .map(|r| r.rewrite.name)
                .collect(),
            until: limits.multi_iterations,
        })
        .run(&rewrites);
    let mut applied = BTreeMap::new();
    for it in &runner.iterations {
        for (rule, n) in &it.applied {
            *applied.entry(rule.to_string()).or_default() += n;
        }
    }
    let outputs = conv
        .outputs
        .iter()
        .map(|&o| runner.egraph.find(o))
        .collect();
    let names = conv
        .names
        .into_iter()
        .map(|(id, n)| (runner.egraph.find(id), n))
        .collect();
    Saturated {
        outputs,
        names,
        applied,
        iterations: runner.iterations.len(),
        stop_reason: match &runner.stop_reason {
            Some(StopReason::Saturated) => "saturated".into(),
            Some(r) => format!("{r:?}"),
            None => "none".into(),
        },
        ms: t0.elapsed().as_secs_f64() * 1e3,
        original: original
            .into_iter()
            .map(|n| n.map_children(|c| runner.egraph.find(c)))
            .collect(),
        egraph: runner.egraph,
    }
}

/// Like [`optimize`] with a chosen rule set (verification runs one rule at a time).
pub fn optimize_with(
    g: &Graph,
    limits: &Limits,
    model: &Roofline,
    rules: &[RuleDef],
) -> Result<(Graph, Report)> {
    let sat = saturate(g, limits, rules);
    let t1 = Instant::now();
    let eg = &sat.egraph;
    let cost = ModelCost {
        egraph: eg,
        model,
        original: &sat.original,
    };
    let extractor = Extractor::new(eg, cost);
    let choose = |id| extractor.find_best_node(id).clone();
    let extracted = from_egraph(eg, &sat.outputs, &sat.names, g, &choose)?;
    // Tree-cost extraction can duplicate shared values; the DAG cost of the
    // result decides, and only a strictly cheaper graph replaces the input.
    let (before, after) = (graph_cost(g, model), graph_cost(&extracted, model));
    let kept_original = after >= before - 1e-9;
    let out = if kept_original { g.clone() } else { extracted };
    let report = Report {
        kept_original,
        applied: sat.applied.clone(),
        iterations: sat.iterations,
        egraph_nodes: eg.total_number_of_nodes(),
        egraph_classes: eg.number_of_classes(),
        stop_reason: sat.stop_reason.clone(),
        saturate_ms: sat.ms,
        extract_ms: t1.elapsed().as_secs_f64() * 1e3,
        cost_before: before,
        cost_after: after.min(before),
        ops_before: histogram(g),
        ops_after: histogram(&out),
    };
    tracing::info!(nodes = report.egraph_nodes, ms = sat.ms, "saturated");
    Ok((out, report))
}
