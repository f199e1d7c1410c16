//! Layout rules on ops whose attributes matter, so they search e-nodes
//! directly rather than through patterns:
//! - `transpose-compose`: `transpose(transpose(x, q), p) == transpose(x, q∘p)`,
//!   and `== x` when the composition is the identity;
//! - `view-compose`: a reshape-like op (Reshape, Flatten, Squeeze, Unsqueeze)
//!   of another is one reshape of the inner input to the outer shape, and
//!   `== x` when that shape is `x`'s own.

use super::{dims, f32s, ops_in, KindSearcher, RuleDef};
use crate::analysis::TGraph;
use crate::lang::{OpNode, TNode};
use crate::rules::{ClassApplier, OnClass};
use egg::{Id, Rewrite, Symbol};
use kiln_ir::{Attr, Attrs, Graph, Op};

fn perm(eg: &TGraph, o: &OpNode, rank: usize) -> Vec<usize> {
    match eg.analysis.attrs[o.attrs as usize].get("perm") {
        Some(Attr::Ints(p)) => p.iter().map(|&v| v as usize).collect(),
        _ => (0..rank).rev().collect(),
    }
}

struct ComposeTransposes;

impl ClassApplier for ComposeTransposes {
    fn apply_class(&self, eg: &mut TGraph, eclass: Id) -> Vec<Id> {
        let mut changed = vec![];
        for outer in ops_in(eg, eclass, &["Transpose"]) {
            let Some(rank) = eg[eclass].data.ty.as_ref().map(|t| t.rank()) else {
                continue;
            };
            let p = perm(eg, &outer, rank);
            for inner in ops_in(eg, outer.args[0], &["Transpose"]) {
                let q = perm(eg, &inner, rank);
                let r: Vec<usize> = p.iter().map(|&i| q[i]).collect();
                let x = inner.args[0];
                let id = if r.iter().enumerate().all(|(i, &v)| i == v) {
                    x
                } else {
                    let ints = Attr::Ints(r.iter().map(|&v| v as i64).collect());
                    let attrs = eg.analysis.intern_attrs(&Attrs::new().with("perm", ints));
                    eg.add(TNode::Op(OpNode {
                        attrs,
                        args: vec![x],
                        ..outer.clone()
                    }))
                };
                if eg[id].data.ty == eg[eclass].data.ty && eg.union(eclass, id) {
                    changed.push(eclass);
                }
            }
        }
        changed
    }
}

const VIEWS: &[&str] = &["Reshape", "Flatten", "Squeeze", "Unsqueeze"];

struct ComposeViews;

impl ClassApplier for ComposeViews {
    fn apply_class(&self, eg: &mut TGraph, eclass: Id) -> Vec<Id> {
        let Some(target) = eg[eclass].data.ty.clone() else {
            return vec![];
        };
        let mut changed = vec![];
        for outer in ops_in(eg, eclass, VIEWS) {
            for inner in ops_in(eg, outer.args[0], VIEWS) {
                let x = inner.args[0];
                let id = if eg[x].data.ty.as_ref() == Some(&target) {
                    x
                } else {
                    let shape = Attr::Ints(target.shape.iter().map(|&d| d as i64).collect());
                    let a = Attrs::new()
                        .with("shape", shape)
                        .with("allowzero", Attr::Int(1));
                    let attrs = eg.analysis.intern_attrs(&a);
                    let kind = Symbol::from("Reshape");
                    let node = OpNode {
                        kind,
                        attrs,
                        output: 0,
                        outputs: 1,
                        args: vec![x],
                    };
                    eg.add(TNode::Op(node))
                };
                if eg[id].data.ty.as_ref() == Some(&target) && eg.union(eclass, id) {
                    changed.push(eclass);
                }
            }
        }
        changed
    }
}

fn transpose_cases(seed: u64) -> Vec<Graph> {
    let d = dims(seed, 4);
    let perms: [(&[i64], &[i64]); 3] = [
        (&[1, 0, 2, 3], &[1, 0, 2, 3]),
        (&[0, 2, 3, 1], &[0, 3, 1, 2]),
        (&[3, 1, 0, 2], &[2, 0, 3, 1]),
    ];
    perms
        .iter()
        .map(|(q, p)| {
            let mut g = Graph::new("case");
            let x = g.add_input("x", f32s(d.clone())).expect("input");
            let t = Op::new("Transpose").with("perm", Attr::Ints(q.to_vec()));
            let y = g.add_node("t1", t, &[x], &["y"]).expect("t1")[0];
            let t = Op::new("Transpose").with("perm", Attr::Ints(p.to_vec()));
            let z = g.add_node("t2", t, &[y], &["z"]).expect("t2");
            g.set_outputs(z);
            g
        })
        .collect()
}

fn view_cases(seed: u64) -> Vec<Graph> {
    let d = dims(seed, 3);
    let n = d.iter().product::<usize>() as i64;
    let mut out = Vec::new();
    for back in [false, true] {
        let mut g = Graph::new("case");
        let x = g.add_input("x", f32s(d.clone())).expect("input");
        let r = Op::new("Reshape").with("shape", Attr::Ints(vec![n]));
        let y = g.add_node("r1", r, &[x], &["y"]).expect("r1")[0];
        let shape: Vec<i64> = if back {
            d.iter().map(|&v| v as i64).collect()
        } else {
            vec![d[0] as i64, -1]
        };
        let r = Op::new("Reshape").with("shape", Attr::Ints(shape));
        let z = g.add_node("r2", r, &[y], &["z"]).expect("r2")[0];
        let u = Op::new("Unsqueeze").with("axes", Attr::Ints(vec![0]));
        let w = g.add_node("u", u, &[z], &["w"]).expect("u");
        g.set_outputs(w);
        out.push(g);
    }
    out
}

pub(super) fn rules() -> Vec<RuleDef> {
    vec![
        RuleDef {
            name: "transpose-compose",
            identity: "transpose(transpose(x, q), p) == transpose(x, q∘p), == x if q∘p = id",
            rewrite: Rewrite::new(
                "transpose-compose",
                KindSearcher(&["Transpose"]),
                OnClass(ComposeTransposes),
            )
            .expect("rule"),
            cases: Box::new(transpose_cases),
            multi: false,
        },
        RuleDef {
            name: "view-compose",
            identity: "view(view(x)) == reshape(x, outer shape), == x if that is x's shape",
            rewrite: Rewrite::new("view-compose", KindSearcher(VIEWS), OnClass(ComposeViews))
                .expect("rule"),
            cases: Box::new(view_cases),
            multi: false,
        },
    ]
}
