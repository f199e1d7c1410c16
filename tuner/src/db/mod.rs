//! The tuning database: records keyed by workload, target and epoch, stored
//! through a small [`Storage`] trait with two backends, [`sled_store`] and
//! [`redb_store`] (both pass the same SIGKILL crash test, `tests/crash.rs`).
//!
//! - [`TuningDb::put`] returns only once the record is durable;
//! - [`TuningDb::best`] applies *exact* matches only: same family and
//!   canonical bytes (compared, not just hashed), same target descriptor, same
//!   epoch, status ok; the lowest median wins;
//! - [`TuningDb::near`] gives records of the same family on any target or
//!   epoch, to seed a search, never to apply;
//! - `stats`, `list`, `export_jsonl`, `import_jsonl`, `gc`, `verify` maintain it
//!   (see [`maint`]).
//!
//! Every value carries a checksum ([`layout`]); opening never deletes or
//! rewrites a database, and a corrupt one is a [`TunerError`], never a panic.
//!
//! ```
//! use kiln_tuner::db::{Backend, TuningDb};
//! use kiln_tuner::key::WorkloadKey;
//! use kiln_tuner::record::{Protocol, Record, Status};
//! use kiln_tuner::target::{Epoch, TargetDescriptor};
//!
//! let dir = std::env::temp_dir().join(format!("kiln-doc-{}", std::process::id()));
//! let db = TuningDb::open(&dir.join("tuning.db"), Backend::Redb)?;
//! let key = WorkloadKey::new("gemm", b"m64n64k64".to_vec());
//! let target = TargetDescriptor::host_cpu(2)?;
//! let rec = Record {
//!     workload: key.clone(),
//!     target: target.clone(),
//!     epoch: Epoch::CURRENT,
//!     config: serde_json::json!({"tile": 8}),
//!     samples_ns: vec![1000.0, 1100.0, 1050.0],
//!     median_ns: 1050.0,
//!     cv: 0.04,
//!     status: Status::Ok,
//!     protocol: Protocol { warmup: 1, repeats: 3, interleaved: true, threads: 2 },
//!     compile_ms: 3.0,
//!     seed: 7,
//!     timestamp_s: 0,
//!     predicted: None,
//! };
//! db.put(&rec)?;
//! assert_eq!(db.best(&key, &target, &Epoch::CURRENT)?, Some(rec));
//! let other = TargetDescriptor::host_cpu(1)?;
//! assert_eq!(db.best(&key, &other, &Epoch::CURRENT)?, None);
//! assert_eq!(db.near(&key)?.len(), 1);
//! # drop(db);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), kiln_tuner::TunerError>(())
//! ```

pub mod layout;
pub mod maint;
pub mod redb_store;
pub mod sled_store;
mod tuning;

pub use maint::{GcPolicy, GcReport, ImportReport, Problem, Stats, VerifyReport};

use crate::TunerError;
use std::path::{Path, PathBuf};

/// A stored key and value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// An ordered byte key-value store. Every write returns only once durable.
pub trait Storage: Send + Sync {
    /// Stores one entry durably.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), TunerError>;
    /// Stores entries atomically and durably.
    fn put_batch(&self, entries: &[Entry]) -> Result<(), TunerError>;
    /// The value under `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TunerError>;
    /// Removes keys atomically and durably (missing keys are ignored).
    fn remove_batch(&self, keys: &[Vec<u8>]) -> Result<(), TunerError>;
    /// Every entry whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, TunerError>;
    /// Makes every earlier write durable (writes already are; for callers
    /// that want a barrier).
    fn flush(&self) -> Result<(), TunerError>;
}

/// Which [`Storage`] backend a database uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// sled: a directory.
    #[default]
    Sled,
    /// redb: a single file.
    Redb,
}

impl Backend {
    /// The backend of an existing database at `path`: a directory is sled, a
    /// file is redb; `None` if nothing is there.
    pub fn detect(path: &Path) -> Option<Backend> {
        let m = std::fs::metadata(path).ok()?;
        Some(if m.is_dir() {
            Backend::Sled
        } else {
            Backend::Redb
        })
    }

    /// `sled` or `redb`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sled => "sled",
            Backend::Redb => "redb",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = TunerError;
    fn from_str(s: &str) -> Result<Self, TunerError> {
        match s {
            "sled" => Ok(Backend::Sled),
            "redb" => Ok(Backend::Redb),
            _ => Err(TunerError::Db {
                path: String::new(),
                message: format!("unknown backend `{s}` (expected sled or redb)"),
            }),
        }
    }
}

/// The default database location: `$XDG_CACHE_HOME/kiln/tuning.db`, else
/// `$HOME/.cache/kiln/tuning.db`.
pub fn default_path() -> Result<PathBuf, TunerError> {
    let nonempty = |v: &str| std::env::var_os(v).filter(|s| !s.is_empty());
    let cache = match (nonempty("XDG_CACHE_HOME"), nonempty("HOME")) {
        (Some(c), _) => PathBuf::from(c),
        (None, Some(h)) => PathBuf::from(h).join(".cache"),
        (None, None) => {
            return Err(TunerError::Db {
                path: String::new(),
                message:
                    "no cache directory: neither XDG_CACHE_HOME nor HOME is set; pass --db PATH"
                        .into(),
            })
        }
    };
    Ok(cache.join("kiln").join("tuning.db"))
}

/// The tuning database over one [`Storage`] backend.
pub struct TuningDb {
    store: Box<dyn Storage>,
    path: PathBuf,
    backend: Backend,
}

impl TuningDb {
    /// Opens the database at `path`, creating it (and its parent directory)
    /// if missing.
    pub fn open(path: &Path, backend: Backend) -> Result<Self, TunerError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| TunerError::Io {
                path: parent.display().to_string(),
                source,
            })?;
        }
        Self::open_store(path, backend)
    }

    /// Opens an existing database; a missing one is an error, and nothing is
    /// created.
    pub fn open_existing(path: &Path, backend: Backend) -> Result<Self, TunerError> {
        let missing = |message: &str| TunerError::Db {
            path: path.display().to_string(),
            message: message.into(),
        };
        if !path.exists() {
            return Err(missing("no tuning database here"));
        }
        // A directory without sled's main file is not a database: opening
        // it would create one there.
        if backend == Backend::Sled && path.is_dir() && !path.join("db").is_file() {
            return Err(missing("not a sled tuning database (no `db` file inside)"));
        }
        Self::open_store(path, backend)
    }

    fn open_store(path: &Path, backend: Backend) -> Result<Self, TunerError> {
        let store: Box<dyn Storage> = match backend {
            Backend::Sled => Box::new(sled_store::SledStore::open(path)?),
            Backend::Redb => Box::new(redb_store::RedbStore::open(path)?),
        };
        Ok(TuningDb {
            store,
            path: path.to_path_buf(),
            backend,
        })
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The raw store (for tools and tests that inspect or damage entries).
    pub fn storage(&self) -> &dyn Storage {
        self.store.as_ref()
    }
}

/// Runs `f`, turning a panic inside a backend into a clear error.
fn no_panic<T>(path: &str, f: impl FnOnce() -> T) -> Result<T, TunerError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| TunerError::Db {
        path: path.to_string(),
        message: "the storage backend failed while opening it (the database is likely corrupt); it was left untouched".into(),
    })
}
