//! `layer-norm`: with `d = x - mean(x)` (ReduceMean over the last axis,
//! keepdims), `d / sqrt(mean(d²) + ε) · γ + β == LayerNormalization(x, γ, β,
//! axis=-1, epsilon=ε)`, where `d²` is `Pow(d, 2)` or `d·d`, `ε` a scalar
//! constant >= 0 and `γ`, `β` one value per column (`[N]`, N the last axis).

use crate::analysis::TGraph;
use crate::rules::build::Case;
use crate::rules::consts::{is_const, scalar};
use crate::rules::dims;
use crate::rules::matching::{
    add_op, binary, comm, nodes_of, rank, recognizer, reduced_axis, unary,
};
use crate::rules::RuleDef;
use egg::Id;
use kiln_ir::{Attr, Attrs, Graph, Op};

/// True when `m` holds a ReduceMean of `x` over its last axis (keepdims).
fn mean_last(eg: &TGraph, m: Id, x: Id) -> bool {
    let last = rank(eg, x).map(|r| r as i64 - 1);
    nodes_of(eg, m, "ReduceMean")
        .iter()
        .any(|o| o.args == [x] && reduced_axis(eg, o).is_some() && reduced_axis(eg, o) == last)
}

/// True when `v` is the mean over the last axis of `d²`.
fn mean_square_last(eg: &TGraph, v: Id, d: Id) -> bool {
    let last = rank(eg, d).map(|r| r as i64 - 1);
    nodes_of(eg, v, "ReduceMean").iter().any(|o| {
        let sq = o.args[0];
        let squared = binary(eg, sq, "Pow")
            .iter()
            .any(|&(b, e)| b == d && is_const(eg, e, 2.0))
            || binary(eg, sq, "Mul").contains(&(d, d));
        squared && o.args.len() == 1 && reduced_axis(eg, o) == last
    })
}

/// True when `p` is one value per column of `out`: shape `[N]`.
fn per_column(eg: &TGraph, p: Id, out: Id) -> bool {
    match (&eg[p].data.ty, &eg[out].data.ty) {
        (Some(p), Some(o)) => p.rank() == 1 && o.shape.last() == p.shape.first(),
        _ => false,
    }
}

/// `(x, γ, β, ε)` for every reading of `c` as a layer norm.
fn find(eg: &TGraph, c: Id) -> Vec<(Id, Id, Id, f64)> {
    let mut out = Vec::new();
    for (scaled, beta) in comm(eg, c, "Add") {
        if !per_column(eg, beta, c) {
            continue;
        }
        for (normed, gamma) in comm(eg, scaled, "Mul") {
            if !per_column(eg, gamma, c) {
                continue;
            }
            for (d, den) in binary(eg, normed, "Div") {
                for (x, mean) in binary(eg, d, "Sub") {
                    if !mean_last(eg, mean, x) {
                        continue;
                    }
                    for var_eps in unary(eg, den, "Sqrt") {
                        for (var, eps) in comm(eg, var_eps, "Add") {
                            let e = scalar(eg, eps).filter(|e| *e >= 0.0);
                            if let (Some(e), true) = (e, mean_square_last(eg, var, d)) {
                                out.push((x, gamma, beta, e));
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

fn apply(eg: &mut TGraph, c: Id) -> Vec<Id> {
    find(eg, c)
        .into_iter()
        .map(|(x, gamma, beta, eps)| {
            let a = Attrs::new()
                .with("axis", Attr::Int(-1))
                .with("epsilon", Attr::Float(eps));
            add_op(eg, "LayerNormalization", &a, vec![x, gamma, beta])
        })
        .collect()
}

/// The exporter's chain; `pow` picks `Pow(d, 2)` or `d·d`, `swap` the operand orders.
fn case(shape: Vec<usize>, pow: bool, swap: bool) -> Graph {
    let n = *shape.last().expect("rank >= 1");
    let last = shape.len() as i64 - 1;
    let mean = || {
        Op::new("ReduceMean")
            .with("axes", Attr::Ints(vec![if pow { -1 } else { last }]))
            .with("keepdims", Attr::Int(1))
    };
    let mut b = Case::new();
    let x = b.input(shape);
    let m = b.op(mean(), &[x]);
    let d = b.op0("Sub", &[x, m]);
    let sq = if pow {
        let two = b.scalar(2.0);
        b.op0("Pow", &[d, two])
    } else {
        b.op0("Mul", &[d, d])
    };
    let v = b.op(mean(), &[sq]);
    let eps = b.scalar(1e-5);
    let ve = if swap {
        b.op0("Add", &[eps, v])
    } else {
        b.op0("Add", &[v, eps])
    };
    let s = b.op0("Sqrt", &[ve]);
    let q = b.op0("Div", &[d, s]);
    let (gamma, beta) = (b.weights(vec![n], 1), b.weights(vec![n], 2));
    let y = if swap {
        b.op0("Mul", &[gamma, q])
    } else {
        b.op0("Mul", &[q, gamma])
    };
    let z = b.op0("Add", &[y, beta]);
    b.finish(z)
}

fn cases(seed: u64) -> Vec<Graph> {
    let d = dims(seed, 3);
    vec![
        case(vec![d[0], d[1], d[2] + 3], true, false),
        case(vec![d[0], d[2]], false, true),
    ]
}

pub(super) fn rule() -> RuleDef {
    recognizer(
        "layer-norm",
        "(x - mean x) / sqrt(mean((x - mean x)^2) + eps) * g + b == LayerNormalization(x, g, b, -1, eps)",
        &["Add"],
        apply,
        cases,
    )
}
