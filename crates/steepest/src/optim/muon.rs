//! Muon: momentum, then Newton–Schulz orthogonalization of the update.
//!
//! Papers: *"Muon: Training and Trade-offs with Latent Attention and MoE"*
//! (Muon's update, its §2) and *"Understanding Gradient Orthogonalization for
//! Deep Learning via Non-Euclidean Trust-Region Optimization"* (the update as
//! a trust-region step in the spectral norm: `Δ = −η UVᵀ` for `G = UΣVᵀ`, its
//! eq. (3)–(5)); the iteration is Keller Jordan's quintic Newton–Schulz.
//!
//! Update for a matrix parameter `W` (shape `A × C`) with gradient `G`:
//! ```text
//! B_t = μ B_{t-1} + (1-μ) G_t                     (EMA momentum, B_0 = 0)
//! U_t = (1-μ) G_t + μ B_t   if nesterov,  else B_t
//! O_t = NS_k^{(a,b,c)}(U_t; ε)                    (see newton_schulz.rs)
//! W_t = W_{t-1} (1 - γ λ) - γ s(A, C) O_t
//! s = sqrt(max(1, A/C))        adjust_lr_fn = "original" (default)
//!   = 0.2 sqrt(max(A, C))      "match_rms_adamw" (RMS of AdamW's update)
//!   = sqrt(A/C)                "spectral_unclamped"
//! ```
//! Defaults (`torch.optim.Muon`): `lr = 1e-3`, `weight_decay = 0.1`,
//! `momentum = 0.95`, `nesterov = true`, `ns_coefficients = (3.4445, −4.7750, 2.0315)`,
//! `eps = 1e-7`, `ns_steps = 5`, `adjust_lr_fn = "original"`.
//!
//! Where the reference differs from the papers, steepest follows PyTorch:
//! momentum is an EMA (`lerp`), not the `μB + G` of Keller Jordan's post (the
//! same after normalization unless the ε clamp binds); normalization divides by
//! `max(‖X‖_F, ε)` rather than `‖X‖_F + ε`; weight decay uses the unadjusted
//! lr. Unlike PyTorch, Newton–Schulz runs in the parameter's dtype instead of
//! bfloat16 (PyTorch's bf16 differs from exact arithmetic by ~1e-4 relative).
//!
//! Muon updates matrices. Parameters of rank > 2 opt in with `flatten = true`
//! (trailing dimensions flattened: `[out, in, kh, kw]` → `[out, in·kh·kw]`).
//! Everything else goes elsewhere: the registry's `muon` recipe is a
//! [`crate::optim::Partition`] that routes it to AdamW.

use crate::algorithm::{Algorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::{Error, Result};
use crate::hyper::{num, Hyper, HyperReader};
use crate::kernel::zip_chunks;
use crate::linalg::MatmulImpl;
use crate::ops::{add_scaled, Lerp};
use crate::optim::newton_schulz::orthogonalize;
use crate::tensor::ParamInfo;

/// Learning-rate scaling by matrix shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdjustLr {
    /// `sqrt(max(1, A/C))` (Keller Jordan's).
    Original,
    /// `0.2 sqrt(max(A, C))` (Moonshot's, matches AdamW's update RMS).
    MatchRmsAdamw,
    /// `sqrt(A/C)` (Bernstein's spectral condition).
    SpectralUnclamped,
}

impl AdjustLr {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "original" => Some(AdjustLr::Original),
            "match_rms_adamw" => Some(AdjustLr::MatchRmsAdamw),
            "spectral_unclamped" => Some(AdjustLr::SpectralUnclamped),
            _ => None,
        }
    }
    /// The name used in hyperparameters.
    pub fn name(self) -> &'static str {
        match self {
            AdjustLr::Original => "original",
            AdjustLr::MatchRmsAdamw => "match_rms_adamw",
            AdjustLr::SpectralUnclamped => "spectral_unclamped",
        }
    }
    /// `lr` scaled for an `a × c` matrix (computed as PyTorch does, in f64).
    pub fn apply(self, lr: f64, a: usize, c: usize) -> f64 {
        let (a, c) = (a as f64, c as f64);
        let ratio = match self {
            AdjustLr::Original => (a / c).max(1.0).sqrt(),
            AdjustLr::MatchRmsAdamw => 0.2 * a.max(c).sqrt(),
            AdjustLr::SpectralUnclamped => (a / c).sqrt(),
        };
        lr * ratio
    }
}

/// Validated Muon configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Muon {
    /// Learning rate γ.
    pub lr: f64,
    /// Decoupled weight decay λ.
    pub weight_decay: f64,
    /// Momentum μ.
    pub momentum: f64,
    /// Nesterov look-ahead.
    pub nesterov: bool,
    /// Newton–Schulz coefficients (a, b, c).
    pub ns_coefficients: [f64; 3],
    /// Normalization floor ε.
    pub eps: f64,
    /// Newton–Schulz iterations.
    pub ns_steps: usize,
    /// Learning-rate scaling by shape.
    pub adjust_lr_fn: AdjustLr,
    /// Treat rank > 2 parameters as `[d0, rest]` matrices.
    pub flatten: bool,
}

