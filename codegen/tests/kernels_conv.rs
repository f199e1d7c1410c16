//! `Conv2d` (1x1, depthwise, im2col paths) against an f64 reference, and its checks.

mod kernels_util;

use kernels_util::*;
use kiln_codegen::cpu::kernels::*;
use kiln_codegen::CodegenError;

#[test]
fn conv_matches_reference() {
    let mut rng = Rng::new(3);
    // The defaults, and 12×32 tiles of weight panels instead of 8×48 ones.
    let tall = ConvKnobs {
        wide_tiles: false,
        wide_pointwise: false,
        ..ConvKnobs::default()
    };
    for d in conv_cases() {
        check_conv_with(&mut rng, d, &[ConvKnobs::default(), tall]);
    }
}

/// Small planes with enough work for several tasks: one shared column
/// matrix; stride 1 without a residual takes the padded grid.
#[test]
fn small_plane_convolutions_shared_by_threads() {
    let mut rng = Rng::new(11);
    for d in [
        conv(1, 64, 14, 14, 32, (3, 3), (1, 1), [1, 1, 1, 1], (1, 1), 1),
        conv(2, 48, 7, 9, 40, (3, 3), (1, 1), [0, 1, 2, 1], (2, 1), 2),
        conv(1, 96, 7, 7, 24, (1, 5), (1, 1), [0, 2, 0, 2], (1, 1), 1),
        conv(1, 64, 12, 10, 36, (3, 3), (2, 1), [1, 1, 1, 1], (1, 1), 1),
        conv(1, 128, 7, 7, 32, (3, 3), (1, 1), [0, 0, 0, 0], (1, 1), 1),
    ] {
        check_conv(&mut rng, d);
    }
}

#[test]
fn conv_rejects_bad_descriptors() {
    let ok = conv(1, 4, 8, 8, 6, (3, 3), (1, 1), [1, 1, 1, 1], (1, 1), 2);
    assert!(ok.validate().is_ok());
    let bad = [
        Conv2dDesc { groups: 3, ..ok },
        Conv2dDesc { groups: 0, ..ok },
        Conv2dDesc { stride_h: 0, ..ok },
        Conv2dDesc {
            dilation_w: 0,
            ..ok
        },
        Conv2dDesc { kh: 0, ..ok },
        Conv2dDesc { c_in: 0, ..ok },
        Conv2dDesc { kw: 11, ..ok },
        Conv2dDesc {
            kh: 4,
            dilation_h: 4,
            ..ok
        },
        Conv2dDesc {
            h: usize::MAX / 2,
            w: usize::MAX / 2,
            ..ok
        },
    ];
    for d in bad {
        assert!(d.validate().is_err(), "{d:?}");
        assert!(
            Conv2d::new(d, &[1.0; 1000], None, Activation::None).is_err(),
            "{d:?}"
        );
    }
}

#[test]
fn conv_rejects_short_slices() {
    let d = conv(1, 4, 8, 8, 6, (3, 3), (1, 1), [1, 1, 1, 1], (1, 1), 2);
    let w = vec![0.5; 6 * 2 * 9];
    assert!(Conv2d::new(d, &w[..w.len() - 1], None, Activation::None).is_err());
    assert!(matches!(
        Conv2d::new(d, &w, Some(&[0.0; 5]), Activation::Relu),
        Err(CodegenError::InvalidArgument { .. })
    ));
    let cv = Conv2d::new(d, &w, Some(&[0.0; 6]), Activation::Relu).unwrap();
    let (x, mut y, mut s) = (vec![1.0; 256], vec![0.0; 384], vec![0.0; cv.scratch_len()]);
    assert!(cv.run(&x, None, &mut y, &mut s, 1).is_ok());
    assert!(cv.run(&x[..255], None, &mut y, &mut s, 1).is_err());
    assert!(cv.run(&x, None, &mut y[..383], &mut s, 1).is_err());
    assert!(cv.run(&x, Some(&[0.0; 383]), &mut y, &mut s, 1).is_err());
    assert!(cv.run(&x, None, &mut y, &mut s[..1], 1).is_err());
    assert_eq!(
        cv.run(&x, None, &mut y, &mut s, 0),
        Err(CodegenError::ZeroThreads)
    );
}

