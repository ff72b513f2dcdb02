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
/// model decreases. Blocks of 300 iterations, 3 Monte-Carlo runs. Measured
/// block means: −0.51, −3.84, −5.20, −6.10, −6.65 dB (the smallest drop
/// 0.55 dB). Asserted: no block above the previous by more than 0.2 dB
/// (room for Monte-Carlo noise, well under the measured drops) and the last
/// block at least 3 dB below the first.
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

/// Steady-state test MSE (mean dB over the last 1000 of 4000 iterations, 3
/// Monte-Carlo runs, seed 1) of PSO-Fed with `M` shared entries under the
/// notes' attack setting (§9 (d)): N = 100, D = 200, C = 4, 20 Byzantine
/// clients, p_a = 0.5; σ_a² = 0.25 and μ = 0.4 are our choices (the paper's
/// values were not readable). 3 runs instead of a paper's hundreds keeps each
/// test under 60 s.
fn steady_state(m: usize) -> f64 {
    let cfg = PsoFedConfig {
        shared: m,
        iters: 4000,
        ..PsoFedConfig::default()
    };
    steady_state_db(&monte_carlo(&cfg, 1, 3).unwrap(), 1000)
}

/// Claim §9 (d), first part: partial sharing beats Online-Fed under attack.
/// Measured (seed 1): M = 4 −9.98 dB, M = 40 −10.33 dB, Online-Fed (M = D)
/// +1.22 dB. Asserted: both partial-sharing runs at least 3 dB below
/// Online-Fed (the margin is ~11 dB; a 3-run steady-state mean moves by
/// under 1 dB across seeds 1–4, so the test fails only if the effect is lost).
#[test]
fn claim_partial_sharing_beats_online_fed_under_attack() {
    let online = steady_state(200);
    for m in [4usize, 40] {
        let ss = steady_state(m);
        eprintln!("steady-state test MSE: M = {m} {ss:.2} dB, Online-Fed {online:.2} dB");
        assert!(
            ss <= online - 3.0,
            "PSO-Fed M={m} {ss:.2} dB vs Online-Fed {online:.2} dB"
        );
    }
}

/// Claim §9 (d), second part: the steady-state MSE rises with M/D all the
/// way down, so M = 4 (M/D = 0.02) is below M = 40 (0.2). Not reproduced:
/// M = 4 is above M = 40 for every seed tried (3 runs each, last 1000 of
/// 4000 iterations): seed 1 −9.98 vs −10.33, seed 2 −10.27 vs −11.12,
/// seed 3 −10.01 vs −10.17, seed 4 −9.66 vs −10.23 dB. The rise with M/D is
/// there between M = 40 and M = D (+11 dB), not at the small end, where
/// the slower mixing of a 4-entry share seems to cost more than the attack
/// noise it keeps out (σ_a² and μ are our guesses; the paper's may differ).
/// Longer runs do not change the order: at 8000 iterations (seed 1, 3 runs,
/// mean over iterations 7000–8000) M = 4 −10.69 dB, M = 40 −11.03 dB, both
/// still falling by ~0.2 dB per 2000 iterations.
#[test]
#[ignore = "not reproduced: steady-state MSE M=4 -9.98 dB vs M=40 -10.33 dB (seed 1; seeds 2-4 alike)"]
fn claim_mse_rises_with_sharing_ratio_at_small_m() {
    let (small, mid) = (steady_state(4), steady_state(40));
    eprintln!("steady-state test MSE: M = 4 {small:.2} dB, M = 40 {mid:.2} dB");
    assert!(small <= mid, "M=4 {small:.2} dB above M=40 {mid:.2} dB");
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
