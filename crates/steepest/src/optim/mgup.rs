//! MGUP: scale each coordinate of a momentum optimizer's update by whether its
//! update direction and its gradient agree, keeping every coordinate moving.
//!
//! Paper: Da Chang & Ganzhao Yuan, *"MGUP: A Momentum-Gradient Alignment Update
//! Policy for Stochastic Optimization"* (NeurIPS 2025, openreview id
//! `TDFSKAspoQ`), official code `github.com/MaeChd/MGUP` (files
//! `MGUP/MGUP_AdamW.py`, `MGUP/MGUP_Lion.py`, read at commit `69614f0`).
//!
//! **Why MGUP and not AlphaAdam.** Issue 4 asks for AlphaAdam (Chang, Li &
//! Yuan, *"AlphaAdam: Asynchronous Masked Optimization with Dynamic Alpha for
//! Selective Updates"*, arXiv 2501.18094). Its algorithm box could not be read
//! (only the abstract and introduction of arXiv HTML v1 are reachable here), its
//! code repository (`MaeChd/AlphaAdam`) is gone, and the authors withdrew the
//! paper in v2 (5 Feb 2025: "Theorem 3.5 has issues of insufficient rigor ...
//! we temporarily withdraw this version"). MGUP is the same first and last
//! authors' published method on the same idea (intra-layer step sizes from the
//! alignment of the momentum update with the gradient, as a wrapper for
//! momentum optimizers); its rule is public as code and as the README's
//! equation, so steepest implements MGUP, under MGUP's name. AlphaAdam's own
//! "dynamic alpha" rule is *not* implemented.
//!
//! For a base optimizer whose plain step is `θ ← θ·decay − γ u` (`u` its update
//! direction, `g` the gradient it used):
//! ```text
//! s_i = u_i · g_i                                   (alignment score)
//! MGUP ("topk", default):  I = indices of the K = ⌊τ d⌋ largest s_i (per tensor)
//!                          φ_i = α if i ∈ I else γ_m
//! Cautious-MGUP ("sign"):  φ_i = α if s_i ≥ 0 else γ_m
//! θ ← θ·decay − γ · (φ ∘ u)
//! ```
//! with `τ = mask_ratio`, `α = alpha`, `γ_m = gamma`. Defaults are the official
//! code's: `mask_ratio = 0.5`, `alpha = 2.0`, `gamma = 0.1` (the README writes
//! `α = 1/τ`, `γ_m = τ` as the notation of the analysis and recommends
//! `α ∈ [1, 1.5]`, `γ_m ∈ [0.5, 1]` for large models; the code's defaults are
//! kept). Decay is never scaled.
//!
//! Choices the sources leave open, and what steepest does:
//! - **The mask's inequality** in Cautious-MGUP: the README's case split says
//!   `> 0 → α`, `≤ 0 → γ_m`; the code (`CMGUP_AdamW`) uses `≥ 0 → α`. steepest
//!   follows the code (they differ only where `u·g = 0`, e.g. a zero gradient).
//! - **Ties in the top-K** (`torch.topk` leaves their order unspecified): the
//!   `K` largest scores under the order (score descending, index ascending),
//!   with scores compared by IEEE total order. Fixtures avoid ties.
//! - `K = ⌊τ·d⌋` with `τ·d` evaluated in f64 (Python's `int(mask_ratio * numel)`).
//! - The gradient in the score is the one the base used (after `maximize` and
//!   coupled L2 for Lion), as for [`crate::optim::Cautious`].
//! - AdamW base (`mgup-adamw`): the official code's AdamW is Hugging Face
//!   `transformers`' (deprecated) `AdamW`, not `torch.optim.AdamW`: ε is added
//!   to `√v` *before* bias correction, and the bias correction multiplies the
//!   step size: `u = m/(√v + ε)`, `γ_t = γ·√(1−β2^t)/(1−β1^t)` (or `γ` with
//!   `correct_bias = false`); decay `1 − γλ` with the *uncorrected* γ; default
//!   `eps = 1e-6`. The score uses this `u` (a positive factor of the step does
//!   not change the ranking or the signs). steepest reproduces it ([`HfAdamW`]).
//! - Lion base (`mgup-lion`): steepest's [`crate::optim::Lion`] (the official
//!   `MGUP_Lion` is lion-pytorch's update with the mask; default `lr = 1e-4`).
//!
//! The wrapper works with any base that reports its direction
//! ([`crate::optim::cautious::Direction`]); the registry offers AdamW and Lion,
//! the two bases of the official code besides Muon.

