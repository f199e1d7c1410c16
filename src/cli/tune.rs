//! `kiln tune MODEL [--budget 10m] [--trials N] [--threads N] [--json]`:
//! measures each workload's knob settings (in worker processes: a candidate
//! that crashes or hangs is recorded and skipped), keeps those that beat the
//! defaults, then checks the whole model tuned against untuned, interleaved,
//! and keeps the defaults if tuning did not pay.
//!
//! `kiln tune-worker` (hidden) is the worker: one job on stdin, replies on stdout.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use kiln_ir::{Graph, Tensor};
use kiln_models::onnx::ImportOptions;
use kiln_runtime::{compile, CompileOptions, Executable};
use kiln_tuner::measure::{median, Outcome, Protocol};
use kiln_tuner::tune::{tune, tuned_of, Event, Task, TuneOptions};
use kiln_tuner::worker::Worker;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The ONNX model file.
    model: PathBuf,
    /// An input as NAME=FILE.npy (repeatable; binds shape-determining inputs).
    #[arg(short, long = "input", value_name = "NAME=FILE.npy")]
    inputs: Vec<String>,
    /// Time budget: `90s`, `10m`, `1h` (default 10m).
    #[arg(long, default_value = "10m")]
    budget: String,
    /// Stop after this many measured candidates.
    #[arg(long)]
    trials: Option<usize>,
    /// Threads the tuned model will run with (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Search seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seconds a worker may stay silent before its candidate counts as hung.
    #[arg(long, default_value_t = 20)]
    worker_timeout: u64,
    /// Measure in this process instead of worker processes (faster, not crash-safe).
    #[arg(long)]
    in_process: bool,
    /// Write the tuning curve (estimated model latency against time and
    /// trials) to this .png or .svg file.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: super::tuning_db::DbArgs,
}

#[derive(Serialize)]
struct WorkloadReport {
    family: String,
    uses: usize,
    trials: usize,
    failed: usize,
    default_us: Option<f64>,
    best_us: Option<f64>,
    config: Option<kiln_runtime::tuning::Config>,
}

#[derive(Serialize)]
struct Report {
    model: String,
    threads: usize,
    seconds: f64,
    trials: usize,
    workloads: Vec<WorkloadReport>,
    untuned_ms: f64,
    tuned_ms: f64,
    /// Tuned / untuned model latency (medians, interleaved).
    ratio: f64,
    /// Whether the tuned settings were kept (not kept when the model got slower).
    kept: bool,
    /// Records written to the tuning database.
    stored: usize,
    database: Option<String>,
    /// The tuning curve: estimated model latency after each trial.
    curve: Vec<kiln_tuner::tune::CurvePoint>,
    /// Trials until the estimated latency first came within 5% of its final
    /// gain (none when nothing was gained).
    trials_to_95: Option<usize>,
}

