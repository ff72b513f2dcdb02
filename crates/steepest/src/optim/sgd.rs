//! SGD with heavy-ball or Nesterov momentum.
//!
//! Papers: Robbins & Monro (1951) for SGD; Polyak's heavy ball, analysed in the
//! seed paper *"Accelerated Convergence of Stochastic Heavy Ball Method under
//! Anisotropic Gradient Noise"* (its iteration (1.2): `x_{t+1} = x_t - η ∇f(x_t) + β (x_t - x_{t-1})`);
//! Nesterov momentum in Sutskever et al. (2013)'s formulation.
//!
//! Update, with `g_t` the gradient (negated if `maximize`), for `t ≥ 1`:
//! ```text
//! g_t ← g_t + λ θ_{t-1}                      (weight_decay λ: coupled L2)
//! b_1 = g_1;   b_t = μ b_{t-1} + (1 - τ) g_t  (momentum μ, dampening τ)
//! d_t = g_t + μ b_t   if nesterov,  else  b_t  (d_t = g_t when μ = 0)
//! θ_t = θ_{t-1} - γ d_t
//! ```
//! The buffer form equals the paper's heavy ball with `β = μ` and step `γ`
//! (up to the `(1-τ)` dampening PyTorch adds).
//!
//! Defaults (PyTorch's `torch.optim.SGD`): `lr = 1e-3`, `momentum = 0`,
//! `dampening = 0`, `weight_decay = 0`, `nesterov = false`, `maximize = false`.
//!
//! Where PyTorch differs from the papers, steepest follows PyTorch: the first
//! momentum buffer is the raw gradient (no dampening on step 1), and Nesterov
//! is the "look-ahead gradient" form `g + μ b` rather than an evaluation at a
//! shifted point. Nesterov requires `momentum > 0` and `dampening = 0`.

use crate::algorithm::{Algorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::Result;
use crate::hyper::{num, Hyper, HyperReader};
use crate::kernel::zip_chunks;
use crate::ops::{add_scaled, GradPrep};
use crate::tensor::ParamInfo;

/// Validated SGD configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Sgd {
    /// Learning rate γ.
    pub lr: f64,
    /// Momentum μ.
    pub momentum: f64,
    /// Dampening τ.
    pub dampening: f64,
    /// Coupled L2 weight decay λ.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Sgd {
    /// Parses and validates PyTorch-named hyperparameters.
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut r = HyperReader::new("sgd", h);
        let s = Sgd {
            lr: r.f64("lr", 1e-3)?,
            momentum: r.f64("momentum", 0.0)?,
            dampening: r.f64("dampening", 0.0)?,
            weight_decay: r.f64("weight_decay", 0.0)?,
            nesterov: r.bool("nesterov", false)?,
            maximize: r.bool("maximize", false)?,
        };
        r.non_negative("lr", s.lr)?;
        r.non_negative("momentum", s.momentum)?;
        r.check(
            s.dampening.is_finite(),
            "dampening",
            format!("must be finite, got {}", s.dampening),
        )?;
        r.non_negative("weight_decay", s.weight_decay)?;
        r.check(
            !s.nesterov || (s.momentum > 0.0 && s.dampening == 0.0),
            "nesterov",
            "Nesterov momentum requires momentum > 0 and dampening = 0",
        )?;
        r.finish()?;
        Ok(s)
    }
}

impl Algorithm for Sgd {
    fn name(&self) -> &'static str {
        "sgd"
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn hyper(&self) -> Hyper {
        crate::hyper::hyper([
            ("lr", num(self.lr)),
            ("momentum", num(self.momentum)),
            ("dampening", num(self.dampening)),
            ("weight_decay", num(self.weight_decay)),
            ("nesterov", self.nesterov.into()),
            ("maximize", self.maximize.into()),
        ])
    }
    fn slots(&self, _p: &ParamInfo) -> Vec<Slot> {
        if self.momentum != 0.0 {
            vec![Slot::zeros("momentum_buffer")]
        } else {
            vec![]
        }
    }

    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let neg_lr = F::from_f64(-ctx.lr);
        let g = GradPrep::new(self.maximize, self.weight_decay).tensor(t.grad, t.param);
        let d: Vec<F> = if self.momentum != 0.0 {
            let mu = F::from_f64(self.momentum);
            let damp = F::from_f64(1.0 - self.dampening);
            let buf = &mut t.slots[0];
            if ctx.step == 1 {
                buf.copy_from_slice(&g);
            } else {
                for i in 0..buf.len() {
                    buf[i] = buf[i] * mu;
                }
                for i in 0..buf.len() {
                    buf[i] = add_scaled(buf[i], damp, g[i]);
                }
            }
            if self.nesterov {
                g.iter().zip(buf.iter()).map(|(&g, &b)| add_scaled(g, mu, b)).collect()
            } else {
                buf.clone()
            }
        } else {
            g
        };
        for i in 0..t.param.len() {
            t.param[i] = add_scaled(t.param[i], neg_lr, d[i]);
        }
    }

    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let neg_lr = F::from_f64(-ctx.lr);
        let prep = GradPrep::new(self.maximize, self.weight_decay);
        if self.momentum == 0.0 {
            zip_chunks(t.param, t.grad, [], move |p, g, []| {
                let g = &g[..p.len()];
                for i in 0..p.len() {
                    p[i] = add_scaled(p[i], neg_lr, prep.apply(g[i], p[i]));
                }
            });
            return;
        }
        let mu = F::from_f64(self.momentum);
        let damp = F::from_f64(1.0 - self.dampening);
        let nesterov = self.nesterov;
        if ctx.step == 1 {
            zip_chunks(t.param, t.grad, [&mut t.slots[0][..]], move |p, g, [b]| {
                let n = p.len();
                let (g, b) = (&g[..n], &mut b[..n]);
                for i in 0..n {
                    let gi = prep.apply(g[i], p[i]);
                    b[i] = gi;
                    let d = if nesterov { add_scaled(gi, mu, gi) } else { gi };
                    p[i] = add_scaled(p[i], neg_lr, d);
                }
            });
        } else {
            zip_chunks(t.param, t.grad, [&mut t.slots[0][..]], move |p, g, [b]| {
                let n = p.len();
                let (g, b) = (&g[..n], &mut b[..n]);
                for i in 0..n {
                    let gi = prep.apply(g[i], p[i]);
                    let bi = add_scaled(b[i] * mu, damp, gi);
                    b[i] = bi;
                    let d = if nesterov { add_scaled(gi, mu, bi) } else { bi };
                    p[i] = add_scaled(p[i], neg_lr, d);
                }
            });
        }
    }
}
