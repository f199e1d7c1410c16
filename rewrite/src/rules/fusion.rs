//! Fusion of linear ops:
//! - `merge-parallel-linear` ([`merge`], multi-pattern): MatMuls (or Gemms,
//!   or Convs) that read one input with constant weights become one op on the
//!   concatenated weights and a `Split` of its output (the QKV projections);
//! - `matmul-add-gemm`, `gemm-add-bias`, `conv-add-bias` ([`bias`]): a bias
//!   `Add` after a 2-D MatMul, a Gemm without `C`, or a Conv becomes the op's
//!   own bias operand.

#[path = "fusion/bias.rs"]
mod bias;
#[path = "fusion/merge.rs"]
mod merge;

use super::RuleDef;

pub(super) fn rules() -> Vec<RuleDef> {
    let mut r = vec![merge::rule()];
    r.extend(bias::rules());
    r
}
