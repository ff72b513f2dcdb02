//! FedProx.
//!
//! Paper: Li, Sahu, Zaheer, Sanjabi, Talwalkar & Smith, *Federated
//! Optimization in Heterogeneous Networks* (MLSys 2020), Algorithm 2: client
//! `k` approximately minimises `h_k(w; w^t) = F_k(w) + (μ/2)‖w − w^t‖²`;
//! the server averages as FedAvg.
//!
//! steepest adds `μ (w − w^t)` to every local minibatch gradient (the gradient
//! of the squared proximal term; Flower's docstring example sums non-squared
//! per-tensor norms, the paper squares). Choices left open: the inexactness
//! γ is realised by a fixed number of local steps; the server average is
//! example-weighted (the paper's Algorithm 2 averages uniformly over the
//! sampled devices, having sampled them with probability `p_k`; with Flower's
//! uniform sampling the example weights are the usual FedAvg choice).
//! `μ = 0` is FedAvg. Default μ = 0.01 (one of the paper's grid values).

use crate::algorithms::FedAvg;
use crate::strategy::{ClientConfig, Sampling};
use crate::{Error, Result};

/// FedAvg whose clients add the proximal term `(μ/2)‖w − w^t‖²`.
pub fn fedprox(sampling: Sampling, mut client: ClientConfig, mu: f64) -> Result<FedAvg> {
    if !(mu >= 0.0 && mu.is_finite()) {
        return Err(Error::Config(format!("fedprox mu must be ≥ 0, got {mu}")));
    }
    client.prox_mu = mu;
    FedAvg::new(sampling, client)
}
