//! ASGO: a one-sided, full-matrix adaptive preconditioner for matrix parameters.
//!
//! Paper: An, Liu, Pan, Ma, Goldfarb & Zhang, *"ASGO: Adaptive Structured
//! Gradient Optimization"* (arXiv 2503.20762; NeurIPS 2025). Algorithm 1
//! (the analysed method) for a matrix `W ∈ ℝ^{m×n}` with gradient `G_t`:
//! ```text
//! V_t = V_{t-1} + G_t G_tᵀ                    (m × m)
//! W_{t+1} = W_t − η V_t^{-1/2} G_t
//! ```
//! and the practical modifications of its Section 5 / Algorithm 2, as the
//! official code (github infinity-stars/ASGO, `optimizers/asgo.py`) runs them:
//! 1. **momentum** on the gradient, an EMA `M_t = μ M_{t-1} + (1−μ) G_t`
//!    (`lerp`), and the preconditioner applied to `M_t` instead of `G_t`;
//! 2. **EMA instead of the sum**: `V_t = β₂ V_{t-1} + (1−β₂) G_t G_tᵀ` (`lerp`);
//! 3. **the smaller side**: `V` is built on the smaller dimension
//!    (`G Gᵀ` and `V^{-1/2} M` if `m < n`; else `Gᵀ G` and `M V^{-1/2}`),
//!    so its memory is `min(m, n)²`;
//! 4. **damping** `ε`: the paper's `Λ_t = V_t^{1/2} + εI`, update with `Λ_t^{-1}`;
//! 5. **grafting / scaling**: the update is rescaled to Frobenius norm
//!    `0.2·sqrt(m·n)` (AdamW's typical update RMS of 0.2, as Moonshot's Muon);
//! 6. **decoupled weight decay** `W ← W(1 − ηλ)` before the step;
//! 7. **root interval** `precondition_frequency = τ`: the inverse root is
//!    recomputed on steps 1, 1+τ, 1+2τ, … of the parameter and reused in between.
//!
//! ```text
//! M_t = lerp(M_{t-1}, G_t, 1−μ)
//! V_t = lerp(V_{t-1}, G_t G_tᵀ, 1−β₂)          (or Gᵀ G on the right)
//! R_t = (V_t^{1/2} + εI)^{-1}   if (t−1) mod τ = 0, else R_{t-1}
//! U_t = R_t M_t                                (or M_t R_t)
//! W_t = W_{t-1}(1 − ηλ) − η · (0.2·sqrt(mn)/‖U_t‖_F) · U_t
//! ```
//! Defaults (the official `asgo.py`/`asgo.yaml`): `lr = 1e-2`, `momentum = 0.9`,
//! `beta2 = 0.8`, `eps = 1e-10`, `weight_decay = 0.1`, `precondition_frequency = 1`.
//!
//! Choices the paper leaves open and what steepest does:
//! - The inverse root is computed exactly from a symmetric eigendecomposition
//!   `V = QΛQᵀ`, `R = Q diag(1/(sqrt(max(λ, 0)) + ε)) Qᵀ`, in `f64` whatever the
//!   parameter's dtype (faer's eigensolver in the fused kernel, a Jacobi
//!   iteration in the reference kernel, see `spectral.rs`). The official code
//!   approximates `(V + εI)^{-1/2}` with 10 Polar-Express iterations instead;
//!   steepest follows the paper's formula.
//! - `‖U‖_F = 0` (a zero momentum) gives a zero update instead of NaN.
//! - A square matrix is preconditioned on the right (the official code's tie rule).
//! - Matrices only (rank 2); the registry's `asgo` recipe routes everything
//!   else, and names matching `adamw_params`, to AdamW (like the `muon` recipe).
//!   The code's "skip the update if the root is not finite" fallback becomes:
//!   a non-finite `V` leaves the previous root in place.

