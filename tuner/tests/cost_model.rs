//! The cost model's contract: determinism for a seed, save/load
//! round trips, online updates, head initialisation for a new target, and
//! clear errors (never panics) on empty data, NaN latencies and bad input.

mod cost_common;

use cost_common::{avx2, avx512, neon, samples, workloads};
use kiln_tuner::cost::metrics::split_by_workload;
use kiln_tuner::cost::{CostConfig, CostModel, HeadInit, Sample};
use kiln_tuner::TunerError;

fn config(seed: u64) -> CostConfig {
    CostConfig {
        target_dims: 7,
        epochs: 20,
        seed,
        ..CostConfig::default()
    }
}

fn data() -> Vec<Sample> {
    let ws = workloads(16, 21);
    let mut s = samples(&avx512(), &ws, 16, 22);
    s.extend(samples(&avx2(), &ws, 16, 23));
    s
}

fn feats(s: &[Sample]) -> Vec<Vec<f32>> {
    s.iter().map(|s| s.features.clone()).collect()
}

#[test]
fn same_seed_same_model() {
    let d = data();
    let f = feats(&d[..40]);
    let mut a = CostModel::new(config(5)).unwrap();
    let mut b = CostModel::new(config(5)).unwrap();
    let mut c = CostModel::new(config(6)).unwrap();
    for m in [&mut a, &mut b, &mut c] {
        m.train(&d).unwrap();
    }
    let t = avx512().name;
    let pa = a.predict(&f, t).unwrap();
    assert_eq!(pa, b.predict(&f, t).unwrap(), "same seed and data");
    assert_ne!(pa, c.predict(&f, t).unwrap(), "another seed");
    assert_eq!(a.to_json().unwrap(), b.to_json().unwrap());
    // Updates are deterministic too.
    a.update(&d[..64]).unwrap();
    b.update(&d[..64]).unwrap();
    assert_eq!(a.predict(&f, t).unwrap(), b.predict(&f, t).unwrap());
}

#[test]
fn save_load_round_trip() {
    let d = data();
    let mut m = CostModel::new(config(1)).unwrap();
    m.train(&d).unwrap();
    let f = feats(&d[..50]);
    let json = m.to_json().unwrap();
    let back = CostModel::from_json(&json).unwrap();
    for t in [avx512().name, avx2().name] {
        assert_eq!(m.predict(&f, t).unwrap(), back.predict(&f, t).unwrap());
    }
    assert_eq!(back.targets(), m.targets());
    assert_eq!(back.config(), m.config());
    let path = std::env::temp_dir().join(format!("kiln-cost-{}.json", std::process::id()));
    m.save(&path).unwrap();
    let loaded = CostModel::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        loaded.predict(&f, avx2().name).unwrap(),
        m.predict(&f, avx2().name).unwrap()
    );
    // Damaged or missing files are errors.
    assert!(matches!(
        CostModel::from_json(&json[..json.len() / 2]),
        Err(TunerError::CostFormat { .. })
    ));
    let wrong = json.replacen("\"version\":1", "\"version\":9", 1);
    assert!(matches!(
        CostModel::from_json(&wrong),
        Err(TunerError::CostFormat { .. })
    ));
    assert!(matches!(CostModel::load(&path), Err(TunerError::Io { .. })));
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let d = data();
    let mut m = CostModel::new(config(2)).unwrap();
    let t = avx512().name;
    assert!(matches!(
        m.predict(&feats(&d[..2]), t),
        Err(TunerError::CostNoData { .. })
    ));
    assert!(matches!(m.evaluate(&d), Err(TunerError::CostNoData { .. })));
    assert!(matches!(m.train(&[]), Err(TunerError::CostNoData { .. })));
    let mut nan = d.clone();
    nan.iter_mut().for_each(|s| s.latency_ns = f64::NAN);
    assert!(matches!(m.train(&nan), Err(TunerError::CostNoData { .. })));
    // One sample per workload: nothing to rank.
    let single: Vec<Sample> = d.iter().step_by(16).cloned().collect();
    assert!(matches!(
        m.train(&single),
        Err(TunerError::CostNoData { .. })
    ));
    // Some bad latencies and features are skipped.
    let mut mixed = d.clone();
    mixed[0].latency_ns = f64::NAN;
    mixed[1].latency_ns = -1.0;
    mixed[2].latency_ns = f64::INFINITY;
    mixed[3].features[0] = f32::NAN;
    assert_eq!(m.train(&mixed).unwrap().skipped, 4);
    assert_eq!(m.buffered(), d.len() - 4);
    // Wrong lengths, non-finite features and unknown targets are errors.
    let mut short = d.clone();
    short[5].features.pop();
    assert!(matches!(
        m.update(&short),
        Err(TunerError::CostFeatureLength { index: 5, .. })
    ));
    let mut f = feats(&d[..3]);
    f[1][7] = f32::INFINITY;
    assert!(matches!(
        m.predict(&f, t),
        Err(TunerError::CostNonFinite {
            index: 1,
            position: 7
        })
    ));
    let e = m.predict(&feats(&d[..3]), "gpu").unwrap_err();
    assert!(
        e.to_string().contains("gpu") && e.to_string().contains(t),
        "{e}"
    );
    assert_eq!(m.predict(&[], t).unwrap(), Vec::<f32>::new());
    // A sample of another target given to adapt, and bad settings.
    assert!(matches!(
        m.adapt("x", &[], &d[..2], HeadInit::Mean),
        Err(TunerError::CostConfig { .. })
    ));
    let bad = CostConfig {
        hidden: vec![],
        ..CostConfig::default()
    };
    assert!(matches!(
        CostModel::new(bad),
        Err(TunerError::CostConfig { .. })
    ));
    let bad = CostConfig {
        lr: f32::NAN,
        ..CostConfig::default()
    };
    assert!(matches!(
        CostModel::new(bad),
        Err(TunerError::CostConfig { .. })
    ));
}

