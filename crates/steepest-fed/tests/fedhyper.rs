//! FedHyper (arXiv 2310.03156): exact checks of G, GM and SL, clip bounds,
//! bad configurations, state round-trip, determinism, and the small-scale
//! claim of the research notes §6 (d) on the logistic-regression workload.

use std::collections::BTreeMap;

use steepest_fed::algorithms::fedhyper::{FedHyper, FedHyperConfig, Variant, Weighting};
use steepest_fed::algorithms::{self, FedAvg};
use steepest_fed::logreg::{LogReg, LogRegSpec};
use steepest_fed::participation::Participation;
use steepest_fed::partition::Partition;
use steepest_fed::sim::{self, SimConfig};
use steepest_fed::strategy::{ClientConfig, FitRes, Model, Sampling, Strategy};
use steepest_fed::Error;

fn client(lr: f64) -> ClientConfig {
    ClientConfig {
        optimizer: "sgd".into(),
        hyper: steepest::hyper([("lr", lr)]),
        local_steps: 10,
        batch: 16,
        prox_mu: 0.0,
    }
}

fn skewed(clients: usize, alpha: f64, seed: u64) -> LogReg {
    LogReg::new(
        LogRegSpec {
            clients,
            samples_per_client: 60,
            features: 20,
            classes: 10,
            separation: 0.6,
            test: 3000,
            partition: Partition::Dirichlet { alpha },
            shift: None,
        },
        seed,
    )
    .unwrap()
}

fn sampling() -> Sampling {
    Sampling {
        fraction: 0.2,
        ..Sampling::default()
    }
}

fn cfg(variant: Variant) -> FedHyperConfig {
    FedHyperConfig::new(variant)
}

fn run<S: Strategy + ?Sized>(w: &LogReg, s: &mut S, rounds: u64, threads: Option<usize>) -> sim::SimReport {
    let n = w.spec.clients;
    let c = SimConfig {
        rounds,
        seed: 7,
        eval_every: 1,
        threads,
        ..SimConfig::default()
    };
    sim::run(w, s, &Participation::Bernoulli { p: vec![1.0; n] }, &c).unwrap()
}

fn vec_model(v: &[f64]) -> Model {
    let mut m = Model::new();
    m.push("w", &[v.len()], v.to_vec()).unwrap();
    m
}

fn res(client: usize, v: &[f64], n: u64) -> FitRes {
    FitRes {
        client,
        params: vec_model(v),
        num_examples: n,
        loss: 0.0,
    }
}

fn data(m: &Model) -> Vec<f64> {
    m.get("w").unwrap().data.clone()
}

/// Round 1 of every variant is FedAvg's round bit for bit (example-weighted
/// mean), and with hyper-rate β = 0 FedHyper-G is FedAvg for a whole run.
#[test]
fn first_round_and_zero_hyper_rate_equal_fedavg_bit_for_bit() {
    let w = skewed(20, 0.5, 1);
    let mut avg = FedAvg::new(sampling(), client(0.05)).unwrap();
    let a1 = run(&w, &mut avg, 1, None);
    for v in [Variant::G, Variant::Gm, Variant::Sl] {
        let c = FedHyperConfig {
            weighting: Weighting::Examples,
            ..cfg(v)
        };
        let mut h = FedHyper::new(sampling(), client(0.05), c).unwrap();
        assert_eq!(run(&w, &mut h, 1, None).model_hash, a1.model_hash, "{v:?}");
    }
    let mut avg = FedAvg::new(sampling(), client(0.05)).unwrap();
    let a = run(&w, &mut avg, 12, None);
    let c = FedHyperConfig {
        weighting: Weighting::Examples,
        hyper_lr: 0.0,
        ..cfg(Variant::G)
    };
    let mut h = FedHyper::new(sampling(), client(0.05), c).unwrap();
    assert_eq!(run(&w, &mut h, 12, None).model_hash, a.model_hash);
}

