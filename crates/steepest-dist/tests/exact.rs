//! Exact equivalences, bit for bit, against independent single-process loops.

use steepest::hyper::{hyper, Hyper};
use steepest::{GradSet, Optimizer, ParamSet};
use steepest_dist::algo::{flatten, unflatten};
use steepest_dist::inproc::Faults;
use steepest_dist::registry::parse_hyper;
use steepest_dist::train::{data_seed, train_inproc, workload, RankReport, TrainSpec};
use steepest_dist::Collective;

const WORKLOAD: &str = "softmax-digits";

fn run(s: &TrainSpec, n: usize) -> Vec<RankReport> {
    train_inproc(s, n, None, Faults::default())
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

fn spec(algo: &str, h: Hyper, steps: u64) -> TrainSpec {
    let mut s = TrainSpec::new(algo, h, WORKLOAD);
    s.steps = steps;
    s.eval_every = 0;
    s.seed = 11;
    s
}

/// The mean of the workers' vectors, summed in worker order then divided (the all-reduce's arithmetic).
fn mean(vs: &[Vec<f64>]) -> Vec<f64> {
    let mut acc = vs[0].clone();
    for v in &vs[1..] {
        for (a, x) in acc.iter_mut().zip(v) {
            *a += x;
        }
    }
    acc.iter().map(|a| a / vs.len() as f64).collect()
}

/// FedAvg / local SGD (McMahan et al.; in the delta form of Reddi et al.,
/// "Adaptive Federated Optimization", with server learning rate 1): every
/// round each worker runs H local SGD steps from the server model, and the
/// server model moves by the mean of the workers' deltas.
fn fedavg(n: usize, h: u64, rounds: u64, lr: f64, seed: u64) -> Vec<f64> {
    let problem = workload(WORKLOAD).unwrap();
    let mut server: ParamSet<f64> = problem.init(seed);
    let mut workers: Vec<(ParamSet<f64>, Optimizer<f64>)> = (0..n)
        .map(|_| {
            let p = server.clone();
            let o = Optimizer::new("sgd", &hyper([("lr", lr)]), &p).unwrap();
            (p, o)
        })
        .collect();
    let mut g = GradSet::new();
    for round in 0..rounds {
        let x = flatten(&server);
        let mut deltas = Vec::new();
        for (r, (p, o)) in workers.iter_mut().enumerate() {
            unflatten(p, &x).unwrap();
            for k in 1..=h {
                let t = round * h + k;
                problem.loss_grad(p, data_seed(seed, r), t, &mut g);
                o.step(p, &mut g).unwrap();
            }
            deltas.push(x.iter().zip(flatten(p)).map(|(a, b)| a - b).collect::<Vec<f64>>());
        }
        let d = mean(&deltas);
        let next: Vec<f64> = x.iter().zip(&d).map(|(a, b)| a - b).collect();
        unflatten(&mut server, &next).unwrap();
    }
    flatten(&server)
}

#[test]
fn diloco_with_outer_lr_1_and_no_momentum_is_fedavg_bit_for_bit() {
    for (n, h, rounds) in [(2usize, 5u64, 4u64), (3, 7, 3), (4, 1, 5)] {
        let hy = parse_hyper(&format!(
            r#"{{"h": {h}, "inner": "sgd", "inner_hyper": {{"lr": 0.05}}, "outer": "sgd", "outer_hyper": {{"lr": 1.0}}}}"#
        ))
        .unwrap();
        let reps = run(&spec("diloco", hy, h * rounds), n);
        let want = fedavg(n, h, rounds, 0.05, 11);
        for r in &reps {
            assert_eq!(r.model, want, "n={n} h={h}: rank {} differs from FedAvg", r.world_rank);
        }
        // and the test can fail: a different outer lr moves the result
        let hy2 = parse_hyper(&format!(
            r#"{{"h": {h}, "inner": "sgd", "inner_hyper": {{"lr": 0.05}}, "outer": "sgd", "outer_hyper": {{"lr": 0.9}}}}"#
        ))
        .unwrap();
        assert_ne!(run(&spec("diloco", hy2, h * rounds), n)[0].model, want);
    }
}

#[test]
fn ddp_is_the_optimizer_on_the_mean_gradient_bit_for_bit() {
    let n = 3;
    let steps = 12;
    let reps = run(
        &spec(
            "ddp",
            parse_hyper(r#"{"optimizer": "adamw", "optimizer_hyper": {"lr": 0.01}}"#).unwrap(),
            steps,
        ),
        n,
    );
    let problem = workload(WORKLOAD).unwrap();
    let mut p = problem.init(11);
    let mut o = Optimizer::new("adamw", &hyper([("lr", 0.01)]), &p).unwrap();
    let mut g = GradSet::new();
    for t in 1..=steps {
        let gs: Vec<Vec<f64>> = (0..n)
            .map(|r| {
                problem.loss_grad(&p, data_seed(11, r), t, &mut g);
                p.iter().flat_map(|x| g.get(&x.name).unwrap().to_vec()).collect()
            })
            .collect();
        let m = mean(&gs);
        let mut at = 0;
        for x in p.iter() {
            let k = x.data.len();
            g.insert(x.name.clone(), m[at..at + k].to_vec());
            at += k;
        }
        o.step(&mut p, &mut g).unwrap();
    }
    for r in &reps {
        assert_eq!(r.model, flatten(&p), "rank {}", r.world_rank);
    }
}

/// With two workers (one group of two) and equal initial slow weights, NoLoCo's
/// γ term is exactly zero and its group mean is the all-reduce's mean, so it is
/// DiLoCo with the matching outer SGD (lr β, momentum α; Nesterov in the
/// paper's form, heavy-ball in the official code's).
#[test]
fn noloco_with_two_workers_is_diloco_bit_for_bit() {
    for (form, nesterov) in [("nesterov", true), ("heavy-ball", false)] {
        let inner = r#""inner": "adam", "inner_hyper": {"lr": 0.01}"#;
        let nl = parse_hyper(&format!(
            r#"{{"h": 6, "momentum": 0.5, "outer_lr": 0.7, "gamma": 0.7, "form": "{form}", {inner}}}"#
        ))
        .unwrap();
        let dl = parse_hyper(&format!(
            r#"{{"h": 6, "outer": "sgd", "outer_hyper": {{"lr": 0.7, "momentum": 0.5, "nesterov": {nesterov}}}, {inner}}}"#
        ))
        .unwrap();
        let a = run(&spec("noloco", nl, 36), 2);
        let b = run(&spec("diloco", dl, 36), 2);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.model, y.model, "{form}: rank {}", x.world_rank);
        }
        // no collective: NoLoCo moved only point-to-point bytes, half of an all-reduce's... and not DiLoCo's pattern
        assert!(a[0].traffic.ops > 0);
    }
    // the forms really differ
    let h = |f: &str| {
        parse_hyper(&format!(
            r#"{{"h": 6, "form": "{f}", "inner": "adam", "inner_hyper": {{"lr": 0.01}}}}"#
        ))
        .unwrap()
    };
    assert_ne!(
        run(&spec("noloco", h("nesterov"), 36), 2)[0].model,
        run(&spec("noloco", h("heavy-ball"), 36), 2)[0].model
    );
}

