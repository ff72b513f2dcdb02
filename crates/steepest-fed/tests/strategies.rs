//! Strategy API: failures, malformed results, decorators composing.

use steepest_fed::algorithms::fedadam::{fedadam, AdamForm, FedAdamConfig};
use steepest_fed::algorithms::{DpFixedClipping, FedAvg, Robust, RobustRule};
use steepest_fed::strategy::{ClientConfig, Failure, FitRes, Model, Sampling, Strategy};
use steepest_fed::Error;

fn model(vals: &[f64]) -> Model {
    let mut m = Model::new();
    m.push("w", &[vals.len()], vals.to_vec()).unwrap();
    m
}

fn res(client: usize, vals: &[f64], n: u64) -> FitRes {
    FitRes {
        client,
        params: model(vals),
        num_examples: n,
        loss: 0.0,
    }
}

fn fedavg() -> FedAvg {
    FedAvg::new(Sampling::default(), ClientConfig::default()).unwrap()
}

#[test]
fn failures_and_malformed_results() {
    let g = model(&[0.0, 0.0]);
    let mut s = fedavg();
    let fail = [Failure {
        client: 3,
        reason: "timeout".into(),
    }];
    let out = s
        .aggregate_fit(1, &g, &[res(1, &[1.0, 2.0], 1), res(2, &[3.0, 4.0], 3)], &fail)
        .unwrap();
    assert_eq!(out.get("w").unwrap().data, vec![2.5, 3.5]);
    s.accept_failures = false;
    assert!(matches!(
        s.aggregate_fit(1, &g, &[res(1, &[1.0, 2.0], 1)], &fail),
        Err(Error::NoResults { .. })
    ));
    assert!(matches!(s.aggregate_fit(1, &g, &[], &[]), Err(Error::NoResults { .. })));
    let mut s = fedavg();
    let bad_shape = res(1, &[1.0, 2.0, 3.0], 1);
    assert!(matches!(
        s.aggregate_fit(1, &g, &[bad_shape], &[]),
        Err(Error::Rejected(_))
    ));
    let nan = res(1, &[f64::NAN, 2.0], 1);
    assert!(matches!(s.aggregate_fit(1, &g, &[nan], &[]), Err(Error::Rejected(_))));
    let unsorted = [res(2, &[1.0, 2.0], 1), res(1, &[1.0, 2.0], 1)];
    assert!(matches!(
        s.aggregate_fit(1, &g, &unsorted, &[]),
        Err(Error::Rejected(_))
    ));
}

#[test]
fn sampling_follows_flower_counts_and_is_seeded() {
    let mut s = FedAvg::new(
        Sampling {
            fraction: 0.1,
            min_fit_clients: 3,
            min_available: 5,
        },
        ClientConfig::default(),
    )
    .unwrap();
    let avail: Vec<usize> = (0..100).collect();
    let a = s.configure_fit(4, &avail, 9).unwrap();
    assert_eq!(a.len(), 10);
    assert_eq!(a, s.configure_fit(4, &avail, 9).unwrap());
    assert_ne!(a, s.configure_fit(5, &avail, 9).unwrap());
    assert_eq!(s.configure_fit(1, &avail[..20], 9).unwrap().len(), 3);
    assert!(s.configure_fit(1, &avail[..4], 9).unwrap().is_empty());
}

#[test]
fn fedadam_over_median_composes() {
    // Median of {1, 2, 100} is 2 → Δ = 2 − 0; the paper-form first Adam step is
    // x + η (1−β1)Δ / (sqrt((1−β2)Δ²) + τ).
    let g = model(&[0.0]);
    let (eta, b1, b2, tau) = (0.1, 0.9, 0.99, 1e-9);
    let mut s = fedadam(
        Robust::new(fedavg(), RobustRule::Median).unwrap(),
        FedAdamConfig {
            eta,
            betas: (b1, b2),
            tau,
            form: AdamForm::Paper,
        },
    )
    .unwrap();
    let out = s
        .aggregate_fit(1, &g, &[res(0, &[1.0], 5), res(1, &[2.0], 5), res(2, &[100.0], 5)], &[])
        .unwrap();
    let d: f64 = 2.0;
    let want = eta * ((1.0 - b1) * d) / (((1.0 - b2) * d * d).sqrt() + tau);
    let got = out.get("w").unwrap().data[0];
    assert!((got - want).abs() <= 1e-14 * want, "{got} vs {want}");
}

#[test]
fn dp_clipping_bounds_the_update_and_is_seeded() {
    let g = model(&[0.0; 4]);
    let results = [res(0, &[30.0, 0.0, 0.0, 0.0], 1), res(1, &[0.0, 0.0, 40.0, 0.0], 1)];
    let mut s = DpFixedClipping::new(fedavg(), 1.0, 0.0, 0).unwrap();
    let out = s.aggregate_fit(1, &g, &results, &[]).unwrap();
    assert_eq!(out.get("w").unwrap().data, vec![0.5, 0.0, 0.5, 0.0]);
    let g = model(&vec![0.0; 20_000]);
    let results = [res(0, &vec![0.0; 20_000], 1), res(1, &vec![0.0; 20_000], 1)];
    let mut a = DpFixedClipping::new(fedavg(), 2.0, 1.5, 7).unwrap();
    let mut b = DpFixedClipping::new(fedavg(), 2.0, 1.5, 7).unwrap();
    let x = a.aggregate_fit(3, &g, &results, &[]).unwrap();
    assert_eq!(x, b.aggregate_fit(3, &g, &results, &[]).unwrap());
    let v = &x.get("w").unwrap().data;
    let sd = (v.iter().map(|t| t * t).sum::<f64>() / v.len() as f64).sqrt();
    // std = z S / m = 1.5 · 2 / 2.
    assert!((sd - 1.5).abs() < 0.03, "noise std {sd}");
    assert!(DpFixedClipping::new(fedavg(), 0.0, 1.0, 0).is_err());
}
