//! Tuning a model: its workloads ([`kiln_runtime::tuning::workloads`]),
//! a search per workload, and a task scheduler that spends the budget where
//! the latency is.
//!
//! Round 0 measures the default (and, for small spaces, every point) of each
//! workload. Later rounds go to the workload with the largest
//! `uses × default time × (gain so far + 5%)` that has points left (the
//! spirit of Ansor's gradient scheduler: latency share times the recent
//! rate of improvement). Every batch re-measures the workload's incumbent
//! and default beside the new candidates, so comparisons are made within
//! one interleaved batch. A config is kept only when it beats the default by
//! `margin`.

use crate::guide::{Guide, WorkloadInfo};
use crate::measure::{Bench, Outcome, Protocol};
use crate::search::{Ranker, Search, SearchOptions};
use crate::worker::{Job, Worker};
use crate::TunerError;
use kiln_ir::Graph;
use kiln_runtime::tuning::{self, Config, Tuned, Workload};
use kiln_runtime::CompileOptions;
use std::time::{Duration, Instant};

/// What to tune with.
#[derive(Clone, Debug)]
pub struct TuneOptions {
    pub threads: usize,
    pub protocol: Protocol,
    /// Stop after this many measured candidates (all workloads together).
    pub trials: Option<usize>,
    /// Stop after this much time.
    pub time: Option<Duration>,
    /// New candidates per batch.
    pub batch: usize,
    pub seed: u64,
    /// Measure in worker processes (`None`: in this process, for tests).
    pub worker: Option<Worker>,
    pub search: SearchOptions,
    /// A config replaces the default only if faster by this share.
    pub margin: f64,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            protocol: Protocol::default(),
            trials: None,
            time: Some(Duration::from_secs(600)),
            batch: 8,
            seed: 0,
            worker: None,
            search: SearchOptions::default(),
            margin: 0.03,
        }
    }
}

/// One measured candidate.
#[derive(Clone, Debug)]
pub struct Trial {
    pub config: Config,
    pub outcome: Outcome,
    /// The cost model's score when it proposed the config.
    pub predicted: Option<f64>,
    /// Seconds since tuning started.
    pub at_s: f64,
}

/// One workload's tuning.
pub struct Task {
    pub workload: Workload,
    pub search: Search,
    pub trials: Vec<Trial>,
    /// The default config's time (from round 0).
    pub default_ns: Option<f64>,
    /// The config kept (better than the default by the margin) and its time.
    pub best: Option<(Config, f64)>,
    /// Flops and bytes, for the cost model.
    pub info: WorkloadInfo,
    graph_text: String,
    seed: u64,
}

impl Task {
    /// Expected time of this workload's steps in one model run.
    pub fn latency_ns(&self) -> f64 {
        let t = self.best.as_ref().map(|b| b.1).or(self.default_ns);
        t.unwrap_or(0.0) * self.workload.uses as f64
    }
}

/// What happened, for progress display.
pub enum Event<'a> {
    Measured {
        task: &'a Task,
        index: usize,
        new: &'a [Trial],
    },
}

