//! The contract every update rule implements.
//!
//! An [`Algorithm`] is a validated configuration (built from a [`Hyper`]),
//! the list of its per-parameter state buffers ([`Slot`]s), and two kernels
//! that update one parameter tensor in place: a readable [`Algorithm::reference`]
//! (the ground truth, op by op) and a single-pass parallel [`Algorithm::fused`].
//! The [`crate::Optimizer`] owns the parameters' state, keyed by name, and calls
//! the kernels; algorithms stay stateless and pure.

use std::fmt::Debug;

use crate::error::Result;
use crate::hyper::Hyper;
use crate::kernel::Kernel;
use crate::real::Real;
use crate::tensor::ParamInfo;

/// A per-parameter state buffer of an algorithm: its name (as saved in state
/// files), the value it starts at, and whether it is shaped like the
/// parameter, a single scalar (e.g. an accumulated gradient norm), or a flat
/// buffer of a length the algorithm computes from the parameter's shape
/// ([`Slot::sized`]: FRUGAL's moments live in a low-dimensional subspace,
/// ASGO's preconditioner is `d × d` for the smaller side `d`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slot {
    /// Name, e.g. `"exp_avg"`.
    pub name: &'static str,
    /// Initial value of every element (PyTorch's `initial_accumulator_value` for AdaGrad; 0 otherwise).
    pub init: f64,
    /// One value (shape `[]`) instead of one per parameter element.
    pub scalar: bool,
    /// A flat buffer of exactly this many elements (shape `[len]`) instead of
    /// one per parameter element; takes precedence over `scalar`.
    pub fixed_len: Option<usize>,
}

impl Slot {
    /// A parameter-shaped slot that starts at zero.
    pub const fn zeros(name: &'static str) -> Slot {
        Slot {
            name,
            init: 0.0,
            scalar: false,
            fixed_len: None,
        }
    }
    /// A scalar slot starting at `init`.
    pub const fn scalar(name: &'static str, init: f64) -> Slot {
        Slot {
            name,
            init,
            scalar: true,
            fixed_len: None,
        }
    }
    /// A flat slot of `len` elements (shape `[len]`) that starts at zero; its
    /// length is computed by the algorithm from the parameter's shape.
    pub const fn sized(name: &'static str, len: usize) -> Slot {
        Slot {
            name,
            init: 0.0,
            scalar: false,
            fixed_len: Some(len),
        }
    }
    /// Number of elements for a parameter of `numel` elements.
    pub fn len(&self, numel: usize) -> usize {
        if let Some(n) = self.fixed_len {
            n
        } else if self.scalar {
            1
        } else {
            numel
        }
    }
    /// Shape for a parameter of shape `shape`.
    pub fn shape(&self, shape: &[usize]) -> Vec<usize> {
        if let Some(n) = self.fixed_len {
            vec![n]
        } else if self.scalar {
            Vec::new()
        } else {
            shape.to_vec()
        }
    }
}

/// Scratch memory an algorithm may use during a step (not saved: nothing in it
/// survives a step). Kept by the optimizer per parameter, so it is allocated
/// once and reused. Wrappers take one buffer and pass [`Workspace::inner`] on.
#[derive(Clone, Debug, Default)]
pub struct Workspace<F> {
    /// Buffers for this layer, grown on demand.
    pub bufs: Vec<Vec<F>>,
    inner: Option<Box<Workspace<F>>>,
}

