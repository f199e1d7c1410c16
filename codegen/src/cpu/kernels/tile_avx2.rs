//! AVX2 + FMA micro-kernels for CPUs without AVX-512: a tile of the driver in
//! [`super::tile`] runs as 6×16 sub-tiles (12 accumulators in ymm registers),
//! with `vmaskmov` loads and stores for column tails and the epilogue fused
//! before the store, as in the AVX-512 kernel.

use super::epilogue::{Activation, Bias, Epi};
use super::tile::Gemm;
use std::arch::x86_64::*;

/// A `rows × cols` tile at `(i0, j0)`, in 6×16 sub-tiles.
///
/// # Safety
/// AVX2 and FMA must be available; the tile must lie inside the GEMM.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn tile(g: &Gemm, k: usize, i0: usize, j0: usize, rows: usize, cols: usize) {
    for i in (i0..i0 + rows).step_by(6) {
        for j in (j0..j0 + cols).step_by(16) {
            let c = (j0 + cols - j).min(16);
            match (i0 + rows - i).min(6) {
                1 => sub::<1>(g, k, i, j, c),
                2 => sub::<2>(g, k, i, j, c),
                3 => sub::<3>(g, k, i, j, c),
                4 => sub::<4>(g, k, i, j, c),
                5 => sub::<5>(g, k, i, j, c),
                _ => sub::<6>(g, k, i, j, c),
            }
        }
    }
}

/// Lane mask (all-ones lanes) of the first `n` of 8 lanes.
#[inline(always)]
unsafe fn mask8(n: usize) -> __m256i {
    let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n.min(8) as i32), idx)
}

#[target_feature(enable = "avx2,fma")]
unsafe fn sub<const MR: usize>(g: &Gemm, k: usize, i0: usize, j0: usize, cols: usize) {
    let mask = [mask8(cols), mask8(cols.saturating_sub(8))];
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    let a = g.a.add(i0 * g.lda);
    let mut b = g.b.wrapping_add(j0);
    for p in 0..k {
        let b0 = _mm256_maskload_ps(b, mask[0]);
        let b1 = _mm256_maskload_ps(b.wrapping_add(8), mask[1]);
        for (i, row) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*a.add(i * g.lda + p));
            row[0] = _mm256_fmadd_ps(av, b0, row[0]);
            row[1] = _mm256_fmadd_ps(av, b1, row[1]);
        }
        b = b.wrapping_add(g.ldb);
    }
    for (i, row) in acc.iter().enumerate() {
        for (v, &m) in mask.iter().enumerate() {
            if v * 8 >= cols {
                continue;
            }
            let (r, j) = (i0 + i, j0 + v * 8);
            let off = r * g.ldc + j;
            let x = epilogue8(&g.epi, row[v], m, r, j, off);
            _mm256_maskstore_ps(g.c.add(off), m, x);
        }
    }
}

/// The epilogue of 8 lanes (those in `m`) of output row `i` from column `j`.
#[inline(always)]
unsafe fn epilogue8(e: &Epi, acc: __m256, m: __m256i, i: usize, j: usize, off: usize) -> __m256 {
    let mut x = acc;
    match e.bias {
        Bias::None => {}
        Bias::Row(p) => x = _mm256_add_ps(x, _mm256_set1_ps(*p.add(i))),
        Bias::Col(p) => x = _mm256_add_ps(x, _mm256_maskload_ps(p.add(j), m)),
    }
    if !e.residual.is_null() {
        x = _mm256_add_ps(x, _mm256_maskload_ps(e.residual.add(off), m));
    }
    match e.act {
        Activation::None => x,
        Activation::Relu => _mm256_max_ps(x, _mm256_setzero_ps()),
        Activation::Clip { min, max } => {
            _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(min)), _mm256_set1_ps(max))
        }
        Activation::LeakyRelu { alpha } => {
            let neg = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_setzero_ps());
            _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(alpha)), neg)
        }
        Activation::Gelu | Activation::GeluTanh => {
            let mut v = [0f32; 8];
            _mm256_storeu_ps(v.as_mut_ptr(), x);
            v.iter_mut().for_each(|l| *l = e.act.apply(*l));
            _mm256_loadu_ps(v.as_ptr())
        }
    }
}
