//! Lowers every node of the shipped models to `kiln_ir::expr` tensor
//! expressions, reports how many lowered and which op kinds fell back, and
//! requires the main compute ops (Conv, Gemm, MatMul, Add, Clip) to lower.

use kiln_ir::expr::lower;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// (lowered, fallback) counts and the set of kinds that lowered.
fn coverage(model: &str) -> (usize, usize, BTreeSet<String>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(model)
        .join(format!("{model}.onnx"));
    let m = kiln_models::onnx::load(path, &Default::default()).unwrap();
    let g = &m.graph;
    let (mut done, mut fell) = (BTreeSet::new(), BTreeMap::<String, usize>::new());
    let mut n_ok = 0;
    for n in g.nodes() {
        match lower(g, n).unwrap() {
            Some(_) => {
                n_ok += 1;
                done.insert(n.op.kind.clone());
            }
            None => *fell.entry(n.op.kind.clone()).or_default() += 1,
        }
    }
    let n_fell: usize = fell.values().sum();
    eprintln!(
        "{model}: {n_ok} lowered, {n_fell} fell back; lowered kinds {done:?}; fallbacks {fell:?}"
    );
    (n_ok, n_fell, done)
}

#[test]
fn mobilenet_v2_lowers() {
    let (ok, _, kinds) = coverage("mobilenet_v2");
    assert!(ok > 0);
    for k in ["Conv", "Gemm", "Add", "Clip"] {
        assert!(kinds.contains(k), "{k} did not lower");
    }
}

#[test]
fn bert_tiny_lowers() {
    let (ok, _, kinds) = coverage("bert_tiny");
    assert!(ok > 0);
    for k in ["MatMul", "Add"] {
        assert!(kinds.contains(k), "{k} did not lower");
    }
}
