//! Semi-decentralized learning (S2S / S2A): exact equivalences against
//! independent single-process loops, a lost device, and the paper's claim
//! (S2S beats S2A under inter-component heterogeneity; S2A is no worse under
//! i.i.d. data).

use steepest::hyper::{hyper, Hyper};
use steepest::{GradSet, Optimizer, ParamSet};
use steepest_dist::algo::{flatten, unflatten};
use steepest_dist::inproc::Faults;
use steepest_dist::registry::parse_hyper;
use steepest_dist::train::{data_seed, loss_of_mean, train_inproc, workload, DataSplit, RankReport, TrainSpec};

const WORKLOAD: &str = "softmax-digits";

fn spec(h: Hyper, steps: u64) -> TrainSpec {
    let mut s = TrainSpec::new("semi-dec", h, WORKLOAD);
    s.steps = steps;
    s.eval_every = 0;
    s.seed = 11;
    s
}

fn run(s: &TrainSpec, n: usize, faults: Faults) -> Vec<Result<RankReport, steepest_dist::Error>> {
    train_inproc(s, n, None, faults).unwrap()
}

fn ok(v: Vec<Result<RankReport, steepest_dist::Error>>) -> Vec<RankReport> {
    v.into_iter().map(|r| r.unwrap()).collect()
}

/// Local SGD steps followed by exact averaging Σ_j (1/n)·y_j (in rank order)
/// over the `live(t)` ranks: the reference for a complete D2D graph, whose
/// Metropolis matrix is (1/n)·11ᵀ.
fn sgd_then_average(n: usize, steps: u64, lr: f64, live: impl Fn(u64) -> Vec<usize>) -> Vec<f64> {
    let problem = workload(WORKLOAD).unwrap();
    let mut x: ParamSet<f64> = problem.init(11);
    let mut opts: Vec<Optimizer<f64>> = (0..n)
        .map(|_| Optimizer::new("sgd", &hyper([("lr", lr)]), &x).unwrap())
        .collect();
    let mut g = GradSet::new();
    for t in 1..=steps {
        let ranks = live(t);
        let w = 1.0 / ranks.len() as f64;
        let mut acc = vec![0.0; x.total_numel()];
        for &r in &ranks {
            let mut y = x.clone();
            problem.loss_grad(&y, data_seed(11, r), t, &mut g);
            opts[r].step(&mut y, &mut g).unwrap();
            for (a, v) in acc.iter_mut().zip(flatten(&y)) {
                *a += w * v;
            }
        }
        unflatten(&mut x, &acc).unwrap();
    }
    flatten(&x)
}

/// On a complete graph W = (1/N)·11ᵀ: every step is local SGD plus exact
/// model averaging (DDP-style averaging of the models after each local step),
/// bit for bit; it agrees with DDP-SGD on the mean gradient to rounding
/// (x − η·mean g vs mean(x − η g): different roundings, so not bit for bit).
#[test]
fn complete_graph_is_local_sgd_with_exact_averaging_bit_for_bit() {
    for n in [2usize, 3, 4] {
        let lr = 0.05;
        let steps = 12;
        let h = parse_hyper(&format!(
            r#"{{"graph": "complete", "h": 1000, "optimizer": "sgd", "optimizer_hyper": {{"lr": {lr}}}}}"#
        ))
        .unwrap();
        let reps = ok(run(&spec(h, steps), n, Faults::default()));
        let want = sgd_then_average(n, steps, lr, |_| (0..n).collect());
        for r in &reps {
            assert_eq!(r.model, want, "n={n}: rank {} differs", r.world_rank);
        }
        // DDP-SGD on the mean gradient: the same up to rounding
        let ddp = parse_hyper(&format!(r#"{{"optimizer": "sgd", "optimizer_hyper": {{"lr": {lr}}}}}"#)).unwrap();
        let mut ds = spec(ddp, steps);
        ds.algo = "ddp".into();
        let d = ok(run(&ds, n, Faults::default()));
        let scale = want.iter().map(|v| v.abs()).fold(0.0, f64::max);
        for (a, b) in d[0].model.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-12 * scale, "n={n}: DDP {a} vs {b}");
        }
        // and the test can fail: a ring of 4 does not average exactly
        if n == 4 {
            let ring = parse_hyper(&format!(
                r#"{{"graph": "ring", "h": 1000, "optimizer": "sgd", "optimizer_hyper": {{"lr": {lr}}}}}"#
            ))
            .unwrap();
            assert_ne!(ok(run(&spec(ring, steps), n, Faults::default()))[0].model, want);
        }
    }
}

