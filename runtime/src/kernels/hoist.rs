//! Constant subexpressions of a map, computed once at build time.
//!
//! A subtree of a map's body that reads only graph constants, each at plain
//! iterator subscripts, depends on few of the map's iterators: BatchNorm's
//! `scale[c] / sqrt(var[c] + eps)` depends on the channel alone, yet the
//! generated loop would take a square root and a division per element. Such
//! a subtree (with at least one operation, over at most a quarter of the
//! map's points) is evaluated here with the reference evaluator into a small
//! f32 tensor over its iterators, and the body reads that tensor instead.
//! The kernel owns the tensors and passes them after the graph inputs.

use kiln_ir::expr::{eval, Access, AffineExpr, Iter, Operand, ScalarExpr, TensorExpr};
use kiln_ir::{DType, Graph, Tensor, TensorType};
use std::collections::BTreeSet;

/// `e` with its hoistable subtrees replaced by reads of new inputs
/// (appended after `e`'s own), and those inputs' values.
pub(crate) fn hoist(g: &Graph, e: TensorExpr) -> (TensorExpr, Vec<Tensor>) {
    if e.reduce.is_some() || e.output.dtype != DType::F32 {
        return (e, Vec::new());
    }
    let consts: Vec<Option<&Tensor>> = e
        .inputs
        .iter()
        .map(|o| g.find(&o.name).and_then(|v| g.const_value(v)).map(|t| &**t))
        .collect();
    let mut h = Hoister {
        e: &e,
        consts,
        extra: Vec::new(),
    };
    let body = h.rewrite(&e.body);
    let extra = h.extra;
    if extra.is_empty() {
        return (e, extra);
    }
    let mut out = e.clone();
    out.body = body;
    for (k, t) in extra.iter().enumerate() {
        out.inputs.push(Operand {
            name: format!("{}#hoisted{k}", e.name),
            ty: t.ty(),
        });
    }
    (out, extra)
}

struct Hoister<'a> {
    e: &'a TensorExpr,
    consts: Vec<Option<&'a Tensor>>,
    extra: Vec<Tensor>,
}

impl Hoister<'_> {
    fn rewrite(&mut self, s: &ScalarExpr) -> ScalarExpr {
        let compound = matches!(s, ScalarExpr::Unary(..) | ScalarExpr::Binary(..));
        if compound {
            if let Some(used) = self.iterators(s) {
                if let Some(a) = self.precompute(s, &used) {
                    return a;
                }
            }
        }
        let mut r = |x: &ScalarExpr| Box::new(self.rewrite(x));
        match s {
            ScalarExpr::Unary(op, x) => ScalarExpr::Unary(*op, r(x)),
            ScalarExpr::Binary(op, a, b) => ScalarExpr::Binary(*op, r(a), r(b)),
            ScalarExpr::Cmp(op, a, b) => ScalarExpr::Cmp(*op, r(a), r(b)),
            ScalarExpr::Select(c, t, e) => ScalarExpr::Select(r(c), r(t), r(e)),
            ScalarExpr::Cast(d, x) => ScalarExpr::Cast(*d, r(x)),
            other => other.clone(),
        }
    }

    /// The iterators `s` depends on, if it reads only constants at plain
    /// iterator (or constant) subscripts.
    fn iterators(&self, s: &ScalarExpr) -> Option<BTreeSet<usize>> {
        match s {
            ScalarExpr::Const(_) => Some(BTreeSet::new()),
            ScalarExpr::Access(a) => {
                self.consts[a.input]?;
                let mut used = BTreeSet::new();
                for ix in &a.index {
                    match plain_iter(ix) {
                        Some(Some(k)) => {
                            used.insert(k);
                        }
                        Some(None) => {}
                        None => return None,
                    }
                }
                Some(used)
            }
            ScalarExpr::Unary(_, x) | ScalarExpr::Cast(_, x) => self.iterators(x),
            ScalarExpr::Binary(_, a, b) | ScalarExpr::Cmp(_, a, b) => {
                let mut u = self.iterators(a)?;
                u.extend(self.iterators(b)?);
                Some(u)
            }
            ScalarExpr::Select(c, t, e) => {
                let mut u = self.iterators(c)?;
                u.extend(self.iterators(t)?);
                u.extend(self.iterators(e)?);
                Some(u)
            }
            ScalarExpr::InBounds(_) | ScalarExpr::Acc => None,
        }
    }

    /// Evaluates `s` over the iterators `used` into a new input; the read of it.
    fn precompute(&mut self, s: &ScalarExpr, used: &BTreeSet<usize>) -> Option<ScalarExpr> {
        let used: Vec<usize> = used.iter().copied().collect();
        let shape: Vec<usize> = used.iter().map(|&k| self.e.iters[k].extent).collect();
        let points: usize = shape.iter().product();
        if points.saturating_mul(4) > self.e.output.numel() {
            return None;
        }
        let at = |k: usize| used.iter().position(|&u| u == k);
        // The sub-expression reads only the constants `s` reads, renumbered.
        let mut read: Vec<usize> = Vec::new();
        s.visit_accesses(&mut |a| {
            if !read.contains(&a.input) {
                read.push(a.input);
            }
        });
        let body = kiln_ir::expr::inline::map_reads(s, &|a: &Access, _guard: bool| {
            let index = a
                .index
                .iter()
                .map(|ix| match plain_iter(ix) {
                    Some(Some(k)) => AffineExpr::iter(at(k).expect("used")),
                    _ => ix.clone(),
                })
                .collect();
            let input = read.iter().position(|&i| i == a.input).expect("read");
            ScalarExpr::Access(Access { input, index })
        });
        let sub = TensorExpr {
            name: format!("{}#hoist", self.e.name),
            output: TensorType::new(DType::F32, shape),
            inputs: read.iter().map(|&i| self.e.inputs[i].clone()).collect(),
            iters: used
                .iter()
                .map(|&k| Iter::new(&self.e.iters[k].name, self.e.iters[k].extent))
                .collect(),
            reduce: None,
            body,
            epilogue: None,
        };
        let ins: Vec<&Tensor> = read
            .iter()
            .map(|&i| self.consts[i])
            .collect::<Option<_>>()?;
        let t = eval(&sub, &ins).ok()?;
        let input = self.e.inputs.len() + self.extra.len();
        self.extra.push(t);
        Some(ScalarExpr::Access(Access {
            input,
            index: used.iter().map(|&k| AffineExpr::iter(k)).collect(),
        }))
    }
}

