//! The one test matrix: every registered optimizer, under its demo
//! hyperparameters and every variant listed in the registry, goes through the
//! same checks. A new optimizer joins by adding its registry entry.
//!
//! Checks: fused == reference (bit-identical, f32 and f64, serial and parallel
//! paths); loss decreases on a quadratic and on Rosenbrock; a parameter group
//! equals a separate optimizer; save/load resumes bit-identically; every
//! listed invalid input is rejected naming its field; zero-size, one-element
//! and scalar tensors; frozen parameters untouched; determinism across runs
//! and thread counts.

use steepest::hyper::hyper_from_json;
use steepest::registry::{registry, Entry, Exactness};
use steepest::{
    Error, Float, GradSet, GroupSpec, Hyper, Kernel, NonFinite, Optimizer, OptimizerSpec, ParamSet, SampleGrads,
    StepInputs, StepOutcome,
};

/// Deterministic pseudo-random numbers (xorshift64*), roughly uniform in [-1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
    fn vec<F: Float>(&mut self, n: usize, scale: f64) -> Vec<F> {
        (0..n).map(|_| F::from_f64(self.next() * scale)).collect()
    }
}

/// Every hyperparameter set the matrix runs per optimizer: the demo and the variants.
fn hyper_sets(e: &Entry) -> Vec<Hyper> {
    std::iter::once(e.demo)
        .chain(e.variants.iter().copied())
        .map(|j| hyper_from_json(j).unwrap_or_else(|| panic!("{}: bad JSON in registry: {j}", e.name)))
        .collect()
}

/// Shapes used by the mechanical checks: a matrix, a vector, a scalar, a one-element
/// and a zero-size tensor, and one big enough to take the parallel path.
const SHAPES: &[(&str, &[usize])] = &[
    ("w", &[7, 5]),
    ("b", &[5]),
    ("s", &[]),
    ("one", &[1]),
    ("empty", &[3, 0]),
    ("big", &[3, 40_000]),
];

/// The same roles for optimizers that only update matrices: a tall, a wide,
/// two 1×1, an empty and a large matrix.
const MATRIX_SHAPES: &[(&str, &[usize])] = &[
    ("w", &[7, 5]),
    ("b", &[1, 5]),
    ("s", &[1, 1]),
    ("one", &[1, 1]),
    ("empty", &[0, 3]),
    ("big", &[3, 40_000]),
];

type Shapes = &'static [(&'static str, &'static [usize])];

thread_local! {
    static CURRENT: std::cell::Cell<Shapes> = const { std::cell::Cell::new(SHAPES) };
}

/// Selects the shape set for an optimizer: the general one if it accepts every
/// shape, else the matrix one. Every per-optimizer check calls this first.
fn use_shapes_for(e: &Entry) {
    let alg = (e.build)(&e.demo_hyper()).unwrap();
    let all = SHAPES.iter().all(|(_, s)| alg.accepts(s));
    CURRENT.with(|c| c.set(if all { SHAPES } else { MATRIX_SHAPES }));
}

fn shapes() -> Shapes {
    CURRENT.with(|c| c.get())
}

fn make_params<F: Float>(seed: u64) -> ParamSet<F> {
    let mut rng = Rng(seed);
    let mut p = ParamSet::new();
    for (name, shape) in shapes() {
        let n = shape.iter().product();
        p.push(*name, shape, rng.vec(n, 1.0)).unwrap();
    }
    p
}

/// Gradients for step `t`: every parameter, except that `b` is frozen on even steps.
fn make_grads<F: Float>(params: &ParamSet<F>, rng: &mut Rng, t: usize) -> GradSet<F> {
    let mut g = GradSet::new();
    for p in params.iter() {
        if p.name == "b" && t.is_multiple_of(2) {
            continue;
        }
        g.insert(p.name.clone(), rng.vec(p.data.len(), 0.5));
    }
    g
}

