//! The `muon` recipe routes by burn path: matrices to Muon; embeddings, heads,
//! biases and norms to AdamW; and the kernel sees the same paths.

mod common;

use common::*;
use steepest_burn::models::{CharTransformer, Cnn};
use steepest_burn::SteepestOptimizer;

fn route<'a>(routes: &'a [(String, String)], path: &str) -> &'a str {
    routes
        .iter()
        .find(|(p, _)| p == path)
        .map(|(_, a)| a.as_str())
        .unwrap_or_else(|| panic!("no parameter {path}; have {routes:?}"))
}

#[test]
fn transformer_paths_route_embeddings_heads_biases_norms_to_adamw() {
    let model = CharTransformer::new(20, 16, 2, 8, &device());
    let opt = SteepestOptimizer::from_json(&model, "muon", r#"{"lr": 0.02}"#).unwrap();
    let r = opt.routes();
    for p in ["fc1.weight", "fc2.weight", "attn.query.weight", "attn.output.weight"] {
        assert_eq!(route(r, p), "muon", "{p}");
    }
    for p in [
        "tok_embed.weight",
        "pos_embed.weight",
        "head.weight",
        "head.bias",
        "fc1.bias",
        "ln1.gamma",
        "ln_f.beta",
    ] {
        assert_eq!(route(r, p), "adamw", "{p}");
    }
}

#[test]
fn conv_kernels_go_to_muon_only_with_flatten() {
    let model = Cnn::new(10, &device());
    let plain = SteepestOptimizer::from_json(&model, "muon", r#"{"lr": 0.02}"#).unwrap();
    assert_eq!(route(plain.routes(), "conv1.weight"), "adamw");
    let flat = SteepestOptimizer::from_json(&model, "muon", r#"{"lr": 0.02, "flatten": true}"#).unwrap();
    assert_eq!(route(flat.routes(), "conv1.weight"), "muon");
    assert_eq!(route(flat.routes(), "conv1.bias"), "adamw");
    assert_eq!(route(flat.routes(), "head.weight"), "adamw");
}

#[test]
fn kernel_sees_paths_head_updated_like_adamw() {
    // One step of the recipe and one of plain AdamW with the recipe's AdamW settings:
    // head.* (routed to AdamW by path) must agree bit for bit, fc1.weight (Muon) must not.
    let data = data();
    let model = mlp(11);
    let mut recipe = SteepestOptimizer::from_json(
        &model,
        "muon",
        r#"{"lr": 0.01, "adamw_lr": 0.01, "adamw_betas": [0.9, 0.95], "adamw_eps": 1e-8}"#,
    )
    .unwrap();
    let mut adamw = SteepestOptimizer::from_json(
        &model,
        "adamw",
        r#"{"lr": 0.01, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.0}"#,
    )
    .unwrap();
    let a = snapshot(&recipe.step(0.01, model.clone(), grads(&model, &data, 0)));
    let b = snapshot(&adamw.step(0.01, model.clone(), grads(&model, &data, 0)));
    for ((p, x), (_, y)) in a.iter().zip(&b) {
        let same = x.iter().zip(y).all(|(u, v)| u.to_bits() == v.to_bits());
        match p.as_str() {
            "head.weight" | "head.bias" | "fc1.bias" | "fc2.bias" => assert!(same, "{p} should be AdamW's"),
            "fc1.weight" | "fc2.weight" => assert!(!same, "{p} should be Muon's"),
            _ => panic!("unexpected parameter {p}"),
        }
    }
}

#[test]
fn groups_select_burn_paths_and_bad_setups_are_errors() {
    use steepest::{GroupSpec, OptimizerSpec, Select};
    let model = mlp(12);
    let spec = OptimizerSpec::new("adamw", &steepest::hyper([("lr", 0.01)])).group(GroupSpec {
        select: Select::Pattern("*.bias".into()),
        hyper: steepest::hyper([("weight_decay", 0.0)]),
    });
    assert!(SteepestOptimizer::from_spec(&model, spec).is_ok());
    // Muon alone cannot take the biases: a clear error naming the parameter, no panic.
    let err = SteepestOptimizer::from_json(&model, "adago", r#"{"lr": 0.1}"#)
        .err()
        .unwrap();
    assert!(err.to_string().contains("bias"), "{err}");
    let err = SteepestOptimizer::from_json(&model, "adamw", r#"{"lr": -1}"#)
        .err()
        .unwrap();
    assert!(err.to_string().contains("lr"), "{err}");
    assert!(SteepestOptimizer::from_json(&model, "nope", "{}").is_err());
}

#[test]
fn bare_tensor_optimizer_in_a_module_optimizer_matches() {
    // `TensorOptimizer::init()` is a plain burn ModuleOptimizer; for an elementwise
    // optimizer it must take the same steps as the path-aware SteepestOptimizer.
    let data = data();
    let model = mlp(13);
    let hyper = steepest::hyper::hyper_from_json(r#"{"lr": 0.003, "weight_decay": 0.1}"#).unwrap();
    let mut bare = steepest_burn::TensorOptimizer::new("c-adamw", &hyper).unwrap().init();
    let mut full = SteepestOptimizer::new(&model, "c-adamw", &hyper).unwrap();
    let (mut a, mut b) = (model.clone(), model);
    for step in 0..3 {
        a = bare.step(0.003, a.clone(), grads(&a, &data, step));
        b = full.step(0.003, b.clone(), grads(&b, &data, step));
    }
    assert_eq!(bits(&snapshot(&a)), bits(&snapshot(&b)));
}
