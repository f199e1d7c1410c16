//! `kiln explain MODEL --derive`: the derivation search
//! (`kiln_rewrite::derive`) on every contraction of the model and every
//! group of contractions sharing an input; prints, per candidate, the
//! chains found (rules, kernel, memory-bound remainder), or that none was.

use anyhow::Result;
use kiln_rewrite::derive::{candidates, search, SearchLimits};

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
    Ok(())
}
