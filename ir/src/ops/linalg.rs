//! Linear algebra: MatMul, Gemm, Einsum, MatMulInteger, Det.
//!
//! - `MatMul(A, B)`: numpy `matmul` (1-D operands promoted then squeezed,
//!   batch dimensions broadcast). Floats accumulate in f64, integers in i64
//!   with wrap-around. No attributes.
//! - `Gemm(A, B[, C])`: `alpha * A' * B' + beta * C`, `A'` = `A` or its
//!   transpose (`transA`), likewise `transB`; `C` broadcasts to `[M, N]`.
//!   Attributes `alpha` (float, 1.0), `beta` (float, 1.0), `transA`, `transB`
//!   (int, 0). Computed in f64.
//! - `Einsum(inputs...)`: attribute `equation` (string). Supports repeated
//!   indices (diagonals), ellipsis (broadcast) and implicit output (numpy rules).
//! - `MatMulInteger(A, B[, a_zero_point[, b_zero_point]])`: 8-bit integer
//!   inputs, i32 output: `(A - a_zp) @ (B - b_zp)`. `a_zp` is a scalar or one
//!   value per row of A (length M); `b_zp` a scalar or one per column of B (N).
//! - `Det(X)`: determinant of the last two (square) dimensions, float only.

use super::util::{arity, broadcast_shapes};
use crate::TensorType;
use crate::{dispatch_numeric, ensure, op_err, Attrs, DType, Elem, Registry, Result, Tensor};

#[path = "einsum.rs"]
pub(crate) mod einsum;

/// An accumulator for matrix products: f64 for floats, wrapping i64 for integers.
pub(crate) trait Acc: Copy + Default {
    fn madd(self, a: Self, b: Self) -> Self;
}
impl Acc for f64 {
    fn madd(self, a: f64, b: f64) -> f64 {
        self + a * b
    }
}
impl Acc for i64 {
    fn madd(self, a: i64, b: i64) -> i64 {
        self.wrapping_add(a.wrapping_mul(b))
    }
}

/// Output shape of numpy `matmul` for operand shapes `a` and `b`.
pub(crate) fn matmul_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    ensure!(
        !a.is_empty() && !b.is_empty(),
        "MatMul operands must have rank >= 1, got {a:?} and {b:?}"
    );
    let (a2, b2) = (promote(a, true), promote(b, false));
    let (ra, rb) = (a2.len(), b2.len());
    ensure!(
        a2[ra - 1] == b2[rb - 2],
        "MatMul inner dimensions differ: {a:?} and {b:?}"
    );
    let mut out = broadcast_shapes(&[&a2[..ra - 2], &b2[..rb - 2]])?;
    if a.len() > 1 {
        out.push(a2[ra - 2]);
    }
    if b.len() > 1 {
        out.push(b2[rb - 1]);
    }
    Ok(out)
}

/// Promotes a 1-D operand to a matrix: `[k]` -> `[1, k]` (left) or `[k, 1]` (right).
fn promote(s: &[usize], left: bool) -> Vec<usize> {
    match (s.len(), left) {
        (1, true) => vec![1, s[0]],
        (1, false) => vec![s[0], 1],
        _ => s.to_vec(),
    }
}

/// Batched numpy matmul on flat data; returns the output shape and values.
pub(crate) fn matmul_raw<A: Acc>(
    a: &[A],
    ash: &[usize],
    b: &[A],
    bsh: &[usize],
) -> Result<(Vec<usize>, Vec<A>)> {
    let out_shape = matmul_shape(ash, bsh)?;
    let (a2, b2) = (promote(ash, true), promote(bsh, false));
    let (ra, rb) = (a2.len(), b2.len());
    let (m, k, n) = (a2[ra - 2], a2[ra - 1], b2[rb - 1]);
    let batch = broadcast_shapes(&[&a2[..ra - 2], &b2[..rb - 2]])?;
    let ia = super::util::broadcast_indices(&a2[..ra - 2], &batch);
    let ib = super::util::broadcast_indices(&b2[..rb - 2], &batch);
    let mut out = vec![A::default(); ia.len() * m * n];
    for (bi, (&pa, &pb)) in ia.iter().zip(&ib).enumerate() {
        let (oa, ob, oo) = (pa * m * k, pb * k * n, bi * m * n);
        for i in 0..m {
            for j in 0..n {
                let mut s = A::default();
                for p in 0..k {
                    s = s.madd(a[oa + i * k + p], b[ob + p * n + j]);
                }
                out[oo + i * n + j] = s;
            }
        }
    }
    Ok((out_shape, out))
}

/// numpy matmul of two tensors of one numeric dtype.
pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let d = a.dtype();
    ensure!(
        b.dtype() == d,
        "MatMul inputs must share one dtype, got {d} and {}",
        b.dtype()
    );
    if d.is_float() {
        let (s, v) = matmul_raw(&a.to_f64_vec(), a.shape(), &b.to_f64_vec(), b.shape())?;
        return Ok(Tensor::from_vec(s, v)?.cast(d));
    }
    ensure!(d.is_int(), "MatMul does not support {d}");
    let (s, v) = matmul_raw(&a.to_i64_vec()?, a.shape(), &b.to_i64_vec()?, b.shape())?;
    Ok(
        dispatch_numeric!(d, T => Tensor::from_vec(s, v.into_iter().map(T::from_i64).collect::<Vec<T>>())?,
        _ => return Err(op_err!("MatMul does not support {d}"))),
    )
}

