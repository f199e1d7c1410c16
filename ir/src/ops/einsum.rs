//! Einsum (a child of the linalg family): numpy `einsum` semantics.
//!
//! Attribute `equation` (string), e.g. `"bij,bjk->bik"`. Supported: repeated
//! indices within a term (diagonals), summation over indices missing from
//! the output, `...` (broadcast dimensions, right-aligned across terms) and
//! the implicit output form (no `->`: broadcast dimensions first, then the
//! indices that appear exactly once, in alphabetical order). Floats are
//! computed in f64, integers in wrapping i64.

use super::Acc;
use crate::ops::util::{arity, same_dtype};
use crate::{dispatch_numeric, ensure, op_err, Elem, Registry, Result, Tensor, TensorType};

/// A dimension label: a letter, or the k-th broadcast dimension of `...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Label {
    Ell(usize),
    Char(char),
}

/// A parsed equation: labels of each input and of the output, with every
/// label's size.
#[derive(Debug)]
struct Plan {
    inputs: Vec<Vec<Label>>,
    output: Vec<Label>,
    labels: Vec<(Label, usize)>,
}

/// Splits one term into letters and an optional ellipsis position.
fn parse_term(t: &str) -> Result<(Vec<char>, Option<usize>)> {
    let t = t.trim();
    let mut chars = Vec::new();
    let mut ell = None;
    let mut rest = t;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("...") {
            ensure!(ell.is_none(), "Einsum term `{t}` has two ellipses");
            ell = Some(chars.len());
            rest = r;
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        ensure!(
            c.is_ascii_alphabetic(),
            "Einsum term `{t}` has an invalid character `{c}`"
        );
        chars.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok((chars, ell))
}

/// Expands a term against a rank: the ellipsis becomes `rank - letters` broadcast labels
/// (right-aligned against `n_ell`, the widest ellipsis of the equation).
fn expand(chars: &[char], ell: Option<usize>, n: usize, n_ell: usize) -> Vec<Label> {
    let mut out: Vec<Label> = chars.iter().map(|&c| Label::Char(c)).collect();
    if let Some(p) = ell {
        let ls = (n_ell - n..n_ell).map(Label::Ell);
        out.splice(p..p, ls);
    }
    out
}

fn plan(eq: &str, shapes: &[&[usize]]) -> Result<Plan> {
    let eq: String = eq.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    ensure!(
        terms.len() == shapes.len(),
        "Einsum equation `{eq}` has {} terms for {} inputs",
        terms.len(),
        shapes.len()
    );
    let mut parsed = Vec::new();
    let mut n_ell = 0;
    for (t, s) in terms.iter().zip(shapes) {
        let (chars, ell) = parse_term(t)?;
        let ne = match ell {
            Some(_) => s.len().checked_sub(chars.len()),
            None => (s.len() == chars.len()).then_some(0),
        }
        .ok_or_else(|| op_err!("Einsum term `{t}` does not fit an input of shape {s:?}"))?;
        n_ell = n_ell.max(ne);
        parsed.push((chars, ell, ne));
    }
    let inputs: Vec<Vec<Label>> = parsed
        .iter()
        .map(|(c, e, ne)| expand(c, *e, *ne, n_ell))
        .collect();
    let mut labels: Vec<(Label, usize)> = Vec::new();
    for (ls, s) in inputs.iter().zip(shapes) {
        for (&l, &d) in ls.iter().zip(s.iter()) {
            match labels.iter_mut().find(|e| e.0 == l) {
                Some(e) if e.1 == d || d == 1 => {}
                Some(e) if e.1 == 1 && matches!(l, Label::Ell(_)) => e.1 = d,
                Some(e) => {
                    return Err(op_err!(
                        "Einsum index {l:?} has sizes {} and {d} in `{eq}`",
                        e.1
                    ))
                }
                None => labels.push((l, d)),
            }
        }
    }
    let output = match rhs {
        Some(r) => {
            let (chars, ell) = parse_term(r)?;
            let out = expand(&chars, ell, if ell.is_some() { n_ell } else { 0 }, n_ell);
            for (i, l) in out.iter().enumerate() {
                ensure!(
                    labels.iter().any(|e| e.0 == *l),
                    "Einsum output index {l:?} appears in no input"
                );
                ensure!(
                    !out[..i].contains(l),
                    "Einsum output index {l:?} is repeated"
                );
            }
            out
        }
        None => {
            let mut out: Vec<Label> = (0..n_ell).map(Label::Ell).collect();
            let mut once: Vec<Label> = labels
                .iter()
                .map(|e| e.0)
                .filter(|l| {
                    matches!(l, Label::Char(_))
                        && inputs.iter().flatten().filter(|x| *x == l).count() == 1
                })
                .collect();
            once.sort();
            out.extend(once);
            out
        }
    };
    Ok(Plan {
        inputs,
        output,
        labels,
    })
}

/// An equation in index form: labels numbered in order of first
/// appearance, each input's labels, the output's labels, and each label's size.
pub(crate) struct Indexed {
    pub inputs: Vec<Vec<usize>>,
    pub output: Vec<usize>,
    pub sizes: Vec<usize>,
}

/// Parses `eq` against the input shapes into index form.
pub(crate) fn indexed(eq: &str, shapes: &[&[usize]]) -> Result<Indexed> {
    let p = plan(eq, shapes)?;
    let id = |l: &Label| p.labels.iter().position(|e| e.0 == *l).unwrap_or(0);
    Ok(Indexed {
        inputs: p
            .inputs
            .iter()
            .map(|ls| ls.iter().map(id).collect())
            .collect(),
        output: p.output.iter().map(id).collect(),
        sizes: p.labels.iter().map(|e| e.1).collect(),
    })
}

impl Plan {
    fn out_shape(&self) -> Vec<usize> {
        self.output.iter().map(|l| self.size(*l)).collect()
    }
    fn size(&self, l: Label) -> usize {
        self.labels.iter().find(|e| e.0 == l).map_or(1, |e| e.1)
    }
    /// Evaluates the contraction by visiting every assignment of every label.
    fn run<A: Acc>(&self, data: &[Vec<A>], shapes: &[&[usize]], one: A) -> Vec<A> {
        let mut order: Vec<Label> = self.output.clone();
        order.extend(
            self.labels
                .iter()
                .map(|e| e.0)
                .filter(|l| !self.output.contains(l)),
        );
        let sizes: Vec<usize> = order.iter().map(|l| self.size(*l)).collect();
        // For each input, the stride each label in `order` contributes.
        let in_strides: Vec<Vec<usize>> = self
            .inputs
            .iter()
            .zip(shapes)
            .map(|(ls, s)| {
                let st = crate::strides(s);
                order
                    .iter()
                    .map(|l| {
                        ls.iter()
                            .zip(&st)
                            .zip(s.iter())
                            .filter(|((x, _), &d)| *x == l && d != 1)
                            .map(|((_, &st), _)| st)
                            .sum()
                    })
                    .collect()
            })
            .collect();
        let out_st = crate::strides(&self.out_shape());
        let n_out = self.output.len();
        let mut out = vec![A::default(); self.out_shape().iter().product()];
        let total: usize = sizes.iter().product();
        let mut idx = vec![0usize; order.len()];
        for _ in 0..total {
            let mut p = one;
            for (k, d) in data.iter().enumerate() {
                let off: usize = idx.iter().zip(&in_strides[k]).map(|(i, s)| i * s).sum();
                p = A::default().madd(p, d[off]);
            }
            let o: usize = idx[..n_out].iter().zip(&out_st).map(|(i, s)| i * s).sum();
            out[o] = out[o].madd(p, one);
            for a in (0..idx.len()).rev() {
                idx[a] += 1;
                if idx[a] < sizes[a] {
                    break;
                }
                idx[a] = 0;
            }
        }
        out
    }
}

fn infer(eq: &str, ins: &[&TensorType]) -> Result<TensorType> {
    ensure!(!ins.is_empty(), "Einsum expects at least one input");
    let d = same_dtype(ins)?;
    ensure!(d.is_numeric(), "Einsum does not support {d}");
    let shapes: Vec<&[usize]> = ins.iter().map(|t| t.shape.as_slice()).collect();
    Ok(TensorType::new(d, plan(eq, &shapes)?.out_shape()))
}

fn eval(eq: &str, ins: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let ty = infer(eq, &tys.iter().collect::<Vec<_>>())?;
    let shapes: Vec<&[usize]> = ins.iter().map(|t| t.shape()).collect();
    let p = plan(eq, &shapes)?;
    let d = ty.dtype;
    if d.is_float() {
        let data: Vec<Vec<f64>> = ins.iter().map(|t| t.to_f64_vec()).collect();
        return Ok(Tensor::from_vec(ty.shape, p.run(&data, &shapes, 1.0))?.cast(d));
    }
    let data = ins
        .iter()
        .map(|t| t.to_i64_vec())
        .collect::<Result<Vec<_>>>()?;
    let v = p.run(&data, &shapes, 1i64);
    Ok(
        dispatch_numeric!(d, T => Tensor::from_vec(ty.shape, v.into_iter().map(T::from_i64).collect::<Vec<T>>())?,
        _ => return Err(op_err!("Einsum does not support {d}"))),
    )
}

pub fn register(r: &mut Registry) {
    r.add(
        "Einsum",
        |a, ins, _| {
            arity(ins, 1, usize::MAX)?;
            Ok(vec![infer(a.str_or("equation", "")?, ins)?])
        },
        |a, ins, _| Ok(vec![eval(a.str_or("equation", "")?, ins)?]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
    }

    #[test]
    fn diagonal_and_trace() {
        let x = t(&[2, 2], &[1., 2., 3., 4.]);
        let d = eval("ii->i", &[&x]).unwrap();
        assert_eq!(d.as_slice::<f32>().unwrap(), &[1., 4.]);
        let tr = eval("ii", &[&x]).unwrap();
        assert_eq!(tr.as_slice::<f32>().unwrap(), &[5.]);
    }

    #[test]
    fn implicit_sorted_and_ellipsis() {
        let a = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let y = eval("ji", &[&a]).unwrap(); // implicit output "ij": a transpose
        assert_eq!(y.shape(), &[3, 2]);
        assert_eq!(y.as_slice::<f32>().unwrap(), &[1., 4., 2., 5., 3., 6.]);
        let b = t(&[3], &[1., 1., 1.]);
        let z = eval("...j,j->...", &[&a, &b]).unwrap();
        assert_eq!(z.as_slice::<f32>().unwrap(), &[6., 15.]);
    }

    /// Expected values from numpy.einsum.
    #[test]
    fn matches_numpy() {
        let a: Vec<f32> = (0..12).map(|v| v as f32 - 5.0).collect();
        let a = t(&[1, 2, 2, 3], &a);
        let b: Vec<f32> = (0..6).map(|v| v as f32 * 0.5).collect();
        let b = t(&[3, 2], &b);
        let y = eval("...ij,jk->...ik", &[&a, &b]).unwrap();
        assert_eq!(y.shape(), &[1, 2, 2, 2]);
        let want = [-10.0, -16.0, -1.0, -2.5, 8.0, 11.0, 17.0, 24.5];
        assert_eq!(y.as_slice::<f32>().unwrap(), &want);
        let c: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let c = t(&[2, 2, 2], &c);
        let d = eval("bii->bi", &[&c]).unwrap();
        assert_eq!(d.as_slice::<f32>().unwrap(), &[0., 3., 4., 7.]);
        let e = eval("iib->b", &[&c]).unwrap();
        assert_eq!(e.as_slice::<f32>().unwrap(), &[6., 8.]);
        let f = eval("kji", &[&c]).unwrap();
        assert_eq!(
            f.as_slice::<f32>().unwrap(),
            &[0., 4., 2., 6., 1., 5., 3., 7.]
        );
        assert!(eval("ij,jk", &[&c, &c]).is_err());
    }
}
