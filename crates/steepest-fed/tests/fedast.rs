//! FedAST and Sync-ST (research notes §4): one task with fixed `R` is
//! `asynch::run_async` bit for bit, the allocation rules by hand, bad
//! configurations, determinism across thread counts, and the small-scale
//! claim (d) on three logistic-regression tasks.

use steepest_fed::asynch::{run_async, AsyncConfig, Delays};
use steepest_fed::fedast::{self, Dynamic, FedAstConfig, Task};
use steepest_fed::logreg::{LogReg, LogRegSpec};
use steepest_fed::partition::Partition;
use steepest_fed::strategy::ClientConfig;

fn lr(n: usize, features: usize, classes: usize, separation: f64, seed: u64) -> LogReg {
    LogReg::new(
        LogRegSpec {
            clients: n,
            samples_per_client: 40,
            features,
            classes,
            separation,
            test: 1000,
            partition: Partition::Iid,
            ..LogRegSpec::default()
        },
        seed,
    )
    .unwrap()
}

fn speeds(n: usize) -> Vec<f64> {
    // 25% slow (×1.3), 25% fast (×0.7), the rest ×1 (the demo's mix).
    (0..n)
        .map(|c| match c % 4 {
            0 => 1.3,
            1 => 0.7,
            _ => 1.0,
        })
        .collect()
}

#[test]
fn one_task_with_fixed_r_is_run_async_bit_for_bit() {
    let n = 40;
    let w = lr(n, 20, 10, 0.6, 2);
    let delays = Delays {
        shift: 1.0,
        mean: 1.0,
        speed: (0..n).map(|c| if c < n / 2 { 3.0 } else { 1.0 }).collect(),
    };
    let cfg = AsyncConfig {
        concurrency: 12,
        buffer: 4,
        server_lr: 1.0,
        updates: 60,
        seed: 5,
        client: ClientConfig::default(),
    };
    let a = run_async(&w, &cfg, &delays).unwrap();
    let task = Task {
        workload: &w,
        client: cfg.client.clone(),
        delays: delays.clone(),
        inflight: 12,
        buffer: 4,
        server_lr: 1.0,
        target: None,
        max_updates: 60,
    };
    let b = fedast::run_fedast(
        &[task],
        &FedAstConfig {
            seed: 5,
            ..FedAstConfig::default()
        },
    )
    .unwrap();
    let t = &b.tasks[0];
    assert_eq!(t.model_hash, a.model_hash);
    assert_eq!(b.sim_time.to_bits(), a.sim_time.to_bits());
    assert_eq!(t.jobs, a.jobs);
    assert_eq!(t.updates, a.updates);
    assert_eq!(t.mean_staleness.to_bits(), a.mean_staleness.to_bits());
    assert_eq!(b.all_done.map(f64::to_bits), Some(a.sim_time.to_bits()));
}

/// `allocate([1, 3], 16, r = 4)`: each gets 4; temp = (⌊4⌋ − 4, ⌊12⌋ − 4) =
/// (0, 8); the remaining 8 go in units of 4 to the largest temp: task 1 twice.
#[test]
fn allocation_by_hand() {
    assert_eq!(fedast::allocate(&[1.0, 3.0], &[false, false], 16, 4), vec![4, 12]);
    assert_eq!(
        fedast::allocate(&[1.0, 1.0, 5.0], &[false, true, false], 16, 4),
        vec![4, 0, 12]
    );
    // A remainder below r is given whole so Σ R stays R_tot.
    assert_eq!(fedast::allocate(&[1.0, 1.0], &[false, false], 10, 4), vec![6, 4]);
}

fn three_tasks<'a>(ws: &'a [LogReg; 3], r: usize, b: usize, targets: [Option<f64>; 3]) -> Vec<Task<'a>> {
    let n = ws[0].spec.clients;
    // Delay means differ ×2 between tasks (claim (d)'s setting).
    let means = [1.0, 2.0, 1.0];
    (0..3)
        .map(|m| Task {
            workload: &ws[m],
            client: ClientConfig {
                local_steps: 5,
                batch: 16,
                ..ClientConfig::default()
            },
            delays: Delays {
                shift: 0.5 * means[m],
                mean: means[m],
                speed: speeds(n),
            },
            inflight: r,
            buffer: b,
            server_lr: 1.0,
            target: targets[m],
            max_updates: 5000,
        })
        .collect()
}

fn workloads(n: usize, seed: u64) -> [LogReg; 3] {
    [
        lr(n, 10, 2, 0.5, seed),
        lr(n, 20, 10, 0.6, seed + 100),
        lr(n, 30, 10, 0.45, seed + 200),
    ]
}

