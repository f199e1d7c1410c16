//! Latency of whole recurrent layers ([`Recurrent`]), to set
//! [`RecurrentKnobs::step_par_min_macs`]: each case runs on 1 thread, then on
//! a [`SpinPool`] of 2 (and 4) threads with the per-step GEMM kept on one
//! thread (default knobs on small layers) and split (`step_par_min_macs = 0`).
//!
//! `cargo bench -p kiln-codegen --bench recurrent`
//!
//! One line per case: `<case> threads=<t> steps=<serial|split> us=<median µs> min_us=..`.

use kiln_codegen::cpu::kernels::*;
use kiln_codegen::cpu::SpinPool;
use std::time::{Duration, Instant};

fn data(len: usize, seed: usize, scale: f32) -> Vec<f32> {
    (0..len)
        .map(|i| ((((i * 7919 + seed * 104_729) % 2001) as f32 - 1000.0) / 1000.0) * scale)
        .collect()
}

/// (name, cell, seq, batch, input, hidden)
fn cases() -> Vec<(&'static str, RecurrentCell, usize, usize, usize, usize)> {
    let gru = RecurrentCell::Gru {
        linear_before_reset: true,
    };
    let lstm = RecurrentCell::Lstm {
        input_forget: false,
    };
    vec![
        ("gru_small layer 1", gru, 16, 1, 64, 128),
        ("gru_small layer 2", gru, 16, 1, 128, 128),
        ("gru h256", gru, 16, 1, 128, 256),
        ("gru h512", gru, 16, 1, 256, 512),
        ("lstm h256", lstm, 16, 1, 128, 256),
        ("lstm h512", lstm, 16, 1, 256, 512),
        ("lstm h1024", lstm, 8, 1, 256, 1024),
        ("lstm h256 batch 8", lstm, 16, 8, 128, 256),
    ]
}

fn median_us(mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..5 {
        f();
    }
    let mut t = Vec::new();
    let start = Instant::now();
    while t.len() < 20 || (start.elapsed() < Duration::from_millis(300) && t.len() < 5000) {
        let s = Instant::now();
        f();
        t.push(s.elapsed().as_secs_f64() * 1e6);
    }
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], t[0])
}

fn main() {
    for (name, cell, seq, batch, input, hidden) in cases() {
        let g = cell.gates();
        let desc = RecurrentDesc {
            cell,
            seq,
            batch,
            input,
            hidden,
            dirs: 1,
            reverse: false,
            batch_major: false,
            clip: None,
            acts: match cell {
                RecurrentCell::Gru { .. } => vec![RecurrentAct::Sigmoid, RecurrentAct::Tanh],
                _ => vec![
                    RecurrentAct::Sigmoid,
                    RecurrentAct::Tanh,
                    RecurrentAct::Tanh,
                ],
            },
            seq_lens: None,
        };
        let (w, r, b) = (
            data(g * hidden * input, 1, 0.1),
            data(g * hidden * hidden, 2, 0.1),
            data(2 * g * hidden, 3, 0.1),
        );
        let wt = RecurrentWeights {
            w: &w,
            r: &r,
            b: Some(&b),
            p: None,
        };
        let x = data(seq * batch * input, 4, 1.0);
        let mut y = vec![0f32; seq * batch * hidden];
        for (threads, split) in [(1, false), (2, false), (2, true), (4, false), (4, true)] {
            let knobs = RecurrentKnobs {
                step_par_min_macs: if split { 0 } else { usize::MAX },
                ..RecurrentKnobs::default()
            };
            let layer = Recurrent::new(desc.clone(), &wt, knobs).unwrap();
            let mut scratch = vec![0f32; layer.scratch_len()];
            let pool = SpinPool::new(threads, Duration::from_micros(300)).unwrap();
            let (med, min) = pool.install(|| {
                median_us(|| {
                    let io = RecurrentIo {
                        x: &x,
                        h0: None,
                        c0: None,
                        y: Some(&mut y),
                        y_h: None,
                        y_c: None,
                    };
                    layer.run(io, &mut scratch, threads).unwrap();
                })
            });
            let steps = if split { "split" } else { "serial" };
            println!("{name} threads={threads} steps={steps} us={med:.1} min_us={min:.1}");
        }
    }
}
