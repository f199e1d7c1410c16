//! The tuner's error type.

/// Everything the tuner can fail with. Add new variants at the end.
#[derive(Debug, thiserror::Error)]
pub enum TunerError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A measurement worker could not be started or could not run its job.
    #[error("measurement worker: {0}")]
    Worker(String),
    /// The model or graph to tune could not be prepared.
    #[error("model: {0}")]
    Model(String),
}
