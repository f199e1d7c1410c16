//! Bad input gives a clear error naming the file (and node and op where one
//! exists), never a panic.

mod common;
use common::*;
use kiln_ir::{interp, Tensor};
use kiln_models::onnx::{self, ImportOptions};
use prost::Message;
use std::collections::HashMap;

fn load_err(path: &std::path::Path) -> String {
    onnx::load(path, &ImportOptions::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn a_valid_model_loads_and_runs() {
    let d = temp_dir("valid");
    let p = write_model(&d, "add.onnx", &add_model());
    let m = onnx::load(&p, &ImportOptions::default()).unwrap();
    let x = Tensor::from_vec(vec![2, 3], vec![0.0f32; 6]).unwrap();
    let y = interp::run(&m.graph, &HashMap::from([("x".to_string(), x)])).unwrap();
    assert_eq!(
        y[0].as_slice::<f32>().unwrap(),
        &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0]
    );
}

#[test]
fn truncated_protobuf_names_the_file() {
    let d = temp_dir("truncated");
    let bytes = add_model().encode_to_vec();
    let p = d.join("cut.onnx");
    for cut in [1, bytes.len() / 3, bytes.len() - 1] {
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let e = load_err(&p);
        assert!(e.contains("cut.onnx"), "{e}");
    }
}

#[test]
fn garbage_names_the_file() {
    let d = temp_dir("garbage");
    let p = d.join("junk.onnx");
    std::fs::write(&p, b"\xff\xfe this is not a protobuf at all \x00\x01").unwrap();
    let e = load_err(&p);
    assert!(
        e.contains("junk.onnx") && e.contains("not a valid ONNX model"),
        "{e}"
    );
}

#[test]
fn missing_file_names_the_file() {
    let e = load_err(std::path::Path::new("/nonexistent/model.onnx"));
    assert!(
        e.contains("/nonexistent/model.onnx") && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn missing_initializer_names_node_and_input() {
    let d = temp_dir("missing-init");
    let mut m = add_model();
    m.graph.as_mut().unwrap().initializer.clear();
    let e = load_err(&write_model(&d, "m.onnx", &m));
    assert!(
        e.contains("m.onnx") && e.contains("add0") && e.contains("`b`"),
        "{e}"
    );
}

#[test]
fn unknown_op_names_op_domain_opset_and_node() {
    let d = temp_dir("unknown-op");
    let mut m = add_model();
    m.graph.as_mut().unwrap().node[0].op_type = Some("Frobnicate".into());
    let e = load_err(&write_model(&d, "m.onnx", &m));
    assert!(
        e.contains("Frobnicate")
            && e.contains("opset 17")
            && e.contains("add0")
            && e.contains("not supported"),
        "{e}"
    );
    m.graph.as_mut().unwrap().node[0].domain = Some("com.example".into());
    let e = load_err(&write_model(&d, "m2.onnx", &m));
    assert!(e.contains("com.example"), "{e}");
}

#[test]
fn control_flow_is_refused_clearly() {
    let d = temp_dir("control-flow");
    let mut m = add_model();
    m.graph.as_mut().unwrap().node[0].op_type = Some("Loop".into());
    let e = load_err(&write_model(&d, "m.onnx", &m));
    assert!(
        e.contains("Loop") && e.contains("not supported") && e.contains("add0"),
        "{e}"
    );
}

#[test]
fn shape_mismatch_inside_the_graph_names_the_node() {
    let d = temp_dir("shape-mismatch");
    let mut m = add_model();
    m.graph.as_mut().unwrap().initializer[0] = f32_tensor("b", &[4], &[1.0, 2.0, 3.0, 4.0]);
    let e = load_err(&write_model(&d, "m.onnx", &m));
    assert!(
        e.contains("add0") && e.contains("Add") && e.contains("broadcast"),
        "{e}"
    );
}

#[test]
fn wrong_input_shape_or_dtype_at_run_time() {
    let d = temp_dir("wrong-input");
    let m = onnx::load(
        write_model(&d, "add.onnx", &add_model()),
        &ImportOptions::default(),
    )
    .unwrap();
    let bad_shape = Tensor::from_vec(vec![3, 2], vec![0.0f32; 6]).unwrap();
    let e = interp::run(&m.graph, &HashMap::from([("x".to_string(), bad_shape)]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`x`") && e.contains("f32[2,3]") && e.contains("f32[3,2]"),
        "{e}"
    );
    let bad_dtype = Tensor::from_vec(vec![2, 3], vec![0i64; 6]).unwrap();
    let e = interp::run(&m.graph, &HashMap::from([("x".to_string(), bad_dtype)]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("i64[2,3]"), "{e}");
    let e = interp::run(&m.graph, &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing input `x`") && e.contains("x: f32[2,3]"),
        "{e}"
    );
}

fn external_model(d: &std::path::Path, length: usize) -> std::path::PathBuf {
    let mut m = add_model();
    m.graph.as_mut().unwrap().initializer[0] = external_tensor("b", &[3], "weights.bin", 4, length);
    write_model(d, "ext.onnx", &m)
}

#[test]
fn external_data_loads_from_beside_the_model() {
    let d = temp_dir("external-ok");
    let mut bytes = vec![0u8; 4];
    bytes.extend([5.0f32, 6.0, 7.0].iter().flat_map(|x| x.to_le_bytes()));
    std::fs::write(d.join("weights.bin"), bytes).unwrap();
    let m = onnx::load(external_model(&d, 12), &ImportOptions::default()).unwrap();
    let b = m.graph.const_value(m.graph.find("b").unwrap()).unwrap();
    assert_eq!(b.as_slice::<f32>().unwrap(), &[5.0, 6.0, 7.0]);
}

#[test]
fn missing_external_data_file_is_named() {
    let d = temp_dir("external-missing");
    let e = load_err(&external_model(&d, 12));
    assert!(e.contains("weights.bin") && e.contains("`b`"), "{e}");
}

#[test]
fn short_external_data_file_is_named() {
    let d = temp_dir("external-short");
    std::fs::write(d.join("weights.bin"), [0u8; 10]).unwrap();
    let e = load_err(&external_model(&d, 12));
    assert!(e.contains("weights.bin") && e.contains("too short"), "{e}");
}

#[test]
fn external_data_may_not_escape_the_model_folder() {
    let d = temp_dir("external-escape");
    let mut m = add_model();
    m.graph.as_mut().unwrap().initializer[0] =
        external_tensor("b", &[3], "../../etc/passwd", 0, 12);
    let e = load_err(&write_model(&d, "m.onnx", &m));
    assert!(e.contains("relative path inside"), "{e}");
}

#[test]
fn symbolic_input_dimension_asks_for_a_shape() {
    use kiln_models::onnx::proto::tensor_shape_proto::dimension::Value as Dim;
    let d = temp_dir("symbolic");
    let mut m = add_model();
    let vi = &mut m.graph.as_mut().unwrap().input[0];
    if let Some(kiln_models::onnx::proto::type_proto::Value::TensorType(t)) =
        vi.r#type.as_mut().unwrap().value.as_mut()
    {
        t.shape.as_mut().unwrap().dim[0].value = Some(Dim::DimParam("batch".into()));
    }
    let p = write_model(&d, "m.onnx", &m);
    let e = load_err(&p);
    assert!(e.contains("`batch`") && e.contains("`x`"), "{e}");
    let opts = ImportOptions::default().with_input_shape("x", vec![2, 3]);
    onnx::load(&p, &opts).unwrap();
}
