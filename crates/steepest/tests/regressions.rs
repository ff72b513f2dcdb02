//! Regressions for defects found in review: each test failed (or crashed) before its fix.

use serde_json::json;
use steepest::replay::{parse_spec, replay, ReplayOptions};
use steepest::{hyper, GradSet, Optimizer, OptimizerSpec, ParamSet, Transform};

#[test]
fn resized_parameter_data_is_an_error_not_memory_corruption() {
    let n = 1 << 17; // large enough for the parallel path
    let mut p = ParamSet::<f32>::new();
    p.push("w", &[n], vec![0.5; n]).unwrap();
    let mut opt = Optimizer::new("sgd", &hyper([("lr", 0.1), ("momentum", 0.9)]), &p).unwrap();
    let mut g = GradSet::new();
    g.insert("w", vec![0.1; n]);
    opt.step(&mut p, &mut g).unwrap();
    p.params_mut()[0].data.resize(4 * n, 0.0);
    let e = opt.step(&mut p, &mut g).unwrap_err();
    assert!(e.to_string().contains("`w`"), "{e}");
}

#[test]
fn zero_size_shapes_with_huge_dimensions_do_not_overflow() {
    for (opt, hyper) in [("sgd", json!({})), ("muon", json!({"flatten": true}))] {
        let spec = json!({
            "optimizer": opt, "hyper": hyper,
            "params": [{"name": "w", "shape": [0, 4294967296u64, 4294967296u64], "data": []},
                       {"name": "v", "shape": [4294967296u64, 4294967296u64, 0], "data": []}],
            "steps": [{"grads": {"w": [], "v": []}}]
        });
        let s = parse_spec(&spec.to_string()).unwrap();
        let out = replay(&s, &ReplayOptions::default()).unwrap();
        assert_eq!(out.trajectory.len(), 1);
    }
}

#[test]
fn decoupled_decay_uses_the_routed_optimizers_learning_rate() {
    // Muon lr 0.5, AdamW lr 0: the bias (routed to AdamW) must not decay.
    let mut p = ParamSet::<f64>::new();
    p.push("w", &[2, 2], vec![1.0; 4]).unwrap();
    p.push("b", &[2], vec![1.0; 2]).unwrap();
    let h = hyper([("lr", 0.5), ("adamw_lr", 0.0), ("weight_decay", 0.0)]);
    let mut opt = OptimizerSpec::new("muon", &h)
        .transform(Transform::DecoupledWeightDecay { weight_decay: 1.0 })
        .build(&p)
        .unwrap();
    let mut g = GradSet::new();
    g.insert("w", vec![0.1, 0.2, 0.3, 0.4]);
    g.insert("b", vec![0.1, 0.1]);
    opt.step(&mut p, &mut g).unwrap();
    assert_eq!(p.get("b").unwrap().data, vec![1.0, 1.0]);
    assert_ne!(p.get("w").unwrap().data, vec![1.0; 4], "w is updated by Muon");
}

fn saved(name: &str, h: serde_json::Value) -> (ParamSet<f64>, Vec<u8>) {
    let mut p = ParamSet::<f64>::new();
    p.push("w", &[3], vec![1.0, 2.0, 3.0]).unwrap();
    let h: steepest::Hyper = h.as_object().unwrap().clone().into_iter().collect();
    let mut opt = Optimizer::new(name, &h, &p).unwrap();
    for _ in 0..3 {
        let mut g = GradSet::new();
        g.insert("w", vec![0.1, -0.2, 0.3]);
        opt.step(&mut p, &mut g).unwrap();
    }
    (p, opt.state_to_bytes().unwrap())
}

