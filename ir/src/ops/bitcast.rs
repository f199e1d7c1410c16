//! `BitCast`: reinterprets the little-endian bytes of a tensor as another
//! dtype of the same width. Attribute `to` (dtype). Output has the input's
//! shape. Written over `Tensor::to_le_bytes`/`from_le_bytes`, so it covers
//! every dtype those cover.

use super::util::arity;
use crate::{ensure, Attrs, Registry, Result, Tensor, TensorType};

fn infer(a: &Attrs, ins: &[&TensorType], _n: usize) -> Result<Vec<TensorType>> {
    arity(ins, 1, 1)?;
    let to = a.dtype("to")?;
    let from = ins[0].dtype;
    ensure!(
        from.size_of() == to.size_of(),
        "BitCast needs types of one width: {from} has {} bytes, {to} has {}",
        from.size_of(),
        to.size_of()
    );
    Ok(vec![TensorType::new(to, ins[0].shape.clone())])
}

/// `BitCast` of one tensor.
pub fn bitcast(x: &Tensor, to: crate::DType) -> Result<Tensor> {
    let a = Attrs::new().with("to", crate::Attr::DType(to));
    let ty = infer(&a, &[&x.ty()], 1)?.remove(0);
    Tensor::from_le_bytes(to, ty.shape, &x.to_le_bytes())
}

pub fn register(r: &mut Registry) {
    r.add("BitCast", infer, |a, ins, _| {
        arity(ins, 1, 1)?;
        Ok(vec![bitcast(ins[0], a.dtype("to")?)?])
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    #[test]
    fn float_bits_and_width_check() {
        let x = Tensor::from_vec(vec![2], vec![1.0f32, -0.0]).unwrap();
        let y = bitcast(&x, DType::I32).unwrap();
        assert_eq!(y.to_i64_vec().unwrap(), vec![0x3f80_0000, i32::MIN as i64]);
        assert!(bitcast(&x, DType::I64).is_err());
    }
}
