//! Every distinct convolution layer of the shared models against the GEMM
//! with the same M, N, K, on this machine, in the same run.
//!
//! `cargo bench -p kiln-codegen --bench conv_layers [-- --threads 1,2 --min-time 0.05 --filter k3]`
//!
//! Layers come from `benches/conv_layers.json` (`scripts/conv_layers.py`
//! writes it from `../shared/models`; 1-D convs are height-1 2-D convs). For a
//! dense or grouped layer the reference is a 1×1 convolution (Kiln's packed
//! GEMM on NCHW) with M = c_out/g, K = c_in/g·kh·kw, N = out_h·out_w and the
//! same g, timed interleaved with the layer; the ratio is conv GFLOP/s over
//! GEMM GFLOP/s. Every variant of `Conv2d::variants` (im2col, Winograd,
//! direct...) is timed in the same interleaved loop: the line gives the
//! default (`Auto`) ratio, each variant's microseconds and the best one's
//! ratio. Depthwise layers are memory-bound: they are compared with a copy of
//! the same bytes (input + output) instead. One line per layer and thread
//! count, then a summary per kind (default and best variant).

use kiln_codegen::cpu::kernels::{Activation, Conv2d, Conv2dDesc, ConvKnobs, ConvVariant};
use serde::Deserialize;
use std::time::{Duration, Instant};

#[derive(Deserialize, Clone)]
struct Layer {
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    stride_h: usize,
    stride_w: usize,
    pad_top: usize,
    pad_left: usize,
    pad_bottom: usize,
    pad_right: usize,
    dilation_h: usize,
    dilation_w: usize,
    groups: usize,
    uses: Vec<String>,
}

impl Layer {
    fn desc(&self) -> Conv2dDesc {
        Conv2dDesc {
            batch: 1,
            c_in: self.c_in,
            h: self.h,
            w: self.w,
            c_out: self.c_out,
            kh: self.kh,
            kw: self.kw,
            stride_h: self.stride_h,
            stride_w: self.stride_w,
            pad_top: self.pad_top,
            pad_left: self.pad_left,
            pad_bottom: self.pad_bottom,
            pad_right: self.pad_right,
            dilation_h: self.dilation_h,
            dilation_w: self.dilation_w,
            groups: self.groups,
        }
    }
    fn depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.c_in
    }
    fn name(&self) -> String {
        format!(
            "{}x{}x{}->{} k{}x{} s{} g{}",
            self.c_in, self.h, self.w, self.c_out, self.kh, self.kw, self.stride_w, self.groups
        )
    }
}

fn data(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i * 7919 + seed * 104_729) % 2001) as f32 - 1000.0) / 1000.0)
        .collect()
}

/// A runnable convolution with its buffers.
struct Bench {
    conv: Conv2d,
    x: Vec<f32>,
    y: Vec<f32>,
    scratch: Vec<f32>,
}

impl Bench {
    fn new(d: Conv2dDesc) -> Bench {
        Bench::variant(d, ConvVariant::Auto)
    }
    fn variant(d: Conv2dDesc, variant: ConvVariant) -> Bench {
        let knobs = ConvKnobs {
            variant,
            ..ConvKnobs::default()
        };
        Bench::with_knobs(d, knobs)
    }
    fn with_knobs(d: Conv2dDesc, knobs: ConvKnobs) -> Bench {
        let w = data(d.c_out * d.c_in / d.groups * d.kh * d.kw, 1);
        let b = Some(&data(d.c_out, 2)[..]);
        let conv = Conv2d::with_knobs(d, &w, b, Activation::Relu, knobs).unwrap();
        let scratch = vec![0f32; conv.scratch_len()];
        Bench {
            conv,
            x: data(d.batch * d.c_in * d.h * d.w, 3),
            y: vec![0f32; d.batch * d.c_out * d.out_h() * d.out_w()],
            scratch,
        }
    }
    fn run(&mut self, t: usize) {
        let (x, y, s) = (&self.x, &mut self.y, &mut self.scratch);
        self.conv.run(x, None, y, s, t).unwrap();
    }
}

/// The GEMM with the layer's M, N, K (and groups) as a 1×1 convolution.
fn gemm_desc(l: &Layer) -> Conv2dDesc {
    let d = l.desc();
    let k = l.c_in / l.groups * l.kh * l.kw;
    Conv2dDesc {
        c_in: k * l.groups,
        h: 1,
        w: d.out_h() * d.out_w(),
        kh: 1,
        kw: 1,
        stride_h: 1,
        stride_w: 1,
        pad_top: 0,
        pad_left: 0,
        pad_bottom: 0,
        pad_right: 0,
        dilation_h: 1,
        dilation_w: 1,
        ..d
    }
}

/// Median seconds of `a` and `b`, timed alternately for `min_time` each.
fn interleaved(a: &mut dyn FnMut(), b: &mut dyn FnMut(), min_time: Duration) -> (f64, f64) {
    let m = interleaved_all(&mut [a, b], min_time);
    (m[0], m[1])
}

/// Median seconds of each of `fs`, timed in turn for about `min_time` each.
fn interleaved_all(fs: &mut [&mut dyn FnMut()], min_time: Duration) -> Vec<f64> {
    fs.iter_mut().for_each(|f| f());
    let mut s = vec![Vec::new(); fs.len()];
    let start = Instant::now();
    while start.elapsed() < fs.len() as u32 * min_time || s[0].len() < 7 {
        for (f, s) in fs.iter_mut().zip(&mut s) {
            let t = Instant::now();
            f();
            s.push(t.elapsed().as_secs_f64());
        }
    }
    s.into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect()
}

struct Args {
    threads: Vec<usize>,
    min_time: Duration,
    filter: String,
}

