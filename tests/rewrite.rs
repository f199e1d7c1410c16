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
