//! A synthetic tuning data set for the cost model tests: tiled matmul
//! candidates whose latency is a known nonlinear function of the knobs,
//! the workload and the target (SIMD width, caches, cores, clock,
//! bandwidth), with 3% multiplicative noise.

#![allow(dead_code)]

use kiln_tuner::cost::{features, CacheSizes, Candidate, KernelDescriptor, Sample};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A synthetic target.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: &'static str,
    pub simd: f64,
    pub caches: CacheSizes,
    pub cores: f64,
    pub ghz: f64,
    /// Bytes per ns from memory.
    pub bw: f64,
}

impl Target {
    /// The numeric target descriptor appended to features.
    pub fn desc(&self) -> Vec<f32> {
        let l = |x: f64| x.log2() as f32;
        let peak = self.ghz * 2.0 * self.simd * self.cores;
        vec![
            l(self.simd),
            l(self.caches.l1),
            l(self.caches.l2),
            l(self.caches.l3),
            l(self.cores),
            l(peak),
            l(self.bw),
        ]
    }
}

const KB: f64 = 1024.0;

pub fn avx512() -> Target {
    Target {
        name: "xeon-avx512",
        simd: 16.0,
        caches: CacheSizes {
            l1: 48.0 * KB,
            l2: 2048.0 * KB,
            l3: 32768.0 * KB,
        },
        cores: 2.0,
        ghz: 2.6,
        bw: 10.0,
    }
}

pub fn avx2() -> Target {
    Target {
        name: "epyc-avx2",
        simd: 8.0,
        caches: CacheSizes {
            l1: 32.0 * KB,
            l2: 512.0 * KB,
            l3: 16384.0 * KB,
        },
        cores: 16.0,
        ghz: 3.0,
        bw: 40.0,
    }
}

pub fn neon() -> Target {
    Target {
        name: "arm-neon",
        simd: 4.0,
        caches: CacheSizes {
            l1: 64.0 * KB,
            l2: 1024.0 * KB,
            l3: 8192.0 * KB,
        },
        cores: 8.0,
        ghz: 2.0,
        bw: 20.0,
    }
}

/// A workload: a matmul of m x k by k x n.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub id: u128,
    pub m: f64,
    pub n: f64,
    pub k: f64,
}

/// Candidate knobs.
#[derive(Clone, Copy, Debug)]
pub struct Knobs {
    pub tm: f64,
    pub tn: f64,
    pub vec: f64,
    pub unroll: f64,
    pub threads: f64,
}

pub fn workloads(n: usize, seed: u64) -> Vec<Workload> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| Workload {
            id: 0x1000 + i as u128,
            m: (rng.random_range(5.0f64..11.0)).exp2().round(),
            n: (rng.random_range(5.0f64..11.0)).exp2().round(),
            k: (rng.random_range(4.0f64..10.0)).exp2().round(),
        })
        .collect()
}

fn pick(rng: &mut ChaCha8Rng, xs: &[f64]) -> f64 {
    xs[rng.random_range(0..xs.len())]
}

pub fn knobs(rng: &mut ChaCha8Rng) -> Knobs {
    Knobs {
        tm: pick(rng, &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
        tn: pick(rng, &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        vec: pick(rng, &[1.0, 4.0, 8.0, 16.0]),
        unroll: pick(rng, &[1.0, 2.0, 4.0, 8.0]),
        threads: pick(rng, &[1.0, 2.0, 4.0, 8.0, 16.0]),
    }
}

/// Bytes per tile (the working set) and bytes moved.
fn traffic(w: &Workload, c: &Knobs) -> (f64, f64) {
    let ws = (c.tm * w.k + w.k * c.tn + c.tm * c.tn) * 4.0;
    let moved = w.m * w.n * w.k * 4.0 * (1.0 / c.tm + 1.0 / c.tn);
    (ws, moved)
}

/// The true (noise-free) latency in ns.
pub fn latency(t: &Target, w: &Workload, c: &Knobs) -> f64 {
    let flops = 2.0 * w.m * w.n * w.k;
    let lanes = c.vec.min(t.simd) * if c.vec > t.simd { 0.5 } else { 1.0 };
    let unroll = 0.5 + 0.5 * c.unroll.min(4.0) / 4.0;
    // Register spill when the unrolled vector accumulators exceed 32 x simd.
    let spill = if c.unroll * c.vec > 2.0 * t.simd * 4.0 {
        1.6
    } else {
        1.0
    };
    let used = c.threads.min(t.cores);
    let oversub = if c.threads > t.cores { 1.5 } else { 1.0 };
    let par = used / (1.0 + 0.03 * used) / oversub;
    let compute = flops / (t.ghz * 2.0 * lanes * unroll * par) * spill;
    let (ws, moved) = traffic(w, c);
    let level = if ws <= t.caches.l1 {
        0.25
    } else if ws <= t.caches.l2 {
        0.6
    } else if ws <= t.caches.l3 {
        1.5
    } else {
        4.0
    };
    let mem = moved * level / (t.bw * used.sqrt());
    let (hi, lo) = if compute > mem {
        (compute, mem)
    } else {
        (mem, compute)
    };
    hi + 0.3 * lo + 2000.0 * c.threads
}

/// The kernel descriptor the tuner would fill for a candidate.
pub fn descriptor(w: &Workload, c: &Knobs) -> KernelDescriptor {
    let (ws, moved) = traffic(w, c);
    KernelDescriptor {
        family: "gemm".into(),
        variant: "tiled".into(),
        flops: 2.0 * w.m * w.n * w.k,
        bytes_read: moved,
        bytes_written: w.m * w.n * 4.0,
        working_set: ws,
        threads: c.threads as u32,
        knobs: vec![
            ("tile_m".into(), c.tm),
            ("tile_n".into(), c.tn),
            ("vec".into(), c.vec),
            ("unroll".into(), c.unroll),
        ],
    }
}

/// `per` measured candidates of each workload on `t`.
pub fn samples(t: &Target, ws: &[Workload], per: usize, seed: u64) -> Vec<Sample> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let desc = t.desc();
    let mut out = vec![];
    for w in ws {
        for _ in 0..per {
            let c = knobs(&mut rng);
            let noise = 1.0 + 0.03 * (rng.random::<f64>() * 2.0 - 1.0) * 1.7;
            let d = descriptor(w, &c);
            out.push(Sample {
                workload: w.id,
                target: t.name.to_string(),
                features: features(&Candidate::Kernel(&d), &t.caches, &desc),
                latency_ns: latency(t, w, &c) * noise,
                batch: 0,
            });
        }
    }
    out
}
