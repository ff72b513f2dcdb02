//! Noise-robust ADMM FL (RERCE-Fed, `algorithms/admm.rs`): exact checks,
//! configuration errors, determinism and the notes' small-scale claim (§7 (d)).

use steepest_fed::algorithms::admm::{monte_carlo, run, steady_state_db, AdmmConfig, AdmmProblem, AdmmSpec, Variant};
use steepest_fed::Error;

const VARIANTS: [Variant; 3] = [Variant::Continual, Variant::NonContinual, Variant::Standard];

fn config_err<T: std::fmt::Debug>(r: steepest_fed::Result<T>, field: &str) {
    match r {
        Err(Error::Config(m)) => assert!(m.contains(field), "error `{m}` does not name `{field}`"),
        other => panic!("expected Error::Config naming {field}, got {other:?}"),
    }
}

/// Noise-free, every client selected: each variant is centralised ADMM and
/// converges to the BLUE (to 1e-10), and the three coincide.
#[test]
fn noise_free_full_participation_converges_to_blue() {
    let spec = AdmmSpec {
        dim: 6,
        clients: 5,
        samples: (3, 5),
        obs_std: 0.1,
        obs_var: 1.0,
    };
    let p = AdmmProblem::synthetic(&spec, 3).unwrap();
    let mut finals = vec![];
    for v in VARIANTS {
        let cfg = AdmmConfig {
            variant: v,
            selected: 5,
            noise_var: 0.0,
            iters: 4000,
            ..AdmmConfig::default()
        };
        let out = run(&p, &cfg, 0, 0).unwrap();
        let err = out
            .w
            .iter()
            .flat_map(|wk| wk.iter().zip(&p.x_blue).map(|(a, b)| (a - b).abs()))
            .fold(0.0f64, f64::max);
        assert!(err < 1e-10, "{v:?}: max |w_k − x_BLUE| = {err:e}");
        finals.push(out.nmsd);
    }
    // Same trajectory (to rounding) for the three forms of ADMM.
    for t in [1, 2, 5, 20] {
        let (a, b, c) = (finals[0][t], finals[1][t], finals[2][t]);
        assert!(
            ((a - b) / a).abs() < 1e-8 && ((a - c) / a).abs() < 1e-8,
            "t={t}: {a} {b} {c}"
        );
    }
}

/// 2 clients, 2 dimensions, Σ = I, ρ = 1, β = 2, both selected, no noise.
/// By hand: A₁ = [[2,1],[1,1]], c₁ = [3,2]; A₂ = [[0,0],[0,1]], c₂ = [0,3];
/// B₁ = (2A₁+I)⁻¹ = [[3,−2],[−2,5]]/11, B₂ = diag(1, 1/3);
/// w₁⁰ = 2B₁c₁ = [10,8]/11, w₂⁰ = 2B₂c₂ = [0,2]; z = mean(2w⁰) = [10,30]/11;
/// w₁¹ = (I−B₁)w₁⁰ + B₁z = [6,18]/11, w₂¹ = (I−B₂)w₂⁰ + B₂z = [10/11, 74/33];
/// x_BLUE = [[2,1],[1,2]]⁻¹[3,5] = [1/3, 7/3].
#[test]
fn one_iteration_matches_hand_computation() {
    let h = vec![vec![vec![1.0, 0.0], vec![1.0, 1.0]], vec![vec![0.0, 1.0]]];
    let y = vec![vec![1.0, 2.0], vec![3.0]];
    let p = AdmmProblem::from_data(&h, &y, 1.0).unwrap();
    assert!((p.x_blue[0] - 1.0 / 3.0).abs() < 1e-14 && (p.x_blue[1] - 7.0 / 3.0).abs() < 1e-14);
    let want = [[6.0 / 11.0, 18.0 / 11.0], [10.0 / 11.0, 74.0 / 33.0]];
    let xx = 1.0 / 9.0 + 49.0 / 9.0;
    let d0 = (10.0 / 11.0 - 1.0 / 3.0f64).powi(2)
        + (8.0 / 11.0 - 7.0 / 3.0f64).powi(2)
        + (1.0 / 3.0f64).powi(2)
        + (2.0 - 7.0 / 3.0f64).powi(2);
    for v in VARIANTS {
        let cfg = AdmmConfig {
            variant: v,
            selected: 2,
            noise_var: 0.0,
            iters: 2,
            ..AdmmConfig::default()
        };
        let out = run(&p, &cfg, 0, 0).unwrap();
        for (k, (got, exp)) in out.w.iter().zip(&want).enumerate() {
            for (i, (g, e)) in got.iter().zip(exp).enumerate() {
                assert!((g - e).abs() < 1e-13, "{v:?}: w[{k}][{i}] = {g}, want {e}");
            }
        }
        assert!(
            (out.nmsd[0] - d0 / (2.0 * xx)).abs() < 1e-14,
            "{v:?}: NMSD₀ {}",
            out.nmsd[0]
        );
    }
}

