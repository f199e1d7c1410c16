//! Derivation chains on the shipped models, measured.
//!
//! `cargo bench -p kiln-rewrite --bench derive` searches chains (kiln_rewrite::derive)
//! for a 1x1 convolution and the stem convolution of mobilenet_v2 and for the
//! Q/K/V projections of bert_tiny, then times, on random inputs and one thread,
//! the original expressions compiled by the JIT (default schedule) against the
//! matched program: the kernel stage on the codegen kernel (`matmul_f32` or
//! `Conv2d`), the memory-bound remainder on the JIT, stages over constants
//! folded beforehand. Prints one row per chain: expr, chain, jit µs, kernel µs,
//! ratio, and the largest difference of the results.

use kiln_codegen::cpu::jit::{default_schedule, ExprKernel, JitOptions};
use kiln_codegen::cpu::kernels::{
    matmul_f32, Activation, Conv2d, Conv2dDesc, Epilogue, MatmulDesc,
};
use kiln_ir::expr::TensorExpr;
use kiln_ir::Tensor;
use kiln_rewrite::derive::{candidates, search, Candidate, Chain, Kernel, Program, SearchLimits};
use std::collections::HashMap;
use std::time::Instant;

/// How one stage runs.
enum Exec {
    Jit(Box<ExprKernel>),
    Gemm(MatmulDesc),
    Conv(Box<Conv2d>, std::cell::RefCell<Vec<f32>>),
}

struct Runner {
    stages: Vec<(TensorExpr, Exec)>,
    env: HashMap<String, Tensor>,
}

fn jit(e: &TensorExpr) -> Exec {
    Exec::Jit(Box::new(
        ExprKernel::compile(e, &default_schedule(e), &JitOptions::default()).expect("jit"),
    ))
}

fn random(p: &Program, seed: u64) -> HashMap<String, Tensor> {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    p.inputs
        .iter()
        .map(|o| {
            let v: Vec<f32> = (0..o.ty.numel()).map(|_| next()).collect();
            (
                o.name.clone(),
                Tensor::from_vec(o.ty.shape.clone(), v).expect("tensor"),
            )
        })
        .collect()
}

/// Reshapes `env[name]` in place (a row-major view) and returns it.
fn fetch<'a>(env: &'a mut HashMap<String, Tensor>, name: &str, shape: &[usize]) -> &'a Tensor {
    let t = env.get_mut(name).expect("value");
    if t.shape() != shape {
        let owned = std::mem::replace(t, Tensor::zeros(kiln_ir::DType::F32, vec![0]));
        *t = owned.reshape(shape.to_vec()).expect("view");
    }
    t
}

impl Runner {
    /// Folded stages run once here; `kernel` is the matched stage, if any.
    fn new(
        p: &Program,
        feeds: HashMap<String, Tensor>,
        kernel: Option<(usize, &Kernel)>,
    ) -> Runner {
        let mut r = Runner {
            stages: vec![],
            env: feeds,
        };
        for (k, e) in p.stages.iter().enumerate() {
            r.env.insert(
                e.name.clone(),
                Tensor::zeros(e.output.dtype, e.output.shape.clone()),
            );
            let exec = match kernel {
                Some((s, Kernel::Gemm(g))) if s == k => Exec::Gemm(MatmulDesc {
                    batch: g.batch,
                    m: g.m,
                    n: g.n,
                    k: g.k,
                    a_batch_stride: g.a_batch_stride,
                    b_batch_stride: g.b_batch_stride,
                    b_transposed: g.b_transposed,
                }),
                Some((s, Kernel::Conv(c))) if s == k => conv(c, &r.env),
                _ => jit(e),
            };
            if p.is_constant_stage(k) {
                r.run_stage(e, &exec, kernel.map(|x| x.1));
            } else {
                r.stages.push((e.clone(), exec));
            }
        }
        r
    }

    fn run(&mut self, kernel: Option<&Kernel>) {
        let stages = std::mem::take(&mut self.stages);
        for (e, x) in &stages {
            self.run_stage(e, x, kernel);
        }
        self.stages = stages;
    }

    fn run_stage(&mut self, e: &TensorExpr, x: &Exec, kernel: Option<&Kernel>) {
        let mut out = self.env.remove(&e.name).expect("output");
        if out.shape() != e.output.shape.as_slice() {
            out = out.reshape(e.output.shape.clone()).expect("view");
        }
        let mut ins = vec![];
        for o in &e.inputs {
            fetch(&mut self.env, &o.name, &o.ty.shape);
        }
        for o in &e.inputs {
            ins.push(&self.env[&o.name]);
        }
        let f = |n: &str| self.env[n].as_slice::<f32>().expect("f32");
        match (x, kernel) {
            (Exec::Jit(k), _) => k.run(&ins, &mut out).expect("run"),
            (Exec::Gemm(d), Some(Kernel::Gemm(g))) => {
                let epi = Epilogue {
                    bias: g.bias.as_deref().map(f),
                    ..Epilogue::default()
                };
                let c = out.as_slice_mut::<f32>().expect("f32");
                matmul_f32(d, f(&g.a), f(&g.b), c, &epi, 1).expect("gemm");
            }
            (Exec::Conv(k, scratch), Some(Kernel::Conv(c))) => {
                let o = out.as_slice_mut::<f32>().expect("f32");
                k.run(f(&c.x), None, o, &mut scratch.borrow_mut(), 1)
                    .expect("conv");
            }
            _ => panic!("stage and kernel disagree"),
        }
        self.env.insert(e.name.clone(), out);
    }
}

