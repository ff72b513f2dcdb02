//! Cautious: keep only the coordinates of an optimizer's update that agree in
//! sign with the current gradient, and rescale.
//!
//! Paper: Liang, Chen, Liu & Liu, *"Cautious Optimizers: Improving Training
//! with One Line of Code"* (Algorithm 1 and the C-AdamW / C-Lion pseudo-code).
//! For a base optimizer whose step is `θ ← θ·decay − γ u`:
//! ```text
//! φ = 1[u ∘ g > 0]                              (mask, per coordinate)
//! θ ← θ·decay − γ · s(φ) · (u ∘ φ)              (s rescales, per tensor)
//! ```
//! The references differ in the mask and the scale, so both are parameters:
//! - `caution_mask`: `"product_positive"` (`u·g > 0`: the paper, pytorch-optimizer;
//!   default) or `"signbit_equal"` (IEEE sign bits equal, so a `+0` gradient
//!   keeps a non-negative update: heavyball).
//! - `caution_scale`: `"numel_over_kept_plus_one"` (`n/(k+1)`, the paper's
//!   pseudo-code `d/(nnz+1)`; default), `"numel_over_kept"` (`n/max(k,1)`:
//!   heavyball) or `"inv_mean_clamped"` (`1/max(k/n, 1e-3)`: timm).
//!
//! Any algorithm that can report its update direction ([`Direction`]) can be
//! wrapped; the registry's `c-adamw` wraps AdamW (with the knobs that make it
//! heavyball's AdamW, the reference: see [`AdamKnobs`]) and `c-lion` wraps
//! Lion (pytorch-optimizer's `Lion(cautious=True)` is the reference). Decay is
//! never masked. The mask compares against the gradient the base optimizer
//! used (after `maximize` and coupled L2, as pytorch-optimizer does).

use crate::algorithm::{Algorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::Result;
use crate::hyper::{num, pair_value, Hyper, HyperReader};
use crate::kernel::{zip_chunks, PAR_MIN};
use crate::ops::{add_scaled, addcmul, Lerp};
use crate::optim::{Adam, Lion};
use crate::real::Real;
use crate::tensor::ParamInfo;

/// How the base optimizer's update is applied once masked.
#[derive(Clone, Copy, Debug)]
pub struct Apply {
    /// Multiplier of the parameter (decoupled weight decay; 1 for none).
    pub decay: f64,
    /// Step size γ: `θ ← θ·decay − γ u'`.
    pub lr: f64,
    /// Fuse `θ·decay − γ u'` as `fma(u', −γ, θ·decay)` (PyTorch `add(alpha=)`),
    /// or round `θ·decay` and `u'·(−γ)` separately and add (heavyball).
    pub fma: bool,
}

/// One coordinate of a base optimizer's step as a pure function of the
/// parameter, the gradient and the coordinate's state. A wrapper can evaluate
/// it without writing anything (to count a mask over the tensor), then again
/// while applying the step: the base owns the math, the wrapper the loops.
pub trait Pointwise<F>: Copy + Send + Sync {
    /// Whether [`Pointwise::at`] reads the parameter (coupled L2 decay). When
    /// it does not, loops may pass zero for `p` and skip reading the parameter.
    fn reads_param(&self) -> bool;
    /// The direction `u` (the plain step is `θ ← θ·decay − lr·u`) and the
    /// effective gradient `g_eff` the mask compares against, at one coordinate
    /// with parameter `p` and gradient `g`; advances the coordinate's state
    /// `s` (`s[k]` is slot `k`; a base with one slot ignores `s[1]`).
    fn at(&self, p: F, g: F, s: &mut [F; 2]) -> (F, F);
}

/// Receives a base's per-coordinate rule as a concrete type, so the loops
/// that run it are compiled for that rule (and its flags) alone.
pub trait Visit<F: Float> {
    /// What the visit returns.
    type Out;
    /// Runs with the rule `pt` and how the update is applied.
    fn run<P: Pointwise<F>>(self, pt: P, ap: Apply) -> Self::Out;
}

/// An algorithm that can report its update direction instead of applying it:
/// a per-coordinate rule ([`Pointwise`]) over one or two parameter-shaped
/// state slots, and how the update is applied ([`Apply`]).
pub trait Direction: Algorithm {
    /// Hands this step's rule, scalars folded in, to `v`. A base with
    /// loop-invariant flags hands over a rule specialized for them (constant
    /// generics), so that no loop re-tests a flag per coordinate.
    fn visit<F: Float, V: Visit<F>>(&self, ctx: &StepCtx, v: V) -> V::Out;

    /// Advances the state for this step and writes the direction `u` and the
    /// gradient `g_eff` the mask compares against, for every coordinate.
    /// Leaves the parameter unchanged.
    fn direction<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>, u: &mut [F], g_eff: &mut [F]) -> Apply {
        self.visit(ctx, Directions { t, u, g_eff })
    }
}

