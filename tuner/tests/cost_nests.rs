//! The cost model ranks JIT loop-nest schedules: matmul workloads with
//! random schedules (split, vectorize, unroll, parallel), a synthetic
//! latency that depends on what the schedule does against the target's
//! SIMD width, cores and caches, and features from the nests themselves.

mod cost_common;

use cost_common::{avx2, avx512, Target};
use kiln_ir::expr::{apply, lower, Schedule, Step, TensorExpr};
use kiln_ir::{text, Graph};
use kiln_tuner::cost::metrics::split_by_workload;
use kiln_tuner::cost::{features, Candidate, CostConfig, CostModel, Sample};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn matmul(m: usize, k: usize, n: usize) -> TensorExpr {
    let src = format!(
        "graph t {{
  input a: f32[{m},{k}]
  input b: f32[{k},{n}]
  node mm = MatMul(a, b) -> c: f32[{m},{n}]
  output c
}}"
    );
    let g: Graph = text::parse(&src).unwrap();
    lower(&g, &g.nodes()[0]).unwrap().unwrap()
}

/// Schedule knobs.
#[derive(Clone, Copy)]
struct Knobs {
    ti: usize,
    tj: usize,
    lanes: usize,
    unroll: usize,
    parallel: bool,
}

fn schedule(c: &Knobs) -> Schedule {
    let mut s = vec![
        Step::Split {
            iter: "i".into(),
            factor: c.ti,
        },
        Step::Split {
            iter: "j".into(),
            factor: c.tj,
        },
        Step::Reorder {
            order: ["i.o", "j.o", "i.i", "j.i"].map(String::from).to_vec(),
        },
    ];
    if c.lanes > 1 {
        s.push(Step::Vectorize {
            iter: "j.i".into(),
            lanes: c.lanes,
        });
    }
    if c.unroll > 1 {
        s.push(Step::Unroll {
            iter: "k".into(),
            factor: c.unroll,
        });
    }
    if c.parallel {
        s.push(Step::Parallel { iter: "i.o".into() });
    }
    Schedule::new(s)
}

/// A known nonlinear latency of the schedule on the target.
fn latency(t: &Target, (m, k, n): (usize, usize, usize), c: &Knobs) -> f64 {
    let (m, k, n) = (m as f64, k as f64, n as f64);
    let waste = (n / c.tj as f64).ceil() * c.tj as f64 / n;
    let lanes = (c.lanes as f64).min(c.tj as f64);
    let vec = lanes.min(t.simd) * if lanes > t.simd { 0.6 } else { 1.0 };
    let unroll = 1.0 + 0.15 * (c.unroll as f64).log2();
    let par = if c.parallel {
        t.cores.min((m / c.ti as f64).ceil()) * 0.9
    } else {
        1.0
    };
    let ws = (c.ti as f64 * k + k * c.tj as f64 + (c.ti * c.tj) as f64) * 4.0;
    let mem = if ws <= t.caches.l1 {
        1.0
    } else if ws <= t.caches.l2 {
        1.4
    } else {
        2.5
    };
    m * n * k * waste * mem / (t.ghz * vec.max(1.0) * unroll * par) + 500.0
}

fn samples(t: &Target, workloads: usize, per: usize, seed: u64) -> Vec<Sample> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pick = |rng: &mut ChaCha8Rng, xs: &[usize]| xs[rng.random_range(0..xs.len())];
    let desc = t.desc();
    let mut out = vec![];
    for w in 0..workloads {
        let shape = (
            pick(&mut rng, &[32, 64, 96, 128, 256]),
            pick(&mut rng, &[16, 48, 64, 128, 512]),
            pick(&mut rng, &[24, 64, 100, 128, 256]),
        );
        let e = matmul(shape.0, shape.1, shape.2);
        let mut got = 0;
        while got < per {
            let c = Knobs {
                ti: pick(&mut rng, &[1, 2, 4, 8, 16]),
                tj: pick(&mut rng, &[4, 8, 16, 32, 64]),
                lanes: pick(&mut rng, &[1, 4, 8, 16]),
                unroll: pick(&mut rng, &[1, 2, 4, 8]),
                parallel: rng.random_bool(0.5),
            };
            let s = schedule(&c);
            let Ok(nest) = apply(&e, &s) else { continue };
            let noise = 1.0 + 0.05 * (rng.random::<f64>() - 0.5);
            out.push(Sample {
                workload: w as u128,
                target: t.name.into(),
                features: features(
                    &Candidate::Nest {
                        nest: &nest,
                        schedule: &s,
                    },
                    &t.caches,
                    &desc,
                ),
                latency_ns: latency(t, shape, &c) * noise,
                batch: 0,
            });
            got += 1;
        }
    }
    out
}

#[test]
fn ranks_schedules_of_held_out_workloads() {
    let mut all = samples(&avx512(), 40, 24, 1);
    all.extend(samples(&avx2(), 40, 24, 1));
    let (train, test) = split_by_workload(&all, 0.25, 2);
    let mut m = CostModel::new(CostConfig {
        target_dims: 7,
        ..CostConfig::default()
    })
    .unwrap();
    m.train(&train).unwrap();
    for t in [avx512(), avx2()] {
        let test_t: Vec<Sample> = test
            .iter()
            .filter(|s| s.target == t.name)
            .cloned()
            .collect();
        let e = m.evaluate(&test_t).unwrap();
        eprintln!("{}: {e:?}", t.name);
        assert!(e.pairwise >= 0.85, "{}: {e:?}", t.name);
    }
}
