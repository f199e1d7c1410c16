//! A [`Program`]: the state a derivation rewrites. It is a list of tensor
//! expressions (stages) in dependency order; a stage reads the program's
//! inputs or earlier stages' outputs by name. Reads and results are
//! row-major *views*: a stage may declare an operand, or produce an output,
//! with another shape of the same element count (merging or splitting
//! dimensions of a dense tensor is free), and [`Program::eval`] reshapes.

use crate::{Result, RewriteError};
use kiln_ir::expr::{eval, Operand, TensorExpr};
use kiln_ir::Tensor;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// Stages computing named results from named inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// The program's inputs with their original types.
    pub inputs: Vec<Operand>,
    /// Stages in dependency order.
    pub stages: Vec<TensorExpr>,
    /// The results: a stage output name and its logical type.
    pub outputs: Vec<Operand>,
    /// Input names whose values are known at compile time (weights).
    pub constants: BTreeSet<String>,
}

impl Program {
    /// A program of one expression (its inputs and output as they are).
    pub fn single(e: TensorExpr) -> Program {
        Program::new(vec![e])
    }

    /// A program of independent or chained stages; every stage output that
    /// no later stage reads is a result.
    pub fn new(stages: Vec<TensorExpr>) -> Program {
        let produced: BTreeSet<&str> = stages.iter().map(|s| s.name.as_str()).collect();
        let mut inputs: Vec<Operand> = vec![];
        for s in &stages {
            for o in &s.inputs {
                if !produced.contains(o.name.as_str()) && !inputs.iter().any(|i| i.name == o.name) {
                    inputs.push(o.clone());
                }
            }
        }
        let read: BTreeSet<&str> = stages
            .iter()
            .flat_map(|s| s.inputs.iter().map(|o| o.name.as_str()))
            .collect();
        let outputs = stages
            .iter()
            .filter(|s| !read.contains(s.name.as_str()))
            .map(|s| Operand {
                name: s.name.clone(),
                ty: s.output.clone(),
            })
            .collect();
        Program {
            inputs,
            stages,
            outputs,
            constants: BTreeSet::new(),
        }
    }

    /// Marks inputs as compile-time constants, builder style.
    pub fn with_constants(mut self, names: impl IntoIterator<Item = String>) -> Program {
        self.constants.extend(names);
        self
    }

    /// The index of the stage producing `name`.
    pub fn producer(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }

    /// A name used by no input or stage, starting from `base`.
    pub fn fresh_name(&self, base: &str) -> String {
        let taken = |n: &str| {
            self.inputs.iter().any(|o| o.name == n) || self.stages.iter().any(|s| s.name == n)
        };
        let mut name = base.to_string();
        let mut k = 1;
        while taken(&name) {
            name = format!("{base}{k}");
            k += 1;
        }
        name
    }

    /// True when stage `k` depends only on constants (foldable at compile time).
    pub fn is_constant_stage(&self, k: usize) -> bool {
        self.stages[k]
            .inputs
            .iter()
            .all(|o| match self.producer(&o.name) {
                Some(p) => p < k && self.is_constant_stage(p),
                None => self.constants.contains(&o.name),
            })
    }

    /// Evaluates every stage with the reference evaluator; returns the
    /// results in the order of [`Program::outputs`], in their logical shapes.
    pub fn eval(&self, feeds: &HashMap<String, Tensor>) -> Result<Vec<Tensor>> {
        let env = self.eval_all(feeds)?;
        self.outputs
            .iter()
            .map(|o| view(lookup(&env, &o.name)?, &o.ty.shape))
            .collect()
    }

    /// Every stage's value by name (inputs included).
    pub fn eval_all(&self, feeds: &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
        let mut env = feeds.clone();
        for s in &self.stages {
            let ins: Vec<Tensor> = s
                .inputs
                .iter()
                .map(|o| view(lookup(&env, &o.name)?, &o.ty.shape))
                .collect::<Result<_>>()?;
            let refs: Vec<&Tensor> = ins.iter().collect();
            let t = eval(s, &refs)?;
            env.insert(s.name.clone(), t);
        }
        Ok(env)
    }
}

fn lookup<'a>(env: &'a HashMap<String, Tensor>, name: &str) -> Result<&'a Tensor> {
    env.get(name)
        .ok_or_else(|| RewriteError::Graph(format!("program reads `{name}`, which has no value")))
}

/// `t` viewed row-major as `shape` (same element count).
pub fn view(t: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if t.shape() == shape {
        return Ok(t.clone());
    }
    Ok(t.clone().reshape(shape.to_vec())?)
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, s) in self.stages.iter().enumerate() {
            if k > 0 {
                writeln!(f)?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}
