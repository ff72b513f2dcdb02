//! MCI (heterogeneous model reduction, minimum coverage index; research notes
//! §8): exact checks, bad configuration, determinism, and the claim of §8 (d)
//! adapted to logistic regression.

use std::collections::BTreeMap;

use steepest_fed::algorithms::mci::{coverage_average, kept_fraction, Mci, MciClient, MciSpec, Reduction, TrainForm};
use steepest_fed::algorithms::{self, mci, FedAvg};
use steepest_fed::logreg::{LogReg, LogRegSpec};
use steepest_fed::participation::Participation;
use steepest_fed::partition::Partition;
use steepest_fed::sim::Workload;
use steepest_fed::sim::{self, SimConfig};
use steepest_fed::strategy::{ClientConfig, FitIns, FitRes, Model, Sampling, Strategy};
use steepest_fed::Error;

fn model(w: Vec<f64>) -> Model {
    let mut m = Model::new();
    m.push("w", &[w.len()], w).unwrap();
    m
}

fn small(clients: usize, samples: usize, partition: Partition, seed: u64) -> LogReg {
    LogReg::new(
        LogRegSpec {
            clients,
            samples_per_client: samples,
            test: 2000,
            partition,
            ..LogRegSpec::default()
        },
        seed,
    )
    .unwrap()
}

fn client() -> ClientConfig {
    ClientConfig {
        local_steps: 5,
        batch: 16,
        ..ClientConfig::default()
    }
}

#[test]
fn all_ones_masks_equal_fedavg_bit_for_bit() {
    // 32 examples per client (a power of two): FedAvg's Σ n x / Σ n then
    // rounds exactly like MCI's Σ x / Γ, so the runs agree bit for bit.
    let w = small(8, 32, Partition::Iid, 3);
    assert!(w.parts.iter().all(|p| p.len() == 32));
    let cfg = SimConfig {
        rounds: 12,
        seed: 3,
        ..SimConfig::default()
    };
    let mut fedavg = FedAvg::new(Sampling::default(), client()).unwrap();
    let a = sim::run(&w, &mut fedavg, &Participation::All, &cfg).unwrap();
    for settings in [
        vec![Reduction::Full],
        vec![Reduction::Random(1.0)],
        vec![Reduction::Quantiles(vec![0, 1, 2, 3])],
    ] {
        let spec = MciSpec {
            settings,
            ..MciSpec::default()
        };
        let mut s = Mci::new(Sampling::default(), client(), spec.clone()).unwrap();
        let b = sim::run(&MciClient::new(&w, spec).unwrap(), &mut s, &Participation::All, &cfg).unwrap();
        assert_eq!(a.model_hash, b.model_hash);
        assert!(s.gamma_history().iter().all(|&(_, g)| g == 8));
    }
}

#[test]
fn coverage_average_on_hand_made_masks() {
    let g = model(vec![1.0, 2.0, 3.0, 4.0]);
    let a = model(vec![10.0, 20.0, 30.0, 40.0]);
    let b = model(vec![50.0, 60.0, 70.0, 80.0]);
    let ma = vec![vec![true, true, false, false]];
    let mb = vec![vec![true, false, true, false]];
    let (out, gamma) = coverage_average(&g, &[(&a, &ma), (&b, &mb)], false);
    // j=0: both (10+50)/2; j=1: a only; j=2: b only; j=3: nobody → keeps 4.
    assert_eq!(out, vec![vec![30.0, 20.0, 70.0, 4.0]]);
    assert_eq!(gamma, 0);
    let (out, _) = coverage_average(&g, &[(&a, &ma), (&b, &mb)], true);
    assert_eq!(out, vec![vec![30.0, 20.0, 70.0, 0.0]]);
    let full = vec![vec![true; 4]];
    let (_, gamma) = coverage_average(&g, &[(&a, &full), (&b, &ma)], false);
    assert_eq!(gamma, 1);
}

