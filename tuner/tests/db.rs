//! The tuning database against both backends (every test runs on sled and
//! on redb): exact matching only, near matches, JSONL roundtrip, gc, verify,
//! and clear errors for damaged or missing databases.

use kiln_tuner::db::{layout, Backend, GcPolicy, TuningDb};
use kiln_tuner::key::WorkloadKey;
use kiln_tuner::record::{Protocol, Record, Status};
use kiln_tuner::target::{Epoch, TargetDescriptor};
use std::path::{Path, PathBuf};

/// Runs `$f(backend)` once per backend.
macro_rules! both {
    ($($f:ident),* $(,)?) => {$(
        mod $f {
            #[test]
            fn sled() { super::$f(kiln_tuner::db::Backend::Sled) }
            #[test]
            fn redb() { super::$f(kiln_tuner::db::Backend::Redb) }
        }
    )*};
}

both!(
    exact_match_only,
    collision_is_never_applied,
    best_is_lowest_ok_median,
    near_matches_seed_only,
    export_import_roundtrip,
    gc_drops_old_epochs_and_keeps_best,
    verify_finds_corruption,
    garbage_database_is_an_error,
);

fn fresh(tag: &str, backend: Backend) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("db-{tag}-{}", backend.name()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("tuning.db")
}

fn cpu(model_name: &str, isa: &[&str], threads: u32) -> TargetDescriptor {
    TargetDescriptor::Cpu {
        vendor: "GenuineIntel".into(),
        model_name: model_name.into(),
        family: 6,
        model: 143,
        stepping: 8,
        isa: isa.iter().map(|s| s.to_string()).collect(),
        cores: 2,
        threads_used: threads,
        l1d_bytes: 48 << 10,
        l2_bytes: 2 << 20,
        l3_bytes: 105 << 20,
    }
}

const ISA: &[&str] = &["avx", "avx2", "avx512f", "fma"];

fn xeon() -> TargetDescriptor {
    cpu("Xeon", ISA, 2)
}

fn rec(key: &WorkloadKey, target: &TargetDescriptor, median: f64, status: Status) -> Record {
    Record {
        workload: key.clone(),
        target: target.clone(),
        epoch: Epoch::CURRENT,
        config: serde_json::json!({"tile": median, "unroll": [1, 2]}),
        samples_ns: vec![median * 0.9, median, median * 1.1 + 0.1],
        median_ns: median,
        cv: 0.1 / 3.0,
        status,
        protocol: Protocol {
            warmup: 2,
            repeats: 3,
            interleaved: true,
            threads: 2,
        },
        compile_ms: 1.25,
        seed: median as u64,
        timestamp_s: 1_800_000_000 + median as u64,
        predicted: Some(median / 7.0),
    }
}

fn gemm() -> WorkloadKey {
    WorkloadKey::new("gemm", b"m128n128k64".to_vec())
}