/// Online retraining: a model trained on a few workloads improves on
/// held-out workloads as more data arrives; the replay buffer is capped.
#[test]
fn update_learns_from_new_data() {
    let ws = workloads(48, 31);
    let all = samples(&avx512(), &ws, 24, 32);
    let (train, test) = split_by_workload(&all, 0.25, 33);
    let cfg = CostConfig {
        replay_capacity: 600,
        update_epochs: 10,
        ..config(3)
    };
    let mut m = CostModel::new(cfg).unwrap();
    m.train(&train[..48]).unwrap();
    let before = m.evaluate(&test).unwrap().pairwise;
    for chunk in train[48..].chunks(240) {
        m.update(chunk).unwrap();
    }
    let after = m.evaluate(&test).unwrap().pairwise;
    assert!(after > before + 0.03, "before {before}, after {after}");
    assert_eq!(m.buffered(), 600);
}

/// A new target's head starts as the nearest known target's head (by
/// target features) or as the mean of all heads.
#[test]
fn new_heads_start_from_known_ones() {
    let d = data();
    let mut m = CostModel::new(config(4)).unwrap();
    m.train(&d).unwrap();
    let f = feats(&d[..30]);
    let (a, b) = (avx512(), avx2());
    let pa = m.predict(&f, a.name).unwrap();
    let pb = m.predict(&f, b.name).unwrap();
    let mut near = m.clone();
    near.adapt("like-a", &a.desc(), &[], HeadInit::Nearest)
        .unwrap();
    assert_eq!(near.predict(&f, "like-a").unwrap(), pa);
    near.adapt("like-b", &b.desc(), &[], HeadInit::Nearest)
        .unwrap();
    assert_eq!(near.predict(&f, "like-b").unwrap(), pb);
    let mut mean = m.clone();
    mean.adapt("mid", &neon().desc(), &[], HeadInit::Mean)
        .unwrap();
    let pm = mean.predict(&f, "mid").unwrap();
    for k in 0..f.len() {
        assert!((pm[k] - (pa[k] + pb[k]) / 2.0).abs() < 1e-4, "{k}");
    }
    assert_eq!(mean.targets().len(), 3);
}

/// Candidates are scored against those of their own measurement batch only:
/// a second batch of the same workload timed in a 10x faster machine phase
/// does not turn its within-batch orders into wrong cross-batch pairs.
#[test]
fn evaluation_pairs_stay_within_a_batch() {
    let d = data();
    let mut m = CostModel::new(config(3)).unwrap();
    m.train(&d).unwrap();
    let t = avx512().name;
    let mut test: Vec<Sample> = d
        .iter()
        .filter(|s| s.target == t && s.workload == d[0].workload)
        .cloned()
        .collect();
    assert!(test.len() >= 8, "{}", test.len());
    let one = m.evaluate(&test).unwrap().pairwise;
    // The same candidates again as batch 1, all 10x faster.
    let again: Vec<Sample> = test
        .iter()
        .map(|s| Sample {
            latency_ns: s.latency_ns / 10.0,
            batch: 1,
            ..s.clone()
        })
        .collect();
    test.extend(again);
    let two = m.evaluate(&test).unwrap().pairwise;
    assert!((one - two).abs() < 1e-9, "{one} vs {two}");
}
