//! FedSpeed (arXiv 2302.10429): exact checks of the local loop and the server,
//! bad configurations, determinism, and the small-scale claim of the research
//! notes §5 (d) on the logistic-regression workload.

use std::collections::BTreeMap;

use steepest_fed::algorithms::fedspeed::{FedSpeed, FedSpeedClients, FedSpeedConfig};
use steepest_fed::algorithms::{self};
use steepest_fed::logreg::{LogReg, LogRegSpec};
use steepest_fed::participation::Participation;
use steepest_fed::partition::Partition;
use steepest_fed::sim::{self, SimConfig};
use steepest_fed::strategy::{ClientConfig, FitIns, Model, Sampling, Strategy};
use steepest_fed::Error;

fn tiny() -> LogReg {
    LogReg::new(
        LogRegSpec {
            clients: 3,
            samples_per_client: 5,
            features: 3,
            classes: 2,
            test: 50,
            ..LogRegSpec::default()
        },
        4,
    )
    .unwrap()
}

fn client(lr: f64, steps: usize, batch: usize) -> ClientConfig {
    ClientConfig {
        optimizer: "sgd".into(),
        hyper: steepest::hyper([("lr", lr)]),
        local_steps: steps,
        batch,
        prox_mu: 0.0,
    }
}

fn flat(m: &Model) -> Vec<f64> {
    m.iter().flat_map(|p| p.data.iter().copied()).collect()
}

fn model_from(like: &Model, v: &[f64]) -> Model {
    let mut m = Model::new();
    let mut off = 0;
    for p in like.iter() {
        m.push(p.name.clone(), &p.shape, v[off..off + p.data.len()].to_vec())
            .unwrap();
        off += p.data.len();
    }
    m
}

fn ins_of(s: &mut FedSpeed, c: usize, round: u64) -> FitIns {
    s.configure_fit(round, &[c], 0).unwrap().remove(0)
}

/// One local step, two rounds, on tiny data (full local batch), against the
/// algorithm written out by hand: quasi-gradient, prox-correction with the
/// client's `h` from round 1, upload `x̂ = x_K + h`. Tolerance 1e-14: the
/// hand computation groups `g + h/λ + (x − x)/λ` differently (rounding only).
#[test]
fn two_rounds_of_one_step_match_a_hand_computation() {
    let w = tiny();
    let (lr, lambda, rho, alpha) = (0.3, 2.0, 0.05, 0.7);
    let cfg = FedSpeedConfig {
        lambda,
        rho,
        alpha,
        normalized: false,
        server_h: false,
    };
    let mut s = FedSpeed::new(Sampling::default(), client(lr, 1, 0), cfg, 3).unwrap();
    let clients = FedSpeedClients::new(&w);
    let data = w.client_data(1, 1).unwrap();
    let batch: Vec<usize> = w.parts[1].clone();
    let grad = |x: &[f64], like: &Model| flat(&data.loss_grad(&model_from(like, x), &batch).unwrap().1);
    let mut x0 = w.init();
    for (i, p) in flat(&x0).iter().enumerate() {
        assert_eq!(*p, 0.0, "{i}");
    }
    // A non-zero starting model.
    x0 = model_from(
        &x0,
        &(0..flat(&x0).len()).map(|i| 0.1 * i as f64 - 0.3).collect::<Vec<_>>(),
    );
    let mut h = vec![0.0; flat(&x0).len()];
    let mut global = x0.clone();
    for round in 1..=2u64 {
        let x = flat(&global);
        let g1 = grad(&x, &global);
        let xp: Vec<f64> = x.iter().zip(&g1).map(|(a, b)| a + rho * b).collect();
        let g2 = grad(&xp, &global);
        let xk: Vec<f64> = (0..x.len())
            .map(|j| {
                let g = (1.0 - alpha) * g1[j] + alpha * g2[j];
                x[j] - lr * (g + h[j] / lambda)
            })
            .collect();
        for j in 0..x.len() {
            h[j] += xk[j] - x[j];
        }
        let xhat: Vec<f64> = xk.iter().zip(&h).map(|(a, b)| a + b).collect();
        let ins = ins_of(&mut s, 1, round);
        let r = clients.fit(&ins, &global, 0).unwrap();
        for (a, b) in flat(&r.params).iter().zip(&xhat) {
            assert!((a - b).abs() < 1e-14, "round {round}: {a} vs {b}");
        }
        // ĝ = −h/λ: the client's state is h.
        for (a, b) in clients.state(1).unwrap().iter().zip(&h) {
            assert!((a - b).abs() < 1e-14);
        }
        // The server (one participant): the upload itself.
        global = s.aggregate_fit(round, &global, std::slice::from_ref(&r), &[]).unwrap();
        assert_eq!(flat(&global), flat(&r.params));
    }
    assert!(h.iter().any(|v| *v != 0.0));
}

