//! FedPCA (FedPE / FedPG): exact checks, bad configurations, determinism and
//! the notes' small-scale claim (§12 (d)).

use steepest_fed::algorithms::dense::{matmul, matmul_tn, qr_thin, sym_eigen};
use steepest_fed::algorithms::fedpca::*;
use steepest_fed::rng::{Purpose, Rng};
use steepest_fed::Error;

fn gaussian(rows: usize, cols: usize, seed: u64) -> Vec<f64> {
    let mut r = Rng::stream(seed, Purpose::Other, 99, 0);
    (0..rows * cols).map(|_| r.normal()).collect()
}

fn orthonormality_error(u: &[f64], d: usize, r: usize) -> f64 {
    let utu = matmul_tn(u, u, d, r, r);
    (0..r * r)
        .map(|k| (utu[k] - if k % (r + 1) == 0 { 1.0 } else { 0.0 }).abs())
        .fold(0.0, f64::max)
}

#[test]
fn qr_is_orthonormal_and_reconstructs() {
    let (d, r) = (40, 5);
    let a = gaussian(d, r, 1);
    let (q, rr) = qr_thin(&a, d, r);
    assert!(orthonormality_error(&q, d, r) < 1e-12);
    let back = matmul(&q, &rr, d, r, r);
    let err = a.iter().zip(&back).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(err < 1e-12, "QR reconstruction error {err}");
    for i in 0..r {
        assert!(rr[i * r + i] >= 0.0);
        for j in 0..i {
            assert_eq!(rr[i * r + j], 0.0);
        }
    }
}

#[test]
fn jacobi_diagonalises() {
    let n = 12;
    let g = gaussian(n, n, 2);
    let a = matmul_tn(&g, &g, n, n, n); // symmetric PSD
    let (vals, vecs) = sym_eigen(&a, n);
    let av = matmul(&a, &vecs, n, n, n);
    for k in 0..n {
        for i in 0..n {
            assert!((av[i * n + k] - vals[k] * vecs[i * n + k]).abs() < 1e-10 * vals[0]);
        }
    }
    assert!(orthonormality_error(&vecs, n, n) < 1e-12);
    assert!(vals.windows(2).all(|w| w[0] >= w[1]));
}

#[test]
fn gradient_matches_finite_differences() {
    // f(U) = tr C − 2 tr(UᵀCU) + tr(UᵀU·UᵀCU) for C = XᵀX/n (here any SPD C).
    let (d, r) = (6, 2);
    let g = gaussian(d, d, 3);
    let c = matmul_tn(&g, &g, d, d, d);
    let u = gaussian(d, r, 4);
    let f = |u: &[f64]| {
        let cu = matmul(&c, u, d, d, r);
        let utcu = matmul_tn(u, &cu, d, r, r);
        let utu = matmul_tn(u, u, d, r, r);
        let tr_c: f64 = (0..d).map(|i| c[i * d + i]).sum();
        let t1: f64 = (0..r).map(|i| utcu[i * r + i]).sum();
        let t2: f64 = (0..r * r).map(|k| utu[k] * utcu[k]).sum(); // tr(AB) for symmetric A, B
        tr_c - 2.0 * t1 + t2
    };
    let grad = pca_grad(&c, &u, d, r);
    for k in 0..d * r {
        let h = 1e-6;
        let (mut up, mut dn) = (u.clone(), u.clone());
        up[k] += h;
        dn[k] -= h;
        let fd = (f(&up) - f(&dn)) / (2.0 * h);
        assert!(
            (fd - grad[k]).abs() < 1e-5 * (1.0 + grad[k].abs()),
            "entry {k}: fd {fd} vs {}",
            grad[k]
        );
    }
}

#[test]
fn fedpg_one_client_converges_to_top_eigenspace() {
    let p = PcaProblem::synthetic(
        &PcaProblemConfig {
            clients: 1,
            points_per_client: 500,
            ..Default::default()
        },
        5,
    )
    .unwrap();
    let top = top_eigvecs(&p.second_moments[0], p.dim, 3);
    let cfg = FedPcaConfig {
        components: 3,
        fraction: 1.0,
        eta: 1e-2,
        rounds: 100,
        seed: 1,
        ..Default::default()
    };
    let run = run(&p, &cfg).unwrap();
    // Riemannian GD contracts the subspace error by ≈ 1 − 2η(λ₃ − λ₄) ≈ 0.97
    // per step; 3000 steps leave far below 1e-8.
    let dist = subspace_distance(&run.z, &top, p.dim, 3);
    assert!(dist < 1e-8, "distance to the top-3 eigenspace {dist}");
}

