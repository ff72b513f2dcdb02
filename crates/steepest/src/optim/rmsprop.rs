//! RMSprop, optionally centered and with momentum.
//!
//! Sources: Tieleman & Hinton, *Lecture 6.5 — RMSprop* (COURSERA 2012); the
//! centered variant from Graves, *"Generating Sequences With Recurrent Neural
//! Networks"* (2013), eqs. (38)–(41). The seed's adaptive-method convergence
//! analyses treat it as Adam with β1 = 0 and no bias correction.
//!
//! Update for `t ≥ 1`, `g_t` the gradient (negated if `maximize`):
//! ```text
//! g_t ← g_t + λ θ_{t-1}                        (coupled L2, weight_decay λ)
//! v_t = α v_{t-1} + (1-α) g_t²
//! centered: ḡ_t = α ḡ_{t-1} + (1-α) g_t,  ṽ_t = v_t - ḡ_t²;  otherwise ṽ_t = v_t
//! momentum μ > 0: b_t = μ b_{t-1} + g_t / (sqrt(ṽ_t) + ε),  θ_t = θ_{t-1} - γ b_t
//! otherwise:      θ_t = θ_{t-1} - γ g_t / (sqrt(ṽ_t) + ε)
//! ```
//! Defaults (PyTorch `torch.optim.RMSprop`): `lr = 1e-2`, `alpha = 0.99`,
//! `eps = 1e-8`, `weight_decay = 0`, `momentum = 0`, `centered = false`,
//! `maximize = false`.
//!
//! Where PyTorch differs from the lecture notes, steepest follows PyTorch: ε is
//! added outside the square root, and momentum accumulates the already
//! normalized step (Graves' eq. (41) form).

