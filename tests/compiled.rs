//! The compiled CPU path (`kiln_runtime`) against the reference interpreter
//! and the stored ONNX Runtime outputs: the shipped models at 1 and 2
//! threads, concurrent runs, input validation and the compile report.

use kiln::ir::{npy, Tensor};
use kiln_runtime::{compile, CompileOptions, Executable};
use std::collections::HashMap;
use std::path::Path;

fn model(name: &str) -> (kiln::models::onnx::OnnxModel, HashMap<String, Tensor>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    let m = kiln::load_onnx(dir.join(format!("{name}.onnx"))).unwrap();
    let feeds = m
        .graph
        .inputs()
        .iter()
        .map(|&i| {
            let n = m.graph.value(i).name.clone();
            let t = npy::load(dir.join(format!("{n}.npy"))).unwrap();
            (n, t)
        })
        .collect();
    (m, feeds)
}

fn max_rel_err(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.ty(), want.ty());
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let scale = w.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
    g.iter()
        .zip(&w)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

fn check_model(name: &str, threads: usize) -> Executable {
    let (m, feeds) = model(name);
    let exe = compile(&m.graph, &CompileOptions::default().with_threads(threads)).unwrap();
    let got = exe.run(&feeds).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    for (&o, t) in m.graph.outputs().iter().zip(&got) {
        let want = npy::load(dir.join(format!("{}.npy", m.graph.value(o).name))).unwrap();
        let e = max_rel_err(t, &want);
        assert!(
            e < 1e-4,
            "{name} output {}: relative error {e}",
            m.graph.value(o).name
        );
    }
    exe
}

#[test]
fn shipped_models_match_onnx_runtime_at_one_and_two_threads() {
    for name in ["mlp", "mobilenet_v2", "bert_tiny"] {
        for threads in [1, 2] {
            check_model(name, threads);
        }
    }
}

#[test]
fn concurrent_runs_agree() {
    let (m, feeds) = model("bert_tiny");
    let exe = compile(&m.graph, &CompileOptions::default().with_threads(2)).unwrap();
    let first = exe.run(&feeds).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..3 {
                    assert_eq!(exe.run(&feeds).unwrap(), first);
                }
            });
        }
    });
}

#[test]
fn run_rejects_wrong_inputs_with_clear_errors() {
    let (m, feeds) = model("mlp");
    let exe = compile(&m.graph, &CompileOptions::default().with_threads(1)).unwrap();
    let err = exe.run(&HashMap::new()).unwrap_err().to_string();
    assert!(err.contains("missing input `input`"), "{err}");
    let mut extra = feeds.clone();
    extra.insert("bogus".into(), Tensor::scalar(1.0f32));
    let err = exe.run(&extra).unwrap_err().to_string();
    assert!(err.contains("unknown input `bogus`"), "{err}");
    let wrong = HashMap::from([(
        "input".to_string(),
        Tensor::zeros(kiln::ir::DType::F32, vec![2, 784]),
    )]);
    let err = exe.run(&wrong).unwrap_err().to_string();
    assert!(err.contains("must be f32[1,784]"), "{err}");
    let err = compile(&m.graph, &CompileOptions::default().with_threads(0))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("threads"), "{err}");
}

#[test]
fn report_counts_kernels_fallbacks_and_memory() {
    let (m, _) = model("bert_tiny");
    let exe = compile(&m.graph, &CompileOptions::default().with_threads(1)).unwrap();
    let r = exe.report();
    assert_eq!(r.nodes, m.graph.nodes().len());
    let fused: usize = r.kernels.iter().map(|k| k.ops.len()).sum();
    assert_eq!(
        fused + r.aliases,
        r.nodes,
        "every node is in one kernel or a view"
    );
    assert_eq!(
        r.fallback_count(),
        r.kernels
            .iter()
            .filter(|k| k.kernel.starts_with("interpreter["))
            .count()
    );
    assert!(r.arena_bytes > 0 && r.arena_bytes <= r.unshared_bytes);
}

