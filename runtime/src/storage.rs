//! Where values live during a run, and the per-run frame that holds them.
//!
//! Plain-data dtypes (floats, integers, bool) live in one arena per run at
//! offsets the memory planner chose; graph inputs and constants are read in
//! place. Dtypes without a fixed byte form (strings, low-bit types) are
//! "boxed": held as whole tensors in the frame's slots.

use kiln_ir::{DType, Tensor, TensorData, TensorType};
use std::borrow::Cow;
use std::sync::Arc;

/// Where one value's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loc {
    /// In the run's arena at a byte offset.
    Arena(usize),
    /// Graph input number `.0`, read in place.
    Input(usize),
    /// Constant number `.0` of the executable, read in place.
    Const(usize),
    /// A whole tensor in the frame's slot `.0`.
    Boxed(usize),
}

/// A value as a kernel sees it: its location and type.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub loc: Loc,
    pub ty: TensorType,
}

/// True for dtypes whose elements are plain bytes the arena can hold.
pub(crate) fn is_plain(d: DType) -> bool {
    matches!(
        d,
        DType::F32
            | DType::F64
            | DType::F16
            | DType::BF16
            | DType::I8
            | DType::U8
            | DType::I16
            | DType::U16
            | DType::I32
            | DType::U32
            | DType::I64
            | DType::U64
            | DType::Bool
    )
}

/// The address of a plain tensor's first element (`None` for boxed dtypes).
pub(crate) fn tensor_ptr(t: &Tensor) -> Option<*const u8> {
    macro_rules! ptr {
        ($($v:ident),*) => {
            match t.data() {
                $(TensorData::$v(v) => Some(v.as_ptr() as *const u8),)*
                _ => None,
            }
        };
    }
    ptr!(F32, F64, F16, BF16, I8, U8, I16, U16, I32, U32, I64, U64, Bool)
}

/// A 64-byte aligned, zero-initialised byte buffer.
pub(crate) struct Arena {
    words: Vec<Align64>,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Align64([u8; 64]);

impl Arena {
    pub fn new(bytes: usize) -> Arena {
        Arena {
            words: kiln_codegen::cpu::pages::filled_vec(bytes.div_ceil(64), Align64([0; 64])),
        }
    }
    pub fn base(&mut self) -> *mut u8 {
        self.words.as_mut_ptr() as *mut u8
    }
}

/// One run's storage: the arena and the boxed slots.
pub(crate) struct Frame {
    pub arena: Arena,
    pub boxed: Vec<Option<Tensor>>,
}

/// Everything a step reads or writes, resolved for one run.
pub(crate) struct Env<'r> {
    pub arena: *mut u8,
    pub inputs: &'r [&'r Tensor],
    pub consts: &'r [Arc<Tensor>],
    pub boxed: &'r mut [Option<Tensor>],
}

impl Env<'_> {
    /// The address of a plain value.
    pub fn ptr(&self, loc: Loc) -> *mut u8 {
        match loc {
            // SAFETY: the planner placed every arena value inside the arena.
            Loc::Arena(off) => unsafe { self.arena.add(off) },
            Loc::Input(i) => tensor_ptr(self.inputs[i]).unwrap_or(std::ptr::null()) as *mut u8,
            Loc::Const(i) => tensor_ptr(&self.consts[i]).unwrap_or(std::ptr::null()) as *mut u8,
            Loc::Boxed(_) => std::ptr::null_mut(),
        }
    }

    /// A value as a tensor (copied out of the arena or reshaped for a view,
    /// borrowed otherwise).
    pub fn tensor(&self, s: &Slot) -> kiln_ir::Result<Cow<'_, Tensor>> {
        let held: &Tensor = match s.loc {
            Loc::Input(i) => self.inputs[i],
            Loc::Const(i) => self.consts[i].as_ref(),
            Loc::Boxed(i) => self.boxed[i].as_ref().ok_or_else(|| {
                kiln_ir::IrError::Input(
                    "internal: a boxed value was read before it was written".into(),
                )
            })?,
            Loc::Arena(_) => {
                let bytes = s.ty.bytes();
                // SAFETY: the value occupies `bytes` bytes at its arena offset.
                let raw = unsafe { std::slice::from_raw_parts(self.ptr(s.loc), bytes) };
                let t = Tensor::from_le_bytes(s.ty.dtype, s.ty.shape.clone(), raw)?;
                return Ok(Cow::Owned(t));
            }
        };
        if held.shape() == s.ty.shape.as_slice() {
            Ok(Cow::Borrowed(held))
        } else {
            Ok(Cow::Owned(held.clone().reshape(s.ty.shape.clone())?))
        }
    }

    /// Stores a tensor into a value's place (its type was checked by the caller).
    pub fn store(&mut self, s: &Slot, t: Tensor) {
        match s.loc {
            Loc::Boxed(i) => self.boxed[i] = Some(t),
            loc => {
                let src = tensor_ptr(&t).expect("plain dtype in the arena");
                // SAFETY: `t` has the slot's type, so exactly `bytes` bytes are
                // copied into the value's own arena range.
                unsafe { std::ptr::copy_nonoverlapping(src, self.ptr(loc), s.ty.bytes()) };
            }
        }
    }
}
