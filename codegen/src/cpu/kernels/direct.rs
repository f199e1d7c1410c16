//! Direct convolution for few input channels (a network's stem: 3 channels ×
//! 3×3 or 7×7).
//!
//! With `c_in · kh · kw ≤` [`MAX_TAPS`] an im2col GEMM has a tiny inner
//! dimension (27), so its tiles spend as long storing as multiplying, and the
//! column matrix is written and read again; with few channels and a large
//! kernel the column matrix is large and gathered at stride 2. Here each
//! task computes output rows: the input rows under one output row are staged first (zero-padded;
//! for stride 2 split into even and odd columns, see [`Staging`]), then per
//! block of [`CO`] output channels and 32 output columns, per tap, two plain
//! loads of staged pixels are multiply-added with the block's weights
//! broadcast from the prepacked `[tap][CO]` layout. The epilogue is applied
//! to each vector before its masked store into NCHW.

use super::conv::Conv2dDesc;
#[cfg(target_arch = "x86_64")]
use super::epilogue::{lanes, Epi};
#[cfg(target_arch = "x86_64")]
use super::par::{split, tasks_for, SendPtr};
#[cfg(target_arch = "x86_64")]
use super::split_rows::Splitter;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Output channels per block (8 × 2 pixel vectors = 16 accumulators).
pub(crate) const CO: usize = 8;
/// Largest `c_in · kh` (staged input rows per output row) this kernel takes.
pub(crate) const MAX_ROWS: usize = 32;
/// Largest `c_in · kh · kw` the default choice gives this kernel.
pub(crate) const MAX_TAPS: usize = 32;

/// Whether the direct kernel can run `d`: ungrouped, at most [`MAX_ROWS`]
/// staged rows, stride 1 or 2 along rows, no dilation, and output rows of
/// at least one vector.
pub(crate) fn possible(d: &Conv2dDesc) -> bool {
    d.groups == 1
        && d.c_in * d.kh <= MAX_ROWS
        && matches!(d.stride_w, 1 | 2)
        && d.dilation_h == 1
        && d.dilation_w == 1
        && d.out_w() >= 16
}

/// Whether the default choice runs `d` on the direct kernel: [`possible`]
/// with few taps (at most [`MAX_TAPS`]), or a stem on at most 4 input
/// channels whatever its kernel (GoogLeNet's and DenseNet's 3→64 7×7
/// stride-2 stem on a Zen 5: 1570 vs 1754 µs for im2col at 1 thread, 961 vs
/// 1077 at 2).
pub(crate) fn wanted(d: &Conv2dDesc) -> bool {
    possible(d) && (d.c_in * d.kh * d.kw <= MAX_TAPS || d.c_in <= 4)
}

/// OIHW weights as `[c_out / CO blocks][tap][CO]`, zero past `c_out`.
pub(crate) fn pack(d: &Conv2dDesc, weight: &[f32]) -> Vec<f32> {
    let taps = d.c_in * d.kh * d.kw;
    let mut out = vec![0f32; d.c_out.div_ceil(CO) * taps * CO];
    for (co, w) in weight.chunks_exact(taps).take(d.c_out).enumerate() {
        for (t, &v) in w.iter().enumerate() {
            out[(co / CO * taps + t) * CO + co % CO] = v;
        }
    }
    out
}

/// The convolution of `d` (see [`wanted`]) with weights from [`pack`].
///
/// # Safety
/// `x` and `out` (and the epilogue's buffers) must hold the tensors `d`
/// describes; AVX-512F must be available.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn run(
    d: &Conv2dDesc,
    packed: &[f32],
    x: &[f32],
    out: &mut [f32],
    epi: Epi,
    threads: usize,
) {
    let (oh, ow) = (d.out_h(), d.out_w());
    let items = d.batch * oh;
    let flops = 2 * d.batch * d.c_out * oh * ow * d.c_in * d.kh * d.kw;
    let y = SendPtr(out.as_mut_ptr());
    split(items, tasks_for(threads, flops), |range| {
        for item in range {
            let (b, oy) = (item / oh, item % oh);
            let xb = x.as_ptr().add(b * d.c_in * d.h * d.w);
            let base = b * d.c_out * oh * ow;
            let e = epi.offset(0, 0, base);
            // SAFETY: this item alone writes row oy of batch b.
            unsafe { rows(d, packed, xb, y.get().add(base), oh * ow, &e, oy..oy + 1) };
        }
    });
}

/// Output rows `rows` of every channel of one image `x` (its input planes)
/// into `y`, where output (channel c, row r, column j) is at
/// `c·plane + r·out_w + j` (a band buffer when `plane` is less than a plane).
/// No residual: the epilogue's bias and activation only.
///
/// # Safety
/// `x` must hold the image; `y` every element addressed; AVX-512F available.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn rows(
    d: &Conv2dDesc,
    packed: &[f32],
    x: *const f32,
    y: *mut f32,
    plane: usize,
    e: &Epi,
    rows: std::ops::Range<usize>,
) {
    let st = Staging::new(d);
    STAGED.with(|buf| {
        let mut buf = buf.borrow_mut();
        if buf.len() < st.len() {
            buf.resize(st.len(), 0.0);
        }
        // The last staged row is the zero row (never staged into).
        buf[st.len() - st.row_len..st.len()].fill(0.0);
        for oy in rows {
            // SAFETY: the buffer holds st.len() values; the rest is this function's contract.
            unsafe { row(d, packed, x, y, plane, e, &st, buf.as_mut_ptr(), oy) };
        }
    });
}

