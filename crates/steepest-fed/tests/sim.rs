//! Simulator behaviour: learning happens, determinism across thread counts,
//! failures, FedProx, server optimizers, participation models end to end.

use steepest_fed::algorithms::{self, RobustRule};
use steepest_fed::logreg::{LogReg, LogRegSpec};
use steepest_fed::participation::Participation;
use steepest_fed::partition::Partition;
use steepest_fed::sim::{self, SimConfig, SimReport};
use steepest_fed::strategy::{ClientConfig, Sampling};

fn workload(clients: usize, partition: Partition) -> LogReg {
    LogReg::new(
        LogRegSpec {
            clients,
            samples_per_client: 40,
            test: 2000,
            partition,
            ..LogRegSpec::default()
        },
        3,
    )
    .unwrap()
}

fn run(w: &LogReg, name: &str, opts: &[(&str, f64)], p: &Participation, cfg: SimConfig) -> SimReport {
    let sampling = Sampling {
        fraction: 0.5,
        ..Sampling::default()
    };
    let o = opts.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let mut s = algorithms::build(name, sampling, ClientConfig::default(), &o).unwrap();
    sim::run(w, &mut s, p, &cfg).unwrap()
}

#[test]
fn fedavg_learns_and_is_thread_count_independent() {
    let w = workload(200, Partition::Dirichlet { alpha: 0.5 });
    let p = Participation::UniformK { k: 60 };
    let base = SimConfig {
        rounds: 15,
        seed: 11,
        dropout: 0.1,
        ..SimConfig::default()
    };
    let start = w.evaluate(&w.init()).accuracy;
    let one = run(
        &w,
        "fedavg",
        &[],
        &p,
        SimConfig {
            threads: Some(1),
            ..base.clone()
        },
    );
    let four = run(
        &w,
        "fedavg",
        &[],
        &p,
        SimConfig {
            threads: Some(4),
            ..base.clone()
        },
    );
    assert_eq!(one.model_hash, four.model_hash, "1 vs 4 threads");
    assert_eq!(one.model, four.model);
    assert!(
        one.final_eval.accuracy > start + 0.3,
        "accuracy {} from {start}",
        one.final_eval.accuracy
    );
    let failures: usize = one.rounds.iter().map(|r| r.failures).sum();
    assert!(failures > 0, "dropout 0.1 must produce failures");
    // Another seed gives another model.
    let other = run(&w, "fedavg", &[], &p, SimConfig { seed: 12, ..base });
    assert_ne!(one.model_hash, other.model_hash);
}

#[test]
fn every_strategy_runs_and_learns() {
    let w = workload(100, Partition::Iid);
    let p = Participation::Bernoulli { p: vec![0.5; 100] };
    let cfg = SimConfig {
        rounds: 12,
        seed: 5,
        ..SimConfig::default()
    };
    let start = w.evaluate(&w.init()).accuracy;
    for (name, opts) in [
        ("fedavg", vec![]),
        ("fedprox", vec![("mu", 0.1)]),
        ("fedavgm", vec![("momentum", 0.5)]),
        ("fedadam", vec![("server_lr", 0.05)]),
        ("fedadam-flower", vec![("server_lr", 0.05)]),
        ("fedyogi", vec![("server_lr", 0.05)]),
        ("fedadagrad", vec![("server_lr", 0.05)]),
        ("median", vec![]),
        ("trimmed-mean", vec![("beta", 0.2)]),
        ("krum", vec![("f", 5.0)]),
        ("multi-krum", vec![("f", 5.0), ("keep", 20.0)]),
    ] {
        let r = run(&w, name, &opts, &p, cfg.clone());
        assert!(
            r.final_eval.accuracy > start + 0.25,
            "{name}: accuracy {} (start {start})",
            r.final_eval.accuracy
        );
    }
}

#[test]
fn fedprox_pulls_toward_the_global_model() {
    // A large μ keeps local models near w_t, so the global model moves less per round.
    let w = workload(50, Partition::Iid);
    let p = Participation::All;
    let cfg = SimConfig {
        rounds: 1,
        seed: 2,
        ..SimConfig::default()
    };
    let norm = |r: &SimReport| r.model.iter().flat_map(|p| p.data.iter()).map(|x| x * x).sum::<f64>();
    let a = run(&w, "fedavg", &[], &p, cfg.clone());
    let b = run(&w, "fedprox", &[("mu", 5.0)], &p, cfg);
    assert!(norm(&b) < 0.8 * norm(&a), "prox {} vs avg {}", norm(&b), norm(&a));
}

