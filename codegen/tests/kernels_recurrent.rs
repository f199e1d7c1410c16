//! `Recurrent` (RNN, GRU, LSTM) against the reference interpreter's op (f64),
//! on random non-zero data, over every direction, activation, clip, layout,
//! `sequence_lens`, optional input and output, batch > 1, 1–3 threads, packed
//! and plain weights, on the AVX-512 and the portable path.

mod kernels_util;

use kernels_util::Rng;
use kiln_codegen::cpu::kernels::*;
use kiln_ir::{Attr, Attrs, Op, Tensor};

/// Every activation with the alpha/beta the test gives it (ONNX name, parameters taken).
fn all_acts() -> Vec<(&'static str, RecurrentAct, Vec<f64>, Vec<f64>)> {
    use RecurrentAct::*;
    vec![
        ("Sigmoid", Sigmoid, vec![], vec![]),
        ("Tanh", Tanh, vec![], vec![]),
        ("Relu", Relu, vec![], vec![]),
        (
            "Affine",
            Affine {
                alpha: 0.75,
                beta: -0.25,
            },
            vec![0.75],
            vec![-0.25],
        ),
        ("LeakyRelu", LeakyRelu { alpha: 0.3 }, vec![0.3], vec![]),
        (
            "ThresholdedRelu",
            ThresholdedRelu { alpha: 0.125 },
            vec![0.125],
            vec![],
        ),
        (
            "ScaledTanh",
            ScaledTanh {
                alpha: 0.9,
                beta: 1.5,
            },
            vec![0.9],
            vec![1.5],
        ),
        (
            "HardSigmoid",
            HardSigmoid {
                alpha: 0.4,
                beta: 0.45,
            },
            vec![0.4],
            vec![0.45],
        ),
        ("Elu", Elu { alpha: 0.8 }, vec![0.8], vec![]),
        ("Softsign", Softsign, vec![], vec![]),
        ("Softplus", Softplus, vec![], vec![]),
    ]
}

#[derive(Clone, Debug)]
struct Case {
    kind: &'static str,
    cell: RecurrentCell,
    direction: &'static str,
    layout: i64,
    seq: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    clip: Option<f32>,
    /// Indices into `all_acts()`, `cell.acts()` per direction (empty: defaults).
    acts: Vec<usize>,
    seq_lens: Option<Vec<usize>>,
    b: bool,
    h0: bool,
    c0: bool,
    p: bool,
    /// Outputs the node has (1..=3), and which the kernel is asked for.
    outs: [bool; 3],
}

impl Case {
    fn dirs(&self) -> usize {
        if self.direction == "bidirectional" {
            2
        } else {
            1
        }
    }
    fn gates(&self) -> usize {
        self.cell.gates()
    }
}

fn attrs(c: &Case) -> Attrs {
    let mut a = Attrs::new()
        .with("direction", Attr::Str(c.direction.into()))
        .with("layout", Attr::Int(c.layout))
        .with("hidden_size", Attr::Int(c.hidden as i64));
    match c.cell {
        RecurrentCell::Gru {
            linear_before_reset,
        } => a.set("linear_before_reset", Attr::Int(linear_before_reset as i64)),
        RecurrentCell::Lstm { input_forget } => {
            a.set("input_forget", Attr::Int(input_forget as i64))
        }
        RecurrentCell::Rnn => {}
    }
    if let Some(clip) = c.clip {
        a.set("clip", Attr::Float(clip as f64));
    }
    if let Some(l) = &c.seq_lens {
        a.set(
            "sequence_lens",
            Attr::Ints(l.iter().map(|&v| v as i64).collect()),
        );
    }
    if !c.acts.is_empty() {
        let all = all_acts();
        let pick: Vec<_> = c.acts.iter().map(|&i| &all[i]).collect();
        a.set(
            "activations",
            Attr::Strs(pick.iter().map(|x| x.0.to_string()).collect()),
        );
        a.set(
            "activation_alpha",
            Attr::Floats(pick.iter().flat_map(|x| x.2.clone()).collect()),
        );
        a.set(
            "activation_beta",
            Attr::Floats(pick.iter().flat_map(|x| x.3.clone()).collect()),
        );
    }
    a
}

fn desc(c: &Case) -> RecurrentDesc {
    let defaults: &[usize] = match c.cell {
        RecurrentCell::Rnn => &[1],
        RecurrentCell::Gru { .. } => &[0, 1],
        RecurrentCell::Lstm { .. } => &[0, 1, 1],
    };
    let idx: Vec<usize> = if c.acts.is_empty() {
        (0..c.dirs())
            .flat_map(|_| defaults.iter().copied())
            .collect()
    } else {
        c.acts.clone()
    };
    let all = all_acts();
    let (seq, batch) = (c.seq, c.batch);
    RecurrentDesc {
        cell: c.cell,
        seq,
        batch,
        input: c.input,
        hidden: c.hidden,
        dirs: c.dirs(),
        reverse: c.direction == "reverse",
        batch_major: c.layout == 1,
        clip: c.clip,
        acts: idx.iter().map(|&i| all[i].1).collect(),
        seq_lens: c.seq_lens.clone(),
    }
}