#[test]
fn quantile_masks_and_code_types() {
    let g = model(vec![-3.0, 1.0, 0.5, -2.0, 0.0, 0.25, 5.0, -0.75]);
    // |θ| ranks: 0.0(j4) 0.25(j5) 0.5(j2) 0.75(j7) 1(j1) 2(j3) 3(j0) 5(j6);
    // quartiles of 2: Q0 = {4,5}, Q1 = {2,7}, Q2 = {1,3}, Q3 = {0,6}.
    let spec = MciSpec {
        tensors: vec!["w".into()],
        settings: vec![Reduction::Quantiles(vec![0, 3]), Reduction::code_type(4).unwrap()],
        ..MciSpec::default()
    };
    let m0 = spec.mask(&g, 0, 1, 0);
    assert_eq!(m0, vec![vec![true, false, false, false, true, true, true, false]]);
    let m1 = spec.mask(&g, 1, 1, 0); // type 4: drops Q0
    assert_eq!(m1, vec![vec![true, true, true, true, false, false, true, true]]);
    assert_eq!(spec.mask(&g, 2, 1, 0), m0); // client 2 → settings[0]
    assert_eq!(kept_fraction(&m1), 0.75);
    for (t, k) in [(1, 1.0), (2, 0.75), (3, 0.75), (4, 0.75), (5, 0.5), (6, 0.5), (7, 0.5)] {
        let s = MciSpec {
            tensors: vec!["w".into()],
            settings: vec![Reduction::code_type(t).unwrap()],
            ..MciSpec::default()
        };
        assert_eq!(kept_fraction(&s.mask(&g, 0, 1, 0)), k, "type {t}");
    }
    // Random masks: seeded, kept fraction ≈ p (400 coordinates: sd 0.025).
    let big = model((0..400).map(f64::from).collect());
    let s = MciSpec {
        tensors: vec!["w".into()],
        settings: vec![Reduction::Random(0.3)],
        ..MciSpec::default()
    };
    let m = s.mask(&big, 5, 7, 11);
    assert_eq!(m, s.mask(&big, 5, 7, 11));
    assert_ne!(m, s.mask(&big, 5, 8, 11));
    assert!((kept_fraction(&m) - 0.3).abs() < 0.1);
}

#[test]
fn uncovered_coordinates_keep_the_global_value_in_a_round() {
    let w = small(4, 32, Partition::Iid, 1);
    // Every client keeps only quartiles 0 and 1: the two largest quartiles
    // are covered by nobody and must come back unchanged.
    let spec = MciSpec {
        settings: vec![Reduction::Quantiles(vec![0, 1])],
        ..MciSpec::default()
    };
    let c = MciClient::new(&w, spec.clone()).unwrap();
    let mut s = Mci::new(Sampling::default(), client(), spec.clone()).unwrap();
    let mut global = w.init();
    for round in 1..=3 {
        let ins = s.configure_fit(round, &[0, 1, 2, 3], 9).unwrap();
        let res: Vec<FitRes> = ins.iter().map(|i| c.fit(i, &global, 9).unwrap()).collect();
        let mask = spec.mask(&global, 0, round, 9);
        // Uploads are reduced: dropped coordinates are 0.
        for r in &res {
            for (p, m) in r.params.iter().zip(&mask) {
                assert!(p.data.iter().zip(m).all(|(&x, &k)| k || x == 0.0));
            }
        }
        let next = s.aggregate_fit(round, &global, &res, &[]).unwrap();
        let mut kept = 0;
        for ((a, b), m) in next.iter().zip(global.iter()).zip(&mask) {
            for (j, &keep) in m.iter().enumerate() {
                if !keep {
                    assert_eq!(a.data[j].to_bits(), b.data[j].to_bits());
                    kept += 1;
                }
            }
        }
        assert!(kept > 100);
        assert_ne!(next, global);
        global = next;
    }
    assert_eq!(s.gamma_history(), &[(1, 0), (2, 0), (3, 0)]);
    // State survives a restart.
    let bytes = s.state_bytes().unwrap().unwrap();
    let mut t = Mci::new(Sampling::default(), client(), spec).unwrap();
    t.load_state_bytes(&global, &bytes).unwrap();
    assert_eq!(t.gamma_history(), s.gamma_history());
}