/// Rounds 1–3 on hand-picked uniform means: G's `a` and model, GM's momentum
/// and SL's local rate, written out by hand (exact: same operations).
#[test]
fn updates_match_a_hand_computation() {
    let x0 = [1.0, -2.0];
    // Two clients; uniform mean of their models.
    let rounds = [
        ([1.5, -1.0], [0.5, -2.0]), // x̄ = (1.0, −1.5)
        ([2.0, -1.0], [1.0, -1.0]), // relative to the new x
        ([0.0, 0.0], [0.25, -0.5]),
    ];
    for v in [Variant::G, Variant::Gm, Variant::Sl] {
        let mut s = FedHyper::new(sampling(), client(0.01), cfg(v)).unwrap();
        let mut x = x0.to_vec();
        let (mut a, mut last, mut lr): (f64, Option<Vec<f64>>, f64) = (0.0, None, 0.01);
        for (t, (p, q)) in rounds.iter().enumerate() {
            let r = [res(0, p, 3), res(1, q, 9)];
            let out = data(&s.aggregate_fit(t as u64 + 1, &vec_model(&x), &r, &[]).unwrap());
            let xbar: Vec<f64> = (0..2).map(|j| (p[j] + q[j]) / 2.0).collect();
            let d: Vec<f64> = (0..2).map(|j| xbar[j] - x[j]).collect();
            let want: Vec<f64> = match (v, &last) {
                (_, None) => {
                    last = Some(d.clone());
                    xbar.clone()
                }
                (Variant::G, Some(l)) => {
                    a = (a + (l[0] * d[0] + l[1] * d[1])).clamp(-0.8, 4.0);
                    last = Some(d.clone());
                    (0..2).map(|j| xbar[j] + a * d[j]).collect()
                }
                (Variant::Gm, Some(m)) => {
                    a = (a + (m[0] * d[0] + m[1] * d[1])).clamp(-0.2, 4.0);
                    let o = (0..2).map(|j| xbar[j] + a * d[j] + 0.9 * a * m[j]).collect();
                    last = Some((0..2).map(|j| d[j] + 0.9 * m[j]).collect());
                    o
                }
                (Variant::Sl, Some(l)) => {
                    a += l[0] * d[0] + l[1] * d[1];
                    lr = (0.01 * (1.0 + a)).clamp(1e-3, 0.1);
                    last = Some(d.clone());
                    xbar.clone()
                }
                _ => unreachable!("CL and FULL are checked below"),
            };
            assert_eq!(out, want, "{v:?} round {}", t + 1);
            assert_eq!(s.a(), a, "{v:?}");
            x = out;
        }
        assert!(a != 0.0, "{v:?}: the example must move a");
        if v == Variant::Sl {
            assert_eq!(s.local_lr(), lr);
            let ins = s.configure_fit(4, &[0, 1], 0).unwrap();
            assert_eq!(ins[0].config.hyper["lr"].as_f64(), Some(lr));
        }
    }
}

/// The clip bounds hold: aligned large updates push `a` to its upper bound 4
/// (global rate 5), opposed ones to −0.8 (G) / −0.2 (GM); SL's local rate
/// stays in [1e-3, 0.1].
#[test]
fn clip_bounds_hold() {
    for (v, lo) in [
        (Variant::G, -0.8),
        (Variant::Gm, -0.2),
        (Variant::Sl, f64::NEG_INFINITY),
    ] {
        for sign in [1.0, -1.0] {
            let mut s = FedHyper::new(sampling(), client(0.01), cfg(v)).unwrap();
            let mut x = vec![0.0, 0.0];
            for t in 1..=6u64 {
                // Alternating (sign −1) or constant (sign +1) direction, norm 10.
                let dir = if t % 2 == 0 { sign } else { 1.0 };
                let target: Vec<f64> = x.iter().map(|xi| xi + 10.0 * dir).collect();
                x = data(&s.aggregate_fit(t, &vec_model(&x), &[res(0, &target, 1)], &[]).unwrap());
                match v {
                    Variant::Sl => {
                        assert!((1e-3..=0.1).contains(&s.local_lr()), "{}", s.local_lr());
                    }
                    _ => assert!(s.a() >= lo && s.a() <= 4.0),
                }
            }
            match (v, sign > 0.0) {
                (Variant::Sl, true) => assert_eq!(s.local_lr(), 0.1),
                (Variant::Sl, false) => assert_eq!(s.local_lr(), 1e-3),
                (_, true) => assert_eq!(s.a(), 4.0),
                (_, false) => assert_eq!(s.a(), lo),
            }
        }
    }
}

