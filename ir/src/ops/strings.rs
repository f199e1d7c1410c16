//! String ops.
//!
//! - `StringConcat(a, b)`: element-wise concatenation with numpy broadcasting.
//! - `RegexFullMatch(x) {pattern}`: true where the whole string matches the
//!   pattern (RE2-style syntax, as the `regex` crate reads it).
//! - [`string_split`] and [`string_normalize`]: StringSplit and
//!   StringNormalizer have output shapes that depend on the data, so the ONNX
//!   importer folds them when their input is known at compile time.

use super::util::{arity, broadcast_indices, broadcast_shapes};
use crate::{ensure, op_err, DType, Registry, Result, Tensor, TensorType};

fn check_strings(name: &str, tys: &[&TensorType]) -> Result<()> {
    for t in tys {
        ensure!(
            t.dtype == DType::String,
            "{name} needs string inputs, got {}",
            t.dtype
        );
    }
    Ok(())
}

fn concat(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let shape = broadcast_shapes(&[a.shape(), b.shape()])?;
    let (x, y) = (a.as_strings()?, b.as_strings()?);
    let (ia, ib) = (
        broadcast_indices(a.shape(), &shape),
        broadcast_indices(b.shape(), &shape),
    );
    let v = ia
        .iter()
        .zip(&ib)
        .map(|(&i, &j)| format!("{}{}", x[i], y[j]))
        .collect();
    Tensor::from_strings(shape, v)
}

fn full_match(pattern: &str, x: &Tensor) -> Result<Tensor> {
    let re = regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| op_err!("bad pattern `{pattern}`: {e}"))?;
    let v: Vec<bool> = x.as_strings()?.iter().map(|s| re.is_match(s)).collect();
    Tensor::from_vec(x.shape().to_vec(), v)
}

/// StringSplit: splits each string by `delimiter` (whitespace runs when
/// empty or absent, like Python's `str.split()`), at most `maxsplit` times.
/// Returns the pieces (input shape plus the largest count, padded with empty
/// strings) and the piece counts (i64, input shape).
pub fn string_split(
    x: &Tensor,
    delimiter: Option<&str>,
    maxsplit: Option<usize>,
) -> Result<(Tensor, Tensor)> {
    let parts: Vec<Vec<String>> = x
        .as_strings()?
        .iter()
        .map(|s| split_one(s, delimiter, maxsplit))
        .collect();
    let width = parts.iter().map(Vec::len).max().unwrap_or(0);
    let mut flat = Vec::with_capacity(parts.len() * width);
    for p in &parts {
        flat.extend(p.iter().cloned());
        flat.extend(std::iter::repeat_n(String::new(), width - p.len()));
    }
    let mut shape = x.shape().to_vec();
    shape.push(width);
    let counts = Tensor::from_vec(
        x.shape().to_vec(),
        parts.iter().map(|p| p.len() as i64).collect(),
    )?;
    Ok((Tensor::from_strings(shape, flat)?, counts))
}

fn split_one(s: &str, delimiter: Option<&str>, maxsplit: Option<usize>) -> Vec<String> {
    let limit = maxsplit.map_or(usize::MAX, |m| m.saturating_add(1));
    match delimiter.filter(|d| !d.is_empty()) {
        Some(d) => s.splitn(limit, d).map(String::from).collect(),
        None => {
            let mut out: Vec<String> = Vec::new();
            let mut rest = s.trim_start();
            while !rest.is_empty() {
                if out.len() + 1 == limit {
                    out.push(rest.trim_end().to_string());
                    break;
                }
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                out.push(rest[..end].to_string());
                rest = rest[end..].trim_start();
            }
            out
        }
    }
}

/// How StringNormalizer changes case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseChange {
    None,
    Lower,
    Upper,
}

