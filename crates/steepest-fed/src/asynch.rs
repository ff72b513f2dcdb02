//! Asynchronous clients on simulated time, with buffered aggregation.
//!
//! Participation model (research notes, "async FIFO clients with
//! shifted-exponential delays"; FedAST's `utils/delay.py`): a job on client
//! `c` takes `speed_c · (shift + Exp(mean))` simulated seconds, drawn from the
//! stream `(seed, Delay, c, job)`; a client runs its jobs one after another
//! (FIFO: a job starts at `max(now, the client's last finish)`).
//!
//! Server: buffered asynchronous aggregation as in FedBuff (Nguyen et al.,
//! *Federated Learning with Buffered Asynchronous Aggregation*, AISTATS 2022,
//! Algorithm 1) and FedAST's per-task update: `concurrency` jobs are in flight;
//! each starts from the model version current at launch, on a client drawn
//! uniformly with replacement (stream `(seed, Sampling, 0, job)`); arrivals are
//! processed in finish-time order (ties by job id); every `buffer` arrivals,
//! `x ← x + η_g · (1/|B|) Σ_{B} Δ_j` (no staleness discount, as in FedAST's
//! code), and each arrival launches a replacement job at its finish time.
//! Deterministic for a seed: all draws are keyed by job id.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use crate::rng::{Purpose, Rng};
use crate::sim::{model_hash, Workload};
use crate::strategy::{with_data, ClientConfig, Evaluation, FitIns, Model};
use crate::{Error, Result};

/// Compute delays: `speed[c] · (shift + Exp(mean))`.
#[derive(Clone, Debug, PartialEq)]
pub struct Delays {
    /// Shift (minimum time per job at speed 1).
    pub shift: f64,
    /// Mean of the exponential part.
    pub mean: f64,
    /// Per-client slowness factors (length N).
    pub speed: Vec<f64>,
}

impl Delays {
    /// One job's duration.
    pub fn draw(&self, client: usize, job: u64, seed: u64) -> f64 {
        let mut r = Rng::stream(seed, Purpose::Delay, client as u64, job);
        self.speed[client] * (self.shift + r.exponential(self.mean))
    }
}

/// Settings of an asynchronous run.
#[derive(Clone, Debug, PartialEq)]
pub struct AsyncConfig {
    /// Jobs in flight.
    pub concurrency: usize,
    /// Arrivals per server update.
    pub buffer: usize,
    /// Server learning rate η_g.
    pub server_lr: f64,
    /// Server updates to run.
    pub updates: u64,
    /// Seed.
    pub seed: u64,
    /// What clients run.
    pub client: ClientConfig,
}

/// An asynchronous run's record.
#[derive(Clone, Debug, Serialize)]
pub struct AsyncReport {
    /// Simulated time at the last update.
    pub sim_time: f64,
    /// Server updates done.
    pub updates: u64,
    /// Client jobs completed.
    pub jobs: u64,
    /// Mean staleness (server versions between a job's launch and its arrival).
    pub mean_staleness: f64,
    /// Jobs completed per client.
    pub per_client: Vec<u64>,
    /// Final evaluation.
    pub final_eval: Evaluation,
    /// Hash of the final model.
    pub model_hash: String,
}

struct Job {
    finish: f64,
    id: u64,
    client: usize,
    version: u64,
    delta: Vec<Vec<f64>>,
}

