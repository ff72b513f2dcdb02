//! Transforms and schedules: composition equals the built-in forms, clipping
//! follows `torch.nn.utils.clip_grad_norm_`, schedules have the documented shape.

use steepest::{hyper, Error, GradSet, Optimizer, OptimizerSpec, ParamSet, Schedule, Transform};

fn setup() -> (ParamSet<f64>, Vec<GradSet<f64>>) {
    let mut p = ParamSet::new();
    p.push("w", &[2, 3], vec![0.5, -1.0, 1.5, -2.0, 2.5, -3.0]).unwrap();
    p.push("b", &[3], vec![0.1, 0.2, 0.3]).unwrap();
    let grads = (0..8)
        .map(|t| {
            let mut g = GradSet::new();
            let s = t as f64;
            g.insert(
                "w",
                (0..6).map(|i| ((i as f64 + 1.0) * (s + 0.3)).sin() * 3.0).collect(),
            );
            if t % 3 != 1 {
                g.insert("b", (0..3).map(|i| ((i as f64) - s).cos()).collect());
            }
            g
        })
        .collect();
    (p, grads)
}

fn run(spec: OptimizerSpec) -> ParamSet<f64> {
    let (mut p, grads) = setup();
    let mut opt = spec.build(&p).unwrap();
    for mut g in grads {
        opt.step(&mut p, &mut g).unwrap();
    }
    p
}

#[test]
fn decoupled_decay_transform_turns_adam_into_adamw() {
    let adamw = run(OptimizerSpec::new(
        "adamw",
        &hyper([("lr", 0.05), ("weight_decay", 0.2)]),
    ));
    let composed = run(OptimizerSpec::new("adam", &hyper([("lr", 0.05)]))
        .transform(Transform::DecoupledWeightDecay { weight_decay: 0.2 }));
    assert_eq!(adamw, composed);
    let plain = run(OptimizerSpec::new("adam", &hyper([("lr", 0.05)])));
    assert_ne!(plain, composed, "the transform must do something");
}

#[test]
fn l2_transform_equals_coupled_weight_decay() {
    let builtin = run(OptimizerSpec::new(
        "sgd",
        &hyper([("lr", 0.1), ("momentum", 0.9), ("weight_decay", 0.05)]),
    ));
    let composed = run(OptimizerSpec::new("sgd", &hyper([("lr", 0.1), ("momentum", 0.9)]))
        .transform(Transform::L2WeightDecay { weight_decay: 0.05 }));
    assert_eq!(builtin, composed);
}

#[test]
fn clip_global_norm_follows_torch() {
    let (params, grads) = setup();
    let mut g = grads[0].clone();
    let norm: f64 = ["w", "b"]
        .iter()
        .flat_map(|n| g.get(n).unwrap().to_vec())
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt();
    assert!(norm > 1.0);
    let expect: Vec<f64> = g.get("w").unwrap().iter().map(|x| x * (1.0 / (norm + 1e-6))).collect();
    Transform::ClipGlobalNorm { max_norm: 1.0 }.apply_grads(&params, &mut g);
    let got = g.get("w").unwrap();
    for (a, b) in got.iter().zip(&expect) {
        assert!((a - b).abs() <= 1e-15 * b.abs().max(1.0), "{a} vs {b}");
    }
    // A norm below the bound is left alone.
    let before = g.clone();
    Transform::ClipGlobalNorm { max_norm: 10.0 }.apply_grads(&params, &mut g);
    assert_eq!(g, before);
    // Clip by value.
    let mut g = grads[0].clone();
    Transform::ClipValue { clip_value: 0.5 }.apply_grads(&params, &mut g);
    assert!(g.get("w").unwrap().iter().all(|x| x.abs() <= 0.5));
    assert!(g.get("w").unwrap().iter().any(|x| x.abs() == 0.5));
}

