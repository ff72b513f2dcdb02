//! FedAU's small-scale claim (research notes §1 (d)), on the logistic
//! regression workload instead of MNIST: label-skewed clients (Dir(0.1)) whose
//! participation probabilities are correlated with their labels
//! (`p_n = max(0.02, C·p̄·Σ_c π_{n,c} u_c)`, `u ~ Dir(0.1·1_C)` shared,
//! `p̄ = 0.1`, as in the FedAU code), Bernoulli participation.
//! Checked: (i) FedAU's weights track `1/p_n`: median over clients with ≥ 20
//! participations of `|ω_n p_n − 1|` < 0.25; (ii) FedAU's final test loss is
//! below "average over participants" (the uniform FedAvg mean, η_g = 1),
//! which is biased toward frequent clients' labels.

use steepest_fed::algorithms::fedau::FedAu;
use steepest_fed::algorithms::{self};
use steepest_fed::logreg::{LogReg, LogRegSpec};
use steepest_fed::participation::Participation;
use steepest_fed::partition::Partition;
use steepest_fed::rng::{Purpose, Rng};
use steepest_fed::sim::{self, SimConfig};
use steepest_fed::strategy::ClientConfig;

#[test]
fn fedau_tracks_participation_and_beats_participant_average() {
    let n = 100;
    let c = 10;
    let w = LogReg::new(
        LogRegSpec {
            clients: n,
            samples_per_client: 60,
            test: 4000,
            partition: Partition::Dirichlet { alpha: 0.1 },
            ..LogRegSpec::default()
        },
        4,
    )
    .unwrap();
    let u = Rng::stream(4, Purpose::Participation, 9_999, 0).dirichlet(0.1, c);
    let p: Vec<f64> = w
        .parts
        .iter()
        .map(|rows| {
            if rows.is_empty() {
                return 0.02;
            }
            let mut mix = vec![0.0; c];
            // Class mix of the client from the workload's own labels.
            for &i in rows {
                mix[w.label(i)] += 1.0 / rows.len() as f64;
            }
            let s: f64 = mix.iter().zip(&u).map(|(a, b)| a * b).sum();
            (c as f64 * 0.1 * s).clamp(0.02, 1.0)
        })
        .collect();
    let part = Participation::Bernoulli { p: p.clone() };
    let client = ClientConfig {
        local_steps: 5,
        batch: 16,
        ..ClientConfig::default()
    };
    let cfg = SimConfig {
        rounds: 400,
        seed: 4,
        ..SimConfig::default()
    };
    let mut au = FedAu::new(n, client.clone(), 1.0, u64::MAX).unwrap();
    let r_au = sim::run(&w, &mut au, &part, &cfg).unwrap();
    let mut avg = algorithms::build(
        "cyclic-fedavg",
        Default::default(),
        client,
        &[("m".to_string(), n as f64)].into_iter().collect(),
    )
    .unwrap();
    let r_avg = sim::run(&w, &mut avg, &part, &cfg).unwrap();
    // (i) weights vs 1/p_n for frequent participants.
    let mut errs: Vec<f64> = (0..n)
        .filter(|&i| p[i] * cfg.rounds as f64 >= 20.0)
        .map(|i| (au.weight(i) * p[i] - 1.0).abs())
        .collect();
    errs.sort_by(f64::total_cmp);
    let med = errs[errs.len() / 2];
    eprintln!(
        "median |ω p − 1| = {med:.3} over {} clients; test loss fedau {:.4} (acc {:.4}) vs participant average {:.4} (acc {:.4})",
        errs.len(),
        r_au.final_eval.loss,
        r_au.final_eval.accuracy,
        r_avg.final_eval.loss,
        r_avg.final_eval.accuracy
    );
    assert!(med < 0.25, "median |ω p − 1| = {med}");
    assert!(
        r_au.final_eval.loss < r_avg.final_eval.loss,
        "fedau loss {} ≥ participant average {}",
        r_au.final_eval.loss,
        r_avg.final_eval.loss
    );
}
