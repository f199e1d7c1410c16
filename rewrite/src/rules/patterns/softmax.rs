//! Softmax over one axis `a` (ReduceMax/ReduceSum with `axes=[a]`, keepdims):
//! - `softmax-stable`: `e = exp(x - max_a x)`, `e / sum_a e == Softmax(x, a)`,
//!   an exact identity (the shift cancels in the quotient);
//! - `softmax-exp-sum`: `exp(x) / sum_a exp(x) == Softmax(x, a)`: equal in
//!   exact arithmetic, and numerically equal only while `exp(x)` neither
//!   overflows nor underflows in the value's dtype (|x| below about 88 in
//!   f32); where it overflows the decomposed form gives NaN and `Softmax`
//!   the limit, so the rewrite only removes NaNs.

use crate::analysis::TGraph;
use crate::rules::build::Case;
use crate::rules::dims;
use crate::rules::matching::{add_op, binary, nodes_of, recognizer, reduced_axis, unary};
use crate::rules::RuleDef;
use egg::Id;
use kiln_ir::{Attr, Attrs, Graph, Op};

/// `(e, axis)` for every `c == e / sum_axis(e)`.
fn quotients(eg: &TGraph, c: Id) -> Vec<(Id, i64)> {
    let mut out = Vec::new();
    for (e, s) in binary(eg, c, "Div") {
        for o in nodes_of(eg, s, "ReduceSum") {
            if let (true, Some(a)) = (o.args == [e], reduced_axis(eg, &o)) {
                out.push((e, a));
            }
        }
    }
    out
}

/// True when `m` is `max_axis(x)` (keepdims).
fn max_of(eg: &TGraph, m: Id, x: Id, axis: i64) -> bool {
    nodes_of(eg, m, "ReduceMax")
        .iter()
        .any(|o| o.args == [x] && reduced_axis(eg, o) == Some(axis))
}

fn softmax(eg: &mut TGraph, x: Id, axis: i64) -> Id {
    add_op(
        eg,
        "Softmax",
        &Attrs::new().with("axis", Attr::Int(axis)),
        vec![x],
    )
}

fn apply_stable(eg: &mut TGraph, c: Id) -> Vec<Id> {
    let mut found = Vec::new();
    for (e, axis) in quotients(eg, c) {
        for y in unary(eg, e, "Exp") {
            for (x, m) in binary(eg, y, "Sub") {
                if max_of(eg, m, x, axis) {
                    found.push((x, axis));
                }
            }
        }
    }
    found.into_iter().map(|(x, a)| softmax(eg, x, a)).collect()
}

fn apply_exp_sum(eg: &mut TGraph, c: Id) -> Vec<Id> {
    let found: Vec<(Id, i64)> = quotients(eg, c)
        .into_iter()
        .flat_map(|(e, a)| unary(eg, e, "Exp").into_iter().map(move |x| (x, a)))
        .collect();
    found.into_iter().map(|(x, a)| softmax(eg, x, a)).collect()
}

fn reduce(kind: &str, axis: i64) -> Op {
    Op::new(kind)
        .with("axes", Attr::Ints(vec![axis]))
        .with("keepdims", Attr::Int(1))
}

fn cases(seed: u64, stable: bool) -> Vec<Graph> {
    let d = dims(seed, 3);
    [-1i64, 1]
        .iter()
        .map(|&axis| {
            let mut b = Case::new();
            let x = b.input(d.clone());
            let y = if stable {
                let m = b.op(reduce("ReduceMax", axis), &[x]);
                b.op0("Sub", &[x, m])
            } else {
                x
            };
            let e = b.op0("Exp", &[y]);
            let s = b.op(reduce("ReduceSum", axis), &[e]);
            let z = b.op0("Div", &[e, s]);
            b.finish(z)
        })
        .collect()
}

pub(super) fn rules() -> Vec<RuleDef> {
    vec![
        recognizer(
            "softmax-stable",
            "exp(x - max_a x) / sum_a exp(x - max_a x) == Softmax(x, a)",
            &["Div"],
            apply_stable,
            |s| cases(s, true),
        ),
        recognizer(
            "softmax-exp-sum",
            "exp(x) / sum_a exp(x) == Softmax(x, a) (numerically: while exp(x) does not overflow)",
            &["Div"],
            apply_exp_sum,
            |s| cases(s, false),
        ),
    ]
}
