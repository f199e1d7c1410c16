//! Data movement as index remapping: DepthToSpace/SpaceToDepth (block
//! offsets moved between channel and spatial subscripts), Transpose (a permutation of
//! iterators) and Reshape, Flatten, Squeeze, Unsqueeze, Identity (row-major
//! regrouping: dims are matched in groups of equal size products, and within
//! a group each input subscript is `(flat / stride) % dim` of the group's
//! flat output position; a group of one dim each is the iterator itself).

use super::elementwise::exact_in_f64;
use super::{Ctx, Rule};
use crate::expr::scalar::ScalarExpr as S;
use crate::expr::{AffineExpr as A, Atom, TensorExpr};
use crate::Result;
use std::collections::HashMap;

fn transpose(c: &Ctx) -> Result<Option<TensorExpr>> {
    if c.inputs.len() != 1 || !exact_in_f64(c.ty(0).dtype) {
        return Ok(None);
    }
    let r = c.ty(0).rank();
    let perm: Vec<i64> = match c.attrs.opt_ints("perm")? {
        Some(p) => p,
        None => (0..r as i64).rev().collect(),
    };
    let mut index = vec![A::constant(0); r];
    for (d, &p) in perm.iter().enumerate() {
        match index.get_mut(p as usize) {
            Some(slot) if p >= 0 => *slot = A::iter(d),
            _ => return Ok(None),
        }
    }
    Ok(Some(c.pointwise(S::access(0, index))))
}

/// Row-major strides within a group of dims.
fn local_strides(dims: &[usize]) -> Vec<i64> {
    let mut s = vec![1i64; dims.len()];
    for d in (0..dims.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * dims[d + 1] as i64;
    }
    s
}

/// Fills `index[gi..i]` for the group of input dims `s[gi..i]` and output
/// dims `o[gj..j]` (equal products).
fn group(
    index: &mut [A],
    s: &[usize],
    o: &[usize],
    (gi, i): (usize, usize),
    (gj, j): (usize, usize),
) {
    let os = local_strides(&o[gj..j]);
    let mut flat = A::default();
    for (k, d) in (gj..j).enumerate() {
        if o[d] != 1 {
            flat = flat.plus_iter(os[k], d);
        }
    }
    let is = local_strides(&s[gi..i]);
    for (k, d) in (gi..i).enumerate() {
        index[d] = match s[d] {
            1 => A::constant(0),
            n => {
                let q = flat.clone().floor_div(is[k]);
                if d == gi {
                    q
                } else {
                    q.modulo(n as i64)
                }
            }
        };
    }
}

/// Subscripts reading a tensor of shape `s` as one of shape `o` (same
/// element count) in row-major order; `None` if the counts differ or are 0.
pub(super) fn regroup(s: &[usize], o: &[usize]) -> Option<Vec<A>> {
    let n: usize = s.iter().product();
    if n == 0 || n != o.iter().product::<usize>() {
        return None;
    }
    let mut index = vec![A::constant(0); s.len()];
    let (mut i, mut j) = (0, 0);
    loop {
        while i < s.len() && s[i] == 1 {
            i += 1;
        }
        while j < o.len() && o[j] == 1 {
            j += 1;
        }
        if i >= s.len() || j >= o.len() {
            return Some(index);
        }
        let (gi, gj, mut pi, mut pj) = (i, j, s[i], o[j]);
        (i, j) = (i + 1, j + 1);
        while pi != pj {
            if pi < pj {
                pi *= s.get(i)?;
                i += 1;
            } else {
                pj *= o.get(j)?;
                j += 1;
            }
        }
        group(&mut index, s, o, (gi, i), (gj, j));
    }
}

fn reshape(c: &Ctx) -> Result<Option<TensorExpr>> {
    if c.inputs.len() != 1 || !exact_in_f64(c.ty(0).dtype) {
        return Ok(None);
    }
    let index = regroup(&c.ty(0).shape, &c.output.ty.shape);
    Ok(index.map(|ix| c.pointwise(S::access(0, ix))))
}

/// DepthToSpace (DCR or CRD) and SpaceToDepth on NCHW: channel and spatial
/// subscripts exchange block offsets through `mod` and `floor_div`.
fn depth_space(c: &Ctx) -> Result<Option<TensorExpr>> {
    if c.inputs.len() != 1 || !exact_in_f64(c.ty(0).dtype) || c.ty(0).rank() != 4 {
        return Ok(None);
    }
    let b = c.attrs.int("blocksize")?;
    if b < 1 {
        return Ok(None);
    }
    let it = A::iter;
    let bmod = |d: usize| Atom::Mod(Box::new(it(d)), b);
    let index = if c.node.op.kind == "DepthToSpace" {
        let co = c.output.ty.shape[1] as i64;
        let ch = match c.attrs.str_or("mode", "DCR")? {
            "DCR" => it(1).plus(b * co, bmod(2)).plus(co, bmod(3)),
            "CRD" => A::default()
                .plus_iter(b * b, 1)
                .plus(b, bmod(2))
                .plus(1, bmod(3)),
            _ => return Ok(None),
        };
        vec![it(0), ch, it(2).floor_div(b), it(3).floor_div(b)]
    } else {
        let ci = c.ty(0).shape[1] as i64;
        // Output channel k = (bi·b + bj)·ci + c.
        let (bi, bj) = (it(1).floor_div(b * ci), it(1).floor_div(ci).modulo(b));
        let h = A::default().plus_iter(b, 2);
        let w = A::default().plus_iter(b, 3);
        let plus = |mut x: A, y: A| {
            x.terms.extend(y.terms);
            x.constant += y.constant;
            x
        };
        vec![it(0), it(1).modulo(ci), plus(h, bi), plus(w, bj)]
    };
    Ok(Some(c.pointwise(S::access(0, index))))
}

pub(super) fn register(r: &mut HashMap<&'static str, Rule>) {
    r.insert("DepthToSpace", depth_space as Rule);
    r.insert("SpaceToDepth", depth_space as Rule);
    r.insert("Transpose", transpose as Rule);
    for k in ["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"] {
        r.insert(k, reshape as Rule);
    }
}
