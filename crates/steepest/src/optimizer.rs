//! The optimizer object: a registered update rule, parameter groups, transforms,
//! a schedule and per-parameter state keyed by name.
//!
//! ```
//! use steepest::{hyper, GradSet, Optimizer, ParamSet};
//!
//! let mut params = ParamSet::<f64>::new();
//! params.push("w", &[2, 2], vec![1.0, -2.0, 3.0, -4.0]).unwrap();
//! let mut opt = Optimizer::new("adamw", &hyper([("lr", 0.1)]), &params).unwrap();
//! for _ in 0..10 {
//!     // gradient of 0.5 * |w|^2
//!     let g = params.get("w").unwrap().data.clone();
//!     let mut grads = GradSet::new();
//!     grads.insert("w", g);
//!     opt.step(&mut params, &mut grads).unwrap();
//! }
//! assert!(params.get("w").unwrap().data.iter().all(|x| x.abs() < 4.0));
//! ```

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::algorithm::{DynAlgorithm, Float, Needs, Samples, StepCtx, TensorMut, Workspace};
use crate::error::{Error, Result};
use crate::hyper::Hyper;
use crate::kernel::{all_finite, Kernel};
use crate::registry;
use crate::schedule::Schedule;
use crate::tensor::{numel, GradSet, ParamInfo, ParamSet, SampleGrads};
use crate::transform::Transform;

/// What to do when a gradient holds NaN or an infinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFinite {
    /// The step fails with [`Error::NonFiniteGradient`] naming the parameter; nothing changes.
    #[default]
    Error,
    /// Parameters and state are left untouched and the skipped-step counter increases.
    Skip,
    /// No check: NaN and infinities flow into the update as in PyTorch (whose
    /// optimizers do not look). Saves one read of every gradient per step,
    /// about 1/8 of an Adam step's memory traffic; use when the gradients are
    /// known to be finite (e.g. checked already by a loss scaler).
    Unchecked,
}

impl NonFinite {
    /// Parses `"error"`, `"skip"` or `"unchecked"`.
    pub fn parse(s: &str) -> Option<NonFinite> {
        match s {
            "error" => Some(NonFinite::Error),
            "skip" => Some(NonFinite::Skip),
            "unchecked" => Some(NonFinite::Unchecked),
            _ => None,
        }
    }
    /// `"error"`, `"skip"` or `"unchecked"`.
    pub fn name(self) -> &'static str {
        match self {
            NonFinite::Error => "error",
            NonFinite::Skip => "skip",
            NonFinite::Unchecked => "unchecked",
        }
    }
}

/// Which parameters a group takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Select {
    /// Exactly these parameter names (each must exist).
    Names(Vec<String>),
    /// Names matching a glob pattern (`*` any run of characters, `?` one character).
    Pattern(String),
    /// Parameters of this rank (`shape.len()`).
    Rank(usize),
    /// Parameters of exactly this shape.
    Shape(Vec<usize>),
}

impl Select {
    fn matches(&self, p: &ParamInfo) -> bool {
        self.matches_parts(&p.name, &p.shape)
    }
    /// Whether a parameter with this name and shape is selected.
    pub fn matches_parts(&self, name: &str, shape: &[usize]) -> bool {
        match self {
            Select::Names(v) => v.iter().any(|n| n == name),
            Select::Pattern(g) => glob_match(g.as_bytes(), name.as_bytes()),
            Select::Rank(r) => shape.len() == *r,
            Select::Shape(s) => shape == s.as_slice(),
        }
    }
}

fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    // Iterative matcher with single-star backtracking: O(len(pat) * len(s)) worst case.
    let (mut p, mut i, mut star, mut mark) = (0, 0, None, 0);
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some(p);
            mark = i;
            p += 1;
        } else if let Some(sp) = star {
            p = sp + 1;
            mark += 1;
            i = mark;
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// A parameter group: a selector and the hyperparameters it overrides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupSpec {
    /// Which parameters (a group naming a parameter explicitly wins; otherwise the first match).
    pub select: Select,
    /// Overrides of the optimizer's base hyperparameters.
    pub hyper: Hyper,
}

