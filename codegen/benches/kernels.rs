//! Throughput of the fused kernels on the layers of Kiln's target models.
//!
//! `cargo bench -p kiln-codegen --bench kernels [-- --threads 1,2 --min-time 0.2 --filter mnv2 --cold]`
//!
//! `--cold` evicts every thread's L2 before every timed call (weights then
//! come from L3, as inside a whole model).
//!
//! Cases: every convolution of torchvision MobileNetV2 (batch 1, 224×224; bias
//! and Clip(0,6) or residual fused as in the model) and its final Gemm; the
//! matmuls, softmax and layer norms of bert_tiny (sequence 64, hidden 128, two
//! heads, FFN 512); the 784-512-512-10 MLP (m = 1). Two threads run inside a
//! local two-thread rayon pool. One line per case and thread count:
//! `<case> threads=<t> us=<median µs> gflops=<GFLOP/s> min_us=.. max_gflops=..`
//! (the minimum resists a busy machine), then per-model totals (sums over the
//! layers, counting repeated layers).

use kiln_codegen::cpu::kernels::*;
use std::time::{Duration, Instant};

/// One benchmark case: a name, its flops, how often the model runs it, and a closure.
struct Case {
    name: String,
    flops: f64,
    count: usize,
    run: Box<dyn FnMut(usize) + Send>,
}

fn data(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i * 7919 + seed * 104_729) % 2001) as f32 - 1000.0) / 1000.0)
        .collect()
}

fn relu6() -> Activation {
    Activation::Clip { min: 0.0, max: 6.0 }
}

/// A convolution case with its buffers.
fn conv_case(name: &str, d: Conv2dDesc, act: Activation, residual: bool) -> Case {
    let w = data(d.c_out * d.c_in / d.groups * d.kh * d.kw, 1);
    let bias = data(d.c_out, 2);
    let cv = Conv2d::new(d, &w, Some(&bias), act).unwrap();
    let x = data(d.batch * d.c_in * d.h * d.w, 3);
    let out = d.batch * d.c_out * d.out_h() * d.out_w();
    let res = residual.then(|| data(out, 4));
    let mut y = vec![0f32; out];
    let mut scratch = vec![0f32; cv.scratch_len()];
    let flops = 2.0 * out as f64 * (d.c_in / d.groups * d.kh * d.kw) as f64;
    Case {
        name: format!(
            "{name} {}x{}x{}->{} k{}s{} g{}",
            d.c_in, d.h, d.w, d.c_out, d.kh, d.stride_h, d.groups
        ),
        flops,
        count: 1,
        run: Box::new(move |t| cv.run(&x, res.as_deref(), &mut y, &mut scratch, t).unwrap()),
    }
}

fn conv_desc(
    c_in: usize,
    hw: usize,
    c_out: usize,
    k: usize,
    s: usize,
    groups: usize,
) -> Conv2dDesc {
    let p = k / 2;
    Conv2dDesc {
        batch: 1,
        c_in,
        h: hw,
        w: hw,
        c_out,
        kh: k,
        kw: k,
        stride_h: s,
        stride_w: s,
        pad_top: p,
        pad_left: p,
        pad_bottom: p,
        pad_right: p,
        dilation_h: 1,
        dilation_w: 1,
        groups,
    }
}

/// whisper_encoder_tiny's two Conv1d layers (as 1×k 2-D convolutions) and
/// 1×1 convolutions with the same GEMM sizes (M = c_out, K = c_in·k, N = length).
fn whisper() -> Vec<Case> {
    let line = |c_in, w, c_out, k: usize, s| Conv2dDesc {
        h: 1,
        w,
        kh: 1,
        kw: k,
        stride_h: 1,
        stride_w: s,
        pad_top: 0,
        pad_bottom: 0,
        pad_left: k / 2,
        pad_right: k / 2,
        ..conv_desc(c_in, 1, c_out, 1, 1, 1)
    };
    vec![
        conv_case(
            "conv1 k3",
            line(80, 3000, 128, 3, 1),
            Activation::Gelu,
            false,
        ),
        conv_case(
            "gemm M128 K240 N3000",
            line(240, 3000, 128, 1, 1),
            Activation::Gelu,
            false,
        ),
        conv_case(
            "conv2 k3 s2",
            line(128, 3000, 128, 3, 2),
            Activation::Gelu,
            false,
        ),
        conv_case(
            "gemm M128 K384 N1500",
            line(384, 1500, 128, 1, 1),
            Activation::Gelu,
            false,
        ),
    ]
}

