//! Recognition of the decomposed forms PyTorch's ONNX exporter writes, into
//! the single ops the IR has (each checked against the op's own `eval`):
//! - `layer-norm` ([`layer_norm`]): the mean/variance chain over the last axis
//!   → `LayerNormalization(axis=-1, epsilon)`;
//! - `gelu-erf`, `gelu-tanh` ([`gelu`]): `x·½·(1 + erf(x/√2))` → `Gelu`, and
//!   the tanh approximation → `Gelu(approximate="tanh")`;
//! - `softmax-stable`, `softmax-exp-sum` ([`softmax`]): `exp(x - max x) / Σ`
//!   (exact) and `exp(x) / Σ exp(x)` (equal where `exp` does not overflow);
//! - `attention` ([`attention`]): `softmax(Q·Kᵀ·s + mask)·V` → `Attention`.
//!
//! Constants inside the forms (½, 1, √2, ε, ...) are checked by value with
//! the tolerance in [`super::consts`]. Every commutative operand order is
//! accepted, as the exporter's order depends on how the model was written.

#[path = "patterns/attention.rs"]
mod attention;
#[path = "patterns/gelu.rs"]
mod gelu;
#[path = "patterns/layer_norm.rs"]
mod layer_norm;
#[path = "patterns/softmax.rs"]
mod softmax;

use super::RuleDef;

pub(super) fn rules() -> Vec<RuleDef> {
    let mut r = vec![layer_norm::rule()];
    r.extend(gelu::rules());
    r.extend(softmax::rules());
    r.push(attention::rule());
    r
}