/// Parses `90s`, `10m`, `1h` or plain seconds.
pub fn parse_budget(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_alphabetic()).unwrap_or(s.len()));
    let v: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("bad --budget `{s}`"))?;
    let secs = match unit {
        "" | "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => bail!("bad --budget `{s}`: use a number with s, m or h"),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        bail!("--budget must be positive");
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn run(a: Args) -> Result<()> {
    if let Some(p) = &a.plot {
        super::plot::check_path(p)?;
    }
    let given = super::run::parse_inputs(&a.inputs, "--input")?;
    let opts = ImportOptions {
        input_shapes: given
            .iter()
            .map(|(n, t)| (n.clone(), t.shape().to_vec()))
            .collect(),
        input_values: given.clone(),
        ..Default::default()
    };
    let m = kiln_models::onnx::load(&a.model, &opts)?;
    let given = super::run::bind_inputs(&m.graph, given);
    let (feeds, _) = super::bench::feeds(&m.graph, given)?;
    let threads = match a.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(t) => t,
        None => CompileOptions::default().threads,
    };
    let topts = TuneOptions {
        threads,
        protocol: Protocol::default(),
        trials: a.trials,
        time: Some(parse_budget(&a.budget)?),
        seed: a.seed,
        worker: (!a.in_process)
            .then(|| worker(a.worker_timeout))
            .transpose()?,
        ..Default::default()
    };
    let t0 = Instant::now();
    let db = a.db.open_write()?;
    let seeds = |w: &kiln_runtime::tuning::Workload| near_configs(db.as_ref(), w);
    let mut guide = guide(&m.graph, db.as_ref(), threads, a.seed)?;
    let bar = progress(a.json);
    let tasks = tune(&m.graph, &topts, seeds, Some(&mut guide), |e| show(&bar, e))?;
    bar.finish_and_clear();
    let mut report = finish(&m.graph, &feeds, &tasks, threads, &a, t0)?;
    if let Some(db) = &db {
        let defaults_only = !report.kept;
        report.stored =
            super::tuning_db::store(db, &tasks, threads, &topts.protocol, a.seed, defaults_only)?;
        report.database = Some(db.path().display().to_string());
    }
    if let Some(p) = &a.plot {
        let title = format!("kiln tune {}", a.model.display());
        super::plot::curve(p, &kiln_tuner::tune::curve(&tasks), &title)?;
    }
    print(&report, a.json)
}

/// Configs of near records (same workload family, any target or epoch) to try early.
fn near_configs(
    db: Option<&kiln_tuner::db::TuningDb>,
    w: &kiln_runtime::tuning::Workload,
) -> Vec<kiln_runtime::tuning::Config> {
    let Some(db) = db else { return Vec::new() };
    let recs = db.near(&super::tuning_db::key_of(w)).unwrap_or_default();
    recs.into_iter()
        .take(8)
        .filter_map(|r| serde_json::from_value(r.config).ok())
        .collect()
}

/// The cost model for this CPU, pretrained on the database's records of
/// this model's workloads from every target measured so far.
fn guide(
    g: &Graph,
    db: Option<&kiln_tuner::db::TuningDb>,
    threads: usize,
    seed: u64,
) -> Result<kiln_tuner::guide::Guide> {
    let target = kiln_tuner::target::TargetDescriptor::host_cpu(threads)?;
    let mut guide = kiln_tuner::guide::Guide::for_target(&target, threads, seed)?;
    let Some(db) = db else { return Ok(guide) };
    let opts = CompileOptions::default().with_threads(threads);
    let mut stored = Vec::new();
    for w in kiln_runtime::tuning::workloads(g, &opts)? {
        let key = super::tuning_db::key_of(&w);
        let sub = kiln_runtime::tuning::subgraph(g, &w.nodes)?;
        let info = kiln_tuner::guide::WorkloadInfo::of(&sub, &w.family, &w.canonical);
        for r in db
            .near(&key)?
            .into_iter()
            .filter(|r| r.workload.same_workload(&key))
        {
            stored.push((info.clone(), r));
        }
    }
    let n = guide.pretrain(&stored)?;
    tracing::info!(
        samples = n,
        "cost model pretrained from the tuning database"
    );
    Ok(guide)
}

fn worker(timeout: u64) -> Result<Worker> {
    Ok(Worker {
        program: std::env::current_exe().context("cannot find the kiln executable")?,
        args: vec!["tune-worker".into()],
        limit: Duration::from_secs(timeout.max(1)),
    })
}

