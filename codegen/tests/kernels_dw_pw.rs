//! `DepthwisePointwise` against the two convolutions run one after the other.

mod kernels_util;

use kernels_util::*;
use kiln_codegen::cpu::kernels::*;

/// (depthwise descriptor, pointwise output channels)
fn cases() -> Vec<(Conv2dDesc, usize)> {
    let p1 = [1, 1, 1, 1];
    vec![
        (conv(1, 16, 28, 28, 16, (3, 3), (1, 1), p1, (1, 1), 16), 24),
        (conv(2, 12, 30, 33, 12, (3, 3), (2, 2), p1, (1, 1), 12), 20),
        (conv(1, 40, 14, 14, 40, (3, 3), (1, 1), p1, (1, 1), 40), 13),
        (
            conv(1, 8, 113, 120, 8, (3, 3), (2, 2), [0, 0, 1, 1], (1, 1), 8),
            5,
        ),
        (
            conv(1, 6, 17, 40, 6, (5, 5), (1, 1), [2, 2, 2, 2], (1, 1), 6),
            7,
        ),
        (conv(1, 300, 7, 7, 300, (3, 3), (1, 1), p1, (1, 1), 300), 33),
        (conv(1, 64, 60, 61, 64, (3, 3), (1, 1), p1, (1, 1), 64), 16),
    ]
}

fn pointwise(d: &Conv2dDesc, c_out: usize) -> Conv2dDesc {
    conv(
        d.batch,
        d.c_out,
        d.out_h(),
        d.out_w(),
        c_out,
        (1, 1),
        (1, 1),
        [0; 4],
        (1, 1),
        1,
    )
}

#[test]
fn fused_equals_the_two_convolutions() {
    let mut rng = Rng::new(11);
    for (dd, c_out) in cases() {
        let pd = pointwise(&dd, c_out);
        let x = rng.vec(dd.batch * dd.c_in * dd.h * dd.w);
        let (dw_w, dw_b) = (rng.vec(dd.c_out * dd.kh * dd.kw), rng.vec(dd.c_out));
        let (pw_w, pw_b) = (rng.vec(c_out * pd.c_in), rng.vec(c_out));
        let out_len = pd.batch * c_out * pd.h * pd.w;
        let res = rng.vec(out_len);
        for (i, act) in ACTS.iter().enumerate() {
            let dw = Conv2d::new(
                dd,
                &dw_w,
                Some(&dw_b),
                Activation::Clip { min: 0.0, max: 6.0 },
            )
            .unwrap();
            let pw = Conv2d::new(pd, &pw_w, (i % 2 == 0).then_some(&pw_b[..]), *act).unwrap();
            let r = (i >= 2).then_some(&res[..]);
            let mut mid = vec![0f32; dd.batch * dd.c_out * pd.h * pd.w];
            let mut want = vec![0f32; out_len];
            dw.run(&x, None, &mut mid, &mut [], 1).unwrap();
            pw.run(&mid, r, &mut want, &mut [], 1).unwrap();
            let fused = DepthwisePointwise::new(dw, pw).unwrap();
            for threads in [1, 2, 3] {
                let mut got = vec![f32::NAN; out_len];
                let mut scratch = vec![f32::NAN; fused.scratch_len(threads)];
                fused.run(&x, r, &mut got, &mut scratch, threads).unwrap();
                let want64: Vec<f64> = want.iter().map(|&v| v as f64).collect();
                let scale: Vec<f64> = want.iter().map(|v| v.abs() as f64).collect();
                assert_close(
                    &format!("{dd:?} -> {c_out} {act:?} t{threads}"),
                    &got,
                    &want64,
                    &scale,
                );
            }
        }
    }
}

#[test]
fn mismatched_pairs_and_short_buffers_are_errors() {
    let mut rng = Rng::new(5);
    let dd = conv(1, 8, 10, 10, 8, (3, 3), (1, 1), [1; 4], (1, 1), 8);
    let dw = || Conv2d::new(dd, &rng_vec(8 * 9), None, Activation::None).unwrap();
    let full = conv(1, 8, 10, 10, 8, (3, 3), (1, 1), [1; 4], (1, 1), 1);
    let not_dw = Conv2d::new(full, &rng.vec(8 * 8 * 9), None, Activation::None).unwrap();
    let pw = |c_in, hw| {
        let d = conv(1, c_in, hw, hw, 4, (1, 1), (1, 1), [0; 4], (1, 1), 1);
        Conv2d::new(d, &rng_vec(4 * c_in), None, Activation::None).unwrap()
    };
    assert!(DepthwisePointwise::new(not_dw.clone(), pw(8, 10)).is_err());
    assert!(DepthwisePointwise::new(dw(), pw(7, 10)).is_err());
    assert!(DepthwisePointwise::new(dw(), pw(8, 9)).is_err());
    assert!(DepthwisePointwise::new(dw(), dw()).is_err());
    let f = DepthwisePointwise::new(dw(), pw(8, 10)).unwrap();
    let (x, mut y) = (vec![1f32; 800], vec![0f32; 400]);
    let mut s = vec![0f32; f.scratch_len(2)];
    assert!(f.run(&x[..799], None, &mut y, &mut s, 2).is_err());
    assert!(f.run(&x, None, &mut y[..399], &mut s, 2).is_err());
    assert!(f.run(&x, None, &mut y, &mut s[..1], 2).is_err());
    assert!(f.run(&x, None, &mut y, &mut s, 0).is_err());
    assert!(f.run(&x, None, &mut y, &mut s, 2).is_ok());
}