/// The visit behind [`Direction::direction`].
struct Directions<'a, 'b, F> {
    t: TensorMut<'a, F>,
    u: &'b mut [F],
    g_eff: &'b mut [F],
}

impl<F: Float> Visit<F> for Directions<'_, '_, F> {
    type Out = Apply;
    fn run<P: Pointwise<F>>(self, pt: P, ap: Apply) -> Apply {
        let Directions { t, u, g_eff } = self;
        match t.slots {
            [m] => zip_chunks(t.param, t.grad, [u, g_eff, &mut m[..]], move |p, g, [u, ge, m]| {
                let n = p.len();
                let (g, u, ge, m) = (&g[..n], &mut u[..n], &mut ge[..n], &mut m[..n]);
                for i in 0..n {
                    let mut s = [m[i], F::ZERO];
                    (u[i], ge[i]) = pt.at(p[i], g[i], &mut s);
                    m[i] = s[0];
                }
            }),
            [m, v] => zip_chunks(
                t.param,
                t.grad,
                [u, g_eff, &mut m[..], &mut v[..]],
                move |p, g, [u, ge, m, v]| {
                    let n = p.len();
                    let (g, u, ge, m, v) = (&g[..n], &mut u[..n], &mut ge[..n], &mut m[..n], &mut v[..n]);
                    for i in 0..n {
                        let mut s = [m[i], v[i]];
                        (u[i], ge[i]) = pt.at(p[i], g[i], &mut s);
                        m[i] = s[0];
                        v[i] = s[1];
                    }
                },
            ),
            _ => unreachable!("a Direction base has one or two parameter-shaped slots"),
        }
        ap
    }
}

/// How many coordinates `keep` retains, evaluating the base's rule on copies
/// of the state (nothing is written). Reads the gradient, the state and (only
/// if the rule needs it) the parameter: one read pass, parallel over chunks.
fn count_kept<F: Float, P: Pointwise<F>>(
    pt: P,
    keep: impl Fn(F, F) -> bool + Copy + Send + Sync,
    p: &[F],
    g: &[F],
    slots: &[Vec<F>],
) -> usize {
    let n = g.len();
    let (a, b, two) = match slots {
        [m] => (&m[..], &m[..], false),
        [m, v] => (&m[..], &v[..], true),
        _ => unreachable!("a Direction base has one or two parameter-shaped slots"),
    };
    assert!(
        p.len() == n && a.len() == n && b.len() == n,
        "count_kept: buffers of different lengths"
    );
    let read_p = pt.reads_param();
    let range = move |r: std::ops::Range<usize>| -> usize {
        let (p, g, a, b) = (&p[r.clone()], &g[r.clone()], &a[r.clone()], &b[r]);
        match (read_p, two) {
            (false, false) => count_range::<F, P, false, false>(pt, keep, p, g, a, b),
            (false, true) => count_range::<F, P, false, true>(pt, keep, p, g, a, b),
            (true, false) => count_range::<F, P, true, false>(pt, keep, p, g, a, b),
            (true, true) => count_range::<F, P, true, true>(pt, keep, p, g, a, b),
        }
    };
    if n < PAR_MIN {
        return range(0..n);
    }
    use rayon::prelude::*;
    let chunks = n.div_ceil(crate::kernel::CHUNK);
    (0..chunks)
        .into_par_iter()
        .map(|c| range(c * crate::kernel::CHUNK..((c + 1) * crate::kernel::CHUNK).min(n)))
        .sum()
}

