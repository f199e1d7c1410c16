//! Kiln's tensor graph IR.
//!
//! - [`Graph`]: values with static [`TensorType`]s, nodes in topological order,
//!   named inputs/outputs and shared constant tensors.
//! - [`Op`] and [`OpDef`]: operators as plain data, and their registered
//!   definitions (type inference and reference semantics) in [`registry`].
//! - [`verify()`]: structural and type checks naming the first bad node.
//! - [`interp`]: the reference interpreter, the oracle for every faster path.
//! - [`text`]: a readable text form that prints and parses back.
//! - [`Tensor`] with [`npy`] load/save.
//!
//! ```
//! use kiln_ir::{Graph, Op, Tensor, TensorType, DType, interp};
//! let mut g = Graph::new("demo");
//! let x = g.add_input("x", TensorType::new(DType::F32, vec![2]))?;
//! let y = g.add_node("relu0", Op::new("Relu"), &[x], &["y"])?;
//! g.set_outputs(y);
//! let mut feeds = std::collections::HashMap::new();
//! feeds.insert("x".to_string(), Tensor::from_vec(vec![2], vec![-1.0f32, 2.0])?);
//! let out = interp::run(&g, &feeds)?;
//! assert_eq!(out[0].as_slice::<f32>()?, &[0.0, 2.0]);
//! # Ok::<(), kiln_ir::IrError>(())
//! ```

pub mod attrs;
mod dispatch;
pub mod dtype;
pub mod elem;
pub mod error;
pub mod expr;
pub mod graph;
pub mod interp;
pub mod lowbit;
pub mod npy;
pub mod op;
pub mod ops;
pub mod tensor;
pub mod text;
pub mod types;
pub mod verify;

pub use attrs::{Attr, Attrs};
pub use dtype::DType;
pub use elem::Elem;
pub use error::{IrError, Result};
pub use graph::{Graph, Node, NodeId, Source, Value, ValueId};
pub use op::{registry, FnOp, Op, OpDef, Registry};
pub use tensor::{numel, strides, Tensor, TensorData};
pub use types::TensorType;
pub use verify::verify;

#[doc(hidden)]
pub use half;