impl Muon {
    /// Parses and validates PyTorch-named hyperparameters.
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut r = HyperReader::new("muon", h);
        let lr = r.f64("lr", 1e-3)?;
        let weight_decay = r.f64("weight_decay", 0.1)?;
        let momentum = r.f64("momentum", 0.95)?;
        let nesterov = r.bool("nesterov", true)?;
        let ns_coefficients = r.floats("ns_coefficients", super::newton_schulz::QUINTIC)?;
        let eps = r.f64("eps", 1e-7)?;
        let ns_steps = r.usize("ns_steps", 5)?;
        let adjust = r.string("adjust_lr_fn", "original")?;
        let flatten = r.bool("flatten", false)?;
        r.non_negative("lr", lr)?;
        r.non_negative("weight_decay", weight_decay)?;
        r.check(
            (0.0..1.0).contains(&momentum),
            "momentum",
            format!("must be in [0, 1), got {momentum}"),
        )?;
        r.non_negative("eps", eps)?;
        r.check(ns_steps < 100, "ns_steps", format!("must be < 100, got {ns_steps}"))?;
        let adjust_lr_fn = AdjustLr::parse(&adjust).ok_or_else(|| {
            r.error(
                "adjust_lr_fn",
                format!("expected \"original\", \"match_rms_adamw\" or \"spectral_unclamped\", got \"{adjust}\""),
            )
        })?;
        r.finish()?;
        Ok(Muon {
            lr,
            weight_decay,
            momentum,
            nesterov,
            ns_coefficients,
            eps,
            ns_steps,
            adjust_lr_fn,
            flatten,
        })
    }

    /// The matrix view `(rows, cols)` of a parameter shape, if Muon can update it.
    pub fn matrix_shape(&self, shape: &[usize]) -> Option<(usize, usize)> {
        match shape.len() {
            2 => Some((shape[0], shape[1])),
            // A zero leading dimension makes the matrix empty even if the rest overflows.
            n if n > 2 && self.flatten => Some((shape[0], crate::tensor::numel(&shape[1..]).unwrap_or(usize::MAX))),
            _ => None,
        }
    }

    fn run<F: Float>(&self, how: MatmulImpl, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let Some((rows, cols)) = self.matrix_shape(t.shape) else {
            return; // check_param rejected it at build time
        };
        let n = t.param.len();
        let (bufs, inner) = t.work.take(2, n);
        let [u, o] = bufs else {
            unreachable!("take(2) returns two buffers")
        };
        let (mu, nesterov) = (self.momentum, self.nesterov);
        let ema = Lerp::<F>::new(1.0 - mu);
        let look = Lerp::<F>::new(mu);
        let buf = &mut t.slots[0];
        match how {
            MatmulImpl::Naive => {
                for i in 0..n {
                    buf[i] = ema.apply(buf[i], t.grad[i]);
                }
                for i in 0..n {
                    u[i] = if nesterov {
                        look.apply(t.grad[i], buf[i])
                    } else {
                        buf[i]
                    };
                }
            }
            MatmulImpl::Faer => zip_chunks(u, t.grad, [&mut buf[..]], move |u, g, [b]| {
                let n = u.len();
                let (g, b) = (&g[..n], &mut b[..n]);
                for i in 0..n {
                    let bi = ema.apply(b[i], g[i]);
                    b[i] = bi;
                    u[i] = if nesterov { look.apply(g[i], bi) } else { bi };
                }
            }),
        }
        orthogonalize(
            how,
            u,
            rows,
            cols,
            self.ns_coefficients,
            self.ns_steps,
            self.eps,
            inner,
            o,
        );
        let decay = F::from_f64(1.0 - ctx.lr * self.weight_decay);
        let neg = F::from_f64(-self.adjust_lr_fn.apply(ctx.lr, rows, cols));
        match how {
            MatmulImpl::Naive => {
                for i in 0..n {
                    t.param[i] = t.param[i] * decay;
                }
                for i in 0..n {
                    t.param[i] = add_scaled(t.param[i], neg, o[i]);
                }
            }
            MatmulImpl::Faer => zip_chunks(t.param, o, [], move |p, o, []| {
                let o = &o[..p.len()];
                for i in 0..p.len() {
                    p[i] = add_scaled(p[i] * decay, neg, o[i]);
                }
            }),
        }
    }
}

