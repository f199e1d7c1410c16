//! Conversion of ONNX `TensorProto`s (inline, typed fields, or external data) to Kiln tensors.

use super::proto::{tensor_proto::DataLocation, TensorProto};
use crate::{map_err, MapError};
use kiln_ir::{DType, Tensor, TensorData};
use std::path::Path;

/// ONNX `TensorProto.DataType` code to Kiln dtype; unsupported types give a named error.
pub fn dtype_from_onnx(code: i32) -> Result<DType, MapError> {
    Ok(match code {
        1 => DType::F32,
        8 => DType::String,
        2 => DType::U8,
        3 => DType::I8,
        4 => DType::U16,
        5 => DType::I16,
        6 => DType::I32,
        7 => DType::I64,
        9 => DType::Bool,
        10 => DType::F16,
        11 => DType::F64,
        12 => DType::U32,
        13 => DType::U64,
        16 => DType::BF16,
        17 => DType::F8E4M3FN,
        18 => DType::F8E4M3FNUZ,
        19 => DType::F8E5M2,
        20 => DType::F8E5M2FNUZ,
        21 => DType::U4,
        22 => DType::I4,
        23 => DType::F4E2M1,
        24 => DType::F8E8M0,
        25 => DType::U2,
        26 => DType::I2,
        _ => {
            return Err(MapError::Unsupported(format!(
                "element type {} is not supported",
                onnx_type_name(code)
            )))
        }
    })
}

/// The ONNX name of a `TensorProto.DataType` code.
pub fn onnx_type_name(code: i32) -> String {
    super::proto::tensor_proto::DataType::try_from(code)
        .map(|d| d.as_str_name().to_string())
        .unwrap_or_else(|_| format!("#{code}"))
}

/// Reads a tensor; `base_dir` is where external data files are looked up.
pub fn tensor_from_proto(t: &TensorProto, base_dir: Option<&Path>) -> Result<Tensor, MapError> {
    let dtype = dtype_from_onnx(t.data_type.unwrap_or(0))?;
    let mut shape = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        if d < 0 {
            return Err(map_err!(
                "tensor `{}` has a negative dimension {d}",
                t.name()
            ));
        }
        shape.push(d as usize);
    }
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| map_err!("tensor `{}` is too large", t.name()))?;
    if t.data_location == Some(DataLocation::External as i32) {
        let bytes = read_external(t, base_dir, n * dtype.size_of())?;
        return Ok(Tensor::from_le_bytes(dtype, shape, &bytes)?);
    }
    if dtype == DType::String && t.raw_data.is_some() {
        return Err(map_err!(
            "string tensor `{}` must use string_data, not raw_data",
            t.name()
        ));
    }
    if let Some(raw) = &t.raw_data {
        let raw = unpack(raw, dtype, n).map_err(|e| map_err!("tensor `{}`: {e}", t.name()))?;
        return Tensor::from_le_bytes(dtype, shape, &raw)
            .map_err(|e| map_err!("tensor `{}`: {e}", t.name()));
    }
    let data = typed_fields(t, dtype)?;
    if data.len() != n {
        return Err(map_err!(
            "tensor `{}` of shape {shape:?} holds {} values, needs {n}",
            t.name(),
            data.len()
        ));
    }
    Ok(Tensor::new(shape, data)?)
}

/// ONNX packs 4-bit types two and 2-bit types four to a byte, low bits first;
/// Kiln stores one element per byte. Other types pass through.
fn unpack(raw: &[u8], dtype: DType, n: usize) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    let bits = dtype.bits();
    if bits >= 8 {
        return Ok(std::borrow::Cow::Borrowed(raw));
    }
    let per = 8 / bits;
    if raw.len() != n.div_ceil(per) {
        return Err(format!(
            "{n} packed {dtype} values need {} bytes, got {}",
            n.div_ceil(per),
            raw.len()
        ));
    }
    let mask = (1u8 << bits) - 1;
    Ok((0..n)
        .map(|i| (raw[i / per] >> ((i % per) * bits)) & mask)
        .collect())
}

