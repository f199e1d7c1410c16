//! Staged inputs in the expression JIT: `Pack`, `CacheRead` and
//! `ComputeAt` steps, alone and with split/reorder/vectorize/unroll, on
//! matmul, a padded convolution, a transpose and an element-wise
//! expression with broadcasts, against `expr::eval` (compute-at against
//! the producer inlined with `expr::inline`), on random non-zero inputs of
//! odd sizes; bad steps and producers are errors.

use kiln_codegen::cpu::jit::{default_schedule, ExprKernel, JitOptions};
use kiln_codegen::CodegenError;
use kiln_ir::expr::{
    eval, inline, AffineExpr as A, BinaryOp, Iter, Operand, ReduceKind, Reduction, ScalarExpr as S,
    Schedule, Step, TensorExpr, UnaryOp,
};
use kiln_ir::{DType, Tensor, TensorType};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Values in ±[0.1, 1], never zero.
    fn tensor(&mut self, ty: &TensorType) -> Tensor {
        let v: Vec<f64> = (0..ty.numel())
            .map(|_| {
                let m = 0.1 + 0.9 * self.next();
                if self.next() < 0.5 {
                    -m
                } else {
                    m
                }
            })
            .collect();
        Tensor::from_vec(ty.shape.clone(), v)
            .unwrap()
            .cast(ty.dtype)
    }
}

fn ty(s: &[usize]) -> TensorType {
    TensorType::new(DType::F32, s.to_vec())
}

fn op(name: &str, s: &[usize]) -> Operand {
    Operand {
        name: name.into(),
        ty: ty(s),
    }
}

fn its(v: &[(&str, usize)]) -> Vec<Iter> {
    v.iter().map(|(n, e)| Iter::new(*n, *e)).collect()
}

fn at(k: usize) -> A {
    A::iter(k)
}

/// `y[i, j] = sum(k) a[i, k] * b[k, j]`, named inputs.
fn matmul(a: &str, m: usize, k: usize, n: usize) -> TensorExpr {
    TensorExpr {
        name: "y".into(),
        output: ty(&[m, n]),
        inputs: vec![op(a, &[m, k]), op("b", &[k, n])],
        iters: its(&[("i", m), ("j", n)]),
        reduce: Some(Reduction {
            kind: ReduceKind::Sum,
            iters: its(&[("k", k)]),
        }),
        body: S::binary(
            BinaryOp::Mul,
            S::access(0, vec![at(0), at(2)]),
            S::access(1, vec![at(2), at(1)]),
        ),
        epilogue: None,
    }
}

/// 3x3 convolution, padding 1: x 2x3x9x8, w 4x3x3x3, y 2x4x9x8.
fn conv() -> TensorExpr {
    let (h, w) = (9, 8);
    let sub = |o: usize, r: usize| at(o).plus_iter(1, r).offset(-1);
    let x = S::guarded(0, vec![at(0), at(4), sub(2, 5), sub(3, 6)], 0.0);
    let wt = S::access(1, vec![at(1), at(4), at(5), at(6)]);
    TensorExpr {
        name: "y".into(),
        output: ty(&[2, 4, h, w]),
        inputs: vec![op("x", &[2, 3, h, w]), op("w", &[4, 3, 3, 3])],
        iters: its(&[("n", 2), ("co", 4), ("h", h), ("w", w)]),
        reduce: Some(Reduction {
            kind: ReduceKind::Sum,
            iters: its(&[("ci", 3), ("kh", 3), ("kw", 3)]),
        }),
        body: S::binary(BinaryOp::Mul, x, wt),
        epilogue: None,
    }
}

/// `y[i, j] = x[j, i]`, x 13x9.
fn transpose() -> TensorExpr {
    TensorExpr {
        name: "y".into(),
        output: ty(&[9, 13]),
        inputs: vec![op("x", &[13, 9])],
        iters: its(&[("i", 9), ("j", 13)]),
        reduce: None,
        body: S::access(0, vec![at(1), at(0)]),
        epilogue: None,
    }
}

/// `y[i, j] = exp(x[i, j]) + b[j] * c[i, 0]`, x 7x10, b 10, c 7x1.
fn broadcast() -> TensorExpr {
    let x = S::unary(UnaryOp::Exp, S::access(0, vec![at(0), at(1)]));
    let bc = S::binary(
        BinaryOp::Mul,
        S::access(1, vec![at(1)]),
        S::access(2, vec![at(0), A::constant(0)]),
    );
    TensorExpr {
        name: "y".into(),
        output: ty(&[7, 10]),
        inputs: vec![op("x", &[7, 10]), op("b", &[10]), op("c", &[7, 1])],
        iters: its(&[("i", 7), ("j", 10)]),
        reduce: None,
        body: S::binary(BinaryOp::Add, x, bc),
        epilogue: None,
    }
}

