//! Every depthwise kernel family (`DwKernel`: masked, staged rows, staged
//! grid, auto) against an f64 reference, over kernel sizes 1..7 (square and
//! not), strides 1..3, dilations 1..2, asymmetric and oversized padding,
//! planes from 1×1 to 60 wide, every epilogue, at 1 and 2 threads; and the
//! banded entry point the fused depthwise→pointwise pair uses.

mod kernels_util;

use kernels_util::*;
use kiln_codegen::cpu::kernels::*;

fn cases() -> Vec<Conv2dDesc> {
    let mut v = Vec::new();
    for &(k, s, d, pads, h, w) in &[
        (5, 1, 1, [2, 2, 2, 2], 7, 7),
        (5, 1, 1, [2, 2, 2, 2], 14, 14),
        (5, 2, 1, [2, 2, 2, 2], 14, 14),
        (5, 2, 1, [1, 1, 2, 2], 28, 28),
        (5, 2, 1, [2, 2, 2, 2], 15, 17),
        (7, 1, 1, [3, 3, 3, 3], 9, 23),
        (7, 2, 1, [3, 3, 3, 3], 20, 20),
        (3, 1, 1, [1, 1, 1, 1], 7, 7),
        (3, 2, 1, [0, 0, 1, 1], 14, 14),
        (3, 1, 2, [2, 2, 2, 2], 10, 12),
        (3, 3, 1, [1, 1, 1, 1], 11, 13),
        (5, 3, 2, [3, 1, 0, 4], 19, 25),
        (1, 1, 1, [0, 0, 0, 0], 5, 9),
        (2, 1, 1, [0, 1, 1, 0], 6, 6),
        (5, 1, 1, [4, 4, 4, 4], 1, 1),
        (3, 1, 1, [2, 2, 2, 2], 2, 3),
        (5, 1, 1, [2, 2, 2, 2], 3, 60),
        (4, 2, 1, [1, 2, 2, 1], 33, 31),
    ] {
        v.push(conv(1, 5, h, w, 5, (k, k), (s, s), pads, (d, d), 5));
    }
    // Non-square kernels, mixed strides and dilations, batch 2.
    v.push(conv(
        2,
        3,
        12,
        40,
        3,
        (5, 3),
        (1, 2),
        [2, 0, 1, 3],
        (2, 3),
        3,
    ));
    v.push(conv(
        1,
        4,
        20,
        9,
        4,
        (7, 1),
        (2, 1),
        [3, 0, 3, 0],
        (1, 1),
        4,
    ));
    v.push(conv(
        1,
        4,
        9,
        20,
        4,
        (1, 7),
        (1, 3),
        [0, 3, 0, 3],
        (1, 1),
        4,
    ));
    v.push(conv(
        2,
        6,
        50,
        45,
        6,
        (5, 5),
        (1, 1),
        [2, 2, 2, 2],
        (1, 1),
        6,
    ));
    v
}

fn knobs(depthwise: DwKernel) -> ConvKnobs {
    ConvKnobs {
        variant: ConvVariant::Depthwise,
        depthwise,
        ..ConvKnobs::default()
    }
}

#[test]
fn every_depthwise_kernel_matches_reference() {
    let mut rng = Rng::new(41);
    for d in cases() {
        let x = rng.vec(d.batch * d.c_in * d.h * d.w);
        let w = rng.vec(d.c_out * d.kh * d.kw);
        let bias = rng.vec(d.c_out);
        let out_len = d.batch * d.c_out * d.out_h() * d.out_w();
        let res = rng.vec(out_len);
        for (ei, act) in ACTS.iter().enumerate() {
            let b = (ei % 2 == 1).then_some(&bias[..]);
            let r = (ei >= 2).then_some(&res[..]);
            let (want, sc) = conv_ref(&d, &x, &w, b, r, *act);
            for kernel in DwKernel::ALL {
                let cv = Conv2d::with_knobs(d, &w, b, *act, knobs(kernel)).unwrap();
                for threads in [1, 2] {
                    let mut y = vec![f32::NAN; out_len];
                    cv.run(&x, r, &mut y, &mut [], threads).unwrap();
                    let what = format!("{d:?} {kernel:?} {act:?} t{threads}");
                    assert_close(&what, &y, &want, &sc);
                }
            }
        }
    }
}

/// NaN and infinity in the input reach exactly the outputs whose windows hold them.
#[test]
fn staged_kernels_propagate_non_finite_inputs_locally() {
    let d = conv(1, 2, 9, 9, 2, (5, 5), (1, 1), [2, 2, 2, 2], (1, 1), 2);
    let mut x = vec![1.0f32; 2 * 81];
    x[4 * 9 + 4] = f32::NAN;
    let w = vec![1.0f32; 2 * 25];
    for kernel in DwKernel::ALL {
        let cv = Conv2d::with_knobs(d, &w, None, Activation::None, knobs(kernel)).unwrap();
        let mut y = vec![0.0f32; 2 * 81];
        cv.run(&x, None, &mut y, &mut [], 1).unwrap();
        for oy in 0..9usize {
            for ox in 0..9usize {
                let near = oy.abs_diff(4) <= 2 && ox.abs_diff(4) <= 2;
                assert_eq!(y[oy * 9 + ox].is_nan(), near, "{kernel:?} ({oy},{ox})");
                assert!(y[81 + oy * 9 + ox].is_finite(), "{kernel:?} channel 1");
            }
        }
    }
}
