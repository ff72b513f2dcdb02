//! AEGD: adaptive gradient descent with energy.
//!
//! Papers: the seed paper *"Adaptive Preconditioned Gradient Descent with
//! Energy"* builds on the AEGD framework of Liu & Tian, *"AEGD: Adaptive
//! Gradient Descent with Energy"* (arXiv:2010.05109); the seed's preconditioned
//! scheme with the identity preconditioner is this method. AEGD keeps an
//! energy variable `r` per element and needs the loss `f` on every step
//! (AEGD's Algorithm 1, element-wise energy):
//! ```text
//! r_0 = √(f(θ_0) + c)                      (every element; on the parameter's first step)
//! v_t = ∇f(θ_t) / (2 √(f(θ_t) + c))
//! r_{t+1} = r_t / (1 + 2η v_t²)
//! θ_{t+1} = θ_t − 2η r_{t+1} v_t
//! ```
//! `r` only decreases (the "unconditional energy stability" of the papers), so
//! the effective step `η r/√(f+c)` adapts without a second-moment estimate.
//!
//! Defaults (torchzero's `AEGD`, the reference, and the authors' code):
//! `lr = η = 0.1`, `c = 1`. Needs the loss on every step
//! ([`crate::StepInputs::loss`]); `f + c` must be positive (an error names
//! `loss` otherwise, nothing changes).
//!
//! Choices the papers leave open, and what steepest does: in the stochastic
//! setting `f` is the loss the caller passes with the step (the mini-batch
//! loss at `θ_t`, as torchzero's closure returns); `r_0` uses the loss of the
//! parameter's first step, so a parameter frozen at first starts its energy
//! from the loss at that later step (torchzero creates its state lazily the
//! same way); the schedule scales `η`. Arithmetic follows torchzero:
//! `v = g / (2√(f+c))`, `r ← r / (1 + (v·v)·2η)`, `θ ← θ − (2η·r)·v`, scalars
//! formed in f64 and rounded once to the parameter's type. No weight decay
//! (neither the paper nor the reference has one).

use crate::algorithm::{Algorithm, Float, Needs, Slot, StepCtx, TensorMut};
use crate::error::{Error, Result};
use crate::hyper::{num, Hyper, HyperReader};
use crate::kernel::zip_chunks;
use crate::tensor::ParamInfo;

/// Validated AEGD configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Aegd {
    /// Learning rate η.
    pub lr: f64,
    /// The constant c added to the loss (`f + c > 0`).
    pub c: f64,
}

impl Aegd {
    /// Parses and validates hyperparameters (torchzero's names).
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut r = HyperReader::new("aegd", h);
        let a = Aegd {
            lr: r.f64("lr", 0.1)?,
            c: r.f64("c", 1.0)?,
        };
        r.non_negative("lr", a.lr)?;
        r.check(a.c.is_finite(), "c", format!("must be finite, got {}", a.c))?;
        r.finish()?;
        Ok(a)
    }

    /// `(√(f + c), 2√(f + c), 2η)` for this step.
    fn scalars(&self, ctx: &StepCtx) -> (f64, f64, f64) {
        let sq = (ctx.loss.unwrap_or(f64::NAN) + self.c).sqrt();
        (sq, 2.0 * sq, 2.0 * ctx.lr)
    }
}

impl Algorithm for Aegd {
    fn name(&self) -> &'static str {
        "aegd"
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn hyper(&self) -> Hyper {
        crate::hyper::hyper([("lr", num(self.lr)), ("c", num(self.c))])
    }
    fn slots(&self, _p: &ParamInfo) -> Vec<Slot> {
        vec![Slot::zeros("r")]
    }
    fn needs(&self) -> Needs {
        Needs {
            loss: true,
            ..Needs::default()
        }
    }
    fn check_loss(&self, loss: f64) -> Result<()> {
        if loss + self.c > 0.0 {
            Ok(())
        } else {
            Err(Error::step_input(
                "aegd",
                "loss",
                format!("loss + c must be > 0 (loss {loss}, c {})", self.c),
            ))
        }
    }

    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let (sq, denom, two_eta) = self.scalars(ctx);
        let (denom, two_eta) = (F::from_f64(denom), F::from_f64(two_eta));
        let r = &mut t.slots[0];
        if ctx.step == 1 {
            r.fill(F::from_f64(sq));
        }
        let v: Vec<F> = t.grad.iter().map(|&g| g / denom).collect();
        for i in 0..r.len() {
            r[i] = r[i] / (F::ONE + (v[i] * v[i]) * two_eta);
        }
        let update: Vec<F> = r.iter().zip(&v).map(|(&r, &v)| (two_eta * r) * v).collect();
        for i in 0..t.param.len() {
            t.param[i] = t.param[i] - update[i];
        }
    }

    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let (sq, denom, two_eta) = self.scalars(ctx);
        let (r0, denom, two_eta) = (F::from_f64(sq), F::from_f64(denom), F::from_f64(two_eta));
        let first = ctx.step == 1;
        zip_chunks(t.param, t.grad, [&mut t.slots[0][..]], move |p, g, [r]| {
            let n = p.len();
            let (g, r) = (&g[..n], &mut r[..n]);
            for i in 0..n {
                let v = g[i] / denom;
                let ri = if first { r0 } else { r[i] };
                let ri = ri / (F::ONE + (v * v) * two_eta);
                r[i] = ri;
                p[i] = p[i] - (two_eta * ri) * v;
            }
        });
    }
}
