//! Measuring candidates of one workload in this process: each config is
//! compiled on the workload's subgraph, checked against the reference
//! interpreter on random non-zero inputs, then timed interleaved with the
//! others (one sample of each in turn, so machine phases hit all alike).
//!
//! Crashes and hangs are the worker's business ([`crate::worker`]): this
//! module is what a worker runs.

use kiln_ir::{DType, Graph, Tensor};
use kiln_runtime::tuning::{Config, Tuned};
use kiln_runtime::{compile, CompileOptions, Executable};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Instant;

/// How candidates are timed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    /// Untimed runs per candidate before sampling.
    pub warmup: usize,
    /// Samples per candidate (interleaved rounds).
    pub repeats: usize,
    /// Each sample runs the kernel enough times to last at least this long.
    pub min_sample_us: f64,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            warmup: 2,
            repeats: 7,
            min_sample_us: 200.0,
        }
    }
}

/// What became of one candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// Correct; per-run times in nanoseconds, one per sample.
    Ok {
        samples_ns: Vec<f64>,
    },
    CompileError(String),
    RuntimeError(String),
    /// The worker ran past its time limit on this candidate.
    Timeout,
    WrongResult(String),
}

impl Outcome {
    /// The median per-run time, for a correct candidate.
    pub fn median_ns(&self) -> Option<f64> {
        match self {
            Outcome::Ok { samples_ns } => Some(median(samples_ns)),
            _ => None,
        }
    }
}

/// The median of `v` (0 when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

/// Coefficient of variation (standard deviation / mean) of `v`.
pub fn cv(v: &[f64]) -> f64 {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    if mean > 0.0 {
        var.sqrt() / mean
    } else {
        0.0
    }
}

/// Random non-zero inputs for `g` (floats in ±[0.5, 1.5]; integers 0 or 1,
/// valid as indices of any non-empty axis).
pub fn random_inputs(g: &Graph, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    g.inputs()
        .iter()
        .map(|&i| {
            let v = g.value(i);
            let float = matches!(
                v.ty.dtype,
                DType::F32 | DType::F64 | DType::F16 | DType::BF16
            );
            let data: Vec<f64> = (0..v.ty.numel())
                .map(|_| {
                    if float {
                        let m: f64 = rng.random_range(0.5..1.5);
                        if rng.random_bool(0.5) {
                            m
                        } else {
                            -m
                        }
                    } else {
                        rng.random_range(0..2) as f64
                    }
                })
                .collect();
            let t = Tensor::from_vec(v.ty.shape.clone(), data)
                .expect("shape matches")
                .cast(v.ty.dtype);
            (v.name.clone(), t)
        })
        .collect()
}

/// Whether `got` matches the reference `want`: per element
/// `|x - y| <= 1e-4 · max(1, |y|) + 1e-5 · max|want|` (room for
/// reassociated sums and Winograd's transforms, far below any real bug).
pub fn check(got: &[Tensor], want: &[Tensor]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{} outputs, want {}", got.len(), want.len()));
    }
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        if a.ty() != b.ty() {
            return Err(format!("output {k} is {}, want {}", a.ty(), b.ty()));
        }
        let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
        let scale = b.iter().fold(0.0f64, |m, y| m.max(y.abs()));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            let ok = (x - y).abs() <= 1e-4 * y.abs().max(1.0) + 1e-5 * scale
                || (x.is_nan() && y.is_nan());
            if !ok {
                return Err(format!("output {k}[{i}] is {x}, want {y}"));
            }
        }
    }
    Ok(())
}

/// One workload's measurement job.
pub struct Bench<'a> {
    pub graph: &'a Graph,
    /// The workload's canonical bytes (what the configs are keyed by).
    pub canonical: &'a [u8],
    pub options: CompileOptions,
    pub protocol: Protocol,
    pub seed: u64,
}