/// Random operands: X, W, R, B, initial_h, initial_c, P (all present).
fn operands(rng: &mut Rng, c: &Case) -> Vec<Tensor> {
    let (nd, g, hs, ni) = (c.dirs(), c.gates(), c.hidden, c.input);
    let x_shape = if c.layout == 0 {
        vec![c.seq, c.batch, ni]
    } else {
        vec![c.batch, c.seq, ni]
    };
    let state = if c.layout == 0 {
        vec![nd, c.batch, hs]
    } else {
        vec![c.batch, nd, hs]
    };
    let mut t = |shape: Vec<usize>, scale: f32| {
        let n = shape.iter().product();
        let v = rng.vec(n).into_iter().map(|x| x * scale).collect();
        Tensor::from_vec(shape, v).unwrap()
    };
    vec![
        t(x_shape, 1.5),
        t(vec![nd, g * hs, ni], 1.5 / (ni as f32).sqrt()),
        t(vec![nd, g * hs, hs], 1.5 / (hs as f32).sqrt()),
        t(vec![nd, 2 * g * hs], 0.5),
        t(state.clone(), 0.8),
        t(state, 0.8),
        t(vec![nd, 3 * hs], 0.5),
    ]
}

fn f32s(t: &Tensor) -> &[f32] {
    t.as_slice::<f32>().unwrap()
}

/// The reference outputs (inputs absent in `c` are zeros, as ONNX defines).
fn reference(c: &Case, ops: &[Tensor]) -> Vec<Tensor> {
    let mut ins: Vec<Tensor> = ops[..3].to_vec();
    let present = [c.b, c.h0, c.c0, c.p];
    let last = present.iter().rposition(|&p| p).map_or(3, |k| k + 4);
    for (k, t) in ops.iter().enumerate().take(last).skip(3) {
        ins.push(if present[k - 3] {
            t.clone()
        } else {
            Tensor::zeros(t.dtype(), t.shape().to_vec())
        });
    }
    let refs: Vec<&Tensor> = ins.iter().collect();
    let op = Op {
        kind: c.kind.into(),
        attrs: attrs(c),
    };
    let n = if c.kind == "LSTM" { 3 } else { 2 };
    op.def().unwrap().eval(&op.attrs, &refs, n).unwrap()
}

fn check(c: &Case, knobs: RecurrentKnobs, threads: usize, what: &str) {
    let mut rng = Rng::new(c.seq as u64 * 31 + c.hidden as u64);
    let ops = operands(&mut rng, c);
    let want = reference(c, &ops);
    let wt = RecurrentWeights {
        w: f32s(&ops[1]),
        r: f32s(&ops[2]),
        b: c.b.then(|| f32s(&ops[3])),
        p: c.p.then(|| f32s(&ops[6])),
    };
    let layer = Recurrent::new(desc(c), &wt, knobs).unwrap();
    let mut outs: Vec<Vec<f32>> = want
        .iter()
        .map(|t| vec![f32::NAN; t.shape().iter().product()])
        .collect();
    let mut scratch = vec![f32::NAN; layer.scratch_len()];
    let mut it = outs.iter_mut();
    let (y, yh, yc) = (it.next().unwrap(), it.next().unwrap(), it.next());
    let io = RecurrentIo {
        x: f32s(&ops[0]),
        h0: c.h0.then(|| f32s(&ops[4])),
        c0: c.c0.then(|| f32s(&ops[5])),
        y: c.outs[0].then_some(y.as_mut_slice()),
        y_h: c.outs[1].then_some(yh.as_mut_slice()),
        y_c: yc.filter(|_| c.outs[2]).map(|v| v.as_mut_slice()),
    };
    layer.run(io, &mut scratch, threads).unwrap();
    for (k, (got, want)) in outs.iter().zip(&want).enumerate() {
        if !c.outs[k] {
            assert!(
                got.iter().all(|v| v.is_nan()),
                "{what}: output {k} written though absent"
            );
            continue;
        }
        let want = f32s(want);
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err <= 2e-5 * scale,
            "{what}: output {k} off by {err} (scale {scale}) in {c:?}"
        );
    }
}

fn base(kind: &'static str, cell: RecurrentCell) -> Case {
    Case {
        kind,
        cell,
        direction: "forward",
        layout: 0,
        seq: 5,
        batch: 3,
        input: 7,
        hidden: 19,
        clip: None,
        acts: vec![],
        seq_lens: None,
        b: true,
        h0: true,
        c0: kind == "LSTM",
        p: kind == "LSTM",
        outs: [true, true, kind == "LSTM"],
    }
}

fn cells() -> Vec<(&'static str, RecurrentCell)> {
    vec![
        ("RNN", RecurrentCell::Rnn),
        (
            "GRU",
            RecurrentCell::Gru {
                linear_before_reset: false,
            },
        ),
        (
            "GRU",
            RecurrentCell::Gru {
                linear_before_reset: true,
            },
        ),
        (
            "LSTM",
            RecurrentCell::Lstm {
                input_forget: false,
            },
        ),
        ("LSTM", RecurrentCell::Lstm { input_forget: true }),
    ]
}

