//! `kiln run MODEL --input NAME=FILE.npy ... [--output-dir DIR] [--json]`.

use anyhow::{bail, Context, Result};
use kiln_ir::Tensor;
use kiln_models::onnx::ImportOptions;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The ONNX model file.
    model: PathBuf,
    /// An input as NAME=FILE.npy (repeat for each input).
    #[arg(short, long = "input", value_name = "NAME=FILE.npy")]
    inputs: Vec<String>,
    /// Folder to write each output to, as <output name>.npy.
    #[arg(short, long)]
    output_dir: Option<PathBuf>,
    /// Compare an output with expected values, as NAME=FILE.npy (repeatable);
    /// fails when max |got - expected| exceeds `--tolerance` x max |expected|.
    #[arg(long = "expect", value_name = "NAME=FILE.npy")]
    expect: Vec<String>,
    /// Relative tolerance for `--expect`.
    #[arg(long, default_value_t = 1e-4)]
    tolerance: f64,
    #[command(flatten)]
    engine: super::engine::EngineArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct OutputReport {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    file: Option<String>,
    /// Max |got - expected| and max |expected|, when `--expect` names this output.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_abs_error: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_abs_expected: Option<f64>,
}

#[derive(Serialize)]
struct Report {
    model: String,
    import_ms: f64,
    compile_ms: f64,
    run_ms: f64,
    engine: &'static str,
    outputs: Vec<OutputReport>,
}

pub(super) fn parse_inputs(specs: &[String], flag: &str) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for s in specs {
        let (name, file) = s
            .split_once('=')
            .with_context(|| format!("{flag} `{s}` must look like NAME=FILE.npy"))?;
        let t = kiln_ir::npy::load(file)?;
        if out.insert(name.to_string(), t).is_some() {
            bail!("input `{name}` is given twice");
        }
    }
    Ok(out)
}

/// A file name for an output: characters outside [A-Za-z0-9_.-] become `_`.
fn file_name(output: &str) -> String {
    let s: String = output
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{s}.npy")
}

pub fn run(a: Args) -> Result<()> {
    let inputs = parse_inputs(&a.inputs, "--input")?;
    let mut expected = parse_inputs(&a.expect, "--expect")?;
    let shapes = inputs
        .iter()
        .map(|(n, t)| (n.clone(), t.shape().to_vec()))
        .collect();
    // Inputs the model needs at compile time (a Reshape's shape, Resize's
    // sizes, split sizes...) are specialised on the given values; the rest
    // stay inputs.
    let opts = ImportOptions {
        input_shapes: shapes,
        input_values: inputs.clone(),
        ..Default::default()
    };
    let t0 = Instant::now();
    let m = kiln_models::onnx::load(&a.model, &opts)?;
    let import_ms = t0.elapsed().as_secs_f64() * 1e3;
    let inputs = bind_inputs(&m.graph, inputs);
    let (engine, compile_ms) = super::engine::Engine::new(&m.graph, &a.engine)?;
    let t1 = Instant::now();
    let outs = engine
        .run(&inputs)
        .with_context(|| format!("running {}", a.model.display()))?;
    let run_ms = t1.elapsed().as_secs_f64() * 1e3;
    if let Some(dir) = &a.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut reports = Vec::new();
    for (&id, t) in m.graph.outputs().iter().zip(&outs) {
        let name = m.graph.value(id).name.clone();
        let file = match &a.output_dir {
            Some(dir) => Some(write_output(dir, &name, t)?),
            None => None,
        };
        let (max_abs_error, max_abs_expected) = match expected.remove(&name) {
            Some(e) => {
                let (err, scale) = compare(t, &e).with_context(|| format!("output `{name}`"))?;
                (Some(err), Some(scale))
            }
            None => (None, None),
        };
        reports.push(OutputReport {
            name,
            dtype: t.dtype().to_string(),
            shape: t.shape().to_vec(),
            file,
            max_abs_error,
            max_abs_expected,
        });
    }
    if let Some(name) = expected.keys().next() {
        bail!("--expect names `{name}`, which is not an output of the model");
    }
    let r = Report {
        model: a.model.display().to_string(),
        import_ms,
        compile_ms,
        run_ms,
        engine: engine.name(),
        outputs: reports,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{}: imported in {:.1} ms, compiled in {:.1} ms, ran in {:.2} ms ({})",
            r.model, r.import_ms, r.compile_ms, r.run_ms, r.engine
        );
        for o in &r.outputs {
            let to = o
                .file
                .as_ref()
                .map(|f| format!(" -> {f}"))
                .unwrap_or_default();
            let check = match (o.max_abs_error, o.max_abs_expected) {
                (Some(e), Some(m)) => format!(
                    "  max abs error {e:.3e} ({:.2e} of max |expected| {m:.3})",
                    e / m.max(f64::MIN_POSITIVE)
                ),
                _ => String::new(),
            };
            println!("  {:<24} {}{:?}{to}{check}", o.name, o.dtype, o.shape);
        }
    }
    for o in &r.outputs {
        if let (Some(e), Some(m)) = (o.max_abs_error, o.max_abs_expected) {
            if e > a.tolerance * m {
                bail!("output `{}` differs from the expected values: max abs error {e:.3e} exceeds {} x max |expected| ({m:.3e})", o.name, a.tolerance);
            }
        }
    }
    Ok(())
}

/// Keeps the inputs that are still graph inputs after import; the others
/// were specialised into constants (logged).
pub(super) fn bind_inputs(
    g: &kiln_ir::Graph,
    mut inputs: HashMap<String, Tensor>,
) -> HashMap<String, Tensor> {
    let live: HashMap<String, Tensor> = g
        .inputs()
        .iter()
        .filter_map(|&v| {
            let name = &g.value(v).name;
            inputs.remove_entry(name)
        })
        .collect();
    for name in inputs.keys() {
        tracing::info!(input = %name, "bound at compile time (the model needs its value to compile)");
    }
    live
}

/// Max absolute difference and max |expected|; shapes and dtypes must match.
fn compare(got: &Tensor, want: &Tensor) -> Result<(f64, f64)> {
    if got.ty() != want.ty() {
        bail!(
            "the model gives {} but the expected file holds {}",
            got.ty(),
            want.ty()
        );
    }
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let err = g
        .iter()
        .zip(&w)
        .map(|(a, b)| match (a.is_nan(), b.is_nan()) {
            (true, true) => 0.0,
            (false, false) => (a - b).abs(),
            _ => f64::INFINITY,
        })
        .fold(0.0, f64::max);
    let scale = w.iter().map(|v| v.abs()).fold(0.0, f64::max);
    Ok((err, scale))
}

fn write_output(dir: &Path, name: &str, t: &Tensor) -> Result<String> {
    let path = dir.join(file_name(name));
    kiln_ir::npy::save(&path, t)?;
    Ok(path.display().to_string())
}
