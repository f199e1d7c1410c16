//! TopK, GatherElements and ScatterND compiled (no interpreter fallback)
//! against the interpreter on non-zero inputs, with ties, NaN, negative
//! indices and every reduction.

mod common;

use common::compiled::{check, kernels};
use kiln::ir::Graph;

fn parse(src: &str) -> Graph {
    kiln::ir::text::parse(src).unwrap()
}

fn vals(n: usize, modulo: usize) -> String {
    let v: Vec<String> = (0..n).map(|i| format!("{}.5", (i * 7) % modulo)).collect();
    v.join(", ")
}

#[test]
fn topk_on_every_axis_both_directions_with_ties() {
    for (axis, k, largest) in [
        (0, 2, 1),
        (1, 3, 1),
        (2, 1, 0),
        (-1, 5, 0),
        (1, 4, 0),
        (2, 0, 1),
    ] {
        let shape = [3usize, 4, 5];
        let a = if axis < 0 { 2 } else { axis as usize };
        let mut out = shape;
        out[a] = k;
        let o = format!("{},{},{}", out[0], out[1], out[2]);
        let g = parse(&format!(
            "graph t {{
  input x: f32[3,4,5]
  const c: f32[3,4,5] = [{c}]
  node m = Mul(x, c) -> y: f32[3,4,5]
  node f = Floor(y) -> z: f32[3,4,5]
  node t = TopK{{k={k}, axis={axis}, largest={largest}}}(z) -> v: f32[{o}], i: i64[{o}]
  output v, i
}}",
            c = vals(60, 5)
        ));
        let exe = check(&g);
        assert!(
            kernels(&exe).iter().any(|k| k.starts_with("topk")),
            "{:?}",
            kernels(&exe)
        );
    }
}

#[test]
fn topk_orders_nan_above_numbers() {
    let g = parse(
        "graph t {
  input x: f32[2,6]
  const c: f32[2,6] = [1.0, 0.0, 2.0, 0.0, 3.0, 1.0, 0.0, 1.0, 1.0, 0.0, 2.0, 1.0]
  node d = Div(c, c) -> n: f32[2,6]
  node a = Add(x, n) -> y: f32[2,6]
  node t = TopK{k=3}(y) -> v: f32[2,3], i: i64[2,3]
  output v, i
}",
    );
    let f = common::compiled::feeds(&g);
    let exe = kiln_runtime::compile(&g, &kiln_runtime::CompileOptions::default()).unwrap();
    let (got, want) = (exe.run(&f).unwrap(), kiln::run(&g, &f).unwrap());
    let v = got[0].to_f64_vec();
    assert!(v[0].is_nan() && v[1].is_nan(), "{v:?}");
    assert_eq!(got[1].to_f64_vec(), want[1].to_f64_vec());
}

#[test]
fn gather_elements_any_axis_negative_and_narrow_indices() {
    for (axis, ity, idx) in [
        (0, "i64", "[0, 2, -1, 1, 0, 1]"),
        (1, "i32", "[2, 0, -3, 1, 1, 2]"),
        (-1, "i64", "[0, 0, 2, 2, -1, 1]"),
    ] {
        let g = parse(&format!(
            "graph t {{
  input x: f32[3,3]
  const i: {ity}[2,3] = {idx}
  node g = GatherElements{{axis={axis}}}(x, i) -> y: f32[2,3]
  output y
}}"
        ));
        let exe = check(&g);
        assert!(kernels(&exe).contains(&"gather_elements[copy]".to_string()));
    }
}

#[test]
fn scatter_nd_slices_duplicates_and_reductions() {
    for red in ["none", "add", "mul", "max", "min"] {
        let g = parse(&format!(
            "graph t {{
  input x: f32[4,3,2]
  input u: f32[3,2]
  input w: f32[2,3,2]
  const i: i64[3,2] = [0, 1, -1, 2, 0, 1]
  const j: i64[2,1] = [1, -4]
  node a = ScatterND{{reduction=\"{red}\"}}(x, i, u) -> y: f32[4,3,2]
  node b = ScatterND{{reduction=\"{red}\"}}(y, j, w) -> z: f32[4,3,2]
  output z
}}"
        ));
        let exe = check(&g);
        assert_eq!(
            kernels(&exe)
                .iter()
                .filter(|k| k.starts_with("scatter_nd"))
                .count(),
            2
        );
    }
}

#[test]
fn out_of_range_indices_are_errors_naming_the_node() {
    let g = parse(
        "graph t {
  input x: f32[3,3]
  const i: i64[1,3] = [0, 3, 1]
  node gat = GatherElements{axis=0}(x, i) -> y: f32[1,3]
  output y
}",
    );
    let exe = kiln_runtime::compile(&g, &kiln_runtime::CompileOptions::default()).unwrap();
    let err = exe
        .run(&common::compiled::feeds(&g))
        .unwrap_err()
        .to_string();
    assert!(err.contains("gat") && err.contains("out of range"), "{err}");
}
