//! The adapter: any registered steepest optimizer as a burn 0.22 optimizer.
//!
//! Two layers:
//!
//! * [`TensorOptimizer`] implements burn's per-tensor [`burn::optim::Optimizer`]
//!   trait (`step(lr, tensor, grad, state) -> (tensor, state)`): it copies the
//!   parameter and its gradient to the host as `f32`, runs the algorithm's
//!   fused kernel on them in place, and hands the result back as a tensor on
//!   the parameter's device. Its state ([`SteepestState`]) is the algorithm's
//!   slots as host `f32` buffers plus the step counters, and implements burn's
//!   [`RecordState`], so burn's own optimizer records (`to_record`,
//!   `load_record`, `save`, `load`, `into_bytes`, `from_bytes`) save and
//!   restore it bit for bit.
//! * [`SteepestOptimizer`] builds a burn [`ModuleOptimizer`] for a whole
//!   module: one burn parameter group per parameter (matched by its burn path,
//!   e.g. `fc1.weight`), each a [`TensorOptimizer`] that knows the parameter's
//!   path. Steepest's name-based routing (the `muon` recipe's embeddings/head
//!   patterns, any [`Partition`](steepest::optim::Partition), parameter groups
//!   of an [`OptimizerSpec`]) therefore sees burn paths. Its `step` also
//!   computes the global gradient norm for algorithms that need it (AdaGC),
//!   which a per-tensor step cannot see.
//!
//! Conventions (documented in the README too):
//!
//! * **Learning rate.** burn passes a learning rate to every step (a constant
//!   or a burn scheduler's value). It replaces the algorithm's base `lr`; the
//!   ratio `lr / base lr` is the schedule factor ([`StepCtx::lr_factor`]) that
//!   recipes apply to their other learning rates (the `muon` recipe's
//!   `adamw_lr`). The base `lr` in the hyperparameters is therefore only the
//!   reference point of that ratio: pass the same value to `step` to get the
//!   configured rates.
//! * **Shapes.** The kernel sees the burn tensor's shape as is. burn's `Linear`
//!   stores its weight as `[d_input, d_output]` (PyTorch: `[out, in]`), so
//!   Muon's `adjust_lr_fn` ratio `sqrt(max(1, A/C))` reads `A = d_input`,
//!   exactly as burn's own Muon does. Rank > 2 parameters (convolution kernels
//!   `[out, in, kh, kw]`, same layout as PyTorch) are flattened to
//!   `[out, in·kh·kw]` by Muon when it is built with `flatten = true`;
//!   otherwise the `muon` recipe routes them to AdamW.
//! * **Precision.** Parameters of any float dtype are updated in `f32` and
//!   converted back; state is `f32`.
//! * **Global quantities.** [`StepCtx::global_grad_norm`] is computed by
//!   [`SteepestOptimizer::step`] over all gradients of the step. A
//!   [`TensorOptimizer`] used on its own (e.g. `ModuleOptimizer::from(..)`)
//!   has no view of the other gradients: algorithms that need the global norm
//!   then use the tensor's own gradient norm (per-tensor clipping in AdaGC's
//!   warm-up). [`StepCtx::global_step`] is the number of optimizer steps; it
//!   is recovered after loading a record from the parameters' saved counters.
//! * **Not supported here:** steepest's gradient transforms, schedules and
//!   non-finite policy (use burn's gradient clipping and learning-rate
//!   schedulers); a spec that sets them is rejected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::optim::{
    GradientsParams, LearningRate, ModuleOptimizer, Optimizer as BurnOptimizer, OptimizerRecord, RecordState,
    StateSink, StateSource,
};
use burn::store::RecordError;
use burn::tensor::{Bytes, DType, Device, Tensor, TensorData};
use steepest::{DynAlgorithm, Error, Hyper, Kernel, OptimizerSpec, ParamInfo, Result, StepCtx, TensorMut, Workspace};

/// What the module-level step shares with the per-tensor steps of one optimizer.
#[derive(Debug)]
struct Shared {
    /// Number of the step in progress (0 before the first).
    global_step: AtomicU64,
    /// Global gradient norm of the step in progress, as `f64` bits (NaN = unknown).
    global_grad_norm: AtomicU64,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            global_step: AtomicU64::new(0),
            global_grad_norm: AtomicU64::new(f64::NAN.to_bits()),
        }
    }
}

