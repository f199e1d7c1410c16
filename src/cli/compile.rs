//! `kiln compile MODEL [--threads N] [--rewrite] [--json]`: compiles a model (rewritten first
//! with `--rewrite`) for this
//! CPU and reports kernels, fused groups, fallbacks, peak memory and time.

use super::engine::EngineArgs;
use anyhow::Result;
use kiln_models::onnx::ImportOptions;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The ONNX model file.
    model: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
    /// List every kernel, not only the summary.
    #[arg(long)]
    kernels: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let m = kiln_models::onnx::load(&a.model, &ImportOptions::default())?;
    let g = a.engine.prepare(&m.graph)?;
    let exe = kiln_runtime::compile(&g, &a.engine.options()?)?;
    let r = exe.report();
    if a.json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!(
        "{}: {} nodes -> {} kernels ({} fused groups, {} views) in {:.1} ms, {} threads",
        a.model.display(),
        r.nodes,
        r.kernels.len(),
        r.fused_groups,
        r.aliases,
        r.compile_ms,
        r.threads
    );
    println!(
        "peak intermediate memory {:.1} KiB (without reuse {:.1} KiB), {} outputs in place",
        r.arena_bytes as f64 / 1024.0,
        r.unshared_bytes as f64 / 1024.0,
        r.in_place
    );
    let mut by_kernel: BTreeMap<String, usize> = BTreeMap::new();
    for k in &r.kernels {
        let family = k.kernel.split('[').next().unwrap_or(&k.kernel).to_string();
        *by_kernel.entry(family).or_default() += 1;
    }
    println!("kernels");
    for (k, n) in &by_kernel {
        println!("  {k:<24} {n}");
    }
    if r.fallbacks.is_empty() {
        println!("interpreter fallbacks: none");
    } else {
        println!("interpreter fallbacks ({} nodes)", r.fallback_count());
        for (op, n) in &r.fallbacks {
            println!("  {op:<24} {n}");
        }
    }
    if a.kernels {
        for k in &r.kernels {
            println!("  {:<60} {:<40} {}", k.node, k.kernel, k.ops.join("+"));
        }
    }
    Ok(())
}