/// `Some(Some(k))` for the subscript `iter k`, `Some(None)` for a constant,
/// `None` for anything else.
fn plain_iter(ix: &AffineExpr) -> Option<Option<usize>> {
    if ix.terms.is_empty() {
        return Some(None);
    }
    match (ix.terms.as_slice(), ix.constant) {
        ([(1, kiln_ir::expr::Atom::Iter(k))], 0) => Some(Some(*k)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_ir::expr::lower;

    #[test]
    fn batchnorm_gain_is_computed_once_per_channel() {
        let g = kiln_ir::text::parse(
            "graph t {
  input x: f32[1,2,3,4]
  const s: f32[2] = [0.5, 2.0]
  const b: f32[2] = [0.1, -0.2]
  const m: f32[2] = [0.0, 1.0]
  const v: f32[2] = [3.0, 0.0]
  node n = BatchNormalization{epsilon=1.0}(x, s, b, m, v) -> y: f32[1,2,3,4]
  output y
}",
        )
        .unwrap();
        let e = lower(&g, &g.nodes()[0]).unwrap().unwrap();
        let (h, extra) = hoist(&g, e.clone());
        // g = s / sqrt(v + eps) per channel: 0.5 / 2 and 2 / 1; then the
        // offset b - m·g: 0.1 - 0 and -0.2 - 2.
        assert_eq!(extra.len(), 2);
        assert_eq!(extra[0].as_slice::<f32>().unwrap(), &[0.25, 2.0]);
        let offset = extra[1].as_slice::<f32>().unwrap();
        assert!(
            (offset[0] - 0.1).abs() < 1e-6 && (offset[1] + 2.2).abs() < 1e-6,
            "{offset:?}"
        );
        assert_eq!(h.inputs.len(), e.inputs.len() + 2);
        // Per-element work left: no square root in the body.
        let mut sqrt = false;
        crate::kernels::expr::visit(&h.body, &mut |s| {
            sqrt |= matches!(s, ScalarExpr::Unary(kiln_ir::expr::UnaryOp::Sqrt, _))
        });
        assert!(!sqrt, "{h}");
        // A map over the constants' own shape is not hoisted (no gain).
        let small = kiln_ir::text::parse(
            "graph t {
  const a: f32[4] = [1.0, 2.0, 3.0, 4.0]
  input x: f32[4]
  node e = Exp(a) -> ea: f32[4]
  node n = Add(x, ea) -> y: f32[4]
  output y
}",
        )
        .unwrap();
        let e = lower(&small, &small.nodes()[0]).unwrap().unwrap();
        assert!(hoist(&small, e).1.is_empty());
    }
}
