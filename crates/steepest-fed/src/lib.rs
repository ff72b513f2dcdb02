//! Federated learning on steepest.
//!
//! - [`partition`]: seeded data partitions (IID, Dirichlet label skew, shards).
//! - [`participation`]: seeded availability models with per-client streams.
//! - [`strategy`]: a Flower-style strategy API (`configure_fit`,
//!   `aggregate_fit` with results *and* failures, `evaluate`), the same code
//!   whether clients are simulated or remote.
//! - [`algorithms`]: FedAvg, FedProx, FedAvgM, FedOpt (FedAdam, FedYogi,
//!   FedAdagrad), robust aggregation (median, trimmed mean, Krum/Multi-Krum),
//!   Ferret's seeded random-projection uplink
//!   FedSpeed (with its client-side correction, `FedSpeedClients`), FedHyper's
//!   hypergradient learning-rate schedules (G, GM, SL; CL and FULL with `FedHyperClients`)
//!   and DP clipping, one file each; server optimizers are registry optimizers.
//!   Also MCI's heterogeneous model reduction (`algorithms::mci`, with its
//!   client side `MciClient`) and HyperFL with its own runner (`algorithms::hyperfl`).
//! - [`sim`]: the simulator, all clients of a round trained in parallel
//!   (rayon), deterministic for a seed whatever the thread count.
//! - [`logreg`]: the multinomial logistic-regression workload.
//! - [`attack`]: poisoning clients (sign flip, scaling, Gaussian).
//! - [`asynch`]: asynchronous clients with shifted-exponential compute delays
//!   on simulated time, buffered aggregation (FedBuff / FedAST's update).
//! - [`fedast`]: FedAST, several models trained at once asynchronously, and
//!   its synchronous baseline Sync-ST.
//! - [`algorithms::cdfl`]: client-driven FL (asynchronous client-triggered
//!   uploads, K cluster models, one customised model back), with async FedAvg
//!   and IFCA-style baselines on the same Poisson arrivals.
//!
//! Every sum over clients runs in increasing client id, so a result never
//! depends on arrival order or thread scheduling.

pub mod algorithms;
pub mod asynch;
pub mod attack;
pub mod bench;
pub mod cli;
pub mod fedast;
pub mod logreg;
pub mod net;
pub mod participation;
pub mod partition;
pub mod rng;
pub mod sim;
pub mod strategy;

pub use strategy::{ClientConfig, Failure, FitIns, FitRes, Model, Strategy};

/// Errors of the federated layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad configuration (names the field or value).
    #[error("invalid federated configuration: {0}")]
    Config(String),
    /// A client result that cannot be aggregated (wrong shapes, non-finite).
    #[error("rejected client result: {0}")]
    Rejected(String),
    /// No results to aggregate.
    #[error("round {round}: no results to aggregate ({failures} failures)")]
    NoResults {
        /// The round.
        round: u64,
        /// Failures reported.
        failures: usize,
    },
    /// From the optimizer library.
    #[error(transparent)]
    Steepest(#[from] steepest::Error),
    /// I/O.
    #[error("{0}")]
    Io(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;
