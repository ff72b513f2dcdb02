//! FedAvg with cyclic client participation.
//!
//! Paper: Cho, Sharma, Joshi et al., *On the Convergence of Federated
//! Averaging with Cyclic Client Participation* (ICML 2023), §3: the `N`
//! clients are split once into `K̄` equal groups; a cycle is `K̄` rounds and in
//! round `i` of a cycle only group `σ(i)` is available
//! ([`crate::participation::Participation::CyclicGroups`]); the server samples
//! `M` of them uniformly without replacement; each runs `τ` local steps;
//! `x ← x + η_g (1/M) Σ Δ_k` (uniform average of the updates). `K̄ = 1` is
//! FedAvg with uniform sampling.
//!
//! Open choices: the group order is fixed across cycles (the paper allows a
//! per-cycle permutation); groups are equal up to one client when `K̄ ∤ N`;
//! the local solver is the client's registry optimizer (the paper analyses
//! GD, SGD and shuffled SGD). Status: written from the research notes'
//! summary of the paper (no official code); not yet checked against the PDF.

use crate::rng::{Purpose, Rng};
use crate::strategy::{require_results, with_data, ClientConfig, Failure, FitIns, FitRes, Model, Strategy};
use crate::{Error, Result};

/// Cyclic-participation FedAvg.
#[derive(Clone, Debug)]
pub struct CyclicFedAvg {
    /// Participants per round M.
    pub per_round: usize,
    /// Server learning rate η_g.
    pub server_lr: f64,
    /// What participants run.
    pub client: ClientConfig,
}

impl CyclicFedAvg {
    /// Validated.
    pub fn new(per_round: usize, server_lr: f64, client: ClientConfig) -> Result<Self> {
        if per_round == 0 || !(server_lr > 0.0 && server_lr.is_finite()) {
            return Err(Error::Config(format!(
                "cyclic fedavg needs M ≥ 1 and server_lr > 0, got {per_round}, {server_lr}"
            )));
        }
        Ok(CyclicFedAvg {
            per_round,
            server_lr,
            client,
        })
    }
}

impl Strategy for CyclicFedAvg {
    fn name(&self) -> String {
        format!("cyclic-fedavg(M={}, server_lr={})", self.per_round, self.server_lr)
    }
    fn configure_fit(&mut self, round: u64, available: &[usize], seed: u64) -> Result<Vec<FitIns>> {
        let pick = Rng::stream(seed, Purpose::Sampling, 0, round).choose(available.len(), self.per_round);
        Ok(pick
            .into_iter()
            .map(|i| FitIns {
                client: available[i],
                round,
                config: self.client.clone(),
            })
            .collect())
    }
    fn aggregate_fit(&mut self, round: u64, global: &Model, results: &[FitRes], failures: &[Failure]) -> Result<Model> {
        require_results(round, global, results, failures)?;
        let m = results.len() as f64;
        let tensors: Vec<Vec<&[f64]>> = results
            .iter()
            .map(|r| r.params.iter().map(|p| p.data.as_slice()).collect())
            .collect();
        let data = global
            .iter()
            .enumerate()
            .map(|(k, g)| {
                (0..g.data.len())
                    .map(|i| {
                        let s: f64 = tensors.iter().map(|t| t[k][i] - g.data[i]).sum();
                        g.data[i] + self.server_lr * (s / m)
                    })
                    .collect()
            })
            .collect();
        with_data(global, data)
    }
}