#[test]
fn cyclic_and_markov_participation_run() {
    let w = workload(60, Partition::Shards { per_client: 2 });
    for p in [
        Participation::CyclicGroups { groups: 3 },
        Participation::Markov {
            pi: vec![0.4; 60],
            lambda: vec![0.6; 60],
        },
        Participation::CyclicOnOff {
            on: vec![1; 60],
            off: vec![2; 60],
        },
    ] {
        let r = run(
            &w,
            "fedavg",
            &[],
            &p,
            SimConfig {
                rounds: 9,
                seed: 1,
                ..SimConfig::default()
            },
        );
        assert!(r.rounds.iter().all(|x| x.results > 0), "{p:?}");
    }
}

#[test]
fn robust_rule_validation() {
    let r = algorithms::build(
        "trimmed-mean",
        Sampling::default(),
        ClientConfig::default(),
        &[("beta".to_string(), 0.5)].into_iter().collect(),
    );
    assert!(r.is_err());
    assert!(RobustRule::TrimmedMean { beta: -0.1 }.validate().is_err());
    assert!(algorithms::build(
        "fedmagic",
        Sampling::default(),
        ClientConfig::default(),
        &Default::default()
    )
    .is_err());
    let bad = ClientConfig {
        optimizer: "nosuch".into(),
        ..ClientConfig::default()
    };
    // An unknown client optimizer is a failure of every client, not a panic.
    let w = workload(10, Partition::Iid);
    let mut s = algorithms::build("fedavg", Sampling::default(), bad, &Default::default()).unwrap();
    let rep = sim::run(
        &w,
        &mut s,
        &Participation::All,
        &SimConfig {
            rounds: 1,
            ..SimConfig::default()
        },
    )
    .unwrap();
    assert_eq!(rep.rounds[0].failures, 10);
    assert!(!rep.rounds[0].updated);
}

#[test]
fn cluster_shift_changes_the_data_over_time() {
    use steepest_fed::partition::ClusterShift;
    let mk = |shift: Option<ClusterShift>| {
        LogReg::new(
            LogRegSpec {
                clients: 80,
                samples_per_client: 40,
                test: 2000,
                shift,
                ..LogRegSpec::default()
            },
            3,
        )
        .unwrap()
    };
    let cfg = SimConfig {
        rounds: 20,
        seed: 1,
        ..SimConfig::default()
    };
    let p = Participation::All;
    let still = run(&mk(None), "fedavg", &[], &p, cfg.clone());
    let shift = Some(ClusterShift {
        clusters: 4,
        switch_prob: 0.1,
    });
    let moving = run(&mk(shift.clone()), "fedavg", &[], &p, cfg.clone());
    let again = run(&mk(shift), "fedavg", &[], &p, cfg);
    assert_eq!(moving.model_hash, again.model_hash);
    // One global model cannot serve four feature rotations at once.
    assert!(
        moving.final_eval.accuracy < still.final_eval.accuracy - 0.1,
        "shifted {} vs static {}",
        moving.final_eval.accuracy,
        still.final_eval.accuracy
    );
}

/// `ClientData::loss_grad` is the gradient `fit` steps on: one full-batch SGD
/// step from the global model equals `x − lr·∇F_k(x)` to the last bit.
#[test]
fn client_data_gradient_is_the_one_fit_uses() {
    use steepest_fed::logreg::{LogReg, LogRegSpec};
    use steepest_fed::strategy::{ClientConfig, FitIns};
    let w = LogReg::new(
        LogRegSpec {
            clients: 4,
            samples_per_client: 12,
            features: 5,
            classes: 3,
            test: 10,
            ..LogRegSpec::default()
        },
        3,
    )
    .unwrap();
    let mut global = w.init();
    global
        .data_mut("w")
        .unwrap()
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = 0.01 * i as f64);
    let ins = FitIns {
        client: 2,
        round: 1,
        config: ClientConfig {
            local_steps: 1,
            batch: 0,
            hyper: steepest::hyper([("lr", 0.5)]),
            ..ClientConfig::default()
        },
    };
    let r = w.fit(&ins, &global, 7).unwrap();
    let data = w.client_data(2, 1).unwrap();
    let mut rows = Vec::new();
    data.batch_into(
        &mut steepest_fed::rng::Rng::stream(7, steepest_fed::rng::Purpose::Train, 2, 1),
        0,
        &mut rows,
    );
    let (loss, g) = data.loss_grad(&global, &rows).unwrap();
    assert!((loss - r.loss).abs() == 0.0, "{loss} vs {}", r.loss);
    for (p, (x, gx)) in r.params.iter().zip(global.iter().zip(g.iter())) {
        for (a, (b, c)) in p.data.iter().zip(x.data.iter().zip(&gx.data)) {
            assert_eq!(*a, b - 0.5 * c);
        }
    }
    assert!(g.iter().any(|t| t.data.iter().any(|v| *v != 0.0)));
    assert!(data.loss_grad(&global, &[]).is_err());
}