#[test]
fn qr_retraction_keeps_frames_orthonormal() {
    let p = PcaProblem::synthetic(&PcaProblemConfig::default(), 6).unwrap();
    let cfg = FedPcaConfig {
        components: 5,
        eta: 2e-2,
        rounds: 30,
        fraction: 0.5,
        seed: 2,
        ..Default::default()
    };
    let run = run(&p, &cfg).unwrap();
    for (i, u) in run.locals.iter().enumerate() {
        let e = orthonormality_error(u, p.dim, 5);
        assert!(e < 1e-12, "client {i}: ‖UᵀU − I‖_max = {e}");
    }
}

#[test]
fn bad_configurations_are_errors() {
    let p = PcaProblem::synthetic(
        &PcaProblemConfig {
            clients: 4,
            ..Default::default()
        },
        1,
    )
    .unwrap();
    let base = FedPcaConfig::default();
    let cases: Vec<(FedPcaConfig, &str)> = vec![
        (
            FedPcaConfig {
                components: 0,
                ..base.clone()
            },
            "components",
        ),
        (
            FedPcaConfig {
                components: 40,
                ..base.clone()
            },
            "components",
        ),
        (
            FedPcaConfig {
                fraction: 0.0,
                ..base.clone()
            },
            "fraction",
        ),
        (
            FedPcaConfig {
                fraction: 1.5,
                ..base.clone()
            },
            "fraction",
        ),
        (
            FedPcaConfig {
                local_steps: 0,
                ..base.clone()
            },
            "local_steps",
        ),
        (
            FedPcaConfig {
                eta: -1.0,
                ..base.clone()
            },
            "eta",
        ),
        (
            FedPcaConfig {
                rho: 0.0,
                ..base.clone()
            },
            "rho",
        ),
    ];
    for (cfg, field) in cases {
        match run(&p, &cfg) {
            Err(Error::Config(m)) => assert!(m.contains(field), "{m}"),
            other => panic!("{field}: expected a config error, got {other:?}"),
        }
    }
    let bad_problem = PcaProblemConfig {
        rank: 40,
        ..Default::default()
    };
    assert!(matches!(PcaProblem::synthetic(&bad_problem, 1), Err(Error::Config(m)) if m.contains("rank")));
    let bad_problem = PcaProblemConfig {
        anomaly_fraction: 2.0,
        ..Default::default()
    };
    assert!(matches!(PcaProblem::synthetic(&bad_problem, 1), Err(Error::Config(m)) if m.contains("anomaly_fraction")));
    let cen = centralised(&p, 2).unwrap();
    assert!(matches!(anomaly_f1(&p, &cen, 2, 1.0), Err(Error::Config(m)) if m.contains("quantile")));
    // A step far too large diverges and says so instead of returning NaNs.
    let cfg = FedPcaConfig {
        variant: Variant::FedPe,
        eta: 10.0,
        ..base
    };
    assert!(matches!(run(&p, &cfg), Err(Error::Config(m)) if m.contains("eta")));
}

#[test]
fn deterministic_for_a_seed() {
    let p = PcaProblem::synthetic(&PcaProblemConfig::default(), 3).unwrap();
    let q = PcaProblem::synthetic(&PcaProblemConfig::default(), 3).unwrap();
    assert_eq!(p.test, q.test);
    for variant in [Variant::FedPe, Variant::FedPg] {
        let cfg = FedPcaConfig {
            variant,
            components: 5,
            eta: 1e-2,
            rounds: 20,
            seed: 9,
            ..Default::default()
        };
        let a = run(&p, &cfg).unwrap();
        let b = run(&q, &cfg).unwrap();
        assert!(a.z.iter().zip(&b.z).all(|(x, y)| x.to_bits() == y.to_bits()));
        let c = run(&p, &FedPcaConfig { seed: 10, ..cfg }).unwrap();
        assert_ne!(a.z, c.z);
    }
}