#[test]
fn fallback_only_matches_the_default_pipeline() {
    let (m, feeds) = model("bert_tiny");
    let base = compile(
        &m.graph,
        &CompileOptions::default().with_threads(1).fallback_only(),
    )
    .unwrap();
    let fast = compile(&m.graph, &CompileOptions::default().with_threads(2)).unwrap();
    assert_eq!(base.report().fallback_count(), base.report().kernels.len());
    let (a, b) = (base.run(&feeds).unwrap(), fast.run(&feeds).unwrap());
    for (x, y) in a.iter().zip(&b) {
        assert!(max_rel_err(x, y) < 1e-5);
    }
}

#[test]
fn gather_index_out_of_range_is_an_error_naming_the_node() {
    use kiln::ir::{DType, Graph, Op, TensorType};
    let mut g = Graph::new("g");
    let d = g
        .add_input("d", TensorType::new(DType::F32, vec![4, 3]))
        .unwrap();
    let i = g
        .add_input("i", TensorType::new(DType::I64, vec![2]))
        .unwrap();
    let y = g
        .add_node("pick", Op::new("Gather"), &[d, i], &["y"])
        .unwrap();
    g.set_outputs(y);
    let exe = compile(&g, &CompileOptions::default().with_threads(1)).unwrap();
    assert_eq!(exe.report().kernels[0].kernel, "gather[copy]");
    let data = Tensor::from_vec(vec![4, 3], (0..12).map(|v| v as f32).collect()).unwrap();
    let ok = HashMap::from([
        ("d".to_string(), data.clone()),
        (
            "i".to_string(),
            Tensor::from_vec(vec![2], vec![-1i64, 1]).unwrap(),
        ),
    ]);
    let got = exe.run(&ok).unwrap().remove(0);
    assert_eq!(got.as_slice::<f32>().unwrap(), &[9., 10., 11., 3., 4., 5.]);
    let bad = HashMap::from([
        ("d".to_string(), data),
        (
            "i".to_string(),
            Tensor::from_vec(vec![2], vec![0i64, 4]).unwrap(),
        ),
    ]);
    let err = exe.run(&bad).unwrap_err().to_string();
    assert!(err.contains("`pick`") && err.contains("index 4"), "{err}");
}

#[test]
fn exported_gelu_fuses_into_the_matmul_epilogue() {
    let src = "graph t {
  input x: f32[5,8]
  const w: f32[8,6] = [SEQ48]
  const b: f32[6] = [0.1, -0.2, 0.3, 0.0, 0.5, -0.6]
  const r2: f32[] = [1.4142135]
  const one: f32[] = [1.0]
  const half: f32[] = [0.5]
  node mm = MatMul(x, w) -> y: f32[5,6]
  node ad = Add(b, y) -> z: f32[5,6]
  node dv = Div(z, r2) -> q: f32[5,6]
  node ef = Erf(q) -> e: f32[5,6]
  node a1 = Add(e, one) -> f: f32[5,6]
  node m1 = Mul(z, f) -> h: f32[5,6]
  node m2 = Mul(h, half) -> out: f32[5,6]
  output out
}";
    let seq: Vec<String> = (0..48)
        .map(|i| format!("{}", (i as f32 * 0.37).sin()))
        .collect();
    let g = kiln::ir::text::parse(&src.replace("SEQ48", &seq.join(", "))).unwrap();
    let exe = compile(&g, &CompileOptions::default().with_threads(1)).unwrap();
    let r = exe.report();
    assert_eq!(r.kernels.len(), 1, "{:?}", r.kernels);
    assert_eq!(r.kernels[0].kernel, "matmul[packed]+bias+gelu");
    let x = Tensor::from_vec(
        vec![5, 8],
        (0..40).map(|i| (i as f32 * 0.91).cos() * 2.0).collect(),
    )
    .unwrap();
    let feeds = HashMap::from([("x".to_string(), x)]);
    let want = kiln::run(&g, &feeds).unwrap();
    let got = exe.run(&feeds).unwrap();
    assert!(max_rel_err(&got[0], &want[0]) < 1e-5);
}

fn parse(src: &str) -> kiln::ir::Graph {
    kiln::ir::text::parse(src).unwrap()
}

