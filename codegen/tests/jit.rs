//! The expression JIT against the naive evaluator: one-node graphs lowered
//! with `kiln_ir::expr::lower`, compiled with the default schedule and with
//! explicit schedules (split, reorder, fuse, vectorize, unroll), run on
//! random inputs (never zero) of odd sizes, compared with `expr::eval`.

use kiln_codegen::cpu::jit::{
    compute_type, default_schedule, schedule_with, strided_map, ExprKernel, JitOptions,
    ScheduleKnobs,
};
use kiln_codegen::CodegenError;
use kiln_ir::expr::inline::map_reads;
use kiln_ir::expr::{
    apply, eval, lower, Access, AffineExpr, ScalarExpr, Schedule, Step, TensorExpr,
};
use kiln_ir::{Attr, DType, Graph, Op, Tensor, TensorType};

#[derive(Clone, Copy)]
enum Gen {
    Signed,
    Positive,
    SmallInt,
    Bool,
    /// In [-6, 6], every other value a multiple of 1/2 (ties for Round).
    Wide,
    /// NaN, ±inf and finite values.
    Special,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn value(&mut self, g: Gen) -> f64 {
        let u = self.next();
        match g {
            Gen::Signed => (0.1 + 0.9 * u) * if self.next() < 0.5 { -1.0 } else { 1.0 },
            Gen::Positive => 0.1 + 1.9 * u,
            Gen::SmallInt => [-2.0, -1.0, 1.0, 2.0][(u * 4.0) as usize % 4],
            Gen::Bool => (u < 0.5) as u8 as f64,
            Gen::Wide => {
                let v = 12.0 * u - 6.0;
                let v = if self.next() < 0.5 {
                    (v * 2.0).round() / 2.0
                } else {
                    v
                };
                if v == 0.0 {
                    0.5
                } else {
                    v
                }
            }
            Gen::Special => {
                [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5, -2.0][(u * 5.0) as usize % 5]
            }
        }
    }
    fn tensor(&mut self, d: DType, shape: &[usize], g: Gen) -> Tensor {
        let v: Vec<f64> = (0..shape.iter().product()).map(|_| self.value(g)).collect();
        Tensor::from_vec(shape.to_vec(), v).unwrap().cast(d)
    }
}

type In<'a> = (DType, &'a [usize], Gen);

/// Lowers a one-node graph of `op` over `ins`.
fn lowered(op: Op, ins: &[In]) -> TensorExpr {
    let mut g = Graph::new("t");
    let mut ids = vec![];
    for (k, (d, s, _)) in ins.iter().enumerate() {
        let ty = TensorType::new(*d, s.to_vec());
        ids.push(g.add_input(&format!("x{k}"), ty).unwrap());
    }
    let kind = op.kind.clone();
    let out = g.add_node("n", op, &ids, &["y"]).unwrap();
    g.set_outputs(out);
    let node = &g.nodes()[0];
    lower(&g, node)
        .unwrap()
        .unwrap_or_else(|| panic!("{kind} did not lower"))
}

fn lanes(e: &TensorExpr) -> usize {
    16 / compute_type(e).unwrap().bytes() as usize
}

/// A few explicit schedules that fit `e`'s iterators.
fn schedules(e: &TensorExpr) -> Vec<Schedule> {
    let l = lanes(e);
    let outs: Vec<String> = e.iters.iter().map(|i| i.name.clone()).collect();
    let reds: Vec<String> = e
        .reduce
        .iter()
        .flat_map(|r| r.iters.iter().map(|i| i.name.clone()))
        .collect();
    let mut v = vec![Schedule::default()];
    if let Some(last) = outs.last() {
        let (o, i) = (format!("{last}.o"), format!("{last}.i"));
        v.push(Schedule::new(vec![
            Step::Split {
                iter: last.clone(),
                factor: 3,
            },
            Step::Unroll {
                iter: i.clone(),
                factor: 3,
            },
        ]));
        let mut s = vec![
            Step::Split {
                iter: last.clone(),
                factor: 8,
            },
            Step::Vectorize {
                iter: i.clone(),
                lanes: l,
            },
            Step::Unroll { iter: i, factor: 2 },
        ];
        if outs.len() >= 2 {
            s.push(Step::Reorder {
                order: vec![o, outs[0].clone()],
            });
        }
        v.push(Schedule::new(s));
        v.push(Schedule::new(vec![Step::Vectorize {
            iter: last.clone(),
            lanes: l,
        }]));
    }
    if outs.len() >= 2 {
        let fused = format!("{}_{}", outs[outs.len() - 2], outs[outs.len() - 1]);
        v.push(Schedule::new(vec![
            Step::Fuse {
                outer: outs[outs.len() - 2].clone(),
                inner: outs[outs.len() - 1].clone(),
            },
            Step::Split {
                iter: fused.clone(),
                factor: 5,
            },
            Step::Vectorize {
                iter: format!("{fused}.i"),
                lanes: l,
            },
        ]));
    }
    if let Some(r) = reds.last() {
        v.push(Schedule::new(vec![
            Step::Split {
                iter: r.clone(),
                factor: 4,
            },
            Step::Vectorize {
                iter: format!("{r}.i"),
                lanes: l,
            },
            Step::Unroll {
                iter: format!("{r}.o"),
                factor: 2,
            },
        ]));
        v.push(Schedule::new(vec![
            Step::Vectorize {
                iter: r.clone(),
                lanes: l,
            },
            Step::Unroll {
                iter: r.clone(),
                factor: 3,
            },
        ]));
    }
    v
}

