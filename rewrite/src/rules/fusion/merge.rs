//! `merge-parallel-linear`: `op(x, W1[, b1]), ..., op(x, Wn[, bn]) ==
//! Split(op(x, concat(W1..Wn)[, concat(b1..bn)]))` for ops reading one input
//! `x` with constant f32 weights, one attribute set and weight shapes equal
//! but along the output axis:
//! - `MatMul(x, W)`, `W` `[K, N]`: concat along N, split the last axis; also
//!   `MatMul(x, W) + b` with `b` `[N]` (merged into one matmul with its bias);
//! - `Gemm(x, W[, C])`: concat along N (axis 1, or 0 with `transB`), `C`
//!   `[N]` in all or none, split axis 1;
//! - `Conv(x, W[, B])` with `group = 1`: concat along output channels, split axis 1.
//!
//! It is a multi-pattern rule (it matches several independent terms), so it
//! runs only in the first [`crate::Limits::multi_iterations`] iterations.
//! The weights are concatenated here, into one new constant (a `Concat` of
//! large constants would stay an op: folding stops at `fold_limit`).

use crate::analysis::TGraph;
use crate::lang::{OpNode, TNode};
use crate::rules::build::Case;
use crate::rules::consts::const_of;
use crate::rules::matching::{attrs, comm, nodes_of};
use crate::rules::{dims, ops_in, KindSearcher, RuleDef};
use crate::rules::{ClassApplier, OnClass};
use egg::{Id, Rewrite, Symbol};
use kiln_ir::{Attr, Attrs, DType, Graph, Op, Tensor};
use std::sync::Arc;

/// At most this many ops merge into one.
const MAX_MERGE: usize = 8;

/// One linear op with constant parameters, as a member of a merge.
#[derive(Clone)]
struct Unit {
    class: Id,
    op: OpNode,
    x: Id,
    w: Arc<Tensor>,
    b: Option<Arc<Tensor>>,
    /// `MatMul + b` (the bias is an `Add` after the matmul).
    bias_add: bool,
}

impl Unit {
    /// What members of one merge share.
    fn key(&self) -> (Symbol, u32, Id, bool, bool) {
        (
            self.op.kind,
            self.op.attrs,
            self.x,
            self.bias_add,
            self.b.is_some(),
        )
    }

    /// The weights' concat axis and the output's split axis.
    fn axes(&self, eg: &TGraph) -> (i64, i64) {
        match self.op.kind.as_str() {
            "MatMul" => (1, -1),
            "Gemm" if attrs(eg, &self.op).int_or("transB", 0).unwrap_or(0) != 0 => (0, 1),
            "Gemm" => (1, 1),
            _ => (0, 1),
        }
    }
}

fn f32_const(eg: &TGraph, c: Id) -> Option<Arc<Tensor>> {
    const_of(eg, c).filter(|t| t.dtype() == DType::F32)
}

/// The linear op of `o` in class `class`, if its parameters are constant.
fn unit(eg: &TGraph, class: Id, o: &OpNode) -> Option<Unit> {
    let w = f32_const(eg, o.args[1])?;
    let b = match o.args.get(2) {
        Some(&c) => Some(f32_const(eg, c)?).filter(|b| b.rank() == 1),
        None => None,
    };
    if o.args.len() == 3 && b.is_none() {
        return None;
    }
    let ok = match o.kind.as_str() {
        "MatMul" => w.rank() == 2,
        "Gemm" => w.rank() == 2,
        _ => w.rank() >= 3 && attrs(eg, o).int_or("group", 1).unwrap_or(0) == 1,
    };
    let f32_x = eg[o.args[0]]
        .data
        .ty
        .as_ref()
        .is_some_and(|t| t.dtype == DType::F32);
    (ok && f32_x).then(|| Unit {
        class,
        op: o.clone(),
        x: o.args[0],
        w,
        b,
        bias_add: false,
    })
}

