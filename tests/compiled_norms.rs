//! Softmax, LogSoftmax, Layer/Instance/GroupNormalization on any axis, ArgMax/Min,
//! CumSum/CumProd and Trilu run compiled
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

#[test]
fn instance_and_group_norm() {
    let g = graph(
        "  input x: f32[2,6,5,7]
  input s: f32[6]
  input b: f32[6]
  node n = InstanceNormalization{epsilon=0.001}(x, s, b) -> y: f32[2,6,5,7]
  output y",
    );
    assert_eq!(kernels(&check(&g)), vec!["instance_norm[rows]".to_string()]);
    let g = graph(
        "  input x: f32[2,6,5,7]
  input s: f32[6]
  input b: f32[6]
  node n = GroupNormalization{num_groups=3}(x, s, b) -> y: f32[2,6,5,7]
  output y",
    );
    assert_eq!(kernels(&check(&g)), vec!["group_norm[rows]".to_string()]);
    // Opset 18's form: one scale and bias per group, constants.
    let g = graph(
        "  input x: f32[1,6,9]
  const s: f32[2] = [0.5, 2.0]
  const b: f32[2] = [-1.0, 0.25]
  node n = GroupNormalization{num_groups=2}(x, s, b) -> y: f32[1,6,9]
  output y",
    );
    assert_eq!(kernels(&check(&g)), vec!["group_norm[rows]".to_string()]);
}

#[test]
fn argmax_and_argmin_on_any_axis() {
    for (node, out) in [
        ("ArgMax{axis=1}", "i64[2,1,6]"),
        ("ArgMin{axis=-1, keepdims=0}", "i64[2,5]"),
        ("ArgMax{axis=0, select_last_index=1}", "i64[1,5,6]"),
    ] {
        let g = graph(&format!(
            "  input x: f32[2,5,6]\n  node n = {node}(x) -> y: {out}\n  output y"
        ));
        let exe = check(&g);
        assert!(kernels(&exe)[0].starts_with("arg"), "{:?}", kernels(&exe));
    }
}

#[test]
fn cumsum_and_cumprod_on_any_axis_in_every_direction() {
    for (op, kernel) in [("CumSum", "cumsum[axis]"), ("CumProd", "cumprod[axis]")] {
        for dtype in ["f32", "f64", "i64", "i32"] {
            for attrs in [
                "axis=1",
                "axis=-1, exclusive=1",
                "axis=0, reverse=1",
                "axis=2, exclusive=1, reverse=1",
            ] {
                let g = graph(&format!(
                    "  input x: {dtype}[2,5,6]\n  node n = {op}{{{attrs}}}(x) -> y: {dtype}[2,5,6]\n  output y"
                ));
                let got = kernels(&check(&g));
                assert_eq!(got, vec![kernel.to_string()], "{op} {dtype} {attrs}");
            }
        }
    }
}

#[test]
fn integer_arithmetic_and_comparisons_with_broadcasting() {
    for dtype in ["i64", "i32"] {
        for (op, out) in [
            ("Add", dtype),
            ("Sub", dtype),
            ("Mul", dtype),
            ("Div", dtype),
            ("Mod", dtype),
            ("Mod{fmod=1}", dtype),
            ("Max", dtype),
            ("Min", dtype),
            ("Equal", "bool"),
            ("Less", "bool"),
            ("GreaterOrEqual", "bool"),
        ] {
            let g = graph(&format!(
                "  input a: {dtype}[2,1,5]\n  input b: {dtype}[3,1]\n  node n = {op}(a, b) -> y: {out}[2,3,5]\n  output y"
            ));
            // i32 values are exact in f64: the JIT may take those maps.
            let k = kernels(&check(&g));
            assert!(k[0].starts_with("int[") || dtype == "i32", "{op}: {k:?}");
        }
    }
}

#[test]
fn batchnorm_with_constant_parameters_hoists_its_per_channel_math() {
    // scale / sqrt(var + eps) depends on the channel alone: computed at build
    // time, the map reads it; results equal the interpreter's.
    let g = graph(
        "  input x: f32[1,3,5,7]
  const s: f32[3] = [0.5, 2.0, -1.0]
  const b: f32[3] = [0.1, -0.2, 0.3]
  const m: f32[3] = [0.05, -0.5, 1.5]
  const v: f32[3] = [1.0, 0.25, 4.0]
  node n = BatchNormalization{epsilon=0.001}(x, s, b, m, v) -> y: f32[1,3,5,7]
  node r = Relu(y) -> z: f32[1,3,5,7]
  output z",
    );
    assert_eq!(kernels(&check(&g)), vec!["jit[map]".to_string()]);
}

#[test]
fn tanh_gelu_fuses_into_the_matmul_epilogue() {
    let g = graph(
        "  input x: f32[4,8]
  const w: f32[8,3] = [0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, 0.8, -0.9, 1.0, 1.1, -1.2, 0.15, 0.25, -0.35, 0.45, 0.55, -0.65, 0.75, 0.85, -0.95, 1.05, -1.15, 1.25]
  node m = MatMul(x, w) -> h: f32[4,3]
  node g = Gelu{approximate=\"tanh\"}(h) -> y: f32[4,3]
  output y",
    );
    let k = kernels(&check(&g));
    assert_eq!(k.len(), 1, "{k:?}");
    assert!(k[0].ends_with("+gelu_tanh"), "{k:?}");
}

#[test]
fn trilu_upper_and_lower_with_any_offset_on_any_dtype() {
    for (dtype, shape) in [
        ("f32", "[2,3,5,4]"),
        ("i64", "[4,6]"),
        ("f64", "[3,3]"),
        ("i32", "[2,1,7]"),
    ] {
        for upper in [0, 1] {
            for k in [-3, -1, 0, 1, 2, 9] {
                let g = graph(&format!(
                    "  input x: {dtype}{shape}\n  node n = Trilu{{upper={upper}, k={k}}}(x) -> y: {dtype}{shape}\n  output y"
                ));
                let want = if upper == 1 {
                    "trilu[upper]"
                } else {
                    "trilu[lower]"
                };
                let got = kernels(&check(&g));
                assert_eq!(
                    got,
                    vec![want.to_string()],
                    "{dtype}{shape} upper={upper} k={k}"
                );
            }
        }
    }
}
