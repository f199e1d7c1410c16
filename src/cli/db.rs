//! `kiln db stats|list|export|import|gc|verify|eval-cost [--db PATH] [--backend sled|redb]`:
//! inspect and maintain the tuning database. The default location is
//! `$XDG_CACHE_HOME/kiln/tuning.db` (else `~/.cache/kiln/tuning.db`); an
//! existing database's backend is detected (a directory is sled, a file is
//! redb), a new one uses sled unless `--backend` says otherwise. Only
//! `import` creates a database; the other commands need an existing one.

use anyhow::{bail, Context, Result};
use kiln_tuner::db::{default_path, Backend, GcPolicy, TuningDb};
use kiln_tuner::record::Record;
use kiln_tuner::target::Epoch;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database (default: the user's cache dir, kiln/tuning.db).
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// The storage backend (default: detected, else sled).
    #[arg(long, global = true, value_parser = ["sled", "redb"])]
    backend: Option<String>,
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(clap::Subcommand, Debug)]
enum DbCommand {
    /// Counts by status, workload, target, family and epoch.
    Stats {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One line per record (or JSONL with --json).
    List {
        /// Only this workload family.
        #[arg(long)]
        family: Option<String>,
        /// Print each record as a JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Write every intact record as JSONL to a file (default stdout).
    Export {
        /// Output file.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Add the records of a JSONL file (`-` for stdin); duplicates are skipped.
    Import { file: PathBuf },
    /// Drop records of other epochs and all but the best per workload and target.
    Gc {
        /// Ok records kept per (workload, target, epoch).
        #[arg(long, default_value_t = GcPolicy::default().keep_best)]
        keep_best: usize,
        /// Failed records kept per (workload, target, epoch), newest first.
        #[arg(long, default_value_t = GcPolicy::default().keep_failed)]
        keep_failed: usize,
    },
    /// Decode every record and check checksums, hashes and keys.
    Verify,
    /// The learned cost model on these records: held-out workloads of each
    /// target, and transfer from the other targets.
    EvalCost(super::cost_eval::EvalArgs),
}

/// Runs `kiln db ...`.
pub fn run(a: Args) -> Result<()> {
    let path = match a.db {
        Some(p) => p,
        None => default_path()?,
    };
    let backend = match a.backend.as_deref() {
        Some(name) => name.parse()?,
        None => Backend::detect(&path).unwrap_or_default(),
    };
    if let DbCommand::Import { file } = &a.command {
        let mut input = open_input(file)?;
        let db = TuningDb::open(&path, backend)?;
        return import(&db, &mut *input, file);
    }
    let db = TuningDb::open_existing(&path, backend)?;
    match a.command {
        DbCommand::Stats { json } => stats(&db, json),
        DbCommand::List { family, json } => list(&db, family.as_deref(), json),
        DbCommand::Export { output } => export(&db, output),
        DbCommand::Gc {
            keep_best,
            keep_failed,
        } => gc(&db, keep_best, keep_failed),
        DbCommand::Verify => verify(&db),
        DbCommand::EvalCost(e) => super::cost_eval::run(&db, &e),
        DbCommand::Import { .. } => Ok(()), // handled above
    }
}

fn stats(db: &TuningDb, json: bool) -> Result<()> {
    let s = db.stats()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("database {} ({})", db.path().display(), db.backend().name());
    println!(
        "records {} (ok {}, failed {}, corrupt {})",
        s.records, s.ok, s.failed, s.corrupt
    );
    println!("workloads {}, targets {}", s.workloads, s.targets);
    for (family, n) in &s.families {
        println!("  family {family}: {n}");
    }
    for (epoch, n) in &s.epochs {
        let now = if *epoch == Epoch::CURRENT.to_string() {
            " (current)"
        } else {
            ""
        };
        println!("  epoch {epoch}{now}: {n}");
    }
    Ok(())
}

fn list(db: &TuningDb, family: Option<&str>, json: bool) -> Result<()> {
    let keep = |r: &Record| family.is_none_or(|f| r.workload.family == f);
    let mut out = std::io::stdout().lock();
    for r in db.list()?.into_iter().filter(keep) {
        if json {
            writeln!(out, "{}", serde_json::to_string(&r)?)?;
        } else {
            writeln!(
                out,
                "{} {:<10} {:<14} {:>12.0} ns cv {:.3} {} {} {}",
                r.workload,
                r.workload.family,
                r.status.name(),
                r.median_ns,
                r.cv,
                r.epoch,
                r.target.summary(),
                r.config
            )?;
        }
    }
    Ok(())
}

fn export(db: &TuningDb, output: Option<PathBuf>) -> Result<()> {
    let n = match &output {
        Some(p) => {
            let f = std::fs::File::create(p).with_context(|| format!("{}", p.display()))?;
            let mut w = std::io::BufWriter::new(f);
            db.export_jsonl(&mut w)?
        }
        None => db.export_jsonl(&mut std::io::stdout().lock())?,
    };
    eprintln!("exported {n} records");
    Ok(())
}

/// The JSONL input: a file, or stdin for `-`.
fn open_input(file: &Path) -> Result<Box<dyn BufRead>> {
    if file.as_os_str() == "-" {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    let f = std::fs::File::open(file).with_context(|| format!("{}", file.display()))?;
    Ok(Box::new(BufReader::new(f)))
}

fn import(db: &TuningDb, input: &mut dyn BufRead, file: &Path) -> Result<()> {
    let report = db
        .import_jsonl(input)
        .with_context(|| format!("{}", file.display()))?;
    println!(
        "imported {} records into {} ({} duplicates skipped)",
        report.added,
        db.path().display(),
        report.duplicates
    );
    Ok(())
}

fn gc(db: &TuningDb, keep_best: usize, keep_failed: usize) -> Result<()> {
    let policy = GcPolicy {
        keep_best,
        keep_failed,
        ..GcPolicy::default()
    };
    let r = db.gc(&policy)?;
    println!("gc: kept {}, removed {}", r.kept, r.removed);
    Ok(())
}

fn verify(db: &TuningDb) -> Result<()> {
    let r = db.verify()?;
    for p in &r.problems {
        println!("corrupt {}: {}", p.key, p.message);
    }
    if !r.problems.is_empty() {
        bail!(
            "{}: {} damaged entries ({} intact records); the database was left as it is",
            db.path().display(),
            r.problems.len(),
            r.records
        );
    }
    println!("ok: {} records intact", r.records);
    Ok(())
}