fn close(a: f64, b: f64, red: usize) -> bool {
    (a - b).abs() <= 1e-5 * b.abs() + 2e-6 * red.max(1) as f64 || (a.is_nan() && b.is_nan())
}

/// Runs `e` compiled with `s` and checks it against the evaluator.
/// The ways of computing a vectorized map: f32x4 inline (`avx512` off),
/// the default AVX-512 choice (chunk helpers or a tape), and every map
/// that allows it as a tape, functions or not (on CPUs without AVX-512F,
/// all three are the f32x4 code).
fn both_paths() -> [JitOptions; 3] {
    let all_tape = JitOptions {
        tape_ops_per_fn: usize::MAX,
        tape_plain_ops: usize::MAX,
        ..JitOptions::default()
    };
    let d = |avx512| JitOptions {
        avx512,
        ..JitOptions::default()
    };
    [d(false), d(true), all_tape]
}

fn check_with(e: &TensorExpr, s: &Schedule, feeds: &[Tensor], want: &Tensor) {
    for opts in both_paths() {
        check_opts(e, s, feeds, want, &opts);
    }
}

fn check_opts(e: &TensorExpr, s: &Schedule, feeds: &[Tensor], want: &Tensor, opts: &JitOptions) {
    let k = ExprKernel::compile(e, s, opts).unwrap_or_else(|err| panic!("{err}\n{e}\n{s:?}"));
    let refs: Vec<&Tensor> = feeds.iter().collect();
    let red = e.reduce_points();
    for threads in [1, 3] {
        let mut out = Tensor::zeros(e.output.dtype, e.output.shape.clone());
        k.run_threads(&refs, &mut out, threads).unwrap();
        for (i, (a, b)) in out.to_f64_vec().iter().zip(want.to_f64_vec()).enumerate() {
            assert!(
                close(*a, b, red),
                "element {i}: jit {a}, eval {b}\n{}\n{s:?}\n{opts:?}",
                k.loop_nest()
            );
        }
    }
}

/// Lowers, then checks the default and the explicit schedules.
fn check(op: Op, ins: &[In]) {
    let e = lowered(op, ins);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ e.output.numel() as u64);
    let feeds: Vec<Tensor> = ins.iter().map(|(d, s, g)| rng.tensor(*d, s, *g)).collect();
    let want = eval(&e, &feeds.iter().collect::<Vec<_>>()).unwrap();
    check_with(&e, &default_schedule(&e), &feeds, &want);
    for s in schedules(&e) {
        check_with(&e, &s, &feeds, &want);
    }
}

const F: DType = DType::F32;
const S: Gen = Gen::Signed;

#[test]
fn unary_ops() {
    for k in [
        "Relu",
        "Sigmoid",
        "Tanh",
        "Exp",
        "Neg",
        "Abs",
        "Erf",
        "Reciprocal",
        "Floor",
        "Ceil",
        "Sin",
        "Cos",
    ] {
        check(Op::new(k), &[(F, &[3, 7, 5], S)]);
    }
    for k in ["Log", "Sqrt"] {
        check(Op::new(k), &[(F, &[13], Gen::Positive)]);
        check(Op::new(k), &[(DType::F64, &[3, 5], Gen::Positive)]);
    }
    let clip = Op::new("Clip")
        .with("min", Attr::Float(-0.3))
        .with("max", Attr::Float(0.6));
    check(clip, &[(F, &[4, 9], S)]);
}

