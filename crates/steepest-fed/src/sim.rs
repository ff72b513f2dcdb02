//! The simulator: every participant of a round trains in parallel on the
//! rayon pool (no process or actor per client), results are collected in
//! client-id order and handed to the strategy with the failures.
//!
//! Determinism: a client's training draws only from its own stream
//! `(seed, Train, client, round)`; dropouts and attacks from theirs;
//! aggregation sums in client-id order. The global model after any round is
//! therefore the same bit for bit for any thread count (tested).

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::attack::Attack;
use crate::logreg::LogReg;
use crate::participation::Participation;
use crate::rng::{Purpose, Rng};
use crate::strategy::{Evaluation, Failure, FitIns, FitRes, Model, Strategy};
use crate::{Error, Result};

/// What the simulator trains.
pub trait Workload: Sync {
    /// Number of clients.
    fn clients(&self) -> usize;
    /// Initial global model.
    fn init(&self) -> Model;
    /// One client's local training from `global`.
    fn fit(&self, ins: &FitIns, global: &Model, seed: u64) -> Result<FitRes>;
    /// Server-side evaluation of a model.
    fn evaluate(&self, model: &Model) -> Evaluation;
}

/// A client side of its own over the logistic-regression workload (FedSpeed's
/// stateful clients, FedHyper's adaptive local rate, MCI's masks): the
/// workload's clients, initial model and evaluation, with the side's own
/// local training. Every such side is a [`Workload`].
pub trait LogRegClientSide: Sync {
    /// The data.
    fn data(&self) -> &LogReg;
    /// One client's local training.
    fn fit_client(&self, ins: &FitIns, global: &Model, seed: u64) -> Result<FitRes>;
}

impl<T: LogRegClientSide> Workload for T {
    fn clients(&self) -> usize {
        self.data().spec.clients
    }
    fn init(&self) -> Model {
        self.data().init()
    }
    fn fit(&self, ins: &FitIns, global: &Model, seed: u64) -> Result<FitRes> {
        self.fit_client(ins, global, seed)
    }
    fn evaluate(&self, model: &Model) -> Evaluation {
        self.data().evaluate(model)
    }
}

impl Workload for LogReg {
    fn clients(&self) -> usize {
        self.spec.clients
    }
    fn init(&self) -> Model {
        LogReg::init(self)
    }
    fn fit(&self, ins: &FitIns, global: &Model, seed: u64) -> Result<FitRes> {
        LogReg::fit(self, ins, global, seed)
    }
    fn evaluate(&self, model: &Model) -> Evaluation {
        LogReg::evaluate(self, model)
    }
}

/// Simulation settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Rounds.
    pub rounds: u64,
    /// Seed of every stream.
    pub seed: u64,
    /// Evaluate every this many rounds (0 = only at the end).
    pub eval_every: u64,
    /// Threads (None = rayon's global pool).
    pub threads: Option<usize>,
    /// Probability that a participant drops out of a round (a [`Failure`]).
    pub dropout: f64,
    /// Poisoning: the attack and the per-client malicious flags.
    pub attack: Option<(Attack, Vec<bool>)>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            rounds: 10,
            seed: 0,
            eval_every: 0,
            threads: None,
            dropout: 0.0,
            attack: None,
        }
    }
}

/// One round's record.
#[derive(Clone, Debug, Serialize)]
pub struct RoundRecord {
    /// Round.
    pub round: u64,
    /// Results aggregated.
    pub results: usize,
    /// Failures reported.
    pub failures: usize,
    /// Mean local training loss of the results.
    pub train_loss: f64,
    /// Evaluation after the round, when scheduled.
    pub eval: Option<Evaluation>,
    /// Whether the model changed (false when no result arrived).
    pub updated: bool,
}

/// A run's record.
#[derive(Clone, Debug, Serialize)]
pub struct SimReport {
    /// Strategy name.
    pub strategy: String,
    /// Per-round records.
    pub rounds: Vec<RoundRecord>,
    /// Final evaluation.
    pub final_eval: Evaluation,
    /// Client updates computed.
    pub client_updates: u64,
    /// Seconds in client training (parallel section).
    pub train_seconds: f64,
    /// Seconds in all (training, aggregation, sampling; evaluation excluded).
    pub total_seconds: f64,
    /// Client updates per second over `total_seconds`.
    pub updates_per_sec: f64,
    /// FNV-1a hash of the final model's bits (for determinism checks).
    pub model_hash: String,
    /// The final model.
    #[serde(skip)]
    pub model: Model,
}

