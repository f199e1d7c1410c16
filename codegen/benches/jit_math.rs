//! ns/element of JIT element-wise maps with transcendentals and of row
//! reductions over tensors larger than L2, against the machine's copy
//! bandwidth measured in the same run.
//!
//! `cargo bench -p kiln-codegen --bench jit_math` prints one line per case:
//! `kiln jit_math case=<name> path=<f32x4|helpers|tape|default> threads=<t> ns_per_elem=<median> copy_ns=<median> x_copy=<ratio>`,
//! where `x_copy` is the median over 7 rounds of the case's ns/element
//! divided by that of a plain `copy_from_slice` of the same f32 data (one
//! read, one write) on the same thread count timed just before, and
//! `path` is the map's code: inline f32x4 (`JitOptions::avx512` off), and
//! on CPUs with AVX-512F the 16-lane chunk helpers for the functions
//! (`tape_ops_per_fn` 0), the whole body as a tape (`usize::MAX`) and the
//! default choice between them. The paths run interleaved, case by case.
//! Map cases (16M f32, 64 MB in + 64 MB out): `neg` (the JIT's copy), `exp`,
//! `erf`, `sigmoid`, `gelu_tanh` (the tanh-GELU chain, `x^3` as products),
//! `gelu_erf`, `log`, `pow` (a general exponent).
//! Reduction cases (4096 rows of 4096 f32, 64 MB read, over the last axis):
//! `reduce_sum`, `reduce_mean`, `reduce_max`; `x_copy` below 0.71 there is
//! 70% of the copy's bandwidth when the copy counts its read and write.

use kiln_codegen::cpu::jit::{default_schedule, has_avx512, ExprKernel, JitOptions};
use kiln_ir::expr::lower;
use kiln_ir::{Attr, DType, Graph, Op, Tensor, TensorType};
use std::time::{Duration, Instant};

/// Elements per tensor (64 MB of f32).
const N: usize = 1 << 24;

fn kernel(op: Op, shapes: &[&[usize]], opts: &JitOptions) -> ExprKernel {
    let mut g = Graph::new("b");
    let ids: Vec<_> = shapes
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let ty = TensorType::new(DType::F32, s.to_vec());
            g.add_input(&format!("x{k}"), ty).expect("input")
        })
        .collect();
    let out = g.add_node("n", op, &ids, &["y"]).expect("node");
    g.set_outputs(out);
    let e = lower(&g, &g.nodes()[0])
        .expect("lower")
        .expect("a lowering");
    ExprKernel::compile(&e, &default_schedule(&e), opts).expect("compile")
}

/// Median seconds of `f` over at least 5 calls and 0.1 s.
fn time(mut f: impl FnMut()) -> f64 {
    f();
    let mut v = vec![];
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(100) || v.len() < 5 {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_secs_f64());
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// ns/element of copying `N` f32 on `threads` threads into `dst`.
fn copy_ns(threads: usize, src: &[f32], dst: &mut [f32]) -> f64 {
    let chunk = N / threads;
    let s = time(|| {
        rayon::scope(|sc| {
            for (d, s) in dst.chunks_mut(chunk).zip(src.chunks(chunk)) {
                sc.spawn(move |_| d.copy_from_slice(s));
            }
        })
    });
    s * 1e9 / N as f64
}

/// The reductions' input shape.
const ROWS: [usize; 2] = [4096, N / 4096];

fn reduction(kind: &str) -> Op {
    Op::new(kind)
        .with("axes", Attr::Ints(vec![1]))
        .with("keepdims", Attr::Int(0))
}

fn main() {
    let v: Vec<f32> = (0..N)
        .map(|i| ((i % 2001) as f32 - 1000.0) / 250.0)
        .collect();
    let x = Tensor::from_vec(vec![N], v.clone()).expect("tensor");
    let p = Tensor::from_vec(vec![N], vec![1.7f32; N]).expect("tensor");
    let ax = Tensor::from_vec(vec![N], v.iter().map(|a| a.abs() + 0.1).collect()).expect("t");
    let rows = Tensor::from_vec(ROWS.to_vec(), v.clone()).expect("tensor");
    let tanh = || Op::new("Gelu").with("approximate", Attr::Str("tanh".into()));
    let n: &[usize] = &[N];
    type Case<'a> = (&'a str, fn() -> Op, usize, Vec<&'a Tensor>);
    let maps: Vec<Case> = vec![
        ("neg", || Op::new("Neg"), 1, vec![&x]),
        ("exp", || Op::new("Exp"), 1, vec![&x]),
        ("erf", || Op::new("Erf"), 1, vec![&x]),
        ("sigmoid", || Op::new("Sigmoid"), 1, vec![&x]),
        ("gelu_tanh", tanh, 1, vec![&x]),
        ("gelu_erf", || Op::new("Gelu"), 1, vec![&x]),
        ("log", || Op::new("Log"), 1, vec![&ax]),
        ("pow", || Op::new("Pow"), 2, vec![&ax, &p]),
    ];
    let path = |avx512, tape_ops_per_fn| JitOptions {
        avx512,
        tape_ops_per_fn,
        ..JitOptions::default()
    };
    let mut paths = vec![("f32x4", path(false, 0))];
    if has_avx512() {
        paths.push(("helpers", path(true, 0)));
        paths.push(("tape", path(true, usize::MAX)));
        paths.push(("default", JitOptions::default()));
    }
    let mut cases: Vec<(String, ExprKernel, Vec<&Tensor>, usize)> = vec![];
    for (name, op, n_in, ins) in &maps {
        for (path, opts) in &paths {
            let k = kernel(op(), &vec![n; *n_in], opts);
            cases.push((format!("case={name} path={path}"), k, ins.clone(), N));
        }
    }
    for (name, kind) in [
        ("reduce_sum", "ReduceSum"),
        ("reduce_mean", "ReduceMean"),
        ("reduce_max", "ReduceMax"),
    ] {
        let k = kernel(reduction(kind), &[&ROWS], &JitOptions::default());
        cases.push((format!("case={name} path=jit"), k, vec![&rows], ROWS[0]));
    }
    // Each case alternates with the copy, ROUNDS times: the ratio is the
    // median of the rounds' ratios (the load of a shared machine changes
    // within seconds).
    let mut dst = vec![0f32; N];
    for threads in [1, 2] {
        for (name, k, ins, out_len) in &cases {
            let mut out = Tensor::zeros(DType::F32, vec![*out_len]);
            let (mut ns, mut ratio, mut copy) = (vec![], vec![], vec![]);
            for _ in 0..ROUNDS {
                let c = copy_ns(threads, &v, &mut dst);
                let s = time(|| k.run_threads(ins, &mut out, threads).expect("run"));
                let t = s * 1e9 / N as f64;
                ns.push(t);
                ratio.push(t / c);
                copy.push(c);
            }
            let (ns, ratio, copy) = (median(ns), median(ratio), median(copy));
            println!(
                "kiln jit_math {name} threads={threads} ns_per_elem={ns:.3} copy_ns={copy:.3} x_copy={ratio:.2}"
            );
        }
    }
}

/// Rounds of (copy, case) per case.
const ROUNDS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