fn exact_match_only(b: Backend) {
    let db = TuningDb::open(&fresh("exact", b), b).unwrap();
    let k = gemm();
    let mine = rec(&k, &xeon(), 500.0, Status::Ok);
    db.put(&mine).unwrap();
    let others = [
        cpu("EPYC", ISA, 2),
        cpu("Xeon", &["avx", "avx2", "fma"], 2),
        cpu("Xeon", ISA, 1),
        TargetDescriptor::Gpu {
            name: "H200".into(),
            compute_capability: "9.0".into(),
            sm_count: 132,
            driver: "570".into(),
            cuda: "12.8".into(),
        },
    ];
    // Faster records on every other target and in another epoch.
    for t in &others {
        db.put(&rec(&k, t, 100.0, Status::Ok)).unwrap();
        assert_eq!(db.best(&k, t, &Epoch::CURRENT).unwrap().unwrap().target, *t);
    }
    let old = Epoch {
        codegen: 0,
        ..Epoch::CURRENT
    };
    db.put(&Record {
        epoch: old,
        ..rec(&k, &xeon(), 50.0, Status::Ok)
    })
    .unwrap();
    assert_eq!(
        db.best(&k, &xeon(), &Epoch::CURRENT).unwrap(),
        Some(mine.clone())
    );
    // ISA order does not matter; anything else does.
    let shuffled = cpu("Xeon", &["fma", "avx512f", "avx2", "avx"], 2);
    assert_eq!(db.best(&k, &shuffled, &Epoch::CURRENT).unwrap(), Some(mine));
    let unseen = cpu("Xeon", &["avx", "avx2", "avx512f", "avx512bw", "fma"], 2);
    assert_eq!(db.best(&k, &unseen, &Epoch::CURRENT).unwrap(), None);
    let next = Epoch {
        schedule: 2,
        ..Epoch::CURRENT
    };
    assert_eq!(db.best(&k, &xeon(), &next).unwrap(), None);
    let other_shape = WorkloadKey::new("gemm", b"m128n128k65".to_vec());
    assert_eq!(
        db.best(&other_shape, &xeon(), &Epoch::CURRENT).unwrap(),
        None
    );
}

fn collision_is_never_applied(b: Backend) {
    let db = TuningDb::open(&fresh("collide", b), b).unwrap();
    let k = gemm();
    let genuine = rec(&k, &xeon(), 500.0, Status::Ok);
    db.put(&genuine).unwrap();
    // Another workload forged to the same hash, faster: must never win.
    let forged_key = WorkloadKey {
        canonical: b"m999n999k999".to_vec(),
        ..k.clone()
    };
    let forged = rec(&forged_key, &xeon(), 10.0, Status::Ok);
    assert!(
        db.put(&forged).is_err(),
        "put must refuse an inconsistent key"
    );
    let (key, value) = layout::encode(&forged).unwrap();
    db.storage().put(&key, &value).unwrap();
    assert_eq!(
        db.best(&k, &xeon(), &Epoch::CURRENT).unwrap(),
        Some(genuine)
    );
    let honest = WorkloadKey::new("gemm", b"m999n999k999".to_vec());
    assert_eq!(db.best(&honest, &xeon(), &Epoch::CURRENT).unwrap(), None);
    let report = db.verify().unwrap();
    assert_eq!(report.records, 1);
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(report.problems[0].message.contains("hash"), "{report:?}");
}

fn best_is_lowest_ok_median(b: Backend) {
    let db = TuningDb::open(&fresh("best", b), b).unwrap();
    let k = gemm();
    for (m, s) in [
        (300.0, Status::Ok),
        (1.0, Status::WrongResult("err 1e3".into())),
        (2.0, Status::Timeout),
        (3.0, Status::CompileError("no".into())),
        (4.0, Status::RuntimeError("segv".into())),
        (200.0, Status::Ok),
        (250.0, Status::Ok),
    ] {
        db.put(&rec(&k, &xeon(), m, s)).unwrap();
    }
    let best = db.best(&k, &xeon(), &Epoch::CURRENT).unwrap().unwrap();
    assert_eq!(best.median_ns, 200.0);
    // Putting the same record twice stores it once.
    db.put(&best).unwrap();
    assert_eq!(db.stats().unwrap().records, 7);
    assert_eq!(db.stats().unwrap().ok, 3);
}

