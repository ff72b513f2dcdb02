//! DDP: synchronous data parallelism, the baseline every other method is
//! measured against (PyTorch's `DistributedDataParallel`; "PyTorch
//! Distributed: Experiences on Accelerating Data Parallel Training", Li et
//! al., VLDB 2020, §3: gradients are all-reduced and averaged every step, then
//! every replica applies the same optimizer step).
//!
//! Every step: local gradient, all-reduce (mean) of the flattened gradients,
//! one step of any registry optimizer on identical parameters. The parameters
//! stay bit-identical on every rank because the all-reduce gives every rank the
//! same bits (rank-order sums).
//!
//! Hyperparameters: `optimizer` (registry name, default `adamw`),
//! `optimizer_hyper` (its hyperparameters, default `{}`: the registry's
//! defaults).
//!
//! Choices left open: gradient bucketing (one flat buffer here: bucketing only
//! changes overlap, not bytes); the optimizer is any registry optimizer.

use steepest::hyper::{Hyper, HyperReader};
use steepest::{GradSet, Optimizer, ParamSet};

use super::{build_optimizer, flatten_grads, grads_from_flat, split_nested, DistAlgorithm, Oracle, SYNC_ATTEMPTS};
use crate::collective::{committed, Collective, ReduceOp};
use crate::error::Result;

/// DDP state of one rank.
pub struct Ddp {
    params: ParamSet<f64>,
    opt: Optimizer<f64>,
    grads: GradSet<f64>,
    t: u64,
}

impl Ddp {
    /// Builds from hyperparameters and the initial parameters.
    pub fn new(h: &Hyper, init: &ParamSet<f64>) -> Result<Ddp> {
        let (flat, nested) = split_nested("ddp", h, &["optimizer_hyper"])?;
        let mut r = HyperReader::new("ddp", &flat);
        let name = r.string("optimizer", "adamw")?;
        r.finish()?;
        let oh = nested.get("optimizer_hyper").cloned().unwrap_or_default();
        let opt = build_optimizer("ddp", "optimizer", &name, &oh, init)?;
        Ok(Ddp {
            params: init.clone(),
            opt,
            grads: GradSet::new(),
            t: 0,
        })
    }
}

impl DistAlgorithm for Ddp {
    fn name(&self) -> &'static str {
        "ddp"
    }

    fn step(&mut self, comm: &mut dyn Collective, oracle: &mut Oracle) -> Result<f64> {
        let loss = oracle(&self.params, &mut self.grads);
        let g = flatten_grads(&self.params, &self.grads)?;
        let avg = committed(comm, SYNC_ATTEMPTS, |c| {
            let mut b = g.clone();
            c.all_reduce(&mut b, ReduceOp::Mean)?;
            Ok(b)
        })?;
        grads_from_flat(&self.params, &avg, &mut self.grads);
        self.opt.step(&mut self.params, &mut self.grads)?;
        self.t += 1;
        Ok(loss)
    }

    fn model(&self) -> &ParamSet<f64> {
        &self.params
    }

    fn steps(&self) -> u64 {
        self.t
    }

    fn optimizers(&self) -> Vec<(&'static str, &Optimizer<f64>)> {
        vec![("optimizer", &self.opt)]
    }

    fn restore(
        &mut self,
        model: &ParamSet<f64>,
        states: &std::collections::BTreeMap<String, Vec<u8>>,
        steps: u64,
    ) -> Result<()> {
        if let Some(b) = states.get("optimizer") {
            self.opt.load_state_bytes(b)?;
        }
        self.params = model.clone();
        self.t = steps;
        Ok(())
    }
}
