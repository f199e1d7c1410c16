//! `top_k` on the shipped models: the candidates are distinct, verify, are
//! acyclic (verify checks every input is defined before its node), come out
//! the same for the same seed, start with the greedy optimum, and each
//! computes what the original graph does on random non-zero inputs
//! (reference interpreter, 1e-4 relative).

use kiln_ir::{interp, DType, Graph, Tensor};
use kiln_rewrite::extract::structure_key;
use kiln_rewrite::{candidates, graph_cost, Limits, Roofline, TopK};
use std::collections::{HashMap, HashSet};
use std::path::Path;

fn shipped(name: &str) -> Graph {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .join(name)
        .join(format!("{name}.onnx"));
    kiln_models::onnx::load(p, &Default::default())
        .unwrap()
        .graph
}

/// SplitMix64: reproducible test data.
fn next(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut x = *s;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Floats uniform in [-1, 1) and never zero; integers in [1, 8).
fn random_inputs(g: &Graph, seed: u64) -> HashMap<String, Tensor> {
    let mut s = seed;
    let mut out = HashMap::new();
    for &i in g.inputs() {
        let v = g.value(i);
        let vals: Vec<f64> = (0..v.ty.numel())
            .map(|_| {
                let r = next(&mut s);
                if v.ty.dtype.is_float() {
                    let u = (r >> 11) as f64 / (1u64 << 53) as f64;
                    if u == 0.5 {
                        0.25
                    } else {
                        2.0 * u - 1.0
                    }
                } else {
                    (1 + r % 7) as f64
                }
            })
            .collect();
        let t = Tensor::from_vec(v.ty.shape.clone(), vals).unwrap();
        let t = if v.ty.dtype == DType::F64 {
            t
        } else {
            t.cast(v.ty.dtype)
        };
        out.insert(v.name.clone(), t);
    }
    out
}

fn assert_close(want: &[Tensor], got: &[Tensor], what: &str) {
    assert_eq!(want.len(), got.len(), "{what}");
    for (w, g) in want.iter().zip(got) {
        let (w, g) = (w.to_f64_vec(), g.to_f64_vec());
        let scale = w.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
        let err = w
            .iter()
            .zip(&g)
            .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(err <= 1e-4 * scale, "{what}: error {err} vs scale {scale}");
    }
}

/// A key without constant identities (those differ between two saturations).
fn portable_key(g: &Graph) -> String {
    structure_key(g)
        .lines()
        .filter(|l| !l.starts_with("const "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `min`: candidates the model must give (the MLP has no close alternative).
fn check_model(name: &str, min: usize) {
    let g = shipped(name);
    let (limits, model) = (Limits::default(), Roofline::default());
    let opts = TopK::default();
    let cands = candidates(&g, &limits, &model, &opts).unwrap();
    assert!(
        cands.len() >= min,
        "{name}: only {} candidates",
        cands.len()
    );
    assert!(cands.len() <= opts.k);
    assert_eq!(cands[0].origin, "greedy");
    let keys: HashSet<String> = cands.iter().map(|c| structure_key(&c.graph)).collect();
    assert_eq!(keys.len(), cands.len(), "{name}: duplicates");
    for c in &cands {
        kiln_ir::verify(&c.graph).unwrap();
        assert!((graph_cost(&c.graph, &model) - c.cost).abs() < 1e-9);
    }
    let again = candidates(&g, &limits, &model, &opts).unwrap();
    let k1: Vec<String> = cands.iter().map(|c| portable_key(&c.graph)).collect();
    let k2: Vec<String> = again.iter().map(|c| portable_key(&c.graph)).collect();
    assert_eq!(k1, k2, "{name}: not deterministic");
    for seed in [7u64, 1234] {
        let f = random_inputs(&g, seed);
        let want = interp::run(&g, &f).unwrap();
        for c in &cands {
            let got = interp::run(&c.graph, &f).unwrap();
            assert_close(&want, &got, &format!("{name} {}", c.origin));
        }
    }
}

#[test]
fn top_k_on_mlp() {
    check_model("mlp", 1);
}

#[test]
fn top_k_on_bert_tiny() {
    check_model("bert_tiny", 2);
}

#[test]
fn top_k_on_mobilenet_v2() {
    check_model("mobilenet_v2", 2);
}