fn typed_fields(t: &TensorProto, dtype: DType) -> Result<TensorData, MapError> {
    if dtype == DType::String {
        return Ok(TensorData::String(
            t.string_data
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect(),
        ));
    }
    if dtype.size_of() == 1 && !matches!(dtype, DType::I8 | DType::U8 | DType::Bool) {
        // float8 and packed low-bit types: int32_data holds one byte (code) each,
        // packed for 4/2-bit types.
        let n: usize = t.dims.iter().map(|&d| d.max(0) as usize).product();
        let bytes: Vec<u8> = t.int32_data.iter().map(|&v| v as u8).collect();
        let per = 8 / dtype.bits();
        let bytes = if per > 1 && bytes.len() != n {
            unpack(&bytes, dtype, n)
                .map_err(|e| map_err!("{e}"))?
                .into_owned()
        } else {
            bytes
        };
        return Ok(Tensor::from_le_bytes(dtype, vec![bytes.len()], &bytes)?.into_data());
    }
    let i32s = &t.int32_data;
    Ok(match dtype {
        DType::F32 => TensorData::F32(t.float_data.clone()),
        DType::F64 => TensorData::F64(t.double_data.clone()),
        DType::I64 => TensorData::I64(t.int64_data.clone()),
        DType::U64 => TensorData::U64(t.uint64_data.clone()),
        DType::U32 => TensorData::U32(t.uint64_data.iter().map(|&v| v as u32).collect()),
        DType::I32 => TensorData::I32(i32s.clone()),
        DType::I16 => TensorData::I16(i32s.iter().map(|&v| v as i16).collect()),
        DType::U16 => TensorData::U16(i32s.iter().map(|&v| v as u16).collect()),
        DType::I8 => TensorData::I8(i32s.iter().map(|&v| v as i8).collect()),
        DType::U8 => TensorData::U8(i32s.iter().map(|&v| v as u8).collect()),
        DType::Bool => TensorData::Bool(i32s.iter().map(|&v| v != 0).collect()),
        DType::F16 => TensorData::F16(
            i32s.iter()
                .map(|&v| half::f16::from_bits(v as u16))
                .collect(),
        ),
        DType::BF16 => TensorData::BF16(
            i32s.iter()
                .map(|&v| half::bf16::from_bits(v as u16))
                .collect(),
        ),
        d => {
            return Err(MapError::Unsupported(format!(
                "element type {d} in typed fields"
            )))
        }
    })
}

fn read_external(
    t: &TensorProto,
    base_dir: Option<&Path>,
    want: usize,
) -> Result<Vec<u8>, MapError> {
    let get = |k: &str| {
        t.external_data
            .iter()
            .find(|e| e.key() == k)
            .map(|e| e.value().to_string())
    };
    let location = get("location")
        .ok_or_else(|| map_err!("external tensor `{}` has no location", t.name()))?;
    let rel = Path::new(&location);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(map_err!("external tensor `{}`: location `{location}` must be a relative path inside the model's folder", t.name()));
    }
    let path = base_dir.unwrap_or(Path::new(".")).join(rel);
    let parse = |k: &str| -> Result<Option<usize>, MapError> {
        get(k)
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| map_err!("external tensor `{}`: bad {k} `{v}`", t.name()))
            })
            .transpose()
    };
    let offset = parse("offset")?.unwrap_or(0);
    let length = parse("length")?.unwrap_or(want);
    if length != want {
        return Err(map_err!(
            "external tensor `{}`: length {length} bytes, its shape needs {want}",
            t.name()
        ));
    }
    read_range(&path, offset, want).map_err(|e| {
        map_err!(
            "external data file {} of tensor `{}`: {e}",
            path.display(),
            t.name()
        )
    })
}

/// Reads `len` bytes at `offset` of a file, without reading the rest of it.
fn read_range(path: &Path, offset: usize, len: usize) -> Result<Vec<u8>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    let end = offset.checked_add(len).filter(|&e| e as u64 <= size);
    if end.is_none() {
        return Err(format!(
            "the file is too short: needs bytes {offset}..{} but has {size}",
            offset.saturating_add(len)
        ));
    }
    f.seek(SeekFrom::Start(offset as u64))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Reads a serialized `TensorProto` file (as in ONNX test data: `input_0.pb`),
/// returning its name (possibly empty) and value.
pub fn read_tensor_pb(path: &Path) -> crate::Result<(String, Tensor)> {
    use prost::Message;
    let bytes = std::fs::read(path).map_err(|source| crate::ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let t = TensorProto::decode(bytes.as_slice()).map_err(|e| crate::ImportError::Decode {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    let v = tensor_from_proto(&t, path.parent()).map_err(|e| crate::ImportError::Model {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    Ok((t.name().to_string(), v))
}