use crate::algorithm::{Algorithm, Float, Needs, Slot, StepCtx, TensorMut};
use crate::error::Result;
use crate::hyper::{Hyper, HyperReader};
use crate::kernel::zip_chunks;
use crate::ops::{add_scaled, addcmul};
use crate::optim::cautious::{Apply, Direction, Pointwise, Visit};
use crate::tensor::ParamInfo;

/// Which coordinates get the larger factor `alpha`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MgupMask {
    /// The `⌊τ d⌋` largest scores `u·g` of the tensor (MGUP).
    TopK,
    /// Scores `u·g ≥ 0` (Cautious-MGUP).
    Sign,
}

impl MgupMask {
    fn name(self) -> &'static str {
        match self {
            MgupMask::TopK => "topk",
            MgupMask::Sign => "sign",
        }
    }
}

/// The MGUP wrapper around a base optimizer `B`.
#[derive(Clone, Debug)]
pub struct Mgup<B> {
    /// Registry name (`mgup-adamw`, `mgup-lion`).
    pub name: &'static str,
    /// The wrapped optimizer.
    pub base: B,
    /// τ: the fraction of each tensor's coordinates that get `alpha` (top-K rule).
    pub mask_ratio: f64,
    /// Factor of the aligned coordinates.
    pub alpha: f64,
    /// Factor of the others.
    pub gamma: f64,
    /// Mask rule.
    pub mask: MgupMask,
}

const OWN: [&str; 4] = ["mask_ratio", "alpha", "gamma", "mgup_mask"];

impl<B: Direction> Mgup<B> {
    /// Reads `mask_ratio`, `alpha`, `gamma` and `mgup_mask`; the rest goes to the base's parser.
    pub fn from_hyper(name: &'static str, h: &Hyper, base: impl FnOnce(&Hyper) -> Result<B>) -> Result<Self> {
        let (mut own, mut rest) = (Hyper::new(), Hyper::new());
        for (k, v) in h {
            if OWN.contains(&k.as_str()) {
                own.insert(k.clone(), v.clone());
            } else {
                rest.insert(k.clone(), v.clone());
            }
        }
        let mut r = HyperReader::new(name, &own);
        let mask_ratio = r.f64("mask_ratio", 0.5)?;
        let alpha = r.f64("alpha", 2.0)?;
        let gamma = r.f64("gamma", 0.1)?;
        let m = r.string("mgup_mask", "topk")?;
        r.check(
            (0.0..=1.0).contains(&mask_ratio),
            "mask_ratio",
            format!("must be in [0, 1], got {mask_ratio}"),
        )?;
        r.non_negative("alpha", alpha)?;
        r.non_negative("gamma", gamma)?;
        let mask = match m.as_str() {
            "topk" => MgupMask::TopK,
            "sign" => MgupMask::Sign,
            _ => return Err(r.error("mgup_mask", format!("expected \"topk\" or \"sign\", got \"{m}\""))),
        };
        r.finish()?;
        let base = base(&rest).map_err(|e| match e {
            crate::error::Error::InvalidHyper { field, message, .. } => {
                crate::error::Error::hyper(name, &field, message)
            }
            e => e,
        })?;
        Ok(Mgup {
            name,
            base,
            mask_ratio,
            alpha,
            gamma,
            mask,
        })
    }

    /// `K = ⌊τ d⌋` for a tensor of `n` elements.
    fn top_k(&self, n: usize) -> usize {
        ((self.mask_ratio * n as f64) as usize).min(n)
    }

