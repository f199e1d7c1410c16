//! The e-class analysis: every class carries its tensor type (dtype and
//! static shape, from the op registry's type inference) and, when all inputs
//! are constants and the result is small, its value (constant folding: the
//! folded value joins the class as a `Const` node).
//!
//! The analysis also owns the tables e-nodes index into: interned attributes,
//! constants, and the types of graph inputs.

use crate::lang::TNode;
use egg::{Analysis, DidMerge, EGraph, Id, Symbol};
use kiln_ir::{Attrs, Op, Tensor, TensorType};
use std::collections::HashMap;
use std::sync::Arc;

/// What is known about an e-class.
#[derive(Clone, Debug)]
pub struct ClassData {
    /// `None` when type inference rejects every node (never extracted).
    pub ty: Option<TensorType>,
    /// The value, when constant and at most `fold_limit` elements.
    pub value: Option<Arc<Tensor>>,
}

/// Tables and limits of the analysis.
#[derive(Clone, Debug)]
pub struct TensorAnalysis {
    pub attrs: Vec<Attrs>,
    attr_index: HashMap<String, u32>,
    pub consts: Vec<Arc<Tensor>>,
    pub inputs: HashMap<Symbol, TensorType>,
    /// Largest result (elements) that constant folding computes.
    pub fold_limit: usize,
}

/// The e-graph type used throughout the crate.
pub type TGraph = EGraph<TNode, TensorAnalysis>;

impl TensorAnalysis {
    pub fn new(fold_limit: usize) -> TensorAnalysis {
        let mut a = TensorAnalysis {
            attrs: Vec::new(),
            attr_index: HashMap::new(),
            consts: Vec::new(),
            inputs: HashMap::new(),
            fold_limit,
        };
        a.intern_attrs(&Attrs::new());
        a
    }

    /// The index of `attrs` (equal attributes share one index).
    pub fn intern_attrs(&mut self, attrs: &Attrs) -> u32 {
        let key = format!("{attrs:?}");
        if let Some(&i) = self.attr_index.get(&key) {
            return i;
        }
        self.attrs.push(attrs.clone());
        let i = (self.attrs.len() - 1) as u32;
        self.attr_index.insert(key, i);
        i
    }

    /// Adds a constant; returns its index.
    pub fn add_const(&mut self, t: Arc<Tensor>) -> u32 {
        self.consts.push(t);
        (self.consts.len() - 1) as u32
    }

    /// The op an op node applies.
    pub fn op_of(&self, o: &crate::lang::OpNode) -> Op {
        Op {
            kind: o.kind.as_str().to_string(),
            attrs: self.attrs[o.attrs as usize].clone(),
        }
    }
}

fn infer(eg: &TGraph, o: &crate::lang::OpNode) -> ClassData {
    let a = &eg.analysis;
    let op = a.op_of(o);
    let tys: Option<Vec<&TensorType>> = o.args.iter().map(|&c| eg[c].data.ty.as_ref()).collect();
    let ty = tys.and_then(|tys| {
        let def = op.def().ok()?;
        let out = def.infer(&op.attrs, &tys, o.outputs as usize).ok()?;
        out.into_iter().nth(o.output as usize)
    });
    let value = ty.as_ref().and_then(|t| {
        if t.numel() > a.fold_limit || is_random(&op.kind) {
            return None;
        }
        let vals: Option<Vec<&Arc<Tensor>>> =
            o.args.iter().map(|&c| eg[c].data.value.as_ref()).collect();
        let refs: Vec<&Tensor> = vals?.into_iter().map(|v| v.as_ref()).collect();
        let def = op.def().ok()?;
        let outs = def.eval(&op.attrs, &refs, o.outputs as usize).ok()?;
        outs.into_iter().nth(o.output as usize).map(Arc::new)
    });
    ClassData { ty, value }
}

fn is_random(kind: &str) -> bool {
    kind.starts_with("Random") || kind == "Bernoulli" || kind == "Multinomial"
}

impl Analysis<TNode> for TensorAnalysis {
    type Data = ClassData;

    fn make(eg: &mut TGraph, enode: &TNode, _id: Id) -> ClassData {
        match enode {
            TNode::Input(s) => ClassData {
                ty: eg.analysis.inputs.get(s).cloned(),
                value: None,
            },
            TNode::Const(c) => {
                let t = eg.analysis.consts[*c as usize].clone();
                let small = t.len() <= eg.analysis.fold_limit;
                ClassData {
                    ty: Some(t.ty()),
                    value: small.then_some(t),
                }
            }
            TNode::Op(o) => infer(eg, o),
        }
    }

    fn merge(&mut self, a: &mut ClassData, b: ClassData) -> DidMerge {
        let mut changed_a = false;
        if a.ty.is_none() && b.ty.is_some() {
            a.ty = b.ty.clone();
            changed_a = true;
        }
        if a.value.is_none() && b.value.is_some() {
            a.value = b.value.clone();
            changed_a = true;
        }
        let changed_b =
            (b.ty.is_none() && a.ty.is_some()) || (b.value.is_none() && a.value.is_some());
        DidMerge(changed_a, changed_b)
    }

    fn modify(eg: &mut TGraph, id: Id) {
        let Some(v) = eg[id].data.value.clone() else {
            return;
        };
        if eg[id].nodes.iter().any(|n| matches!(n, TNode::Const(_))) {
            return;
        }
        let c = eg.analysis.add_const(v);
        let k = eg.add(TNode::Const(c));
        eg.union(id, k);
    }
}
