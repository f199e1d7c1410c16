//! ONNX import features: initializers shadowed by inputs, Constant nodes,
//! outputs that alias inputs, constant folding and input specialisation.

mod common;
use common::*;
use kiln_ir::{interp, Source, Tensor};
use kiln_models::onnx::{self, ImportOptions};
use std::collections::HashMap;

#[test]
fn an_input_shadowing_an_initializer_is_a_constant_by_default() {
    let d = temp_dir("shadow");
    let mut m = add_model();
    m.graph
        .as_mut()
        .unwrap()
        .input
        .push(value_info("b", FLOAT, &[3]));
    let p = write_model(&d, "m.onnx", &m);
    let g = onnx::load(&p, &ImportOptions::default()).unwrap().graph;
    assert_eq!(g.inputs().len(), 1);
    assert!(matches!(
        g.value(g.find("b").unwrap()).source,
        Source::Const(_)
    ));
    let opts = ImportOptions {
        overridable_initializers: true,
        ..Default::default()
    };
    let g = onnx::load(&p, &opts).unwrap().graph;
    assert_eq!(g.inputs().len(), 2);
}

#[test]
fn constant_nodes_fold_and_outputs_keep_their_names() {
    let d = temp_dir("constant");
    let mut c = node("Constant", "c0", &[], &["k"]);
    c.attribute.push(kiln_models::onnx::proto::AttributeProto {
        name: Some("value".into()),
        t: Some(f32_tensor("", &[3], &[10.0, 20.0, 30.0])),
        r#type: Some(kiln_models::onnx::proto::attribute_proto::AttributeType::Tensor as i32),
        ..Default::default()
    });
    let m = model(
        vec![
            c,
            node("Add", "fold", &["k", "k"], &["k2"]),
            node("Add", "add", &["x", "k2"], &["y"]),
            node("Identity", "id", &["x"], &["x_copy"]),
        ],
        vec![value_info("x", FLOAT, &[3])],
        vec![
            value_info("y", FLOAT, &[3]),
            value_info("x_copy", FLOAT, &[3]),
        ],
        vec![],
    );
    let g = onnx::load(write_model(&d, "m.onnx", &m), &ImportOptions::default())
        .unwrap()
        .graph;
    // `fold` had constant inputs: it is a constant now, only `add` and the identity remain.
    let kinds: Vec<&str> = g.nodes().iter().map(|n| n.op.kind.as_str()).collect();
    assert_eq!(kinds, ["Add", "Identity"]);
    let names: Vec<&str> = g
        .outputs()
        .iter()
        .map(|&o| g.value(o).name.as_str())
        .collect();
    assert_eq!(names, ["y", "x_copy"]);
    let x = Tensor::from_vec(vec![3], vec![1.0f32, 2.0, 3.0]).unwrap();
    let out = interp::run(&g, &HashMap::from([("x".to_string(), x.clone())])).unwrap();
    assert_eq!(out[0].as_slice::<f32>().unwrap(), &[21.0, 42.0, 63.0]);
    assert_eq!(out[1], x);
}

#[test]
fn declared_output_types_are_checked() {
    let d = temp_dir("declared");
    let mut m = add_model();
    m.graph.as_mut().unwrap().output[0] = value_info("y", INT64, &[2, 3]);
    let e = onnx::load(write_model(&d, "m.onnx", &m), &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("`y`") && e.contains("declared i64"), "{e}");
}

#[test]
fn the_registry_picks_the_mapping_by_opset() {
    let r = onnx::mappings();
    assert!(r.lookup("", "Add", 7).is_some());
    assert!(r.lookup("", "Add", 23).is_some());
    assert!(
        r.lookup("", "BitwiseAnd", 17).is_none(),
        "BitwiseAnd exists from opset 18"
    );
    assert!(r.lookup("", "BitwiseAnd", 18).is_some());
    assert!(r.lookup("", "Loop", 17).is_none());
}
