//! Programs to derive from a graph: every node that lowers to a reduction
//! (a contraction) on its own, and every set of two or more such nodes
//! reading one value (candidates for traversal merging). Graph constants
//! are marked as the programs' constants.

use super::Program;
use crate::Result;
use kiln_ir::expr::{lower, TensorExpr};
use kiln_ir::Graph;
use std::collections::BTreeMap;

/// A labelled program taken from a graph.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// `op name` or `op1 + op2 + ..` for a shared-input group.
    pub label: String,
    pub program: Program,
}

/// `p` with its inputs that are constants of `g` marked as its constants.
pub fn constants(g: &Graph, p: Program) -> Program {
    let names: Vec<String> = p
        .inputs
        .iter()
        .filter(|o| g.find(&o.name).is_some_and(|v| g.const_value(v).is_some()))
        .map(|o| o.name.clone())
        .collect();
    p.with_constants(names)
}

/// The candidates of `g`, in node order (groups after single nodes).
pub fn candidates(g: &Graph) -> Result<Vec<Candidate>> {
    let mut singles: Vec<(String, TensorExpr, Vec<String>)> = vec![];
    for n in g.nodes() {
        if let Some(e) = lower(g, n)? {
            if e.reduce.is_some() {
                let ins = n.inputs.iter().map(|v| g.value(*v).name.clone()).collect();
                singles.push((n.name.clone(), e, ins));
            }
        }
    }
    let mut out: Vec<Candidate> = singles
        .iter()
        .map(|(l, e, _)| Candidate {
            label: l.clone(),
            program: constants(g, Program::single(e.clone())),
        })
        .collect();
    let mut by_input: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (k, (_, _, ins)) in singles.iter().enumerate() {
        if let Some(first) = ins.first() {
            by_input.entry(first.as_str()).or_default().push(k);
        }
    }
    for ks in by_input.values().filter(|ks| ks.len() >= 2) {
        let label = ks
            .iter()
            .map(|&k| singles[k].0.as_str())
            .collect::<Vec<_>>()
            .join(" + ");
        let stages = ks.iter().map(|&k| singles[k].1.clone()).collect();
        out.push(Candidate {
            label,
            program: constants(g, Program::new(stages)),
        });
    }
    Ok(out)
}