fn rng_vec(n: usize) -> Vec<f32> {
    Rng::new(n as u64).vec(n)
}

#[test]
fn with_expansion_equals_the_three_convolutions() {
    let mut rng = Rng::new(17);
    // (expansion input channels, depthwise descriptor, pointwise output channels)
    let p1 = [1, 1, 1, 1];
    let cases = [
        (
            4,
            conv(1, 24, 56, 56, 24, (3, 3), (1, 1), p1, (1, 1), 24),
            8,
        ),
        (
            3,
            conv(2, 16, 33, 30, 16, (3, 3), (2, 2), p1, (1, 1), 16),
            5,
        ),
        (
            5,
            conv(1, 20, 112, 112, 20, (3, 3), (2, 2), p1, (1, 1), 20),
            6,
        ),
        (
            6,
            conv(1, 12, 19, 64, 12, (5, 5), (1, 1), [2, 2, 2, 2], (1, 1), 12),
            7,
        ),
        (
            2,
            conv(1, 8, 9, 40, 8, (3, 3), (2, 2), [0, 0, 1, 1], (1, 1), 8),
            3,
        ),
        // Small planes: the hidden channels split over threads (16-channel
        // units; 7×7 on the channel-vectorized 1×1 kernel).
        (
            16,
            conv(1, 40, 14, 14, 40, (3, 3), (1, 1), p1, (1, 1), 40),
            13,
        ),
        (
            32,
            conv(1, 72, 7, 7, 72, (3, 3), (1, 1), p1, (1, 1), 72),
            20,
        ),
        (
            12,
            conv(2, 48, 13, 14, 48, (3, 3), (2, 2), p1, (1, 1), 48),
            9,
        ),
    ];
    for (c0, dd, c_out) in cases {
        let ed = conv(
            dd.batch,
            c0,
            dd.h,
            dd.w,
            dd.c_in,
            (1, 1),
            (1, 1),
            [0; 4],
            (1, 1),
            1,
        );
        let pd = pointwise(&dd, c_out);
        let x = rng.vec(ed.batch * c0 * dd.h * dd.w);
        let relu6 = Activation::Clip { min: 0.0, max: 6.0 };
        let (ew, eb) = (rng.vec(dd.c_in * c0), rng.vec(dd.c_in));
        let (dw_w, dw_b) = (rng.vec(dd.c_out * dd.kh * dd.kw), rng.vec(dd.c_out));
        let (pw_w, pw_b) = (rng.vec(c_out * pd.c_in), rng.vec(c_out));
        let out_len = pd.batch * c_out * pd.h * pd.w;
        let res = rng.vec(out_len);
        let ex = Conv2d::new(ed, &ew, Some(&eb), relu6).unwrap();
        let dw = Conv2d::new(dd, &dw_w, Some(&dw_b), relu6).unwrap();
        let pw = Conv2d::new(pd, &pw_w, Some(&pw_b), Activation::None).unwrap();
        let mut e = vec![0f32; dd.batch * dd.c_in * dd.h * dd.w];
        let mut mid = vec![0f32; dd.batch * dd.c_out * pd.h * pd.w];
        let mut want = vec![0f32; out_len];
        ex.run(&x, None, &mut e, &mut [], 1).unwrap();
        dw.run(&e, None, &mut mid, &mut [], 1).unwrap();
        pw.run(&mid, Some(&res), &mut want, &mut [], 1).unwrap();
        let fused = DepthwisePointwise::new(dw, pw)
            .unwrap()
            .with_expand(ex)
            .unwrap();
        for threads in [1, 2, 3] {
            let mut got = vec![f32::NAN; out_len];
            let mut scratch = vec![f32::NAN; fused.scratch_len(threads)];
            fused
                .run(&x, Some(&res), &mut got, &mut scratch, threads)
                .unwrap();
            let want64: Vec<f64> = want.iter().map(|&v| v as f64).collect();
            let scale: Vec<f64> = want.iter().map(|v| v.abs() as f64).collect();
            assert_close(
                &format!("{c0} -> {dd:?} -> {c_out} t{threads}"),
                &got,
                &want64,
                &scale,
            );
        }
    }
}

