//! Maintenance: stats, listing, JSONL export/import, garbage collection and
//! verification.
//!
//! Export writes each intact record's stored JSON payload as one line, so an
//! export imported elsewhere lands on the same keys (import deduplicates by
//! key). [`TuningDb::gc`] drops, per [`GcPolicy`]: every record of an epoch
//! other than the policy's (by default [`Epoch::CURRENT`]); then, per
//! (workload, target, epoch), all but the `keep_best` ok records with the
//! lowest medians and all but the `keep_failed` newest failed ones. It never
//! touches entries that do not decode: `verify` reports those.

use super::{layout, Entry, TuningDb};
use crate::record::Record;
use crate::target::Epoch;
use crate::TunerError;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead, Write};

/// Counts over the whole database.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    pub records: usize,
    pub ok: usize,
    pub failed: usize,
    pub corrupt: usize,
    pub workloads: usize,
    pub targets: usize,
    pub families: BTreeMap<String, usize>,
    pub epochs: BTreeMap<String, usize>,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ImportReport {
    /// Non-empty lines read.
    pub lines: usize,
    /// Records stored.
    pub added: usize,
    /// Records already present (or repeated in the input).
    pub duplicates: usize,
}

/// What a gc removed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GcReport {
    pub kept: usize,
    pub removed: usize,
}

/// What gc keeps (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct GcPolicy {
    /// Records of other epochs are dropped.
    pub epoch: Epoch,
    /// Ok records kept per (workload, target, epoch), lowest medians first.
    pub keep_best: usize,
    /// Failed records kept per (workload, target, epoch), newest first.
    pub keep_failed: usize,
}

impl Default for GcPolicy {
    fn default() -> Self {
        GcPolicy {
            epoch: Epoch::CURRENT,
            keep_best: 8,
            keep_failed: 16,
        }
    }
}

/// One damaged entry found by `verify`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Problem {
    /// The entry's key in hex.
    pub key: String,
    pub message: String,
}

/// The result of `verify`: intact records and problems.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VerifyReport {
    pub records: usize,
    pub problems: Vec<Problem>,
}

/// Decoded entries and the damaged ones.
type Scan = (Vec<(Vec<u8>, Record)>, Vec<Problem>);

impl TuningDb {
    /// Every entry, decoded or reported.
    fn scan_all(&self) -> Result<Scan, TunerError> {
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for (k, v) in self.store.scan_prefix(&[])? {
            let checked = if k.len() == layout::KEY_LEN && k.starts_with(layout::KEY_TAG) {
                layout::decode(&k, &v)
            } else {
                Err(TunerError::CorruptRecord {
                    key: layout::key_hex(&k),
                    message: "not a record key".into(),
                })
            };
            match checked {
                Ok(r) => good.push((k, r)),
                Err(e) => bad.push(Problem {
                    key: layout::key_hex(&k),
                    message: e.to_string(),
                }),
            }
        }
        Ok((good, bad))
    }

    /// Decodes every entry and checks checksums, hashes and keys.
    pub fn verify(&self) -> Result<VerifyReport, TunerError> {
        let (good, problems) = self.scan_all()?;
        Ok(VerifyReport {
            records: good.len(),
            problems,
        })
    }

    /// Counts by status, workload, target, family and epoch.
    pub fn stats(&self) -> Result<Stats, TunerError> {
        let (good, bad) = self.scan_all()?;
        let mut s = Stats {
            records: good.len(),
            corrupt: bad.len(),
            ..Stats::default()
        };
        let (mut workloads, mut targets) = (BTreeSet::new(), BTreeSet::new());
        for (_, r) in &good {
            if r.is_ok() {
                s.ok += 1;
            } else {
                s.failed += 1;
            }
            workloads.insert((r.workload.family.clone(), r.workload.canonical.clone()));
            targets.insert(r.target.id());
            *s.families.entry(r.workload.family.clone()).or_default() += 1;
            *s.epochs.entry(r.epoch.to_string()).or_default() += 1;
        }
        s.workloads = workloads.len();
        s.targets = targets.len();
        Ok(s)
    }

