//! The rewrite stage in `kiln compile` / `kiln run`: on by default (the
//! original and the top-k candidates measured, the fastest kept), off with
//! `--no-rewrite`; either way the shipped models still match the stored
//! ONNX Runtime outputs.

mod common;

use common::kiln;

fn dir(name: &str) -> String {
    format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// (model, inputs, outputs), each stored as `<name>.npy` next to the model.
const MODELS: &[(&str, &[&str], &[&str])] = &[
    ("mlp", &["input"], &["output"]),
    (
        "bert_tiny",
        &["input_ids", "attention_mask"],
        &["last_hidden_state", "pooler_output"],
    ),
    ("mobilenet_v2", &["input"], &["output"]),
];

fn compile_json(model: &str, extra: &[&str]) -> serde_json::Value {
    let m = format!("{}/{model}.onnx", dir(model));
    let mut args = vec!["compile", m.as_str(), "--threads", "2", "--json"];
    args.extend(extra);
    let o = kiln(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn compile_measures_candidates_by_default_and_not_with_no_rewrite() {
    for &(model, _, _) in MODELS {
        let v = compile_json(model, &[]);
        let sel = &v["rewrite"];
        let cands = sel["candidates"].as_array().unwrap();
        assert!(cands.len() >= 2, "{model}: {sel}");
        assert_eq!(cands[0]["origin"], "original", "{model}");
        let chosen = sel["chosen"].as_u64().unwrap() as usize;
        let med = |c: &serde_json::Value| c["median_ms"].as_f64().unwrap();
        assert!(cands.iter().all(|c| med(&cands[chosen]) <= med(c)), "{sel}");
        assert!(cands
            .iter()
            .all(|c| c["estimated_us"].as_f64().unwrap() > 0.0));
        assert!(v["kernels"].as_array().unwrap().len() > 1);
        let v = compile_json(model, &["--no-rewrite"]);
        assert!(v["rewrite"].is_null(), "{model}: {v}");
        assert!(v["kernels"].as_array().unwrap().len() > 1);
    }
}

#[test]
fn compile_text_lists_candidates_and_old_flag_is_accepted() {
    let m = format!("{}/mlp.onnx", dir("mlp"));
    let o = kiln(&["compile", &m, "--threads", "2", "--rewrite"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("rewrite: ") && out.contains("original"),
        "{out}"
    );
    assert!(out.contains("  * "), "{out}");
}

#[test]
fn run_matches_onnx_runtime_with_and_without_rewrite() {
    for &(model, inputs, outputs) in MODELS {
        let d = dir(model);
        let m = format!("{d}/{model}.onnx");
        for extra in [&[][..], &["--no-rewrite"][..]] {
            let mut args = vec!["run".to_string(), m.clone(), "--threads".into(), "2".into()];
            for i in inputs {
                args.extend(["--input".into(), format!("{i}={d}/{i}.npy")]);
            }
            for o in outputs {
                args.extend(["--expect".into(), format!("{o}={d}/{o}.npy")]);
            }
            args.extend(extra.iter().map(|s| s.to_string()));
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = kiln(&refs);
            assert!(
                o.status.success(),
                "{model} {extra:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}
