//! Kiln's runtime: compiles a graph into an [`Executable`] and runs it.
//!
//! - [`fusion`]: which nodes become one kernel (plain data, replaceable);
//! - [`compile()`]: kernel selection per group (dense kernels, generated
//!   expression kernels, the counted interpreter fallback), value placement
//!   and static memory planning ([`memory`]);
//! - [`Executable`]: the compiled plan; `run` is thread-safe and uses the
//!   executable's own thread pool for intra-op parallelism;
//! - [`tuning`]: every speed decision as a knob of its workload, with
//!   today's choice as default; tuned configs come in through the options;
//! - [`CompileReport`]: kernels, fused groups, fallbacks, peak memory, time.
//!
//! ```
//! use kiln_ir::{DType, Graph, Op, Tensor, TensorType};
//! use kiln_runtime::{compile, CompileOptions};
//! let mut g = Graph::new("demo");
//! let x = g.add_input("x", TensorType::new(DType::F32, vec![2]))?;
//! let y = g.add_node("relu", Op::new("Relu"), &[x], &["y"])?;
//! g.set_outputs(y);
//! let exe = compile(&g, &CompileOptions::default().with_threads(1))?;
//! let feeds = [("x".to_string(), Tensor::from_vec(vec![2], vec![-1.0f32, 2.0])?)].into();
//! assert_eq!(exe.run(&feeds)?[0].as_slice::<f32>()?, &[0.0, 2.0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod compile;
mod error;
mod executable;
pub mod fusion;
mod kernel;
mod kernels;
pub mod memory;
mod options;
mod placement;
mod report;
mod storage;
pub mod tuning;
mod uses;

pub use compile::{compile, compile_with_plan};
pub use error::{Result, RuntimeError};
pub use executable::Executable;
pub use options::CompileOptions;
pub use report::{CompileReport, KernelReport};
