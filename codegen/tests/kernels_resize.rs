//! The resize kernel, fed the interpreter's taps (`kiln_ir::ops::resize::plan`),
//! against the interpreter's `Resize` itself: nearest (every nearest_mode),
//! linear and cubic (cubic_coeff_a, exclude_outside), every coordinate
//! transformation, up and down scales and explicit sizes, 1-D to 5-D, on both
//! the AVX-512 and the portable path, at 1, 2 and 3 threads.

mod kernels_util;

use kernels_util::Rng;
use kiln_codegen::cpu::kernels::{force_portable, Resize, ResizeDesc, ResizeTuning};
use kiln_ir::{Attr, Attrs, Tensor};

const COORDS: [&str; 7] = [
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_crop_and_resize",
    "tf_half_pixel_for_nn",
];
const NEAREST: [&str; 5] = [
    "round_prefer_floor",
    "round_prefer_ceil",
    "floor",
    "ceil",
    "simple",
];

/// (input shape, scales, explicit sizes).
type Shape = (Vec<usize>, Vec<f64>, Option<Vec<i64>>);

fn shapes() -> Vec<Shape> {
    vec![
        (vec![1, 2, 5, 7], vec![1.0, 1.0, 2.0, 2.0], None),
        (vec![2, 3, 9, 20], vec![1.0, 1.0, 0.5, 0.6], None),
        (vec![1, 1, 4, 33], vec![1.0, 1.0, 1.5, 1.7], None),
        (vec![1, 2, 6, 6], vec![1.0, 1.0, 3.0, 1.0], None),
        (
            vec![1, 2, 6, 5],
            vec![1.0, 1.0, 1.6, 2.6],
            Some(vec![1, 2, 10, 13]),
        ),
        (vec![2, 17], vec![1.0, 2.5], None),
        (vec![40], vec![0.3], None),
        (vec![1, 2, 3, 4, 5], vec![1.0, 1.0, 2.0, 1.5, 2.0], None),
        (vec![2, 3, 4, 5], vec![2.0, 1.0, 1.0, 1.0], None),
        // Wide rows: upsampling and mild downsampling read 16-column blocks
        // from 32-column windows (permutes; the last window runs past the row).
        (vec![1, 1, 3, 64], vec![1.0, 1.0, 2.0, 2.0], None),
        (vec![1, 1, 2, 100], vec![1.0, 1.0, 1.0, 0.6], None),
    ]
}

/// Every mode combination worth checking, as attributes.
fn modes() -> Vec<Attrs> {
    let mut v = vec![];
    for c in COORDS {
        let base = Attrs::new().with("coordinate_transformation_mode", Attr::Str(c.into()));
        for nm in NEAREST {
            v.push(base.clone().with("nearest_mode", Attr::Str(nm.into())));
        }
        v.push(base.clone().with("mode", Attr::Str("linear".into())));
        let cubic = base.clone().with("mode", Attr::Str("cubic".into()));
        v.push(cubic.clone());
        v.push(
            cubic
                .with("cubic_coeff_a", Attr::Float(-0.5))
                .with("exclude_outside", Attr::Int(1)),
        );
    }
    let crop = Attrs::new()
        .with(
            "coordinate_transformation_mode",
            Attr::Str("tf_crop_and_resize".into()),
        )
        .with("mode", Attr::Str("linear".into()))
        .with("extrapolation_value", Attr::Float(-7.5));
    v.push(crop);
    v.push(
        Attrs::new()
            .with("mode", Attr::Str("linear".into()))
            .with("antialias", Attr::Int(1)),
    );
    v
}

fn attrs_for(m: &Attrs, shape: &[usize], scales: &[f64], sizes: &Option<Vec<i64>>) -> Attrs {
    let mut a = m.clone().with("scales", Attr::Floats(scales.to_vec()));
    if let Some(s) = sizes {
        a = a.with("sizes", Attr::Ints(s.clone()));
    }
    let crop = a.str_or("coordinate_transformation_mode", "").unwrap() == "tf_crop_and_resize";
    if crop {
        let r = shape.len();
        let mut roi = vec![0.1; r];
        roi.extend(vec![0.8; r]);
        roi[r - 1] = -0.2;
        roi[2 * r - 1] = 1.1;
        a = a.with("roi", Attr::Floats(roi));
    }
    a
}

fn check_all(rng: &mut Rng, what: &str) {
    let resize = kiln_ir::registry().get("Resize").unwrap();
    for (shape, scales, sizes) in shapes() {
        for m in modes() {
            let a = attrs_for(&m, &shape, &scales, &sizes);
            let (out, extra, axes) = kiln_ir::ops::resize::plan(&a, &shape).unwrap();
            let desc = ResizeDesc {
                input: shape.clone(),
                axes: axes
                    .into_iter()
                    .map(|t| {
                        t.map(|t| {
                            t.into_iter()
                                .map(|o| o.map(|v| v.iter().map(|&(i, w)| (i, w as f32)).collect()))
                                .collect()
                        })
                    })
                    .collect(),
                extrapolation: extra as f32,
            };
            let k = Resize::new(&desc, ResizeTuning::default()).unwrap();
            let n: usize = shape.iter().product();
            let x: Vec<f32> = rng.vec(n).iter().map(|v| v * 3.0 + 0.5).collect();
            let xt = Tensor::from_vec(shape.clone(), x.clone()).unwrap();
            let want = resize.eval(&a, &[&xt], 1).unwrap().remove(0);
            assert_eq!(want.shape(), &out[..]);
            let want = want.as_slice::<f32>().unwrap();
            for threads in [1, 2, 3] {
                let mut y = vec![f32::NAN; want.len()];
                k.run(&x, &mut y, threads).unwrap();
                for (i, (g, w)) in y.iter().zip(want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-5 * (w.abs() + 1.0),
                        "{what} {shape:?} {scales:?} {a:?} t{threads} [{i}]: {g} vs {w}"
                    );
                }
            }
        }
    }
}

/// One test runs both paths in turn (the portable switch is process-wide).
#[test]
fn resize_matches_the_interpreter_on_simd_and_portable_paths() {
    check_all(&mut Rng::new(51), "simd");
    force_portable(true);
    check_all(&mut Rng::new(52), "portable");
    force_portable(false);
}

#[test]
fn bad_descriptions_and_short_buffers_are_errors() {
    let bad = ResizeDesc {
        input: vec![2, 3],
        axes: vec![None, Some(vec![Some(vec![(3, 1.0)])])],
        extrapolation: 0.0,
    };
    assert!(Resize::new(&bad, ResizeTuning::default()).is_err());
    let short = ResizeDesc {
        input: vec![2],
        axes: vec![],
        extrapolation: 0.0,
    };
    assert!(Resize::new(&short, ResizeTuning::default()).is_err());
    let ok = ResizeDesc {
        input: vec![2, 3],
        axes: vec![None, Some(vec![Some(vec![(2, 1.0)]), None])],
        extrapolation: 4.0,
    };
    let k = Resize::new(&ok, ResizeTuning::default()).unwrap();
    let mut y = vec![0.0; 4];
    assert!(k.run(&[1.0; 5], &mut y, 1).is_err());
    assert!(k.run(&[1.0; 6], &mut y[..3], 1).is_err());
    assert!(k.run(&[1.0; 6], &mut y, 0).is_err());
    k.run(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &mut y, 1).unwrap();
    assert_eq!(y, [3.0, 4.0, 6.0, 4.0]);
}
