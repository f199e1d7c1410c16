//! `TreeEnsemble` (child of `ml`): tree traversal and aggregation.

use super::{fvec, ivec};
use crate::ops::util::arity;
use crate::{ensure, op_err, Attrs, Registry, Result, Tensor, TensorType};

/// The decoded trees of a `TreeEnsemble`.
struct Forest {
    splits: Vec<f64>,
    modes: Vec<i64>,
    features: Vec<usize>,
    true_ids: Vec<usize>,
    false_ids: Vec<usize>,
    true_leaf: Vec<bool>,
    false_leaf: Vec<bool>,
    nan_true: Vec<bool>,
    /// Members of each node (empty unless its mode is 6, member).
    members: Vec<Vec<f64>>,
    weights: Vec<f64>,
    targets: Vec<usize>,
    roots: Vec<usize>,
    n_targets: usize,
    agg: i64,
}

fn idx(v: Vec<i64>, bound: usize, what: &str) -> Result<Vec<usize>> {
    v.into_iter()
        .map(|i| {
            usize::try_from(i)
                .ok()
                .filter(|&u| u < bound)
                .ok_or_else(|| op_err!("{what} {i} is out of range 0..{bound}"))
        })
        .collect()
}

fn members(modes: &[i64], values: Option<Vec<f64>>) -> Result<Vec<Vec<f64>>> {
    let mut sets = values
        .unwrap_or_default()
        .split(|v| v.is_nan())
        .map(|s| s.to_vec())
        .collect::<Vec<_>>()
        .into_iter();
    modes
        .iter()
        .map(|&m| match m {
            6 => sets
                .next()
                .ok_or_else(|| op_err!("membership_values has too few sets")),
            _ => Ok(Vec::new()),
        })
        .collect()
}

fn forest(a: &Attrs, n_features: usize) -> Result<Forest> {
    let modes: Vec<i64> = ivec(a, "nodes_modes")?;
    let n = modes.len();
    ensure!(
        modes.iter().all(|m| (0..=6).contains(m)),
        "bad nodes_modes {modes:?}"
    );
    let flags = |name: &str| -> Result<Vec<bool>> {
        let v = match a.get(name) {
            Some(_) => ivec(a, name)?,
            None => vec![0; n],
        };
        ensure!(
            v.len() == n,
            "{name} has {} entries, nodes_modes {n}",
            v.len()
        );
        Ok(v.iter().map(|&b| b != 0).collect())
    };
    let (true_leaf, false_leaf) = (flags("nodes_trueleafs")?, flags("nodes_falseleafs")?);
    let nan_true = flags("nodes_missing_value_tracks_true")?;
    let weights = fvec(a, "leaf_weights")?.ok_or_else(|| op_err!("missing leaf_weights"))?;
    let n_targets = usize::try_from(a.int("n_targets")?).map_err(|_| op_err!("bad n_targets"))?;
    let targets = idx(ivec(a, "leaf_targetids")?, n_targets, "leaf target")?;
    ensure!(
        targets.len() == weights.len(),
        "leaf_targetids and leaf_weights differ in length"
    );
    let splits = fvec(a, "nodes_splits")?.ok_or_else(|| op_err!("missing nodes_splits"))?;
    let features = idx(ivec(a, "nodes_featureids")?, n_features, "feature id")?;
    let true_ids = ivec(a, "nodes_truenodeids")?;
    let false_ids = ivec(a, "nodes_falsenodeids")?;
    for (len, name) in [(splits.len(), "splits"), (features.len(), "featureids")] {
        ensure!(len == n, "nodes_{name} has {len} entries, nodes_modes {n}");
    }
    ensure!(
        true_ids.len() == n && false_ids.len() == n,
        "node id lists differ in length"
    );
    let check = |ids: Vec<i64>, leaf: &[bool]| -> Result<Vec<usize>> {
        ids.into_iter()
            .zip(leaf)
            .map(|(i, &l)| Ok(idx(vec![i], if l { weights.len() } else { n }, "child id")?[0]))
            .collect()
    };
    let (true_ids, false_ids) = (check(true_ids, &true_leaf)?, check(false_ids, &false_leaf)?);
    let post = a.int_or("post_transform", 0)?;
    ensure!(
        post == 0,
        "TreeEnsemble post_transform {post} is not supported (only 0, none)"
    );
    let agg = a.int_or("aggregate_function", 1)?;
    ensure!((0..=3).contains(&agg), "bad aggregate_function {agg}");
    Ok(Forest {
        members: members(&modes, fvec(a, "membership_values")?)?,
        splits,
        modes,
        features,
        true_ids,
        false_ids,
        true_leaf,
        false_leaf,
        nan_true,
        weights,
        targets,
        roots: idx(ivec(a, "tree_roots")?, n, "tree root")?,
        n_targets,
        agg,
    })
}

