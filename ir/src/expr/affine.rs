//! Index expressions: quasi-affine combinations of loop iterators.
//!
//! An [`AffineExpr`] is `c0 + sum(coef * atom)`, where an atom is an iterator
//! or the floor division / modulo of another affine expression by a positive
//! constant. Pure affine subscripts (every atom an iterator) cover
//! element-wise ops, matmul and convolution; division and modulo appear only
//! where shapes are regrouped (Reshape) or channels are split into groups.

use serde::{Deserialize, Serialize};

/// One indivisible index term.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Atom {
    /// Iterator number `.0` of the expression (output iterators first, then
    /// reduction iterators).
    Iter(usize),
    /// `floor(e / d)`, `d > 0`.
    FloorDiv(Box<AffineExpr>, i64),
    /// `e mod d` (non-negative), `d > 0`.
    Mod(Box<AffineExpr>, i64),
}

/// `constant + sum(coef * atom)`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AffineExpr {
    pub terms: Vec<(i64, Atom)>,
    pub constant: i64,
}

impl AffineExpr {
    /// The constant `c`.
    pub fn constant(c: i64) -> AffineExpr {
        AffineExpr {
            terms: vec![],
            constant: c,
        }
    }

    /// Iterator `i` alone.
    pub fn iter(i: usize) -> AffineExpr {
        AffineExpr {
            terms: vec![(1, Atom::Iter(i))],
            constant: 0,
        }
    }

    /// Adds `coef * atom` (dropping zero coefficients), builder style.
    pub fn plus(mut self, coef: i64, atom: Atom) -> AffineExpr {
        if coef != 0 {
            self.terms.push((coef, atom));
        }
        self
    }

    /// Adds `coef * iterator i`, builder style.
    pub fn plus_iter(self, coef: i64, i: usize) -> AffineExpr {
        self.plus(coef, Atom::Iter(i))
    }

    /// Adds a constant, builder style.
    pub fn offset(mut self, c: i64) -> AffineExpr {
        self.constant += c;
        self
    }

    /// `floor(self / d)` as a new expression (the identity when `d == 1`).
    pub fn floor_div(self, d: i64) -> AffineExpr {
        if d == 1 {
            return self;
        }
        AffineExpr::default().plus(1, Atom::FloorDiv(Box::new(self), d))
    }

    /// `self mod d` as a new expression.
    pub fn modulo(self, d: i64) -> AffineExpr {
        AffineExpr::default().plus(1, Atom::Mod(Box::new(self), d))
    }

    /// True when every atom is an iterator (no division or modulo).
    pub fn is_affine(&self) -> bool {
        self.terms.iter().all(|(_, a)| matches!(a, Atom::Iter(_)))
    }

    /// The value for the given iterator values; `None` for an unknown
    /// iterator, a non-positive divisor or an overflow.
    pub fn eval(&self, iters: &[i64]) -> Option<i64> {
        let mut v = self.constant;
        for (c, a) in &self.terms {
            let x = match a {
                Atom::Iter(i) => *iters.get(*i)?,
                Atom::FloorDiv(e, d) if *d > 0 => e.eval(iters)?.div_euclid(*d),
                Atom::Mod(e, d) if *d > 0 => e.eval(iters)?.rem_euclid(*d),
                _ => return None,
            };
            v = v.checked_add(c.checked_mul(x)?)?;
        }
        Some(v)
    }

    /// The largest iterator number used, if any.
    pub fn max_iter(&self) -> Option<usize> {
        self.terms
            .iter()
            .filter_map(|(_, a)| match a {
                Atom::Iter(i) => Some(*i),
                Atom::FloorDiv(e, _) | Atom::Mod(e, _) => e.max_iter(),
            })
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_quasi_affine() {
        // (2*i + j - 1) / 3 + (i mod 2)
        let e = AffineExpr::iter(0)
            .plus_iter(1, 0)
            .plus_iter(1, 1)
            .offset(-1)
            .floor_div(3)
            .plus(1, Atom::Mod(Box::new(AffineExpr::iter(0)), 2));
        assert_eq!(e.eval(&[4, 2]), Some(3));
        assert_eq!(e.eval(&[0, 0]), Some(-1));
        assert_eq!(e.eval(&[0]), None);
        assert!(!e.is_affine());
        assert_eq!(e.max_iter(), Some(1));
    }
}
