//! Measurement (checked against the interpreter, interleaved timing), the
//! worker process (crashes and hangs charged to one candidate), the search
//! (deterministic, valid points only) and the task scheduler.

use kiln_ir::Graph;
use kiln_runtime::tuning::{self, Config, Knob, KnobDef, Space};
use kiln_tuner::measure::{self, Outcome, Protocol};
use kiln_tuner::search::{Ranker, Search, SearchOptions};
use kiln_tuner::tune::{tune, tuned_of, TuneOptions};
use kiln_tuner::worker::{Job, Worker};
use std::path::PathBuf;
use std::time::Duration;

fn seq(n: usize, k: f32) -> String {
    let v: Vec<String> = (0..n)
        .map(|i| format!("{}", (i as f32 * k).sin() + 0.1))
        .collect();
    v.join(", ")
}

fn block(hw: usize) -> Graph {
    kiln_ir::text::parse(&format!(
        "graph blk {{
  input x: f32[1,8,{hw},{hw}]
  const wd: f32[8,1,3,3] = [{wd}]
  const wp: f32[6,8,1,1] = [{wp}]
  node dw = Conv{{group=8, pads=[1, 1, 1, 1]}}(x, wd) -> d: f32[1,8,{hw},{hw}]
  node cl = Clip{{min=0.0, max=6.0}}(d) -> c: f32[1,8,{hw},{hw}]
  node pw = Conv(c, wp) -> p: f32[1,6,{hw},{hw}]
  node r = Relu(p) -> y: f32[1,6,{hw},{hw}]
  output y
}}",
        wd = seq(72, 0.37),
        wp = seq(48, 0.71),
    ))
    .unwrap()
}

fn quick() -> Protocol {
    Protocol {
        warmup: 1,
        repeats: 3,
        min_sample_us: 20.0,
    }
}

fn worker_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiln-tune-worker"))
}

fn job(threads: usize) -> (Job, usize) {
    let g = block(16);
    let w = tuning::workloads(
        &g,
        &kiln_runtime::CompileOptions::default().with_threads(threads),
    )
    .unwrap();
    let wl = w.iter().find(|w| w.family == "fusion").unwrap();
    let sub = tuning::subgraph(&g, &wl.nodes).unwrap();
    let configs: Vec<Config> = (0..wl.space.size()).map(|i| wl.space.point(i)).collect();
    let n = configs.len();
    let job = Job {
        graph: kiln_ir::text::print(&sub),
        canonical: wl.canonical_text(),
        threads,
        protocol: quick(),
        seed: 7,
        configs,
    };
    (job, n)
}

#[test]
fn the_check_finds_wrong_outputs() {
    let a = kiln_ir::Tensor::from_vec(vec![3], vec![1.0f32, 2.0, 3.0]).unwrap();
    let b = kiln_ir::Tensor::from_vec(vec![3], vec![1.0f32, 2.0, 3.1]).unwrap();
    assert!(measure::check(std::slice::from_ref(&a), std::slice::from_ref(&a)).is_ok());
    assert!(measure::check(std::slice::from_ref(&a), &[b])
        .unwrap_err()
        .contains("[2]"));
    assert!(measure::check(std::slice::from_ref(&a), &[]).is_err());
}

#[test]
fn random_inputs_are_non_zero_and_seeded() {
    let g = block(5);
    let a = measure::random_inputs(&g, 1);
    let b = measure::random_inputs(&g, 1);
    let c = measure::random_inputs(&g, 2);
    let x = a["x"].to_f64_vec();
    assert!(x.iter().all(|v| v.abs() >= 0.5));
    assert_eq!(x, b["x"].to_f64_vec());
    assert_ne!(x, c["x"].to_f64_vec());
}

