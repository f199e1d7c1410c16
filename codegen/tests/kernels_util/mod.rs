//! Shared helpers for the kernel tests: random data, f64 references, and the
//! case lists that both the SIMD and the portable test files run.
#![allow(dead_code)]

use kiln_codegen::cpu::kernels::*;

/// Deterministic xorshift values in [-1, 1).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn f(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
}

pub const ACTS: [Activation; 6] = [
    Activation::None,
    Activation::Relu,
    Activation::Clip {
        min: -0.25,
        max: 0.5,
    },
    Activation::LeakyRelu { alpha: 0.1 },
    Activation::Gelu,
    Activation::GeluTanh,
];

pub fn act64(a: Activation, x: f64) -> f64 {
    match a {
        Activation::None => x,
        Activation::Relu => x.max(0.0),
        Activation::Clip { min, max } => x.max(min as f64).min(max as f64),
        Activation::LeakyRelu { alpha } => {
            if x >= 0.0 {
                x
            } else {
                alpha as f64 * x
            }
        }
        Activation::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
        Activation::GeluTanh => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
        }
    }
}

/// Asserts `got` matches `want` within `1e-5·(scale + 1)` per element.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], scale: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for i in 0..got.len() {
        let tol = 1e-5 * (scale[i] + 1.0);
        let err = (got[i] as f64 - want[i]).abs();
        assert!(
            err <= tol,
            "{what}: element {i}: got {} want {} (err {err:e}, tol {tol:e})",
            got[i],
            want[i]
        );
    }
}

/// f64 reference of a batched matmul with epilogue; returns (values, magnitude scale).
pub fn matmul_ref(d: &MatmulDesc, a: &[f32], b: &[f32], e: &Epilogue) -> (Vec<f64>, Vec<f64>) {
    let (m, n, k) = (d.m, d.n, d.k);
    let mut out = vec![0f64; d.batch * m * n];
    let mut sc = vec![0f64; d.batch * m * n];
    for g in 0..d.batch {
        for i in 0..m {
            for j in 0..n {
                let (mut s, mut abs) = (0f64, 0f64);
                for p in 0..k {
                    let av = a[g * d.a_batch_stride + i * k + p] as f64;
                    let bi = if d.b_transposed { j * k + p } else { p * n + j };
                    let t = av * b[g * d.b_batch_stride + bi] as f64;
                    s += t;
                    abs += t.abs();
                }
                let o = (g * m + i) * n + j;
                if let Some(bias) = e.bias {
                    s += bias[j] as f64;
                }
                if let Some(r) = e.residual {
                    s += r[o] as f64;
                }
                out[o] = act64(e.activation, s);
                sc[o] = abs;
            }
        }
    }
    (out, sc)
}

/// Runs one matmul case with every epilogue combination at 1 and 2 threads.
pub fn check_matmul(rng: &mut Rng, d: MatmulDesc) {
    let (m, n, k) = (d.m, d.n, d.k);
    let a = rng.vec(if d.a_batch_stride == 0 {
        m * k
    } else {
        d.batch * m * k
    });
    let b = rng.vec(if d.b_batch_stride == 0 {
        k * n
    } else {
        d.batch * k * n
    });
    let bias = rng.vec(n);
    let res = rng.vec(d.batch * m * n);
    for (ei, act) in ACTS.iter().enumerate() {
        let e = Epilogue {
            bias: (ei % 2 == 1).then_some(&bias[..]),
            residual: (ei >= 2).then_some(&res[..]),
            activation: *act,
        };
        let (want, sc) = matmul_ref(&d, &a, &b, &e);
        for threads in [1, 2] {
            let mut c = vec![f32::NAN; d.batch * m * n];
            matmul_f32(&d, &a, &b, &mut c, &e, threads).unwrap();
            assert_close(&format!("{d:?} {e:?} t{threads}"), &c, &want, &sc);
        }
    }
}

