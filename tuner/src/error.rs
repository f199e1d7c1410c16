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
    /// The cost model was given nothing it can learn from or rank.
    #[error("cost model: {what}")]
    CostNoData { what: String },
    /// A feature vector does not have the model's length.
    #[error("cost model: feature vector {index} has {got} values, the model takes {expected}")]
    CostFeatureLength {
        index: usize,
        expected: usize,
        got: usize,
    },
    /// A feature value is NaN or infinite.
    #[error("cost model: feature vector {index} has a non-finite value at {position}")]
    CostNonFinite { index: usize, position: usize },
    /// The model has no head for this target (adapt to it first).
    #[error(
        "cost model: no head for target `{target}` (known: {known}); adapt the model to it first"
    )]
    CostUnknownTarget { target: String, known: String },
    /// A cost model setting is out of range.
    #[error("cost model: invalid setting: {what}")]
    CostConfig { what: String },
    /// A saved cost model could not be read.
    #[error("cost model: bad saved model: {what}")]
    CostFormat { what: String },
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