/// With `λ = ∞` and `α = 0` the local loop is FedAvg's local SGD bit for bit
/// (same batches, same gradients, no correction); the paper form uploads
/// `x̂ = x_K + h = x + 2(x_K − x)` in a client's first round.
#[test]
fn infinite_lambda_and_alpha_zero_is_fedavg_local_sgd() {
    let w = LogReg::new(
        LogRegSpec {
            clients: 6,
            samples_per_client: 30,
            features: 5,
            classes: 3,
            test: 100,
            partition: Partition::Dirichlet { alpha: 0.3 },
            ..LogRegSpec::default()
        },
        2,
    )
    .unwrap();
    let cc = client(0.2, 7, 4);
    for server_h in [true, false] {
        let cfg = FedSpeedConfig {
            lambda: f64::INFINITY,
            rho: 0.3,
            alpha: 0.0,
            normalized: false,
            server_h,
        };
        let mut s = FedSpeed::new(Sampling::default(), cc.clone(), cfg, 6).unwrap();
        let clients = FedSpeedClients::new(&w);
        let g = w.init();
        for c in 0..6 {
            let ins = ins_of(&mut s, c, 3);
            let plain = w
                .fit(
                    &FitIns {
                        client: c,
                        round: 3,
                        config: cc.clone(),
                    },
                    &g,
                    11,
                )
                .unwrap();
            let r = clients.fit(&ins, &g, 11).unwrap();
            assert_eq!(r.loss.to_bits(), plain.loss.to_bits());
            if server_h {
                assert_eq!(r.params, plain.params, "client {c}");
            } else {
                let want: Vec<f64> = flat(&plain.params)
                    .iter()
                    .zip(flat(&g))
                    .map(|(a, b)| a + (a - b))
                    .collect();
                assert_eq!(flat(&r.params), want, "client {c}");
            }
        }
    }
}

fn skewed(clients: usize, seed: u64) -> LogReg {
    LogReg::new(
        LogRegSpec {
            clients,
            samples_per_client: 60,
            features: 20,
            classes: 10,
            separation: 0.6,
            test: 3000,
            partition: Partition::Dirichlet { alpha: 0.1 },
            shift: None,
        },
        seed,
    )
    .unwrap()
}

/// Under full participation the code variant's server (`mean_S x_K + mean_all h`)
/// and the paper's (`mean_S (x_K + h)`) are the same arithmetic up to rounding
/// (rel. 1e-9 after 10 rounds; rounding alone is ~1e-15 per round).
#[test]
fn code_server_equals_paper_server_under_full_participation() {
    let w = skewed(8, 5);
    let run = |server_h: bool| {
        let cfg = FedSpeedConfig {
            server_h,
            ..FedSpeedConfig::paper()
        };
        let mut s = FedSpeed::new(Sampling::default(), client(0.1, 10, 16), cfg, 8).unwrap();
        let clients = FedSpeedClients::new(&w);
        let cfg = SimConfig {
            rounds: 10,
            seed: 3,
            ..SimConfig::default()
        };
        sim::run(&clients, &mut s, &Participation::Bernoulli { p: vec![1.0; 8] }, &cfg).unwrap()
    };
    let (a, b) = (run(false), run(true));
    let (fa, fb) = (flat(&a.model), flat(&b.model));
    let scale = fa.iter().map(|v| v.abs()).fold(0.0, f64::max);
    for (x, y) in fa.iter().zip(&fb) {
        assert!((x - y).abs() <= 1e-9 * scale, "{x} vs {y}");
    }
}

