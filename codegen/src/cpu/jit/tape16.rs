//! The AVX-512 interpreter of a [`Tape`](super::tape::Tape): `kiln16_tape(tape,
//! args, temps, n)` runs each operation over `n` lanes (16 at a time, the
//! last vector masked). `args` holds each read's pointer at the chunk's
//! first lane, then the output's; `temps` the chunk buffers. Functions use
//! `vmath16`; the rest follows the f32x4 code's semantics (Max/Min: NaN if
//! either side is, +0 above -0; comparisons 1/0, false on NaN except Ne;
//! Select takes `b` where `a` is not 0 or is NaN).

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::super::tape::{Instr, Op16, Tape, OUT};
    use super::super::vmath16::imp::{erf16, exp16, log16, pow16, sincos16, tanh16};
    use std::arch::x86_64::*;

    /// An operand: its pointer and the mask of lane offsets applied to it
    /// (all ones: it advances with the lane; 0: 16 copies of one value).
    #[derive(Clone, Copy)]
    struct Src(*const f32, usize);

    impl Src {
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn ld(self, i: usize) -> __m512 {
            // SAFETY: a contiguous operand holds the chunk's lanes; another
            // 16 copies of its value.
            unsafe { _mm512_loadu_ps(self.0.add(i & self.1)) }
        }

        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn ld_masked(self, i: usize, m: __mmask16) -> __m512 {
            // SAFETY: as `ld`, lanes outside `m` not read.
            unsafe { _mm512_maskz_loadu_ps(m, self.0.add(i & self.1)) }
        }
    }

    #[inline]
    fn mask(left: usize) -> __mmask16 {
        if left >= 16 {
            0xffff
        } else {
            ((1u32 << left) - 1) as u16
        }
    }

    /// `dst[i] = f(a, b, c)` over `n` lanes: masked up to `dst`'s first
    /// 64-byte boundary (a store across two cache lines costs two), whole
    /// vectors, then the rest masked.
    macro_rules! each {
        ($n:expr, $dst:expr, $s:expr, |$a:ident, $b:ident, $c:ident| $body:expr) => {{
            let n = $n;
            let head = ((64 - ($dst as usize & 63)) & 63) / 4;
            let head = if $dst as usize % 4 == 0 {
                head.min(n)
            } else {
                0
            };
            // SAFETY: operands and `dst` hold the chunk's `n` lanes.
            unsafe {
                if head > 0 {
                    let m = mask(head);
                    #[allow(unused_variables)]
                    let ($a, $b, $c) = (
                        $s[0].ld_masked(0, m),
                        $s[1].ld_masked(0, m),
                        $s[2].ld_masked(0, m),
                    );
                    _mm512_mask_storeu_ps($dst, m, $body);
                }
                let mut i = head;
                while i + 16 <= n {
                    #[allow(unused_variables)]
                    let ($a, $b, $c) = ($s[0].ld(i), $s[1].ld(i), $s[2].ld(i));
                    _mm512_storeu_ps($dst.add(i), $body);
                    i += 16;
                }
                if i < n {
                    let m = mask(n - i);
                    #[allow(unused_variables)]
                    let ($a, $b, $c) = (
                        $s[0].ld_masked(i, m),
                        $s[1].ld_masked(i, m),
                        $s[2].ld_masked(i, m),
                    );
                    _mm512_mask_storeu_ps($dst.add(i), m, $body);
                }
            }
        }};
    }

    /// Bits `a op b`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn bits(a: __m512, b: __m512, and: bool) -> __m512 {
        let (a, b) = (_mm512_castps_si512(a), _mm512_castps_si512(b));
        let r = if and {
            _mm512_and_si512(a, b)
        } else {
            _mm512_or_si512(a, b)
        };
        _mm512_castsi512_ps(r)
    }

    /// Max (`max = true`) or min with NaN propagation and signed zeros.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn maxmin(a: __m512, b: __m512, max: bool) -> __m512 {
        let r = if max {
            _mm512_max_ps(a, b)
        } else {
            _mm512_min_ps(a, b)
        };
        let eq = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b);
        let r = _mm512_mask_blend_ps(eq, r, bits(a, b, max));
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, b);
        _mm512_mask_blend_ps(nan, r, _mm512_add_ps(a, b))
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn one_if(m: __mmask16) -> __m512 {
        _mm512_maskz_mov_ps(m, _mm512_set1_ps(1.0))
    }

    /// `a ^ k` for the exponents `const_exponent` accepts.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn powc(a: __m512, k: f32) -> __m512 {
        let sq = _mm512_mul_ps(a, a);
        match k {
            0.0 => _mm512_set1_ps(1.0),
            0.5 => {
                let inf = _mm512_set1_ps(f32::INFINITY);
                let s = _mm512_sqrt_ps(a);
                let m = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, _mm512_set1_ps(f32::NEG_INFINITY));
                _mm512_abs_ps(_mm512_mask_blend_ps(m, s, inf))
            }
            -1.0 => _mm512_div_ps(_mm512_set1_ps(1.0), a),
            2.0 => sq,
            3.0 => _mm512_mul_ps(sq, a),
            4.0 => _mm512_mul_ps(sq, sq),
            _ => a,
        }
    }

    /// `e = exp(-|a|)`, `s = 1 / (1 + e)`, `a < 0 ? e s : s` (the
    /// lowering's sigmoid, operation for operation).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn sigmoid(a: __m512) -> __m512 {
        let sign = _mm512_set1_epi32(i32::MIN);
        let abs = _mm512_abs_ps(a);
        let e = exp16(_mm512_castsi512_ps(_mm512_xor_si512(
            _mm512_castps_si512(abs),
            sign,
        )));
        let s = _mm512_div_ps(_mm512_set1_ps(1.0), _mm512_add_ps(_mm512_set1_ps(1.0), e));
        let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, _mm512_setzero_ps());
        _mm512_mask_blend_ps(neg, s, _mm512_mul_ps(e, s))
    }

    /// `(0.5 a) (1 + erf(a k))`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn gelu_erf(a: __m512, k: f32) -> __m512 {
        let inner = erf16(_mm512_mul_ps(a, _mm512_set1_ps(k)));
        let half = _mm512_mul_ps(_mm512_set1_ps(0.5), a);
        _mm512_mul_ps(half, _mm512_add_ps(_mm512_set1_ps(1.0), inner))
    }

    /// `(0.5 a) (1 + tanh(k (a + 0.044715 ((a a) a))))`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn gelu_tanh(a: __m512, k: f32) -> __m512 {
        let cube = _mm512_mul_ps(_mm512_mul_ps(a, a), a);
        let poly = _mm512_add_ps(a, _mm512_mul_ps(_mm512_set1_ps(0.044715), cube));
        let inner = tanh16(_mm512_mul_ps(_mm512_set1_ps(k), poly));
        let half = _mm512_mul_ps(_mm512_set1_ps(0.5), a);
        _mm512_mul_ps(half, _mm512_add_ps(_mm512_set1_ps(1.0), inner))
    }

    /// One unary operation over `n` lanes.
    #[target_feature(enable = "avx512f")]
    unsafe fn unary(ins: &Instr, s: [Src; 3], dst: *mut f32, n: usize) {
        let sign = _mm512_set1_epi32(i32::MIN);
        let flip = |x: __m512| _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), sign));
        let one = _mm512_set1_ps(1.0);
        match ins.op {
            Op16::Copy => each!(n, dst, s, |a, b, c| a),
            Op16::Neg => each!(n, dst, s, |a, b, c| flip(a)),
            Op16::Abs => each!(n, dst, s, |a, b, c| _mm512_abs_ps(a)),
            Op16::Sqrt => each!(n, dst, s, |a, b, c| _mm512_sqrt_ps(a)),
            Op16::Floor => each!(n, dst, s, |a, b, c| _mm512_roundscale_ps::<
                { _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC },
            >(a)),
            Op16::Ceil => each!(n, dst, s, |a, b, c| _mm512_roundscale_ps::<
                { _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC },
            >(a)),
            Op16::Recip => each!(n, dst, s, |a, b, c| _mm512_div_ps(one, a)),
            Op16::Exp => each!(n, dst, s, |a, b, c| exp16(a)),
            Op16::Log => each!(n, dst, s, |a, b, c| log16(a)),
            Op16::Tanh => each!(n, dst, s, |a, b, c| tanh16(a)),
            Op16::Erf => each!(n, dst, s, |a, b, c| erf16(a)),
            Op16::Sin => each!(n, dst, s, |a, b, c| sincos16(a, false)),
            Op16::Cos => each!(n, dst, s, |a, b, c| sincos16(a, true)),
            Op16::PowC => each!(n, dst, s, |a, b, c| powc(a, ins.k)),
            Op16::Sigmoid => each!(n, dst, s, |a, b, c| sigmoid(a)),
            Op16::GeluErf => each!(n, dst, s, |a, b, c| gelu_erf(a, ins.k)),
            Op16::GeluTanh => each!(n, dst, s, |a, b, c| gelu_tanh(a, ins.k)),
            _ => unsafe { binary(ins, s, dst, n) },
        }
    }

    /// One operation of two or three operands over `n` lanes.
    #[target_feature(enable = "avx512f")]
    unsafe fn binary(ins: &Instr, s: [Src; 3], dst: *mut f32, n: usize) {
        let zero = _mm512_setzero_ps();
        match ins.op {
            Op16::Add => each!(n, dst, s, |a, b, c| _mm512_add_ps(a, b)),
            Op16::Sub => each!(n, dst, s, |a, b, c| _mm512_sub_ps(a, b)),
            Op16::Mul => each!(n, dst, s, |a, b, c| _mm512_mul_ps(a, b)),
            Op16::Div => each!(n, dst, s, |a, b, c| _mm512_div_ps(a, b)),
            Op16::Max => each!(n, dst, s, |a, b, c| maxmin(a, b, true)),
            Op16::Min => each!(n, dst, s, |a, b, c| maxmin(a, b, false)),
            Op16::Pow => each!(n, dst, s, |a, b, c| pow16(a, b)),
            Op16::Eq => each!(n, dst, s, |a, b, c| one_if(
                _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b)
            )),
            Op16::Ne => each!(n, dst, s, |a, b, c| one_if(
                _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(a, b)
            )),
            Op16::Lt => each!(n, dst, s, |a, b, c| one_if(
                _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b)
            )),
            Op16::Le => each!(n, dst, s, |a, b, c| one_if(
                _mm512_cmp_ps_mask::<_CMP_LE_OQ>(a, b)
            )),
            Op16::Gt => each!(n, dst, s, |a, b, c| one_if(
                _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b)
            )),
            Op16::Ge => each!(n, dst, s, |a, b, c| one_if(
                _mm512_cmp_ps_mask::<_CMP_GE_OQ>(a, b)
            )),
            Op16::Select => each!(n, dst, s, |a, b, c| _mm512_mask_blend_ps(
                _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(a, zero),
                c,
                b
            )),
            _ => {}
        }
    }

    /// Runs `t` over `n` lanes; see the module docs.
    ///
    /// # Safety
    /// `args` holds `t.leaves.len() + 1` pointers (reads at the chunk's
    /// first lane, then the output) valid for `n` lanes (one element for a
    /// non-contiguous read), `temps` `t.n_temps * t.cap + 16 L` f32 (the
    /// last for 16 copies of each non-contiguous read), `n <= t.cap`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn run(t: &Tape, args: *const *const f32, temps: *mut f32, n: usize) {
        let (l, c) = (t.leaves.len(), t.consts.len());
        let splats = temps.wrapping_add(t.n_temps * t.cap);
        for (k, &contiguous) in t.contiguous.iter().enumerate() {
            if !contiguous {
                // SAFETY: `args` holds `l + 1` pointers, a non-contiguous
                // read's to one value; `splats` has room for 16 per read.
                unsafe {
                    let v = _mm512_set1_ps(**args.add(k));
                    _mm512_storeu_ps(splats.add(16 * k), v);
                }
            }
        }
        let src = |id: u32| -> Src {
            let id = id as usize;
            if id < l && t.contiguous[id] {
                // SAFETY: `args` holds `l + 1` pointers.
                Src(unsafe { *args.add(id) }, usize::MAX)
            } else if id < l {
                Src(splats.wrapping_add(16 * id), 0)
            } else if id < l + c {
                Src(t.consts[id - l].as_ptr(), 0)
            } else {
                Src(temps.wrapping_add((id - l - c) * t.cap), usize::MAX)
            }
        };
        // SAFETY: as above.
        let out = unsafe { *args.add(l) } as *mut f32;
        for ins in &t.instrs {
            let dst = if ins.dst == OUT {
                out
            } else {
                temps.wrapping_add((ins.dst as usize - l - c) * t.cap)
            };
            let s = [src(ins.a), src(ins.b), src(ins.c)];
            // SAFETY: the caller's contract covers every operand and `dst`.
            unsafe { unary(ins, s, dst, n) };
        }
    }
}