#[inline(always)]
fn count_range<F: Float, P: Pointwise<F>, const READ_P: bool, const TWO: bool>(
    pt: P,
    keep: impl Fn(F, F) -> bool,
    p: &[F],
    g: &[F],
    a: &[F],
    b: &[F],
) -> usize {
    let n = g.len();
    let (p, a, b) = (&p[..n], &a[..n], &b[..n]);
    // A 32-bit count vectorizes twice as wide as a 64-bit one; a range is at
    // most one chunk or fewer than `PAR_MIN` elements, far below `u32::MAX`.
    debug_assert!(n <= u32::MAX as usize);
    let mut k = 0u32;
    for i in 0..n {
        let pi = if READ_P { p[i] } else { F::ZERO };
        let mut s = [a[i], if TWO { b[i] } else { F::ZERO }];
        let (u, ge) = pt.at(pi, g[i], &mut s);
        k += keep(u, ge) as u32;
    }
    k as usize
}

/// Which coordinates survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mask {
    /// `u·g > 0`.
    ProductPositive,
    /// Equal IEEE sign bits.
    SignbitEqual,
}

/// How the surviving coordinates are rescaled (`n` elements, `k` kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// `n / (k + 1)`.
    NumelOverKeptPlusOne,
    /// `n / max(k, 1)`.
    NumelOverKept,
    /// `1 / max(k/n, 1e-3)`.
    InvMeanClamped,
}

impl Mask {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "product_positive" => Some(Mask::ProductPositive),
            "signbit_equal" => Some(Mask::SignbitEqual),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Mask::ProductPositive => "product_positive",
            Mask::SignbitEqual => "signbit_equal",
        }
    }
    #[inline(always)]
    fn keep<F: Real>(self, u: F, g: F) -> bool {
        match self {
            Mask::ProductPositive => u * g > F::ZERO,
            Mask::SignbitEqual => (u.to_f64().is_sign_negative()) == (g.to_f64().is_sign_negative()),
        }
    }
}

impl Scale {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "numel_over_kept_plus_one" => Some(Scale::NumelOverKeptPlusOne),
            "numel_over_kept" => Some(Scale::NumelOverKept),
            "inv_mean_clamped" => Some(Scale::InvMeanClamped),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Scale::NumelOverKeptPlusOne => "numel_over_kept_plus_one",
            Scale::NumelOverKept => "numel_over_kept",
            Scale::InvMeanClamped => "inv_mean_clamped",
        }
    }
    /// The factor for `k` kept of `n`.
    pub fn factor(self, n: usize, k: usize) -> f64 {
        let (n, k) = (n as f64, k as f64);
        match self {
            Scale::NumelOverKeptPlusOne => n / (k + 1.0),
            Scale::NumelOverKept => n / k.max(1.0),
            Scale::InvMeanClamped => 1.0 / (k / n).max(1e-3),
        }
    }
}

/// The masked update of one coordinate with kept-scale `s`.
#[inline(always)]
fn masked<F: Float>(mask: Mask, ap: Apply, s: F) -> impl Fn(F, F, F) -> F + Copy + Send + Sync {
    let (decay, neg) = (F::from_f64(ap.decay), F::from_f64(-ap.lr));
    move |p: F, u: F, g: F| {
        let v = if mask.keep(u, g) { u * s } else { F::ZERO };
        if ap.fma {
            add_scaled(p * decay, neg, v)
        } else {
            p * decay + v * neg
        }
    }
}

/// The cautious wrapper around a base optimizer `B`.
#[derive(Clone, Debug)]
pub struct Cautious<B> {
    /// Registry name of the recipe (`c-adamw`, `c-lion`).
    pub name: &'static str,
    /// The wrapped optimizer.
    pub base: B,
    /// Mask rule.
    pub mask: Mask,
    /// Scale rule.
    pub scale: Scale,
}