fn feeds_for(g: &kiln::ir::Graph) -> HashMap<String, Tensor> {
    g.inputs()
        .iter()
        .map(|&i| {
            let v = g.value(i);
            let data = (0..v.ty.numel())
                .map(|k| ((k as f32) * 0.77).sin() + 0.1)
                .collect();
            (
                v.name.clone(),
                Tensor::from_vec(v.ty.shape.clone(), data).unwrap(),
            )
        })
        .collect()
}

#[test]
fn maps_write_in_place_only_over_dead_buffers() {
    // t = softmax(x) is read only by the map: its output may reuse t's buffer.
    let g = parse(
        "graph t {
  input x: f32[4,8]
  node s = Softmax{axis=-1}(x) -> t: f32[4,8]
  node e = Exp(t) -> u: f32[4,8]
  node m = Softmax{axis=-1}(u) -> y: f32[4,8]
  output y
}",
    );
    let exe = compile(&g, &CompileOptions::default().with_threads(1)).unwrap();
    assert_eq!(exe.report().in_place, 1);
    let feeds = feeds_for(&g);
    assert!(
        max_rel_err(
            &exe.run(&feeds).unwrap()[0],
            &kiln::run(&g, &feeds).unwrap()[0]
        ) < 1e-6
    );
    // Here t is also read after the Exp, so the Exp must not overwrite it.
    let g = parse(
        "graph t {
  input x: f32[4,8]
  node s = Softmax{axis=-1}(x) -> t: f32[4,8]
  node e = Exp(t) -> u: f32[4,8]
  node m = Softmax{axis=-1}(u) -> v: f32[4,8]
  node a = Add(v, t) -> y: f32[4,8]
  output y
}",
    );
    let exe = compile(&g, &CompileOptions::default().with_threads(1)).unwrap();
    // Only the Add may (over v, dead after it); the Exp must not (t is read later).
    assert_eq!(exe.report().in_place, 1);
    let got = exe.run(&feeds).unwrap();
    assert!(max_rel_err(&got[0], &kiln::run(&g, &feeds).unwrap()[0]) < 1e-6);
}

#[test]
fn fusion_plans_are_data_that_can_be_edited_and_are_checked() {
    use kiln_runtime::fusion::{self, FusionPlan, Group, Pattern};
    let g = parse(
        "graph t {
  input x: f32[3,5]
  node a = Exp(x) -> p: f32[3,5]
  node b = Neg(p) -> q: f32[3,5]
  node c = Relu(q) -> y: f32[3,5]
  output y
}",
    );
    let opts = CompileOptions::default().with_threads(1);
    let plan = fusion::plan(&g, &opts);
    assert_eq!(plan.groups.len(), 1, "{plan:?}");
    let json = serde_json::to_string(&plan).unwrap();
    let back: FusionPlan = serde_json::from_str(&json).unwrap();
    assert_eq!(back, plan);
    // Split the chain by hand: two kernels, same result.
    let edited = FusionPlan {
        choices: Vec::new(),
        groups: vec![
            Group {
                nodes: vec![0, 1],
                pattern: Pattern::Expression,
            },
            Group {
                nodes: vec![2],
                pattern: Pattern::Single,
            },
        ],
    };
    let exe = kiln_runtime::compile_with_plan(&g, &edited, &opts).unwrap();
    assert_eq!(exe.report().kernels.len(), 2);
    let feeds = feeds_for(&g);
    assert!(
        max_rel_err(
            &exe.run(&feeds).unwrap()[0],
            &kiln::run(&g, &feeds).unwrap()[0]
        ) < 1e-6
    );
    // Missing nodes, duplicates and wrong order are refused.
    for bad in [
        vec![Group {
            nodes: vec![0, 1],
            pattern: Pattern::Expression,
        }],
        vec![
            Group {
                nodes: vec![0, 1, 2],
                pattern: Pattern::Expression,
            },
            Group {
                nodes: vec![2],
                pattern: Pattern::Single,
            },
        ],
        vec![
            Group {
                nodes: vec![2],
                pattern: Pattern::Single,
            },
            Group {
                nodes: vec![0, 1],
                pattern: Pattern::Expression,
            },
        ],
    ] {
        let err = kiln_runtime::compile_with_plan(
            &g,
            &FusionPlan {
                groups: bad,
                choices: Vec::new(),
            },
            &opts,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("invalid fusion plan"), "{err}");
    }
}
