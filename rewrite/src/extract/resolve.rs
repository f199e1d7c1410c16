//! Acyclic bottom-up choice of one e-node per e-class, in the order of
//! Knuth's generalisation of Dijkstra's algorithm: a node becomes eligible
//! only once every child class is resolved, and the cheapest eligible class
//! is resolved next, its choice then fixed. Every chosen node's children are
//! therefore resolved strictly before its class, so following the choices
//! from any class can never return to it: the extracted graph is acyclic by
//! construction, whatever the costs (even the non-superior costs of
//! multi-output ops, whose nodes carry `1/n` of their subtree).
//!
//! Node costs come in as a table ([`Table`]) so that perturbed and banned
//! variants cost one pass each; ties break on class and node index, so a
//! pass is deterministic.

use crate::analysis::TGraph;
use crate::lang::TNode;
use egg::{Id, Language};
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

/// The e-graph's classes and nodes in a fixed order, with each node's own cost.
pub struct Table {
    /// Canonical class ids, sorted.
    pub classes: Vec<Id>,
    pub index: HashMap<Id, usize>,
    /// Per class: its nodes (children canonical), sorted.
    pub nodes: Vec<Vec<TNode>>,
    /// Per class and node: the node's own cost (infinite when unpriceable).
    pub own: Vec<Vec<f64>>,
    /// Per class: the (class, node) pairs that use it as a child.
    parents: Vec<Vec<(usize, usize)>>,
}

/// A resolved choice: per class, the chosen node index and the tree cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub node: Vec<Option<usize>>,
    pub cost: Vec<f64>,
}

impl Table {
    /// Tabulates `eg`, pricing each node with `own(class, node)`.
    pub fn new(eg: &TGraph, own: impl Fn(Id, &TNode) -> f64) -> Table {
        let mut classes: Vec<Id> = eg.classes().map(|c| eg.find(c.id)).collect();
        classes.sort();
        classes.dedup();
        let index: HashMap<Id, usize> = classes.iter().enumerate().map(|(i, &c)| (c, i)).collect();
        let mut nodes = Vec::with_capacity(classes.len());
        let mut costs = Vec::with_capacity(classes.len());
        let mut parents = vec![Vec::new(); classes.len()];
        for (ci, &c) in classes.iter().enumerate() {
            let mut ns: Vec<TNode> = eg[c]
                .nodes
                .iter()
                .map(|n| n.clone().map_children(|k| eg.find(k)))
                .collect();
            ns.sort();
            ns.dedup();
            for (ni, n) in ns.iter().enumerate() {
                let mut kids: Vec<usize> = n.children().iter().map(|k| index[k]).collect();
                kids.sort_unstable();
                kids.dedup();
                for k in kids {
                    parents[k].push((ci, ni));
                }
            }
            costs.push(ns.iter().map(|n| own(c, n)).collect());
            nodes.push(ns);
        }
        Table {
            classes,
            index,
            nodes,
            own: costs,
            parents,
        }
    }

    /// The tree cost of node `ni` of class `ci` given resolved child costs.
    pub fn node_total(&self, ci: usize, ni: usize, own: f64, cost: &[f64]) -> f64 {
        let n = &self.nodes[ci][ni];
        let sum = n
            .children()
            .iter()
            .fold(own, |s, k| s + cost[self.index[k]]);
        match n {
            TNode::Op(o) if o.outputs > 1 => sum / f64::from(o.outputs),
            _ => sum,
        }
    }

    /// Resolves every reachable class with own costs `own(ci, ni)` (infinite: never chosen).
    pub fn resolve(&self, own: impl Fn(usize, usize) -> f64) -> Choice {
        let n = self.classes.len();
        let mut waiting: Vec<Vec<usize>> = self
            .nodes
            .iter()
            .map(|ns| ns.iter().map(distinct_children).collect())
            .collect();
        let mut choice = Choice {
            node: vec![None; n],
            cost: vec![f64::INFINITY; n],
        };
        let mut heap = BinaryHeap::new();
        let push = |heap: &mut BinaryHeap<_>, ci: usize, ni: usize, cost: &[f64]| {
            let c = self.node_total(ci, ni, own(ci, ni), cost);
            if c.is_finite() {
                heap.push(Reverse((Cost(c), ci, ni)));
            }
        };
        for (ci, counts) in waiting.iter().enumerate() {
            for (ni, &left) in counts.iter().enumerate() {
                if left == 0 {
                    push(&mut heap, ci, ni, &choice.cost);
                }
            }
        }
        while let Some(Reverse((Cost(c), ci, ni))) = heap.pop() {
            if choice.node[ci].is_some() {
                continue;
            }
            choice.node[ci] = Some(ni);
            choice.cost[ci] = c;
            for &(pc, pn) in &self.parents[ci] {
                waiting[pc][pn] -= 1;
                if waiting[pc][pn] == 0 && choice.node[pc].is_none() {
                    push(&mut heap, pc, pn, &choice.cost);
                }
            }
        }
        choice
    }
}

fn distinct_children(n: &TNode) -> usize {
    let mut k: Vec<Id> = n.children().to_vec();
    k.sort();
    k.dedup();
    k.len()
}

/// A totally ordered cost for the heap.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cost(f64);

impl Eq for Cost {}

impl PartialOrd for Cost {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cost {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TensorAnalysis;
    use egg::Symbol;
    use kiln_ir::{DType, TensorType};

    /// `x == Neg(Neg(x))` makes a cycle in the e-graph; with a negative own
    /// cost on `Neg` a cost fixpoint would prefer going round it, the
    /// Dijkstra order cannot.
    #[test]
    fn cyclic_egraph_gives_acyclic_choice() {
        let mut a = TensorAnalysis::new(16);
        let ty = TensorType::new(DType::F32, vec![3]);
        a.inputs.insert(Symbol::from("x"), ty);
        let mut eg = TGraph::new(a);
        let x = eg.add(TNode::Input(Symbol::from("x")));
        let n = eg.add(TNode::op("Neg", vec![x]));
        let nn = eg.add(TNode::op("Neg", vec![n]));
        eg.union(x, nn);
        eg.rebuild();
        let t = Table::new(&eg, |_, node| match node {
            TNode::Op(_) => -50.0,
            _ => 1.0,
        });
        let ch = t.resolve(|c, n| t.own[c][n]);
        for start in 0..t.classes.len() {
            let (mut c, mut steps) = (start, 0);
            while let Some(ni) = ch.node[c] {
                let Some(&k) = t.nodes[c][ni].children().first() else {
                    break;
                };
                c = t.index[&k];
                steps += 1;
                assert!(steps <= t.classes.len(), "cycle from class {start}");
            }
        }
        let xc = t.index[&eg.find(x)];
        assert_eq!(t.nodes[xc][ch.node[xc].unwrap()], TNode::Input("x".into()));
    }
}
