//! DP-SGD: per-sample clipping, Gaussian noise, then SGD.
//!
//! Papers: Abadi et al., *"Deep Learning with Differential Privacy"* (2016),
//! Algorithm 1 (DPSGD with gradient clipping, "DPSGD-GC" in the seed paper
//! *"Differentially Private SGD Without Clipping Bias: An Error-Feedback
//! Approach"*, whose baseline it is). Reference: opacus 1.6's `DPOptimizer`
//! wrapping `torch.optim.SGD`, which steepest matches step for step. With the
//! per-sample gradients `g_s` (s = 1..n) of the step:
//! ```text
//! ‖g_s‖ = √(Σ_params ‖g_{s,p}‖²)                 (joint norm over all parameters updated this step)
//! f_s   = min(1, C / (‖g_s‖ + 1e-6))              (opacus's clip factor; C = max_grad_norm)
//! ĝ     = (Σ_s f_s g_s + N(0, (σC)² I)) / B       (σ = noise_multiplier; B = expected_batch_size,
//!                                                  default n, the number of samples given)
//! then torch.optim.SGD with ĝ (momentum, dampening, nesterov, weight_decay, maximize; see sgd.rs)
//! ```
//! Defaults: opacus's and torch SGD's (`lr = 1e-3`, no momentum),
//! `noise_multiplier = 1.0`, `max_grad_norm = 1.0`, `expected_batch_size` unset
//! (= the number of samples given each step), `seed = 0`.
//!
//! Needs per-sample gradients of every parameter with a gradient on every step
//! ([`crate::StepInputs::sample_grads`]); the mean gradient's values are not
//! used (it only marks which parameters are updated, as `p.grad` does for torch).
//! Gradient transforms do not touch per-sample gradients.
//!
//! **Noise.** opacus draws from torch's global generator; steepest uses a
//! documented counter-based generator so a run is reproducible from `seed`
//! alone, for any thread count and any chunking: element `i` of parameter
//! `name` at optimizer step `t` (the global step, counting frozen steps, so
//! resuming from a state file continues the same stream) gets
//! `z = √(−2 ln u₁) cos(2π u₂)` (Box–Muller in f64) with
//! `u₁ = (⌊a / 2¹¹⌋ + 1) / 2⁵³ ∈ (0, 1]`, `u₂ = ⌊b / 2¹¹⌋ / 2⁵³ ∈ [0, 1)`,
//! `a = mix(k + (2i+1)·φ)`, `b = mix(k + (2i+2)·φ)`,
//! `k = mix(mix(mix(seed) ⊕ t) ⊕ fnv1a(name))`, where `mix` is SplitMix64's
//! finalizer and `φ = 0x9E3779B97F4A7C15` (all arithmetic wrapping in u64). The
//! noise added is `σC·z` rounded once to the parameter's type. The stream is
//! therefore keyed by parameter name, not position. Noise values depend on the
//! platform's `ln` and `cos` only in the last bits. Not cryptographically
//! secure (opacus's `secure_mode` has no counterpart).
//!
//! Choices left open: clip factors are computed in f64 from norms accumulated
//! in f64 (opacus computes them in the parameter's dtype: identical in f64, a
//! few ulps apart in f32); the sum over samples runs in sample order starting
//! from zero; `expected_batch_size` replaces the sample count as the divisor
//! exactly as opacus's `loss_reduction = "mean"` does (opacus's `"sum"` is
//! `expected_batch_size = 1`). Poisson sampling and privacy accounting are the
//! caller's (the RDP accountant lives elsewhere).

use rayon::prelude::*;

use crate::algorithm::{Algorithm, Float, Needs, Slot, StepCtx, TensorMut};
use crate::error::{Error, Result};
use crate::hyper::{num, Hyper, HyperReader};
use crate::kernel::{CHUNK, PAR_MIN};
use crate::optim::Sgd;
use crate::tensor::ParamInfo;