fn args() -> Args {
    let mut a = Args {
        threads: vec![1, 2],
        min_time: Duration::from_millis(50),
        filter: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(s) = it.next() {
        match s.as_str() {
            "--threads" => {
                a.threads = it
                    .next()
                    .unwrap()
                    .split(',')
                    .map(|t| t.parse().unwrap())
                    .collect()
            }
            "--min-time" => {
                a.min_time = Duration::from_secs_f64(it.next().unwrap().parse().unwrap())
            }
            "--filter" => a.filter = it.next().unwrap(),
            _ => {}
        }
    }
    a
}

fn main() {
    let a = args();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/conv_layers.json");
    let layers: Vec<Layer> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for &t in &a.threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap();
        let (mut dense, mut best, mut dw) = (Vec::new(), Vec::new(), Vec::new());
        for l in layers.iter().filter(|l| l.name().contains(&a.filter)) {
            let d = l.desc();
            let mut conv = Bench::new(d);
            let flops = 2.0 * conv.y.len() as f64 * (l.c_in / l.groups * l.kh * l.kw) as f64;
            let ratio = if l.depthwise() {
                let bytes = 4 * (conv.x.len() + conv.y.len());
                let (src, mut dst) = (vec![1u8; bytes / 2], vec![0u8; bytes / 2]);
                let (tc, tm) = pool.install(|| {
                    interleaved(
                        &mut || conv.run(t),
                        &mut || dst.copy_from_slice(&src),
                        a.min_time,
                    )
                });
                let r = tm / tc;
                println!(
                    "{} threads={t} us={:.1} gbs={:.1} copy_gbs={:.1} ratio={r:.2} uses={}",
                    l.name(),
                    tc * 1e6,
                    bytes as f64 / tc / 1e9,
                    bytes as f64 / tm / 1e9,
                    l.uses.len()
                );
                dw.push(r);
                continue;
            } else {
                let r = dense_layer(l, &mut conv, t, &pool, a.min_time, flops);
                best.push(r.1);
                r.0
            };
            dense.push(ratio);
        }
        summary(t, "dense/grouped vs GEMM (default variant)", &dense);
        summary(t, "dense/grouped vs GEMM (best variant)", &best);
        summary(t, "depthwise vs copy of the same bytes", &dw);
    }
}

/// A dense or grouped layer: the default and every variant interleaved
/// with the GEMM; prints one line, returns the default's and the best ratio.
fn dense_layer(
    l: &Layer,
    conv: &mut Bench,
    t: usize,
    pool: &rayon::ThreadPool,
    min_time: Duration,
    flops: f64,
) -> (f64, f64) {
    let variants = Conv2d::variants(&l.desc());
    let mut vb: Vec<Bench> = variants
        .iter()
        .map(|&v| Bench::variant(l.desc(), v))
        .collect();
    // Pointwise (1×1 layers) or else im2col on 12×32 and on 8×48 micro-tiles
    // (`ConvKnobs::wide_pointwise`, `wide_tiles`).
    let pointwise = variants.contains(&ConvVariant::Pointwise);
    let im2col = variants.contains(&ConvVariant::Im2col);
    let mut tiles: Vec<Bench> = [false, true]
        .into_iter()
        .filter(|_| pointwise || im2col)
        .map(|wide| {
            let knobs = ConvKnobs {
                variant: match pointwise {
                    true => ConvVariant::Pointwise,
                    false => ConvVariant::Im2col,
                },
                wide_tiles: wide,
                wide_pointwise: wide,
                ..ConvKnobs::default()
            };
            Bench::with_knobs(l.desc(), knobs)
        })
        .collect();
    let mut gemm = Bench::new(gemm_desc(l));
    let times = pool.install(|| {
        let mut fs: Vec<Box<dyn FnMut() + '_>> =
            vec![Box::new(|| conv.run(t)), Box::new(|| gemm.run(t))];
        for b in vb.iter_mut().chain(tiles.iter_mut()) {
            fs.push(Box::new(move || b.run(t)));
        }
        let mut refs: Vec<&mut dyn FnMut()> = fs.iter_mut().map(|f| &mut **f as _).collect();
        interleaved_all(&mut refs, min_time)
    });
    let (tc, tg) = (times[0], times[1]);
    let (times, tile_times) = times.split_at(2 + variants.len());
    let tiles_us = match tile_times {
        [tall, wide] => format!(" tiles_us=[tall={:.1},wide={:.1}]", tall * 1e6, wide * 1e6),
        _ => String::new(),
    };
    let (vi, tb) =
        times[2..].iter().enumerate().fold(
            (0, f64::INFINITY),
            |m, (i, &x)| if x < m.1 { (i, x) } else { m },
        );
    let each: Vec<String> = variants
        .iter()
        .zip(&times[2..])
        .map(|(v, x)| format!("{v:?}={:.1}", x * 1e6))
        .collect();
    println!(
        "{} threads={t} us={:.1} gflops={:.1} gemm_gflops={:.1} ratio={:.2} variants_us=[{}] best={:?} best_ratio={:.2} uses={}{tiles_us}",
        l.name(), tc * 1e6, flops / tc / 1e9, flops / tg / 1e9, tg / tc, each.join(","),
        variants[vi], tg / tb, l.uses.len()
    );
    (tg / tc, tg / tb)
}

fn summary(t: usize, what: &str, r: &[f64]) {
    if r.is_empty() {
        return;
    }
    let geo = (r.iter().map(|x| x.ln()).sum::<f64>() / r.len() as f64).exp();
    let at85 = r.iter().filter(|&&x| x >= 0.85).count();
    let min = r.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "summary threads={t} {what}: {} layers, {at85} at >= 0.85, geomean {geo:.2}, min {min:.2}",
        r.len()
    );
}
