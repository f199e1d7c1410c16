//! The rewrite stage on the shipped models: the result computes the same
//! outputs (interpreter, stored ONNX Runtime outputs), saturation stays well
//! inside its budget, and the result is deterministic at fixed limits.

use kiln::ir::{npy, text, Tensor};
use kiln_rewrite::{optimize, Limits, Roofline};
use std::collections::HashMap;
use std::path::Path;

fn max_rel_err(got: &Tensor, want: &Tensor) -> f64 {
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let scale = w.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
    g.iter()
        .zip(&w)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

#[test]
fn rewritten_models_compute_the_same_outputs_deterministically() {
    for name in ["mlp", "mobilenet_v2", "bert_tiny"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(name);
        let m = kiln::load_onnx(dir.join(format!("{name}.onnx"))).unwrap();
        let (out, r) = optimize(&m.graph, &Limits::default(), &Roofline::default()).unwrap();
        assert!(r.saturate_ms + r.extract_ms < 5000.0, "{name}: {r:?}");
        assert!(r.cost_after <= r.cost_before);
        let (again, r2) = optimize(&m.graph, &Limits::default(), &Roofline::default()).unwrap();
        assert_eq!(r.applied, r2.applied, "{name}: deterministic");
        assert_eq!(
            text::print(&out),
            text::print(&again),
            "{name}: deterministic"
        );
        let feeds: HashMap<String, Tensor> = out
            .inputs()
            .iter()
            .map(|&i| {
                let n = out.value(i).name.clone();
                (n.clone(), npy::load(dir.join(format!("{n}.npy"))).unwrap())
            })
            .collect();
        let got = kiln::run(&out, &feeds).unwrap();
        for (&o, t) in out.outputs().iter().zip(&got) {
            let want = npy::load(dir.join(format!("{}.npy", out.value(o).name))).unwrap();
            assert!(max_rel_err(t, &want) < 1e-4, "{name}");
        }
    }
}

#[test]
fn common_subexpressions_and_dead_code_disappear() {
    // Two identical Exp nodes hash-cons into one e-class; the dead Tanh is
    // never extracted (only what the outputs need is emitted).
    let g = text::parse(
        "graph t {
  input x: f32[4,5]
  node e1 = Exp(x) -> a: f32[4,5]
  node e2 = Exp(x) -> b: f32[4,5]
  node d = Tanh(x) -> dead: f32[4,5]
  node s = Add(a, b) -> y: f32[4,5]
  output y
}",
    )
    .unwrap();
    let (out, r) = optimize(&g, &Limits::default(), &Roofline::default()).unwrap();
    assert!(!r.kept_original && r.cost_after < r.cost_before, "{r:?}");
    assert_eq!(r.ops_after.get("Exp"), Some(&1));
    assert_eq!(r.ops_after.get("Tanh"), None);
    let x = Tensor::from_vec(vec![4, 5], (0..20).map(|i| i as f32 * 0.1 - 1.0).collect()).unwrap();
    let feeds = HashMap::from([("x".to_string(), x)]);
    let (want, got) = (
        kiln::run(&g, &feeds).unwrap(),
        kiln::run(&out, &feeds).unwrap(),
    );
    assert!(max_rel_err(&got[0], &want[0]) < 1e-6);
    assert_eq!(out.value(out.outputs()[0]).name, "y");
}