impl Bench<'_> {
    /// Compiles `config` for the workload and checks it against `want`.
    pub fn prepare(
        &self,
        config: &Config,
        feeds: &HashMap<String, Tensor>,
        want: &[Tensor],
    ) -> Result<Executable, Outcome> {
        let mut tuned = Tuned::default();
        tuned.insert(self.canonical.to_vec(), config.clone());
        let opts = self.options.clone().with_tuned(tuned);
        let exe = compile(self.graph, &opts).map_err(|e| Outcome::CompileError(e.to_string()))?;
        let got = exe
            .run(feeds)
            .map_err(|e| Outcome::RuntimeError(e.to_string()))?;
        check(&got, want).map_err(Outcome::WrongResult)?;
        Ok(exe)
    }

    /// Measures every config: checked first, then timed interleaved.
    /// `on_start(i)` is called before candidate `i` is compiled (a worker
    /// reports it, so a crash or hang is charged to the right candidate).
    pub fn run(
        &self,
        configs: &[Config],
        mut on_start: impl FnMut(usize),
    ) -> Result<Vec<Outcome>, String> {
        let feeds = random_inputs(self.graph, self.seed);
        let want = kiln_ir::interp::run(self.graph, &feeds).map_err(|e| e.to_string())?;
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(configs.len());
        let mut ready: Vec<(usize, Executable, usize)> = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            on_start(i);
            match self.prepare(c, &feeds, &want) {
                Ok(exe) => {
                    let reps = self.calibrate(&exe, &feeds).map_err(|e| e.to_string())?;
                    ready.push((i, exe, reps));
                    outcomes.push(Outcome::Ok { samples_ns: vec![] });
                }
                Err(o) => outcomes.push(o),
            }
        }
        for _ in 0..self.protocol.repeats.max(1) {
            for (i, exe, reps) in &ready {
                let t = hot_sample(exe, &feeds, *reps, self.options.spin_us)
                    .map_err(|e| e.to_string())?;
                if let Outcome::Ok { samples_ns } = &mut outcomes[*i] {
                    samples_ns.push(t);
                }
            }
        }
        Ok(outcomes)
    }

    /// Warms `exe` up and returns the runs per sample.
    fn calibrate(
        &self,
        exe: &Executable,
        feeds: &HashMap<String, Tensor>,
    ) -> kiln_runtime::Result<usize> {
        for _ in 0..self.protocol.warmup {
            exe.run(feeds)?;
        }
        let once = time(exe, feeds, 1)?.max(1.0);
        Ok(((self.protocol.min_sample_us * 1e3 / once).ceil() as usize).clamp(1, 10_000))
    }
}

/// Mean nanoseconds per run over `reps` runs of `exe` with its pool hot
/// and every other pool asleep, as in a model's run: first a pause longer
/// than the workers' spin (`spin_us`), so the pools of the candidates timed
/// before stop spinning on the cores this one needs, then one untimed run
/// to wake this pool's workers. Without it, interleaved candidates of many
/// threads timed each other's spinning pools (16-thread GEMMs of 16 us
/// measured at 370 us).
pub fn hot_sample(
    exe: &Executable,
    feeds: &HashMap<String, Tensor>,
    reps: usize,
    spin_us: u64,
) -> kiln_runtime::Result<f64> {
    settle(spin_us);
    exe.run(feeds)?;
    time(exe, feeds, reps)
}

/// Sleeps until pools that spin `spin_us` after their last job are asleep.
fn settle(spin_us: u64) {
    std::thread::sleep(std::time::Duration::from_micros(
        spin_us + spin_us / 2 + 100,
    ));
}

/// Mean nanoseconds per run over `reps` runs.
fn time(
    exe: &Executable,
    feeds: &HashMap<String, Tensor>,
    reps: usize,
) -> kiln_runtime::Result<f64> {
    let t0 = Instant::now();
    for _ in 0..reps {
        exe.run(feeds)?;
    }
    Ok(t0.elapsed().as_secs_f64() * 1e9 / reps as f64)
}