pub fn matmul_cases() -> Vec<MatmulDesc> {
    let mut v = Vec::new();
    let one = |batch, m, n, k, t| MatmulDesc {
        batch,
        m,
        n,
        k,
        a_batch_stride: m * k,
        b_batch_stride: k * n,
        b_transposed: t,
    };
    for &(m, n, k) in &[
        (1, 1, 1),
        (1, 10, 784),
        (1, 130, 17),
        (1, 300, 33),
        (2, 3, 4),
        (3, 17, 5),
        (7, 33, 9),
        (8, 32, 16),
        (9, 31, 40),
        (17, 65, 3),
        (64, 128, 128),
        (64, 20, 512),
        (13, 200, 0),
        (9, 1000, 64),
    ] {
        for t in [false, true] {
            v.push(one(1, m, n, k, t));
        }
    }
    v.push(one(2, 64, 64, 64, false));
    v.push(one(3, 5, 19, 7, true));
    v.push(MatmulDesc {
        a_batch_stride: 0,
        ..one(3, 6, 21, 11, false)
    });
    v.push(MatmulDesc {
        b_batch_stride: 0,
        ..one(3, 9, 40, 13, false)
    });
    v.push(MatmulDesc {
        b_batch_stride: 0,
        ..one(2, 1, 40, 13, true)
    });
    v.push(MatmulDesc {
        b_batch_stride: 0,
        ..one(2, 4, 40, 13, true)
    });
    v.push(one(1, 400, 390, 385, false));
    v
}

/// f64 reference convolution with epilogue; returns (values, magnitude scale).
pub fn conv_ref(
    d: &Conv2dDesc,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    res: Option<&[f32]>,
    act: Activation,
) -> (Vec<f64>, Vec<f64>) {
    let (oh, ow) = (d.out_h(), d.out_w());
    let (cig, cog) = (d.c_in / d.groups, d.c_out / d.groups);
    let mut out = vec![0f64; d.batch * d.c_out * oh * ow];
    let mut sc = out.clone();
    for b in 0..d.batch {
        for co in 0..d.c_out {
            let g = co / cog;
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut s, mut abs) = (0f64, 0f64);
                    for ci in 0..cig {
                        for ky in 0..d.kh {
                            for kx in 0..d.kw {
                                let iy = (oy * d.stride_h + ky * d.dilation_h) as isize
                                    - d.pad_top as isize;
                                let ix = (ox * d.stride_w + kx * d.dilation_w) as isize
                                    - d.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= d.h as isize || ix >= d.w as isize {
                                    continue;
                                }
                                let xv = x[((b * d.c_in + g * cig + ci) * d.h + iy as usize) * d.w
                                    + ix as usize];
                                let t =
                                    xv as f64 * w[((co * cig + ci) * d.kh + ky) * d.kw + kx] as f64;
                                s += t;
                                abs += t.abs();
                            }
                        }
                    }
                    let o = ((b * d.c_out + co) * oh + oy) * ow + ox;
                    s += bias.map_or(0.0, |bb| bb[co] as f64);
                    s += res.map_or(0.0, |r| r[o] as f64);
                    out[o] = act64(act, s);
                    sc[o] = abs;
                }
            }
        }
    }
    (out, sc)
}

/// A convolution descriptor with symmetric defaults.
#[allow(clippy::too_many_arguments)]
pub fn conv(
    batch: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    k: (usize, usize),
    stride: (usize, usize),
    pads: [usize; 4],
    dil: (usize, usize),
    groups: usize,
) -> Conv2dDesc {
    Conv2dDesc {
        batch,
        c_in,
        h,
        w,
        c_out,
        kh: k.0,
        kw: k.1,
        stride_h: stride.0,
        stride_w: stride.1,
        pad_top: pads[0],
        pad_left: pads[1],
        pad_bottom: pads[2],
        pad_right: pads[3],
        dilation_h: dil.0,
        dilation_w: dil.1,
        groups,
    }
}

