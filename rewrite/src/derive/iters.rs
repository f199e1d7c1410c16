//! Iterator-list surgery shared by the variable substitutions: removing or
//! replacing output and reduction iterators while keeping the output type
//! in step (a removed or merged output dimension is a row-major view).

use kiln_ir::expr::{Iter, TensorExpr};

/// Where iterator number `t` lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Output iterator at this position.
    Out(usize),
    /// Reduction iterator at this position.
    Red(usize),
}

/// The slot of iterator number `t` of `e`.
pub fn slot(e: &TensorExpr, t: usize) -> Slot {
    if t < e.iters.len() {
        Slot::Out(t)
    } else {
        Slot::Red(t - e.iters.len())
    }
}

/// Replaces iterators `t..t + n` (all in one list) by `new` (empty to
/// remove), updating the output shape to the output iterators' extents.
pub fn splice(e: &mut TensorExpr, t: usize, n: usize, new: Vec<Iter>) {
    match slot(e, t) {
        Slot::Out(k) => {
            e.iters.splice(k..k + n, new);
            e.output.shape = e.iters.iter().map(|i| i.extent).collect();
        }
        Slot::Red(k) => {
            if let Some(r) = e.reduce.as_mut() {
                r.iters.splice(k..k + n, new);
            }
        }
    }
}

/// An iterator name not used by `e`, starting from `base`.
pub fn fresh_iter(e: &TensorExpr, base: &str) -> String {
    let all = e.all_iters();
    let mut name = base.to_string();
    let mut k = 1;
    while all.iter().any(|i| i.name == name) {
        name = format!("{base}{k}");
        k += 1;
    }
    name
}