use crate::algorithm::{Algorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::Result;
use crate::hyper::{num, Hyper, HyperReader};
use crate::kernel::zip_chunks;
use crate::ops::{add_scaled, addcdiv, addcmul, GradPrep, Lerp};
use crate::tensor::ParamInfo;

/// Validated RMSprop configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Rmsprop {
    /// Learning rate γ.
    pub lr: f64,
    /// Smoothing constant α.
    pub alpha: f64,
    /// ε.
    pub eps: f64,
    /// Coupled L2 weight decay λ.
    pub weight_decay: f64,
    /// Momentum μ.
    pub momentum: f64,
    /// Normalize by the estimated variance instead of the second moment.
    pub centered: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Rmsprop {
    /// Parses and validates PyTorch-named hyperparameters.
    pub fn from_hyper(h: &Hyper) -> Result<Self> {
        let mut r = HyperReader::new("rmsprop", h);
        let a = Rmsprop {
            lr: r.f64("lr", 1e-2)?,
            alpha: r.f64("alpha", 0.99)?,
            eps: r.f64("eps", 1e-8)?,
            weight_decay: r.f64("weight_decay", 0.0)?,
            momentum: r.f64("momentum", 0.0)?,
            centered: r.bool("centered", false)?,
            maximize: r.bool("maximize", false)?,
        };
        r.non_negative("lr", a.lr)?;
        r.check(
            (0.0..=1.0).contains(&a.alpha),
            "alpha",
            format!("must be in [0, 1], got {}", a.alpha),
        )?;
        r.non_negative("eps", a.eps)?;
        r.non_negative("weight_decay", a.weight_decay)?;
        r.non_negative("momentum", a.momentum)?;
        r.finish()?;
        Ok(a)
    }

    fn slot_index(&self) -> (Option<usize>, Option<usize>) {
        let grad_avg = self.centered.then_some(1);
        let buf = (self.momentum > 0.0).then_some(1 + self.centered as usize);
        (grad_avg, buf)
    }
}

impl Algorithm for Rmsprop {
    fn name(&self) -> &'static str {
        "rmsprop"
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn hyper(&self) -> Hyper {
        crate::hyper::hyper([
            ("lr", num(self.lr)),
            ("alpha", num(self.alpha)),
            ("eps", num(self.eps)),
            ("weight_decay", num(self.weight_decay)),
            ("momentum", num(self.momentum)),
            ("centered", self.centered.into()),
            ("maximize", self.maximize.into()),
        ])
    }
    fn slots(&self, _p: &ParamInfo) -> Vec<Slot> {
        let mut s = vec![Slot::zeros("square_avg")];
        if self.centered {
            s.push(Slot::zeros("grad_avg"));
        }
        if self.momentum > 0.0 {
            s.push(Slot::zeros("momentum_buffer"));
        }
        s
    }

    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let n = t.param.len();
        let g = GradPrep::new(self.maximize, self.weight_decay).tensor(t.grad, t.param);
        let (alpha, one_minus_alpha) = (F::from_f64(self.alpha), F::from_f64(1.0 - self.alpha));
        let eps = F::from_f64(self.eps);
        let neg_lr = F::from_f64(-ctx.lr);
        let (ga_idx, buf_idx) = self.slot_index();
        {
            let sq = &mut t.slots[0];
            for i in 0..n {
                sq[i] = sq[i] * alpha;
            }
            for i in 0..n {
                sq[i] = addcmul(sq[i], one_minus_alpha, g[i], g[i]);
            }
        }
        let mut avg: Vec<F> = if let Some(k) = ga_idx {
            let lerp = Lerp::<F>::new(1.0 - self.alpha);
            for i in 0..n {
                t.slots[k][i] = lerp.apply(t.slots[k][i], g[i]);
            }
            (0..n)
                .map(|i| addcmul(t.slots[0][i], -F::ONE, t.slots[k][i], t.slots[k][i]).sqrt())
                .collect()
        } else {
            t.slots[0].iter().map(|x| x.sqrt()).collect()
        };
        for a in avg.iter_mut() {
            *a = *a + eps;
        }
        if let Some(k) = buf_idx {
            let mu = F::from_f64(self.momentum);
            let buf = &mut t.slots[k];
            for i in 0..n {
                buf[i] = buf[i] * mu;
            }
            for i in 0..n {
                buf[i] = addcdiv(buf[i], F::ONE, g[i], avg[i]);
            }
            for i in 0..n {
                t.param[i] = add_scaled(t.param[i], neg_lr, buf[i]);
            }
        } else {
            for i in 0..n {
                t.param[i] = addcdiv(t.param[i], neg_lr, g[i], avg[i]);
            }
        }
    }

    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let prep = GradPrep::new(self.maximize, self.weight_decay);
        let (alpha, oma) = (F::from_f64(self.alpha), F::from_f64(1.0 - self.alpha));
        let eps = F::from_f64(self.eps);
        let neg_lr = F::from_f64(-ctx.lr);
        let lerp = Lerp::<F>::new(1.0 - self.alpha);
        let mu = F::from_f64(self.momentum);
        match t.slots {
            [sq] => zip_chunks(t.param, t.grad, [&mut sq[..]], move |p, g, [sq]| {
                let n = p.len();
                let (g, sq) = (&g[..n], &mut sq[..n]);
                for i in 0..n {
                    let gi = prep.apply(g[i], p[i]);
                    let s = addcmul(sq[i] * alpha, oma, gi, gi);
                    sq[i] = s;
                    p[i] = addcdiv(p[i], neg_lr, gi, s.sqrt() + eps);
                }
            }),
            [sq, ga] if self.centered => {
                zip_chunks(t.param, t.grad, [&mut sq[..], &mut ga[..]], move |p, g, [sq, ga]| {
                    let n = p.len();
                    let (g, sq, ga) = (&g[..n], &mut sq[..n], &mut ga[..n]);
                    for i in 0..n {
                        let gi = prep.apply(g[i], p[i]);
                        let s = addcmul(sq[i] * alpha, oma, gi, gi);
                        let a = lerp.apply(ga[i], gi);
                        sq[i] = s;
                        ga[i] = a;
                        p[i] = addcdiv(p[i], neg_lr, gi, addcmul(s, -F::ONE, a, a).sqrt() + eps);
                    }
                })
            }
            [sq, b] => zip_chunks(t.param, t.grad, [&mut sq[..], &mut b[..]], move |p, g, [sq, b]| {
                let n = p.len();
                let (g, sq, b) = (&g[..n], &mut sq[..n], &mut b[..n]);
                for i in 0..n {
                    let gi = prep.apply(g[i], p[i]);
                    let s = addcmul(sq[i] * alpha, oma, gi, gi);
                    let bi = addcdiv(b[i] * mu, F::ONE, gi, s.sqrt() + eps);
                    sq[i] = s;
                    b[i] = bi;
                    p[i] = add_scaled(p[i], neg_lr, bi);
                }
            }),
            [sq, ga, b] => zip_chunks(
                t.param,
                t.grad,
                [&mut sq[..], &mut ga[..], &mut b[..]],
                move |p, g, [sq, ga, b]| {
                    let n = p.len();
                    let (g, sq, ga, b) = (&g[..n], &mut sq[..n], &mut ga[..n], &mut b[..n]);
                    for i in 0..n {
                        let gi = prep.apply(g[i], p[i]);
                        let s = addcmul(sq[i] * alpha, oma, gi, gi);
                        let a = lerp.apply(ga[i], gi);
                        let avg = addcmul(s, -F::ONE, a, a).sqrt() + eps;
                        let bi = addcdiv(b[i] * mu, F::ONE, gi, avg);
                        sq[i] = s;
                        ga[i] = a;
                        b[i] = bi;
                        p[i] = add_scaled(p[i], neg_lr, bi);
                    }
                },
            ),
            _ => unreachable!("rmsprop state has 1 to 3 slots by construction"),
        }
    }
}
