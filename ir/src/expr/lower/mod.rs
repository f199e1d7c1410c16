//! Lowering graph nodes to tensor expressions. Rules live in a registry
//! keyed by op kind; one file per family registers its rules. An op without
//! a rule, or a case a rule does not handle (integer arithmetic, multi-stage
//! ops), gives `Ok(None)`: callers fall back to the interpreter.

mod activation;
mod conv;
mod einsum;
mod elementwise;
mod layout;
mod linalg;
mod logic;
mod norm;
mod reduce;

use super::scalar::ScalarExpr;
use super::tensor::{Iter, Operand, TensorExpr};
use super::AffineExpr;
use crate::{ensure, Attrs, Graph, Node, Result, TensorType};
use std::collections::HashMap;
use std::sync::LazyLock;

/// What a rule sees: the node's attributes and its input and output types.
pub struct Ctx<'a> {
    pub node: &'a Node,
    pub attrs: &'a Attrs,
    pub inputs: Vec<Operand>,
    pub output: Operand,
}

impl Ctx<'_> {
    /// Input `i`'s type (callers check the arity first).
    pub fn ty(&self, i: usize) -> &TensorType {
        &self.inputs[i].ty
    }

    /// An expression over the output shape, iterators named `d0, d1, ...`.
    pub fn pointwise(&self, body: ScalarExpr) -> TensorExpr {
        let names: Vec<String> = (0..self.output.ty.rank())
            .map(|d| format!("d{d}"))
            .collect();
        self.expr(&names, body)
    }

    /// An expression without a reduction, with the given iterator names.
    pub fn expr(&self, names: &[String], body: ScalarExpr) -> TensorExpr {
        TensorExpr {
            name: self.output.name.clone(),
            output: self.output.ty.clone(),
            inputs: self.inputs.clone(),
            iters: names
                .iter()
                .zip(&self.output.ty.shape)
                .map(|(n, &e)| Iter::new(n, e))
                .collect(),
            reduce: None,
            body,
            epilogue: None,
        }
    }

    /// Reads input `i` broadcast (numpy rules) to the output's iterators.
    pub fn broadcast(&self, i: usize) -> ScalarExpr {
        let (shape, out) = (&self.ty(i).shape, &self.output.ty.shape);
        let off = out.len().saturating_sub(shape.len());
        let index = shape
            .iter()
            .enumerate()
            .map(|(d, &n)| {
                if n == 1 && out.get(off + d) != Some(&1) {
                    AffineExpr::constant(0)
                } else {
                    AffineExpr::iter(off + d)
                }
            })
            .collect();
        ScalarExpr::access(i, index)
    }
}

/// A lowering rule.
pub type Rule = fn(&Ctx) -> Result<Option<TensorExpr>>;

fn rules() -> &'static HashMap<&'static str, Rule> {
    static RULES: LazyLock<HashMap<&'static str, Rule>> = LazyLock::new(|| {
        let mut r = HashMap::new();
        elementwise::register(&mut r);
        activation::register(&mut r);
        linalg::register(&mut r);
        einsum::register(&mut r);
        logic::register(&mut r);
        reduce::register(&mut r);
        layout::register(&mut r);
        conv::register(&mut r);
        norm::register(&mut r);
        r
    });
    &RULES
}

/// True if some rule exists for the op kind (it may still decline a node).
pub fn has_rule(kind: &str) -> bool {
    rules().contains_key(kind)
}

/// Lowers one node of `g` to a tensor expression; `Ok(None)` when no rule
/// handles it. Only single-output nodes lower.
pub fn lower(g: &Graph, node: &Node) -> Result<Option<TensorExpr>> {
    let Some(rule) = rules().get(node.op.kind.as_str()) else {
        return Ok(None);
    };
    if node.outputs.len() != 1 {
        return Ok(None);
    }
    let operand = |v| {
        let v = g.values().get(v as usize);
        v.map(|v| Operand {
            name: v.name.clone(),
            ty: v.ty.clone(),
        })
    };
    let inputs: Option<Vec<Operand>> = node.inputs.iter().map(|v| operand(v.0)).collect();
    let (Some(inputs), Some(output)) = (inputs, operand(node.outputs[0].0)) else {
        return Err(crate::IrError::Graph(format!(
            "node `{}` names a missing value",
            node.name
        )));
    };
    let ctx = Ctx {
        node,
        attrs: &node.op.attrs,
        inputs,
        output,
    };
    let e = rule(&ctx).map_err(|e| e.at_node(&node.name, &node.op.kind))?;
    if let Some(e) = &e {
        e.check()
            .map_err(|err| err.at_node(&node.name, &node.op.kind))?;
        ensure!(
            e.output == ctx.output.ty,
            "lowering of `{}` changed the output type",
            node.name
        );
    }
    Ok(e)
}
