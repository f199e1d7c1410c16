//! `Cast`: converts every element to the dtype of attribute `to` (a DType).
//!
//! Float to integer truncates toward zero and saturates (NaN gives 0);
//! integer to integer wraps; anything to bool tests `!= 0` (NaN is true);
//! floats round to nearest even when narrowed. Float8/float4 targets round to
//! nearest even and saturate unless `saturate` is 0 (then overflow gives
//! infinity or NaN); float8 e8m0 targets round by `round_mode` (`up`
//! (default), `down`, `nearest`). 4- and 2-bit integer targets round to
//! nearest even and clamp.

use super::util::arity;
use crate::lowbit::{self, e8m0};
use crate::{op_err, Attrs, DType, Registry, Result, Tensor, TensorType};

/// Casts with the attributes' float8 rules.
pub(crate) fn cast(a: &Attrs, x: &Tensor) -> Result<Tensor> {
    let to = a.dtype("to")?;
    let saturate = a.int_or("saturate", 1)? != 0;
    let round = match a.str_or("round_mode", "up")? {
        "up" => e8m0::Round::Up,
        "down" => e8m0::Round::Down,
        "nearest" => e8m0::Round::Nearest,
        m => return Err(op_err!("round_mode must be up, down or nearest, got `{m}`")),
    };
    let format = match to {
        DType::F8E4M3FN => &lowbit::E4M3FN,
        DType::F8E4M3FNUZ => &lowbit::E4M3FNUZ,
        DType::F8E5M2 => &lowbit::E5M2,
        DType::F8E5M2FNUZ => &lowbit::E5M2FNUZ,
        DType::F4E2M1 => &lowbit::E2M1,
        DType::F8E8M0 if (saturate, round) != (true, e8m0::Round::Up) => {
            let codes: Vec<u8> = x
                .to_f64_vec()
                .into_iter()
                .map(|v| e8m0::encode(v, round, saturate))
                .collect();
            return Tensor::from_le_bytes(to, x.shape().to_vec(), &codes);
        }
        _ => return Ok(x.cast(to)),
    };
    if saturate || x.dtype() == to {
        return Ok(x.cast(to));
    }
    let codes: Vec<u8> = x
        .to_f64_vec()
        .into_iter()
        .map(|v| format.encode(v, false))
        .collect();
    Tensor::from_le_bytes(to, x.shape().to_vec(), &codes)
}

pub fn register(r: &mut Registry) {
    r.add(
        "Cast",
        |a, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![TensorType::new(a.dtype("to")?, ins[0].shape.clone())])
        },
        |a, ins, _| {
            arity(ins, 1, 1)?;
            Ok(vec![cast(a, ins[0])?])
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