/// Notes §12 (d): synthetic rank-5 Gaussian + noise, d = 40, anomalies off
/// the subspace, 20 non-IID clients; FedPG's principal-angle distance
/// ‖sin Θ‖_F to centralised PCA < 0.1 after 100 rounds, anomaly F1 within
/// 2 pp of centralised, upload d·r floats per client and round.
///
/// Settings: the code's defaults (fraction 0.1, E = 30, ρ = 0.01) except
/// r = 5 (the data's rank) and η = 0.02 — the default η = 1e-4 moves a
/// random frame by ~1e-2 in 100 rounds (measured distance 1.40 at η = 1e-3).
/// The thresholds are the claim's own (0.1, 2 pp); the measured values
/// (distance 0.042 / 0.051 / 0.047, |ΔF1| 0.6 / 0.7 / 0.4 pp for problem
/// seeds 1 / 2 / 3) leave a margin of 2× and 3× against the sampling error
/// of 200 sorted points per client. Checked on three problem seeds.
#[test]
fn claim_fedpg_matches_centralised_pca() {
    for seed in [1u64, 2, 3] {
        let p = PcaProblem::synthetic(&PcaProblemConfig::default(), seed).unwrap();
        let cen = centralised(&p, 5).unwrap();
        let f1_cen = anomaly_f1(&p, &cen, 5, 0.99).unwrap();
        let cfg = FedPcaConfig {
            variant: Variant::FedPg,
            components: 5,
            eta: 2e-2,
            seed: 2,
            ..Default::default()
        };
        assert_eq!((cfg.rounds, cfg.fraction, cfg.local_steps), (100, 0.1, 30));
        let run = run(&p, &cfg).unwrap();
        let dist = subspace_distance(&run.z, &cen, p.dim, 5);
        let f1 = anomaly_f1(&p, &run.z, 5, 0.99).unwrap();
        eprintln!("seed {seed}: distance {dist:.4}, F1 fed {f1:.4} vs centralised {f1_cen:.4}");
        assert!(dist < 0.1, "seed {seed}: principal-angle distance {dist}");
        assert!((f1 - f1_cen).abs() <= 0.02, "seed {seed}: F1 {f1} vs {f1_cen}");
        assert!(
            f1_cen > 0.7,
            "the detection problem is not trivial nor hopeless: F1 {f1_cen}"
        );
        assert_eq!(run.upload_floats, 40 * 5);
    }
}

/// FedPE on the same problem reaches the same subspace (its penalty only
/// acts when UᵀU − I has positive entries); reported for comparison, same
/// thresholds as the claim.
#[test]
fn fedpe_also_matches_centralised_pca() {
    let p = PcaProblem::synthetic(&PcaProblemConfig::default(), 1).unwrap();
    let cen = centralised(&p, 5).unwrap();
    let cfg = FedPcaConfig {
        variant: Variant::FedPe,
        components: 5,
        eta: 2e-2,
        seed: 2,
        ..Default::default()
    };
    let run = run(&p, &cfg).unwrap();
    let dist = subspace_distance(&run.z, &cen, p.dim, 5);
    assert!(dist < 0.1, "FedPE distance {dist}");
}

#[test]
fn fedpe_penalty_gradient_matches_finite_differences() {
    // U with UᵀU − I having positive entries, so the penalty is active.
    let (d, r) = (6, 3);
    let u: Vec<f64> = gaussian(d, r, 7).iter().map(|v| 0.8 * v).collect();
    let t = [0.3, 0.1, 0.0, 0.1, 0.5, 0.2, 0.0, 0.2, 0.4];
    let rho = 0.7;
    assert!(penalty(&u, &t, rho, d, r) > 0.0);
    let grad = penalty_grad(&u, &t, rho, d, r);
    for k in 0..d * r {
        let h = 1e-6;
        let (mut up, mut dn) = (u.clone(), u.clone());
        up[k] += h;
        dn[k] -= h;
        let fd = (penalty(&up, &t, rho, d, r) - penalty(&dn, &t, rho, d, r)) / (2.0 * h);
        assert!(
            (fd - grad[k]).abs() < 1e-5 * (1.0 + grad[k].abs()),
            "entry {k}: fd {fd} vs {}",
            grad[k]
        );
    }
}
