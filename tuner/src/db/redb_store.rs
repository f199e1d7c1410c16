//! The redb backend: one table in a single file. Every write is one
//! transaction committed with redb's default immediate durability (fsync)
//! before it returns.

use super::{Entry, Storage};
use crate::TunerError;
use redb::{Database, ReadableDatabase, TableDefinition};
use std::path::Path;

const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kiln_records");

type Table<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;

/// A [`Storage`] over a redb database file.
pub struct RedbStore {
    db: Database,
    path: String,
}

impl RedbStore {
    /// Opens the redb file at `path`, creating it only when it is missing or
    /// empty (an existing file is never re-initialized).
    pub fn open(path: &Path) -> Result<Self, TunerError> {
        let name = path.display().to_string();
        if path.is_dir() {
            return Err(TunerError::Db {
                path: name,
                message: "is a directory; a redb database is a file (try --backend sled)".into(),
            });
        }
        let fresh = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        let opened = super::no_panic(&name, || {
            if fresh {
                Database::create(path)
            } else {
                Database::open(path)
            }
        })?;
        let db = opened.map_err(|e| err(&name, e))?;
        Ok(RedbStore { db, path: name })
    }

    /// Runs `f` on the table in one write transaction and commits it.
    fn write(
        &self,
        f: impl FnOnce(&mut Table) -> Result<(), redb::StorageError>,
    ) -> Result<(), TunerError> {
        let tx = self.db.begin_write().map_err(|e| err(&self.path, e))?;
        {
            let mut table = tx.open_table(RECORDS).map_err(|e| err(&self.path, e))?;
            f(&mut table).map_err(|e| err(&self.path, e))?;
        }
        tx.commit().map_err(|e| err(&self.path, e))
    }
}

fn err(path: &str, e: impl std::fmt::Display) -> TunerError {
    TunerError::Db {
        path: path.to_string(),
        message: format!("redb: {e}"),
    }
}

impl Storage for RedbStore {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), TunerError> {
        self.write(|t| t.insert(key, value).map(|_| ()))
    }

    fn put_batch(&self, entries: &[Entry]) -> Result<(), TunerError> {
        self.write(|t| {
            for (k, v) in entries {
                t.insert(k.as_slice(), v.as_slice())?;
            }
            Ok(())
        })
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TunerError> {
        let tx = self.db.begin_read().map_err(|e| err(&self.path, e))?;
        let table = match tx.open_table(RECORDS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(err(&self.path, e)),
        };
        let v = table.get(key).map_err(|e| err(&self.path, e))?;
        Ok(v.map(|v| v.value().to_vec()))
    }

    fn remove_batch(&self, keys: &[Vec<u8>]) -> Result<(), TunerError> {
        self.write(|t| {
            for k in keys {
                t.remove(k.as_slice())?;
            }
            Ok(())
        })
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, TunerError> {
        let tx = self.db.begin_read().map_err(|e| err(&self.path, e))?;
        let table = match tx.open_table(RECORDS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(err(&self.path, e)),
        };
        let mut out = Vec::new();
        for kv in table.range(prefix..).map_err(|e| err(&self.path, e))? {
            let (k, v) = kv.map_err(|e| err(&self.path, e))?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn flush(&self) -> Result<(), TunerError> {
        Ok(())
    }
}
