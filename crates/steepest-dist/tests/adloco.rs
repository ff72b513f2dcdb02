//! AdLoCo: exact equivalences and properties (see `src/algo/adloco.rs`).

use steepest::{GradSet, ParamSet};
use steepest_dist::algo::adloco::{norm_test, AdLoCo};
use steepest_dist::algo::DistAlgorithm;
use steepest_dist::inproc::Faults;
use steepest_dist::registry::parse_hyper;
use steepest_dist::train::{data_seed, micro_seed, train_inproc, workload, RankReport, TrainSpec};
use steepest_dist::{run_inproc, Collective};

fn run(s: &TrainSpec, n: usize) -> Vec<RankReport> {
    train_inproc(s, n, None, Faults::default())
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

fn spec(algo: &str, h: &str, steps: u64) -> TrainSpec {
    let mut s = TrainSpec::new(algo, parse_hyper(h).unwrap(), "softmax-digits");
    s.steps = steps;
    s.eval_every = 0;
    s.seed = 5;
    s
}

/// One trainer, no batch test (b fixed at one minibatch), inner state kept and
/// DiLoCo's outer optimizer: AdLoCo is DiLoCo, bit for bit, bytes included.
#[test]
fn one_trainer_without_adaptive_batching_is_diloco_bit_for_bit() {
    let inner = r#""inner": "adam", "inner_hyper": {"lr": 0.01}"#;
    let outer = r#""outer": "sgd", "outer_hyper": {"lr": 0.7, "momentum": 0.9, "nesterov": true}"#;
    for (n, h) in [(2usize, 5u64), (3, 4), (4, 1)] {
        let a = run(
            &spec(
                "adloco",
                &format!(r#"{{"h": {h}, "trainers": 1, "test": "none", "inner_state": "keep", {inner}, {outer}}}"#),
                6 * h,
            ),
            n,
        );
        let d = run(&spec("diloco", &format!(r#"{{"h": {h}, {inner}, {outer}}}"#), 6 * h), n);
        for (x, y) in a.iter().zip(&d) {
            assert_eq!(x.model, y.model, "n={n} h={h}: rank {}", x.world_rank);
            assert_eq!(x.train_loss, y.train_loss, "n={n} h={h}");
            assert_eq!(x.traffic.bytes_sent, y.traffic.bytes_sent, "n={n} h={h}");
        }
        // the test can fail: the code's default (fresh inner optimizer each round) differs
        let r = run(
            &spec(
                "adloco",
                &format!(r#"{{"h": {h}, "trainers": 1, "test": "none", {inner}, {outer}}}"#),
                6 * h,
            ),
            n,
        );
        if h > 1 {
            assert_ne!(r[0].model, d[0].model, "n={n} h={h}");
        }
    }
}

/// Known gradients (rank r's gradient is a fixed vector, whatever the
/// parameters): the distributed norm-test statistic and the new batch equal a
/// direct computation from those gradients, bit for bit; so do the augmented
/// inner-product test's (paper form).
#[test]
fn batch_tests_equal_a_direct_computation_on_known_gradients() {
    let known: Vec<Vec<f64>> = vec![
        vec![0.31, -1.7, 2.25, 0.004, 1.0],
        vec![0.29, -1.1, 2.75, -0.02, 0.5],
        vec![0.45, -2.3, 1.75, 0.013, 1.25],
        vec![0.33, -1.5, 2.05, 0.0, 0.75],
    ];
    let mut init = ParamSet::new();
    init.push("w", &[2, 2], vec![0.0; 4]).unwrap();
    init.push("b", &[1], vec![0.0]).unwrap();
    for (m, b0, eta) in [(4usize, 1u64, 0.8), (3, 2, 0.1), (2, 3, 0.05)] {
        let hy = parse_hyper(&format!(
            r#"{{"h": 2, "trainers": 1, "batch": {b0}, "eta": {eta}, "test": "both", "nu": 0.3, "inner": "sgd", "inner_hyper": {{"lr": 0.1}}}}"#
        ))
        .unwrap();
        let out = run_inproc(m, None, Faults::default(), |mut c| {
            let mut a = AdLoCo::new(&hy, &init, m)?;
            let g = known[c.world_rank()].clone();
            let mut oracle = |_: &ParamSet<f64>, gs: &mut GradSet<f64>| {
                gs.insert("w", g[..4].to_vec());
                gs.insert("b", g[4..].to_vec());
                1.0
            };
            for _ in 0..2 {
                a.step(&mut c, &mut oracle)?;
            }
            Ok(a.trainers()[0].stat.clone().expect("a batch test ran"))
        });
        // direct computation
        let mut sum = known[0].clone();
        for g in &known[1..m] {
            for (s, x) in sum.iter_mut().zip(g) {
                *s += x;
            }
        }
        let gbar: Vec<f64> = sum.iter().map(|s| s / m as f64).collect();
        let gn2: f64 = gbar.iter().map(|x| x * x).sum();
        let mut s = 0.0;
        for g in &known[..m] {
            s += g.iter().zip(&gbar).map(|(a, b)| (a - b) * (a - b)).sum::<f64>();
        }
        let var = (b0 as f64 / (m - 1) as f64) * s;
        let t_norm = var / (m as f64 * eta * eta * gn2);
        // augmented inner-product test (paper form)
        let mf = m as f64;
        let ips: Vec<f64> = known[..m]
            .iter()
            .map(|g| g.iter().zip(&gbar).map(|(a, b)| a * b).sum())
            .collect();
        let mean_ip = ips.iter().sum::<f64>() / mf;
        let var_ip = ips.iter().map(|x| (x - mean_ip) * (x - mean_ip)).sum::<f64>() / (mf - 1.0);
        let mut on2 = 0.0;
        for (g, ip) in known[..m].iter().zip(&ips) {
            let c = ip / gn2;
            on2 += g.iter().zip(&gbar).map(|(a, b)| (a - c * b) * (a - c * b)).sum::<f64>();
        }
        let bf = b0 as f64;
        let t_aug = (bf * var_ip / (mf * 0.3 * 0.3 * gn2 * gn2)).max(bf * (on2 / (mf - 1.0)) / (mf * 0.3 * 0.3 * gn2));
        let want_b = b0.max(t_norm.max(t_aug).ceil() as u64);
        for o in out {
            let st = o.unwrap();
            assert_eq!(st.nodes, m);
            assert_eq!(st.sum_sq_diffs, s, "m={m}");
            assert_eq!(st.gbar_norm_sq, gn2, "m={m}");
            assert_eq!(st.t_norm, Some(t_norm), "m={m}");
            assert_eq!(st.t_norm, Some(norm_test(b0, m, s, gn2, eta)));
            assert_eq!(st.t_aug, Some(t_aug), "m={m}");
            assert_eq!(st.b_before, b0);
            assert_eq!(st.b_after, want_b, "m={m}: T_norm {t_norm}, T_aug {t_aug}");
        }
        // and the statistic is not trivially matched: with the mean over m+1 it would differ
        assert_ne!(norm_test(b0, m, s, gn2, eta), norm_test(b0, m + 1, s, gn2, eta));
    }
}

/// Over a run with several trainers, merges and a rank-changing allocation,
/// no trainer's batch ever decreases (and a merged trainer's batch is at
/// least both of its parents'); the batch does grow, so the property is not vacuous.
#[test]
fn batch_never_decreases_over_a_run() {
    let problem = workload("softmax-digits").unwrap();
    let init = problem.init(2);
    let n = 4;
    let hy = parse_hyper(
        r#"{"h": 5, "trainers": 3, "merge_every": 3, "test": "both", "eta": 0.5, "max_batch": 32, "inner": "adam", "inner_hyper": {"lr": 0.01}}"#,
    )
    .unwrap();
    let out = run_inproc(n, None, Faults::default(), |mut c| {
        let mut a = AdLoCo::new(&hy, &init, n)?;
        let dseed = data_seed(2, c.world_rank());
        let mut hist: Vec<Vec<(usize, u64)>> = Vec::new();
        for t in 1..=60u64 {
            let mut calls = 0u64;
            let mut oracle = |p: &ParamSet<f64>, g: &mut GradSet<f64>| {
                let s = micro_seed(dseed, calls);
                calls += 1;
                problem.loss_grad(p, s, t, g)
            };
            a.step(&mut c, &mut oracle)?;
            hist.push(a.trainers().iter().map(|t| (t.id, t.b)).collect());
        }
        Ok((hist, a.merges().to_vec()))
    });
    type Table = (Vec<Vec<(usize, u64)>>, Vec<(u64, usize, usize)>);
    let mut first: Option<Table> = None;
    for o in out {
        let (hist, merges) = o.unwrap();
        assert!(!merges.is_empty(), "no merge happened");
        let mut grew = false;
        for w in hist.windows(2) {
            for &(id, b) in &w[1] {
                // a trainer present before never has a smaller batch now
                if let Some(&(_, b0)) = w[0].iter().find(|x| x.0 == id) {
                    assert!(b >= b0, "trainer {id}: batch {b0} -> {b}");
                    grew |= b > b0;
                }
                // a merge: the survivor's batch is at least every vanished trainer's
                for &(vid, vb) in &w[0] {
                    if !w[1].iter().any(|x| x.0 == vid) && merges.iter().any(|m| m.1 == id && m.2 == vid) {
                        assert!(b >= vb, "merged {vid} (b {vb}) into {id} (b {b})");
                    }
                }
            }
        }
        assert!(grew, "the batch never grew: {:?}", hist.last());
        // every rank holds the same table
        if let Some(f) = &first {
            assert_eq!(f.0, hist);
            assert_eq!(f.1, merges);
        } else {
            first = Some((hist, merges));
        }
    }
}

/// Bytes sent per worker, exactly: softmax-digits (d = 650 f64), 4 workers,
/// H = 10, 2 trainers merged after round 2, norm test. Each all-reduce of L
/// values costs a rank 2·(3/4)·8L = 12L bytes (reduce-scatter + all-gather),
/// each commit vote 8·3 = 24 bytes. Per round: parameters and last gradients
/// of every trainer (2·T·d values), then 4 scalars per rank (16 values).
/// DDP: one all-reduce of d values and a vote per step.
#[test]
fn bytes_per_worker_match_the_count_and_compare_to_ddp() {
    let d = 650u64;
    let steps = 40;
    let ad = run(
        &spec(
            "adloco",
            r#"{"h": 10, "trainers": 2, "inner": "adam", "inner_hyper": {"lr": 0.01}}"#,
            steps,
        ),
        4,
    );
    let ddp = run(
        &spec(
            "ddp",
            r#"{"optimizer": "adam", "optimizer_hyper": {"lr": 0.01}}"#,
            steps,
        ),
        4,
    );
    let round = |t: u64| 12 * (2 * t * d) + 24 + 12 * 16 + 24;
    let want = 2 * round(2) + 2 * round(1);
    // Per rank the all-reduce cost depends on its chunk (650 = 163 + 163 + 162 + 162
    // values), so the count is exact for the mean over ranks, which is 12·L per all-reduce.
    let mean = |reps: &[RankReport]| reps.iter().map(|r| r.traffic.bytes_sent as f64).sum::<f64>() / reps.len() as f64;
    assert_eq!(mean(&ad), want as f64);
    let per_step = want as f64 / steps as f64;
    let ddp_step = mean(&ddp) / steps as f64;
    assert_eq!(ddp_step, (12 * d + 24) as f64);
    // steady state (one trainer): (12·2d + 240)/10 per step
    let steady = (12 * 2 * d + 240) as f64 / 10.0;
    eprintln!(
        "adloco: {per_step} B/worker/step over {steps} steps ({:.3} of DDP's {ddp_step}); steady state {steady} ({:.3})",
        per_step / ddp_step,
        steady / ddp_step
    );
}