/// SplitMix64's output function.
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const PHI: u64 = 0x9E37_79B9_7F4A_7C15;

/// 64-bit FNV-1a of a parameter name.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01B3)
    })
}

/// The key of one parameter's noise stream at one step.
pub fn noise_key(seed: u64, step: u64, name: &str) -> u64 {
    mix(mix(mix(seed) ^ step) ^ fnv1a(name))
}

/// Standard normal number `i` of the stream `key` (see the module docs).
#[inline]
pub fn standard_normal(key: u64, i: u64) -> f64 {
    let a = mix(key.wrapping_add((2 * i + 1).wrapping_mul(PHI)));
    let b = mix(key.wrapping_add((2 * i + 2).wrapping_mul(PHI)));
    let u1 = ((a >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let u2 = (b >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Runs `f(offset, chunk)` over fixed-size chunks of `x` (parallel when large);
/// `offset` is the chunk's first index, so per-element work can use its index.
pub(crate) fn for_each_indexed_chunk<F: Float>(x: &mut [F], f: impl Fn(usize, &mut [F]) + Sync + Send) {
    if x.len() < PAR_MIN {
        f(0, x)
    } else {
        x.par_chunks_mut(CHUNK).enumerate().for_each(|(c, s)| f(c * CHUNK, s))
    }
}

/// DP-SGD's own hyperparameter names (everything else goes to SGD).
pub const OWN_KEYS: &[&str] = &["noise_multiplier", "max_grad_norm", "expected_batch_size", "seed"];

/// Validated DP-SGD configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct DpSgd {
    /// The SGD step applied to the privatized gradient.
    pub sgd: Sgd,
    /// σ: noise standard deviation in units of `max_grad_norm`.
    pub noise_multiplier: f64,
    /// C: per-sample clipping bound.
    pub max_grad_norm: f64,
    /// B: the divisor (default: the number of samples given each step).
    pub expected_batch_size: Option<usize>,
    /// Seed of the noise stream.
    pub seed: u64,
}

impl DpSgd {
    /// Parses and validates hyperparameters (opacus's names plus torch SGD's).
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let (own, rest): (Hyper, Hyper) = h.clone().into_iter().partition(|(k, _)| OWN_KEYS.contains(&k.as_str()));
        let mut r = HyperReader::new("dp-sgd", &own);
        let noise_multiplier = r.f64("noise_multiplier", 1.0)?;
        let max_grad_norm = r.f64("max_grad_norm", 1.0)?;
        let ebs = r.usize("expected_batch_size", 0)?;
        let seed = r.usize("seed", 0)? as u64;
        r.check(
            noise_multiplier >= 0.0 && noise_multiplier.is_finite(),
            "noise_multiplier",
            format!("must be a finite number >= 0, got {noise_multiplier}"),
        )?;
        r.check(
            max_grad_norm > 0.0 && max_grad_norm.is_finite(),
            "max_grad_norm",
            format!("must be a finite number > 0, got {max_grad_norm}"),
        )?;
        r.check(
            !own.contains_key("expected_batch_size") || ebs > 0,
            "expected_batch_size",
            "must be a positive integer",
        )?;
        r.finish()?;
        let sgd = Sgd::from_hyper(&rest).map_err(|e| match e {
            Error::InvalidHyper { field, message, .. } => Error::hyper("dp-sgd", &field, message),
            e => e,
        })?;
        Ok(DpSgd {
            sgd,
            noise_multiplier,
            max_grad_norm,
            expected_batch_size: (ebs > 0).then_some(ebs),
            seed,
        })
    }

    /// Writes the privatized gradient `(Σ_s f_s g_s + noise) / B` into the workspace
    /// and runs SGD's kernel with it.
    fn run<F: Float>(&self, fused: bool, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let n = t.param.len();
        let samples = t.samples;
        let b = F::from_f64(self.expected_batch_size.unwrap_or(samples.len()) as f64);
        let c = self.max_grad_norm;
        let std = self.noise_multiplier * c;
        let key = noise_key(self.seed, ctx.global_step, t.name);
        let (bufs, inner) = t.work.take(1, n);
        let g = &mut bufs[0];
        let (fbuf, inner) = inner.take(1, samples.len());
        let factors = &mut fbuf[0];
        for (f, &norm) in factors.iter_mut().zip(samples.norms) {
            *f = F::from_f64((c / (norm + 1e-6)).min(1.0));
        }
        if fused {
            let factors = &factors[..];
            for_each_indexed_chunk(&mut g[..], |off, chunk| {
                for (j, gi) in chunk.iter_mut().enumerate() {
                    let i = off + j;
                    let mut acc = F::ZERO;
                    for (f, x) in factors.iter().zip(samples.grads) {
                        acc = acc + *f * x[i];
                    }
                    if std != 0.0 {
                        acc = acc + F::from_f64(std * standard_normal(key, i as u64));
                    }
                    *gi = acc / b;
                }
            });
        } else {
            g.fill(F::ZERO);
            for (f, x) in factors.iter().zip(samples.grads) {
                for i in 0..n {
                    g[i] = g[i] + *f * x[i];
                }
            }
            if std != 0.0 {
                for i in 0..n {
                    g[i] = g[i] + F::from_f64(std * standard_normal(key, i as u64));
                }
            }
            for i in 0..n {
                g[i] = g[i] / b;
            }
        }
        let t = TensorMut {
            name: t.name,
            shape: t.shape,
            param: t.param,
            grad: g,
            slots: t.slots,
            work: inner,
            samples,
        };
        if fused {
            self.sgd.fused(ctx, t)
        } else {
            self.sgd.reference(ctx, t)
        }
    }
}

impl Algorithm for DpSgd {
    fn name(&self) -> &'static str {
        "dp-sgd"
    }
    fn lr(&self) -> f64 {
        self.sgd.lr
    }
    fn hyper(&self) -> Hyper {
        let mut h = self.sgd.hyper();
        h.insert("noise_multiplier".into(), num(self.noise_multiplier));
        h.insert("max_grad_norm".into(), num(self.max_grad_norm));
        if let Some(b) = self.expected_batch_size {
            h.insert("expected_batch_size".into(), b.into());
        }
        h.insert("seed".into(), self.seed.into());
        h
    }
    fn slots(&self, p: &ParamInfo) -> Vec<Slot> {
        self.sgd.slots(p)
    }
    fn needs(&self) -> Needs {
        Needs {
            sample_grads: true,
            ..Needs::default()
        }
    }
    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(false, ctx, t)
    }
    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(true, ctx, t)
    }
}

