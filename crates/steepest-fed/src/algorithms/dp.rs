//! Differential privacy with server-side fixed clipping, as a decorator.
//!
//! Paper: McMahan, Ramage, Talwar & Zhang, *Learning Differentially Private
//! Recurrent Language Models* (ICLR 2018), Algorithm 1 (DP-FedAvg with a
//! flat clipping bound): each participant's update `Δ_k = x_k − x` is
//! clipped to norm `S` (`Δ_k · min(1, S/‖Δ_k‖)`, norm over the whole model),
//! the clipped models are aggregated by the inner strategy, and Gaussian noise
//! `N(0, (z S / m)²)` is added to every coordinate of the result, `m` the
//! number of participants (Flower's `DifferentialPrivacyServerSideFixedClipping`
//! with uniform weights; the paper's estimator divides by the expected count
//! `qW` — with fixed-size sampling the two agree).
//!
//! Choices: the noise comes from the stream `(seed, Noise, 0, round)` so a
//! run is reproducible; the privacy accounting is `steepest privacy`'s RDP
//! accountant (sampled Gaussian) with `q = m/N` and noise multiplier `z`.
//! The inner strategy should average uniformly for the paper's sensitivity
//! bound (FedAvg with equal `num_examples`); with example weights the bound
//! is the caller's responsibility.

use crate::rng::{Purpose, Rng};
use crate::strategy::{check_results, with_data, Failure, FitIns, FitRes, Model, Strategy};
use crate::{Error, Result};

/// The DP fixed-clipping decorator.
pub struct DpFixedClipping<S> {
    inner: S,
    /// Clipping norm S.
    pub clip: f64,
    /// Noise multiplier z.
    pub noise_multiplier: f64,
    seed: u64,
}

impl<S: Strategy> DpFixedClipping<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, clip: f64, noise_multiplier: f64, seed: u64) -> Result<Self> {
        if !(clip > 0.0 && clip.is_finite() && noise_multiplier >= 0.0 && noise_multiplier.is_finite()) {
            return Err(Error::Config(format!(
                "dp needs clip > 0 and noise_multiplier ≥ 0, got {clip}, {noise_multiplier}"
            )));
        }
        Ok(DpFixedClipping {
            inner,
            clip,
            noise_multiplier,
            seed,
        })
    }
}

/// `x + (x_k − x)·min(1, S/‖x_k − x‖)`.
pub fn clip_to(global: &Model, local: &Model, clip: f64) -> Result<Model> {
    let norm: f64 = global
        .iter()
        .zip(local.iter())
        .flat_map(|(g, l)| g.data.iter().zip(&l.data).map(|(a, b)| (b - a) * (b - a)))
        .sum::<f64>()
        .sqrt();
    let scale = if norm > clip { clip / norm } else { 1.0 };
    let data = global
        .iter()
        .zip(local.iter())
        .map(|(g, l)| g.data.iter().zip(&l.data).map(|(a, b)| a + (b - a) * scale).collect())
        .collect();
    with_data(global, data)
}

impl<S: Strategy> Strategy for DpFixedClipping<S> {
    fn name(&self) -> String {
        format!(
            "dp-fixed(S={}, z={})[{}]",
            self.clip,
            self.noise_multiplier,
            self.inner.name()
        )
    }
    fn configure_fit(&mut self, round: u64, available: &[usize], seed: u64) -> Result<Vec<FitIns>> {
        self.inner.configure_fit(round, available, seed)
    }
    fn state_bytes(&self) -> Result<Option<Vec<u8>>> {
        self.inner.state_bytes()
    }
    fn load_state_bytes(&mut self, global: &Model, bytes: &[u8]) -> Result<()> {
        self.inner.load_state_bytes(global, bytes)
    }
    fn aggregate_fit(&mut self, round: u64, global: &Model, results: &[FitRes], failures: &[Failure]) -> Result<Model> {
        check_results(global, results)?;
        let clipped = results
            .iter()
            .map(|r| {
                Ok(FitRes {
                    params: clip_to(global, &r.params, self.clip)?,
                    ..r.clone()
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut agg = self.inner.aggregate_fit(round, global, &clipped, failures)?;
        let std = self.noise_multiplier * self.clip / results.len().max(1) as f64;
        if std > 0.0 {
            let mut rng = Rng::stream(self.seed, Purpose::Noise, 0, round);
            for p in agg.params_mut() {
                for x in p.data.iter_mut() {
                    *x += std * rng.normal();
                }
            }
        }
        Ok(agg)
    }
}
