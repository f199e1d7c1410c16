//! `Cast`: converts every element to the dtype of attribute `to` (a DType).
//!
//! Float to integer truncates toward zero and saturates (NaN gives 0);
//! integer to integer wraps; anything to bool tests `!= 0` (NaN is true);
//! floats round to nearest even when narrowed. ONNX's `saturate` attribute
//! only concerns float8 types, which Kiln does not have.

use super::util::arity;
use crate::{Registry, TensorType};

pub fn register(r: &mut Registry) {
    r.add(
        "Cast",
        |a, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![TensorType::new(a.dtype("to")?, ins[0].shape.clone())])
        },
        |a, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![ins[0].cast(a.dtype("to")?)])
        },
    );
}

#[cfg(test)]
mod tests {
    use crate::{registry, Attr, Attrs, DType, Tensor};

    #[test]
    fn cast_saturates_and_wraps() {
        let x = Tensor::from_vec(vec![3], vec![300.7f32, -1.9, f32::NAN]).unwrap();
        let a = Attrs::new().with("to", Attr::DType(DType::U8));
        let y = registry().get("Cast").unwrap().eval(&a, &[&x], 1).unwrap();
        assert_eq!(y[0].as_slice::<u8>().unwrap(), &[255, 0, 0]);
        let i = Tensor::from_vec(vec![1], vec![257i32]).unwrap();
        let y = registry().get("Cast").unwrap().eval(&a, &[&i], 1).unwrap();
        assert_eq!(y[0].as_slice::<u8>().unwrap(), &[1]);
    }
}
