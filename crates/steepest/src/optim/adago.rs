//! AdaGO: Muon's orthogonalized direction with an AdaGrad-norm step size.
//!
//! Paper: *"AdaGrad Meets Muon: Adaptive Stepsizes for Orthogonal Updates"*
//! (Algorithm 2). One scalar accumulator per matrix collects the squared
//! (clamped) gradient norms; the step size is AdaGrad-norm's, floored at ε:
//! ```text
//! W ← W (1 - γ λ)                               (decoupled weight decay; off by default)
//! M_t = μ M_{t-1} + (1-μ) G_t                   (M_0 = 0)
//! v_t² = v_{t-1}² + min(‖G_t‖_F, γ_c)²          (v_0² = v0²)
//! D_t = (1-μ) G_t + μ M_t  if nesterov, else M_t
//! O_t = NS(D_t)                                 (Muon's Newton–Schulz, ε_NS = 1e-7)
//! α_t = max(ε, lr · min(‖G_t‖_F, γ_c) / v_t)
//! W_t = W - α_t O_t
//! ```
//! `γ_c` is the hyperparameter `gamma` (the clamp on the gradient norm) and ε
//! is `eps` (the step-size floor). Defaults: `lr = 0.05`, `momentum = 0.95`,
//! `gamma = 10`, `eps = 5e-4`, `v0 = 1e-3`, `weight_decay = 0`,
//! `nesterov = false`, `ns_steps = 5`, `ns_coefficients = (3.4445, −4.7750, 2.0315)`.
//!
//! pytorch-optimizer's `AdaGO` divides by `v_t²` instead of `v_t` (the square
//! root is missing), scales lr by the shape like Muon's `match_rms_adamw`, and
//! uses the Nesterov mix's norm in the step size; steepest follows the paper
//! on all three. The golden fixtures come from an independent NumPy
//! implementation of the algorithm box (`tools/reference/gen_adago.py`); see
//! `tools/reference/adago_semantics.md` for the points the paper leaves open.

use crate::algorithm::{Algorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::Result;
use crate::hyper::{num, Hyper, HyperReader};
use crate::linalg::MatmulImpl;
use crate::optim::newton_schulz::orthogonalize;
use crate::tensor::ParamInfo;

/// Newton–Schulz normalization floor.
const NS_EPS: f64 = 1e-7;

/// Validated AdaGO configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaGo {
    /// Learning rate.
    pub lr: f64,
    /// Momentum μ.
    pub momentum: f64,
    /// Clamp γ on the gradient norm.
    pub gamma: f64,
    /// Step-size floor ε.
    pub eps: f64,
    /// Initial accumulator v_0 (the accumulator starts at v0²).
    pub v0: f64,
    /// Decoupled weight decay λ.
    pub weight_decay: f64,
    /// Nesterov look-ahead.
    pub nesterov: bool,
    /// Newton–Schulz iterations.
    pub ns_steps: usize,
    /// Newton–Schulz coefficients.
    pub ns_coefficients: [f64; 3],
}

impl AdaGo {
    /// Parses and validates hyperparameters.
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut r = HyperReader::new("adago", h);
        let a = AdaGo {
            lr: r.f64("lr", 0.05)?,
            momentum: r.f64("momentum", 0.95)?,
            gamma: r.f64("gamma", 10.0)?,
            eps: r.f64("eps", 5e-4)?,
            v0: r.f64("v0", 1e-3)?,
            weight_decay: r.f64("weight_decay", 0.0)?,
            nesterov: r.bool("nesterov", false)?,
            ns_steps: r.usize("ns_steps", 5)?,
            ns_coefficients: r.floats("ns_coefficients", super::newton_schulz::QUINTIC)?,
        };
        r.non_negative("lr", a.lr)?;
        r.check(
            (0.0..1.0).contains(&a.momentum),
            "momentum",
            format!("must be in [0, 1), got {}", a.momentum),
        )?;
        r.check(
            a.gamma > 0.0 && a.gamma.is_finite(),
            "gamma",
            format!("must be a finite number > 0, got {}", a.gamma),
        )?;
        r.non_negative("eps", a.eps)?;
        r.check(
            a.v0 > 0.0 && a.v0.is_finite(),
            "v0",
            format!("must be a finite number > 0, got {}", a.v0),
        )?;
        r.non_negative("weight_decay", a.weight_decay)?;
        r.check(
            a.ns_steps < 100,
            "ns_steps",
            format!("must be < 100, got {}", a.ns_steps),
        )?;
        r.finish()?;
        Ok(a)
    }

    fn run<F: Float>(&self, how: MatmulImpl, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let [rows, cols] = t.shape else { return };
        let (rows, cols) = (*rows, *cols);
        let n = t.param.len();
        if self.weight_decay != 0.0 {
            let decay = F::from_f64(1.0 - ctx.lr * self.weight_decay);
            for p in t.param.iter_mut() {
                *p = *p * decay;
            }
        }
        let (bufs, inner) = t.work.take(2, n);
        let [d, o] = bufs else {
            unreachable!("take(2) returns two buffers")
        };
        let (mu, mu1) = (F::from_f64(self.momentum), F::from_f64(1.0 - self.momentum));
        let (m, acc) = t.slots.split_at_mut(1);
        let (m, acc) = (&mut m[0], &mut acc[0]);
        for i in 0..n {
            m[i] = mu * m[i] + mu1 * t.grad[i];
        }
        let gnorm = t.grad.iter().map(|g| g.to_f64() * g.to_f64()).sum::<f64>().sqrt();
        let clipped = gnorm.min(self.gamma);
        let v2 = acc[0].to_f64() + clipped * clipped;
        acc[0] = F::from_f64(v2);
        for i in 0..n {
            d[i] = if self.nesterov {
                mu1 * t.grad[i] + mu * m[i]
            } else {
                m[i]
            };
        }
        orthogonalize(
            how,
            d,
            rows,
            cols,
            self.ns_coefficients,
            self.ns_steps,
            NS_EPS,
            inner,
            o,
        );
        let alpha = (ctx.lr * clipped / acc[0].to_f64().sqrt()).max(self.eps);
        let a = F::from_f64(alpha);
        for i in 0..n {
            t.param[i] = t.param[i] - a * o[i];
        }
    }
}

impl Algorithm for AdaGo {
    fn name(&self) -> &'static str {
        "adago"
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn hyper(&self) -> Hyper {
        crate::hyper::hyper([
            ("lr", num(self.lr)),
            ("momentum", num(self.momentum)),
            ("gamma", num(self.gamma)),
            ("eps", num(self.eps)),
            ("v0", num(self.v0)),
            ("weight_decay", num(self.weight_decay)),
            ("nesterov", self.nesterov.into()),
            ("ns_steps", (self.ns_steps as u64).into()),
            (
                "ns_coefficients",
                serde_json::Value::Array(self.ns_coefficients.iter().map(|&x| num(x)).collect()),
            ),
        ])
    }
    fn slots(&self, _p: &ParamInfo) -> Vec<Slot> {
        vec![
            Slot::zeros("momentum_buffer"),
            Slot::scalar("sum_sq_grad_norm", self.v0 * self.v0),
        ]
    }
    fn accepts(&self, shape: &[usize]) -> bool {
        shape.len() == 2
    }
    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(MatmulImpl::Naive, ctx, t)
    }
    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(MatmulImpl::Faer, ctx, t)
    }
}
