//! Structural matching over e-classes for rules whose ops carry attributes
//! or whose constants are checked by value: each helper lists the ways a
//! class can be one op (every e-node of that kind), so a recognizer is a few
//! nested loops and explores every equivalent form the e-graph holds.
//! [`recognizer`] makes a rule of such a function: every term it returns
//! joins the matched class when its inferred type is the class's.

use super::{KindSearcher, RuleDef};
use crate::analysis::TGraph;
use crate::lang::{OpNode, TNode};
use crate::rules::{ClassApplier, OnClass};
use egg::{Id, Rewrite, Symbol};
use kiln_ir::{Attr, Attrs, Graph};

/// Finds the terms equal to a class (adding their nodes) and returns them.
pub(crate) type Recognize = fn(&mut TGraph, Id) -> Vec<Id>;

struct Recognizer(Recognize);

impl ClassApplier for Recognizer {
    fn apply_class(&self, eg: &mut TGraph, eclass: Id) -> Vec<Id> {
        let mut changed = vec![];
        for id in (self.0)(eg, eclass) {
            let same = eg[id].data.ty.is_some() && eg[id].data.ty == eg[eclass].data.ty;
            if same && eg.union(eclass, id) {
                changed.push(eclass);
            }
        }
        changed
    }
}

/// A rule searching classes with a `roots` node and applying `find`.
pub(crate) fn recognizer(
    name: &'static str,
    identity: &'static str,
    roots: &'static [&'static str],
    find: Recognize,
    cases: fn(u64) -> Vec<Graph>,
) -> RuleDef {
    RuleDef {
        name,
        identity,
        rewrite: Rewrite::new(name, KindSearcher(roots), OnClass(Recognizer(find))).expect("rule"),
        cases: Box::new(cases),
        multi: false,
    }
}

/// Adds a single-output op node.
pub(crate) fn add_op(eg: &mut TGraph, kind: &str, attrs: &Attrs, args: Vec<Id>) -> Id {
    let attrs = eg.analysis.intern_attrs(attrs);
    eg.add(TNode::Op(OpNode {
        kind: Symbol::from(kind),
        attrs,
        output: 0,
        outputs: 1,
        args,
    }))
}

/// The canonical argument lists of the single-output `kind` nodes of a class.
pub(crate) fn args_of(eg: &TGraph, class: Id, kind: &str) -> Vec<Vec<Id>> {
    nodes_of(eg, class, kind)
        .into_iter()
        .map(|o| o.args)
        .collect()
}

/// The single-output `kind` nodes of a class, arguments canonical.
pub(crate) fn nodes_of(eg: &TGraph, class: Id, kind: &str) -> Vec<OpNode> {
    eg[eg.find(class)]
        .nodes
        .iter()
        .filter_map(|n| match n {
            TNode::Op(o) if o.kind.as_str() == kind && o.outputs == 1 => {
                let mut o = o.clone();
                o.args.iter_mut().for_each(|a| *a = eg.find(*a));
                Some(o)
            }
            _ => None,
        })
        .collect()
}

/// The operands of a one-input `kind` node of a class.
pub(crate) fn unary(eg: &TGraph, class: Id, kind: &str) -> Vec<Id> {
    args_of(eg, class, kind)
        .into_iter()
        .filter(|a| a.len() == 1)
        .map(|a| a[0])
        .collect()
}

/// The operands `(a, b)` of a two-input `kind` node, in the node's order.
pub(crate) fn binary(eg: &TGraph, class: Id, kind: &str) -> Vec<(Id, Id)> {
    args_of(eg, class, kind)
        .into_iter()
        .filter(|a| a.len() == 2)
        .map(|a| (a[0], a[1]))
        .collect()
}

/// Like [`binary`] for a commutative op: both orders of every node.
pub(crate) fn comm(eg: &TGraph, class: Id, kind: &str) -> Vec<(Id, Id)> {
    binary(eg, class, kind)
        .into_iter()
        .flat_map(|(a, b)| [(a, b), (b, a)])
        .collect()
}

/// Every way to read a class as a product of three factors, `p·q·r` in any
/// grouping (`(p·q)·r` or `p·(q·r)`), each order listed.
pub(crate) fn product3(eg: &TGraph, class: Id) -> Vec<[Id; 3]> {
    let mut out = Vec::new();
    for (a, b) in comm(eg, class, "Mul") {
        for (p, q) in comm(eg, a, "Mul") {
            out.push([p, q, b]);
        }
    }
    out
}

/// The interned attributes of a node.
pub(crate) fn attrs<'a>(eg: &'a TGraph, o: &OpNode) -> &'a Attrs {
    &eg.analysis.attrs[o.attrs as usize]
}

/// The rank of a class's value (`None` when its type is unknown).
pub(crate) fn rank(eg: &TGraph, class: Id) -> Option<usize> {
    eg[class].data.ty.as_ref().map(|t| t.rank())
}

/// The single axis a reduction node reduces, normalised, with keepdims set.
pub(crate) fn reduced_axis(eg: &TGraph, o: &OpNode) -> Option<i64> {
    let r = rank(eg, o.args[0])? as i64;
    let a = attrs(eg, o);
    let keep = a.int_or("keepdims", 1).ok()? != 0;
    match a.get("axes") {
        Some(Attr::Ints(v)) if keep && v.len() == 1 && (-r..r).contains(&v[0]) => {
            Some(v[0].rem_euclid(r))
        }
        _ => None,
    }
}
