//! Throughput of expression kernels from the Cranelift JIT, default schedule.
//!
//! `cargo bench -p kiln-codegen --bench jit` prints one line per case:
//! `kiln jit case=<name> threads=<t> gbps=<median GB/s> ms=<median ms>
//! compile_ms=<JIT compile time>`,
//! where bytes are the inputs read plus the output written once.
//! Cases: elementwise add of 1M f32 (with a broadcast row), exp and
//! sigmoid of 1M f32, a row reduction (ReduceSum over the last axis of
//! 1024x1024), a column reduction (axis 0), and a 1024x1024 transpose.

use kiln_codegen::cpu::jit::{default_schedule, ExprKernel, JitOptions};
use kiln_ir::expr::{lower, TensorExpr};
use kiln_ir::{Attr, DType, Graph, Op, Tensor, TensorType};
use std::time::{Duration, Instant};

fn expr(op: Op, shapes: &[&[usize]]) -> TensorExpr {
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
    lower(&g, &g.nodes()[0])
        .expect("lower")
        .expect("a lowering")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(name: &str, e: &TensorExpr, threads: usize) {
    let t = Instant::now();
    let k = ExprKernel::compile(e, &default_schedule(e), &JitOptions::default()).expect("compile");
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    let ins: Vec<Tensor> = e
        .inputs
        .iter()
        .map(|o| {
            let n = o.ty.numel();
            let v: Vec<f32> = (0..n).map(|i| 0.5 + (i % 97) as f32 / 97.0).collect();
            Tensor::from_vec(o.ty.shape.clone(), v).expect("tensor")
        })
        .collect();
    let refs: Vec<&Tensor> = ins.iter().collect();
    let mut out = Tensor::zeros(e.output.dtype, e.output.shape.clone());
    let bytes: usize =
        e.inputs.iter().map(|o| o.ty.numel() * 4).sum::<usize>() + e.output.numel() * 4;
    let mut times = vec![];
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(400) || times.len() < 5 {
        let t = Instant::now();
        k.run_threads(&refs, &mut out, threads).expect("run");
        times.push(t.elapsed().as_secs_f64());
    }
    let s = median(times);
    println!(
        "kiln jit case={name} threads={threads} gbps={:.2} ms={:.3} compile_ms={compile_ms:.2}",
        bytes as f64 / s / 1e9,
        s * 1e3
    );
}

fn main() {
    let n = 1 << 20;
    let cases = [
        ("add_1m", expr(Op::new("Add"), &[&[n], &[n]])),
        (
            "add_bcast_1024x1024",
            expr(Op::new("Add"), &[&[1024, 1024], &[1024]]),
        ),
        ("exp_1m", expr(Op::new("Exp"), &[&[n]])),
        ("sigmoid_1m", expr(Op::new("Sigmoid"), &[&[n]])),
        (
            "reduce_sum_rows_1024x1024",
            expr(
                Op::new("ReduceSum").with("axes", Attr::Ints(vec![-1])),
                &[&[1024, 1024]],
            ),
        ),
        (
            "reduce_sum_cols_1024x1024",
            expr(
                Op::new("ReduceSum").with("axes", Attr::Ints(vec![0])),
                &[&[1024, 1024]],
            ),
        ),
        (
            "transpose_1024x1024",
            expr(Op::new("Transpose"), &[&[1024, 1024]]),
        ),
    ];
    for (name, e) in &cases {
        for threads in [1, 2] {
            bench(name, e, threads);
        }
    }
}