/// The `MatMul + b` reading of `class`: `Add(m, b)` with `m` a mergeable
/// matmul and `b` a constant `[N]`; returns `m` and the unit.
fn bias_unit(eg: &TGraph, class: Id) -> Option<(Id, Unit)> {
    for (m, b) in comm(eg, class, "Add") {
        let Some(bt) = f32_const(eg, b).filter(|t| t.rank() == 1) else {
            continue;
        };
        let same = eg[m].data.ty == eg[class].data.ty;
        let mm = nodes_of(eg, m, "MatMul")
            .into_iter()
            .find_map(|o| unit(eg, class, &o));
        if let Some(mut u) = mm.filter(|u| same && u.w.shape()[1] == bt.len()) {
            u.b = Some(bt);
            u.bias_add = true;
            return Some((m, u));
        }
    }
    None
}

/// True when a reader of `class` adds a bias to it: such a matmul merges as
/// `MatMul + b` only, so extraction never mixes two merges of one group.
fn has_bias_reader(eg: &TGraph, class: Id) -> bool {
    eg[class]
        .parents()
        .any(|p| bias_unit(eg, eg.find(p)).is_some_and(|(m, _)| m == class))
}

/// The units a class is (its first reading of each form).
fn units(eg: &TGraph, class: Id) -> Vec<Unit> {
    let mut out = Vec::new();
    for kind in ["MatMul", "Gemm", "Conv"] {
        if let Some(u) = nodes_of(eg, class, kind)
            .iter()
            .find_map(|o| unit(eg, class, o))
        {
            out.push(u);
        }
    }
    if out.iter().any(|u| u.op.kind.as_str() == "MatMul") && has_bias_reader(eg, class) {
        out.retain(|u| u.op.kind.as_str() != "MatMul");
    }
    out.extend(bias_unit(eg, class).map(|(_, u)| u));
    out
}

/// The members of `u`'s merge: units of the same key in the classes reading
/// `x` (or reading those, for `MatMul + b`), by class id.
fn group(eg: &TGraph, u: &Unit) -> Vec<Unit> {
    let mut classes: Vec<Id> = eg[u.x].parents().map(|p| eg.find(p)).collect();
    if u.bias_add {
        let up: Vec<Id> = classes
            .iter()
            .flat_map(|&c| eg[c].parents().map(|p| eg.find(p)))
            .collect();
        classes = up;
    }
    classes.sort();
    classes.dedup();
    let (axis, _) = u.axes(eg);
    let fits = |v: &Unit| {
        let (a, b) = (u.w.shape(), v.w.shape());
        v.key() == u.key()
            && a.len() == b.len()
            && (0..a.len()).all(|i| i as i64 == axis || a[i] == b[i])
    };
    classes
        .into_iter()
        .filter_map(|c| units(eg, c).into_iter().find(|v| fits(v)))
        .take(MAX_MERGE)
        .collect()
}

fn concat(parts: &[&Tensor], axis: i64) -> Option<Tensor> {
    let op = Op::new("Concat").with("axis", Attr::Int(axis));
    let out = op.def().ok()?.eval(&op.attrs, parts, 1).ok()?;
    out.into_iter().next()
}

/// Adds the merged op and its split; returns the split outputs.
fn merge(eg: &mut TGraph, members: &[Unit]) -> Option<Vec<Id>> {
    let first = &members[0];
    let (w_axis, split_axis) = first.axes(eg);
    let ws: Vec<&Tensor> = members.iter().map(|m| m.w.as_ref()).collect();
    let w = concat(&ws, w_axis)?;
    let sizes: Vec<i64> = ws
        .iter()
        .map(|t| t.shape()[w_axis as usize] as i64)
        .collect();
    let b = match &first.b {
        Some(_) => {
            let bs: Vec<&Tensor> = members.iter().filter_map(|m| m.b.as_deref()).collect();
            Some(concat(&bs, 0)?)
        }
        None => None,
    };
    let add_const = |eg: &mut TGraph, t: Tensor| {
        let c = eg.analysis.add_const(Arc::new(t));
        eg.add(TNode::Const(c))
    };
    let wi = add_const(eg, w);
    let bi = b.map(|b| add_const(eg, b));
    let mut args = vec![first.x, wi];
    if !first.bias_add {
        args.extend(bi);
    }
    let mut merged = eg.add(TNode::Op(OpNode {
        args,
        ..first.op.clone()
    }));
    if let (true, Some(bi)) = (first.bias_add, bi) {
        merged = eg.add(TNode::op("Add", vec![merged, bi]));
    }
    let a = Attrs::new()
        .with("axis", Attr::Int(split_axis))
        .with("split", Attr::Ints(sizes));
    let attrs = eg.analysis.intern_attrs(&a);
    let n = members.len() as u8;
    let outs = (0..n)
        .map(|output| {
            eg.add(TNode::Op(OpNode {
                kind: Symbol::from("Split"),
                attrs,
                output,
                outputs: n,
                args: vec![merged],
            }))
        })
        .collect();
    Some(outs)
}