    /// Every intact record, by family, workload, target, epoch and median.
    pub fn list(&self) -> Result<Vec<Record>, TunerError> {
        let (good, _) = self.scan_all()?;
        let mut recs: Vec<Record> = good.into_iter().map(|(_, r)| r).collect();
        recs.sort_by(|a, b| {
            let key = |r: &Record| {
                (
                    r.workload.family.clone(),
                    r.workload.hash,
                    r.target.id(),
                    r.epoch,
                )
            };
            key(a)
                .cmp(&key(b))
                .then(a.median_ns.total_cmp(&b.median_ns))
        });
        Ok(recs)
    }

    /// Writes every intact record as one JSON line; returns how many. Damaged
    /// entries are skipped with a warning.
    pub fn export_jsonl(&self, w: &mut dyn Write) -> Result<usize, TunerError> {
        let io = |source| TunerError::Io {
            path: "export".into(),
            source,
        };
        let mut n = 0;
        for (k, v) in self.store.scan_prefix(layout::KEY_TAG)? {
            if let Err(e) = layout::decode(&k, &v) {
                tracing::warn!("export skips {e}");
                continue;
            }
            w.write_all(layout::payload(&k, &v)?).map_err(io)?;
            w.write_all(b"\n").map_err(io)?;
            n += 1;
        }
        w.flush().map_err(io)?;
        Ok(n)
    }

    /// Reads JSONL records (as written by `export_jsonl`) and stores those not
    /// already present. A bad line fails the whole import before any write.
    pub fn import_jsonl(&self, r: &mut dyn BufRead) -> Result<ImportReport, TunerError> {
        let entries = parse_lines(r)?;
        let mut report = ImportReport {
            lines: entries.len(),
            ..ImportReport::default()
        };
        let mut seen = HashSet::new();
        let mut fresh: Vec<Entry> = Vec::new();
        for (k, v) in entries {
            if !seen.insert(k.clone()) || self.store.get(&k)?.is_some() {
                report.duplicates += 1;
            } else {
                fresh.push((k, v));
            }
        }
        for chunk in fresh.chunks(1024) {
            self.store.put_batch(chunk)?;
            report.added += chunk.len();
        }
        Ok(report)
    }

    /// Drops what `policy` does not keep (see the module doc).
    pub fn gc(&self, policy: &GcPolicy) -> Result<GcReport, TunerError> {
        let (good, _) = self.scan_all()?;
        let mut groups: BTreeMap<Vec<u8>, Vec<(Vec<u8>, Record)>> = BTreeMap::new();
        let mut drop = Vec::new();
        for (k, r) in good {
            if r.epoch != policy.epoch {
                drop.push(k);
            } else {
                groups
                    .entry(k[..layout::KEY_LEN - 16].to_vec())
                    .or_default()
                    .push((k, r));
            }
        }
        let mut kept = 0;
        for (_, group) in groups {
            let (keep, gone) = gc_group(group, policy);
            kept += keep;
            drop.extend(gone);
        }
        for chunk in drop.chunks(1024) {
            self.store.remove_batch(chunk)?;
        }
        Ok(GcReport {
            kept,
            removed: drop.len(),
        })
    }
}

/// Splits one (workload, target, epoch) group: how many are kept, and the
/// keys to drop.
fn gc_group(group: Vec<(Vec<u8>, Record)>, policy: &GcPolicy) -> (usize, Vec<Vec<u8>>) {
    let (mut ok, mut failed): (Vec<_>, Vec<_>) = group.into_iter().partition(|(_, r)| r.is_ok());
    ok.sort_by(|a, b| a.1.median_ns.total_cmp(&b.1.median_ns));
    failed.sort_by_key(|r| std::cmp::Reverse(r.1.timestamp_s));
    let mut drop = Vec::new();
    let mut kept = 0;
    for (list, keep) in [(ok, policy.keep_best), (failed, policy.keep_failed)] {
        kept += list.len().min(keep);
        drop.extend(list.into_iter().skip(keep).map(|(k, _)| k));
    }
    (kept, drop)
}

/// Parses and encodes every non-empty line; the first bad one is an error
/// naming its line number.
fn parse_lines(r: &mut dyn BufRead) -> Result<Vec<Entry>, TunerError> {
    let mut out = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line.map_err(|source| TunerError::Io {
            path: "import".into(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |m: String| TunerError::InvalidRecord(format!("line {}: {m}", i + 1));
        let rec: Record = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        out.push(TuningDb::encode(&rec).map_err(|e| bad(e.to_string()))?);
    }
    Ok(out)
}