#[test]
fn binary_ops_broadcast() {
    let shapes: [(&[usize], &[usize]); 5] = [
        (&[7, 9], &[7, 9]),
        (&[2, 1, 5], &[3, 1]),
        (&[5], &[3, 1, 5]),
        (&[], &[2, 11]),
        (&[1, 1], &[17]),
    ];
    for k in ["Add", "Sub", "Mul", "Div", "Max", "Min"] {
        for (a, b) in shapes {
            check(Op::new(k), &[(F, a, S), (F, b, S)]);
        }
    }
    check(Op::new("Pow"), &[(F, &[2, 7], Gen::Positive), (F, &[7], S)]);
    check(Op::new("Mul"), &[(F, &[], S), (F, &[], S)]);
    check(
        Op::new("Add"),
        &[(DType::F64, &[3, 5], S), (DType::F64, &[5], S)],
    );
    check(
        Op::new("Sum"),
        &[(F, &[3, 1], S), (F, &[6], S), (F, &[3, 6], S)],
    );
}

#[test]
fn comparisons_where_cast() {
    let (a, b): (&[usize], &[usize]) = (&[3, 9], &[9]);
    for k in ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"] {
        check(Op::new(k), &[(F, a, Gen::SmallInt), (F, b, Gen::SmallInt)]);
        check(
            Op::new(k),
            &[
                (DType::I32, a, Gen::SmallInt),
                (DType::I32, b, Gen::SmallInt),
            ],
        );
    }
    let cond = (DType::Bool, &[3usize, 1][..], Gen::Bool);
    check(Op::new("Where"), &[cond, (F, &[6], S), (F, &[2, 1, 1], S)]);
    let to = |d| Op::new("Cast").with("to", Attr::DType(d));
    check(to(DType::I32), &[(F, &[5, 3], Gen::SmallInt)]);
    check(to(DType::I32), &[(F, &[5, 3], S)]);
    check(to(DType::U8), &[(F, &[11], S)]);
    check(to(DType::I64), &[(F, &[11], S)]);
    check(to(DType::F64), &[(F, &[5, 2], S)]);
    check(to(DType::F32), &[(DType::I32, &[7], Gen::SmallInt)]);
    check(to(DType::F32), &[(DType::U8, &[9], Gen::Positive)]);
    check(to(DType::Bool), &[(F, &[6], Gen::SmallInt)]);
    check(to(DType::F32), &[(DType::Bool, &[10], Gen::Bool)]);
}

#[test]
fn matmul_and_gemm() {
    let cases: [(&[usize], &[usize]); 5] = [
        (&[5, 7], &[7, 9]),
        (&[2, 3, 6], &[6, 5]),
        (&[9], &[9, 6]),
        (&[5, 11], &[11]),
        (&[1, 3, 5], &[2, 5, 1]),
    ];
    for (a, b) in cases {
        check(Op::new("MatMul"), &[(F, a, S), (F, b, S)]);
    }
    let t = Op::new("Gemm")
        .with("transA", Attr::Int(1))
        .with("transB", Attr::Int(1))
        .with("alpha", Attr::Float(0.5))
        .with("beta", Attr::Float(-2.0));
    check(t, &[(F, &[4, 3], S), (F, &[5, 4], S), (F, &[5], S)]);
}

#[test]
fn reductions() {
    let x: In = (F, &[3, 5, 13], S);
    for k in [
        "ReduceSum",
        "ReduceMean",
        "ReduceMax",
        "ReduceMin",
        "ReduceProd",
    ] {
        check(Op::new(k), &[x]);
        check(Op::new(k).with("axes", Attr::Ints(vec![1])), &[x]);
        check(Op::new(k).with("axes", Attr::Ints(vec![-1])), &[x]);
        let two = Op::new(k)
            .with("axes", Attr::Ints(vec![-1, 0]))
            .with("keepdims", Attr::Int(0));
        check(two, &[x]);
    }
    check(
        Op::new("ReduceSum").with("axes", Attr::Ints(vec![0])),
        &[(DType::F64, &[7, 6], S)],
    );
    check(Op::new("GlobalAveragePool"), &[(F, &[2, 3, 5, 7], S)]);
    check(Op::new("GlobalAveragePool"), &[(F, &[1, 2, 9], S)]);
    // Everything reduced to a rank-0 output (no output loops).
    check(
        Op::new("ReduceMax").with("keepdims", Attr::Int(0)),
        &[(F, &[5, 7], S)],
    );
    check(
        Op::new("ReduceSum").with("axes", Attr::Ints(vec![1])),
        &[(F, &[6, 1], S)],
    );
}