#[test]
fn schedules_have_their_documented_shape() {
    let c = Schedule::Cosine {
        total_steps: 110,
        warmup_steps: 10,
        min_factor: 0.1,
    };
    assert!((c.factor(0) - 0.1).abs() < 1e-12);
    assert!((c.factor(9) - 1.0).abs() < 1e-12);
    assert!((c.factor(10) - 1.0).abs() < 1e-12);
    assert!((c.factor(60) - 0.55).abs() < 1e-12);
    assert!((c.factor(110) - 0.1).abs() < 1e-12);
    assert!((c.factor(10_000) - 0.1).abs() < 1e-12);
    let s = Schedule::StepDecay {
        step_size: 3,
        gamma: 0.5,
    };
    assert_eq!(
        [s.factor(0), s.factor(2), s.factor(3), s.factor(7)],
        [1.0, 1.0, 0.5, 0.25]
    );
    let i = Schedule::InverseSqrt { warmup_steps: 4 };
    assert_eq!(i.factor(0), 0.25);
    assert_eq!(i.factor(3), 1.0);
    assert!((i.factor(15) - 0.5).abs() < 1e-15);
    let w = Schedule::LinearWarmup {
        warmup_steps: 4,
        start_factor: 0.2,
    };
    assert!((w.factor(1) - 0.6).abs() < 1e-15);
    assert_eq!(w.factor(100), 1.0);
    let comp = Schedule::Sequence {
        first: Box::new(Schedule::Constant),
        switch_at: 5,
        then: Box::new(Schedule::Product {
            factors: vec![
                s.clone(),
                Schedule::StepDecay {
                    step_size: 1,
                    gamma: 0.9,
                },
            ],
        }),
    };
    assert_eq!(comp.factor(4), 1.0);
    assert!((comp.factor(8) - 0.5 * 0.9f64.powi(3)).abs() < 1e-15);
    assert!(matches!(
        Schedule::StepDecay { step_size: 0, gamma: 0.5 }.validate(),
        Err(Error::InvalidHyper { field, .. }) if field == "step_size"
    ));
}

#[test]
fn schedule_scales_the_learning_rate() {
    // SGD with a step-decay schedule equals SGD whose lr is changed by hand.
    let mut p = ParamSet::<f64>::new();
    p.push("x", &[2], vec![1.0, -1.0]).unwrap();
    let mut q = p.clone();
    let sched = Schedule::StepDecay {
        step_size: 2,
        gamma: 0.1,
    };
    let mut opt = OptimizerSpec::new("sgd", &hyper([("lr", 0.5)]))
        .schedule(sched.clone())
        .build(&p)
        .unwrap();
    for t in 0..5u64 {
        let mut g = GradSet::new();
        g.insert("x", vec![1.0, 2.0]);
        opt.step(&mut p, &mut g).unwrap();
        let mut manual = Optimizer::new("sgd", &hyper([("lr", 0.5 * sched.factor(t))]), &q).unwrap();
        let mut g = GradSet::new();
        g.insert("x", vec![1.0, 2.0]);
        manual.step(&mut q, &mut g).unwrap();
    }
    assert_eq!(p, q);
}

#[test]
fn bad_transforms_and_schedules_are_errors() {
    let p = setup().0;
    let e = OptimizerSpec::new("sgd", &hyper([("lr", 0.1)]))
        .transform(Transform::ClipGlobalNorm { max_norm: -1.0 })
        .build(&p)
        .unwrap_err();
    assert!(e.to_string().contains("max_norm"), "{e}");
    let e = OptimizerSpec::new("sgd", &hyper([("lr", 0.1)]))
        .schedule(Schedule::Cosine {
            total_steps: 5,
            warmup_steps: 10,
            min_factor: 0.0,
        })
        .build(&p)
        .unwrap_err();
    assert!(e.to_string().contains("warmup_steps"), "{e}");
}

#[test]
fn adagrad_group_cannot_override_initial_accumulator_like_torch() {
    // PyTorch creates AdaGrad's accumulators in __init__ from the constructor's
    // initial_accumulator_value; a group's value is validated but has no effect.
    let (p, _) = setup();
    let base = hyper([("lr", 0.1), ("initial_accumulator_value", 0.5)]);
    let mut opt = OptimizerSpec::new("adagrad", &base)
        .group(steepest::GroupSpec::names(
            ["b"],
            hyper([("initial_accumulator_value", 2.0)]),
        ))
        .build(&p)
        .unwrap();
    let mut q = p.clone();
    let mut g = GradSet::new();
    g.insert("b", vec![1.0, 1.0, 1.0]);
    opt.step(&mut q, &mut g).unwrap();
    assert_eq!(opt.param_state("b").unwrap().slots[0], vec![1.5; 3]);
    let bad = OptimizerSpec::new("adagrad", &base)
        .group(steepest::GroupSpec::names(
            ["b"],
            hyper([("initial_accumulator_value", -1.0)]),
        ))
        .build(&p)
        .unwrap_err();
    assert!(bad.to_string().contains("initial_accumulator_value"), "{bad}");
}

