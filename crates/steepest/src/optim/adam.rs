//! Adam, AdamW and AMSGrad.
//!
//! Papers: *"Adam: A Method for Stochastic Optimization"* (Kingma & Ba, seed
//! paper; Algorithm 1), AdamW from *"Decoupled Weight Decay Regularization"*
//! (Loshchilov & Hutter; Algorithm 2), AMSGrad from *"On the Convergence of
//! Adam and Beyond"* (Reddi et al.; Algorithm 2).
//!
//! Update for `t ≥ 1`, `g_t` the gradient (negated if `maximize`):
//! ```text
//! Adam:  g_t ← g_t + λ θ_{t-1}                (coupled L2, weight_decay λ)
//! AdamW: θ_{t-1} ← θ_{t-1} (1 - γ λ)          (decoupled, applied first)
//! m_t = β1 m_{t-1} + (1-β1) g_t               (Alg. 1: biased first moment)
//! v_t = β2 v_{t-1} + (1-β2) g_t²              (Alg. 1: biased second moment)
//! v̂_t = max(v̂_{t-1}, v_t) if amsgrad, else v_t
//! θ_t = θ_{t-1} - (γ / (1-β1^t)) · m_t / (sqrt(v̂_t) / sqrt(1-β2^t) + ε)
//! ```
//! Defaults (PyTorch): `lr = 1e-3`, `betas = (0.9, 0.999)`, `eps = 1e-8`,
//! `weight_decay = 0` (Adam) / `1e-2` (AdamW), `amsgrad = false`,
//! `maximize = false`, `decoupled_weight_decay = false` (Adam) / `true` (AdamW),
//! `bias_correction = true` (`false`: no `1-β^t` divisions, FedAdam's server form).
//!
//! Where PyTorch differs from the papers, steepest follows PyTorch:
//! - ε is added to `sqrt(v̂)/sqrt(1-β2^t)` (Kingma & Ba's "efficient version"
//!   in §2 puts it on the un-corrected `sqrt(v)` with a rescaled step instead).
//! - AMSGrad keeps the running maximum of the *raw* `v_t` and then applies
//!   Adam's bias correction; Reddi et al.'s Algorithm 2 has no bias correction.
//! - AdamW multiplies the decay by the learning rate `γ λ` (the paper's
//!   schedule multiplier `η_t` times λ, with γ playing `η_t α`).

use crate::algorithm::{Algorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::Result;
use crate::hyper::{num, pair_value, Hyper, HyperReader};
use crate::kernel::zip_chunks;
use crate::ops::{addcdiv, addcmul, GradPrep, Lerp};
use crate::real::Real;
use crate::tensor::ParamInfo;

/// Validated Adam / AdamW configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    /// `"adam"` or `"adamw"` (only the registry name and defaults differ).
    pub variant: &'static str,
    /// Learning rate γ.
    pub lr: f64,
    /// (β1, β2).
    pub betas: (f64, f64),
    /// ε.
    pub eps: f64,
    /// λ.
    pub weight_decay: f64,
    /// AMSGrad's running maximum of the second moment.
    pub amsgrad: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
    /// Decoupled (AdamW) instead of coupled L2 weight decay.
    pub decoupled_weight_decay: bool,
    /// Divide by `1-β1^t` and `sqrt(1-β2^t)` (PyTorch, default). `false` drops
    /// both corrections: `θ_t = θ_{t-1} - γ m_t / (sqrt(v̂_t) + ε)`, the server
    /// update of FedAdam in Reddi et al., *Adaptive Federated Optimization*, Alg. 2.
    pub bias_correction: bool,
}

impl Adam {
    /// Parses Adam (`decoupled = false`) or AdamW (`decoupled = true`) hyperparameters.
    pub fn from_hyper(h: &Hyper, decoupled: bool) -> Result<Self> {
        let variant = if decoupled { "adamw" } else { "adam" };
        let mut r = HyperReader::new(variant, h);
        let a = Adam {
            variant,
            lr: r.f64("lr", 1e-3)?,
            betas: r.pair("betas", (0.9, 0.999))?,
            eps: r.f64("eps", 1e-8)?,
            weight_decay: r.f64("weight_decay", if decoupled { 1e-2 } else { 0.0 })?,
            amsgrad: r.bool("amsgrad", false)?,
            maximize: r.bool("maximize", false)?,
            decoupled_weight_decay: r.bool("decoupled_weight_decay", decoupled)?,
            bias_correction: r.bool("bias_correction", true)?,
        };
        r.non_negative("lr", a.lr)?;
        r.betas("betas", a.betas)?;
        r.non_negative("eps", a.eps)?;
        r.non_negative("weight_decay", a.weight_decay)?;
        r.finish()?;
        Ok(a)
    }

    fn scalars<F: Real>(&self, ctx: &StepCtx) -> Scalars<F> {
        let (b1, b2) = self.betas;
        let t = ctx.step as f64;
        let (bc1, bc2) = if self.bias_correction {
            (1.0 - b1.powf(t), 1.0 - b2.powf(t))
        } else {
            (1.0, 1.0)
        };
        let decoupled = self.decoupled_weight_decay && self.weight_decay != 0.0;
        Scalars {
            prep: GradPrep::new(
                self.maximize,
                if self.decoupled_weight_decay {
                    0.0
                } else {
                    self.weight_decay
                },
            ),
            decay: decoupled.then(|| F::from_f64(1.0 - ctx.lr * self.weight_decay)),
            m: Lerp::new(1.0 - b1),
            b2: F::from_f64(b2),
            one_minus_b2: F::from_f64(1.0 - b2),
            bc2_sqrt: F::from_f64(bc2.sqrt()),
            eps: F::from_f64(self.eps),
            neg_step_size: F::from_f64(-(ctx.lr / bc1)),
        }
    }
}