    /// The per-coordinate factors `φ` into `w`, readable version: scores,
    /// then a full sort for the top-K.
    fn factors_reference<F: Float>(&self, u: &[F], g: &[F], w: &mut [F]) {
        let n = u.len();
        let (alpha, gamma) = (F::from_f64(self.alpha), F::from_f64(self.gamma));
        let s: Vec<F> = (0..n).map(|i| u[i] * g[i]).collect();
        match self.mask {
            MgupMask::Sign => {
                for i in 0..n {
                    w[i] = if s[i] >= F::ZERO { alpha } else { gamma };
                }
            }
            MgupMask::TopK => {
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&a, &b| by_score_desc(s[a], s[b]).then(a.cmp(&b)));
                for x in w.iter_mut() {
                    *x = gamma;
                }
                for &i in &order[..self.top_k(n)] {
                    w[i] = alpha;
                }
            }
        }
    }

    /// The same factors without allocating: a selection (`select_nth_unstable`)
    /// finds the K-th largest score; ties at that score are resolved by index
    /// exactly as the reference's sort does.
    fn factors_fused<F: Float>(&self, u: &[F], g: &mut [F], w: &mut [F]) {
        let n = u.len();
        let (alpha, gamma) = (F::from_f64(self.alpha), F::from_f64(self.gamma));
        let k = self.top_k(n);
        if self.mask == MgupMask::Sign {
            zip_chunks(w, u, [g], move |w, u, [g]| {
                let n = w.len();
                let (u, g) = (&u[..n], &g[..n]);
                for i in 0..n {
                    w[i] = if u[i] * g[i] >= F::ZERO { alpha } else { gamma };
                }
            });
            return;
        }
        if k == 0 || k == n {
            let f = if k == 0 { gamma } else { alpha };
            zip_chunks(w, u, [], move |w, _, []| w.iter_mut().for_each(|x| *x = f));
            return;
        }
        zip_chunks(w, u, [&mut *g], |w, u, [g]| {
            let n = w.len();
            let (u, g) = (&u[..n], &g[..n]);
            for i in 0..n {
                w[i] = u[i] * g[i];
            }
        });
        let (above, kth, _) = w.select_nth_unstable_by(k - 1, |&a, &b| by_score_desc(a, b));
        let kth = *kth;
        // Scores strictly above the K-th all lie before it after the selection.
        let greater = above.iter().filter(|&&a| by_score_desc(a, kth).is_lt()).count();
        let take_equal = k - greater;
        let equal = w.iter().filter(|&&a| by_score_desc(a, kth).is_eq()).count();
        if take_equal == equal {
            // No tie straddles the cut: keep every score >= the K-th.
            zip_chunks(w, u, [g], move |w, u, [g]| {
                let n = w.len();
                let (u, g) = (&u[..n], &g[..n]);
                for i in 0..n {
                    w[i] = if by_score_desc(u[i] * g[i], kth).is_le() {
                        alpha
                    } else {
                        gamma
                    };
                }
            });
        } else {
            // Ties at the cut: the first `take_equal` of them in index order.
            let mut left = take_equal;
            for i in 0..n {
                let o = by_score_desc(u[i] * g[i], kth);
                w[i] = if o.is_lt() || (o.is_eq() && left > 0) {
                    if o.is_eq() {
                        left -= 1;
                    }
                    alpha
                } else {
                    gamma
                };
            }
        }
    }

    fn run<F: Float>(&self, fused: bool, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let n = t.param.len();
        let (bufs, inner) = t.work.take(3, n);
        let [u, g, w] = bufs else {
            unreachable!("take(3) returns three buffers")
        };
        let ap = self.base.direction(
            ctx,
            TensorMut {
                name: t.name,
                shape: t.shape,
                param: &mut *t.param,
                grad: t.grad,
                slots: &mut *t.slots,
                work: inner,
                samples: t.samples,
            },
            u,
            g,
        );
        let (decay, neg) = (F::from_f64(ap.decay), F::from_f64(-ap.lr));
        let apply = move |p: F, u: F, w: F| {
            let v = w * u;
            if ap.fma {
                add_scaled(p * decay, neg, v)
            } else {
                p * decay + v * neg
            }
        };
        if fused {
            self.factors_fused(u, g, w);
            zip_chunks(t.param, u, [&mut w[..]], move |p, u, [w]| {
                let n = p.len();
                let (u, w) = (&u[..n], &w[..n]);
                for i in 0..n {
                    p[i] = apply(p[i], u[i], w[i]);
                }
            });
        } else {
            self.factors_reference(u, g, w);
            for i in 0..n {
                t.param[i] = apply(t.param[i], u[i], w[i]);
            }
        }
    }
}

/// Scores in descending IEEE total order (so `Less` means "ranks higher").
#[inline(always)]
fn by_score_desc<F: Float>(a: F, b: F) -> std::cmp::Ordering {
    b.to_f64().total_cmp(&a.to_f64())
}

impl<B: Direction> Algorithm for Mgup<B> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn lr(&self) -> f64 {
        self.base.lr()
    }
    fn hyper(&self) -> Hyper {
        let mut h = self.base.hyper();
        h.insert("mask_ratio".into(), self.mask_ratio.into());
        h.insert("alpha".into(), self.alpha.into());
        h.insert("gamma".into(), self.gamma.into());
        h.insert("mgup_mask".into(), self.mask.name().into());
        h
    }
    fn slots(&self, p: &ParamInfo) -> Vec<Slot> {
        self.base.slots(p)
    }
    fn accepts(&self, shape: &[usize]) -> bool {
        self.base.accepts(shape)
    }
    fn needs(&self) -> Needs {
        self.base.needs()
    }
    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(false, ctx, t)
    }
    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(true, ctx, t)
    }
}