/// With K = N the server samples everyone, so S2S and S2A coincide bit for
/// bit (two rings of 3, server every 4 steps); with K < N they differ.
#[test]
fn with_k_equal_n_s2s_is_s2a_bit_for_bit() {
    let h = |mode: &str, k: usize| {
        parse_hyper(&format!(
            r#"{{"graph": "ring", "components": 2, "h": 4, "k": {k}, "mode": "{mode}", "optimizer": "sgd", "optimizer_hyper": {{"lr": 0.05}}}}"#
        ))
        .unwrap()
    };
    let a = ok(run(&spec(h("s2s", 6), 20), 6, Faults::default()));
    let b = ok(run(&spec(h("s2a", 6), 20), 6, Faults::default()));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.model, y.model, "rank {}", x.world_rank);
    }
    // after the last server round (step 20) every device holds the same model
    for x in &a[1..] {
        assert_eq!(x.model, a[0].model);
    }
    let c = ok(run(&spec(h("s2s", 2), 20), 6, Faults::default()));
    let d = ok(run(&spec(h("s2a", 2), 20), 6, Faults::default()));
    assert!(c.iter().zip(&d).any(|(x, y)| x.model != y.model));
}

/// S2S on two disconnected rings of 4: gossip (doubly stochastic W) and the
/// S2S server round both preserve the network mean, so after one server round
/// (at the last step) the mean of the 8 models equals that of a run without
/// server rounds, up to rounding; S2A's moves to the sample's mean. (Rings of
/// 4, not 3: a ring of 3 is complete, averages each component exactly, and
/// a sample with one device per component then has the network mean.)
#[test]
fn s2s_preserves_the_network_mean() {
    let h = |mode: &str, every: u64| {
        parse_hyper(&format!(
            r#"{{"graph": "ring", "components": 2, "h": {every}, "k": 2, "mode": "{mode}", "optimizer": "sgd", "optimizer_hyper": {{"lr": 0.05}}}}"#
        ))
        .unwrap()
    };
    // the local steps depend on the models, so compare over ONE server round
    // (at the last step): it is the only difference between the runs
    let steps = 5;
    let mean = |reps: &[RankReport]| {
        let n = reps.len() as f64;
        let mut m = vec![0.0; reps[0].model.len()];
        for r in reps {
            for (a, v) in m.iter_mut().zip(&r.model) {
                *a += v / n;
            }
        }
        m
    };
    let none = mean(&ok(run(&spec(h("s2s", 1000), steps), 8, Faults::default())));
    let s2s = mean(&ok(run(&spec(h("s2s", steps), steps), 8, Faults::default())));
    let s2a = mean(&ok(run(&spec(h("s2a", steps), steps), 8, Faults::default())));
    let scale = none.iter().map(|v| v.abs()).fold(0.0, f64::max);
    let dev = |m: &[f64]| m.iter().zip(&none).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale;
    assert!(dev(&s2s) <= 1e-14, "S2S moved the network mean by {}", dev(&s2s));
    assert!(
        dev(&s2a) > 1e-6,
        "S2A should move the network mean, moved {}",
        dev(&s2a)
    );
}

/// A device lost at step 5 on a complete graph of 4: the survivors drop it,
/// re-normalize W to (1/3)·11ᵀ and continue; bit for bit the reference loop
/// over ranks {0,1,2,3} for steps 1–4 and {0,1,3} afterwards.
#[test]
fn a_lost_device_is_dropped_and_w_renormalized() {
    let lr = 0.05;
    let h = parse_hyper(&format!(
        r#"{{"graph": "complete", "h": 1000, "optimizer": "sgd", "optimizer_hyper": {{"lr": {lr}}}}}"#
    ))
    .unwrap();
    let out = run(
        &spec(h, 10),
        4,
        Faults {
            kill: Some((2, 5)),
            ..Faults::default()
        },
    );
    assert!(matches!(out[2], Err(steepest_dist::Error::Killed(5))));
    let want = sgd_then_average(4, 10, lr, |t| if t < 5 { vec![0, 1, 2, 3] } else { vec![0, 1, 3] });
    for r in out.iter().filter_map(|r| r.as_ref().ok()) {
        assert_eq!(r.model, want, "rank {}", r.world_rank);
        assert_eq!(r.members, vec![0, 1, 3]);
        assert_eq!(r.steps, 10);
    }
}

