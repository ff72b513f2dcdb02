//! FedAdagrad.
//!
//! Paper: Reddi et al., *Adaptive Federated Optimization* (ICLR 2021),
//! Algorithm 2 (FedAdagrad branch): `v_t = v_{t−1} + Δ_t²`,
//! `x_{t+1} = x_t + η m_t / (√v_t + τ)`, `m_t = β1 m_{t−1} + (1−β1) Δ_t`.
//!
//! steepest uses β1 = 0 (Flower's `FedAdagrad` passes `beta_1 = 0`), so
//! `m_t = Δ_t` and the step is exactly PyTorch's Adagrad on `g = −Δ_t`:
//! the registry's `adagrad` with `lr = η`, `eps = τ`, `lr_decay = 0`,
//! `initial_accumulator_value = 0`. The paper's β1 > 0 would need server
//! momentum inside Adagrad, which the registry entry does not have; it is not
//! offered. Flower's defaults: η = 0.1, τ = 1e-9.

use steepest::hyper::{hyper, num};

use crate::algorithms::fedopt::{FedOpt, LrScale, RegistryServerOpt};
use crate::strategy::Strategy;
use crate::{Error, Result};

/// FedAdagrad over `inner`.
pub fn fedadagrad<S: Strategy + 'static>(inner: S, eta: f64, tau: f64) -> Result<FedOpt<S>> {
    if !(eta > 0.0 && eta.is_finite()) {
        return Err(Error::Config(format!("fedadagrad eta must be > 0, got {eta}")));
    }
    let h = hyper([("lr", num(eta)), ("eps", num(tau))]);
    Ok(FedOpt::new(
        inner,
        Box::new(RegistryServerOpt::new("adagrad", h, LrScale::One)?),
        "fedadagrad",
    ))
}
