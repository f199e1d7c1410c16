//! Epilogues fused into kernel stores: `+ bias`, `+ residual`, then an activation.
//!
//! The public [`Epilogue`] borrows slices; kernels turn it into an [`Epi`] of raw
//! pointers (already offset for the current batch/group, lengths checked by the
//! caller) that the SIMD tile code applies to each vector before storing it.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Elementwise activation applied last.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Activation {
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, min), max)` (ReLU6 is `Clip { min: 0.0, max: 6.0 }`).
    Clip { min: f32, max: f32 },
    /// `x` if `x >= 0`, else `alpha·x`.
    LeakyRelu { alpha: f32 },
    /// The exact GELU, `x/2 · (1 + erf(x/√2))`.
    Gelu,
    /// The tanh GELU, `x/2 · (1 + tanh(√(2/π) · (x + 0.044715·x³)))`.
    GeluTanh,
}

impl Activation {
    /// The activation of one value.
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Clip { min, max } => x.max(min).min(max),
            Activation::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
            Activation::Gelu => super::erf::gelu(x),
            Activation::GeluTanh => super::erf::gelu_tanh(x),
        }
    }

    /// The activation of 16 lanes.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(crate) unsafe fn apply16(self, x: __m512) -> __m512 {
        match self {
            Activation::None => x,
            Activation::Relu => _mm512_max_ps(x, _mm512_setzero_ps()),
            Activation::Clip { min, max } => {
                _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(min)), _mm512_set1_ps(max))
            }
            Activation::LeakyRelu { alpha } => {
                let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_setzero_ps());
                _mm512_mask_mul_ps(x, neg, x, _mm512_set1_ps(alpha))
            }
            Activation::Gelu => super::erf::gelu16(x),
            Activation::GeluTanh => super::erf::gelu_tanh16(x),
        }
    }
}

/// Applied to each output element in this order: + bias, + residual, activation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Conv: one per output channel; matmul: one per output column (len n).
    pub bias: Option<&'a [f32]>,
    /// Same shape and layout as the output (never aliases it).
    pub residual: Option<&'a [f32]>,
    pub activation: Activation,
}

/// Which way a bias vector runs over a GEMM tile.
#[derive(Clone, Copy)]
pub(crate) enum Bias {
    None,
    /// `bias[i]` for row `i` (a convolution's output channel).
    Row(*const f32),
    /// `bias[j]` for column `j` (a matmul's output feature).
    Col(*const f32),
}

/// An epilogue as raw pointers for one GEMM: `residual` (or null) has the
/// output's row stride; `bias` is indexed by the GEMM's own row or column.
#[derive(Clone, Copy)]
pub(crate) struct Epi {
    pub bias: Bias,
    pub residual: *const f32,
    pub act: Activation,
}

// SAFETY: the pointers are only read, from buffers borrowed for the whole call.
unsafe impl Send for Epi {}
unsafe impl Sync for Epi {}

impl Epi {
    /// The same epilogue for a sub-GEMM whose rows start at `row`, whose columns
    /// start at `col` and whose output starts `out_offset` elements further.
    pub(crate) fn offset(self, row: usize, col: usize, out_offset: usize) -> Epi {
        let bias = match self.bias {
            Bias::None => Bias::None,
            Bias::Row(p) => Bias::Row(p.wrapping_add(row)),
            Bias::Col(p) => Bias::Col(p.wrapping_add(col)),
        };
        let residual = if self.residual.is_null() {
            self.residual
        } else {
            self.residual.wrapping_add(out_offset)
        };
        Epi {
            bias,
            residual,
            act: self.act,
        }
    }

    /// Output element `(i, j)` at offset `off` (into output and residual) from `acc`.
    ///
    /// # Safety
    /// `i`, `j` and `off` must address elements of the bias and residual buffers.
    #[inline(always)]
    pub(crate) unsafe fn scalar(&self, acc: f32, i: usize, j: usize, off: usize) -> f32 {
        let mut x = acc;
        match self.bias {
            Bias::None => {}
            Bias::Row(p) => x += *p.add(i),
            Bias::Col(p) => x += *p.add(j),
        }
        if !self.residual.is_null() {
            x += *self.residual.add(off);
        }
        self.act.apply(x)
    }

    /// 16 lanes (those in `mask`) of output row `i` from column `j`, at offset `off`.
    ///
    /// # Safety
    /// The masked lanes must address elements of the bias and residual buffers.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(crate) unsafe fn vec16(
        &self,
        acc: __m512,
        mask: u16,
        i: usize,
        j: usize,
        off: usize,
    ) -> __m512 {
        let mut x = acc;
        match self.bias {
            Bias::None => {}
            Bias::Row(p) => x = _mm512_add_ps(x, _mm512_set1_ps(*p.add(i))),
            Bias::Col(p) => x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, p.add(j))),
        }
        if !self.residual.is_null() {
            x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, self.residual.add(off)));
        }
        self.act.apply16(x)
    }
}

/// The lane mask of the first `n` (≤ 16) lanes.
#[inline(always)]
pub(crate) fn lanes(n: usize) -> u16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as u16
    }
}