impl GroupSpec {
    /// A group of named parameters.
    pub fn names<S: Into<String>>(names: impl IntoIterator<Item = S>, hyper: Hyper) -> Self {
        GroupSpec {
            select: Select::Names(names.into_iter().map(Into::into).collect()),
            hyper,
        }
    }
}

/// Per-parameter optimizer state.
#[derive(Clone, Debug)]
pub struct ParamState<F> {
    /// Updates applied to this parameter so far.
    pub step: u64,
    /// State buffers, in the order of the algorithm's slots.
    pub slots: Vec<Vec<F>>,
    /// Scratch memory of the algorithm (not saved).
    pub work: Workspace<F>,
}

impl<F: PartialEq> PartialEq for ParamState<F> {
    /// Equal steps and slots (the workspace holds nothing that survives a step).
    fn eq(&self, other: &Self) -> bool {
        self.step == other.step && self.slots == other.slots
    }
}

/// Whether a step was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// Parameters and state were updated.
    Applied,
    /// A gradient was non-finite under [`NonFinite::Skip`]; nothing changed.
    Skipped,
}

/// What a step gets besides the mean gradients, for algorithms that need more
/// (see [`Optimizer::needs`]). `Default` is nothing, which is what
/// [`Optimizer::step`] passes.
#[derive(Debug)]
pub struct StepInputs<'a, F> {
    /// The loss at the parameters the gradients were taken at (AEGD).
    pub loss: Option<f64>,
    /// Per-sample gradients of the parameters (DP-SGD, GSNR). Gradient
    /// transforms (clipping, L2) apply to the mean gradients only, not to these.
    pub sample_grads: Option<&'a SampleGrads<F>>,
}

impl<F> Default for StepInputs<'_, F> {
    fn default() -> Self {
        StepInputs {
            loss: None,
            sample_grads: None,
        }
    }
}

impl<F> Clone for StepInputs<'_, F> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<F> Copy for StepInputs<'_, F> {}

#[derive(Clone, Debug)]
pub(crate) struct Registered {
    pub(crate) info: ParamInfo,
    pub(crate) group: usize,
}

/// Everything that configures an optimizer, before it meets its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerSpec {
    /// Registry name.
    pub name: String,
    /// Base hyperparameters (missing keys take the optimizer's defaults).
    pub hyper: Hyper,
    /// Parameter groups with overrides.
    pub groups: Vec<GroupSpec>,
    /// Gradient transforms, in order.
    pub transforms: Vec<Transform>,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Non-finite gradient policy.
    pub nonfinite: NonFinite,
    /// Kernel choice.
    pub kernel: Kernel,
}

impl OptimizerSpec {
    /// The optimizer `name` with base hyperparameters `hyper` and nothing else.
    pub fn new(name: &str, hyper: &Hyper) -> Self {
        OptimizerSpec {
            name: name.to_string(),
            hyper: hyper.clone(),
            groups: Vec::new(),
            transforms: Vec::new(),
            schedule: Schedule::Constant,
            nonfinite: NonFinite::Error,
            kernel: Kernel::Fused,
        }
    }
    /// Adds a parameter group.
    pub fn group(mut self, g: GroupSpec) -> Self {
        self.groups.push(g);
        self
    }
    /// Appends a transform.
    pub fn transform(mut self, t: Transform) -> Self {
        self.transforms.push(t);
        self
    }
    /// Sets the schedule.
    pub fn schedule(mut self, s: Schedule) -> Self {
        self.schedule = s;
        self
    }
    /// Sets the non-finite policy.
    pub fn nonfinite(mut self, p: NonFinite) -> Self {
        self.nonfinite = p;
        self
    }
    /// Sets the kernel.
    pub fn kernel(mut self, k: Kernel) -> Self {
        self.kernel = k;
        self
    }
    /// Validates everything and binds the optimizer to these parameters.
    pub fn build<F: Float>(self, params: &ParamSet<F>) -> Result<Optimizer<F>> {
        Optimizer::from_spec(self, &params.infos())
    }
}

