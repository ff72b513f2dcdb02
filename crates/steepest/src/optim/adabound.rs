//! AdaBound and AMSBound: Adam whose per-element step size is clipped into
//! bounds that converge to a final SGD learning rate.
//!
//! Paper: Luo et al., *"Adaptive Gradient Methods with Dynamic Bound of
//! Learning Rate"* (ICLR 2019), Algorithm 2 (AdaBound) and Algorithm 3
//! (AMSBound); bound functions of §4 / Appendix: `η_l(t) = α*(1 − 1/(γt+1))`,
//! `η_u(t) = α*(1 + 1/(γt))`.
//!
//! Update for `t ≥ 1`:
//! ```text
//! g ← g + λ θ                                     (coupled L2, weight_decay λ)
//! m_t = β1 m + (1-β1) g ;  v_t = β2 v + (1-β2) g²
//! v̂_t = max(v̂_{t-1}, v_t) if amsbound else v_t
//! α*  = final_lr · lr / base_lr                    (final_lr follows lr's schedule)
//! η_t = clip( lr·sqrt(1-β2^t)/(1-β1^t) / (sqrt(v̂_t) + ε),  α*(1 - 1/(γt+1)),  α*(1 + 1/(γt)) )
//! θ_t = θ - η_t ⊙ m_t
//! ```
//! Defaults (the authors' `adabound` package): `lr = 1e-3`, `betas = (0.9, 0.999)`,
//! `final_lr = 0.1`, `gamma = 1e-3`, `eps = 1e-8`, `weight_decay = 0`, `amsbound = false`.
//!
//! Where the authors' code differs from the paper, steepest follows the code:
//! the paper's Algorithm 2 has no bias correction and writes `η_t / sqrt(t)`
//! with `m_t` undivided; the code folds Adam's bias corrections into the step
//! size, clips before multiplying by the (uncorrected) `m_t`, adds ε to
//! `sqrt(v)`, and scales `final_lr` by `lr / base_lr` so that learning-rate
//! schedules move the bounds too (`base_lr` is the lr at construction).
//! steepest rejects `gamma = 0` (the code divides by zero) and negative weight
//! decay (the code does not check).

use crate::algorithm::{Algorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::Result;
use crate::hyper::{num, pair_value, Hyper, HyperReader};
use crate::kernel::zip_chunks;
use crate::ops::{add_scaled, addcmul, GradPrep};
use crate::tensor::ParamInfo;

/// Validated AdaBound configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaBound {
    /// Learning rate (also `base_lr`, the lr at construction).
    pub lr: f64,
    /// (β1, β2).
    pub betas: (f64, f64),
    /// Final (SGD) learning rate α*.
    pub final_lr: f64,
    /// Convergence speed γ of the bounds.
    pub gamma: f64,
    /// ε.
    pub eps: f64,
    /// Coupled L2 weight decay λ.
    pub weight_decay: f64,
    /// AMSBound: the running maximum of the second moment.
    pub amsbound: bool,
}

impl AdaBound {
    /// Parses and validates the authors' hyperparameter names.
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut r = HyperReader::new("adabound", h);
        let a = AdaBound {
            lr: r.f64("lr", 1e-3)?,
            betas: r.pair("betas", (0.9, 0.999))?,
            final_lr: r.f64("final_lr", 0.1)?,
            gamma: r.f64("gamma", 1e-3)?,
            eps: r.f64("eps", 1e-8)?,
            weight_decay: r.f64("weight_decay", 0.0)?,
            amsbound: r.bool("amsbound", false)?,
        };
        r.non_negative("lr", a.lr)?;
        r.non_negative("eps", a.eps)?;
        r.betas("betas", a.betas)?;
        r.non_negative("final_lr", a.final_lr)?;
        r.check(
            a.gamma > 0.0 && a.gamma < 1.0,
            "gamma",
            format!("must be in (0, 1), got {}", a.gamma),
        )?;
        r.non_negative("weight_decay", a.weight_decay)?;
        r.finish()?;
        Ok(a)
    }

    fn scalars<F: Float>(&self, ctx: &StepCtx) -> Scalars<F> {
        let (b1, b2) = self.betas;
        let t = ctx.step as f64;
        let bc1 = 1.0 - b1.powf(t);
        let bc2 = 1.0 - b2.powf(t);
        let step_size = ctx.lr * bc2.sqrt() / bc1;
        let fl = if self.lr == 0.0 {
            0.0
        } else {
            self.final_lr * ctx.lr / self.lr
        };
        Scalars {
            prep: GradPrep::new(false, self.weight_decay),
            b1: F::from_f64(b1),
            omb1: F::from_f64(1.0 - b1),
            b2: F::from_f64(b2),
            omb2: F::from_f64(1.0 - b2),
            eps: F::from_f64(self.eps),
            step_size: F::from_f64(step_size),
            lower: F::from_f64(fl * (1.0 - 1.0 / (self.gamma * t + 1.0))),
            upper: F::from_f64(fl * (1.0 + 1.0 / (self.gamma * t))),
        }
    }
}

