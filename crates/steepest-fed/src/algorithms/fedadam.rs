//! FedAdam.
//!
//! Paper: Reddi et al., *Adaptive Federated Optimization* (ICLR 2021),
//! Algorithm 2 (FedAdam branch): with `Δ_t = x̄_t − x_t`,
//! `m_t = β1 m_{t−1} + (1−β1) Δ_t`, `v_t = β2 v_{t−1} + (1−β2) Δ_t²`,
//! `x_{t+1} = x_t + η m_t / (√v_t + τ)` — no bias correction, τ outside the
//! square root. Flower's defaults: η = 0.1, β = (0.9, 0.99), τ = 1e-9.
//!
//! It is the registry's `adam` on the pseudo-gradient `g = −Δ_t` through
//! [`FedOpt`] — not a re-implementation:
//! - [`AdamForm::Paper`] (default): `adam {lr: η, betas, eps: τ, bias_correction: false}`.
//! - [`AdamForm::Flower`]: Flower ≥ 1.x multiplies η by
//!   `√(1−β2^{r+1}) / (1−β1^{r+1})` in round `r` (1-based, so the exponent
//!   starts at 2) and keeps τ outside the square root: the same Adam with a
//!   per-round learning-rate multiplier. This is what the Flower goldens check.
//! - PyTorch's Adam (bias-corrected, ε inside) is `adam` with
//!   `bias_correction: true` through [`FedOpt`] directly.
//!
//! Open choices: the paper initialises `v_{−1} ≥ τ²`; steepest (like Flower)
//! starts at 0, which changes the first step only when `|Δ| ≲ τ`.

use steepest::hyper::{hyper, num, pair_value};

use crate::algorithms::fedopt::{FedOpt, LrScale, RegistryServerOpt};
use crate::strategy::Strategy;
use crate::{Error, Result};

/// Which FedAdam step size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AdamForm {
    /// Reddi et al., Algorithm 2 (no bias correction).
    Paper,
    /// Flower's `eta_norm` per round.
    Flower,
}

/// FedAdam's server hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FedAdamConfig {
    /// Server learning rate η.
    pub eta: f64,
    /// (β1, β2).
    pub betas: (f64, f64),
    /// Adaptivity τ.
    pub tau: f64,
    /// Step-size form.
    pub form: AdamForm,
}

/// FedAdam over `inner`.
pub fn fedadam<S: Strategy + 'static>(inner: S, c: FedAdamConfig) -> Result<FedOpt<S>> {
    if !(c.eta > 0.0 && c.eta.is_finite()) {
        return Err(Error::Config(format!("fedadam eta must be > 0, got {}", c.eta)));
    }
    let h = hyper([
        ("lr", num(c.eta)),
        ("betas", pair_value(c.betas)),
        ("eps", num(c.tau)),
        ("bias_correction", false.into()),
    ]);
    let scale = match c.form {
        AdamForm::Paper => LrScale::One,
        AdamForm::Flower => LrScale::FlowerAdam {
            beta1: c.betas.0,
            beta2: c.betas.1,
        },
    };
    let label = match c.form {
        AdamForm::Paper => "fedadam",
        AdamForm::Flower => "fedadam-flower",
    };
    Ok(FedOpt::new(
        inner,
        Box::new(RegistryServerOpt::new("adam", h, scale)?),
        label,
    ))
}
