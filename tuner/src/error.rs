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
    /// The tuning database could not be opened, read or written.
    #[error("tuning database {path}: {message}")]
    Db { path: String, message: String },
    /// A stored record failed its checksum, layout or key checks.
    #[error("corrupt tuning record {key}: {message}")]
    CorruptRecord { key: String, message: String },
    /// A record or JSONL line that cannot be stored (bad key, non-finite number, bad JSON).
    #[error("invalid tuning record: {0}")]
    InvalidRecord(String),
    /// The target descriptor could not be built (e.g. zero threads).
    #[error("target descriptor: {0}")]
    Target(String),
}
