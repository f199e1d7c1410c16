//! Differential verification of every rule: on its own cases (random legal
//! shapes, proptest seeds), the rule alone must fire, and every e-node of
//! every e-class of the saturated e-graph must evaluate, on random inputs, to
//! the value of its class. A failure names the rule. A rule without cases
//! fails the suite.

use egg::Id;
use kiln_ir::{Graph, Tensor};
use kiln_rewrite::lang::TNode;
use kiln_rewrite::rules::{self, RuleDef};
use kiln_rewrite::{saturate, Limits, TGraph};
use proptest::prelude::*;
use std::collections::HashMap;

fn random_feeds(g: &Graph, seed: u64) -> HashMap<String, Tensor> {
    let mut s = seed | 1;
    g.inputs()
        .iter()
        .map(|&i| {
            let v = g.value(i);
            let data: Vec<f32> = (0..v.ty.numel())
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0 + 0.01
                })
                .collect();
            (
                v.name.clone(),
                Tensor::from_vec(v.ty.shape.clone(), data).unwrap(),
            )
        })
        .collect()
}

fn eval_node(
    eg: &TGraph,
    n: &TNode,
    vals: &HashMap<Id, Tensor>,
    feeds: &HashMap<String, Tensor>,
) -> Option<Tensor> {
    match n {
        TNode::Input(s) => feeds.get(s.as_str()).cloned(),
        TNode::Const(c) => Some(eg.analysis.consts[*c as usize].as_ref().clone()),
        TNode::Op(o) => {
            let args: Option<Vec<&Tensor>> =
                o.args.iter().map(|a| vals.get(&eg.find(*a))).collect();
            let op = eg.analysis.op_of(o);
            let outs = op
                .def()
                .ok()?
                .eval(&op.attrs, &args?, o.outputs as usize)
                .ok()?;
            outs.into_iter().nth(o.output as usize)
        }
    }
}

fn close(a: &Tensor, b: &Tensor) -> bool {
    a.ty() == b.ty()
        && a.to_f64_vec()
            .iter()
            .zip(b.to_f64_vec())
            .all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + y.abs()))
}

/// Checks every e-node against its class's value; returns a failure message.
fn check_egraph(eg: &TGraph, feeds: &HashMap<String, Tensor>) -> Result<usize, String> {
    let mut vals: HashMap<Id, Tensor> = HashMap::new();
    loop {
        let mut progress = false;
        for c in eg.classes() {
            if vals.contains_key(&c.id) {
                continue;
            }
            if let Some(v) = c.nodes.iter().find_map(|n| eval_node(eg, n, &vals, feeds)) {
                vals.insert(c.id, v);
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    let mut checked = 0;
    for c in eg.classes() {
        let Some(want) = vals.get(&c.id) else {
            continue;
        };
        for n in &c.nodes {
            if let Some(got) = eval_node(eg, n, &vals, feeds) {
                if !close(&got, want) {
                    return Err(format!("node {n} disagrees with its class {}", c.id));
                }
                checked += 1;
            }
        }
    }
    Ok(checked)
}

fn verify(rule: &RuleDef, seed: u64) -> Result<(), String> {
    let cases = (rule.cases)(seed);
    if cases.is_empty() {
        return Err(format!("rule `{}` has no verification case", rule.name));
    }
    let limits = Limits {
        max_iterations: 3,
        ..Limits::default()
    };
    for g in cases {
        let one = [rules::all()
            .into_iter()
            .find(|r| r.name == rule.name)
            .unwrap()];
        let sat = saturate(&g, &limits, &one);
        if sat.applied.get(rule.name).copied().unwrap_or(0) == 0 {
            return Err(format!(
                "rule `{}` did not fire on its case:\n{}",
                rule.name,
                kiln_ir::text::print(&g)
            ));
        }
        let feeds = random_feeds(&g, seed);
        check_egraph(&sat.egraph, &feeds).map_err(|m| format!("rule `{}`: {m}", rule.name))?;
    }
    Ok(())
}

#[test]
fn every_rule_has_an_identity_and_cases() {
    let all = rules::all();
    assert!(all.len() >= 12);
    for r in &all {
        assert!(!r.identity.is_empty(), "rule `{}` has no identity", r.name);
        assert!(
            !(r.cases)(1).is_empty(),
            "rule `{}` has no verification case",
            r.name
        );
    }
    let mut names: Vec<_> = all.iter().map(|r| r.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all.len(), "rule names are unique");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn every_rule_is_sound_on_random_shapes_and_inputs(seed in 1u64..u64::MAX) {
        for r in rules::all() {
            if let Err(m) = verify(&r, seed) {
                prop_assert!(false, "{}", m);
            }
        }
    }
}

#[test]
fn conv_batchnorm_folds_into_one_cheaper_conv() {
    let rule = rules::all()
        .into_iter()
        .find(|r| r.name == "conv-bn-fold")
        .unwrap();
    for g in (rule.cases)(5) {
        let (out, r) = kiln_rewrite::optimize(&g, &Limits::default(), &Default::default()).unwrap();
        assert_eq!(r.ops_after.get("BatchNormalization"), None, "{r:?}");
        assert!(r.cost_after < r.cost_before);
        let feeds = random_feeds(&g, 9);
        let (want, got) = (
            kiln_ir::interp::run(&g, &feeds).unwrap(),
            kiln_ir::interp::run(&out, &feeds).unwrap(),
        );
        assert!(close(&got[0], &want[0]));
    }
}
