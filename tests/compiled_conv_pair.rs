//! A depthwise convolution and the 1×1 convolution reading it run as one
//! kernel (`dw…>conv1x1`) where the planes are large enough for the thread
//! count, and give the interpreter's result either way.

use kiln::ir::{Graph, Tensor};
use kiln_runtime::{compile, CompileOptions};
use std::collections::HashMap;

fn seq(n: usize, k: f32) -> String {
    let v: Vec<String> = (0..n)
        .map(|i| format!("{}", (i as f32 * k).sin()))
        .collect();
    v.join(", ")
}

/// Input 8×hw×hw → depthwise 3×3 (stride `s`) + Clip → 1×1 to 5 channels (+ residual when s == 1).
fn block(hw: usize, s: usize) -> Graph {
    let o = (hw + 2 - 3) / s + 1;
    let (res_in, tail) = if s == 1 {
        (
            format!("  input r: f32[1,5,{o},{o}]\n"),
            format!("  node add = Add(p, r) -> y: f32[1,5,{o},{o}]\n  output y\n"),
        )
    } else {
        (String::new(), "  output p\n".to_string())
    };
    let src = format!(
        "graph blk {{
  input x: f32[1,8,{hw},{hw}]
{res_in}  const wd: f32[8,1,3,3] = [{wd}]
  const bd: f32[8] = [{bd}]
  const wp: f32[5,8,1,1] = [{wp}]
  node dw = Conv{{group=8, pads=[1, 1, 1, 1], strides=[{s}, {s}]}}(x, wd, bd) -> d: f32[1,8,{o},{o}]
  node cl = Clip{{min=0.0, max=6.0}}(d) -> c: f32[1,8,{o},{o}]
  node pw = Conv(c, wp) -> p: f32[1,5,{o},{o}]
{tail}}}",
        wd = seq(72, 0.37),
        bd = seq(8, 1.3),
        wp = seq(40, 0.71),
    );
    kiln::ir::text::parse(&src).unwrap()
}

fn feeds(g: &Graph) -> HashMap<String, Tensor> {
    g.inputs()
        .iter()
        .map(|&i| {
            let v = g.value(i);
            let data = (0..v.ty.numel())
                .map(|k| ((k as f32) * 0.77).sin() * 3.0 + 0.5)
                .collect();
            (
                v.name.clone(),
                Tensor::from_vec(v.ty.shape.clone(), data).unwrap(),
            )
        })
        .collect()
}

/// The kernels of `exe`'s plan, in order.
fn kernel_names(exe: &kiln_runtime::Executable) -> Vec<String> {
    exe.report()
        .kernels
        .iter()
        .map(|k| k.kernel.clone())
        .collect()
}

/// Runs `exe` and the interpreter on the same random inputs; they agree
/// within 1e-5 of the largest output.
fn assert_matches_interpreter(g: &Graph, exe: &kiln_runtime::Executable, what: &str) {
    let f = feeds(g);
    let want = kiln::run(g, &f).unwrap();
    let got = exe.run(&f).unwrap();
    let (a, b) = (
        got[0].as_slice::<f32>().unwrap(),
        want[0].as_slice::<f32>().unwrap(),
    );
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(err <= 1e-5 * scale, "{what}: err {err} scale {scale}");
}

#[test]
fn depthwise_then_pointwise_fuses_by_plane_size_and_matches_the_interpreter() {
    // (plane, stride, threads, fused?): at 2 threads from 7×7 output planes,
    // at 1 thread from 28×28.
    for (hw, s, threads, fused) in [
        (30, 1, 2, true),
        (30, 1, 1, true),
        (20, 1, 1, false),
        (20, 1, 2, true),
        (12, 1, 2, true),
        (7, 1, 2, true),
        (6, 1, 2, false),
        (57, 2, 2, true),
        (57, 2, 1, true),
    ] {
        let g = block(hw, s);
        let exe = compile(&g, &CompileOptions::default().with_threads(threads)).unwrap();
        let kernels = kernel_names(&exe);
        let pair = kernels.iter().any(|k| k.starts_with("dw3x3"));
        assert_eq!(pair, fused, "{hw} s{s} t{threads}: {kernels:?}");
        if fused {
            assert_eq!(kernels.len(), 1, "{kernels:?}");
        }
        assert_matches_interpreter(&g, &exe, &format!("{hw} s{s} t{threads}"));
    }
}

