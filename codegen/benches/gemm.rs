//! f32 GEMM throughput of `cpu::gemm_f32` (C := A·B, all row-major n×n).
//!
//! `cargo bench -p kiln-codegen --bench gemm` prints a GFLOP/s median for
//! n in 256, 512, 1024, 2048 at 1 and 2 threads. Options (after `--`):
//! `--sizes 256,1024`, `--threads 1,2`, `--min-time 0.5` (seconds timed per
//! point). One line per point: `kiln n=<n> threads=<t> gflops=<median>
//! reps=<r> isa=<isa>`; `scripts/bench_gemm.py` parses these lines.

use kiln_codegen::cpu::{features, gemm_f32, Strides};
use std::time::{Duration, Instant};

struct Options {
    sizes: Vec<usize>,
    threads: Vec<usize>,
    min_time: Duration,
}

fn list(value: &str) -> Vec<usize> {
    value
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("a comma-separated list of integers")
        })
        .collect()
}

fn options() -> Options {
    let mut o = Options {
        sizes: vec![256, 512, 1024, 2048],
        threads: vec![1, 2],
        min_time: Duration::from_millis(500),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().expect("option value");
        match arg.as_str() {
            "--sizes" => o.sizes = list(&value()),
            "--threads" => o.threads = list(&value()),
            "--min-time" => o.min_time = Duration::from_secs_f64(value().parse().unwrap()),
            _ => {} // `--bench` and filters from cargo
        }
    }
    o
}

fn random(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| 0.5 + ((i * 7919) % 1000) as f32 / 1000.0)
        .collect()
}

/// Median GFLOP/s of `C := A·B` for n×n matrices, and the number of timed calls.
fn measure(n: usize, threads: usize, min_time: Duration) -> (f64, usize) {
    let (a, b) = (random(n * n), random(n * n));
    let mut c = vec![0.0f32; n * n];
    let s = Strides::row_major(n);
    let mut call = || gemm_f32(n, n, n, &a, s, &b, s, &mut c, s, 1.0, 0.0, threads).unwrap();
    call(); // warm-up: pages, caches, rayon threads
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || (start.elapsed() < min_time && times.len() < 1000) {
        let t = Instant::now();
        call();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    (2.0 * (n as f64).powi(3) / median / 1e9, times.len())
}

fn main() {
    let o = options();
    let isa = features().isa();
    for &n in &o.sizes {
        for &threads in &o.threads {
            let (gflops, reps) = measure(n, threads, o.min_time);
            println!("kiln n={n} threads={threads} gflops={gflops:.1} reps={reps} isa={isa}");
        }
    }
}