fn near_matches_seed_only(b: Backend) {
    let db = TuningDb::open(&fresh("near", b), b).unwrap();
    let k = gemm();
    let sibling = WorkloadKey::new("gemm", b"m64n64k64".to_vec());
    let conv = WorkloadKey::new("conv2d", b"m128n128k64".to_vec());
    let epyc = cpu("EPYC", ISA, 2);
    db.put(&rec(&sibling, &xeon(), 5.0, Status::Ok)).unwrap();
    db.put(&rec(&k, &epyc, 90.0, Status::Ok)).unwrap();
    db.put(&rec(&k, &epyc, 80.0, Status::Ok)).unwrap();
    db.put(&rec(&k, &epyc, 1.0, Status::Timeout)).unwrap();
    db.put(&rec(&conv, &xeon(), 1.0, Status::Ok)).unwrap();
    assert_eq!(db.best(&k, &xeon(), &Epoch::CURRENT).unwrap(), None);
    let near = db.near(&k).unwrap();
    let medians: Vec<f64> = near.iter().map(|r| r.median_ns).collect();
    assert_eq!(medians, [80.0, 90.0, 5.0]);
    assert!(near.iter().all(|r| r.workload.family == "gemm"));
    assert_eq!(db.near(&conv).unwrap().len(), 1);
}

fn sample_db(path: &Path, b: Backend) -> TuningDb {
    let db = TuningDb::open(path, b).unwrap();
    for i in 0..40u32 {
        let k = WorkloadKey::new(["gemm", "conv2d", "pool"][i as usize % 3], vec![i as u8; 5]);
        let t = cpu(["Xeon", "EPYC"][i as usize % 2], ISA, 1 + i % 3);
        let status = if i.is_multiple_of(5) {
            Status::Timeout
        } else {
            Status::Ok
        };
        let mut r = rec(&k, &t, 0.1 + f64::from(i) * 1.37, status);
        r.predicted = i.is_multiple_of(2).then_some(f64::from(i) / 3.0);
        db.put(&r).unwrap();
    }
    db
}

fn export_import_roundtrip(b: Backend) {
    let db = sample_db(&fresh("export-a", b), b);
    let mut jsonl = Vec::new();
    assert_eq!(db.export_jsonl(&mut jsonl).unwrap(), 40);
    // Into a database of the other backend, twice.
    let other = if b == Backend::Sled {
        Backend::Redb
    } else {
        Backend::Sled
    };
    let db2 = TuningDb::open(&fresh("export-b", b), other).unwrap();
    let first = db2.import_jsonl(&mut jsonl.as_slice()).unwrap();
    assert_eq!((first.lines, first.added, first.duplicates), (40, 40, 0));
    let again = db2.import_jsonl(&mut jsonl.as_slice()).unwrap();
    assert_eq!((again.lines, again.added, again.duplicates), (40, 0, 40));
    assert_eq!(db2.list().unwrap(), db.list().unwrap());
    let mut jsonl2 = Vec::new();
    db2.export_jsonl(&mut jsonl2).unwrap();
    assert_eq!(jsonl, jsonl2);
    // A bad line fails the import before anything is written.
    let db3 = TuningDb::open(&fresh("export-c", b), b).unwrap();
    let mut bad = jsonl.clone();
    bad.extend_from_slice(b"{\"not\": \"a record\"}\n");
    let e = db3.import_jsonl(&mut bad.as_slice()).unwrap_err();
    assert!(e.to_string().contains("line 41"), "{e}");
    assert_eq!(db3.stats().unwrap().records, 0);
}

fn gc_drops_old_epochs_and_keeps_best(b: Backend) {
    let db = TuningDb::open(&fresh("gc", b), b).unwrap();
    let k = gemm();
    for i in 0..12 {
        db.put(&rec(&k, &xeon(), 100.0 + f64::from(i), Status::Ok))
            .unwrap();
        db.put(&rec(&k, &xeon(), 1.0 + f64::from(i), Status::Timeout))
            .unwrap();
        let old = Epoch {
            schedule: 0,
            ..Epoch::CURRENT
        };
        db.put(&Record {
            epoch: old,
            ..rec(&k, &xeon(), 1.0 + f64::from(i), Status::Ok)
        })
        .unwrap();
    }
    let policy = GcPolicy {
        keep_best: 3,
        keep_failed: 2,
        ..GcPolicy::default()
    };
    let report = db.gc(&policy).unwrap();
    assert_eq!((report.kept, report.removed), (5, 31));
    let left = db.list().unwrap();
    let mut ok: Vec<f64> = left
        .iter()
        .filter(|r| r.is_ok())
        .map(|r| r.median_ns)
        .collect();
    ok.sort_by(f64::total_cmp);
    assert_eq!(ok, [100.0, 101.0, 102.0]);
    let mut failed: Vec<u64> = left
        .iter()
        .filter(|r| !r.is_ok())
        .map(|r| r.timestamp_s)
        .collect();
    failed.sort();
    assert_eq!(failed, [1_800_000_011, 1_800_000_012]);
    assert!(left.iter().all(|r| r.epoch == Epoch::CURRENT));
    assert_eq!(db.gc(&policy).unwrap().removed, 0);
}