/// The state saved after round 6 and loaded into a fresh strategy continues
/// the run bit for bit (and a fresh strategy without it does not).
#[test]
fn state_round_trip_restores_the_exact_run() {
    let w = skewed(20, 0.5, 2);
    let c = SimConfig {
        seed: 5,
        ..SimConfig::default()
    };
    let all: Vec<usize> = (0..20).collect();
    for v in [Variant::G, Variant::Gm, Variant::Sl] {
        let mk = || FedHyper::new(sampling(), client(0.05), cfg(v)).unwrap();
        let (mut a, mut b, mut fresh) = (mk(), None::<FedHyper>, None::<FedHyper>);
        let (mut ga, mut gb, mut gf) = (w.init(), w.init(), w.init());
        for t in 1..=12u64 {
            if t == 7 {
                let bytes = a.state_bytes().unwrap().unwrap();
                let mut r = mk();
                r.load_state_bytes(&ga, &bytes).unwrap();
                let mut wrong = Model::new();
                wrong.push("w", &[3], vec![0.0; 3]).unwrap();
                assert!(mk().load_state_bytes(&wrong, &bytes).is_err());
                b = Some(r);
                fresh = Some(mk());
                gb = ga.clone();
                gf = ga.clone();
            }
            let ins = a.configure_fit(t, &all, c.seed).unwrap();
            let (res, fail) = sim::train_round(&w, &ins, &ga, &c);
            ga = a.aggregate_fit(t, &ga, &res, &fail).unwrap();
            for (s, g) in [(b.as_mut(), &mut gb), (fresh.as_mut(), &mut gf)] {
                if let Some(s) = s {
                    let ins = s.configure_fit(t, &all, c.seed).unwrap();
                    let (res, fail) = sim::train_round(&w, &ins, g, &c);
                    *g = s.aggregate_fit(t, g, &res, &fail).unwrap();
                }
            }
        }
        assert_eq!(sim::model_hash(&ga), sim::model_hash(&gb), "{v:?}");
        assert_ne!(
            sim::model_hash(&ga),
            sim::model_hash(&gf),
            "{v:?}: the state must matter"
        );
    }
}

#[test]
fn bad_configurations_are_errors_naming_the_field() {
    let bad = [
        (
            FedHyperConfig {
                hyper_lr: -1.0,
                ..cfg(Variant::G)
            },
            "hyper_lr",
        ),
        (
            FedHyperConfig {
                bounds: (-1.0, 4.0),
                ..cfg(Variant::G)
            },
            "bounds",
        ),
        (
            FedHyperConfig {
                bounds: (0.5, 4.0),
                ..cfg(Variant::Gm)
            },
            "bounds",
        ),
        (
            FedHyperConfig {
                momentum: 1.0,
                ..cfg(Variant::Gm)
            },
            "momentum",
        ),
        (
            FedHyperConfig {
                lr_bounds: (0.0, 0.1),
                ..cfg(Variant::Sl)
            },
            "lr_bounds",
        ),
    ];
    for (c, field) in bad {
        match FedHyper::new(sampling(), client(0.01), c) {
            Err(Error::Config(m)) => assert!(m.contains(field), "{m}"),
            other => panic!("{field}: {other:?}"),
        }
    }
    let no_lr = ClientConfig {
        hyper: steepest::hyper([("momentum", 0.5)]),
        ..client(0.01)
    };
    assert!(matches!(FedHyper::new(sampling(), no_lr, cfg(Variant::Sl)), Err(Error::Config(m)) if m.contains("lr")));
    let mut opts = BTreeMap::new();
    opts.insert("momentum".to_string(), 1.5);
    assert!(matches!(
        algorithms::build("fedhyper-gm", sampling(), client(0.01), &opts),
        Err(Error::Config(m)) if m.contains("momentum")
    ));
    assert!(FedHyper::new(sampling(), client(0.01), cfg(Variant::G))
        .unwrap()
        .load_state_bytes(&vec_model(&[0.0]), b"not json")
        .is_err());
}

#[test]
fn deterministic_across_thread_counts() {
    let w = skewed(30, 0.5, 3);
    for name in ["fedhyper-g", "fedhyper-gm", "fedhyper-sl"] {
        let mut a = algorithms::build(name, sampling(), client(0.05), &BTreeMap::new()).unwrap();
        let mut b = algorithms::build(name, sampling(), client(0.05), &BTreeMap::new()).unwrap();
        assert_eq!(
            run(&w, &mut a, 8, Some(1)).model_hash,
            run(&w, &mut b, 8, Some(3)).model_hash,
            "{name}"
        );
    }
    let clients = steepest_fed::algorithms::fedhyper::FedHyperClients::new(&w);
    let hash = |threads| {
        let mut s = algorithms::build("fedhyper-full", sampling(), client(0.05), &BTreeMap::new()).unwrap();
        let c = SimConfig {
            rounds: 8,
            seed: 7,
            threads,
            ..SimConfig::default()
        };
        sim::run(&clients, &mut s, &Participation::Bernoulli { p: vec![1.0; 30] }, &c)
            .unwrap()
            .model_hash
    };
    assert_eq!(hash(Some(1)), hash(Some(3)));
}

