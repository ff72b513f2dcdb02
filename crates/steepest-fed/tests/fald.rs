//! FA-LD: exact checks, bad configurations, determinism and the notes'
//! small-scale claim (§13 (d)) on Bayesian linear regression.

use steepest_fed::algorithms::dense::{matmul, sym_eigen, w2_gaussian};
use steepest_fed::algorithms::fald::*;
use steepest_fed::rng::{Purpose, Rng};
use steepest_fed::Error;

/// The claim's problem: 10 heterogeneous clients, d = 4, 20–100 points each
/// (posterior sd ≈ 0.03 per coordinate), heterogeneity 0.3.
fn claim_problem() -> BlrProblem {
    BlrProblem::synthetic(
        &BlrConfig {
            heterogeneity: 0.3,
            ..Default::default()
        },
        1,
    )
    .unwrap()
}

#[test]
fn w2_of_equal_gaussians_is_zero_and_diagonal_hand_value() {
    let m = [0.3, -1.0, 2.0];
    let s = [2.0, 0.5, 0.1, 0.5, 1.0, 0.2, 0.1, 0.2, 3.0];
    // W₂² is ~1e-16 of rounding (Jacobi square roots), W₂ its square root.
    assert!(w2_gaussian(&m, &s, &m, &s) < 1e-6);
    // Diagonal: W₂² = ‖Δm‖² + Σ (√a_i − √b_i)² = (1 + 4) + (2 − 1)² + (3 − 4)² = 7.
    let w = w2_gaussian(&[1.0, 2.0], &[4.0, 0.0, 0.0, 9.0], &[0.0, 0.0], &[1.0, 0.0, 0.0, 16.0]);
    assert!((w - 7f64.sqrt()).abs() < 1e-12, "{w}");
    // Commuting non-diagonal case: rotate both by the same orthogonal matrix.
    let (c, sn) = (0.6f64, 0.8f64);
    let rot = [c, -sn, sn, c];
    let rt = [c, sn, -sn, c];
    let conj = |dg: [f64; 4]| matmul(&matmul(&rot, &dg, 2, 2, 2), &rt, 2, 2, 2);
    let w = w2_gaussian(
        &[1.0, 2.0],
        &conj([4.0, 0.0, 0.0, 9.0]),
        &[0.0, 0.0],
        &conj([1.0, 0.0, 0.0, 16.0]),
    );
    assert!((w - 7f64.sqrt()).abs() < 1e-12, "{w}");
}

#[test]
fn one_client_k1_is_sgld_bit_for_bit() {
    let p = BlrProblem::synthetic(
        &BlrConfig {
            clients: 1,
            ..Default::default()
        },
        4,
    )
    .unwrap();
    assert_eq!(p.weights, vec![1.0]);
    let (eta, steps, seed) = (1e-3, 2000, 11);
    let cfg = FaldConfig {
        eta,
        local_steps: 1,
        rounds: steps,
        burn_in: 0,
        seed,
        ..Default::default()
    };
    let fed = run(&p, &cfg).unwrap();
    // Plain SGLD written out here: x ← x − η∇f(x) + √(2η) ξ.
    let mut x = vec![0.0; p.dim];
    for (t, sample) in fed.samples.iter().enumerate() {
        let g = p.grad(&x);
        let mut r = Rng::stream(seed, Purpose::Langevin, 0, t as u64);
        for i in 0..p.dim {
            x[i] = x[i] - eta * g[i] + (2.0 * eta).sqrt() * r.normal();
        }
        assert!(
            x.iter().zip(sample).all(|(a, b)| a.to_bits() == b.to_bits()),
            "step {t}"
        );
    }
    let central = sgld(&p, eta, steps, 0, seed).unwrap();
    assert!(central.samples == fed.samples);
}

#[test]
fn stationary_law_at_k1_is_sgld_closed_form() {
    // For SGLD on a Gaussian target N(H⁻¹b, H⁻¹): mean H⁻¹b exactly and
    // covariance (H (I − ηH/2))⁻¹, for independent and correlated noise alike.
    let p = claim_problem();
    let (pm, pc) = p.posterior();
    let eta = 1e-4;
    let d = p.dim;
    let (vals, vecs) = sym_eigen(&pc, d); // eigenvalues of H⁻¹
    let mut want = vec![0.0; d * d];
    for (k, &v) in vals.iter().enumerate() {
        let h = 1.0 / v;
        for i in 0..d {
            for j in 0..d {
                want[i * d + j] += vecs[i * d + k] * vecs[j * d + k] / (h * (1.0 - eta * h / 2.0));
            }
        }
    }
    for noise in [Noise::Independent, Noise::Correlated] {
        let (mu, sig) = stationary(&p, eta, 1, noise, 1.0).unwrap();
        for i in 0..d {
            assert!((mu[i] - pm[i]).abs() < 1e-12, "{noise:?} mean {i}");
        }
        for k in 0..d * d {
            assert!((sig[k] - want[k]).abs() < 1e-9 * want[0].abs(), "{noise:?} cov {k}");
        }
    }
}