fn verify_finds_corruption(b: Backend) {
    let db = sample_db(&fresh("verify", b), b);
    assert!(db.verify().unwrap().problems.is_empty());
    let entries = db.storage().scan_prefix(layout::KEY_TAG).unwrap();
    let (k0, v0) = &entries[0];
    let mut flipped = v0.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x10;
    db.storage().put(k0, &flipped).unwrap();
    let (k1, v1) = &entries[1];
    db.storage().put(k1, &v1[..v1.len() - 9]).unwrap();
    let (k2, _) = &entries[2];
    db.storage().put(k2, &entries[3].1).unwrap();
    db.storage().put(b"junk", b"x").unwrap();
    let report = db.verify().unwrap();
    assert_eq!(report.records, 37);
    let messages: Vec<&str> = report.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(messages.len(), 4, "{messages:?}");
    for needle in ["checksum", "torn", "wrong key", "not a record key"] {
        assert!(
            messages.iter().any(|m| m.contains(needle)),
            "{needle}: {messages:?}"
        );
    }
    // Lookups skip damaged records; export leaves them out.
    assert_eq!(db.list().unwrap().len(), 37);
    let mut out = Vec::new();
    assert_eq!(db.export_jsonl(&mut out).unwrap(), 37);
    assert_eq!(db.stats().unwrap().corrupt, 4);
}

/// Every regular file under `p`, with its bytes.
fn snapshot(p: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    if p.is_file() {
        return vec![(p.to_path_buf(), std::fs::read(p).unwrap())];
    }
    let mut out: Vec<_> = std::fs::read_dir(p)
        .unwrap()
        .flat_map(|e| snapshot(&e.unwrap().path()))
        .collect();
    out.sort();
    out
}

fn garbage_database_is_an_error(b: Backend) {
    let path = fresh("garbage", b);
    let missing = TuningDb::open_existing(&path, b).err().unwrap();
    assert!(
        missing.to_string().contains("no tuning database"),
        "{missing}"
    );
    drop(sample_db(&path, b));
    // Overwrite every file with noise of the same length.
    for (f, bytes) in snapshot(&path) {
        let noise: Vec<u8> = (0..bytes.len()).map(|i| (i * 131 % 251) as u8).collect();
        std::fs::write(f, noise).unwrap();
    }
    let before = snapshot(&path);
    let err = match TuningDb::open_existing(&path, b) {
        Err(e) => e.to_string(),
        Ok(db) => match db.verify() {
            Ok(r) if r.problems.is_empty() && r.records > 0 => panic!("noise verified: {r:?}"),
            Ok(r) => format!("{} problems", r.problems.len()),
            Err(e) => e.to_string(),
        },
    };
    assert!(
        err.contains("tuning.db") || err.contains("problems"),
        "{err}"
    );
    assert_eq!(
        snapshot(&path),
        before,
        "open must not rewrite a damaged database"
    );
}

#[test]
fn default_path_and_backend_names() {
    let p = kiln_tuner::db::default_path().unwrap();
    assert!(p.ends_with("kiln/tuning.db"), "{}", p.display());
    assert_eq!("redb".parse::<Backend>().unwrap(), Backend::Redb);
    assert!("lmdb".parse::<Backend>().is_err());
}