/// FNV-1a over the names, shapes and f64 bits of a model.
pub fn model_hash(m: &Model) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for &x in b {
            h ^= u64::from(x);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for p in m.iter() {
        eat(p.name.as_bytes());
        for &s in &p.shape {
            eat(&(s as u64).to_le_bytes());
        }
        for &x in &p.data {
            eat(&x.to_bits().to_le_bytes());
        }
    }
    h
}

/// Trains one round's participants (in parallel) and splits the outcomes.
pub fn train_round<W: Workload + ?Sized>(
    w: &W,
    ins: &[FitIns],
    global: &Model,
    cfg: &SimConfig,
) -> (Vec<FitRes>, Vec<Failure>) {
    let outcomes: Vec<std::result::Result<FitRes, Failure>> = ins
        .par_iter()
        .map(|i| {
            if cfg.dropout > 0.0
                && Rng::stream(cfg.seed, Purpose::Dropout, i.client as u64, i.round).bernoulli(cfg.dropout)
            {
                return Err(Failure {
                    client: i.client,
                    reason: "dropped out (simulated)".into(),
                });
            }
            let mut r = w.fit(i, global, cfg.seed).map_err(|e| Failure {
                client: i.client,
                reason: e.to_string(),
            })?;
            if let Some((attack, bad)) = &cfg.attack {
                if bad.get(i.client).copied().unwrap_or(false) {
                    attack.apply(global, &mut r, cfg.seed, i.round);
                }
            }
            Ok(r)
        })
        .collect();
    let mut results = Vec::with_capacity(outcomes.len());
    let mut failures = Vec::new();
    for o in outcomes {
        match o {
            Ok(r) if r.num_examples > 0 => results.push(r),
            Ok(r) => failures.push(Failure {
                client: r.client,
                reason: "no local data".into(),
            }),
            Err(f) => failures.push(f),
        }
    }
    results.sort_by_key(|r| r.client);
    failures.sort_by_key(|f| f.client);
    (results, failures)
}

/// Runs a simulation.
pub fn run<W: Workload + ?Sized, S: Strategy + ?Sized>(
    w: &W,
    strategy: &mut S,
    participation: &Participation,
    cfg: &SimConfig,
) -> Result<SimReport> {
    if !(0.0..=1.0).contains(&cfg.dropout) {
        return Err(Error::Config(format!("dropout must be in [0, 1], got {}", cfg.dropout)));
    }
    match cfg.threads {
        Some(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| Error::Config(format!("thread pool: {e}")))?;
            pool.install(|| run_inner(w, strategy, participation, cfg))
        }
        None => run_inner(w, strategy, participation, cfg),
    }
}

fn run_inner<W: Workload + ?Sized, S: Strategy + ?Sized>(
    w: &W,
    strategy: &mut S,
    participation: &Participation,
    cfg: &SimConfig,
) -> Result<SimReport> {
    let mut avail = participation.start(w.clients(), cfg.seed)?;
    let mut global = w.init();
    let mut rounds = Vec::new();
    let (mut updates, mut train_s, mut total_s) = (0u64, 0.0, 0.0);
    for t in 1..=cfg.rounds {
        let t0 = Instant::now();
        let available = avail.round(t)?;
        let ins = strategy.configure_fit(t, &available, cfg.seed)?;
        let t1 = Instant::now();
        let (results, failures) = train_round(w, &ins, &global, cfg);
        train_s += t1.elapsed().as_secs_f64();
        updates += results.len() as u64;
        let train_loss = if results.is_empty() {
            f64::NAN
        } else {
            results.iter().map(|r| r.loss).sum::<f64>() / results.len() as f64
        };
        let updated = match strategy.aggregate_fit(t, &global, &results, &failures) {
            Ok(m) => {
                global = m;
                true
            }
            Err(Error::NoResults { .. }) => false,
            Err(e) => return Err(e),
        };
        total_s += t0.elapsed().as_secs_f64();
        let eval = (cfg.eval_every > 0 && t % cfg.eval_every == 0).then(|| w.evaluate(&global));
        rounds.push(RoundRecord {
            round: t,
            results: results.len(),
            failures: failures.len(),
            train_loss,
            eval,
            updated,
        });
    }
    Ok(SimReport {
        strategy: strategy.name(),
        rounds,
        final_eval: w.evaluate(&global),
        client_updates: updates,
        train_seconds: train_s,
        total_seconds: total_s,
        updates_per_sec: updates as f64 / total_s.max(1e-12),
        model_hash: format!("{:016x}", model_hash(&global)),
        model: global,
    })
}
