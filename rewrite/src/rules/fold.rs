//! Folding constant-parameter ops into their producer:
//! - `conv-bn-fold`: `batchnorm(conv(x, W, b), s, B, m, v) == conv(x, W', b')`
//!   with `k = s / sqrt(v + eps)`, `W'[o] = W[o] * k[o]`, `b' = (b - m) * k + B`
//!   (inference-mode BatchNormalization, f32, every parameter a constant).

use super::consts::{const_of, f32s_of};
use super::{dims, f32s, ops_in, KindSearcher, RuleDef};
use crate::analysis::TGraph;
use crate::lang::{OpNode, TNode};
use crate::rules::{ClassApplier, OnClass};
use egg::{Id, Rewrite};
use kiln_ir::{Attr, Graph, Op, Tensor};
use std::sync::Arc;

/// The folded weights and bias of `conv` followed by the batch norm `bn`.
fn fold(eg: &TGraph, conv: &OpNode, bn: &OpNode) -> Option<(Tensor, Tensor)> {
    let attrs = &eg.analysis.attrs[bn.attrs as usize];
    let training = matches!(attrs.get("training_mode"), Some(Attr::Int(t)) if *t != 0);
    if training || bn.outputs != 1 || bn.args.len() != 5 {
        return None;
    }
    let eps = attrs.float_or("epsilon", 1e-5).ok()?;
    let p: Option<Vec<Vec<f32>>> = bn.args[1..].iter().map(|&c| f32s_of(eg, c)).collect();
    let [s, beta, mean, var] = <[Vec<f32>; 4]>::try_from(p?).ok()?;
    let w = const_of(eg, conv.args[1])?;
    let wv = w.as_slice::<f32>().ok()?;
    let c_out = *w.shape().first()?;
    if s.len() != c_out || beta.len() != c_out || mean.len() != c_out || var.len() != c_out {
        return None;
    }
    let b = match conv.args.get(2) {
        Some(&c) => f32s_of(eg, c)?,
        None => vec![0.0; c_out],
    };
    let k: Vec<f64> = (0..c_out)
        .map(|o| s[o] as f64 / (var[o] as f64 + eps).sqrt())
        .collect();
    let per = wv.len() / c_out.max(1);
    let w2: Vec<f32> = wv
        .iter()
        .enumerate()
        .map(|(i, &x)| (x as f64 * k[i / per]) as f32)
        .collect();
    let b2: Vec<f32> = (0..c_out)
        .map(|o| ((b[o] as f64 - mean[o] as f64) * k[o] + beta[o] as f64) as f32)
        .collect();
    Some((
        Tensor::from_vec(w.shape().to_vec(), w2).ok()?,
        Tensor::from_vec(vec![c_out], b2).ok()?,
    ))
}

struct FoldConvBn;

impl ClassApplier for FoldConvBn {
    fn apply_class(&self, eg: &mut TGraph, eclass: Id) -> Vec<Id> {
        let bns = ops_in(eg, eclass, &["BatchNormalization"]);
        let mut changed = vec![];
        for bn in bns {
            let convs = ops_in(eg, bn.args[0], &["Conv"]);
            for conv in convs.into_iter().filter(|c| c.outputs == 1) {
                let Some((w, b)) = fold(eg, &conv, &bn) else {
                    continue;
                };
                let wc = eg.analysis.add_const(Arc::new(w));
                let bc = eg.analysis.add_const(Arc::new(b));
                let (wi, bi) = (eg.add(TNode::Const(wc)), eg.add(TNode::Const(bc)));
                let args = vec![conv.args[0], wi, bi];
                let id = eg.add(TNode::Op(OpNode {
                    args,
                    ..conv.clone()
                }));
                if eg[id].data.ty == eg[eclass].data.ty && eg.union(eclass, id) {
                    changed.push(eclass);
                }
            }
        }
        changed
    }
}

fn cases(seed: u64) -> Vec<Graph> {
    let d = dims(seed, 4);
    let (c_in, c_out, h) = (d[0], d[1], d[2] + 2);
    let mut out = Vec::new();
    for with_bias in [false, true] {
        let mut g = Graph::new("case");
        let x = g.add_input("x", f32s(vec![1, c_in, h, h])).expect("input");
        let vals = |n: usize, off: f32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i as f32 + off) * 0.37).sin() * 0.5 + 0.1)
                .collect()
        };
        let w = Tensor::from_vec(vec![c_out, c_in, 3, 3], vals(c_out * c_in * 9, 1.0)).expect("w");
        let mut args = vec![x, g.add_const("w", w).expect("w")];
        if with_bias {
            let b = Tensor::from_vec(vec![c_out], vals(c_out, 2.0)).expect("b");
            args.push(g.add_const("b", b).expect("b"));
        }
        let conv = Op::new("Conv").with("pads", Attr::Ints(vec![1, 1, 1, 1]));
        let y = g.add_node("conv", conv, &args, &["y"]).expect("conv")[0];
        let mut bn_args = vec![y];
        for (k, name) in ["s", "beta", "mean"].iter().enumerate() {
            let t = Tensor::from_vec(vec![c_out], vals(c_out, 3.0 + k as f32)).expect("p");
            bn_args.push(g.add_const(name, t).expect("p"));
        }
        let var: Vec<f32> = vals(c_out, 7.0).iter().map(|v| v.abs() + 0.5).collect();
        bn_args.push(
            g.add_const("var", Tensor::from_vec(vec![c_out], var).expect("v"))
                .expect("v"),
        );
        let bn = Op::new("BatchNormalization").with("epsilon", Attr::Float(1e-3));
        let z = g.add_node("bn", bn, &bn_args, &["z"]).expect("bn");
        g.set_outputs(z);
        out.push(g);
    }
    out
}

pub(super) fn rules() -> Vec<RuleDef> {
    vec![RuleDef {
        name: "conv-bn-fold",
        identity:
            "batchnorm(conv(x, W, b)) == conv(x, W*k, (b - mean)*k + beta), k = s/sqrt(var+eps)",
        rewrite: Rewrite::new(
            "conv-bn-fold",
            KindSearcher(&["BatchNormalization"]),
            OnClass(FoldConvBn),
        )
        .expect("rule"),
        cases: Box::new(cases),
        multi: false,
    }]
}
