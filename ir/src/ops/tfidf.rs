//! `TfIdfVectorizer` (child of `ml`): n-gram counting over integer rows.
//!
//! Attributes as in ONNX: `min_gram_length`, `max_gram_length`,
//! `max_skip_count`, `mode` (`TF`, `IDF`, `TFIDF`), `ngram_counts`,
//! `ngram_indexes`, `pool_int64s` (string pools are not supported), `weights`
//! (optional floats). Input `[C]` or `[B, C]` integers; output `[O]` or
//! `[B, O]` f32 with `O = max(ngram_indexes) + 1`. Unigrams are counted once;
//! longer n-grams once per skip distance `1..=max_skip_count + 1`.

use crate::ops::util::arity;
use crate::{ensure, op_err, Attrs, DType, Registry, Result, Tensor, TensorType};
use std::collections::HashMap;

struct Tfidf {
    min: usize,
    max: usize,
    skips: usize,
    /// The pool's n-grams of a length in `min..=max`, to their output column.
    grams: HashMap<Vec<i64>, usize>,
    out: usize,
    mode: u8,
    weights: Vec<f64>,
}

fn size(a: &Attrs, name: &str) -> Result<usize> {
    usize::try_from(a.int(name)?).map_err(|_| op_err!("{name} must be >= 0"))
}

fn parse(a: &Attrs) -> Result<Tfidf> {
    ensure!(
        !a.contains("pool_strings"),
        "TfIdfVectorizer string pools are not supported"
    );
    let (min, max, skips) = (
        size(a, "min_gram_length")?,
        size(a, "max_gram_length")?,
        size(a, "max_skip_count")?,
    );
    ensure!(
        1 <= min && min <= max,
        "need 1 <= min_gram_length <= max_gram_length"
    );
    let mode = match a.str_or("mode", "TF")? {
        "TF" => 0,
        "IDF" => 1,
        "TFIDF" => 2,
        m => return Err(op_err!("unknown TfIdfVectorizer mode {m}")),
    };
    let pool = a.ints("pool_int64s")?;
    let counts = a.ints("ngram_counts")?;
    let indexes = a.ints("ngram_indexes")?;
    ensure!(
        indexes.iter().all(|&i| i >= 0),
        "ngram_indexes must be >= 0"
    );
    let out = indexes.iter().max().map_or(0, |&m| m as usize + 1);
    let mut grams = HashMap::new();
    let mut id = 0usize;
    for (k, &start) in counts.iter().enumerate() {
        let end = counts.get(k + 1).copied().unwrap_or(pool.len() as i64);
        ensure!(
            0 <= start && start <= end && end as usize <= pool.len(),
            "bad ngram_counts {counts:?}"
        );
        let n = k + 1;
        for g in pool[start as usize..end as usize].chunks_exact(n) {
            if (min..=max).contains(&n) {
                let col = *indexes
                    .get(id)
                    .ok_or_else(|| op_err!("ngram_indexes has too few entries"))?;
                grams.insert(g.to_vec(), col as usize);
            }
            id += 1;
        }
    }
    let weights = a.opt_floats("weights")?.unwrap_or_default();
    ensure!(
        weights.is_empty() || weights.len() >= out,
        "weights has {} entries, need {out}",
        weights.len()
    );
    Ok(Tfidf {
        min,
        max,
        skips,
        grams,
        out,
        mode,
        weights,
    })
}

impl Tfidf {
    fn row(&self, x: &[i64]) -> Vec<f64> {
        let mut f = vec![0.0; self.out];
        for d in 1..=self.skips + 1 {
            let lo = if d > 1 { self.min.max(2) } else { self.min };
            for s in 0..x.len() {
                for n in lo..=self.max {
                    let last = s + (n - 1) * d;
                    if last >= x.len() {
                        break;
                    }
                    let g: Vec<i64> = (0..n).map(|k| x[s + k * d]).collect();
                    if let Some(&c) = self.grams.get(&g) {
                        f[c] += 1.0;
                    }
                }
            }
        }
        let w = |i: usize| self.weights.get(i).copied().unwrap_or(1.0);
        f.iter()
            .enumerate()
            .map(|(i, &c)| match self.mode {
                0 => c,
                1 => {
                    if c > 0.0 {
                        w(i)
                    } else {
                        0.0
                    }
                }
                _ => w(i) * c,
            })
            .collect()
    }
}

fn infer(a: &Attrs, ins: &[&TensorType]) -> Result<TensorType> {
    arity(ins, 1, 1)?;
    let x = ins[0];
    ensure!(
        x.dtype.is_int(),
        "TfIdfVectorizer needs integer input, got {}",
        x.dtype
    );
    ensure!(
        (1..=2).contains(&x.rank()),
        "TfIdfVectorizer input must be [C] or [B, C]"
    );
    let t = parse(a)?;
    let mut shape = x.shape[..x.rank() - 1].to_vec();
    shape.push(t.out);
    Ok(TensorType::new(DType::F32, shape))
}

fn eval(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let ty = infer(a, &[&x.ty()])?;
    let t = parse(a)?;
    let v = x.to_i64_vec()?;
    let c = *x.shape().last().unwrap_or(&0);
    let rows = if x.rank() == 2 { x.shape()[0] } else { 1 };
    let mut out = Vec::with_capacity(ty.numel());
    for r in 0..rows {
        out.extend(t.row(&v[r * c..(r + 1) * c]));
    }
    Ok(Tensor::from_vec(ty.shape, out)?.cast(DType::F32))
}

pub fn register(r: &mut Registry) {
    r.add(
        "TfIdfVectorizer",
        |a, ins, _| Ok(vec![infer(a, ins)?]),
        |a, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![eval(a, ins[0])?])
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Attr;

    #[test]
    fn bigrams_with_skips_and_unigrams_once() {
        let a = Attrs::new()
            .with("min_gram_length", Attr::Int(1))
            .with("max_gram_length", Attr::Int(2))
            .with("max_skip_count", Attr::Int(1))
            .with("mode", Attr::Str("TF".into()))
            .with("ngram_counts", Attr::Ints(vec![0, 1]))
            .with("ngram_indexes", Attr::Ints(vec![0, 1]))
            .with("pool_int64s", Attr::Ints(vec![5, 5, 6]));
        let x = Tensor::from_i64s(&[5, 6, 6]);
        // unigram 5 once; bigram (5,6) at skip 1 and skip 2.
        assert_eq!(eval(&a, &x).unwrap().to_f64_vec(), vec![1.0, 2.0]);
    }
}
