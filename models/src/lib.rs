//! Model importers. Today: ONNX, opsets 7 to 27 (onnx 1.22), into Kiln's graph IR.
//!
//! ```no_run
//! let model = kiln_models::onnx::load("model.onnx", &Default::default())?;
//! println!("{} nodes", model.graph.nodes().len());
//! # Ok::<(), kiln_models::ImportError>(())
//! ```

pub mod error;
pub mod onnx;

pub use error::{ImportError, MapError, Result};
