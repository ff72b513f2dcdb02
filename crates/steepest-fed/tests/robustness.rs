//! Poisoning: 20% of the clients attack (sign flip, scaling, Gaussian).
//! Robust strategies must stay within `TOL` accuracy of the clean FedAvg run;
//! plain FedAvg must lose at least `FEDAVG_DROP`. Measured, not asserted
//! blindly: the numbers are printed (`cargo test -- --nocapture`).

use steepest_fed::algorithms;
use steepest_fed::attack::{malicious_set, Attack};
use steepest_fed::logreg::{LogReg, LogRegSpec};
use steepest_fed::participation::Participation;
use steepest_fed::sim::{self, SimConfig};
use steepest_fed::strategy::{ClientConfig, Sampling};

/// Robust strategies: at most this far (absolute accuracy) below clean FedAvg.
const TOL: f64 = 0.03;
/// Plain FedAvg under attack: at least this far below clean FedAvg.
const FEDAVG_DROP: f64 = 0.10;

fn accuracy(w: &LogReg, name: &str, opts: &[(&str, f64)], attack: Option<Attack>) -> f64 {
    let clients = w.spec.clients;
    let o = opts.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let mut s = algorithms::build(name, Sampling::default(), ClientConfig::default(), &o).unwrap();
    let cfg = SimConfig {
        rounds: 30,
        seed: 7,
        attack: attack.map(|a| (a, malicious_set(clients, 0.2, 7))),
        ..SimConfig::default()
    };
    sim::run(w, &mut s, &Participation::All, &cfg)
        .unwrap()
        .final_eval
        .accuracy
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
    let clean = accuracy(&w, "fedavg", &[], None);
    eprintln!("clean fedavg accuracy {clean:.4}");
    assert!(clean > 0.6, "clean run must learn: {clean}");
    let robust: [(&str, &[(&str, f64)]); 4] = [
        ("median", &[]),
        ("trimmed-mean", &[("beta", 0.25)]),
        ("krum", &[("f", 20.0)]),
        ("multi-krum", &[("f", 20.0), ("keep", 50.0)]),
    ];
    let attacks = [
        Attack::SignFlip { scale: 10.0 },
        Attack::Scale { scale: 100.0 },
        Attack::Gaussian { sigma: 10.0 },
    ];
    let mut failures = Vec::new();
    for a in attacks {
        let avg = accuracy(&w, "fedavg", &[], Some(a));
        eprintln!("{a:?}: fedavg {avg:.4} (clean {clean:.4})");
        if avg > clean - FEDAVG_DROP {
            failures.push(format!("{a:?}: plain fedavg kept {avg:.4}, clean {clean:.4}"));
        }
        for (name, opts) in robust {
            let acc = accuracy(&w, name, opts, Some(a));
            eprintln!("{a:?}: {name} {acc:.4}");
            if acc < clean - TOL {
                failures.push(format!("{a:?}: {name} {acc:.4} < clean {clean:.4} − {TOL}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