#[test]
fn a_worker_measures_every_candidate() {
    let (job, n) = job(2);
    let w = Worker {
        program: worker_bin(),
        args: vec![],
        limit: Duration::from_secs(60),
    };
    let out = w.measure(&job).unwrap();
    assert_eq!(out.len(), n);
    for o in &out {
        match o {
            Outcome::Ok { samples_ns } => {
                assert_eq!(samples_ns.len(), 3);
                assert!(samples_ns.iter().all(|&t| t > 0.0));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_hanging_worker_is_a_timeout_and_a_dying_one_a_runtime_error() {
    let (job, n) = job(1);
    let hang = Worker {
        program: "sh".into(),
        args: vec!["-c".into(), "sleep 30".into()],
        limit: Duration::from_millis(300),
    };
    let out = hang.measure(&job).unwrap();
    assert_eq!(out.len(), n);
    assert!(out.iter().all(|o| *o == Outcome::Timeout), "{out:?}");
    let die = Worker {
        program: "sh".into(),
        args: vec!["-c".into(), "kill -9 $$".into()],
        limit: Duration::from_secs(10),
    };
    let out = die.measure(&job).unwrap();
    assert!(
        out.iter()
            .all(|o| matches!(o, Outcome::RuntimeError(m) if m.contains("worker died"))),
        "{out:?}"
    );
    let missing = Worker {
        program: "/nonexistent/kiln".into(),
        args: vec![],
        limit: Duration::from_secs(1),
    };
    assert!(missing
        .measure(&job)
        .unwrap_err()
        .to_string()
        .contains("cannot start"));
}

#[test]
fn a_bad_job_is_an_error_not_a_crash() {
    let (mut job, _) = job(1);
    job.graph = "graph broken {".into();
    let w = Worker {
        program: worker_bin(),
        args: vec![],
        limit: Duration::from_secs(30),
    };
    assert!(w.measure(&job).is_err());
}

fn big_space() -> Space {
    Space {
        knobs: vec![
            KnobDef::ints("a", &[1, 2, 4, 8, 16, 32], 4),
            KnobDef::ints("b", &[1, 2, 3, 4, 5, 6], 1),
            KnobDef::flag("c", false),
            KnobDef::ints("d", &[0, 1, 2], 0),
        ],
    }
}

struct PreferBig;
impl Ranker for PreferBig {
    fn score(&self, configs: &[Config]) -> Vec<f64> {
        configs
            .iter()
            .map(|c| match c["a"] {
                Knob::Int(v) => v as f64,
                _ => 0.0,
            })
            .collect()
    }
}

#[test]
fn search_is_deterministic_valid_and_never_repeats() {
    let space = big_space();
    assert!(space.size() > SearchOptions::default().enumerate_max);
    let run = |seed| {
        let mut s = Search::new(space.clone(), SearchOptions::default(), seed);
        let mut all = Vec::new();
        for round in 0..6 {
            let batch = s.propose(8, Some(&PreferBig));
            if round == 0 {
                assert_eq!(batch[0], space.default_config(), "default first");
            }
            for c in batch {
                space.validate(&c).unwrap();
                assert!(!all.contains(&c), "repeated {c:?}");
                let t = match (&c["a"], &c["b"]) {
                    (Knob::Int(a), Knob::Int(b)) => (*a as f64 - 8.0).abs() + *b as f64,
                    _ => 99.0,
                };
                s.observe(c.clone(), Some(t));
                all.push(c);
            }
        }
        (all, s.best().map(|b| b.1))
    };
    let (a, best) = run(3);
    assert_eq!(a, run(3).0);
    assert_ne!(a, run(4).0);
    assert!(best.unwrap() <= 2.0, "search found {best:?}");
}

#[test]
fn small_spaces_are_enumerated() {
    let space = Space {
        knobs: vec![KnobDef::ints("t", &[1, 2], 2), KnobDef::flag("f", true)],
    };
    let mut s = Search::new(space.clone(), SearchOptions::default(), 0);
    let batch = s.propose(10, None);
    assert_eq!(batch.len(), 4);
    batch.iter().for_each(|c| s.observe(c.clone(), Some(1.0)));
    assert!(s.exhausted());
    assert!(s.propose(10, None).is_empty());
}

#[test]
fn tuning_a_graph_keeps_only_measured_wins_and_compiles_correctly() {
    let g = block(24);
    let opts = TuneOptions {
        threads: 2,
        protocol: quick(),
        trials: Some(40),
        time: Some(Duration::from_secs(60)),
        ..Default::default()
    };
    let mut events = 0;
    let tasks = tune(&g, &opts, |_| Vec::new(), None, |_| events += 1).unwrap();
    assert!(events >= tasks.len());
    for t in &tasks {
        assert!(
            t.default_ns.is_some(),
            "{} has no default time",
            t.workload.family
        );
        if let Some((c, best)) = &t.best {
            t.workload.space.validate(c).unwrap();
            assert!(*best < t.default_ns.unwrap());
        }
    }
    let exe = kiln_runtime::compile(
        &g,
        &kiln_runtime::CompileOptions::default()
            .with_threads(2)
            .with_tuned(tuned_of(&tasks)),
    )
    .unwrap();
    let f = measure::random_inputs(&g, 5);
    measure::check(
        &exe.run(&f).unwrap(),
        &kiln_ir::interp::run(&g, &f).unwrap(),
    )
    .unwrap();
}

/// 1×1 expansion → depthwise → 1×1: a conv block whose space (band sizes,
/// schedule, threads) is too large to enumerate, so the guide ranks it.
fn expanded_block(hw: usize) -> Graph {
    kiln_ir::text::parse(&format!(
        "graph blk {{
  input x: f32[1,4,{hw},{hw}]
  const we: f32[8,4,1,1] = [{we}]
  const wd: f32[8,1,3,3] = [{wd}]
  const wp: f32[6,8,1,1] = [{wp}]
  node ex = Conv(x, we) -> e: f32[1,8,{hw},{hw}]
  node dw = Conv{{group=8, pads=[1, 1, 1, 1]}}(e, wd) -> d: f32[1,8,{hw},{hw}]
  node pw = Conv(d, wp) -> y: f32[1,6,{hw},{hw}]
  output y
}}",
        we = seq(32, 0.21),
        wd = seq(72, 0.37),
        wp = seq(48, 0.71),
    ))
    .unwrap()
}

#[test]
fn the_guide_learns_from_trials_and_ranks_large_spaces() {
    use kiln_tuner::cost::{CacheSizes, CostConfig, CostModel};
    use kiln_tuner::guide::Guide;
    let g = expanded_block(30);
    let opts = TuneOptions {
        threads: 2,
        protocol: Protocol {
            warmup: 1,
            repeats: 2,
            min_sample_us: 10.0,
        },
        trials: Some(60),
        time: Some(Duration::from_secs(120)),
        ..Default::default()
    };
    let model = CostModel::new(CostConfig {
        epochs: 5,
        update_epochs: 2,
        ..Default::default()
    })
    .unwrap();
    let mut guide = Guide::new(model, "test-cpu", vec![], CacheSizes::default(), 2);
    guide.retrain_every = 8;
    let tasks = tune(&g, &opts, |_| Vec::new(), Some(&mut guide), |_| {}).unwrap();
    let big = tasks.iter().find(|t| t.workload.space.size() > 64);
    let big = big.expect("a conv block with a large space");
    assert!(big.trials.len() > 8, "{} trials", big.trials.len());
    assert!(big.trials.iter().skip(8).any(|t| t.predicted.is_some()));
    assert!(
        guide.model().buffered() >= 8,
        "the model learned from the trials"
    );
    assert!(big.info.flops > 0.0 && big.info.bytes_read > 0.0);
}

#[test]
fn the_guide_pretrains_on_records_of_other_targets() {
    use kiln_tuner::guide::{Guide, WorkloadInfo};
    use kiln_tuner::key::WorkloadKey;
    use kiln_tuner::record::{Protocol as RecProtocol, Record, Status};
    use kiln_tuner::target::{Epoch, TargetDescriptor};
    let here = TargetDescriptor::host_cpu(2).unwrap();
    let other = match here.clone() {
        TargetDescriptor::Cpu { isa, cores, .. } => TargetDescriptor::Cpu {
            vendor: "AuthenticAMD".into(),
            model_name: "another CPU".into(),
            family: 25,
            model: 17,
            stepping: 1,
            isa,
            cores,
            threads_used: 2,
            l1d_bytes: 32 << 10,
            l2_bytes: 1 << 20,
            l3_bytes: 32 << 20,
        },
        gpu => gpu,
    };
    let space = big_space();
    let info = WorkloadInfo {
        key: 7,
        family: "conv pair".into(),
        flops: 1e6,
        bytes_read: 1e5,
        bytes_written: 1e5,
    };
    let key = WorkloadKey::new("conv pair", b"w".to_vec());
    let stored: Vec<(WorkloadInfo, Record)> = (0..40)
        .map(|i| {
            let c = space.point(i * 7);
            let a = match c["a"] {
                Knob::Int(v) => v as f64,
                _ => 0.0,
            };
            let rec = Record {
                workload: key.clone(),
                target: other.clone(),
                epoch: Epoch::CURRENT,
                config: serde_json::to_value(&c).unwrap(),
                samples_ns: vec![1000.0 + a],
                median_ns: 1000.0 + 10.0 * a,
                cv: 0.0,
                status: Status::Ok,
                protocol: RecProtocol {
                    warmup: 1,
                    repeats: 1,
                    interleaved: true,
                    threads: 2,
                },
                compile_ms: 0.0,
                seed: 0,
                timestamp_s: 0,
                predicted: None,
            };
            (info.clone(), rec)
        })
        .collect();
    let mut guide = Guide::for_target(&here, 2, 1).unwrap();
    assert_eq!(guide.pretrain(&stored).unwrap(), 40);
    // This CPU has no measurements yet: its head starts from the other's,
    // which learned that small `a` is fast.
    let small: Config = [("a".to_string(), Knob::Int(1))].into();
    let large: Config = [("a".to_string(), Knob::Int(32))].into();
    let mut full = space.default_config();
    full.extend(small);
    let mut worse = space.default_config();
    worse.extend(large);
    let s = guide.ranker(&info).score(&[full, worse]);
    assert!(s[0].is_finite() && s[1].is_finite(), "{s:?}");
    // One record per workload ranks nothing (a tune that kept the defaults
    // stores that): pretraining starts cold instead of failing the tune.
    let lone: Vec<(WorkloadInfo, Record)> = stored
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, (w, r))| {
            let w = WorkloadInfo {
                key: 100 + i as u128,
                ..w.clone()
            };
            (w, r.clone())
        })
        .collect();
    let mut cold = Guide::for_target(&here, 2, 1).unwrap();
    assert_eq!(cold.pretrain(&lone).unwrap(), 0);
}

/// A ranker that is not informed (scores, but not for enumeration).
struct Uninformed;
impl Ranker for Uninformed {
    fn score(&self, configs: &[Config]) -> Vec<f64> {
        PreferBig.score(configs)
    }
    fn informed(&self) -> bool {
        false
    }
}

/// A small space is enumerated default first, then in the informed
/// ranker's order, else in index order.
#[test]
fn small_spaces_are_enumerated_in_the_informed_rankers_order() {
    let space = Space {
        knobs: vec![KnobDef::ints("a", &[1, 2, 4, 8, 16, 32], 4)],
    };
    let a = |c: &Config| match c["a"] {
        Knob::Int(v) => v,
        _ => -1,
    };
    let order = |r: Option<&dyn Ranker>| {
        let mut s = Search::new(space.clone(), SearchOptions::default(), 0);
        s.propose(6, r).iter().map(a).collect::<Vec<_>>()
    };
    assert_eq!(order(Some(&PreferBig)), [4, 32, 16, 8, 2, 1]);
    assert_eq!(order(Some(&Uninformed)), [4, 1, 2, 8, 16, 32]);
    assert_eq!(order(None), [4, 1, 2, 8, 16, 32]);
}