/// One steepest algorithm as burn's per-tensor [`burn::optim::Optimizer`].
///
/// Wrap it in a [`ModuleOptimizer`] (`ModuleOptimizer::from(opt)`) to use it
/// on a whole module, as with burn's own optimizers; or build a
/// [`SteepestOptimizer`], which also gives the algorithm each parameter's
/// burn path and the global gradient norm.
#[derive(Clone, Debug)]
pub struct TensorOptimizer {
    alg: Arc<dyn DynAlgorithm>,
    name: Arc<str>,
    kernel: Kernel,
    shared: Arc<Shared>,
}

/// Rejects optimizers that need more than one tensor's gradient per step.
fn check_supported(alg: &dyn DynAlgorithm) -> Result<()> {
    let needs = alg.needs();
    let what = if needs.loss {
        "the loss value"
    } else if needs.sample_grads {
        "per-sample gradients"
    } else if needs.slot_norm.is_some() {
        "a norm over all parameters' state"
    } else if alg.needs_group_stat() {
        "a statistic over its whole parameter group"
    } else {
        return Ok(());
    };
    Err(Error::Spec(format!(
        "steepest-burn: {} needs {what} on every step, which burn's per-tensor optimizer API does not provide; \
         drive it with steepest::Optimizer::step_with instead",
        alg.name()
    )))
}

impl TensorOptimizer {
    /// The registered optimizer `name` with hyperparameters `hyper` (missing keys take defaults).
    ///
    /// Optimizers that need more than one tensor's gradient per step (the loss:
    /// AEGD; per-sample gradients: DP-SGD, DiceSGD; a statistic over the whole
    /// group: muon-nalr) cannot run inside burn's per-tensor step and are
    /// rejected here with an error naming what they need.
    pub fn new(name: &str, hyper: &Hyper) -> Result<Self> {
        let alg = steepest::registry::build(name, hyper)?;
        check_supported(alg.as_ref())?;
        Ok(Self::from_algorithm(Arc::from(alg)))
    }

    /// Wraps an already built algorithm.
    pub fn from_algorithm(alg: Arc<dyn DynAlgorithm>) -> Self {
        TensorOptimizer {
            alg,
            name: Arc::from("param"),
            kernel: Kernel::Fused,
            shared: Arc::new(Shared::default()),
        }
    }

    /// The parameter name the kernel sees (name-based routing uses it).
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Arc::from(name);
        self
    }

    /// Chooses the kernel (fused by default; the reference kernel is the readable ground truth).
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// The algorithm.
    pub fn algorithm(&self) -> &dyn DynAlgorithm {
        self.alg.as_ref()
    }

    /// `ModuleOptimizer::from(self)`.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }

    fn fresh_state<const D: usize>(&self, shape: &[usize], numel: usize) -> SteepestState<D> {
        let info = ParamInfo {
            name: self.name.to_string(),
            shape: shape.to_vec(),
        };
        let slots = self
            .alg
            .slots(&info)
            .iter()
            .map(|s| vec![s.init as f32; s.len(numel)])
            .collect();
        SteepestState {
            step: 0,
            global_step: 0,
            shape: shape.to_vec(),
            slots,
            work: Workspace::default(),
        }
    }
}

/// The per-parameter state of a [`TensorOptimizer`]: the algorithm's slots
/// (in the order of [`steepest::Algorithm::slots`]) as host `f32` buffers,
/// and the step counters.
///
/// In burn's records, under the parameter's prefix: scalars `step`,
/// `global_step`, `slots` (their number) and `dim0..dim{D-1}` (the shape),
/// and tensors `slot0, slot1, …` (parameter-shaped, or `[1]` for scalar slots).
#[derive(Clone, Debug)]
pub struct SteepestState<const D: usize> {
    /// Updates applied to this parameter.
    pub step: u64,
    /// The optimizer's step number at this parameter's last update.
    pub global_step: u64,
    /// The parameter's shape.
    pub shape: Vec<usize>,
    /// State buffers.
    pub slots: Vec<Vec<f32>>,
    work: Workspace<f32>,
}

impl<const D: usize> PartialEq for SteepestState<D> {
    /// Equal counters, shapes and slots, bit for bit (the workspace holds nothing that survives a step).
    fn eq(&self, other: &Self) -> bool {
        let bits = |s: &Vec<Vec<f32>>| {
            s.iter()
                .map(|v| v.iter().map(|x| x.to_bits()).collect())
                .collect::<Vec<Vec<u32>>>()
        };
        self.step == other.step
            && self.global_step == other.global_step
            && self.shape == other.shape
            && bits(&self.slots) == bits(&other.slots)
    }
}

