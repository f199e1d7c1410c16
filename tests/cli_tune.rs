//! `kiln tune`: tunes a shipped model in worker processes, reports per
//! workload and the whole model tuned against untuned; bad flags are
//! one-paragraph errors.

mod common;
use common::*;

#[test]
fn tune_reports_workloads_and_the_model_ratio() {
    let d = temp_dir("cli-tune");
    let plot = d.join("curve.png");
    let o = kiln(&[
        "tune",
        "testdata/mobilenet_v2/mobilenet_v2.onnx",
        "--budget",
        "60s",
        "--trials",
        "12",
        "--threads",
        "2",
        "--plot",
        plot.to_str().unwrap(),
        "--json",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let w = v["workloads"].as_array().unwrap();
    assert!(w.len() > 10, "{v}");
    assert!(w.iter().any(|w| w["family"] == "fusion"));
    assert!(v["trials"].as_u64().unwrap() >= 12);
    assert!(v["untuned_ms"].as_f64().unwrap() > 0.0);
    assert!(v["ratio"].as_f64().unwrap() > 0.0);
    let png = std::fs::read(&plot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    for x in w.iter().filter(|x| !x["config"].is_null()) {
        assert!(x["best_us"].as_f64().unwrap() < x["default_us"].as_f64().unwrap());
    }
}

#[test]
fn tune_refuses_bad_budgets_and_missing_models() {
    for (args, needle) in [
        (
            vec!["tune", "testdata/mlp/mlp.onnx", "--budget", "soon"],
            "--budget",
        ),
        (
            vec!["tune", "testdata/mlp/mlp.onnx", "--budget", "0s"],
            "positive",
        ),
        (
            vec!["tune", "testdata/mlp/mlp.onnx", "--threads", "0"],
            "--threads",
        ),
        (vec!["tune", "no/such/model.onnx"], "no/such/model.onnx"),
        (
            vec![
                "tune",
                "testdata/mlp/mlp.onnx",
                "--trials",
                "2",
                "--plot",
                "x.gif",
            ],
            ".png or .svg",
        ),
    ] {
        let o = kiln(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}
