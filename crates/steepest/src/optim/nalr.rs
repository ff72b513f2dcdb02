//! Noise-adaptive layerwise learning rates on top of Muon (`muon-nalr`).
//!
//! Paper: Hao, Gong, Xu, Wang & Liu, *"Noise-Adaptive Layerwise Learning Rates:
//! Accelerating Geometry-Aware Optimization for Deep Neural Network Training"*
//! (arXiv:2510.14009; the method is called LANTON there, Algorithm 1). Within
//! a group of layers that share one norm (here: the matrices a parameter group
//! sends to Muon), every layer ℓ keeps an on-the-fly estimate `H^ℓ` of its
//! gradient noise measured in the dual norm of that norm, and gets a
//! time-varying learning rate that is smaller the noisier it is relative to the
//! least noisy layer of the group:
//! ```text
//! D_t^ℓ  = G_t^ℓ − G_{t−1}^ℓ                                  (Option II: consecutive gradients; G_0 = 0)
//! H_t^ℓ  = β₂ H_{t−1}^ℓ + (1 − β₂) ‖D_t^ℓ‖_*²                  (H_0 = 0)
//! α_t^ℓ  = 1 / sqrt(H_t^ℓ + ε_H)
//! η_t^ℓ  = η_t · sqrt(α_t^ℓ / max_{j ∈ group} α_t^j)         (≤ η_t; = η_t for the least noisy layer)
//! B_t^ℓ  = μ B_{t−1}^ℓ + (1 − μ) G_t^ℓ                         (Muon's momentum, B_0 = 0)
//! X^ℓ   ← X^ℓ (1 − η_t^ℓ λ) − η_t^ℓ s(A, C) NS(B_t^ℓ)          (Muon's step with η_t^ℓ; see muon.rs)
//! ```
//! The dual norm: Muon's step `−η s UVᵀ` is the linear minimization oracle of
//! the ball `{‖X‖₂ ≤ s}`, i.e. of the norm `‖X‖₂ / s`, whose dual is
//! `‖D‖ = s · ‖D‖_*` (nuclear norm, the sum of singular values) with
//! `s = s(A, C)` Muon's shape factor (`adjust_lr_fn`). With the default
//! `adjust_lr_fn = "spectral_unclamped"` (`s = sqrt(A/C)`, the RMS→RMS operator
//! norm the paper uses for hidden layers) it is `sqrt(d_out/d_in) ‖D‖_*`.
//!
//! Hyperparameters: Muon's (`lr`, `weight_decay`, `momentum`, `nesterov`,
//! `ns_coefficients`, `eps`, `ns_steps`, `adjust_lr_fn`, `flatten`) plus
//! `beta2` (β₂, default 0.99) and `noise_eps` (ε_H, default 1e-12). The
//! `muon-nalr` recipe routes everything Muon cannot update (and `adamw_params`)
//! to AdamW exactly like the `muon` recipe. Defaults that differ from `muon`:
//! `nesterov = false` (the algorithm box orthogonalizes the EMA `B_t` itself)
//! and `adjust_lr_fn = "spectral_unclamped"` (RMS→RMS geometry).
//!
//! Choices the paper leaves open, or that steepest could not check against the
//! algorithm box (the full text was not reachable while this was written; see
//! `tools/reference/paper2b_semantics.md`):
//! * Variance estimate: Option I of Algorithm 1 needs a second, independent
//!   stochastic gradient per step, which a single optimizer step does not get;
//!   steepest implements Option II (difference of consecutive gradients of the
//!   layer). The first difference uses `G_0 = 0`. A frozen step (no gradient)
//!   leaves `G_{t−1}` and `H` untouched, so the next difference spans the gap.
//! * The exact map from `H` to the learning rate above (`α = 1/sqrt(H + ε)`,
//!   ratio to the group's largest `α`, square root) is steepest's reading;
//!   β₂ and ε_H defaults are steepest's.
//! * "Group" is steepest's parameter group (the layers of one `GroupSpec` that
//!   the recipe sends to Muon). The group maximum is taken over the layers with
//!   a gradient this step, before any of them is updated, from the same
//!   `H_t` each layer then uses ([`crate::StepCtx::group_stat`]). Zero-size
//!   layers do not take part.
//! * Decoupled weight decay uses the layer's learning rate `η_t^ℓ`.
//! * `H` is stored in the parameter's dtype (a scalar slot, saved in state
//!   files); `D` is formed in the parameter's dtype and its nuclear norm is
//!   computed in f64. Reference kernel: one-sided Jacobi; fused: faer's SVD
//!   (the two agree to ~1e-15, hence `Exactness::Within` in the registry).
//!
//! Cost: the group pre-pass and the step each compute the layer's nuclear norm
//! (two SVDs of the gradient difference per layer per step), and faer's SVD
//! allocates its scratch, so this fused kernel is not allocation-free.

use std::sync::Arc;

