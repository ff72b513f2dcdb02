//! The strategy API, in the spirit of Flower's `Strategy`:
//!
//! 1. [`Strategy::configure_fit`]: given the round and the clients available
//!    in it, choose participants and the instructions each receives.
//! 2. Clients train (simulated in [`crate::sim`], or remote) and return a
//!    [`FitRes`] — or fail ([`Failure`]: dropped, timed out, rejected).
//! 3. [`Strategy::aggregate_fit`]: the new global model from the results *and*
//!    the failures (a strategy may refuse to aggregate when too many failed).
//! 4. [`Strategy::evaluate`]: optional server-side evaluation.
//!
//! A strategy never sees threads, sockets or wall time: the simulator and the
//! server drive the same object, and both hand it results sorted by client id,
//! so the same seed gives the same global model bit for bit.
//!
//! Decorators ([`crate::algorithms::robust::Robust`],
//! [`crate::algorithms::dp::DpFixedClipping`], [`crate::algorithms::fedopt::FedOpt`])
//! hold an inner strategy and change what it receives or returns.

use serde::Serialize;
use steepest::hyper::Hyper;
use steepest::ParamSet;

use crate::rng::{Purpose, Rng};
use crate::{Error, Result};

/// A global or local model: named, shaped f64 tensors.
pub type Model = ParamSet<f64>;

/// What a participant is asked to do (Flower's `FitIns` config).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClientConfig {
    /// Registry name of the local optimizer.
    pub optimizer: String,
    /// Its hyperparameters (learning rate included).
    pub hyper: Hyper,
    /// Local steps (minibatch gradient steps).
    pub local_steps: usize,
    /// Minibatch size (0 = full local batch).
    pub batch: usize,
    /// FedProx proximal coefficient μ (0 = none): the local objective is
    /// `F_k(w) + (μ/2)‖w − w_t‖²`.
    pub prox_mu: f64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            optimizer: "sgd".into(),
            hyper: steepest::hyper([("lr", 0.1)]),
            local_steps: 5,
            batch: 16,
            prox_mu: 0.0,
        }
    }
}

/// Instructions for one participant in one round.
#[derive(Clone, Debug, PartialEq)]
pub struct FitIns {
    /// Client id.
    pub client: usize,
    /// Round (1-based).
    pub round: u64,
    /// What to run.
    pub config: ClientConfig,
}

/// A participant's result.
#[derive(Clone, Debug, PartialEq)]
pub struct FitRes {
    /// Client id.
    pub client: usize,
    /// The locally trained model.
    pub params: Model,
    /// Local examples (the FedAvg weight).
    pub num_examples: u64,
    /// Mean local training loss (reporting only).
    pub loss: f64,
}

/// A participant that did not return a usable result.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// Client id.
    pub client: usize,
    /// Why.
    pub reason: String,
}

/// Server-side evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    /// Loss.
    pub loss: f64,
    /// Accuracy.
    pub accuracy: f64,
}

/// A federated strategy.
pub trait Strategy: Send {
    /// Name for reports.
    fn name(&self) -> String;
    /// Participants and their instructions for `round`, chosen among `available`
    /// (sorted client ids). Sampling draws from the stream `(seed, Sampling, 0, round)`.
    fn configure_fit(&mut self, round: u64, available: &[usize], seed: u64) -> Result<Vec<FitIns>>;
    /// The new global model from `results` and `failures` (both sorted by client id).
    fn aggregate_fit(&mut self, round: u64, global: &Model, results: &[FitRes], failures: &[Failure]) -> Result<Model>;
    /// Optional server-side evaluation (default: none).
    fn evaluate(&self, _round: u64, _global: &Model) -> Option<Evaluation> {
        None
    }
    /// Values the clients have uploaded so far, when the strategy compresses
    /// its uplink (Ferret's projection coefficients); `None` (the default)
    /// means every result carries the full model.
    fn uplink_values(&self) -> Option<u64> {
        None
    }
    /// Server-side state that must survive a server restart (server-optimizer
    /// moments, online weights), as bytes; `None` for a stateless strategy
    /// (the default). Written with every committed round.
    fn state_bytes(&self) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    /// Restores what [`Strategy::state_bytes`] wrote; `global` is the
    /// committed model (optimizer state binds to its tensors). A stateless
    /// strategy refuses state.
    fn load_state_bytes(&mut self, _global: &Model, _bytes: &[u8]) -> Result<()> {
        Err(Error::Config(format!(
            "strategy `{}` keeps no state to restore",
            self.name()
        )))
    }
}

