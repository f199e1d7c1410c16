//! Identity: the output is the input (used where a graph output must carry its own name).

use crate::{Registry, Tensor};

pub fn register(r: &mut Registry) {
    r.add(
        "Identity",
        |_, ins, _| {
            super::util::arity(ins, 1, 1)?;
            Ok(vec![ins[0].clone()])
        },
        |_, ins, _| {
            super::util::arity(ins, 1, 1)?;
            Ok(vec![Tensor::clone(ins[0])])
        },
    );
}