/// An optimizer bound to a set of named parameters.
#[derive(Debug)]
pub struct Optimizer<F: Float> {
    pub(crate) spec: OptimizerSpec,
    pub(crate) algs: Vec<Box<dyn DynAlgorithm>>,
    pub(crate) params: Vec<Registered>,
    pub(crate) index: HashMap<String, usize>,
    pub(crate) state: BTreeMap<String, ParamState<F>>,
    pub(crate) steps: u64,
    pub(crate) skipped: u64,
    /// Per-sample joint gradient norms of the current step (reused buffer).
    pub(crate) sample_norms: Vec<f64>,
    /// Per-parameter sums of squares of the current step's gradients, in
    /// registration order (NaN for a parameter without one; reused buffer;
    /// empty when no algorithm needs the global norm).
    pub(crate) grad_sq: Vec<f64>,
    /// A caller-set multiplier on every group's lr, on top of the schedule (1 unless set).
    pub(crate) lr_scale: f64,
}

impl<F: Float> Optimizer<F> {
    /// The optimizer `name` with hyperparameters `hyper` over `params` (one group, no transforms).
    pub fn new(name: &str, hyper: &Hyper, params: &ParamSet<F>) -> Result<Self> {
        OptimizerSpec::new(name, hyper).build(params)
    }