pub fn conv_cases() -> Vec<Conv2dDesc> {
    let p1 = [1, 1, 1, 1];
    vec![
        conv(1, 3, 17, 19, 8, (3, 3), (2, 2), p1, (1, 1), 1), // mobilenet first layer
        conv(1, 3, 224, 224, 32, (3, 3), (2, 2), [0, 0, 1, 1], (1, 1), 1),
        conv(2, 16, 9, 21, 16, (3, 3), (1, 1), p1, (1, 1), 16), // depthwise s1
        conv(1, 5, 37, 35, 5, (3, 3), (2, 2), p1, (1, 1), 5),   // depthwise s2 odd
        conv(1, 4, 8, 8, 4, (3, 3), (2, 2), [0, 0, 1, 1], (1, 1), 4),
        conv(1, 3, 12, 40, 3, (5, 3), (1, 2), [2, 0, 1, 3], (2, 3), 3), // depthwise dilated
        conv(1, 3, 11, 13, 3, (3, 3), (3, 3), p1, (1, 1), 3),           // depthwise stride 3
        conv(1, 3, 2, 3, 3, (3, 3), (1, 1), [2, 2, 2, 2], (1, 1), 3),   // padding > input
        conv(2, 24, 7, 9, 40, (1, 1), (1, 1), [0; 4], (1, 1), 1),       // pointwise
        conv(1, 32, 14, 14, 16, (1, 1), (1, 1), [0; 4], (1, 1), 1),
        conv(1, 8, 5, 6, 12, (1, 1), (1, 1), [0; 4], (1, 1), 4), // grouped pointwise
        conv(1, 6, 9, 9, 10, (1, 1), (2, 2), [0; 4], (1, 1), 1), // strided 1x1
        conv(1, 4, 10, 11, 6, (3, 3), (1, 1), p1, (1, 1), 2),    // grouped
        conv(2, 3, 9, 12, 5, (2, 4), (2, 1), [1, 0, 0, 2], (2, 1), 1),
        conv(1, 2, 6, 20, 7, (1, 5), (1, 1), [0, 2, 0, 2], (1, 1), 1), // 1xN
        conv(1, 2, 20, 6, 3, (7, 1), (3, 1), [3, 0, 3, 0], (1, 1), 1), // Nx1
        conv(1, 3, 8, 8, 6, (3, 3), (1, 1), p1, (1, 1), 3),            // depth multiplier 2
        conv(1, 1, 5, 5, 2, (5, 5), (1, 1), [0; 4], (1, 1), 1),        // whole-input kernel
        // 3x3 depthwise fast paths: wide rows (4-vector groups), stride 2, narrow rows,
        // row dilation and stride, asymmetric padding.
        conv(1, 2, 3, 150, 2, (3, 3), (1, 1), p1, (1, 1), 2),
        conv(1, 2, 6, 112, 2, (3, 3), (2, 2), p1, (1, 1), 2),
        conv(1, 2, 5, 70, 2, (3, 3), (1, 2), [1, 1, 1, 1], (1, 1), 2),
        conv(1, 4, 30, 33, 4, (3, 3), (1, 2), [1, 0, 2, 1], (1, 1), 4),
        conv(1, 4, 9, 40, 4, (3, 3), (2, 1), [0, 2, 1, 0], (2, 1), 4),
        conv(1, 3, 14, 14, 3, (3, 3), (2, 2), [0, 0, 1, 1], (1, 1), 3),
        conv(1, 3, 7, 7, 3, (3, 3), (1, 1), p1, (1, 1), 3),
        conv(1, 2, 5, 30, 2, (3, 3), (1, 2), p1, (1, 1), 2), // 15 outputs, stride 2
        conv(2, 2, 9, 31, 2, (3, 3), (2, 2), [0, 2, 1, 0], (1, 1), 2),
        conv(1, 64, 30, 30, 20, (1, 1), (1, 1), [0; 4], (1, 1), 1), // several column chunks
        // "Same" depthwise planes, flattened (rows < 128 wide).
        conv(2, 5, 14, 14, 5, (3, 3), (1, 1), p1, (1, 1), 5),
        conv(1, 3, 9, 5, 3, (3, 3), (1, 1), p1, (1, 1), 3),
        conv(1, 2, 3, 15, 2, (3, 3), (1, 1), p1, (1, 1), 2),
        conv(1, 3, 11, 28, 3, (3, 3), (1, 1), p1, (1, 1), 3),
        conv(1, 2, 5, 63, 2, (3, 3), (1, 1), p1, (1, 1), 2),
        conv(1, 2, 4, 113, 2, (3, 3), (1, 1), p1, (1, 1), 2),
        conv(1, 2, 1, 1, 2, (3, 3), (1, 1), p1, (1, 1), 2),
        // Small planes: channel-vectorized 1x1 (channel blocks of 64 with tails).
        conv(2, 40, 7, 7, 150, (1, 1), (1, 1), [0; 4], (1, 1), 1),
        conv(1, 33, 3, 5, 17, (1, 1), (1, 1), [0; 4], (1, 1), 1),
        conv(1, 19, 1, 1, 70, (1, 1), (1, 1), [0; 4], (1, 1), 1),
        conv(1, 9, 10, 9, 64, (1, 1), (1, 1), [0; 4], (1, 1), 1),
        // Depthwise planes tall enough for two threads to split rows.
        conv(2, 6, 40, 37, 6, (3, 3), (1, 1), p1, (1, 1), 6),
        conv(1, 8, 61, 70, 8, (3, 3), (2, 2), p1, (1, 1), 8),
        conv(1, 6, 50, 45, 6, (5, 5), (1, 1), [2, 2, 2, 2], (1, 1), 6),
        conv(1, 5, 34, 140, 5, (3, 3), (1, 1), p1, (1, 1), 5),
        // Direct kernel (few taps): stride 1 and 2, padding, channel and pixel tails.
        conv(2, 1, 9, 40, 13, (5, 5), (1, 1), [2, 2, 2, 2], (1, 1), 1),
        conv(1, 3, 20, 35, 17, (3, 3), (2, 2), [1, 1, 1, 1], (1, 1), 1),
        conv(1, 2, 7, 70, 9, (3, 5), (3, 2), [0, 2, 1, 1], (1, 1), 1),
        conv(1, 3, 6, 33, 8, (3, 3), (1, 1), [0, 0, 0, 0], (1, 1), 1),
        // Several input-channel chunks; thread ranges starting inside a packed block.
        conv(1, 500, 7, 7, 100, (1, 1), (1, 1), [0; 4], (1, 1), 1),
        conv(2, 390, 5, 5, 70, (1, 1), (1, 1), [0; 4], (1, 1), 1),
    ]
}

