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
    /// The optimizer state (moments, step counts) as bytes, for a server restart.
    fn state_bytes(&self) -> Result<Vec<u8>>;
    /// Restores [`ServerOptimizer::state_bytes`]; `x` is the committed global model.
    fn load_state_bytes(&mut self, x: &Model, bytes: &[u8]) -> Result<()>;
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

    /// steepest's optimizer-state file (`steepest::state`: safetensors plus
    /// checked metadata); empty before the first step.
    fn state_bytes(&self) -> Result<Vec<u8>> {
        match &self.opt {
            Some(opt) => Ok(opt.state_to_bytes()?),
            None => Ok(Vec::new()),
        }
    }

    fn load_state_bytes(&mut self, x: &Model, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            self.opt = None;
            return Ok(());
        }
        let mut opt = self.spec.clone().build(x)?;
        opt.load_state_bytes(bytes)?;
        self.opt = Some(opt);
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
    /// Length-prefixed: the inner strategy's state (if any), then the server optimizer's.
    fn state_bytes(&self) -> Result<Option<Vec<u8>>> {
        let inner = self.inner.state_bytes()?;
        let server = self.server.state_bytes()?;
        let mut out = Vec::with_capacity(17 + server.len() + inner.as_ref().map_or(0, Vec::len));
        match inner {
            Some(b) => {
                out.push(1);
                out.extend_from_slice(&(b.len() as u64).to_le_bytes());
                out.extend_from_slice(&b);
            }
            None => out.push(0),
        }
        out.extend_from_slice(&server);
        Ok(Some(out))
    }
    fn load_state_bytes(&mut self, global: &Model, bytes: &[u8]) -> Result<()> {
        let bad = || crate::Error::Config(format!("{}: truncated strategy state", self.label));
        let (&tag, rest) = bytes.split_first().ok_or_else(bad)?;
        let server = match tag {
            0 => rest,
            1 if rest.len() >= 8 => {
                let n = u64::from_le_bytes(rest[..8].try_into().map_err(|_| bad())?) as usize;
                let body = rest.get(8..8 + n).ok_or_else(bad)?;
                self.inner.load_state_bytes(global, body)?;
                &rest[8 + n..]
            }
            _ => return Err(bad()),
        };
        self.server.load_state_bytes(global, server)
    }
}