/// DiceSGD: DP-SGD with clipped error feedback (see [`DiceSgd`]).
///
/// Paper: Zhang, Bu, Wu & Hong, *"Differentially Private SGD Without Clipping
/// Bias: An Error-Feedback Approach"* (ICLR 2024), Algorithm 1 (DiceSGD).
/// With per-sample gradients `g_s` (s = 1..n), `e_0 = 0`, and
/// `clip(x, C) = min(1, C/‖x‖) x`:
/// ```text
/// v_t     = (1/B) Σ_s clip(g_s, C1) + clip(e_t, C2)
/// θ_{t+1} = θ_t − η (v_t + w_t),          w_t ~ N(0, σ_w² I)
/// e_{t+1} = e_t + (1/B) Σ_s g_s − v_t
/// ```
/// `‖g_s‖` and `‖e_t‖` are norms over all parameters updated this step
/// together (the algorithm's `x` is the whole model). C1 = `max_grad_norm`,
/// C2 = `max_ef_norm`, B = `expected_batch_size` (default: the number of
/// samples given), η = `lr`.
///
/// Choices the paper leaves open: the paper sets the noise variance from its
/// privacy theorem; steepest takes opacus's units, `σ_w = noise_multiplier ·
/// C1 / B` (the noise of [`DpSgd`] after its division by B), so the caller or
/// an accountant picks `noise_multiplier`. Noise is the same seeded,
/// counter-based stream as DP-SGD's. `clip` is the paper's exact operator (no
/// `1e-6`; a zero vector stays zero). Defaults: `lr = 1e-3`,
/// `noise_multiplier = 1`, `max_grad_norm = 1`, `max_ef_norm = 3`
/// (C2 = 3 C1, the ratio of the authors' experiments), `seed = 0`. Only
/// plain SGD, as in Algorithm 1 (no momentum or weight decay). The error
/// buffer `e` is the state slot `error_feedback`. Registry name `dice-sgd`,
/// the algorithm's own name.
#[derive(Clone, Debug, PartialEq)]
pub struct DiceSgd {
    /// η.
    pub lr: f64,
    /// σ: noise in units of C1 / B.
    pub noise_multiplier: f64,
    /// C1: per-sample clipping bound.
    pub max_grad_norm: f64,
    /// C2: error-feedback clipping bound.
    pub max_ef_norm: f64,
    /// B (default: the number of samples given).
    pub expected_batch_size: Option<usize>,
    /// Seed of the noise stream.
    pub seed: u64,
}