/// Runs one convolution case with every epilogue combination at 1 and 2 threads.
pub fn check_conv(rng: &mut Rng, d: Conv2dDesc) {
    check_conv_with(rng, d, &[ConvKnobs::default()]);
}

/// [`check_conv`] for each of `knobs` (same data), at 1 and 2 threads,
/// with every epilogue.
pub fn check_conv_with(rng: &mut Rng, d: Conv2dDesc, knobs: &[ConvKnobs]) {
    let x = rng.vec(d.batch * d.c_in * d.h * d.w);
    let w = rng.vec(d.c_out * d.c_in / d.groups * d.kh * d.kw);
    let bias = rng.vec(d.c_out);
    let out_len = d.batch * d.c_out * d.out_h() * d.out_w();
    let res = rng.vec(out_len);
    for (ei, act) in ACTS.iter().enumerate() {
        let b = (ei % 2 == 1).then_some(&bias[..]);
        let r = (ei >= 2).then_some(&res[..]);
        let (want, sc) = conv_ref(&d, &x, &w, b, r, *act);
        for k in knobs {
            let cv = Conv2d::with_knobs(d, &w, b, *act, *k).unwrap();
            for threads in [1, 2] {
                let mut y = vec![f32::NAN; out_len];
                let mut scratch = vec![f32::NAN; cv.scratch_len()];
                cv.run(&x, r, &mut y, &mut scratch, threads).unwrap();
                assert_close(
                    &format!(
                        "{d:?} {k:?} {act:?} bias {} res {} t{threads}",
                        b.is_some(),
                        r.is_some()
                    ),
                    &y,
                    &want,
                    &sc,
                );
            }
        }
    }
}

pub fn softmax_ref(x: &[f32], cols: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for row in x.chunks(cols) {
        let max = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
        let e: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
        let s: f64 = e.iter().sum();
        out.extend(e.iter().map(|v| v / s));
    }
    out
}

pub fn layer_norm_ref(x: &[f32], g: &[f32], b: Option<&[f32]>, eps: f32, cols: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for row in x.chunks(cols) {
        let n = cols as f64;
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let rstd = 1.0 / (var + eps as f64).sqrt();
        for j in 0..cols {
            out.push((row[j] as f64 - mean) * rstd * g[j] as f64 + b.map_or(0.0, |b| b[j] as f64));
        }
    }
    out
}

pub const ROW_SHAPES: [(usize, usize); 8] = [
    (1, 1),
    (3, 5),
    (4, 16),
    (2, 17),
    (64, 64),
    (7, 128),
    (5, 1000),
    (300, 33),
];

/// Softmax and layer norm on every row shape, 1 and 2 threads, scaled inputs.
pub fn check_rows(rng: &mut Rng) {
    for &(rows, cols) in &ROW_SHAPES {
        let x: Vec<f32> = rng.vec(rows * cols).iter().map(|v| v * 12.0).collect();
        let g = rng.vec(cols);
        let b = rng.vec(cols);
        for threads in [1, 2] {
            let mut y = vec![f32::NAN; rows * cols];
            softmax_rows_f32(&x, &mut y, rows, cols, threads).unwrap();
            let want = softmax_ref(&x, cols);
            let sc: Vec<f64> = want.iter().map(|v| v * 10.0).collect();
            assert_close(&format!("softmax {rows}x{cols}"), &y, &want, &sc);
            for beta in [None, Some(&b[..])] {
                layer_norm_rows_f32(&x, &g, beta, 1e-5, &mut y, rows, cols, threads).unwrap();
                let want = layer_norm_ref(&x, &g, beta, 1e-5, cols);
                let sc = vec![10.0; want.len()];
                assert_close(&format!("layer_norm {rows}x{cols}"), &y, &want, &sc);
            }
        }
    }
}