/// One Distributed Lion step computed by hand from the workers' gradients.
#[test]
fn dist_lion_first_step_matches_the_paper_by_hand() {
    for (vote, n) in [("mavo", 3usize), ("mavo", 4), ("avg", 3), ("avg", 4)] {
        let lr = 0.01;
        let wd = 0.1;
        let hy = parse_hyper(&format!(
            r#"{{"lr": {lr}, "weight_decay": {wd}, "betas": [0.9, 0.99], "vote": "{vote}"}}"#
        ))
        .unwrap();
        let problem = workload(WORKLOAD).unwrap();
        let mut p0 = problem.init(11);
        // start away from zero so weight decay matters
        let x0: Vec<f64> = (0..p0.total_numel())
            .map(|i| ((i * 37 % 11) as f64 - 5.0) * 0.01)
            .collect();
        unflatten(&mut p0, &x0).unwrap();
        let mut g = GradSet::new();
        let signs: Vec<Vec<f64>> = (0..n)
            .map(|r| {
                problem.loss_grad(&p0, data_seed(11, r), 1, &mut g);
                let gf: Vec<f64> = p0.iter().flat_map(|x| g.get(&x.name).unwrap().to_vec()).collect();
                // m = 0: c = (1 - β1) g
                gf.iter().map(|&gi| if 0.1 * gi >= 0.0 { 1.0 } else { -1.0 }).collect()
            })
            .collect();
        let want: Vec<f64> = (0..x0.len())
            .map(|i| {
                let s: f64 = signs.iter().map(|v| v[i]).sum();
                let d = if vote == "avg" {
                    s / n as f64
                } else {
                    s.signum() * f64::from(s != 0.0)
                };
                x0[i] * (1.0 - lr * wd) - lr * d
            })
            .collect();
        // run one step through the distributed path from x0
        let out = steepest_dist::run_inproc(n, None, Faults::default(), |mut c| {
            let mut algo = steepest_dist::registry::build("dist-lion", &hy, &p0, n)?;
            let r = c.world_rank();
            let mut oracle = |p: &ParamSet<f64>, g: &mut GradSet<f64>| problem.loss_grad(p, data_seed(11, r), 1, g);
            algo.step(&mut c, &mut oracle)?;
            Ok(flatten(algo.model()))
        });
        for o in out {
            assert_eq!(o.unwrap(), want, "{vote} with {n} workers");
        }
    }
}

/// The in-process all-reduce gives every rank the bits of a rank-order sum.
#[test]
fn worker_models_agree_where_the_algorithm_synchronizes() {
    for (algo, h) in [
        ("ddp", r#"{"optimizer": "sgd", "optimizer_hyper": {"lr": 0.1}}"#),
        ("diloco", r#"{"h": 5, "inner": "sgd", "inner_hyper": {"lr": 0.1}}"#),
        ("dist-lion", r#"{"lr": 0.003}"#),
        ("onebit-adam", r#"{"lr": 0.01, "freeze_step": 5}"#),
    ] {
        let reps = run(&spec(algo, parse_hyper(h).unwrap(), 20), 4);
        for r in &reps[1..] {
            assert_eq!(r.model, reps[0].model, "{algo}: rank {}", r.world_rank);
        }
    }
}
