//! Transpose sinking: element-wise ops commute with a transpose, so a
//! transpose can move past them towards another transpose it cancels with
//! (`transpose-compose` then removes the pair):
//! - `transpose-sink-unary`: `f(transpose(x, p)) == transpose(f(x), p)` for
//!   element-wise `f` (attributes kept, e.g. Clip's bounds);
//! - `transpose-sink-binary`: `transpose(a, p) ∘ transpose(b, p) ==
//!   transpose(a ∘ b, p)` for element-wise `∘` when `a` and `b` have the
//!   same shape (no broadcasting across the permuted axes).

use super::build::Case;
use super::{dims, ops_in, KindSearcher, RuleDef};
use crate::analysis::TGraph;
use crate::lang::{OpNode, TNode};
use crate::rules::{ClassApplier, OnClass};
use egg::{Id, Rewrite};
use kiln_ir::{Attr, Graph, Op};

const UNARY: &[&str] = &[
    "Relu",
    "Neg",
    "Exp",
    "Tanh",
    "Sigmoid",
    "Abs",
    "Sqrt",
    "Erf",
    "Clip",
    "LeakyRelu",
    "Gelu",
];
const BINARY: &[&str] = &["Add", "Sub", "Mul", "Div", "Max", "Min"];

/// Adds `transpose(f(args'), p)` to `eclass` (of `f(args)`) where each arg is
/// `transpose(args'[i], p)`; unions only when the types agree.
fn sink(eg: &mut TGraph, eclass: Id, f: &OpNode, inner: Vec<Id>, t: &OpNode) -> bool {
    let moved = eg.add(TNode::Op(OpNode {
        args: inner,
        ..f.clone()
    }));
    let outer = eg.add(TNode::Op(OpNode {
        args: vec![moved],
        ..t.clone()
    }));
    eg[outer].data.ty.is_some()
        && eg[outer].data.ty == eg[eclass].data.ty
        && eg.union(eclass, outer)
}

struct SinkUnary;

impl ClassApplier for SinkUnary {
    fn apply_class(&self, eg: &mut TGraph, eclass: Id) -> Vec<Id> {
        let mut changed = vec![];
        for f in ops_in(eg, eclass, UNARY) {
            // Only the data input moves (Clip's optional bounds are scalars).
            if f.args.len() != 1 {
                continue;
            }
            for t in ops_in(eg, f.args[0], &["Transpose"]) {
                if sink(eg, eclass, &f, vec![t.args[0]], &t) {
                    changed.push(eclass);
                }
            }
        }
        changed
    }
}

struct SinkBinary;

impl ClassApplier for SinkBinary {
    fn apply_class(&self, eg: &mut TGraph, eclass: Id) -> Vec<Id> {
        let mut changed = vec![];
        for f in ops_in(eg, eclass, BINARY) {
            let [a, b] = f.args[..] else {
                continue;
            };
            for ta in ops_in(eg, a, &["Transpose"]) {
                for tb in ops_in(eg, b, &["Transpose"]) {
                    let same_perm = eg.analysis.attrs[ta.attrs as usize]
                        == eg.analysis.attrs[tb.attrs as usize];
                    let (xa, xb) = (ta.args[0], tb.args[0]);
                    let same_shape = eg[xa].data.ty.is_some() && eg[xa].data.ty == eg[xb].data.ty;
                    if same_perm && same_shape && sink(eg, eclass, &f, vec![xa, xb], &ta) {
                        changed.push(eclass);
                    }
                }
            }
        }
        changed
    }
}

fn perm_for(seed: u64, rank: usize) -> Vec<i64> {
    let mut p: Vec<i64> = (0..rank as i64).collect();
    p.rotate_left(1 + seed as usize % (rank - 1));
    if seed % 2 == 1 {
        p.swap(0, rank - 1);
    }
    p
}

fn unary_cases(seed: u64) -> Vec<Graph> {
    let d = dims(seed, 3 + seed as usize % 2);
    let p = perm_for(seed, d.len());
    ["Relu", "Tanh", "Clip"]
        .iter()
        .map(|&kind| {
            let mut c = Case::new();
            let x = c.input(d.clone());
            let t = c.op(
                Op::new("Transpose").with("perm", Attr::Ints(p.clone())),
                &[x],
            );
            let op = match kind {
                "Clip" => Op::new("Clip")
                    .with("min", Attr::Float(-0.3))
                    .with("max", Attr::Float(0.4)),
                k => Op::new(k),
            };
            let y = c.op(op, &[t]);
            c.finish(y)
        })
        .collect()
}

fn binary_cases(seed: u64) -> Vec<Graph> {
    let d = dims(seed, 3 + seed as usize % 2);
    let p = perm_for(seed, d.len());
    ["Add", "Mul", "Sub"]
        .iter()
        .map(|&kind| {
            let mut c = Case::new();
            let (a, b) = (c.input(d.clone()), c.input(d.clone()));
            let perm = Op::new("Transpose").with("perm", Attr::Ints(p.clone()));
            let (ta, tb) = (c.op(perm.clone(), &[a]), c.op(perm, &[b]));
            let y = c.op0(kind, &[ta, tb]);
            c.finish(y)
        })
        .collect()
}

pub(super) fn rules() -> Vec<RuleDef> {
    vec![
        RuleDef {
            name: "transpose-sink-unary",
            identity: "f(transpose(x, p)) == transpose(f(x), p) for element-wise f",
            rewrite: Rewrite::new(
                "transpose-sink-unary",
                KindSearcher(UNARY),
                OnClass(SinkUnary),
            )
            .expect("rule"),
            cases: Box::new(unary_cases),
            multi: false,
        },
        RuleDef {
            name: "transpose-sink-binary",
            identity:
                "transpose(a, p) op transpose(b, p) == transpose(a op b, p), a and b of one shape",
            rewrite: Rewrite::new(
                "transpose-sink-binary",
                KindSearcher(BINARY),
                OnClass(SinkBinary),
            )
            .expect("rule"),
            cases: Box::new(binary_cases),
            multi: false,
        },
    ]
}
