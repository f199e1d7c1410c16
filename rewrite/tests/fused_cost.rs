//! The Roofline model prices each fused op below its decomposed form, so
//! extraction picks it: on every case of the recognition and merge rules
//! (random legal shapes), the optimized graph holds the fused op, none of
//! the decomposed form's signature ops, and costs less.

use kiln_rewrite::rules::{self, RuleDef};
use kiln_rewrite::{graph_cost, optimize, Limits, Roofline};

fn rule(name: &str) -> RuleDef {
    rules::all().into_iter().find(|r| r.name == name).unwrap()
}

/// (rule, fused op it must leave, op of the decomposed form that must go).
const FUSED: &[(&str, &str, &str)] = &[
    ("layer-norm", "LayerNormalization", "ReduceMean"),
    ("gelu-erf", "Gelu", "Erf"),
    ("gelu-tanh", "Gelu", "Tanh"),
    ("softmax-stable", "Softmax", "Exp"),
    ("softmax-exp-sum", "Softmax", "Exp"),
    ("attention", "Attention", "Softmax"),
    ("merge-parallel-linear", "Split", "none"),
    ("matmul-add-gemm", "Gemm", "MatMul"),
    ("conv-add-bias", "Conv", "Add"),
];

#[test]
fn fused_ops_are_cheaper_and_extracted() {
    let model = Roofline::default();
    for &(name, fused, gone) in FUSED {
        for seed in [3u64, 11, 97] {
            for g in (rule(name).cases)(seed) {
                let (out, r) = optimize(&g, &Limits::default(), &model).unwrap();
                let after = kiln_rewrite::histogram(&out);
                assert!(after.contains_key(fused), "{name}: {after:?}");
                assert!(!after.contains_key(gone), "{name}: {after:?}");
                assert!(
                    graph_cost(&out, &model) < graph_cost(&g, &model),
                    "{name}: {r:?}"
                );
            }
        }
    }
}
