//! The pattern and fusion rules on the shipped BERT-tiny export: they fire
//! where the model has their forms, the fused ops are extracted, and the
//! rewritten model (interpreted and compiled) still matches the stored ONNX
//! Runtime outputs. The export (opset 17) already has single
//! `LayerNormalization` and `Softmax` ops, so a second test expands them into
//! the decomposed chains older exporters write and checks that the rules
//! recognise them again, the attention rule on top of the recognised softmax.

use kiln::ir::{npy, Attr, Graph, Op, Source, Tensor, ValueId};
use kiln_rewrite::{optimize, Limits, Report, Roofline};
use kiln_runtime::{compile, CompileOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bert_tiny")
}

fn bert() -> Graph {
    kiln::load_onnx(dir().join("bert_tiny.onnx")).unwrap().graph
}

fn feeds(g: &Graph) -> HashMap<String, Tensor> {
    g.inputs()
        .iter()
        .map(|&i| {
            let n = g.value(i).name.clone();
            (
                n.clone(),
                npy::load(dir().join(format!("{n}.npy"))).unwrap(),
            )
        })
        .collect()
}

/// Max |got - want| over max |want| for every output, vs the stored ORT outputs.
fn check_against_ort(g: &Graph, got: &[Tensor]) {
    for (&o, t) in g.outputs().iter().zip(got) {
        let want = npy::load(dir().join(format!("{}.npy", g.value(o).name))).unwrap();
        let (a, b) = (t.to_f64_vec(), want.to_f64_vec());
        let scale = b.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
        let err = a
            .iter()
            .zip(&b)
            .fold(0f64, |m, (x, y)| m.max((x - y).abs()));
        assert!(err <= 1e-4 * scale, "{}: error {err}", g.value(o).name);
    }
}

/// Runs `g` on the interpreter and compiled (no fallback), both vs ORT.
fn check_runs(g: &Graph) {
    let f = feeds(g);
    check_against_ort(g, &kiln::run(g, &f).unwrap());
    let exe = compile(g, &CompileOptions::default().with_threads(2)).unwrap();
    assert_eq!(
        exe.report().fallback_count(),
        0,
        "{:?}",
        exe.report().fallbacks
    );
    check_against_ort(g, &exe.run(&f).unwrap());
}

fn fired(r: &Report, rule: &str) -> usize {
    r.applied.get(rule).copied().unwrap_or(0)
}

fn count(r: &Report, op: &str) -> usize {
    r.ops_after.get(op).copied().unwrap_or(0)
}

#[test]
fn bert_tiny_gets_attention_gelu_and_merged_qkv() {
    let g = bert();
    let (out, r) = optimize(&g, &Limits::default(), &Roofline::default()).unwrap();
    assert!(fired(&r, "gelu-erf") >= 2, "{r:?}");
    assert!(fired(&r, "attention") >= 2, "{r:?}");
    assert!(fired(&r, "merge-parallel-linear") >= 6, "{r:?}");
    assert!(!r.kept_original && r.cost_after < r.cost_before);
    // Two layers: one Attention, one Gelu and one 3-way QKV split each.
    assert_eq!((count(&r, "Attention"), count(&r, "Gelu")), (2, 2), "{r:?}");
    assert_eq!(count(&r, "Split"), 2, "{r:?}");
    assert_eq!(count(&r, "MatMul"), 8, "{r:?}");
    assert_eq!((count(&r, "Erf"), count(&r, "Softmax")), (0, 0), "{r:?}");
    check_runs(&out);
}

#[test]
fn merging_runs_only_in_the_first_iterations() {
    let g = bert();
    let off = Limits {
        multi_iterations: 0,
        ..Limits::default()
    };
    let (_, r) = optimize(&g, &off, &Roofline::default()).unwrap();
    assert_eq!(fired(&r, "merge-parallel-linear"), 0, "{r:?}");
    assert!(fired(&r, "attention") >= 2);
    let (_, r) = optimize(&g, &Limits::default(), &Roofline::default()).unwrap();
    assert!(fired(&r, "merge-parallel-linear") > 0);
}