use crate::algorithm::{Algorithm, DynAlgorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::{Error, Result};
use crate::hyper::{num, Hyper, HyperReader};
use crate::kernel::Kernel;
use crate::linalg::{nuclear_norm, MatmulImpl};
use crate::optim::Muon;
use crate::tensor::ParamInfo;

/// Muon with noise-adaptive layerwise learning rates.
#[derive(Clone, Debug, PartialEq)]
pub struct MuonNalr {
    /// The Muon step each layer takes (with its own learning rate).
    pub muon: Muon,
    /// EMA factor β₂ of the noise estimate.
    pub beta2: f64,
    /// ε_H added to the noise estimate before the square root.
    pub noise_eps: f64,
}

impl MuonNalr {
    /// Parses and validates hyperparameters (Muon's plus `beta2` and `noise_eps`).
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut own = Hyper::new();
        let mut rest: Hyper = [
            ("nesterov".to_string(), serde_json::Value::from(false)),
            (
                "adjust_lr_fn".to_string(),
                serde_json::Value::from("spectral_unclamped"),
            ),
        ]
        .into_iter()
        .collect();
        for (k, v) in h {
            if k == "beta2" || k == "noise_eps" {
                own.insert(k.clone(), v.clone());
            } else {
                rest.insert(k.clone(), v.clone());
            }
        }
        let mut r = HyperReader::new("muon-nalr", &own);
        let beta2 = r.f64("beta2", 0.99)?;
        let noise_eps = r.f64("noise_eps", 1e-12)?;
        r.check(
            (0.0..1.0).contains(&beta2),
            "beta2",
            format!("must be in [0, 1), got {beta2}"),
        )?;
        r.check(
            noise_eps > 0.0 && noise_eps.is_finite(),
            "noise_eps",
            format!("must be a finite number > 0, got {noise_eps}"),
        )?;
        r.finish()?;
        let muon = Muon::from_hyper(&rest).map_err(|e| match e {
            Error::InvalidHyper { field, message, .. } => Error::hyper("muon-nalr", &field, message),
            e => e,
        })?;
        Ok(MuonNalr { muon, beta2, noise_eps })
    }

    /// `(H_t, α_t)` of this layer from its gradient and state (state unchanged),
    /// or `None` for a zero-size or non-matrix parameter.
    fn noise<F: Float>(&self, how: MatmulImpl, t: &mut TensorMut<'_, F>) -> Option<(F, f64)> {
        let (rows, cols) = self.muon.matrix_shape(t.shape)?;
        let n = t.param.len();
        if n == 0 {
            return None;
        }
        let (bufs, _) = t.work.take(1, n);
        let d = &mut bufs[0];
        let prev = &t.slots[1];
        for i in 0..n {
            d[i] = t.grad[i] - prev[i];
        }
        let dual = self.muon.adjust_lr_fn.apply(1.0, rows, cols) * nuclear_norm(how, d, rows, cols);
        let h = self.beta2 * t.slots[2][0].to_f64() + (1.0 - self.beta2) * dual * dual;
        let h = F::from_f64(h);
        Some((h, 1.0 / (h.to_f64() + self.noise_eps).sqrt()))
    }

    fn run<F: Float>(&self, how: MatmulImpl, ctx: &StepCtx, mut t: TensorMut<'_, F>) {
        let ratio = match self.noise(how, &mut t) {
            Some((h, alpha)) => {
                t.slots[2][0] = h;
                let grad = t.grad;
                t.slots[1].copy_from_slice(grad);
                // NaN group statistic (the kernel called on its own): this layer is its group.
                let best = if ctx.group_stat.is_nan() {
                    alpha
                } else {
                    ctx.group_stat.max(alpha)
                };
                (alpha / best).sqrt()
            }
            None => 1.0,
        };
        let ctx = StepCtx {
            lr: ctx.lr * ratio,
            ..*ctx
        };
        let grad = t.grad;
        let inner = TensorMut {
            name: t.name,
            shape: t.shape,
            param: &mut *t.param,
            grad,
            slots: &mut t.slots[..1],
            work: t.work.inner(),
            samples: t.samples,
        };
        match how {
            MatmulImpl::Naive => Algorithm::reference(&self.muon, &ctx, inner),
            MatmulImpl::Faer => Algorithm::fused(&self.muon, &ctx, inner),
        }
    }
}

