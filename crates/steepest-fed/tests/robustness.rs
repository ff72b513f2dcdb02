//! Poisoning: 20% of the clients (a fixed seeded set; every client takes part
//! every round, so exactly 20 of 100 results are poisoned each round) attack
//! by sign flip, scaling or Gaussian noise (see `steepest_fed::attack`).
//!
//! Stated tolerances (absolute test accuracy, 30 rounds, logistic regression):
//! - every robust strategy under attack stays within `TOL_OWN` of its own
//!   clean run, and within `TOL_FEDAVG` of clean FedAvg — except Krum, which
//!   keeps a single client's model (trained on 50 samples) and so pays a
//!   known statistical price even without attackers: `TOL_KRUM` of clean FedAvg;
//! - plain FedAvg under sign flip and Gaussian noise loses at least
//!   `FEDAVG_DROP`; under positive scaling (`x + 1000 Δ`, which mostly
//!   inflates the weights, and a softmax classifier's argmax is scale
//!   invariant) it loses at least `FEDAVG_DROP_SCALE` accuracy and its test
//!   loss grows at least 5×.
//!
//! Run with `--nocapture` to see the measured numbers.

use steepest_fed::algorithms;
use steepest_fed::attack::{malicious_set, Attack};
use steepest_fed::logreg::{LogReg, LogRegSpec};
use steepest_fed::participation::Participation;
use steepest_fed::sim::{self, SimConfig};
use steepest_fed::strategy::{ClientConfig, Evaluation, Sampling};

const TOL_OWN: f64 = 0.02;
const TOL_FEDAVG: f64 = 0.02;
const TOL_KRUM: f64 = 0.06;
const FEDAVG_DROP: f64 = 0.25;
const FEDAVG_DROP_SCALE: f64 = 0.05;

fn eval(w: &LogReg, name: &str, opts: &[(&str, f64)], attack: Option<Attack>) -> Evaluation {
    let clients = w.spec.clients;
    let o = opts.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let mut s = algorithms::build(name, Sampling::default(), ClientConfig::default(), &o).unwrap();
    let cfg = SimConfig {
        rounds: 30,
        seed: 7,
        attack: attack.map(|a| (a, malicious_set(clients, 0.2, 7))),
        ..SimConfig::default()
    };
    sim::run(w, &mut s, &Participation::All, &cfg).unwrap().final_eval
}

#[test]
fn robust_strategies_resist_twenty_percent_poisoning() {
    let w = LogReg::new(
        LogRegSpec {
            clients: 100,
            samples_per_client: 50,
            test: 4000,
            ..LogRegSpec::default()
        },
        1,
    )
    .unwrap();
    let clean = eval(&w, "fedavg", &[], None);
    eprintln!("clean fedavg: accuracy {:.4}, loss {:.4}", clean.accuracy, clean.loss);
    assert!(clean.accuracy > 0.6, "clean run must learn: {clean:?}");
    let robust: [(&str, &[(&str, f64)]); 4] = [
        ("median", &[]),
        ("trimmed-mean", &[("beta", 0.25)]),
        ("krum", &[("f", 20.0)]),
        ("multi-krum", &[("f", 20.0), ("keep", 50.0)]),
    ];
    let own_clean: Vec<f64> = robust.iter().map(|(n, o)| eval(&w, n, o, None).accuracy).collect();
    for ((n, _), a) in robust.iter().zip(&own_clean) {
        eprintln!("clean {n}: accuracy {a:.4}");
    }
    let attacks = [
        Attack::SignFlip { scale: 10.0 },
        Attack::Scale { scale: 1000.0 },
        Attack::Gaussian { sigma: 10.0 },
    ];
    let mut failures = Vec::new();
    for a in attacks {
        let avg = eval(&w, "fedavg", &[], Some(a));
        eprintln!("{a:?}: fedavg accuracy {:.4}, loss {:.4}", avg.accuracy, avg.loss);
        let scaling = matches!(a, Attack::Scale { .. });
        let drop = if scaling { FEDAVG_DROP_SCALE } else { FEDAVG_DROP };
        if avg.accuracy > clean.accuracy - drop {
            failures.push(format!(
                "{a:?}: plain fedavg kept {:.4}, clean {:.4}",
                avg.accuracy, clean.accuracy
            ));
        }
        if scaling && avg.loss.is_finite() && avg.loss < 5.0 * clean.loss {
            failures.push(format!(
                "{a:?}: plain fedavg loss {:.4} < 5 × clean {:.4}",
                avg.loss, clean.loss
            ));
        }
        for ((name, opts), own) in robust.iter().zip(&own_clean) {
            let acc = eval(&w, name, opts, Some(a)).accuracy;
            eprintln!("{a:?}: {name} accuracy {acc:.4}");
            let tol = if *name == "krum" { TOL_KRUM } else { TOL_FEDAVG };
            if acc < clean.accuracy - tol || acc < own - TOL_OWN {
                failures.push(format!(
                    "{a:?}: {name} {acc:.4} (clean fedavg {:.4}, own clean {own:.4})",
                    clean.accuracy
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
