//! Fused f32 compute kernels for the compiled CPU path.
//!
//! - [`matmul_f32`] / [`PackedMatmul`]: batched row-major matmul with a fused
//!   [`Epilogue`] (bias, residual, activation); GEMV kernels for `m == 1`.
//! - [`Conv2d`]: NCHW convolution with prepacked weights; 1x1 convolutions are a
//!   GEMM on NCHW directly, depthwise convolutions a direct kernel, everything
//!   else im2col + GEMM per group; [`DepthwisePointwise`] fuses a depthwise
//!   convolution with the 1×1 convolution reading it, band by band.
//! - [`softmax_rows_f32`], [`layer_norm_rows_f32`]: row kernels over the last axis;
//!   [`mean_rows_f32`]: row means (global average pooling);
//!   [`softmax_axis_f32`]: softmax and log-softmax along any axis;
//!   [`group_norm_f32`]: group and instance normalization;
//!   [`arg_reduce_f32`]: ArgMax/ArgMin along any axis; [`cumsum`]: CumSum.
//! - [`int_binary`], [`int_compare`]: broadcasting i32/i64 arithmetic and comparisons.
//! - [`Recurrent`]: RNN/GRU/LSTM layers (one input-projection GEMM, then a
//!   small GEMM and a fused cell pass per time step).
//! - [`Pool`]: max, average and Lp window pooling of any spatial rank.
//! - [`Resize`]: separable nearest / linear / cubic resize from precomputed taps.
//!
//! Every kernel has an AVX-512 path (picked at run time) and a portable path;
//! the GEMM tiles (matmul, 1×1 and im2col convolutions) also have AVX2+FMA.
//! Threads: `threads == 1` runs on the caller's thread; more splits the work into
//! about that many rayon tasks on the current pool, but only when the work is
//! large enough to pay for waking threads (see [`PAR_MIN_FLOPS`]).

mod arg_reduce;
mod conv;
mod conv3d;
mod conv_transpose;
mod cumsum;
mod depthwise;
#[cfg(target_arch = "x86_64")]
mod depthwise3x3;
#[cfg(target_arch = "x86_64")]
mod depthwise_flat;
#[cfg(target_arch = "x86_64")]
mod depthwise_s2;
#[cfg(target_arch = "x86_64")]
mod depthwise_staged;
mod direct;
mod dw_pw;
mod epilogue;
mod erf;
mod exp;
mod gemv;
mod group_norm;
mod im2col;
mod int_binary;
mod matmul;
mod mean;
mod packed;
mod par;
mod pointwise_t;
mod pool;
#[cfg(target_arch = "x86_64")]
mod pool_avx512;
#[cfg(target_arch = "x86_64")]
mod pool_direct;
mod recurrent;
mod recurrent_cell;
mod resize;
#[cfg(target_arch = "x86_64")]
mod resize_avx512;
mod rows;
mod softmax_axis;
#[cfg(target_arch = "x86_64")]
mod split_rows;
mod tile;
#[cfg(target_arch = "x86_64")]
mod tile_avx2;
mod winograd;

pub use arg_reduce::{arg_reduce_f32, ArgSpec};
pub use conv::{Conv2d, Conv2dDesc, ConvKnobs, ConvVariant};
pub use conv3d::{Conv3d, Conv3dDesc};
pub use conv_transpose::{ConvTranspose, ConvTransposeDesc, ConvTransposeKnobs};
pub use cumsum::{cumsum, CumElem, CumSpec};
pub use depthwise::DwKernel;
pub use dw_pw::{DepthwisePointwise, DwPwKnobs};
pub use epilogue::{Activation, Epilogue};
pub use group_norm::{group_norm_f32, GroupNormDesc};
pub use int_binary::{int_binary, int_compare, Broadcast, IntElem, IntOp};
pub use matmul::{matmul_f32, MatmulDesc};
pub use mean::mean_rows_f32;
pub use packed::PackedMatmul;
pub use par::PAR_MIN_FLOPS;
pub use pool::{Pool, PoolDesc, PoolKind, PoolTuning};
pub use recurrent::{
    Recurrent, RecurrentAct, RecurrentCell, RecurrentDesc, RecurrentIo, RecurrentKnobs,
    RecurrentWeights,
};
pub use resize::{Resize, ResizeAxis, ResizeDesc, ResizeTuning};
pub use rows::{layer_norm_rows_f32, softmax_rows_f32};
pub use softmax_axis::{softmax_axis_f32, AxisShape, SoftmaxKind};

use std::sync::atomic::{AtomicBool, Ordering};

static FORCE_PORTABLE: AtomicBool = AtomicBool::new(false);
static FORCE_AVX2: AtomicBool = AtomicBool::new(false);

/// Makes every kernel take its portable (non-SIMD) path; for tests of that path.
#[doc(hidden)]
pub fn force_portable(on: bool) {
    FORCE_PORTABLE.store(on, Ordering::Relaxed);
}

/// Makes kernels skip AVX-512 (GEMM tiles then use AVX2+FMA, others the
/// portable path); for tests of the AVX2 kernels on AVX-512 machines.
#[doc(hidden)]
pub fn force_avx2(on: bool) {
    FORCE_AVX2.store(on, Ordering::Relaxed);
}

/// Whether the AVX-512F kernels may run on this CPU.
#[inline]
pub(crate) fn use_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        !FORCE_PORTABLE.load(Ordering::Relaxed)
            && !FORCE_AVX2.load(Ordering::Relaxed)
            && std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the AVX2+FMA kernels may run on this CPU.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn use_avx2() -> bool {
    !FORCE_PORTABLE.load(Ordering::Relaxed)
        && std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
}

/// `Err(InvalidArgument)` for kernel `op`.
pub(crate) fn invalid(op: &'static str, reason: impl Into<String>) -> crate::CodegenError {
    crate::CodegenError::InvalidArgument {
        op,
        reason: reason.into(),
    }
}

/// Fails with `TooShort` when `len < needed`.
pub(crate) fn need(
    operand: &'static str,
    len: usize,
    needed: usize,
) -> Result<(), crate::CodegenError> {
    if len < needed {
        return Err(crate::CodegenError::TooShort {
            operand,
            needed,
            len,
        });
    }
    Ok(())
}
