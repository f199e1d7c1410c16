//! Engine selection shared by `run`, `bench` and `compile`: the compiled CPU
//! path by default, the reference interpreter with `--interpret`. The
//! compiled path rewrites first and keeps the fastest measured candidate
//! ([`super::select`]); `--no-rewrite` compiles the graph as imported.
//! Tuned knob settings come from the tuning database unless `--no-db`.

use super::select::{MeasureOptions, Selection};
use anyhow::Result;
use kiln_ir::{Graph, Tensor};
use kiln_runtime::{CompileOptions, Executable};
use std::collections::HashMap;
use std::time::Instant;

/// Engine flags.
#[derive(clap::Args, Debug, Clone)]
pub struct EngineArgs {
    /// Threads for intra-op parallelism (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Run on the reference interpreter instead of compiling.
    #[arg(long)]
    interpret: bool,
    /// Compile without fusion (one kernel per node).
    #[arg(long)]
    no_fuse: bool,
    /// Compile without generated code: ops without a hand-written kernel use the interpreter.
    #[arg(long)]
    no_jit: bool,
    /// Compile the graph as imported, without the rewrite stage (equality
    /// saturation, top-k extraction and measured selection; on by default).
    #[arg(long)]
    no_rewrite: bool,
    /// Accepted for old scripts: rewriting is on by default.
    #[arg(long, hide = true)]
    rewrite: bool,
    /// Rewritten candidates measured against the original.
    #[arg(long, default_value_t = super::select::DEFAULT_CANDIDATES)]
    candidates: usize,
    #[command(flatten)]
    pub db: super::tuning_db::DbArgs,
}

impl EngineArgs {
    /// The compile options these flags ask for.
    pub fn options(&self) -> Result<CompileOptions> {
        let mut o = CompileOptions::default();
        if let Some(t) = self.threads {
            anyhow::ensure!(t >= 1, "--threads must be at least 1");
            o.threads = t;
        }
        o.fuse_epilogues = !self.no_fuse;
        o.fuse_elementwise = !self.no_fuse;
        o.jit = !self.no_jit;
        Ok(o)
    }

    /// Compiles `g`: as imported with `--no-rewrite` (or `--candidates 0`),
    /// else the fastest of the original and the rewrite stage's candidates,
    /// with what was measured.
    pub fn prepare(&self, g: &Graph) -> Result<(Executable, Option<Selection>)> {
        let mut opts = self.options()?;
        if let Some(db) = self.db.open_read()? {
            let tuned = super::tuning_db::lookup(&db, g, &opts)?;
            opts = opts.with_tuned(tuned);
        }
        if self.no_rewrite || self.candidates == 0 {
            return Ok((kiln_runtime::compile(g, &opts)?, None));
        }
        let m = MeasureOptions::default();
        let (exe, sel) = super::select::select(g, &opts, self.candidates, &m)?;
        Ok((exe, Some(sel)))
    }
}

/// A model ready to run.
pub enum Engine<'g> {
    Interpreter(&'g Graph),
    Compiled(Box<Executable>),
}

impl<'g> Engine<'g> {
    /// Compiles `g` (unless `--interpret`); returns the engine and compile time in ms.
    pub fn new(g: &'g Graph, a: &EngineArgs) -> Result<(Engine<'g>, f64)> {
        if a.interpret {
            return Ok((Engine::Interpreter(g), 0.0));
        }
        let t = Instant::now();
        let (exe, _) = a.prepare(g)?;
        Ok((
            Engine::Compiled(Box::new(exe)),
            t.elapsed().as_secs_f64() * 1e3,
        ))
    }

    pub fn name(&self) -> &'static str {
        match self {
            Engine::Interpreter(_) => "interpreter",
            Engine::Compiled(_) => "compiled",
        }
    }

    pub fn run(&self, inputs: &HashMap<String, Tensor>) -> Result<Vec<Tensor>> {
        Ok(match self {
            Engine::Interpreter(g) => crate::run(g, inputs)?,
            Engine::Compiled(e) => e.run(inputs)?,
        })
    }
}
