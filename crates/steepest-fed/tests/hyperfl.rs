//! HyperFL (research notes §10): gradients against finite differences, bad
//! configuration, determinism across thread counts, the claims of §10 (d)
//! adapted to the logistic-regression data, and the analytic inversion.

use steepest_fed::algorithms::hyperfl::{
    self, client_loss_grad, invert_first_layer, invert_output_heads, HyperFlConfig, Method, Net,
};
use steepest_fed::logreg::{LogReg, LogRegSpec};
use steepest_fed::partition::Partition;
use steepest_fed::rng::{Purpose, Rng};
use steepest_fed::strategy::Model;
use steepest_fed::Error;

fn data(clients: usize, samples: usize, features: usize, classes: usize, partition: Partition, seed: u64) -> LogReg {
    LogReg::new(
        LogRegSpec {
            clients,
            samples_per_client: samples,
            features,
            classes,
            test: 10,
            partition,
            ..LogRegSpec::default()
        },
        seed,
    )
    .unwrap()
}

fn perturbed(m: &Model, t: usize, j: usize, eps: f64) -> Model {
    let mut out = m.clone();
    out.params_mut()[t].data[j] += eps;
    out
}

/// Central differences with ε = 1e-6 on every coordinate of φ, v and the
/// head: truncation O(ε²·L''') ≈ 1e-12 and rounding ≈ 1e-16·|L|/ε ≈ 1e-10,
/// so 1e-6 (relative to max(1, |g|)) leaves a wide margin and still catches a
/// wrong term (which would be O(|g|)). Random non-zero embedding, so ReLU
/// kinks are hit with probability ~0.
#[test]
fn gradients_match_finite_differences() {
    let w = data(2, 12, 4, 3, Partition::Iid, 1);
    let net = Net {
        d: 4,
        h: 3,
        c: 3,
        e: 2,
        m: 5,
    };
    let mut r = Rng::stream(1, Purpose::Other, 0, 0);
    let phi = net.init_hyper(&mut r);
    let head = net.init_head(&mut r);
    let v: Vec<f64> = (0..net.e).map(|_| r.normal()).collect();
    let cd = w.client_data(0, 0).unwrap();
    let batch: Vec<usize> = cd.rows().to_vec();
    let (_, gphi, gv, ghead) = client_loss_grad(&net, &phi, &v, &head, &cd, &batch).unwrap();
    let loss = |phi: &Model, v: &[f64], head: &Model| client_loss_grad(&net, phi, v, head, &cd, &batch).unwrap().0;
    let eps = 1e-6;
    let close = |fd: f64, an: f64, what: &str| {
        assert!(
            (fd - an).abs() <= 1e-6 * an.abs().max(1.0),
            "{what}: fd {fd} vs analytic {an}"
        );
    };
    let mut checked = 0;
    for (t, p) in phi.iter().enumerate() {
        for j in 0..p.data.len() {
            let fd = (loss(&perturbed(&phi, t, j, eps), &v, &head) - loss(&perturbed(&phi, t, j, -eps), &v, &head))
                / (2.0 * eps);
            close(fd, gphi.iter().nth(t).unwrap().data[j], &format!("{}[{j}]", p.name));
            checked += 1;
        }
    }
    for j in 0..v.len() {
        let (mut a, mut b) = (v.clone(), v.clone());
        a[j] += eps;
        b[j] -= eps;
        close(
            (loss(&phi, &a, &head) - loss(&phi, &b, &head)) / (2.0 * eps),
            gv[j],
            &format!("v[{j}]"),
        );
    }
    for (t, p) in head.iter().enumerate() {
        for j in 0..p.data.len() {
            let fd = (loss(&phi, &v, &perturbed(&head, t, j, eps)) - loss(&phi, &v, &perturbed(&head, t, j, -eps)))
                / (2.0 * eps);
            close(fd, ghead.iter().nth(t).unwrap().data[j], &format!("{}[{j}]", p.name));
        }
    }
    assert_eq!(checked, phi.total_numel());
    // The gradient is not trivially zero.
    assert!(gphi.iter().any(|p| p.data.iter().any(|&x| x.abs() > 1e-4)));
}