/// Tunes `g`'s workloads. `seeds` gives configs to try early per workload
/// (near records of a database); `guide` (the cost model) ranks proposals
/// and learns from every batch; `on_event` sees every measured batch.
pub fn tune(
    g: &Graph,
    opts: &TuneOptions,
    seeds: impl Fn(&Workload) -> Vec<Config>,
    mut guide: Option<&mut Guide>,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Vec<Task>, TunerError> {
    let t0 = Instant::now();
    let copts = CompileOptions::default().with_threads(opts.threads);
    let work = tuning::workloads(g, &copts).map_err(|e| TunerError::Model(e.to_string()))?;
    let mut tasks = Vec::with_capacity(work.len());
    for (i, w) in work.into_iter().enumerate() {
        let sub = tuning::subgraph(g, &w.nodes).map_err(|e| TunerError::Model(e.to_string()))?;
        let seed = opts.seed ^ xxhash_rust::xxh3::xxh3_64(&w.canonical) ^ i as u64;
        let search = Search::new(w.space.clone(), opts.search, seed).with_seeds(seeds(&w));
        let info = WorkloadInfo::of(&sub, &w.family, &w.canonical);
        tasks.push(Task {
            workload: w,
            search,
            trials: Vec::new(),
            default_ns: None,
            best: None,
            info,
            graph_text: kiln_ir::text::print(&sub),
            seed,
        });
    }
    let mut spent = 0usize;
    let over = |spent: usize| {
        opts.trials.is_some_and(|n| spent >= n) || opts.time.is_some_and(|d| t0.elapsed() >= d)
    };
    for (i, task) in tasks.iter_mut().enumerate() {
        if over(spent) {
            break;
        }
        spent += step(task, opts, guide.as_deref_mut(), t0)?;
        on_event(Event::Measured {
            task,
            index: i,
            new: last(task),
        });
    }
    while !over(spent) {
        let Some(i) = next_task(&tasks) else { break };
        let n = step(&mut tasks[i], opts, guide.as_deref_mut(), t0)?;
        if n == 0 {
            break;
        }
        spent += n;
        on_event(Event::Measured {
            task: &tasks[i],
            index: i,
            new: last(&tasks[i]),
        });
    }
    Ok(tasks)
}

fn last(t: &Task) -> &[Trial] {
    &t.trials[t.trials.len().saturating_sub(1)..]
}

/// The workload to spend the next batch on.
fn next_task(tasks: &[Task]) -> Option<usize> {
    let total: f64 = tasks.iter().map(Task::latency_ns).sum::<f64>().max(1.0);
    tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.search.exhausted() && t.default_ns.is_some())
        .map(|(i, t)| {
            let d = t.default_ns.unwrap_or(0.0);
            let gain = t.best.as_ref().map_or(0.0, |b| 1.0 - b.1 / d.max(1.0));
            (i, t.latency_ns() / total * (gain + 0.05))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// Measures one batch of `task`: new candidates plus the incumbent.
fn step(
    task: &mut Task,
    opts: &TuneOptions,
    guide: Option<&mut Guide>,
    t0: Instant,
) -> Result<usize, TunerError> {
    let ranker = guide.as_deref().map(|g| g.ranker(&task.info));
    let ranker = ranker.as_ref().map(|r| r as &dyn Ranker);
    let new = task.search.propose(opts.batch.max(1), ranker);
    if new.is_empty() {
        return Ok(0);
    }
    // The incumbent and the default are measured again beside the new
    // candidates, so the kept config is compared within one batch.
    let default = task.search.space().default_config();
    let mut configs = new.clone();
    for c in task
        .best
        .iter()
        .map(|b| b.0.clone())
        .chain([default.clone()])
    {
        if !configs.contains(&c) {
            configs.push(c);
        }
    }
    let predicted = ranker.map(|r| r.score(&new));
    let outcomes = measure(task, opts, &configs)?;
    for (k, (c, o)) in configs.iter().zip(&outcomes).enumerate() {
        let t = o.median_ns();
        if k < new.len() {
            task.search.observe(c.clone(), t);
            task.trials.push(Trial {
                config: c.clone(),
                outcome: o.clone(),
                predicted: predicted.as_ref().map(|p| p[k]),
                at_s: t0.elapsed().as_secs_f64(),
            });
        }
        if *c == default {
            task.default_ns = t.or(task.default_ns);
        }
    }
    update_best(task, &configs, &outcomes, opts.margin);
    if let Some(g) = guide {
        g.observe(&task.info, &task.trials[task.trials.len() - new.len()..]);
    }
    Ok(new.len())
}

/// Keeps the batch's fastest config if it beats the default measured in
/// the same batch by `margin`; else the default stays (no kept config).
fn update_best(task: &mut Task, configs: &[Config], outcomes: &[Outcome], margin: f64) {
    let default = task.search.space().default_config();
    let time = |c: &Config| {
        let k = configs.iter().position(|x| x == c)?;
        outcomes[k].median_ns()
    };
    let Some(d) = time(&default) else { return };
    let fastest = configs
        .iter()
        .zip(outcomes)
        .filter_map(|(c, o)| o.median_ns().map(|t| (c, t)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    task.best = match fastest {
        Some((c, t)) if *c != default && t < d * (1.0 - margin) => Some((c.clone(), t)),
        _ => None,
    };
}

fn measure(
    task: &Task,
    opts: &TuneOptions,
    configs: &[Config],
) -> Result<Vec<Outcome>, TunerError> {
    match &opts.worker {
        Some(w) => w.measure(&Job {
            graph: task.graph_text.clone(),
            canonical: task.workload.canonical_text(),
            threads: opts.threads,
            protocol: opts.protocol,
            seed: task.seed,
            configs: configs.to_vec(),
        }),
        None => {
            let g = kiln_ir::text::parse(&task.graph_text)
                .map_err(|e| TunerError::Model(e.to_string()))?;
            let bench = Bench {
                graph: &g,
                canonical: &task.workload.canonical,
                options: CompileOptions::default().with_threads(opts.threads),
                protocol: opts.protocol,
                seed: task.seed,
            };
            bench.run(configs, |_| {}).map_err(TunerError::Worker)
        }
    }
}

/// The kept configs of `tasks` as compile options' tuned table.
pub fn tuned_of(tasks: &[Task]) -> Tuned {
    let mut t = Tuned::default();
    for task in tasks {
        if let Some((c, _)) = &task.best {
            t.insert(task.workload.canonical.clone(), c.clone());
        }
    }
    t
}

/// One point of a tuning curve.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct CurvePoint {
    pub at_s: f64,
    pub trials: usize,
    /// Sum over workloads of uses × fastest time measured so far (the
    /// default's until a candidate beats it).
    pub latency_ns: f64,
}

/// Trials until `curve` first reaches `share` of its whole gain (from its
/// first point's latency to its best); `None` without a gain.
pub fn trials_to(curve: &[CurvePoint], share: f64) -> Option<usize> {
    let start = curve.first()?.latency_ns;
    let best = curve.iter().map(|p| p.latency_ns).fold(start, f64::min);
    if best >= start {
        return None;
    }
    let goal = start - share * (start - best);
    curve
        .iter()
        .find(|p| p.latency_ns <= goal)
        .map(|p| p.trials)
}

/// The estimated model latency after each measured trial, in time order.
pub fn curve(tasks: &[Task]) -> Vec<CurvePoint> {
    let mut events: Vec<(f64, usize, Option<f64>)> = tasks
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            t.trials
                .iter()
                .map(move |x| (x.at_s, i, x.outcome.median_ns()))
        })
        .collect();
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Every workload starts at its default's time (measured in round 0).
    let mut best: Vec<Option<f64>> = tasks.iter().map(|t| t.default_ns).collect();
    let mut out = Vec::with_capacity(events.len());
    for (n, (at_s, i, t)) in events.into_iter().enumerate() {
        if let Some(t) = t {
            best[i] = Some(best[i].map_or(t, |b: f64| b.min(t)));
        }
        let latency_ns = tasks
            .iter()
            .zip(&best)
            .map(|(task, b)| b.unwrap_or(0.0) * task.workload.uses as f64)
            .sum();
        out.push(CurvePoint {
            at_s,
            trials: n + 1,
            latency_ns,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{trials_to, CurvePoint};

    fn curve(lat: &[f64]) -> Vec<CurvePoint> {
        lat.iter()
            .enumerate()
            .map(|(i, &l)| CurvePoint {
                at_s: i as f64,
                trials: i + 1,
                latency_ns: l,
            })
            .collect()
    }

    #[test]
    fn trials_to_counts_until_the_share_of_the_gain() {
        // Gain 100 -> 50: 95% of it is reached at 52.5 or below.
        let c = curve(&[100.0, 90.0, 60.0, 53.0, 52.0, 50.0, 50.0]);
        assert_eq!(trials_to(&c, 0.95), Some(5));
        assert_eq!(trials_to(&c, 0.5), Some(3));
        assert_eq!(trials_to(&c, 1.0), Some(6));
        assert_eq!(trials_to(&curve(&[10.0, 10.0, 11.0]), 0.95), None);
        assert_eq!(trials_to(&[], 0.95), None);
    }
}
