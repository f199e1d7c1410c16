//! The e-graph language: one e-node per op output, with the op's kind and
//! attributes as data (no per-arity variants), plus graph inputs and constants.
//!
//! Attributes are interned in the analysis ([`crate::TensorAnalysis`]) and an
//! e-node holds their number, so e-nodes stay small, hashable and comparable.
//! A node of a multi-output op says which output it is and how many the op has.

use egg::{Id, Language, Symbol};
use std::fmt;

/// One output of an op application.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpNode {
    pub kind: Symbol,
    /// Index of the interned attributes (0: none).
    pub attrs: u32,
    /// Which output of the op this node is, and how many the op has.
    pub output: u8,
    pub outputs: u8,
    pub args: Vec<Id>,
}

/// An e-node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TNode {
    /// A graph input, by name.
    Input(Symbol),
    /// A constant, by index into the analysis's constant table.
    Const(u32),
    Op(OpNode),
}

/// What must be equal for two e-nodes to match (everything but the children).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Discriminant {
    Input(Symbol),
    Const(u32),
    Op(Symbol, u32, u8, u8, usize),
}

impl TNode {
    /// A single-output op node with no attributes.
    pub fn op(kind: &str, args: Vec<Id>) -> TNode {
        TNode::Op(OpNode {
            kind: Symbol::from(kind),
            attrs: 0,
            output: 0,
            outputs: 1,
            args,
        })
    }

    /// The op kind, for op nodes.
    pub fn kind(&self) -> Option<&str> {
        match self {
            TNode::Op(o) => Some(o.kind.as_str()),
            _ => None,
        }
    }
}

impl Language for TNode {
    type Discriminant = Discriminant;

    fn discriminant(&self) -> Discriminant {
        match self {
            TNode::Input(s) => Discriminant::Input(*s),
            TNode::Const(c) => Discriminant::Const(*c),
            TNode::Op(o) => Discriminant::Op(o.kind, o.attrs, o.output, o.outputs, o.args.len()),
        }
    }

    fn matches(&self, other: &Self) -> bool {
        self.discriminant() == other.discriminant()
    }

    fn children(&self) -> &[Id] {
        match self {
            TNode::Op(o) => &o.args,
            _ => &[],
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            TNode::Op(o) => &mut o.args,
            _ => &mut [],
        }
    }
}

impl fmt::Display for TNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TNode::Input(s) => write!(f, "input:{s}"),
            TNode::Const(c) => write!(f, "const:{c}"),
            TNode::Op(o) if o.attrs == 0 && o.outputs == 1 => write!(f, "{}", o.kind),
            TNode::Op(o) => write!(f, "{}#{}.{}", o.kind, o.attrs, o.output),
        }
    }
}

impl egg::FromOp for TNode {
    type Error = String;

    /// Parses pattern operators: an op kind without attributes (`Relu`, `Add`).
    fn from_op(op: &str, children: Vec<Id>) -> Result<Self, Self::Error> {
        if op.is_empty() || !op.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`{op}` is not an op kind"));
        }
        Ok(TNode::op(op, children))
    }
}
