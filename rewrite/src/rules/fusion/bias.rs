//! A bias `Add` becomes the linear op's own bias operand (one kernel, and
//! the runtime's GEMM/conv epilogue adds it for free):
//! - `matmul-add-gemm`: `MatMul(A, B) + C == Gemm(A, B, C)` for 2-D `A`, `B`
//!   and `C` broadcasting to `[M, N]` (Gemm's type inference refuses the rest);
//! - `gemm-add-bias`: `Gemm(A, B) + C == Gemm(A, B, C)` with `beta` 1 (the
//!   Gemm had no `C`, so its `beta` was unused: it is set to 1);
//! - `conv-add-bias`: `Conv(x, W[, B]) + b == Conv(x, W, B + b)` for a
//!   constant `b` with one value per output channel (`[C,1,1]`, `[1,C,1,1]`).

use crate::analysis::TGraph;
use crate::lang::{OpNode, TNode};
use crate::rules::build::Case;
use crate::rules::consts::const_of;
use crate::rules::matching::{add_op, attrs, comm, nodes_of, recognizer};
use crate::rules::{dims, f32s, pattern_rule, RuleDef};
use egg::Id;
use kiln_ir::{Attr, DType, Graph, Op, Tensor, TensorType};
use std::sync::Arc;

fn matmul_add_vars(seed: u64) -> Vec<(&'static str, TensorType)> {
    let d = dims(seed, 3);
    vec![
        ("a", f32s(vec![d[0], d[1]])),
        ("b", f32s(vec![d[1], d[2]])),
        ("c", f32s(vec![d[2]])),
    ]
}

fn gemm_add(eg: &mut TGraph, c: Id) -> Vec<Id> {
    let mut found = Vec::new();
    for (g, bias) in comm(eg, c, "Add") {
        for o in nodes_of(eg, g, "Gemm")
            .into_iter()
            .filter(|o| o.args.len() == 2)
        {
            found.push((o, bias));
        }
    }
    found
        .into_iter()
        .map(|(o, bias)| {
            let a = attrs(eg, &o).clone().with("beta", Attr::Float(1.0));
            add_op(eg, "Gemm", &a, vec![o.args[0], o.args[1], bias])
        })
        .collect()
}

/// The conv's new bias `[C]`: its old one (or zeros) plus `b`'s values.
fn conv_bias(eg: &TGraph, o: &OpNode, b: Id) -> Option<Tensor> {
    let w = const_of(eg, o.args[1])?;
    let c = *w.shape().first()?;
    let bt = const_of(eg, b).filter(|t| t.dtype() == DType::F32 && t.len() == c)?;
    let per_channel = match bt.shape() {
        [n, rest @ ..] if rest.len() == 2 => *n == c && rest.iter().all(|&d| d == 1),
        [1, n, rest @ ..] if rest.len() == 2 => *n == c && rest.iter().all(|&d| d == 1),
        _ => false,
    };
    let old = match o.args.get(2) {
        Some(&a) => const_of(eg, a)?.to_f64_vec(),
        None => vec![0.0; c],
    };
    let sum: Vec<f32> = old
        .iter()
        .zip(bt.to_f64_vec())
        .map(|(x, y)| (x + y) as f32)
        .collect();
    per_channel
        .then(|| Tensor::from_vec(vec![c], sum).ok())
        .flatten()
}

fn conv_add(eg: &mut TGraph, c: Id) -> Vec<Id> {
    let mut found = Vec::new();
    for (y, b) in comm(eg, c, "Add") {
        for o in nodes_of(eg, y, "Conv") {
            if let Some(t) = conv_bias(eg, &o, b) {
                found.push((o, t));
            }
        }
    }
    found
        .into_iter()
        .map(|(o, t)| {
            let k = eg.analysis.add_const(Arc::new(t));
            let bi = eg.add(TNode::Const(k));
            let args = vec![o.args[0], o.args[1], bi];
            eg.add(TNode::Op(OpNode { args, ..o }))
        })
        .collect()
}

fn gemm_cases(seed: u64) -> Vec<Graph> {
    let d = dims(seed, 3);
    [0i64, 1]
        .iter()
        .map(|&tb| {
            let mut b = Case::new();
            let x = b.input(vec![d[0], d[1]]);
            let shape = if tb == 1 {
                vec![d[2], d[1]]
            } else {
                vec![d[1], d[2]]
            };
            let w = b.input(shape);
            let op = Op::new("Gemm")
                .with("transB", Attr::Int(tb))
                .with("alpha", Attr::Float(0.5))
                .with("beta", Attr::Float(3.0));
            let y = b.op(op, &[x, w]);
            let c = b.input(vec![d[2]]);
            let z = b.op0("Add", &[c, y]);
            b.finish(z)
        })
        .collect()
}

fn conv_cases(seed: u64) -> Vec<Graph> {
    let d = dims(seed, 3);
    [false, true]
        .iter()
        .map(|&with_bias| {
            let mut b = Case::new();
            let x = b.input(vec![1, d[0], d[2] + 1, d[2] + 1]);
            let mut args = vec![x, b.weights(vec![d[1], d[0], 1, 1], 1)];
            if with_bias {
                args.push(b.weights(vec![d[1]], 2));
            }
            let y = b.op(Op::new("Conv"), &args);
            let shape = if with_bias {
                vec![1, d[1], 1, 1]
            } else {
                vec![d[1], 1, 1]
            };
            let bias = b.weights(shape, 3);
            let z = b.op0("Add", &[y, bias]);
            b.finish(z)
        })
        .collect()
}

pub(super) fn rules() -> Vec<RuleDef> {
    vec![
        pattern_rule(
            "matmul-add-gemm",
            "MatMul(A, B) + C == Gemm(A, B, C) for 2-D A, B",
            "(Add (MatMul ?a ?b) ?c)",
            "(Gemm ?a ?b ?c)",
            matmul_add_vars,
        ),
        recognizer(
            "gemm-add-bias",
            "Gemm(A, B) + C == Gemm(A, B, C, beta=1)",
            &["Add"],
            gemm_add,
            gemm_cases,
        ),
        recognizer(
            "conv-add-bias",
            "Conv(x, W, B) + b == Conv(x, W, B + b) for b one value per channel",
            &["Add"],
            conv_add,
            conv_cases,
        ),
    ]
}