/// StringNormalizer: drops stopwords (compared case-insensitively unless
/// `case_sensitive`) from a `[C]` or `[1, C]` tensor, then changes case. When
/// every string is dropped the result holds one empty string.
pub fn string_normalize(
    x: &Tensor,
    stopwords: &[String],
    case_sensitive: bool,
    case: CaseChange,
) -> Result<Tensor> {
    let two_d = match x.shape() {
        [_] => false,
        [1, _] => true,
        s => {
            return Err(op_err!(
                "StringNormalizer needs shape [C] or [1, C], got {s:?}"
            ))
        }
    };
    let stop: Vec<String> = stopwords
        .iter()
        .map(|w| {
            if case_sensitive {
                w.clone()
            } else {
                w.to_lowercase()
            }
        })
        .collect();
    let keep = |s: &String| {
        let key = if case_sensitive {
            s.clone()
        } else {
            s.to_lowercase()
        };
        !stop.contains(&key)
    };
    let mut v: Vec<String> = x
        .as_strings()?
        .iter()
        .filter(|s| keep(s))
        .map(|s| match case {
            CaseChange::None => s.clone(),
            CaseChange::Lower => s.to_lowercase(),
            CaseChange::Upper => s.to_uppercase(),
        })
        .collect();
    if v.is_empty() {
        v.push(String::new());
    }
    let shape = if two_d {
        vec![1, v.len()]
    } else {
        vec![v.len()]
    };
    Tensor::from_strings(shape, v)
}

pub fn register(r: &mut Registry) {
    r.add(
        "StringConcat",
        |_, ins, _| {
            arity(ins, 2, 2)?;
            check_strings("StringConcat", ins)?;
            Ok(vec![TensorType::new(
                DType::String,
                broadcast_shapes(&[&ins[0].shape, &ins[1].shape])?,
            )])
        },
        |_, ins, _| Ok(vec![concat(ins[0], ins[1])?]),
    );
    r.add(
        "RegexFullMatch",
        |a, ins, _| {
            arity(ins, 1, 1)?;
            check_strings("RegexFullMatch", ins)?;
            let p = a
                .opt_str("pattern")?
                .ok_or_else(|| op_err!("RegexFullMatch needs a `pattern`"))?;
            regex::Regex::new(p).map_err(|e| op_err!("bad pattern `{p}`: {e}"))?;
            Ok(vec![TensorType::new(DType::Bool, ins[0].shape.clone())])
        },
        |a, ins, _| Ok(vec![full_match(a.str_or("pattern", "")?, ins[0])?]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Tensor {
        Tensor::from_strings(vec![v.len()], v.iter().map(|s| s.to_string()).collect()).unwrap()
    }

    #[test]
    fn split_like_python() {
        let (p, n) = string_split(&strs(&["a-b--c", "x"]), Some("-"), None).unwrap();
        assert_eq!(p.shape(), &[2, 4]);
        assert_eq!(
            p.as_strings().unwrap(),
            &["a", "b", "", "c", "x", "", "", ""]
        );
        assert_eq!(n.as_slice::<i64>().unwrap(), &[4, 1]);
        let (p, _) = string_split(&strs(&["  the quick  fox "]), None, Some(1)).unwrap();
        assert_eq!(p.as_strings().unwrap(), &["the", "quick  fox"]);
    }

    #[test]
    fn normalizer_drops_stopwords_and_changes_case() {
        let x = strs(&["Monday", "tuesday"]);
        let y = string_normalize(&x, &["monday".into()], false, CaseChange::Upper).unwrap();
        assert_eq!(y.as_strings().unwrap(), &["TUESDAY"]);
        let y = string_normalize(&x, &["monday".into()], true, CaseChange::None).unwrap();
        assert_eq!(y.as_strings().unwrap(), &["Monday", "tuesday"]);
    }

    #[test]
    fn full_match_is_anchored() {
        let y = full_match("a+b", &strs(&["aab", "aabx", "b"])).unwrap();
        assert_eq!(y.as_slice::<bool>().unwrap(), &[true, false, false]);
        assert!(full_match("(", &strs(&["x"])).is_err());
    }
}