/// Every point of the schedule knobs (loop fusion, strided-copy tile,
/// unroll with a reduction) keeps the evaluator's result: a transposing
/// copy (tiled by default), reductions over the last, a middle and two
/// axes, a small matmul and a broadcasting map.
#[test]
fn schedule_knobs_keep_results() {
    let cases: Vec<(Op, Vec<In>)> = vec![
        (Op::new("Transpose"), vec![(F, &[40, 36], S)]),
        (
            Op::new("ReduceSum").with("axes", Attr::Ints(vec![-1])),
            vec![(F, &[6, 5, 37], S)],
        ),
        (
            Op::new("ReduceMax").with("axes", Attr::Ints(vec![1])),
            vec![(F, &[6, 21, 19], S)],
        ),
        (
            Op::new("ReduceMean").with("axes", Attr::Ints(vec![0, 2])),
            vec![(F, &[4, 9, 18], S)],
        ),
        (Op::new("MatMul"), vec![(F, &[7, 33], S), (F, &[33, 10], S)]),
        (Op::new("Add"), vec![(F, &[3, 8, 20], S), (F, &[8, 1], S)]),
    ];
    for (op, ins) in cases {
        let e = lowered(op, &ins);
        assert_eq!(
            e.reduce.is_none() && e.inputs.len() == 1,
            strided_map(&e),
            "{e}"
        );
        let mut rng = Rng(7);
        let feeds: Vec<Tensor> = ins.iter().map(|(d, s, g)| rng.tensor(*d, s, *g)).collect();
        let want = eval(&e, &feeds.iter().collect::<Vec<_>>()).unwrap();
        for fuse in [false, true] {
            for tile in [0, 8, 16, 32] {
                for unroll in [1, 2, 8] {
                    let k = ScheduleKnobs { fuse, tile, unroll };
                    check_with(&e, &schedule_with(&e, &k), &feeds, &want);
                }
            }
        }
        assert_eq!(
            default_schedule(&e),
            schedule_with(&e, &ScheduleKnobs::default())
        );
    }
}

#[test]
fn layout_ops() {
    let x: In = (F, &[3, 5, 6], S);
    check(Op::new("Transpose"), &[x]);
    check(
        Op::new("Transpose").with("perm", Attr::Ints(vec![1, 2, 0])),
        &[x],
    );
    check(
        Op::new("Transpose").with("perm", Attr::Ints(vec![0, 2, 1])),
        &[x],
    );
    for shape in [
        vec![15, 6],
        vec![6, 15],
        vec![90],
        vec![1, 3, 30, 1],
        vec![9, 10],
        vec![3, 2, 15],
    ] {
        check(Op::new("Reshape").with("shape", Attr::Ints(shape)), &[x]);
    }
    check(Op::new("Flatten").with("axis", Attr::Int(2)), &[x]);
    check(
        Op::new("Unsqueeze").with("axes", Attr::Ints(vec![0, 3])),
        &[x],
    );
    check(Op::new("Identity"), &[(DType::I32, &[9], Gen::SmallInt)]);
}

#[test]
fn conv_2d() {
    let ints = |v: &[i64]| Attr::Ints(v.to_vec());
    let conv = |attrs: &[(&str, Attr)]| {
        attrs
            .iter()
            .fold(Op::new("Conv"), |op, (k, v)| op.with(k, v.clone()))
    };
    check(conv(&[]), &[(F, &[1, 2, 5, 6], S), (F, &[3, 2, 3, 3], S)]);
    let op = conv(&[
        ("pads", ints(&[1, 2, 0, 1])),
        ("strides", ints(&[2, 1])),
        ("dilations", ints(&[1, 2])),
    ]);
    check(
        op,
        &[(F, &[2, 3, 7, 8], S), (F, &[4, 3, 3, 2], S), (F, &[4], S)],
    );
    let dw = conv(&[("pads", ints(&[1, 1, 1, 1])), ("group", Attr::Int(4))]);
    check(
        dw,
        &[(F, &[1, 4, 5, 9], S), (F, &[4, 1, 3, 3], S), (F, &[4], S)],
    );
}

fn add_expr() -> TensorExpr {
    lowered(Op::new("Add"), &[(F, &[4, 6], S), (F, &[6], S)])
}