impl<const D: usize> RecordState for SteepestState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_scalar(prefix, "step", self.step.into());
        out.push_scalar(prefix, "global_step", self.global_step.into());
        out.push_scalar(prefix, "slots", (self.slots.len() as u64).into());
        for (k, d) in self.shape.iter().enumerate() {
            out.push_scalar(prefix, &format!("dim{k}"), (*d as u64).into());
        }
        let numel: usize = self.shape.iter().product();
        for (i, s) in self.slots.iter().enumerate() {
            let shape = if s.len() == numel && !self.shape.is_empty() {
                self.shape.clone()
            } else {
                vec![s.len()]
            };
            out.push_tensor(prefix, &format!("slot{i}"), TensorData::new(s.clone(), shape));
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, _device: &Device) -> Option<Self> {
        let uint =
            |src: &mut StateSource, leaf: &str| src.take_scalar(prefix, leaf).and_then(|s| u64::try_from(s).ok());
        let step = uint(src, "step")?;
        let global_step = uint(src, "global_step")?;
        let n = usize::try_from(uint(src, "slots")?).ok()?;
        let shape = (0..D)
            .map(|k| uint(src, &format!("dim{k}")).and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<Vec<usize>>>()?;
        let slots = (0..n)
            .map(|i| {
                let data = src.take_tensor(prefix, &format!("slot{i}"))?;
                let data = if data.dtype() == DType::F32 {
                    data
                } else {
                    data.convert::<f32>()
                };
                data.try_into_vec::<f32>().ok()
            })
            .collect::<Option<Vec<Vec<f32>>>>()?;
        Some(SteepestState {
            step,
            global_step,
            shape,
            slots,
            work: Workspace::default(),
        })
    }
}

fn host_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    let data = t.into_data();
    let data = if data.dtype() == DType::F32 {
        data
    } else {
        data.convert::<f32>()
    };
    data.try_into_vec::<f32>()
        .unwrap_or_else(|e| panic!("steepest-burn: cannot read a float tensor as f32: {e:?}"))
}

impl BurnOptimizer for TensorOptimizer {
    type State<const D: usize> = SteepestState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let device = tensor.device();
        let dtype = tensor.dtype();
        let dims = tensor.dims();
        let mut param = host_f32(tensor);
        let grad = host_f32(grad);
        if !self.alg.accepts(&dims) {
            // burn's optimizer trait has no error channel; SteepestOptimizer::new checks
            // every parameter up front so this is reached only by hand-built groups.
            panic!(
                "steepest-burn: {} cannot update parameter {:?} of shape {:?} (route it to another optimizer)",
                self.alg.name(),
                self.name,
                dims
            );
        }
        let mut st = state.unwrap_or_else(|| self.fresh_state(&dims, param.len()));
        st.step = st.step.saturating_add(1);
        // The step number: the module-level step advances the shared counter; after a
        // record is loaded, the parameters' saved counters bring it back.
        let next = st.global_step.saturating_add(1);
        let global_step = self.shared.global_step.fetch_max(next, Ordering::SeqCst).max(next);
        st.global_step = global_step;
        let mut global_grad_norm = f64::from_bits(self.shared.global_grad_norm.load(Ordering::SeqCst));
        if global_grad_norm.is_nan() && self.alg.needs_global_grad_norm() {
            global_grad_norm = grad.iter().map(|&g| f64::from(g) * f64::from(g)).sum::<f64>().sqrt();
        }
        let base = self.alg.lr();
        let lr_factor = if base != 0.0 { lr / base } else { 1.0 };
        let ctx = StepCtx {
            lr,
            step: st.step,
            lr_factor,
            global_step,
            global_grad_norm,
            grad_sq: f64::NAN,
            group_stat: f64::NAN,
            slot_norm: f64::NAN,
            loss: None,
        };
        let SteepestState { shape, slots, work, .. } = &mut st;
        self.alg.step_f32(
            self.kernel,
            &ctx,
            TensorMut {
                name: &self.name,
                shape,
                param: &mut param,
                grad: &grad,
                slots,
                work,
                samples: steepest::Samples::none(),
            },
        );
        let data = TensorData::new(param, dims);
        let data = if dtype == DType::F32 {
            data
        } else {
            data.convert_dtype(dtype)
        };
        (Tensor::from_data(data, &device), Some(st))
    }

    fn to_device<const D: usize>(state: Self::State<D>, _device: &Device) -> Self::State<D> {
        // The state lives on the host: every step reads the parameter to the host anyway.
        state
    }
}

/// Collects `(path, id, shape)` of every float parameter, with the paths burn's
/// `ModuleOptimizer` matches parameter groups against.
#[derive(Default)]
struct PathCollector {
    path: Vec<String>,
    params: Vec<(String, ParamId, Vec<usize>)>,
}

impl ModuleVisitor for PathCollector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let shape = param.val().dims().to_vec();
        self.params.push((self.path.join("."), param.id, shape));
    }
}

