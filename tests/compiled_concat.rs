//! Concat on the compiled path: zero copy (producers write straight into
//! their block of the concat's output) where every input is one contiguous
//! block, a copy kernel elsewhere; always equal to the interpreter.

mod common;

use common::compiled::{check, kernels};
use kiln::ir::Graph;
use kiln_runtime::Executable;

fn parse(src: &str) -> Graph {
    kiln::ir::text::parse(src).unwrap()
}

fn concat_kernels(exe: &Executable) -> usize {
    kernels(exe)
        .iter()
        .filter(|k| k.starts_with("concat["))
        .count()
}

#[test]
fn inception_branches_write_into_the_concat() {
    let g = parse(
        "graph t {
  input x: f32[1,3,5,7]
  node a = Exp(x) -> b1: f32[1,3,5,7]
  node b = Softmax{axis=-1}(x) -> b2: f32[1,3,5,7]
  node c = Neg(x) -> b3: f32[1,3,5,7]
  node d = Softmax{axis=3}(x) -> b4: f32[1,3,5,7]
  node cat = Concat{axis=1}(b1, b2, b3, b4) -> y: f32[1,12,5,7]
  node e = Exp(y) -> z: f32[1,12,5,7]
  output z
}",
    );
    let exe = check(&g);
    assert_eq!(exe.report().concat_parts, 4);
    assert_eq!(concat_kernels(&exe), 1);
}

#[test]
fn dense_block_concats_are_prefixes_of_the_last_one() {
    // c1 = [x0, x1] is read by a map that must not overwrite it in place:
    // x0 and x1 are also the start of c2.
    let g = parse(
        "graph t {
  input x: f32[1,2,3,3]
  node p = Exp(x) -> x0: f32[1,2,3,3]
  node q = Softmax{axis=-1}(x) -> x1: f32[1,2,3,3]
  node c1 = Concat{axis=1}(x0, x1) -> c: f32[1,4,3,3]
  node r = Relu(c) -> r1: f32[1,4,3,3]
  node s = Softmax{axis=-1}(r1) -> x2: f32[1,4,3,3]
  node c2 = Concat{axis=1}(x0, x1, x2) -> d: f32[1,8,3,3]
  node t = Neg(d) -> y: f32[1,8,3,3]
  output y, r1
}",
    );
    let exe = check(&g);
    // x0, x1, x2 in d, and c itself a view of d's first half.
    assert_eq!(exe.report().concat_parts, 4);
}

#[test]
fn nested_concats_chain_their_offsets() {
    let g = parse(
        "graph t {
  input x: f32[2,6]
  node a = Exp(x) -> a1: f32[2,6]
  node b = Neg(x) -> b1: f32[2,6]
  node c = Sigmoid(x) -> c1: f32[2,6]
  node i = Concat{axis=0}(a1, b1) -> ab: f32[4,6]
  node o = Concat{axis=0}(c1, ab) -> y: f32[6,6]
  output y
}",
    );
    let exe = check(&g);
    assert_eq!(exe.report().concat_parts, 4);
}

#[test]
fn blocks_that_are_not_contiguous_are_copied() {
    // Axis 2 with 3 outer slices, and axis 1 with batch 2: copies.
    let g = parse(
        "graph t {
  input x: f32[3,2,4]
  node a = Exp(x) -> a1: f32[3,2,4]
  node b = Neg(x) -> b1: f32[3,2,4]
  node c = Concat{axis=2}(a1, b1) -> y: f32[3,2,8]
  node d = Concat{axis=1}(a1, x, b1) -> z: f32[3,6,4]
  output y, z
}",
    );
    let exe = check(&g);
    assert_eq!(exe.report().concat_parts, 0);
    assert_eq!(concat_kernels(&exe), 2);
}

#[test]
fn inputs_constants_outputs_and_repeats_are_copied_where_they_must_be() {
    let g = parse(
        "graph t {
  input x: f32[1,2,3]
  const k: f32[1,1,3] = [0.5, -1.5, 2.5]
  node a = Exp(x) -> a1: f32[1,2,3]
  node b = Neg(x) -> b1: f32[1,2,3]
  node c = Concat{axis=1}(x, a1, k, a1, b1) -> y: f32[1,9,3]
  output y, b1
}",
    );
    let exe = check(&g);
    // Only a1 (once) moves into y: x and k are not written by a step, b1 is
    // a graph output, a1's second block is a copy of the first.
    assert_eq!(exe.report().concat_parts, 1);
}

#[test]
fn integer_and_large_concats() {
    let g = parse(
        "graph t {
  input i: i64[1,3]
  input j: i64[1,2]
  node c = Concat{axis=-1}(i, j) -> y: i64[1,5]
  input x: f32[1,64,40,40]
  node a = Exp(x) -> a1: f32[1,64,40,40]
  node b = Concat{axis=1}(x, a1, x) -> z: f32[1,192,40,40]
  node e = Concat{axis=3}(x, a1) -> w: f32[1,64,40,80]
  output y, z, w
}",
    );
    check(&g);
}
