//! AdaGC: adaptive per-tensor gradient clipping around any optimizer.
//!
//! Paper: Wang et al., *"AdaGC: Improving Training Stability for Large
//! Language Model Pretraining"*. Each parameter tensor `i` keeps `γ_i`, an
//! exponential moving average of its (clipped) gradient norm:
//! ```text
//! warm-up (t < T_start, and each tensor's first step):
//!     h = min(λ_abs / (‖g‖_global + ε), 1)         (global-norm clipping)
//!     ĝ_i = h g_i ;   γ_i = ‖ĝ_i‖ (first step) or min(γ_i, ‖ĝ_i‖)
//! afterwards:
//!     h_i = min(λ_rel · max(γ_i, ε) / max(‖g_i‖, ε), 1)
//!     ĝ_i = h_i g_i ;  γ_i ← β γ_i + (1-β) ‖ĝ_i‖
//! then the base optimizer steps with ĝ_i.
//! ```
//! Defaults (pytorch-optimizer's `AdaGC`, the reference): `lr = 1e-3`,
//! `betas = (0.9, 0.999)`, `beta = 0.98`, `lambda_abs = 1.0`, `lambda_rel = 1.05`,
//! `warmup_steps = 100`, `weight_decay = 0.1`, `weight_decouple = true`,
//! `fixed_decay = false`, `eps = 1e-8`, `maximize = false`; `step_counter`
//! `"global"` (the reference counts optimizer steps, frozen ones included, for
//! the warm-up and for the base's bias correction).
//!
//! Where the reference differs from the paper, steepest follows the reference:
//! ε in the global clip and as a floor in the relative ratio; `γ` starts at
//! each tensor's first clipped norm, so a tensor first seen after the warm-up
//! still gets one globally clipped step; the warm-up is `t < warmup_steps`;
//! decoupled decay is applied before clipping. The reference accumulates the
//! warm-up global norm in float32 (`global_norm_dtype = "f32"`); steepest
//! accumulates in f64 and, for `"f32"`, rounds the result to f32. With coupled
//! decay (`weight_decouple = false`) the reference's global norm depends on
//! parameter order; steepest uses the norm of the raw gradients.
//!
//! The registry's `adagc` wraps AdamW (decay handled here, not by the base);
//! `adagc-lion` wraps Lion: the clipping composes with any optimizer.

use std::sync::Arc;