fn progress(hidden: bool) -> ProgressBar {
    let bar = if hidden {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn show(bar: &ProgressBar, e: Event<'_>) {
    let Event::Measured { task, index, .. } = e;
    let gain = match (task.default_ns, &task.best) {
        (Some(d), Some((_, b))) => format!("{:.2}x", d / b),
        _ => "1.00x".into(),
    };
    bar.set_message(format!(
        "task {index} {}: {} trials, best {:.1} us ({gain} over default)",
        task.workload.family,
        task.trials.len(),
        task.best
            .as_ref()
            .map(|b| b.1)
            .or(task.default_ns)
            .unwrap_or(0.0)
            / 1e3,
    ));
}

/// Times the model untuned and tuned, interleaved; keeps the tuned settings
/// only when they do not make the model slower.
fn finish(
    g: &Graph,
    feeds: &HashMap<String, Tensor>,
    tasks: &[Task],
    threads: usize,
    a: &Args,
    t0: Instant,
) -> Result<Report> {
    let base = CompileOptions::default().with_threads(threads);
    let untuned = compile(g, &base)?;
    let tuned = compile(g, &base.clone().with_tuned(tuned_of(tasks)))?;
    let (u, t) = interleaved(&untuned, &tuned, feeds)?;
    let workloads = tasks.iter().map(workload_report).collect();
    let curve = kiln_tuner::tune::curve(tasks);
    Ok(Report {
        model: a.model.display().to_string(),
        threads,
        seconds: t0.elapsed().as_secs_f64(),
        trials: tasks.iter().map(|t| t.trials.len()).sum(),
        workloads,
        untuned_ms: u,
        tuned_ms: t,
        ratio: t / u,
        kept: t <= u * 1.01 && !tuned_of(tasks).is_empty(),
        stored: 0,
        database: None,
        trials_to_95: kiln_tuner::tune::trials_to(&curve, 0.95),
        curve,
    })
}

/// Median ms of each executable over alternating samples (3 runs each, the
/// other executable's pool asleep).
fn interleaved(
    a: &Executable,
    b: &Executable,
    feeds: &HashMap<String, Tensor>,
) -> Result<(f64, f64)> {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        a.run(feeds)?;
        b.run(feeds)?;
    }
    let spin = CompileOptions::default().spin_us;
    for _ in 0..15 {
        for (exe, out) in [(a, &mut ta), (b, &mut tb)] {
            // One pool hot and the other asleep, as when the model runs alone.
            let ns = kiln_tuner::measure::hot_sample(exe, feeds, 3, spin)?;
            out.push(ns * 1e-6);
        }
    }
    Ok((median(&ta), median(&tb)))
}

fn workload_report(t: &Task) -> WorkloadReport {
    WorkloadReport {
        family: t.workload.family.clone(),
        uses: t.workload.uses,
        trials: t.trials.len(),
        failed: t
            .trials
            .iter()
            .filter(|x| !matches!(x.outcome, Outcome::Ok { .. }))
            .count(),
        default_us: t.default_ns.map(|d| d / 1e3),
        best_us: t.best.as_ref().map(|b| b.1 / 1e3),
        config: t.best.as_ref().map(|b| b.0.clone()),
    }
}

fn print(r: &Report, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!(
        "{}: tuned {} workloads with {} trials in {:.1} s ({} threads)",
        r.model,
        r.workloads.len(),
        r.trials,
        r.seconds,
        r.threads
    );
    for w in r.workloads.iter().filter(|w| w.config.is_some()) {
        let cfg: Vec<String> = w
            .config
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "  {:<16} x{:<3} {:8.1} -> {:8.1} us  {}",
            w.family,
            w.uses,
            w.default_us.unwrap_or(0.0),
            w.best_us.unwrap_or(0.0),
            cfg.join(" ")
        );
    }
    println!(
        "model: untuned {:.3} ms, tuned {:.3} ms ({:.3}x){}",
        r.untuned_ms,
        r.tuned_ms,
        r.ratio,
        if r.kept {
            ""
        } else {
            "; tuned settings not kept (not faster)"
        }
    );
    Ok(())
}

/// `kiln tune-worker`: one measurement job from stdin.
pub fn worker_main() -> Result<()> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    kiln_tuner::worker::serve(stdin.lock(), stdout.lock())?;
    Ok(())
}
