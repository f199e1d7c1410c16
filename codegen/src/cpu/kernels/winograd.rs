//! Winograd F(4×4, 3×3) for 3×3, stride-1, undilated, ungrouped convolutions.
//!
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` per 6×6 input tile `d` (4×4 outputs,
//! interpolation points 0, ±1, ±2, ∞; Lavin & Gray 2016):
//! - weights: `U[e][c][k]` (e = 6·i + j of the 6×6 transform) computed in f64
//!   once at build time, stored as 36 row-major `C × K` GEMM operands;
//! - input: tiles in blocks of [`Winograd::block_tiles`]; per tile and per 16
//!   input channels, the 6×6 patch (zero outside the image: any padding) is
//!   gathered from NCHW, transformed and stored as `V[e][tile][c]`;
//! - 36 GEMMs `M[e] = V[e] · U[e]` (`tiles × C` by `C × K`) on [`tile`]'s
//!   micro-kernels, vectorized over output channels (small planes have few
//!   tiles but many channels);
//! - output: per tile and 16 output channels `Aᵀ m A`, then bias, residual and
//!   activation, scattered to NCHW (pixels past the plane's edge dropped).
//!
//! Threads split the tiles of a block in the two transforms and the GEMM
//! strips in between. The portable path runs the same transforms one channel
//! at a time.
//!
//! Numerical error (measured by `tests/winograd.rs`, f32 vs an f64 direct
//! convolution, weights ~ N(0, 1/fan_in), inputs U(-1, 1) or post-ReLU,
//! C = 8..256): the max abs error is below about 3e-6·√(C·9) times the
//! largest |output|... in practice ≤ 2e-5 relative to max |y| (direct
//! im2col: ≤ 2e-6); the tests assert `|y − ref| ≤ 1e-4·(max|ref| + 1)`.

use super::epilogue::{Bias, Epi};
use super::par::{split, tasks_for, SendPtr};
use super::tile::{self, Dims, Gemm, Offsets};
use super::Conv2dDesc;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Why `d` cannot run on Winograd F(4×4, 3×3), or `None` if it can.
pub(crate) fn refusal(d: &Conv2dDesc) -> Option<&'static str> {
    if (d.kh, d.kw) != (3, 3) {
        Some("the kernel is not 3x3")
    } else if (d.stride_h, d.stride_w) != (1, 1) {
        Some("the stride is not 1")
    } else if (d.dilation_h, d.dilation_w) != (1, 1) {
        Some("the dilation is not 1")
    } else if d.groups != 1 {
        Some("the convolution is grouped")
    } else if 16 * d.h * d.w.max(1) > i32::MAX as usize
        || 16 * d.out_h() * d.out_w() > i32::MAX as usize
    {
        Some("the planes are too large for 32-bit gather offsets")
    } else {
        None
    }
}

/// `G` of F(4×4, 3×3): the 3-tap filter to its 6 transform points.
const G: [[f64; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// Transform elements of one tile.
const E: usize = 36;

/// GEMM-equivalent flops per transformed element (a gathered or scattered
/// lane costs about what 8 GEMM flops do), for [`tasks_for`].
const TRANSFORM_WEIGHT: usize = 8;

/// A prepared Winograd convolution: the transformed weights and the block size.
#[derive(Debug, Clone)]
pub(crate) struct Winograd {
    /// `U[e][c][k]`, 36 row-major `c_in × c_out` matrices.
    u: Vec<f32>,
    /// Tiles per block (the block's `V` and `M` stay in L2).
    block_tiles: usize,
}

impl Winograd {
    /// Transforms the OIHW 3×3 `weight` of `d` (checked by the caller);
    /// blocks of tiles whose transformed input and output take about `block_bytes`.
    pub(crate) fn new(d: &Conv2dDesc, weight: &[f32], block_bytes: usize) -> Winograd {
        let (c, k) = (d.c_in, d.c_out);
        let mut u = vec![0f32; E * c * k];
        for ko in 0..k {
            for ci in 0..c {
                let g = &weight[(ko * c + ci) * 9..][..9];
                // t = G g (6×3), then U = t Gᵀ (6×6).
                let mut t = [[0f64; 3]; 6];
                for (i, row) in t.iter_mut().enumerate() {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = (0..3).map(|p| G[i][p] * g[p * 3 + j] as f64).sum();
                    }
                }
                for i in 0..6 {
                    for j in 0..6 {
                        let v: f64 = (0..3).map(|p| t[i][p] * G[j][p]).sum();
                        u[((i * 6 + j) * c + ci) * k + ko] = v as f32;
                    }
                }
            }
        }
        let tiles = d.batch * d.out_h().div_ceil(4) * d.out_w().div_ceil(4);
        let per_tile = E * 4 * (c + k);
        let max = (block_bytes / per_tile).max(1);
        let blocks = tiles.div_ceil(max).max(1);
        Winograd {
            u,
            block_tiles: tiles.div_ceil(blocks).max(1),
        }
    }

    /// f32 scratch elements of one block's `V` and `M`.
    pub(crate) fn scratch_len(&self, d: &Conv2dDesc) -> usize {
        E * self.block_tiles * (d.c_in + d.c_out)
    }

    /// `output = conv(input)` with the epilogue `epi` (row bias = output channel).
    ///
    /// # Safety
    /// `input`, `output`, `scratch` and the residual and bias of `epi` hold
    /// what the validated descriptor `d` needs ([`Self::scratch_len`] for scratch).
    pub(crate) unsafe fn run(
        &self,
        d: &Conv2dDesc,
        input: &[f32],
        output: &mut [f32],
        scratch: &mut [f32],
        epi: Epi,
        threads: usize,
    ) {
        let g = Geom::of(d);
        let (c, k, tb) = (d.c_in, d.c_out, self.block_tiles);
        let (v, m) = scratch.split_at_mut(E * tb * c);
        let (v, m) = (SendPtr(v.as_mut_ptr()), SendPtr(m.as_mut_ptr()));
        let (x, y) = (
            SendPtr(input.as_ptr() as *mut f32),
            SendPtr(output.as_mut_ptr()),
        );
        let flops = 2 * E * g.tiles * c * k;
        let tasks = tasks_for(threads, flops);
        for t0 in (0..g.tiles).step_by(tb) {
            let nb = tb.min(g.tiles - t0);
            // The transforms of small blocks stay on one thread (a split
            // costs a wake-up and a barrier, more than 16 tiles' transforms).
            let moved = TRANSFORM_WEIGHT * E * nb * (c + k);
            let tasks_t = tasks_for(threads, moved).min(nb);
            split(nb, tasks_t, |r| {
                for t in r {
                    // SAFETY: tile t0 + t's row of V belongs to this task.
                    unsafe { input_tile(d, &g, x.get(), t0 + t, v.get().add(t * c), tb * c) };
                }
            });
            let gemm = Gemm {
                a: v.get(),
                lda: c,
                panel: 0,
                b: self.u.as_ptr(),
                ldb: k,
                b_rows: std::ptr::null(),
                c: m.get(),
                ldc: k,
                epi: Epi {
                    bias: Bias::None,
                    residual: std::ptr::null(),
                    act: super::Activation::None,
                },
            };
            let offs = |e: usize| Offsets {
                a: e * tb * c,
                b: e * c * k,
                c: e * tb * k,
                ..Offsets::default()
            };
            tile::run(E, Dims { m: nb, n: k, k: c }, gemm, offs, tasks);
            split(nb, tasks_t, |r| {
                for t in r {
                    // SAFETY: tile t0 + t's outputs belong to this task.
                    unsafe {
                        output_tile(d, &g, m.get().add(t * k), tb * k, t0 + t, y.get(), &epi)
                    };
                }
            });
        }
    }
}

/// Tile grid of a descriptor.
struct Geom {
    /// Tiles per row and per image.
    tw: usize,
    per_image: usize,
    tiles: usize,
}

impl Geom {
    fn of(d: &Conv2dDesc) -> Geom {
        let (th, tw) = (d.out_h().div_ceil(4), d.out_w().div_ceil(4));
        Geom {
            tw,
            per_image: th * tw,
            tiles: d.batch * th * tw,
        }
    }

    /// Image, first output row and first output column of tile `t`.
    fn at(&self, t: usize) -> (usize, usize, usize) {
        let (b, r) = (t / self.per_image, t % self.per_image);
        (b, r / self.tw * 4, r % self.tw * 4)
    }
}

/// Arithmetic the transforms need, on one value or 16 lanes.
trait Lane: Copy {
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    /// `self · s + o`.
    fn fma(self, s: f32, o: Self) -> Self;
}

impl Lane for f32 {
    #[inline(always)]
    fn add(self, o: f32) -> f32 {
        self + o
    }
    #[inline(always)]
    fn sub(self, o: f32) -> f32 {
        self - o
    }
    #[inline(always)]
    fn fma(self, s: f32, o: f32) -> f32 {
        self * s + o
    }
}

#[cfg(target_arch = "x86_64")]
impl Lane for __m512 {
    #[inline(always)]
    fn add(self, o: __m512) -> __m512 {
        // SAFETY: only called from AVX-512 functions.
        unsafe { _mm512_add_ps(self, o) }
    }
    #[inline(always)]
    fn sub(self, o: __m512) -> __m512 {
        // SAFETY: as above.
        unsafe { _mm512_sub_ps(self, o) }
    }
    #[inline(always)]
    fn fma(self, s: f32, o: __m512) -> __m512 {
        // SAFETY: as above.
        unsafe { _mm512_fmadd_ps(self, _mm512_set1_ps(s), o) }
    }
}

/// `Bᵀ d` for one column `d` of 6.
#[inline(always)]
fn bt<L: Lane>(d: [L; 6]) -> [L; 6] {
    let t0 = d[2].fma(-4.0, d[4]);
    let t1 = d[1].fma(-4.0, d[3]);
    let t2 = d[4].sub(d[2]);
    let t3 = d[3].sub(d[1]);
    let t3 = t3.add(t3);
    [
        d[0].fma(4.0, d[2].fma(-5.0, d[4])),
        t0.add(t1),
        t0.sub(t1),
        t2.add(t3),
        t2.sub(t3),
        d[1].fma(4.0, d[3].fma(-5.0, d[5])),
    ]
}

/// `Aᵀ m` for one column `m` of 6.
#[inline(always)]
fn at<L: Lane>(m: [L; 6]) -> [L; 4] {
    let (s1, s2) = (m[1].add(m[2]), m[1].sub(m[2]));
    let (s3, s4) = (m[3].add(m[4]), m[3].sub(m[4]));
    [
        m[0].add(s1).add(s3),
        s4.fma(2.0, s2),
        s3.fma(4.0, s1),
        s4.fma(8.0, s2).add(m[5]),
    ]
}

/// `Bᵀ d B` of a 6×6 patch, `out[6·i + j]`.
#[inline(always)]
fn input_2d<L: Lane>(d: &[[L; 6]; 6], out: &mut [L; E]) {
    let mut t = [[d[0][0]; 6]; 6];
    for j in 0..6 {
        let col = bt([d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j]]);
        for i in 0..6 {
            t[i][j] = col[i];
        }
    }
    for i in 0..6 {
        out[i * 6..][..6].copy_from_slice(&bt(t[i]));
    }
}

/// `Aᵀ m A` of a 6×6 block (`m[6·i + j]`), `out[r][q]`.
#[inline(always)]
fn output_2d<L: Lane>(m: &[L; E]) -> [[L; 4]; 4] {
    let mut s = [[m[0]; 6]; 4];
    for j in 0..6 {
        let col = at([m[j], m[6 + j], m[12 + j], m[18 + j], m[24 + j], m[30 + j]]);
        for r in 0..4 {
            s[r][j] = col[r];
        }
    }
    s.map(at)
}

/// Transforms the input tile `t` of every channel into `v` (its row of
/// `V[0]`; `V[e]` is `estride` further).
///
/// # Safety
/// `x` is the NCHW input of `d`; `v` has room for 36 rows of `c_in`, `estride` apart.
unsafe fn input_tile(d: &Conv2dDesc, g: &Geom, x: *const f32, t: usize, v: *mut f32, es: usize) {
    #[cfg(target_arch = "x86_64")]
    if super::use_avx512() {
        return input_tile512(d, g, x, t, v, es);
    }
    let (b, oy, ox) = g.at(t);
    let plane = d.h * d.w;
    let mut out = [0f32; E];
    for c in 0..d.c_in {
        let xc = x.add((b * d.c_in + c) * plane);
        let mut p = [[0f32; 6]; 6];
        for (i, row) in p.iter_mut().enumerate() {
            for (j, val) in row.iter_mut().enumerate() {
                if let Some(at) = pixel(d, oy + i, ox + j) {
                    *val = *xc.add(at);
                }
            }
        }
        input_2d(&p, &mut out);
        for (e, &val) in out.iter().enumerate() {
            *v.add(e * es + c) = val;
        }
    }
}

/// Offset in the input plane of padded-grid position `(py, px)`, if inside the image.
#[inline(always)]
fn pixel(d: &Conv2dDesc, py: usize, px: usize) -> Option<usize> {
    let iy = py.checked_sub(d.pad_top).filter(|&y| y < d.h)?;
    let ix = px.checked_sub(d.pad_left).filter(|&x| x < d.w)?;
    Some(iy * d.w + ix)
}

/// [`input_tile`] on AVX-512: 16 channels per gather.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn input_tile512(d: &Conv2dDesc, g: &Geom, x: *const f32, t: usize, v: *mut f32, es: usize) {
    let (b, oy, ox) = g.at(t);
    let plane = d.h * d.w;
    let idx = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32(plane as i32),
    );
    let mut offs = [[None; 6]; 6];
    for (i, row) in offs.iter_mut().enumerate() {
        for (j, o) in row.iter_mut().enumerate() {
            *o = pixel(d, oy + i, ox + j);
        }
    }
    let mut out = [_mm512_setzero_ps(); E];
    for c0 in (0..d.c_in).step_by(16) {
        let mask = super::epilogue::lanes(d.c_in - c0);
        let xc = x.add((b * d.c_in + c0) * plane);
        let mut p = [[_mm512_setzero_ps(); 6]; 6];
        for i in 0..6 {
            for j in 0..6 {
                if let Some(at) = offs[i][j] {
                    p[i][j] = _mm512_mask_i32gather_ps::<4>(
                        _mm512_setzero_ps(),
                        mask,
                        idx,
                        xc.add(at) as *const u8 as _,
                    );
                }
            }
        }
        input_2d(&p, &mut out);
        for (e, &val) in out.iter().enumerate() {
            _mm512_mask_storeu_ps(v.add(e * es + c0), mask, val);
        }
    }
}

/// Output tile `t` of every channel from `m` (its row of `M[0]`; `M[e]` is
/// `es` further), epilogue applied, into the NCHW output `y`.
///
/// # Safety
/// `m` holds 36 rows of `c_out`, `es` apart; `y` and `epi` hold `d`'s output.
unsafe fn output_tile(
    d: &Conv2dDesc,
    g: &Geom,
    m: *const f32,
    es: usize,
    t: usize,
    y: *mut f32,
    epi: &Epi,
) {
    #[cfg(target_arch = "x86_64")]
    if super::use_avx512() {
        return output_tile512(d, g, m, es, t, y, epi);
    }
    let (b, oy, ox) = g.at(t);
    let (oh, ow) = (d.out_h(), d.out_w());
    let mut blk = [0f32; E];
    for k in 0..d.c_out {
        for (e, val) in blk.iter_mut().enumerate() {
            *val = *m.add(e * es + k);
        }
        let o = output_2d(&blk);
        for (r, row) in o.iter().enumerate().take(oh - oy) {
            for (q, &val) in row.iter().enumerate().take(ow - ox) {
                let off = ((b * d.c_out + k) * oh + oy + r) * ow + ox + q;
                *y.add(off) = epi.scalar(val, k, 0, off);
            }
        }
    }
}

/// [`output_tile`] on AVX-512: 16 channels per scatter.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn output_tile512(
    d: &Conv2dDesc,
    g: &Geom,
    m: *const f32,
    es: usize,
    t: usize,
    y: *mut f32,
    epi: &Epi,
) {
    let (b, oy, ox) = g.at(t);
    let (oh, ow) = (d.out_h(), d.out_w());
    let idx = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32((oh * ow) as i32),
    );
    let mut blk = [_mm512_setzero_ps(); E];
    for k0 in (0..d.c_out).step_by(16) {
        let mask = super::epilogue::lanes(d.c_out - k0);
        for (e, val) in blk.iter_mut().enumerate() {
            *val = _mm512_maskz_loadu_ps(mask, m.add(e * es + k0));
        }
        let o = output_2d(&blk);
        let bias = match epi.bias {
            Bias::Row(p) => _mm512_maskz_loadu_ps(mask, p.add(k0)),
            _ => _mm512_setzero_ps(),
        };
        for (r, row) in o.iter().enumerate().take(oh - oy) {
            for (q, &val) in row.iter().enumerate().take(ow - ox) {
                let off = ((b * d.c_out + k0) * oh + oy + r) * ow + ox + q;
                let mut x = _mm512_add_ps(val, bias);
                if !epi.residual.is_null() {
                    let res = epi.residual.add(off) as *const u8;
                    let rv =
                        _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, idx, res as _);
                    x = _mm512_add_ps(x, rv);
                }
                let x = epi.act.apply16(x);
                _mm512_mask_i32scatter_ps::<4>(y.add(off) as *mut u8 as _, mask, idx, x);
            }
        }
    }
}
