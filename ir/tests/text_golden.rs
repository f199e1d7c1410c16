//! Golden tests of the text form: printing a parsed file gives the file back
//! byte for byte, and bad text gives errors with line numbers.

use kiln_ir::{interp, text, Attr, Tensor};
use std::collections::HashMap;

const GOLDEN: &str = include_str!("golden/residual.kiln");

#[test]
fn print_of_parse_is_identity() {
    let g = text::parse(GOLDEN).unwrap();
    assert_eq!(text::print(&g), GOLDEN);
}

#[test]
fn parsed_graph_has_names_types_and_attributes() {
    let g = text::parse(GOLDEN).unwrap();
    assert_eq!(g.name, "residual");
    assert_eq!(g.inputs().len(), 2);
    assert_eq!(g.value(g.inputs()[1]).name, "onnx::scale");
    let mixed = g.nodes().iter().find(|n| n.name == "mixed").unwrap();
    assert_eq!(mixed.op.attrs.get("dims"), Some(&Attr::Ints(vec![1, -2])));
    assert_eq!(
        mixed.op.attrs.get("eps"),
        Some(&Attr::Floats(vec![1e-5, 2.0]))
    );
    assert_eq!(
        mixed.op.attrs.get("names"),
        Some(&Attr::Strs(vec!["a".into(), "b\n".into()]))
    );
    assert_eq!(
        mixed.op.attrs.get("to"),
        Some(&Attr::DType(kiln_ir::DType::F16))
    );
    assert_eq!(
        mixed
            .op
            .attrs
            .tensor("w")
            .unwrap()
            .as_slice::<i32>()
            .unwrap(),
        &[7, -7]
    );
}

#[test]
fn parsed_graph_runs() {
    let g = text::parse(GOLDEN).unwrap();
    let mut feeds = HashMap::new();
    feeds.insert(
        "x".to_string(),
        Tensor::from_vec(vec![2, 3], vec![1.0f32, 2.0, 3.0, -1.0, -2.0, -3.0]).unwrap(),
    );
    feeds.insert(
        "onnx::scale".to_string(),
        Tensor::from_vec(vec![3], vec![2.0f32, 0.0, 1.0]).unwrap(),
    );
    let out = interp::run(&g, &feeds).unwrap();
    // y = (x + bias) * scale + x
    assert_eq!(
        out[0].as_slice::<f32>().unwrap(),
        &[4.0, 2.0, 8.25, -2.0, -2.0, -3.75]
    );
}

#[test]
fn special_floats_roundtrip() {
    let src = "graph g {\n  input x: f32[3]\n  const c: f32[3] = [inf, -inf, NaN]\n  node n = Add(x, c) -> y: f32[3]\n  output y\n}\n";
    let g = text::parse(src).unwrap();
    assert_eq!(text::print(&g), src);
}

fn parse_err(src: &str) -> String {
    text::parse(src).unwrap_err().to_string()
}

#[test]
fn errors_name_the_line() {
    let e = parse_err(
        "graph g {\n  input x: f32[2]\n  node n = Add(x, nope) -> y: f32[2]\n  output y\n}\n",
    );
    assert!(e.contains("line 3") && e.contains("nope"), "{e}");
    let e = parse_err("graph g {\n  input x: q7[2]\n}\n");
    assert!(e.contains("line 2") && e.contains("q7"), "{e}");
    let e = parse_err(
        "graph g {\n  input x: f32[2]\n  node n = Add(x, x) -> y: f32[3]\n  output y\n}\n",
    );
    assert!(e.contains("infers f32[2]"), "{e}");
    let e = parse_err(
        "graph g {\n  input x: f32[2]\n  node n = Frobnicate(x) -> y: f32[2]\n  output y\n}\n",
    );
    assert!(e.contains("Frobnicate"), "{e}");
    let e = parse_err("graph g {\n  const c: f32[2] = [1.0]\n}\n");
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn string_tensors_print_parse_and_compare() {
    let src = "graph g {\n  input x: string[2]\n  const c: string[2] = [\"a\", \"b \\\"q\\\"\"]\n  node n = Equal(x, c) -> y: bool[2]\n  output y\n}\n";
    let g = text::parse(src).unwrap();
    assert_eq!(text::print(&g), src);
    let x = Tensor::from_strings(vec![2], vec!["a".into(), "b".into()]).unwrap();
    let out = interp::run(&g, &HashMap::from([("x".to_string(), x)])).unwrap();
    assert_eq!(out[0].as_slice::<bool>().unwrap(), &[true, false]);
}

#[test]
fn numeric_ops_on_strings_are_errors_not_panics() {
    let src =
        "graph g {\n  input x: string[2]\n  node n = Add(x, x) -> y: string[2]\n  output y\n}\n";
    let g = text::parse(src).unwrap();
    let x = Tensor::from_strings(vec![2], vec!["a".into(), "b".into()]).unwrap();
    let e = interp::run(&g, &HashMap::from([("x".to_string(), x)]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("string"), "{e}");
}
