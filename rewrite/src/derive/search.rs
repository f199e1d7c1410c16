//! The derivation search: best-first over programs from the input, each
//! step one application of one derivation (rules in registry order, sites
//! in the order a rule lists them), programs deduplicated by their printed
//! form, bounded by depth and by the number of programs created. A program's
//! priority is its depth plus [`distance`], an estimate of the steps left to
//! a contraction form; ties go to the program created first, so the search is
//! deterministic. The first match of each kernel kind gives a [`Chain`]; the
//! search goes on past matches (a longer chain may reach another kernel)
//! until `max_chains` kinds are found or the bounds stop it.

use super::kernel::Match;
use super::matching::match_program;
use super::util::plain_iter;
use super::{derivations, Program};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::fmt;

/// Bounds of a search.
#[derive(Clone, Debug)]
pub struct SearchLimits {
    pub max_depth: usize,
    pub max_nodes: usize,
    /// Stop after this many kernel kinds are found.
    pub max_chains: usize,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            max_depth: 5,
            max_nodes: 4000,
            max_chains: 3,
        }
    }
}

/// One step of a chain: the rule, where it applied, and the result.
#[derive(Clone, Debug)]
pub struct Step {
    pub rule: &'static str,
    pub detail: String,
    pub program: Program,
}

/// A derivation chain from the input to a program matching a kernel.
#[derive(Clone, Debug)]
pub struct Chain {
    pub start: Program,
    pub steps: Vec<Step>,
    pub matched: Match,
}

impl Chain {
    /// The rule names in order (`[]` for a direct match).
    pub fn rules(&self) -> Vec<&'static str> {
        self.steps.iter().map(|s| s.rule).collect()
    }
}

/// What a search found and how much it looked at.
#[derive(Clone, Debug, Default)]
pub struct SearchReport {
    pub chains: Vec<Chain>,
    pub visited: usize,
    /// True when the node limit stopped the search.
    pub truncated: bool,
}

struct Node {
    parent: Option<usize>,
    rule: &'static str,
    detail: String,
    program: Program,
    depth: usize,
}

/// Searches derivation chains from `start` that end in a kernel match.
pub fn search(start: &Program, limits: &SearchLimits) -> SearchReport {
    let rules = derivations();
    let mut nodes = vec![Node {
        parent: None,
        rule: "",
        detail: String::new(),
        program: start.clone(),
        depth: 0,
    }];
    let mut seen: HashSet<String> = HashSet::from([start.to_string()]);
    let mut queue = BinaryHeap::from([(Reverse(distance(start)), Reverse(0usize))]);
    let mut report = SearchReport::default();
    while let Some((_, Reverse(id))) = queue.pop() {
        report.visited += 1;
        if let Some(m) = match_program(&nodes[id].program) {
            let kind = m.kernel.kind();
            if !report
                .chains
                .iter()
                .any(|c| c.matched.kernel.kind() == kind)
            {
                report.chains.push(chain(&nodes, id, m));
            }
            if report.chains.len() >= limits.max_chains {
                break;
            }
        }
        if nodes[id].depth >= limits.max_depth {
            continue;
        }
        for r in &rules {
            for d in (r.apply)(&nodes[id].program) {
                if nodes.len() >= limits.max_nodes {
                    report.truncated = true;
                    break;
                }
                if seen.insert(d.program.to_string()) {
                    let depth = nodes[id].depth + 1;
                    queue.push((Reverse(depth + distance(&d.program)), Reverse(nodes.len())));
                    nodes.push(Node {
                        parent: Some(id),
                        rule: r.name,
                        detail: d.detail,
                        program: d.program,
                        depth,
                    });
                }
            }
        }
    }
    tracing::debug!(
        visited = report.visited,
        chains = report.chains.len(),
        "derivation search"
    );
    report
}

/// Estimated steps from `p` to a contraction form: per stage with a
/// reduction, reduction iterators beyond one, output iterators beyond three,
/// and subscripts that are not a plain iterator.
pub fn distance(p: &Program) -> usize {
    p.stages
        .iter()
        .filter(|e| e.reduce.is_some())
        .map(|e| {
            let r = e.reduce.as_ref().map_or(0, |r| r.iters.len());
            let mut odd = 0;
            e.body.visit_accesses(&mut |a| {
                odd += a.index.iter().filter(|s| plain_iter(s).is_none()).count()
            });
            r.saturating_sub(1) + e.iters.len().saturating_sub(3) + odd
        })
        .sum()
}

fn chain(nodes: &[Node], mut id: usize, matched: Match) -> Chain {
    let mut steps = vec![];
    while let Some(p) = nodes[id].parent {
        let n = &nodes[id];
        steps.push(Step {
            rule: n.rule,
            detail: n.detail.clone(),
            program: n.program.clone(),
        });
        id = p;
    }
    steps.reverse();
    Chain {
        start: nodes[0].program.clone(),
        steps,
        matched,
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.start)?;
        for s in &self.steps {
            writeln!(f, "  => {} ({})", s.rule, s.detail)?;
            for line in s.program.to_string().lines() {
                writeln!(f, "     {line}")?;
            }
        }
        let m = &self.matched;
        writeln!(
            f,
            "  == kernel {} on stage `{}`",
            m.kernel, m.program.stages[m.stage].name
        )?;
        for &r in &m.remainder {
            writeln!(
                f,
                "     remainder (memory-bound): {}",
                m.program.stages[r].to_string().lines().last().unwrap_or("")
            )?;
        }
        for &r in &m.folded {
            writeln!(
                f,
                "     folded (constants only): {}",
                m.program.stages[r].name
            )?;
        }
        Ok(())
    }
}