/// A whole inverted-residual block (1×1 expansion, depthwise 3×3, 1×1
/// projection) as one [`DepthwisePointwise`], with its buffers.
fn block_case(c: usize, hw: usize, hidden: usize, co: usize, s: usize) -> Case {
    let conv = |d: Conv2dDesc, act, seed| {
        let w = data(d.c_out * d.c_in / d.groups * d.kh * d.kw, seed);
        Conv2d::new(d, &w, Some(&data(d.c_out, seed + 1)), act).unwrap()
    };
    let expand = conv(conv_desc(c, hw, hidden, 1, 1, 1), relu6(), 1);
    let dw = conv(conv_desc(hidden, hw, hidden, 3, s, hidden), relu6(), 3);
    let ohw = hw / s;
    let pw = conv(conv_desc(hidden, ohw, co, 1, 1, 1), Activation::None, 5);
    let block = DepthwisePointwise::new(dw, pw)
        .unwrap()
        .with_expand(expand)
        .unwrap();
    let x = data(c * hw * hw, 7);
    let res = (s == 1 && c == co).then(|| data(co * ohw * ohw, 8));
    let mut y = vec![0f32; co * ohw * ohw];
    let mut scratch = vec![0f32; (1..=4).map(|t| block.scratch_len(t)).max().unwrap()];
    let flops =
        2.0 * (hidden * hw * hw * c + hidden * ohw * ohw * 9 + co * ohw * ohw * hidden) as f64;
    Case {
        name: format!("mnv2 block {c}x{hw}x{hw}->{hidden}->{co} s{s}"),
        flops,
        count: 1,
        run: Box::new(move |t| {
            block
                .run(&x, res.as_deref(), &mut y, &mut scratch, t)
                .unwrap()
        }),
    }
}

/// MobileNetV2's stem (3×3 stride 2, 3 → 32 channels) leading its first
/// block (depthwise 3×3, 1×1 to 16), fused.
fn stem_block_case() -> Case {
    let conv = |d: Conv2dDesc, act, seed| {
        let w = data(d.c_out * d.c_in / d.groups * d.kh * d.kw, seed);
        Conv2d::new(d, &w, Some(&data(d.c_out, seed + 1)), act).unwrap()
    };
    let stem = conv(conv_desc(3, 224, 32, 3, 2, 1), relu6(), 1);
    let dw = conv(conv_desc(32, 112, 32, 3, 1, 32), relu6(), 3);
    let pw = conv(conv_desc(32, 112, 16, 1, 1, 1), Activation::None, 5);
    let block = DepthwisePointwise::new(dw, pw)
        .unwrap()
        .with_expand(stem)
        .unwrap();
    let x = data(3 * 224 * 224, 7);
    let mut y = vec![0f32; 16 * 112 * 112];
    let mut scratch = vec![0f32; (1..=4).map(|t| block.scratch_len(t)).max().unwrap()];
    let px = (112 * 112) as f64;
    let flops = 2.0 * px * (32.0 * 27.0 + 32.0 * 9.0 + 16.0 * 32.0);
    Case {
        name: "mnv2 block stem 3x224x224->32->16".to_string(),
        flops,
        count: 1,
        run: Box::new(move |t| block.run(&x, None, &mut y, &mut scratch, t).unwrap()),
    }
}

/// The inverted-residual blocks of MobileNetV2 from 28×28 down, fused.
fn blocks() -> Vec<Case> {
    vec![
        stem_block_case(),
        block_case(16, 112, 96, 24, 2),
        block_case(24, 56, 144, 24, 1),
        block_case(32, 28, 192, 32, 1),
        block_case(32, 28, 192, 64, 2),
        block_case(64, 14, 384, 64, 1),
        block_case(64, 14, 384, 96, 1),
        block_case(96, 14, 576, 96, 1),
        block_case(96, 14, 576, 160, 2),
        block_case(160, 7, 960, 160, 1),
        block_case(160, 7, 960, 320, 1),
    ]
}

