//! The compiled plan and its execution.
//!
//! An [`Executable`] owns its kernels, constants and thread pool. `run` is
//! `&self`: concurrent calls from several threads are safe, each run takes
//! its own frame (arena and boxed slots) from a pool of frames. Steps run on
//! the calling thread; kernels split their work over the executable's
//! [`SpinPool`] (one job at a time; a concurrent run that finds it busy runs
//! its kernels on its own thread).

use crate::kernel::{Kernel, StepIo};
use crate::report::CompileReport;
use crate::storage::{Arena, Env, Frame, Slot};
use crate::{Result, RuntimeError};
use kiln_codegen::cpu::SpinPool;
use kiln_ir::{Tensor, TensorType};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One kernel call with its resolved value slots.
pub(crate) struct Step {
    pub kernel: Box<dyn Kernel>,
    pub inputs: Vec<Slot>,
    pub outputs: Vec<Slot>,
    pub scratch_offset: usize,
    /// Threads the kernel may use (its `threads` knob; at most the pool's).
    pub threads: usize,
    /// The node the step is reported under (for errors).
    pub node: String,
}

/// A compiled model, ready to run.
pub struct Executable {
    pub(crate) steps: Vec<Step>,
    pub(crate) consts: Vec<Arc<Tensor>>,
    pub(crate) inputs: Vec<(String, TensorType)>,
    pub(crate) outputs: Vec<(String, Slot)>,
    pub(crate) arena_bytes: usize,
    pub(crate) boxed_slots: usize,
    pub(crate) pool: Option<Arc<SpinPool>>,
    pub(crate) frames: Mutex<Vec<Frame>>,
    pub(crate) report: CompileReport,
}

impl Executable {
    /// The compile report (kernels, fallbacks, memory, time).
    pub fn report(&self) -> &CompileReport {
        &self.report
    }

    /// Input names and types, in graph order.
    pub fn inputs(&self) -> &[(String, TensorType)] {
        &self.inputs
    }

    /// Output names, in graph order.
    pub fn output_names(&self) -> Vec<&str> {
        self.outputs.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Runs the plan on named inputs; outputs follow the graph's output order.
    pub fn run(&self, inputs: &HashMap<String, Tensor>) -> Result<Vec<Tensor>> {
        self.run_timed(inputs, None)
    }

    /// Runs `iters` times and returns each step's median time in microseconds,
    /// with the node it is reported under and its kernel, in plan order.
    pub fn profile(
        &self,
        inputs: &HashMap<String, Tensor>,
        iters: usize,
    ) -> Result<Vec<(String, String, f64)>> {
        let mut samples = vec![Vec::with_capacity(iters); self.steps.len()];
        for _ in 0..iters.max(1) {
            let mut times = vec![0.0; self.steps.len()];
            self.run_timed(inputs, Some(&mut times))?;
            samples.iter_mut().zip(times).for_each(|(s, t)| s.push(t));
        }
        Ok(self
            .steps
            .iter()
            .zip(samples)
            .map(|(step, mut s)| {
                s.sort_by(f64::total_cmp);
                (step.node.clone(), step.kernel.describe(), s[s.len() / 2])
            })
            .collect())
    }

    fn run_timed(
        &self,
        inputs: &HashMap<String, Tensor>,
        times: Option<&mut Vec<f64>>,
    ) -> Result<Vec<Tensor>> {
        let ordered = self.check_inputs(inputs)?;
        let mut frame = self
            .frames
            .lock()
            .ok()
            .and_then(|mut f| f.pop())
            .unwrap_or_else(|| Frame {
                arena: Arena::new(self.arena_bytes),
                boxed: vec![None; self.boxed_slots],
            });
        let result = match &self.pool {
            Some(pool) => pool.install(|| self.execute(&ordered, &mut frame, times)),
            None => self.execute(&ordered, &mut frame, times),
        };
        frame.boxed.iter_mut().for_each(|b| *b = None);
        if let Ok(mut f) = self.frames.lock() {
            f.push(frame);
        }
        result
    }

    fn execute(
        &self,
        inputs: &[&Tensor],
        frame: &mut Frame,
        mut times: Option<&mut Vec<f64>>,
    ) -> Result<Vec<Tensor>> {
        let base = frame.arena.base();
        let mut env = Env {
            arena: base,
            inputs,
            consts: &self.consts,
            boxed: &mut frame.boxed,
        };
        for (k, step) in self.steps.iter().enumerate() {
            let t0 = times.is_some().then(std::time::Instant::now);
            if step.outputs.iter().all(|s| s.ty.numel() == 0) {
                continue;
            }
            let mut io = StepIo {
                env: &mut env,
                inputs: &step.inputs,
                outputs: &step.outputs,
                // SAFETY: the planner reserved the step's scratch inside the arena.
                scratch: unsafe { base.add(step.scratch_offset) },
            };
            tracing::trace!(node = %step.node, "step");
            step.kernel.run(&mut io, step.threads)?;
            if let (Some(t), Some(t0)) = (times.as_deref_mut(), t0) {
                t[k] = t0.elapsed().as_secs_f64() * 1e6;
            }
        }
        self.outputs
            .iter()
            .map(|(_, slot)| Ok(env.tensor(slot)?.into_owned()))
            .collect()
    }

    /// The inputs in graph order, after checking names, dtypes and shapes.
    fn check_inputs<'a>(&self, given: &'a HashMap<String, Tensor>) -> Result<Vec<&'a Tensor>> {
        let expected = || {
            self.inputs
                .iter()
                .map(|(n, t)| format!("{n}: {t}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for name in given.keys() {
            if !self.inputs.iter().any(|(n, _)| n == name) {
                return Err(RuntimeError::Input(format!(
                    "unknown input `{name}`; the model expects {}",
                    expected()
                )));
            }
        }
        self.inputs
            .iter()
            .map(|(name, ty)| match given.get(name) {
                None => Err(RuntimeError::Input(format!(
                    "missing input `{name}`; the model expects {}",
                    expected()
                ))),
                Some(t) if &t.ty() != ty => Err(RuntimeError::Input(format!(
                    "input `{name}` must be {ty}, got {}",
                    t.ty()
                ))),
                Some(t) => Ok(t),
            })
            .collect()
    }
}
