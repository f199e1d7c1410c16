//! Every depthwise kernel family (`DwKernel`) on the depthwise layers of
//! MNASNet, MobileNetV2 and EfficientNet-style models (batch 1, bias + ReLU).
//!
//! `cargo bench -p kiln-codegen --bench depthwise [-- --threads 1,2 --min-time 0.2 --filter k5 --kernel StagedGrid]`
//!
//! One line per layer and thread count: the median µs of each kernel family
//! (interleaved, repeated until `--min-time` seconds per family) and which is
//! fastest. The tuner measures the same choice per workload (`dw_kernel` knob).

use kiln_codegen::cpu::kernels::*;
use std::time::{Duration, Instant};

fn data(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i * 7919 + seed * 104_729) % 2001) as f32 - 1000.0) / 1000.0)
        .collect()
}

/// (channels, plane, kernel, stride) of the layers.
const LAYERS: [(usize, usize, usize, usize); 14] = [
    (32, 112, 3, 1),
    (96, 112, 3, 2),
    (144, 56, 3, 1),
    (144, 56, 3, 2),
    (192, 28, 3, 1),
    (576, 14, 3, 1),
    (960, 7, 3, 1),
    (72, 56, 5, 2),
    (120, 28, 5, 1),
    (240, 28, 5, 2),
    (480, 14, 5, 1),
    (576, 14, 5, 2),
    (1152, 7, 5, 1),
    (192, 28, 7, 1),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let threads: Vec<usize> = arg("--threads")
        .map_or("1,2", |s| s.as_str())
        .split(',')
        .filter_map(|t| t.parse().ok())
        .collect();
    let min_time: f64 = arg("--min-time")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.2);
    let filter = arg("--filter").cloned().unwrap_or_default();
    for (c, hw, k, s) in LAYERS {
        if !format!("c{c} {hw}x{hw} k{k} s{s}").contains(&filter) {
            continue;
        }
        let p = k / 2;
        let d = Conv2dDesc {
            batch: 1,
            c_in: c,
            h: hw,
            w: hw,
            c_out: c,
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
            groups: c,
        };
        let w = data(c * k * k, 1);
        let bias = data(c, 2);
        let x = data(c * hw * hw, 3);
        let out = c * d.out_h() * d.out_w();
        let flops = 2.0 * (out * k * k) as f64;
        let only = arg("--kernel");
        let convs: Vec<(DwKernel, Conv2d)> = DwKernel::ALL[1..]
            .iter()
            .filter(|k| only.is_none_or(|o| format!("{k:?}") == *o))
            .map(|&kernel| {
                let knobs = ConvKnobs {
                    variant: ConvVariant::Depthwise,
                    depthwise: kernel,
                    ..ConvKnobs::default()
                };
                (
                    kernel,
                    Conv2d::with_knobs(d, &w, Some(&bias), Activation::Relu, knobs).unwrap(),
                )
            })
            .collect();
        for &t in &threads {
            let mut y = vec![0f32; out];
            let mut samples = vec![Vec::new(); convs.len()];
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs_f64(min_time * convs.len() as f64) {
                for (i, (_, cv)) in convs.iter().enumerate() {
                    let t0 = Instant::now();
                    cv.run(&x, None, &mut y, &mut [], t).unwrap();
                    samples[i].push(t0.elapsed().as_secs_f64() * 1e6);
                }
            }
            let med: Vec<f64> = samples
                .iter_mut()
                .map(|v| {
                    v.sort_by(|a, b| a.total_cmp(b));
                    v[v.len() / 2]
                })
                .collect();
            let best = (0..med.len())
                .min_by(|&a, &b| med[a].total_cmp(&med[b]))
                .unwrap();
            let cols: Vec<String> = convs
                .iter()
                .zip(&med)
                .map(|((kernel, _), us)| format!("{kernel:?}={us:.1}"))
                .collect();
            println!(
                "dw c{c} {hw}x{hw} k{k} s{s} threads={t} {} best={:?} gflops={:.1}",
                cols.join(" "),
                convs[best].0,
                flops / med[best] / 1e3
            );
        }
    }
}
