//! `ConvTranspose` (1-, 2-, 3-D) against the reference interpreter's op on
//! random non-zero inputs: groups, strides, dilations, pads, output_padding,
//! output_shape, auto_pad, batch 2, every epilogue, 1/2/3 threads, on the
//! AVX-512, AVX2 and portable GEMM paths; and its argument checks.

mod kernels_util;

use kernels_util::{act64, Rng, ACTS};
use kiln_codegen::cpu::kernels::*;
use kiln_codegen::CodegenError;
use kiln_ir::ops::conv::transpose_window;
use kiln_ir::{registry, Attr, Attrs, Tensor};

/// One case: input shape, weight shape, attributes.
struct Case {
    x: Vec<usize>,
    w: Vec<usize>,
    attrs: Attrs,
}

fn case(x: &[usize], w: &[usize], attrs: &[(&str, Attr)]) -> Case {
    let mut a = Attrs::new();
    for (k, v) in attrs {
        a = a.with(k, v.clone());
    }
    Case {
        x: x.to_vec(),
        w: w.to_vec(),
        attrs: a,
    }
}

fn ints(v: &[i64]) -> Attr {
    Attr::Ints(v.to_vec())
}

fn cases() -> Vec<Case> {
    vec![
        // 1-D: stride, pads, output_padding; grouped with dilation.
        case(
            &[2, 4, 7],
            &[4, 3, 3],
            &[
                ("strides", ints(&[2])),
                ("pads", ints(&[1, 0])),
                ("output_padding", ints(&[1])),
            ],
        ),
        case(
            &[1, 6, 9],
            &[6, 2, 4],
            &[("group", Attr::Int(3)), ("dilations", ints(&[2]))],
        ),
        case(&[1, 5, 300], &[5, 3, 5], &[("strides", ints(&[3]))]), // several pixel blocks
        // 2-D: UNet-style k2 s2; asymmetric everything; output_shape; SAME_UPPER.
        case(&[1, 8, 5, 6], &[8, 4, 2, 2], &[("strides", ints(&[2, 2]))]),
        case(
            &[2, 6, 5, 7],
            &[6, 3, 3, 3],
            &[
                ("group", Attr::Int(2)),
                ("strides", ints(&[2, 1])),
                ("pads", ints(&[1, 0, 0, 2])),
                ("dilations", ints(&[1, 2])),
                ("output_padding", ints(&[1, 0])),
            ],
        ),
        case(
            &[1, 3, 4, 3],
            &[3, 2, 3, 3],
            &[
                ("strides", ints(&[3, 2])),
                ("output_shape", ints(&[12, 10])),
            ],
        ),
        case(
            &[1, 3, 5, 4],
            &[3, 5, 3, 3],
            &[
                ("strides", ints(&[2, 2])),
                ("auto_pad", Attr::Str("SAME_UPPER".into())),
            ],
        ),
        case(
            &[1, 16, 20, 30],
            &[16, 8, 3, 3],
            &[
                ("strides", ints(&[2, 2])),
                ("pads", ints(&[1, 1, 1, 1])),
                ("output_padding", ints(&[1, 1])),
            ],
        ),
        case(&[2, 5, 6, 7], &[5, 1, 3, 3], &[("group", Attr::Int(5))]), // depthwise
        case(&[1, 7, 4, 5], &[7, 13, 1, 1], &[]),                       // 1x1
        case(
            &[1, 2, 3, 3],
            &[2, 3, 4, 4],
            &[("pads", ints(&[2, 2, 2, 2]))],
        ), // pads eat taps
        // 3-D: strides and pads per dimension; depthwise.
        case(
            &[2, 4, 3, 4, 5],
            &[4, 3, 2, 3, 2],
            &[
                ("strides", ints(&[1, 2, 2])),
                ("pads", ints(&[0, 1, 0, 1, 0, 1])),
                ("output_padding", ints(&[0, 1, 1])),
            ],
        ),
        case(
            &[1, 4, 3, 3, 3],
            &[4, 1, 3, 3, 3],
            &[("group", Attr::Int(4)), ("dilations", ints(&[2, 1, 1]))],
        ),
    ]
}

/// The descriptor of a case, from the reference op's geometry.
fn desc(c: &Case) -> ConvTransposeDesc {
    let win = transpose_window(&c.attrs, &c.x[2..], &c.w[2..]).unwrap();
    let three = |v: &[usize], fill: usize| {
        let mut o = [fill; 3];
        o[3 - v.len()..].copy_from_slice(v);
        o
    };
    let groups = c.attrs.int_or("group", 1).unwrap() as usize;
    ConvTransposeDesc {
        batch: c.x[0],
        c_in: c.x[1],
        c_out: c.w[1] * groups,
        groups,
        input: three(&c.x[2..], 1),
        kernel: three(&c.w[2..], 1),
        strides: three(&win.strides, 1),
        dilations: three(&win.dilations, 1),
        pad_begin: three(&win.begin, 0),
        out: three(&win.out, 1),
    }
}