impl Algorithm for Muon {
    fn name(&self) -> &'static str {
        "muon"
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn hyper(&self) -> Hyper {
        crate::hyper::hyper([
            ("lr", num(self.lr)),
            ("weight_decay", num(self.weight_decay)),
            ("momentum", num(self.momentum)),
            ("nesterov", self.nesterov.into()),
            (
                "ns_coefficients",
                serde_json::Value::Array(self.ns_coefficients.iter().map(|&x| num(x)).collect()),
            ),
            ("eps", num(self.eps)),
            ("ns_steps", (self.ns_steps as u64).into()),
            ("adjust_lr_fn", self.adjust_lr_fn.name().into()),
            ("flatten", self.flatten.into()),
        ])
    }
    fn slots(&self, _p: &ParamInfo) -> Vec<Slot> {
        vec![Slot::zeros("momentum_buffer")]
    }
    fn accepts(&self, shape: &[usize]) -> bool {
        self.matrix_shape(shape).is_some()
    }
    fn check_param(&self, p: &ParamInfo) -> Result<()> {
        match self.matrix_shape(&p.shape) {
            Some(_) => Ok(()),
            None => Err(Error::param(
                &p.name,
                format!(
                    "muon updates matrices, this parameter has shape {:?} (route it to another optimizer, or set flatten = true for rank > 2)",
                    p.shape
                ),
            )),
        }
    }
    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(MatmulImpl::Naive, ctx, t)
    }
    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(MatmulImpl::Faer, ctx, t)
    }
}

/// The `muon` recipe: Muon on matrices, AdamW on everything else and on the
/// 2-D parameters whose names match `adamw_params` (default `["*embed*",
/// "*head*"]`: embeddings and output heads, as Keller Jordan recommends).
///
/// Hyperparameters: Muon's own, plus `adamw_lr` (3e-4), `adamw_betas`
/// ([0.9, 0.95]), `adamw_eps` (1e-8), `adamw_weight_decay` (0.0),
/// `adamw_amsgrad` (false) and `adamw_params` (a list of glob patterns that
/// replaces the default).
pub fn muon_with_adamw(h: &Hyper) -> Result<crate::optim::Partition> {
    with_adamw("muon", h, |main_h| {
        let main = Muon::from_hyper(main_h)?;
        let hyper = Algorithm::hyper(&main);
        Ok((
            std::sync::Arc::new(main) as std::sync::Arc<dyn crate::algorithm::DynAlgorithm>,
            hyper,
        ))
    })
}

/// A recipe named `name`: the matrix optimizer built by `build_main` (from every
/// key of `h` without the `adamw_` prefix) on matrices, AdamW (the `adamw_*`
/// keys, defaults as in [`muon_with_adamw`]) on the rest and on the parameters
/// matching `adamw_params`. `build_main` returns the algorithm and its hyperparameters.
pub fn with_adamw(
    name: &'static str,
    h: &Hyper,
    build_main: impl FnOnce(&Hyper) -> Result<(std::sync::Arc<dyn crate::algorithm::DynAlgorithm>, Hyper)>,
) -> Result<crate::optim::Partition> {
    let mut muon_h = Hyper::new();
    let mut adamw_h = crate::hyper::hyper([
        ("lr", num(3e-4)),
        ("betas", crate::hyper::pair_value((0.9, 0.95))),
        ("eps", num(1e-8)),
        ("weight_decay", num(0.0)),
    ]);
    let mut patterns: Option<&serde_json::Value> = None;
    for (k, v) in h {
        if k == "adamw_params" {
            patterns = Some(v);
        } else if let Some(rest) = k.strip_prefix("adamw_") {
            adamw_h.insert(rest.to_string(), v.clone());
        } else {
            muon_h.insert(k.clone(), v.clone());
        }
    }
    let (main, mut hyper) = build_main(&muon_h)?;
    let aux = crate::optim::Adam::from_hyper(&adamw_h, true).map_err(|e| match e {
        Error::InvalidHyper { field, message, .. } => Error::hyper(name, &format!("adamw_{field}"), message),
        e => e,
    })?;
    let globs = {
        let pm: Hyper = patterns
            .map(|v| [("adamw_params".to_string(), v.clone())].into())
            .unwrap_or_default();
        let mut r = HyperReader::new(name, &pm);
        let g = r.strings("adamw_params", &["*embed*", "*head*"])?;
        r.finish()?;
        g
    };
    for (k, v) in Algorithm::hyper(&aux) {
        if k != "decoupled_weight_decay" && k != "maximize" {
            hyper.insert(format!("adamw_{k}"), v);
        }
    }
    hyper.insert(
        "adamw_params".into(),
        serde_json::Value::Array(globs.iter().map(|g| g.clone().into()).collect()),
    );
    Ok(crate::optim::Partition {
        name,
        main,
        aux: std::sync::Arc::new(aux),
        aux_select: globs.into_iter().map(crate::optimizer::Select::Pattern).collect(),
        hyper,
    })
}
