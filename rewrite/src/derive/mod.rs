//! OLLIE-style derivations on tensor expressions: rules that rewrite a
//! [`Program`] (tensor-expression stages) into an equivalent one, and a
//! bounded, deterministic [`search`] for derivation chains that end in a
//! known kernel (GEMM, batched GEMM, conv2d) plus a memory-bound remainder.
//!
//! One derivation per file, each giving its identity:
//! - variable substitution: [`unit_iter`] (extent-1 iterators are 0),
//!   [`fuse_iters`] (two iterators become one, operands viewed with merged dims);
//! - summation splitting: [`split_sum`] (`split-reduction`, `rfactor`) and
//!   [`materialize`] (a factor's index map computed into an intermediate, im2col);
//! - traversal merging: [`merge`] (contractions sharing an operand, concatenated);
//! - boundary relaxation and tightening: [`boundary`];
//! - programs from a model graph: [`graph`];
//! - matching: [`matching`] with [`match_gemm`] and [`match_conv`], results in [`kernel`].
//!
//! Every derivation is checked against the reference evaluator
//! (`kiln_ir::expr::eval`, through [`Program::eval`]) on random inputs and
//! shapes in `rewrite/tests/derive_verified.rs`.

pub mod boundary;
mod cleanup;
pub mod fuse_iters;
pub mod graph;
mod iters;
pub mod kernel;
pub mod match_conv;
pub mod match_gemm;
pub mod matching;
pub mod materialize;
pub mod merge;
mod program;
pub mod search;
pub mod split_sum;
pub mod unit_iter;
mod util;

pub use graph::{candidates, constants, Candidate};
pub use kernel::{Conv, Gemm, Kernel, Match};
pub use matching::match_program;
pub use program::{view, Program};
pub use search::{search, Chain, SearchLimits, SearchReport, Step};

use kiln_ir::expr::TensorExpr;

/// One result of applying a derivation: where it applied, and the program.
#[derive(Clone, Debug)]
pub struct Derived {
    pub detail: String,
    pub program: Program,
}

/// A derivation: its name, its identity, and every way it applies.
pub struct Derivation {
    pub name: &'static str,
    pub identity: &'static str,
    pub apply: fn(&Program) -> Vec<Derived>,
}

/// All derivations, in the order the search tries them.
pub fn derivations() -> Vec<Derivation> {
    vec![
        Derivation {
            name: "drop-unit-iter",
            identity: "f(i: 0..1) = f(0)",
            apply: unit_iter::apply,
        },
        Derivation {
            name: "fuse-iters",
            identity: "f(i: 0..a, j: 0..b) = f(p / b, p % b), p: 0..a*b",
            apply: fuse_iters::apply,
        },
        Derivation {
            name: "merge-traversal",
            identity: "A*B1, A*B2 = slices of A*concat(B1, B2)",
            apply: merge::apply,
        },
        Derivation {
            name: "materialize",
            identity: "sum X[f(u)] * W = T[u] = X[f(u)]; sum T[u] * W",
            apply: materialize::apply,
        },
        Derivation {
            name: "tighten",
            identity: "sum(k: 0..E) guard(..) = sum(k: 0..E_in) ..",
            apply: boundary::apply_tighten,
        },
        Derivation {
            name: "relax",
            identity: "sum(k: 0..E) f = sum(k: 0..8*ceil(E/8)) guard(f, 0)",
            apply: boundary::apply_relax,
        },
        Derivation {
            name: "split-reduction",
            identity: "sum(k: 0..ab) f(k) = sum(ko: 0..a, ki: 0..b) f(ko*b + ki)",
            apply: split_sum::apply_split,
        },
        Derivation {
            name: "rfactor",
            identity: "e(sum(r, s) f) = T[r] = sum(s) f; e(sum(r) T[r])",
            apply: split_sum::apply_rfactor,
        },
    ]
}

/// The program with stage `k` replaced by `new` (in order).
pub fn replace_stage(p: &Program, k: usize, new: Vec<TensorExpr>) -> Program {
    let mut out = p.clone();
    out.stages.splice(k..=k, new);
    out
}

/// Applies `f` to every stage; each result replaces that one stage.
fn per_stage(p: &Program, f: impl Fn(&TensorExpr) -> Vec<(String, TensorExpr)>) -> Vec<Derived> {
    let mut out = vec![];
    for (k, e) in p.stages.iter().enumerate() {
        for (detail, x) in f(e) {
            out.push(Derived {
                detail,
                program: replace_stage(p, k, vec![x]),
            });
        }
    }
    out
}
