//! Kiln: a tensor-program compiler and autotuner.
//!
//! This crate is the public facade and the `kiln` command-line tool. Today a
//! model is imported from ONNX into the graph IR and run by the reference
//! interpreter; the compiled CPU path, rewrites and tuning build on the same
//! types (see ARCHITECTURE.md).
//!
//! ```no_run
//! use std::collections::HashMap;
//! let model = kiln::load_onnx("testdata/mlp/mlp.onnx")?;
//! let x = kiln::ir::npy::load("testdata/mlp/input.npy")?;
//! let outputs = kiln::run(&model.graph, &HashMap::from([("input".to_string(), x)]))?;
//! println!("{:?}", outputs[0].shape());
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod cli;

pub use kiln_ir as ir;
pub use kiln_models as models;

use kiln_ir::{Graph, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Imports an ONNX model with default options.
pub fn load_onnx(path: impl AsRef<Path>) -> Result<models::onnx::OnnxModel, models::ImportError> {
    models::onnx::load(path, &Default::default())
}

/// Runs a graph on named inputs with the reference interpreter; outputs follow `graph.outputs()`.
pub fn run(graph: &Graph, inputs: &HashMap<String, Tensor>) -> Result<Vec<Tensor>, ir::IrError> {
    ir::interp::run(graph, inputs)
}
