//! The owned host `Tensor`: a dtype, a static shape and row-major contiguous data.

use crate::dispatch_dtype;
use crate::elem::Elem;
use crate::{ensure, op_err, DType, Result};
use half::{bf16, f16};

/// Row-major element storage, one variant per dtype.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    Bool(Vec<bool>),
    F8E4M3FN(Vec<crate::lowbit::F8E4M3Fn>),
    F8E4M3FNUZ(Vec<crate::lowbit::F8E4M3Fnuz>),
    F8E5M2(Vec<crate::lowbit::F8E5M2>),
    F8E5M2FNUZ(Vec<crate::lowbit::F8E5M2Fnuz>),
    F8E8M0(Vec<crate::lowbit::F8E8M0>),
    F4E2M1(Vec<crate::lowbit::F4E2M1>),
    I4(Vec<crate::lowbit::I4>),
    U4(Vec<crate::lowbit::U4>),
    I2(Vec<crate::lowbit::I2>),
    U2(Vec<crate::lowbit::U2>),
    String(Vec<String>),
}

/// An owned tensor on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

impl TensorData {
    /// The dtype of the stored elements.
    pub fn dtype(&self) -> DType {
        macro_rules! which {
            ($($v:ident),*) => {
                match self {
                    $(TensorData::$v(_) => DType::$v,)*
                }
            };
        }
        which!(
            F32, F64, F16, BF16, I8, U8, I16, U16, I32, U32, I64, U64, Bool, F8E4M3FN, F8E4M3FNUZ,
            F8E5M2, F8E5M2FNUZ, F8E8M0, F4E2M1, I4, U4, I2, U2, String
        )
    }

    /// Number of stored elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::String(v) => v.len(),
            _ => dispatch_dtype!(self.dtype(), T => T::slice(self).map_or(0, |s| s.len())),
        }
    }

    /// True when no element is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Number of elements of a shape (1 for a scalar).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major strides of a shape, in elements.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

