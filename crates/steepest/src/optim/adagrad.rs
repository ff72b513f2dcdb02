//! AdaGrad.
//!
//! Paper: Duchi, Hazan & Singer, *"Adaptive Subgradient Methods for Online
//! Learning and Stochastic Optimization"* (JMLR 2011), the diagonal update of
//! Figure 1 / eq. (4) (`x_{t+1} = x_t - η diag(G_t)^{-1/2} g_t`); the seed's
//! AdaGrad-norm analyses (e.g. *"AdaGrad Meets Muon"*) build on it.
//!
//! Update for `t ≥ 1`, `g_t` the gradient (negated if `maximize`):
//! ```text
//! g_t ← g_t + λ θ_{t-1}                      (coupled L2, weight_decay λ)
//! γ_t = γ / (1 + (t-1) η)                    (lr_decay η)
//! s_t = s_{t-1} + g_t²,   s_0 = initial_accumulator_value
//! θ_t = θ_{t-1} - γ_t g_t / (sqrt(s_t) + ε)
//! ```
//! Defaults (PyTorch `torch.optim.Adagrad`): `lr = 1e-2`, `lr_decay = 0`,
//! `weight_decay = 0`, `initial_accumulator_value = 0`, `eps = 1e-10`,
//! `maximize = false`.
//!
//! Where PyTorch differs from the paper, steepest follows PyTorch: ε is added
//! outside the square root (the paper uses `δI + diag(G)^{1/2}` — the same
//! placement), and the `lr_decay` schedule is PyTorch's addition.

use crate::algorithm::{Algorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::Result;
use crate::hyper::{num, Hyper, HyperReader};
use crate::kernel::zip_chunks;
use crate::ops::{addcdiv, addcmul, GradPrep};
use crate::real::Real;
use crate::tensor::ParamInfo;

/// Validated AdaGrad configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Adagrad {
    /// Learning rate γ.
    pub lr: f64,
    /// η in `γ / (1 + (t-1) η)`.
    pub lr_decay: f64,
    /// Coupled L2 weight decay λ.
    pub weight_decay: f64,
    /// Starting value of the accumulator.
    pub initial_accumulator_value: f64,
    /// ε.
    pub eps: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Adagrad {
    /// Parses and validates PyTorch-named hyperparameters.
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut r = HyperReader::new("adagrad", h);
        let a = Adagrad {
            lr: r.f64("lr", 1e-2)?,
            lr_decay: r.f64("lr_decay", 0.0)?,
            weight_decay: r.f64("weight_decay", 0.0)?,
            initial_accumulator_value: r.f64("initial_accumulator_value", 0.0)?,
            eps: r.f64("eps", 1e-10)?,
            maximize: r.bool("maximize", false)?,
        };
        r.non_negative("lr", a.lr)?;
        r.non_negative("lr_decay", a.lr_decay)?;
        r.non_negative("weight_decay", a.weight_decay)?;
        r.non_negative("initial_accumulator_value", a.initial_accumulator_value)?;
        r.non_negative("eps", a.eps)?;
        r.finish()?;
        Ok(a)
    }

    fn neg_clr<F: Real>(&self, ctx: &StepCtx) -> F {
        F::from_f64(-(ctx.lr / (1.0 + (ctx.step as f64 - 1.0) * self.lr_decay)))
    }
}

impl Algorithm for Adagrad {
    fn name(&self) -> &'static str {
        "adagrad"
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn hyper(&self) -> Hyper {
        crate::hyper::hyper([
            ("lr", num(self.lr)),
            ("lr_decay", num(self.lr_decay)),
            ("weight_decay", num(self.weight_decay)),
            ("initial_accumulator_value", num(self.initial_accumulator_value)),
            ("eps", num(self.eps)),
            ("maximize", self.maximize.into()),
        ])
    }
    fn slots(&self, _p: &ParamInfo) -> Vec<Slot> {
        vec![Slot {
            name: "sum",
            init: self.initial_accumulator_value,
            scalar: false,
            fixed_len: None,
        }]
    }

    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let n = t.param.len();
        let g = GradPrep::new(self.maximize, self.weight_decay).tensor(t.grad, t.param);
        let neg_clr = self.neg_clr::<F>(ctx);
        let s = &mut t.slots[0];
        for i in 0..n {
            s[i] = addcmul(s[i], F::ONE, g[i], g[i]);
        }
        let eps = F::from_f64(self.eps);
        let std: Vec<F> = s.iter().map(|&x| x.sqrt() + eps).collect();
        for i in 0..n {
            t.param[i] = addcdiv(t.param[i], neg_clr, g[i], std[i]);
        }
    }

    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let prep = GradPrep::new(self.maximize, self.weight_decay);
        let neg_clr = self.neg_clr::<F>(ctx);
        let eps = F::from_f64(self.eps);
        zip_chunks(t.param, t.grad, [&mut t.slots[0][..]], move |p, g, [s]| {
            let n = p.len();
            let (g, s) = (&g[..n], &mut s[..n]);
            for i in 0..n {
                let gi = prep.apply(g[i], p[i]);
                let si = addcmul(s[i], F::ONE, gi, gi);
                s[i] = si;
                p[i] = addcdiv(p[i], neg_clr, gi, si.sqrt() + eps);
            }
        });
    }
}