/// The loss the matrix reports with a step: `1 + ½‖θ‖²` over all parameters.
fn loss_of<F: Float>(params: &ParamSet<F>) -> f64 {
    1.0 + 0.5
        * params
            .iter()
            .flat_map(|p| &p.data)
            .map(|x| x.to_f64() * x.to_f64())
            .sum::<f64>()
}

/// Per-sample gradients for a gradient `g`: `g - h`, `g`, `g + h` with `h` the
/// gradient rotated by one element and scaled by 0.3, so their mean is `g`
/// and their spread is non-zero.
fn samples_of<F: Float>(g: &[F]) -> Vec<Vec<F>> {
    let n = g.len();
    let h: Vec<F> = (0..n).map(|i| g[(i + 1) % n] * F::from_f64(0.3)).collect();
    vec![
        g.iter().zip(&h).map(|(&a, &b)| a - b).collect(),
        g.to_vec(),
        g.iter().zip(&h).map(|(&a, &b)| a + b).collect(),
    ]
}

/// Every step of the matrix goes through here: the one place that supplies
/// what an optimizer declares it needs beyond gradients (`Optimizer::needs`):
/// the loss `loss`, and per-sample gradients from `samples_of`.
fn step_in<F: Float>(
    opt: &mut Optimizer<F>,
    params: &mut ParamSet<F>,
    g: &mut GradSet<F>,
    loss: f64,
) -> steepest::Result<StepOutcome> {
    let needs = opt.needs();
    let sample_grads = needs.sample_grads.then(|| {
        let mut sg = SampleGrads::new();
        for p in params.iter() {
            if let Some(x) = g.get(&p.name) {
                sg.insert(p.name.clone(), samples_of(x));
            }
        }
        sg
    });
    let inputs = StepInputs {
        loss: needs.loss.then_some(loss),
        sample_grads: sample_grads.as_ref(),
    };
    opt.step_with(params, g, inputs)
}

/// [`step_in`] with the loss [`loss_of`] the parameters.
fn step<F: Float>(
    opt: &mut Optimizer<F>,
    params: &mut ParamSet<F>,
    g: &mut GradSet<F>,
) -> steepest::Result<StepOutcome> {
    let loss = loss_of(params);
    step_in(opt, params, g, loss)
}

fn bits<F: Float>(x: &[F]) -> Vec<u64> {
    x.iter().map(|v| v.to_f64().to_bits()).collect()
}

fn assert_same_state<F: Float>(a: &Optimizer<F>, b: &Optimizer<F>, what: &str) {
    assert_eq!(a.steps(), b.steps(), "{what}: steps");
    for (name, _) in shapes() {
        match (a.param_state(name), b.param_state(name)) {
            (None, None) => {}
            (Some(x), Some(y)) => {
                assert_eq!(x.step, y.step, "{what}: step of {name}");
                assert_eq!(x.slots.len(), y.slots.len(), "{what}: slots of {name}");
                for (i, (u, v)) in x.slots.iter().zip(&y.slots).enumerate() {
                    assert_eq!(bits(u), bits(v), "{what}: slot {i} of {name}");
                }
            }
            _ => panic!("{what}: state of {name} exists in one optimizer only"),
        }
    }
}

fn assert_same_params<F: Float>(a: &ParamSet<F>, b: &ParamSet<F>, what: &str) {
    for (x, y) in a.iter().zip(b.iter()) {
        assert_eq!(bits(&x.data), bits(&y.data), "{what}: parameter {}", x.name);
    }
}

fn run<F: Float>(name: &str, h: &Hyper, kernel: Kernel, steps: usize) -> (ParamSet<F>, Optimizer<F>) {
    let mut params = make_params::<F>(42);
    let mut opt = OptimizerSpec::new(name, h).kernel(kernel).build(&params).unwrap();
    let mut rng = Rng(7);
    for t in 0..steps {
        let mut g = make_grads(&params, &mut rng, t);
        step(&mut opt, &mut params, &mut g).unwrap();
    }
    (params, opt)
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(f64::MIN_POSITIVE);
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / scale).fold(0.0, f64::max)
}

