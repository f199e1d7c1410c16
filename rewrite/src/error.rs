//! The crate's error type.

use thiserror::Error;

/// Why a rewrite run failed.
#[derive(Debug, Error)]
pub enum RewriteError {
    /// Building the rewritten graph failed (a bug in a rule or the extractor).
    #[error("rewritten graph: {0}")]
    Graph(String),
    #[error(transparent)]
    Ir(#[from] kiln_ir::IrError),
}

/// Shorthand for results in this crate.
pub type Result<T, E = RewriteError> = std::result::Result<T, E>;