impl<F: Real> Workspace<F> {
    /// `k` buffers of `len` elements each (contents unspecified), plus the inner workspace.
    pub fn take(&mut self, k: usize, len: usize) -> (&mut [Vec<F>], &mut Workspace<F>) {
        if self.bufs.len() < k {
            self.bufs.resize_with(k, Vec::new);
        }
        for b in &mut self.bufs[..k] {
            if b.len() != len {
                if b.capacity() < len {
                    // First use (or growth): a fresh buffer, on huge pages when large.
                    *b = crate::mem::filled(len, F::ZERO);
                } else {
                    b.resize(len, F::ZERO);
                }
            }
        }
        let inner = self.inner.get_or_insert_with(Default::default);
        (&mut self.bufs[..k], inner)
    }
    /// The workspace of a wrapped algorithm.
    pub fn inner(&mut self) -> &mut Workspace<F> {
        self.inner.get_or_insert_with(Default::default)
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
    /// The schedule's factor this step (`lr` = base lr × factor); combinators
    /// apply it to the learning rates of the algorithms they route to.
    pub lr_factor: f64,
    /// The optimizer's step number, 1 on its first applied step, counting
    /// steps on which this parameter was frozen (heavyball's and
    /// pytorch-optimizer's per-group counter).
    pub global_step: u64,
    /// L2 norm of all gradients of this step together (computed only when an
    /// algorithm asks for it with [`Algorithm::needs_global_grad_norm`]; NaN otherwise).
    pub global_grad_norm: f64,
    /// Sum of squares of this parameter's gradient `TensorMut::grad`, in
    /// `f64` as [`crate::kernel::sum_squares`] gives it: an optional cache,
    /// filled by the optimizer with the global norm (so only when
    /// [`Algorithm::needs_global_grad_norm`]). NaN means "not known: compute it
    /// yourself" (the burn adapter, and inside wrappers). A wrapper that hands
    /// its base a different gradient must set it to NaN.
    pub grad_sq: f64,
    /// The maximum of [`Algorithm::group_stat`] over the parameters of this
    /// parameter's group that have a gradient this step, taken before any of
    /// them is updated (computed only if the algorithm asks for it with
    /// [`Algorithm::needs_group_stat`]; NaN otherwise). Noise-adaptive
    /// layerwise learning rates compare each layer with the best of its group.
    pub group_stat: f64,
    /// L2 norm, over all parameters updated this step, of the state slot named by
    /// [`Needs::slot_norm`] as it stands before the step (DiceSGD's error
    /// feedback); NaN unless an algorithm asks for it.
    pub slot_norm: f64,
    /// The loss at the parameters the gradients were taken at, when the caller
    /// gives one ([`crate::StepInputs::loss`]); always `Some` for an algorithm
    /// whose [`Algorithm::needs`] asks for it.
    pub loss: Option<f64>,
}

/// Inputs beyond the mean gradient that an algorithm needs on every step.
/// A step without a required input fails with [`crate::Error::StepInput`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// The loss value ([`StepCtx::loss`]; AEGD's energy).
    pub loss: bool,
    /// Per-sample gradients of every parameter with a gradient ([`TensorMut::samples`];
    /// DP-SGD's clipping, GSNR's variance).
    pub sample_grads: bool,
    /// A state slot whose norm over all parameters updated this step must be
    /// known before any of them is updated ([`StepCtx::slot_norm`]).
    pub slot_norm: Option<&'static str>,
}

impl Needs {
    /// What either needs.
    pub fn union(self, o: Needs) -> Needs {
        Needs {
            loss: self.loss || o.loss,
            sample_grads: self.sample_grads || o.sample_grads,
            slot_norm: self.slot_norm.or(o.slot_norm),
        }
    }
}

/// The per-sample gradients of one parameter as a kernel sees them.
#[derive(Debug)]
pub struct Samples<'a, F> {
    /// `grads[s]`: the gradient of sample (or micro-batch) `s`, parameter-length.
    /// Empty when the step has no per-sample gradients.
    pub grads: &'a [Vec<F>],
    /// `norms[s]`: the L2 norm of sample `s`'s gradient over all parameters
    /// updated this step together (computed in f64, parameters in registration
    /// order), for clipping that couples parameters (DP-SGD). Same length as `grads`.
    pub norms: &'a [f64],
}

impl<F> Clone for Samples<'_, F> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<F> Copy for Samples<'_, F> {}

impl<'a, F> Samples<'a, F> {
    /// No per-sample gradients.
    pub const fn none() -> Self {
        Samples { grads: &[], norms: &[] }
    }
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.grads.len()
    }
    /// `true` when there are none.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }
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
    /// State buffers in the order of [`Algorithm::slots`] (parameter-length or scalar).
    pub slots: &'a mut [Vec<F>],
    /// Scratch memory (not saved).
    pub work: &'a mut Workspace<F>,
    /// Per-sample gradients of this parameter (empty unless the caller gives them).
    pub samples: Samples<'a, F>,
}

impl<'a, F> TensorMut<'a, F> {
    /// Reborrows with another gradient and slot range (for wrappers).
    pub fn with<'b>(
        &'b mut self,
        grad: &'b [F],
        slots: std::ops::RangeFrom<usize>,
        work: &'b mut Workspace<F>,
    ) -> TensorMut<'b, F> {
        TensorMut {
            name: self.name,
            shape: self.shape,
            param: &mut *self.param,
            grad,
            slots: &mut self.slots[slots],
            work,
            samples: self.samples,
        }
    }
}

