//! Replays every input the fuzzer ever crashed on (`tests/fuzz_regressions/`)
//! plus mutilated versions of a valid model: loading must give `Ok` or a clear
//! error, never a panic.

use std::path::{Path, PathBuf};

fn load(bytes: &[u8]) {
    let r = kiln_models::onnx::from_bytes(bytes, Path::new("case.onnx"), &Default::default());
    if let Err(e) = r {
        assert!(e.to_string().contains("case.onnx"), "{e}");
    }
}

#[test]
fn saved_crashers_load_without_panic() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "onnx") {
            load(&std::fs::read(&p).unwrap());
            n += 1;
        }
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
}

#[test]
fn truncations_and_bit_flips_of_a_real_model_never_panic() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/mlp/mlp.onnx");
    let bytes = std::fs::read(path).unwrap();
    let head = &bytes[..bytes.len().min(4096)];
    for cut in (0..head.len()).step_by(7) {
        load(&bytes[..cut]);
    }
    let mut state = 0x2545f4914f6cdd1du64;
    for _ in 0..300 {
        let mut b = head.to_vec();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let i = (state as usize) % b.len();
            b[i] ^= 1 << (state % 8);
        }
        load(&b);
    }
}