impl Forest {
    fn goes_true(&self, node: usize, x: f64) -> bool {
        if x.is_nan() && self.nan_true[node] {
            return true;
        }
        let s = self.splits[node];
        match self.modes[node] {
            0 => x <= s,
            1 => x < s,
            2 => x >= s,
            3 => x > s,
            4 => x == s,
            5 => x != s,
            _ => self.members[node].contains(&x),
        }
    }

    /// The leaf reached from `root` by feature row `x`.
    fn leaf(&self, root: usize, x: &[f64]) -> Result<usize> {
        let mut node = root;
        for _ in 0..=self.modes.len() {
            let t = self.goes_true(node, x[self.features[node]]);
            let (next, is_leaf) = if t {
                (self.true_ids[node], self.true_leaf[node])
            } else {
                (self.false_ids[node], self.false_leaf[node])
            };
            if is_leaf {
                return Ok(next);
            }
            node = next;
        }
        Err(op_err!("TreeEnsemble tree from root {root} has a cycle"))
    }

    fn predict(&self, x: &[f64]) -> Result<Vec<f64>> {
        let init = match self.agg {
            2 => f64::INFINITY,
            3 => f64::NEG_INFINITY,
            _ => 0.0,
        };
        let mut out = vec![init; self.n_targets];
        let mut hit = vec![false; self.n_targets];
        for &r in &self.roots {
            let l = self.leaf(r, x)?;
            let (w, t) = (self.weights[l], self.targets[l]);
            hit[t] = true;
            out[t] = match self.agg {
                0 => out[t] + w / self.roots.len() as f64,
                1 => out[t] + w,
                2 => out[t].min(w),
                _ => out[t].max(w),
            };
        }
        // Targets no leaf reached stay 0 (not +-inf) for min/max.
        Ok(out
            .into_iter()
            .zip(hit)
            .map(|(v, h)| if h { v } else { 0.0 })
            .collect())
    }
}

fn infer(a: &Attrs, ins: &[&TensorType]) -> Result<TensorType> {
    arity(ins, 1, 1)?;
    let x = ins[0];
    ensure!(
        x.dtype.is_float(),
        "TreeEnsemble needs float X, got {}",
        x.dtype
    );
    ensure!(
        x.rank() == 2,
        "TreeEnsemble needs X of shape [N, F], got {:?}",
        x.shape
    );
    let f = forest(a, x.shape[1])?;
    Ok(TensorType::new(x.dtype, vec![x.shape[0], f.n_targets]))
}

fn eval(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let ty = infer(a, &[&x.ty()])?;
    let f = forest(a, x.shape()[1])?;
    let v = x.to_f64_vec();
    let mut out = Vec::with_capacity(ty.numel());
    for row in v.chunks(x.shape()[1].max(1)).take(x.shape()[0]) {
        out.extend(f.predict(row)?);
    }
    Ok(Tensor::from_vec(ty.shape, out)?.cast(ty.dtype))
}

pub fn register(r: &mut Registry) {
    r.add(
        "TreeEnsemble",
        |a, ins, _| Ok(vec![infer(a, ins)?]),
        |a, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![eval(a, ins[0])?])
        },
    );
}
