//! Extraction beyond the single greedy optimum: [`top_k`] returns up to `k`
//! distinct graphs for a saturated e-graph, for a caller (the compile
//! pipeline) to measure.
//!
//! 1. The greedy optimum under the cost model.
//! 2. Close calls: for the classes the optimum uses, the alternative node
//!    whose tree cost is nearest the chosen one (another op kind first, then
//!    other children; mere argument swaps are skipped) is forced by banning
//!    the chosen node, one class per candidate.
//! 3. Seeded perturbations: every node's own cost scaled by a factor in
//!    `1 ± spread` from a hash of (seed, attempt, class, node).
//!
//! Every pass chooses bottom-up ([`resolve`]): a node only once all its
//! children's classes are resolved, so no candidate can contain a cycle.
//! Each is converted with [`crate::convert::from_egraph`], checked with
//! [`kiln_ir::verify`], and deduplicated by its structure (ops, attributes,
//! names, and constants by identity). The result is deterministic for a
//! given seed, [`TopK`] and saturation [`crate::Limits`].

mod resolve;

use crate::convert::from_egraph;
use crate::cost::{CostModel, ModelCost, NEW_NODE_PENALTY};
use crate::lang::TNode;
use crate::optimize::{graph_cost, Saturated};
use crate::{Result, RewriteError};
use egg::Language;
use kiln_ir::Graph;
use resolve::{Choice, Table};
use std::collections::HashSet;
use std::fmt::Write;

/// How many candidates [`top_k`] looks for, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct TopK {
    /// Most candidates returned (default 3), the greedy optimum first.
    pub k: usize,
    /// Seed of the cost perturbations.
    pub seed: u64,
    /// Extraction passes tried after the greedy one (default 12).
    pub max_attempts: usize,
    /// Relative spread of perturbed own costs (default 0.25: factors in [0.75, 1.25]).
    pub spread: f64,
}

impl Default for TopK {
    fn default() -> Self {
        TopK {
            k: 3,
            seed: 0x6b69_6c6e,
            max_attempts: 12,
            spread: 0.25,
        }
    }
}

/// One extracted graph.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub graph: Graph,
    /// Its estimated cost (sum over nodes, model microseconds).
    pub cost: f64,
    /// How it was found: `greedy`, `alt:<class op>` or `perturbed:<attempt>`.
    pub origin: String,
}

/// Up to `opts.k` distinct valid graphs equivalent to `original` (which `sat`
/// saturated), the greedy optimum under `model` first.
pub fn top_k<M: CostModel>(
    sat: &Saturated,
    original: &Graph,
    model: &M,
    opts: &TopK,
) -> Result<Vec<Candidate>> {
    let eg = &sat.egraph;
    let mc = ModelCost {
        egraph: eg,
        model,
        original: &sat.original,
    };
    let table = Table::new(eg, |_, n| {
        let own = mc.node_cost(n);
        if sat.original.contains(n) {
            own
        } else {
            own * (1.0 + NEW_NODE_PENALTY)
        }
    });
    let mut out = Found::default();
    let greedy = table.resolve(|c, n| table.own[c][n]);
    let g = emit(&table, sat, original, &greedy)?;
    out.add(g, "greedy".into(), model, opts.k);
    let mut budget = opts.max_attempts;
    for (ci, ni) in close_calls(&table, sat, &greedy) {
        if out.full(opts.k) || budget == 0 {
            break;
        }
        budget -= 1;
        let banned = greedy.node[ci];
        let ch = table.resolve(|c, n| {
            if c == ci && Some(n) == banned {
                f64::INFINITY
            } else {
                table.own[c][n]
            }
        });
        let origin = format!("alt:{}", table.nodes[ci][ni]);
        out.try_add(emit(&table, sat, original, &ch), origin, model, opts.k);
    }
    for attempt in 1..=budget as u64 {
        if out.full(opts.k) {
            break;
        }
        let ch = table.resolve(|c, n| {
            let u = unit(mix(opts.seed, attempt, c as u64, n as u64));
            table.own[c][n] * (1.0 + opts.spread * (2.0 * u - 1.0))
        });
        let origin = format!("perturbed:{attempt}");
        out.try_add(emit(&table, sat, original, &ch), origin, model, opts.k);
    }
    Ok(out.list)
}

/// The candidates so far and their structural keys.
#[derive(Default)]
struct Found {
    list: Vec<Candidate>,
    keys: HashSet<String>,
}

impl Found {
    fn full(&self, k: usize) -> bool {
        self.list.len() >= k
    }

    fn add(&mut self, g: Graph, origin: String, model: &dyn CostModel, k: usize) {
        if self.full(k) || !self.keys.insert(structure_key(&g)) {
            return;
        }
        let cost = graph_cost(&g, model);
        self.list.push(Candidate {
            graph: g,
            cost,
            origin,
        });
    }

    /// Adds an alternative when it was built and verifies; a failure is logged and skipped.
    fn try_add(&mut self, g: Result<Graph>, origin: String, model: &dyn CostModel, k: usize) {
        match g {
            Ok(g) => self.add(g, origin, model, k),
            Err(e) => tracing::warn!(%origin, error = %e, "candidate skipped"),
        }
    }
}