fn rounds_to(r: &sim::SimReport, target: f64) -> Option<u64> {
    r.rounds
        .iter()
        .find(|x| x.eval.is_some_and(|e| e.loss <= target))
        .map(|x| x.round)
}

/// Research notes §6 (d), adapted: the paper's MNIST MLP, Dir(0.5), with a
/// badly chosen local rate, becomes the logistic-regression workload with
/// Dir(0.5) label skew, 50 clients, 20% per round, 10 local SGD steps, with
/// `η_l0 = 0.01` (ten times below the 0.1 at which FedAvg reaches the target
/// in ~10 rounds). Target: test loss 0.8 (what FedAvg at 0.1 reaches by round
/// 10). Measured rounds to the target within 150 rounds, one seed.
/// Checked: FedHyper-G and -SL need fewer rounds than FedAvg (strictly), and
/// GM — the code's recommended form — at most FedAvg's / 1.1 (the notes'
/// factor). No tolerance beyond that: the comparisons are of whole rounds.
/// Measured when written: FedAvg 78, G 71, SL 71, GM 23 (printed; 2 s).
/// CL and FULL are printed, not asserted (not part of the notes' claim):
/// CL 78 (its per-step factor β barely moves at this rate), FULL 23.
#[test]
fn claim_fedhyper_reaches_the_target_sooner_with_a_too_small_local_rate() {
    let w = skewed(50, 0.5, 3);
    let t0 = std::time::Instant::now();
    let target = 0.8;
    let mut out = Vec::new();
    for name in [
        "fedavg",
        "fedhyper-g",
        "fedhyper-gm",
        "fedhyper-sl",
        "fedhyper-cl",
        "fedhyper-full",
    ] {
        let mut s = algorithms::build(name, sampling(), client(0.01), &BTreeMap::new()).unwrap();
        let r = if name.ends_with("cl") || name.ends_with("full") {
            let c = SimConfig {
                rounds: 150,
                seed: 7,
                eval_every: 1,
                ..SimConfig::default()
            };
            let part = Participation::Bernoulli { p: vec![1.0; 50] };
            let clients = steepest_fed::algorithms::fedhyper::FedHyperClients::new(&w);
            sim::run(&clients, &mut s, &part, &c).unwrap()
        } else {
            run(&w, &mut s, 150, None)
        };
        out.push((name, rounds_to(&r, target)));
    }
    eprintln!(
        "rounds to test loss {target}: {out:?} ({:.1} s)",
        t0.elapsed().as_secs_f64()
    );
    let avg = out[0].1.expect("fedavg reaches the target within 150 rounds") as f64;
    let g = out[1].1.expect("fedhyper-g reaches the target") as f64;
    let gm = out[2].1.expect("fedhyper-gm reaches the target") as f64;
    let sl = out[3].1.expect("fedhyper-sl reaches the target") as f64;
    assert!(g < avg, "G {g} vs FedAvg {avg}");
    assert!(sl < avg, "SL {sl} vs FedAvg {avg}");
    assert!(gm <= avg / 1.1, "GM {gm} vs FedAvg {avg}");
}

/// The notes' factor for FedHyper-G itself (≤ 1/1.1 of FedAvg's rounds).
#[test]
#[ignore = "not reproduced (by a hair): FedHyper-G 71 rounds vs FedAvg 78 to test loss 0.8 (factor 1.099 < 1.1); with the code's β = 1 the hypergradient ⟨Δ_{t−1}, Δ_t⟩ of this 210-parameter model is small at η_l = 0.01, so a grows slowly"]
fn claim_fedhyper_g_is_at_least_ten_percent_faster() {
    let w = skewed(50, 0.5, 3);
    let mut a = algorithms::build("fedavg", sampling(), client(0.01), &BTreeMap::new()).unwrap();
    let mut g = algorithms::build("fedhyper-g", sampling(), client(0.01), &BTreeMap::new()).unwrap();
    let avg = rounds_to(&run(&w, &mut a, 150, None), 0.8).unwrap() as f64;
    let gr = rounds_to(&run(&w, &mut g, 150, None), 0.8).unwrap() as f64;
    assert!(gr <= avg / 1.1, "G {gr} vs FedAvg {avg}");
}

fn tiny() -> LogReg {
    LogReg::new(
        LogRegSpec {
            clients: 3,
            samples_per_client: 6,
            features: 3,
            classes: 2,
            test: 50,
            ..LogRegSpec::default()
        },
        4,
    )
    .unwrap()
}

