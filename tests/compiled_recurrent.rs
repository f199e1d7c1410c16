//! RNN, GRU and LSTM nodes compile to the `recurrent[...]` kernel (not the
//! interpreter fallback) and give the interpreter's results: constant or
//! computed weights and initial states, every direction, both layouts,
//! `sequence_lens`, clip, activations with parameters, any subset of the
//! outputs read, batch > 1, 1 and 2 threads.

use kiln::ir::{Attr, Attrs, DType, Graph, Op, Tensor, TensorType};
use kiln_runtime::{compile, CompileOptions};
use std::collections::HashMap;

#[derive(Clone, Debug)]
struct Case {
    kind: &'static str,
    attrs: Vec<(&'static str, Attr)>,
    layout: usize,
    dirs: usize,
    seq: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    /// Optional inputs present: B, initial_h, initial_c, P (a prefix, as Kiln nodes have).
    optional: usize,
    /// W, R, B, P as constants (else graph inputs).
    const_weights: bool,
    /// Which outputs the graph reads (Y, Y_h, Y_c).
    read: [bool; 3],
}

fn values(n: usize, seed: f32, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f32 + 1.0) * seed).sin() * scale)
        .collect()
}

fn gates(kind: &str) -> usize {
    match kind {
        "RNN" => 1,
        "GRU" => 3,
        _ => 4,
    }
}

/// The graph of one recurrent node and the values of its graph inputs.
fn graph(c: &Case) -> (Graph, HashMap<String, Tensor>) {
    let (g, hs, nd) = (gates(c.kind), c.hidden, c.dirs);
    let x = if c.layout == 0 {
        vec![c.seq, c.batch, c.input]
    } else {
        vec![c.batch, c.seq, c.input]
    };
    let state = if c.layout == 0 {
        vec![nd, c.batch, hs]
    } else {
        vec![c.batch, nd, hs]
    };
    let shapes = [
        ("x", x, 1.0, false),
        (
            "w",
            vec![nd, g * hs, c.input],
            1.2 / (c.input as f32).sqrt(),
            true,
        ),
        ("r", vec![nd, g * hs, hs], 1.2 / (hs as f32).sqrt(), true),
        ("b", vec![nd, 2 * g * hs], 0.4, true),
        ("h0", state.clone(), 0.7, false),
        ("c0", state, 0.7, false),
        ("p", vec![nd, 3 * hs], 0.4, true),
    ];
    let mut gr = Graph::new("rec");
    let mut feeds = HashMap::new();
    let mut ins = Vec::new();
    for (k, (name, shape, scale, weight)) in shapes.into_iter().enumerate().take(3 + c.optional) {
        let n: usize = shape.iter().product();
        let t = Tensor::from_vec(shape.clone(), values(n, 0.37 + k as f32 * 0.61, scale)).unwrap();
        let v = if weight && c.const_weights {
            gr.add_const(name, t).unwrap()
        } else {
            feeds.insert(name.to_string(), t);
            gr.add_input(name, TensorType::new(DType::F32, shape))
                .unwrap()
        };
        ins.push(v);
    }
    let mut attrs = Attrs::new().with("layout", Attr::Int(c.layout as i64));
    for (k, v) in &c.attrs {
        attrs.set(k, v.clone());
    }
    let op = Op {
        kind: c.kind.into(),
        attrs,
    };
    let names: &[&str] = if c.kind == "LSTM" {
        &["y", "yh", "yc"]
    } else {
        &["y", "yh"]
    };
    let outs = gr.add_node("rec", op, &ins, names).unwrap();
    gr.set_outputs(
        outs.iter()
            .zip(c.read)
            .filter(|(_, r)| *r)
            .map(|(&o, _)| o)
            .collect(),
    );
    (gr, feeds)
}

