//! Operators: `Op` (a kind plus attributes, plain data) and `OpDef`, the
//! registered definition of a kind (type inference and reference semantics).
//!
//! Kiln's operator set follows ONNX's names and the attribute conventions of
//! the newest opset, with one normalisation: parameters that ONNX passes as
//! constant tensor inputs (shapes, axes, pads, slice bounds, ...) are
//! attributes here, so every input of a Kiln node is data.

use crate::{Attrs, IrError, Result, Tensor, TensorType};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

/// An operator instance: its kind (e.g. `"Conv"`) and its attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub kind: String,
    pub attrs: Attrs,
}

impl Op {
    pub fn new(kind: &str) -> Op {
        Op {
            kind: kind.to_string(),
            attrs: Attrs::new(),
        }
    }
    /// Adds an attribute, builder style.
    pub fn with(mut self, name: &str, value: crate::Attr) -> Op {
        self.attrs.set(name, value);
        self
    }
    /// The registered definition of this op's kind.
    pub fn def(&self) -> Result<&'static dyn OpDef> {
        registry().get(&self.kind)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)
    }
}

/// The definition of one operator kind.
pub trait OpDef: Send + Sync {
    /// The kind name, as written in the text form.
    fn name(&self) -> &str;
    /// Output types from the attributes and input types; `n_outputs` is how
    /// many outputs the node asks for (ops with optional outputs).
    fn infer(
        &self,
        attrs: &Attrs,
        inputs: &[&TensorType],
        n_outputs: usize,
    ) -> Result<Vec<TensorType>>;
    /// Reference semantics: computes the outputs. Straightforward, not fast.
    fn eval(&self, attrs: &Attrs, inputs: &[&Tensor], n_outputs: usize) -> Result<Vec<Tensor>>;
}

type InferFn = dyn Fn(&Attrs, &[&TensorType], usize) -> Result<Vec<TensorType>> + Send + Sync;
type EvalFn = dyn Fn(&Attrs, &[&Tensor], usize) -> Result<Vec<Tensor>> + Send + Sync;

/// An `OpDef` made of two closures; most families register their ops this way.
pub struct FnOp {
    name: String,
    infer: Box<InferFn>,
    eval: Box<EvalFn>,
}

impl FnOp {
    pub fn new(
        name: &str,
        infer: impl Fn(&Attrs, &[&TensorType], usize) -> Result<Vec<TensorType>> + Send + Sync + 'static,
        eval: impl Fn(&Attrs, &[&Tensor], usize) -> Result<Vec<Tensor>> + Send + Sync + 'static,
    ) -> FnOp {
        FnOp {
            name: name.to_string(),
            infer: Box::new(infer),
            eval: Box::new(eval),
        }
    }
}

impl OpDef for FnOp {
    fn name(&self) -> &str {
        &self.name
    }
    fn infer(&self, attrs: &Attrs, inputs: &[&TensorType], n: usize) -> Result<Vec<TensorType>> {
        (self.infer)(attrs, inputs, n)
    }
    fn eval(&self, attrs: &Attrs, inputs: &[&Tensor], n: usize) -> Result<Vec<Tensor>> {
        (self.eval)(attrs, inputs, n)
    }
}

/// All registered operator kinds, by name.
#[derive(Default)]
pub struct Registry {
    ops: HashMap<String, Arc<dyn OpDef>>,
}

impl Registry {
    /// Registers a definition; a later registration of the same name replaces it.
    pub fn register(&mut self, def: impl OpDef + 'static) {
        self.ops.insert(def.name().to_string(), Arc::new(def));
    }
    /// Registers an op from an inference closure and an evaluation closure.
    pub fn add(
        &mut self,
        name: &str,
        infer: impl Fn(&Attrs, &[&TensorType], usize) -> Result<Vec<TensorType>> + Send + Sync + 'static,
        eval: impl Fn(&Attrs, &[&Tensor], usize) -> Result<Vec<Tensor>> + Send + Sync + 'static,
    ) {
        self.register(FnOp::new(name, infer, eval));
    }
    pub fn get(&self, name: &str) -> Result<&dyn OpDef> {
        self.ops
            .get(name)
            .map(|d| d.as_ref())
            .ok_or_else(|| IrError::UnknownOp(name.to_string()))
    }
    pub fn contains(&self, name: &str) -> bool {
        self.ops.contains_key(name)
    }
    /// Registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.ops.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let mut r = Registry::default();
    crate::ops::register_all(&mut r);
    r
});

/// The global registry of Kiln's built-in operators.
pub fn registry() -> &'static Registry {
    &REGISTRY
}