use crate::algorithm::{Algorithm, DynAlgorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::{Error, Result};
use crate::hyper::{num, Hyper, HyperReader};
use crate::kernel::{for_each_chunk_mut, sum_squares, sum_squares_scaled, zip_chunks, Kernel};
use crate::ops::{add_scaled, Lerp};
use crate::tensor::ParamInfo;

/// AdaGC around a base optimizer.
#[derive(Clone, Debug)]
pub struct AdaGc {
    /// Registry name.
    pub name: &'static str,
    /// The wrapped optimizer (its weight decay is 0: AdaGC applies it).
    pub base: Arc<dyn DynAlgorithm>,
    /// EMA factor β of the norms.
    pub beta: f64,
    /// Global clip threshold during warm-up.
    pub lambda_abs: f64,
    /// Relative clip factor after warm-up.
    pub lambda_rel: f64,
    /// Warm-up length T_start.
    pub warmup_steps: usize,
    /// Weight decay λ.
    pub weight_decay: f64,
    /// Decoupled (default) or coupled decay.
    pub weight_decouple: bool,
    /// Decay without the learning rate.
    pub fixed_decay: bool,
    /// ε.
    pub eps: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
    /// Count optimizer steps (true) or this parameter's steps.
    pub global_step: bool,
    /// Round the global norm to f32 (the reference's float32 accumulation).
    pub norm_f32: bool,
}

/// AdaGC's own hyperparameter names (everything else goes to the base).
pub const OWN_KEYS: &[&str] = &[
    "beta",
    "lambda_abs",
    "lambda_rel",
    "warmup_steps",
    "weight_decay",
    "weight_decouple",
    "fixed_decay",
    "maximize",
    "step_counter",
    "global_norm_dtype",
];

impl AdaGc {
    /// Parses AdaGC's hyperparameters; `base` builds the wrapped optimizer from
    /// the others (`eps` is shared: it goes to both when `share_eps`).
    pub fn from_hyper(
        name: &'static str,
        h: &Hyper,
        share_eps: bool,
        base: impl FnOnce(&Hyper) -> Result<Arc<dyn DynAlgorithm>>,
    ) -> Result<Self> {
        let mut own = Hyper::new();
        let mut rest = Hyper::new();
        for (k, v) in h {
            if OWN_KEYS.contains(&k.as_str()) || (k == "eps" && !share_eps) {
                own.insert(k.clone(), v.clone());
            } else {
                if k == "eps" {
                    own.insert(k.clone(), v.clone());
                }
                rest.insert(k.clone(), v.clone());
            }
        }
        let mut r = HyperReader::new(name, &own);
        let sc = r.string("step_counter", "global")?;
        let nd = r.string("global_norm_dtype", "param")?;
        let a = AdaGc {
            name,
            base: Arc::new(crate::optim::Sgd::from_hyper(&Hyper::new())?),
            beta: r.f64("beta", 0.98)?,
            lambda_abs: r.f64("lambda_abs", 1.0)?,
            lambda_rel: r.f64("lambda_rel", 1.05)?,
            warmup_steps: r.usize("warmup_steps", 100)?,
            weight_decay: r.f64("weight_decay", 0.1)?,
            weight_decouple: r.bool("weight_decouple", true)?,
            fixed_decay: r.bool("fixed_decay", false)?,
            eps: r.f64("eps", 1e-8)?,
            maximize: r.bool("maximize", false)?,
            global_step: sc == "global",
            norm_f32: nd == "f32",
        };
        r.unit_interval("beta", a.beta)?;
        r.check(
            a.lambda_abs > 0.0 && a.lambda_abs.is_finite(),
            "lambda_abs",
            format!("must be a finite number > 0, got {}", a.lambda_abs),
        )?;
        r.check(
            a.lambda_rel > 0.0 && a.lambda_rel.is_finite(),
            "lambda_rel",
            format!("must be a finite number > 0, got {}", a.lambda_rel),
        )?;
        r.non_negative("weight_decay", a.weight_decay)?;
        r.non_negative("eps", a.eps)?;
        r.check(
            sc == "global" || sc == "param",
            "step_counter",
            format!("expected \"global\" or \"param\", got \"{sc}\""),
        )?;
        r.check(
            nd == "param" || nd == "f32",
            "global_norm_dtype",
            format!("expected \"param\" or \"f32\", got \"{nd}\""),
        )?;
        r.finish()?;
        let base = base(&rest).map_err(|e| match e {
            Error::InvalidHyper { field, message, .. } => Error::hyper(name, &field, message),
            e => e,
        })?;
        Ok(AdaGc { base, ..a })
    }

    /// The clip factor `h` and whether this is a warm-up step, given the step
    /// counters and (lazily) the norm of the gradient the clip applies to.
    fn clip_factor(&self, ctx: &StepCtx, step: u64, gamma: f64, gnorm: impl FnOnce() -> f64) -> (f64, bool) {
        if ctx.step == 1 || (step as f64) < self.warmup_steps as f64 {
            let mut norm = ctx.global_grad_norm;
            if self.norm_f32 {
                norm = norm as f32 as f64;
            }
            (((1.0 / (norm + self.eps)) * self.lambda_abs).min(1.0), true)
        } else {
            (
                (self.lambda_rel * gamma.max(self.eps) / gnorm().max(self.eps)).min(1.0),
                false,
            )
        }
    }

    /// The new `γ` from the old one and the clipped gradient's norm `cn`.
    fn gamma_next<F: Float>(&self, first: bool, warm: bool, gamma: f64, cn: F) -> F {
        if first {
            cn
        } else if warm {
            F::from_f64(gamma).minimum(cn)
        } else {
            Lerp::<F>::new(1.0 - self.beta).apply(F::from_f64(gamma), cn)
        }
    }

    /// The fused step with decoupled (or no) decay: nothing is materialized.
    /// The clipped gradient `ĝ = g·(±h)` and the decayed parameter `θ·d` are
    /// folded into the base's single pass ([`Algorithm::fused_scaled`]); the
    /// norms come from read passes over `g` (none for `‖g‖` when the optimizer's
    /// pre-pass gave it, none for `‖ĝ‖` when `h = 1`). Equal to the reference
    /// path to the bit: `(g·(−1))·h = g·(−h)` exactly.
    fn run_fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let first = ctx.step == 1;
        let step = if self.global_step { ctx.global_step } else { ctx.step };
        let sign = if self.maximize { -F::ONE } else { F::ONE };
        let decay = match (self.weight_decay != 0.0, self.fixed_decay) {
            (false, _) => F::ONE,
            (true, false) => F::from_f64(1.0 - ctx.lr * self.weight_decay),
            (true, true) => F::from_f64(1.0 - self.weight_decay),
        };
        let grad = t.grad;
        let mut raw = (!ctx.grad_sq.is_nan()).then_some(ctx.grad_sq);
        let mut raw_sq = || *raw.get_or_insert_with(|| sum_squares(grad));
        let gamma = t.slots[0][0].to_f64();
        let (h, warm) = self.clip_factor(ctx, step, gamma, || raw_sq().sqrt());
        let hf = F::from_f64(h);
        let gs = sign * hf;
        let cn_sq = if hf == F::ONE {
            raw_sq()
        } else {
            sum_squares_scaled(grad, gs)
        };
        t.slots[0][0] = self.gamma_next(first, warm, gamma, F::from_f64(cn_sq.sqrt()));
        let ctx2 = StepCtx {
            step,
            grad_sq: f64::NAN,
            ..*ctx
        };
        F::fused_scaled_dyn(
            self.base.as_ref(),
            &ctx2,
            TensorMut {
                name: t.name,
                shape: t.shape,
                param: t.param,
                grad,
                slots: &mut t.slots[1..],
                work: t.work.inner(),
                samples: t.samples,
            },
            gs,
            decay,
        );
    }

    fn run<F: Float>(&self, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, F>) {
        if kernel == Kernel::Fused && (self.weight_decay == 0.0 || self.weight_decouple) {
            return self.run_fused(ctx, t);
        }
        let n = t.param.len();
        let first = ctx.step == 1;
        let step = if self.global_step { ctx.global_step } else { ctx.step };
        let (bufs, inner) = t.work.take(1, n);
        let gc = &mut bufs[0];
        let sign = if self.maximize { -F::ONE } else { F::ONE };
        zip_chunks(&mut gc[..], t.grad, [], move |c, g, []| {
            let g = &g[..c.len()];
            for i in 0..c.len() {
                c[i] = g[i] * sign;
            }
        });
        if self.weight_decay != 0.0 {
            if self.weight_decouple {
                let d = if self.fixed_decay {
                    1.0 - self.weight_decay
                } else {
                    1.0 - ctx.lr * self.weight_decay
                };
                let d = F::from_f64(d);
                for_each_chunk_mut(t.param, move |c| c.iter_mut().for_each(|p| *p = *p * d));
            } else {
                let wd = F::from_f64(self.weight_decay);
                for i in 0..n {
                    gc[i] = add_scaled(gc[i], wd, t.param[i]);
                }
            }
        }
        let gamma = t.slots[0][0].to_f64();
        let (h, warm) = self.clip_factor(ctx, step, gamma, || sum_squares(gc).sqrt());
        let hf = F::from_f64(h);
        for_each_chunk_mut(&mut gc[..], move |c| c.iter_mut().for_each(|x| *x = *x * hf));
        let cn = F::from_f64(sum_squares(gc).sqrt());
        t.slots[0][0] = self.gamma_next(first, warm, gamma, cn);
        let ctx2 = StepCtx {
            step,
            grad_sq: f64::NAN,
            ..*ctx
        };
        F::step_dyn(
            self.base.as_ref(),
            kernel,
            &ctx2,
            TensorMut {
                name: t.name,
                shape: t.shape,
                param: t.param,
                grad: gc,
                slots: &mut t.slots[1..],
                work: inner,
                samples: t.samples,
            },
        );
    }
}