impl Tensor {
    /// Builds a tensor, checking that the data holds exactly `numel(shape)` elements.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Tensor> {
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        ensure!(
            n == Some(data.len()),
            "tensor of shape {shape:?} needs {n:?} elements, got {}",
            data.len()
        );
        Ok(Tensor { shape, data })
    }

    /// Builds a tensor from a vector of elements.
    pub fn from_vec<T: Elem>(shape: Vec<usize>, v: Vec<T>) -> Result<Tensor> {
        Tensor::new(shape, T::wrap(v))
    }

    /// A rank-0 tensor holding one value.
    pub fn scalar<T: Elem>(v: T) -> Tensor {
        Tensor {
            shape: vec![],
            data: T::wrap(vec![v]),
        }
    }

    /// A tensor filled with zeros (false for bool).
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Tensor {
        let n = numel(&shape);
        let data = dispatch_dtype!(dtype, T => T::wrap(vec![T::default(); n]));
        Tensor { shape, data }
    }

    /// A tensor of the given dtype and shape filled with one value (converted with `as` rules).
    pub fn full(dtype: DType, shape: Vec<usize>, value: f64) -> Tensor {
        let n = numel(&shape);
        let data = dispatch_dtype!(dtype, T => T::wrap(vec![T::from_f64(value); n]));
        Tensor { shape, data }
    }

    /// A 1-D i64 tensor.
    pub fn from_i64s(v: &[i64]) -> Tensor {
        Tensor {
            shape: vec![v.len()],
            data: TensorData::I64(v.to_vec()),
        }
    }

    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn data(&self) -> &TensorData {
        &self.data
    }
    pub fn into_data(self) -> TensorData {
        self.data
    }
    /// The tensor's type (dtype and shape).
    pub fn ty(&self) -> crate::TensorType {
        crate::TensorType::new(self.dtype(), self.shape.clone())
    }

    /// Builds a string tensor.
    pub fn from_strings(shape: Vec<usize>, v: Vec<String>) -> Result<Tensor> {
        Tensor::new(shape, TensorData::String(v))
    }

    /// The elements of a string tensor; an error for other dtypes.
    pub fn as_strings(&self) -> Result<&[String]> {
        match &self.data {
            TensorData::String(v) => Ok(v),
            _ => Err(crate::IrError::DType {
                expected: "string".into(),
                got: self.dtype(),
            }),
        }
    }

    /// The elements as a slice of `T`; an error if the dtype differs.
    pub fn as_slice<T: Elem>(&self) -> Result<&[T]> {
        if self.dtype() == DType::String && T::DTYPE == DType::String {
            return Err(op_err!("this operation does not support string tensors"));
        }
        T::slice(&self.data).ok_or(crate::IrError::DType {
            expected: T::DTYPE.to_string(),
            got: self.dtype(),
        })
    }

    /// The elements as a mutable slice of `T`; an error if the dtype differs.
    pub fn as_slice_mut<T: Elem>(&mut self) -> Result<&mut [T]> {
        let got = self.dtype();
        T::slice_mut(&mut self.data).ok_or(crate::IrError::DType {
            expected: T::DTYPE.to_string(),
            got,
        })
    }

    /// The same data with another shape of equal element count.
    pub fn reshape(self, shape: Vec<usize>) -> Result<Tensor> {
        Tensor::new(shape, self.data)
    }

    /// Converts every element to another dtype (`as` rules; floats to bool test `!= 0`).
    pub fn cast(&self, to: DType) -> Tensor {
        if to == self.dtype() {
            return self.clone();
        }
        if let TensorData::String(v) = &self.data {
            // Strings parse as numbers (NaN, or 0 for integers, when they do not).
            let nums: Vec<f64> = v
                .iter()
                .map(|s| s.trim().parse::<f64>().unwrap_or(f64::NAN))
                .collect();
            let t = Tensor {
                shape: self.shape.clone(),
                data: TensorData::F64(nums),
            };
            return t.cast(to);
        }
        if to == DType::String {
            let v: Vec<String> = self.to_f64_vec().iter().map(|x| format!("{x}")).collect();
            return Tensor {
                shape: self.shape.clone(),
                data: TensorData::String(v),
            };
        }
        let data = dispatch_dtype!(self.dtype(), S => {
            let src = S::slice(&self.data).expect("dtype matches variant");
            dispatch_dtype!(to, D => D::wrap(src.iter().map(|&x| D::from_elem(x)).collect()))
        });
        Tensor {
            shape: self.shape.clone(),
            data,
        }
    }

    /// All elements as f64 (any dtype).
    /// (Strings parse as numbers, NaN where they do not.)
    pub fn to_f64_vec(&self) -> Vec<f64> {
        if let TensorData::String(v) = &self.data {
            return v
                .iter()
                .map(|s| s.trim().parse::<f64>().unwrap_or(f64::NAN))
                .collect();
        }
        dispatch_dtype!(self.dtype(), T => T::slice(&self.data).expect("dtype matches variant").iter().map(|x| x.to_f64()).collect())
    }

    /// All elements as i64; an error for float tensors (indices and shapes must be integers).
    pub fn to_i64_vec(&self) -> Result<Vec<i64>> {
        if self.dtype().is_float() || self.dtype() == DType::String {
            return Err(op_err!("expected an integer tensor, got {}", self.dtype()));
        }
        Ok(
            dispatch_dtype!(self.dtype(), T => T::slice(&self.data).expect("dtype matches variant").iter().map(|x| x.to_i64()).collect()),
        )
    }

    /// The single element of a one-element tensor, as f64.
    pub fn scalar_f64(&self) -> Result<f64> {
        ensure!(
            self.len() == 1,
            "expected a single value, got shape {:?}",
            self.shape
        );
        Ok(self.to_f64_vec()[0])
    }

    /// The raw little-endian bytes of the elements (bool as 0/1 bytes, low-bit
    /// types one unpacked code per byte, strings their UTF-8 bytes concatenated).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        macro_rules! bytes {
            ($v:expr) => {
                $v.iter().flat_map(|x| x.to_le_bytes()).collect()
            };
        }
        match &self.data {
            TensorData::F32(v) => bytes!(v),
            TensorData::F64(v) => bytes!(v),
            TensorData::F16(v) => bytes!(v),
            TensorData::BF16(v) => bytes!(v),
            TensorData::I8(v) => bytes!(v),
            TensorData::U8(v) => v.clone(),
            TensorData::I16(v) => bytes!(v),
            TensorData::U16(v) => bytes!(v),
            TensorData::I32(v) => bytes!(v),
            TensorData::U32(v) => bytes!(v),
            TensorData::I64(v) => bytes!(v),
            TensorData::U64(v) => bytes!(v),
            TensorData::Bool(v) => v.iter().map(|&b| b as u8).collect(),
            TensorData::F8E4M3FN(v) => v.iter().map(|x| x.0).collect(),
            TensorData::F8E4M3FNUZ(v) => v.iter().map(|x| x.0).collect(),
            TensorData::F8E5M2(v) => v.iter().map(|x| x.0).collect(),
            TensorData::F8E5M2FNUZ(v) => v.iter().map(|x| x.0).collect(),
            TensorData::F8E8M0(v) => v.iter().map(|x| x.0).collect(),
            TensorData::F4E2M1(v) => v.iter().map(|x| x.0).collect(),
            TensorData::I4(v) => v.iter().map(|x| x.0 as u8).collect(),
            TensorData::U4(v) => v.iter().map(|x| x.0).collect(),
            TensorData::I2(v) => v.iter().map(|x| x.0 as u8).collect(),
            TensorData::U2(v) => v.iter().map(|x| x.0).collect(),
            TensorData::String(v) => v.iter().flat_map(|x| x.bytes()).collect(),
        }
    }

    /// Builds a tensor from raw little-endian bytes, one element per
    /// `dtype.size_of()` bytes (low-bit types: one code per byte, unpacked);
    /// an error if the byte count is wrong.
    pub fn from_le_bytes(dtype: DType, shape: Vec<usize>, bytes: &[u8]) -> Result<Tensor> {
        use crate::lowbit as lb;
        let n = numel(&shape);
        let want = n.checked_mul(dtype.size_of());
        ensure!(
            want == Some(bytes.len()),
            "{dtype} tensor of shape {shape:?} needs {want:?} bytes, got {}",
            bytes.len()
        );
        macro_rules! parse {
            ($t:ty, $k:expr) => {
                bytes
                    .chunks_exact($k)
                    .map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk size")))
                    .collect()
            };
        }
        let data = match dtype {
            DType::F32 => TensorData::F32(parse!(f32, 4)),
            DType::F64 => TensorData::F64(parse!(f64, 8)),
            DType::F16 => TensorData::F16(parse!(f16, 2)),
            DType::BF16 => TensorData::BF16(parse!(bf16, 2)),
            DType::I8 => TensorData::I8(bytes.iter().map(|&b| b as i8).collect()),
            DType::U8 => TensorData::U8(bytes.to_vec()),
            DType::I16 => TensorData::I16(parse!(i16, 2)),
            DType::U16 => TensorData::U16(parse!(u16, 2)),
            DType::I32 => TensorData::I32(parse!(i32, 4)),
            DType::U32 => TensorData::U32(parse!(u32, 4)),
            DType::I64 => TensorData::I64(parse!(i64, 8)),
            DType::U64 => TensorData::U64(parse!(u64, 8)),
            DType::Bool => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
            DType::F8E4M3FN => {
                TensorData::F8E4M3FN(bytes.iter().map(|&b| lb::F8E4M3Fn(b)).collect())
            }
            DType::F8E4M3FNUZ => {
                TensorData::F8E4M3FNUZ(bytes.iter().map(|&b| lb::F8E4M3Fnuz(b)).collect())
            }
            DType::F8E5M2 => TensorData::F8E5M2(bytes.iter().map(|&b| lb::F8E5M2(b)).collect()),
            DType::F8E5M2FNUZ => {
                TensorData::F8E5M2FNUZ(bytes.iter().map(|&b| lb::F8E5M2Fnuz(b)).collect())
            }
            DType::F8E8M0 => TensorData::F8E8M0(bytes.iter().map(|&b| lb::F8E8M0(b)).collect()),
            DType::F4E2M1 => {
                TensorData::F4E2M1(bytes.iter().map(|&b| lb::F4E2M1(b & 0xF)).collect())
            }
            DType::I4 => TensorData::I4(
                bytes
                    .iter()
                    .map(|&b| lb::I4(((b << 4) as i8) >> 4))
                    .collect(),
            ),
            DType::U4 => TensorData::U4(bytes.iter().map(|&b| lb::U4(b & 0xF)).collect()),
            DType::I2 => TensorData::I2(
                bytes
                    .iter()
                    .map(|&b| lb::I2(((b << 6) as i8) >> 6))
                    .collect(),
            ),
            DType::U2 => TensorData::U2(bytes.iter().map(|&b| lb::U2(b & 0x3)).collect()),
            DType::String => return Err(op_err!("string tensors have no fixed-size byte form")),
        };
        Tensor::new(shape, data)
    }
}