    /// Builds from a spec and the parameters' names and shapes.
    pub fn from_spec(spec: OptimizerSpec, infos: &[ParamInfo]) -> Result<Self> {
        let entry = registry::lookup(&spec.name)?;
        let mut algs = vec![(entry.build)(&spec.hyper)?];
        for (gi, g) in spec.groups.iter().enumerate() {
            // Validate the group's overrides as given, then build it without the
            // construction-time keys it cannot change (see `Entry::base_only`).
            let mut full = spec.hyper.clone();
            full.extend(g.hyper.clone());
            let mut h = spec.hyper.clone();
            h.extend(
                g.hyper
                    .iter()
                    .filter(|(k, _)| !entry.base_only.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            let alg = (entry.build)(&full)
                .and_then(|_| (entry.build)(&h))
                .map_err(|e| match e {
                    Error::InvalidHyper {
                        optimizer,
                        field,
                        message,
                    } => Error::InvalidHyper {
                        optimizer: format!("{optimizer} (group {})", gi + 1),
                        field,
                        message,
                    },
                    e => e,
                })?;
            algs.push(alg);
        }
        for t in &spec.transforms {
            t.validate()?;
        }
        spec.schedule.validate()?;
        let mut index = HashMap::new();
        for info in infos {
            if numel(&info.shape).is_none() {
                return Err(Error::param(&info.name, format!("shape {:?} overflows", info.shape)));
            }
            if index.insert(info.name.clone(), index.len()).is_some() {
                return Err(Error::param(&info.name, "duplicate parameter name"));
            }
        }
        // Explicit names must exist and may appear in one group only.
        let mut claimed: HashMap<&str, usize> = HashMap::new();
        for (gi, g) in spec.groups.iter().enumerate() {
            if let Select::Names(names) = &g.select {
                for n in names {
                    if !index.contains_key(n) {
                        return Err(Error::param(
                            n,
                            format!("listed in group {} but not a parameter", gi + 1),
                        ));
                    }
                    if let Some(prev) = claimed.insert(n, gi) {
                        return Err(Error::param(n, format!("listed in groups {} and {}", prev + 1, gi + 1)));
                    }
                }
            }
        }
        let params = infos
            .iter()
            .map(|info| Registered {
                info: info.clone(),
                // A group that names the parameter explicitly wins; otherwise the
                // first group whose pattern, rank or shape matches.
                group: claimed
                    .get(info.name.as_str())
                    .copied()
                    .or_else(|| spec.groups.iter().position(|g| g.select.matches(info)))
                    .map_or(0, |g| g + 1),
            })
            .collect::<Vec<Registered>>();
        for r in &params {
            algs[r.group].check_param(&r.info)?;
        }
        Ok(Optimizer {
            spec,
            algs,
            params,
            index,
            state: BTreeMap::new(),
            steps: 0,
            skipped: 0,
            sample_norms: Vec::new(),
            grad_sq: Vec::new(),
            lr_scale: 1.0,
        })
    }

    /// Registry name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }
    /// The configuration.
    pub fn spec(&self) -> &OptimizerSpec {
        &self.spec
    }
    /// Full hyperparameters (defaults filled in) of group `g` (0 = base group).
    pub fn group_hyper(&self, g: usize) -> Option<Hyper> {
        self.algs.get(g).map(|a| a.hyper())
    }
    /// Group index of each parameter (0 = base group), in registration order.
    pub fn groups_of(&self) -> Vec<(String, usize)> {
        self.params.iter().map(|r| (r.info.name.clone(), r.group)).collect()
    }
    /// Optimizer steps applied.
    pub fn steps(&self) -> u64 {
        self.steps
    }
    /// Steps skipped for non-finite gradients.
    pub fn skipped_steps(&self) -> u64 {
        self.skipped
    }
    /// State of one parameter (`None` until its first update).
    pub fn param_state(&self, name: &str) -> Option<&ParamState<F>> {
        self.state.get(name)
    }
    /// Chooses the kernel (fused by default).
    pub fn set_kernel(&mut self, k: Kernel) {
        self.spec.kernel = k;
    }
    /// Sets the non-finite gradient policy.
    pub fn set_nonfinite(&mut self, p: NonFinite) {
        self.spec.nonfinite = p;
    }
    /// The learning-rate factor the schedule gives the next step.
    pub fn lr_factor(&self) -> f64 {
        self.spec.schedule.factor(self.steps) * self.lr_scale
    }
    /// Sets a multiplier on every group's lr for the following steps, on top of the
    /// schedule (used by outer optimizers whose step size varies by round, e.g. FedOpt).
    pub fn set_lr_scale(&mut self, scale: f64) {
        self.lr_scale = scale;
    }
    /// Inputs beyond the gradients that every step must bring (the union over groups).
    pub fn needs(&self) -> Needs {
        self.algs.iter().fold(Needs::default(), |n, a| n.union(a.needs()))
    }
    /// Names and shapes of the bound parameters.
    pub fn param_infos(&self) -> Vec<ParamInfo> {
        self.params.iter().map(|r| r.info.clone()).collect()
    }

    fn check_inputs(&self, params: &ParamSet<F>, grads: &GradSet<F>) -> Result<()> {
        for r in &self.params {
            match params.get(&r.info.name) {
                None => return Err(Error::param(&r.info.name, "missing from the parameter set")),
                Some(p) if p.shape != r.info.shape => {
                    return Err(Error::param(
                        &r.info.name,
                        format!("shape {:?} differs from the optimizer's {:?}", p.shape, r.info.shape),
                    ))
                }
                Some(p) if Some(p.data.len()) != numel(&p.shape) => {
                    return Err(Error::param(
                        &r.info.name,
                        format!(
                            "holds {} values, its shape {:?} needs {:?}",
                            p.data.len(),
                            p.shape,
                            numel(&p.shape)
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        for name in grads.names() {
            let Some(&i) = self.index.get(name) else {
                return Err(Error::param(
                    name,
                    "has a gradient but is not a parameter of this optimizer",
                ));
            };
            let want = numel(&self.params[i].info.shape).unwrap_or(0);
            let got = grads.get(name).map_or(0, <[F]>::len);
            if got != want {
                return Err(Error::param(
                    name,
                    format!("gradient has {got} values, parameter has {want}"),
                ));
            }
        }
        Ok(())
    }

    /// Per group, the maximum of the algorithm's [`crate::Algorithm::group_stat`] over
    /// the parameters with a gradient this step, before any is updated (NaN where
    /// the group's algorithm does not ask for it; empty, without allocating, if none does).
    fn group_stats(
        &mut self,
        params: &mut ParamSet<F>,
        grads: &GradSet<F>,
        factor: f64,
        global_grad_norm: f64,
    ) -> Vec<f64> {
        if !self.algs.iter().any(|a| a.needs_group_stat()) {
            return Vec::new();
        }
        let mut stats = vec![f64::NAN; self.algs.len()];
        for r in &self.params {
            let alg = &self.algs[r.group];
            if !alg.needs_group_stat() {
                continue;
            }
            let name = r.info.name.as_str();
            let Some(grad) = grads.get(name) else { continue };
            let Some(param) = params.data_mut(name) else { continue };
            let Some(st) = self.state.get_mut(name) else { continue };
            let ctx = StepCtx {
                lr: alg.lr() * factor,
                step: st.step.saturating_add(1),
                lr_factor: factor,
                global_step: self.steps.saturating_add(1),
                global_grad_norm,
                grad_sq: f64::NAN,
                group_stat: f64::NAN,
                slot_norm: f64::NAN,
                loss: None,
            };
            let v = F::group_stat_dyn(
                alg.as_ref(),
                self.spec.kernel,
                &ctx,
                TensorMut {
                    name,
                    shape: &r.info.shape,
                    param,
                    grad,
                    slots: &mut st.slots,
                    work: &mut st.work,
                    samples: crate::algorithm::Samples::none(),
                },
            );
            stats[r.group] = stats[r.group].max(v);
        }
        stats
    }

    /// Fills [`Optimizer::grad_sq`]: each parameter's gradient sum of squares
    /// (NaN without a gradient), in registration order.
    fn fill_grad_sq(&mut self, grads: &GradSet<F>) {
        self.grad_sq.clear();
        self.grad_sq.extend(
            self.params
                .iter()
                .map(|r| grads.get(&r.info.name).map_or(f64::NAN, crate::kernel::sum_squares)),
        );
    }

    /// One optimizer step. Parameters without a gradient in `grads` are frozen
    /// this step: untouched, and their step counters do not advance. Gradient
    /// transforms (clipping, L2) modify `grads` in place.
    pub fn step(&mut self, params: &mut ParamSet<F>, grads: &mut GradSet<F>) -> Result<StepOutcome> {
        self.step_with(params, grads, StepInputs::default())
    }

    /// Checks the extra inputs against what the algorithms need; `Ok(false)`
    /// means a non-finite input under [`NonFinite::Skip`].
    fn check_step_inputs(&self, grads: &GradSet<F>, inputs: StepInputs<'_, F>) -> Result<bool> {
        let needs = self.needs();
        let who = self.spec.name.as_str();
        match inputs.loss {
            None if needs.loss => {
                return Err(Error::step_input(
                    who,
                    "loss",
                    "required on every step (the loss at the parameters the gradients were taken at)",
                ))
            }
            // A loss nothing needs is ignored.
            Some(_) if !needs.loss => {}
            Some(l) if !l.is_finite() && self.spec.nonfinite != NonFinite::Unchecked => {
                return match self.spec.nonfinite {
                    NonFinite::Skip => Ok(false),
                    _ => Err(Error::step_input(who, "loss", format!("{l} is not finite"))),
                }
            }
            Some(l) => {
                for a in &self.algs {
                    a.check_loss(l)?;
                }
            }
            None => {}
        }
        let Some(sg) = inputs.sample_grads else {
            if needs.sample_grads {
                return Err(Error::step_input(
                    who,
                    "sample_grads",
                    "required on every step (per-sample gradients of every parameter with a gradient)",
                ));
            }
            return Ok(true);
        };
        let mut count: Option<(usize, &str)> = None;
        let mut names: Vec<&str> = sg.names().collect();
        names.sort_unstable();
        for name in names {
            let what = format!("sample_grads.{name}");
            let Some(&i) = self.index.get(name) else {
                return Err(Error::step_input(who, &what, "not a parameter of this optimizer"));
            };
            let samples = sg.get(name).unwrap_or(&[]);
            match count {
                Some((n, first)) if n != samples.len() => {
                    return Err(Error::step_input(
                        who,
                        &what,
                        format!("{} samples, but `{first}` has {n}", samples.len()),
                    ))
                }
                None => count = Some((samples.len(), name)),
                _ => {}
            }
            let want = numel(&self.params[i].info.shape).unwrap_or(0);
            for (s, x) in samples.iter().enumerate() {
                if x.len() != want {
                    return Err(Error::step_input(
                        who,
                        &what,
                        format!("sample {s} has {} values, the parameter has {want}", x.len()),
                    ));
                }
            }
        }
        if needs.sample_grads {
            if count.is_some_and(|(n, _)| n == 0) {
                return Err(Error::step_input(
                    who,
                    "sample_grads",
                    "at least one sample is required",
                ));
            }
            for r in &self.params {
                if grads.get(&r.info.name).is_some() && sg.get(&r.info.name).is_none() {
                    return Err(Error::step_input(
                        who,
                        &format!("sample_grads.{}", r.info.name),
                        "missing: the parameter has a gradient this step",
                    ));
                }
            }
        }
        Ok(true)
    }

    /// One optimizer step with inputs beyond the gradients: the loss and
    /// per-sample gradients, for algorithms whose [`Optimizer::needs`] ask for
    /// them (a required input that is missing is an [`Error::StepInput`]).
    /// Otherwise the same as [`Optimizer::step`], which is
    /// `step_with(params, grads, StepInputs::default())`. A non-finite loss (when
    /// needed) or per-sample gradient follows the non-finite policy like a
    /// gradient; a loss no algorithm needs is ignored, per-sample gradients are
    /// checked against the parameters whenever given.
    pub fn step_with(
        &mut self,
        params: &mut ParamSet<F>,
        grads: &mut GradSet<F>,
        inputs: StepInputs<'_, F>,
    ) -> Result<StepOutcome> {
        self.check_inputs(params, grads)?;
        if !self.check_step_inputs(grads, inputs)? {
            self.skipped = self.skipped.saturating_add(1);
            return Ok(StepOutcome::Skipped);
        }
        // The whole step is checked before anything changes, so an error or a
        // skip leaves parameters and state exactly as they were.
        let check = self.spec.nonfinite != NonFinite::Unchecked;
        let needs_norm = self.algs.iter().any(|a| a.needs_global_grad_norm());
        // With the global norm needed and no transform to change the gradients
        // first, one read pass gives both: a finite sum of squares means every
        // element is finite; a non-finite one (a non-finite element, or an f64
        // overflow) is settled by the exact check.
        let fuse = check && needs_norm && self.spec.transforms.is_empty();
        if fuse {
            self.fill_grad_sq(grads);
        }
        let grad_sq = &self.grad_sq;
        let bad = check
            .then(|| {
                self.params.iter().enumerate().find(|(i, r)| {
                    samples_for(grads, inputs, &r.info.name).iter().any(|x| !all_finite(x))
                        || grads
                            .get(&r.info.name)
                            .is_some_and(|g| !((fuse && grad_sq[*i].is_finite()) || all_finite(g)))
                })
            })
            .flatten()
            .map(|(_, r)| r);
        if let Some(r) = bad {
            return match self.spec.nonfinite {
                NonFinite::Skip => {
                    self.skipped = self.skipped.saturating_add(1);
                    Ok(StepOutcome::Skipped)
                }
                _ => Err(Error::NonFiniteGradient {
                    name: r.info.name.clone(),
                }),
            };
        }
        for t in &self.spec.transforms {
            t.apply_grads(params, grads);
        }
        let factor = self.spec.schedule.factor(self.steps) * self.lr_scale;
        let global_grad_norm = if needs_norm {
            if !fuse {
                self.fill_grad_sq(grads);
            }
            self.params
                .iter()
                .zip(&self.grad_sq)
                .filter(|(r, _)| grads.get(&r.info.name).is_some())
                .map(|(_, &s)| s)
                .sum::<f64>()
                .sqrt()
        } else {
            self.grad_sq.clear();
            f64::NAN
        };
        // Per-sample norms over all parameters updated this step, in registration order.
        self.sample_norms.clear();
        if self.needs().sample_grads {
            for r in &self.params {
                for (s, x) in samples_for(grads, inputs, &r.info.name).iter().enumerate() {
                    if self.sample_norms.len() <= s {
                        self.sample_norms.push(0.0);
                    }
                    self.sample_norms[s] += crate::kernel::sum_squares(x);
                }
            }
            for n in &mut self.sample_norms {
                *n = n.sqrt();
            }
        }
        // The norm of a state slot over the parameters updated this step, before any update.
        let slot_norm = match self.needs().slot_norm {
            None => f64::NAN,
            Some(slot) => self
                .params
                .iter()
                .filter(|r| grads.get(&r.info.name).is_some())
                .filter_map(|r| {
                    let st = self.state.get(&r.info.name)?;
                    let k = self.algs[r.group].slots(&r.info).iter().position(|s| s.name == slot)?;
                    st.slots.get(k).map(|x| crate::kernel::sum_squares(x))
                })
                .sum::<f64>()
                .sqrt(),
        };
        let kernel = self.spec.kernel;
        for r in &self.params {
            let name = r.info.name.as_str();
            let Some(grad) = grads.get(name) else { continue };
            if !self.state.contains_key(name) {
                // First gradient of this parameter: allocate its state (the only allocation of a step).
                let slots = self.algs[r.group]
                    .slots(&r.info)
                    .iter()
                    .map(|s| crate::mem::filled(s.len(grad.len()), F::from_f64(s.init)))
                    .collect();
                self.state.insert(
                    r.info.name.clone(),
                    ParamState {
                        step: 0,
                        slots,
                        work: Workspace::default(),
                    },
                );
            }
        }
        let group_stats = self.group_stats(params, grads, factor, global_grad_norm);
        // One job per parameter with a gradient. Jobs touch disjoint buffers and
        // read only shared, immutable inputs, so they run in parallel (each
        // kernel parallelizes inside too; rayon nests) with results that do not
        // depend on the order or the thread count.
        let mut data: HashMap<&str, &mut [F]> = params
            .params_mut()
            .iter_mut()
            .map(|p| (p.name.as_str(), p.data.as_mut_slice()))
            .collect();
        let mut states: HashMap<&str, &mut ParamState<F>> =
            self.state.iter_mut().map(|(k, v)| (k.as_str(), v)).collect();
        let mut jobs = Vec::with_capacity(self.params.len());
        for (i, r) in self.params.iter().enumerate() {
            let name = r.info.name.as_str();
            let Some(grad) = grads.get(name) else { continue };
            let (Some(param), Some(st)) = (data.remove(name), states.remove(name)) else {
                continue;
            };
            let sq = self.grad_sq.get(i).copied().unwrap_or(f64::NAN);
            jobs.push((r, param, grad, st, sq));
        }
        let (algs, transforms, sample_norms) = (&self.algs, &self.spec.transforms, &self.sample_norms);
        let global_step = self.steps.saturating_add(1);
        #[allow(clippy::type_complexity)]
        let run = |(r, param, grad, st, grad_sq): &mut (&Registered, &mut [F], &[F], &mut ParamState<F>, f64)| {
            let name = r.info.name.as_str();
            let alg = &algs[r.group];
            st.step = st.step.saturating_add(1);
            let ctx = StepCtx {
                lr: alg.lr() * factor,
                step: st.step,
                lr_factor: factor,
                global_step,
                global_grad_norm,
                grad_sq: *grad_sq,
                group_stat: group_stats.get(r.group).copied().unwrap_or(f64::NAN),
                slot_norm,
                loss: inputs.loss,
            };
            // Decoupled decay uses the learning rate of the algorithm that updates this
            // parameter (a partition routes parameters to algorithms with other lrs).
            let own_lr = alg.lr_for(name, &r.info.shape) * factor;
            for t in transforms {
                t.apply_param(own_lr, param);
            }
            let g = samples_for(grads, inputs, name);
            F::step_dyn(
                alg.as_ref(),
                kernel,
                &ctx,
                TensorMut {
                    name,
                    shape: &r.info.shape,
                    param,
                    grad,
                    slots: &mut st.slots,
                    work: &mut st.work,
                    samples: Samples {
                        grads: g,
                        norms: if g.is_empty() { &[] } else { sample_norms },
                    },
                },
            );
        };
        let total: usize = jobs.iter().map(|j| j.2.len()).sum();
        if jobs.len() > 1 && total >= crate::kernel::PAR_MIN && rayon::current_num_threads() > 1 {
            use rayon::prelude::*;
            jobs.par_iter_mut().for_each(run);
        } else {
            jobs.iter_mut().for_each(run);
        }
        self.steps = self.steps.saturating_add(1);
        Ok(StepOutcome::Applied)
    }
}

/// The per-sample gradients a parameter's kernel sees: none for a frozen parameter.
fn samples_for<'a, F: Float>(grads: &GradSet<F>, inputs: StepInputs<'a, F>, name: &str) -> &'a [Vec<F>] {
    match (grads.get(name), inputs.sample_grads) {
        (Some(_), Some(sg)) => sg.get(name).unwrap_or(&[]),
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn glob() {
        assert!(glob_match(b"*.bias", b"layer1.bias"));
        assert!(glob_match(b"embed*", b"embed"));
        assert!(glob_match(b"l?.w", b"l1.w"));
        assert!(!glob_match(b"l?.w", b"l12.w"));
        assert!(glob_match(b"*a*b*", b"xxaxxbxx"));
        assert!(!glob_match(b"*.bias", b"layer1.weight"));
    }
}
