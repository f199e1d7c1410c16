//! Index helpers for schedules and code generators: substituting
//! iterators, simplifying quasi-affine expressions, flattening an access to
//! an element offset of a dense row-major tensor, and value ranges.

use super::affine::{AffineExpr, Atom};

/// Inclusive value range of an iterator or expression.
pub type Range = (i64, i64);

impl AffineExpr {
    /// Replaces every iterator `i` by `def(i)`.
    pub fn substitute(&self, def: &dyn Fn(usize) -> AffineExpr) -> AffineExpr {
        let mut out = AffineExpr::constant(self.constant);
        for (c, a) in &self.terms {
            match a {
                Atom::Iter(i) => out = out.add_scaled(&def(*i), *c),
                Atom::FloorDiv(e, d) => {
                    out = out.plus(*c, Atom::FloorDiv(Box::new(e.substitute(def)), *d))
                }
                Atom::Mod(e, d) => out = out.plus(*c, Atom::Mod(Box::new(e.substitute(def)), *d)),
            }
        }
        out
    }

    /// `self + k * other` (terms appended, not merged).
    pub fn add_scaled(mut self, other: &AffineExpr, k: i64) -> AffineExpr {
        self.constant += k * other.constant;
        for (c, a) in &other.terms {
            self = self.plus(c * k, a.clone());
        }
        self
    }

    /// Merges equal atoms, folds constant and unit divisions, and rewrites
    /// `d*c*(e / d) + c*(e % d)` to `c*e`. With `ranges` (per iterator),
    /// also folds `e / d` to 0 and `e % d` to `e` when `0 <= e < d`.
    pub fn simplified(&self, ranges: Option<&[Range]>) -> AffineExpr {
        let mut out = AffineExpr::constant(self.constant);
        for (c, a) in &self.terms {
            out = match a {
                Atom::Iter(_) => out.plus(*c, a.clone()),
                Atom::FloorDiv(e, d) | Atom::Mod(e, d) => {
                    let is_div = matches!(a, Atom::FloorDiv(..));
                    let (e, q) = split_multiples(e.simplified(ranges), *d);
                    if is_div {
                        out = out.add_scaled(&q, *c);
                    }
                    let small = ranges
                        .and_then(|r| e.range(r))
                        .is_some_and(|(lo, hi)| lo >= 0 && hi < *d);
                    match (e.terms.is_empty(), *d == 1 || small, is_div) {
                        (true, _, true) => out.offset(c * e.constant.div_euclid(*d)),
                        (true, _, false) => out.offset(c * e.constant.rem_euclid(*d)),
                        (false, true, true) if *d == 1 => out.add_scaled(&e, *c),
                        (false, true, true) => out,
                        (false, true, false) if *d == 1 => out,
                        (false, true, false) => out.add_scaled(&e, *c),
                        (false, false, true) => out.plus(*c, Atom::FloorDiv(Box::new(e), *d)),
                        (false, false, false) => out.plus(*c, Atom::Mod(Box::new(e), *d)),
                    }
                }
            };
        }
        out.merge_terms().fold_div_mod()
    }

    /// Adds the coefficients of equal atoms; drops zeros.
    fn merge_terms(self) -> AffineExpr {
        let mut terms: Vec<(i64, Atom)> = vec![];
        for (c, a) in self.terms {
            match terms.iter_mut().find(|(_, b)| *b == a) {
                Some(t) => t.0 += c,
                None => terms.push((c, a)),
            }
        }
        terms.retain(|(c, _)| *c != 0);
        AffineExpr {
            terms,
            constant: self.constant,
        }
    }

    /// Rewrites `d*c*(e / d) + c*(e % d)` to `c*e`, repeatedly.
    fn fold_div_mod(mut self) -> AffineExpr {
        loop {
            let mut hit = None;
            for (k, (cm, a)) in self.terms.iter().enumerate() {
                let Atom::Mod(e, d) = a else { continue };
                let div = Atom::FloorDiv(e.clone(), *d);
                if let Some(j) = self
                    .terms
                    .iter()
                    .position(|(cd, b)| *b == div && *cd == cm * d)
                {
                    hit = Some((k, j, (**e).clone(), *cm));
                    break;
                }
            }
            let Some((k, j, e, c)) = hit else {
                return self;
            };
            let (hi, lo) = (k.max(j), k.min(j));
            self.terms.remove(hi);
            self.terms.remove(lo);
            self = self.add_scaled(&e, c).merge_terms();
        }
    }