#[test]
fn bad_schedules_are_errors() {
    let e = add_expr();
    let bad = [
        Step::Split {
            iter: "nope".into(),
            factor: 2,
        },
        Step::Split {
            iter: "d1".into(),
            factor: 0,
        },
        Step::Vectorize {
            iter: "d1".into(),
            lanes: 3,
        },
        Step::Fuse {
            outer: "d1".into(),
            inner: "d0".into(),
        },
        Step::Parallel { iter: "d1".into() },
        Step::Pack {
            input: 0,
            axis: 9,
            block: 4,
        },
        Step::CacheRead {
            input: 0,
            at: "nope".into(),
        },
    ];
    for step in bad {
        let s = Schedule::new(vec![step.clone()]);
        let err = ExprKernel::compile(&e, &s, &JitOptions::default()).err();
        assert!(
            matches!(err, Some(CodegenError::Schedule(_))),
            "{step:?}: {err:?}"
        );
    }
    // A vector width that is not 128 bits is refused, not ignored.
    let s = Schedule::new(vec![Step::Vectorize {
        iter: "d1".into(),
        lanes: 8,
    }]);
    let err = ExprKernel::compile(&e, &s, &JitOptions::default()).err();
    assert!(
        matches!(err, Some(CodegenError::Unsupported { .. })),
        "{err:?}"
    );
    // Reduction loops may not enclose output loops.
    let m = lowered(Op::new("MatMul"), &[(F, &[3, 4], S), (F, &[4, 5], S)]);
    let names: Vec<String> = m.all_iters().iter().map(|i| i.name.clone()).collect();
    let s = Schedule::new(vec![Step::Reorder {
        order: vec![names[2].clone(), names[0].clone()],
    }]);
    assert!(apply(&m, &s).is_err());
    // A vector loop whose value bounds an inner (tail) loop.
    let s = Schedule::new(vec![
        Step::Split {
            iter: "d1".into(),
            factor: 4,
        },
        Step::Vectorize {
            iter: "d1.o".into(),
            lanes: 4,
        },
    ]);
    assert!(apply(&e, &s).is_err());
    // Two vector loops.
    let s = Schedule::new(vec![
        Step::Vectorize {
            iter: "d0".into(),
            lanes: 4,
        },
        Step::Vectorize {
            iter: "d1".into(),
            lanes: 4,
        },
    ]);
    assert!(apply(&e, &s).is_err());
}

#[test]
fn unsupported_dtypes_are_refused() {
    let e = lowered(
        Op::new("Cast").with("to", Attr::DType(DType::F16)),
        &[(F, &[6], S)],
    );
    let err = ExprKernel::compile(&e, &default_schedule(&e), &JitOptions::default()).err();
    assert!(
        matches!(err, Some(CodegenError::Unsupported { .. })),
        "{err:?}"
    );
    let mut e = lowered(Op::new("Neg"), &[(F, &[6], S)]);
    e.inputs[0].ty.dtype = DType::I64;
    let err = ExprKernel::compile(&e, &Schedule::default(), &JitOptions::default()).err();
    assert!(
        matches!(err, Some(CodegenError::Unsupported { .. })),
        "{err:?}"
    );
    let e = lowered(Op::new("Relu"), &[(DType::F16, &[6], S)]);
    let err = ExprKernel::compile(&e, &Schedule::default(), &JitOptions::default()).err();
    assert!(
        matches!(err, Some(CodegenError::Unsupported { .. })),
        "{err:?}"
    );
}

#[test]
fn run_checks_arguments() {
    let e = add_expr();
    let k = ExprKernel::compile(&e, &default_schedule(&e), &JitOptions::default()).unwrap();
    let a = Tensor::zeros(F, vec![4, 6]);
    let b = Tensor::zeros(F, vec![5]);
    let mut out = Tensor::zeros(F, vec![4, 6]);
    assert!(k.run(&[&a, &b], &mut out).is_err());
    assert!(k.run(&[&a], &mut out).is_err());
    let mut wrong = Tensor::zeros(DType::F64, vec![4, 6]);
    assert!(k.run(&[&a, &a], &mut wrong).is_err());
    assert!(matches!(
        k.run_threads(&[&a, &a], &mut out, 0),
        Err(CodegenError::ZeroThreads)
    ));
}

#[test]
fn schedules_round_trip_through_json() {
    let e = lowered(
        Op::new("ReduceMean").with("axes", Attr::Ints(vec![-1])),
        &[(F, &[8, 33], S)],
    );
    for s in std::iter::once(default_schedule(&e)).chain(schedules(&e)) {
        let text = serde_json::to_string(&s).unwrap();
        let back: Schedule = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}

#[test]
fn kernels_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<ExprKernel>();
}

#[test]
fn loop_nest_golden() {
    let e = lowered(Op::new("MatMul"), &[(F, &[5, 7], S), (F, &[7, 6], S)]);
    let names: Vec<String> = e.all_iters().iter().map(|i| i.name.clone()).collect();
    let s = Schedule::new(vec![
        Step::Split {
            iter: names[1].clone(),
            factor: 4,
        },
        Step::Vectorize {
            iter: format!("{}.i", names[1]),
            lanes: 4,
        },
        Step::Unroll {
            iter: names[2].clone(),
            factor: 2,
        },
        Step::Parallel {
            iter: names[0].clone(),
        },
    ]);
    let got = apply(&e, &s).unwrap().to_string();
    assert_eq!(got, include_str!("golden/matmul_nest.txt"), "\n{got}");
}

