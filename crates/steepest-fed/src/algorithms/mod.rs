//! The federated algorithms, one file each (paper cited in each header).
//!
//! Server optimizers are registry optimizers fed the pseudo-gradient
//! `x − x̄` ([`fedopt::FedOpt`]); robust aggregation and DP clipping are
//! decorators over any strategy ([`robust::Robust`], [`dp::DpFixedClipping`]).

pub mod cdfl;
pub mod cyclic;
pub mod dp;
pub mod fedadagrad;
pub mod fedadam;
pub mod fedau;
pub mod fedavg;
pub mod fedavgm;
pub mod fedopt;
pub mod fedprox;
pub mod fedyogi;
pub mod ferret;
pub mod krum;
pub mod median;
pub mod robust;
pub mod trimmed_mean;

pub use dp::DpFixedClipping;
pub use fedavg::FedAvg;
pub use fedopt::{FedOpt, RegistryServerOpt, ServerOptimizer};
pub use robust::{Robust, RobustRule};

use crate::strategy::{ClientConfig, Sampling, Strategy};
use crate::{Error, Result};

/// The strategies by name, for the CLI and the benches:
/// `fedavg`, `fedprox`, `fedavgm`, `fedadam`, `fedadam-flower`, `fedyogi`,
/// `fedadagrad`, `median`, `trimmed-mean`, `krum`, `multi-krum`, `fedau`,
/// `cyclic-fedavg`, `ferret`. `opts` holds the strategy's options (`server_lr`,
/// `momentum`, `mu`, `beta`, `f`, `keep`, `tau`, `beta1`, `beta2`, `clients`
/// and `cutoff` for FedAU, `m` for cyclic FedAvg, `k` for Ferret), each with the Flower
/// default where Flower has the strategy.
pub fn build(
    name: &str,
    sampling: Sampling,
    client: ClientConfig,
    opts: &std::collections::BTreeMap<String, f64>,
) -> Result<Box<dyn Strategy>> {
    let get = |k: &str, d: f64| opts.get(k).copied().unwrap_or(d);
    let base = |c: ClientConfig| FedAvg::new(sampling.clone(), c);
    Ok(match name {
        "fedavg" => Box::new(base(client)?),
        "fedprox" => Box::new(fedprox::fedprox(sampling, client, get("mu", 0.01))?),
        "fedavgm" => Box::new(fedavgm::fedavgm(base(client)?, get("server_lr", 1.0), get("momentum", 0.9))?),
        "fedadam" | "fedadam-flower" => Box::new(fedadam::fedadam(
            base(client)?,
            fedadam::FedAdamConfig {
                eta: get("server_lr", 0.1),
                betas: (get("beta1", 0.9), get("beta2", 0.99)),
                tau: get("tau", 1e-9),
                form: if name == "fedadam" {
                    fedadam::AdamForm::Paper
                } else {
                    fedadam::AdamForm::Flower
                },
            },
        )?),
        "fedyogi" => Box::new(fedyogi::fedyogi(
            base(client)?,
            get("server_lr", 1e-2),
            (get("beta1", 0.9), get("beta2", 0.99)),
            get("tau", 1e-3),
        )?),
        "fedadagrad" => Box::new(fedadagrad::fedadagrad(base(client)?, get("server_lr", 0.1), get("tau", 1e-9))?),
        "median" => Box::new(Robust::new(base(client)?, RobustRule::Median)?),
        "trimmed-mean" => Box::new(Robust::new(
            base(client)?,
            RobustRule::TrimmedMean {
                beta: get("beta", 0.2),
            },
        )?),
        "krum" | "multi-krum" => Box::new(Robust::new(
            base(client)?,
            RobustRule::Krum {
                f: get("f", 0.0) as usize,
                keep: if name == "krum" { 0 } else { get("keep", 1.0) as usize },
            },
        )?),
        "fedau" => Box::new(fedau::FedAu::new(
            get("clients", 0.0) as usize,
            client,
            get("server_lr", 1.0),
            opts.get("cutoff").map_or(u64::MAX, |&k| k as u64),
        )?),
        "ferret" => Box::new(ferret::Ferret::new(
            base(client)?,
            get("k", 4096.0) as usize,
            get("server_lr", 10.0),
            get("momentum", 0.0),
        )?),
        "cyclic-fedavg" => Box::new(cyclic::CyclicFedAvg::new(
            get("m", 10.0) as usize,
            get("server_lr", 1.0),
            client,
        )?),
        _ => {
            return Err(Error::Config(format!(
                "unknown strategy `{name}` (fedavg, fedprox, fedavgm, fedadam, fedadam-flower, fedyogi, fedadagrad, median, trimmed-mean, krum, multi-krum, fedau, cyclic-fedavg, ferret)"
            )))
        }
    })
}
