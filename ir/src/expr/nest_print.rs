//! The text form of a loop nest: the expression's header line, packed
//! inputs, one line per loop (indented, with its annotations and bound)
//! followed by the buffers staged there, then the definitions of
//! transformed iterators and the expression itself.
//!
//! ```text
//! y: f32[5] <- x0: f32[5]
//! parallel for d0.o in 0..2
//!   vector(4) for d0.i in 0..min(4, 5 - 4*d0.o)
//!     d0 = d0.i + 4*d0.o
//!     y[d0] = exp(x0[d0])
//! ```

use super::affine::AffineExpr;
use super::nest::{Loop, LoopNest};
use super::print::affine_named;
use super::stage::{packed_shape, Stage, StageKind};
use std::fmt;

fn dims(v: &[usize]) -> String {
    let v: Vec<String> = v.iter().map(|d| d.to_string()).collect();
    v.join(", ")
}

/// `pack w axis 1 by 4 -> f32[7, 2, 4]` or
/// `cache_read w[0.., 4*j.o..] -> f32[7, 4]`.
fn stage_line(n: &LoopNest, s: &Stage, names: &[&str]) -> String {
    let op = &n.expr.inputs[s.input];
    let d = op.ty.dtype.name();
    let (what, shape) = match s.kind {
        StageKind::Pack { axis, block } => {
            let shape = packed_shape(&op.ty.shape, axis, block);
            return format!(
                "pack {} axis {axis} by {block} -> {d}[{}]",
                op.name,
                dims(&shape)
            );
        }
        StageKind::CacheRead => ("cache_read", n.region(s)),
        StageKind::ComputeAt => ("compute_at", n.region(s)),
    };
    let start: Vec<String> = shape
        .start
        .iter()
        .map(|e| format!("{}..", affine_named(e, names)))
        .collect();
    format!(
        "{what} {}[{}] -> {d}[{}]",
        op.name,
        start.join(", "),
        dims(&shape.extent)
    )
}

fn loop_line(l: &Loop, names: &[&str]) -> String {
    let mut tags = vec![];
    if l.parallel {
        tags.push("parallel".to_string());
    }
    if l.reduce {
        tags.push("reduce".to_string());
    }
    if let Some(v) = l.vector {
        tags.push(format!("vector({v})"));
    }
    if l.unroll > 1 {
        tags.push(format!("unroll({})", l.unroll));
    }
    tags.push("for".into());
    let range = if l.bounds.is_empty() {
        format!("0..{}", l.extent)
    } else {
        let b: Vec<String> = l.bounds.iter().map(|b| affine_named(b, names)).collect();
        format!("0..min({}, {})", l.extent, b.join(", "))
    };
    format!("{} {} in {range}", tags.join(" "), l.name)
}

impl fmt::Display for LoopNest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = vec!["?"; self.id_count()];
        for l in &self.loops {
            names[l.id] = &l.name;
        }
        let text = self.expr.to_string();
        let (head, body) = text.split_once('\n').unwrap_or((&text, ""));
        writeln!(f, "{head}")?;
        for s in self.stages.iter().filter(|s| s.at.is_none()) {
            writeln!(f, "{}", stage_line(self, s, &names))?;
        }
        let mut pad = String::new();
        for l in &self.loops {
            writeln!(f, "{pad}{}", loop_line(l, &names))?;
            pad.push_str("  ");
            for s in self.stages.iter().filter(|s| s.at == Some(l.id)) {
                writeln!(f, "{pad}{}", stage_line(self, s, &names))?;
            }
        }
        for (k, (it, d)) in self.expr.all_iters().iter().zip(&self.defs).enumerate() {
            let same = *d == AffineExpr::iter(k) && names.get(k) == Some(&it.name.as_str());
            if !same {
                writeln!(f, "{pad}{} = {}", it.name, affine_named(d, &names))?;
            }
        }
        write!(f, "{pad}{body}")
    }
}
