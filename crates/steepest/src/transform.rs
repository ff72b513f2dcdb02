//! Gradient transforms that compose with any optimizer, in the spirit of optax:
//! clipping by global norm or by value, and weight decay in its coupled (L2,
//! added to the gradient) or decoupled (`θ ← θ (1 - γ λ)`, applied to the
//! parameters before the update) form.
//!
//! Transforms run in the order given, after the non-finite check and before
//! the optimizer's update rule. Later wrappers (Cautious, AdaGC, FRUGAL's
//! split) hook in the same way instead of copying optimizers.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kernel::{for_each_chunk_mut, sum_squares};
use crate::ops::add_scaled;
use crate::real::Real;
use crate::tensor::{GradSet, ParamSet};

/// One composable gradient transform.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// `torch.nn.utils.clip_grad_norm_`: with `N` the L2 norm of all gradients
    /// together, scale every gradient by `min(1, max_norm / (N + 1e-6))`.
    ClipGlobalNorm {
        /// Largest allowed global norm (> 0).
        max_norm: f64,
    },
    /// `torch.nn.utils.clip_grad_value_`: clamp every element to `[-clip_value, clip_value]`.
    ClipValue {
        /// Bound (≥ 0).
        clip_value: f64,
    },
    /// Coupled weight decay: `g ← g + λ θ`.
    L2WeightDecay {
        /// λ (≥ 0).
        weight_decay: f64,
    },
    /// Decoupled weight decay: `θ ← θ (1 - γ λ)` with γ the parameter's learning rate this step.
    DecoupledWeightDecay {
        /// λ (≥ 0).
        weight_decay: f64,
    },
}

impl Transform {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        let (field, x, ok) = match *self {
            Transform::ClipGlobalNorm { max_norm } => ("max_norm", max_norm, max_norm > 0.0),
            Transform::ClipValue { clip_value } => ("clip_value", clip_value, clip_value >= 0.0),
            Transform::L2WeightDecay { weight_decay } | Transform::DecoupledWeightDecay { weight_decay } => {
                ("weight_decay", weight_decay, weight_decay >= 0.0)
            }
        };
        if ok && x.is_finite() {
            Ok(())
        } else {
            Err(Error::hyper(
                "transform",
                field,
                format!("must be a finite number >= 0 (> 0 for max_norm), got {x}"),
            ))
        }
    }

    /// Applies a gradient-side transform to every gradient present (no-op for decoupled decay).
    pub fn apply_grads<F: Real>(&self, params: &ParamSet<F>, grads: &mut GradSet<F>) {
        match *self {
            Transform::ClipGlobalNorm { max_norm } => {
                // Sum in parameter order so the result is independent of map order and threads.
                let total: f64 = params
                    .iter()
                    .filter_map(|p| grads.get(&p.name))
                    .map(|g| sum_squares(g))
                    .sum::<f64>()
                    .sqrt();
                let coef = (max_norm / (total + 1e-6)).min(1.0);
                if coef < 1.0 {
                    let c = F::from_f64(coef);
                    for p in params.iter() {
                        if let Some(g) = grads.get_mut(&p.name) {
                            scale_in_place(g, c);
                        }
                    }
                }
            }
            Transform::ClipValue { clip_value } => {
                let (lo, hi) = (F::from_f64(-clip_value), F::from_f64(clip_value));
                for p in params.iter() {
                    if let Some(g) = grads.get_mut(&p.name) {
                        for x in g.iter_mut() {
                            *x = x.maximum(lo).minimum(hi);
                        }
                    }
                }
            }
            Transform::L2WeightDecay { weight_decay } => {
                let wd = F::from_f64(weight_decay);
                for p in params.iter() {
                    if let Some(g) = grads.get_mut(&p.name) {
                        for (x, &w) in g.iter_mut().zip(&p.data) {
                            *x = add_scaled(*x, wd, w);
                        }
                    }
                }
            }
            Transform::DecoupledWeightDecay { .. } => {}
        }
    }

    /// Applies a parameter-side transform to one parameter about to be updated with learning rate `lr`.
    pub fn apply_param<F: Real>(&self, lr: f64, param: &mut [F]) {
        if let Transform::DecoupledWeightDecay { weight_decay } = *self {
            if weight_decay != 0.0 {
                scale_in_place(param, F::from_f64(1.0 - lr * weight_decay));
            }
        }
    }
}

fn scale_in_place<F: Real>(x: &mut [F], c: F) {
    for_each_chunk_mut(x, |chunk| {
        for v in chunk.iter_mut() {
            *v *= c;
        }
    });
}
