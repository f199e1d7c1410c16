//! `kiln compile MODEL [--threads N] [--no-rewrite] [--candidates K] [--json]`:
//! compiles a model for this CPU (by default the fastest measured of the
//! original and the rewrite stage's candidates; `--no-rewrite` compiles it as
//! imported) and reports the candidates, kernels, fused groups, fallbacks,
//! peak memory and time.

use super::engine::EngineArgs;
use super::select::Selection;
use anyhow::Result;
use kiln_models::onnx::ImportOptions;
use serde::Serialize;
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

/// The compile report, with the rewrite selection when there was one.
#[derive(Serialize)]
struct Json<'a> {
    #[serde(flatten)]
    report: &'a kiln_runtime::CompileReport,
    rewrite: Option<&'a Selection>,
}

/// Each candidate's estimate and median, the kept one marked.
fn print_selection(s: &Selection) {
    println!(
        "rewrite: {} candidates in {:.0} ms (rewrite stage {:.0} ms), kept `{}`",
        s.candidates.len(),
        s.total_ms,
        s.rewrite_ms,
        s.candidates[s.chosen].origin
    );
    for (i, c) in s.candidates.iter().enumerate() {
        let mark = if i == s.chosen { '*' } else { ' ' };
        println!(
            "  {mark} {:<28} {:>4} nodes  est {:>9.1} us  median {:.3} ms",
            c.origin, c.nodes, c.estimated_us, c.median_ms
        );
    }
}

pub fn run(a: Args) -> Result<()> {
    let m = kiln_models::onnx::load(&a.model, &ImportOptions::default())?;
    let (exe, sel) = a.engine.prepare(&m.graph)?;
    let r = exe.report();
    if a.json {
        let out = Json {
            report: r,
            rewrite: sel.as_ref(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if let Some(s) = &sel {
        print_selection(s);
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
        "peak intermediate memory {:.1} KiB (without reuse {:.1} KiB), {} outputs in place, {} values written straight into a concat",
        r.arena_bytes as f64 / 1024.0,
        r.unshared_bytes as f64 / 1024.0,
        r.in_place,
        r.concat_parts
    );
    println!(
        "{} kernels with knobs from the tuning database{}",
        r.tuned_kernels,
        if a.engine.db.no_db { " (--no-db)" } else { "" }
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
