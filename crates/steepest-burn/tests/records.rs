//! Saving and loading through burn's optimizer record API resumes bit-identically.

mod common;

use common::*;
use steepest_burn::models::Mlp;
use steepest_burn::SteepestOptimizer;

/// Trains 5 steps, saves, then continues 5 steps twice: uninterrupted, and from a
/// fresh optimizer loaded from the record. The parameters must agree bit for bit.
fn resumes(name: &str, hyper: &str, via_file: bool) {
    let data = data();
    let lr = steepest::registry::build(name, &steepest::hyper::hyper_from_json(hyper).unwrap())
        .unwrap()
        .lr();
    let mut model: Mlp = mlp(7);
    let mut optim = SteepestOptimizer::from_json(&model, name, hyper).unwrap();
    for step in 0..5 {
        let g = grads(&model, &data, step);
        model = optim.step(lr, model, g);
    }
    let fresh = SteepestOptimizer::from_json(&model, name, hyper).unwrap();
    let mut restored = if via_file {
        let dir = std::env::temp_dir().join(format!("steepest-burn-record-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("optim.bpk");
        optim.save(&path).unwrap();
        let r = fresh.load(&path).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        r
    } else {
        let bytes = optim.into_bytes().unwrap();
        fresh.from_bytes(bytes).unwrap()
    };
    assert!(!optim.to_record().is_empty(), "{name}: empty record");
    let (mut a, mut b) = (model.clone(), model);
    for step in 5..10 {
        let ga = grads(&a, &data, step);
        let gb = grads(&b, &data, step);
        a = optim.step(lr, a, ga);
        b = restored.step(lr, b, gb);
        assert_eq!(
            bits(&snapshot(&a)),
            bits(&snapshot(&b)),
            "{name}: step {step} differs after resume"
        );
    }
    // And the resumed run is not trivially equal to a run that lost its state.
    let mut lost = SteepestOptimizer::from_json(&b, name, hyper).unwrap();
    let c = lost.step(lr, b.clone(), grads(&b, &data, 10));
    let d = restored.step(lr, b.clone(), grads(&b, &data, 10));
    assert_ne!(
        bits(&snapshot(&c)),
        bits(&snapshot(&d)),
        "{name}: state made no difference"
    );
}

#[test]
fn adamw_resumes_bit_identically() {
    resumes("adamw", r#"{"lr": 0.003, "amsgrad": true}"#, false);
}

#[test]
fn muon_recipe_resumes_bit_identically() {
    resumes("muon", r#"{"lr": 0.01, "adamw_lr": 0.003}"#, true);
}

#[test]
fn cautious_adamw_resumes_bit_identically() {
    resumes(
        "c-adamw",
        r#"{"lr": 0.003, "warmup_steps": 3, "weight_decay": 0.1}"#,
        false,
    );
}

#[test]
fn adagc_resumes_bit_identically() {
    resumes("adagc", r#"{"lr": 0.003, "warmup_steps": 8, "lambda_abs": 0.5}"#, false);
}

#[test]
fn lion_resumes_bit_identically() {
    resumes("lion", r#"{"lr": 0.0003}"#, true);
}