/// Vector exp/tanh/erf against f64 over a wide range (overflow, denormals,
/// tiny arguments), with odd sizes so scalar tails run too.
#[test]
fn vector_math_accuracy() {
    let n = 4001;
    let v: Vec<f32> = (0..n)
        .map(|i| -110.0 + 200.0 * i as f32 / n as f32)
        .collect();
    let tiny: Vec<f32> = (0..n).map(|i| (i as f32 - 2000.0) * 1e-5).collect();
    let erf = libm::erf as fn(f64) -> f64;
    for (k, f) in [
        ("Exp", f64::exp as fn(f64) -> f64),
        ("Tanh", f64::tanh),
        ("Erf", erf),
    ] {
        let e = lowered(Op::new(k), &[(F, &[n], S)]);
        let kern = ExprKernel::compile(&e, &default_schedule(&e), &JitOptions::default()).unwrap();
        for xs in [&v, &tiny] {
            let x = Tensor::from_vec(vec![n], xs.clone()).unwrap();
            let mut out = Tensor::zeros(F, vec![n]);
            kern.run(&[&x], &mut out).unwrap();
            for (a, &xi) in out.as_slice::<f32>().unwrap().iter().zip(xs.iter()) {
                let want = f(xi as f64) as f32;
                // erf above 1 is within 1.5e-7 absolute, where erf > 0.84.
                let tol = if k == "Erf" { 4e-7 } else { 2e-6 };
                let ok = (a - want).abs() <= tol * want.abs() + 1e-38 || a == &want;
                assert!(ok, "{k}({xi}) = {a}, want {want}");
            }
        }
    }
}

#[test]
fn unoptimized_and_scalar_options_agree() {
    let e = lowered(Op::new("Tanh"), &[(F, &[3, 11], S)]);
    let x = Rng(7).tensor(F, &[3, 11], S);
    let want = eval(&e, &[&x]).unwrap();
    for opts in [
        JitOptions {
            optimize: false,
            ..Default::default()
        },
        JitOptions {
            allow_simd: false,
            allow_fma: false,
            ..Default::default()
        },
    ] {
        let k = ExprKernel::compile(&e, &default_schedule(&e), &opts).unwrap();
        let mut out = Tensor::zeros(F, vec![3, 11]);
        k.run(&[&x], &mut out).unwrap();
        for (a, b) in out.to_f64_vec().iter().zip(want.to_f64_vec()) {
            assert!(close(*a, b, 1), "{a} vs {b} with {opts:?}");
        }
    }
}

/// A random schedule over `e`'s loops: a fusion, splits, a shuffle of output loops
/// and of reduction loops, one vectorized loop, unrolls. May be invalid.
fn random_schedule(e: &TensorExpr, rng: &mut Rng) -> Schedule {
    let pick = |rng: &mut Rng, n: usize| (rng.next() * n as f64) as usize % n.max(1);
    let mut outs: Vec<String> = e.iters.iter().map(|i| i.name.clone()).collect();
    let mut reds: Vec<String> = e
        .reduce
        .iter()
        .flat_map(|r| &r.iters)
        .map(|i| i.name.clone())
        .collect();
    let mut steps = vec![];
    if outs.len() >= 2 && rng.next() < 0.4 {
        let k = pick(rng, outs.len() - 1);
        let (a, b) = (outs[k].clone(), outs.remove(k + 1));
        steps.push(Step::Fuse {
            outer: a.clone(),
            inner: b.clone(),
        });
        outs[k] = format!("{a}_{b}");
    }
    for _ in 0..2 {
        let red = !reds.is_empty() && rng.next() < 0.4;
        let list = if red { &mut reds } else { &mut outs };
        if list.is_empty() {
            continue;
        }
        let k = pick(rng, list.len());
        let name = list.remove(k);
        let factor = 1 + pick(rng, 6);
        steps.push(Step::Split {
            iter: name.clone(),
            factor,
        });
        list.insert(k, format!("{name}.i"));
        list.insert(k, format!("{name}.o"));
    }
    for list in [&mut outs, &mut reds] {
        for k in (1..list.len()).rev() {
            list.swap(k, pick(rng, k + 1));
        }
        if list.len() > 1 {
            steps.push(Step::Reorder {
                order: list.clone(),
            });
        }
    }
    let all: Vec<String> = outs.iter().chain(&reds).cloned().collect();
    if !all.is_empty() {
        let v = all[pick(rng, all.len())].clone();
        steps.push(Step::Vectorize {
            iter: v.clone(),
            lanes: lanes(e),
        });
        if rng.next() < 0.5 {
            steps.push(Step::Unroll {
                iter: v,
                factor: 2 + pick(rng, 3),
            });
        }
        let u = all[pick(rng, all.len())].clone();
        steps.push(Step::Unroll { iter: u, factor: 2 });
    }
    Schedule::new(steps)
}