fn check(rng: &mut Rng, c: &Case, threads: &[usize], knobs: ConvTransposeKnobs) {
    let d = desc(c);
    let x = rng.vec(c.x.iter().product());
    let w = rng.vec(c.w.iter().product());
    let bias = rng.vec(d.c_out);
    let tx = Tensor::from_vec(c.x.clone(), x.clone()).unwrap();
    let tw = Tensor::from_vec(c.w.clone(), w.clone()).unwrap();
    let tb = Tensor::from_vec(vec![d.c_out], bias.clone()).unwrap();
    let op = registry().get("ConvTranspose").unwrap();
    let plain = op.eval(&c.attrs, &[&tx, &tw], 1).unwrap().remove(0);
    let biased = op.eval(&c.attrs, &[&tx, &tw, &tb], 1).unwrap().remove(0);
    let out_len = plain.len();
    let res = rng.vec(out_len);
    for (ei, act) in ACTS.iter().enumerate() {
        let b = (ei % 2 == 1).then_some(&bias[..]);
        let r = (ei >= 2).then_some(&res[..]);
        let base = if b.is_some() { &biased } else { &plain }.to_f64_vec();
        let want: Vec<f64> = base
            .iter()
            .enumerate()
            .map(|(i, &v)| act64(*act, v + r.map_or(0.0, |r| r[i] as f64)))
            .collect();
        let scale = want.iter().fold(1f64, |m, v| m.max(v.abs()));
        let k = ConvTranspose::new(d, &w, b, *act, knobs).unwrap();
        for &t in threads {
            let mut y = vec![f32::NAN; out_len];
            let mut scratch = vec![f32::NAN; k.scratch_len()];
            k.run(&x, r, &mut y, &mut scratch, t).unwrap();
            for (i, (&g, &e)) in y.iter().zip(&want).enumerate() {
                assert!(
                    (g as f64 - e).abs() <= 1e-5 * scale,
                    "{d:?} {act:?} bias {} res {} t{t}: element {i}: got {g} want {e}",
                    b.is_some(),
                    r.is_some()
                );
            }
        }
    }
}

#[test]
fn conv_transpose_matches_the_interpreter_on_every_path() {
    let mut rng = Rng::new(11);
    let small = ConvTransposeKnobs { block_pixels: 7 };
    for mode in ["native", "avx2", "portable"] {
        force_avx2(mode == "avx2");
        force_portable(mode == "portable");
        for c in cases() {
            check(&mut rng, &c, &[1, 2, 3], ConvTransposeKnobs::default());
            check(&mut rng, &c, &[2], small);
        }
    }
    force_avx2(false);
    force_portable(false);
}

#[test]
fn conv_transpose_rejects_bad_arguments() {
    let ok = desc(&cases()[3]);
    assert!(ok.validate().is_ok());
    let bad = [
        ConvTransposeDesc { groups: 3, ..ok },
        ConvTransposeDesc { groups: 0, ..ok },
        ConvTransposeDesc {
            strides: [1, 0, 1],
            ..ok
        },
        ConvTransposeDesc {
            kernel: [1, 0, 2],
            ..ok
        },
        ConvTransposeDesc {
            out: [1, usize::MAX / 2, usize::MAX / 2],
            ..ok
        },
    ];
    let knobs = ConvTransposeKnobs::default();
    for d in bad {
        assert!(d.validate().is_err(), "{d:?}");
        assert!(ConvTranspose::new(d, &[1.0; 1000], None, Activation::None, knobs).is_err());
    }
    let w = vec![0.5; 8 * 4 * 4];
    assert!(ConvTranspose::new(ok, &w[1..], None, Activation::None, knobs).is_err());
    assert!(matches!(
        ConvTranspose::new(ok, &w, Some(&[0.0; 3]), Activation::None, knobs),
        Err(CodegenError::InvalidArgument { .. })
    ));
    let zero = ConvTransposeKnobs { block_pixels: 0 };
    assert!(ConvTranspose::new(ok, &w, None, Activation::None, zero).is_err());
    let k = ConvTranspose::new(ok, &w, None, Activation::None, knobs).unwrap();
    let (x, mut y) = (vec![1.0; 8 * 30], vec![0.0; 4 * 10 * 12]);
    let mut s = vec![0.0; k.scratch_len()];
    assert!(k.run(&x, None, &mut y, &mut s, 1).is_ok());
    assert!(k.run(&x[1..], None, &mut y, &mut s, 1).is_err());
    assert!(k.run(&x, None, &mut y[1..], &mut s, 1).is_err());
    assert!(k.run(&x, Some(&[0.0; 3]), &mut y, &mut s, 1).is_err());
    assert!(k.run(&x, None, &mut y, &mut s[1..], 1).is_err());
    assert_eq!(
        k.run(&x, None, &mut y, &mut s, 0),
        Err(CodegenError::ZeroThreads)
    );
}