/// `x - mean`, `/ sqrt(mean(d^2) + eps)`, `* gamma + beta` over the last axis.
fn layer_norm(g: &mut Graph, name: &str, ins: &[ValueId], eps: f64, out: &str) -> ValueId {
    let mean = || {
        Op::new("ReduceMean")
            .with("axes", Attr::Ints(vec![-1]))
            .with("keepdims", Attr::Int(1))
    };
    let mut k = 0;
    let mut node = |g: &mut Graph, op: Op, args: &[ValueId], o: Option<&str>| {
        k += 1;
        let v = format!("{name}/v{k}");
        g.add_node(&format!("{name}/n{k}"), op, args, &[o.unwrap_or(&v)])
            .unwrap()[0]
    };
    let two = g
        .add_const(&format!("{name}/two"), Tensor::scalar(2f32))
        .unwrap();
    let e = g
        .add_const(&format!("{name}/eps"), Tensor::scalar(eps as f32))
        .unwrap();
    let m = node(g, mean(), &[ins[0]], None);
    let d = node(g, Op::new("Sub"), &[ins[0], m], None);
    let sq = node(g, Op::new("Pow"), &[d, two], None);
    let var = node(g, mean(), &[sq], None);
    let ve = node(g, Op::new("Add"), &[var, e], None);
    let s = node(g, Op::new("Sqrt"), &[ve], None);
    let q = node(g, Op::new("Div"), &[d, s], None);
    let y = node(g, Op::new("Mul"), &[q, ins[1]], None);
    node(g, Op::new("Add"), &[y, ins[2]], Some(out))
}

/// `exp(x - max x) / sum(exp(x - max x))` over the last axis.
fn softmax(g: &mut Graph, name: &str, x: ValueId, out: &str) -> ValueId {
    let red = |kind: &str| {
        Op::new(kind)
            .with("axes", Attr::Ints(vec![-1]))
            .with("keepdims", Attr::Int(1))
    };
    let v = |k: usize| format!("{name}/v{k}");
    let m = g.add_node(&v(1), red("ReduceMax"), &[x], &[&v(1)]).unwrap()[0];
    let d = g
        .add_node(&v(2), Op::new("Sub"), &[x, m], &[&v(2)])
        .unwrap()[0];
    let e = g.add_node(&v(3), Op::new("Exp"), &[d], &[&v(3)]).unwrap()[0];
    let s = g.add_node(&v(4), red("ReduceSum"), &[e], &[&v(4)]).unwrap()[0];
    g.add_node(&v(5), Op::new("Div"), &[e, s], &[out]).unwrap()[0]
}

/// `g` with every LayerNormalization and last-axis Softmax decomposed.
fn decompose(g: &Graph) -> Graph {
    let mut out = Graph::new(&g.name);
    let mut map: HashMap<ValueId, ValueId> = HashMap::new();
    for (k, v) in g.values().iter().enumerate() {
        let id = match &v.source {
            Source::Input => out.add_input(&v.name, v.ty.clone()).unwrap(),
            Source::Const(t) => out.add_const(&v.name, t.clone()).unwrap(),
            Source::Node(..) => continue,
        };
        map.insert(ValueId(k as u32), id);
    }
    for n in g.nodes() {
        let ins: Vec<ValueId> = n.inputs.iter().map(|v| map[v]).collect();
        let names: Vec<String> = n.outputs.iter().map(|&o| g.value(o).name.clone()).collect();
        let axis = n.op.attrs.int_or("axis", -1).unwrap();
        let outs = match n.op.kind.as_str() {
            "LayerNormalization" if ins.len() == 3 && names.len() == 1 && axis == -1 => {
                let eps = n.op.attrs.float_or("epsilon", 1e-5).unwrap();
                vec![layer_norm(&mut out, &n.name, &ins, eps, &names[0])]
            }
            "Softmax" if axis == -1 => vec![softmax(&mut out, &n.name, ins[0], &names[0])],
            _ => {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                out.add_node(&n.name, n.op.clone(), &ins, &refs).unwrap()
            }
        };
        for (o, v) in n.outputs.iter().zip(outs) {
            map.insert(*o, v);
        }
    }
    out.set_outputs(g.outputs().iter().map(|v| map[v]).collect());
    out
}

#[test]
fn decomposed_layer_norm_and_softmax_are_recognised_in_bert_tiny() {
    let g = decompose(&bert());
    let before = kiln_rewrite::histogram(&g);
    assert_eq!(before.get("LayerNormalization"), None);
    assert_eq!(before.get("Softmax"), None);
    let (out, r) = optimize(&g, &Limits::default(), &Roofline::default()).unwrap();
    assert!(fired(&r, "layer-norm") >= 5, "{r:?}");
    assert!(fired(&r, "softmax-stable") >= 2, "{r:?}");
    // At least the five norms; this export's biases are all zero, so a norm
    // followed by a bias add is also a norm (its beta plus that bias) and
    // extraction may emit it as a second LayerNormalization.
    assert!(count(&r, "LayerNormalization") >= 5, "{r:?}");
    assert_eq!(count(&r, "Attention"), 2, "{r:?}");
    for op in ["ReduceMean", "Sqrt", "Pow", "Exp", "ReduceMax", "ReduceSum"] {
        assert_eq!(count(&r, op), 0, "{op}: {r:?}");
    }
    check_runs(&out);
}
