//! The rule scheduler: egg's [`BackoffScheduler`] (explosive rules such as
//! commutativity are banned for a while when they match too often), plus a
//! phase limit for multi-pattern rules: those search only in the first
//! [`crate::Limits::multi_iterations`] iterations. A multi-pattern rule adds
//! terms that combine several independent ones (merged matmuls), and each
//! round of other rules multiplies the combinations it can match again;
//! Tensat found that saturating them unboundedly explodes the e-graph, and
//! that applying them in the first iterations only keeps the useful merges.
//! The limit counts iterations, so a run stays deterministic.

use crate::analysis::{TGraph, TensorAnalysis};
use crate::lang::TNode;
use egg::{BackoffScheduler, Rewrite, RewriteScheduler, SearchMatches, Symbol};
use std::collections::HashSet;

/// Backoff for every rule, and multi-pattern rules only while `iteration < until`.
pub(crate) struct Phased {
    pub inner: BackoffScheduler,
    pub multi: HashSet<Symbol>,
    pub until: usize,
}

impl RewriteScheduler<TNode, TensorAnalysis> for Phased {
    fn can_stop(&mut self, iteration: usize) -> bool {
        RewriteScheduler::<TNode, TensorAnalysis>::can_stop(&mut self.inner, iteration)
    }

    fn search_rewrite<'a>(
        &mut self,
        iteration: usize,
        egraph: &TGraph,
        rewrite: &'a Rewrite<TNode, TensorAnalysis>,
    ) -> Vec<SearchMatches<'a, TNode>> {
        if iteration >= self.until && self.multi.contains(&rewrite.name) {
            return vec![];
        }
        self.inner.search_rewrite(iteration, egraph, rewrite)
    }

    fn apply_rewrite(
        &mut self,
        iteration: usize,
        egraph: &mut TGraph,
        rewrite: &Rewrite<TNode, TensorAnalysis>,
        matches: Vec<SearchMatches<TNode>>,
    ) -> usize {
        self.inner
            .apply_rewrite(iteration, egraph, rewrite, matches)
    }
}