    /// The top-level coefficient of iterator `i`; `None` when `i` also
    /// appears inside a division or modulo.
    pub fn linear_coef(&self, i: usize) -> Option<i64> {
        let mut c = 0;
        for (k, a) in &self.terms {
            match a {
                Atom::Iter(j) if *j == i => c += k,
                Atom::Iter(_) => {}
                Atom::FloorDiv(e, _) | Atom::Mod(e, _) if e.uses(i) => return None,
                _ => {}
            }
        }
        Some(c)
    }

    /// True if iterator `i` appears anywhere.
    pub fn uses(&self, i: usize) -> bool {
        self.terms.iter().any(|(_, a)| match a {
            Atom::Iter(j) => *j == i,
            Atom::FloorDiv(e, _) | Atom::Mod(e, _) => e.uses(i),
        })
    }

    /// The range of values given each iterator's range; `None` on an
    /// unknown iterator, a bad divisor or overflow.
    pub fn range(&self, ranges: &[Range]) -> Option<Range> {
        let (mut lo, mut hi) = (self.constant, self.constant);
        for (c, a) in &self.terms {
            let (alo, ahi) = match a {
                Atom::Iter(i) => *ranges.get(*i)?,
                Atom::FloorDiv(e, d) if *d > 0 => {
                    let (l, h) = e.range(ranges)?;
                    (l.div_euclid(*d), h.div_euclid(*d))
                }
                Atom::Mod(e, d) if *d > 0 => {
                    let (l, h) = e.range(ranges)?;
                    if l.div_euclid(*d) == h.div_euclid(*d) {
                        (l.rem_euclid(*d), h.rem_euclid(*d))
                    } else {
                        (0, d - 1)
                    }
                }
                _ => return None,
            };
            let (x, y) = (c.checked_mul(alo)?, c.checked_mul(ahi)?);
            lo = lo.checked_add(x.min(y))?;
            hi = hi.checked_add(x.max(y))?;
        }
        Some((lo, hi))
    }
}

/// Splits `e` into `(r, q)` with `e = r + d*q`, moving every term whose
/// coefficient `d` divides (and the constant's multiple of `d`) into `q`,
/// so that `e / d = r / d + q` and `e mod d = r mod d`.
fn split_multiples(e: AffineExpr, d: i64) -> (AffineExpr, AffineExpr) {
    if d <= 0 {
        return (e, AffineExpr::default());
    }
    let mut r = AffineExpr::constant(e.constant.rem_euclid(d));
    let mut q = AffineExpr::constant(e.constant.div_euclid(d));
    for (c, a) in e.terms {
        if c % d == 0 {
            q = q.plus(c / d, a);
        } else {
            r = r.plus(c, a);
        }
    }
    (r, q)
}

/// The element offset of `index` into a dense row-major tensor of `shape`.
pub fn flat_offset(index: &[AffineExpr], shape: &[usize]) -> AffineExpr {
    let strides = crate::strides(shape);
    index
        .iter()
        .zip(strides)
        .fold(AffineExpr::default(), |acc, (e, s)| {
            acc.add_scaled(e, s as i64)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_regrouped_index() {
        // x[v / 3, v % 3] with strides [3, 1] is x[v].
        let idx = [
            AffineExpr::iter(0).floor_div(3),
            AffineExpr::iter(0).modulo(3),
        ];
        let f = flat_offset(&idx, &[4, 3]).simplified(None);
        assert_eq!(f, AffineExpr::iter(0));
        assert_eq!(f.linear_coef(0), Some(1));
    }

    #[test]
    fn ranges_fold_small_divisions() {
        let e = AffineExpr::iter(0).plus_iter(2, 1).floor_div(8);
        assert_eq!(e.range(&[(0, 3), (0, 1)]), Some((0, 0)));
        assert_eq!(
            e.simplified(Some(&[(0, 3), (0, 1)])),
            AffineExpr::constant(0)
        );
        let m = AffineExpr::iter(0).modulo(8).simplified(Some(&[(0, 3)]));
        // (i + 4*o + 5) / 4 = o + 1 and (i + 4*o + 5) mod 4 = i + 1 for i < 3.
        let blocked = AffineExpr::iter(0).plus_iter(4, 1).offset(5);
        let r = [(0, 2), (0, 9)];
        let div = blocked.clone().floor_div(4).simplified(Some(&r));
        assert_eq!(div, AffineExpr::iter(1).offset(1));
        let rem = blocked.modulo(4).simplified(Some(&r));
        assert_eq!(rem, AffineExpr::iter(0).offset(1));
        assert_eq!(m, AffineExpr::iter(0));
        let s = AffineExpr::iter(0)
            .offset(2)
            .substitute(&|i| AffineExpr::iter(i + 1).plus_iter(4, 0));
        assert_eq!(s.simplified(None).linear_coef(0), Some(4));
        assert_eq!(s.range(&[(0, 1), (0, 3)]), Some((2, 9)));
    }
}
