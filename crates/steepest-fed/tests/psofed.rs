//! PSO-Fed (`algorithms/psofed.rs`): Online-Fed at M = D bit for bit,
//! convergence without attacks, configuration errors, determinism and the
//! notes' small-scale claim (§9 (d)).

use steepest_fed::algorithms::psofed::{monte_carlo, run, run_online_fed, steady_state_db, PsoFedConfig};
use steepest_fed::Error;

fn small() -> PsoFedConfig {
    PsoFedConfig {
        clients: 12,
        features: 24,
        selected: 3,
        shared: 24,
        byzantine: 4,
        attack_prob: 0.5,
        test: 20,
        iters: 300,
        ..PsoFedConfig::default()
    }
}

#[test]
fn full_sharing_is_online_fed_bit_for_bit() {
    for uplink_next in [true, false] {
        let cfg = PsoFedConfig { uplink_next, ..small() };
        for r in 0..3 {
            let a = run(&cfg, 7, r).unwrap();
            let b = run_online_fed(&cfg, 7, r).unwrap();
            assert_eq!(
                a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "run {r}: PSO-Fed with M = D differs from Online-Fed"
            );
        }
    }
    // And partial sharing is a different algorithm.
    let cfg = PsoFedConfig { shared: 6, ..small() };
    assert_ne!(run(&cfg, 7, 0).unwrap(), run_online_fed(&cfg, 7, 0).unwrap());
}

/// No Byzantine clients, small step (μ = 0.1): the test MSE of the global
/// model decreases. Blocks of 300 iterations, 3 Monte-Carlo runs; each block
/// mean must not exceed the previous one by more than 0.2 dB (the
/// Monte-Carlo wiggle of a 300-iteration mean at 3 runs is below 0.1 dB once
/// the curve flattens), and the last block is at least 3 dB below the first.
#[test]
fn mse_decreases_without_attacks() {
    let cfg = PsoFedConfig {
        byzantine: 0,
        mu: 0.1,
        iters: 1500,
        ..PsoFedConfig::default()
    };
    let c = monte_carlo(&cfg, 3, 3).unwrap();
    let blocks: Vec<f64> = c.chunks(300).map(|b| b.iter().sum::<f64>() / b.len() as f64).collect();
    eprintln!("block means (dB): {blocks:?}");
    for w in blocks.windows(2) {
        assert!(w[1] <= w[0] + 0.2, "MSE rose: {blocks:?}");
    }
    assert!(
        blocks[blocks.len() - 1] <= blocks[0] - 3.0,
        "MSE fell < 3 dB: {blocks:?}"
    );
}

fn config_err(cfg: PsoFedConfig, field: &str) {
    match run(&cfg, 0, 0) {
        Err(Error::Config(m)) => assert!(m.contains(field), "error `{m}` does not name `{field}`"),
        other => panic!("expected Error::Config naming {field}, got {other:?}"),
    }
}

#[test]
fn bad_configuration_names_the_field() {
    let ok = PsoFedConfig { iters: 3, ..small() };
    assert!(run(&ok, 0, 0).is_ok());
    config_err(
        PsoFedConfig {
            clients: 0,
            ..ok.clone()
        },
        "clients",
    );
    config_err(
        PsoFedConfig {
            features: 0,
            ..ok.clone()
        },
        "features",
    );
    config_err(
        PsoFedConfig {
            input_dim: 3,
            ..ok.clone()
        },
        "input_dim",
    );
    config_err(
        PsoFedConfig {
            selected: 0,
            ..ok.clone()
        },
        "selected",
    );
    config_err(
        PsoFedConfig {
            selected: 13,
            ..ok.clone()
        },
        "selected",
    );
    config_err(
        PsoFedConfig {
            shared: 0,
            ..ok.clone()
        },
        "shared",
    );
    config_err(
        PsoFedConfig {
            shared: 25,
            ..ok.clone()
        },
        "shared",
    );
    config_err(PsoFedConfig { mu: 0.0, ..ok.clone() }, "mu");
    config_err(
        PsoFedConfig {
            byzantine: 13,
            ..ok.clone()
        },
        "byzantine",
    );
    config_err(
        PsoFedConfig {
            attack_prob: 1.5,
            ..ok.clone()
        },
        "attack_prob",
    );
    config_err(
        PsoFedConfig {
            attack_var: -1.0,
            ..ok.clone()
        },
        "attack_var",
    );
    config_err(
        PsoFedConfig {
            input_var: f64::NAN,
            ..ok.clone()
        },
        "input_var",
    );
    config_err(
        PsoFedConfig {
            obs_var: -1.0,
            ..ok.clone()
        },
        "obs_var",
    );
    config_err(
        PsoFedConfig {
            kernel_width: 0.0,
            ..ok.clone()
        },
        "kernel_width",
    );
    config_err(PsoFedConfig { test: 0, ..ok.clone() }, "test");
    config_err(PsoFedConfig { iters: 0, ..ok.clone() }, "iters");
    match monte_carlo(&ok, 0, 0) {
        Err(Error::Config(m)) => assert!(m.contains("runs")),
        other => panic!("expected Error::Config naming runs, got {other:?}"),
    }
}

