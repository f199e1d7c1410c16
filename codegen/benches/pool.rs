//! Max pooling on GoogLeNet's pools (batch 1): the row, plane
//! (`PoolTuning::plane_bytes`) and direct (`PoolTuning::direct`) schedules,
//! interleaved, on a spinning pool of the given threads (as a model runs).
//!
//! `cargo bench -p kiln-codegen --bench pool [-- --threads 1,2 --min-time 0.2]`
//!
//! One line per layer and thread count: median µs of each schedule and the
//! GB/s of the fastest (input + output bytes).

use kiln_codegen::cpu::kernels::{Pool, PoolDesc, PoolKind, PoolTuning};
use kiln_codegen::cpu::SpinPool;
use std::time::{Duration, Instant};

/// (channels, plane, kernel, stride, ceil-mode extra pad) of the layers.
const LAYERS: [(usize, usize, usize, usize, usize); 6] = [
    (64, 112, 3, 2, 1),
    (192, 56, 3, 2, 1),
    (480, 28, 3, 2, 1),
    (832, 14, 2, 2, 0),
    (256, 28, 3, 1, 0),
    (480, 14, 3, 1, 0),
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
    for (c, hw, k, s, extra) in LAYERS {
        let pad = if s == 1 { k / 2 } else { 0 };
        let out = (hw + 2 * pad + extra - k) / s + 1;
        let d = PoolDesc {
            kind: PoolKind::Max,
            planes: c,
            input: vec![hw, hw],
            kernel: vec![k, k],
            strides: vec![s, s],
            dilations: vec![1, 1],
            begin: vec![pad, pad],
            end: vec![pad + extra, pad + extra],
            out: vec![out, out],
        };
        let planes = PoolTuning {
            direct: false,
            ..PoolTuning::default()
        };
        let rows = PoolTuning {
            plane_bytes: 0,
            ..planes
        };
        let pools = [
            ("rows", Pool::new(&d, rows).unwrap()),
            ("planes", Pool::new(&d, planes).unwrap()),
            ("direct", Pool::new(&d, PoolTuning::default()).unwrap()),
        ];
        let (ni, no) = pools[0].1.sizes();
        let x: Vec<f32> = (0..ni)
            .map(|i| ((i * 7919) % 2001) as f32 - 1000.0)
            .collect();
        let mut y = vec![0f32; no];
        for &t in &threads {
            let mut samples = [Vec::new(), Vec::new(), Vec::new()];
            let spin = SpinPool::new(t, Duration::from_micros(300)).unwrap();
            spin.install(|| {
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs_f64(3.0 * min_time) {
                    for (i, (_, p)) in pools.iter().enumerate() {
                        let t0 = Instant::now();
                        p.run(&x, &mut y, t).unwrap();
                        samples[i].push(t0.elapsed().as_secs_f64() * 1e6);
                    }
                }
            });
            let med: Vec<f64> = samples
                .iter_mut()
                .map(|v| {
                    v.sort_by(|a, b| a.total_cmp(b));
                    v[v.len() / 2]
                })
                .collect();
            let best = med.iter().copied().fold(f64::INFINITY, f64::min);
            println!(
                "pool c{c} {hw}x{hw} k{k} s{s} threads={t} rows={:.1} planes={:.1} direct={:.1} gbps={:.1}",
                med[0],
                med[1],
                med[2],
                4.0 * (ni + no) as f64 / best / 1e3
            );
        }
    }
}