thread_local! {
    /// The staged input rows of one output row (see [`Staging`]).
    static STAGED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How one output row's input rows are staged, so that every tap is a plain
/// load (no masks, no permutes): per input channel and kernel row, the
/// padded input row (`P[j] = x[j − pad_left]`, zero outside the image) —
/// for stride 1 as is, for stride 2 split into its even and its odd columns
/// (tap `kx` of output column `ox` is then `P[2·ox + kx]` = even or odd entry
/// `ox + kx/2`). Rows in the padding point at a zero row. (Masked loads and
/// per-tap permutes ran the 224×224 stem at about 40% of FMA peak.)
#[cfg(target_arch = "x86_64")]
struct Staging {
    /// Values per staged row (both halves for stride 2).
    row_len: usize,
    /// Stride 2: the odd half's offset in a staged row.
    half: usize,
    /// Staged rows: c_in · kh, then the zero row.
    count: usize,
}

#[cfg(target_arch = "x86_64")]
impl Staging {
    fn new(d: &Conv2dDesc) -> Staging {
        // Loads reach column ox + kx/2 + 31 (stride 2) or ox + kx + 31 of the
        // last block, ox ≤ ow − 16 or 0.
        let reach = (d.out_w() + d.kw + 32).div_ceil(16) * 16;
        let (row_len, half) = match d.stride_w {
            1 => (reach, 0),
            _ => (2 * reach, reach),
        };
        Staging {
            row_len,
            half,
            count: d.c_in * d.kh + 1,
        }
    }

    fn len(&self) -> usize {
        self.row_len * self.count
    }
}

/// Output row `oy` of every channel block: stages the input rows, then 32
/// output columns at a time (the last block shifted left to end at the row's
/// end when the row has at least 32 columns; stores are masked to the row).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn row(
    d: &Conv2dDesc,
    packed: &[f32],
    x: *const f32,
    y: *mut f32,
    plane: usize,
    e: &Epi,
    st: &Staging,
    buf: *mut f32,
    oy: usize,
) {
    let zero = buf.add((st.count - 1) * st.row_len);
    let mut src = [zero.cast_const(); MAX_ROWS];
    for ci in 0..d.c_in {
        for ky in 0..d.kh {
            let iy = (oy * d.stride_h + ky).wrapping_sub(d.pad_top);
            if iy < d.h {
                let r = ci * d.kh + ky;
                let dst = buf.add(r * st.row_len);
                stage(d, st, x.add((ci * d.h + iy) * d.w), dst);
                src[r] = dst;
            }
        }
    }
    let ow = d.out_w();
    let taps = d.c_in * d.kh * d.kw;
    for blk in 0..d.c_out.div_ceil(CO) {
        let w = packed.as_ptr().add(blk * taps * CO);
        let mut ox = 0;
        while ox < ow {
            let at = if ox + 32 > ow {
                ow.saturating_sub(32)
            } else {
                ox
            };
            let acc = block(d, st, &src, w, at);
            store(d, y, plane, e, &acc, blk, at, oy);
            ox = at + 32;
        }
    }
}

/// Stages one input row at `x` into `dst` (see [`Staging`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn stage(d: &Conv2dDesc, st: &Staging, x: *const f32, dst: *mut f32) {
    if d.stride_w != 1 {
        return Splitter::new(d.w, d.pad_left, st.half).row(x, dst);
    }
    let (w, pad) = (d.w as isize, d.pad_left as isize);
    for j in (0..st.row_len).step_by(16) {
        let c = j as isize - pad;
        let m = super::depthwise::range_mask(-c, w - c);
        _mm512_storeu_ps(
            dst.add(j),
            _mm512_maskz_loadu_ps(m as u16, x.wrapping_offset(c)),
        );
    }
}

/// The accumulators of output columns `ox..ox + 32` for one channel block
/// (weights `w`, `[tap][CO]`) from the staged rows `src`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn block(
    d: &Conv2dDesc,
    st: &Staging,
    src: &[*const f32; MAX_ROWS],
    w: *const f32,
    ox: usize,
) -> [[__m512; 2]; CO] {
    let mut acc = [[_mm512_setzero_ps(); 2]; CO];
    let mut wt = w;
    for &row in src.iter().take(d.c_in * d.kh) {
        for kx in 0..d.kw {
            let p = match d.stride_w {
                1 => row.add(ox + kx),
                _ => row.add((kx % 2) * st.half + ox + kx / 2),
            };
            let v = [_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16))];
            for (c, a) in acc.iter_mut().enumerate() {
                let wv = _mm512_set1_ps(*wt.add(c));
                a[0] = _mm512_fmadd_ps(wv, v[0], a[0]);
                a[1] = _mm512_fmadd_ps(wv, v[1], a[1]);
            }
            wt = wt.add(CO);
        }
    }
    acc
}

/// Stores the block's channels (those below `c_out`) with the epilogue.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn store(
    d: &Conv2dDesc,
    y: *mut f32,
    plane: usize,
    e: &Epi,
    acc: &[[__m512; 2]; CO],
    blk: usize,
    ox: usize,
    oy: usize,
) {
    let ow = d.out_w();
    let channels = CO.min(d.c_out - blk * CO);
    for (c, a) in acc.iter().enumerate().take(channels) {
        let co = blk * CO + c;
        for (h, &v) in a.iter().enumerate() {
            let j = ox + 16 * h;
            if j >= ow {
                break;
            }
            let mask = lanes(ow - j);
            let off = co * plane + oy * ow + j;
            let r = e.vec16(v, mask, co, j, off);
            _mm512_mask_storeu_ps(y.add(off), mask, r);
        }
    }
}
