//! Scalar building blocks shared by reference and fused kernels.
//!
//! Each helper rounds exactly like the PyTorch CPU tensor operation it is
//! named after (on x86-64 with AVX2/AVX-512, where ATen's vectorized kernels
//! use fused multiply-adds for `add(alpha=)`, `lerp` and `addcmul`, but not
//! for `addcdiv`). So a reference kernel written op by op and a fused kernel
//! written element by element produce bit-identical results, and both agree
//! with PyTorch to the last bit in most elements. Rust never contracts
//! `a * b + c` on its own: an FMA appears exactly where [`Real::mul_add`] is
//! written, so results do not depend on the compiler or the CPU.

use crate::real::Real;

/// Precomputed weight of a scalar `torch.lerp(a, b, w)`:
/// `a + w*(b-a)` if `|w| < 0.5`, else `b + (w-1)*(b-a)`, each with one FMA.
#[derive(Clone, Copy, Debug)]
pub struct Lerp<F> {
    coeff: F,
    small: bool,
}

impl<F: Real> Lerp<F> {
    /// A lerp towards the end point with weight `w` (given in f64 like a Python
    /// scalar and rounded to `F` once, as PyTorch does).
    #[inline(always)]
    pub fn new(w: f64) -> Self {
        let wf = F::from_f64(w);
        let small = w.abs() < 0.5;
        Lerp {
            coeff: if small { wf } else { wf - F::ONE },
            small,
        }
    }
    /// `a.lerp(b, w)`.
    #[inline(always)]
    pub fn apply(&self, a: F, b: F) -> F {
        let base = if self.small { a } else { b };
        self.coeff.mul_add(b - a, base)
    }
}

/// `self.addcmul(t1, t2, value)`: `s + (value * t1) * t2`, the last multiply fused with the add.
#[inline(always)]
pub fn addcmul<F: Real>(s: F, value: F, t1: F, t2: F) -> F {
    (value * t1).mul_add(t2, s)
}

/// `self.addcdiv(t1, t2, value)`: `s + (value * t1) / t2` (no FMA).
#[inline(always)]
pub fn addcdiv<F: Real>(s: F, value: F, t1: F, t2: F) -> F {
    s + value * t1 / t2
}

/// `self.add(other, alpha)`: `s + alpha * other` with one rounding.
#[inline(always)]
pub fn add_scaled<F: Real>(s: F, alpha: F, other: F) -> F {
    other.mul_add(alpha, s)
}

/// The gradient as the update rules of PyTorch see it: negated under `maximize`,
/// plus coupled L2 weight decay `wd * p` when `wd != 0`.
#[derive(Clone, Copy, Debug)]
pub struct GradPrep<F> {
    maximize: bool,
    l2: bool,
    wd: F,
}

impl<F: Real> GradPrep<F> {
    /// `l2_weight_decay` is the coupled decay (0 for none).
    #[inline(always)]
    pub fn new(maximize: bool, l2_weight_decay: f64) -> Self {
        GradPrep {
            maximize,
            l2: l2_weight_decay != 0.0,
            wd: F::from_f64(l2_weight_decay),
        }
    }
    /// The effective gradient of one element with parameter value `p`.
    #[inline(always)]
    pub fn apply(&self, g: F, p: F) -> F {
        let g = if self.maximize { -g } else { g };
        if self.l2 {
            add_scaled(g, self.wd, p)
        } else {
            g
        }
    }
    /// Reference form: the effective gradient of a whole tensor, as a new buffer.
    pub fn tensor(&self, g: &[F], p: &[F]) -> Vec<F> {
        g.iter().zip(p).map(|(&g, &p)| self.apply(g, p)).collect()
    }
}
