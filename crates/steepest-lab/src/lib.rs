//! # steepest-lab: the convergence lab
//!
//! Workloads with exact metrics ([`workloads`], [`problems`]), each registered
//! algorithm's paper claim as an executable check ([`claims`]), a fair
//! learning-rate sweep and seed runs ([`bench`]), and a report people would
//! rather look at than read ([`report`], [`plot`]). `steepest bench` is the
//! command-line face of [`bench::run`] and [`report::write_all`].
//!
//! ```no_run
//! use steepest_lab::{bench, workloads::Suite};
//! let cfg = bench::BenchConfig {
//!     suite: Suite::Quick,
//!     workloads: vec!["least-squares".into()],
//!     optimizers: vec!["adam".into(), "sgd".into()],
//!     seeds: 2,
//!     progress: false,
//!     extra_workloads: vec![],
//! };
//! let results = bench::run(&cfg)?;
//! steepest_lab::report::write_all(&results, std::path::Path::new("bench-out"))?;
//! # Ok::<(), steepest_lab::LabError>(())
//! ```

#![warn(missing_docs)]
// Numeric loops index several arrays at once, as the formulas do.
#![allow(clippy::needless_range_loop)]

pub mod bench;
pub mod byo;
pub mod claims;
pub mod data;
pub mod federated;
pub mod linalg;
pub mod plot;
pub mod problems;
pub mod report;
pub mod rng;
pub mod runner;
pub mod solver;
pub mod stats;
pub mod workloads;

/// Errors of the lab (never a panic on user input).
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// From the optimizer library.
    #[error(transparent)]
    Steepest(#[from] steepest::Error),
    /// A data set could not be read or parsed.
    #[error("data: {0}")]
    Data(String),
    /// A data set that must be fetched first.
    #[error("data set {name} is not available ({detail}); get it with: steepest data fetch {name}")]
    MissingData {
        /// Data set name.
        name: String,
        /// What is missing.
        detail: String,
    },
    /// A bad configuration (workload file, options).
    #[error("{0}")]
    Config(String),
    /// Writing results failed.
    #[error("output: {0}")]
    Io(String),
}

/// Result with [`LabError`].
pub type Result<T> = std::result::Result<T, LabError>;

/// Workloads provided by other parts of steepest (neural networks through burn) join here.
pub fn extra_workloads() -> Vec<workloads::Workload> {
    workloads::neural()
}

/// Claims of algorithms added after the first set join here.
pub fn extra_claims() -> Vec<claims::Claim> {
    Vec::new()
}