fn split(iter: &str, factor: usize) -> Step {
    Step::Split {
        iter: iter.into(),
        factor,
    }
}
fn vec4(iter: &str) -> Step {
    Step::Vectorize {
        iter: iter.into(),
        lanes: 4,
    }
}
fn unroll(iter: &str, factor: usize) -> Step {
    Step::Unroll {
        iter: iter.into(),
        factor,
    }
}
fn reorder(order: &[&str]) -> Step {
    Step::Reorder {
        order: order.iter().map(|s| s.to_string()).collect(),
    }
}
fn cache(input: usize, at: &str) -> Step {
    Step::CacheRead {
        input,
        at: at.into(),
    }
}
fn pack(input: usize, axis: usize, block: usize) -> Step {
    Step::Pack { input, axis, block }
}
fn compute_at(producer: &str, at: &str) -> Step {
    Step::ComputeAt {
        producer: producer.into(),
        at: at.into(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * b.abs() + 1e-5
}

/// Compiles `e` (with `producers`) under `steps`, runs it on `feeds`
/// (the kernel's inputs) with 1 and 3 threads, compares with `want`.
fn run_check(
    e: &TensorExpr,
    producers: &[(usize, TensorExpr)],
    steps: Vec<Step>,
    feeds: &[Tensor],
    want: &Tensor,
) {
    let s = Schedule::new(steps);
    let k = ExprKernel::compile_with_producers(e, producers, &s, &JitOptions::default())
        .unwrap_or_else(|err| panic!("{err}\n{e}\n{s:?}"));
    let refs: Vec<&Tensor> = feeds.iter().collect();
    for threads in [1, 3] {
        for _ in 0..2 {
            let mut out = Tensor::zeros(e.output.dtype, e.output.shape.clone());
            k.run_threads(&refs, &mut out, threads).unwrap();
            for (i, (a, b)) in out.to_f64_vec().iter().zip(want.to_f64_vec()).enumerate() {
                assert!(
                    close(*a, b),
                    "element {i}: jit {a}, eval {b}\n{}\n{s:?}",
                    k.loop_nest()
                );
            }
        }
    }
}

/// Checks each schedule of `e` against the evaluator.
fn check_all(e: &TensorExpr, schedules: Vec<Vec<Step>>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ e.output.numel() as u64);
    let feeds: Vec<Tensor> = e.inputs.iter().map(|o| rng.tensor(&o.ty)).collect();
    let want = eval(e, &feeds.iter().collect::<Vec<_>>()).unwrap();
    for steps in schedules {
        run_check(e, &[], steps, &feeds, &want);
    }
}

#[test]
fn matmul_cache_read() {
    let e = matmul("a", 7, 13, 11);
    check_all(
        &e,
        vec![
            vec![cache(0, "i")],
            vec![cache(1, "j")],
            vec![cache(0, "j"), cache(1, "j"), unroll("j", 3)],
            vec![
                split("j", 4),
                cache(1, "j.o"),
                unroll("j.o", 3),
                vec4("j.i"),
            ],
            vec![cache(1, "i"), cache(0, "j")],
            vec![
                split("j", 4),
                reorder(&["j.o", "i"]),
                cache(1, "j.o"),
                vec4("j.i"),
            ],
            vec![
                split("j", 4),
                split("k", 5),
                reorder(&["j.o", "i"]),
                cache(1, "j.o"),
                cache(0, "i"),
                vec4("j.i"),
                unroll("k.i", 5),
            ],
            vec![
                split("k", 5),
                cache(1, "k.o"),
                cache(0, "k.o"),
                unroll("k.i", 2),
            ],
            vec![split("k", 4), vec4("k.i"), unroll("k.o", 2), cache(1, "j")],
            vec![
                Step::Parallel { iter: "i".into() },
                cache(1, "i"),
                vec4("j"),
                unroll("j", 2),
            ],
        ],
    );
    let mut d = default_schedule(&e).steps;
    d.push(cache(1, "i"));
    check_all(&e, vec![d]);
}

#[test]
fn matmul_pack() {
    let e = matmul("a", 7, 13, 11);
    check_all(
        &e,
        vec![
            vec![pack(1, 1, 4), split("j", 4), vec4("j.i")],
            vec![pack(1, 1, 3), split("j", 3), unroll("j.i", 3)],
            vec![pack(1, 0, 5), split("k", 5), unroll("k.i", 5)],
            vec![pack(0, 1, 4), split("k", 4), vec4("k.i"), unroll("k.o", 2)],
            vec![pack(0, 0, 2), pack(1, 1, 16)],
            vec![
                pack(1, 1, 4),
                split("j", 4),
                reorder(&["j.o", "i"]),
                vec4("j.i"),
                cache(0, "j.o"),
            ],
        ],
    );
}

#[test]
fn conv_cache_and_pack() {
    let e = conv();
    check_all(
        &e,
        vec![
            vec![cache(0, "h")],
            vec![cache(0, "co"), cache(1, "co")],
            vec![cache(0, "ci")],
            vec![cache(0, "kh"), cache(1, "n")],
            vec![split("w", 4), cache(0, "w.o"), vec4("w.i")],
            vec![
                split("h", 2),
                reorder(&["h.o", "co"]),
                cache(0, "h.o"),
                unroll("kw", 3),
            ],
            vec![pack(0, 1, 2)],
            vec![pack(1, 0, 3), vec4("w")],
            vec![pack(0, 3, 4), split("w", 4), vec4("w.i")],
            vec![pack(0, 2, 5), cache(1, "co"), split("kw", 2)],
        ],
    );
}

#[test]
fn transpose_tiles() {
    let e = transpose();
    check_all(
        &e,
        vec![
            vec![cache(0, "i")],
            vec![
                split("i", 4),
                split("j", 4),
                reorder(&["i.o", "j.o", "i.i", "j.i"]),
                cache(0, "j.o"),
                vec4("j.i"),
            ],
            vec![pack(0, 0, 4), split("j", 4), vec4("j.i")],
            vec![pack(0, 1, 2), unroll("j", 3)],
        ],
    );
}

#[test]
fn broadcast_staging() {
    let e = broadcast();
    check_all(
        &e,
        vec![
            vec![cache(1, "i"), cache(2, "j")],
            vec![cache(0, "i"), vec4("j")],
            vec![pack(1, 0, 4), pack(2, 0, 3), split("j", 4), vec4("j.i")],
            vec![pack(0, 1, 4), split("j", 4), vec4("j.i"), cache(2, "j.o")],
            vec![
                Step::Fuse {
                    outer: "i".into(),
                    inner: "j".into(),
                },
                split("i_j", 8),
                cache(0, "i_j.o"),
                cache(1, "i_j.o"),
                vec4("i_j.i"),
            ],
        ],
    );
}

/// `p[i, k] = exp(x[i, k]) + bias[k]`, the producer of input `p`.
fn exp_producer(m: usize, k: usize) -> TensorExpr {
    let x = S::unary(UnaryOp::Exp, S::access(0, vec![at(0), at(1)]));
    TensorExpr {
        name: "p".into(),
        output: ty(&[m, k]),
        inputs: vec![op("x", &[m, k]), op("bias", &[k])],
        iters: its(&[("pi", m), ("pk", k)]),
        reduce: None,
        body: S::binary(BinaryOp::Add, x, S::access(1, vec![at(1)])),
        epilogue: None,
    }
}

/// Checks `consumer` with input 0 computed by `producer` under each
/// schedule, against the producer inlined.
fn check_compute_at(consumer: &TensorExpr, producer: &TensorExpr, schedules: Vec<Vec<Step>>) {
    let fused = inline(consumer, 0, producer, f64::INFINITY).expect("inlinable");
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let names: Vec<&Operand> = consumer.inputs[1..]
        .iter()
        .chain(&producer.inputs)
        .collect();
    let feeds: Vec<Tensor> = names.iter().map(|o| rng.tensor(&o.ty)).collect();
    let by_name: Vec<&Tensor> = fused
        .inputs
        .iter()
        .map(|o| &feeds[names.iter().position(|n| n.name == o.name).unwrap()])
        .collect();
    let want = eval(&fused, &by_name).unwrap();
    let prods = [(0, producer.clone())];
    for steps in schedules {
        run_check(consumer, &prods, steps, &feeds, &want);
    }
    let k = ExprKernel::compile_with_producers(
        consumer,
        &prods,
        &Schedule::default(),
        &JitOptions::default(),
    );
    assert!(matches!(k.err(), Some(CodegenError::Schedule(_))));
}

#[test]
fn compute_at_into_matmul() {
    let (m, k, n) = (7, 13, 11);
    let e = matmul("p", m, k, n);
    check_compute_at(
        &e,
        &exp_producer(m, k),
        vec![
            vec![compute_at("p", "i")],
            vec![compute_at("p", "j"), vec4("k")],
            vec![split("k", 4), compute_at("p", "k.o"), unroll("k.i", 4)],
            vec![
                split("j", 4),
                reorder(&["j.o", "i"]),
                compute_at("p", "j.o"),
                cache(1, "j.o"),
                vec4("j.i"),
            ],
            vec![
                compute_at("p", "i"),
                pack(1, 1, 4),
                split("j", 4),
                vec4("j.i"),
                unroll("j.o", 2),
            ],
        ],
    );
}

#[test]
fn compute_at_into_row_sum() {
    // y[i] = max(k) p[i, k] / 3, with p = exp(x) + bias.
    let (m, k) = (9, 15);
    let e = TensorExpr {
        name: "y".into(),
        output: ty(&[m]),
        inputs: vec![op("p", &[m, k])],
        iters: its(&[("i", m)]),
        reduce: Some(Reduction {
            kind: ReduceKind::Max,
            iters: its(&[("k", k)]),
        }),
        body: S::access(0, vec![at(0), at(1)]),
        epilogue: Some(S::binary(BinaryOp::Div, S::Acc, S::Const(3.0))),
    };
    check_compute_at(
        &e,
        &exp_producer(m, k),
        vec![
            vec![compute_at("p", "i")],
            vec![compute_at("p", "i"), split("k", 4), vec4("k.i")],
            vec![split("k", 4), compute_at("p", "k.o")],
            vec![split("i", 2), compute_at("p", "i.o"), unroll("i.i", 2)],
        ],
    );
}

fn compile_err(e: &TensorExpr, prods: &[(usize, TensorExpr)], steps: Vec<Step>) -> CodegenError {
    let s = Schedule::new(steps.clone());
    match ExprKernel::compile_with_producers(e, prods, &s, &JitOptions::default()) {
        Ok(_) => panic!("{steps:?} was accepted"),
        Err(err) => err,
    }
}

#[test]
fn bad_staging_is_an_error() {
    let e = matmul("a", 7, 13, 11);
    for steps in [
        vec![pack(2, 0, 4)],
        vec![pack(1, 2, 4)],
        vec![pack(1, 1, 0)],
        vec![cache(1, "nope")],
        vec![cache(5, "i")],
        vec![cache(1, "i"), cache(1, "j")],
        vec![cache(1, "j"), split("j", 4)],
        vec![vec4("j"), cache(1, "j")],
        vec![split("j", 4), vec4("j.o"), cache(1, "j.i")],
        vec![compute_at("a", "i")],
        vec![compute_at("zzz", "i")],
    ] {
        let err = compile_err(&e, &[], steps.clone());
        assert!(matches!(err, CodegenError::Schedule(_)), "{steps:?}: {err}");
    }
    let p = exp_producer(7, 13);
    // A producer without its step, of the wrong type, or with a reduction.
    let err = compile_err(&e, &[(0, p.clone())], vec![]);
    assert!(matches!(err, CodegenError::Schedule(_)), "{err}");
    let wrong = exp_producer(7, 12);
    let err = compile_err(&e, &[(0, wrong)], vec![compute_at("a", "i")]);
    assert!(matches!(err, CodegenError::Arguments(_)), "{err}");
    let mut red = matmul("a", 7, 13, 13);
    red.output = ty(&[7, 13]);
    let err = compile_err(&e, &[(0, red)], vec![compute_at("a", "i")]);
    assert!(matches!(err, CodegenError::Unsupported { .. }), "{err}");
    let err = compile_err(&e, &[(7, p)], vec![compute_at("a", "i")]);
    assert!(matches!(err, CodegenError::Arguments(_)), "{err}");
}

#[test]
fn kernel_inputs_with_producers() {
    let e = matmul("p", 7, 13, 11);
    let s = Schedule::new(vec![compute_at("p", "i"), pack(1, 1, 4)]);
    let prods = [(0, exp_producer(7, 13))];
    let k = ExprKernel::compile_with_producers(&e, &prods, &s, &JitOptions::default()).unwrap();
    // b, then the producer's x and bias.
    assert_eq!(k.input_types(), &[ty(&[13, 11]), ty(&[7, 13]), ty(&[13])]);
    // p's row (13 floats, 64 bytes) and packed b (13x3x4 floats, 640 bytes).
    assert_eq!(k.scratch_bytes(), 64 + 640);
    let want = "y: f32[7,11] <- p: f32[7,13], b: f32[13,11]
pack b axis 1 by 4 -> f32[13, 3, 4]
for i in 0..7
  compute_at p[i.., 0..] -> f32[1, 13]
  for j in 0..11
    reduce for k in 0..13
      y[i, j] = sum(k: 0..13) p[i, k] * b[k, j]";
    assert_eq!(k.loop_nest(), want);
}
