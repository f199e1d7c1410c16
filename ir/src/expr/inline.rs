//! Fusion at the expression level: substituting a producer expression for
//! one input of its consumer, so a chain of ops becomes one expression (one
//! kernel, no intermediate buffer).
//!
//! Two cases are legal:
//! - the producer has no reduction: each read of the input becomes the
//!   producer's body with its iterators replaced by the read's subscripts
//!   (`c[i] = f(p[g(i)])`, `p[j] = h(j)` gives `c[i] = f(h(g(i)))`);
//! - the producer has a reduction and the consumer is element-wise over the
//!   same shape, reading the producer only at its own index: the consumer
//!   becomes the producer's epilogue (`c[i] = f(p[i])`, `p[i] = e(sum ...)`
//!   gives `c[i] = f(e(sum ...))`).
//!
//! The producer's value is rounded to its dtype (`Cast`) where it was
//! stored, so integer wrapping and bool values keep their meaning.

use super::affine::{AffineExpr, Atom};
use super::scalar::{Access, ScalarExpr};
use super::tensor::{Operand, TensorExpr};

/// The consumer with input number `input` (and every other input naming the
/// same operand) replaced by `producer`'s definition; `None` when the pair is not fusable (see the module docs), or
/// when fusing would recompute the producer more than `max_recompute` times
/// per element on average.
pub fn inline(
    consumer: &TensorExpr,
    input: usize,
    producer: &TensorExpr,
    max_recompute: f64,
) -> Option<TensorExpr> {
    let op = consumer.inputs.get(input)?;
    let same: Vec<bool> = consumer.inputs.iter().map(|o| o == op).collect();
    if op.ty != producer.output || reads_guarded(consumer, &same) {
        return None;
    }
    match (&producer.reduce, &consumer.reduce) {
        (None, _) => inline_pointwise(consumer, input, &same, producer, max_recompute),
        (Some(_), None) => into_epilogue(consumer, input, &same, producer),
        (Some(_), Some(_)) => None,
    }
}

fn reads_guarded(e: &TensorExpr, same: &[bool]) -> bool {
    let mut found = false;
    let mut visit = |s: &ScalarExpr| {
        if let ScalarExpr::InBounds(a) = s {
            found |= same[a.input];
        }
    };
    walk(&e.body, &mut visit);
    if let Some(ep) = &e.epilogue {
        walk(ep, &mut visit);
    }
    found
}

fn walk(s: &ScalarExpr, f: &mut dyn FnMut(&ScalarExpr)) {
    f(s);
    match s {
        ScalarExpr::Unary(_, x) | ScalarExpr::Cast(_, x) => walk(x, f),
        ScalarExpr::Binary(_, a, b) | ScalarExpr::Cmp(_, a, b) => {
            walk(a, f);
            walk(b, f);
        }
        ScalarExpr::Select(c, t, e) => {
            walk(c, f);
            walk(t, f);
            walk(e, f);
        }
        _ => {}
    }
}

fn count_reads(s: &ScalarExpr, same: &[bool]) -> usize {
    let mut n = 0;
    walk(s, &mut |x| {
        if let ScalarExpr::Access(a) = x {
            n += same[a.input] as usize;
        }
    });
    n
}

/// Merged operand list: `first` then the operands of `second` not already
/// present, leaving out `skip` of each (the fused value). Returns the list and
/// the new positions of both lists' operands (`usize::MAX` for a skipped one).
fn merge_inputs(
    first: &[Operand],
    skip_first: Option<&Operand>,
    second: &[Operand],
    skip_second: Option<&Operand>,
) -> (Vec<Operand>, Vec<usize>, Vec<usize>) {
    let mut merged: Vec<Operand> = Vec::new();
    let mut place = |ops: &[Operand], skip: Option<&Operand>| -> Vec<usize> {
        ops.iter()
            .map(|op| {
                if Some(op) == skip {
                    return usize::MAX;
                }
                merged.iter().position(|m| m == op).unwrap_or_else(|| {
                    merged.push(op.clone());
                    merged.len() - 1
                })
            })
            .collect()
    };
    let a = place(first, skip_first);
    let b = place(second, skip_second);
    (merged, a, b)
}

/// Rewrites every read bottom-up through `f` (which sees each `Access`, and
/// each `InBounds` guard with `true`).
pub fn map_reads(s: &ScalarExpr, f: &dyn Fn(&Access, bool) -> ScalarExpr) -> ScalarExpr {
    let m = |x: &ScalarExpr| Box::new(map_reads(x, f));
    match s {
        ScalarExpr::Access(a) => f(a, false),
        ScalarExpr::InBounds(a) => f(a, true),
        ScalarExpr::Const(_) | ScalarExpr::Acc => s.clone(),
        ScalarExpr::Unary(op, x) => ScalarExpr::Unary(*op, m(x)),
        ScalarExpr::Cast(d, x) => ScalarExpr::Cast(*d, m(x)),
        ScalarExpr::Binary(op, a, b) => ScalarExpr::Binary(*op, m(a), m(b)),
        ScalarExpr::Cmp(op, a, b) => ScalarExpr::Cmp(*op, m(a), m(b)),
        ScalarExpr::Select(c, t, e) => ScalarExpr::Select(m(c), m(t), m(e)),
    }
}

