//! FedAvg.
//!
//! Paper: McMahan, Moore, Ramage, Hampson & Agüera y Arcas,
//! *Communication-Efficient Learning of Deep Networks from Decentralized Data*
//! (AISTATS 2017), Algorithm 1 (FederatedAveraging): each round a fraction `C`
//! of the `K` clients is sampled; each runs `E` epochs of minibatch SGD from
//! the global `w_t`; the server sets `w_{t+1} = Σ_k (n_k / n) w^k_{t+1}` with
//! `n = Σ_{k∈S_t} n_k` over the participants.
//!
//! Choices the paper leaves open, and what steepest does:
//! - local work is counted in minibatch *steps* (`ClientConfig::local_steps`),
//!   not epochs, so clients of different sizes cost the same (Flower leaves
//!   this to the client code);
//! - the sum runs over results sorted by client id and divides once at the end
//!   (`Σ n_k x_k / Σ n_k`, Flower's `aggregate`); Flower's default `inplace`
//!   path scales each model by `n_k/n` first, which differs by rounding only;
//! - failures are dropped (Flower's `accept_failures = True`); with
//!   `accept_failures = false` any failure aborts the round, keeping the model.

use crate::strategy::{check_results, with_data, ClientConfig, Failure, FitIns, FitRes, Model, Sampling, Strategy};
use crate::{Error, Result};

/// FedAvg: Flower's sampling, one client configuration, example-weighted mean.
#[derive(Clone, Debug)]
pub struct FedAvg {
    /// Client sampling.
    pub sampling: Sampling,
    /// What participants run.
    pub client: ClientConfig,
    /// Aggregate despite failures (Flower default true).
    pub accept_failures: bool,
}

impl FedAvg {
    /// FedAvg with the given sampling and client configuration.
    pub fn new(sampling: Sampling, client: ClientConfig) -> Result<FedAvg> {
        sampling.validate()?;
        if client.prox_mu < 0.0 || !client.prox_mu.is_finite() {
            return Err(Error::Config(format!("prox_mu must be ≥ 0, got {}", client.prox_mu)));
        }
        Ok(FedAvg {
            sampling,
            client,
            accept_failures: true,
        })
    }
}

/// `Σ_k n_k x_k / Σ_k n_k`, tensor by tensor, summed in the given order.
pub fn weighted_mean(results: &[FitRes]) -> Result<Vec<Vec<f64>>> {
    let first = results
        .first()
        .ok_or_else(|| Error::Rejected("nothing to average".into()))?;
    let total: f64 = results.iter().map(|r| r.num_examples as f64).sum();
    if total <= 0.0 {
        return Err(Error::Rejected("results carry no examples".into()));
    }
    let mut out: Vec<Vec<f64>> = first.params.iter().map(|p| vec![0.0; p.data.len()]).collect();
    for r in results {
        let n = r.num_examples as f64;
        for (acc, p) in out.iter_mut().zip(r.params.iter()) {
            for (a, &x) in acc.iter_mut().zip(&p.data) {
                *a += x * n;
            }
        }
    }
    for acc in &mut out {
        for a in acc.iter_mut() {
            *a /= total;
        }
    }
    Ok(out)
}

impl Strategy for FedAvg {
    fn name(&self) -> String {
        if self.client.prox_mu > 0.0 {
            format!("fedprox(mu={})", self.client.prox_mu)
        } else {
            "fedavg".into()
        }
    }

    fn configure_fit(&mut self, round: u64, available: &[usize], seed: u64) -> Result<Vec<FitIns>> {
        Ok(self
            .sampling
            .sample(round, available, seed)
            .into_iter()
            .map(|client| FitIns {
                client,
                round,
                config: self.client.clone(),
            })
            .collect())
    }

    fn aggregate_fit(&mut self, round: u64, global: &Model, results: &[FitRes], failures: &[Failure]) -> Result<Model> {
        if results.is_empty() || (!self.accept_failures && !failures.is_empty()) {
            return Err(Error::NoResults {
                round,
                failures: failures.len(),
            });
        }
        check_results(global, results)?;
        with_data(global, weighted_mean(results)?)
    }
}