/// The paper's `min(1, C/‖x‖)` (1 for a zero norm).
fn clip_factor(c: f64, norm: f64) -> f64 {
    if norm > 0.0 {
        (c / norm).min(1.0)
    } else {
        1.0
    }
}

impl DiceSgd {
    /// Parses and validates hyperparameters.
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut r = HyperReader::new("dice-sgd", h);
        let d = DiceSgd {
            lr: r.f64("lr", 1e-3)?,
            noise_multiplier: r.f64("noise_multiplier", 1.0)?,
            max_grad_norm: r.f64("max_grad_norm", 1.0)?,
            max_ef_norm: r.f64("max_ef_norm", 3.0)?,
            expected_batch_size: match r.usize("expected_batch_size", 0)? {
                0 if h.contains_key("expected_batch_size") => {
                    return Err(r.error("expected_batch_size", "must be a positive integer"))
                }
                0 => None,
                b => Some(b),
            },
            seed: r.usize("seed", 0)? as u64,
        };
        r.non_negative("lr", d.lr)?;
        r.check(
            d.noise_multiplier >= 0.0 && d.noise_multiplier.is_finite(),
            "noise_multiplier",
            format!("must be a finite number >= 0, got {}", d.noise_multiplier),
        )?;
        for (k, v) in [("max_grad_norm", d.max_grad_norm), ("max_ef_norm", d.max_ef_norm)] {
            r.check(
                v > 0.0 && v.is_finite(),
                k,
                format!("must be a finite number > 0, got {v}"),
            )?;
        }
        r.finish()?;
        Ok(d)
    }

    fn run<F: Float>(&self, fused: bool, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let n = t.param.len();
        let samples = t.samples;
        let b = self.expected_batch_size.unwrap_or(samples.len()) as f64;
        let inv_b = F::from_f64(1.0 / b);
        let fe = F::from_f64(clip_factor(self.max_ef_norm, ctx.slot_norm));
        let std = self.noise_multiplier * self.max_grad_norm / b;
        let key = noise_key(self.seed, ctx.global_step, t.name);
        let neg_lr = F::from_f64(-ctx.lr);
        let (fbuf, _) = t.work.take(1, samples.len());
        let factors = &mut fbuf[0];
        for (f, &norm) in factors.iter_mut().zip(samples.norms) {
            *f = F::from_f64(clip_factor(self.max_grad_norm, norm));
        }
        let factors = &factors[..];
        // One element: (clipped sum, plain sum) over samples in order, then the update.
        let elem = move |i: usize, p: &mut F, e: &mut F| {
            let (mut clipped, mut plain) = (F::ZERO, F::ZERO);
            for (f, x) in factors.iter().zip(samples.grads) {
                clipped = clipped + *f * x[i];
                plain = plain + x[i];
            }
            let v = clipped * inv_b + fe * *e;
            let w = if std != 0.0 {
                F::from_f64(std * standard_normal(key, i as u64))
            } else {
                F::ZERO
            };
            *p = *p + neg_lr * (v + w);
            *e = *e + plain * inv_b - v;
        };
        let e = &mut t.slots[0];
        if fused {
            // Parameter and error buffer advance together, chunk by chunk.
            let (p, e) = (&mut t.param[..], &mut e[..]);
            if n < PAR_MIN {
                for i in 0..n {
                    elem(i, &mut p[i], &mut e[i]);
                }
            } else {
                p.par_chunks_mut(CHUNK)
                    .zip(e.par_chunks_mut(CHUNK))
                    .enumerate()
                    .for_each(|(c, (pc, ec))| {
                        for j in 0..pc.len() {
                            elem(c * CHUNK + j, &mut pc[j], &mut ec[j]);
                        }
                    });
            }
        } else {
            // Op by op: the two sums, v, the noise, the parameter, the error buffer.
            let mut clipped = vec![F::ZERO; n];
            let mut plain = vec![F::ZERO; n];
            for (f, x) in factors.iter().zip(samples.grads) {
                for i in 0..n {
                    clipped[i] = clipped[i] + *f * x[i];
                }
                for i in 0..n {
                    plain[i] = plain[i] + x[i];
                }
            }
            let v: Vec<F> = (0..n).map(|i| clipped[i] * inv_b + fe * e[i]).collect();
            let w: Vec<F> = (0..n)
                .map(|i| {
                    if std != 0.0 {
                        F::from_f64(std * standard_normal(key, i as u64))
                    } else {
                        F::ZERO
                    }
                })
                .collect();
            for i in 0..n {
                t.param[i] = t.param[i] + neg_lr * (v[i] + w[i]);
            }
            for i in 0..n {
                e[i] = e[i] + plain[i] * inv_b - v[i];
            }
        }
    }
}