fn fused_equals_reference<F: Float>(e: &Entry) {
    use_shapes_for(e);
    for h in hyper_sets(e) {
        let (pf, of) = run::<F>(e.name, &h, Kernel::Fused, 6);
        let (pr, or) = run::<F>(e.name, &h, Kernel::Reference, 6);
        let what = format!("{} {:?} {}", e.name, h, F::DTYPE);
        match e.fused_vs_reference {
            Exactness::Bitwise => {
                assert_same_params(&pf, &pr, &what);
                assert_same_state(&of, &or, &what);
            }
            Exactness::Within { f64_tol, f32_tol } => {
                let tol = if F::DTYPE == steepest::Dtype::F64 {
                    f64_tol
                } else {
                    f32_tol
                };
                for (x, y) in pf.iter().zip(pr.iter()) {
                    let (a, b): (Vec<f64>, Vec<f64>) = (
                        x.data.iter().map(|v| v.to_f64()).collect(),
                        y.data.iter().map(|v| v.to_f64()).collect(),
                    );
                    let err = max_rel(&a, &b);
                    assert!(err <= tol, "{what}: {} fused vs reference {err:e} > {tol:e}", x.name);
                }
            }
        }
        // The run must have moved the parameters (a no-op kernel would pass the comparison).
        let init = make_params::<F>(42);
        assert_ne!(
            bits(&pf.get("w").unwrap().data),
            bits(&init.get("w").unwrap().data),
            "{what}: w did not move"
        );
    }
}

#[test]
fn fused_equals_reference_bitwise() {
    for e in registry() {
        use_shapes_for(e);
        fused_equals_reference::<f32>(e);
        fused_equals_reference::<f64>(e);
    }
}

/// Minimizes `f` from `x0` with the optimizer; returns (initial loss, final loss).
/// A divergent run (non-finite gradient) reports an infinite final loss.
fn minimize(e: &Entry, h: &Hyper, x0: &[f64], steps: usize, f: impl Fn(&[f64]) -> (f64, Vec<f64>)) -> (f64, f64) {
    // A vector, or a 1×n matrix for optimizers that only update matrices.
    let alg = (e.build)(h).unwrap();
    let shape = if alg.accepts(&[x0.len()]) {
        vec![x0.len()]
    } else {
        vec![1, x0.len()]
    };
    let mut params = ParamSet::<f64>::new();
    params.push("x", &shape, x0.to_vec()).unwrap();
    let mut opt = Optimizer::new(e.name, h, &params).unwrap();
    let (f0, _) = f(x0);
    for _ in 0..steps {
        let (fx, g) = f(&params.get("x").unwrap().data);
        let mut grads = GradSet::new();
        grads.insert("x", g);
        if step_in(&mut opt, &mut params, &mut grads, fx).is_err() {
            return (f0, f64::INFINITY);
        }
    }
    let last = f(&params.get("x").unwrap().data).0;
    (f0, if last.is_finite() { last } else { f64::INFINITY })
}