#[test]
fn bad_configurations_are_errors_naming_the_field() {
    let s = Sampling::default();
    let c = ClientConfig::default();
    for (cfg, field) in [
        (
            FedSpeedConfig {
                lambda: 0.0,
                ..FedSpeedConfig::paper()
            },
            "lambda",
        ),
        (
            FedSpeedConfig {
                lambda: f64::NAN,
                ..FedSpeedConfig::paper()
            },
            "lambda",
        ),
        (
            FedSpeedConfig {
                rho: -0.1,
                ..FedSpeedConfig::paper()
            },
            "rho",
        ),
        (
            FedSpeedConfig {
                alpha: 1.5,
                ..FedSpeedConfig::paper()
            },
            "alpha",
        ),
    ] {
        match FedSpeed::new(s.clone(), c.clone(), cfg, 10) {
            Err(Error::Config(m)) => assert!(m.contains(field), "{m}"),
            other => panic!("{field}: {other:?}"),
        }
    }
    let prox = ClientConfig {
        prox_mu: 0.1,
        ..ClientConfig::default()
    };
    assert!(
        matches!(FedSpeed::new(s.clone(), prox, FedSpeedConfig::paper(), 10), Err(Error::Config(m)) if m.contains("prox_mu"))
    );
    assert!(
        matches!(FedSpeed::new(s.clone(), c.clone(), FedSpeedConfig::paper(), 0), Err(Error::Config(m)) if m.contains("clients"))
    );
    let mut opts = BTreeMap::new();
    opts.insert("alpha".to_string(), 2.0);
    opts.insert("clients".to_string(), 10.0);
    assert!(
        matches!(algorithms::build("fedspeed", s.clone(), c.clone(), &opts), Err(Error::Config(m)) if m.contains("alpha"))
    );
    // A FedSpeed round on plain LogReg clients fails (unknown keys) instead of running FedAvg.
    let w = tiny();
    let mut st = FedSpeed::new(s, c, FedSpeedConfig::paper(), 3).unwrap();
    let ins = ins_of(&mut st, 0, 1);
    assert!(w.fit(&ins, &w.init(), 0).is_err());
    // And FedSpeed clients need FedSpeed's keys.
    let clients = FedSpeedClients::new(&w);
    let plain = FitIns {
        client: 0,
        round: 1,
        config: ClientConfig::default(),
    };
    assert!(matches!(clients.fit(&plain, &w.init(), 0), Err(Error::Config(m)) if m.contains("fedspeed.lambda")));
}

fn sim_run(w: &LogReg, name: &str, threads: Option<usize>, rounds: u64, cc: ClientConfig) -> sim::SimReport {
    let n = w.spec.clients;
    let sampling = Sampling {
        fraction: 0.2,
        ..Sampling::default()
    };
    let mut opts = BTreeMap::new();
    opts.insert("clients".to_string(), n as f64);
    opts.insert("mu".to_string(), 0.01);
    let mut s = algorithms::build(name, sampling, cc, &opts).unwrap();
    let cfg = SimConfig {
        rounds,
        seed: 7,
        threads,
        ..SimConfig::default()
    };
    let part = Participation::Bernoulli { p: vec![1.0; n] };
    if name == "fedspeed" {
        sim::run(&FedSpeedClients::new(w), &mut s, &part, &cfg).unwrap()
    } else {
        sim::run(w, &mut s, &part, &cfg).unwrap()
    }
}

#[test]
fn deterministic_across_thread_counts() {
    let w = skewed(20, 1);
    let a = sim_run(&w, "fedspeed", Some(1), 6, client(0.1, 8, 16));
    let b = sim_run(&w, "fedspeed", Some(4), 6, client(0.1, 8, 16));
    assert_eq!(a.model_hash, b.model_hash);
    assert!(a.rounds.iter().all(|r| r.updated));
}

/// The code variant's server `h` survives a restart: saved after round 4 and
/// loaded into a fresh server, the next rounds give the same model bit for bit
/// (a fresh server without the state would not: h over all clients matters).
#[test]
fn code_variant_state_round_trip() {
    let w = skewed(10, 2);
    let cc = client(0.1, 5, 16);
    let sampling = Sampling {
        fraction: 0.3,
        ..Sampling::default()
    };
    let mk = || FedSpeed::new(sampling.clone(), cc.clone(), FedSpeedConfig::code(), 10).unwrap();
    // The clients (and their h_i) are shared: only the server restarts, so
    // both servers aggregate the same results.
    let clients = FedSpeedClients::new(&w);
    let cfg = SimConfig {
        seed: 9,
        ..SimConfig::default()
    };
    let all: Vec<usize> = (0..10).collect();
    let (mut a, mut b) = (mk(), None::<FedSpeed>);
    let (mut ga, mut gb) = (w.init(), w.init());
    for t in 1..=8u64 {
        if t == 5 {
            let bytes = a.state_bytes().unwrap().unwrap();
            let mut fresh = mk();
            fresh.load_state_bytes(&ga, &bytes).unwrap();
            assert!(FedSpeed::new(sampling.clone(), cc.clone(), FedSpeedConfig::code(), 11)
                .unwrap()
                .load_state_bytes(&ga, &bytes)
                .is_err());
            b = Some(fresh);
            gb = ga.clone();
        }
        let ins = a.configure_fit(t, &all, cfg.seed).unwrap();
        let (res, fail) = sim::train_round(&clients, &ins, &ga, &cfg);
        if let Some(b) = b.as_mut() {
            assert_eq!(b.configure_fit(t, &all, cfg.seed).unwrap(), ins);
            gb = b.aggregate_fit(t, &gb, &res, &fail).unwrap();
        }
        ga = a.aggregate_fit(t, &ga, &res, &fail).unwrap();
    }
    assert_eq!(flat(&ga), flat(&gb));
    assert!(FedSpeed::new(sampling, cc, FedSpeedConfig::paper(), 10)
        .unwrap()
        .state_bytes()
        .unwrap()
        .is_none());
}