/// The AdamW of the official MGUP code: Hugging Face `transformers`' `AdamW`
/// (BERT-style), with ε outside the uncorrected `√v` and the bias correction
/// folded into the step size:
/// ```text
/// θ ← θ (1 − γλ)
/// m ← β1 m + (1−β1) g,   v ← β2 v + (1−β2) g²
/// u = m / (√v + ε),      γ_t = γ √(1−β2^t) / (1−β1^t)   (γ_t = γ without correct_bias)
/// θ ← θ − γ_t u
/// ```
/// Defaults (the official `MGUP_AdamW`): `lr = 1e-3`, `betas = (0.9, 0.999)`,
/// `eps = 1e-6`, `weight_decay = 0`, `correct_bias = true`. `t` counts this
/// parameter's own updates.
#[derive(Clone, Debug, PartialEq)]
pub struct HfAdamW {
    /// Learning rate γ.
    pub lr: f64,
    /// (β1, β2).
    pub betas: (f64, f64),
    /// ε (added to `√v`).
    pub eps: f64,
    /// Decoupled weight decay λ.
    pub weight_decay: f64,
    /// Fold the bias correction into the step size.
    pub correct_bias: bool,
}

impl HfAdamW {
    /// Parses and validates hyperparameters (the official code's names).
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut r = HyperReader::new("adamw", h);
        let a = HfAdamW {
            lr: r.f64("lr", 1e-3)?,
            betas: r.pair("betas", (0.9, 0.999))?,
            eps: r.f64("eps", 1e-6)?,
            weight_decay: r.f64("weight_decay", 0.0)?,
            correct_bias: r.bool("correct_bias", true)?,
        };
        r.non_negative("lr", a.lr)?;
        r.betas("betas", a.betas)?;
        r.non_negative("eps", a.eps)?;
        r.non_negative("weight_decay", a.weight_decay)?;
        r.finish()?;
        Ok(a)
    }
}

impl Algorithm for HfAdamW {
    fn name(&self) -> &'static str {
        "adamw"
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn hyper(&self) -> Hyper {
        crate::hyper::hyper([
            ("lr", self.lr.into()),
            ("betas", crate::hyper::pair_value(self.betas)),
            ("eps", self.eps.into()),
            ("weight_decay", self.weight_decay.into()),
            ("correct_bias", self.correct_bias.into()),
        ])
    }
    fn slots(&self, _p: &ParamInfo) -> Vec<Slot> {
        vec![Slot::zeros("exp_avg"), Slot::zeros("exp_avg_sq")]
    }
    fn reference<F: Float>(&self, ctx: &StepCtx, mut t: TensorMut<'_, F>) {
        let n = t.param.len();
        let (mut u, mut g) = (vec![F::ZERO; n], vec![F::ZERO; n]);
        let work = &mut crate::algorithm::Workspace::default();
        let ap = self.direction(ctx, t.with(t.grad, 0.., work), &mut u, &mut g);
        let (decay, neg) = (F::from_f64(ap.decay), F::from_f64(-ap.lr));
        for i in 0..n {
            t.param[i] = add_scaled(t.param[i] * decay, neg, u[i]);
        }
    }
    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.reference(ctx, t)
    }
}

/// The coordinate of [`HfAdamW`].
#[derive(Clone, Copy, Debug)]
pub struct HfPoint<F> {
    b1: F,
    omb1: F,
    b2: F,
    omb2: F,
    eps: F,
}

impl<F: Float> Pointwise<F> for HfPoint<F> {
    fn reads_param(&self) -> bool {
        false
    }
    #[inline(always)]
    fn at(&self, _p: F, g: F, s: &mut [F; 2]) -> (F, F) {
        s[0] = add_scaled(s[0] * self.b1, self.omb1, g);
        s[1] = addcmul(s[1] * self.b2, self.omb2, g, g);
        (s[0] / (s[1].sqrt() + self.eps), g)
    }
}