#[test]
fn random_schedules_agree() {
    let cases: Vec<(Op, Vec<In>)> = vec![
        (Op::new("MatMul"), vec![(F, &[5, 7], S), (F, &[7, 9], S)]),
        (
            Op::new("ReduceMax").with("axes", Attr::Ints(vec![0, 2])),
            vec![(F, &[3, 5, 6], S)],
        ),
        (
            Op::new("ReduceMean").with("axes", Attr::Ints(vec![1])),
            vec![(F, &[4, 9, 5], S)],
        ),
        (
            Op::new("Transpose").with("perm", Attr::Ints(vec![2, 0, 1])),
            vec![(F, &[3, 5, 7], S)],
        ),
        (Op::new("Add"), vec![(F, &[2, 9, 5], S), (F, &[9, 1], S)]),
        (
            Op::new("Reshape").with("shape", Attr::Ints(vec![5, 18])),
            vec![(F, &[3, 5, 6], S)],
        ),
    ];
    let ints = |v: &[i64]| Attr::Ints(v.to_vec());
    let conv = Op::new("Conv")
        .with("pads", ints(&[1, 0, 1, 2]))
        .with("strides", ints(&[1, 2]));
    let conv_ins: Vec<In> = vec![(F, &[1, 2, 6, 7], S), (F, &[3, 2, 3, 2], S)];
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let (mut ran, mut refused) = (0, 0);
    for (op, ins) in cases.into_iter().chain([(conv, conv_ins)]) {
        let e = lowered(op, &ins);
        let feeds: Vec<Tensor> = ins.iter().map(|(d, s, g)| rng.tensor(*d, s, *g)).collect();
        let want = eval(&e, &feeds.iter().collect::<Vec<_>>()).unwrap();
        for _ in 0..60 {
            let s = random_schedule(&e, &mut rng);
            if apply(&e, &s).is_err() {
                refused += 1;
                continue;
            }
            check_with(&e, &s, &feeds, &want);
            ran += 1;
        }
    }
    assert!(
        ran > 60,
        "only {ran} random schedules were valid ({refused} refused)"
    );
}

/// The activation family (`lower/activation.rs`) compiled (vector body and
/// scalar tails: 3x7x5 is not a multiple of 4) against the evaluator.
#[test]
fn activations() {
    let x: In = (F, &[3, 7, 5], Gen::Wide);
    for k in [
        "HardSigmoid",
        "HardSwish",
        "Gelu",
        "Mish",
        "Softplus",
        "Softsign",
        "Swish",
        "Elu",
        "Selu",
        "Celu",
        "LeakyRelu",
        "ThresholdedRelu",
        "Shrink",
        "Sign",
        "Round",
    ] {
        check(Op::new(k), &[x]);
    }
    let tanh = Op::new("Gelu").with("approximate", Attr::Str("tanh".into()));
    check(tanh, &[x]);
    check(Op::new("Round"), &[(DType::F64, &[3, 5], Gen::Wide)]);
    check(Op::new("PRelu"), &[x, (F, &[7, 1], S)]);
    for fmod in [0, 1] {
        let m = Op::new("Mod").with("fmod", Attr::Int(fmod));
        check(m, &[x, (F, &[5], Gen::Wide)]);
    }
    let s: In = (F, &[6, 9], Gen::Special);
    check(Op::new("IsNaN"), &[s]);
    check(Op::new("IsInf"), &[s]);
    check(
        Op::new("Pow"),
        &[(F, &[4, 9], Gen::Wide), (F, &[9], Gen::Wide)],
    );
}

