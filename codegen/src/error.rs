//! The crate's error type.

use thiserror::Error;

/// Why a code-generation entry point refused its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodegenError {
    /// `threads` was 0.
    #[error("thread count must be at least 1")]
    ZeroThreads,
    /// A stride or an offset computed from the sizes and strides does not fit in `isize`.
    #[error("operand {operand}: sizes and strides overflow")]
    Overflow { operand: &'static str },
    /// The slice is too short for the last element the sizes and strides address.
    #[error("operand {operand}: needs {needed} elements, slice holds {len}")]
    TooShort {
        operand: &'static str,
        needed: usize,
        len: usize,
    },
    /// Two distinct output elements share one memory location.
    #[error(
        "operand {operand}: strides {strides:?} make elements of a {rows}x{cols} matrix overlap"
    )]
    Overlap {
        operand: &'static str,
        rows: usize,
        cols: usize,
        strides: [usize; 2],
    },
    /// A kernel descriptor or argument is inconsistent (zero sizes, groups that do
    /// not divide the channels, a kernel larger than the padded input, ...).
    #[error("{op}: {reason}")]
    InvalidArgument { op: &'static str, reason: String },
    /// The JIT does not handle this expression, dtype or schedule (callers
    /// fall back to the interpreter).
    #[error("unsupported by the JIT: {what}")]
    Unsupported { what: String },
    /// The schedule does not apply to the expression.
    #[error("bad schedule: {0}")]
    Schedule(String),
    /// Cranelift refused the generated function.
    #[error("cranelift: {0}")]
    Cranelift(String),
    /// Run-time arguments do not match the compiled kernel.
    #[error("bad kernel arguments: {0}")]
    Arguments(String),
}

impl CodegenError {
    /// An [`CodegenError::Unsupported`] with a formatted reason.
    pub fn unsupported(what: impl Into<String>) -> Self {
        CodegenError::Unsupported { what: what.into() }
    }
}
