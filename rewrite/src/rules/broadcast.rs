//! Broadcast rules: an element-wise binary op broadcasts its operands
//! itself, so an explicit `Expand` of an operand is redundant when the op's
//! result keeps its type without it:
//! - `expand-into-broadcast`: `op(expand(a, s), b) == op(a, b)` (either
//!   operand), when `broadcast(a, b)` has the shape of `broadcast(expand(a, s), b)`
//!   (checked on the inferred types before the union).

use super::build::Case;
use super::{dims, ops_in, KindSearcher, RuleDef};
use crate::analysis::TGraph;
use crate::lang::{OpNode, TNode};
use crate::rules::{ClassApplier, OnClass};
use egg::{Id, Rewrite};
use kiln_ir::{Attr, Graph, Op};

const BINARY: &[&str] = &["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Where"];

struct DropExpand;

impl ClassApplier for DropExpand {
    fn apply_class(&self, eg: &mut TGraph, eclass: Id) -> Vec<Id> {
        let mut changed = vec![];
        for f in ops_in(eg, eclass, BINARY) {
            for (i, &arg) in f.args.iter().enumerate() {
                for e in ops_in(eg, arg, &["Expand"]) {
                    let mut args = f.args.clone();
                    args[i] = e.args[0];
                    let id = eg.add(TNode::Op(OpNode { args, ..f.clone() }));
                    let same = eg[id].data.ty.is_some() && eg[id].data.ty == eg[eclass].data.ty;
                    if same && eg.union(eclass, id) {
                        changed.push(eclass);
                    }
                }
            }
        }
        changed
    }
}

fn cases(seed: u64) -> Vec<Graph> {
    let d = dims(seed, 3);
    let mut out = Vec::new();
    for (kind, left) in [("Add", true), ("Mul", false), ("Sub", true)] {
        let mut c = Case::new();
        // a: [d0, 1, d2] expanded to [d0, d1, d2]; b: [d0, d1, d2].
        let a = c.input(vec![d[0], 1, d[2]]);
        let b = c.input(d.clone());
        let shape = Attr::Ints(d.iter().map(|&v| v as i64).collect());
        let ex = c.op(Op::new("Expand").with("shape", shape), &[a]);
        let args = if left { [ex, b] } else { [b, ex] };
        let y = c.op0(kind, &args);
        out.push(c.finish(y));
    }
    out
}

pub(super) fn rules() -> Vec<RuleDef> {
    vec![RuleDef {
        name: "expand-into-broadcast",
        identity:
            "op(expand(a, s), b) == op(a, b) for element-wise op, when the result type is kept",
        rewrite: Rewrite::new(
            "expand-into-broadcast",
            KindSearcher(BINARY),
            OnClass(DropExpand),
        )
        .expect("rule"),
        cases: Box::new(cases),
        multi: false,
    }]
}