/// The state of the Adam family (PyTorch's names): first and second moments,
/// plus the running maximum of the second for AMSGrad / AMSBound.
pub(crate) fn moment_slots(with_max: bool) -> Vec<Slot> {
    let mut s = vec![Slot::zeros("exp_avg"), Slot::zeros("exp_avg_sq")];
    if with_max {
        s.push(Slot::zeros("max_exp_avg_sq"));
    }
    s
}

#[derive(Clone, Copy)]
struct Scalars<F> {
    prep: GradPrep<F>,
    decay: Option<F>,
    m: Lerp<F>,
    b2: F,
    one_minus_b2: F,
    bc2_sqrt: F,
    eps: F,
    neg_step_size: F,
}

impl Algorithm for Adam {
    fn name(&self) -> &'static str {
        self.variant
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn hyper(&self) -> Hyper {
        crate::hyper::hyper([
            ("lr", num(self.lr)),
            ("betas", pair_value(self.betas)),
            ("eps", num(self.eps)),
            ("weight_decay", num(self.weight_decay)),
            ("amsgrad", self.amsgrad.into()),
            ("maximize", self.maximize.into()),
            ("decoupled_weight_decay", self.decoupled_weight_decay.into()),
            ("bias_correction", self.bias_correction.into()),
        ])
    }
    fn slots(&self, _p: &ParamInfo) -> Vec<Slot> {
        moment_slots(self.amsgrad)
    }

    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let c = self.scalars::<F>(ctx);
        let n = t.param.len();
        let g = c.prep.tensor(t.grad, t.param);
        if let Some(decay) = c.decay {
            for i in 0..n {
                t.param[i] = t.param[i] * decay;
            }
        }
        let (m, rest) = t.slots.split_at_mut(1);
        let (v, rest) = rest.split_at_mut(1);
        let (m, v) = (&mut m[0], &mut v[0]);
        for i in 0..n {
            m[i] = c.m.apply(m[i], g[i]);
        }
        for i in 0..n {
            v[i] = v[i] * c.b2;
        }
        for i in 0..n {
            v[i] = addcmul(v[i], c.one_minus_b2, g[i], g[i]);
        }
        let vhat: &[F] = if self.amsgrad {
            let vmax = &mut rest[0];
            for i in 0..n {
                vmax[i] = vmax[i].maximum(v[i]);
            }
            vmax
        } else {
            v
        };
        let denom: Vec<F> = vhat.iter().map(|&x| x.sqrt() / c.bc2_sqrt + c.eps).collect();
        for i in 0..n {
            t.param[i] = addcdiv(t.param[i], c.neg_step_size, m[i], denom[i]);
        }
    }

    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.fused_kernel::<F, false>(ctx, t, F::ONE, F::ONE)
    }

    fn fused_scaled<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>, g_scale: F, p_scale: F) {
        self.fused_kernel::<F, true>(ctx, t, g_scale, p_scale)
    }
}

impl Adam {
    /// The fused kernel; with `SCALED` it steps on `g·gs` and `p·ps` (see
    /// [`Algorithm::fused_scaled`]), the two multiplies folded into the pass.
    fn fused_kernel<F: Float, const SCALED: bool>(&self, ctx: &StepCtx, t: TensorMut<'_, F>, gs: F, ps: F) {
        // Scalars are copied into locals and every flag becomes a select or a
        // multiplication by 1, so the loop body is branch-free and vectorizes;
        // the arithmetic is the reference kernel's, element by element.
        let c = self.scalars::<F>(ctx);
        let (prep, lerp, b2, omb2, bc2s, eps, nss) =
            (c.prep, c.m, c.b2, c.one_minus_b2, c.bc2_sqrt, c.eps, c.neg_step_size);
        let decay = c.decay.unwrap_or(F::ONE);
        match t.slots {
            [m, v] => zip_chunks(t.param, t.grad, [&mut m[..], &mut v[..]], move |p, g, [m, v]| {
                let n = p.len();
                let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
                for i in 0..n {
                    let (gr, pi) = if SCALED { (g[i] * gs, p[i] * ps) } else { (g[i], p[i]) };
                    let gi = prep.apply(gr, pi);
                    let mi = lerp.apply(m[i], gi);
                    let vi = addcmul(v[i] * b2, omb2, gi, gi);
                    m[i] = mi;
                    v[i] = vi;
                    p[i] = addcdiv(pi * decay, nss, mi, vi.sqrt() / bc2s + eps);
                }
            }),
            [m, v, vmax] => zip_chunks(
                t.param,
                t.grad,
                [&mut m[..], &mut v[..], &mut vmax[..]],
                move |p, g, [m, v, vmax]| {
                    let n = p.len();
                    let (g, m, v, vmax) = (&g[..n], &mut m[..n], &mut v[..n], &mut vmax[..n]);
                    for i in 0..n {
                        let (gr, pi) = if SCALED { (g[i] * gs, p[i] * ps) } else { (g[i], p[i]) };
                        let gi = prep.apply(gr, pi);
                        let mi = lerp.apply(m[i], gi);
                        let vi = addcmul(v[i] * b2, omb2, gi, gi);
                        let vh = vmax[i].maximum(vi);
                        m[i] = mi;
                        v[i] = vi;
                        vmax[i] = vh;
                        p[i] = addcdiv(pi * decay, nss, mi, vh.sqrt() / bc2s + eps);
                    }
                },
            ),
            _ => unreachable!("adam state has 2 or 3 slots by construction"),
        }
    }
}
