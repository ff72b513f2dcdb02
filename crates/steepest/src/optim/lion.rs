//! Lion: the sign of an interpolated momentum.
//!
//! Paper: Chen et al., *"Symbolic Discovery of Optimization Algorithms"*
//! (Algorithm 2), the base optimizer of the seed paper *"Communication
//! Efficient Distributed Training with Distributed Lion"* (its Algorithm 1,
//! per worker).
//!
//! Update, with `g_t` the gradient:
//! ```text
//! θ ← θ (1 - γ λ)                         (decoupled weight decay, applied first)
//! c_t = β1 m_{t-1} + (1-β1) g_t
//! θ_t = θ - γ sign(c_t)                   (sign(0) = 0)
//! m_t = β2 m_{t-1} + (1-β2) g_t
//! ```
//! Defaults (`lion-pytorch`, the reference): `lr = 1e-4`, `betas = (0.9, 0.99)`,
//! `weight_decay = 0`. Options from pytorch-optimizer's `Lion` (the reference
//! of C-Lion): `maximize`, `weight_decouple = false` (coupled L2 `g + λθ`
//! instead of decoupled decay) and `fixed_decay` (decay `θ(1 − λ)` without γ).
//!
//! The reference matches the paper; steepest follows both. Its moments are a
//! multiply then a fused multiply-add (not `lerp`), which steepest reproduces.
//! The reference asserts `lr > 0`; steepest accepts `lr = 0` (a no-op step)
//! like every other optimizer, and requires betas in `[0, 1]` like the reference.

use crate::algorithm::{Algorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::Result;
use crate::hyper::{num, pair_value, Hyper, HyperReader};
use crate::kernel::zip_chunks;
use crate::ops::{add_scaled, GradPrep};
use crate::tensor::ParamInfo;

/// Validated Lion configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Lion {
    /// Learning rate γ.
    pub lr: f64,
    /// (β1, β2).
    pub betas: (f64, f64),
    /// Weight decay λ.
    pub weight_decay: f64,
    /// Decoupled decay (default) or coupled L2.
    pub weight_decouple: bool,
    /// Decoupled decay independent of the learning rate.
    pub fixed_decay: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Lion {
    /// Parses and validates hyperparameters (the reference's names).
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut r = HyperReader::new("lion", h);
        let l = Lion {
            lr: r.f64("lr", 1e-4)?,
            betas: r.pair("betas", (0.9, 0.99))?,
            weight_decay: r.f64("weight_decay", 0.0)?,
            weight_decouple: r.bool("weight_decouple", true)?,
            fixed_decay: r.bool("fixed_decay", false)?,
            maximize: r.bool("maximize", false)?,
        };
        r.non_negative("lr", l.lr)?;
        for (i, b) in [l.betas.0, l.betas.1].into_iter().enumerate() {
            r.check(
                (0.0..=1.0).contains(&b),
                "betas",
                format!("beta{} must be in [0, 1], got {b}", i + 1),
            )?;
        }
        r.non_negative("weight_decay", l.weight_decay)?;
        r.finish()?;
        Ok(l)
    }
}

/// Per-step scalars of Lion, shared by its kernels and by Cautious-Lion.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LionScalars<F> {
    pub prep: GradPrep<F>,
    pub decay: F,
    pub b1: F,
    pub omb1: F,
    pub b2: F,
    pub omb2: F,
    pub neg_lr: F,
}

impl Lion {
    pub(crate) fn scalars<F: Float>(&self, ctx: &StepCtx) -> LionScalars<F> {
        let decoupled = self.weight_decouple && self.weight_decay != 0.0;
        let decay = match (decoupled, self.fixed_decay) {
            (false, _) => 1.0,
            (true, false) => 1.0 - ctx.lr * self.weight_decay,
            (true, true) => 1.0 - self.weight_decay,
        };
        let l2 = if self.weight_decouple { 0.0 } else { self.weight_decay };
        LionScalars {
            prep: GradPrep::new(self.maximize, l2),
            decay: F::from_f64(decay),
            b1: F::from_f64(self.betas.0),
            omb1: F::from_f64(1.0 - self.betas.0),
            b2: F::from_f64(self.betas.1),
            omb2: F::from_f64(1.0 - self.betas.1),
            neg_lr: F::from_f64(-ctx.lr),
        }
    }
}

impl Algorithm for Lion {
    fn name(&self) -> &'static str {
        "lion"
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn hyper(&self) -> Hyper {
        crate::hyper::hyper([
            ("lr", num(self.lr)),
            ("betas", pair_value(self.betas)),
            ("weight_decay", num(self.weight_decay)),
            ("weight_decouple", self.weight_decouple.into()),
            ("fixed_decay", self.fixed_decay.into()),
            ("maximize", self.maximize.into()),
        ])
    }
    fn slots(&self, _p: &ParamInfo) -> Vec<Slot> {
        vec![Slot::zeros("exp_avg")]
    }

    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let c = self.scalars::<F>(ctx);
        let n = t.param.len();
        let g = c.prep.tensor(t.grad, t.param);
        let m = &mut t.slots[0];
        for i in 0..n {
            t.param[i] = t.param[i] * c.decay;
        }
        let mut u: Vec<F> = m.iter().map(|&m| m * c.b1).collect();
        for i in 0..n {
            u[i] = add_scaled(u[i], c.omb1, g[i]);
        }
        for x in u.iter_mut() {
            *x = x.sign();
        }
        for i in 0..n {
            t.param[i] = add_scaled(t.param[i], c.neg_lr, u[i]);
        }
        for i in 0..n {
            m[i] = m[i] * c.b2;
        }
        for i in 0..n {
            m[i] = add_scaled(m[i], c.omb2, g[i]);
        }
    }

    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.fused_kernel::<F, false>(ctx, t, F::ONE, F::ONE)
    }

    fn fused_scaled<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>, g_scale: F, p_scale: F) {
        self.fused_kernel::<F, true>(ctx, t, g_scale, p_scale)
    }
}

impl Lion {
    /// The fused kernel; with `SCALED` it steps on `g·gs` and `p·ps` (see
    /// [`Algorithm::fused_scaled`]), the two multiplies folded into the pass.
    fn fused_kernel<F: Float, const SCALED: bool>(&self, ctx: &StepCtx, t: TensorMut<'_, F>, gs: F, ps: F) {
        let c = self.scalars::<F>(ctx);
        zip_chunks(t.param, t.grad, [&mut t.slots[0][..]], move |p, g, [m]| {
            let n = p.len();
            let (g, m) = (&g[..n], &mut m[..n]);
            for i in 0..n {
                let (gr, pi) = if SCALED { (g[i] * gs, p[i] * ps) } else { (g[i], p[i]) };
                let gi = c.prep.apply(gr, pi);
                let u = add_scaled(m[i] * c.b1, c.omb1, gi).sign();
                p[i] = add_scaled(pi * c.decay, c.neg_lr, u);
                m[i] = add_scaled(m[i] * c.b2, c.omb2, gi);
            }
        });
    }
}