#[test]
fn conv_pairs_can_be_switched_off() {
    let g = block(30, 1);
    let opts = CompileOptions {
        fuse_conv_pairs: false,
        ..CompileOptions::default().with_threads(2)
    };
    let exe = compile(&g, &opts).unwrap();
    assert!(kernel_names(&exe).iter().all(|k| !k.starts_with("dw")));
}

/// Input 3×hw×hw → 1×1 expansion to 8 + Clip → [`block`]'s depthwise and 1×1 (+ residual).
fn expanded_block(hw: usize) -> Graph {
    let src = format!(
        "graph blk {{
  input x: f32[1,3,{hw},{hw}]
  input r: f32[1,5,{hw},{hw}]
  const we: f32[8,3,1,1] = [{we}]
  const wd: f32[8,1,3,3] = [{wd}]
  const wp: f32[5,8,1,1] = [{wp}]
  node ex = Conv(x, we) -> e: f32[1,8,{hw},{hw}]
  node ce = Clip{{min=0.0, max=6.0}}(e) -> f: f32[1,8,{hw},{hw}]
  node dw = Conv{{group=8, pads=[1, 1, 1, 1]}}(f, wd) -> d: f32[1,8,{hw},{hw}]
  node cl = Clip{{min=0.0, max=6.0}}(d) -> c: f32[1,8,{hw},{hw}]
  node pw = Conv(c, wp) -> p: f32[1,5,{hw},{hw}]
  node add = Add(p, r) -> y: f32[1,5,{hw},{hw}]
  output y
}}",
        we = seq(24, 0.53),
        wd = seq(72, 0.37),
        wp = seq(40, 0.71),
    );
    kiln::ir::text::parse(&src).unwrap()
}

#[test]
fn a_whole_inverted_residual_block_runs_as_one_kernel() {
    for (hw, threads, whole) in [
        (30, 2, true),
        (30, 1, true),
        (20, 1, false),
        (20, 2, true),
        (12, 2, true),
        (7, 2, true),
        (6, 2, false),
    ] {
        let g = expanded_block(hw);
        let exe = compile(&g, &CompileOptions::default().with_threads(threads)).unwrap();
        let kernels = kernel_names(&exe);
        let one = kernels.len() == 1 && kernels[0].starts_with("conv1x1+clip>dw3x3s1+clip>");
        assert_eq!(one, whole, "{hw} t{threads}: {kernels:?}");
        assert_matches_interpreter(&g, &exe, &format!("{hw} t{threads}"));
    }
}

/// An RGB stem (3×3 stride 2 on the direct kernel) → depthwise → 1×1.
#[test]
fn a_stem_leads_a_block_on_avx512_machines() {
    let src = format!(
        "graph stem {{
  input x: f32[1,3,64,64]
  const ws: f32[8,3,3,3] = [{ws}]
  const wd: f32[8,1,3,3] = [{wd}]
  const wp: f32[5,8,1,1] = [{wp}]
  node st = Conv{{pads=[0, 0, 1, 1], strides=[2, 2]}}(x, ws) -> s: f32[1,8,32,32]
  node cs = Clip{{min=0.0, max=6.0}}(s) -> f: f32[1,8,32,32]
  node dw = Conv{{group=8, pads=[1, 1, 1, 1]}}(f, wd) -> d: f32[1,8,32,32]
  node cl = Clip{{min=0.0, max=6.0}}(d) -> c: f32[1,8,32,32]
  node pw = Conv(c, wp) -> y: f32[1,5,32,32]
  output y
}}",
        ws = seq(216, 0.29),
        wd = seq(72, 0.37),
        wp = seq(40, 0.71),
    );
    let g = kiln::ir::text::parse(&src).unwrap();
    let exe = compile(&g, &CompileOptions::default().with_threads(2)).unwrap();
    let kernels = kernel_names(&exe);
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        assert_eq!(kernels, ["conv3x3+clip>dw3x3s1+clip>conv1x1"]);
    }
    assert_matches_interpreter(&g, &exe, "stem block");
}
