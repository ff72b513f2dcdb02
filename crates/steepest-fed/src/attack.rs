//! Poisoning clients: a fixed, seeded subset of clients replaces its honest
//! result `x_k` (trained from the global `x`, `Δ = x_k − x`) by
//!
//! - [`Attack::SignFlip`]: `x − s·Δ` (the reversed update, boosted by `s`;
//!   Li et al., *RSA: Byzantine-Robust Stochastic Aggregation Methods*, 2019,
//!   and Fang et al., *Local Model Poisoning Attacks to Byzantine-Robust FL*,
//!   2020, use sign flips; `s > 1` makes it visible against plain averaging),
//! - [`Attack::Scale`]: `x + s·Δ` (model-replacement boosting, Bagdasaryan
//!   et al., *How To Backdoor Federated Learning*, 2020),
//! - [`Attack::Gaussian`]: `x + N(0, σ² I)` (random "Gaussian" Byzantine
//!   clients of Blanchard et al. 2017, §6), drawn from `(seed, Attack, client, round)`.

use crate::rng::{Purpose, Rng};
use crate::strategy::{FitRes, Model};
use crate::{Error, Result};

/// An attack.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Attack {
    /// `x − s·Δ`.
    SignFlip {
        /// s.
        scale: f64,
    },
    /// `x + s·Δ`.
    Scale {
        /// s.
        scale: f64,
    },
    /// `x + N(0, σ²)`.
    Gaussian {
        /// σ.
        sigma: f64,
    },
}

impl Attack {
    /// Parses `signflip:S`, `scale:S`, `gaussian:SIGMA`.
    pub fn parse(s: &str) -> Result<Attack> {
        let (head, arg) = s.split_once(':').unwrap_or((s, ""));
        let v: f64 = arg
            .parse()
            .map_err(|_| Error::Config(format!("attack `{s}`: expected NAME:NUMBER")))?;
        match head {
            "signflip" => Ok(Attack::SignFlip { scale: v }),
            "scale" => Ok(Attack::Scale { scale: v }),
            "gaussian" => Ok(Attack::Gaussian { sigma: v }),
            _ => Err(Error::Config(format!(
                "unknown attack `{s}` (signflip:S, scale:S, gaussian:SIGMA)"
            ))),
        }
    }

    /// The poisoned result.
    pub fn apply(&self, global: &Model, honest: &mut FitRes, seed: u64, round: u64) {
        let mut rng = Rng::stream(seed, Purpose::Attack, honest.client as u64, round);
        for (p, g) in honest.params.params_mut().iter_mut().zip(global.iter()) {
            for (x, &x0) in p.data.iter_mut().zip(&g.data) {
                let d = *x - x0;
                *x = match *self {
                    Attack::SignFlip { scale } => x0 - scale * d,
                    Attack::Scale { scale } => x0 + scale * d,
                    Attack::Gaussian { sigma } => x0 + sigma * rng.normal(),
                };
            }
        }
    }
}

/// The malicious clients: `⌊fraction·N⌋` of them, a seeded uniform choice.
pub fn malicious_set(clients: usize, fraction: f64, seed: u64) -> Vec<bool> {
    let k = (fraction * clients as f64).floor() as usize;
    let mut flag = vec![false; clients];
    for c in Rng::stream(seed, Purpose::Attack, u64::MAX, 0).choose(clients, k) {
        flag[c] = true;
    }
    flag
}