#[test]
fn code_form_remasks_after_unmasked_training() {
    let w = small(2, 32, Partition::Iid, 2);
    let mk = |form| MciSpec {
        settings: vec![Reduction::Random(0.5)],
        form,
        ..MciSpec::default()
    };
    let ins = FitIns {
        client: 1,
        round: 1,
        config: ClientConfig {
            hyper: steepest::hyper([("lr", 0.1), ("momentum", 0.9)]),
            ..client()
        },
    };
    // Non-zero start so that the two forms differ through the forward pass.
    let mut g = w.init();
    for p in g.params_mut() {
        for (j, x) in p.data.iter_mut().enumerate() {
            *x = 0.01 * (j % 7) as f64;
        }
    }
    let a = MciClient::new(&w, mk(TrainForm::MaskedGradients))
        .unwrap()
        .fit(&ins, &g, 0)
        .unwrap();
    let b = MciClient::new(&w, mk(TrainForm::RemaskAfter))
        .unwrap()
        .fit(&ins, &g, 0)
        .unwrap();
    let mask = mk(TrainForm::MaskedGradients).mask(&g, 1, 1, 0);
    for r in [&a, &b] {
        for (p, m) in r.params.iter().zip(&mask) {
            assert!(p.data.iter().zip(m).all(|(&x, &k)| k || x == 0.0));
        }
    }
    assert_ne!(a.params, b.params);
}

#[test]
fn bad_configuration_is_a_config_error() {
    let bad = |spec: MciSpec| match Mci::new(Sampling::default(), client(), spec) {
        Err(Error::Config(m)) => m,
        other => panic!("expected a config error, got {other:?}"),
    };
    assert!(bad(MciSpec {
        quantiles: 0,
        ..MciSpec::default()
    })
    .contains("quantiles"));
    assert!(bad(MciSpec {
        settings: vec![],
        ..MciSpec::default()
    })
    .contains("settings"));
    assert!(bad(MciSpec {
        settings: vec![Reduction::Quantiles(vec![4])],
        ..MciSpec::default()
    })
    .contains("quantile block 4"));
    for p in [0.0, 1.5, f64::NAN] {
        assert!(bad(MciSpec {
            settings: vec![Reduction::Random(p)],
            ..MciSpec::default()
        })
        .contains("random keep"));
    }
    assert!(matches!(Reduction::code_type(8), Err(Error::Config(_))));
    let prox = ClientConfig {
        prox_mu: 0.1,
        ..client()
    };
    assert!(
        matches!(Mci::new(Sampling::default(), prox, MciSpec::default()), Err(Error::Config(m)) if m.contains("prox_mu"))
    );
    let opts = |kv: &[(&str, f64)]| kv.iter().map(|&(k, v)| (k.to_string(), v)).collect::<BTreeMap<_, _>>();
    for (kv, field) in [
        (vec![("type", 9.0)], "type"),
        (vec![("type", 2.5)], "type"),
        (vec![("keep", 0.0)], "keep"),
        (vec![("form", 2.0)], "form"),
    ] {
        match algorithms::build("mci", Sampling::default(), client(), &opts(&kv)) {
            Err(Error::Config(m)) => assert!(m.contains(field), "{m}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted {kv:?}"),
        }
    }
    let s = algorithms::build(
        "mci",
        Sampling::default(),
        client(),
        &opts(&[("type", 5.0), ("form", 1.0)]),
    )
    .unwrap();
    assert_eq!(s.name(), "mci");
    assert_eq!(
        mci::spec_from_opts(&opts(&[("type", 5.0)])).unwrap().settings,
        vec![Reduction::code_type(5).unwrap()]
    );
}

#[test]
fn deterministic_across_thread_counts() {
    let w = small(12, 30, Partition::Dirichlet { alpha: 0.5 }, 4);
    let spec = MciSpec {
        settings: vec![
            Reduction::Random(0.5),
            Reduction::code_type(6).unwrap(),
            Reduction::Full,
        ],
        ..MciSpec::default()
    };
    let c = MciClient::new(&w, spec.clone()).unwrap();
    let run = |threads| {
        let mut s = Mci::new(
            Sampling {
                fraction: 0.5,
                ..Sampling::default()
            },
            client(),
            spec.clone(),
        )
        .unwrap();
        let cfg = SimConfig {
            rounds: 8,
            seed: 4,
            threads: Some(threads),
            dropout: 0.2,
            ..SimConfig::default()
        };
        let r = sim::run(&c, &mut s, &Participation::All, &cfg).unwrap();
        (r.model_hash, s.gamma_history().to_vec())
    };
    let a = run(1);
    assert_eq!(a, run(4));
    assert_eq!(a.1.len(), 8);
}

fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let rank = |v: &[f64]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            for k in i..=j {
                r[idx[k]] = (i + j) as f64 / 2.0;
            }
            i = j + 1;
        }
        r
    };
    let (ra, rb) = (rank(a), rank(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// §8 (d) on logistic regression: 10 clients, all participating, Dir(0.5)
/// labels; six settings with the same mean kept fraction 0.5 — `k` clients
/// keep quartiles {0, 2} and `10 − k` keep {1, 3} (each type keeps one
/// "small" and one "large" quartile, so the reduction noise is alike), hence
/// Γ* = min(k, 10 − k) = 0..5. Measured: the mean test loss over the last
/// 10 rounds of 100 (the notes use accuracy; loss is the smoother measure
/// on a 2,000-sample test set), each setting averaged over 2 data seeds to
/// damp the partition's luck. Returns (Γ*, loss) per setting.
fn coverage_sweep() -> (Vec<f64>, Vec<f64>) {
    let mut gammas = Vec::new();
    let mut losses = Vec::new();
    for k in 0..=5usize {
        let mut settings = vec![Reduction::Quantiles(vec![0, 2]); k];
        settings.extend(vec![Reduction::Quantiles(vec![1, 3]); 10 - k]);
        let spec = MciSpec {
            settings,
            ..MciSpec::default()
        };
        let mut loss = 0.0;
        let mut gamma = usize::MAX;
        for seed in [5u64, 6] {
            let w = small(10, 60, Partition::Dirichlet { alpha: 0.5 }, seed);
            let c = MciClient::new(&w, spec.clone()).unwrap();
            let mut s = Mci::new(Sampling::default(), client(), spec.clone()).unwrap();
            let cfg = SimConfig {
                rounds: 100,
                seed,
                eval_every: 1,
                ..SimConfig::default()
            };
            let r = sim::run(&c, &mut s, &Participation::All, &cfg).unwrap();
            let tail: Vec<f64> = r.rounds[90..].iter().map(|x| x.eval.unwrap().loss).collect();
            loss += tail.iter().sum::<f64>() / tail.len() as f64 / 2.0;
            gamma = gamma.min(s.min_coverage().unwrap());
        }
        assert_eq!(gamma, k.min(10 - k));
        gammas.push(gamma as f64);
        losses.push(loss);
    }
    eprintln!("Γ* {gammas:?}  last-10 test loss {losses:?}");
    (gammas, losses)
}

/// Claim 1 of §8 (d): Spearman(Γ*, −loss) ≥ 0.8 (the notes' threshold, over
/// six settings: at most one adjacent swap passes). Measured: 0.943 (the
/// Γ* = 0 and 1 settings swap; losses 1.109, 1.318, 0.896, 0.784, 0.761,
/// 0.728 for Γ* = 0..5).
#[test]
fn final_loss_is_ordered_by_minimum_coverage() {
    let (gammas, losses) = coverage_sweep();
    let neg: Vec<f64> = losses.iter().map(|l| -l).collect();
    let rho = spearman(&gammas, &neg);
    eprintln!("Spearman(Γ*, −loss) = {rho:.3}");
    assert!(rho >= 0.8, "Spearman {rho}");
}

/// Claim 2 of §8 (d): the Γ* = 0 setting is worst. Not reproduced here: with
/// magnitude quartiles recomputed every round, coordinates move between
/// quartiles, so "uncovered" coordinates are frozen only for a while, while at
/// Γ* = 1 a single label-skewed client alone drives half of the model.
#[test]
#[ignore = "not reproduced: last-10 test loss Γ*=0: 1.109 < Γ*=1: 1.318 (Γ*=2..5: 0.896, 0.784, 0.761, 0.728)"]
fn zero_coverage_setting_is_worst() {
    let (_, losses) = coverage_sweep();
    let worst = losses.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(losses[0], worst, "{losses:?}");
}

#[test]
fn cli_runs_mci_with_masked_clients() {
    let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    let out = steepest_fed::cli::run(&args(
        "sim --strategy mci --opt type=5 --clients 10 --participation uniform:5 --rounds 3 --eval-every 3 --seed 2",
    ))
    .unwrap();
    assert!(out.contains("strategy mci"), "{out}");
    assert!(matches!(
        steepest_fed::cli::run(&args("sim --strategy mci --opt type=8 --clients 10 --participation uniform:5 --rounds 1")),
        Err(Error::Config(m)) if m.contains("type")
    ));
}