fn flat(m: &Model) -> Vec<f64> {
    m.iter().flat_map(|p| p.data.iter().copied()).collect()
}

fn model_like(like: &Model, v: &[f64]) -> Model {
    let mut m = Model::new();
    let mut off = 0;
    for p in like.iter() {
        m.push(p.name.clone(), &p.shape, v[off..off + p.data.len()].to_vec())
            .unwrap();
        off += p.data.len();
    }
    m
}

/// CL's local loop, three full-batch SGD steps, against a hand computation:
/// steps 1 and 2 at rate η, then `β = clip(min(1.1, 1 + 0.1⟨u₂,Δ⟩/m + ⟨u₂,Δ⟩), 0.1, 10)`
/// and step 3 at rate βη. Tolerance 1e-14 (the optimizer applies `lr · scale`
/// in its own order).
#[test]
fn cl_local_loop_matches_a_hand_computation() {
    let w = tiny();
    let lr = 0.5;
    let cc = ClientConfig {
        local_steps: 3,
        batch: 0,
        ..client(lr)
    };
    let mut s = FedHyper::new(Sampling::default(), cc, cfg(Variant::Cl)).unwrap();
    let x0 = w.init();
    let n = flat(&x0).len();
    // Round 1 (synthetic) sets Δ_1 = δ.
    let delta: Vec<f64> = (0..n).map(|i| 0.05 * (i as f64) - 0.1).collect();
    let r1 = FitRes {
        client: 0,
        params: model_like(&x0, &delta),
        num_examples: 1,
        loss: 0.0,
    };
    let g1 = s.aggregate_fit(1, &x0, &[r1], &[]).unwrap();
    assert_eq!(flat(&g1), delta);
    let ins = s.configure_fit(2, &[0, 1, 2], 0).unwrap();
    let m = ins.len() as f64;
    let clients = steepest_fed::algorithms::fedhyper::FedHyperClients::new(&w);
    let got = clients.fit(&ins[1], &g1, 0).unwrap();
    let data = w.client_data(1, 2).unwrap();
    let rows = w.parts[1].clone();
    let grad = |x: &[f64]| flat(&data.loss_grad(&model_like(&x0, x), &rows).unwrap().1);
    let x0v = flat(&g1);
    let step = |x: &[f64], rate: f64| -> Vec<f64> { x.iter().zip(grad(x)).map(|(a, g)| a - rate * g).collect() };
    let x1 = step(&x0v, lr);
    let x2 = step(&x1, lr);
    let u2: Vec<f64> = x2.iter().zip(&x1).map(|(a, b)| a - b).collect();
    let d: f64 = u2.iter().zip(&delta).map(|(a, b)| a * b).sum();
    let beta = (1.0 + 0.1 * d / m + d).min(1.1).clamp(0.1, 10.0);
    assert!(beta != 1.0, "the example must change β");
    let x3 = step(&x2, lr * beta);
    for (a, b) in flat(&got.params).iter().zip(&x3) {
        assert!((a - b).abs() < 1e-14, "{a} vs {b}");
    }
}

/// With two local steps CL's β never acts (it changes after step 2), so
/// FedHyper-CL with FedAvg's weighting is FedAvg bit for bit over a run;
/// a CL round on plain `LogReg` clients fails instead of running FedAvg.
#[test]
fn cl_with_two_local_steps_is_fedavg_and_needs_its_clients() {
    let w = skewed(20, 0.5, 1);
    let cc = ClientConfig {
        local_steps: 2,
        ..client(0.05)
    };
    let mut avg = FedAvg::new(sampling(), cc.clone()).unwrap();
    let a = run(&w, &mut avg, 6, None);
    let c = FedHyperConfig {
        weighting: Weighting::Examples,
        ..cfg(Variant::Cl)
    };
    let mut h = FedHyper::new(sampling(), cc.clone(), c).unwrap();
    let clients = steepest_fed::algorithms::fedhyper::FedHyperClients::new(&w);
    let simc = SimConfig {
        rounds: 6,
        seed: 7,
        ..SimConfig::default()
    };
    let part = Participation::Bernoulli { p: vec![1.0; 20] };
    assert_eq!(
        sim::run(&clients, &mut h, &part, &simc).unwrap().model_hash,
        a.model_hash
    );
    let mut h = FedHyper::new(sampling(), cc, cfg(Variant::Cl)).unwrap();
    let r = sim::run(&w, &mut h, &part, &simc).unwrap();
    assert!(r.rounds.iter().all(|x| !x.updated && x.failures > 0));
}
