//! # steepest
//!
//! Convergent optimization algorithms as fast, verified software.
//!
//! Parameters are named, shaped, flat row-major buffers ([`ParamSet`]) in
//! `f32` or `f64`. An [`Optimizer`] binds a registered update rule
//! ([`registry`]) to them, with parameter groups, composable gradient
//! [`Transform`]s, a learning-rate [`Schedule`] and a non-finite-gradient
//! policy; its state is keyed by parameter name and saved to safetensors
//! ([`state`]). Every rule has a readable reference kernel and a fused,
//! single-pass, parallel kernel that is tested bit-identical to it.
//!
//! ```
//! use steepest::{hyper, GradSet, Optimizer, ParamSet};
//!
//! let mut params = ParamSet::<f32>::new();
//! params.push("w", &[3], vec![1.0, 2.0, 3.0])?;
//! let mut opt = Optimizer::new("sgd", &hyper([("lr", 0.1), ("momentum", 0.9)]), &params)?;
//! let mut grads = GradSet::new();
//! grads.insert("w", vec![0.5, 0.5, 0.5]);
//! opt.step(&mut params, &mut grads)?;
//! assert_eq!(params.get("w").unwrap().data, vec![0.95, 1.95, 2.95]);
//! # Ok::<(), steepest::Error>(())
//! ```

#![warn(missing_docs)]

pub mod algorithm;
pub mod error;
pub mod games;
pub mod hyper;
pub mod json;
pub mod kernel;
pub mod linalg;
pub mod mem;
pub mod ops;
// Reference kernels are written as one indexed loop per tensor operation, on
// purpose: they mirror the papers and PyTorch line by line.
#[allow(clippy::needless_range_loop, clippy::assign_op_pattern)]
pub mod optim;
pub mod optimizer;
pub mod perf;
pub mod privacy;
pub mod real;
pub mod registry;
pub mod replay;
pub mod schedule;
pub mod state;
pub mod tensor;
pub mod transform;

pub use algorithm::{Algorithm, DynAlgorithm, Float, Needs, Samples, Slot, StepCtx, TensorMut, Workspace};
pub use error::{Error, Result};
pub use hyper::{hyper, Hyper, HyperReader};
pub use kernel::Kernel;
pub use optimizer::{GroupSpec, NonFinite, Optimizer, OptimizerSpec, ParamState, Select, StepInputs, StepOutcome};
pub use real::{Dtype, Real};
pub use schedule::Schedule;
pub use tensor::{GradSet, Param, ParamInfo, ParamSet, SampleGrads};
pub use transform::Transform;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