/// Converts a choice to a graph and verifies it.
fn emit(table: &Table, sat: &Saturated, original: &Graph, ch: &Choice) -> Result<Graph> {
    let eg = &sat.egraph;
    for &o in &sat.outputs {
        if ch.node[table.index[&eg.find(o)]].is_none() {
            return Err(RewriteError::Graph(
                "an output has no extractable node".into(),
            ));
        }
    }
    let choose = |id: egg::Id| {
        let ci = table.index[&eg.find(id)];
        // Reached only from resolved classes: a resolved node's children are resolved.
        table.nodes[ci][ch.node[ci].unwrap_or(0)].clone()
    };
    let g = from_egraph(eg, &sat.outputs, &sat.names, original, &choose)?;
    kiln_ir::verify(&g)?;
    Ok(g)
}

/// (class, alternative node) pairs of the classes `ch` reaches from the
/// outputs, nearest in tree cost first; another op kind ranks before the
/// same kind with other children, and argument swaps are left out.
fn close_calls(table: &Table, sat: &Saturated, ch: &Choice) -> Vec<(usize, usize)> {
    let mut calls = Vec::new();
    for ci in reachable(table, sat, ch) {
        let Some(best) = ch.node[ci] else { continue };
        let b = &table.nodes[ci][best];
        let mut alts: Vec<(bool, f64, usize)> = Vec::new();
        for (ni, n) in table.nodes[ci].iter().enumerate() {
            if ni == best || is_swap(b, n) {
                continue;
            }
            let d = table.node_total(ci, ni, table.own[ci][ni], &ch.cost) - ch.cost[ci];
            if d.is_finite() {
                alts.push((b.discriminant() == n.discriminant(), d, ni));
            }
        }
        alts.sort_by(|x, y| (x.0, x.1).partial_cmp(&(y.0, y.1)).unwrap_or(x.2.cmp(&y.2)));
        if let Some(&(same, d, ni)) = alts.first() {
            calls.push((same, d, ci, ni));
        }
    }
    calls.sort_by(|x, y| {
        (x.0, x.1, x.2)
            .partial_cmp(&(y.0, y.1, y.2))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    calls.into_iter().map(|c| (c.2, c.3)).collect()
}

/// The same op with the same children in another order.
fn is_swap(a: &TNode, b: &TNode) -> bool {
    let sorted = |n: &TNode| {
        let mut k = n.children().to_vec();
        k.sort();
        k
    };
    a.discriminant() == b.discriminant() && sorted(a) == sorted(b)
}

/// Classes reachable from the outputs through the chosen nodes, in index order.
fn reachable(table: &Table, sat: &Saturated, ch: &Choice) -> Vec<usize> {
    let mut seen = vec![false; table.classes.len()];
    let mut stack: Vec<usize> = sat
        .outputs
        .iter()
        .map(|o| table.index[&sat.egraph.find(*o)])
        .collect();
    while let Some(ci) = stack.pop() {
        if std::mem::replace(&mut seen[ci], true) {
            continue;
        }
        if let Some(ni) = ch.node[ci] {
            stack.extend(
                table.nodes[ci][ni]
                    .children()
                    .iter()
                    .map(|k| table.index[k]),
            );
        }
    }
    (0..seen.len()).filter(|&i| seen[i]).collect()
}

/// A graph's structure: inputs, constants (name, type, identity), nodes
/// (name, op and attributes, input and output names) and outputs.
pub fn structure_key(g: &Graph) -> String {
    let mut s = String::new();
    for (i, t) in g.consts() {
        let _ = writeln!(
            s,
            "const {} {:p}",
            g.value(i).name,
            std::sync::Arc::as_ptr(t)
        );
    }
    let name = |v: &kiln_ir::ValueId| g.value(*v).name.as_str();
    for n in g.nodes() {
        let ins: Vec<&str> = n.inputs.iter().map(name).collect();
        let outs: Vec<&str> = n.outputs.iter().map(name).collect();
        let _ = writeln!(s, "{} {:?} {ins:?} {outs:?}", n.name, n.op);
    }
    let outs: Vec<&str> = g.outputs().iter().map(name).collect();
    let _ = writeln!(s, "out {outs:?}");
    s
}

/// SplitMix64 over the four words: a deterministic hash, no RNG state.
fn mix(seed: u64, a: u64, b: u64, c: u64) -> u64 {
    let mut x = seed;
    for w in [a, b, c] {
        x = x.wrapping_add(w).wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
    }
    x
}

/// A hash as a number in [0, 1).
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Saturates `g` with every rule under `limits`, then [`top_k`].
pub fn candidates<M: CostModel>(
    g: &Graph,
    limits: &crate::Limits,
    model: &M,
    opts: &TopK,
) -> Result<Vec<Candidate>> {
    let sat = crate::saturate(g, limits, &crate::rules::all());
    top_k(&sat, g, model, opts)
}
