//! `.npy` load and save for [`Tensor`](crate::Tensor): format versions 1.0–3.0,
//! little- or big-endian, C order (Fortran order is transposed on load).
//! Every Kiln dtype has an npy type; `bf16` uses the `bfloat16` descr of ml_dtypes.

use crate::{DType, IrError, Result, Tensor};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

fn err(path: &Path, msg: impl Into<String>) -> IrError {
    IrError::Npy {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// The npy type descriptor (without byte-order character) of a dtype.
fn descr(d: DType) -> &'static str {
    match d {
        DType::F32 => "f4",
        DType::F64 => "f8",
        DType::F16 => "f2",
        DType::BF16 => "bfloat16",
        DType::I8 => "i1",
        DType::U8 => "u1",
        DType::I16 => "i2",
        DType::U16 => "u2",
        DType::I32 => "i4",
        DType::U32 => "u4",
        DType::I64 => "i8",
        DType::U64 => "u8",
        DType::Bool => "b1",
        // ml_dtypes' names; one element per byte, as Kiln stores them.
        DType::F8E4M3FN => "float8_e4m3fn",
        DType::F8E4M3FNUZ => "float8_e4m3fnuz",
        DType::F8E5M2 => "float8_e5m2",
        DType::F8E5M2FNUZ => "float8_e5m2fnuz",
        DType::F8E8M0 => "float8_e8m0fnu",
        DType::F4E2M1 => "float4_e2m1fn",
        DType::I4 => "int4",
        DType::U4 => "uint4",
        DType::I2 => "int2",
        DType::U2 => "uint2",
        // numpy's fixed-width unicode arrays are not read or written.
        DType::String => "string",
    }
}

fn parse_descr(s: &str) -> Option<(DType, bool)> {
    let (big, body) = match s.as_bytes().first()? {
        b'<' | b'=' => (false, &s[1..]),
        b'|' => (false, &s[1..]),
        b'>' => (true, &s[1..]),
        _ => (false, s),
    };
    let d = DType::ALL
        .into_iter()
        .find(|&d| descr(d) == body || (d == DType::Bool && body == "?"))?;
    Ok::<_, ()>((d, big)).ok()
}

/// Serialises a tensor to npy bytes (version 1.0); string tensors are not supported.
pub fn to_bytes(t: &Tensor) -> Vec<u8> {
    let shape = match t.shape() {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let order = if t.dtype().size_of() == 1 { "|" } else { "<" };
    let mut header = format!(
        "{{'descr': '{order}{}', 'fortran_order': False, 'shape': {shape}, }}",
        descr(t.dtype())
    );
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out =
        Vec::with_capacity(MAGIC.len() + 4 + header.len() + t.len() * t.dtype().size_of());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&t.to_le_bytes());
    out
}

/// Writes a tensor to a `.npy` file.
pub fn save(path: impl AsRef<Path>, t: &Tensor) -> Result<()> {
    let path = path.as_ref();
    if t.dtype() == DType::String {
        return Err(err(path, "string tensors cannot be written as .npy"));
    }
    std::fs::write(path, to_bytes(t)).map_err(|e| err(path, format!("cannot write: {e}")))
}

/// Reads a `.npy` file.
pub fn load(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    from_bytes(&bytes).map_err(|m| err(path, m))
}

/// Parses npy bytes; the error says what is wrong.
pub fn from_bytes(b: &[u8]) -> std::result::Result<Tensor, String> {
    if b.len() < 10 || &b[..6] != MAGIC {
        return Err("not a .npy file (bad magic bytes)".into());
    }
    let (hlen, start): (usize, usize) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let end = start
        .checked_add(hlen)
        .filter(|&e| e <= b.len())
        .ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(&b[start..end]).map_err(|_| "the .npy header is not text")?;
    let d = header_field(header, "descr").ok_or("the .npy header has no descr")?;
    let d = d.trim().trim_matches('\'').trim_matches('"');
    let (dtype, big) =
        parse_descr(d).ok_or_else(|| format!("unsupported .npy element type `{d}`"))?;
    let fortran =
        header_field(header, "fortran_order").is_some_and(|v| v.trim().starts_with("True"));
    let shape = parse_shape(header_field(header, "shape").ok_or("the .npy header has no shape")?)?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &x| a.checked_mul(x))
        .ok_or("shape too large")?;
    let nbytes = n.checked_mul(dtype.size_of()).ok_or("shape too large")?;
    let data = &b[end..];
    if data.len() < nbytes {
        return Err(format!(
            "the file holds {} data bytes, shape {shape:?} of {dtype} needs {nbytes}",
            data.len()
        ));
    }
    let mut raw = data[..nbytes].to_vec();
    if big && dtype.size_of() > 1 {
        raw.chunks_exact_mut(dtype.size_of())
            .for_each(|c| c.reverse());
    }
    if fortran && shape.len() > 1 {
        let rev: Vec<usize> = shape.iter().rev().copied().collect();
        let t = Tensor::from_le_bytes(dtype, rev, &raw).map_err(|e| e.to_string())?;
        return transpose_reverse(&t).map_err(|e| e.to_string());
    }
    Tensor::from_le_bytes(dtype, shape, &raw).map_err(|e| e.to_string())
}

