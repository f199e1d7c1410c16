//! The real models in `testdata/` (PyTorch exports) run through import and the
//! reference interpreter and match ONNX Runtime's stored outputs within
//! 1e-4 x max |output|.

use kiln_ir::{npy, Tensor};
use std::collections::HashMap;
use std::path::PathBuf;

fn check(model: &str, inputs: &[&str], outputs: &[&str]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(model);
    let m =
        kiln_models::onnx::load(dir.join(format!("{model}.onnx")), &Default::default()).unwrap();
    let feeds: HashMap<String, Tensor> = inputs
        .iter()
        .map(|n| {
            (
                n.to_string(),
                npy::load(dir.join(format!("{n}.npy"))).unwrap(),
            )
        })
        .collect();
    let got = kiln_ir::interp::run(&m.graph, &feeds).unwrap();
    assert_eq!(got.len(), outputs.len());
    for (g, name) in got.iter().zip(outputs) {
        let want = npy::load(dir.join(format!("{name}.npy"))).unwrap();
        assert_eq!(g.ty(), want.ty(), "{model}: {name}");
        let (a, b) = (g.to_f64_vec(), want.to_f64_vec());
        let err = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        let scale = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
        assert!(
            a.iter().all(|x| x.is_finite()),
            "{model}: {name} has non-finite values"
        );
        assert!(
            err <= 1e-4 * scale,
            "{model}: {name}: max abs error {err:e} > 1e-4 x {scale}"
        );
    }
}

#[test]
fn mlp_matches_onnx_runtime() {
    check("mlp", &["input"], &["output"]);
}

#[test]
fn mobilenet_v2_matches_onnx_runtime() {
    check("mobilenet_v2", &["input"], &["output"]);
}

#[test]
fn bert_tiny_matches_onnx_runtime() {
    check(
        "bert_tiny",
        &["input_ids", "attention_mask"],
        &["last_hidden_state", "pooler_output"],
    );
}