#[test]
fn bad_configurations_are_errors() {
    let p = claim_problem();
    let base = FaldConfig {
        rounds: 10,
        burn_in: 1,
        ..Default::default()
    };
    let cases: Vec<(FaldConfig, &str)> = vec![
        (
            FaldConfig {
                eta: 0.0,
                ..base.clone()
            },
            "eta",
        ),
        (
            FaldConfig {
                eta: f64::NAN,
                ..base.clone()
            },
            "eta",
        ),
        (
            FaldConfig {
                local_steps: 0,
                ..base.clone()
            },
            "local_steps",
        ),
        (
            FaldConfig {
                burn_in: 10,
                ..base.clone()
            },
            "burn_in",
        ),
        (
            FaldConfig {
                temperature: -1.0,
                ..base.clone()
            },
            "temperature",
        ),
        (
            FaldConfig {
                batch: Some(0),
                ..base.clone()
            },
            "batch",
        ),
        (
            FaldConfig {
                participation: Participation::SchemeI(0),
                ..base.clone()
            },
            "participation",
        ),
        (
            FaldConfig {
                participation: Participation::SchemeII(11),
                ..base.clone()
            },
            "participation",
        ),
        (
            FaldConfig {
                eta: 1.0,
                rounds: 500,
                ..base.clone()
            },
            "eta",
        ), // diverges to inf
    ];
    for (cfg, field) in cases {
        match run(&p, &cfg) {
            Err(Error::Config(m)) => assert!(m.contains(field), "{m}"),
            other => panic!("{field}: expected a config error, got {other:?}"),
        }
    }
    let bad = |c: BlrConfig, f: &str| {
        assert!(
            matches!(BlrProblem::synthetic(&c, 1), Err(Error::Config(m)) if m.contains(f)),
            "{f}"
        );
    };
    bad(
        BlrConfig {
            clients: 0,
            ..Default::default()
        },
        "clients",
    );
    bad(
        BlrConfig {
            dim: 0,
            ..Default::default()
        },
        "dim",
    );
    bad(
        BlrConfig {
            min_points: 5,
            max_points: 4,
            ..Default::default()
        },
        "min_points",
    );
    bad(
        BlrConfig {
            noise: 0.0,
            ..Default::default()
        },
        "noise",
    );
    bad(
        BlrConfig {
            prior_precision: -1.0,
            ..Default::default()
        },
        "prior_precision",
    );
    assert!(matches!(stationary(&p, 1e-2, 5, Noise::Independent, 1.0), Err(Error::Config(m)) if m.contains("eta")));
}

#[test]
fn deterministic_for_a_seed() {
    let p = claim_problem();
    for participation in [
        Participation::Full,
        Participation::SchemeI(4),
        Participation::SchemeII(4),
    ] {
        for noise in [Noise::Independent, Noise::Correlated] {
            let cfg = FaldConfig {
                eta: 1e-4,
                local_steps: 5,
                rounds: 300,
                burn_in: 10,
                participation,
                noise,
                batch: Some(8),
                seed: 5,
                ..Default::default()
            };
            let a = run(&p, &cfg).unwrap();
            let b = run(&p, &cfg).unwrap();
            assert!(a.samples == b.samples, "{participation:?} {noise:?}");
            let c = run(&p, &FaldConfig { seed: 6, ..cfg }).unwrap();
            assert!(a.samples != c.samples);
        }
    }
}

const ETA: f64 = 1e-4;
const STEPS: usize = 400_000;

fn fald_w2(p: &BlrProblem, eta: f64, k: usize, noise: Noise, participation: Participation, seed: u64) -> f64 {
    let (pm, pc) = p.posterior();
    let rounds = STEPS / k;
    let cfg = FaldConfig {
        eta,
        local_steps: k,
        rounds,
        burn_in: rounds / 10,
        noise,
        participation,
        seed,
        ..Default::default()
    };
    run(p, &cfg).unwrap().w2_to(&pm, &pc)
}

/// Monte-Carlo tolerance of a W₂ estimate from one run. The posterior sd is
/// ≈ 0.03 per coordinate; the slowest mode mixes in ≈ 1/(η λ_min(H)) ≈ 20
/// steps, so 360k kept steps give ≳ 7 000 effective samples even for K = 50
/// (one sample per round). Mean error ≈ 0.03·√(4/7000) ≈ 7e-4, covariance
/// relative error ≈ √(2/7000) ≈ 1.7 % ⇒ ≈ 5e-4 on W₂: together ≲ 1e-3;
/// 3e-3 is three times that. Observed |MC − exact| ≤ 6e-4 here.
const MC_TOL: f64 = 3e-3;

