//! Recognizes the 2-D convolution form a `Conv` lowers to:
//! `Y[n, m, oh, ow] = sum(c, kh, kw) X[n, chan, s*oh + d*kh - p, ..] * W[m, c, kh, kw]`
//! with `chan = c` (one group), `cg*(m / (M/G)) + c` (G groups) or `cg*m + c`
//! (one output channel per group), zero-filled guards where padded, f32
//! throughout, optionally `+ bias[m]` in the epilogue.

use super::kernel::Conv;
use super::util::{factor_access, factors};
use kiln_ir::expr::{Access, AffineExpr as A, BinaryOp, ReduceKind, ScalarExpr, TensorExpr};
use kiln_ir::DType;

/// Stride, dilation and begin pad of spatial subscript `s = st*o + dl*k - p`.
fn tap(s: &A, o: usize, k: usize) -> Option<(usize, usize, usize)> {
    let (st, dl) = (s.linear_coef(o)?, s.linear_coef(k)?);
    let rebuilt = A::default()
        .plus_iter(st, o)
        .plus_iter(dl, k)
        .offset(s.constant);
    let ok = st > 0 && dl > 0 && s.constant <= 0 && rebuilt.simplified(None) == s.simplified(None);
    ok.then_some((st as usize, dl as usize, (-s.constant) as usize))
}

fn bias(e: &TensorExpr) -> Option<Option<String>> {
    let Some(ep) = &e.epilogue else {
        return Some(None);
    };
    match ep {
        ScalarExpr::Binary(BinaryOp::Add, a, b) if **a == ScalarExpr::Acc => match &**b {
            ScalarExpr::Access(x) if x.index == [A::iter(1)] => {
                Some(Some(e.inputs[x.input].name.clone()))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The channel subscript for `groups` groups of `cg` input channels.
fn chan(groups: usize, cg: usize, c_out: usize) -> A {
    if groups == 1 {
        return A::iter(4);
    }
    let per = (c_out / groups).max(1) as i64;
    let mut ch = A::iter(1).floor_div(per);
    ch.terms[0].0 = cg as i64;
    ch.plus_iter(1, 4)
}

/// The end pad that gives `out` outputs, if one does.
fn end_pad(size: usize, out: usize, k: usize, st: usize, dl: usize, begin: usize) -> Option<usize> {
    let need = (out - 1) * st + dl * (k - 1) + 1;
    let end = need.saturating_sub(size + begin);
    ((size + begin + end - dl * (k - 1) - 1) / st + 1 == out).then_some(end)
}

/// The convolution this stage is, if it is one.
pub fn match_conv(e: &TensorExpr) -> Option<Conv> {
    let r = e.reduce.as_ref()?;
    let f32s = e.output.dtype == DType::F32 && e.inputs.iter().all(|o| o.ty.dtype == DType::F32);
    if r.kind != ReduceKind::Sum || r.iters.len() != 3 || e.iters.len() != 4 || !f32s {
        return None;
    }
    let fs = factors(&e.body);
    let [x, w]: [(&Access, bool); 2] = [factor_access(fs.first()?)?, factor_access(fs.get(1)?)?];
    let ((x, guarded), (w, false)) = (x, w) else {
        return None;
    };
    let (xs, ws) = (&e.inputs[x.input].ty.shape, &e.inputs[w.input].ty.shape);
    if fs.len() != 2 || xs.len() != 4 || ws.len() != 4 {
        return None;
    }
    if w.index != [A::iter(1), A::iter(4), A::iter(5), A::iter(6)] || x.index[0] != A::iter(0) {
        return None;
    }
    let ext: Vec<usize> = e.all_iters().iter().map(|i| i.extent).collect();
    if ext[..2] != [xs[0], ws[0]] || ext[4..] != ws[1..] || ext[2] == 0 || ext[3] == 0 {
        return None;
    }
    let (c_out, cg) = (ws[0], ws[1]);
    let groups = xs[1] / cg.max(1);
    if groups == 0 || xs[1] % cg != 0 || c_out % groups != 0 {
        return None;
    }
    if x.index[1].simplified(None) != chan(groups, cg, c_out).simplified(None) {
        return None;
    }
    let (sh, dh, pt) = tap(&x.index[2], 2, 5)?;
    let (sw, dw, pl) = tap(&x.index[3], 3, 6)?;
    let pb = end_pad(xs[2], e.iters[2].extent, ws[2], sh, dh, pt)?;
    let pr = end_pad(xs[3], e.iters[3].extent, ws[3], sw, dw, pl)?;
    if !guarded && pt + pl + pb + pr > 0 {
        return None;
    }
    Some(Conv {
        batch: xs[0],
        c_in: xs[1],
        h: xs[2],
        w: xs[3],
        c_out,
        kh: ws[2],
        kw: ws[3],
        stride: [sh, sw],
        pads: [pt, pl, pb, pr],
        dilation: [dh, dw],
        groups,
        x: e.inputs[x.input].name.clone(),
        weight: e.inputs[w.input].name.clone(),
        bias: bias(e)?,
    })
}
