//! The rules, one topic per file, each with a one-line identity and the
//! graphs its differential verification runs on ([`RuleDef::cases`]).
//!
//! Every right-hand side goes through [`Typed`]: it is added only where its
//! inferred type equals the matched class's (a rule can never change a
//! value's dtype or shape); a condition beyond that is stated in the rule.

mod algebra;
mod broadcast;
mod build;
mod consts;
mod fold;
mod fusion;
mod layout;
mod matching;
mod patterns;
mod sink;

use crate::analysis::{TGraph, TensorAnalysis};
use crate::lang::{OpNode, TNode};
use egg::{Applier, Id, Pattern, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var};
use kiln_ir::{DType, Graph, TensorType};

/// A rule with its identity and its verification cases.
pub struct RuleDef {
    pub name: &'static str,
    /// The identity the rule applies, one line.
    pub identity: &'static str,
    pub rewrite: Rewrite<TNode, TensorAnalysis>,
    /// Graphs containing the left-hand side (random legal shapes from `seed`).
    pub cases: Box<dyn Fn(u64) -> Vec<Graph> + Send + Sync>,
    /// A multi-pattern rule (it matches several independent terms at once):
    /// it runs only in the first [`crate::Limits::multi_iterations`] iterations.
    pub multi: bool,
}

/// Every rule, in a fixed order.
pub fn all() -> Vec<RuleDef> {
    let mut rules = algebra::rules();
    rules.extend(layout::rules());
    rules.extend(sink::rules());
    rules.extend(broadcast::rules());
    rules.extend(fold::rules());
    rules.extend(patterns::rules());
    rules.extend(fusion::rules());
    rules
}

/// Matches every class holding an op node of one of `kinds` (the applier
/// looks at the nodes itself).
pub(crate) struct KindSearcher(pub &'static [&'static str]);

impl Searcher<TNode, TensorAnalysis> for KindSearcher {
    fn search_eclass_with_limit(
        &self,
        eg: &TGraph,
        eclass: Id,
        limit: usize,
    ) -> Option<SearchMatches<'_, TNode>> {
        let hit = eg[eclass]
            .nodes
            .iter()
            .any(|n| n.kind().is_some_and(|k| self.0.contains(&k)));
        (hit && limit > 0).then(|| SearchMatches {
            eclass,
            substs: vec![Subst::default()],
            ast: None,
        })
    }

    fn vars(&self) -> Vec<Var> {
        vec![]
    }
}

/// The op nodes of `kinds` in a class.
pub(crate) fn ops_in(eg: &TGraph, class: Id, kinds: &[&str]) -> Vec<OpNode> {
    eg[class]
        .nodes
        .iter()
        .filter_map(|n| match n {
            TNode::Op(o) if kinds.contains(&o.kind.as_str()) => Some(o.clone()),
            _ => None,
        })
        .collect()
}

/// An applier that inspects the matched class itself (the searcher is a
/// [`KindSearcher`], so there is no substitution to read).
pub(crate) trait ClassApplier {
    fn apply_class(&self, eg: &mut TGraph, eclass: Id) -> Vec<Id>;
}

/// Runs a [`ClassApplier`] as an egg applier.
pub(crate) struct OnClass<T>(pub T);

impl<T: ClassApplier> Applier<TNode, TensorAnalysis> for OnClass<T> {
    fn apply_one(
        &self,
        eg: &mut TGraph,
        eclass: Id,
        _: &Subst,
        _: Option<&PatternAst<TNode>>,
        _: Symbol,
    ) -> Vec<Id> {
        self.0.apply_class(eg, eclass)
    }
}

/// Instantiates a right-hand side and unions it only when its type matches.
pub struct Typed(pub Pattern<TNode>);

impl Applier<TNode, TensorAnalysis> for Typed {
    fn apply_one(
        &self,
        eg: &mut TGraph,
        eclass: Id,
        subst: &Subst,
        _ast: Option<&PatternAst<TNode>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let id = eg.add_instantiation(&self.0.ast, subst);
        let same = eg[id].data.ty.is_some() && eg[id].data.ty == eg[eclass].data.ty;
        if same && eg.union(eclass, id) {
            vec![eclass]
        } else {
            vec![]
        }
    }
}

/// A rule `lhs => rhs` over attribute-free ops; `vars` gives each pattern
/// variable a type for the verification graphs.
pub(crate) fn pattern_rule(
    name: &'static str,
    identity: &'static str,
    lhs: &str,
    rhs: &str,
    vars: fn(u64) -> Vec<(&'static str, TensorType)>,
) -> RuleDef {
    let l: Pattern<TNode> = lhs.parse().expect("rule pattern");
    let r: Pattern<TNode> = rhs.parse().expect("rule pattern");
    let ast = l.ast.clone();
    RuleDef {
        name,
        identity,
        rewrite: Rewrite::new(name, l, Typed(r)).expect("rule"),
        cases: Box::new(move |seed| vec![graph_of(&ast, &vars(seed))]),
        multi: false,
    }
}

/// A graph computing a pattern, its variables as inputs of the given types.
pub fn graph_of(ast: &PatternAst<TNode>, vars: &[(&str, TensorType)]) -> Graph {
    use egg::ENodeOrVar;
    let mut g = Graph::new("case");
    let mut ids = Vec::new();
    for (k, n) in ast.as_ref().iter().enumerate() {
        let id = match n {
            ENodeOrVar::Var(v) => {
                let name = v.to_string().trim_start_matches('?').to_string();
                match g.find(&name) {
                    Some(id) => id,
                    None => {
                        let ty = vars
                            .iter()
                            .find(|(n, _)| *n == name)
                            .map(|(_, t)| t.clone());
                        g.add_input(&name, ty.expect("a type for every variable"))
                            .expect("input")
                    }
                }
            }
            ENodeOrVar::ENode(TNode::Op(o)) => {
                let args: Vec<_> = o.args.iter().map(|a| ids[usize::from(*a)]).collect();
                let op = kiln_ir::Op::new(o.kind.as_str());
                g.add_node(&format!("n{k}"), op, &args, &[&format!("v{k}")])
                    .expect("pattern node")[0]
            }
            ENodeOrVar::ENode(_) => panic!("patterns hold ops and variables only"),
        };
        ids.push(id);
    }
    g.set_outputs(vec![*ids.last().expect("non-empty pattern")]);
    g
}

/// A small deterministic generator for case shapes.
pub(crate) fn dims(seed: u64, n: usize) -> Vec<usize> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            2 + (s % 5) as usize
        })
        .collect()
}

pub(crate) fn f32s(shape: Vec<usize>) -> TensorType {
    TensorType::new(DType::F32, shape)
}