#[test]
fn partition_combines_any_two_optimizers() {
    use steepest::optim::Partition;
    use steepest::{Algorithm, Select};
    // SGD on everything but names matching "*.bias", which go to Lion.
    let part = Partition::new(
        "sgd+lion",
        ("sgd", &hyper([("lr", 0.1), ("momentum", 0.9)])),
        ("lion", &hyper([("lr", 0.01)])),
        vec![Select::Pattern("*.bias".into())],
    )
    .unwrap();
    assert!(part.routes_to_aux("layer.bias", &[4]));
    assert!(!part.routes_to_aux("layer.weight", &[4, 4]));
    // Stepping the partition equals stepping the two optimizers separately.
    let w0 = vec![0.5, -0.25, 1.0, 2.0];
    let b0 = vec![0.1, -0.1];
    let gw = vec![0.3, -0.2, 0.1, 0.0];
    let gb = vec![-0.5, 0.5];
    let (mut w, mut b) = (w0.clone(), b0.clone());
    let (mut sw, mut sb) = (vec![vec![0.0; 4]], vec![vec![0.0; 2]]);
    let mut work = steepest::Workspace::default();
    for step in 1..=3u64 {
        let ctx = steepest::StepCtx {
            lr: part.lr(),
            step,
            lr_factor: 1.0,
            global_step: step,
            global_grad_norm: f64::NAN,
            grad_sq: f64::NAN,
            group_stat: f64::NAN,
            slot_norm: f64::NAN,
            loss: None,
        };
        for (name, p, g, s) in [
            ("layer.weight", &mut w, &gw, &mut sw),
            ("layer.bias", &mut b, &gb, &mut sb),
        ] {
            let shape = [p.len()];
            part.fused(
                &ctx,
                steepest::TensorMut {
                    name,
                    shape: &shape,
                    param: p,
                    grad: g,
                    slots: s,
                    work: &mut work,
                    samples: steepest::algorithm::Samples::none(),
                },
            );
        }
    }
    let mut pw = ParamSet::<f64>::new();
    pw.push("w", &[4], w0).unwrap();
    let mut pb = ParamSet::<f64>::new();
    pb.push("b", &[2], b0).unwrap();
    let mut o1 = Optimizer::new("sgd", &hyper([("lr", 0.1), ("momentum", 0.9)]), &pw).unwrap();
    let mut o2 = Optimizer::new("lion", &hyper([("lr", 0.01)]), &pb).unwrap();
    for _ in 0..3 {
        let mut g = GradSet::new();
        g.insert("w", gw.clone());
        o1.step(&mut pw, &mut g).unwrap();
        let mut g = GradSet::new();
        g.insert("b", gb.clone());
        o2.step(&mut pb, &mut g).unwrap();
    }
    assert_eq!(w, pw.get("w").unwrap().data);
    assert_eq!(b, pb.get("b").unwrap().data);
}

#[test]
fn muon_flattens_rank_four_when_asked() {
    let mut p = ParamSet::<f64>::new();
    let n = 4 * 3 * 2 * 2;
    p.push(
        "conv.weight",
        &[4, 3, 2, 2],
        (0..n).map(|i| (i as f64 * 0.37).sin()).collect(),
    )
    .unwrap();
    p.push("conv.bias", &[4], vec![0.0; 4]).unwrap();
    // Without flatten the recipe routes the conv weight to AdamW; with it, to Muon.
    let plain = Optimizer::new("muon", &hyper([("lr", 0.02)]), &p).unwrap();
    let flat = Optimizer::new(
        "muon",
        &hyper([("lr", serde_json::json!(0.02)), ("flatten", serde_json::json!(true))]),
        &p,
    )
    .unwrap();
    let mut p1 = p.clone();
    let mut p2 = p.clone();
    let (mut plain, mut flat) = (plain, flat);
    let mut g = GradSet::new();
    g.insert("conv.weight", (0..n).map(|i| (i as f64 * 0.11).cos()).collect());
    plain.step(&mut p1, &mut g.clone()).unwrap();
    flat.step(&mut p2, &mut g).unwrap();
    assert!(
        plain.param_state("conv.weight").unwrap().slots.len() == 2,
        "AdamW state: exp_avg, exp_avg_sq"
    );
    assert!(
        flat.param_state("conv.weight").unwrap().slots.len() == 1,
        "Muon state: momentum_buffer"
    );
    // Muon's update of the [4, 12] view is orthogonal-ish: its rows have similar norms.
    let d: Vec<f64> = p2
        .get("conv.weight")
        .unwrap()
        .data
        .iter()
        .zip(&p.get("conv.weight").unwrap().data)
        .map(|(a, b)| a - b)
        .collect();
    let norms: Vec<f64> = d
        .chunks(12)
        .map(|r| r.iter().map(|x| x * x).sum::<f64>().sqrt())
        .collect();
    let (lo, hi) = norms.iter().fold((f64::MAX, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)));
    assert!(hi / lo < 1.6, "row norms of the orthogonalized update: {norms:?}");
    // Pure Muon (no partition) rejects rank 4 unless flatten is set, with a clear error.
    let e = Optimizer::new("adago", &hyper([("lr", 0.1)]), &p).unwrap_err();
    assert!(
        e.to_string().contains("conv.weight") || e.to_string().contains("conv.bias"),
        "{e}"
    );
}