impl Direction for HfAdamW {
    fn visit<F: Float, V: Visit<F>>(&self, ctx: &StepCtx, v: V) -> V::Out {
        let (b1, b2) = self.betas;
        let f = F::from_f64;
        let tt = ctx.step as f64;
        let step_size = if self.correct_bias {
            ctx.lr * (1.0 - b2.powf(tt)).sqrt() / (1.0 - b1.powf(tt))
        } else {
            ctx.lr
        };
        v.run(
            HfPoint {
                b1: f(b1),
                omb1: f(1.0 - b1),
                b2: f(b2),
                omb2: f(1.0 - b2),
                eps: f(self.eps),
            },
            Apply {
                decay: 1.0 - ctx.lr * self.weight_decay,
                lr: step_size,
                fma: true,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hyper::hyper_from_json;
    use crate::optim::Lion;

    fn mgup(json: &str) -> Mgup<Lion> {
        let h = hyper_from_json(json).expect("valid json");
        Mgup::from_hyper("mgup-lion", &h, Lion::from_hyper).expect("valid hyper")
    }

    fn both(m: &Mgup<Lion>, u: &[f64], g: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let mut wr = vec![0.0; u.len()];
        m.factors_reference(u, g, &mut wr);
        let (mut gf, mut wf) = (g.to_vec(), vec![0.0; u.len()]);
        m.factors_fused(u, &mut gf, &mut wf);
        assert_eq!(gf, g, "the fused factors must leave the gradient alone");
        (wr, wf)
    }

    #[test]
    fn top_k_takes_ties_at_the_cut_in_index_order() {
        let m = mgup(r#"{"mask_ratio": 0.5, "alpha": 2.0, "gamma": 0.5}"#);
        let u = [1.0; 10];
        let g = [3.0, 1.0, 2.0, 2.0, 2.0, 0.0, 2.0, -1.0, 2.0, 5.0];
        // Scores descending: 5 (9), 3 (0), then the 2s at 2, 3, 4, 6, 8: K = 5 takes 2, 3, 4.
        let want = [2.0, 0.5, 2.0, 2.0, 2.0, 0.5, 0.5, 0.5, 0.5, 2.0];
        let (r, f) = both(&m, &u, &g);
        assert_eq!(r, want);
        assert_eq!(f, want);
    }

    #[test]
    fn sign_rule_counts_zero_as_aligned() {
        let m = mgup(r#"{"mgup_mask": "sign", "alpha": 1.5, "gamma": 0.25}"#);
        let (u, g) = ([1.0, -1.0, 1.0, 0.0], [2.0, 3.0, 0.0, -1.0]);
        let want = [1.5, 0.25, 1.5, 1.5];
        let (r, f) = both(&m, &u, &g);
        assert_eq!(r, want);
        assert_eq!(f, want);
    }

    #[test]
    fn fused_factors_equal_reference_on_large_tied_tensors() {
        // Enough elements for the parallel chunked passes, scores with many ties.
        let n = 3 * crate::kernel::PAR_MIN + 17;
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let u: Vec<f64> = (0..n).map(|_| if next() % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let g: Vec<f64> = (0..n).map(|_| (next() % 7) as f64 - 3.0).collect();
        for json in [
            r#"{"mask_ratio": 0.0}"#,
            r#"{"mask_ratio": 0.37}"#,
            r#"{"mask_ratio": 0.5}"#,
            r#"{"mask_ratio": 0.999}"#,
            r#"{"mask_ratio": 1.0}"#,
            r#"{"mgup_mask": "sign"}"#,
        ] {
            let m = mgup(json);
            let (r, f) = both(&m, &u, &g);
            assert_eq!(r, f, "{json}");
            if m.mask == MgupMask::TopK {
                let k = r.iter().filter(|&&w| w == m.alpha).count();
                assert_eq!(k, (m.mask_ratio * n as f64) as usize, "{json}");
            }
        }
    }

    #[test]
    fn bad_hyperparameters_name_their_field() {
        for (json, field) in [
            (r#"{"mask_ratio": 1.01}"#, "mask_ratio"),
            (r#"{"alpha": -1}"#, "alpha"),
            (r#"{"gamma": "NaN"}"#, "gamma"),
            (r#"{"mgup_mask": "top"}"#, "mgup_mask"),
            (r#"{"betas": [0.9, 1.5]}"#, "betas"),
        ] {
            let h = hyper_from_json(json).expect("valid json");
            let e = Mgup::from_hyper("mgup-lion", &h, Lion::from_hyper).expect_err(json);
            assert!(e.to_string().contains(field), "{json}: {e}");
        }
    }
}