/// The same read of another input number.
fn renumber(a: &Access, to: usize, guard: bool) -> ScalarExpr {
    let a = Access {
        input: to,
        index: a.index.clone(),
    };
    if guard {
        ScalarExpr::InBounds(a)
    } else {
        ScalarExpr::Access(a)
    }
}

fn inline_pointwise(
    consumer: &TensorExpr,
    input: usize,
    same: &[bool],
    producer: &TensorExpr,
    max_recompute: f64,
) -> Option<TensorExpr> {
    let reads = count_reads(&consumer.body, same)
        + consumer
            .epilogue
            .as_ref()
            .map_or(0, |e| count_reads(e, same));
    let points: usize = consumer.all_iters().iter().map(|i| i.extent).product();
    let evaluations = (points * reads) as f64;
    if evaluations > max_recompute * producer.output.numel().max(1) as f64 {
        return None;
    }
    let (inputs, cmap, pmap) = merge_inputs(
        &consumer.inputs,
        Some(&consumer.inputs[input]),
        &producer.inputs,
        None,
    );
    let dtype = producer.output.dtype;
    let subst = |a: &Access, guard: bool| {
        if cmap[a.input] != usize::MAX {
            return renumber(a, cmap[a.input], guard);
        }
        let body = map_reads(&producer.body, &|pa: &Access, pguard: bool| {
            let index = pa.index.iter().map(|e| substitute(e, &a.index)).collect();
            let pa = Access {
                input: pmap[pa.input],
                index,
            };
            if pguard {
                ScalarExpr::InBounds(pa)
            } else {
                ScalarExpr::Access(pa)
            }
        });
        ScalarExpr::cast(dtype, body)
    };
    Some(TensorExpr {
        inputs,
        body: map_reads(&consumer.body, &subst),
        epilogue: consumer.epilogue.as_ref().map(|e| map_reads(e, &subst)),
        ..consumer.clone()
    })
}

fn into_epilogue(
    consumer: &TensorExpr,
    input: usize,
    same: &[bool],
    producer: &TensorExpr,
) -> Option<TensorExpr> {
    let rank = consumer.iters.len();
    if producer.output.shape != consumer.output.shape || producer.iters.len() != rank {
        return None;
    }
    let mut identity = true;
    walk(&consumer.body, &mut |s| {
        if let ScalarExpr::Access(a) = s {
            if same[a.input] {
                identity &= a
                    .index
                    .iter()
                    .enumerate()
                    .all(|(k, e)| *e == AffineExpr::iter(k));
            }
        }
    });
    if !identity {
        return None;
    }
    // Producer inputs keep their numbers; the consumer's others follow.
    let (inputs, _, cmap) = merge_inputs(
        &producer.inputs,
        None,
        &consumer.inputs,
        Some(&consumer.inputs[input]),
    );
    let reduced = producer.epilogue.clone().unwrap_or(ScalarExpr::Acc);
    let reduced = ScalarExpr::cast(producer.output.dtype, reduced);
    let epilogue = map_reads(&consumer.body, &|a: &Access, guard: bool| {
        if cmap[a.input] == usize::MAX && !guard {
            reduced.clone()
        } else {
            renumber(a, cmap[a.input], guard)
        }
    });
    Some(TensorExpr {
        name: consumer.name.clone(),
        output: consumer.output.clone(),
        inputs,
        epilogue: Some(epilogue),
        ..producer.clone()
    })
}

/// `e` with iterator `k` replaced by `by[k]`.
pub fn substitute(e: &AffineExpr, by: &[AffineExpr]) -> AffineExpr {
    let mut out = AffineExpr::constant(e.constant);
    for (c, atom) in &e.terms {
        match atom {
            Atom::Iter(k) => {
                let s = &by[*k];
                out.constant += c * s.constant;
                for (sc, sa) in &s.terms {
                    out = out.plus(c * sc, sa.clone());
                }
            }
            Atom::FloorDiv(x, d) => {
                out = out.plus(*c, Atom::FloorDiv(Box::new(substitute(x, by)), *d));
            }
            Atom::Mod(x, d) => out = out.plus(*c, Atom::Mod(Box::new(substitute(x, by)), *d)),
        }
    }
    out
}
