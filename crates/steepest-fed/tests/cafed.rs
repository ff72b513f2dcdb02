//! CA-Fed (research notes §3): the Bayesian availability estimator on a
//! hand-made trace, the objective and greedy pass on hand-computed inputs, the
//! reduction to FedAvg's weighting, bad configurations, state round trip,
//! determinism, and the small-scale claim (d) on logistic regression.

use std::collections::BTreeMap;

use steepest_fed::algorithms::cafed::{self, AvailabilityEstimator, CaFed, CaFedConfig};
use steepest_fed::algorithms::{self};
use steepest_fed::logreg::{LogReg, LogRegSpec};
use steepest_fed::participation::Participation;
use steepest_fed::partition::Partition;
use steepest_fed::rng::{Purpose, Rng};
use steepest_fed::sim::{self, SimConfig};
use steepest_fed::strategy::{ClientConfig, FitRes, Model, Strategy};

fn model(v: &[f64]) -> Model {
    let mut m = Model::new();
    m.push("w", &[v.len()], v.to_vec()).unwrap();
    m
}

fn res(client: usize, v: &[f64], n: u64) -> FitRes {
    FitRes {
        client,
        params: model(v),
        num_examples: n,
        loss: 0.5,
    }
}

/// Trace (t = 5, H = 10): client 0 on,on,on,off,off; client 1 off,on,off,off,on.
/// The state before round 1 is "off" (the code's convention).
#[test]
fn bayesian_estimates_on_a_hand_made_trace() {
    let mut e = AvailabilityEstimator::new(vec![0.5, 0.2], vec![0.0, 0.5], 10.0);
    for set in [&[0usize][..], &[0, 1], &[0], &[], &[1]] {
        e.observe(set);
    }
    assert_eq!(e.rounds, 5);
    // Client 0: #on 3, 1→1 twice, 0→0 once.
    // π̂ = (3 + 10·0.5)/15; a = (2 + 10·0.5)/15; b = (1 + 10·0.5)/15.
    let close = |a: f64, b: f64| (a - b).abs() < 1e-15;
    assert!(close(e.pi(0), 8.0 / 15.0), "{}", e.pi(0));
    assert!(close(e.lambda(0), 7.0 / 15.0 + 6.0 / 15.0 - 1.0), "{}", e.lambda(0));
    // Client 1: #on 2, 1→1 never, 0→0 twice (round 1 and round 4).
    // π̂ = (2 + 2)/15; a = (0 + 10·(0.2 + 0.5 − 0.1))/15; b = (2 + 10·(0.8 + 0.1))/15.
    assert!(close(e.pi(1), 4.0 / 15.0), "{}", e.pi(1));
    assert!(close(e.lambda(1), 6.0 / 15.0 + 11.0 / 15.0 - 1.0), "{}", e.lambda(1));
}

/// q = 1/3 each, π̂ = (0.9, 0.9, 0.1), F̂ − F* = (0.1, 0.1, 1.0), β = 1.
/// Full α = q/π̂ gives w = q: J = 0.4. Dropping client 2: w = (½, ½, 0),
/// TV = 1/3, J = 0.1 + 1·(1/3)² ≈ 0.211 (kept). Then dropping client 0:
/// w = (0, 1, 0), TV = 2/3, J = 0.1 + 4/9 (restored); client 1 likewise.
#[test]
fn objective_and_greedy_pass_match_hand_computation() {
    let q = [1.0 / 3.0; 3];
    let pi = [0.9, 0.9, 0.1];
    let gap = [0.1, 0.1, 1.0];
    let alpha: Vec<f64> = q.iter().zip(&pi).map(|(a, p)| a / p).collect();
    let j = cafed::objective(&alpha, &pi, &gap, &q, 1.0);
    assert!((j - 0.4).abs() < 1e-12, "{j}");
    let drop2 = [alpha[0], alpha[1], 0.0];
    let j2 = cafed::objective(&drop2, &pi, &gap, &q, 1.0);
    assert!((j2 - (0.1 + 1.0 / 9.0)).abs() < 1e-12, "{j2}");
    let only1 = [0.0, alpha[1], 0.0];
    let j1 = cafed::objective(&only1, &pi, &gap, &q, 1.0);
    assert!((j1 - (0.1 + 4.0 / 9.0)).abs() < 1e-12, "{j1}");
    // π̂ ascending: 2, 0, 1.
    let out = cafed::truncate(&alpha, &[2, 0, 1], &pi, &gap, &q, 1.0, 0.0);
    assert_eq!(out, drop2.to_vec());
    // With β = 0 the bias term vanishes and excluding the costly client still
    // helps; then dropping 0 leaves J = 0.1 = J, kept (tol 0: a drop ≥ 0).
    let out0 = cafed::truncate(&alpha, &[2, 0, 1], &pi, &gap, &q, 0.0, 0.0);
    assert_eq!(out0, vec![0.0, alpha[1], 0.0]);
}