#[test]
fn deterministic_for_a_seed() {
    let cfg = PsoFedConfig { shared: 5, ..small() };
    let a = monte_carlo(&cfg, 11, 2).unwrap();
    assert_eq!(a, monte_carlo(&cfg, 11, 2).unwrap());
    assert_ne!(a, monte_carlo(&cfg, 12, 2).unwrap());
}

/// The notes' claim §9 (d): N = 100, D = 200, C = 4, 20 Byzantine clients,
/// p_a = 0.5 (σ_a² = 0.25, μ = 0.4: our choices, the paper's values were
/// not readable). Steady-state test MSE = mean dB over the last 1000 of 4000
/// iterations (small M converges slowly: at 2000 iterations M = 4 was still
/// 0.6 dB above M = 40), 3 Monte-Carlo runs per M (fewer than a paper would
/// use, to stay under 60 s). Checked: PSO-Fed with M = 4 beats Online-Fed
/// (M = D) by at least 3 dB, and the steady-state MSE does not fall as M/D
/// grows over {0.02, 0.2, 1}, up to 0.5 dB (about the spread of a 3-run
/// steady-state mean).
#[test]
fn claim_mse_rises_with_sharing_ratio_under_attack() {
    let ms = [4usize, 40, 200];
    let ss: Vec<f64> = ms
        .iter()
        .map(|&m| {
            let cfg = PsoFedConfig {
                shared: m,
                iters: 4000,
                ..PsoFedConfig::default()
            };
            steady_state_db(&monte_carlo(&cfg, 1, 3).unwrap(), 1000)
        })
        .collect();
    eprintln!("steady-state test MSE (dB) for M = {ms:?}: {ss:?}");
    assert!(
        ss[0] <= ss[2] - 3.0,
        "PSO-Fed M=4 {:.2} dB vs Online-Fed {:.2} dB",
        ss[0],
        ss[2]
    );
    for i in 1..ss.len() {
        assert!(
            ss[i] >= ss[i - 1] - 0.5,
            "MSE fell from M={} to M={}: {ss:?}",
            ms[i - 1],
            ms[i]
        );
    }
}

#[test]
fn cli_prints_the_curve_as_json() {
    let args: Vec<String> =
        "psofed --shared 8 --features 16 --clients 10 --selected 2 --byzantine 2 --iters 30 --runs 2"
            .split_whitespace()
            .map(String::from)
            .collect();
    let out = steepest_fed::cli::run(&args).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["algorithm"], "pso-fed");
    assert_eq!(v["curve_db"].as_array().unwrap().len(), 30);
    let bad: Vec<String> = ["psofed", "--shared", "0"].iter().map(|s| s.to_string()).collect();
    assert!(matches!(steepest_fed::cli::run(&bad), Err(Error::Config(m)) if m.contains("shared")));
}

#[test]
#[ignore]
fn explore_seed_spread() {
    for seed in [2u64, 3, 4] {
        let ss: Vec<f64> = [4usize, 40]
            .iter()
            .map(|&m| {
                let cfg = PsoFedConfig { shared: m, iters: 4000, ..PsoFedConfig::default() };
                steady_state_db(&monte_carlo(&cfg, seed, 3).unwrap(), 1000)
            })
            .collect();
        eprintln!("seed {seed}: M=4 {:.2} M=40 {:.2}", ss[0], ss[1]);
    }
}
