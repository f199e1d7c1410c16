//! Engine selection shared by `run`, `bench` and `compile`: the compiled CPU
//! path by default, the reference interpreter with `--interpret`.

use anyhow::Result;
use kiln_ir::{Graph, Tensor};
use kiln_runtime::{CompileOptions, Executable};
use std::borrow::Cow;
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
    /// Run the rewrite stage (equality saturation, `kiln explain`) before compiling.
    #[arg(long)]
    rewrite: bool,
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

    /// The graph to compile: `g`, or its rewrite with `--rewrite`.
    pub fn prepare<'g>(&self, g: &'g Graph) -> Result<Cow<'g, Graph>> {
        if !self.rewrite {
            return Ok(Cow::Borrowed(g));
        }
        let limits = kiln_rewrite::Limits::default();
        let (rewritten, _) = kiln_rewrite::optimize(g, &limits, &Default::default())?;
        Ok(Cow::Owned(rewritten))
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
        let exe = kiln_runtime::compile(&*a.prepare(g)?, &a.options()?)?;
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
