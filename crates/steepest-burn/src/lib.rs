//! # steepest-burn
//!
//! steepest's optimizers inside [burn](https://burn.dev) 0.22: every registered
//! steepest optimizer (recipes and wrappers included: the `muon` Muon+AdamW
//! partition, `c-adamw`, `adagc`, …) as a burn optimizer, with burn's own
//! optimizer records.
//!
//! ```ignore
//! use steepest_burn::SteepestOptimizer;
//! let mut optim = SteepestOptimizer::from_json(&model, "muon", r#"{"lr": 0.02, "adamw_lr": 0.003}"#)?;
//! // in the training loop:
//! model = optim.step(0.02, model, GradientsParams::from_grads(loss.backward(), &model));
//! ```
//!
//! See [`optim`] for the conventions (learning rate, shapes, global norm),
//! [`models`] for the lab's neural workloads and [`train()`] for the training
//! loop `steepest bench` calls.

#![warn(missing_docs)]

pub mod data;
pub mod models;
pub mod optim;

pub use models::{train, ModelKind, TrainData, TrainPoint};
pub use optim::{param_paths, SteepestOptimizer, SteepestState, TensorOptimizer};

/// The burn version this crate is built against.
pub const BURN_VERSION: &str = "0.22.1";