use crate::algorithm::{Algorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::{Error, Result};
use crate::hyper::{num, Hyper, HyperReader};
use crate::kernel::{sum_squares, zip_chunks};
use crate::linalg::MatmulImpl;
use crate::ops::{add_scaled, Lerp};
use crate::optim::spectral::{matrix_function, sym_eig};
use crate::tensor::ParamInfo;

/// Validated ASGO configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Asgo {
    /// Learning rate η.
    pub lr: f64,
    /// Momentum μ (EMA of gradients).
    pub momentum: f64,
    /// EMA factor β₂ of the preconditioner.
    pub beta2: f64,
    /// Damping ε.
    pub eps: f64,
    /// Decoupled weight decay λ.
    pub weight_decay: f64,
    /// Steps between recomputations of the inverse root τ.
    pub precondition_frequency: usize,
}

impl Asgo {
    /// Parses and validates hyperparameters (the official code's names).
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut r = HyperReader::new("asgo", h);
        let a = Asgo {
            lr: r.f64("lr", 1e-2)?,
            momentum: r.f64("momentum", 0.9)?,
            beta2: r.f64("beta2", 0.8)?,
            eps: r.f64("eps", 1e-10)?,
            weight_decay: r.f64("weight_decay", 0.1)?,
            precondition_frequency: r.usize("precondition_frequency", 1)?,
        };
        r.non_negative("lr", a.lr)?;
        r.unit_interval("momentum", a.momentum)?;
        r.unit_interval("beta2", a.beta2)?;
        r.non_negative("eps", a.eps)?;
        r.non_negative("weight_decay", a.weight_decay)?;
        r.check(
            a.precondition_frequency >= 1,
            "precondition_frequency",
            "must be at least 1",
        )?;
        r.finish()?;
        Ok(a)
    }

    /// `(rows, cols, d, left)`: the matrix view and the preconditioned side.
    fn layout(shape: &[usize]) -> Option<(usize, usize, usize, bool)> {
        match shape {
            [m, n] => {
                let left = m < n;
                Some((*m, *n, if left { *m } else { *n }, left))
            }
            _ => None,
        }
    }

    fn run<F: Float>(&self, how: MatmulImpl, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let Some((m, n, d, left)) = Self::layout(t.shape) else {
            return; // check_param rejected it at build time
        };
        let len = m * n;
        if len == 0 {
            return;
        }
        let (bufs, _) = t.work.take(2, len.max(d * d));
        let [u, gg] = bufs else {
            unreachable!("take(2) returns two buffers")
        };
        let (u, gg) = (&mut u[..len], &mut gg[..d * d]);
        let [buf, precond, root] = t.slots else {
            unreachable!("asgo state has 3 slots by construction")
        };
        let ema = Lerp::<F>::new(1.0 - self.momentum);
        // 1. momentum
        match how {
            MatmulImpl::Naive => {
                for i in 0..len {
                    buf[i] = ema.apply(buf[i], t.grad[i]);
                }
            }
            MatmulImpl::Faer => zip_chunks(&mut buf[..], t.grad, [], move |b, g, []| {
                let g = &g[..b.len()];
                for i in 0..b.len() {
                    b[i] = ema.apply(b[i], g[i]);
                }
            }),
        }
        // 2. preconditioner EMA on the smaller side
        if left {
            F::gemm(how, gg, F::ZERO, F::ONE, t.grad, (m, n), false, t.grad, (m, n), true);
        } else {
            F::gemm(how, gg, F::ZERO, F::ONE, t.grad, (m, n), true, t.grad, (m, n), false);
        }
        let pe = Lerp::<F>::new(1.0 - self.beta2);
        for i in 0..d * d {
            precond[i] = pe.apply(precond[i], gg[i]);
        }
        // 3. inverse root, every τ steps
        let tau = self.precondition_frequency as u64;
        if (ctx.step.saturating_sub(1)).is_multiple_of(tau) {
            let v: Vec<f64> = precond.iter().map(|x| x.to_f64()).collect();
            if let Some((vals, vecs)) = sym_eig(how, &v, d) {
                let mut r = vec![0.0; d * d];
                let eps = self.eps;
                matrix_function(&vals, &vecs, d, |l| 1.0 / (l.max(0.0).sqrt() + eps), &mut r);
                for i in 0..d * d {
                    root[i] = F::from_f64(r[i]);
                }
            }
        }
        // 4. preconditioned momentum
        if left {
            F::gemm(how, u, F::ZERO, F::ONE, root, (d, d), false, buf, (m, n), false);
        } else {
            F::gemm(how, u, F::ZERO, F::ONE, buf, (m, n), false, root, (d, d), false);
        }
        // 5. scaling to Frobenius norm 0.2 sqrt(mn)
        let norm = match how {
            MatmulImpl::Naive => u.iter().map(|x| x.to_f64() * x.to_f64()).sum::<f64>().sqrt(),
            MatmulImpl::Faer => sum_squares(u).sqrt(),
        };
        let s = if norm > 0.0 {
            0.2 * ((m * n) as f64).sqrt() / norm
        } else {
            0.0
        };
        let sf = F::from_f64(s);
        let decay = F::from_f64(1.0 - ctx.lr * self.weight_decay);
        let wd = self.weight_decay > 0.0;
        let neg = F::from_f64(-ctx.lr);
        let apply = move |p: F, u: F| {
            let p = if wd { p * decay } else { p };
            add_scaled(p, neg, u * sf)
        };
        match how {
            MatmulImpl::Naive => {
                for i in 0..len {
                    t.param[i] = apply(t.param[i], u[i]);
                }
            }
            MatmulImpl::Faer => zip_chunks(t.param, u, [], move |p, u, []| {
                let u = &u[..p.len()];
                for i in 0..p.len() {
                    p[i] = apply(p[i], u[i]);
                }
            }),
        }
    }
}

