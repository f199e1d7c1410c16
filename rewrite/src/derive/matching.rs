//! Matching a program to a known kernel: the one stage that is neither
//! foldable (reads only constants) nor memory-bound (no reduction) must be
//! a convolution or a GEMM ([`match_conv`](super::match_conv),
//! [`match_gemm`](super::match_gemm)). An epilogue the kernel cannot take
//! is split off into a stage of its own: `Y = e(sum f)` ≡
//! `C = sum f`, `Y = e(C)`; it joins the memory-bound remainder.

use super::kernel::{Kernel, Match};
use super::match_conv::match_conv;
use super::match_gemm::match_gemm;
use super::Program;
use kiln_ir::expr::{AffineExpr, Operand, ScalarExpr, TensorExpr};

/// Replaces the accumulator in `s` by `with`.
fn replace_acc(s: &ScalarExpr, with: &ScalarExpr) -> ScalarExpr {
    let m = |x: &ScalarExpr| replace_acc(x, with);
    match s {
        ScalarExpr::Acc => with.clone(),
        ScalarExpr::Unary(op, x) => ScalarExpr::unary(*op, m(x)),
        ScalarExpr::Cast(d, x) => ScalarExpr::cast(*d, m(x)),
        ScalarExpr::Binary(op, a, b) => ScalarExpr::binary(*op, m(a), m(b)),
        ScalarExpr::Cmp(op, a, b) => ScalarExpr::cmp(*op, m(a), m(b)),
        ScalarExpr::Select(c, t, e) => ScalarExpr::select(m(c), m(t), m(e)),
        _ => s.clone(),
    }
}

/// `e` as its contraction `core` and an element-wise epilogue stage.
pub fn split_epilogue(e: &TensorExpr, core: &str) -> Option<[TensorExpr; 2]> {
    let ep = e.epilogue.as_ref()?;
    let mut c = e.clone();
    c.name = core.to_string();
    c.epilogue = None;
    let c = super::util::prune_inputs(&c);
    let mut y = e.clone();
    y.reduce = None;
    y.epilogue = None;
    y.inputs.push(Operand {
        name: core.to_string(),
        ty: c.output.clone(),
    });
    let read = ScalarExpr::access(
        y.inputs.len() - 1,
        (0..e.iters.len()).map(AffineExpr::iter).collect(),
    );
    y.body = replace_acc(ep, &read);
    let y = super::util::prune_inputs(&y);
    (c.check().is_ok() && y.check().is_ok()).then_some([c, y])
}

fn kernel_of(e: &TensorExpr) -> Option<Kernel> {
    match_conv(e)
        .map(Kernel::Conv)
        .or_else(|| match_gemm(e).map(Kernel::Gemm))
}

/// The kernel match of `p`, if there is one.
pub fn match_program(p: &Program) -> Option<Match> {
    let folded: Vec<usize> = (0..p.stages.len())
        .filter(|&k| p.is_constant_stage(k))
        .collect();
    let heavy: Vec<usize> = (0..p.stages.len())
        .filter(|k| !folded.contains(k) && p.stages[*k].reduce.is_some())
        .collect();
    let [k] = heavy.as_slice() else {
        return None;
    };
    let e = &p.stages[*k];
    let (program, kernel) = match kernel_of(e) {
        Some(kn) => (p.clone(), kn),
        None => {
            let core = p.fresh_name(&format!("{}_acc", e.name));
            let [c, y] = split_epilogue(e, &core)?;
            let kn = kernel_of(&c)?;
            (super::replace_stage(p, *k, vec![c, y]), kn)
        }
    };
    let remainder = (0..program.stages.len())
        .filter(|&s| s != *k && !program.is_constant_stage(s))
        .collect();
    let folded = (0..program.stages.len())
        .filter(|&s| program.is_constant_stage(s))
        .collect();
    Some(Match {
        program,
        stage: *k,
        kernel,
        folded,
        remainder,
    })
}