#[derive(Clone, Copy)]
struct Scalars<F> {
    prep: GradPrep<F>,
    b1: F,
    omb1: F,
    b2: F,
    omb2: F,
    eps: F,
    step_size: F,
    lower: F,
    upper: F,
}

impl<F: Float> Scalars<F> {
    /// `clamp(step_size / (sqrt(v̂) + ε), lower, upper) · m`
    #[inline(always)]
    fn step(&self, vhat: F, m: F) -> F {
        let s = self.step_size / (vhat.sqrt() + self.eps);
        s.maximum(self.lower).minimum(self.upper) * m
    }
}

impl Algorithm for AdaBound {
    fn name(&self) -> &'static str {
        "adabound"
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn hyper(&self) -> Hyper {
        crate::hyper::hyper([
            ("lr", num(self.lr)),
            ("betas", pair_value(self.betas)),
            ("final_lr", num(self.final_lr)),
            ("gamma", num(self.gamma)),
            ("eps", num(self.eps)),
            ("weight_decay", num(self.weight_decay)),
            ("amsbound", self.amsbound.into()),
        ])
    }
    fn slots(&self, _p: &ParamInfo) -> Vec<Slot> {
        crate::optim::adam::moment_slots(self.amsbound)
    }

    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let c = self.scalars::<F>(ctx);
        let n = t.param.len();
        let g = c.prep.tensor(t.grad, t.param);
        let (m, rest) = t.slots.split_at_mut(1);
        let (v, rest) = rest.split_at_mut(1);
        let (m, v) = (&mut m[0], &mut v[0]);
        for i in 0..n {
            m[i] = m[i] * c.b1;
        }
        for i in 0..n {
            m[i] = add_scaled(m[i], c.omb1, g[i]);
        }
        for i in 0..n {
            v[i] = v[i] * c.b2;
        }
        for i in 0..n {
            v[i] = addcmul(v[i], c.omb2, g[i], g[i]);
        }
        let vhat: &[F] = if self.amsbound {
            let vmax = &mut rest[0];
            for i in 0..n {
                vmax[i] = vmax[i].maximum(v[i]);
            }
            vmax
        } else {
            v
        };
        let step: Vec<F> = (0..n).map(|i| c.step(vhat[i], m[i])).collect();
        for i in 0..n {
            t.param[i] = t.param[i] + -step[i];
        }
    }

    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let c = self.scalars::<F>(ctx);
        let upd = move |p: F, g: F, m: F, v: F| {
            let gi = c.prep.apply(g, p);
            (add_scaled(m * c.b1, c.omb1, gi), addcmul(v * c.b2, c.omb2, gi, gi))
        };
        match t.slots {
            [m, v] => zip_chunks(t.param, t.grad, [&mut m[..], &mut v[..]], move |p, g, [m, v]| {
                let n = p.len();
                let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
                for i in 0..n {
                    let (mi, vi) = upd(p[i], g[i], m[i], v[i]);
                    m[i] = mi;
                    v[i] = vi;
                    p[i] = p[i] + -c.step(vi, mi);
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
                        let (mi, vi) = upd(p[i], g[i], m[i], v[i]);
                        let vh = vmax[i].maximum(vi);
                        m[i] = mi;
                        v[i] = vi;
                        vmax[i] = vh;
                        p[i] = p[i] + -c.step(vh, mi);
                    }
                },
            ),
            _ => unreachable!("adabound state has 2 or 3 slots by construction"),
        }
    }
}