/// `extern "C"` entry the generated code calls; see the module docs.
///
/// # Safety
/// `tape` is a live [`Tape`](super::tape::Tape), the rest as `imp::run`;
/// called only when the CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
pub(super) unsafe extern "C" fn kiln16_tape(
    tape: *const super::tape::Tape,
    args: *const *const f32,
    temps: *mut f32,
    n: i64,
) {
    // SAFETY: see above.
    unsafe { imp::run(&*tape, args, temps, n.max(0) as usize) }
}

/// The interpreter's symbol and address.
pub(super) fn symbols() -> Vec<(&'static str, *const u8)> {
    #[cfg(target_arch = "x86_64")]
    {
        vec![("kiln16_tape", kiln16_tape as *const u8)]
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        vec![]
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::tape::{build_with, Op16, Tape};
    use kiln_ir::expr::lower;
    use kiln_ir::{Attr, DType, Graph, Op, TensorType};

    fn body(kind: &str, approximate: Option<&str>) -> kiln_ir::expr::ScalarExpr {
        let mut g = Graph::new("t");
        let x = g
            .add_input("x", TensorType::new(DType::F32, vec![64]))
            .unwrap();
        let mut op = Op::new(kind);
        if let Some(a) = approximate {
            op.attrs.set("approximate", Attr::Str(a.into()));
        }
        let out = g.add_node("n", op, &[x], &["y"]).unwrap();
        g.set_outputs(out);
        lower(&g, &g.nodes()[0]).unwrap().unwrap().body
    }

    fn run(t: &Tape, xs: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; xs.len()];
        let mut temps = vec![0f32; t.n_temps * t.cap + 16 * t.leaves.len()];
        for (x, y) in xs.chunks(t.cap).zip(out.chunks_mut(t.cap)) {
            let args = [x.as_ptr(), y.as_mut_ptr() as *const f32];
            // SAFETY: one contiguous read and the output, `n <= cap`.
            unsafe { super::imp::run(t, args.as_ptr(), temps.as_mut_ptr(), x.len()) };
        }
        out
    }

    /// Each fused activation is one operation and gives, bit for bit, what
    /// the operation-per-pass tape gives, over a sweep of f32 values.
    #[test]
    fn fused_activations_match_the_unfused_tape() {
        if !crate::cpu::jit::has_avx512() {
            return;
        }
        let mut xs: Vec<f32> = (0..200_003u32)
            .map(|i| f32::from_bits(i.wrapping_mul(21_473)))
            .collect();
        xs.extend((-2000..2000).map(|i| i as f32 * 0.01));
        xs.extend([
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            88.7,
            -88.7,
        ]);
        let ty = [TensorType::new(DType::F32, vec![64])];
        let cases = [
            ("Sigmoid", None, Op16::Sigmoid),
            ("Gelu", None, Op16::GeluErf),
            ("Gelu", Some("tanh"), Op16::GeluTanh),
        ];
        for (kind, approx, op) in cases {
            let b = body(kind, approx);
            let fused = build_with(&b, &ty, 512, true).unwrap();
            let plain = build_with(&b, &ty, 512, false).unwrap();
            assert_eq!(fused.instrs.len(), 1, "{kind}");
            assert_eq!(fused.instrs[0].op, op);
            assert!(plain.instrs.len() > 4, "{kind}");
            let (f, p) = (run(&fused, &xs), run(&plain, &xs));
            for ((a, b), x) in f.iter().zip(&p).zip(&xs) {
                assert!(
                    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                    "{kind}({x}): {a} vs {b}"
                );
            }
        }
    }

    /// A cast to f32 of an f32 value is the value (one operation fewer, and
    /// fused maps that end in one stay on the tape); a cast of a comparison
    /// (a mask, not a float) keeps the expression off the tape.
    #[test]
    fn casts_of_f32_values_are_the_values() {
        use kiln_ir::expr::{AffineExpr, CmpOp, ScalarExpr as S};
        let x = || S::access(0, vec![AffineExpr::iter(0)]);
        let ty = [TensorType::new(DType::F32, vec![64])];
        let cast = |e: S| S::Cast(DType::F32, Box::new(e));
        let relu = |e: S| S::binary(kiln_ir::expr::BinaryOp::Max, e, S::Const(0.0));
        let body = relu(cast(S::binary(
            kiln_ir::expr::BinaryOp::Mul,
            x(),
            S::Const(2.0),
        )));
        let t = build_with(&body, &ty, 64, true).unwrap();
        assert_eq!(t.instrs.len(), 2);
        let xs: Vec<f32> = (0..64).map(|i| i as f32 - 30.5).collect();
        let want: Vec<f32> = xs.iter().map(|v| (v * 2.0).max(0.0)).collect();
        assert_eq!(run(&t, &xs), want);
        let mask = cast(S::Cmp(CmpOp::Lt, Box::new(x()), Box::new(S::Const(0.0))));
        assert!(build_with(&mask, &ty, 64, true).is_none());
    }
}
