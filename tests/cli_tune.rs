//! `kiln tune`: tunes a shipped model in worker processes, reports per
//! workload and the whole model tuned against untuned; bad flags are
//! one-paragraph errors.

mod common;
use common::*;

#[test]
fn tune_reports_workloads_and_the_model_ratio() {
    let d = temp_dir("cli-tune");
    let plot = d.join("curve.png");
    let db = d.join("tuning.db");
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
        "--db",
        db.to_str().unwrap(),
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
    // Every trial is stored when tuning paid, only the defaults' otherwise.
    let stored = v["stored"].as_u64().unwrap();
    assert!(stored >= if v["kept"] == true { 12 } else { 1 }, "{v}");
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

/// `kiln compile` reads the database `kiln tune` wrote: kept configs apply
/// (counted in the report), `--no-db` ignores them, a damaged database is a
/// clear error that names `--no-db`.
#[test]
fn compile_uses_the_tuned_records_unless_told_not_to() {
    let d = temp_dir("cli-tune-db");
    let db = d.join("tuning.db");
    let model = "testdata/mobilenet_v2/mobilenet_v2.onnx";
    let dbs = db.to_str().unwrap();
    let o = kiln(&[
        "tune",
        model,
        "--trials",
        "40",
        "--db",
        dbs,
        "--json",
        "--in-process",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let count = |args: &[&str]| {
        let o = kiln(args);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let line = out
            .lines()
            .find(|l| l.contains("kernels with knobs from the tuning database"))
            .unwrap()
            .to_string();
        line.split_whitespace()
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    let with = count(&["compile", model, "--no-rewrite", "--db", dbs]);
    assert_eq!(
        count(&["compile", model, "--no-rewrite", "--db", dbs, "--no-db"]),
        0
    );
    if v["kept"] == true {
        assert!(with > 0, "kept settings must apply: {v}");
    } else {
        assert_eq!(with, 0, "only defaults are stored when tuning did not pay");
    }
    // Another thread count is another target: nothing applies.
    assert_eq!(
        count(&[
            "compile",
            model,
            "--no-rewrite",
            "--db",
            dbs,
            "--threads",
            "3"
        ]),
        0
    );
    // Damage the database: a clear error naming --no-db, not a panic.
    let bad = d.join("bad.db");
    std::fs::write(&bad, b"not a database at all").unwrap();
    let o = kiln(&["compile", model, "--db", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--no-db") && !err.contains("panicked"),
        "{err}"
    );
}

/// `kiln db eval-cost` on the records a tune stored: one entry per target,
/// metrics in range; a database without records of the model is a clear error.
#[test]
fn eval_cost_reports_per_target_and_refuses_models_without_records() {
    let d = temp_dir("cli-eval-cost");
    let db = d.join("tuning.db");
    let model = "testdata/bert_tiny/bert_tiny.onnx";
    let db_s = db.to_str().unwrap();
    let t = kiln(&[
        "tune",
        model,
        "--trials",
        "40",
        "--threads",
        "2",
        "--in-process",
        "--db",
        db_s,
        "--json",
    ]);
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    let o = kiln(&[
        "db",
        "--db",
        db_s,
        "eval-cost",
        model,
        "--threads",
        "2",
        "--json",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let targets = v.as_array().unwrap();
    assert_eq!(targets.len(), 1, "{v}");
    assert!(targets[0]["samples"].as_u64().unwrap() >= 1, "{v}");
    assert!(
        targets[0]["transfer"].is_null(),
        "one target, nothing to transfer from: {v}"
    );
    let why: Vec<&str> = targets[0]["not_evaluated"]
        .as_array()
        .map_or(vec![], |a| a.iter().filter_map(|x| x.as_str()).collect());
    assert!(
        why.iter()
            .any(|w| w.starts_with("transfer: no records of another target")),
        "{v}"
    );
    // Either evaluated with metrics in range, or the reason is given.
    match targets[0]["same_target"]["pairwise"].as_f64() {
        Some(p) => assert!((0.0..=1.0).contains(&p), "{v}"),
        None => assert!(why.iter().any(|w| w.starts_with("same target: ")), "{v}"),
    }
    let o = kiln(&[
        "db",
        "--db",
        db_s,
        "eval-cost",
        "testdata/mlp/mlp.onnx",
        "--threads",
        "2",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no usable records"), "{err}");
}
