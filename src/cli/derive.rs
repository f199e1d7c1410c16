//! `kiln explain MODEL --derive`: the derivation search
//! (`kiln_rewrite::derive`) on every contraction of the model and every
//! group of contractions sharing an input; prints, per candidate, the
//! chains found (rules, kernel, memory-bound remainder), or that none was;
//! then the route each contraction of the compiled model took: the kernel
//! step that computes it (family and variant) beside its derived route.

use anyhow::Result;
use kiln_rewrite::derive::{candidates, search, Chain, SearchLimits};
use std::collections::HashMap;

/// Prints the chains of every candidate of `g`; `verbose` prints each step's program.
pub fn print(g: &kiln_ir::Graph, max_nodes: usize, verbose: bool) -> Result<()> {
    let limits = SearchLimits {
        max_nodes,
        ..SearchLimits::default()
    };
    for c in candidates(g)? {
        let r = search(&c.program, &limits);
        println!(
            "{} ({} stage(s), {} programs searched{})",
            c.label,
            c.program.stages.len(),
            r.visited,
            if r.truncated { ", truncated" } else { "" }
        );
        if r.chains.is_empty() {
            println!("  no kernel match");
        }
        for ch in &r.chains {
            if verbose {
                println!("{ch}");
                continue;
            }
            let rules = if ch.steps.is_empty() {
                "(direct)".to_string()
            } else {
                ch.rules().join(" > ")
            };
            let m = &ch.matched;
            println!(
                "  {rules} => {} (+{} memory-bound, {} folded)",
                m.kernel,
                m.remainder.len(),
                m.folded.len()
            );
        }
    }
    routes(g, &limits)
}

/// A chain in one line: its rules and the kernel kind it ends in.
fn route(ch: &Chain) -> String {
    let rules = match ch.steps.is_empty() {
        true => "direct".to_string(),
        false => ch.rules().join(" > "),
    };
    let rest = ch.matched.remainder.len();
    let tail = if rest > 0 {
        format!(" +{rest} memory-bound")
    } else {
        String::new()
    };
    format!("{rules} => {}{tail}", ch.matched.kernel.kind())
}

/// The route each contraction of the compiled model took (default options).
fn routes(g: &kiln_ir::Graph, limits: &SearchLimits) -> Result<()> {
    let exe = kiln_runtime::compile(g, &kiln_runtime::CompileOptions::default())?;
    let derived: HashMap<String, Vec<Chain>> = candidates(g)?
        .into_iter()
        .filter(|c| c.program.stages.len() == 1)
        .map(|c| (c.label.clone(), search(&c.program, limits).chains))
        .collect();
    let (mut total, mut matched, mut generated) = (0, 0, 0);
    println!(
        "routes of the compiled model ({} kernel steps):",
        exe.report().kernels.len()
    );
    for k in &exe.report().kernels {
        for (node, op) in k.nodes.iter().zip(&k.ops) {
            let Some(chains) = derived.get(node) else {
                continue;
            };
            total += 1;
            matched += usize::from(!chains.is_empty());
            generated +=
                usize::from(k.kernel.starts_with("jit") || k.kernel.starts_with("interpreter"));
            let via: Vec<String> = chains.iter().map(route).collect();
            let via = match via.is_empty() {
                true => "no known-kernel route".to_string(),
                false => via.join(" | "),
            };
            println!("  {node} ({op}): kernel {} ; derived {via}", k.kernel);
        }
    }
    println!(
        "{total} contractions: {matched} with a derived route to a known kernel, {} on hand-written kernels, {generated} on generated code or the interpreter",
        total - generated
    );
    Ok(())
}