/// An update rule. Implement this; the object-safe [`DynAlgorithm`] comes for free.
pub trait Algorithm: Clone + Debug + Send + Sync + 'static {
    /// Registry name, e.g. `"adamw"`.
    fn name(&self) -> &'static str;
    /// Base learning rate.
    fn lr(&self) -> f64;
    /// Every hyperparameter with its value, defaults filled in (PyTorch names).
    fn hyper(&self) -> Hyper;
    /// State buffers of the parameter `p`.
    fn slots(&self, p: &ParamInfo) -> Vec<Slot>;
    /// Whether this algorithm can update a parameter of this shape (e.g. Muon needs matrices).
    fn accepts(&self, shape: &[usize]) -> bool {
        let _ = shape;
        true
    }
    /// Whether [`StepCtx::global_grad_norm`] must be computed (AdaGC's warm-up).
    fn needs_global_grad_norm(&self) -> bool {
        false
    }
    /// Whether the optimizer must compute [`StepCtx::group_stat`] (a pre-pass over the group).
    fn needs_group_stat(&self) -> bool {
        false
    }
    /// This parameter's contribution to [`StepCtx::group_stat`], computed from
    /// its gradient and its state before the step (which it must not change;
    /// it may use the workspace). NaN means "no contribution". `kernel` says
    /// which implementation (reference or fused) the step will use.
    fn group_stat<F: Float>(&self, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, F>) -> f64 {
        let _ = (kernel, ctx, t);
        f64::NAN
    }
    /// Inputs beyond the gradient this algorithm needs on every step (loss, per-sample gradients).
    fn needs(&self) -> Needs {
        Needs::default()
    }
    /// Rejects a loss value the update cannot use (AEGD needs `loss + c > 0`), naming it.
    fn check_loss(&self, loss: f64) -> Result<()> {
        let _ = loss;
        Ok(())
    }
    /// The base learning rate that applies to this parameter (combinators route
    /// parameters to algorithms with their own lrs).
    fn lr_for(&self, name: &str, shape: &[usize]) -> f64 {
        let _ = (name, shape);
        self.lr()
    }
    /// Rejects parameters this algorithm cannot update, with a message naming them.
    fn check_param(&self, p: &ParamInfo) -> Result<()> {
        if self.accepts(&p.shape) {
            Ok(())
        } else {
            Err(crate::error::Error::param(
                &p.name,
                format!("{} cannot update a parameter of shape {:?}", self.name(), p.shape),
            ))
        }
    }
    /// The readable ground truth: one loop per tensor operation.
    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>);
    /// Single pass over memory, parallel over chunks; no allocation after the first step.
    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>);
    /// The fused step as if the gradient were `g·g_scale` and the parameter
    /// `p·p_scale` (each product rounded to `F`, as tensor multiplies would
    /// be), for wrappers that rescale both (AdaGC's clipping and its decoupled
    /// decay). The default materializes the products (a pass over the
    /// parameter, a gradient buffer in the workspace) and runs
    /// [`Algorithm::fused`]; kernels that fold the two multiplies into their
    /// single pass override it, with results equal to the default's to the bit.
    fn fused_scaled<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>, g_scale: F, p_scale: F) {
        if p_scale != F::ONE {
            crate::kernel::for_each_chunk_mut(t.param, move |c| c.iter_mut().for_each(|p| *p *= p_scale));
        }
        let n = t.param.len();
        let (bufs, inner) = t.work.take(1, n);
        let gs = &mut bufs[0];
        crate::kernel::zip_chunks(&mut gs[..], t.grad, [], move |c, g, []| {
            let g = &g[..c.len()];
            for i in 0..c.len() {
                c[i] = g[i] * g_scale;
            }
        });
        // The kernel sees another gradient: the optimizer's sum of squares no longer describes it.
        self.fused(
            &StepCtx {
                grad_sq: f64::NAN,
                ..*ctx
            },
            TensorMut {
                name: t.name,
                shape: t.shape,
                param: t.param,
                grad: gs,
                slots: t.slots,
                work: inner,
                samples: t.samples,
            },
        );
    }
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
    fn slots(&self, p: &ParamInfo) -> Vec<Slot>;
    /// See [`Algorithm::accepts`].
    fn accepts(&self, shape: &[usize]) -> bool;
    /// See [`Algorithm::needs_global_grad_norm`].
    fn needs_global_grad_norm(&self) -> bool;
    /// See [`Algorithm::needs`].
    fn needs(&self) -> Needs;
    /// See [`Algorithm::check_loss`].
    fn check_loss(&self, loss: f64) -> Result<()>;
    /// See [`Algorithm::lr_for`].
    fn lr_for(&self, name: &str, shape: &[usize]) -> f64;
    /// See [`Algorithm::needs_group_stat`].
    fn needs_group_stat(&self) -> bool;
    /// [`Algorithm::group_stat`] on an `f32` tensor.
    fn group_stat_f32(&self, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f32>) -> f64;
    /// [`Algorithm::group_stat`] on an `f64` tensor.
    fn group_stat_f64(&self, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f64>) -> f64;
    /// See [`Algorithm::check_param`].
    fn check_param(&self, p: &ParamInfo) -> Result<()>;
    /// Runs the chosen kernel on an `f32` tensor.
    fn step_f32(&self, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f32>);
    /// Runs the chosen kernel on an `f64` tensor.
    fn step_f64(&self, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f64>);
    /// [`Algorithm::fused_scaled`] on an `f32` tensor.
    fn fused_scaled_f32(&self, ctx: &StepCtx, t: TensorMut<'_, f32>, g_scale: f32, p_scale: f32);
    /// [`Algorithm::fused_scaled`] on an `f64` tensor.
    fn fused_scaled_f64(&self, ctx: &StepCtx, t: TensorMut<'_, f64>, g_scale: f64, p_scale: f64);
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
    fn slots(&self, p: &ParamInfo) -> Vec<Slot> {
        Algorithm::slots(self, p)
    }
    fn accepts(&self, shape: &[usize]) -> bool {
        Algorithm::accepts(self, shape)
    }
    fn needs_global_grad_norm(&self) -> bool {
        Algorithm::needs_global_grad_norm(self)
    }
    fn needs(&self) -> Needs {
        Algorithm::needs(self)
    }
    fn check_loss(&self, loss: f64) -> Result<()> {
        Algorithm::check_loss(self, loss)
    }
    fn lr_for(&self, name: &str, shape: &[usize]) -> f64 {
        Algorithm::lr_for(self, name, shape)
    }
    fn needs_group_stat(&self) -> bool {
        Algorithm::needs_group_stat(self)
    }
    fn group_stat_f32(&self, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f32>) -> f64 {
        Algorithm::group_stat(self, kernel, ctx, t)
    }
    fn group_stat_f64(&self, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f64>) -> f64 {
        Algorithm::group_stat(self, kernel, ctx, t)
    }
    fn check_param(&self, p: &ParamInfo) -> Result<()> {
        Algorithm::check_param(self, p)
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
    fn fused_scaled_f32(&self, ctx: &StepCtx, t: TensorMut<'_, f32>, g_scale: f32, p_scale: f32) {
        Algorithm::fused_scaled(self, ctx, t, g_scale, p_scale)
    }
    fn fused_scaled_f64(&self, ctx: &StepCtx, t: TensorMut<'_, f64>, g_scale: f64, p_scale: f64) {
        Algorithm::fused_scaled(self, ctx, t, g_scale, p_scale)
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
    /// Runs `alg`'s [`Algorithm::group_stat`] on a tensor of this dtype.
    fn group_stat_dyn(alg: &dyn DynAlgorithm, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, Self>) -> f64;
    /// Runs `alg`'s [`Algorithm::fused_scaled`] on a tensor of this dtype.
    fn fused_scaled_dyn(alg: &dyn DynAlgorithm, ctx: &StepCtx, t: TensorMut<'_, Self>, g_scale: Self, p_scale: Self);
}

impl StepDyn for f32 {
    fn step_dyn(alg: &dyn DynAlgorithm, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f32>) {
        alg.step_f32(kernel, ctx, t)
    }
    fn group_stat_dyn(alg: &dyn DynAlgorithm, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f32>) -> f64 {
        alg.group_stat_f32(kernel, ctx, t)
    }
    fn fused_scaled_dyn(alg: &dyn DynAlgorithm, ctx: &StepCtx, t: TensorMut<'_, f32>, g_scale: f32, p_scale: f32) {
        alg.fused_scaled_f32(ctx, t, g_scale, p_scale)
    }
}

impl StepDyn for f64 {
    fn step_dyn(alg: &dyn DynAlgorithm, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f64>) {
        alg.step_f64(kernel, ctx, t)
    }
    fn group_stat_dyn(alg: &dyn DynAlgorithm, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, f64>) -> f64 {
        alg.group_stat_f64(kernel, ctx, t)
    }
    fn fused_scaled_dyn(alg: &dyn DynAlgorithm, ctx: &StepCtx, t: TensorMut<'_, f64>, g_scale: f64, p_scale: f64) {
        alg.fused_scaled_f64(ctx, t, g_scale, p_scale)
    }
}

/// The element types an [`crate::Optimizer`] runs on: `f32` and `f64`.
pub trait Float: Real + StepDyn {}
impl<T: Real + StepDyn> Float for T {}
