//! Fuzzes the ONNX loader: decoding, mapping, shape inference, constant
//! folding and verification. Graphs that load and are small are also run by
//! the interpreter on zero inputs. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let opts = kiln_models::onnx::ImportOptions::default();
    let Ok(m) = kiln_models::onnx::from_bytes(data, Path::new("fuzz.onnx"), &opts) else { return };
    let g = &m.graph;
    kiln_ir::verify(g).expect("an imported graph verifies");
    let _ = kiln_ir::text::print(g);
    let small = g.values().iter().all(|v| v.ty.numel() <= 1 << 16);
    if small && g.nodes().len() <= 64 {
        let feeds: HashMap<String, kiln_ir::Tensor> = g
            .inputs()
            .iter()
            .map(|&i| (g.value(i).name.clone(), kiln_ir::Tensor::zeros(g.value(i).ty.dtype, g.value(i).ty.shape.clone())))
            .collect();
        let _ = kiln_ir::interp::run(g, &feeds);
    }
});
