//! Staged inputs in the expression JIT: a 384x384x384 f32 matmul tiled over
//! columns, with B read directly, cached per column tile (`CacheRead` at
//! `j.o`), or packed by 4 columns (`Pack`), and `exp(x) @ b` with the
//! exponential computed per row (`ComputeAt`) against exp materialized by
//! a separate kernel.
//!
//! `cargo bench -p kiln-codegen --bench jit_staging` prints one line per
//! case: `kiln jit_staging case=<name> threads=1 ms=<median ms>`.

use kiln_codegen::cpu::jit::{ExprKernel, JitOptions};
use kiln_ir::expr::{
    AffineExpr as A, BinaryOp, Iter, Operand, ReduceKind, Reduction, ScalarExpr as S, Schedule,
    Step, TensorExpr, UnaryOp,
};
use kiln_ir::{DType, Tensor, TensorType};
use std::time::{Duration, Instant};

const N: usize = 384;

fn ty(s: &[usize]) -> TensorType {
    TensorType::new(DType::F32, s.to_vec())
}

fn operand(name: &str) -> Operand {
    Operand {
        name: name.into(),
        ty: ty(&[N, N]),
    }
}

fn matmul(a: &str) -> TensorExpr {
    TensorExpr {
        name: "y".into(),
        output: ty(&[N, N]),
        inputs: vec![operand(a), operand("b")],
        iters: vec![Iter::new("i", N), Iter::new("j", N)],
        reduce: Some(Reduction {
            kind: ReduceKind::Sum,
            iters: vec![Iter::new("k", N)],
        }),
        body: S::binary(
            BinaryOp::Mul,
            S::access(0, vec![A::iter(0), A::iter(2)]),
            S::access(1, vec![A::iter(2), A::iter(1)]),
        ),
        epilogue: None,
    }
}

fn exp() -> TensorExpr {
    TensorExpr {
        name: "p".into(),
        output: ty(&[N, N]),
        inputs: vec![operand("x")],
        iters: vec![Iter::new("pi", N), Iter::new("pk", N)],
        reduce: None,
        body: S::unary(UnaryOp::Exp, S::access(0, vec![A::iter(0), A::iter(1)])),
        epilogue: None,
    }
}

fn tiled(extra: Vec<Step>) -> Schedule {
    let mut s = vec![
        Step::Split {
            iter: "j".into(),
            factor: 32,
        },
        Step::Reorder {
            order: vec!["j.o".into(), "i".into()],
        },
        Step::Split {
            iter: "j.i".into(),
            factor: 4,
        },
        Step::Vectorize {
            iter: "j.i.i".into(),
            lanes: 4,
        },
    ];
    s.extend(extra);
    Schedule::new(s)
}

fn time(f: &mut dyn FnMut()) -> f64 {
    let mut times = vec![];
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(600) || times.len() < 5 {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn input() -> Tensor {
    let v: Vec<f32> = (0..N * N).map(|i| 0.5 + (i % 97) as f32 / 97.0).collect();
    Tensor::from_vec(vec![N, N], v).expect("tensor")
}

fn main() {
    let opts = JitOptions::default();
    let (a, b) = (input(), input());
    let mut out = Tensor::zeros(DType::F32, vec![N, N]);
    let e = matmul("a");
    let cases = [
        ("matmul_direct", tiled(vec![])),
        (
            "matmul_cache_b_at_j.o",
            tiled(vec![Step::CacheRead {
                input: 1,
                at: "j.o".into(),
            }]),
        ),
        (
            "matmul_pack_b_by_4",
            tiled(vec![Step::Pack {
                input: 1,
                axis: 1,
                block: 4,
            }]),
        ),
    ];
    for (name, s) in cases {
        let k = ExprKernel::compile(&e, &s, &opts).expect("compile");
        let ms = time(&mut || k.run(&[&a, &b], &mut out).expect("run"));
        println!("kiln jit_staging case={name} threads=1 ms={ms:.3}");
    }
    let (pe, ce) = (exp(), matmul("p"));
    let ke = ExprKernel::compile(&pe, &Schedule::default(), &opts).expect("exp");
    let kc = ExprKernel::compile(&ce, &tiled(vec![]), &opts).expect("matmul");
    let mut p = Tensor::zeros(DType::F32, vec![N, N]);
    let ms = time(&mut || {
        ke.run(&[&a], &mut p).expect("exp");
        kc.run(&[&p, &b], &mut out).expect("matmul");
    });
    println!("kiln jit_staging case=exp_then_matmul threads=1 ms={ms:.3}");
    let s = tiled(vec![Step::ComputeAt {
        producer: "p".into(),
        at: "i".into(),
    }]);
    let k = ExprKernel::compile_with_producers(&ce, &[(0, pe)], &s, &opts).expect("fused");
    let ms = time(&mut || k.run(&[&b, &a], &mut out).expect("run"));
    println!("kiln jit_staging case=exp_compute_at_i_matmul threads=1 ms={ms:.3}");
}