impl<B: Direction> Cautious<B> {
    /// Reads `caution_mask` and `caution_scale` and leaves the rest to the base's parser.
    pub fn from_hyper(name: &'static str, h: &Hyper, base: impl FnOnce(&Hyper) -> Result<B>) -> Result<Self> {
        let mut own = Hyper::new();
        let mut rest = Hyper::new();
        for (k, v) in h {
            if k == "caution_mask" || k == "caution_scale" {
                own.insert(k.clone(), v.clone());
            } else {
                rest.insert(k.clone(), v.clone());
            }
        }
        let mut r = HyperReader::new(name, &own);
        let m = r.string("caution_mask", "product_positive")?;
        let s = r.string("caution_scale", "numel_over_kept_plus_one")?;
        let mask = Mask::parse(&m).ok_or_else(|| {
            r.error(
                "caution_mask",
                format!("expected \"product_positive\" or \"signbit_equal\", got \"{m}\""),
            )
        })?;
        let scale = Scale::parse(&s).ok_or_else(|| {
            r.error(
                "caution_scale",
                format!(
                    "expected \"numel_over_kept_plus_one\", \"numel_over_kept\" or \"inv_mean_clamped\", got \"{s}\""
                ),
            )
        })?;
        r.finish()?;
        let base = base(&rest).map_err(|e| match e {
            crate::error::Error::InvalidHyper { field, message, .. } => {
                crate::error::Error::hyper(name, &field, message)
            }
            e => e,
        })?;
        Ok(Cautious {
            name,
            base,
            mask,
            scale,
        })
    }

    /// Reference: the direction and effective gradient into two buffers, the
    /// mask counted over them, then applied.
    fn reference_step<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let n = t.param.len();
        let (bufs, inner) = t.work.take(2, n);
        let [u, g] = bufs else {
            unreachable!("take(2) returns two buffers")
        };
        let ap = self.base.direction(
            ctx,
            TensorMut {
                name: t.name,
                shape: t.shape,
                param: &mut *t.param,
                grad: t.grad,
                slots: &mut *t.slots,
                work: inner,
                samples: t.samples,
            },
            u,
            g,
        );
        let mask = self.mask;
        let kept = u.iter().zip(g.iter()).filter(|(&u, &g)| mask.keep(u, g)).count();
        let apply = masked(mask, ap, F::from_f64(self.scale.factor(n, kept)));
        for i in 0..n {
            t.param[i] = apply(t.param[i], u[i], g[i]);
        }
    }

    /// Fused: two passes and no buffers ([`CautiousPasses`]).
    fn fused_step<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.base.visit(
            ctx,
            CautiousPasses {
                t,
                mask: self.mask,
                scale: self.scale,
            },
        )
    }
}

/// The fused cautious step: the first pass evaluates the base's rule on
/// copies of the state and only counts the kept coordinates (a read pass over
/// gradient and state); the second re-evaluates it, advances the state and
/// applies the masked, rescaled update. Both evaluate the same arithmetic, so
/// the result equals the reference's to the bit.
struct CautiousPasses<'a, F> {
    t: TensorMut<'a, F>,
    mask: Mask,
    scale: Scale,
}

impl<F: Float> Visit<F> for CautiousPasses<'_, F> {
    type Out = ();
    fn run<P: Pointwise<F>>(self, pt: P, ap: Apply) {
        let CautiousPasses { t, mask, scale } = self;
        let n = t.param.len();
        let kept = match mask {
            Mask::ProductPositive => count_kept(pt, |u: F, g: F| u * g > F::ZERO, t.param, t.grad, t.slots),
            Mask::SignbitEqual => count_kept(pt, |u: F, g: F| Mask::SignbitEqual.keep(u, g), t.param, t.grad, t.slots),
        };
        let apply = masked(mask, ap, F::from_f64(scale.factor(n, kept)));
        match t.slots {
            [m] => zip_chunks(t.param, t.grad, [&mut m[..]], move |p, g, [m]| {
                let n = p.len();
                let (g, m) = (&g[..n], &mut m[..n]);
                for i in 0..n {
                    let mut s = [m[i], F::ZERO];
                    let (u, ge) = pt.at(p[i], g[i], &mut s);
                    m[i] = s[0];
                    p[i] = apply(p[i], u, ge);
                }
            }),
            [m, v] => zip_chunks(t.param, t.grad, [&mut m[..], &mut v[..]], move |p, g, [m, v]| {
                let n = p.len();
                let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
                for i in 0..n {
                    let mut s = [m[i], v[i]];
                    let (u, ge) = pt.at(p[i], g[i], &mut s);
                    m[i] = s[0];
                    v[i] = s[1];
                    p[i] = apply(p[i], u, ge);
                }
            }),
            _ => unreachable!("a Direction base has one or two parameter-shaped slots"),
        }
    }
}

