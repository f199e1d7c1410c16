//! The crash bar: for each backend, a writer process is killed with SIGKILL
//! at 200 random moments (seeded); after every kill the database opens,
//! `verify` is clean, and every record the writer acknowledged (printed after
//! `put` returned) is present and intact.

use kiln_tuner::db::{Backend, TuningDb};
use kiln_tuner::key::WorkloadKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const ROUNDS: u64 = 200;

/// Must match the writer's `canonical`.
fn canonical(id: u64) -> Vec<u8> {
    let mut v = id.to_le_bytes().to_vec();
    v.extend((0..256u64).map(|i| (id.wrapping_mul(31).wrapping_add(i * 7) % 251) as u8));
    v
}

/// Runs the writer, kills it after a random delay; returns the acknowledged ids.
fn run_and_kill(backend: Backend, path: &Path, first: u64, rng: &mut ChaCha8Rng) -> Vec<u64> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln-db-crash-writer"))
        .args([backend.name(), path.to_str().unwrap(), &first.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    // One round in eight is killed while opening (recovery included).
    if !rng.random_ratio(1, 8) {
        out.read_line(&mut text).unwrap();
    }
    std::thread::sleep(Duration::from_millis(rng.random_range(2..=40)));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    out.read_to_string(&mut text).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.signal(), Some(9), "writer exited by itself: {err}");
    let complete = text.rfind('\n').map_or("", |i| &text[..i]);
    complete
        .lines()
        .filter(|l| *l != "ready")
        .map(|l| l.parse().unwrap())
        .collect()
}

/// The workload hash of crash record `id` (as the writer builds it).
fn hash_of(id: u64) -> u128 {
    WorkloadKey::new("crash", canonical(id)).hash
}

/// Reopens the database in a fresh process (the checker: a restart, and
/// sled's lazily released lock stays out of the way); `verify` must be clean
/// (every value intact: checksum, JSON, workload hash and key checked) and
/// every acknowledged record stored.
fn check(backend: Backend, path: &Path, acked: &HashSet<u128>, round: u64) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln-db-crash-writer"))
        .args(["check", backend.name(), path.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{backend:?} round {round}: does not open: {err}"
    );
    let problems: Vec<&str> = text.lines().filter(|l| l.starts_with("problem")).collect();
    assert!(
        problems.is_empty(),
        "{backend:?} round {round}: {problems:?}"
    );
    let present: HashSet<u128> = text
        .lines()
        .filter_map(|l| l.strip_prefix("hash "))
        .map(|h| u128::from_str_radix(h, 16).unwrap())
        .collect();
    let lost = acked.difference(&present).count();
    assert_eq!(
        lost, 0,
        "{backend:?} round {round}: {lost} acknowledged records lost"
    );
}

/// Every stored record is exactly what the writer wrote for its id.
fn check_contents(db: &TuningDb) {
    for r in db.list().unwrap() {
        assert_eq!(r.workload, WorkloadKey::new("crash", canonical(r.seed)));
        assert_eq!(r.median_ns, r.seed as f64);
        assert_eq!(r.config["id"], r.seed);
    }
}

fn crash_loop(backend: Backend) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("crash-{}", backend.name()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tuning.db");
    drop(TuningDb::open(&path, backend).unwrap());
    let mut rng = ChaCha8Rng::seed_from_u64(0x6b69_6c6e + backend as u64);
    let mut acked = HashSet::new();
    for round in 0..ROUNDS {
        let ids = run_and_kill(backend, &path, round * 1_000_000, &mut rng);
        acked.extend(ids.into_iter().map(hash_of));
        check(backend, &path, &acked, round);
    }
    check_contents(&TuningDb::open_existing(&path, backend).unwrap());
    eprintln!(
        "{backend:?}: {ROUNDS} kills, {} acknowledged records, none lost",
        acked.len()
    );
    assert!(
        acked.len() as u64 > ROUNDS,
        "too few writes to mean anything"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sled_survives_sigkill() {
    crash_loop(Backend::Sled);
}

#[test]
fn redb_survives_sigkill() {
    crash_loop(Backend::Redb);
}
