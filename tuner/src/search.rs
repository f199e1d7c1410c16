//! Choosing which configs of a workload to measure next.
//!
//! Small spaces are enumerated: the default, the seeds, then every other
//! point, ordered by the [`Ranker`] when it is informed (a cost model
//! pretrained on stored records). Larger ones are searched by
//! an evolutionary proposer: a population from the best measured configs
//! (and seeds from near database records), children by mutation (one knob
//! changed) and uniform crossover, 5% purely random picks; a [`Ranker`] (the
//! learned cost model) orders the children and the best unmeasured ones form
//! the next batch. Everything is deterministic for a seed (ChaCha8).

use kiln_runtime::tuning::{Config, Space};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Scores configs of one workload: higher means predicted faster.
pub trait Ranker {
    fn score(&self, configs: &[Config]) -> Vec<f64>;
    /// Whether the scores also order a small space's enumeration (they
    /// always order the evolutionary search's children).
    fn informed(&self) -> bool {
        true
    }
}

/// Search parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchOptions {
    /// Spaces up to this size are enumerated.
    pub enumerate_max: usize,
    /// Children generated per batch (before ranking).
    pub population: usize,
    /// Share of purely random picks.
    pub random_share: f64,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            enumerate_max: 64,
            population: 64,
            random_share: 0.05,
        }
    }
}

/// The search state of one workload.
pub struct Search {
    space: Space,
    opts: SearchOptions,
    rng: ChaCha8Rng,
    /// Measured configs with their time (`None`: failed).
    measured: Vec<(Config, Option<f64>)>,
    /// Configs to try early (from near records).
    seeds: Vec<Config>,
}

impl Search {
    pub fn new(space: Space, opts: SearchOptions, seed: u64) -> Search {
        Search {
            space,
            opts,
            rng: ChaCha8Rng::seed_from_u64(seed),
            measured: Vec::new(),
            seeds: Vec::new(),
        }
    }

    /// Configs to try early (valid ones only).
    pub fn with_seeds(mut self, seeds: Vec<Config>) -> Search {
        self.seeds = seeds
            .into_iter()
            .filter(|c| self.space.validate(c).is_ok())
            .collect();
        self
    }

    pub fn space(&self) -> &Space {
        &self.space
    }

    /// Records a measurement.
    pub fn observe(&mut self, config: Config, time_ns: Option<f64>) {
        self.measured.push((config, time_ns));
    }

    fn seen(&self, c: &Config) -> bool {
        self.measured.iter().any(|(m, _)| m == c)
    }

    /// Whether every point has been measured.
    pub fn exhausted(&self) -> bool {
        self.space.size() <= self.measured.len()
    }

    /// The fastest measured config and its time.
    pub fn best(&self) -> Option<(&Config, f64)> {
        self.measured
            .iter()
            .filter_map(|(c, t)| t.map(|t| (c, t)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Up to `n` unmeasured configs to measure next (the default first).
    pub fn propose(&mut self, n: usize, ranker: Option<&dyn Ranker>) -> Vec<Config> {
        let mut out: Vec<Config> = Vec::new();
        let take = |c: Config, out: &mut Vec<Config>, me: &Search| {
            if out.len() < n && !me.seen(&c) && !out.contains(&c) {
                out.push(c);
            }
        };
        take(self.space.default_config(), &mut out, self);
        for s in self.seeds.clone() {
            take(s, &mut out, self);
        }
        if self.space.size() <= self.opts.enumerate_max {
            // Every point, best predicted first when a ranker is given.
            let mut points: Vec<Config> = (0..self.space.size())
                .map(|i| self.space.point(i))
                .filter(|c| !self.seen(c) && !out.contains(c))
                .collect();
            if let Some(r) = ranker.filter(|r| r.informed()) {
                points = ranked(points, r);
            }
            for c in points {
                take(c, &mut out, self);
            }
            return out;
        }
        let mut children = self.children();
        if let Some(r) = ranker {
            children = ranked(children, r);
        }
        for c in children {
            take(c, &mut out, self);
        }
        out
    }

    /// Mutations and crossovers of the best measured configs, plus random points.
    fn children(&mut self) -> Vec<Config> {
        let mut parents: Vec<(Config, f64)> = self
            .measured
            .iter()
            .filter_map(|(c, t)| t.map(|t| (c.clone(), t)))
            .collect();
        parents.sort_by(|a, b| a.1.total_cmp(&b.1));
        parents.truncate(8);
        let parents: Vec<Config> = parents.into_iter().map(|p| p.0).collect();
        let mut out = Vec::with_capacity(self.opts.population);
        for _ in 0..self.opts.population {
            let roll: f64 = self.rng.random();
            let child = match parents.as_slice() {
                [] => self.random_point(),
                _ if roll < self.opts.random_share => self.random_point(),
                ps if roll < 0.6 => {
                    let p = ps.choose(&mut self.rng).expect("parents").clone();
                    self.mutate(p)
                }
                ps => {
                    let a = ps.choose(&mut self.rng).expect("parents").clone();
                    let b = ps.choose(&mut self.rng).expect("parents").clone();
                    self.crossover(&a, &b)
                }
            };
            out.push(child);
        }
        out
    }

    fn random_point(&mut self) -> Config {
        let i = self.rng.random_range(0..self.space.size().max(1));
        self.space.point(i)
    }

    fn mutate(&mut self, mut c: Config) -> Config {
        if let Some(k) = self.space.knobs.choose(&mut self.rng) {
            if let Some(v) = k.choices.choose(&mut self.rng) {
                c.insert(k.name.clone(), v.clone());
            }
        }
        c
    }

    fn crossover(&mut self, a: &Config, b: &Config) -> Config {
        a.iter()
            .map(|(k, v)| {
                let pick = if self.rng.random_bool(0.5) {
                    v
                } else {
                    b.get(k).unwrap_or(v)
                };
                (k.clone(), pick.clone())
            })
            .collect()
    }
}

/// `configs` by the ranker's score, best first (stable among equals).
fn ranked(configs: Vec<Config>, r: &dyn Ranker) -> Vec<Config> {
    let scores = r.score(&configs);
    let mut order: Vec<usize> = (0..configs.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order.into_iter().map(|i| configs[i].clone()).collect()
}
