//! Transposes that cancel across element-wise ops disappear: sinking moves
//! the inner transpose past the ops, `transpose-compose` removes the pair,
//! and extraction keeps the cheaper graph, which evaluates the same.

use kiln_ir::{Attr, DType, Graph, Op, Tensor, TensorType};
use kiln_rewrite::{optimize, Limits};
use std::collections::HashMap;

fn input(g: &mut Graph, name: &str, shape: &[usize]) -> kiln_ir::ValueId {
    g.add_input(name, TensorType::new(DType::F32, shape.to_vec()))
        .unwrap()
}

fn transpose(perm: &[i64]) -> Op {
    Op::new("Transpose").with("perm", Attr::Ints(perm.to_vec()))
}

fn random(shape: &[usize], seed: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|i| ((i * 7 + seed * 13) as f32 * 0.61).sin() * 2.0)
        .collect();
    Tensor::from_vec(shape.to_vec(), v).unwrap()
}

#[test]
fn cancelling_transposes_around_elementwise_ops_are_removed() {
    let (p, inv) = ([0i64, 2, 3, 1], [0i64, 3, 1, 2]);
    let shape = [2usize, 3, 4, 5];
    let mut g = Graph::new("sink");
    let a = input(&mut g, "a", &shape);
    let b = input(&mut g, "b", &shape);
    let ta = g.add_node("ta", transpose(&p), &[a], &["ta"]).unwrap()[0];
    let tb = g.add_node("tb", transpose(&p), &[b], &["tb"]).unwrap()[0];
    let s = g
        .add_node("add", Op::new("Add"), &[ta, tb], &["s"])
        .unwrap()[0];
    let r = g.add_node("relu", Op::new("Relu"), &[s], &["r"]).unwrap()[0];
    let y = g.add_node("back", transpose(&inv), &[r], &["y"]).unwrap();
    g.set_outputs(y);
    let (out, report) = optimize(&g, &Limits::default(), &Default::default()).unwrap();
    assert!(
        out.nodes().iter().all(|n| n.op.kind != "Transpose"),
        "{:?}",
        out.nodes().iter().map(|n| &n.op.kind).collect::<Vec<_>>()
    );
    assert!(
        report.applied.contains_key("transpose-sink-binary"),
        "{:?}",
        report.applied
    );
    let feeds = HashMap::from([
        ("a".to_string(), random(&shape, 1)),
        ("b".to_string(), random(&shape, 2)),
    ]);
    let want = kiln_ir::interp::run(&g, &feeds).unwrap();
    let got = kiln_ir::interp::run(&out, &feeds).unwrap();
    assert_eq!(
        want[0].as_slice::<f32>().unwrap(),
        got[0].as_slice::<f32>().unwrap()
    );
}