fn gemm_dims(attrs: &Attrs, a: &[usize], b: &[usize]) -> Result<(usize, usize, usize)> {
    ensure!(
        a.len() == 2 && b.len() == 2,
        "Gemm needs 2-D A and B, got {a:?} and {b:?}"
    );
    let ta = attrs.int_or("transA", 0)? != 0;
    let tb = attrs.int_or("transB", 0)? != 0;
    let (m, k) = if ta { (a[1], a[0]) } else { (a[0], a[1]) };
    let (k2, n) = if tb { (b[1], b[0]) } else { (b[0], b[1]) };
    ensure!(k == k2, "Gemm inner dimensions differ: {a:?} and {b:?}");
    Ok((m, k, n))
}

fn gemm_infer(attrs: &Attrs, ins: &[&TensorType]) -> Result<TensorType> {
    arity(ins, 2, 3)?;
    let d = super::util::same_dtype(ins)?;
    ensure!(d.is_numeric(), "Gemm does not support {d}");
    let (m, _, n) = gemm_dims(attrs, &ins[0].shape, &ins[1].shape)?;
    if let Some(c) = ins.get(2) {
        let full = broadcast_shapes(&[&c.shape, &[m, n]])?;
        ensure!(
            full == [m, n],
            "Gemm C of shape {:?} does not broadcast to [{m}, {n}]",
            c.shape
        );
    }
    Ok(TensorType::new(d, vec![m, n]))
}

fn gemm_eval(attrs: &Attrs, ins: &[&Tensor]) -> Result<Tensor> {
    let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
    let d = gemm_infer(attrs, &tys.iter().collect::<Vec<_>>())?.dtype;
    let (m, k, n) = gemm_dims(attrs, ins[0].shape(), ins[1].shape())?;
    let ta = attrs.int_or("transA", 0)? != 0;
    let tb = attrs.int_or("transB", 0)? != 0;
    let alpha = attrs.float_or("alpha", 1.0)?;
    let beta = attrs.float_or("beta", 1.0)?;
    let (a, b) = (ins[0].to_f64_vec(), ins[1].to_f64_vec());
    let c = match ins.get(2) {
        Some(c) => super::util::broadcast_to(c, &[m, n])?.to_f64_vec(),
        None => vec![0.0; m * n],
    };
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0;
            for p in 0..k {
                let x = if ta { a[p * m + i] } else { a[i * k + p] };
                let y = if tb { b[j * k + p] } else { b[p * n + j] };
                s += x * y;
            }
            out[i * n + j] = alpha * s
                + if ins.len() > 2 {
                    beta * c[i * n + j]
                } else {
                    0.0
                };
        }
    }
    Ok(Tensor::from_vec(vec![m, n], out)?.cast(d))
}

fn det_infer(x: &TensorType) -> Result<TensorType> {
    let r = x.rank();
    ensure!(
        r >= 2 && x.shape[r - 1] == x.shape[r - 2],
        "Det needs square matrices in the last two dimensions, got {x}"
    );
    ensure!(
        x.dtype.is_float(),
        "Det needs a float type, got {}",
        x.dtype
    );
    Ok(TensorType::new(x.dtype, x.shape[..r - 2].to_vec()))
}

/// Determinant by LU decomposition with partial pivoting.
fn det(mut a: Vec<f64>, n: usize) -> f64 {
    let mut d = 1.0;
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| a[i * n + c].abs().total_cmp(&a[j * n + c].abs()))
            .unwrap_or(c);
        if a[p * n + c] == 0.0 {
            return 0.0;
        }
        if p != c {
            for j in 0..n {
                a.swap(p * n + j, c * n + j);
            }
            d = -d;
        }
        let piv = a[c * n + c];
        d *= piv;
        for i in c + 1..n {
            let f = a[i * n + c] / piv;
            for j in c..n {
                a[i * n + j] -= f * a[c * n + j];
            }
        }
    }
    d
}

fn det_eval(x: &Tensor) -> Result<Tensor> {
    let ty = det_infer(&x.ty())?;
    let n = x.shape()[x.rank() - 1];
    let v = x.to_f64_vec();
    let out: Vec<f64> = if n == 0 {
        vec![1.0; ty.numel()]
    } else {
        v.chunks(n * n).map(|c| det(c.to_vec(), n)).collect()
    };
    Ok(Tensor::from_vec(ty.shape, out)?.cast(ty.dtype))
}