#[test]
fn bad_configuration_is_a_config_error() {
    let w = data(3, 10, 4, 3, Partition::Iid, 2);
    let bad = |cfg: HyperFlConfig, field: &str| match hyperfl::run(&w, Method::HyperFl, &cfg) {
        Err(Error::Config(m)) => assert!(m.contains(field), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("accepted a bad {field}"),
    };
    let base = HyperFlConfig {
        rounds: 1,
        ..HyperFlConfig::default()
    };
    bad(
        HyperFlConfig {
            batch: 0,
            ..base.clone()
        },
        "batch",
    );
    bad(
        HyperFlConfig {
            test_fraction: 0.0,
            ..base.clone()
        },
        "test_fraction",
    );
    bad(
        HyperFlConfig {
            test_fraction: 1.0,
            ..base.clone()
        },
        "test_fraction",
    );
    bad(
        HyperFlConfig {
            clip: f64::NAN,
            ..base.clone()
        },
        "clip",
    );
    bad(
        HyperFlConfig {
            embed_dim: 0,
            ..base.clone()
        },
        "embed_dim",
    );
    bad(
        HyperFlConfig {
            hidden: 0,
            ..base.clone()
        },
        "hidden",
    );
    bad(
        HyperFlConfig {
            hyper_hidden: 0,
            ..base.clone()
        },
        "hyper_hidden",
    );
    bad(
        HyperFlConfig {
            threads: Some(0),
            ..base.clone()
        },
        "threads",
    );
    bad(
        HyperFlConfig {
            head_epochs: 0,
            body_epochs: 0,
            ..base.clone()
        },
        "epochs",
    );
    bad(
        HyperFlConfig {
            head_hyper: steepest::hyper([("lr", -1.0)]),
            ..base
        },
        "lr",
    );
}

#[test]
fn deterministic_across_thread_counts() {
    let w = data(8, 40, 20, 10, Partition::Dirichlet { alpha: 0.5 }, 3);
    for method in [Method::HyperFl, Method::FedAvg, Method::Local] {
        let run = |threads| {
            hyperfl::run(
                &w,
                method,
                &HyperFlConfig {
                    rounds: 3,
                    seed: 3,
                    batch: 10,
                    threads: Some(threads),
                    ..HyperFlConfig::default()
                },
            )
            .unwrap()
        };
        let (a, b) = (run(1), run(4));
        assert_eq!(a.shared, b.shared);
        assert_eq!(a.accuracy, b.accuracy);
        assert_eq!(a.train_loss.to_bits(), b.train_loss.to_bits());
    }
}

/// §10 (d), adapted: 20 clients, 150 samples each (120 train / 30 held out),
/// label-skewed by Dir(0.3) on the 20-feature, 10-class Gaussian mixture; 40
/// rounds, batch 10 (the code's 50 would give 3 steps an epoch). Mean
/// personalised held-out accuracy over 20 × 30 = 600 samples: its standard
/// error is ≈ 2 pp, but the three methods are scored on the same held-out
/// samples, so the comparison is paired. Claims: HyperFL ≥ FedAvg − 2 pp
/// (the notes' margin) and HyperFL > local-only. Not reproduced: HyperFL
/// 0.816, FedAvg 0.843, local 0.838 (40 rounds); at 100 rounds 0.825, 0.846,
/// 0.832; with 2 label shards per client (40 rounds) 0.913, 0.825, 0.945 —
/// HyperFL beats FedAvg there but never local-only on this small, nearly
/// linearly separable problem, where a client's 120 samples suffice.
#[test]
#[ignore = "not reproduced: Dir(0.3), 40 rounds: HyperFL 0.816 < FedAvg 0.843 − 0.02 and < local 0.838"]
fn personalised_accuracy_beats_local_and_matches_fedavg() {
    let w = data(20, 150, 20, 10, Partition::Dirichlet { alpha: 0.3 }, 7);
    let cfg = HyperFlConfig {
        rounds: 40,
        seed: 7,
        batch: 10,
        test_fraction: 0.2,
        ..HyperFlConfig::default()
    };
    let acc = |m| hyperfl::run(&w, m, &cfg).unwrap().mean_accuracy;
    let (hyper, fedavg, local) = (acc(Method::HyperFl), acc(Method::FedAvg), acc(Method::Local));
    eprintln!("personalised accuracy: HyperFL {hyper:.4}  FedAvg {fedavg:.4}  local {local:.4}");
    assert!(hyper >= fedavg - 0.02, "HyperFL {hyper} vs FedAvg {fedavg}");
    assert!(hyper > local, "HyperFL {hyper} vs local {local}");
}

fn mse(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64
}

/// One plain SGD step (lr 0.1, no momentum or decay) on one sample; the
/// attacker sees `Δ = before − after` of the upload.
struct Attack {
    x: Vec<f64>,
    var: f64,
    fedavg: Vec<f64>,
    hyper_first: Vec<f64>,
    hyper_heads: Vec<f64>,
    v: Vec<f64>,
}

fn attack() -> Attack {
    let w = data(4, 30, 20, 10, Partition::Iid, 11);
    let net = Net {
        d: 20,
        h: 16,
        c: 10,
        e: 8,
        m: 16,
    };
    let cd = w.client_data(0, 0).unwrap();
    let row = cd.rows()[3];
    let x = cd.sample(row).0.to_vec();
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x.len() as f64;
    let lr = 0.1;
    let mut r = Rng::stream(11, Purpose::Init, 0, 0);
    // FedAvg: the upload holds W1, b1.
    let body = net.init_body(&mut r);
    let head = net.init_head(&mut r);
    let t = |m: &Model, k: &str| m.get(k).unwrap().data.clone();
    let (_, [gw1, gb1, _, _]) = net.loss_grad(
        (&t(&body, "W1"), &t(&body, "b1")),
        (&t(&head, "W2"), &t(&head, "b2")),
        &cd,
        &[row],
    );
    let step = |x0: &[f64], g: &[f64]| -> Vec<f64> { x0.iter().zip(g).map(|(a, b)| a - (a - lr * b)).collect() };
    let fedavg = invert_first_layer(&step(&t(&body, "W1"), &gw1), &step(&t(&body, "b1"), &gb1), net.d).unwrap();
    // HyperFL: the upload holds φ only.
    let phi = net.init_hyper(&mut r);
    let v: Vec<f64> = (0..net.e).map(|_| r.normal()).collect();
    let (_, gphi, _, _) = client_loss_grad(&net, &phi, &v, &head, &cd, &[row]).unwrap();
    let d = |k: &str| step(&t(&phi, k), &gphi.get(k).unwrap().data);
    // The first-layer formula applied to the upload's first layer (A, a0).
    let hyper_first = invert_first_layer(&d("A"), &d("a0"), net.e).unwrap();
    let hyper_heads = invert_output_heads(&net, &d("HW"), &d("Hb")).unwrap();
    Attack {
        x,
        var,
        fedavg,
        hyper_first,
        hyper_heads,
        v,
    }
}

/// Batch size 1: the analytic inversion recovers FedAvg's input (MSE ≈ 0:
/// only the rounding of `x − (x − lr·g)` remains, ≤ 1e-20 against a data
/// variance ≈ 1); the same formula on HyperFL's upload, whose first layer is
/// the hypernetwork's `(A, a0)`, recovers the private embedding `v_i`
/// (`ΔA[k,:] = lr·δ_k v`), not the input.
#[test]
fn analytic_inversion_recovers_fedavg_input_not_from_hyperfl_first_layer() {
    let a = attack();
    let m = mse(&a.fedavg, &a.x);
    eprintln!("FedAvg inversion MSE {m:.3e} (data variance {:.3})", a.var);
    assert!(m < 1e-20 * a.var.max(1.0));
    assert_eq!(a.hyper_first.len(), a.v.len());
    assert!(mse(&a.hyper_first, &a.v) < 1e-20);
    assert_ne!(a.hyper_first.len(), a.x.len());
}

/// The notes' claim "nothing analogous applies to φ updates (reconstruction
/// MSE ≥ 0.5 · data variance)". Not reproduced: the hypernetwork's output
/// layer is linear in its hidden activation `a`, so each column of the
/// `HW`/`Hb` update is `a_k (∂L/∂W1, ∂L/∂b1)` and the same ratio recovers `x`.
#[test]
#[ignore = "not reproduced: the output-head inversion of a HyperFL upload recovers x with MSE ~1e-30 (data variance ~1.5)"]
fn hyperfl_upload_resists_analytic_inversion() {
    let a = attack();
    let m = mse(&a.hyper_heads, &a.x);
    eprintln!("HyperFL output-head inversion MSE {m:.3e} (data variance {:.3})", a.var);
    assert!(m >= 0.5 * a.var);
}

/// The finding behind the ignored claim above, as an exact check.
#[test]
fn hyperfl_output_heads_leak_the_input_at_batch_size_one() {
    let a = attack();
    assert!(mse(&a.hyper_heads, &a.x) < 1e-20 * a.var.max(1.0));
}