#[test]
fn an_expansion_must_produce_the_depthwise_input() {
    let mut rng = Rng::new(3);
    let dd = conv(1, 8, 10, 10, 8, (3, 3), (1, 1), [1; 4], (1, 1), 8);
    let dw = Conv2d::new(dd, &rng.vec(72), None, Activation::None).unwrap();
    let pd = pointwise(&dd, 4);
    let pw = Conv2d::new(pd, &rng.vec(32), None, Activation::None).unwrap();
    let pair = DepthwisePointwise::new(dw, pw).unwrap();
    let wrong = conv(1, 3, 10, 10, 7, (1, 1), (1, 1), [0; 4], (1, 1), 1);
    let ex = Conv2d::new(wrong, &rng.vec(21), None, Activation::None).unwrap();
    assert!(pair.clone().with_expand(ex).is_err());
    let spatial = conv(1, 3, 10, 10, 8, (3, 3), (1, 1), [1; 4], (1, 1), 1);
    let ex = Conv2d::new(spatial, &rng.vec(8 * 27), None, Activation::None).unwrap();
    assert!(pair.with_expand(ex).is_err());
}

#[test]
fn a_direct_stem_can_lead_the_pair() {
    let mut rng = Rng::new(23);
    let p1 = [1, 1, 1, 1];
    // (stem descriptor, depthwise stride, pointwise output channels)
    let cases = [
        (
            conv(1, 3, 64, 70, 16, (3, 3), (2, 2), [0, 0, 1, 1], (1, 1), 1),
            1,
            8,
        ),
        (conv(2, 2, 40, 41, 12, (3, 3), (1, 1), p1, (1, 1), 1), 2, 5),
    ];
    for (sd, s, c_out) in cases {
        let dd = conv(
            sd.batch,
            sd.c_out,
            sd.out_h(),
            sd.out_w(),
            sd.c_out,
            (3, 3),
            (s, s),
            p1,
            (1, 1),
            sd.c_out,
        );
        let pd = pointwise(&dd, c_out);
        let relu6 = Activation::Clip { min: 0.0, max: 6.0 };
        let x = rng.vec(sd.batch * sd.c_in * sd.h * sd.w);
        let stem = Conv2d::new(
            sd,
            &rng.vec(sd.c_out * sd.c_in * 9),
            Some(&rng.vec(sd.c_out)),
            relu6,
        )
        .unwrap();
        let dw = Conv2d::new(dd, &rng.vec(dd.c_out * 9), Some(&rng.vec(dd.c_out)), relu6).unwrap();
        let pw = Conv2d::new(pd, &rng.vec(c_out * pd.c_in), None, Activation::None).unwrap();
        let mut e = vec![0f32; sd.batch * sd.c_out * sd.out_h() * sd.out_w()];
        let mut mid = vec![0f32; dd.batch * dd.c_out * pd.h * pd.w];
        let out_len = pd.batch * c_out * pd.h * pd.w;
        let mut want = vec![0f32; out_len];
        let mut scratch = vec![0f32; stem.scratch_len()];
        stem.run(&x, None, &mut e, &mut scratch, 1).unwrap();
        dw.run(&e, None, &mut mid, &mut [], 1).unwrap();
        pw.run(&mid, None, &mut want, &mut [], 1).unwrap();
        let Ok(fused) = DepthwisePointwise::new(dw, pw).unwrap().with_expand(stem) else {
            // Without AVX-512 the stem is not on the direct kernel: refused.
            continue;
        };
        for threads in [1, 2, 3] {
            let mut got = vec![f32::NAN; out_len];
            let mut scratch = vec![f32::NAN; fused.scratch_len(threads)];
            fused
                .run(&x, None, &mut got, &mut scratch, threads)
                .unwrap();
            let want64: Vec<f64> = want.iter().map(|&v| v as f64).collect();
            let scale: Vec<f64> = want.iter().map(|v| v.abs() as f64).collect();
            assert_close(&format!("{sd:?} s{s} t{threads}"), &got, &want64, &scale);
        }
    }
}

#[test]
fn small_planes_split_channels_on_several_threads() {
    let pair = |hw: usize| {
        let dd = conv(1, 32, hw, hw, 32, (3, 3), (1, 1), [1; 4], (1, 1), 32);
        let dw = Conv2d::new(dd, &rng_vec(32 * 9), None, Activation::None).unwrap();
        let pw = pointwise(&dd, 8);
        let pw = Conv2d::new(pw, &rng_vec(8 * 32), None, Activation::None).unwrap();
        DepthwisePointwise::new(dw, pw).unwrap()
    };
    assert!(pair(14).splits_channels(2));
    assert!(pair(7).splits_channels(3));
    assert!(!pair(14).splits_channels(1));
    assert!(!pair(28).splits_channels(2));
}