fn check(c: &Case) {
    let (g, feeds) = graph(c);
    let want = kiln::run(&g, &feeds).unwrap();
    for threads in [1, 2] {
        let exe = compile(&g, &CompileOptions::default().with_threads(threads)).unwrap();
        let kernels: Vec<String> = exe
            .report()
            .kernels
            .iter()
            .map(|k| k.kernel.clone())
            .collect();
        assert!(
            kernels.len() == 1 && kernels[0].starts_with("recurrent["),
            "{c:?}: {kernels:?}"
        );
        let packed = kernels[0].contains("packed");
        assert_eq!(packed, c.const_weights, "{kernels:?}");
        let got = exe.run(&feeds).unwrap();
        assert_eq!(got.len(), want.len());
        for (k, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.shape(), b.shape());
            let (a, b) = (a.as_slice::<f32>().unwrap(), b.as_slice::<f32>().unwrap());
            let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
            let err = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                err <= 2e-5 * scale,
                "{c:?} t{threads} output {k}: err {err}"
            );
        }
    }
}

fn base(kind: &'static str) -> Case {
    Case {
        kind,
        attrs: vec![],
        layout: 0,
        dirs: 1,
        seq: 6,
        batch: 3,
        input: 10,
        hidden: 21,
        optional: if kind == "LSTM" { 4 } else { 2 },
        const_weights: true,
        read: [true, true, kind == "LSTM"],
    }
}

fn strs(v: &[&str]) -> Attr {
    Attr::Strs(v.iter().map(|s| s.to_string()).collect())
}

#[test]
fn recurrent_nodes_compile_to_the_kernel_and_match_the_interpreter() {
    for kind in ["RNN", "GRU", "LSTM"] {
        let b = base(kind);
        let bidi = ("direction", Attr::Str("bidirectional".into()));
        let rev = ("direction", Attr::Str("reverse".into()));
        let cases = vec![
            b.clone(),
            Case {
                attrs: vec![rev.clone()],
                layout: 1,
                ..b.clone()
            },
            Case {
                attrs: vec![bidi.clone()],
                dirs: 2,
                ..b.clone()
            },
            Case {
                attrs: vec![
                    bidi.clone(),
                    ("sequence_lens", Attr::Ints(vec![6, 0, 3])),
                    ("clip", Attr::Float(0.8)),
                ],
                dirs: 2,
                layout: 1,
                ..b.clone()
            },
            Case {
                attrs: vec![rev, ("sequence_lens", Attr::Ints(vec![2, 6, 4]))],
                ..b.clone()
            },
            // Computed weights (as in the conformance graphs), absent optional inputs.
            Case {
                const_weights: false,
                optional: 0,
                ..b.clone()
            },
            Case {
                const_weights: false,
                attrs: vec![bidi.clone()],
                dirs: 2,
                ..b.clone()
            },
            // Only the final state read; Y unused.
            Case {
                read: [false, true, false],
                batch: 1,
                hidden: 64,
                input: 17,
                ..b.clone()
            },
            Case {
                read: [true, false, kind == "LSTM"],
                optional: 1,
                ..b.clone()
            },
            // Batch 1 with R large enough (GRU, LSTM) for steps split over threads.
            Case {
                batch: 1,
                hidden: 420,
                input: 8,
                seq: 3,
                ..b.clone()
            },
        ];
        for c in cases {
            check(&c);
        }
    }
}

#[test]
fn recurrent_activations_with_parameters_and_cell_options() {
    let cases = [
        Case {
            attrs: vec![
                (
                    "activations",
                    strs(&["HardSigmoid", "ScaledTanh", "LeakyRelu", "Elu"]),
                ),
                ("activation_alpha", Attr::Floats(vec![0.3, 0.8, 0.2, 0.9])),
                ("activation_beta", Attr::Floats(vec![0.4, 1.3])),
                ("direction", Attr::Str("bidirectional".into())),
                ("linear_before_reset", Attr::Int(1)),
            ],
            dirs: 2,
            ..base("GRU")
        },
        Case {
            attrs: vec![
                ("activations", strs(&["Sigmoid", "Softsign", "Affine"])),
                ("activation_alpha", Attr::Floats(vec![0.6])),
                ("activation_beta", Attr::Floats(vec![0.1])),
                ("input_forget", Attr::Int(1)),
                ("clip", Attr::Float(2.0)),
            ],
            ..base("LSTM")
        },
        Case {
            attrs: vec![
                ("activations", strs(&["ThresholdedRelu", "Softplus"])),
                ("activation_alpha", Attr::Floats(vec![0.05])),
                ("direction", Attr::Str("bidirectional".into())),
            ],
            dirs: 2,
            ..base("RNN")
        },
    ];
    for c in cases {
        check(&c);
    }
}
