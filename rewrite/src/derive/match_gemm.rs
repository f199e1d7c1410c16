//! Recognizes the GEMM form of a stage:
//! `C[b?, i, j] = sum(k) A[b?, i, k] * B[b?, k, j]` (or `B[b?, j, k]`),
//! every subscript a plain iterator, `b` present in either operand or not
//! (then broadcast), f32 throughout, optionally `+ bias[j]` in the epilogue.

use super::kernel::Gemm;
use super::util::{factor_access, factors, plain_iter};
use kiln_ir::expr::{Access, BinaryOp, ReduceKind, ScalarExpr, TensorExpr};
use kiln_ir::DType;

/// The plain iterators of a read, or `None` if a subscript is not one.
fn iters_of(a: &Access) -> Option<Vec<usize>> {
    a.index.iter().map(plain_iter).collect()
}

/// A bias read `+ bias[j]` in the epilogue.
fn col_bias(e: &TensorExpr, j: usize) -> Option<Option<String>> {
    let Some(ep) = &e.epilogue else {
        return Some(None);
    };
    match ep {
        ScalarExpr::Binary(BinaryOp::Add, a, b) if **a == ScalarExpr::Acc => match &**b {
            ScalarExpr::Access(x) if iters_of(x)? == [j] => {
                Some(Some(e.inputs[x.input].name.clone()))
            }
            _ => None,
        },
        _ => None,
    }
}

/// `A`'s subscripts for batch `b?`, row `i`, inner `k`: `[b?, i, k]`.
fn layout_ok(its: &[usize], b: Option<usize>, first: usize, second: usize) -> bool {
    let want: Vec<usize> = b.into_iter().chain([first, second]).collect();
    its == want.as_slice() || (b.is_some() && its == [first, second])
}

/// The GEMM this stage is, if it is one.
pub fn match_gemm(e: &TensorExpr) -> Option<Gemm> {
    let r = e.reduce.as_ref()?;
    let f32s = e.output.dtype == DType::F32 && e.inputs.iter().all(|o| o.ty.dtype == DType::F32);
    if r.kind != ReduceKind::Sum || r.iters.len() != 1 || !f32s || !(2..=3).contains(&e.iters.len())
    {
        return None;
    }
    let fs = factors(&e.body);
    let [(x, false), (y, false)] = [factor_access(fs.first()?)?, factor_access(fs.get(1)?)?] else {
        return None;
    };
    if fs.len() != 2 {
        return None;
    }
    let no = e.iters.len();
    let (b, i, j, k) = (no.checked_sub(3), no - 2, no - 1, no);
    let (xi, yi) = (iters_of(x)?, iters_of(y)?);
    let (a, bm, ai, bi) = if xi.contains(&i) {
        (x, y, xi, yi)
    } else {
        (y, x, yi, xi)
    };
    if !layout_ok(&ai, b, i, k) {
        return None;
    }
    let b_transposed = if layout_ok(&bi, b, k, j) {
        false
    } else if layout_ok(&bi, b, j, k) {
        true
    } else {
        return None;
    };
    let ext = |t: usize| e.all_iters()[t].extent;
    let dense = |acc: &Access, its: &[usize]| {
        e.inputs[acc.input]
            .ty
            .shape
            .iter()
            .copied()
            .eq(its.iter().map(|&t| ext(t)))
    };
    if !dense(a, &ai) || !dense(bm, &bi) {
        return None;
    }
    let (m, n, kk) = (ext(i), ext(j), ext(k));
    let stride = |its: &[usize], per: usize| if its.len() == 3 { per } else { 0 };
    Some(Gemm {
        batch: b.map_or(1, ext),
        m,
        n,
        k: kk,
        a_batch_stride: stride(&ai, m * kk),
        b_batch_stride: stride(&bi, n * kk),
        b_transposed,
        a: e.inputs[a.input].name.clone(),
        b: e.inputs[bm.input].name.clone(),
        bias: col_bias(e, j)?,
    })
}