impl Algorithm for DiceSgd {
    fn name(&self) -> &'static str {
        "dice-sgd"
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn hyper(&self) -> Hyper {
        let mut h = crate::hyper::hyper([
            ("lr", num(self.lr)),
            ("noise_multiplier", num(self.noise_multiplier)),
            ("max_grad_norm", num(self.max_grad_norm)),
            ("max_ef_norm", num(self.max_ef_norm)),
        ]);
        if let Some(b) = self.expected_batch_size {
            h.insert("expected_batch_size".into(), b.into());
        }
        h.insert("seed".into(), self.seed.into());
        h
    }
    fn slots(&self, _p: &ParamInfo) -> Vec<Slot> {
        vec![Slot::zeros("error_feedback")]
    }
    fn needs(&self) -> Needs {
        Needs {
            sample_grads: true,
            slot_norm: Some("error_feedback"),
            ..Needs::default()
        }
    }
    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(false, ctx, t)
    }
    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(true, ctx, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normals_are_standard_and_keyed() {
        // 200k draws: the sample mean has sd 1/√n ≈ 0.0022 and the sample
        // variance sd √(2/n) ≈ 0.0032; 5 sd bounds fail by chance with p < 1e-6.
        let n = 200_000u64;
        let key = noise_key(7, 3, "w");
        let (mut s, mut s2) = (0.0, 0.0);
        for i in 0..n {
            let z = standard_normal(key, i);
            s += z;
            s2 += z * z;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 5.0 * (1.0 / n as f64).sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / n as f64).sqrt(), "var {var}");
        assert_eq!(standard_normal(key, 5), standard_normal(noise_key(7, 3, "w"), 5));
        assert_ne!(standard_normal(key, 5), standard_normal(noise_key(8, 3, "w"), 5));
        assert_ne!(standard_normal(key, 5), standard_normal(noise_key(7, 4, "w"), 5));
        assert_ne!(standard_normal(key, 5), standard_normal(noise_key(7, 3, "b"), 5));
    }
}
