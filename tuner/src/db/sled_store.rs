//! The sled backend: a sled tree in a directory. Every write is followed by
//! `flush` (fsync) before it returns, so an acknowledged write is durable.

use super::{Entry, Storage};
use crate::TunerError;
use std::path::Path;
use std::time::{Duration, Instant};

/// A [`Storage`] over a sled database directory.
pub struct SledStore {
    db: sled::Db,
    path: String,
}

impl SledStore {
    /// Opens (or creates) the sled database at the directory `path`.
    pub fn open(path: &Path) -> Result<Self, TunerError> {
        let name = path.display().to_string();
        if path.is_file() {
            return Err(TunerError::Db {
                path: name,
                message: "is a file; a sled database is a directory (try --backend redb)".into(),
            });
        }
        // Every write flushes itself: no background flusher thread.
        let cfg = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(None);
        let start = Instant::now();
        loop {
            match super::no_panic(&name, || cfg.open())? {
                Ok(db) => return Ok(SledStore { db, path: name }),
                Err(e) if is_locked(&e) && start.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => return Err(err(&name, e)),
            }
        }
    }

    fn err(&self, e: sled::Error) -> TunerError {
        err(&self.path, e)
    }

    fn sync(&self) -> Result<(), TunerError> {
        self.db.flush().map(|_| ()).map_err(|e| self.err(e))
    }
}

/// How long `open` waits for the file lock: a handle just dropped (here or
/// in a process that just exited) releases it from sled's I/O threads a
/// moment later.
const LOCK_WAIT: Duration = Duration::from_secs(2);

fn is_locked(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock)
}

fn err(path: &str, e: sled::Error) -> TunerError {
    TunerError::Db {
        path: path.to_string(),
        message: format!("sled: {e}"),
    }
}

impl Storage for SledStore {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), TunerError> {
        self.db.insert(key, value).map_err(|e| self.err(e))?;
        self.sync()
    }

    fn put_batch(&self, entries: &[Entry]) -> Result<(), TunerError> {
        let mut batch = sled::Batch::default();
        for (k, v) in entries {
            batch.insert(k.as_slice(), v.as_slice());
        }
        self.db.apply_batch(batch).map_err(|e| self.err(e))?;
        self.sync()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TunerError> {
        let v = self.db.get(key).map_err(|e| self.err(e))?;
        Ok(v.map(|v| v.to_vec()))
    }

    fn remove_batch(&self, keys: &[Vec<u8>]) -> Result<(), TunerError> {
        let mut batch = sled::Batch::default();
        for k in keys {
            batch.remove(k.as_slice());
        }
        self.db.apply_batch(batch).map_err(|e| self.err(e))?;
        self.sync()
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, TunerError> {
        self.db
            .scan_prefix(prefix)
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn flush(&self) -> Result<(), TunerError> {
        self.sync()
    }
}
