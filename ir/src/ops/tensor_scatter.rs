//! `TensorScatter` (KV-cache update): inputs `past_cache`, `update` and
//! `write_indices` (`[B]` integers; the mapping passes zeros when ONNX omits
//! it). Attributes `axis` (default -2, the sequence axis; not the batch axis
//! 0) and `mode` (`linear` default, `circular`). For every prefix index
//! `p = (b, ..)` before `axis` and `s < update.shape[axis]`, the cache slice at
//! sequence position `write_indices[b] + s` (modulo the cache length in
//! circular mode; out of range is an error in linear mode) is overwritten by
//! the update slice `s`. Output `present_cache` has the cache's type.

use super::util::{arity, norm_axis};
use crate::{dispatch_dtype, ensure, op_err, Attrs, Registry, Result, Tensor, TensorType};

fn check(a: &Attrs, ins: &[&TensorType]) -> Result<(usize, bool)> {
    arity(ins, 3, 3)?;
    let (c, u, w) = (ins[0], ins[1], ins[2]);
    let axis = norm_axis(a.int_or("axis", -2)?, c.rank())?;
    ensure!(axis > 0, "TensorScatter axis must not be the batch axis 0");
    let circular = match a.str_or("mode", "linear")? {
        "linear" => false,
        "circular" => true,
        m => {
            return Err(op_err!(
                "TensorScatter mode must be linear or circular, got {m}"
            ))
        }
    };
    ensure!(
        c.dtype == u.dtype,
        "cache {} and update {} differ in dtype",
        c.dtype,
        u.dtype
    );
    ensure!(
        u.rank() == c.rank(),
        "update rank {} != cache rank {}",
        u.rank(),
        c.rank()
    );
    for i in 0..c.rank() {
        ensure!(
            i == axis && u.shape[i] <= c.shape[i] || u.shape[i] == c.shape[i],
            "update shape {:?} does not fit cache shape {:?}",
            u.shape,
            c.shape
        );
    }
    ensure!(
        w.dtype.is_int() && w.shape == [c.shape[0]],
        "write_indices must be [batch] integers, got {} {:?}",
        w.dtype,
        w.shape
    );
    Ok((axis, circular))
}

/// `(destination, source)` row offsets (in elements) of the copies to make.
fn copies(a: &Attrs, tys: &[TensorType], wi: &[i64]) -> Result<(Vec<(usize, usize)>, usize)> {
    let refs: Vec<&TensorType> = tys.iter().collect();
    let (axis, circular) = check(a, &refs)?;
    let (cs, us) = (&tys[0].shape, &tys[1].shape);
    let (max, len) = (cs[axis], us[axis]);
    let inner: usize = cs[axis + 1..].iter().product();
    let outer: usize = cs[..axis].iter().product();
    let per_batch = (outer / cs[0].max(1)).max(1);
    let mut rows = Vec::with_capacity(outer * len);
    for p in 0..outer {
        for s in 0..len {
            let pos = wi[p / per_batch] + s as i64;
            let pos = if circular {
                pos.rem_euclid(max as i64)
            } else {
                ensure!(
                    (0..max as i64).contains(&pos),
                    "write position {pos} is outside the cache length {max}"
                );
                pos
            } as usize;
            rows.push(((p * max + pos) * inner, (p * len + s) * inner));
        }
    }
    Ok((rows, inner))
}

fn eval(a: &Attrs, ins: &[&Tensor]) -> Result<Tensor> {
    arity(ins, 3, 3)?;
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let (rows, inner) = copies(a, &tys, &ins[2].to_i64_vec()?)?;
    let mut out = ins[0].clone();
    dispatch_dtype!(tys[0].dtype, T => {
        let upd = ins[1].as_slice::<T>()?;
        let dst = out.as_slice_mut::<T>()?;
        for (d, s) in rows {
            dst[d..d + inner].copy_from_slice(&upd[s..s + inner]);
        }
    });
    Ok(out)
}

pub fn register(r: &mut Registry) {
    r.add(
        "TensorScatter",
        |a, ins, _| {
            check(a, ins)?;
            Ok(vec![ins[0].clone()])
        },
        |a, ins, _| Ok(vec![eval(a, ins)?]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circular_wraps_per_batch() {
        let cache = Tensor::from_vec(vec![2, 3, 1], vec![0i64; 6]).unwrap();
        let upd = Tensor::from_vec(vec![2, 2, 1], vec![1i64, 2, 3, 4]).unwrap();
        let wi = Tensor::from_i64s(&[2, 0]);
        let a = Attrs::new().with("mode", crate::Attr::Str("circular".into()));
        let r = eval(&a, &[&cache, &upd, &wi]).unwrap();
        assert_eq!(r.to_i64_vec().unwrap(), vec![2, 0, 1, 3, 4, 0]);
        let lin = Attrs::new();
        assert!(eval(&lin, &[&cache, &upd, &wi]).is_err());
    }
}
