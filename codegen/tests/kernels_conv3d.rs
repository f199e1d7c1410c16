//! `Conv3d` against the reference interpreter's `Conv` on random non-zero
//! inputs: groups, strides, dilations, asymmetric pads, batch 2, every
//! epilogue, 1/2/3 threads, on the AVX-512, AVX2 and portable GEMM paths;
//! and its argument checks.

mod kernels_util;

use kernels_util::{act64, Rng, ACTS};
use kiln_codegen::cpu::kernels::*;
use kiln_codegen::CodegenError;
use kiln_ir::{registry, Attr, Attrs, Tensor};

fn desc(
    x: [usize; 5],
    w: [usize; 5],
    s: [usize; 3],
    dil: [usize; 3],
    pads: [usize; 6],
) -> Conv3dDesc {
    Conv3dDesc {
        batch: x[0],
        c_in: x[1],
        c_out: w[0],
        groups: x[1] / w[1],
        input: [x[2], x[3], x[4]],
        kernel: [w[2], w[3], w[4]],
        strides: s,
        dilations: dil,
        pad_begin: [pads[0], pads[1], pads[2]],
        pad_end: [pads[3], pads[4], pads[5]],
    }
}

fn cases() -> Vec<Conv3dDesc> {
    vec![
        desc([1, 3, 5, 6, 7], [4, 3, 3, 3, 3], [1; 3], [1; 3], [1; 6]),
        desc(
            [2, 4, 6, 5, 9],
            [6, 2, 2, 3, 2],
            [2, 1, 2],
            [1, 2, 1],
            [0, 2, 1, 1, 0, 0],
        ),
        desc(
            [1, 2, 3, 20, 30],
            [3, 2, 1, 3, 3],
            [1; 3],
            [1; 3],
            [0, 1, 1, 0, 1, 1],
        ),
        desc(
            [1, 4, 4, 4, 4],
            [4, 1, 3, 3, 3],
            [1; 3],
            [2, 1, 1],
            [2, 1, 1, 2, 1, 1],
        ), // depthwise
        desc(
            [1, 5, 2, 3, 300],
            [7, 5, 1, 1, 3],
            [1, 1, 3],
            [1; 3],
            [0, 0, 1, 0, 0, 1],
        ), // wide rows
        desc([2, 6, 3, 3, 3], [5, 6, 1, 1, 1], [1; 3], [1; 3], [0; 6]), // 1x1x1
    ]
}

fn ints(v: &[usize]) -> Attr {
    Attr::Ints(v.iter().map(|&x| x as i64).collect())
}

fn check(rng: &mut Rng, d: Conv3dDesc) {
    let xs = vec![d.batch, d.c_in, d.input[0], d.input[1], d.input[2]];
    let mut ws = vec![d.c_out, d.c_in / d.groups];
    ws.extend(d.kernel);
    let x = rng.vec(xs.iter().product());
    let w = rng.vec(ws.iter().product());
    let bias = rng.vec(d.c_out);
    let mut pads = d.pad_begin.to_vec();
    pads.extend(d.pad_end);
    let attrs = Attrs::new()
        .with("strides", ints(&d.strides))
        .with("dilations", ints(&d.dilations))
        .with("pads", ints(&pads))
        .with("group", Attr::Int(d.groups as i64));
    let tx = Tensor::from_vec(xs, x.clone()).unwrap();
    let tw = Tensor::from_vec(ws, w.clone()).unwrap();
    let tb = Tensor::from_vec(vec![d.c_out], bias.clone()).unwrap();
    let op = registry().get("Conv").unwrap();
    let plain = op.eval(&attrs, &[&tx, &tw], 1).unwrap().remove(0);
    let biased = op.eval(&attrs, &[&tx, &tw, &tb], 1).unwrap().remove(0);
    let res = rng.vec(plain.len());
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
        let k = Conv3d::new(d, &w, b, *act).unwrap();
        for t in 1..=3 {
            let mut y = vec![f32::NAN; want.len()];
            let mut scratch = vec![f32::NAN; k.scratch_len()];
            k.run(&x, r, &mut y, &mut scratch, t).unwrap();
            for (i, (&g, &e)) in y.iter().zip(&want).enumerate() {
                assert!(
                    (g as f64 - e).abs() <= 1e-5 * scale,
                    "{d:?} {act:?} t{t}: element {i}: got {g} want {e}"
                );
            }
        }
    }
}

#[test]
fn conv3d_matches_the_interpreter_on_every_path() {
    let mut rng = Rng::new(5);
    for mode in ["native", "avx2", "portable"] {
        force_avx2(mode == "avx2");
        force_portable(mode == "portable");
        for d in cases() {
            check(&mut rng, d);
        }
    }
    force_avx2(false);
    force_portable(false);
}

#[test]
fn conv3d_rejects_bad_arguments() {
    let ok = cases()[0];
    assert!(ok.validate().is_ok());
    let bad = [
        Conv3dDesc { groups: 2, ..ok },
        Conv3dDesc { c_in: 0, ..ok },
        Conv3dDesc {
            strides: [0, 1, 1],
            ..ok
        },
        Conv3dDesc {
            kernel: [9, 3, 3],
            ..ok
        },
        Conv3dDesc {
            input: [5, usize::MAX / 2, usize::MAX / 2],
            ..ok
        },
    ];
    for d in bad {
        assert!(d.validate().is_err(), "{d:?}");
        assert!(Conv3d::new(d, &[1.0; 1000], None, Activation::None).is_err());
    }
    let w = vec![0.5; 4 * 3 * 27];
    assert!(Conv3d::new(ok, &w[1..], None, Activation::None).is_err());
    assert!(matches!(
        Conv3d::new(ok, &w, Some(&[0.0; 3]), Activation::None),
        Err(CodegenError::InvalidArgument { .. })
    ));
    let k = Conv3d::new(ok, &w, None, Activation::None).unwrap();
    let (x, mut y) = (vec![1.0; 3 * 210], vec![0.0; 4 * 210]);
    let mut s = vec![0.0; k.scratch_len()];
    assert!(k.run(&x, None, &mut y, &mut s, 2).is_ok());
    assert!(k.run(&x[1..], None, &mut y, &mut s, 1).is_err());
    assert!(k.run(&x, None, &mut y[1..], &mut s, 1).is_err());
    assert!(k.run(&x, Some(&[0.0; 3]), &mut y, &mut s, 1).is_err());
    assert!(k.run(&x, None, &mut y, &mut s[1..], 1).is_err());
    assert_eq!(
        k.run(&x, None, &mut y, &mut s, 0),
        Err(CodegenError::ZeroThreads)
    );
}
