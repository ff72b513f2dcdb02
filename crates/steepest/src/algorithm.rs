//! The contract every update rule implements.
//!
//! An [`Algorithm`] is a validated configuration (built from a [`Hyper`]),
//! the list of its per-parameter state buffers ([`Slot`]s), and two kernels
//! that update one parameter tensor in place: a readable [`Algorithm::reference`]
//! (the ground truth, op by op) and a single-pass parallel [`Algorithm::fused`].
//! The [`crate::Optimizer`] owns the parameters' state, keyed by name, and calls
//! the kernels; algorithms stay stateless and pure.

use std::fmt::Debug;

use crate::hyper::Hyper;
use crate::kernel::Kernel;
use crate::real::Real;

/// A per-parameter state buffer of an algorithm: its name (as saved in state
/// files) and the value it starts at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slot {
    /// Name, e.g. `"exp_avg"`.
    pub name: &'static str,
    /// Initial value of every element (PyTorch's `initial_accumulator_value` for AdaGrad; 0 otherwise).
    pub init: f64,
}

impl Slot {
    /// A slot that starts at zero.
    pub const fn zeros(name: &'static str) -> Slot {
        Slot { name, init: 0.0 }
    }
}

/// What a kernel knows about the step it is taking.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepCtx {
    /// Learning rate for this step (the group's `lr` times the schedule's factor).
    pub lr: f64,
    /// This parameter's step count, 1 on its first update. Steps on which the
    /// parameter was frozen (no gradient) do not count, as in PyTorch.
    pub step: u64,
}

/// One parameter tensor as a kernel sees it.
pub struct TensorMut<'a, F> {
    /// Parameter name.
    pub name: &'a str,
    /// Parameter shape (row-major).
    pub shape: &'a [usize],
    /// Values, updated in place.
    pub param: &'a mut [F],
    /// Gradient, same length.
    pub grad: &'a [F],
    /// State buffers in the order of [`Algorithm::slots`], each of the parameter's length.
    pub slots: &'a mut [Vec<F>],
}

/// An update rule. Implement this; the object-safe [`DynAlgorithm`] comes for free.
pub trait Algorithm: Clone + Debug + Send + Sync + 'static {
    /// Registry name, e.g. `"adamw"`.
    fn name(&self) -> &'static str;
    /// Base learning rate.
    fn lr(&self) -> f64;
    /// Every hyperparameter with its value, defaults filled in (PyTorch names).
    fn hyper(&self) -> Hyper;
    /// Per-parameter state buffers.
    fn slots(&self) -> Vec<Slot>;
    /// The readable ground truth: one loop per tensor operation.
    fn reference<F: Real>(&self, ctx: &StepCtx, t: TensorMut<'_, F>);
    /// Single pass over memory, parallel over chunks; no allocation.
    fn fused<F: Real>(&self, ctx: &StepCtx, t: TensorMut<'_, F>);
}

/// Object-safe view of an [`Algorithm`], so optimizers can be chosen by name at run time.
pub trait DynAlgorithm: Debug + Send + Sync {
    /// See [`Algorithm::name`].
    fn name(&self) -> &'static str;
    /// See [`Algorithm::lr`].
    fn lr(&self) -> f64;
    /// See [`Algorithm::hyper`].
    fn hyper(&self) -> Hyper;
    /// See [`Algorithm::slots`].
    fn slots(&self) -> Vec<Slot>;
    /// Runs the chosen kernel on an `f32` tensor.
    fn step_f32(&self, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f32>);
    /// Runs the chosen kernel on an `f64` tensor.
    fn step_f64(&self, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f64>);
    /// Clones into a box.
    fn clone_box(&self) -> Box<dyn DynAlgorithm>;
}

impl<A: Algorithm> DynAlgorithm for A {
    fn name(&self) -> &'static str {
        Algorithm::name(self)
    }
    fn lr(&self) -> f64 {
        Algorithm::lr(self)
    }
    fn hyper(&self) -> Hyper {
        Algorithm::hyper(self)
    }
    fn slots(&self) -> Vec<Slot> {
        Algorithm::slots(self)
    }
    fn step_f32(&self, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f32>) {
        match kernel {
            Kernel::Fused => self.fused(ctx, t),
            Kernel::Reference => self.reference(ctx, t),
        }
    }
    fn step_f64(&self, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f64>) {
        match kernel {
            Kernel::Fused => self.fused(ctx, t),
            Kernel::Reference => self.reference(ctx, t),
        }
    }
    fn clone_box(&self) -> Box<dyn DynAlgorithm> {
        Box::new(self.clone())
    }
}

impl Clone for Box<dyn DynAlgorithm> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Dispatches a dtype-generic call to the right [`DynAlgorithm`] method.
pub trait StepDyn: Real {
    /// Runs `alg`'s chosen kernel on a tensor of this dtype.
    fn step_dyn(alg: &dyn DynAlgorithm, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, Self>);
}

impl StepDyn for f32 {
    fn step_dyn(alg: &dyn DynAlgorithm, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f32>) {
        alg.step_f32(kernel, ctx, t)
    }
}

impl StepDyn for f64 {
    fn step_dyn(alg: &dyn DynAlgorithm, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f64>) {
        alg.step_f64(kernel, ctx, t)
    }
}

/// The element types an [`crate::Optimizer`] runs on: `f32` and `f64`.
pub trait Float: Real + StepDyn {}
impl<T: Real + StepDyn> Float for T {}
