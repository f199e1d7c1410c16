//! Crash-test writer and checker.
//!
//! `kiln-db-crash-writer sled|redb PATH FIRST_ID` opens the tuning database,
//! prints `ready`, then stores records with ids FIRST_ID, FIRST_ID+1, ...
//! forever, printing each id (flushed) only after `put` returned.
//! `tests/crash.rs` kills it with SIGKILL at random moments.
//!
//! `kiln-db-crash-writer check sled|redb PATH` reopens the database in a
//! fresh process, as a restart would (sled releases its file lock lazily
//! after a drop, so the test does not reopen it in its own process between
//! kills), runs `verify` and prints `problem MESSAGE` per damaged entry, then
//! `hash HEX` per stored record's workload hash.

use kiln_tuner::db::{layout, Backend, TuningDb};
use kiln_tuner::key::WorkloadKey;
use kiln_tuner::record::{Protocol, Record, Status};
use kiln_tuner::target::{Epoch, TargetDescriptor};
use std::io::Write;
use std::path::PathBuf;

/// The canonical bytes of crash record `id`: the id and 256 bytes derived
/// from it (so a torn value cannot pass for another record).
pub fn canonical(id: u64) -> Vec<u8> {
    let mut v = id.to_le_bytes().to_vec();
    v.extend((0..256u64).map(|i| (id.wrapping_mul(31).wrapping_add(i * 7) % 251) as u8));
    v
}

fn record(id: u64, target: &TargetDescriptor) -> Record {
    Record {
        workload: WorkloadKey::new("crash", canonical(id)),
        target: target.clone(),
        epoch: Epoch::CURRENT,
        config: serde_json::json!({ "id": id, "tile": [id % 7, id % 13] }),
        samples_ns: (0..8).map(|i| (id * 8 + i) as f64).collect(),
        median_ns: id as f64,
        cv: 0.5,
        status: Status::Ok,
        protocol: Protocol {
            warmup: 1,
            repeats: 8,
            interleaved: false,
            threads: 1,
        },
        compile_ms: 1.0,
        seed: id,
        timestamp_s: id,
        predicted: None,
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Reopens, verifies and lists the workload hashes (see the module doc).
fn check(backend: &str, path: &str) -> Result<()> {
    let db = TuningDb::open_existing(&PathBuf::from(path), backend.parse()?)?;
    let mut out = std::io::stdout().lock();
    for p in db.verify()?.problems {
        writeln!(out, "problem {}: {}", p.key, p.message)?;
    }
    // Key bytes 10..26 are the workload hash (`db::layout`); `verify` has
    // checked every key against its record.
    for (key, _) in db.storage().scan_prefix(layout::KEY_TAG)? {
        let Some(Ok(hash)) = key.get(10..26).map(<[u8; 16]>::try_from) else {
            continue; // too short: already a problem line
        };
        writeln!(out, "hash {:032x}", u128::from_be_bytes(hash))?;
    }
    Ok(out.flush()?)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "check" {
        return check(&args[2], &args[3]);
    }
    if args.len() != 4 {
        return Err("usage: kiln-db-crash-writer [check] sled|redb PATH [FIRST_ID]".into());
    }
    let backend: Backend = args[1].parse()?;
    let db = TuningDb::open(&PathBuf::from(&args[2]), backend)?;
    let target = TargetDescriptor::host_cpu(1)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    for id in args[3].parse::<u64>()?.. {
        db.put(&record(id, &target))?;
        writeln!(out, "{id}")?;
        out.flush()?;
    }
    Ok(())
}