/// Names (burn paths), ids and shapes of a module's float parameters, in visiting order.
pub fn param_paths<M: Module>(module: &M) -> Vec<(String, ParamId, Vec<usize>)> {
    let mut c = PathCollector::default();
    module.visit(&mut c);
    c.params
}

/// A steepest optimizer bound to a burn module: a burn [`ModuleOptimizer`]
/// with one [`TensorOptimizer`] per parameter (matched by burn path), plus the
/// global gradient norm and step counter steepest's algorithms may need.
///
/// ```ignore
/// let mut optim = SteepestOptimizer::new(&model, "muon", &hyper_json(r#"{"lr": 0.02}"#)?)?;
/// model = optim.step(0.02, model, GradientsParams::from_grads(loss.backward(), &model));
/// ```
#[derive(Clone)]
pub struct SteepestOptimizer {
    inner: ModuleOptimizer,
    shared: Arc<Shared>,
    needs_norm: bool,
    /// `(id, rank)` of every parameter, for the global gradient norm.
    params: Vec<(ParamId, usize)>,
    routes: Vec<(String, String)>,
}

impl SteepestOptimizer {
    /// The registered optimizer `name` with hyperparameters `hyper` over `module`'s parameters.
    pub fn new<M: Module>(module: &M, name: &str, hyper: &Hyper) -> Result<Self> {
        Self::from_spec(module, OptimizerSpec::new(name, hyper))
    }

    /// Like [`SteepestOptimizer::new`], with the hyperparameters as a JSON object.
    pub fn from_json<M: Module>(module: &M, name: &str, hyper_json: &str) -> Result<Self> {
        let hyper = steepest::hyper::hyper_from_json(hyper_json)
            .ok_or_else(|| Error::Spec(format!("hyperparameters must be a JSON object, got {hyper_json}")))?;
        Self::new(module, name, &hyper)
    }