/// Maps whose functions run as AVX-512 chunk helpers, against the f32x4
/// path and the evaluator: chains with several (nested, shared, two-input)
/// function nodes, lengths around the chunk and vector sizes (tails not a
/// multiple of 16 or 4), chunks of 16, 48 and 1024 elements, 1 to 3
/// threads, a broadcast second input.
#[test]
fn chunked_maps_agree() {
    let tanh = || Op::new("Gelu").with("approximate", Attr::Str("tanh".into()));
    let ops: Vec<(Op, Gen)> = vec![
        (Op::new("Sigmoid"), Gen::Wide),
        (tanh(), Gen::Wide),
        (Op::new("Gelu"), Gen::Wide),
        (Op::new("Mish"), Gen::Wide),
        (Op::new("Softplus"), Gen::Wide),
        (Op::new("Log"), Gen::Positive),
        (Op::new("Sin"), Gen::Wide),
        (Op::new("Cos"), Gen::Special),
        (Op::new("Exp"), Gen::Special),
    ];
    for n in [1, 3, 4, 15, 16, 17, 47, 48, 50, 1023, 1025, 3001] {
        for (op, g) in &ops {
            let e = lowered(op.clone(), &[(F, &[n], *g)]);
            chunk_check(&e, &[*g], n as u64);
        }
        let pow = lowered(
            Op::new("Pow"),
            &[(F, &[2, n], Gen::Positive), (F, &[n], Gen::Wide)],
        );
        chunk_check(&pow, &[Gen::Positive, Gen::Wide], n as u64);
        // Read backwards: not a tape, the helpers path.
        let mut rev = lowered(tanh(), &[(F, &[n], Gen::Wide)]);
        let back = AffineExpr::constant(n as i64 - 1).add_scaled(&AffineExpr::iter(0), -1);
        rev.body = map_reads(&rev.body, &|a: &Access, guard| {
            let a = Access {
                input: a.input,
                index: vec![back.clone()],
            };
            if guard {
                ScalarExpr::InBounds(a)
            } else {
                ScalarExpr::Access(a)
            }
        });
        chunk_check(&rev, &[Gen::Wide], n as u64);
    }
}

/// `e` with chunks of 16, 48 and 1024, 1-3 threads, vs f32x4 and eval.
fn chunk_check(e: &TensorExpr, gens: &[Gen], seed: u64) {
    let mut rng = Rng(0x0005_DEEC_E66D ^ seed);
    let feeds: Vec<Tensor> = e
        .inputs
        .iter()
        .zip(gens)
        .map(|(o, g)| rng.tensor(o.ty.dtype, &o.ty.shape, *g))
        .collect();
    let refs: Vec<&Tensor> = feeds.iter().collect();
    let want = eval(e, &refs).unwrap();
    let run = |opts: &JitOptions, threads: usize| {
        let k = ExprKernel::compile(e, &default_schedule(e), opts).unwrap();
        let mut out = Tensor::zeros(F, e.output.shape.clone());
        k.run_threads(&refs, &mut out, threads).unwrap();
        out.to_f64_vec()
    };
    let inline = run(&both_paths()[0], 1);
    // Chunk sizes; helpers (tape off), tape (always when reads allow).
    for (chunk, tape_ops_per_fn) in [
        (16, 0),
        (48, 0),
        (1024, 0),
        (16, usize::MAX),
        (48, usize::MAX),
    ] {
        for threads in [1, 2, 3] {
            let opts = JitOptions {
                chunk,
                tape_ops_per_fn,
                ..JitOptions::default()
            };
            let got = run(&opts, threads);
            for (i, ((a, b), w)) in got.iter().zip(&inline).zip(want.to_f64_vec()).enumerate() {
                // Both within their ulp bounds of the exact value, which a
                // cancellation (1 + tanh near -1) can magnify.
                let same = a == b || close(*a, *b, 1);
                assert!(
                    same,
                    "{} elem {i}: helpers {a}, f32x4 {b} ({opts:?})",
                    e.name
                );
                let ok = *a == w || close(*a, w, 1);
                assert!(ok, "{} elem {i}: helpers {a}, eval {w}", e.name);
            }
        }
    }
}

/// A per-channel map over a batch-1 NCHW tensor: the contiguous run `h, w`
/// is vectorized and the loops outside it (`n`, `c`) are fused into the
/// parallel loop, so threads split the channels (with only `n` parallel, a
/// batch-1 map ran on one thread).
#[test]
fn loops_outside_the_vectorized_run_are_fused_and_parallel() {
    let ins: [In; 2] = [(F, &[1, 6, 5, 7], S), (F, &[6, 1, 1], S)];
    let e = lowered(Op::new("Mul"), &ins);
    let s = default_schedule(&e);
    assert!(
        s.steps
            .iter()
            .any(|st| matches!(st, Step::Parallel { iter } if iter.starts_with("d0_d1"))),
        "{s:?}"
    );
    let k = ExprKernel::compile(&e, &s, &JitOptions::default()).unwrap();
    assert_eq!(k.parallel_extent(), 6, "{}", k.loop_nest());
    let mut rng = Rng(5);
    let feeds: Vec<Tensor> = ins.iter().map(|(d, s, g)| rng.tensor(*d, s, *g)).collect();
    let want = eval(&e, &feeds.iter().collect::<Vec<_>>()).unwrap();
    check_with(&e, &s, &feeds, &want);
}