/// Notes §13 (d): W₂ (Gaussian fit to the chain's samples vs the exact
/// posterior) increases with K ∈ {1, 5, 20, 50}; K = 1 matches centralised
/// SGLD. Each Monte-Carlo value is also checked against the exact W₂ of the
/// chain's stationary law ([`stationary`]), so the ordering is not an
/// accident of sampling: the exact values (≈ 0.0013, 0.0084, 0.032, 0.056)
/// are separated by more than 2·MC_TOL.
#[test]
fn claim_w2_increases_with_local_steps() {
    let p = claim_problem();
    let (pm, pc) = p.posterior();
    let mut exact = Vec::new();
    let mut mc = Vec::new();
    for k in [1usize, 5, 20, 50] {
        let (mu, sig) = stationary(&p, ETA, k, Noise::Independent, 1.0).unwrap();
        let e = w2_gaussian(&mu, &sig, &pm, &pc);
        let m = fald_w2(&p, ETA, k, Noise::Independent, Participation::Full, 3);
        eprintln!("K = {k}: W2 exact {e:.5}, Monte Carlo {m:.5}");
        assert!((m - e).abs() < MC_TOL, "K = {k}: MC {m} vs exact {e}");
        exact.push(e);
        mc.push(m);
    }
    for w in exact.windows(2) {
        assert!(w[1] > w[0] + 2.0 * MC_TOL, "exact W2 not increasing: {exact:?}");
    }
    for w in mc.windows(2) {
        assert!(w[1] > w[0], "Monte-Carlo W2 not increasing: {mc:?}");
    }
    // K = 1 vs centralised SGLD (different noise draws, same law).
    let central = sgld(&p, ETA, STEPS, STEPS / 10, 4).unwrap().w2_to(&pm, &pc);
    eprintln!("centralised SGLD: W2 {central:.5}");
    assert!(
        (central - mc[0]).abs() < MC_TOL,
        "SGLD {central} vs FA-LD K=1 {}",
        mc[0]
    );
}

/// Correlated noise (one shared ξ per step): the Monte-Carlo W₂ matches the
/// exact W₂ of its own stationary law (no ordering against independent noise
/// is claimed; here the two exact values agree to 2e-5).
#[test]
fn correlated_noise_matches_its_stationary_law() {
    let p = claim_problem();
    let (pm, pc) = p.posterior();
    let (mu, sig) = stationary(&p, ETA, 5, Noise::Correlated, 1.0).unwrap();
    let e = w2_gaussian(&mu, &sig, &pm, &pc);
    let m = fald_w2(&p, ETA, 5, Noise::Correlated, Participation::Full, 8);
    eprintln!("correlated K = 5: W2 exact {e:.5}, Monte Carlo {m:.5}");
    assert!((m - e).abs() < MC_TOL);
}

/// Notes §13 (d): partial participation plateaus at a higher, non-vanishing
/// bias. With S = 5 of 10 clients and K = 5, both schemes stay far above
/// full participation (≥ 5×, measured ≥ 10×), and their W₂ does not shrink
/// with η (η = 1e-4 → 2e-5: full participation's exact W₂ falls ≈ 5×, the
/// schemes' stays above half its value; measured I: 0.10 → 0.064,
/// II: 0.25 → 0.54). Values ≥ 0.06 dwarf MC_TOL.
#[test]
fn claim_partial_participation_keeps_a_bias() {
    let p = claim_problem();
    let (pm, pc) = p.posterior();
    for scheme in [Participation::SchemeI(5), Participation::SchemeII(5)] {
        let mut prev: Option<f64> = None;
        for eta in [ETA, ETA / 5.0] {
            let (mu, sig) = stationary(&p, eta, 5, Noise::Independent, 1.0).unwrap();
            let full = w2_gaussian(&mu, &sig, &pm, &pc);
            let part = fald_w2(&p, eta, 5, Noise::Independent, scheme, 21);
            eprintln!("{scheme:?} eta {eta}: W2 {part:.5} vs full participation {full:.5}");
            assert!(part > 5.0 * full + MC_TOL, "{scheme:?} eta {eta}: {part} vs {full}");
            if let Some(w) = prev {
                assert!(part > 0.5 * w, "{scheme:?}: bias vanished with eta ({w} -> {part})");
            }
            prev = Some(part);
        }
    }
}

#[test]
fn minibatch_gradient_is_unbiased() {
    // Mean of 20 000 minibatch estimates vs the full local gradient: each
    // coordinate within 4 standard errors (estimated from the same draws).
    let p = claim_problem();
    let x = [0.5, -0.2, 0.1, 0.3];
    let full = p.local_grad(2, &x);
    let mut r = Rng::stream(1, Purpose::Train, 2, 0);
    let n = 20_000;
    let draws: Vec<Vec<f64>> = (0..n).map(|_| p.minibatch_grad(2, &x, 4, &mut r)).collect();
    for i in 0..p.dim {
        let m = draws.iter().map(|g| g[i]).sum::<f64>() / n as f64;
        let v = draws.iter().map(|g| (g[i] - m) * (g[i] - m)).sum::<f64>() / (n - 1) as f64;
        let se = (v / n as f64).sqrt();
        assert!(
            (m - full[i]).abs() < 4.0 * se,
            "coordinate {i}: {m} vs {} (se {se})",
            full[i]
        );
    }
}
