//! `kiln explain MODEL [--json] [--derive] [--rules]`: runs the rewrite stage (equality
//! saturation and extraction) and reports the rule count (and with `--rules` each
//! rule's identity), the rewrites applied per rule, the op
//! histogram and estimated cost before and after, the e-graph size and times;
//! with `--derive`, the tensor-expression derivation chains instead (`derive`).

use anyhow::Result;
use kiln_models::onnx::ImportOptions;
use kiln_rewrite::{optimize, Limits, Roofline};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The ONNX model file.
    model: PathBuf,
    /// E-node limit of the search.
    #[arg(long, default_value_t = Limits::default().max_nodes)]
    max_nodes: usize,
    /// Iteration limit of the search.
    #[arg(long, default_value_t = Limits::default().max_iterations)]
    max_iterations: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Instead, search derivation chains from each contraction to a known kernel.
    #[arg(long)]
    derive: bool,
    /// With --derive: programs searched per candidate.
    #[arg(long, default_value_t = 1000)]
    derive_nodes: usize,
    /// With --derive: print every step's program.
    #[arg(long)]
    derive_verbose: bool,
    /// Also list every rule with its identity.
    #[arg(long)]
    rules: bool,
}

pub fn run(a: Args) -> Result<()> {
    let m = kiln_models::onnx::load(&a.model, &ImportOptions::default())?;
    if a.derive {
        return super::derive::print(&m.graph, a.derive_nodes, a.derive_verbose);
    }
    let limits = Limits {
        max_nodes: a.max_nodes,
        max_iterations: a.max_iterations,
        ..Limits::default()
    };
    let (_, r) = optimize(&m.graph, &limits, &Roofline::default())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "{}: e-graph {} nodes in {} classes after {} iterations ({}), saturated in {:.1} ms, extracted in {:.1} ms",
        a.model.display(),
        r.egraph_nodes,
        r.egraph_classes,
        r.iterations,
        r.stop_reason,
        r.saturate_ms,
        r.extract_ms
    );
    println!(
        "estimated cost {:.1} us -> {:.1} us (roofline model){}",
        r.cost_before,
        r.cost_after,
        if r.kept_original {
            "; nothing cheaper found, the input graph is kept"
        } else {
            ""
        }
    );
    let rules = kiln_rewrite::rules::all();
    let multi = rules.iter().filter(|r| r.multi).count();
    println!(
        "{} rules ({multi} multi-pattern, run in the first {} iterations only)",
        rules.len(),
        limits.multi_iterations
    );
    if a.rules {
        for r in &rules {
            println!("  {:<24} {}", r.name, r.identity);
        }
    }
    println!("rewrites applied");
    for (rule, n) in &r.applied {
        println!("  {rule:<24} {n}");
    }
    println!("{:<24} {:>6} {:>6}", "op", "before", "after");
    let kinds: std::collections::BTreeSet<&String> =
        r.ops_before.keys().chain(r.ops_after.keys()).collect();
    for k in kinds {
        let (b, f) = (
            r.ops_before.get(k).unwrap_or(&0),
            r.ops_after.get(k).unwrap_or(&0),
        );
        println!("{k:<24} {b:>6} {f:>6}");
    }
    Ok(())
}
