//! Measurement in a worker process, so that a candidate that crashes or
//! hangs costs the tuner one candidate and nothing else.
//!
//! The tuner writes a [`Job`] as one JSON line to the worker's stdin; the
//! worker ([`serve`], behind `kiln tune-worker`) answers with JSON lines: a
//! `Start(i)` before it compiles candidate `i`, then one `Done` with every
//! outcome. [`Worker::measure`] kills a worker that is silent for longer
//! than its limit (the candidate in hand is a `Timeout`), charges a worker
//! that dies to its candidate (`RuntimeError`), and starts a fresh one for
//! the candidates left.

use crate::measure::{Bench, Outcome, Protocol};
use crate::TunerError;
use kiln_runtime::tuning::Config;
use kiln_runtime::CompileOptions;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// One workload's candidates to measure.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    /// The workload's subgraph in Kiln's text form (constants included).
    pub graph: String,
    /// The workload's canonical form (UTF-8).
    pub canonical: String,
    pub threads: usize,
    pub protocol: Protocol,
    pub seed: u64,
    pub configs: Vec<Config>,
}

/// A worker's answer line.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Start(usize),
    Done(Vec<Outcome>),
    /// The job itself could not run (bad graph text, interpreter error).
    Failed(String),
}

/// Runs one job from `input` and writes the replies to `output`.
pub fn serve(input: impl BufRead, mut output: impl Write) -> Result<(), TunerError> {
    let io = |e: std::io::Error| TunerError::Io {
        path: "worker pipe".into(),
        source: e,
    };
    let mut line = String::new();
    let mut input = input;
    input.read_line(&mut line).map_err(io)?;
    let reply = match run_job(&line, &mut output) {
        Ok(outcomes) => Reply::Done(outcomes),
        Err(e) => Reply::Failed(e),
    };
    writeln!(
        output,
        "{}",
        serde_json::to_string(&reply).unwrap_or_default()
    )
    .map_err(io)?;
    output.flush().map_err(io)
}

fn run_job(line: &str, output: &mut impl Write) -> Result<Vec<Outcome>, String> {
    let job: Job = serde_json::from_str(line).map_err(|e| format!("bad job: {e}"))?;
    let graph = kiln_ir::text::parse(&job.graph).map_err(|e| e.to_string())?;
    let bench = Bench {
        graph: &graph,
        canonical: job.canonical.as_bytes(),
        options: CompileOptions::default().with_threads(job.threads.max(1)),
        protocol: job.protocol,
        seed: job.seed,
    };
    bench.run(&job.configs, |i| {
        let start = serde_json::to_string(&Reply::Start(i)).unwrap_or_default();
        let _ = writeln!(output, "{start}");
        let _ = output.flush();
    })
}

/// How to start a worker process.
#[derive(Clone, Debug)]
pub struct Worker {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Longest silence before the worker is killed.
    pub limit: Duration,
}

impl Worker {
    /// Measures `job`'s configs, one worker process at a time.
    pub fn measure(&self, job: &Job) -> Result<Vec<Outcome>, TunerError> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; job.configs.len()];
        let mut pending: Vec<usize> = (0..job.configs.len()).collect();
        while !pending.is_empty() {
            let rest = Job {
                configs: pending.iter().map(|&i| job.configs[i].clone()).collect(),
                ..job.clone()
            };
            match self.once(&rest)? {
                Ended::Done(done) => {
                    for (&i, o) in pending.iter().zip(done) {
                        outcomes[i] = Some(o);
                    }
                    break;
                }
                // The others are measured again by a fresh worker.
                Ended::Lost(at, why) => outcomes[pending.remove(at)] = Some(why),
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::RuntimeError("not measured".into())))
            .collect())
    }

    fn once(&self, job: &Job) -> Result<Ended, TunerError> {
        let spawn_err = |e: std::io::Error| {
            TunerError::Worker(format!("cannot start {}: {e}", self.program.display()))
        };
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(spawn_err)?;
        let line = serde_json::to_string(job).map_err(|e| TunerError::Worker(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A worker that dies at once closes the pipe: its exit tells why.
            let _ = writeln!(stdin, "{line}");
        }
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut current = 0;
        let ended = loop {
            match rx.recv_timeout(self.limit) {
                Ok(l) => match serde_json::from_str::<Reply>(&l) {
                    Ok(Reply::Start(i)) => current = i,
                    Ok(Reply::Done(o)) if o.len() == job.configs.len() => break Ended::Done(o),
                    Ok(Reply::Done(_)) => {
                        break lost(current, "worker answered for other candidates")
                    }
                    Ok(Reply::Failed(e)) => return Err(TunerError::Worker(e)),
                    Err(_) => {}
                },
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    break Ended::Lost(current, Outcome::Timeout);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                    break lost(current, &format!("worker died ({status})"));
                }
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        Ok(ended)
    }
}

enum Ended {
    Done(Vec<Outcome>),
    /// The worker stopped at candidate `.0`.
    Lost(usize, Outcome),
}

fn lost(at: usize, why: &str) -> Ended {
    Ended::Lost(at, Outcome::RuntimeError(why.to_string()))
}