#[test]
fn prepacked_kernels_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Conv2d>();
    assert_send_sync::<PackedMatmul>();
}

/// Im2col convolutions with and without the channel-vectorized GEMM
/// (`ConvKnobs::channel_gemm`), against the f64 reference: small planes
/// (its default), planes it does not take by default (pixel blocks
/// balanced over 2 tasks), and with or without the implicit GEMM on the
/// padded grid (`ConvKnobs::implicit_gemm`), on 12×32 or 8×48 micro-tiles
/// (`ConvKnobs::wide_tiles`); batch 2, groups, dilation, strides, channel
/// counts off the 16/48 blocks, every epilogue.
#[test]
fn im2col_channel_gemm_matches_reference() {
    let mut rng = Rng::new(77);
    let p1 = [1, 1, 1, 1];
    for d in [
        conv(1, 40, 7, 7, 70, (3, 3), (1, 1), p1, (1, 1), 1),
        conv(2, 17, 9, 9, 33, (3, 3), (2, 2), p1, (1, 1), 1),
        conv(1, 24, 14, 14, 50, (5, 5), (1, 1), [2, 2, 2, 2], (1, 1), 1),
        conv(1, 9, 10, 8, 100, (3, 1), (1, 1), [1, 0, 1, 0], (1, 1), 1),
        // 3 pixel blocks re-cut into 4 for 2 tasks (and a 5-row plane's 2).
        conv(1, 24, 28, 28, 40, (3, 3), (1, 1), p1, (1, 1), 1),
        conv(1, 20, 5, 120, 36, (3, 3), (1, 1), p1, (1, 1), 1),
        // Implicit GEMM: groups, dilation, asymmetric padding, no padding.
        conv(2, 12, 17, 19, 18, (3, 3), (1, 1), [2, 1, 0, 2], (2, 1), 3),
        conv(1, 16, 20, 20, 24, (5, 3), (1, 1), [0; 4], (1, 1), 1),
        // 16 output channels; one per group (a GEMV).
        conv(1, 12, 30, 31, 16, (3, 3), (1, 1), p1, (1, 1), 1),
        conv(1, 6, 9, 11, 6, (3, 3), (1, 1), p1, (1, 1), 6),
    ] {
        let gemms = [Some(true), Some(false), None].into_iter();
        let forms = gemms.flat_map(|c| [(c, None), (c, Some(false))]);
        let knobs: Vec<ConvKnobs> = forms
            .flat_map(|(channel_gemm, implicit_gemm)| {
                [true, false].map(|wide_tiles| ConvKnobs {
                    variant: ConvVariant::Im2col,
                    channel_gemm,
                    implicit_gemm,
                    wide_tiles,
                    ..ConvKnobs::default()
                })
            })
            .collect();
        check_conv_with(&mut rng, d, &knobs);
    }
}

/// Every variant that can run a stem-like convolution (few input channels,
/// large kernels, stride 2; the direct kernel takes up to 32 staged rows
/// whatever the kernel width) matches the f64 reference.
#[test]
fn every_variant_of_stem_convolutions_matches_reference() {
    let mut rng = Rng::new(91);
    for d in [
        conv(1, 3, 40, 38, 20, (7, 7), (2, 2), [3, 3, 3, 3], (1, 1), 1),
        conv(2, 4, 21, 35, 9, (5, 5), (1, 1), [2, 1, 2, 3], (1, 1), 1),
        conv(1, 8, 12, 40, 12, (3, 3), (1, 2), [1, 1, 1, 1], (1, 1), 1),
        conv(1, 1, 30, 70, 8, (11, 11), (2, 2), [5, 5, 5, 5], (1, 1), 1),
    ] {
        let variants = Conv2d::variants(&d);
        assert!(
            variants.contains(&ConvVariant::Direct),
            "{d:?}: {variants:?}"
        );
        let knobs: Vec<ConvKnobs> = variants
            .iter()
            .map(|&variant| ConvKnobs {
                variant,
                ..ConvKnobs::default()
            })
            .collect();
        check_conv_with(&mut rng, d, &knobs);
    }
}