struct MergeParallel;

impl ClassApplier for MergeParallel {
    fn apply_class(&self, eg: &mut TGraph, eclass: Id) -> Vec<Id> {
        let mut changed = vec![];
        for u in units(eg, eclass) {
            let members = group(eg, &u);
            // The merge is made once, from its first member, and not again.
            let done = members
                .iter()
                .any(|m| !ops_in(eg, m.class, &["Split"]).is_empty());
            if members.len() < 2 || members[0].class != eg.find(eclass) || done {
                continue;
            }
            let Some(outs) = merge(eg, &members) else {
                continue;
            };
            for (m, id) in members.iter().zip(outs) {
                let same = eg[id].data.ty.is_some() && eg[id].data.ty == eg[m.class].data.ty;
                if same && eg.union(m.class, id) {
                    changed.push(m.class);
                }
            }
        }
        changed
    }
}

/// Three parallel ops on one input, the form picked by `form`.
fn case(d: &[usize], form: usize) -> Graph {
    let mut b = Case::new();
    let (m, k) = (d[0], d[1]);
    let x = match form {
        0 | 1 => b.input(vec![d[3], m, k]),
        2 => b.input(vec![m, k]),
        _ => b.input(vec![1, k, m + 2, m + 2]),
    };
    let outs: Vec<_> = (0..3)
        .map(|i| {
            let n = d[2] + i;
            match form {
                0 | 1 => {
                    let w = b.weights(vec![k, n], i as u64);
                    let y = b.op0("MatMul", &[x, w]);
                    if form == 1 {
                        let bias = b.weights(vec![n], 10 + i as u64);
                        b.op0("Add", &[y, bias])
                    } else {
                        y
                    }
                }
                2 => {
                    let w = b.weights(vec![n, k], i as u64);
                    let c = b.weights(vec![n], 10 + i as u64);
                    let op = Op::new("Gemm").with("transB", Attr::Int(1));
                    b.op(op, &[x, w, c])
                }
                _ => {
                    let w = b.weights(vec![n, k, 3, 3], i as u64);
                    let op = Op::new("Conv").with("pads", Attr::Ints(vec![1, 1, 1, 1]));
                    b.op(op, &[x, w])
                }
            }
        })
        .collect();
    // Sum the three (sliced to one width) so the case has one output.
    let s = b.op0("ReduceSum", &[outs[0]]);
    let t = b.op0("ReduceSum", &[outs[1]]);
    let u = b.op0("ReduceSum", &[outs[2]]);
    let st = b.op0("Add", &[s, t]);
    let y = b.op0("Add", &[st, u]);
    b.finish(y)
}

fn cases(seed: u64) -> Vec<Graph> {
    let d = dims(seed, 4);
    (0..4).map(|form| case(&d, form)).collect()
}

pub(super) fn rule() -> RuleDef {
    RuleDef {
        name: "merge-parallel-linear",
        identity: "op(x, W1), .., op(x, Wn) == Split(op(x, concat(W1..Wn)))",
        rewrite: Rewrite::new(
            "merge-parallel-linear",
            KindSearcher(&["MatMul", "Gemm", "Conv", "Add"]),
            OnClass(MergeParallel),
        )
        .expect("rule"),
        cases: Box::new(cases),
        multi: true,
    }
}