/// All clients always available, prior π⁰ = 1 (so π̂ = 1 exactly), no
/// exclusion, η_s = 1: `x − Σ q_k (x − x_k)` equals FedAvg's `Σ n_k x_k / Σ n_k`
/// bit for bit on dyadic inputs.
#[test]
fn unbiased_with_full_availability_is_fedavg_weighting() {
    let g = model(&[1.0, 2.0]);
    let results = [res(0, &[3.0, -2.0], 1), res(1, &[0.5, 4.0], 3)];
    let mut c = CaFedConfig::new(2, ClientConfig::default());
    c.q = vec![0.25, 0.75];
    c.prior_pi = vec![1.0; 2];
    c.exclusion = false;
    let mut s = CaFed::new(c).unwrap();
    let ins = s.configure_fit(1, &[0, 1], 0).unwrap();
    assert_eq!(ins.len(), 2);
    assert_eq!(s.estimator().pi(0), 1.0);
    let a = s.aggregate_fit(1, &g, &results, &[]).unwrap();
    let mut avg = algorithms::build("fedavg", Default::default(), ClientConfig::default(), &BTreeMap::new()).unwrap();
    let b = avg.aggregate_fit(1, &g, &results, &[]).unwrap();
    let (a, b) = (&a.get("w").unwrap().data, &b.get("w").unwrap().data);
    assert_eq!(a, &vec![1.125, 2.5]);
    assert_eq!(
        a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
}

fn workload(n: usize, seed: u64, partition: Partition) -> LogReg {
    LogReg::new(
        LogRegSpec {
            clients: n,
            samples_per_client: 50,
            test: 2000,
            partition,
            ..LogRegSpec::default()
        },
        seed,
    )
    .unwrap()
}

/// The same on the simulator: a whole run of the Unbiased form with π⁰ = 1 and
/// full availability follows FedAvg with full participation (equal client
/// sizes) to rounding: the two sums are ordered alike but CA-Fed forms
/// `x − Σ q (x − x_k)`, FedAvg `Σ n x_k / Σ n`, so they differ in the last bits
/// only (tolerance 1e-12 on O(1) weights after 20 rounds).
#[test]
fn unbiased_run_tracks_fedavg_under_full_availability() {
    let n = 10;
    let w = workload(n, 3, Partition::Iid);
    let sizes: Vec<usize> = w.parts.iter().map(|p| p.len()).collect();
    let total: usize = sizes.iter().sum();
    let mut c = CaFedConfig::new(n, ClientConfig::default());
    c.q = sizes.iter().map(|&s| s as f64 / total as f64).collect();
    c.prior_pi = vec![1.0; n];
    c.exclusion = false;
    let cfg = SimConfig {
        rounds: 20,
        seed: 3,
        ..SimConfig::default()
    };
    let mut s = CaFed::new(c).unwrap();
    let a = sim::run(&w, &mut s, &Participation::All, &cfg).unwrap();
    let mut avg = algorithms::build("fedavg", Default::default(), ClientConfig::default(), &BTreeMap::new()).unwrap();
    let b = sim::run(&w, &mut avg, &Participation::All, &cfg).unwrap();
    for (p, q) in a.model.iter().zip(b.model.iter()) {
        for (x, y) in p.data.iter().zip(&q.data) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
    }
}

#[test]
fn bad_configurations_are_errors() {
    let base = CaFedConfig::new(4, ClientConfig::default());
    let cases: Vec<(&str, CaFedConfig)> = vec![
        (
            "q",
            CaFedConfig {
                q: vec![0.5; 4],
                ..base.clone()
            },
        ),
        (
            "f_star",
            CaFedConfig {
                f_star: vec![0.0; 3],
                ..base.clone()
            },
        ),
        (
            "prior_pi",
            CaFedConfig {
                prior_pi: vec![0.0; 4],
                ..base.clone()
            },
        ),
        (
            "prior_lambda",
            CaFedConfig {
                prior_lambda: vec![1.0; 4],
                ..base.clone()
            },
        ),
        (
            "horizon",
            CaFedConfig {
                horizon: 0.0,
                ..base.clone()
            },
        ),
        (
            "beta",
            CaFedConfig {
                beta: -1.0,
                ..base.clone()
            },
        ),
        (
            "server_lr",
            CaFedConfig {
                server_lr: 0.0,
                ..base.clone()
            },
        ),
        (
            "smoothness",
            CaFedConfig {
                smoothness: 1.0,
                ..base.clone()
            },
        ),
    ];
    for (field, c) in cases {
        let e = CaFed::new(c).unwrap_err().to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
    let e = algorithms::build("ca-fed", Default::default(), ClientConfig::default(), &BTreeMap::new())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("clients"), "{e}");
    let opts: BTreeMap<String, f64> = [("clients".to_string(), 4.0)].into_iter().collect();
    assert!(algorithms::build("ca-fed", Default::default(), ClientConfig::default(), &opts).is_ok());
    assert!(algorithms::build("ca-fed-unbiased", Default::default(), ClientConfig::default(), &opts).is_ok());
    let mut s = CaFed::new(base).unwrap();
    assert!(s.configure_fit(1, &[0, 7], 0).is_err());
    assert!(cafed::local_optimum_losses(&workload(4, 1, Partition::Iid), 0, 0.1).is_err());
}

/// Saved state resumes bit for bit; the run is the same for 1 and 3 threads.
#[test]
fn state_round_trip_and_thread_determinism() {
    let n = 12;
    let w = workload(n, 5, Partition::Dirichlet { alpha: 1.0 });
    let part = Participation::Markov {
        pi: (0..n).map(|c| if c < n / 2 { 0.9 } else { 0.2 }).collect(),
        lambda: vec![0.6; n],
    };
    let mk = || {
        let mut c = CaFedConfig::new(n, ClientConfig::default());
        c.f_star = cafed::local_optimum_losses(&w, 50, 0.5).unwrap();
        CaFed::new(c).unwrap()
    };
    let run = |threads| {
        let cfg = SimConfig {
            rounds: 30,
            seed: 5,
            threads: Some(threads),
            ..SimConfig::default()
        };
        sim::run(&w, &mut mk(), &part, &cfg).unwrap().model_hash
    };
    assert_eq!(run(1), run(3));
    // State: drive two strategies by hand with synthetic results.
    let mut avail = part.start(n, 2).unwrap();
    let mut a = mk();
    let mut b: Option<CaFed> = None;
    let (mut ga, mut gb) = (model(&[0.0, 0.0]), model(&[0.0, 0.0]));
    for t in 1..=30u64 {
        let on = avail.round(t).unwrap();
        let mk_res = |g: &Model| -> Vec<FitRes> {
            on.iter()
                .map(|&c| {
                    let v: Vec<f64> = g
                        .get("w")
                        .unwrap()
                        .data
                        .iter()
                        .map(|x| x + 0.01 * (c as f64 - 5.0))
                        .collect();
                    FitRes {
                        loss: 1.0 / (t as f64 + c as f64),
                        ..res(c, &v, 1)
                    }
                })
                .collect()
        };
        if t == 15 {
            let bytes = a.state_bytes().unwrap().unwrap();
            let mut fresh = mk();
            fresh.load_state_bytes(&ga, &bytes).unwrap();
            let mut wrong = CaFed::new(CaFedConfig::new(n + 1, ClientConfig::default())).unwrap();
            assert!(wrong.load_state_bytes(&ga, &bytes).is_err());
            b = Some(fresh);
            gb = ga.clone();
        }
        a.configure_fit(t, &on, 2).unwrap();
        let ra = mk_res(&ga);
        if let Ok(m) = a.aggregate_fit(t, &ga, &ra, &[]) {
            ga = m;
        }
        if let Some(b) = b.as_mut() {
            b.configure_fit(t, &on, 2).unwrap();
            let rb = mk_res(&gb);
            if let Ok(m) = b.aggregate_fit(t, &gb, &rb, &[]) {
                gb = m;
            }
        }
    }
    assert_eq!(ga.get("w").unwrap().data, gb.get("w").unwrap().data);
    assert_eq!(a.alpha(), b.as_ref().unwrap().alpha());
}

/// Claim (d), adapted: MNIST logistic → the synthetic logistic workload;
/// 24 clients (label skew Dir(1)), availability as in the paper's code: half
/// "available" (π = 0.9, shifting λ ~ N(0, 0.1²)), half "unavailable"
/// (π = 0.1; half of those stable, λ = 0.9, half shifting); priors are the
/// true (π, λ) as in the code; q = n_k/n; F_k* by 300 full-batch GD steps.
/// Same client training for both (5 SGD steps, lr 0.1, batch 16), η_s = 1,
/// 150 rounds. Measured: the time-averaged test loss over all rounds, summed
/// over 3 seeds. Claim: CA-Fed ≤ Unbiased. Tolerance: none beyond the
/// inequality (both runs see the same availability trace and minibatches, so
/// the comparison is paired; a tie would pass).
///
/// Finding (stated, not hidden): on this convex workload the two are tied to
/// within 0.03% — CA-Fed excludes only 2 of 24 clients at the end, and the
/// time-averaged losses are 0.8047/0.8052, 0.5501/0.5495, 0.6242/0.6240
/// (CA-Fed/Unbiased, seeds 11–13; sums 1.9789 vs 1.9786; second-half std
/// sums 0.0224 vs 0.0225). The paper's gap (MNIST, 62.76 vs 61.39 % mean
/// accuracy) is not reproduced here.
#[test]
#[ignore = "not reproduced: summed time-averaged test loss ca-fed 1.9789 vs unbiased 1.9786 (3 seeds)"]
fn cafed_time_averaged_loss_not_above_unbiased_under_correlated_availability() {
    let n = 24;
    let (mut sum_ca, mut sum_un, mut std_ca, mut std_un) = (0.0, 0.0, 0.0, 0.0);
    for seed in [11u64, 12, 13] {
        let w = workload(n, seed, Partition::Dirichlet { alpha: 1.0 });
        let mut r = Rng::stream(seed, Purpose::Other, 0xCAFE, 0);
        let pi: Vec<f64> = (0..n).map(|c| if c < n / 2 { 0.9 } else { 0.1 }).collect();
        let lambda: Vec<f64> = (0..n)
            .map(|c| {
                if c >= 3 * n / 4 {
                    0.9
                } else {
                    (0.1 * r.normal()).clamp(-0.99, 0.99)
                }
            })
            .collect();
        let part = Participation::Markov {
            pi: pi.clone(),
            lambda: lambda.clone(),
        };
        let sizes: Vec<usize> = w.parts.iter().map(|p| p.len()).collect();
        let total: usize = sizes.iter().sum();
        let f_star = cafed::local_optimum_losses(&w, 300, 0.5).unwrap();
        let client = ClientConfig {
            local_steps: 5,
            batch: 16,
            ..ClientConfig::default()
        };
        let cfg = SimConfig {
            rounds: 150,
            seed,
            eval_every: 1,
            ..SimConfig::default()
        };
        let mut out = Vec::new();
        for exclusion in [true, false] {
            let mut c = CaFedConfig::new(n, client.clone());
            c.q = sizes.iter().map(|&s| s as f64 / total as f64).collect();
            c.f_star = f_star.clone();
            c.prior_pi = pi.clone();
            c.prior_lambda = lambda.clone();
            c.exclusion = exclusion;
            let mut s = CaFed::new(c).unwrap();
            let rep = sim::run(&w, &mut s, &part, &cfg).unwrap();
            let losses: Vec<f64> = rep.rounds.iter().map(|r| r.eval.unwrap().loss).collect();
            let mean = losses.iter().sum::<f64>() / losses.len() as f64;
            let half = &losses[losses.len() / 2..];
            let hm = half.iter().sum::<f64>() / half.len() as f64;
            let sd = (half.iter().map(|x| (x - hm).powi(2)).sum::<f64>() / half.len() as f64).sqrt();
            let excluded = s.alpha().iter().filter(|&&a| a <= cafed::WEIGHT_EPS).count();
            eprintln!(
                "seed {seed} exclusion {exclusion}: time-avg test loss {mean:.4}, 2nd-half std {sd:.4}, final acc {:.4}, excluded at end {excluded}",
                rep.final_eval.accuracy
            );
            out.push((mean, sd));
        }
        sum_ca += out[0].0;
        sum_un += out[1].0;
        std_ca += out[0].1;
        std_un += out[1].1;
    }
    eprintln!("sum over seeds: ca-fed {sum_ca:.4} (std {std_ca:.4}) vs unbiased {sum_un:.4} (std {std_un:.4})");
    assert!(sum_ca <= sum_un, "ca-fed {sum_ca} > unbiased {sum_un}");
}
