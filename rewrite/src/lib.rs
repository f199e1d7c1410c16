//! Equality saturation over Kiln's tensor graph IR with `egg`.
//!
//! - [`lang`]: e-nodes (op kind + interned attributes, inputs, constants);
//! - [`analysis`]: dtype/shape per e-class and constant folding;
//! - [`convert`]: graph <-> e-graph, keeping names, constants and outputs;
//! - [`rules`]: the rules by topic, each with its identity and verification cases;
//! - [`cost`]: [`CostModel`] and the analytic [`Roofline`];
//! - [`optimize()`]: bounded saturation ([`Limits`]) and extraction, with a [`Report`];
//! - [`extract`]: [`top_k`] distinct acyclic candidates (greedy, close calls, seeded perturbations) to measure.
//!
//! ```
//! use kiln_ir::{DType, Graph, Op, TensorType};
//! let mut g = Graph::new("demo");
//! let x = g.add_input("x", TensorType::new(DType::F32, vec![3]))?;
//! let a = g.add_node("n1", Op::new("Neg"), &[x], &["a"])?;
//! let b = g.add_node("n2", Op::new("Neg"), &a, &["b"])?;
//! g.set_outputs(b);
//! let (out, report) = kiln_rewrite::optimize(&g, &Default::default(), &Default::default())?;
//! assert_eq!(report.applied.get("neg-neg"), Some(&1));
//! assert!(out.nodes().iter().all(|n| n.op.kind != "Neg"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod analysis;
pub mod convert;
pub mod cost;
pub mod derive;
mod error;
pub mod extract;
pub mod lang;
mod optimize;
pub mod rules;
mod schedule;

pub use analysis::{ClassData, TGraph, TensorAnalysis};
pub use cost::{CostModel, Roofline};
pub use error::{Result, RewriteError};
pub use extract::{candidates, top_k, Candidate, TopK};
pub use optimize::{
    graph_cost, histogram, optimize, optimize_with, saturate, Limits, Report, Saturated,
};
