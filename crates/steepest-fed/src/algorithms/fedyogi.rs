//! FedYogi.
//!
//! Paper: Reddi et al., *Adaptive Federated Optimization* (ICLR 2021),
//! Algorithm 2 (FedYogi branch), after Zaheer et al., *Adaptive Methods for
//! Nonconvex Optimization* (NeurIPS 2018):
//! `m_t = β1 m_{t−1} + (1−β1) Δ_t`,
//! `v_t = v_{t−1} − (1−β2) Δ_t² sign(v_{t−1} − Δ_t²)`,
//! `x_{t+1} = x_t + η m_t / (√v_t + τ)`.
//! Flower's defaults (used here): η = 1e-2, β = (0.9, 0.99), τ = 1e-3.
//!
//! steepest's registry has no Yogi optimizer, so this file carries the server
//! rule as a [`ServerOptimizer`] (one loop per tensor, in the paper's order);
//! it plugs into the same [`FedOpt`] decorator as the registry optimizers.
//! Open choice: `v_{−1} = 0` (Flower) rather than the paper's `v_{−1} ≥ τ²`;
//! `sign(0) = 0` (NumPy's convention, so `v` stays put when `v = Δ²`).

use crate::algorithms::fedopt::{FedOpt, ServerOptimizer};
use crate::strategy::{Model, Strategy};
use crate::{Error, Result};

/// The Yogi server optimizer.
#[derive(Clone, Debug)]
pub struct YogiServer {
    /// η.
    pub eta: f64,
    /// (β1, β2).
    pub betas: (f64, f64),
    /// τ.
    pub tau: f64,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
}

impl YogiServer {
    /// Validated Yogi server.
    pub fn new(eta: f64, betas: (f64, f64), tau: f64) -> Result<Self> {
        let ok = |b: f64| (0.0..1.0).contains(&b);
        if !(eta > 0.0 && eta.is_finite() && ok(betas.0) && ok(betas.1) && tau >= 0.0) {
            return Err(Error::Config(format!(
                "fedyogi needs eta > 0, betas in [0, 1), tau ≥ 0; got {eta}, {betas:?}, {tau}"
            )));
        }
        Ok(YogiServer {
            eta,
            betas,
            tau,
            m: Vec::new(),
            v: Vec::new(),
        })
    }
}

fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl ServerOptimizer for YogiServer {
    fn name(&self) -> String {
        format!("yogi(eta={}, betas={:?}, tau={})", self.eta, self.betas, self.tau)
    }

    fn step(&mut self, _round: u64, x: &mut Model, g: &Model) -> Result<()> {
        if self.m.is_empty() {
            self.m = g.iter().map(|p| vec![0.0; p.data.len()]).collect();
            self.v = self.m.clone();
        }
        let (b1, b2) = self.betas;
        for (k, (p, gp)) in x.params_mut().iter_mut().zip(g.iter()).enumerate() {
            let (m, v) = (&mut self.m[k], &mut self.v[k]);
            for i in 0..p.data.len() {
                let delta = -gp.data[i];
                m[i] = b1 * m[i] + (1.0 - b1) * delta;
                let d2 = delta * delta;
                v[i] -= (1.0 - b2) * d2 * sign(v[i] - d2);
                p.data[i] += self.eta * m[i] / (v[i].sqrt() + self.tau);
            }
        }
        Ok(())
    }

    /// JSON `[m, v]` (per-tensor lists; exact f64 round-trip).
    fn state_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(&(&self.m, &self.v)).map_err(|e| Error::Io(e.to_string()))
    }

    fn load_state_bytes(&mut self, x: &Model, bytes: &[u8]) -> Result<()> {
        let (m, v): (Vec<Vec<f64>>, Vec<Vec<f64>>) =
            serde_json::from_slice(bytes).map_err(|e| Error::Config(format!("fedyogi state: {e}")))?;
        let fits = |s: &Vec<Vec<f64>>| {
            s.is_empty() || (s.len() == x.len() && s.iter().zip(x.iter()).all(|(a, p)| a.len() == p.data.len()))
        };
        if !(fits(&m) && fits(&v) && m.len() == v.len()) {
            return Err(Error::Config("fedyogi state does not fit the model".into()));
        }
        self.m = m;
        self.v = v;
        Ok(())
    }
}

/// FedYogi over `inner`.
pub fn fedyogi<S: Strategy + 'static>(inner: S, eta: f64, betas: (f64, f64), tau: f64) -> Result<FedOpt<S>> {
    Ok(FedOpt::new(
        inner,
        Box::new(YogiServer::new(eta, betas, tau)?),
        "fedyogi",
    ))
}
