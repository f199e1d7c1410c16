//! The per-step cell math of [`super::Recurrent`]: gate activations and the
//! state update of RNN, GRU and LSTM over the hidden units of one batch entry,
//! in one pass.
//!
//! The math is written once over [`Lanes`], a vector of f32 lanes, and
//! instantiated twice: `f32` (one lane, the portable path) and `__m512` (16
//! lanes, AVX-512F; `exp` from [`super::exp::exp16`], so `tanh` and `sigmoid`
//! are exp-based with about 1e-7 absolute error). The AVX-512 entry points are
//! `#[target_feature]` functions into which every `#[inline(always)]` helper
//! here is inlined.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// A gate activation of a recurrent layer (ONNX names, with their alpha/beta).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RecurrentAct {
    Relu,
    Tanh,
    Sigmoid,
    /// `alpha·x + beta`.
    Affine {
        alpha: f32,
        beta: f32,
    },
    /// `x` if `x >= 0`, else `alpha·x`.
    LeakyRelu {
        alpha: f32,
    },
    /// `x` if `x > alpha`, else 0.
    ThresholdedRelu {
        alpha: f32,
    },
    /// `alpha·tanh(beta·x)`.
    ScaledTanh {
        alpha: f32,
        beta: f32,
    },
    /// `clamp(alpha·x + beta, 0, 1)`.
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x` if `x >= 0`, else `alpha·(e^x − 1)`.
    Elu {
        alpha: f32,
    },
    /// `x / (1 + |x|)`.
    Softsign,
    /// `ln(1 + e^x)`.
    Softplus,
}

/// A vector of f32 lanes the cell math runs on.
pub(crate) trait Lanes: Copy {
    const N: usize;
    /// Loads `n <= N` values (the rest are 0).
    unsafe fn load(p: *const f32, n: usize) -> Self;
    /// Stores the first `n <= N` lanes.
    unsafe fn store(self, p: *mut f32, n: usize);
    fn splat(x: f32) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn max(self, o: Self) -> Self;
    fn min(self, o: Self) -> Self;
    fn abs(self) -> Self;
    fn exp(self) -> Self;
    /// `t` in lanes where `self > o`, else `f`.
    fn gt_select(self, o: Self, t: Self, f: Self) -> Self;
    /// Each lane through a scalar function (for the rare activations).
    fn map(self, f: impl Fn(f32) -> f32) -> Self;
}

impl Lanes for f32 {
    const N: usize = 1;
    #[inline(always)]
    unsafe fn load(p: *const f32, _: usize) -> f32 {
        *p
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, _: usize) {
        *p = self
    }
    #[inline(always)]
    fn splat(x: f32) -> f32 {
        x
    }
    #[inline(always)]
    fn add(self, o: f32) -> f32 {
        self + o
    }
    #[inline(always)]
    fn sub(self, o: f32) -> f32 {
        self - o
    }
    #[inline(always)]
    fn mul(self, o: f32) -> f32 {
        self * o
    }
    #[inline(always)]
    fn div(self, o: f32) -> f32 {
        self / o
    }
    #[inline(always)]
    fn max(self, o: f32) -> f32 {
        f32::max(self, o)
    }
    #[inline(always)]
    fn min(self, o: f32) -> f32 {
        f32::min(self, o)
    }
    #[inline(always)]
    fn abs(self) -> f32 {
        f32::abs(self)
    }
    #[inline(always)]
    fn exp(self) -> f32 {
        f32::exp(self)
    }
    #[inline(always)]
    fn gt_select(self, o: f32, t: f32, f: f32) -> f32 {
        if self > o {
            t
        } else {
            f
        }
    }
    #[inline(always)]
    fn map(self, f: impl Fn(f32) -> f32) -> f32 {
        f(self)
    }
}

#[cfg(target_arch = "x86_64")]
impl Lanes for __m512 {
    const N: usize = 16;
    #[inline(always)]
    unsafe fn load(p: *const f32, n: usize) -> __m512 {
        _mm512_maskz_loadu_ps(super::epilogue::lanes(n), p)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, n: usize) {
        _mm512_mask_storeu_ps(p, super::epilogue::lanes(n), self)
    }
    #[inline(always)]
    fn splat(x: f32) -> __m512 {
        // SAFETY: only reached from AVX-512F code (see the module doc).
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn add(self, o: __m512) -> __m512 {
        unsafe { _mm512_add_ps(self, o) }
    }
    #[inline(always)]
    fn sub(self, o: __m512) -> __m512 {
        unsafe { _mm512_sub_ps(self, o) }
    }
    #[inline(always)]
    fn mul(self, o: __m512) -> __m512 {
        unsafe { _mm512_mul_ps(self, o) }
    }
    #[inline(always)]
    fn div(self, o: __m512) -> __m512 {
        unsafe { _mm512_div_ps(self, o) }
    }
    #[inline(always)]
    fn max(self, o: __m512) -> __m512 {
        unsafe { _mm512_max_ps(self, o) }
    }
    #[inline(always)]
    fn min(self, o: __m512) -> __m512 {
        unsafe { _mm512_min_ps(self, o) }
    }
    #[inline(always)]
    fn abs(self) -> __m512 {
        unsafe { _mm512_abs_ps(self) }
    }
    #[inline(always)]
    fn exp(self) -> __m512 {
        unsafe { super::exp::exp16(self) }
    }
    #[inline(always)]
    fn gt_select(self, o: __m512, t: __m512, f: __m512) -> __m512 {
        unsafe { _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(self, o), f, t) }
    }
    #[inline(always)]
    fn map(self, f: impl Fn(f32) -> f32) -> __m512 {
        let mut a = [0f32; 16];
        unsafe {
            _mm512_storeu_ps(a.as_mut_ptr(), self);
            a.iter_mut().for_each(|x| *x = f(*x));
            _mm512_loadu_ps(a.as_ptr())
        }
    }
}

#[inline(always)]
fn sigmoid<V: Lanes>(x: V) -> V {
    let one = V::splat(1.0);
    one.div(one.add(V::splat(0.0).sub(x).exp()))
}

#[inline(always)]
fn tanh<V: Lanes>(x: V) -> V {
    if V::N == 1 {
        return x.map(f32::tanh);
    }
    // 1 − 2/(e^{2x} + 1): ±1 at the saturated ends (e^{2x} is 0 or +inf).
    let one = V::splat(1.0);
    one.sub(V::splat(2.0).div(x.add(x).exp().add(one)))
}

impl RecurrentAct {
    #[inline(always)]
    fn apply<V: Lanes>(self, x: V) -> V {
        let zero = V::splat(0.0);
        match self {
            RecurrentAct::Relu => x.max(zero),
            RecurrentAct::Tanh => tanh(x),
            RecurrentAct::Sigmoid => sigmoid(x),
            RecurrentAct::Affine { alpha, beta } => x.mul(V::splat(alpha)).add(V::splat(beta)),
            RecurrentAct::LeakyRelu { alpha } => x.max(zero).add(x.min(zero).mul(V::splat(alpha))),
            RecurrentAct::ThresholdedRelu { alpha } => x.gt_select(V::splat(alpha), x, zero),
            RecurrentAct::ScaledTanh { alpha, beta } => {
                tanh(x.mul(V::splat(beta))).mul(V::splat(alpha))
            }
            RecurrentAct::HardSigmoid { alpha, beta } => x
                .mul(V::splat(alpha))
                .add(V::splat(beta))
                .max(zero)
                .min(V::splat(1.0)),
            RecurrentAct::Elu { alpha } => {
                let neg = x.min(zero).exp().sub(V::splat(1.0)).mul(V::splat(alpha));
                x.gt_select(zero, x, neg)
            }
            RecurrentAct::Softsign => x.div(V::splat(1.0).add(x.abs())),
            RecurrentAct::Softplus => x.map(|v| {
                // ln(1 + e^v) without overflow.
                v.max(0.0) + (-v.abs()).exp().ln_1p()
            }),
        }
    }

    /// The activation of one value (the portable path).
    pub fn apply1(self, x: f32) -> f32 {
        self.apply(x)
    }
}

/// One step's operands for one batch entry and direction. Gate order follows
/// ONNX (RNN `i`; GRU `z, r, h`; LSTM `i, o, f, c`), each `hidden` long.
#[derive(Clone, Copy)]
pub(crate) struct Step<'a> {
    /// `X·W^T + bias` for this time step (all gates).
    pub xw: &'a [f32],
    /// `H_{t-1}·R^T` (all gates; for GRU without `linear_before_reset` only
    /// `z, r`, then the `h` gate's `(r⊙H)·R_h^T` in phase two).
    pub hr: &'a [f32],
    /// The clip bound (`f32::INFINITY` for none).
    pub clip: f32,
    pub acts: &'a [RecurrentAct],
    /// LSTM: peepholes `pi, po, pf` (3·hidden); GRU lbr: `Rb_h` (hidden).
    pub aux: &'a [f32],
}

/// State and per-direction constants a step updates with.
pub(crate) struct State<'a> {
    pub h: &'a mut [f32],
    pub c: &'a mut [f32],
    /// GRU two-phase: `z` kept between the two phases.
    pub z: &'a mut [f32],
    /// GRU two-phase: `r ⊙ H_{t-1}` for the second GEMV.
    pub rh: &'a mut [f32],
}

/// Which computation one pass does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Pass {
    Rnn,
    /// GRU with `linear_before_reset`: one pass.
    GruLbr,
    /// GRU phase one: `z` into `z`, `r ⊙ h` into `rh`.
    GruZr,
    /// GRU phase two: `hr` is `(r⊙H)·R_h^T`, `xw` still all three gates.
    GruH,
    /// LSTM; `bool` = input_forget.
    Lstm(bool),
}

#[inline(always)]
unsafe fn clip<V: Lanes>(x: V, c: f32) -> V {
    x.max(V::splat(-c)).min(V::splat(c))
}

/// Hidden units `j..j+n` of one pass (`n <= V::N`).
#[inline(always)]
unsafe fn units<V: Lanes>(pass: Pass, s: &Step, st: &mut State, hs: usize, j: usize, n: usize) {
    let (xw, hr, c) = (s.xw.as_ptr(), s.hr.as_ptr(), s.clip);
    let gate = |g: usize| V::load(xw.add(g * hs + j), n).add(V::load(hr.add(g * hs + j), n));
    let h = V::load(st.h.as_ptr().add(j), n);
    let one = V::splat(1.0);
    match pass {
        Pass::Rnn => s.acts[0]
            .apply(clip(gate(0), c))
            .store(st.h.as_mut_ptr().add(j), n),
        Pass::GruZr | Pass::GruLbr => {
            let z = s.acts[0].apply(clip(gate(0), c));
            let r = s.acts[0].apply(clip(gate(1), c));
            if pass == Pass::GruZr {
                z.store(st.z.as_mut_ptr().add(j), n);
                r.mul(h).store(st.rh.as_mut_ptr().add(j), n);
                return;
            }
            let rb = V::load(s.aux.as_ptr().add(j), n);
            let lin = V::load(hr.add(2 * hs + j), n).add(rb);
            let a = V::load(xw.add(2 * hs + j), n).add(r.mul(lin));
            let ht = s.acts[1].apply(clip(a, c));
            one.sub(z)
                .mul(ht)
                .add(z.mul(h))
                .store(st.h.as_mut_ptr().add(j), n);
        }
        Pass::GruH => {
            let z = V::load(st.z.as_ptr().add(j), n);
            let a = V::load(xw.add(2 * hs + j), n).add(V::load(hr.add(j), n));
            let ht = s.acts[1].apply(clip(a, c));
            one.sub(z)
                .mul(ht)
                .add(z.mul(h))
                .store(st.h.as_mut_ptr().add(j), n);
        }
        Pass::Lstm(input_forget) => {
            let p = s.aux.as_ptr();
            let cell = V::load(st.c.as_ptr().add(j), n);
            let pi = V::load(p.add(j), n);
            let (po, pf) = (V::load(p.add(hs + j), n), V::load(p.add(2 * hs + j), n));
            let i = s.acts[0].apply(clip(gate(0).add(pi.mul(cell)), c));
            let f = if input_forget {
                one.sub(i)
            } else {
                s.acts[0].apply(clip(gate(2).add(pf.mul(cell)), c))
            };
            let ct = s.acts[1].apply(clip(gate(3), c));
            let cell = f.mul(cell).add(i.mul(ct));
            let o = s.acts[0].apply(clip(gate(1).add(po.mul(cell)), c));
            cell.store(st.c.as_mut_ptr().add(j), n);
            o.mul(s.acts[2].apply(cell))
                .store(st.h.as_mut_ptr().add(j), n);
        }
    }
}

#[inline(always)]
unsafe fn pass_lanes<V: Lanes>(pass: Pass, s: &Step, st: &mut State, hs: usize) {
    let mut j = 0;
    while j < hs {
        let n = V::N.min(hs - j);
        units::<V>(pass, s, st, hs, j, n);
        j += n;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pass512(pass: Pass, s: &Step, st: &mut State, hs: usize) {
    pass_lanes::<__m512>(pass, s, st, hs)
}

/// Runs one pass over all `hs` hidden units.
///
/// # Safety
/// `s.xw` must hold every gate of the layer, `s.hr` the gates the pass reads,
/// and the state slices `hs` units (LSTM `aux` 3·hs, GRU lbr `aux` hs).
pub(crate) unsafe fn run_pass(pass: Pass, s: &Step, st: &mut State, hs: usize) {
    #[cfg(target_arch = "x86_64")]
    if super::use_avx512() {
        return pass512(pass, s, st, hs);
    }
    pass_lanes::<f32>(pass, s, st, hs)
}
