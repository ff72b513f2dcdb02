//! Complex momentum: heavy-ball momentum with a complex coefficient.
//!
//! Paper: Lorraine, Acuna, Vicol & Duvenaud, *"Complex Momentum for
//! Optimization in Games"* (AISTATS 2022, arXiv:2102.08431), Algorithm 1
//! (simultaneous complex momentum, SimCM). Parameters ω stay real; the
//! momentum buffer μ is complex and the step takes the real part:
//! ```text
//! μ_{t+1} = β μ_t − ĝ_t                      (μ_0 = 0, β ∈ ℂ)
//! ω_{t+1} = ω_t + ℜ(α μ_{t+1})               (α ∈ ℂ; real in the paper's experiments)
//! ```
//! stored as two real slots, `momentum_real` = ℜμ and `momentum_imag` = ℑμ:
//! ```text
//! μr' = ℜβ·μr − ℑβ·μi − ĝ
//! μi' = ℑβ·μr + ℜβ·μi
//! ω  += ℜα·μr' − ℑα·μi'
//! ```
//! `ĝ` is the player's own gradient, negated under `maximize` (the ascending
//! player of a zero-sum game, so that one optimizer per player realizes the
//! game's joint vector field).
//!
//! Hyperparameters: `lr` = ℜα (default 1e-3, as SGD), `lr_imag` = ℑα
//! (default 0: the paper's experiments use real α), `beta_abs` = |β| (default
//! 0.9, in [0, 1)), `beta_arg` = arg β in radians (default π/8, in [−π, π]),
//! `maximize` (default false). The polar parametrization follows the paper,
//! which reports β as |β| exp(i arg β); the defaults are steepest's choice from
//! the range the paper studies (|β| near 0.9, a small positive argument), not a
//! value the paper prescribes for every game. With `beta_arg = 0` and
//! `lr_imag = 0` the update is PyTorch's SGD with momentum `beta_abs`
//! (`μ = −buf`), up to the rounding of the last multiply-add.
//!
//! Choices: ℜβ = |β| cos(arg β) and ℑβ = |β| sin(arg β) are computed in f64
//! and rounded to the parameter's dtype once, like every other scalar. Only the
//! simultaneous variant is a property of one optimizer; the alternating variant
//! (AltCM, the second player sees the first player's new parameters) is a
//! question of when the game evaluates gradients, which
//! [`crate::games::bilinear_game`] offers. The step size is scaled by the
//! schedule like any `lr`; ℑα is scaled by the same factor.

use crate::algorithm::{Algorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::Result;
use crate::hyper::{num, Hyper, HyperReader};
use crate::kernel::zip_chunks;
use crate::tensor::ParamInfo;

/// Validated complex-momentum configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ComplexMomentum {
    /// ℜα, the step size.
    pub lr: f64,
    /// ℑα.
    pub lr_imag: f64,
    /// |β|.
    pub beta_abs: f64,
    /// arg β in radians.
    pub beta_arg: f64,
    /// Ascend instead of descend (negate the gradient).
    pub maximize: bool,
}

#[derive(Clone, Copy)]
struct Scalars<F> {
    br: F,
    bi: F,
    ar: F,
    neg_ai: F,
    maximize: bool,
}

impl ComplexMomentum {
    /// Parses and validates hyperparameters.
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut r = HyperReader::new("complex-momentum", h);
        let c = ComplexMomentum {
            lr: r.f64("lr", 1e-3)?,
            lr_imag: r.f64("lr_imag", 0.0)?,
            beta_abs: r.f64("beta_abs", 0.9)?,
            beta_arg: r.f64("beta_arg", std::f64::consts::FRAC_PI_8)?,
            maximize: r.bool("maximize", false)?,
        };
        r.non_negative("lr", c.lr)?;
        r.check(
            c.lr_imag.is_finite(),
            "lr_imag",
            format!("must be finite, got {}", c.lr_imag),
        )?;
        r.check(
            (0.0..1.0).contains(&c.beta_abs),
            "beta_abs",
            format!("must be in [0, 1), got {}", c.beta_abs),
        )?;
        r.check(
            (-std::f64::consts::PI..=std::f64::consts::PI).contains(&c.beta_arg),
            "beta_arg",
            format!("must be an angle in [-pi, pi] radians, got {}", c.beta_arg),
        )?;
        r.finish()?;
        Ok(c)
    }

    fn scalars<F: Float>(&self, ctx: &StepCtx) -> Scalars<F> {
        Scalars {
            br: F::from_f64(self.beta_abs * self.beta_arg.cos()),
            bi: F::from_f64(self.beta_abs * self.beta_arg.sin()),
            ar: F::from_f64(ctx.lr),
            neg_ai: F::from_f64(-(self.lr_imag * ctx.lr_factor)),
            maximize: self.maximize,
        }
    }
}

