//! The simulator's speed on the Flower comparison workload (see
//! tools/bench/flower_fed_sim.py): logistic regression, 1,000 clients × 50
//! samples, d = 20, C = 10, 100 clients per round, 5 local SGD steps of batch
//! 16 at lr 0.1, FedAvg. Prints one JSON line with client updates per second.
//!
//! `cargo run --release -p steepest-fed --example fed_bench -- [ROUNDS] [THREADS]`

use steepest_fed::logreg::{LogReg, LogRegSpec};
use steepest_fed::participation::Participation;
use steepest_fed::sim::{self, SimConfig};
use steepest_fed::strategy::{ClientConfig, Sampling};
use steepest_fed::{algorithms, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let threads: Option<usize> = args.get(2).and_then(|s| s.parse().ok());
    let w = LogReg::new(LogRegSpec::default(), 0)?;
    let sampling = Sampling {
        fraction: 0.1,
        ..Sampling::default()
    };
    let client = ClientConfig {
        optimizer: "sgd".into(),
        hyper: steepest::hyper([("lr", 0.1)]),
        local_steps: 5,
        batch: 16,
        prox_mu: 0.0,
    };
    let mut s = algorithms::build("fedavg", sampling, client, &Default::default())?;
    let cfg = SimConfig {
        rounds,
        seed: 0,
        threads,
        ..SimConfig::default()
    };
    let r = sim::run(&w, &mut s, &Participation::All, &cfg)?;
    println!(
        "{{\"framework\": \"steepest-fed\", \"rounds\": {rounds}, \"updates\": {}, \"wall_s\": {:.6}, \"updates_per_s\": {:.1}, \"threads\": {}, \"accuracy\": {:.4}, \"model\": \"{}\"}}",
        r.client_updates,
        r.total_seconds,
        r.updates_per_sec,
        threads.unwrap_or_else(rayon::current_num_threads),
        r.final_eval.accuracy,
        r.model_hash
    );
    Ok(())
}