impl<B: Direction> Algorithm for Cautious<B> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn lr(&self) -> f64 {
        self.base.lr()
    }
    fn hyper(&self) -> Hyper {
        let mut h = self.base.hyper();
        h.insert("caution_mask".into(), self.mask.name().into());
        h.insert("caution_scale".into(), self.scale.name().into());
        h
    }
    fn slots(&self, p: &ParamInfo) -> Vec<Slot> {
        self.base.slots(p)
    }
    fn accepts(&self, shape: &[usize]) -> bool {
        self.base.accepts(shape)
    }
    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.reference_step(ctx, t)
    }
    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.fused_step(ctx, t)
    }
}

/// Lion's coordinate: `g_eff` is the prepared gradient (sign, coupled L2).
#[derive(Clone, Copy, Debug)]
pub struct LionPoint<F> {
    c: crate::optim::lion::LionScalars<F>,
    coupled: bool,
}

impl<F: Float> Pointwise<F> for LionPoint<F> {
    fn reads_param(&self) -> bool {
        self.coupled
    }
    #[inline(always)]
    fn at(&self, p: F, g: F, s: &mut [F; 2]) -> (F, F) {
        let c = &self.c;
        let gi = c.prep.apply(g, p);
        let u = add_scaled(s[0] * c.b1, c.omb1, gi).sign();
        s[0] = add_scaled(s[0] * c.b2, c.omb2, gi);
        (u, gi)
    }
}

impl Direction for Lion {
    fn visit<F: Float, V: Visit<F>>(&self, ctx: &StepCtx, v: V) -> V::Out {
        let c = self.scalars::<F>(ctx);
        let coupled = !self.weight_decouple && self.weight_decay != 0.0;
        v.run(
            LionPoint { c, coupled },
            Apply {
                decay: c.decay.to_f64(),
                lr: ctx.lr,
                fma: true,
            },
        )
    }
}

/// AdamW with the options that reproduce heavyball's `AdamW` (C-AdamW's reference):
/// - `bias_correction`: `"divide"` (PyTorch: `m̂ = m/(1-β1^t)`) or
///   `"debiased_beta"` (the state holds `m̂` directly:
///   `m̂ ← m̂(1-a1) + g a1`, `a_k = (1-β_k)/(1-β_k^t)`);
/// - `eps_mode`: `"add"` (`sqrt(v̂) + ε`) or `"max"` (`max(sqrt(v̂), ε)`);
/// - `step_counter`: `"param"` (PyTorch: this parameter's updates) or
///   `"global"` (the optimizer's steps, frozen ones included);
/// - `warmup_steps`: linear warm-up `γ_t = γ t / max(t, W+1)`.
///
/// Defaults are heavyball's: `lr = 0.0025`, `betas = (0.9, 0.99)`, `eps = 1e-8`,
/// `weight_decay = 0`, `warmup_steps = 0`, `"debiased_beta"`, `"max"`, `"global"`.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamKnobs {
    /// The AdamW hyperparameters (lr, betas, eps, weight_decay).
    pub adam: Adam,
    /// `true` for `"debiased_beta"`.
    pub debiased_beta: bool,
    /// `true` for `"max"`.
    pub eps_max: bool,
    /// `true` for `"global"`.
    pub global_step: bool,
    /// Linear warm-up length.
    pub warmup_steps: usize,
}

