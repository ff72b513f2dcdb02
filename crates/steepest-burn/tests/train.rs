//! The lab workloads train, and a run is a pure function of its seed.

use steepest_burn::{train, ModelKind, TrainData};

#[test]
fn mlp_is_deterministic_and_learns() {
    let data = TrainData::bundled(ModelKind::Mlp).unwrap();
    let h = r#"{"lr": 0.02, "adamw_lr": 0.003}"#;
    let a = train(ModelKind::Mlp, &data, "muon", h, 60, 1, 30).unwrap();
    let b = train(ModelKind::Mlp, &data, "muon", h, 60, 1, 30).unwrap();
    let c = train(ModelKind::Mlp, &data, "muon", h, 60, 2, 30).unwrap();
    let key = |v: &[steepest_burn::TrainPoint]| {
        v.iter()
            .map(|p| (p.step, p.train_loss.to_bits(), p.eval_metric.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&a), key(&b), "same seed, different run");
    assert_ne!(key(&a), key(&c), "the seed changes nothing");
    assert_eq!(a.len(), 2);
    assert!(
        a[1].eval_metric > 0.8,
        "test accuracy after 60 steps: {}",
        a[1].eval_metric
    );
}

#[test]
fn cnn_and_transformer_train_deterministically() {
    for kind in [ModelKind::Cnn, ModelKind::CharTransformer] {
        let data = TrainData::bundled(kind).unwrap();
        let a = train(kind, &data, "adamw", r#"{"lr": 0.003}"#, 6, 3, 3).unwrap();
        let b = train(kind, &data, "adamw", r#"{"lr": 0.003}"#, 6, 3, 3).unwrap();
        let losses = |v: &[steepest_burn::TrainPoint]| v.iter().map(|p| p.train_loss.to_bits()).collect::<Vec<_>>();
        assert_eq!(losses(&a), losses(&b), "{kind:?}");
        assert!(a.iter().all(|p| p.train_loss.is_finite() && p.eval_metric.is_finite()));
    }
}

#[test]
fn wrong_data_is_an_error() {
    let text = TrainData::bundled(ModelKind::CharTransformer).unwrap();
    assert!(train(ModelKind::Mlp, &text, "adamw", "{}", 1, 0, 1).is_err());
    assert!(train(ModelKind::Mlp, &text, "adamw", "[1]", 1, 0, 1).is_err());
}

#[test]
fn bundled_data_loads() {
    let d = steepest_burn::data::digits().unwrap();
    assert_eq!((d.len(), d.features, d.classes), (1797, 64, 10));
    assert!(d.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    let t = steepest_burn::data::shakespeare().unwrap();
    assert_eq!(t.tokens.len(), 60_000);
    assert!(t.vocab.len() > 30 && t.vocab.len() < 100, "{}", t.vocab.len());
    let bad = std::env::temp_dir().join(format!("steepest-burn-bad-{}.csv", std::process::id()));
    std::fs::write(&bad, "1,2,3\n1,2\n").unwrap();
    let err = steepest_burn::data::load_classification_csv(&bad, 1.0).unwrap_err();
    std::fs::remove_file(&bad).ok();
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn concurrent_runs_with_one_seed_agree() {
    // Parameters are drawn under a lock and training runs lock-free: runs that
    // overlap in time must still be pure functions of their seeds.
    let data = TrainData::bundled(ModelKind::Mlp).unwrap();
    let runs: Vec<Vec<(usize, u64, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6u64)
            .map(|i| {
                let data = &data;
                s.spawn(move || {
                    train(ModelKind::Mlp, data, "adamw", r#"{"lr": 0.003}"#, 20, 5 + i % 2, 10)
                        .unwrap()
                        .iter()
                        .map(|p| (p.step, p.train_loss.to_bits(), p.eval_metric.to_bits()))
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for i in 2..6 {
        assert_eq!(runs[i], runs[i % 2], "run {i} differs from run {} with its seed", i % 2);
    }
    assert_ne!(runs[0], runs[1], "the seed changes nothing");
}
