//! `attention`: `softmax(Q·Kᵀ·s + M)·V == Attention(Q, K, V, M, scale=s)` on
//! 4-D `[B, H, S, D]` operands, the IR's `Attention` (opset 23) semantics:
//! - `Kᵀ` is a `Transpose` whose permutation ends by swapping the last two
//!   axes of `K` (K is that transpose's input re-permuted, or the input itself);
//! - the scale is `Div(Q·Kᵀ, c)` (s = 1/c), `Mul(Q·Kᵀ, c)` (s = c) or absent (s = 1);
//! - the softmax is over the last axis;
//! - the mask `M` (optional) is additive, of Q's dtype, does not change the
//!   scores' shape, and its last axis is the key length `T` or it is a scalar:
//!   `Attention` pads a shorter last axis with masked entries where `Add`
//!   would broadcast, so a mask with last axis 1 < T is not accepted.

use crate::analysis::TGraph;
use crate::rules::build::Case;
use crate::rules::consts::scalar;
use crate::rules::dims;
use crate::rules::matching::{add_op, attrs, binary, comm, nodes_of, rank, recognizer};
use crate::rules::RuleDef;
use egg::Id;
use kiln_ir::{Attr, Attrs, Graph, Op};

/// One reading of a class as attention.
struct Found {
    q: Id,
    /// The input of `Kᵀ`'s transpose and the permutation giving K from it.
    k_src: Id,
    k_perm: Vec<i64>,
    v: Id,
    mask: Option<Id>,
    scale: f64,
}

/// `(scores, scale)` for every reading of `w` as scaled scores.
fn scaled(eg: &TGraph, w: Id) -> Vec<(Id, f64)> {
    let mut out = vec![(w, 1.0)];
    for (qk, c) in binary(eg, w, "Div") {
        if let Some(c) = scalar(eg, c).filter(|c| *c != 0.0) {
            out.push((qk, 1.0 / c));
        }
    }
    for (qk, c) in comm(eg, w, "Mul") {
        if let Some(c) = scalar(eg, c) {
            out.push((qk, c));
        }
    }
    out
}

/// `(scores, mask)` for every reading of the softmax input `z`.
fn masked(eg: &TGraph, z: Id) -> Vec<(Id, Option<Id>)> {
    let mut out = vec![(z, None)];
    let (Some(zt), Some(t)) = (
        &eg[z].data.ty,
        eg[z].data.ty.as_ref().and_then(|t| t.shape.last()),
    ) else {
        return out;
    };
    for (w, m) in comm(eg, z, "Add") {
        let ok = eg[w].data.ty.as_ref() == Some(zt)
            && eg[m].data.ty.as_ref().is_some_and(|mt| {
                mt.dtype == zt.dtype && (mt.rank() == 0 || mt.shape.last() == Some(t))
            });
        if ok {
            out.push((w, Some(m)));
        }
    }
    out
}

/// `(K's source, permutation)` for every `Kᵀ` transpose node of `kt`.
fn keys(eg: &TGraph, kt: Id) -> Vec<(Id, Vec<i64>)> {
    nodes_of(eg, kt, "Transpose")
        .into_iter()
        .filter_map(|o| match attrs(eg, &o).get("perm") {
            Some(Attr::Ints(p)) if p.len() == 4 => {
                let mut p = p.clone();
                p.swap(2, 3);
                Some((o.args[0], p))
            }
            _ => None,
        })
        .collect()
}

fn find(eg: &TGraph, c: Id) -> Vec<Found> {
    let mut out = Vec::new();
    for (p, v) in binary(eg, c, "MatMul") {
        for sm in nodes_of(eg, p, "Softmax") {
            let axis = attrs(eg, &sm).int_or("axis", -1).unwrap_or(0);
            if rank(eg, v) != Some(4) || !(axis == -1 || axis == 3) {
                continue;
            }
            for (w, mask) in masked(eg, sm.args[0]) {
                for (qk, scale) in scaled(eg, w) {
                    for (q, kt) in binary(eg, qk, "MatMul") {
                        for (k_src, k_perm) in keys(eg, kt) {
                            out.push(Found {
                                q,
                                k_src,
                                k_perm,
                                v,
                                mask,
                                scale,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

fn apply(eg: &mut TGraph, c: Id) -> Vec<Id> {
    let found = find(eg, c);
    found
        .into_iter()
        .map(|f| {
            let k = if f.k_perm == [0, 1, 2, 3] {
                f.k_src
            } else {
                let a = Attrs::new().with("perm", Attr::Ints(f.k_perm));
                add_op(eg, "Transpose", &a, vec![f.k_src])
            };
            let mut args = vec![f.q, k, f.v];
            args.extend(f.mask);
            let a = Attrs::new().with("scale", Attr::Float(f.scale));
            add_op(eg, "Attention", &a, args)
        })
        .collect()
}

/// `[B, H, S, D]` attention with K given `[B, S, H, D]` (the exporter's
/// `Transpose(perm=[0,2,3,1])`) or `[B, H, S, D]`, a `[B,1,1,T]` mask, a scale.
fn case(d: &[usize], form: usize) -> Graph {
    let (b_, h, s, t, dh) = (d[0], d[1], d[2], d[3], d[4]);
    let mut b = Case::new();
    let q = b.input(vec![b_, h, s, dh]);
    let (k, perm) = if form == 0 {
        (b.input(vec![b_, t, h, dh]), vec![0, 2, 3, 1])
    } else {
        (b.input(vec![b_, h, t, dh]), vec![0, 1, 3, 2])
    };
    let v = b.input(vec![b_, h, t, dh + 1]);
    let kt = b.op(Op::new("Transpose").with("perm", Attr::Ints(perm)), &[k]);
    let qk = b.op0("MatMul", &[q, kt]);
    let w = match form {
        0 => {
            let c = b.scalar((dh as f32).sqrt());
            b.op0("Div", &[qk, c])
        }
        1 => {
            let c = b.scalar(0.37);
            b.op0("Mul", &[c, qk])
        }
        _ => qk,
    };
    let z = if form == 2 {
        w
    } else {
        let m = b.input(vec![b_, 1, 1, t]);
        b.op0("Add", &[w, m])
    };
    let p = b.op(Op::new("Softmax").with("axis", Attr::Int(-1)), &[z]);
    let y = b.op0("MatMul", &[p, v]);
    b.finish(y)
}

fn cases(seed: u64) -> Vec<Graph> {
    let d = dims(seed, 5);
    (0..3).map(|form| case(&d, form)).collect()
}

pub(super) fn rule() -> RuleDef {
    recognizer(
        "attention",
        "softmax(Q K^T s + M) V == Attention(Q, K, V, M, scale=s)",
        &["MatMul"],
        apply,
        cases,
    )
}
