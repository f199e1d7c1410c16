//! `kiln db`: stats on an empty database, import → list → export roundtrip,
//! verify on a damaged database (clear error, nonzero exit, no panic), and a
//! missing database.

mod common;
use common::*;
use std::path::Path;
use std::process::Output;

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn db(args: &[&str], path: &Path, backend: &str) -> Output {
    let mut all = vec!["db"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--db", path.to_str().unwrap(), "--backend", backend]);
    kiln(&all)
}

fn ok(o: &Output) -> String {
    let (out, err) = text(o);
    assert!(o.status.success(), "stdout: {out}\nstderr: {err}");
    out
}

fn assert_clean_failure(o: &Output, needle: &str) {
    let (out, err) = text(o);
    assert_eq!(o.status.code(), Some(1), "stdout: {out}\nstderr: {err}");
    assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
}

/// Three records (two workloads, one failed) as JSONL.
fn sample_jsonl() -> String {
    let target = kiln_tuner::target::TargetDescriptor::host_cpu(2).unwrap();
    let mut lines = String::new();
    for (i, family) in ["gemm", "gemm", "conv2d"].iter().enumerate() {
        let rec = kiln_tuner::record::Record {
            workload: kiln_tuner::key::WorkloadKey::new(*family, vec![i as u8 % 2; 4]),
            target: target.clone(),
            epoch: kiln_tuner::target::Epoch::CURRENT,
            config: serde_json::json!({ "tile": i * 8 }),
            samples_ns: vec![1.5, 2.5, 3.5],
            median_ns: 2.5 + i as f64,
            cv: 0.25,
            status: if i == 1 {
                kiln_tuner::record::Status::Timeout
            } else {
                kiln_tuner::record::Status::Ok
            },
            protocol: kiln_tuner::record::Protocol {
                warmup: 1,
                repeats: 3,
                interleaved: true,
                threads: 2,
            },
            compile_ms: 0.5,
            seed: 42,
            timestamp_s: 1_800_000_000 + i as u64,
            predicted: None,
        };
        lines.push_str(&serde_json::to_string(&rec).unwrap());
        lines.push('\n');
    }
    lines
}

fn roundtrip(backend: &str) {
    let d = temp_dir(&format!("cli-db-{backend}"));
    let path = d.join("tuning.db");
    std::fs::write(d.join("empty.jsonl"), "").unwrap();
    let out = ok(&db(
        &["import", d.join("empty.jsonl").to_str().unwrap()],
        &path,
        backend,
    ));
    assert!(out.contains("imported 0 records"), "{out}");
    let out = ok(&db(&["stats"], &path, backend));
    assert!(
        out.contains("records 0 (ok 0, failed 0, corrupt 0)"),
        "{out}"
    );

    let input = sample_jsonl();
    std::fs::write(d.join("in.jsonl"), &input).unwrap();
    let out = ok(&db(
        &["import", d.join("in.jsonl").to_str().unwrap()],
        &path,
        backend,
    ));
    assert!(out.contains("imported 3 records"), "{out}");
    let out = ok(&db(
        &["import", d.join("in.jsonl").to_str().unwrap()],
        &path,
        backend,
    ));
    assert!(
        out.contains("imported 0 records") && out.contains("3 duplicates"),
        "{out}"
    );
    let out = ok(&db(&["list"], &path, backend));
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains("timeout") && out.contains("conv2d"), "{out}");
    let out = ok(&db(&["list", "--family", "gemm"], &path, backend));
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = ok(&db(&["stats", "--json"], &path, backend));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["records"].as_u64(), v["ok"].as_u64()),
        (Some(3), Some(2))
    );

    let exported = ok(&db(&["export"], &path, backend));
    let mut want: Vec<&str> = input.lines().collect();
    let mut got: Vec<&str> = exported.lines().collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let file = d.join("out.jsonl");
    ok(&db(
        &["export", "-o", file.to_str().unwrap()],
        &path,
        backend,
    ));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), exported);
    let out = ok(&db(&["verify"], &path, backend));
    assert!(out.contains("ok: 3 records intact"), "{out}");
    let out = ok(&db(&["gc", "--keep-best", "1"], &path, backend));
    assert!(out.contains("removed 0"), "{out}");
}

#[test]
fn import_list_export_roundtrip_sled() {
    roundtrip("sled");
}

#[test]
fn import_list_export_roundtrip_redb() {
    roundtrip("redb");
}

#[test]
fn verify_on_a_damaged_database_fails_cleanly() {
    let d = temp_dir("cli-db-corrupt");
    let path = d.join("tuning.db");
    std::fs::write(d.join("in.jsonl"), sample_jsonl()).unwrap();
    ok(&db(
        &["import", d.join("in.jsonl").to_str().unwrap()],
        &path,
        "redb",
    ));
    // Damage one record's value in place (every copy of it in the file).
    let mut bytes = std::fs::read(&path).unwrap();
    let hits: Vec<usize> = (0..bytes.len() - 7)
        .filter(|&i| &bytes[i..i + 7] == b"\"conv2d")
        .collect();
    assert!(!hits.is_empty());
    for at in hits {
        bytes[at + 1] ^= 0x20;
    }
    std::fs::write(&path, &bytes).unwrap();
    let o = db(&["verify"], &path, "redb");
    assert_clean_failure(&o, "tuning.db");
    // A file that is not a database at all.
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let o = kiln(&["db", "verify", "--db", path.to_str().unwrap()]);
    assert_clean_failure(&o, "tuning.db");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        vec![0x5a; 8192],
        "left untouched"
    );
}

#[test]
fn missing_database_is_a_clear_error() {
    let d = temp_dir("cli-db-missing");
    let path = d.join("nowhere").join("tuning.db");
    for cmd in ["stats", "list", "export", "verify", "gc"] {
        let o = kiln(&["db", cmd, "--db", path.to_str().unwrap()]);
        assert_clean_failure(&o, "no tuning database");
    }
    assert!(!path.exists(), "a read command must not create a database");
    let empty = d.join("empty-dir");
    std::fs::create_dir_all(&empty).unwrap();
    let o = kiln(&["db", "stats", "--db", empty.to_str().unwrap()]);
    assert_clean_failure(&o, "not a sled tuning database");
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        0,
        "nothing created"
    );
    let absent = d.join("absent.jsonl");
    let o = kiln(&[
        "db",
        "import",
        absent.to_str().unwrap(),
        "--db",
        path.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "absent.jsonl");
    assert!(!path.exists(), "a failed import must not create a database");
}
