//! AdaMax: Adam with the infinity norm.
//!
//! Paper: *"Adam: A Method for Stochastic Optimization"* (Kingma & Ba, seed
//! paper), §7.1 and Algorithm 2.
//!
//! Update for `t ≥ 1`, `g_t` the gradient (negated if `maximize`):
//! ```text
//! g_t ← g_t + λ θ_{t-1}                 (coupled L2, weight_decay λ)
//! m_t = β1 m_{t-1} + (1-β1) g_t
//! u_t = max(β2 u_{t-1}, |g_t| + ε)
//! θ_t = θ_{t-1} - (γ / (1-β1^t)) · m_t / u_t
//! ```
//! Defaults (PyTorch `torch.optim.Adamax`): `lr = 2e-3`, `betas = (0.9, 0.999)`,
//! `eps = 1e-8`, `weight_decay = 0`, `maximize = false`.
//!
//! Where PyTorch differs from the paper, steepest follows PyTorch: ε sits
//! inside the maximum (`|g| + ε`) where Algorithm 2 has no ε at all (it would
//! divide by zero on a zero gradient at step 1).

use crate::algorithm::{Algorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::Result;
use crate::hyper::{num, pair_value, Hyper, HyperReader};
use crate::kernel::zip_chunks;
use crate::ops::{addcdiv, GradPrep, Lerp};
use crate::tensor::ParamInfo;

/// Validated AdaMax configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Adamax {
    /// Learning rate γ.
    pub lr: f64,
    /// (β1, β2).
    pub betas: (f64, f64),
    /// ε.
    pub eps: f64,
    /// Coupled L2 weight decay λ.
    pub weight_decay: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Adamax {
    /// Parses and validates PyTorch-named hyperparameters.
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut r = HyperReader::new("adamax", h);
        let a = Adamax {
            lr: r.f64("lr", 2e-3)?,
            betas: r.pair("betas", (0.9, 0.999))?,
            eps: r.f64("eps", 1e-8)?,
            weight_decay: r.f64("weight_decay", 0.0)?,
            maximize: r.bool("maximize", false)?,
        };
        r.non_negative("lr", a.lr)?;
        r.betas("betas", a.betas)?;
        r.non_negative("eps", a.eps)?;
        r.non_negative("weight_decay", a.weight_decay)?;
        r.finish()?;
        Ok(a)
    }
}

impl Algorithm for Adamax {
    fn name(&self) -> &'static str {
        "adamax"
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
            ("maximize", self.maximize.into()),
        ])
    }
    fn slots(&self, _p: &ParamInfo) -> Vec<Slot> {
        vec![Slot::zeros("exp_avg"), Slot::zeros("exp_inf")]
    }

    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let n = t.param.len();
        let g = GradPrep::new(self.maximize, self.weight_decay).tensor(t.grad, t.param);
        let lerp = Lerp::<F>::new(1.0 - self.betas.0);
        let (b2, eps) = (F::from_f64(self.betas.1), F::from_f64(self.eps));
        let neg_clr = F::from_f64(-(ctx.lr / (1.0 - self.betas.0.powf(ctx.step as f64))));
        let (m, u) = t.slots.split_at_mut(1);
        let (m, u) = (&mut m[0], &mut u[0]);
        for i in 0..n {
            m[i] = lerp.apply(m[i], g[i]);
        }
        for i in 0..n {
            u[i] = u[i] * b2;
        }
        let abs_eps: Vec<F> = g.iter().map(|&x| x.abs() + eps).collect();
        for i in 0..n {
            u[i] = u[i].maximum(abs_eps[i]);
        }
        for i in 0..n {
            t.param[i] = addcdiv(t.param[i], neg_clr, m[i], u[i]);
        }
    }

    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let prep = GradPrep::new(self.maximize, self.weight_decay);
        let lerp = Lerp::<F>::new(1.0 - self.betas.0);
        let (b2, eps) = (F::from_f64(self.betas.1), F::from_f64(self.eps));
        let neg_clr = F::from_f64(-(ctx.lr / (1.0 - self.betas.0.powf(ctx.step as f64))));
        let [m, u] = t.slots else {
            unreachable!("adamax state has 2 slots by construction")
        };
        zip_chunks(t.param, t.grad, [&mut m[..], &mut u[..]], move |p, g, [m, u]| {
            let n = p.len();
            let (g, m, u) = (&g[..n], &mut m[..n], &mut u[..n]);
            for i in 0..n {
                let gi = prep.apply(g[i], p[i]);
                let mi = lerp.apply(m[i], gi);
                let ui = (u[i] * b2).maximum(gi.abs() + eps);
                m[i] = mi;
                u[i] = ui;
                p[i] = addcdiv(p[i], neg_clr, mi, ui);
            }
        });
    }
}
