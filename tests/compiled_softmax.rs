//! Softmax, LogSoftmax and LayerNormalization on any axis run compiled
//! (row or axis kernels), equal to the interpreter.

mod common;

use common::compiled::{check, kernels};

fn graph(body: &str) -> kiln::ir::Graph {
    kiln::ir::text::parse(&format!("graph t {{\n{body}\n}}")).unwrap()
}

#[test]
fn softmax_family_on_every_axis() {
    for (node, want) in [
        ("Softmax{axis=1}", "softmax[axis]"),
        ("Softmax{axis=-1}", "softmax[rows]"),
        ("Softmax{axis=1, coerce_2d=1}", "softmax[rows]"),
        ("LogSoftmax{axis=0}", "log_softmax[axis]"),
        ("LogSoftmax{axis=3}", "log_softmax[axis]"),
        ("LogSoftmax{axis=2, coerce_2d=1}", "log_softmax[axis]"),
    ] {
        let g = graph(&format!(
            "  input x: f32[2,5,6,19]\n  node n = {node}(x) -> y: f32[2,5,6,19]\n  output y"
        ));
        let exe = check(&g);
        assert_eq!(kernels(&exe), vec![want.to_string()], "{node}");
    }
}

#[test]
fn layer_norm_over_trailing_axes() {
    let g = graph(
        "  input x: f32[2,3,20]
  input s: f32[3,20]
  input b: f32[3,20]
  node n = LayerNormalization{axis=1}(x, s, b) -> y: f32[2,3,20]
  output y",
    );
    let exe = check(&g);
    assert_eq!(kernels(&exe), vec!["layer_norm[rows]".to_string()]);
}
