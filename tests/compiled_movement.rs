//! Data movement on the compiled path (`copy[...]` kernels): Slice, Pad in
//! every mode, CenterCropPad, Tile, and integer Expand/Transpose, against the
//! interpreter.

mod common;

use common::compiled::{check, kernels};

fn one_op(x: &str, node: &str, y: &str) -> kiln::ir::Graph {
    let src = format!("graph t {{\n  input x: {x}\n  node n = {node}(x) -> y: {y}\n  output y\n}}");
    kiln::ir::text::parse(&src).unwrap()
}

fn assert_copies(x: &str, node: &str, y: &str) {
    let exe = check(&one_op(x, node, y));
    let k = kernels(&exe);
    assert!(k.iter().all(|k| k.starts_with("copy[")), "{node}: {k:?}");
}

#[test]
fn slices_with_steps_negative_bounds_and_integer_dtypes() {
    let cases = [
        (
            "f32[4,6,5]",
            "Slice{starts=[1, 0], ends=[3, 5], axes=[0, 2]}",
            "f32[2,6,5]",
        ),
        (
            "f32[4,6,5]",
            "Slice{starts=[-1], ends=[-5], axes=[1], steps=[-2]}",
            "f32[4,2,5]",
        ),
        (
            "f32[4,6,37]",
            "Slice{starts=[3], ends=[100], axes=[2], steps=[3]}",
            "f32[4,6,12]",
        ),
        (
            "i64[3,8]",
            "Slice{starts=[0, 1], ends=[2, 8], steps=[1, 2]}",
            "i64[2,4]",
        ),
        (
            "u8[2,3,40,40]",
            "Slice{starts=[5], ends=[-5], axes=[-1]}",
            "u8[2,3,40,30]",
        ),
    ];
    for (x, n, y) in cases {
        assert_copies(x, n, y);
    }
}

#[test]
fn pads_in_every_mode_with_crops() {
    for mode in ["constant", "reflect", "edge", "wrap"] {
        let n = format!("Pad{{pads=[0, 1, 2, 0, 2, 1], mode=\"{mode}\", constant_value=1.5}}");
        assert_copies("f32[2,3,4]", &n, "f32[2,6,7]");
        let n = format!("Pad{{pads=[1, -1, 0, 2], mode=\"{mode}\"}}");
        assert_copies("i64[3,5]", &n, "i64[4,6]");
    }
    assert_copies(
        "f32[1,8,30,30]",
        "Pad{pads=[0, 0, 3, 3, 0, 0, 3, 3]}",
        "f32[1,8,36,36]",
    );
}

#[test]
fn crop_pad_tile_expand_transpose() {
    assert_copies("f32[5,4]", "CenterCropPad{shape=[3, 7]}", "f32[3,7]");
    assert_copies("f32[2,3]", "Tile{repeats=[3, 2]}", "f32[6,6]");
    assert_copies("i64[3,1]", "Expand{shape=[2, 3, 4]}", "i64[2,3,4]");
    assert_copies("i64[2,3,4]", "Transpose{perm=[2, 0, 1]}", "i64[4,2,3]");
    assert_copies("i64[1,5]", "Tile{repeats=[64, 100]}", "i64[64,500]");
}

#[test]
fn depth_to_space_and_space_to_depth_run_generated() {
    for (x, n, y) in [
        (
            "f32[1,8,3,5]",
            "DepthToSpace{blocksize=2, mode=\"DCR\"}",
            "f32[1,2,6,10]",
        ),
        (
            "f32[2,18,4,3]",
            "DepthToSpace{blocksize=3, mode=\"CRD\"}",
            "f32[2,2,12,9]",
        ),
        ("f32[1,3,6,4]", "SpaceToDepth{blocksize=2}", "f32[1,12,3,2]"),
    ] {
        let exe = check(&one_op(x, n, y));
        assert_eq!(kernels(&exe), vec!["jit[map]".to_string()], "{n}");
    }
}