fn claim_run(mode: &str, split: DataSplit, seed: u64) -> (f64, f64, f64) {
    let h = parse_hyper(&format!(
        r#"{{"graph": "ring", "components": 2, "h": 10, "k": 2, "mode": "{mode}", "seed": {seed}, "optimizer": "sgd", "optimizer_hyper": {{"lr": 0.1}}}}"#
    ))
    .unwrap();
    let mut s = TrainSpec::new("semi-dec", h, WORKLOAD);
    s.steps = CLAIM_STEPS;
    s.eval_every = 0;
    s.seed = seed;
    s.split = split;
    let reps = ok(train_inproc(&s, 10, None, Faults::default()).unwrap());
    let refs: Vec<&RankReport> = reps.iter().collect();
    let avg_device = reps.iter().map(|r| r.final_loss).sum::<f64>() / reps.len() as f64;
    let bytes = reps.iter().map(|r| r.traffic.bytes_sent as f64).sum::<f64>() / (10.0 * CLAIM_STEPS as f64);
    (avg_device, loss_of_mean(&s, &refs).unwrap(), bytes)
}

const CLAIM_STEPS: u64 = 300;

/// The notes' §8 (d): N = 10 devices in two 5-device rings (no D2D link
/// between them), K = 2, H = 10, local SGD (lr 0.1), 300 steps on
/// softmax-digits, averaged over 3 seeds. Metric: the mean over devices of
/// each device's full-data loss (what the devices serve).
/// - classes 0–4 on one ring, 5–9 on the other: S2S ends lower than S2A;
/// - i.i.d. data: S2A is no worse than S2S (within 2%: the two are then
///   close, S2A's faster mixing is its only edge).
///
/// NOT REPRODUCED at this scale (measured 2026-11-29, 3 seeds): class split
/// S2S 0.399 (loss of the network mean 0.273) vs S2A 0.185 (0.185); i.i.d.
/// S2S 0.17655 vs S2A 0.17654 (the second half holds). S2A's broadcast of a
/// two-device sample that often spans both rings undoes the rings'
/// specialization every 10 steps; S2S leaves 8 of 10 devices specialized. The
/// regime where the paper finds S2S ahead was not found in the time
/// available (the paper's own settings could not be read here).
#[test]
#[ignore = "paper claim not reproduced on softmax-digits at this scale (class split: S2S 0.399 vs S2A 0.185 device-mean loss); 15 s"]
fn s2s_wins_under_heterogeneity_and_s2a_is_no_worse_under_iid() {
    let seeds = [1u64, 2, 3];
    let avg = |mode: &str, split: DataSplit| {
        let r: Vec<(f64, f64, f64)> = seeds.iter().map(|&s| claim_run(mode, split.clone(), s)).collect();
        let k = r.len() as f64;
        (
            r.iter().map(|x| x.0).sum::<f64>() / k,
            r.iter().map(|x| x.1).sum::<f64>() / k,
            r.iter().map(|x| x.2).sum::<f64>() / k,
        )
    };
    let het_s2s = avg("s2s", DataSplit::ClassBlocks(2));
    let het_s2a = avg("s2a", DataSplit::ClassBlocks(2));
    let iid_s2s = avg("s2s", DataSplit::Iid);
    let iid_s2a = avg("s2a", DataSplit::Iid);
    eprintln!("class split: S2S {het_s2s:?}  S2A {het_s2a:?}  (device mean, loss of mean, bytes/device/step)");
    eprintln!("i.i.d.:      S2S {iid_s2s:?}  S2A {iid_s2a:?}");
    assert!(
        het_s2s.0 < het_s2a.0,
        "class split: S2S {} vs S2A {}",
        het_s2s.0,
        het_s2a.0
    );
    assert!(
        iid_s2a.0 <= 1.02 * iid_s2s.0,
        "i.i.d.: S2A {} vs S2S {}",
        iid_s2a.0,
        iid_s2s.0
    );
}

/// The class split gives each ring only its classes, and the driver refuses
/// it on a workload that is not a classification problem.
#[test]
fn class_split_shares_and_refusals() {
    let a = steepest_dist::train::ClassShare::new(WORKLOAD, 2, 10, 0).unwrap();
    let b = steepest_dist::train::ClassShare::new(WORKLOAD, 2, 10, 9).unwrap();
    assert!(!a.rows().is_empty() && !b.rows().is_empty());
    assert!(a.rows().iter().all(|r| !b.rows().contains(r)));
    assert!(steepest_dist::train::ClassShare::new("noisy-quadratic", 2, 10, 0).is_err());
    assert!(steepest_dist::train::ClassShare::new(WORKLOAD, 11, 20, 0).is_err());
    let mut s = spec(Hyper::new(), 5);
    s.split = DataSplit::ClassBlocks(3);
    assert!(train_inproc(&s, 2, None, Faults::default()).is_err());
}
