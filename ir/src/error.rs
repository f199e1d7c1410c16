//! The error type of the IR crate.

use std::path::PathBuf;

/// Everything that can go wrong while building, checking, printing, parsing or
/// evaluating a graph, or reading and writing tensors.
#[derive(Debug, thiserror::Error)]
pub enum IrError {
    /// An operator was given inputs or attributes it cannot accept.
    #[error("{0}")]
    Op(String),
    /// A tensor had another element type than the one asked for.
    #[error("expected a tensor of {expected}, got {got}")]
    DType { expected: String, got: crate::DType },
    /// An error raised while handling one node, with the node's name and op.
    #[error("node `{node}` ({op}): {source}")]
    AtNode {
        node: String,
        op: String,
        #[source]
        source: Box<IrError>,
    },
    /// No operator of this name is registered.
    #[error("unknown operator `{0}`")]
    UnknownOp(String),
    /// The graph is malformed (dangling value, cycle, duplicate name, ...).
    #[error("invalid graph: {0}")]
    Graph(String),
    /// The text form could not be parsed.
    #[error("line {line}: {msg}")]
    Parse { line: usize, msg: String },
    /// A `.npy` file could not be read or written.
    #[error("{}: {msg}", path.display())]
    Npy { path: PathBuf, msg: String },
    /// Input tensors given to a run do not match the graph.
    #[error("{0}")]
    Input(String),
}

impl IrError {
    /// Wraps this error with the node that raised it.
    pub fn at_node(self, node: &str, op: &str) -> IrError {
        match self {
            e @ IrError::AtNode { .. } => e,
            e => IrError::AtNode {
                node: node.to_string(),
                op: op.to_string(),
                source: Box::new(e),
            },
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = IrError> = std::result::Result<T, E>;

/// Returns an `IrError::Op` built with `format!` syntax.
#[macro_export]
macro_rules! op_err {
    ($($t:tt)*) => { $crate::IrError::Op(format!($($t)*)) };
}

/// Returns early with an `IrError::Op` unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($t:tt)*) => { if !$cond { return Err($crate::op_err!($($t)*)); } };
}
