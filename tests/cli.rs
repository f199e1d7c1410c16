//! The `kiln` binary: commands, output files, and one-paragraph errors with a
//! non-zero exit code (never a panic or backtrace).

mod common;
use common::*;
use std::process::Output;

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn assert_user_error(o: &Output, needles: &[&str]) {
    let (out, err) = text(o);
    assert_eq!(o.status.code(), Some(1), "stdout: {out}\nstderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("stack backtrace"),
        "{err}"
    );
    for n in needles {
        assert!(err.contains(n), "`{n}` missing from: {err}");
    }
}

#[test]
fn inspect_prints_ports_opsets_and_histogram() {
    let d = temp_dir("cli-inspect");
    let p = write_model(&d, "add.onnx", &add_model());
    let o = kiln(&["inspect", p.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("x")
            && out.contains("f32[2, 3]")
            && out.contains("ai.onnx 17")
            && out.contains("Add"),
        "{out}"
    );
    assert!(out.contains("parameters 3"), "{out}");
    let o = kiln(&["inspect", p.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["inputs"][0]["shape"], serde_json::json!([2, 3]));
    assert_eq!(v["onnx_ops"]["Add"], 1);
    assert_eq!(v["parameter_bytes"], 12);
}

#[test]
fn run_writes_outputs_and_checks_expectations() {
    let d = temp_dir("cli-run");
    let p = write_model(&d, "add.onnx", &add_model());
    let x = kiln_ir::Tensor::from_vec(vec![2, 3], vec![1.0f32, 1.0, 1.0, 2.0, 2.0, 2.0]).unwrap();
    kiln_ir::npy::save(d.join("x.npy"), &x).unwrap();
    let want =
        kiln_ir::Tensor::from_vec(vec![2, 3], vec![2.0f32, 3.0, 4.0, 3.0, 4.0, 5.0]).unwrap();
    kiln_ir::npy::save(d.join("want.npy"), &want).unwrap();
    let out_dir = d.join("out");
    let input = format!("x={}", d.join("x.npy").display());
    let expect = format!("y={}", d.join("want.npy").display());
    let o = kiln(&[
        "run",
        p.to_str().unwrap(),
        "--input",
        &input,
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--expect",
        &expect,
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("ran in") && out.contains("max abs error 0.000e0"),
        "{out}"
    );
    assert_eq!(kiln_ir::npy::load(out_dir.join("y.npy")).unwrap(), want);

    let wrong = kiln_ir::Tensor::from_vec(vec![2, 3], vec![0.0f32; 6]).unwrap();
    kiln_ir::npy::save(d.join("wrong.npy"), &wrong).unwrap();
    let expect = format!("y={}", d.join("wrong.npy").display());
    assert_user_error(
        &kiln(&[
            "run",
            p.to_str().unwrap(),
            "--input",
            &input,
            "--expect",
            &expect,
        ]),
        &["differs"],
    );
}

#[test]
fn missing_input_lists_the_expected_inputs() {
    let d = temp_dir("cli-missing");
    let p = write_model(&d, "add.onnx", &add_model());
    assert_user_error(
        &kiln(&["run", p.to_str().unwrap()]),
        &["missing input `x`", "x: f32[2,3]"],
    );
}

#[test]
fn non_npy_input_names_the_file() {
    let d = temp_dir("cli-npy");
    let p = write_model(&d, "add.onnx", &add_model());
    std::fs::write(d.join("x.txt"), "1 2 3").unwrap();
    let input = format!("x={}", d.join("x.txt").display());
    assert_user_error(
        &kiln(&["run", p.to_str().unwrap(), "--input", &input]),
        &["x.txt", "not a .npy file"],
    );
    assert_user_error(
        &kiln(&["run", p.to_str().unwrap(), "--input", "x"]),
        &["NAME=FILE.npy"],
    );
}

#[test]
fn bad_model_is_one_paragraph_error() {
    let d = temp_dir("cli-bad");
    std::fs::write(d.join("bad.onnx"), b"garbage").unwrap();
    assert_user_error(
        &kiln(&["inspect", d.join("bad.onnx").to_str().unwrap()]),
        &["bad.onnx", "not a valid ONNX model"],
    );
    assert_user_error(
        &kiln(&["run", "/no/such/model.onnx"]),
        &["/no/such/model.onnx"],
    );
}

#[test]
fn bench_reports_latency_on_random_inputs() {
    let d = temp_dir("cli-bench");
    let p = write_model(&d, "add.onnx", &add_model());
    let o = kiln(&["bench", p.to_str().unwrap(), "--iters", "5", "--json"]);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["iters"], 5);
    assert_eq!(v["random_inputs"], serde_json::json!(["x"]));
    let (min, med, max) = (
        v["min_ms"].as_f64().unwrap(),
        v["median_ms"].as_f64().unwrap(),
        v["max_ms"].as_f64().unwrap(),
    );
    assert!(min > 0.0 && min <= med && med <= max, "{v}");
    assert_user_error(
        &kiln(&["bench", p.to_str().unwrap(), "--iters", "0"]),
        &["--iters"],
    );
}

fn shipped(name: &str) -> String {
    format!("{}/testdata/{name}/{name}.onnx", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn compile_reports_kernels_fallbacks_memory_and_time() {
    let o = kiln(&["compile", &shipped("bert_tiny"), "--threads", "2", "--json"]);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["threads"], 2);
    assert!(v["kernels"].as_array().unwrap().len() > 10);
    assert!(v["arena_bytes"].as_u64().unwrap() > 0);
    assert!(v["compile_ms"].as_f64().unwrap() > 0.0);
    assert!(v["fallbacks"].as_object().unwrap().is_empty(), "{v}");
    let o = kiln(&["compile", &shipped("mlp"), "--no-jit", "--no-fuse"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("peak intermediate memory"), "{out}");
    assert_user_error(
        &kiln(&["compile", &shipped("mlp"), "--threads", "0"]),
        &["--threads"],
    );
}

#[test]
fn run_interpret_and_compiled_agree_and_bench_takes_threads() {
    let d = temp_dir("cli-engines");
    let p = write_model(&d, "add.onnx", &add_model());
    for engine in [
        &["--interpret"][..],
        &["--threads", "1"][..],
        &["--no-rewrite"][..],
    ] {
        let mut args = vec!["bench", p.to_str().unwrap(), "--iters", "3", "--json"];
        args.extend(engine);
        let o = kiln(&args);
        let (_, err) = text(&o);
        assert!(o.status.success(), "{engine:?}: {err}");
    }
}

#[test]
fn explain_reports_rewrites_histograms_and_egraph() {
    let o = kiln(&["explain", &shipped("bert_tiny"), "--json"]);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["egraph_nodes"].as_u64().unwrap() > 0);
    assert!(!v["applied"].as_object().unwrap().is_empty(), "{v}");
    assert!(v["ops_before"]["MatMul"].as_u64().unwrap() == 16);
    assert!(v["cost_after"].as_f64().unwrap() <= v["cost_before"].as_f64().unwrap());
}

#[test]
fn explain_derive_prints_merged_qkv_chain() {
    let o = kiln(&[
        "explain",
        &shipped("bert_tiny"),
        "--derive",
        "--derive-nodes",
        "200",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("merge-traversal > merge-traversal => gemm batch=1 m=64 n=384 k=128"),
        "{out}"
    );
    // The compiled model's routes: every MatMul with its kernel step and derived route.
    assert!(out.contains("routes of the compiled model"), "{out}");
    let routes: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("(MatMul): kernel "))
        .collect();
    assert!(routes.len() >= 8, "{out}");
    assert!(
        routes
            .iter()
            .all(|l| l.contains("derived ") && l.contains("gemm")),
        "{out}"
    );
    assert!(out.contains("contractions: "), "{out}");
}

#[test]
fn run_and_bench_bind_inputs_the_model_needs_at_compile_time() {
    // y = Reshape(x, s): `s` decides y's shape, so `kiln run` specialises on it.
    let d = temp_dir("cli-bind");
    let m = model(
        vec![node("Reshape", "r", &["x", "s"], &["y"])],
        vec![
            value_info("x", FLOAT, &[2, 3]),
            value_info("s", INT64, &[2]),
        ],
        vec![value_info("y", FLOAT, &[3, 2])],
        vec![],
    );
    let p = write_model(&d, "reshape.onnx", &m);
    let x = kiln_ir::Tensor::from_vec(vec![2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    kiln_ir::npy::save(d.join("x.npy"), &x).unwrap();
    let s = kiln_ir::Tensor::from_vec(vec![2], vec![3i64, 2]).unwrap();
    kiln_ir::npy::save(d.join("s.npy"), &s).unwrap();
    let want = x.clone().reshape(vec![3, 2]).unwrap();
    kiln_ir::npy::save(d.join("want.npy"), &want).unwrap();
    let (xi, si) = (
        format!("x={}", d.join("x.npy").display()),
        format!("s={}", d.join("s.npy").display()),
    );
    let expect = format!("y={}", d.join("want.npy").display());
    let o = kiln(&[
        "run",
        p.to_str().unwrap(),
        "--input",
        &xi,
        "--input",
        &si,
        "--expect",
        &expect,
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("f32[3, 2]"), "{out}");
    let o = kiln(&["bench", p.to_str().unwrap(), "--input", &si, "--iters", "2"]);
    assert!(o.status.success(), "{}", text(&o).1);
    // Without s the reshape cannot be compiled: a clear error, no panic.
    let o = kiln(&["run", p.to_str().unwrap(), "--input", &xi]);
    assert_user_error(&o, &["Reshape"]);
}