#[test]
fn loss_decreases_on_quadratic_and_rosenbrock() {
    // Ill-conditioned quadratic 0.5 Σ a_i (x_i - c_i)², condition number 10.
    let a: Vec<f64> = (0..10).map(|i| 0.2 + 0.2 * i as f64).collect();
    let c: Vec<f64> = (0..10).map(|i| (i as f64 * 0.7).sin()).collect();
    let quad = |x: &[f64]| {
        let f = x
            .iter()
            .zip(&a)
            .zip(&c)
            .map(|((x, a), c)| 0.5 * a * (x - c).powi(2))
            .sum();
        let g = x.iter().zip(&a).zip(&c).map(|((x, a), c)| a * (x - c)).collect();
        (f, g)
    };
    // 2-D Rosenbrock from the classic start (-1.2, 1): f0 = 24.2.
    let rosen = |x: &[f64]| {
        let (u, v) = (x[0], x[1]);
        let f = (1.0 - u).powi(2) + 100.0 * (v - u * u).powi(2);
        let g = vec![-2.0 * (1.0 - u) - 400.0 * u * (v - u * u), 200.0 * (v - u * u)];
        (f, g)
    };
    for e in registry() {
        use_shapes_for(e);
        let h = e.demo_hyper();
        let (q0, q1) = minimize(e, &h, &[3.0; 10], 300, quad);
        // Tolerance: every method with its demo step size must remove 99% of the
        // suboptimality in 300 steps on a condition-10 quadratic (all reach far more).
        assert!(q1 < 1e-2 * q0, "{}: quadratic {q0} -> {q1}", e.name);
        // Rosenbrock's curvature at the start (~1000) is 100x the quadratic's, so the
        // demo step is also tried divided by 10 and 100 (a sweep, as one tunes in
        // practice). The best run must leave the start's level (f < 1, vs 24.2) in
        // 2000 steps; a broken or divergent method does not.
        let best = [1.0, 0.1, 0.01]
            .iter()
            .map(|s| {
                // Scale every learning rate of the recipe (lr, final_lr, adamw_lr, ...).
                let mut hs = h.clone();
                for (k, v) in h.iter().filter(|(k, _)| k.ends_with("lr")) {
                    hs.insert(k.clone(), (v.as_f64().unwrap_or(1e-3) * s).into());
                }
                minimize(e, &hs, &[-1.2, 1.0], 2000, rosen).1
            })
            .fold(f64::INFINITY, f64::min);
        assert!(best < 1.0, "{}: rosenbrock 24.2 -> {best}", e.name);
    }
}

#[test]
fn param_group_equals_separate_optimizer() {
    for e in registry() {
        use_shapes_for(e);
        if e.capabilities.couples_params {
            // Its clipping sees the global gradient norm of all parameters: a group
            // and a separate optimizer see different norms by design.
            continue;
        }
        let sets = hyper_sets(e);
        let base = &sets[0];
        let mut over = sets.get(1).cloned().unwrap_or_default();
        // Construction-time hyperparameters are not group-overridable (as in PyTorch).
        over.retain(|k, _| !e.base_only.contains(&k.as_str()));
        // Together: base hyper, group {b} overridden.
        let mut together = make_params::<f64>(3);
        let mut opt = OptimizerSpec::new(e.name, base)
            .group(GroupSpec::names(["b"], over.clone()))
            .build(&together)
            .unwrap();
        // Separately: b alone with base+override, the rest with base.
        let mut only_b = ParamSet::<f64>::new();
        let b_shape = together.get("b").unwrap().shape.clone();
        only_b
            .push("b", &b_shape, together.get("b").unwrap().data.clone())
            .unwrap();
        let mut rest = ParamSet::<f64>::new();
        for p in together.iter().filter(|p| p.name != "b") {
            rest.push(p.name.clone(), &p.shape, p.data.clone()).unwrap();
        }
        let mut merged = base.clone();
        merged.extend(over.clone());
        let mut opt_b = Optimizer::new(e.name, &merged, &only_b).unwrap();
        let mut opt_rest = Optimizer::new(e.name, base, &rest).unwrap();
        let mut rng = Rng(11);
        for t in 0..5 {
            let g = make_grads(&together, &mut rng, t);
            let mut g_all = g.clone();
            let (mut g_b, mut g_rest) = (GradSet::new(), GradSet::new());
            for p in together.iter() {
                if let Some(x) = g.get(&p.name) {
                    if p.name == "b" {
                        g_b.insert("b", x.to_vec());
                    } else {
                        g_rest.insert(p.name.clone(), x.to_vec());
                    }
                }
            }
            // One loss for the whole model, as a training loop would report it.
            let loss = loss_of(&together);
            step_in(&mut opt, &mut together, &mut g_all, loss).unwrap();
            step_in(&mut opt_b, &mut only_b, &mut g_b, loss).unwrap();
            step_in(&mut opt_rest, &mut rest, &mut g_rest, loss).unwrap();
        }
        assert_eq!(
            bits(&together.get("b").unwrap().data),
            bits(&only_b.get("b").unwrap().data),
            "{}",
            e.name
        );
        for p in rest.iter() {
            assert_eq!(
                bits(&together.get(&p.name).unwrap().data),
                bits(&p.data),
                "{}: {}",
                e.name,
                p.name
            );
        }
    }
}