#[test]
fn bad_configuration_names_the_field() {
    let p = AdmmProblem::synthetic(
        &AdmmSpec {
            dim: 4,
            clients: 3,
            samples: (2, 3),
            ..AdmmSpec::default()
        },
        0,
    )
    .unwrap();
    let ok = AdmmConfig {
        selected: 2,
        iters: 3,
        ..AdmmConfig::default()
    };
    assert!(run(&p, &ok, 0, 0).is_ok());
    config_err(
        run(
            &p,
            &AdmmConfig {
                selected: 0,
                ..ok.clone()
            },
            0,
            0,
        ),
        "selected",
    );
    config_err(
        run(
            &p,
            &AdmmConfig {
                selected: 4,
                ..ok.clone()
            },
            0,
            0,
        ),
        "selected",
    );
    config_err(run(&p, &AdmmConfig { rho: 0.0, ..ok.clone() }, 0, 0), "rho");
    config_err(
        run(
            &p,
            &AdmmConfig {
                noise_var: -1.0,
                ..ok.clone()
            },
            0,
            0,
        ),
        "noise_var",
    );
    config_err(run(&p, &AdmmConfig { iters: 0, ..ok.clone() }, 0, 0), "iters");
    config_err(
        run(
            &p,
            &AdmmConfig {
                b_factor: f64::NAN,
                ..ok.clone()
            },
            0,
            0,
        ),
        "b_factor",
    );
    config_err(monte_carlo(&p, &ok, 0, 0), "runs");
    config_err(Variant::parse("dual"), "variant");
    let spec = AdmmSpec::default();
    config_err(
        AdmmProblem::synthetic(
            &AdmmSpec {
                samples: (0, 3),
                ..spec.clone()
            },
            0,
        ),
        "samples",
    );
    config_err(
        AdmmProblem::synthetic(
            &AdmmSpec {
                samples: (5, 3),
                ..spec.clone()
            },
            0,
        ),
        "samples",
    );
    config_err(AdmmProblem::synthetic(&AdmmSpec { dim: 0, ..spec.clone() }, 0), "dim");
    config_err(
        AdmmProblem::synthetic(
            &AdmmSpec {
                clients: 0,
                ..spec.clone()
            },
            0,
        ),
        "clients",
    );
    config_err(AdmmProblem::from_data(&[vec![vec![1.0]]], &[vec![1.0]], 0.0), "obs_var");
    // One sample in two dimensions: Σ A_k is singular.
    config_err(
        AdmmProblem::from_data(&[vec![vec![1.0, 0.0]]], &[vec![1.0]], 1.0),
        "samples",
    );
}

#[test]
fn deterministic_for_a_seed() {
    let spec = AdmmSpec {
        dim: 8,
        clients: 10,
        samples: (3, 6),
        ..AdmmSpec::default()
    };
    let p = AdmmProblem::synthetic(&spec, 5).unwrap();
    let q = AdmmProblem::synthetic(&spec, 5).unwrap();
    assert_eq!(p.x_blue, q.x_blue);
    for v in VARIANTS {
        let cfg = AdmmConfig {
            variant: v,
            iters: 50,
            ..AdmmConfig::default()
        };
        let a = monte_carlo(&p, &cfg, 9, 3).unwrap();
        let b = monte_carlo(&q, &cfg, 9, 3).unwrap();
        let c = monte_carlo(&p, &cfg, 10, 3).unwrap();
        assert_eq!(a, b, "{v:?}: same seed, different curve");
        assert_ne!(a, c, "{v:?}: different seed, same curve");
    }
}

/// The notes' claim §7 (d): L = 32, N = 50, C = 4, 300 iterations, 50
/// Monte-Carlo runs (as in the notes), σ² = 6.25e-4 (the continual script's
/// value), other settings the code's. Samples per client 12..=22: the code
/// has 51..90 samples for L = 128, so every client alone is under-determined;
/// the same ratio n_k/L keeps that at L = 32 (with n_k > L every local
/// solution is already the BLUE to −55 dB and no variant differs).
/// Steady state = mean NMSD in dB over the last 100 iterations.
/// Measured (50 runs): seed 1 continual −34.53 dB, non-continual −29.22,
/// standard ADMM-FL −28.23; seeds 2–5 within ±0.3 dB of these (−34.3..−34.7,
/// −28.8..−29.4, −28.1..−28.3). The assertion is the claim itself: continual
/// at least 3 dB below standard ADMM-FL (margin ~6 dB), and below
/// non-continual (margin ~5 dB); the seed-to-seed spread is a tenth of
/// either margin, so the test fails only if the ordering is lost.
#[test]
fn claim_continual_beats_standard_admm_by_3db() {
    let spec = AdmmSpec {
        dim: 32,
        clients: 50,
        samples: (12, 22),
        ..AdmmSpec::default()
    };
    let p = AdmmProblem::synthetic(&spec, 1).unwrap();
    let ss = |variant| {
        let cfg = AdmmConfig {
            variant,
            iters: 300,
            ..AdmmConfig::default()
        };
        steady_state_db(&monte_carlo(&p, &cfg, 1, 50).unwrap(), 100)
    };
    let (cont, non, std) = (ss(Variant::Continual), ss(Variant::NonContinual), ss(Variant::Standard));
    eprintln!("steady-state NMSD: continual {cont:.2} dB, non-continual {non:.2} dB, standard {std:.2} dB");
    assert!(
        cont <= std - 3.0,
        "continual {cont:.2} dB not 3 dB below standard {std:.2} dB"
    );
    assert!(cont < non, "continual {cont:.2} dB not below non-continual {non:.2} dB");
}

#[test]
fn cli_prints_the_curve_as_json() {
    let args: Vec<String> = "admm --variant standard --dim 8 --clients 6 --samples 3:5 --iters 20 --runs 2 --seed 4"
        .split_whitespace()
        .map(String::from)
        .collect();
    let out = steepest_fed::cli::run(&args).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["algorithm"], "admm-standard");
    assert_eq!(v["curve_db"].as_array().unwrap().len(), 20);
    let bad: Vec<String> = ["admm", "--rho", "-1"].iter().map(|s| s.to_string()).collect();
    assert!(matches!(steepest_fed::cli::run(&bad), Err(Error::Config(m)) if m.contains("rho")));
    let unknown: Vec<String> = ["admm", "--bogus", "1"].iter().map(|s| s.to_string()).collect();
    assert!(matches!(steepest_fed::cli::run(&unknown), Err(Error::Config(_))));
}
