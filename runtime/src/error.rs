//! The crate's error type.

use thiserror::Error;

/// Why compiling or running a plan failed.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The inputs given to `run` do not match the model (name, dtype or shape).
    #[error("{0}")]
    Input(String),
    /// A graph-level error (an op's reference kernel, type inference).
    #[error(transparent)]
    Ir(#[from] kiln_ir::IrError),
    /// A code generator or kernel refused its arguments.
    #[error("node `{node}`: {source}")]
    Kernel {
        node: String,
        #[source]
        source: kiln_codegen::CodegenError,
    },
    /// The thread pool could not be created.
    #[error("cannot create a thread pool with {threads} threads: {reason}")]
    ThreadPool { threads: usize, reason: String },
    /// Options that make no sense (for example zero threads).
    #[error("invalid option: {0}")]
    Options(String),
}

/// Shorthand for results in this crate.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
