//! `kiln bench MODEL [--input NAME=FILE.npy ...] [--iters N] [--warmup N] [--json]`:
//! latency of a model. Inputs not given are random (floats uniform in
//! [-1, 1) and never all zero; integers in [0, 8); bools random). The engine is the compiled
//! CPU path (`--threads N`), or the reference interpreter with `--interpret`.

use anyhow::{bail, Result};
use kiln_ir::{DType, Graph, Tensor};
use kiln_models::onnx::ImportOptions;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The ONNX model file.
    model: PathBuf,
    /// An input as NAME=FILE.npy (repeatable); others are random.
    #[arg(short, long = "input", value_name = "NAME=FILE.npy")]
    inputs: Vec<String>,
    /// Timed iterations.
    #[arg(long, default_value_t = 20)]
    iters: usize,
    /// Also print each kernel's median time (compiled engine only).
    #[arg(long)]
    profile: bool,
    /// Untimed warm-up iterations.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    #[command(flatten)]
    engine: super::engine::EngineArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    model: String,
    engine: &'static str,
    threads: Option<usize>,
    compile_ms: f64,
    iters: usize,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    random_inputs: Vec<String>,
}

/// A small xorshift generator: benchmarks need varied, reproducible data, not crypto.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A random tensor of the given type (see the module docs for the ranges).
fn random_tensor(rng: &mut Rng, dtype: DType, shape: Vec<usize>) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let vals: Vec<f64> = (0..n)
        .map(|_| match dtype {
            d if d.is_float() => 2.0 * rng.unit() - 1.0,
            DType::Bool => (rng.next() & 1) as f64,
            _ => (rng.next() % 8) as f64,
        })
        .collect();
    if dtype == DType::String {
        bail!("cannot make random string inputs; give them with --input");
    }
    Ok(Tensor::from_vec(shape, vals)?.cast(dtype))
}

pub(super) fn feeds(
    g: &Graph,
    given: HashMap<String, Tensor>,
) -> Result<(HashMap<String, Tensor>, Vec<String>)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = given;
    let mut random = Vec::new();
    for &i in g.inputs() {
        let v = g.value(i);
        if !out.contains_key(&v.name) {
            out.insert(
                v.name.clone(),
                random_tensor(&mut rng, v.ty.dtype, v.ty.shape.clone())?,
            );
            random.push(v.name.clone());
        }
    }
    Ok((out, random))
}

pub fn run(a: Args) -> Result<()> {
    if a.iters == 0 {
        bail!("--iters must be at least 1");
    }
    let given = super::run::parse_inputs(&a.inputs, "--input")?;
    let shapes = given
        .iter()
        .map(|(n, t)| (n.clone(), t.shape().to_vec()))
        .collect();
    let opts = ImportOptions {
        input_shapes: shapes,
        input_values: given.clone(),
        ..Default::default()
    };
    let m = kiln_models::onnx::load(&a.model, &opts)?;
    let given = super::run::bind_inputs(&m.graph, given);
    let (inputs, random_inputs) = feeds(&m.graph, given)?;
    let (engine, compile_ms) = super::engine::Engine::new(&m.graph, &a.engine)?;
    for _ in 0..a.warmup {
        engine.run(&inputs)?;
    }
    let mut times = Vec::with_capacity(a.iters);
    for _ in 0..a.iters {
        let t = Instant::now();
        engine.run(&inputs)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    if a.profile {
        if let super::engine::Engine::Compiled(e) = &engine {
            print_profile(e.profile(&inputs, a.iters)?);
        }
    }
    let r = Report {
        model: a.model.display().to_string(),
        engine: engine.name(),
        threads: match &engine {
            super::engine::Engine::Compiled(e) => Some(e.report().threads),
            super::engine::Engine::Interpreter(_) => None,
        },
        compile_ms,
        iters: a.iters,
        median_ms: times[times.len() / 2],
        min_ms: times[0],
        max_ms: times[times.len() - 1],
        random_inputs,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} ({}{}): median {:.3} ms, min {:.3} ms, max {:.3} ms over {} runs after {} warm-up",
            r.model,
            r.engine,
            r.threads
                .map(|t| format!(", {t} threads"))
                .unwrap_or_default(),
            r.median_ms,
            r.min_ms,
            r.max_ms,
            r.iters,
            a.warmup
        );
        if !r.random_inputs.is_empty() {
            println!("random inputs: {}", r.random_inputs.join(", "));
        }
    }
    Ok(())
}

/// Per-kernel medians, slowest first, with their share of the total.
fn print_profile(mut steps: Vec<(String, String, f64)>) {
    let total: f64 = steps.iter().map(|s| s.2).sum();
    steps.sort_by(|a, b| b.2.total_cmp(&a.2));
    println!("per-kernel medians (sum {:.1} us)", total);
    for (node, kernel, us) in &steps {
        println!(
            "  {us:9.1} us {:5.1}%  {kernel:<36} {node}",
            100.0 * us / total
        );
    }
}