impl Algorithm for ComplexMomentum {
    fn name(&self) -> &'static str {
        "complex-momentum"
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn hyper(&self) -> Hyper {
        crate::hyper::hyper([
            ("lr", num(self.lr)),
            ("lr_imag", num(self.lr_imag)),
            ("beta_abs", num(self.beta_abs)),
            ("beta_arg", num(self.beta_arg)),
            ("maximize", self.maximize.into()),
        ])
    }
    fn slots(&self, _p: &ParamInfo) -> Vec<Slot> {
        vec![Slot::zeros("momentum_real"), Slot::zeros("momentum_imag")]
    }

    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let c = self.scalars::<F>(ctx);
        let n = t.param.len();
        let g: Vec<F> = t.grad.iter().map(|&g| if c.maximize { -g } else { g }).collect();
        let (re, im) = t.slots.split_at_mut(1);
        let (re, im) = (&mut re[0], &mut im[0]);
        // μ ← β μ − ĝ, as two real recurrences on the old (ℜμ, ℑμ).
        let old_re = re.clone();
        for i in 0..n {
            re[i] = c.br * re[i] - c.bi * im[i] - g[i];
        }
        for i in 0..n {
            im[i] = c.bi * old_re[i] + c.br * im[i];
        }
        // ω ← ω + ℜ(α μ) = ω + ℜα ℜμ − ℑα ℑμ.
        for i in 0..n {
            t.param[i] = t.param[i] + c.ar * re[i];
        }
        for i in 0..n {
            t.param[i] = t.param[i] + c.neg_ai * im[i];
        }
    }

    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let c = self.scalars::<F>(ctx);
        let (re, im) = t.slots.split_at_mut(1);
        zip_chunks(
            t.param,
            t.grad,
            [&mut re[0][..], &mut im[0][..]],
            move |p, g, [re, im]| {
                let n = p.len();
                let (g, re, im) = (&g[..n], &mut re[..n], &mut im[..n]);
                for i in 0..n {
                    let gi = if c.maximize { -g[i] } else { g[i] };
                    let (r0, i0) = (re[i], im[i]);
                    let r1 = c.br * r0 - c.bi * i0 - gi;
                    let i1 = c.bi * r0 + c.br * i0;
                    re[i] = r1;
                    im[i] = i1;
                    p[i] = (p[i] + c.ar * r1) + c.neg_ai * i1;
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::{hyper, GradSet, Optimizer, ParamSet};

    /// With a real β and real α, complex momentum is SGD with heavy-ball momentum
    /// (its buffer is −μ), up to the rounding of the step's multiply-add.
    #[test]
    fn real_beta_is_heavy_ball() {
        let mut a = ParamSet::<f64>::new();
        a.push("w", &[3], vec![0.5, -1.0, 2.0]).unwrap();
        let mut b = a.clone();
        let mut cm = Optimizer::new(
            "complex-momentum",
            &hyper([("lr", 0.1), ("beta_abs", 0.7), ("beta_arg", 0.0)]),
            &a,
        )
        .unwrap();
        let mut sgd = Optimizer::new("sgd", &hyper([("lr", 0.1), ("momentum", 0.7)]), &b).unwrap();
        for t in 0..8 {
            let g: Vec<f64> = (0..3).map(|i| ((t * 3 + i) as f64 * 0.77).sin()).collect();
            let mut ga = GradSet::new();
            ga.insert("w", g.clone());
            let mut gb = GradSet::new();
            gb.insert("w", g);
            cm.step(&mut a, &mut ga).unwrap();
            sgd.step(&mut b, &mut gb).unwrap();
        }
        let (x, y) = (&a.get("w").unwrap().data, &b.get("w").unwrap().data);
        let close = x.iter().zip(y).all(|(x, y)| (x - y).abs() <= 1e-15 * y.abs().max(1.0));
        assert!(close, "{x:?} vs {y:?}");
    }
}