/// Every convolution of MobileNetV2 and its classifier.
fn mobilenet() -> Vec<Case> {
    let mut v = vec![conv_case(
        "mnv2 stem",
        conv_desc(3, 224, 32, 3, 2, 1),
        relu6(),
        false,
    )];
    let (mut c, mut hw) = (32, 112);
    let settings = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ];
    for (t, co, n, s) in settings {
        for i in 0..n {
            let s = if i == 0 { s } else { 1 };
            let hidden = c * t;
            if t != 1 {
                v.push(conv_case(
                    "mnv2 expand",
                    conv_desc(c, hw, hidden, 1, 1, 1),
                    relu6(),
                    false,
                ));
            }
            v.push(conv_case(
                "mnv2 dw",
                conv_desc(hidden, hw, hidden, 3, s, hidden),
                relu6(),
                false,
            ));
            hw /= s;
            let res = s == 1 && c == co;
            v.push(conv_case(
                if res {
                    "mnv2 project+res"
                } else {
                    "mnv2 project"
                },
                conv_desc(hidden, hw, co, 1, 1, 1),
                Activation::None,
                res,
            ));
            c = co;
        }
    }
    v.push(conv_case(
        "mnv2 head",
        conv_desc(320, 7, 1280, 1, 1, 1),
        relu6(),
        false,
    ));
    v.push(packed_case("mnv2 fc", 1, 1280, 1000, Activation::None, 1));
    merge(v)
}

/// Folds identical cases into one with a count.
fn merge(v: Vec<Case>) -> Vec<Case> {
    let mut out: Vec<Case> = Vec::new();
    for c in v {
        match out.iter_mut().find(|o| o.name == c.name) {
            Some(o) => o.count += 1,
            None => out.push(c),
        }
    }
    out
}

fn packed_case(name: &str, m: usize, k: usize, n: usize, act: Activation, count: usize) -> Case {
    let b = data(k * n, 5);
    let bias = data(n, 6);
    let p = PackedMatmul::new(k, n, &b, true, Some(&bias), act).unwrap();
    let a = data(m * k, 7);
    let mut c = vec![0f32; m * n];
    Case {
        name: format!("{name} {m}x{k}x{n}"),
        flops: 2.0 * (m * n * k) as f64,
        count,
        run: Box::new(move |t| p.run(&a, m, None, &mut c, t).unwrap()),
    }
}

fn matmul_case(name: &str, d: MatmulDesc, bias: bool, residual: bool, count: usize) -> Case {
    let a = data(d.batch.max(1) * d.m * d.k, 8);
    let b = data(d.batch.max(1) * d.k * d.n, 9);
    let bv = data(d.n, 10);
    let rv = data(d.batch * d.m * d.n, 11);
    let mut c = vec![0f32; d.batch * d.m * d.n];
    Case {
        name: format!(
            "{name} b{} {}x{}x{}{}",
            d.batch,
            d.m,
            d.k,
            d.n,
            if d.b_transposed { " bT" } else { "" }
        ),
        flops: 2.0 * (d.batch * d.m * d.n * d.k) as f64,
        count,
        run: Box::new(move |t| {
            let e = Epilogue {
                bias: bias.then_some(&bv[..]),
                residual: residual.then_some(&rv[..]),
                activation: Activation::None,
            };
            matmul_f32(&d, &a, &b, &mut c, &e, t).unwrap()
        }),
    }
}

fn mm(batch: usize, m: usize, k: usize, n: usize, bt: bool, shared_b: bool) -> MatmulDesc {
    MatmulDesc {
        batch,
        m,
        n,
        k,
        a_batch_stride: m * k,
        b_batch_stride: if shared_b { 0 } else { k * n },
        b_transposed: bt,
    }
}

/// bert_tiny's matmuls and row kernels (per model run: 2 layers).
fn bert() -> Vec<Case> {
    let (rows, h) = (64, 128);
    let x = data(2 * rows * 64, 12);
    let mut y = vec![0f32; 2 * rows * 64];
    let xl = data(rows * h, 13);
    let g = data(h, 14);
    let mut yl = vec![0f32; rows * h];
    vec![
        matmul_case(
            "bert qkvo",
            mm(1, 64, 128, 128, false, true),
            true,
            false,
            8,
        ),
        matmul_case(
            "bert ffn1",
            mm(1, 64, 128, 512, false, true),
            true,
            false,
            2,
        ),
        matmul_case(
            "bert ffn2+res",
            mm(1, 64, 512, 128, false, true),
            true,
            true,
            2,
        ),
        matmul_case(
            "bert scores",
            mm(2, 64, 64, 64, false, false),
            false,
            false,
            2,
        ),
        matmul_case(
            "bert scores",
            mm(2, 64, 64, 64, true, false),
            false,
            false,
            0,
        ),
        matmul_case(
            "bert context",
            mm(2, 64, 64, 64, false, false),
            false,
            false,
            2,
        ),
        Case {
            name: "bert softmax 128x64".into(),
            flops: (2 * rows * 64 * 10) as f64,
            count: 2,
            run: Box::new(move |t| softmax_rows_f32(&x, &mut y, 2 * rows, 64, t).unwrap()),
        },
        Case {
            name: "bert layernorm 64x128".into(),
            flops: (rows * h * 8) as f64,
            count: 5,
            run: Box::new(move |t| {
                layer_norm_rows_f32(&xl, &g, Some(&g), 1e-12, &mut yl, rows, h, t).unwrap()
            }),
        },
    ]
}

