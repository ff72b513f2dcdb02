//! The federated algorithms, one file each (paper cited in each header).
//!
//! Server optimizers are registry optimizers fed the pseudo-gradient
//! `x − x̄` ([`fedopt::FedOpt`]); robust aggregation and DP clipping are
//! decorators over any strategy ([`robust::Robust`], [`dp::DpFixedClipping`]).
//!
//! Algorithms on their own problems (not strategies on the logistic-regression
//! workload): [`admm`] (noise-robust ADMM, RERCE-Fed) and [`psofed`] (PSO-Fed
//! under model poisoning) on seeded linear problems, [`fedpca`] (FedPE/FedPG,
//! federated PCA anomaly detection), [`fald`] (FA-LD, federated averaging
//! Langevin dynamics on Bayesian linear regression), with small dense linear
//! algebra in [`dense`]; [`hyperfl`] has its own runner on a two-layer model.

pub mod admm;
pub mod cafed;
pub mod cdfl;
pub mod cyclic;
pub mod dense;
pub mod dp;
pub mod fald;
pub mod fedadagrad;
pub mod fedadam;
pub mod fedau;
pub mod fedavg;
pub mod fedavgm;
pub mod fedhyper;
pub mod fedopt;
pub mod fedpca;
pub mod fedprox;
pub mod fedspeed;
pub mod fedyogi;
pub mod ferret;
pub mod hyperfl;
pub mod krum;
pub mod mci;
pub mod median;
pub mod psofed;
pub mod robust;
pub mod trimmed_mean;

pub use dp::DpFixedClipping;
pub use fedavg::FedAvg;
pub use fedopt::{FedOpt, RegistryServerOpt, ServerOptimizer};
pub use robust::{Robust, RobustRule};

use crate::logreg::LogReg;
use crate::participation::Participation;
use crate::sim::{self, SimConfig, SimReport, Workload};
use crate::strategy::{ClientConfig, Sampling, Strategy};
use crate::{Error, Result};

/// Every name [`build`] knows.
pub const NAMES: &[&str] = &[
    "fedavg",
    "fedprox",
    "fedavgm",
    "fedadam",
    "fedadam-flower",
    "fedyogi",
    "fedadagrad",
    "median",
    "trimmed-mean",
    "krum",
    "multi-krum",
    "fedau",
    "cyclic-fedavg",
    "ferret",
    "ca-fed",
    "ca-fed-unbiased",
    "fedspeed",
    "fedhyper-g",
    "fedhyper-gm",
    "fedhyper-sl",
    "fedhyper-cl",
    "fedhyper-full",
    "mci",
];

