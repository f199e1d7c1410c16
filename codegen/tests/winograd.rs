//! Winograd F(4×4, 3×3) convolutions (`ConvVariant::Winograd`) against an f64
//! direct convolution on AVX-512 and portable paths at 1-3 threads; every
//! variant of `Conv2d::variants` against the default; refused variants.

mod kernels_util;

use kernels_util::*;
use kiln_codegen::cpu::kernels::*;

fn knobs(variant: ConvVariant) -> ConvKnobs {
    ConvKnobs {
        variant,
        ..ConvKnobs::default()
    }
}

/// Winograd's tolerance: `|y − ref| ≤ WINOGRAD_TOL · (Σ|terms| + 1)` per
/// element (direct im2col passes with 1e-5; see `measured_error_of_winograd`).
const WINOGRAD_TOL: f64 = 5e-5;

fn close(what: &str, got: &[f32], want: &[f64], scale: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for i in 0..got.len() {
        let err = (got[i] as f64 - want[i]).abs();
        let bound = tol * (scale[i] + 1.0);
        assert!(
            err <= bound,
            "{what}: element {i}: got {} want {} (err {err:e}, bound {bound:e})",
            got[i],
            want[i]
        );
    }
}

/// 3×3 stride-1 shapes: channel counts that are not multiples of 16, planes
/// 1×1..30×30 with odd sizes (tile tails), pads 0/1/2 asymmetric, batch 2,
/// and a plane of several tile blocks.
fn cases() -> Vec<Conv2dDesc> {
    let p1 = [1, 1, 1, 1];
    vec![
        conv(1, 5, 7, 7, 3, (3, 3), (1, 1), p1, (1, 1), 1),
        conv(2, 17, 9, 11, 33, (3, 3), (1, 1), p1, (1, 1), 1),
        conv(1, 1, 1, 1, 1, (3, 3), (1, 1), p1, (1, 1), 1),
        conv(1, 3, 3, 3, 2, (3, 3), (1, 1), [0; 4], (1, 1), 1),
        conv(1, 20, 13, 6, 18, (3, 3), (1, 1), [2, 0, 1, 2], (1, 1), 1),
        conv(2, 16, 5, 30, 16, (3, 3), (1, 1), [0, 1, 2, 0], (1, 1), 1),
        conv(1, 40, 30, 30, 24, (3, 3), (1, 1), p1, (1, 1), 1),
        conv(1, 128, 7, 7, 32, (3, 3), (1, 1), p1, (1, 1), 1),
        conv(1, 33, 14, 14, 47, (3, 3), (1, 1), [2, 2, 2, 2], (1, 1), 1),
        conv(1, 2, 2, 9, 5, (3, 3), (1, 1), [1, 0, 1, 0], (1, 1), 1),
    ]
}

fn run(cv: &Conv2d, x: &[f32], r: Option<&[f32]>, out_len: usize, threads: usize) -> Vec<f32> {
    let mut y = vec![f32::NAN; out_len];
    let mut scratch = vec![f32::NAN; cv.scratch_len()];
    cv.run(x, r, &mut y, &mut scratch, threads).unwrap();
    y
}

fn check(rng: &mut Rng, d: Conv2dDesc, block_bytes: usize) {
    let x = rng.vec(d.batch * d.c_in * d.h * d.w);
    let w = rng.vec(d.c_out * d.c_in * 9);
    let bias = rng.vec(d.c_out);
    let out_len = d.batch * d.c_out * d.out_h() * d.out_w();
    let res = rng.vec(out_len);
    for (ei, act) in ACTS.iter().enumerate() {
        let b = (ei % 2 == 1).then_some(&bias[..]);
        let r = (ei >= 2).then_some(&res[..]);
        let k = ConvKnobs {
            winograd_block_bytes: block_bytes,
            ..knobs(ConvVariant::Winograd)
        };
        let cv = Conv2d::with_knobs(d, &w, b, *act, k).unwrap();
        let (want, sc) = conv_ref(&d, &x, &w, b, r, *act);
        for threads in 1..=3 {
            let y = run(&cv, &x, r, out_len, threads);
            let what = format!(
                "{d:?} {act:?} bias {} res {} t{threads}",
                b.is_some(),
                r.is_some()
            );
            close(&what, &y, &want, &sc, WINOGRAD_TOL);
        }
    }
}

