//! The text form of a loop nest: the expression's header line, one line per
//! loop (indented, with its annotations and bound), then the definitions
//! of transformed iterators and the expression itself.
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
use std::fmt;

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
        let mut pad = String::new();
        for l in &self.loops {
            writeln!(f, "{pad}{}", loop_line(l, &names))?;
            pad.push_str("  ");
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