impl AdamKnobs {
    /// Parses heavyball-style AdamW hyperparameters.
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut knobs = Hyper::new();
        let mut rest: Hyper = crate::hyper::hyper([
            ("lr", num(0.0025)),
            ("betas", pair_value((0.9, 0.99))),
            ("eps", num(1e-8)),
            ("weight_decay", num(0.0)),
        ]);
        for (k, v) in h {
            if ["bias_correction", "eps_mode", "step_counter", "warmup_steps"].contains(&k.as_str()) {
                knobs.insert(k.clone(), v.clone());
            } else {
                rest.insert(k.clone(), v.clone());
            }
        }
        let adam = Adam::from_hyper(&rest, true)?;
        let mut r = HyperReader::new("adamw", &knobs);
        let bc = r.string("bias_correction", "debiased_beta")?;
        let em = r.string("eps_mode", "max")?;
        let sc = r.string("step_counter", "global")?;
        let warmup_steps = r.usize("warmup_steps", 0)?;
        r.check(
            bc == "divide" || bc == "debiased_beta",
            "bias_correction",
            format!("expected \"divide\" or \"debiased_beta\", got \"{bc}\""),
        )?;
        r.check(
            em == "add" || em == "max",
            "eps_mode",
            format!("expected \"add\" or \"max\", got \"{em}\""),
        )?;
        r.check(
            sc == "param" || sc == "global",
            "step_counter",
            format!("expected \"param\" or \"global\", got \"{sc}\""),
        )?;
        r.check(!adam.amsgrad, "amsgrad", "not supported by this AdamW variant")?;
        r.finish()?;
        Ok(AdamKnobs {
            adam,
            debiased_beta: bc == "debiased_beta",
            eps_max: em == "max",
            global_step: sc == "global",
            warmup_steps,
        })
    }
}

impl Algorithm for AdamKnobs {
    fn name(&self) -> &'static str {
        "adamw"
    }
    fn lr(&self) -> f64 {
        self.adam.lr
    }
    fn hyper(&self) -> Hyper {
        let mut h = Algorithm::hyper(&self.adam);
        h.remove("amsgrad");
        h.remove("decoupled_weight_decay");
        h.insert(
            "bias_correction".into(),
            (if self.debiased_beta { "debiased_beta" } else { "divide" }).into(),
        );
        h.insert("eps_mode".into(), (if self.eps_max { "max" } else { "add" }).into());
        h.insert(
            "step_counter".into(),
            (if self.global_step { "global" } else { "param" }).into(),
        );
        h.insert("warmup_steps".into(), (self.warmup_steps as u64).into());
        h
    }
    fn slots(&self, _p: &ParamInfo) -> Vec<Slot> {
        crate::optim::adam::moment_slots(false)
    }
    fn reference<F: Float>(&self, ctx: &StepCtx, mut t: TensorMut<'_, F>) {
        let n = t.param.len();
        let (mut u, mut g) = (vec![F::ZERO; n], vec![F::ZERO; n]);
        let work = &mut crate::algorithm::Workspace::default();
        let ap = self.direction(ctx, t.with(t.grad, 0.., work), &mut u, &mut g);
        let (decay, neg) = (F::from_f64(ap.decay), F::from_f64(-ap.lr));
        for i in 0..n {
            t.param[i] = t.param[i] * decay + u[i] * neg;
        }
    }
    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.reference(ctx, t)
    }
}

/// The per-step scalars of [`AdamKnobs`].
#[derive(Clone, Copy, Debug)]
pub struct KnobsScalars<F> {
    sign: F,
    prep: crate::ops::GradPrep<F>,
    a1: F,
    oa1: F,
    a2: F,
    oa2: F,
    lm: Lerp<F>,
    b2: F,
    omb2: F,
    bc1: F,
    bc2: F,
    eps: F,
}

/// The coordinate of [`AdamKnobs`], specialized for its flags: `D` debiased
/// betas, `E` ε as a floor (`max`), `L` coupled L2 decay.
#[derive(Clone, Copy, Debug)]
pub struct KnobsPoint<F, const D: bool, const E: bool, const L: bool>(KnobsScalars<F>);