fn resume_bit_identical<F: Float>(e: &Entry) {
    use_shapes_for(e);
    for h in hyper_sets(e) {
        for k in [0usize, 1, 3] {
            let (p_full, o_full) = run::<F>(e.name, &h, Kernel::Fused, 6);
            // Run k steps, save, drop, load into a fresh optimizer, run the rest.
            let mut params = make_params::<F>(42);
            let mut opt = Optimizer::new(e.name, &h, &params).unwrap();
            let mut rng = Rng(7);
            for t in 0..k {
                let mut g = make_grads(&params, &mut rng, t);
                step(&mut opt, &mut params, &mut g).unwrap();
            }
            let bytes = opt.state_to_bytes().unwrap();
            drop(opt);
            let mut opt = Optimizer::new(e.name, &h, &params).unwrap();
            opt.load_state_bytes(&bytes).unwrap();
            for t in k..6 {
                let mut g = make_grads(&params, &mut rng, t);
                step(&mut opt, &mut params, &mut g).unwrap();
            }
            let what = format!("{} {:?} resume at {k}", e.name, h);
            assert_same_params(&params, &p_full, &what);
            assert_same_state(&opt, &o_full, &what);
        }
    }
}

#[test]
fn save_load_resumes_bit_identically() {
    for e in registry() {
        use_shapes_for(e);
        resume_bit_identical::<f32>(e);
        resume_bit_identical::<f64>(e);
    }
}

#[test]
fn invalid_inputs_rejected_naming_the_field() {
    for e in registry() {
        use_shapes_for(e);
        let params = make_params::<f64>(1);
        assert!(
            !e.invalid.is_empty(),
            "{}: the registry lists no invalid inputs",
            e.name
        );
        for (json, field) in e.invalid {
            let h = hyper_from_json(json).unwrap();
            match Optimizer::<f64>::new(e.name, &h, &params) {
                Ok(_) => panic!("{}: {json} was accepted", e.name),
                Err(err @ Error::InvalidHyper { .. }) => {
                    let Error::InvalidHyper { field: f, .. } = &err else {
                        unreachable!()
                    };
                    assert_eq!(f, field, "{}: {json}: {err}", e.name);
                    assert!(
                        err.to_string().contains(field),
                        "{}: message `{err}` lacks `{field}`",
                        e.name
                    );
                }
                Err(other) => panic!("{}: {json}: wrong error kind {other:?}", e.name),
            }
            // The same bad value inside a parameter group is rejected too, naming the group.
            let spec = OptimizerSpec::new(e.name, &Hyper::new()).group(GroupSpec::names(["b"], h.clone()));
            let err = spec.build(&params).expect_err("group override accepted");
            assert!(err.to_string().contains("group 1"), "{}: {err}", e.name);
        }
        // The defaults themselves are valid and every demo/variant builds.
        for h in hyper_sets(e) {
            Optimizer::<f64>::new(e.name, &h, &params).unwrap();
        }
        assert!(!e.defaults().is_empty(), "{}: no defaults", e.name);
    }
}