fn conv(c: &kiln_rewrite::derive::Conv, env: &HashMap<String, Tensor>) -> Exec {
    let d = Conv2dDesc {
        batch: c.batch,
        c_in: c.c_in,
        h: c.h,
        w: c.w,
        c_out: c.c_out,
        kh: c.kh,
        kw: c.kw,
        stride_h: c.stride[0],
        stride_w: c.stride[1],
        pad_top: c.pads[0],
        pad_left: c.pads[1],
        pad_bottom: c.pads[2],
        pad_right: c.pads[3],
        dilation_h: c.dilation[0],
        dilation_w: c.dilation[1],
        groups: c.groups,
    };
    let w = env[&c.weight].as_slice::<f32>().expect("f32");
    let b = c
        .bias
        .as_ref()
        .map(|b| env[b].as_slice::<f32>().expect("f32"));
    let k = Conv2d::new(d, w, b, Activation::None).expect("conv2d");
    let scratch = vec![0f32; k.scratch_len()];
    Exec::Conv(Box::new(k), std::cell::RefCell::new(scratch))
}

/// Median µs of `f` over enough runs for about 300 ms.
fn time(mut f: impl FnMut()) -> f64 {
    f();
    let mut v = vec![];
    let start = Instant::now();
    while v.len() < 5 || (start.elapsed().as_secs_f64() < 0.3 && v.len() < 1000) {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_secs_f64() * 1e6);
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn outputs(p: &Program, r: &HashMap<String, Tensor>) -> Vec<Vec<f64>> {
    p.outputs.iter().map(|o| r[&o.name].to_f64_vec()).collect()
}

fn measure(c: &Candidate, chain: &Chain) {
    let feeds = random(&c.program, 42);
    let mut orig = Runner::new(&c.program, feeds.clone(), None);
    let jit_us = time(|| orig.run(None));
    let m = &chain.matched;
    let mut kern = Runner::new(&m.program, feeds, Some((m.stage, &m.kernel)));
    let kernel_us = time(|| kern.run(Some(&m.kernel)));
    let (a, b) = (
        outputs(&c.program, &orig.env),
        outputs(&c.program, &kern.env),
    );
    let diff = a
        .iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let rules = if chain.steps.is_empty() {
        "(direct)".to_string()
    } else {
        chain.rules().join(" > ")
    };
    println!(
        "{:<28} {:<58} {:<14} {:>10.1} {:>10.1} {:>7.2}x  diff={diff:.1e}",
        short(&c.label),
        rules,
        m.kernel.kind(),
        jit_us,
        kernel_us,
        jit_us / kernel_us
    );
}

/// Each stage of a multi-stage candidate on its own kernel (no merging), summed.
fn unmerged(c: &Candidate) {
    let mut total = 0.0;
    for e in &c.program.stages {
        let p = Program::single(e.clone()).with_constants(c.program.constants.iter().cloned());
        let Some(m) = kiln_rewrite::derive::match_program(&p) else {
            return;
        };
        let mut r = Runner::new(&m.program, random(&p, 42), Some((m.stage, &m.kernel)));
        total += time(|| r.run(Some(&m.kernel)));
    }
    println!(
        "{:<28} {:<58} {:<14} {:>10} {:>10.1}",
        short(&c.label),
        "(each stage alone, no merge)",
        "gemm x3",
        "",
        total
    );
}

/// The last 28 characters of a label.
fn short(l: &str) -> String {
    let n = l.chars().count();
    l.chars().skip(n.saturating_sub(28)).collect()
}

fn load(model: &str) -> Vec<Candidate> {
    let path = format!(
        "{}/../testdata/{model}/{model}.onnx",
        env!("CARGO_MANIFEST_DIR")
    );
    let m = kiln_models::onnx::load(&path, &Default::default()).expect("model");
    candidates(&m.graph).expect("candidates")
}

/// Label and kernel shape of a conv candidate: (kh, stride).
fn conv_shape(c: &Candidate) -> Option<(usize, usize)> {
    let e = &c.program.stages[0];
    let w = e.inputs.get(1)?.ty.shape.get(2).copied()?;
    let s = e.inputs.first()?.ty.shape.get(2)? / e.output.shape.get(2)?;
    (c.program.stages.len() == 1 && e.output.rank() == 4).then_some((w, s))
}

fn main() {
    let limits = SearchLimits::default();
    println!(
        "{:<28} {:<58} {:<14} {:>10} {:>10} {:>8}",
        "expr", "chain", "kernel", "jit us", "kernel us", "ratio"
    );
    let mobilenet = load("mobilenet_v2");
    let flops = |c: &Candidate| {
        c.program.stages[0].output.numel() * c.program.stages[0].inputs[0].ty.shape[1]
    };
    let pointwise = mobilenet
        .iter()
        .filter(|c| conv_shape(c) == Some((1, 1)))
        .max_by_key(|c| flops(c));
    let stem = mobilenet
        .iter()
        .find(|c| conv_shape(c).is_some_and(|(k, s)| k == 3 && s == 2));
    let bert = load("bert_tiny");
    let qkv = bert
        .iter()
        .filter(|c| c.program.stages.len() >= 3)
        .max_by_key(|c| c.program.stages.len());
    for c in [pointwise, stem, qkv].into_iter().flatten() {
        let r = search(&c.program, &limits);
        println!(
            "# {}: {} chains, {} programs visited",
            c.label,
            r.chains.len(),
            r.visited
        );
        for chain in &r.chains {
            measure(c, chain);
        }
        if c.program.stages.len() > 1 {
            unmerged(c);
        }
        if std::env::var_os("DERIVE_VERBOSE").is_some() {
            for chain in &r.chains {
                println!("{chain}");
            }
        }
    }
}