/// Subtracts a zero point from an 8-bit operand of MatMulInteger, as i64.
/// `per` is the axis along which a 1-D zero point varies (rows of A, columns of B).
fn sub_zero_point(x: &Tensor, zp: Option<&&Tensor>, left: bool) -> Result<Vec<i64>> {
    let mut v = x.to_i64_vec()?;
    let Some(zp) = zp else { return Ok(v) };
    ensure!(
        zp.dtype() == x.dtype(),
        "zero point type {} differs from its operand's {}",
        zp.dtype(),
        x.dtype()
    );
    let z = zp.to_i64_vec()?;
    let r = x.rank();
    if z.len() == 1 {
        v.iter_mut().for_each(|e| *e -= z[0]);
        return Ok(v);
    }
    ensure!(r >= 2, "a per-row/column zero point needs a matrix operand");
    let (rows, cols) = (x.shape()[r - 2], x.shape()[r - 1]);
    let want = if left { rows } else { cols };
    ensure!(
        zp.rank() <= 1 && z.len() == want,
        "zero point of shape {:?} does not match operand {:?}",
        zp.shape(),
        x.shape()
    );
    for (i, e) in v.iter_mut().enumerate() {
        let (row, col) = ((i / cols) % rows, i % cols);
        *e -= z[if left { row } else { col }];
    }
    Ok(v)
}

fn matmul_integer_infer(ins: &[&TensorType]) -> Result<TensorType> {
    arity(ins, 2, 4)?;
    for t in &ins[..2] {
        ensure!(
            matches!(t.dtype, DType::I8 | DType::U8),
            "MatMulInteger needs int8/uint8 inputs, got {}",
            t.dtype
        );
    }
    Ok(TensorType::new(
        DType::I32,
        matmul_shape(&ins[0].shape, &ins[1].shape)?,
    ))
}

fn matmul_integer_eval(ins: &[&Tensor]) -> Result<Tensor> {
    let a = sub_zero_point(ins[0], ins.get(2), true)?;
    let b = sub_zero_point(ins[1], ins.get(3), false)?;
    let (s, v) = matmul_raw(&a, ins[0].shape(), &b, ins[1].shape())?;
    Tensor::from_vec(s, v.into_iter().map(|x| x as i32).collect())
}

pub fn register(r: &mut Registry) {
    r.add(
        "MatMul",
        |_, ins, _| {
            arity(ins, 2, 2)?;
            let d = super::util::same_dtype(ins)?;
            ensure!(d.is_numeric(), "MatMul does not support {d}");
            Ok(vec![TensorType::new(
                d,
                matmul_shape(&ins[0].shape, &ins[1].shape)?,
            )])
        },
        |_, ins, _| {
            arity(ins, 2, 2)?;
            Ok(vec![matmul(ins[0], ins[1])?])
        },
    );
    r.add(
        "Gemm",
        |a, ins, _| Ok(vec![gemm_infer(a, ins)?]),
        |a, ins, _| {
            arity(ins, 2, 3)?;
            Ok(vec![gemm_eval(a, ins)?])
        },
    );
    r.add(
        "MatMulInteger",
        |_, ins, _| Ok(vec![matmul_integer_infer(ins)?]),
        |_, ins, _| {
            let tys: Vec<TensorType> = ins.iter().map(|t| t.ty()).collect();
            matmul_integer_infer(&tys.iter().collect::<Vec<_>>())?;
            Ok(vec![matmul_integer_eval(ins)?])
        },
    );
    r.add(
        "Det",
        |_, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![det_infer(ins[0])?])
        },
        |_, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![det_eval(ins[0])?])
        },
    );
    einsum::register(r);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_promotes_1d_and_broadcasts_batches() {
        assert_eq!(matmul_shape(&[3], &[2, 3, 4]).unwrap(), vec![2, 4]);
        assert_eq!(matmul_shape(&[2, 1, 3, 4], &[4]).unwrap(), vec![2, 1, 3]);
        assert_eq!(matmul_shape(&[3], &[3]).unwrap(), Vec::<usize>::new());
        assert_eq!(
            matmul_shape(&[2, 1, 3, 4], &[5, 4, 6]).unwrap(),
            vec![2, 5, 3, 6]
        );
        assert!(matmul_shape(&[2, 3], &[4, 2]).is_err());
        let a = Tensor::from_vec(vec![2], vec![100i8, 100]).unwrap();
        let b = Tensor::from_vec(vec![2], vec![2i8, 1]).unwrap();
        // 300 wraps to 44 in i8.
        assert_eq!(matmul(&a, &b).unwrap().as_slice::<i8>().unwrap(), &[44]);
    }

    #[test]
    fn gemm_transposes_and_broadcasts_c() {
        let a = Tensor::from_vec(vec![2, 1], vec![1f32, 2.]).unwrap(); // A^T = [1, 2]
        let b = Tensor::from_vec(vec![2, 2], vec![1f32, 2., 3., 4.]).unwrap();
        let c = Tensor::from_vec(vec![1], vec![10f32]).unwrap();
        let attrs = Attrs::new()
            .with("transA", crate::Attr::Int(1))
            .with("alpha", crate::Attr::Float(2.0))
            .with("beta", crate::Attr::Float(0.5));
        let y = gemm_eval(&attrs, &[&a, &b, &c]).unwrap();
        assert_eq!(y.shape(), &[1, 2]);
        assert_eq!(y.as_slice::<f32>().unwrap(), &[19., 25.]);
    }
}
