//! Metrics and ranking losses on hand-computed cases.

use kiln_tuner::cost::metrics::{evaluate, pairwise_accuracy, split_by_workload, top_k_score};
use kiln_tuner::cost::rank::{group_loss, relevance, RankLoss};
use kiln_tuner::cost::{Sample, Scored};

fn g(scores: &[f32], latency: &[f64], weight: f64) -> Scored {
    Scored {
        scores: scores.to_vec(),
        latency: latency.to_vec(),
        weight,
    }
}

#[test]
fn pairwise_accuracy_by_hand() {
    // Group 1: all 3 pairs right; group 2: its one pair wrong -> 3/4.
    let a = g(&[3.0, 2.0, 1.0], &[10.0, 20.0, 30.0], 1.0);
    let b = g(&[1.0, 2.0], &[10.0, 20.0], 1.0);
    assert_eq!(pairwise_accuracy(&[a.clone(), b.clone()]), Some(0.75));
    assert_eq!(pairwise_accuracy(&[b]), Some(0.0));
    // Equal scores count one half; equal latencies are not compared.
    assert_eq!(
        pairwise_accuracy(&[g(&[1.0, 1.0], &[1.0, 2.0], 1.0)]),
        Some(0.5)
    );
    assert_eq!(pairwise_accuracy(&[g(&[1.0, 2.0], &[5.0, 5.0], 1.0)]), None);
    let with_tie = g(&[3.0, 2.0, 1.0], &[10.0, 10.0, 30.0], 1.0);
    assert_eq!(pairwise_accuracy(&[with_tie]), Some(1.0));
    assert_eq!(pairwise_accuracy(&[]), None);
}

#[test]
fn top_k_score_by_hand() {
    // A (weight 1): best 10, the top-1 pick is 20. B (weight 3): best 4,
    // the top-1 pick is 8. top-1 = (10 + 3*4) / (20 + 3*8) = 0.5.
    let a = g(&[0.9, 0.5, 0.1], &[20.0, 10.0, 40.0], 1.0);
    let b = g(&[0.2, 0.8], &[4.0, 8.0], 3.0);
    let groups = [a.clone(), b];
    assert_eq!(top_k_score(&groups, 1), Some(0.5));
    assert_eq!(top_k_score(&groups, 2), Some(1.0));
    assert_eq!(top_k_score(&groups, 5), Some(1.0));
    // One workload: best throughput among the picks over the best.
    assert_eq!(top_k_score(&[a], 1), Some(0.5));
    assert_eq!(top_k_score(&[], 1), None);
    let e = evaluate(&groups).unwrap();
    assert_eq!((e.workloads, e.samples), (2, 5));
    assert_eq!(e.top1, 0.5);
    // Pairs: A has 2 of 3 right (20 vs 40, 10 vs 40), B 0 of 1 -> 0.5.
    assert_eq!(e.pairwise, 0.5);
}

fn sample(workload: u128) -> Sample {
    Sample {
        workload,
        target: "t".into(),
        features: vec![workload as f32],
        latency_ns: 1.0,
        batch: 0,
    }
}

#[test]
fn split_keeps_workloads_whole() {
    let samples: Vec<Sample> = (0..40)
        .flat_map(|w| (0..3).map(move |_| sample(w)))
        .collect();
    let (train, test) = split_by_workload(&samples, 0.25, 7);
    assert_eq!(train.len() + test.len(), samples.len());
    let tw: std::collections::BTreeSet<u128> = test.iter().map(|s| s.workload).collect();
    assert_eq!(tw.len(), 10);
    assert!(train.iter().all(|s| !tw.contains(&s.workload)));
    assert_eq!(
        split_by_workload(&samples, 0.25, 7).1,
        test,
        "deterministic"
    );
    assert_ne!(split_by_workload(&samples, 0.25, 8).1, test, "seeded");
    // Two workloads: one held out even for a tiny share; none for 0.
    let two: Vec<Sample> = [sample(1), sample(2)].to_vec();
    assert_eq!(split_by_workload(&two, 0.01, 0).1.len(), 1);
    assert_eq!(split_by_workload(&two, 0.0, 0).1.len(), 0);
}

#[test]
fn relevance_is_normalised_throughput() {
    assert_eq!(relevance(&[10.0, 20.0, 40.0]), vec![1.0, 0.5, 0.25]);
}

/// The analytic gradient matches finite differences (positions fixed).
#[test]
fn loss_gradients_match_finite_differences() {
    let scores = [0.3f32, -0.4, 1.1, 0.05, -1.3];
    let rel = relevance(&[12.0, 10.0, 30.0, 18.0, 11.0]);
    for kind in [RankLoss::LambdaRank, RankLoss::Pairwise] {
        let mut grad = vec![0.0; 5];
        let loss = group_loss(kind, 0.5, &scores, &rel, &mut grad);
        assert!(loss > 0.0);
        for i in 0..5 {
            let h = 1e-3f32;
            let mut up = scores;
            up[i] += h;
            let mut dn = scores;
            dn[i] -= h;
            let mut scratch = vec![0.0; 5];
            let lu = group_loss(kind, 0.5, &up, &rel, &mut scratch);
            let ld = group_loss(kind, 0.5, &dn, &rel, &mut scratch);
            let num = (lu - ld) / (2.0 * h);
            assert!(
                (num - grad[i]).abs() < 2e-3,
                "{kind:?} {i}: {num} vs {}",
                grad[i]
            );
        }
        // The faster candidate is pushed up, the slower down.
        let mut g2 = vec![0.0; 2];
        group_loss(kind, 0.5, &[0.0, 0.0], &[1.0, 0.5], &mut g2);
        assert!(g2[0] < 0.0 && g2[1] > 0.0, "{kind:?}: {g2:?}");
        // A single candidate has no pairs.
        assert_eq!(group_loss(kind, 0.5, &[1.0], &[1.0], &mut [0.0]), 0.0);
    }
}