#[test]
fn tiny_tensors_and_frozen_params() {
    for e in registry() {
        use_shapes_for(e);
        for h in hyper_sets(e) {
            let init = make_params::<f64>(42);
            let mut params = init.clone();
            let mut opt = Optimizer::new(e.name, &h, &params).unwrap();
            let mut rng = Rng(5);
            for _ in 0..3 {
                let mut g = GradSet::new();
                for name in ["s", "one", "empty"] {
                    let n = params.get(name).unwrap().data.len();
                    g.insert(name, rng.vec::<f64>(n, 1.0));
                }
                step(&mut opt, &mut params, &mut g).unwrap();
            }
            let what = format!("{} {:?}", e.name, h);
            for name in ["s", "one"] {
                assert_ne!(
                    params.get(name).unwrap().data,
                    init.get(name).unwrap().data,
                    "{what}: {name} did not move"
                );
                assert_eq!(opt.param_state(name).unwrap().step, 3, "{what}: {name} step count");
            }
            assert!(params.get("empty").unwrap().data.is_empty());
            for name in ["w", "b", "big"] {
                assert_eq!(
                    bits(&params.get(name).unwrap().data),
                    bits(&init.get(name).unwrap().data),
                    "{what}: frozen {name} changed"
                );
                assert!(opt.param_state(name).is_none(), "{what}: frozen {name} got state");
            }
        }
    }
}

#[test]
fn deterministic_across_runs_and_thread_counts() {
    for e in registry() {
        use_shapes_for(e);
        for h in hyper_sets(e) {
            let mut results = Vec::new();
            for threads in [1, 2, 3, 1] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let sh = shapes();
                let (p, _) = pool.install(|| {
                    CURRENT.with(|c| c.set(sh));
                    run::<f32>(e.name, &h, Kernel::Fused, 4)
                });
                results.push(bits(&p.get("big").unwrap().data));
            }
            assert!(
                results.windows(2).all(|w| w[0] == w[1]),
                "{} {:?}: results depend on threads",
                e.name,
                h
            );
        }
    }
}

#[test]
fn wrong_gradients_are_errors_not_panics() {
    for e in registry() {
        use_shapes_for(e);
        let mut params = make_params::<f64>(1);
        let before = params.clone();
        let mut opt = Optimizer::new(e.name, &e.demo_hyper(), &params).unwrap();
        let mut g = GradSet::new();
        g.insert("w", vec![0.0; 3]);
        let err = step(&mut opt, &mut params, &mut g).unwrap_err();
        assert!(err.to_string().contains("`w`"), "{err}");
        let mut g = GradSet::new();
        g.insert("nope", vec![0.0; 3]);
        assert!(step(&mut opt, &mut params, &mut g)
            .unwrap_err()
            .to_string()
            .contains("nope"));
        let mut g = GradSet::new();
        g.insert("b", vec![f64::NAN; 5]);
        assert!(matches!(step(&mut opt, &mut params, &mut g), Err(Error::NonFiniteGradient { name }) if name == "b"));
        assert_eq!(params, before, "{}: a failed step changed parameters", e.name);
        assert_eq!(opt.steps(), 0);
        // `unchecked` does not look: the step runs (NaN flows in, as in PyTorch) and never panics.
        let mut unchecked = Optimizer::new(e.name, &e.demo_hyper(), &params).unwrap();
        unchecked.set_nonfinite(NonFinite::Unchecked);
        let mut p2 = params.clone();
        let r = step(&mut unchecked, &mut p2, &mut g);
        assert!(r.is_ok(), "{}: unchecked step failed: {r:?}", e.name);
        if e.name == "sgd" || e.name == "adam" {
            assert!(
                p2.get("b").unwrap().data.iter().all(|x| x.is_nan()),
                "{}: NaN did not flow",
                e.name
            );
        }
        let mut other = ParamSet::<f64>::new();
        other.push("w", &[35], vec![0.0; 35]).unwrap();
        assert!(
            step(&mut opt, &mut other, &mut GradSet::new()).is_err(),
            "{}: wrong parameter set accepted",
            e.name
        );
    }
}