impl Algorithm for MuonNalr {
    fn name(&self) -> &'static str {
        "muon-nalr"
    }
    fn lr(&self) -> f64 {
        self.muon.lr
    }
    fn hyper(&self) -> Hyper {
        let mut h = Algorithm::hyper(&self.muon);
        h.insert("beta2".into(), num(self.beta2));
        h.insert("noise_eps".into(), num(self.noise_eps));
        h
    }
    fn slots(&self, _p: &ParamInfo) -> Vec<Slot> {
        vec![
            Slot::zeros("momentum_buffer"),
            Slot::zeros("prev_grad"),
            Slot::scalar("noise_sq", 0.0),
        ]
    }
    fn accepts(&self, shape: &[usize]) -> bool {
        Algorithm::accepts(&self.muon, shape)
    }
    fn check_param(&self, p: &ParamInfo) -> Result<()> {
        Algorithm::check_param(&self.muon, p)
    }
    fn needs_group_stat(&self) -> bool {
        true
    }
    fn group_stat<F: Float>(&self, kernel: Kernel, _ctx: &StepCtx, mut t: TensorMut<'_, F>) -> f64 {
        let how = match kernel {
            Kernel::Reference => MatmulImpl::Naive,
            Kernel::Fused => MatmulImpl::Faer,
        };
        self.noise(how, &mut t).map_or(f64::NAN, |(_, alpha)| alpha)
    }
    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(MatmulImpl::Naive, ctx, t)
    }
    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(MatmulImpl::Faer, ctx, t)
    }
}

/// The `muon-nalr` recipe: [`MuonNalr`] on matrices, AdamW (the `adamw_*`
/// hyperparameters, as in the `muon` recipe) on everything else and on the
/// parameters matching `adamw_params`.
pub fn muon_nalr_with_adamw(h: &Hyper) -> Result<crate::optim::Partition> {
    crate::optim::muon::with_adamw("muon-nalr", h, |main_h| {
        let main = MuonNalr::from_hyper(main_h)?;
        let hyper = Algorithm::hyper(&main);
        Ok((Arc::new(main) as Arc<dyn DynAlgorithm>, hyper))
    })
}

#[cfg(test)]
mod tests {
    use crate::{hyper, GradSet, Optimizer, ParamSet};

    /// Two layers, one with constant gradients (no noise after the first step)
    /// and one with alternating ones. Alone, each is its own group and takes
    /// full Muon steps; together, the noisy one's steps after the first shrink
    /// and the quiet one's do not.
    #[test]
    fn noisy_layer_gets_the_smaller_learning_rate() {
        let h = hyper([("lr", 0.1), ("weight_decay", 0.0), ("momentum", 0.0)]);
        let quiet_g = [1.0, 0.0, 0.5, 1.0];
        let noisy_g = |t: usize| {
            let s = if t.is_multiple_of(2) { 1.0 } else { -1.0 };
            vec![s, 0.0, 0.5 * s, s]
        };
        let mut pair = ParamSet::<f64>::new();
        pair.push("quiet", &[2, 2], vec![0.0; 4]).unwrap();
        pair.push("noisy", &[2, 2], vec![0.0; 4]).unwrap();
        let mut solo_q = ParamSet::<f64>::new();
        solo_q.push("quiet", &[2, 2], vec![0.0; 4]).unwrap();
        let mut solo_n = ParamSet::<f64>::new();
        solo_n.push("noisy", &[2, 2], vec![0.0; 4]).unwrap();
        let mut opt = Optimizer::new("muon-nalr", &h, &pair).unwrap();
        let mut opt_q = Optimizer::new("muon-nalr", &h, &solo_q).unwrap();
        let mut opt_n = Optimizer::new("muon-nalr", &h, &solo_n).unwrap();
        for t in 0..4 {
            let before = (pair.get("quiet").unwrap().data[0], pair.get("noisy").unwrap().data[0]);
            let alone = (
                solo_q.get("quiet").unwrap().data[0],
                solo_n.get("noisy").unwrap().data[0],
            );
            let mut g = GradSet::new();
            g.insert("quiet", quiet_g.to_vec());
            g.insert("noisy", noisy_g(t));
            opt.step(&mut pair, &mut g).unwrap();
            let mut gq = GradSet::new();
            gq.insert("quiet", quiet_g.to_vec());
            opt_q.step(&mut solo_q, &mut gq).unwrap();
            let mut gn = GradSet::new();
            gn.insert("noisy", noisy_g(t));
            opt_n.step(&mut solo_n, &mut gn).unwrap();
            let dq = (pair.get("quiet").unwrap().data[0] - before.0).abs();
            let dn = (pair.get("noisy").unwrap().data[0] - before.1).abs();
            let dq1 = (solo_q.get("quiet").unwrap().data[0] - alone.0).abs();
            let dn1 = (solo_n.get("noisy").unwrap().data[0] - alone.1).abs();
            assert!(dn1 > 0.01, "step {t}: the noisy layer alone moves a full step ({dn1})");
            // The quiet layer always has the group's largest rate: unchanged by its neighbour.
            assert_eq!(dq, dq1, "step {t}: quiet layer");
            if t == 0 {
                // Same first gradient norm, so the same noise estimate: equal rates.
                assert!((dn - dn1).abs() <= 1e-15, "step 0: {dn} vs {dn1}");
            } else {
                // Step 1: H_noisy ≈ 5 H_quiet, so the rate ratio is 5^(-1/4) ≈ 0.67 (smaller later).
                assert!(dn < 0.8 * dn1, "step {t}: noisy layer {dn} vs alone {dn1}");
            }
        }
    }
}
