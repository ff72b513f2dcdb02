//! Robust aggregation as a decorator over any strategy.
//!
//! [`Robust`] replaces the clients' results by one robust aggregate (weight 1)
//! before handing them to the inner strategy, so the inner server step is
//! unchanged: `Robust(FedAvg)` is Flower's FedMedian / FedTrimmedAvg / Krum,
//! and `FedOpt(Robust(FedAvg), adam)` is FedAdam on a Krum aggregate. The
//! FedAvg mean of a single result of weight 1 is that result exactly
//! (`1·x / 1 = x`), so nothing is lost in the hand-over.
//!
//! Rules (each its own file, citing its paper): [`super::median`],
//! [`super::trimmed_mean`], [`super::krum`].

use crate::strategy::{require_results, with_data, Failure, FitIns, FitRes, Model, Strategy};
use crate::{Error, Result};

/// A robust aggregation rule.
#[derive(Clone, Debug, PartialEq)]
pub enum RobustRule {
    /// Coordinate-wise median.
    Median,
    /// Coordinate-wise trimmed mean cutting `⌊β n⌋` from each end.
    TrimmedMean {
        /// β in [0, 0.5).
        beta: f64,
    },
    /// Krum (`keep = 0`) or Multi-Krum (`keep = m > 0`) with `f` assumed Byzantine.
    Krum {
        /// Assumed number of malicious clients.
        f: usize,
        /// Multi-Krum's selection size (0 = plain Krum).
        keep: usize,
    },
}

impl RobustRule {
    /// Checks the rule's parameters.
    pub fn validate(&self) -> Result<()> {
        match *self {
            RobustRule::TrimmedMean { beta } if !(0.0..0.5).contains(&beta) => Err(Error::Config(format!(
                "trimmed-mean beta must be in [0, 0.5), got {beta}"
            ))),
            _ => Ok(()),
        }
    }

    /// The aggregate of `results` (tensor data, in the first result's order).
    pub fn aggregate(&self, results: &[FitRes]) -> Result<Vec<Vec<f64>>> {
        if results.is_empty() {
            return Err(Error::Rejected("nothing to aggregate".into()));
        }
        match *self {
            RobustRule::Median => Ok(super::median::median(results)),
            RobustRule::TrimmedMean { beta } => Ok(super::trimmed_mean::trimmed_mean(results, beta)),
            RobustRule::Krum { f, keep } => super::krum::krum(results, f, keep),
        }
    }

    fn label(&self) -> String {
        match *self {
            RobustRule::Median => "median".into(),
            RobustRule::TrimmedMean { beta } => format!("trimmed-mean(beta={beta})"),
            RobustRule::Krum { f, keep: 0 } => format!("krum(f={f})"),
            RobustRule::Krum { f, keep } => format!("multi-krum(f={f}, m={keep})"),
        }
    }
}

/// The decorator.
pub struct Robust<S> {
    inner: S,
    rule: RobustRule,
}

impl<S: Strategy> Robust<S> {
    /// `rule` in front of `inner`.
    pub fn new(inner: S, rule: RobustRule) -> Result<Self> {
        rule.validate()?;
        Ok(Robust { inner, rule })
    }
}

impl<S: Strategy> Strategy for Robust<S> {
    fn name(&self) -> String {
        format!("{}[{}]", self.rule.label(), self.inner.name())
    }
    fn configure_fit(&mut self, round: u64, available: &[usize], seed: u64) -> Result<Vec<FitIns>> {
        self.inner.configure_fit(round, available, seed)
    }
    fn aggregate_fit(&mut self, round: u64, global: &Model, results: &[FitRes], failures: &[Failure]) -> Result<Model> {
        require_results(round, global, results, failures)?;
        let agg = with_data(global, self.rule.aggregate(results)?)?;
        let one = FitRes {
            client: results[0].client,
            params: agg,
            num_examples: 1,
            loss: f64::NAN,
        };
        self.inner
            .aggregate_fit(round, global, std::slice::from_ref(&one), failures)
    }
    fn evaluate(&self, round: u64, global: &Model) -> Option<crate::strategy::Evaluation> {
        self.inner.evaluate(round, global)
    }
    fn state_bytes(&self) -> Result<Option<Vec<u8>>> {
        self.inner.state_bytes()
    }
    fn load_state_bytes(&mut self, global: &Model, bytes: &[u8]) -> Result<()> {
        self.inner.load_state_bytes(global, bytes)
    }
}
