//! `verify` reports the first inconsistency and names the node.

use kiln_ir::{text, verify, DType, TensorType};

const SRC: &str = "graph g {\n  input x: f32[2]\n  node first = Add(x, x) -> h: f32[2]\n  node second = Mul(h, x) -> y: f32[2]\n  output y\n}\n";

#[test]
fn a_valid_graph_verifies() {
    verify(&text::parse(SRC).unwrap()).unwrap();
}

#[test]
fn a_wrong_stored_type_names_the_node() {
    let mut g = text::parse(SRC).unwrap();
    let h = g.find("h").unwrap();
    g.value_mut(h).ty = TensorType::new(DType::F32, vec![3]);
    let e = verify(&g).unwrap_err().to_string();
    assert!(
        e.contains("`first`") && e.contains("inference gives f32[2]"),
        "{e}"
    );
}

#[test]
fn an_input_dtype_mismatch_names_the_node() {
    let mut g = text::parse(SRC).unwrap();
    let x = g.find("x").unwrap();
    g.value_mut(x).ty = TensorType::new(DType::I64, vec![2]);
    let e = verify(&g).unwrap_err().to_string();
    assert!(e.contains("`first`") || e.contains("`second`"), "{e}");
}

#[test]
fn use_before_definition_is_caught() {
    let mut g = text::parse(SRC).unwrap();
    g.nodes_mut().swap(0, 1);
    let e = verify(&g).unwrap_err().to_string();
    assert!(
        e.contains("`second`") && e.contains("before it is defined"),
        "{e}"
    );
}

#[test]
fn unknown_op_is_caught() {
    let mut g = text::parse(SRC).unwrap();
    g.nodes_mut()[1].op.kind = "NoSuchOp".into();
    let e = verify(&g).unwrap_err().to_string();
    assert!(e.contains("NoSuchOp"), "{e}");
}
