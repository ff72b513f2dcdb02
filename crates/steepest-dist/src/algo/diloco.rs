//! DiLoCo: "DiLoCo: Distributed Low-Communication Training of Language Models"
//! (Douillard et al., 2023), Algorithm 1.
//!
//! Every worker `i` starts a round from the global parameters θ^{(t−1)}, takes
//! `H` steps of the inner optimizer on its own data (Algorithm 1, lines 4–8),
//! then the outer gradient Δ^{(t)} = (1/k) Σ_i (θ^{(t−1)} − θ_i^{(t)}) is
//! averaged (line 10, one all-reduce) and the outer optimizer steps the global
//! parameters with it (line 11); every worker then resumes from the new θ^{(t)}.
//!
//! Defaults (the paper's §3): inner AdamW (the registry's `adamw` with its
//! defaults unless `inner_hyper` says otherwise; the paper uses lr 4e-4, weight
//! decay 0.1 with warm-up and cosine on 150M-parameter models), outer SGD with
//! Nesterov momentum, lr 0.7, momentum 0.9, `H = 500`.
//!
//! Hyperparameters: `h` (inner steps per round), `inner` + `inner_hyper`,
//! `outer` + `outer_hyper` (any registry optimizers; the outer one receives Δ
//! as its gradient).
//!
//! Choices the paper leaves open, and ours:
//! - Inner optimizer state across rounds: **kept** (each worker's AdamW state
//!   persists; the paper's workers keep their optimizer, torchft does too).
//! - Sign of Δ: θ_old − θ_local (a descent direction for the outer optimizer, as in the paper).
//! - Data sharding: each rank draws its own minibatch stream (seeded by its rank).
//! - Mean: rank-order sum divided by the number of live workers; a lost worker
//!   is dropped from the round's average (see [`crate::collective::committed`]).
//! - With outer lr 1 and no momentum, one round is θ ← θ − mean_i(θ − θ_i),
//!   FedAvg / local SGD written in the delta form of "Adaptive Federated
//!   Optimization" (Reddi et al.); the unit test checks it bit for bit.

use std::collections::BTreeMap;

use steepest::hyper::{hyper, Hyper, HyperReader};
use steepest::{GradSet, Optimizer, ParamSet};

use super::{build_optimizer, flatten, grads_from_flat, split_nested, unflatten, DistAlgorithm, Oracle, SYNC_ATTEMPTS};
use crate::collective::{committed, Collective, ReduceOp};
use crate::error::Result;

/// The paper's outer optimizer: SGD, Nesterov momentum 0.9, lr 0.7.
pub fn default_outer_hyper() -> Hyper {
    let mut h = hyper([("lr", 0.7), ("momentum", 0.9)]);
    h.insert("nesterov".into(), serde_json::Value::Bool(true));
    h
}

/// DiLoCo state of one worker.
pub struct DiLoCo {
    global: ParamSet<f64>,
    local: ParamSet<f64>,
    inner: Optimizer<f64>,
    outer: Optimizer<f64>,
    h: u64,
    t: u64,
    grads: GradSet<f64>,
}

impl DiLoCo {
    /// Builds from hyperparameters and the initial (shared) parameters.
    pub fn new(hy: &Hyper, init: &ParamSet<f64>) -> Result<DiLoCo> {
        let (flat, nested) = split_nested("diloco", hy, &["inner_hyper", "outer_hyper"])?;
        let mut r = HyperReader::new("diloco", &flat);
        let h = r.usize("h", 500)?;
        r.check(h >= 1, "h", "must be at least 1 inner step per round")?;
        let inner = r.string("inner", "adamw")?;
        let outer = r.string("outer", "sgd")?;
        r.finish()?;
        let ih = nested.get("inner_hyper").cloned().unwrap_or_default();
        let oh = match nested.get("outer_hyper") {
            Some(o) => o.clone(),
            None if outer == "sgd" => default_outer_hyper(),
            None => Hyper::new(),
        };
        Ok(DiLoCo {
            inner: build_optimizer("diloco", "inner", &inner, &ih, init)?,
            outer: build_optimizer("diloco", "outer", &outer, &oh, init)?,
            global: init.clone(),
            local: init.clone(),
            h: h as u64,
            t: 0,
            grads: GradSet::new(),
        })
    }

    fn outer_step(&mut self, comm: &mut dyn Collective) -> Result<()> {
        let g = flatten(&self.global);
        let l = flatten(&self.local);
        let delta: Vec<f64> = g.iter().zip(&l).map(|(a, b)| a - b).collect();
        let avg = committed(comm, SYNC_ATTEMPTS, |c| {
            let mut b = delta.clone();
            c.all_reduce(&mut b, ReduceOp::Mean)?;
            Ok(b)
        })?;
        let mut og = GradSet::new();
        grads_from_flat(&self.global, &avg, &mut og);
        self.outer.step(&mut self.global, &mut og)?;
        let g = flatten(&self.global);
        unflatten(&mut self.local, &g)
    }
}

impl DistAlgorithm for DiLoCo {
    fn name(&self) -> &'static str {
        "diloco"
    }

    fn step(&mut self, comm: &mut dyn Collective, oracle: &mut Oracle) -> Result<f64> {
        let loss = oracle(&self.local, &mut self.grads);
        self.inner.step(&mut self.local, &mut self.grads)?;
        self.t += 1;
        if self.t.is_multiple_of(self.h) {
            self.outer_step(comm)?;
        }
        Ok(loss)
    }

    fn model(&self) -> &ParamSet<f64> {
        &self.global
    }

    fn steps(&self) -> u64 {
        self.t
    }

    fn optimizers(&self) -> Vec<(&'static str, &Optimizer<f64>)> {
        vec![("inner", &self.inner), ("outer", &self.outer)]
    }

    fn restore(&mut self, model: &ParamSet<f64>, states: &BTreeMap<String, Vec<u8>>, steps: u64) -> Result<()> {
        if let Some(b) = states.get("inner") {
            self.inner.load_state_bytes(b)?;
        }
        if let Some(b) = states.get("outer") {
            self.outer.load_state_bytes(b)?;
        }
        self.global = model.clone();
        self.local = model.clone();
        self.t = steps;
        Ok(())
    }
}
