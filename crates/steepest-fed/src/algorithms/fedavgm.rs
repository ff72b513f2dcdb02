//! FedAvgM: FedAvg with server momentum.
//!
//! Paper: Hsu, Qi & Brown, *Measuring the Effects of Non-Identical Data
//! Distribution for Federated Visual Classification* (2019), §3 (FedAvgM):
//! `v ← β v + Δw`, `w ← w − η v` with `Δw = w − x̄` the pseudo-gradient,
//! server learning rate η (paper: effective rate η/(1−β) matters; defaults
//! here are Flower's: η = 1, β = 0.9 via the CLI, Flower's own default β = 0).
//!
//! Implemented as [`crate::algorithms::FedOpt`] with the registry `sgd`
//! (`lr = η`, `momentum = β`, `dampening = 0`): PyTorch's heavy ball starts
//! its buffer at the first gradient and then keeps `v ← β v + g`, which is the
//! paper's and Flower's update exactly. With `β = 0, η = 1` the strategy *is*
//! FedAvg (Flower skips the server step then; so does steepest, bit for bit).

use steepest::hyper;

use crate::algorithms::fedopt::{FedOpt, LrScale, RegistryServerOpt};
use crate::strategy::Strategy;
use crate::{Error, Result};

/// FedAvgM over `inner` (usually FedAvg).
pub fn fedavgm<S: Strategy + 'static>(inner: S, server_lr: f64, momentum: f64) -> Result<Box<dyn Strategy>> {
    if !(server_lr > 0.0 && server_lr.is_finite() && (0.0..1.0).contains(&momentum)) {
        return Err(Error::Config(format!(
            "fedavgm needs server_lr > 0 and momentum in [0, 1), got {server_lr}, {momentum}"
        )));
    }
    if momentum == 0.0 && server_lr == 1.0 {
        return Ok(Box::new(inner));
    }
    let server = RegistryServerOpt::new("sgd", hyper([("lr", server_lr), ("momentum", momentum)]), LrScale::One)?;
    Ok(Box::new(FedOpt::new(inner, Box::new(server), "fedavgm")))
}