impl<S: Strategy + ?Sized> Strategy for Box<S> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn configure_fit(&mut self, round: u64, available: &[usize], seed: u64) -> Result<Vec<FitIns>> {
        (**self).configure_fit(round, available, seed)
    }
    fn aggregate_fit(&mut self, round: u64, global: &Model, results: &[FitRes], failures: &[Failure]) -> Result<Model> {
        (**self).aggregate_fit(round, global, results, failures)
    }
    fn evaluate(&self, round: u64, global: &Model) -> Option<Evaluation> {
        (**self).evaluate(round, global)
    }
    fn uplink_values(&self) -> Option<u64> {
        (**self).uplink_values()
    }
    fn state_bytes(&self) -> Result<Option<Vec<u8>>> {
        (**self).state_bytes()
    }
    fn load_state_bytes(&mut self, global: &Model, bytes: &[u8]) -> Result<()> {
        (**self).load_state_bytes(global, bytes)
    }
}

/// Flower's client sampling: `k = max(⌊fraction·|available|⌋, min_fit_clients)`
/// uniformly without replacement among the available clients; a round with
/// fewer than `min_available` available clients is skipped (no participants).
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    /// Fraction of available clients (Flower's `fraction_fit`).
    pub fraction: f64,
    /// Lower bound on participants (Flower's `min_fit_clients`).
    pub min_fit_clients: usize,
    /// Skip the round below this many available clients (Flower's `min_available_clients`).
    pub min_available: usize,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            fraction: 1.0,
            min_fit_clients: 1,
            min_available: 1,
        }
    }
}

impl Sampling {
    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        if !(self.fraction > 0.0 && self.fraction <= 1.0) {
            return Err(Error::Config(format!(
                "fraction must be in (0, 1], got {}",
                self.fraction
            )));
        }
        Ok(())
    }

    /// The participants of `round`.
    pub fn sample(&self, round: u64, available: &[usize], seed: u64) -> Vec<usize> {
        if available.len() < self.min_available.max(1) {
            return Vec::new();
        }
        let k = ((available.len() as f64 * self.fraction).floor() as usize)
            .max(self.min_fit_clients)
            .min(available.len());
        let pick = Rng::stream(seed, Purpose::Sampling, 0, round).choose(available.len(), k);
        pick.into_iter().map(|i| available[i]).collect()
    }
}

/// The common start of `aggregate_fit`: no results is [`Error::NoResults`]
/// (counting the round's failures), then [`check_results`].
pub fn require_results(round: u64, global: &Model, results: &[FitRes], failures: &[Failure]) -> Result<()> {
    if results.is_empty() {
        return Err(Error::NoResults {
            round,
            failures: failures.len(),
        });
    }
    check_results(global, results)
}

/// Checks that every result has the global model's names and shapes and only
/// finite values; returns the first offender.
pub fn check_results(global: &Model, results: &[FitRes]) -> Result<()> {
    for r in results {
        if r.params.len() != global.len() {
            return Err(Error::Rejected(format!(
                "client {}: {} tensors, expected {}",
                r.client,
                r.params.len(),
                global.len()
            )));
        }
        for (p, g) in r.params.iter().zip(global.iter()) {
            if p.name != g.name || p.shape != g.shape {
                return Err(Error::Rejected(format!(
                    "client {}: tensor `{}` {:?}, expected `{}` {:?}",
                    r.client, p.name, p.shape, g.name, g.shape
                )));
            }
            if p.data.iter().any(|x| !x.is_finite()) {
                return Err(Error::Rejected(format!(
                    "client {}: non-finite values in `{}`",
                    r.client, p.name
                )));
            }
        }
    }
    if results.windows(2).any(|w| w[0].client >= w[1].client) {
        return Err(Error::Rejected(
            "results must be sorted by client id, one per client".into(),
        ));
    }
    Ok(())
}

/// A model with the global's names and shapes and new data, tensor by tensor.
pub fn with_data(global: &Model, data: Vec<Vec<f64>>) -> Result<Model> {
    let mut m = Model::new();
    for (p, d) in global.iter().zip(data) {
        m.push(p.name.clone(), &p.shape, d)?;
    }
    Ok(m)
}

/// Parses a JSON object of hyperparameters (`{"lr": 0.1}`).
pub fn parse_hyper(text: &str) -> Result<Hyper> {
    steepest::hyper::hyper_from_json(text).ok_or_else(|| Error::Config(format!("not a JSON object: {text}")))
}
