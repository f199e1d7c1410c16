//! Conv (any number of spatial dims, strides, pads / auto_pad, dilations,
//! groups) as a sum over input channels of the group and kernel taps:
//!
//! `Y[n, m, oh, ow] = sum(c, kh, kw) guard(X[n, g(m)*Cg + c, s*oh + d*kh - p, ...], 0) * W[m, c, kh, kw]`
//!
//! with `g(m) = m / (M / group)`; reads fall back to 0 in the padding, and
//! the bias is added in the epilogue. Float dtypes only.

use super::elementwise::plain_float;
use super::{Ctx, Rule};
use crate::expr::scalar::{BinaryOp, ScalarExpr as S};
use crate::expr::tensor::{Iter, ReduceKind, Reduction};
use crate::expr::{AffineExpr as A, TensorExpr};
use crate::ops::conv::window;
use crate::Result;
use std::collections::HashMap;

/// Names of the output and kernel iterators of spatial dim `d` of `n`.
fn spatial_names(d: usize, n: usize) -> (String, String) {
    match (n, d) {
        (2, 0) => ("oh".into(), "kh".into()),
        (2, _) => ("ow".into(), "kw".into()),
        _ => (format!("o{d}"), format!("k{d}")),
    }
}

fn conv(c: &Ctx) -> Result<Option<TensorExpr>> {
    let n_in = c.inputs.len();
    if !(2..=3).contains(&n_in) || !c.inputs.iter().all(|o| plain_float(o.ty.dtype)) {
        return Ok(None);
    }
    let (xs, ws) = (&c.ty(0).shape, &c.ty(1).shape);
    if xs.len() < 3 || ws.len() != xs.len() {
        return Ok(None);
    }
    let sp = xs.len() - 2;
    let group = c.attrs.int_or("group", 1)?.max(1) as usize;
    let win = window(c.attrs, &xs[2..], &ws[2..], false)?;
    let (m, cg) = (ws[0], ws[1]);
    let r = xs.len(); // output rank; reduction iterators start here
    let mut chan = A::iter(r);
    if group > 1 {
        let per = (m / group).max(1) as i64;
        chan = A::iter(1).floor_div(per);
        chan.terms[0].0 = cg as i64;
        chan = chan.plus_iter(1, r);
    }
    let mut names = vec!["n".to_string(), "m".to_string()];
    let mut red = vec![Iter::new("c", cg)];
    let (mut xi, mut wi) = (vec![A::iter(0), chan], vec![A::iter(1), A::iter(r)]);
    for d in 0..sp {
        let (o, k) = spatial_names(d, sp);
        names.push(o);
        red.push(Iter::new(k, ws[2 + d]));
        let tap = A::default()
            .plus_iter(win.strides[d] as i64, 2 + d)
            .plus_iter(win.dilations[d] as i64, r + 1 + d)
            .offset(-(win.begin[d] as i64));
        xi.push(tap);
        wi.push(A::iter(r + 1 + d));
    }
    let padded = win.begin.iter().chain(&win.end).any(|&p| p > 0);
    let x = if padded {
        S::guarded(0, xi, 0.0)
    } else {
        S::access(0, xi)
    };
    let mut e = c.expr(&names, S::binary(BinaryOp::Mul, x, S::access(1, wi)));
    e.reduce = Some(Reduction {
        kind: ReduceKind::Sum,
        iters: red,
    });
    if n_in == 3 {
        e.epilogue = Some(S::binary(
            BinaryOp::Add,
            S::Acc,
            S::access(2, vec![A::iter(1)]),
        ));
    }
    Ok(Some(e))
}

pub(super) fn register(r: &mut HashMap<&'static str, Rule>) {
    r.insert("Conv", conv as Rule);
}
