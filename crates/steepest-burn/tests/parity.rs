//! steepest's AdamW, Lion and Muon inside burn follow burn's own optimizers over
//! 100 steps of training an MLP on digits (each side computes its own gradients
//! on its own parameters, so rounding differences compound).
//!
//! Tolerance: the largest parameter difference over the whole trajectory,
//! relative to the largest parameter magnitude, must stay below `TOL` (measured
//! values are printed with `--nocapture`).

mod common;

use burn::module::ParamGroup;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, LionConfig, ModuleOptimizer, MuonConfig};
use common::*;
use steepest_burn::models::Mlp;
use steepest_burn::SteepestOptimizer;

const STEPS: u64 = 100;

/// Runs both optimizers from the same initial model; returns the largest relative difference seen.
fn compare(label: &str, lr: f64, mut ours: SteepestOptimizer, mut theirs: ModuleOptimizer, model: Mlp) -> f64 {
    let data = data();
    let (mut a, mut b) = (model.clone(), model);
    let mut worst = 0.0f64;
    let mut moved = 0.0f64;
    let start = snapshot(&b);
    for step in 0..STEPS {
        let ga = grads(&a, &data, step);
        let gb = grads(&b, &data, step);
        a = ours.step(lr, a, ga);
        b = theirs.step(lr, b, gb);
        let (d, s) = max_diff(&snapshot(&a), &snapshot(&b));
        worst = worst.max(d / s);
    }
    let (dm, _) = max_diff(&snapshot(&b), &start);
    moved = moved.max(dm);
    println!(
        "{label}: max |Δparam| / max|param| over {STEPS} steps = {worst:.3e} (parameters moved by up to {moved:.3})"
    );
    assert!(moved > 10.0 * lr, "{label}: training did not move the parameters");
    worst
}

#[test]
fn adamw_follows_burn_adamw() {
    let model = mlp(1);
    let ours = SteepestOptimizer::from_json(
        &model,
        "adamw",
        r#"{"lr": 0.003, "betas": [0.9, 0.999], "eps": 1e-5, "weight_decay": 0.01}"#,
    )
    .unwrap();
    let theirs = AdamWConfig::new().with_epsilon(1e-5).with_weight_decay(0.01).init();
    let worst = compare("adamw", 0.003, ours, theirs, model);
    assert!(worst < 1e-4, "adamw: {worst:e}");
}

#[test]
fn lion_follows_burn_lion() {
    let model = mlp(2);
    let ours = SteepestOptimizer::from_json(
        &model,
        "lion",
        r#"{"lr": 0.0003, "betas": [0.9, 0.99], "weight_decay": 0.1}"#,
    )
    .unwrap();
    let theirs = LionConfig::new().with_weight_decay(0.1).init();
    let worst = compare("lion", 0.0003, ours, theirs, model);
    // Lion's update is a sign: where the interpolated momentum rounds to the other
    // side of zero, one element moves by 2·lr. Allowed: a few such flips.
    assert!(worst < 1e-3, "lion: {worst:e}");
}

#[test]
fn muon_recipe_follows_burn_muon_with_adamw_groups() {
    let model = mlp(3);
    // steepest's recipe: Muon on fc1/fc2 weights, AdamW on biases (rank 1) and on head.* (by path).
    let ours = SteepestOptimizer::from_json(
        &model,
        "muon",
        r#"{"lr": 0.01, "weight_decay": 0.01, "momentum": 0.95, "nesterov": true,
            "adamw_lr": 0.01, "adamw_betas": [0.9, 0.999], "adamw_eps": 1e-5, "adamw_weight_decay": 0.0}"#,
    )
    .unwrap();
    // burn: AdamW everywhere, Muon on the hidden weights (the later group wins).
    let muon = MuonConfig::new()
        .with_weight_decay(Some(WeightDecayConfig::new(0.01)))
        .with_momentum(
            MomentumConfig::new()
                .with_momentum(0.95)
                .with_dampening(0.0)
                .with_nesterov(true),
        )
        .build();
    let theirs = AdamWConfig::new()
        .with_epsilon(1e-5)
        .with_weight_decay(0.0)
        .init()
        .with_group(ParamGroup::from_paths(vec!["fc1.weight", "fc2.weight"]), muon, None);
    let worst = compare("muon", 0.01, ours, theirs, model);
    // Muon's momentum is an EMA in steepest (PyTorch) and a sum in burn: the inputs to
    // Newton–Schulz differ by the factor (1-μ), removed by its normalization; what is
    // left is rounding, amplified by the 5 Newton–Schulz iterations.
    assert!(worst < 1e-3, "muon: {worst:e}");
}
