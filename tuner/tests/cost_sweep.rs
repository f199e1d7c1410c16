//! A slower sweep (ignored by default) that prints the transfer table over
//! six seeds: pairwise accuracy on a new target's held-out workloads with
//! 0%, 5% and 100% of its data, by samples and by whole workloads.
//! `cargo test --release -p kiln-tuner --test cost_sweep -- --ignored --nocapture`

mod cost_common;

use cost_common::{avx2, avx512, neon, samples, workloads};
use kiln_tuner::cost::transfer::transfer_report;
use kiln_tuner::cost::{CostConfig, CostModel, Share, TransferPlan};

#[test]
#[ignore]
fn transfer_sweep() {
    let mut sums = [[0.0f64; 3]; 2];
    for seed in 0..6u64 {
        let ws = workloads(64, 100 + seed);
        let mut base = samples(&avx512(), &ws, 32, 200 + seed);
        base.extend(samples(&avx2(), &ws, 32, 300 + seed));
        let cfg = CostConfig {
            target_dims: 7,
            seed: seed * 7 + 1,
            ..CostConfig::default()
        };
        let mut m = CostModel::new(cfg).unwrap();
        m.train(&base).unwrap();
        let t = neon();
        let new = samples(&t, &ws, 32, 400 + seed);
        let mut line = format!("seed {seed}:");
        for (k, share) in [Share::Samples, Share::Workloads].into_iter().enumerate() {
            let plan = TransferPlan {
                share,
                seed: 500 + seed,
                ..TransferPlan::default()
            };
            let rep = transfer_report(&m, t.name, &t.desc(), &new, &plan).unwrap();
            line += &format!("  {share:?}:");
            for (j, p) in rep.points.iter().enumerate() {
                line += &format!(" {:.3}", p.eval.pairwise);
                sums[k][j] += p.eval.pairwise / 6.0;
            }
        }
        eprintln!("{line}");
    }
    eprintln!(
        "mean (0%, 5%, 100%): samples {:.3?}  workloads {:.3?}",
        sums[0], sums[1]
    );
}
