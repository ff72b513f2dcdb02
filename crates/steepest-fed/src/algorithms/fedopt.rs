//! FedOpt: a server optimizer on the pseudo-gradient.
//!
//! Paper: Reddi, Charles, Zaheer, Garrett, Rush, Konečný, Kumar & McMahan,
//! *Adaptive Federated Optimization* (ICLR 2021), Algorithm 1 (FedOpt): the
//! clients' average change `Δ_t = x̄_t − x_t` is treated as a negative
//! gradient and handed to a server optimizer `ServerOpt(x_t, −Δ_t, η, t)`.
//!
//! [`FedOpt`] is a decorator: the inner strategy (FedAvg, or a robust
//! aggregator) produces `x̄`; FedOpt feeds `g = x − x̄` to a **registry
//! optimizer** ([`RegistryServerOpt`]: `sgd` gives FedAvgM, `adam` with
//! `bias_correction = false` FedAdam, `adagrad` FedAdagrad) or to another
//! [`ServerOptimizer`] (FedYogi, which has no registry entry). The server
//! optimizer's state lives for the whole run; its step count is the number of
//! aggregations, and a per-round learning-rate multiplier (for Flower's
//! bias-corrected FedAdam) is set from the round number before each step.

use steepest::hyper::Hyper;
use steepest::{GradSet, Optimizer, OptimizerSpec};

use crate::strategy::{Failure, FitIns, FitRes, Model, Strategy};
use crate::Result;

/// A server optimizer: moves `x` along the pseudo-gradient `g = x − x̄`.
pub trait ServerOptimizer: Send {
    /// Name for reports.
    fn name(&self) -> String;
    /// One server step in `round` (1-based).
    fn step(&mut self, round: u64, x: &mut Model, pseudo_grad: &Model) -> Result<()>;
}

/// A per-round multiplier on the server learning rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrScale {
    /// 1 every round.
    One,
    /// Flower's FedAdam `eta_norm / eta = sqrt(1 − β2^{r+1}) / (1 − β1^{r+1})`, `r` the round.
    FlowerAdam {
        /// β1.
        beta1: f64,
        /// β2.
        beta2: f64,
    },
}

impl LrScale {
    fn at(self, round: u64) -> f64 {
        match self {
            LrScale::One => 1.0,
            LrScale::FlowerAdam { beta1, beta2 } => {
                let r = round as f64 + 1.0;
                (1.0 - beta2.powf(r)).sqrt() / (1.0 - beta1.powf(r))
            }
        }
    }
}

/// Any registry optimizer as the server optimizer.
#[derive(Debug)]
pub struct RegistryServerOpt {
    spec: OptimizerSpec,
    name: String,
    hyper: Hyper,
    scale: LrScale,
    opt: Option<Optimizer<f64>>,
    grads: GradSet<f64>,
}

impl RegistryServerOpt {
    /// The registry optimizer `name` with `hyper`; validated now (on an empty
    /// parameter set), bound to the model's tensors on the first step.
    pub fn new(name: &str, hyper: Hyper, scale: LrScale) -> Result<Self> {
        let entry = steepest::registry::lookup(name)?;
        (entry.build)(&hyper)?;
        Ok(RegistryServerOpt {
            spec: OptimizerSpec::new(name, &hyper),
            name: name.to_string(),
            hyper,
            scale,
            opt: None,
            grads: GradSet::new(),
        })
    }

    /// The bound optimizer (after the first step), e.g. to save its state.
    pub fn optimizer(&self) -> Option<&Optimizer<f64>> {
        self.opt.as_ref()
    }
}

impl ServerOptimizer for RegistryServerOpt {
    fn name(&self) -> String {
        format!(
            "{}{}",
            self.name,
            serde_json::to_string(&self.hyper).unwrap_or_default()
        )
    }

    fn step(&mut self, round: u64, x: &mut Model, g: &Model) -> Result<()> {
        if self.opt.is_none() {
            self.opt = Some(self.spec.clone().build(x)?);
        }
        let opt = self.opt.as_mut().expect("built above");
        opt.set_lr_scale(self.scale.at(round));
        for p in g.iter() {
            match self.grads.get_mut(&p.name) {
                Some(buf) => buf.copy_from_slice(&p.data),
                None => {
                    self.grads.insert(p.name.clone(), p.data.clone());
                }
            }
        }
        opt.step(x, &mut self.grads)?;
        Ok(())
    }
}

/// The FedOpt decorator: inner aggregate `x̄`, then a server step on `x − x̄`.
pub struct FedOpt<S> {
    inner: S,
    server: Box<dyn ServerOptimizer>,
    label: String,
}

impl<S: Strategy> FedOpt<S> {
    /// Wraps `inner` with the server optimizer `server`; `label` names the result (e.g. `fedadam`).
    pub fn new(inner: S, server: Box<dyn ServerOptimizer>, label: &str) -> Self {
        FedOpt {
            inner,
            server,
            label: label.to_string(),
        }
    }
}

/// `x − x̄`, tensor by tensor.
pub fn pseudo_gradient(x: &Model, xbar: &Model) -> Result<Model> {
    let data = x
        .iter()
        .zip(xbar.iter())
        .map(|(a, b)| a.data.iter().zip(&b.data).map(|(u, v)| u - v).collect())
        .collect();
    crate::strategy::with_data(x, data)
}

impl<S: Strategy> Strategy for FedOpt<S> {
    fn name(&self) -> String {
        format!("{}[{} over {}]", self.label, self.server.name(), self.inner.name())
    }
    fn configure_fit(&mut self, round: u64, available: &[usize], seed: u64) -> Result<Vec<FitIns>> {
        self.inner.configure_fit(round, available, seed)
    }
    fn aggregate_fit(&mut self, round: u64, global: &Model, results: &[FitRes], failures: &[Failure]) -> Result<Model> {
        let xbar = self.inner.aggregate_fit(round, global, results, failures)?;
        let g = pseudo_gradient(global, &xbar)?;
        let mut x = global.clone();
        self.server.step(round, &mut x, &g)?;
        Ok(x)
    }
    fn evaluate(&self, round: u64, global: &Model) -> Option<crate::strategy::Evaluation> {
        self.inner.evaluate(round, global)
    }
}
