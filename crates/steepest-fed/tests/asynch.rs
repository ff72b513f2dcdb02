//! Asynchronous clients: determinism, learning, slow clients stretch simulated time.

use steepest_fed::asynch::{run_async, AsyncConfig, Delays};
use steepest_fed::logreg::{LogReg, LogRegSpec};
use steepest_fed::strategy::ClientConfig;

#[test]
fn async_buffered_run_is_deterministic_and_learns() {
    let n = 40;
    let w = LogReg::new(
        LogRegSpec {
            clients: n,
            samples_per_client: 40,
            test: 2000,
            ..LogRegSpec::default()
        },
        2,
    )
    .unwrap();
    // Half the clients are 3× slower.
    let speed: Vec<f64> = (0..n).map(|c| if c < n / 2 { 3.0 } else { 1.0 }).collect();
    let delays = Delays {
        shift: 1.0,
        mean: 1.0,
        speed,
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
    let b = run_async(&w, &cfg, &delays).unwrap();
    assert_eq!(a.model_hash, b.model_hash);
    assert_eq!(a.updates, 60);
    assert!(a.jobs >= 240);
    let start = w.evaluate(&w.init()).accuracy;
    assert!(
        a.final_eval.accuracy > start + 0.3,
        "{} from {start}",
        a.final_eval.accuracy
    );
    assert!(a.mean_staleness > 0.5, "staleness {}", a.mean_staleness);
    assert_eq!(a.per_client.iter().sum::<u64>(), a.jobs);
    // Slower clients stretch simulated time (clients are drawn uniformly, so
    // their jobs still complete, only later).
    let all_fast = Delays {
        speed: vec![1.0; n],
        ..delays.clone()
    };
    let f = run_async(&w, &cfg, &all_fast).unwrap();
    assert!(
        a.sim_time > 1.3 * f.sim_time,
        "mixed {} vs fast {}",
        a.sim_time,
        f.sim_time
    );
    assert!(run_async(
        &w,
        &AsyncConfig {
            buffer: 0,
            ..cfg.clone()
        },
        &delays
    )
    .is_err());
    let bad = Delays {
        speed: vec![1.0; 3],
        ..delays
    };
    assert!(run_async(&w, &cfg, &bad).is_err());
}