impl Algorithm for AdaGc {
    fn name(&self) -> &'static str {
        self.name
    }
    fn lr(&self) -> f64 {
        self.base.lr()
    }
    fn hyper(&self) -> Hyper {
        let mut h = self.base.hyper();
        h.remove("weight_decay");
        h.remove("decoupled_weight_decay");
        for (k, v) in [
            ("beta", num(self.beta)),
            ("lambda_abs", num(self.lambda_abs)),
            ("lambda_rel", num(self.lambda_rel)),
            ("warmup_steps", (self.warmup_steps as u64).into()),
            ("weight_decay", num(self.weight_decay)),
            ("weight_decouple", self.weight_decouple.into()),
            ("fixed_decay", self.fixed_decay.into()),
            ("eps", num(self.eps)),
            ("maximize", self.maximize.into()),
            (
                "step_counter",
                (if self.global_step { "global" } else { "param" }).into(),
            ),
            (
                "global_norm_dtype",
                (if self.norm_f32 { "f32" } else { "param" }).into(),
            ),
        ] {
            h.insert(k.to_string(), v);
        }
        h
    }
    fn slots(&self, p: &ParamInfo) -> Vec<Slot> {
        let mut s = vec![Slot::scalar("gamma", 0.0)];
        s.extend(self.base.slots(p));
        s
    }
    fn accepts(&self, shape: &[usize]) -> bool {
        self.base.accepts(shape)
    }
    fn needs_global_grad_norm(&self) -> bool {
        true
    }
    fn needs(&self) -> crate::algorithm::Needs {
        self.base.needs()
    }
    fn check_loss(&self, loss: f64) -> Result<()> {
        self.base.check_loss(loss)
    }
    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(Kernel::Reference, ctx, t)
    }
    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(Kernel::Fused, ctx, t)
    }
}