#[test]
fn missing_step_inputs_are_errors_naming_them() {
    for e in registry() {
        use_shapes_for(e);
        let mut params = make_params::<f64>(1);
        let before = params.clone();
        let mut opt = Optimizer::new(e.name, &e.demo_hyper(), &params).unwrap();
        let needs = opt.needs();
        let mut rng = Rng(3);
        let mut g = make_grads(&params, &mut rng, 1);
        if !needs.loss && !needs.sample_grads {
            // Plain `step` keeps working for everything else, and a loss nobody needs is ignored.
            opt.step(&mut params, &mut g).unwrap();
            let ignored = StepInputs {
                loss: Some(f64::NAN),
                ..Default::default()
            };
            opt.step_with(&mut params, &mut g, ignored).unwrap();
            continue;
        }
        // Without anything: the first required input is named.
        let err = opt.step(&mut params, &mut g).unwrap_err();
        let want = if needs.loss { "loss" } else { "sample_grads" };
        assert!(
            matches!(&err, Error::StepInput { input, .. } if input == want),
            "{}: {err:?}",
            e.name
        );
        assert!(
            err.to_string().contains(want) && err.to_string().contains(e.name),
            "{err}"
        );
        if needs.loss {
            let bad = StepInputs {
                loss: Some(f64::NAN),
                ..Default::default()
            };
            let err = opt.step_with(&mut params, &mut g, bad).unwrap_err();
            assert!(err.to_string().contains("loss"), "{}: {err}", e.name);
        }
        if needs.sample_grads {
            // Per-sample gradients for some parameters only: the missing one is named.
            let mut sg = SampleGrads::new();
            sg.insert("w", samples_of(g.get("w").unwrap()));
            let inputs = StepInputs {
                loss: needs.loss.then_some(1.0),
                sample_grads: Some(&sg),
            };
            let err = opt.step_with(&mut params, &mut g, inputs).unwrap_err();
            assert!(
                err.to_string().contains("sample_grads.") && !err.to_string().contains("`w`"),
                "{err}"
            );
            // Wrong length, unequal sample counts and unknown names are named too.
            let mut sg = SampleGrads::new();
            for p in params.iter() {
                if let Some(x) = g.get(&p.name) {
                    sg.insert(p.name.clone(), samples_of(x));
                }
            }
            let mut short = sg.clone();
            short.insert("w", vec![vec![0.0; 3]; 3]);
            let mut fewer = sg.clone();
            fewer.insert("w", samples_of(g.get("w").unwrap())[..2].to_vec());
            let mut ghost = sg.clone();
            ghost.insert("ghost", vec![vec![0.0]; 3]);
            for (what, bad) in [("sample_grads.w", &short), ("samples", &fewer), ("ghost", &ghost)] {
                let inputs = StepInputs {
                    loss: needs.loss.then_some(1.0),
                    sample_grads: Some(bad),
                };
                let err = opt.step_with(&mut params, &mut g, inputs).unwrap_err();
                assert!(err.to_string().contains(what), "{}: {what}: {err}", e.name);
            }
        }
        assert_eq!(params, before, "{}: a failed step changed parameters", e.name);
        assert_eq!(opt.steps(), 0);
        // `unchecked` does not look: the step runs (NaN flows in, as in PyTorch) and never panics.
        let mut unchecked = Optimizer::new(e.name, &e.demo_hyper(), &params).unwrap();
        unchecked.set_nonfinite(NonFinite::Unchecked);
        let mut p2 = params.clone();
        let r = step(&mut unchecked, &mut p2, &mut g);
        assert!(r.is_ok(), "{}: unchecked step failed: {r:?}", e.name);
        if e.name == "sgd" || e.name == "adam" {
            assert!(
                p2.get("b").unwrap().data.iter().all(|x| x.is_nan()),
                "{}: NaN did not flow",
                e.name
            );
        }
    }
}