/// The attribute grid: each case varies a few attributes from [`base`].
fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let n_acts = all_acts().len();
    for (ci, (kind, cell)) in cells().into_iter().enumerate() {
        let b = base(kind, cell);
        let per = cell.acts();
        for (di, direction) in ["forward", "reverse", "bidirectional"]
            .into_iter()
            .enumerate()
        {
            for layout in [0, 1] {
                let mut c = Case {
                    direction,
                    layout,
                    ..b.clone()
                };
                c.seq_lens = (layout == 1).then(|| vec![5, 2, 0]);
                c.clip = (di == 1).then_some(0.7);
                out.push(c);
            }
        }
        // Every activation in every position, with and without clip.
        for k in 0..n_acts {
            let acts: Vec<usize> = (0..2 * per).map(|j| (k + 4 * j + ci) % n_acts).collect();
            out.push(Case {
                direction: "bidirectional",
                acts,
                clip: (k % 2 == 0).then_some(1.5),
                ..b.clone()
            });
        }
        // Absent optional inputs and outputs, tails and sizes.
        out.push(Case {
            b: false,
            h0: false,
            c0: false,
            p: false,
            outs: [true, false, false],
            ..b.clone()
        });
        out.push(Case {
            b: false,
            h0: true,
            c0: false,
            p: cell.gates() == 4,
            ..b.clone()
        });
        out.push(Case {
            outs: [false, true, kind == "LSTM"],
            seq_lens: Some(vec![3, 5, 1]),
            ..b.clone()
        });
        out.push(Case {
            batch: 1,
            hidden: 48,
            input: 33,
            seq: 4,
            ..b.clone()
        });
        out.push(Case {
            batch: 2,
            hidden: 130,
            input: 16,
            seq: 3,
            direction: "bidirectional",
            ..b.clone()
        });
        out.push(Case {
            batch: 1,
            hidden: 1,
            input: 1,
            seq: 1,
            ..b.clone()
        });
    }
    out
}

fn run_all(what: &str) {
    let plain = RecurrentKnobs {
        prepack: false,
        ..RecurrentKnobs::default()
    };
    let par = RecurrentKnobs {
        step_par_min_macs: 0,
        ..RecurrentKnobs::default()
    };
    for c in cases() {
        check(
            &c,
            RecurrentKnobs::default(),
            1,
            &format!("{what} packed 1t"),
        );
        check(&c, plain, 2, &format!("{what} plain 2t"));
        check(&c, par, 3, &format!("{what} packed parallel-steps 3t"));
    }
}

/// One test drives both paths so the global portable switch is never raced.
#[test]
fn recurrent_matches_reference_simd_and_portable() {
    force_portable(false);
    run_all("default");
    force_portable(true);
    run_all("portable");
    force_portable(false);
}

#[test]
fn recurrent_bad_arguments_are_errors() {
    let c = base(
        "GRU",
        RecurrentCell::Gru {
            linear_before_reset: false,
        },
    );
    let ops = operands(&mut Rng::new(3), &c);
    let wt = RecurrentWeights {
        w: f32s(&ops[1]),
        r: f32s(&ops[2]),
        b: None,
        p: None,
    };
    let mut d = desc(&c);
    d.acts.pop();
    assert!(Recurrent::new(d, &wt, RecurrentKnobs::default()).is_err());
    let short = RecurrentWeights {
        w: &f32s(&ops[1])[1..],
        ..wt
    };
    assert!(Recurrent::new(desc(&c), &short, RecurrentKnobs::default()).is_err());
    let mut d = desc(&c);
    d.seq_lens = Some(vec![9, 1, 1]);
    assert!(Recurrent::new(d, &wt, RecurrentKnobs::default()).is_err());
    let layer = Recurrent::new(desc(&c), &wt, RecurrentKnobs::default()).unwrap();
    let mut scratch = vec![0f32; layer.scratch_len()];
    let mut y = vec![0f32; 3];
    fn io<'a>(x: &'a [f32], y: &'a mut [f32]) -> RecurrentIo<'a> {
        RecurrentIo {
            x,
            h0: None,
            c0: None,
            y: Some(y),
            y_h: None,
            y_c: None,
        }
    }
    let x = f32s(&ops[0]);
    assert!(
        layer.run(io(x, &mut y), &mut scratch, 1).is_err(),
        "short Y"
    );
    let mut y = vec![0f32; 5 * 3 * 19];
    assert!(
        layer.run(io(x, &mut y), &mut scratch, 0).is_err(),
        "zero threads"
    );
    assert!(
        layer.run(io(x, &mut y), &mut scratch[1..], 1).is_err(),
        "short scratch"
    );
    assert!(layer.run(io(x, &mut y), &mut scratch, 1).is_ok());
}
