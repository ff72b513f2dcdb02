//! The seeded Gaussian noise of `dp-sgd` and `dice-sgd`: reproducible from the
//! seed, different for another seed, and of standard deviation σC/B.

use steepest::{hyper::hyper_from_json, GradSet, Optimizer, ParamSet, SampleGrads, StepInputs};

const N: usize = 40_000;
const SAMPLES: usize = 4;

/// One step from θ = 0 with all-zero per-sample gradients and lr = 1: the
/// parameters become −(noise)/B exactly (everything else is zero).
fn noise_step(name: &str, json: &str) -> Vec<f64> {
    let h = hyper_from_json(json).unwrap();
    let mut params = ParamSet::<f64>::new();
    params.push("w", &[200, N / 200], vec![0.0; N]).unwrap();
    let mut opt = Optimizer::new(name, &h, &params).unwrap();
    let mut grads = GradSet::new();
    grads.insert("w", vec![0.0; N]);
    let mut sg = SampleGrads::new();
    sg.insert("w", vec![vec![0.0; N]; SAMPLES]);
    let inputs = StepInputs {
        loss: None,
        sample_grads: Some(&sg),
    };
    opt.step_with(&mut params, &mut grads, inputs).unwrap();
    params.get("w").unwrap().data.clone()
}

fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    (m, (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt())
}

#[test]
fn noise_is_seeded_and_has_the_documented_scale() {
    for (name, extra) in [("dp-sgd", ""), ("dice-sgd", r#", "max_ef_norm": 2.0"#)] {
        let (sigma, c) = (0.7, 1.5);
        let json = |seed: u64| {
            format!(r#"{{"lr": 1.0, "noise_multiplier": {sigma}, "max_grad_norm": {c}, "seed": {seed}{extra}}}"#)
        };
        let a = noise_step(name, &json(11));
        let b = noise_step(name, &json(11));
        let other = noise_step(name, &json(12));
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "{name}: same seed, different noise"
        );
        let differ = a.iter().zip(&other).filter(|(x, y)| x != y).count();
        assert_eq!(differ, N, "{name}: another seed repeats {} values", N - differ);
        // Tolerances: with n = 40000 independent normals the sample std has
        // relative sd 1/√(2n) ≈ 0.0035 and the mean sd σ/√n; 6 sd bounds (2.1% and
        // 6σ/√n) fail by chance with probability < 1e-8, while a wrong scale
        // (σC instead of σC/B, or σ instead of σC) is off by ≥ 33%.
        let want = sigma * c / SAMPLES as f64;
        let (m, s) = mean_std(&a);
        assert!(
            (s / want - 1.0).abs() < 6.0 / (2.0 * N as f64).sqrt(),
            "{name}: std {s} vs σC/B = {want}"
        );
        assert!(m.abs() < 6.0 * want / (N as f64).sqrt(), "{name}: mean {m}");
    }
}

#[test]
fn expected_batch_size_sets_the_divisor() {
    let json = r#"{"lr": 1.0, "noise_multiplier": 1.0, "max_grad_norm": 1.0, "seed": 5, "expected_batch_size": 8}"#;
    let x = noise_step("dp-sgd", json);
    let y = noise_step("dp-sgd", &json.replace("8}", "4}"));
    // Same noise stream, divided by 8 instead of 4: exactly half (division by powers of two is exact).
    assert!(x.iter().zip(&y).all(|(a, b)| *a * 2.0 == *b));
}