#[cfg(test)]
mod tests {
    use crate::algorithm::{DynAlgorithm, Samples, StepCtx, TensorMut, Workspace};
    use crate::hyper::hyper_from_json;
    use crate::kernel::Kernel;
    use crate::registry::build;
    use crate::tensor::ParamInfo;

    /// Steps `alg` once on `p`, either through `fused_scaled(gs, ps)` or by
    /// materializing `p·ps` and `g·gs` and calling the plain fused kernel.
    fn step(alg: &dyn DynAlgorithm, p: &mut [f32], g: &[f32], gs: f32, ps: f32, native: bool) -> Vec<Vec<f32>> {
        let info = ParamInfo {
            name: "w".into(),
            shape: vec![p.len()],
        };
        let mut slots: Vec<Vec<f32>> = alg.slots(&info).iter().map(|s| vec![0.1; s.len(p.len())]).collect();
        let mut work = Workspace::default();
        let ctx = StepCtx {
            lr: 0.01,
            step: 3,
            lr_factor: 1.0,
            global_step: 3,
            global_grad_norm: f64::NAN,
            grad_sq: f64::NAN,
            group_stat: f64::NAN,
            slot_norm: f64::NAN,
            loss: None,
        };
        let shape = [p.len()];
        if native {
            let t = TensorMut {
                name: "w",
                shape: &shape,
                param: p,
                grad: g,
                slots: &mut slots,
                work: &mut work,
                samples: Samples::none(),
            };
            alg.fused_scaled_f32(&ctx, t, gs, ps);
        } else {
            p.iter_mut().for_each(|x| *x *= ps);
            let g2: Vec<f32> = g.iter().map(|&x| x * gs).collect();
            let t = TensorMut {
                name: "w",
                shape: &shape,
                param: p,
                grad: &g2,
                slots: &mut slots,
                work: &mut work,
                samples: Samples::none(),
            };
            alg.step_f32(Kernel::Fused, &ctx, t);
        }
        slots
    }

    /// The kernels that fold the gradient and parameter scales into their pass
    /// (Adam, Lion) and the default that materializes them (here SGD) all give
    /// the bits of scaling first and stepping after.
    #[test]
    fn fused_scaled_equals_scaling_then_stepping() {
        let n = (1 << 16) + 37; // the parallel path, and a ragged tail
        let p0: Vec<f32> = (0..n).map(|i| ((i % 89) as f32 - 44.0) * 1e-2).collect();
        let g: Vec<f32> = (0..n).map(|i| ((i % 97) as f32 - 48.0) * 3e-3).collect();
        for (name, json) in [
            ("adamw", r#"{"weight_decay": 0.1}"#),
            ("adam", r#"{"weight_decay": 0.1, "maximize": true}"#),
            ("adam", r#"{"amsgrad": true}"#),
            ("lion", r#"{"weight_decay": 0.5, "weight_decouple": false}"#),
            ("lion", "{}"),
            ("sgd", r#"{"momentum": 0.9, "nesterov": true}"#),
        ] {
            let alg = build(name, &hyper_from_json(json).expect("valid json")).expect("valid hyper");
            for (gs, ps) in [(1.0f32, 1.0f32), (-0.37, 0.999), (2.5e-3, 1.0)] {
                let (mut a, mut b) = (p0.clone(), p0.clone());
                let sa = step(alg.as_ref(), &mut a, &g, gs, ps, true);
                let sb = step(alg.as_ref(), &mut b, &g, gs, ps, false);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "{name} {json} gs {gs} ps {ps}: parameter");
                for (x, y) in sa.iter().zip(&sb) {
                    assert_eq!(bits(x), bits(y), "{name} {json} gs {gs} ps {ps}: state");
                }
                assert_ne!(bits(&a), bits(&p0), "{name}: the step changed nothing");
            }
        }
    }
}
