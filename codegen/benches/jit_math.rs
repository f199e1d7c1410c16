//! ns/element of JIT element-wise maps with transcendentals over tensors
//! larger than L2, against the machine's copy bandwidth measured in the
//! same run.
//!
//! `cargo bench -p kiln-codegen --bench jit_math` prints one line per case:
//! `kiln jit_math case=<name> threads=<t> ns_per_elem=<median> x_copy=<ratio>`,
//! where `x_copy` divides by the ns/element of a plain `copy_from_slice` of
//! the same f32 data (one read, one write) on the same thread count.
//! Cases (16M f32, 64 MB in + 64 MB out): `neg` (the JIT's copy), `exp`,
//! `erf`, `sigmoid`, `gelu_tanh` (the tanh-GELU chain, `x^3` as products),
//! `gelu_erf`, `log`, `pow` (a general exponent).

use kiln_codegen::cpu::jit::{default_schedule, ExprKernel, JitOptions};
use kiln_ir::expr::lower;
use kiln_ir::{Attr, DType, Graph, Op, Tensor, TensorType};
use std::time::{Duration, Instant};

/// Elements per tensor (64 MB of f32).
const N: usize = 1 << 24;

fn kernel(op: Op, n_in: usize) -> ExprKernel {
    let mut g = Graph::new("b");
    let ids: Vec<_> = (0..n_in)
        .map(|k| {
            let ty = TensorType::new(DType::F32, vec![N]);
            g.add_input(&format!("x{k}"), ty).expect("input")
        })
        .collect();
    let out = g.add_node("n", op, &ids, &["y"]).expect("node");
    g.set_outputs(out);
    let e = lower(&g, &g.nodes()[0])
        .expect("lower")
        .expect("a lowering");
    ExprKernel::compile(&e, &default_schedule(&e), &JitOptions::default()).expect("compile")
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

fn main() {
    let v: Vec<f32> = (0..N)
        .map(|i| ((i % 2001) as f32 - 1000.0) / 250.0)
        .collect();
    let x = Tensor::from_vec(vec![N], v.clone()).expect("tensor");
    let p = Tensor::from_vec(vec![N], vec![1.7f32; N]).expect("tensor");
    let ax = Tensor::from_vec(vec![N], v.iter().map(|a| a.abs() + 0.1).collect()).expect("t");
    let tanh = Op::new("Gelu").with("approximate", Attr::Str("tanh".into()));
    let cases: Vec<(&str, ExprKernel, Vec<&Tensor>)> = vec![
        ("neg", kernel(Op::new("Neg"), 1), vec![&x]),
        ("exp", kernel(Op::new("Exp"), 1), vec![&x]),
        ("erf", kernel(Op::new("Erf"), 1), vec![&x]),
        ("sigmoid", kernel(Op::new("Sigmoid"), 1), vec![&x]),
        ("gelu_tanh", kernel(tanh, 1), vec![&x]),
        ("gelu_erf", kernel(Op::new("Gelu"), 1), vec![&x]),
        ("log", kernel(Op::new("Log"), 1), vec![&ax]),
        ("pow", kernel(Op::new("Pow"), 2), vec![&ax, &p]),
    ];
    let mut out = Tensor::zeros(DType::F32, vec![N]);
    for threads in [1, 2] {
        let copy = copy_ns(threads, &v);
        println!("kiln jit_math case=copy threads={threads} ns_per_elem={copy:.3} x_copy=1.00");
        for (name, k, ins) in &cases {
            let s = time(|| k.run_threads(ins, &mut out, threads).expect("run"));
            let ns = s * 1e9 / N as f64;
            println!(
                "kiln jit_math case={name} threads={threads} ns_per_elem={ns:.3} x_copy={:.2}",
                ns / copy
            );
        }
    }
}