/// Reverses the axes of a tensor (Fortran-order data read as C order).
fn transpose_reverse(t: &Tensor) -> Result<Tensor> {
    let shape: Vec<usize> = t.shape().iter().rev().copied().collect();
    let src_strides = crate::strides(t.shape());
    let n = t.len();
    let mut idx = Vec::with_capacity(n);
    let mut counter = vec![0usize; shape.len()];
    for _ in 0..n {
        let off: usize = counter
            .iter()
            .enumerate()
            .map(|(i, &c)| c * src_strides[shape.len() - 1 - i])
            .sum();
        idx.push(off);
        for d in (0..shape.len()).rev() {
            counter[d] += 1;
            if counter[d] < shape[d] {
                break;
            }
            counter[d] = 0;
        }
    }
    crate::ops::util::take_flat(t, shape, &idx)
}

/// The raw text of `'key': value` in a npy header dict.
fn header_field<'a>(h: &'a str, key: &str) -> Option<&'a str> {
    let pos = h
        .find(&format!("'{key}'"))
        .or_else(|| h.find(&format!("\"{key}\"")))?;
    let rest = &h[pos + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|e| e + 1)?
    } else {
        rest.find(',').unwrap_or(rest.len())
    };
    Some(&rest[..end])
}

fn parse_shape(s: &str) -> std::result::Result<Vec<usize>, String> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| format!("bad shape `{s}`"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| format!("bad dimension `{x}` in shape"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_every_dtype() {
        for d in DType::ALL.into_iter().filter(|&d| d != DType::String) {
            let t = Tensor::full(d, vec![2, 3], 1.0);
            let back = from_bytes(&to_bytes(&t)).unwrap();
            assert_eq!(back, t, "{d}");
        }
        let s = Tensor::scalar(7i64);
        assert_eq!(from_bytes(&to_bytes(&s)).unwrap(), s);
    }

    #[test]
    fn header_is_64_byte_aligned() {
        let b = to_bytes(&Tensor::scalar(1.0f32));
        assert_eq!((b.len() - 4) % 64, 0);
    }

    #[test]
    fn fortran_order_is_transposed() {
        let t = Tensor::from_vec(vec![2, 3], vec![0i32, 1, 2, 3, 4, 5]).unwrap();
        let mut b = to_bytes(&t);
        let (from, to) = (
            b"'fortran_order': False".as_slice(),
            b"'fortran_order': True ".as_slice(),
        );
        let pos = b.windows(from.len()).position(|w| w == from).unwrap();
        b[pos..pos + to.len()].copy_from_slice(to);
        // data bytes are [0..6) read column-major: element (i,j) = i + 2*j
        let back = from_bytes(&b).unwrap();
        assert_eq!(back.as_slice::<i32>().unwrap(), &[0, 2, 4, 1, 3, 5]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(from_bytes(b"hello world, not npy").is_err());
        let mut b = to_bytes(&Tensor::from_vec(vec![4], vec![1.0f32; 4]).unwrap());
        b.truncate(b.len() - 3);
        assert!(from_bytes(&b).unwrap_err().contains("needs"));
    }
}