/// Research notes §5 (d), adapted: the paper's MNIST MLP, 100 clients,
/// Dir(0.1), 10% per round becomes the logistic-regression workload with
/// Dir(0.1) label skew, 50 clients, 20% per round, many local steps
/// (K = 50, where client drift is strongest), 40 rounds, one seed; FedSpeed
/// (paper form, defaults λ = 10, ρ = 0.1, α = 0.9) against FedAvg and
/// FedProx (μ = 0.01) with the same local SGD. Claim checked: FedSpeed's
/// final test accuracy ≥ both baselines' and its test loss ≤ theirs.
/// Tolerance: none on the comparison (the test fails if FedSpeed is behind
/// by any amount); the measured margins are printed.
///
/// Finding (stated, not hidden): NOT reproduced with the paper form. Measured
/// (accuracy, loss) at 40 rounds: FedSpeed (0.759, 0.719), FedAvg (0.804, 0.555),
/// FedProx (0.806, 0.554). The paper form's upload `x_K + h_i` carries a stale
/// `h_i` for clients seen every ~5 rounds; with full participation the three are
/// level (0.819/0.522 vs 0.825/0.521). Exploration (not asserted, chosen after
/// the fact): the official code's variant (h averaged over all clients) gives
/// (0.814, 0.543) here, ahead of both; λ = 1 gives (0.812, 0.571).
#[test]
#[ignore = "not reproduced: fedspeed acc 0.759 loss 0.719 vs fedavg 0.804/0.555, fedprox 0.806/0.554 (40 rounds, Dir(0.1), K=50)"]
fn claim_fedspeed_beats_fedavg_and_fedprox_with_many_local_steps() {
    let w = skewed(50, 3);
    let cc = client(0.1, 50, 16);
    let t0 = std::time::Instant::now();
    let speed = sim_run(&w, "fedspeed", None, 40, cc.clone());
    let avg = sim_run(&w, "fedavg", None, 40, cc.clone());
    let prox = sim_run(&w, "fedprox", None, 40, cc);
    let e = |r: &sim::SimReport| (r.final_eval.accuracy, r.final_eval.loss);
    eprintln!(
        "fedspeed {:?}  fedavg {:?}  fedprox {:?}  ({:.1} s)",
        e(&speed),
        e(&avg),
        e(&prox),
        t0.elapsed().as_secs_f64()
    );
    assert!(speed.final_eval.accuracy >= avg.final_eval.accuracy && speed.final_eval.loss <= avg.final_eval.loss);
    assert!(speed.final_eval.accuracy >= prox.final_eval.accuracy && speed.final_eval.loss <= prox.final_eval.loss);
}

/// CLI wiring: `fed sim --strategy fedspeed` runs on FedSpeed's clients (a
/// plain workload would fail every round), FedHyper's names are registered.
#[test]
fn cli_runs_fedspeed_and_fedhyper() {
    let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    let list = steepest_fed::cli::run(&args("strategies")).unwrap();
    for name in [
        "fedspeed",
        "fedhyper-g",
        "fedhyper-gm",
        "fedhyper-sl",
        "fedhyper-cl",
        "fedhyper-full",
    ] {
        assert!(list.contains(name), "{list}");
        let out = steepest_fed::cli::run(&args(&format!(
            "sim --strategy {name} --clients 20 --rounds 3 --participation uniform:5 --eval-every 1"
        )))
        .unwrap();
        assert!(out.contains("round    3  results    5  failures   0"), "{name}: {out}");
    }
}