#[test]
fn winograd_matches_f64_reference_on_every_path() {
    let mut rng = Rng::new(21);
    for portable in [false, true] {
        force_portable(portable);
        for d in cases() {
            check(&mut rng, d, ConvKnobs::default().winograd_block_bytes);
        }
        // Tiny blocks: many blocks of tiles, the last one partial.
        check(&mut rng, cases()[1], 40_000);
        check(&mut rng, cases()[6], 100_000);
    }
    force_portable(false);
}

/// Max error of Winograd (and im2col for comparison) against the f64 direct
/// convolution over realistic ranges: weights with std 1/√fan_in, inputs
/// U(-1, 1) or post-ReLU (U(0, 1) and zeros). Bound asserted: the relative
/// error `max|y − ref| / max|ref|` ≤ 1e-4 and the per-element
/// [`WINOGRAD_TOL`]; measured on this path about 1e-6-1e-5 (printed with --nocapture).
#[test]
fn measured_error_of_winograd() {
    let mut rng = Rng::new(8);
    for &(c, k, hw) in &[(8, 8, 14), (64, 32, 28), (128, 32, 7), (256, 64, 14)] {
        let d = conv(1, c, hw, hw, k, (3, 3), (1, 1), [1, 1, 1, 1], (1, 1), 1);
        let std = 1.0 / ((c * 9) as f32).sqrt() * 3f32.sqrt();
        let w: Vec<f32> = rng.vec(k * c * 9).iter().map(|v| v * std).collect();
        for relu in [false, true] {
            let x: Vec<f32> = rng
                .vec(c * hw * hw)
                .iter()
                .map(|&v| if relu { v.max(0.0) } else { v })
                .collect();
            let (want, sc) = conv_ref(&d, &x, &w, None, None, Activation::None);
            let max_ref = want.iter().fold(0f64, |m, v| m.max(v.abs()));
            for v in [ConvVariant::Winograd, ConvVariant::Im2col] {
                let cv = Conv2d::with_knobs(d, &w, None, Activation::None, knobs(v)).unwrap();
                let y = run(&cv, &x, None, want.len(), 2);
                let err = y
                    .iter()
                    .zip(&want)
                    .fold(0f64, |m, (&g, &e)| m.max((g as f64 - e).abs()));
                println!(
                    "{v:?} c{c} k{k} {hw}x{hw} relu={relu}: max abs err {err:.2e}, rel to max|y| {:.2e}",
                    err / max_ref
                );
                assert!(err / max_ref <= 1e-4, "{v:?} {d:?}: {err:e} vs {max_ref}");
                close(&format!("{v:?} {d:?}"), &y, &want, &sc, WINOGRAD_TOL);
            }
        }
    }
}

