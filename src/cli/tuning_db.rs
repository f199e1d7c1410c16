//! The tuning database as the compile commands use it: `--db PATH` and
//! `--no-db`, tuned configs looked up per workload (exact workload, this
//! CPU and thread count, this epoch; a config that no longer fits the
//! workload's space is ignored), and `kiln tune`'s trials written as records.

use anyhow::{Context, Result};
use kiln_ir::Graph;
use kiln_runtime::tuning::{self, Config, Tuned, Workload};
use kiln_runtime::CompileOptions;
use kiln_tuner::db::{default_path, Backend, TuningDb};
use kiln_tuner::key::WorkloadKey;
use kiln_tuner::measure::{cv, Outcome, Protocol};
use kiln_tuner::record::{self, Record, Status};
use kiln_tuner::target::{Epoch, TargetDescriptor};
use kiln_tuner::tune::{Task, Trial};
use std::path::PathBuf;

/// Database flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DbArgs {
    /// The tuning database (default: the user's cache dir, kiln/tuning.db).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Do not read (or write) the tuning database.
    #[arg(long)]
    pub no_db: bool,
}

impl DbArgs {
    fn path(&self) -> Result<Option<PathBuf>> {
        if self.no_db {
            return Ok(None);
        }
        Ok(Some(match &self.db {
            Some(p) => p.clone(),
            None => default_path()?,
        }))
    }

    /// The database to read, if there is one (a missing one is not an error).
    pub fn open_read(&self) -> Result<Option<TuningDb>> {
        let Some(path) = self.path()? else {
            return Ok(None);
        };
        let Some(backend) = Backend::detect(&path) else {
            tracing::info!(path = %path.display(), "no tuning database yet");
            return Ok(None);
        };
        let db = TuningDb::open_existing(&path, backend).with_context(|| {
            format!("cannot read the tuning database (use --no-db to compile without it, `kiln db verify --db {}` to check it)", path.display())
        })?;
        Ok(Some(db))
    }

    /// The database to write `kiln tune`'s records to (created if missing).
    pub fn open_write(&self) -> Result<Option<TuningDb>> {
        let Some(path) = self.path()? else {
            return Ok(None);
        };
        let backend = Backend::detect(&path).unwrap_or_default();
        Ok(Some(TuningDb::open(&path, backend)?))
    }
}

/// The key of a workload in the database.
pub fn key_of(w: &Workload) -> WorkloadKey {
    WorkloadKey::new(w.family.clone(), w.canonical.clone())
}

/// Tuned configs of `g`'s workloads found in `db` for this CPU with
/// `opts.threads` threads.
pub fn lookup(db: &TuningDb, g: &Graph, opts: &CompileOptions) -> Result<Tuned> {
    let target = TargetDescriptor::host_cpu(opts.threads)?;
    let mut tuned = Tuned::default();
    for w in tuning::workloads(g, opts)? {
        let Some(r) = db.best(&key_of(&w), &target, &Epoch::CURRENT)? else {
            continue;
        };
        match serde_json::from_value::<Config>(r.config) {
            // The default needs no entry (and is not counted as tuned).
            Ok(c) if c == w.space.default_config() => {}
            Ok(c) if w.space.validate(&c).is_ok() => tuned.insert(w.canonical, c),
            _ => {
                tracing::warn!(family = %w.family, "a stored config does not fit this workload's knobs; ignored")
            }
        }
    }
    Ok(tuned)
}

/// Writes the trials of `tasks` as records (with `defaults_only`, only those
/// of each workload's default config: the tuned settings did not make the
/// model faster, so none may win a later lookup); returns how many.
pub fn store(
    db: &TuningDb,
    tasks: &[Task],
    threads: usize,
    protocol: &Protocol,
    seed: u64,
    defaults_only: bool,
) -> Result<usize> {
    let target = TargetDescriptor::host_cpu(threads)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut n = 0;
    for task in tasks {
        let key = key_of(&task.workload);
        let default = task.workload.space.default_config();
        for t in task
            .trials
            .iter()
            .filter(|t| !defaults_only || t.config == default)
        {
            db.put(&record_of(&key, &target, t, threads, protocol, seed, now))?;
            n += 1;
        }
    }
    Ok(n)
}

fn record_of(
    key: &WorkloadKey,
    target: &TargetDescriptor,
    t: &Trial,
    threads: usize,
    protocol: &Protocol,
    seed: u64,
    now: u64,
) -> Record {
    let (status, samples) = match &t.outcome {
        Outcome::Ok { samples_ns } => (Status::Ok, samples_ns.clone()),
        Outcome::CompileError(m) => (Status::CompileError(m.clone()), vec![]),
        Outcome::RuntimeError(m) => (Status::RuntimeError(m.clone()), vec![]),
        Outcome::Timeout => (Status::Timeout, vec![]),
        Outcome::WrongResult(m) => (Status::WrongResult(m.clone()), vec![]),
    };
    Record {
        workload: key.clone(),
        target: target.clone(),
        epoch: Epoch::CURRENT,
        config: serde_json::to_value(&t.config).unwrap_or_default(),
        median_ns: t.outcome.median_ns().unwrap_or(0.0),
        cv: cv(&samples),
        samples_ns: samples,
        status,
        protocol: record::Protocol {
            warmup: protocol.warmup as u32,
            repeats: protocol.repeats as u32,
            interleaved: true,
            threads: threads as u32,
        },
        compile_ms: 0.0,
        seed,
        timestamp_s: now,
        predicted: t.predicted.filter(|p| p.is_finite()),
    }
}
