//! Writing records and looking them up: exact matches to apply, near matches
//! to seed a search.

use super::{layout, Entry, TuningDb};
use crate::key::WorkloadKey;
use crate::record::Record;
use crate::target::{Epoch, TargetDescriptor};
use crate::TunerError;

impl TuningDb {
    /// Stores `rec` (target normalized) and returns once it is durable.
    /// Storing the same record again is a no-op (same key).
    pub fn put(&self, rec: &Record) -> Result<(), TunerError> {
        let (key, value) = Self::encode(rec)?;
        self.store.put(&key, &value)
    }

    /// The validated, normalized key and value of `rec`.
    pub(crate) fn encode(rec: &Record) -> Result<Entry, TunerError> {
        rec.validate()?;
        let mut rec = rec.clone();
        rec.target = rec.target.normalized();
        layout::encode(&rec)
    }

    /// The record to apply: exact workload (canonical bytes compared), equal
    /// target descriptor, same epoch, status ok, lowest median. Corrupt
    /// entries are skipped with a warning (`verify` reports them).
    pub fn best(
        &self,
        key: &WorkloadKey,
        target: &TargetDescriptor,
        epoch: &Epoch,
    ) -> Result<Option<Record>, TunerError> {
        let target = target.normalized();
        let prefix = layout::exact_prefix(key, &target, epoch);
        let best = self
            .decoded(&prefix)?
            .into_iter()
            .filter(|r| {
                r.is_ok()
                    && r.workload.same_workload(key)
                    && r.target == target
                    && r.epoch == *epoch
            })
            .min_by(|a, b| a.median_ns.total_cmp(&b.median_ns));
        Ok(best)
    }

    /// Ok records of `key`'s family on any target and epoch, to seed a search
    /// (never to apply): those of the same workload first, then by workload
    /// hash, each by ascending median.
    pub fn near(&self, key: &WorkloadKey) -> Result<Vec<Record>, TunerError> {
        let mut recs: Vec<Record> = self
            .decoded(&layout::family_prefix(&key.family))?
            .into_iter()
            .filter(|r| r.is_ok() && r.workload.family == key.family)
            .collect();
        recs.sort_by(|a, b| {
            let other = |r: &Record| !r.workload.same_workload(key);
            (other(a), a.workload.hash)
                .cmp(&(other(b), b.workload.hash))
                .then(a.median_ns.total_cmp(&b.median_ns))
        });
        Ok(recs)
    }

    /// Every decodable record under `prefix`; corrupt ones are logged and skipped.
    pub(crate) fn decoded(&self, prefix: &[u8]) -> Result<Vec<Record>, TunerError> {
        let mut out = Vec::new();
        for (k, v) in self.store.scan_prefix(prefix)? {
            match layout::decode(&k, &v) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!("{}: skipping {e}", self.path.display()),
            }
        }
        Ok(out)
    }
}