impl<F: Float, const D: bool, const E: bool, const L: bool> Pointwise<F> for KnobsPoint<F, D, E, L> {
    fn reads_param(&self) -> bool {
        L
    }
    #[inline(always)]
    fn at(&self, p: F, g: F, s: &mut [F; 2]) -> (F, F) {
        let c = &self.0;
        let gi = if L { c.prep.apply(g * c.sign, p) } else { g * c.sign };
        let (mh, vh) = if D {
            s[0] = s[0] * c.oa1 + gi * c.a1;
            s[1] = s[1] * c.oa2 + (gi * gi) * c.a2;
            (s[0], s[1])
        } else {
            s[0] = c.lm.apply(s[0], gi);
            s[1] = addcmul(s[1] * c.b2, c.omb2, gi, gi);
            (s[0] / c.bc1, s[1] / c.bc2)
        };
        let d = if E {
            vh.maximum(F::ZERO).sqrt().maximum(c.eps)
        } else {
            vh.sqrt() + c.eps
        };
        (mh / d, gi)
    }
}

impl Direction for AdamKnobs {
    fn visit<F: Float, V: Visit<F>>(&self, ctx: &StepCtx, v: V) -> V::Out {
        let a = &self.adam;
        let (b1, b2) = a.betas;
        let step = if self.global_step { ctx.global_step } else { ctx.step };
        let tt = step as f64;
        // heavyball evaluates these scalars as 0-d tensor ops in the parameter's
        // dtype; doing the same (each op rounded to F) keeps f32 runs on its bits.
        let f = F::from_f64;
        let lr_t = f(ctx.lr) * f(tt) / f(tt.max(self.warmup_steps as f64 + 1.0));
        let debias = |beta: f64| -> (F, F) {
            // a = 1 - β_eff, β_eff = 1 - (1-β)/(-expm1(t·log1p(β-1))); returns (a, 1 - a)
            let bf = f(beta);
            let l = f((bf - F::ONE).to_f64().ln_1p());
            let y = f(-((f(tt) * l).to_f64().exp_m1()));
            let beff = F::ONE - (F::ONE - bf) / y;
            (F::ONE - beff, F::ONE - (F::ONE - beff))
        };
        let ((a1, oa1), (a2, oa2)) = (debias(b1), debias(b2));
        let l2 = if a.decoupled_weight_decay { 0.0 } else { a.weight_decay };
        let c = KnobsScalars {
            sign: if a.maximize { -F::ONE } else { F::ONE },
            prep: crate::ops::GradPrep::<F>::new(false, l2),
            a1,
            oa1,
            a2,
            oa2,
            lm: Lerp::<F>::new(1.0 - b1),
            b2: f(b2),
            omb2: f(1.0 - b2),
            bc1: f(1.0 - b1.powf(tt)),
            bc2: f(1.0 - b2.powf(tt)),
            eps: f(a.eps),
        };
        let decay = if a.decoupled_weight_decay {
            F::ONE - f(a.weight_decay) * lr_t
        } else {
            F::ONE
        };
        let ap = Apply {
            decay: decay.to_f64(),
            lr: lr_t.to_f64(),
            fma: false,
        };
        match (self.debiased_beta, self.eps_max, l2 != 0.0) {
            (false, false, false) => v.run(KnobsPoint::<F, false, false, false>(c), ap),
            (false, false, true) => v.run(KnobsPoint::<F, false, false, true>(c), ap),
            (false, true, false) => v.run(KnobsPoint::<F, false, true, false>(c), ap),
            (false, true, true) => v.run(KnobsPoint::<F, false, true, true>(c), ap),
            (true, false, false) => v.run(KnobsPoint::<F, true, false, false>(c), ap),
            (true, false, true) => v.run(KnobsPoint::<F, true, false, true>(c), ap),
            (true, true, false) => v.run(KnobsPoint::<F, true, true, false>(c), ap),
            (true, true, true) => v.run(KnobsPoint::<F, true, true, true>(c), ap),
        }
    }
}