    /// A full spec: steepest's parameter groups select burn paths (`Select::Pattern("*.bias")`,
    /// names, ranks, shapes). Transforms, schedules and the non-finite policy are rejected
    /// (burn has its own gradient clipping and learning-rate schedulers).
    pub fn from_spec<M: Module>(module: &M, spec: OptimizerSpec) -> Result<Self> {
        if !spec.transforms.is_empty() {
            return Err(Error::Spec(
                "steepest-burn: gradient transforms are not supported; use burn's gradient clipping".into(),
            ));
        }
        if spec.schedule != steepest::Schedule::Constant {
            return Err(Error::Spec(
                "steepest-burn: schedules are not supported; pass the scheduled lr to step (burn's lr schedulers)"
                    .into(),
            ));
        }
        if spec.nonfinite != steepest::NonFinite::Error {
            return Err(Error::Spec(
                "steepest-burn: the non-finite policy is not supported".into(),
            ));
        }
        let params = param_paths(module);
        let infos: Vec<ParamInfo> = params
            .iter()
            .map(|(p, _, s)| ParamInfo {
                name: p.clone(),
                shape: s.clone(),
            })
            .collect();
        let kernel = spec.kernel;
        // Validates hyperparameters, groups, and that every parameter can be updated.
        let opt = steepest::Optimizer::<f32>::from_spec(spec.clone(), &infos)?;
        let entry = steepest::registry::lookup(&spec.name)?;
        let mut algs: Vec<Arc<dyn DynAlgorithm>> = vec![Arc::from((entry.build)(&spec.hyper)?)];
        for g in &spec.groups {
            let mut h = spec.hyper.clone();
            h.extend(
                g.hyper
                    .iter()
                    .filter(|(k, _)| !entry.base_only.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            algs.push(Arc::from((entry.build)(&h)?));
        }
        for a in &algs {
            check_supported(a.as_ref())?;
        }
        let group_of: HashMap<String, usize> = opt.groups_of().into_iter().collect();
        let shared = Arc::new(Shared::default());
        let make = |alg: &Arc<dyn DynAlgorithm>, name: &str| TensorOptimizer {
            alg: alg.clone(),
            name: Arc::from(name),
            kernel,
            shared: shared.clone(),
        };
        let mut inner = ModuleOptimizer::from(make(&algs[0], "param"));
        let mut routes = Vec::new();
        for (path, _, shape) in &params {
            let g = group_of.get(path).copied().unwrap_or(0);
            let alg = &algs[g];
            routes.push((path.clone(), route_name(alg.as_ref(), path, shape)));
            inner = inner.with_group(ParamGroup::from_path(path.clone()), make(alg, path), None);
        }
        Ok(SteepestOptimizer {
            inner,
            needs_norm: algs.iter().any(|a| a.needs_global_grad_norm()),
            shared,
            params: params.iter().map(|(_, id, s)| (*id, s.len())).collect(),
            routes,
        })
    }

    /// Which algorithm updates each parameter: `(burn path, algorithm name)`, with a
    /// partition's choice resolved (e.g. `("fc1.weight", "muon")`, `("fc1.bias", "adamw")`).
    pub fn routes(&self) -> &[(String, String)] {
        &self.routes
    }

    /// One step: like `ModuleOptimizer::step`, plus the global gradient norm when the algorithm needs it.
    pub fn step<M: Module>(&mut self, lr: LearningRate, module: M, grads: GradientsParams) -> M {
        let norm = if self.needs_norm {
            self.params
                .iter()
                .map(|&(id, rank)| grad_sum_squares(&grads, id, rank))
                .sum::<f64>()
                .sqrt()
        } else {
            f64::NAN
        };
        self.shared.global_grad_norm.store(norm.to_bits(), Ordering::SeqCst);
        self.shared.global_step.fetch_add(1, Ordering::SeqCst);
        let out = self.inner.step(lr, module, grads);
        self.shared.global_grad_norm.store(f64::NAN.to_bits(), Ordering::SeqCst);
        out
    }

    /// The burn optimizer inside (for APIs that take a [`ModuleOptimizer`]; its `step`
    /// cannot compute the global gradient norm, see the module docs).
    pub fn module_optimizer(&self) -> &ModuleOptimizer {
        &self.inner
    }

    /// Consumes into the burn optimizer inside.
    pub fn into_module_optimizer(self) -> ModuleOptimizer {
        self.inner
    }

    /// burn's optimizer record (`ModuleOptimizer::to_record`).
    pub fn to_record(&self) -> OptimizerRecord {
        self.inner.to_record()
    }

    /// Loads a record made by [`SteepestOptimizer::to_record`] (or a `ModuleOptimizer` of the same setup).
    pub fn load_record(mut self, record: OptimizerRecord) -> Self {
        self.inner = self.inner.load_record(record);
        self.shared.global_step.store(0, Ordering::SeqCst);
        self
    }

    /// Serializes the record (burnpack bytes).
    pub fn into_bytes(&self) -> std::result::Result<Bytes, RecordError> {
        self.inner.into_bytes()
    }

    /// Restores from bytes made by [`SteepestOptimizer::into_bytes`].
    pub fn from_bytes(self, bytes: Bytes) -> std::result::Result<Self, RecordError> {
        Ok(self.load_record(OptimizerRecord::from_bytes(bytes)?))
    }

    /// Saves the record to a file.
    pub fn save<P: AsRef<std::path::Path>>(&self, path: P) -> std::result::Result<(), RecordError> {
        self.inner.save(path)
    }

    /// Loads the record from a file.
    pub fn load<P: AsRef<std::path::Path>>(self, path: P) -> std::result::Result<Self, RecordError> {
        Ok(self.load_record(OptimizerRecord::load(path)?))
    }
}

/// The name of the algorithm that updates parameter `name` (a partition's side resolved).
fn route_name(alg: &dyn DynAlgorithm, name: &str, shape: &[usize]) -> String {
    if let Some(p) = steepest_partition(alg) {
        return (if p.routes_to_aux(name, shape) {
            p.aux.name()
        } else {
            p.main.name()
        })
        .to_string();
    }
    alg.name().to_string()
}

fn steepest_partition(alg: &dyn DynAlgorithm) -> Option<steepest::optim::Partition> {
    // Rebuild the partition from its registry entry (Partition is a registry recipe).
    match alg.name() {
        "muon" => steepest::optim::muon::muon_with_adamw(&alg.hyper()).ok(),
        _ => None,
    }
}

fn grad_sum_squares(grads: &GradientsParams, id: ParamId, rank: usize) -> f64 {
    fn ss<const D: usize>(grads: &GradientsParams, id: ParamId) -> f64 {
        grads
            .get::<D>(id)
            .map_or(0.0, |g| host_f32(g).iter().map(|&x| f64::from(x) * f64::from(x)).sum())
    }
    match rank {
        0 => ss::<0>(grads, id),
        1 => ss::<1>(grads, id),
        2 => ss::<2>(grads, id),
        3 => ss::<3>(grads, id),
        4 => ss::<4>(grads, id),
        5 => ss::<5>(grads, id),
        6 => ss::<6>(grads, id),
        7 => ss::<7>(grads, id),
        8 => ss::<8>(grads, id),
        _ => 0.0,
    }
}
