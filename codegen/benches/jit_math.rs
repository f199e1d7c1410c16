//! ns/element of JIT element-wise maps with transcendentals and of row
//! reductions over tensors larger than L2, against the machine's copy
//! bandwidth measured in the same run.
//!
//! `cargo bench -p kiln-codegen --bench jit_math` prints one line per case:
//! `kiln jit_math case=<name> path=<f32x4|avx512> threads=<t> ns_per_elem=<median> x_copy=<ratio>`,
//! where `x_copy` divides by the ns/element of a plain `copy_from_slice` of
//! the same f32 data (one read, one write) on the same thread count, and
//! `path` is the map's code: inline f32x4 (`JitOptions::avx512` off) or the
//! 16-lane AVX-512 chunk helpers (on; only on CPUs with AVX-512F). The two
//! paths run interleaved, case by case.
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

fn kernel(op: Op, shapes: &[&[usize]], avx512: bool) -> ExprKernel {
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
    let opts = JitOptions {
        avx512,
        ..JitOptions::default()
    };
    ExprKernel::compile(&e, &default_schedule(&e), &opts).expect("compile")
}

/// Median seconds of `f` over at least 5 calls and 0.5 s.
fn time(mut f: impl FnMut()) -> f64 {
    f();
    let mut v = vec![];
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(500) || v.len() < 5 {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_secs_f64());
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// ns/element of copying `N` f32 on `threads` threads.
fn copy_ns(threads: usize, src: &[f32]) -> f64 {
    let mut dst = vec![0f32; N];
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
    let paths: &[(&str, bool)] = if has_avx512() {
        &[("f32x4", false), ("avx512", true)]
    } else {
        &[("f32x4", false)]
    };
    let mut cases: Vec<(String, ExprKernel, Vec<&Tensor>, usize)> = vec![];
    for (name, op, n_in, ins) in &maps {
        for &(path, on) in paths {
            let k = kernel(op(), &vec![n; *n_in], on);
            cases.push((format!("case={name} path={path}"), k, ins.clone(), N));
        }
    }
    for (name, kind) in [
        ("reduce_sum", "ReduceSum"),
        ("reduce_mean", "ReduceMean"),
        ("reduce_max", "ReduceMax"),
    ] {
        let k = kernel(reduction(kind), &[&ROWS], false);
        cases.push((format!("case={name} path=jit"), k, vec![&rows], ROWS[0]));
    }
    for threads in [1, 2] {
        let copy = copy_ns(threads, &v);
        println!("kiln jit_math case=copy threads={threads} ns_per_elem={copy:.3} x_copy=1.00");
        for (name, k, ins, out_len) in &cases {
            let mut out = Tensor::zeros(DType::F32, vec![*out_len]);
            let s = time(|| k.run_threads(ins, &mut out, threads).expect("run"));
            let ns = s * 1e9 / N as f64;
            println!(
                "kiln jit_math {name} threads={threads} ns_per_elem={ns:.3} x_copy={:.2}",
                ns / copy
            );
        }
    }
}