#[test]
fn bad_configurations_are_errors() {
    let ws = workloads(20, 1);
    let ok = three_tasks(&ws, 4, 2, [None; 3]);
    let cfg = FedAstConfig::default();
    assert!(fedast::run_fedast(&[], &cfg).unwrap_err().to_string().contains("empty"));
    let other = lr(21, 10, 2, 0.5, 1);
    let cases: Vec<(&str, Task)> = vec![
        (
            "clients",
            Task {
                workload: &other,
                ..ok[0].clone()
            },
        ),
        (
            "inflight",
            Task {
                inflight: 0,
                ..ok[0].clone()
            },
        ),
        (
            "buffer",
            Task {
                buffer: 0,
                ..ok[0].clone()
            },
        ),
        (
            "server_lr",
            Task {
                server_lr: -1.0,
                ..ok[0].clone()
            },
        ),
        (
            "speed",
            Task {
                delays: Delays {
                    speed: vec![1.0; 3],
                    ..ok[0].delays.clone()
                },
                ..ok[0].clone()
            },
        ),
        (
            "target",
            Task {
                target: Some(1.5),
                ..ok[0].clone()
            },
        ),
        (
            "max_updates",
            Task {
                max_updates: 0,
                ..ok[0].clone()
            },
        ),
    ];
    for (field, t) in cases {
        let tasks = vec![ok[1].clone(), t];
        let e = fedast::run_fedast(&tasks, &cfg).unwrap_err().to_string();
        assert!(e.contains(field), "{field}: {e}");
        assert!(fedast::run_sync_st(&tasks, &cfg).is_err());
    }
    let dynamic = FedAstConfig {
        dynamic: Some(Dynamic { window: 1, ratio: 4 }),
        ..cfg.clone()
    };
    assert!(fedast::run_fedast(&ok, &dynamic)
        .unwrap_err()
        .to_string()
        .contains("window"));
    let zero_cap = FedAstConfig {
        launch_cap: 0,
        ..cfg.clone()
    };
    assert!(fedast::run_fedast(&ok, &zero_cap).is_err());
    // Sync-ST needs R_tot ≤ N distinct clients.
    let big = three_tasks(&ws, 8, 2, [None; 3]);
    assert!(fedast::run_sync_st(&big, &cfg)
        .unwrap_err()
        .to_string()
        .contains("concurrency"));
}

#[test]
fn deterministic_across_thread_counts() {
    let ws = workloads(30, 3);
    let tasks: Vec<Task> = three_tasks(&ws, 4, 2, [None; 3])
        .into_iter()
        .map(|t| Task { max_updates: 25, ..t })
        .collect();
    let cfg = FedAstConfig {
        seed: 9,
        dynamic: Some(Dynamic { window: 4, ratio: 2 }),
        ..FedAstConfig::default()
    };
    let run = |threads: usize, sync: bool| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let r = if sync {
                fedast::run_sync_st(&tasks, &cfg).unwrap()
            } else {
                fedast::run_fedast(&tasks, &cfg).unwrap()
            };
            (
                r.tasks.iter().map(|t| t.model_hash.clone()).collect::<Vec<_>>(),
                r.sim_time.to_bits(),
                r.reallocations,
            )
        })
    };
    let a = run(1, false);
    assert_eq!(a, run(4, false));
    assert!(a.2 > 0, "no reallocation happened");
    assert_eq!(run(1, true), run(4, true));
}

/// Claim (d), adapted: MNIST-LR / MNIST-MLP / FMNIST-MLP → three logistic
/// tasks of increasing difficulty (2 classes in d = 10; 10 in d = 20; 10 in
/// d = 30 with closer means), 100 clients (25% ×1.3 slower, 25% ×0.7),
/// per-task delays `0.5·mean + Exp(mean)` with means 1, 2, 1. Equal total
/// concurrency 36: FedAST starts at R_m = 12, b_m = 3 (r = 4), dynamic R;
/// Sync-ST runs 12 clients per round per task on disjoint groups.
/// Targets (the paper fixes accuracies per dataset; the plateaus of these
/// synthetic tasks vary with the seed): 98% of the task's plateau, the mean
/// test accuracy over rounds 31–60 of a reference Sync-ST run without
/// targets — the same targets for both methods. Measured: simulated time
/// until every task meets its target, summed over 3 seeds. Claim: FedAST ≤
/// 0.8 × Sync-ST (the paper's "≥ 20% lower"; its runs give up to 46%). The
/// bound is the paper's own threshold, not fitted to these runs.
#[test]
fn fedast_reaches_all_targets_at_least_20_percent_sooner_than_sync_st() {
    let n = 100;
    let (mut t_ast, mut t_sync) = (0.0, 0.0);
    for seed in [21u64, 22, 23] {
        let ws = workloads(n, seed);
        let cfg = FedAstConfig {
            seed,
            max_time: 20_000.0,
            dynamic: Some(Dynamic::default()),
            ..FedAstConfig::default()
        };
        let reference: Vec<Task> = three_tasks(&ws, 12, 3, [None; 3])
            .into_iter()
            .map(|t| Task { max_updates: 60, ..t })
            .collect();
        let plateau = fedast::run_sync_st(&reference, &cfg).unwrap();
        let targets: Vec<Option<f64>> = plateau
            .tasks
            .iter()
            .map(|t| Some(0.98 * t.curve[30..].iter().map(|x| x.1).sum::<f64>() / 30.0))
            .collect();
        eprintln!("seed {seed}: targets {targets:.3?}");
        let tasks = three_tasks(&ws, 12, 3, [targets[0], targets[1], targets[2]]);
        let a = fedast::run_fedast(&tasks, &cfg).unwrap();
        let s = fedast::run_sync_st(&tasks, &cfg).unwrap();
        let fin = |r: &fedast::MultiReport| {
            r.tasks
                .iter()
                .map(|t| {
                    format!(
                        "{:.1}/{}u/R{}",
                        t.finish_time.unwrap_or(f64::NAN),
                        t.updates,
                        t.inflight
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        eprintln!(
            "seed {seed}: fedast all done {:?} [{}] reallocs {}; sync-st all done {:?} [{}]",
            a.all_done,
            fin(&a),
            a.reallocations,
            s.all_done,
            fin(&s)
        );
        t_ast += a.all_done.expect("fedast reached every target");
        t_sync += s.all_done.expect("sync-st reached every target");
    }
    eprintln!(
        "mean time to all targets: fedast {:.1} vs sync-st {:.1} (ratio {:.3})",
        t_ast / 3.0,
        t_sync / 3.0,
        t_ast / t_sync
    );
    assert!(t_ast <= 0.8 * t_sync, "fedast {t_ast} vs sync-st {t_sync}");
}