impl PartialEq for Job {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Job {}
impl PartialOrd for Job {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Job {
    // Reversed: BinaryHeap pops the earliest finish, then the lowest id.
    fn cmp(&self, o: &Self) -> Ordering {
        o.finish.total_cmp(&self.finish).then(o.id.cmp(&self.id))
    }
}

/// Runs buffered asynchronous FL on `w`.
pub fn run_async<W: Workload + ?Sized>(w: &W, cfg: &AsyncConfig, delays: &Delays) -> Result<AsyncReport> {
    let n = w.clients();
    let lr_ok = cfg.server_lr > 0.0 && cfg.server_lr.is_finite();
    if cfg.concurrency == 0 || cfg.buffer == 0 || !lr_ok || delays.speed.len() != n {
        return Err(Error::Config(format!(
            "async needs concurrency ≥ 1, buffer ≥ 1, server_lr > 0 and {n} speeds; got {}, {}, {}, {}",
            cfg.concurrency,
            cfg.buffer,
            cfg.server_lr,
            delays.speed.len()
        )));
    }
    let speeds_ok = delays.speed.iter().all(|s| *s > 0.0 && s.is_finite());
    if !(delays.shift >= 0.0 && delays.mean >= 0.0 && speeds_ok) {
        return Err(Error::Config("delays need shift, mean ≥ 0 and speeds > 0".into()));
    }
    let mut global = Arc::new(w.init());
    let mut version = 0u64;
    let mut busy_until = vec![0.0f64; n];
    let mut per_client = vec![0u64; n];
    let mut heap = BinaryHeap::new();
    let mut next_id = 0u64;
    // Plans a job (client and timing) at time `now` without training it.
    let plan = |now: f64, busy: &mut [f64], id: u64| {
        let client = Rng::stream(cfg.seed, Purpose::Sampling, 0, id).below(n);
        let start = now.max(busy[client]);
        let finish = start + delays.draw(client, id, cfg.seed);
        busy[client] = finish;
        (id, client, finish)
    };
    let train = |id: u64, client: usize, model: &Model| -> Result<Vec<Vec<f64>>> {
        let ins = FitIns {
            client,
            round: id + 1,
            config: cfg.client.clone(),
        };
        let r = w.fit(&ins, model, cfg.seed)?;
        Ok(r.params
            .iter()
            .zip(model.iter())
            .map(|(p, g)| p.data.iter().zip(&g.data).map(|(a, b)| a - b).collect())
            .collect())
    };
    // The first `concurrency` jobs start together: train them in parallel.
    let first: Vec<(u64, usize, f64)> = (0..cfg.concurrency)
        .map(|_| {
            let j = plan(0.0, &mut busy_until, next_id);
            next_id += 1;
            j
        })
        .collect();
    let deltas: Vec<Result<Vec<Vec<f64>>>> = first.par_iter().map(|&(id, c, _)| train(id, c, &global)).collect();
    for ((id, client, finish), delta) in first.into_iter().zip(deltas) {
        heap.push(Job {
            finish,
            id,
            client,
            version,
            delta: delta?,
        });
    }
    let (mut buf, mut stale_sum, mut jobs, mut now) = (Vec::new(), 0u64, 0u64, 0.0);
    while version < cfg.updates {
        let job = heap.pop().ok_or_else(|| Error::Config("no jobs in flight".into()))?;
        now = job.finish;
        jobs += 1;
        per_client[job.client] += 1;
        stale_sum += version - job.version;
        buf.push(job.delta);
        if buf.len() >= cfg.buffer {
            let m = buf.len() as f64;
            let data = global
                .iter()
                .enumerate()
                .map(|(k, g)| {
                    (0..g.data.len())
                        .map(|i| {
                            let s: f64 = buf.iter().map(|d| d[k][i]).sum();
                            g.data[i] + cfg.server_lr * (s / m)
                        })
                        .collect()
                })
                .collect();
            global = Arc::new(with_data(&global, data)?);
            version += 1;
            buf.clear();
        }
        let (id, client, finish) = plan(now, &mut busy_until, next_id);
        next_id += 1;
        let delta = train(id, client, &global)?;
        heap.push(Job {
            finish,
            id,
            client,
            version,
            delta,
        });
    }
    Ok(AsyncReport {
        sim_time: now,
        updates: version,
        jobs,
        mean_staleness: stale_sum as f64 / jobs.max(1) as f64,
        per_client,
        final_eval: w.evaluate(&global),
        model_hash: format!("{:016x}", model_hash(&global)),
    })
}