fn mlp() -> Vec<Case> {
    vec![
        packed_case("mlp fc1", 1, 784, 512, Activation::Relu, 1),
        packed_case("mlp fc2", 1, 512, 512, Activation::Relu, 1),
        packed_case("mlp fc3", 1, 512, 10, Activation::None, 1),
        matmul_case(
            "mlp fc1 unpacked",
            mm(1, 1, 784, 512, true, true),
            true,
            false,
            0,
        ),
    ]
}

/// Square matmuls around the switch to the packing `gemm` crate (matmul::LARGE).
fn big() -> Vec<Case> {
    [256, 383, 384, 512, 1024]
        .iter()
        .map(|&s| matmul_case("big", mm(1, s, s, s, false, true), true, false, 0))
        .collect()
}

/// Median and minimum seconds per call of `f`, timing batches of calls for `min_time`.
fn time(f: &mut dyn FnMut(), min_time: Duration, cold: bool) -> (f64, f64) {
    if cold {
        return time_cold(f, min_time);
    }
    let start = Instant::now();
    let mut reps = 0usize;
    while start.elapsed() < Duration::from_millis(20) {
        f();
        reps += 1;
    }
    let per_batch = (reps / 200).max(1);
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < min_time || samples.len() < 5 {
        let t = Instant::now();
        for _ in 0..per_batch {
            f();
        }
        samples.push(t.elapsed().as_secs_f64() / per_batch as f64);
    }
    samples.sort_by(f64::total_cmp);
    (samples[samples.len() / 2], samples[0])
}

/// As [`time`], one call per sample after every thread of the current pool
/// wrote 4 MiB (twice its L2), so that weights and inputs come from L3 as
/// inside a whole model.
fn time_cold(f: &mut dyn FnMut(), min_time: Duration) -> (f64, f64) {
    thread_local! {
        static EVICT: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 4 << 20]);
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < min_time || samples.len() < 20 {
        rayon::broadcast(|_| {
            EVICT.with(|e| {
                let mut e = e.borrow_mut();
                e.iter_mut()
                    .step_by(64)
                    .for_each(|b| *b = b.wrapping_add(1));
                std::hint::black_box(&*e);
            })
        });
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64());
    }
    samples.sort_by(f64::total_cmp);
    (samples[samples.len() / 2], samples[0])
}

fn main() {
    let mut threads = vec![1, 2];
    let mut min_time = Duration::from_millis(200);
    let mut filter = String::new();
    let mut cold = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => {
                threads = args
                    .next()
                    .unwrap()
                    .split(',')
                    .map(|s| s.parse().unwrap())
                    .collect()
            }
            "--min-time" => {
                min_time = Duration::from_secs_f64(args.next().unwrap().parse().unwrap())
            }
            "--filter" => filter = args.next().unwrap(),
            "--cold" => cold = true,
            _ => {}
        }
    }
    for (model, mut cases) in [
        ("mobilenet_v2", mobilenet()),
        ("mobilenet_v2 blocks", blocks()),
        ("bert_tiny", bert()),
        ("mlp", mlp()),
        ("whisper_encoder_tiny conv1d", whisper()),
        ("big", big()),
    ] {
        cases.retain(|c| c.name.contains(&filter));
        for &t in &threads {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap();
            let (mut total, mut total_min) = (0.0, 0.0);
            for c in cases.iter_mut() {
                let run = &mut c.run;
                let (s, best) = pool.install(|| time(&mut || run(t), min_time, cold));
                total += s * c.count as f64;
                total_min += best * c.count as f64;
                println!(
                    "{:<44} x{:<2} threads={t} us={:>8.2} gflops={:>6.1} min_us={:>8.2} max_gflops={:>6.1}",
                    c.name,
                    c.count,
                    s * 1e6,
                    c.flops / s / 1e9,
                    best * 1e6,
                    c.flops / best / 1e9
                );
            }
            println!(
                "TOTAL {model} threads={t} us={:.1} min_us={:.1}\n",
                total * 1e6,
                total_min * 1e6
            );
        }
    }
}