#[test]
fn state_from_another_configuration_is_rejected_but_lr_may_change() {
    let (p, bytes) = saved("c-adamw", json!({"bias_correction": "debiased_beta"}));
    let h: steepest::Hyper = [("bias_correction".to_string(), json!("divide"))].into();
    let mut other = Optimizer::new("c-adamw", &h, &p).unwrap();
    let e = other.load_state_bytes(&bytes).unwrap_err().to_string();
    assert!(e.contains("bias_correction"), "{e}");
    let h: steepest::Hyper = [
        ("bias_correction".to_string(), json!("debiased_beta")),
        ("lr".to_string(), json!(0.5)),
    ]
    .into();
    Optimizer::new("c-adamw", &h, &p)
        .unwrap()
        .load_state_bytes(&bytes)
        .unwrap();
    // Groups must match too.
    let (p, bytes) = saved("adamw", json!({}));
    let mut grouped = OptimizerSpec::new("adamw", &steepest::Hyper::new())
        .group(steepest::GroupSpec::names(["w"], hyper([("lr", 0.1)])))
        .build(&p)
        .unwrap();
    assert!(grouped.load_state_bytes(&bytes).is_err());
}

#[test]
fn edited_metadata_is_detected() {
    let (p, bytes) = saved("adam", json!({}));
    // Rewrite the step counter in the header (same length, so offsets stay valid).
    let needle = b"\"steps\":\"3\"";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("steps in header");
    let mut edited = bytes.clone();
    edited[at + needle.len() - 2] = b'9';
    let mut opt = Optimizer::new("adam", &steepest::Hyper::new(), &p).unwrap();
    let e = opt.load_state_bytes(&edited).unwrap_err().to_string();
    assert!(e.contains("corrupted"), "{e}");
    assert_eq!(opt.steps(), 0);
}

#[test]
fn an_explicitly_named_parameter_goes_to_its_group_even_after_a_pattern() {
    use steepest::{GroupSpec, Select};
    let mut p = ParamSet::<f64>::new();
    p.push("layer.bias", &[2], vec![1.0, 1.0]).unwrap();
    p.push("other.bias", &[2], vec![1.0, 1.0]).unwrap();
    let opt = OptimizerSpec::new("sgd", &hyper([("lr", 0.1)]))
        .group(GroupSpec {
            select: Select::Pattern("*.bias".into()),
            hyper: hyper([("lr", 0.2)]),
        })
        .group(GroupSpec::names(["layer.bias"], hyper([("lr", 0.3)])))
        .build(&p)
        .unwrap();
    let groups: std::collections::HashMap<String, usize> = opt.groups_of().into_iter().collect();
    assert_eq!(groups["layer.bias"], 2);
    assert_eq!(groups["other.bias"], 1);
}

/// With the global norm needed (AdaGC), the non-finite check and the sums of
/// squares share one pass: a finite f64 gradient whose squares overflow must
/// still step, and a NaN anywhere must still be refused with nothing changed.
#[test]
fn shared_norm_and_finite_pass_neither_misses_nor_invents_non_finite_gradients() {
    let n = 1 << 17; // the parallel path
    for name in ["adagc", "adagc-lion"] {
        let mut p = ParamSet::<f64>::new();
        p.push("w", &[n], vec![0.5; n]).unwrap();
        p.push("b", &[3], vec![0.5; 3]).unwrap();
        let mut opt = Optimizer::new(name, &steepest::Hyper::new(), &p).unwrap();
        let mut g = GradSet::new();
        let mut big = vec![1e-3; n];
        big[n / 2] = 1e200; // finite, but its square overflows f64
        g.insert("w", big);
        g.insert("b", vec![1.0, 2.0, 3.0]);
        opt.step(&mut p, &mut g).unwrap();
        assert!(p.get("w").unwrap().data.iter().all(|x| x.is_finite()), "{name}");
        let before = p.clone();
        let mut bad = vec![1e-3; n];
        bad[n - 1] = f64::NAN;
        g.insert("w", bad);
        let e = opt.step(&mut p, &mut g).unwrap_err();
        assert!(e.to_string().contains("`w`"), "{name}: {e}");
        for (a, b) in p.iter().zip(before.iter()) {
            assert_eq!(a.data, b.data, "{name}: a refused step changed `{}`", a.name);
        }
    }
}