impl Algorithm for Asgo {
    fn name(&self) -> &'static str {
        "asgo"
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn hyper(&self) -> Hyper {
        crate::hyper::hyper([
            ("lr", num(self.lr)),
            ("momentum", num(self.momentum)),
            ("beta2", num(self.beta2)),
            ("eps", num(self.eps)),
            ("weight_decay", num(self.weight_decay)),
            ("precondition_frequency", (self.precondition_frequency as u64).into()),
        ])
    }
    fn slots(&self, p: &ParamInfo) -> Vec<Slot> {
        let d = Self::layout(&p.shape).map_or(0, |(_, _, d, _)| d);
        vec![
            Slot::zeros("momentum_buffer"),
            Slot::sized("precond", d * d),
            Slot::sized("inv_root", d * d),
        ]
    }
    fn accepts(&self, shape: &[usize]) -> bool {
        Self::layout(shape).is_some()
    }
    fn check_param(&self, p: &ParamInfo) -> Result<()> {
        match Self::layout(&p.shape) {
            Some(_) => Ok(()),
            None => Err(Error::param(
                &p.name,
                format!(
                    "asgo updates matrices, this parameter has shape {:?} (use the `asgo` recipe, which routes it to AdamW)",
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

/// The `asgo` recipe: ASGO on matrices, AdamW on everything else and on the
/// 2-D parameters whose names match `adamw_params` (default `["*embed*",
/// "*head*"]`), as the official code trains GPT-2 ("1D parameters and
/// embeddings should be handled by AdamW").
///
/// Hyperparameters: ASGO's own, plus `adamw_lr` (3e-4), `adamw_betas`
/// ([0.9, 0.95]), `adamw_eps` (1e-8), `adamw_weight_decay` (0.0) and
/// `adamw_params` (glob patterns), as in the `muon` recipe.
pub fn asgo_with_adamw(h: &Hyper) -> Result<crate::optim::Partition> {
    crate::optim::muon::with_adamw("asgo", h, |main_h| {
        let main = Asgo::from_hyper(main_h)?;
        let hyper = Algorithm::hyper(&main);
        Ok((
            std::sync::Arc::new(main) as std::sync::Arc<dyn crate::algorithm::DynAlgorithm>,
            hyper,
        ))
    })
}