/// The strategies by name, for the CLI and the benches:
/// `fedavg`, `fedprox`, `fedavgm`, `fedadam`, `fedadam-flower`, `fedyogi`,
/// `fedadagrad`, `median`, `trimmed-mean`, `krum`, `multi-krum`, `fedau`,
/// `cyclic-fedavg`, `ferret`, `ca-fed`, `ca-fed-unbiased`, `fedspeed`, `fedhyper-g`, `fedhyper-gm`,
/// `fedhyper-sl`, `fedhyper-cl`, `fedhyper-full`, `mci` (all of them: [`NAMES`]). `opts` holds the
/// strategy's options (`server_lr`, `momentum`, `mu`, `beta`, `f`, `keep`, `tau`, `beta1`, `beta2`,
/// `clients` and `cutoff` for FedAU, `m` for cyclic FedAvg, `k` for Ferret; CA-Fed takes `clients`,
/// `server_lr`, `beta`, `horizon`, `prior_pi`, `prior_lambda` (uniform `q`, `F* = 0`); `lambda`,
/// `rho`, `alpha`, `code` (1 = the official code's variant) and `clients` for FedSpeed, which needs
/// [`fedspeed::FedSpeedClients`] as its workload; `hyper_lr` and `momentum` for FedHyper; its
/// CL and FULL variants need [`fedhyper::FedHyperClients`] as their workload; `type`, `keep`, `form` for MCI, whose clients must run [`mci::MciClient`]),
/// each with the Flower default where Flower has the strategy.
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
        "fedavgm" => Box::new(fedavgm::fedavgm(
            base(client)?,
            get("server_lr", 1.0),
            get("momentum", 0.9),
        )?),
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
        "fedadagrad" => Box::new(fedadagrad::fedadagrad(
            base(client)?,
            get("server_lr", 0.1),
            get("tau", 1e-9),
        )?),
        "median" => Box::new(Robust::new(base(client)?, RobustRule::Median)?),
        "trimmed-mean" => Box::new(Robust::new(
            base(client)?,
            RobustRule::TrimmedMean { beta: get("beta", 0.2) },
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
        "ca-fed" | "ca-fed-unbiased" => {
            let n = get("clients", 0.0) as usize;
            if n == 0 {
                return Err(Error::Config(format!("{name} needs the option `clients` ≥ 1")));
            }
            let mut c = cafed::CaFedConfig::new(n, client);
            c.server_lr = get("server_lr", 1.0);
            c.beta = get("beta", 1.0);
            c.horizon = get("horizon", 100.0);
            c.prior_pi = vec![get("prior_pi", 0.5); n];
            c.prior_lambda = vec![get("prior_lambda", 0.0); n];
            c.exclusion = name == "ca-fed";
            Box::new(cafed::CaFed::new(c)?)
        }
        "fedspeed" => {
            let base = if get("code", 0.0) != 0.0 {
                fedspeed::FedSpeedConfig::code()
            } else {
                fedspeed::FedSpeedConfig::paper()
            };
            let config = fedspeed::FedSpeedConfig {
                lambda: get("lambda", base.lambda),
                rho: get("rho", base.rho),
                alpha: get("alpha", base.alpha),
                ..base
            };
            Box::new(fedspeed::FedSpeed::new(
                sampling,
                client,
                config,
                get("clients", 0.0) as usize,
            )?)
        }
        "fedhyper-g" | "fedhyper-gm" | "fedhyper-sl" | "fedhyper-cl" | "fedhyper-full" => {
            let variant = match name {
                "fedhyper-g" => fedhyper::Variant::G,
                "fedhyper-gm" => fedhyper::Variant::Gm,
                "fedhyper-sl" => fedhyper::Variant::Sl,
                "fedhyper-cl" => fedhyper::Variant::Cl,
                _ => fedhyper::Variant::Full,
            };
            let base = fedhyper::FedHyperConfig::new(variant);
            let config = fedhyper::FedHyperConfig {
                hyper_lr: get("hyper_lr", base.hyper_lr),
                momentum: get("momentum", base.momentum),
                ..base
            };
            Box::new(fedhyper::FedHyper::new(sampling, client, config)?)
        }
        "mci" => Box::new(mci::Mci::new(sampling, client, mci::spec_from_opts(opts)?)?),
        _ => {
            return Err(Error::Config(format!(
                "unknown strategy `{name}` ({})",
                NAMES.join(", ")
            )))
        }
    })
}

/// Runs `f` with the client side strategy `name` needs (built by [`build`]
/// with the same `opts`) over the logistic-regression workload: FedSpeed's
/// clients keep their correction state ([`fedspeed::FedSpeedClients`]),
/// FedHyper-CL/FULL adapt their local rate ([`fedhyper::FedHyperClients`]),
/// MCI's clients rebuild their reduction masks ([`mci::MciClient`]); every
/// other strategy's clients are plain [`LogReg`] clients. The simulator
/// ([`simulate`]) and a networked client (`steepest fed client --strategy …`)
/// both go through here, so they train alike.
pub fn with_client_side<R>(
    name: &str,
    opts: &std::collections::BTreeMap<String, f64>,
    workload: &LogReg,
    f: impl FnOnce(&dyn Workload) -> Result<R>,
) -> Result<R> {
    match name {
        "fedspeed" => f(&fedspeed::FedSpeedClients::new(workload)),
        "fedhyper-cl" | "fedhyper-full" => f(&fedhyper::FedHyperClients::new(workload)),
        "mci" => f(&mci::MciClient::new(workload, mci::spec_from_opts(opts)?)?),
        _ => f(workload),
    }
}

/// Simulates strategy `name` on the logistic-regression workload with the
/// client side it needs ([`with_client_side`]).
pub fn simulate(
    name: &str,
    opts: &std::collections::BTreeMap<String, f64>,
    workload: &LogReg,
    strategy: &mut dyn Strategy,
    participation: &Participation,
    cfg: &SimConfig,
) -> Result<SimReport> {
    with_client_side(name, opts, workload, |w| sim::run(w, strategy, participation, cfg))
}