/// Every variant `variants()` lists computes what the default does.
#[test]
fn every_listed_variant_agrees_with_the_default() {
    let mut rng = Rng::new(4);
    let mut seen = std::collections::HashSet::new();
    let mut descs = conv_cases();
    descs.extend(cases());
    for d in descs {
        let x = rng.vec(d.batch * d.c_in * d.h * d.w);
        let w = rng.vec(d.c_out * d.c_in / d.groups * d.kh * d.kw);
        let bias = rng.vec(d.c_out);
        let out_len = d.batch * d.c_out * d.out_h() * d.out_w();
        let act = Activation::Relu;
        let base = Conv2d::new(d, &w, Some(&bias), act).unwrap();
        let want = run(&base, &x, None, out_len, 2);
        let (_, sc) = conv_ref(&d, &x, &w, Some(&bias), None, act);
        let variants = Conv2d::variants(&d);
        assert!(variants.contains(&ConvVariant::Im2col), "{d:?}");
        assert!(!variants.contains(&ConvVariant::Auto));
        for v in variants {
            seen.insert(v);
            let cv = Conv2d::with_knobs(d, &w, Some(&bias), act, knobs(v)).unwrap();
            for threads in [1, 2] {
                let y = run(&cv, &x, None, out_len, threads);
                let want: Vec<f64> = want.iter().map(|&v| v as f64).collect();
                close(
                    &format!("{v:?} {d:?} t{threads}"),
                    &y,
                    &want,
                    &sc,
                    WINOGRAD_TOL,
                );
            }
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
}

#[test]
fn variants_that_cannot_run_a_descriptor_are_refused() {
    let p1 = [1, 1, 1, 1];
    let wino = conv(1, 8, 9, 9, 8, (3, 3), (1, 1), p1, (1, 1), 1);
    assert!(Conv2d::variants(&wino).contains(&ConvVariant::Winograd));
    let refused = [
        (
            Conv2dDesc {
                stride_w: 2,
                ..wino
            },
            ConvVariant::Winograd,
        ),
        (
            Conv2dDesc {
                kh: 5,
                pad_top: 2,
                pad_bottom: 2,
                ..wino
            },
            ConvVariant::Winograd,
        ),
        (
            Conv2dDesc {
                dilation_h: 2,
                ..wino
            },
            ConvVariant::Winograd,
        ),
        (Conv2dDesc { groups: 2, ..wino }, ConvVariant::Winograd),
        (wino, ConvVariant::Pointwise),
        (wino, ConvVariant::Depthwise),
        (wino, ConvVariant::Direct),
    ];
    for (d, v) in refused {
        assert!(!Conv2d::variants(&d).contains(&v), "{d:?} lists {v:?}");
        let w = vec![0.5f32; d.c_out * d.c_in / d.groups * d.kh * d.kw];
        let err = Conv2d::with_knobs(d, &w, None, Activation::None, knobs(v)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&format!("{v:?}")), "{msg}");
    }
    let bad = Conv2dDesc { groups: 3, ..wino };
    assert!(Conv2d::variants(&bad).is_empty());
    let knob_json = serde_json::to_string(&knobs(ConvVariant::Winograd)).unwrap();
    let back: ConvKnobs = serde_json::from_str(&knob_json).unwrap();
    assert_eq!(back, knobs(ConvVariant::Winograd));
    let partial: ConvKnobs = serde_json::from_str(r#"{"variant":"Im2col"}"#).unwrap();
    assert_eq!(partial, knobs(ConvVariant::Im2col));
}

/// The default (`Auto`) takes Winograd only where it measured faster (see
/// `conv.rs`'s `winograd_wins`), including the runtime test's shapes
/// (`tests/compiled_winograd.rs`).
#[test]
fn auto_takes_winograd_where_measured() {
    let p1 = [1, 1, 1, 1];
    let auto = |d: Conv2dDesc| {
        let w = vec![0.1; d.c_out * d.c_in / d.groups * d.kh * d.kw];
        Conv2d::new(d, &w, None, Activation::None)
            .unwrap()
            .variant()
    };
    for d in [
        conv(1, 128, 28, 28, 32, (3, 3), (1, 1), p1, (1, 1), 1),
        conv(1, 128, 7, 7, 32, (3, 3), (1, 1), p1, (1, 1), 1),
        conv(2, 64, 13, 11, 40, (3, 3), (1, 1), [1, 0, 2, 1], (1, 1), 1),
        conv(1, 80, 10, 9, 17, (3, 3), (1, 1), [0, 2, 0, 1], (1, 1), 1),
        conv(1, 128, 14, 14, 64, (3, 3), (1, 1), p1, (1, 1), 1),
    ] {
        assert_eq!(auto(d), ConvVariant::Winograd, "{d:?}");
    }
    for d in [
        conv(1, 160, 14, 14, 320, (3, 3), (1, 1), p1, (1, 1), 1),
        conv(1, 128, 28, 28, 192, (3, 3), (1, 1), p1, (1, 1), 1),
        conv(1, 64, 16, 16, 65, (3, 3), (1, 1), p1, (1, 1), 1),
        conv(1, 32, 14, 14, 64, (3, 3), (1, 1), p1, (1, 1), 1),
        conv(1, 96, 64, 64, 32, (3, 3), (1, 1), p1, (1, 1), 1),
        conv(1, 128, 28, 28, 32, (3, 3), (2, 2), p1, (1, 1), 1),
    ] {
        assert_eq!(auto(d), ConvVariant::Im2col, "{d:?}");
    }
}
