//! The error type of model import.

use std::path::PathBuf;

/// Why a model could not be imported. Every variant names the file, and where
/// one exists, the node and op.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a valid ONNX model (protobuf decoding failed: {msg})", path.display())]
    Decode { path: PathBuf, msg: String },
    #[error("{}: node `{node}`: operator {domain}{op} (opset {opset}) is not supported by Kiln", path.display(), domain = if domain.is_empty() { String::new() } else { format!("{domain}.") })]
    Unsupported {
        path: PathBuf,
        op: String,
        domain: String,
        opset: i64,
        node: String,
    },
    #[error("{}: node `{node}` ({op}): {msg}", path.display())]
    Node {
        path: PathBuf,
        node: String,
        op: String,
        msg: String,
    },
    #[error("{}: {msg}", path.display())]
    Model { path: PathBuf, msg: String },
}

/// Result of import steps.
pub type Result<T, E = ImportError> = std::result::Result<T, E>;

/// An error raised inside one node's mapping, before the importer adds the file and node.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("{0}")]
    Msg(String),
    #[error(transparent)]
    Ir(#[from] kiln_ir::IrError),
    /// The op or the variant of it used here is not supported.
    #[error("{0}")]
    Unsupported(String),
}

/// Builds a `MapError::Msg` with `format!` syntax.
#[macro_export]
macro_rules! map_err {
    ($($t:tt)*) => { $crate::MapError::Msg(format!($($t)*)) };
}
