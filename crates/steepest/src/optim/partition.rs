//! Partition: route each parameter to one of two optimizers, by name pattern,
//! by shape, or because the first cannot update it.
//!
//! A parameter goes to `aux` if it matches any of `aux_select`, or if `main`
//! rejects it ([`Algorithm::check_param`], e.g. Muon and a bias vector);
//! otherwise to `main`. Each side keeps its own learning rate; the schedule's
//! factor applies to both. Works for any pair of registered optimizers; the
//! registry's `muon` recipe (Muon on matrices, AdamW on the rest and on the
//! embeddings and output head) is built from it.

use std::sync::Arc;

use crate::algorithm::{Algorithm, DynAlgorithm, Float, Slot, StepCtx, TensorMut};
use crate::error::Result;
use crate::hyper::Hyper;
use crate::kernel::Kernel;
use crate::optimizer::Select;
use crate::tensor::ParamInfo;

/// Two optimizers and the rule that splits the parameters between them.
#[derive(Clone, Debug)]
pub struct Partition {
    /// Registry name of the recipe.
    pub name: &'static str,
    /// The optimizer for everything not routed to `aux`.
    pub main: Arc<dyn DynAlgorithm>,
    /// The optimizer for the rest.
    pub aux: Arc<dyn DynAlgorithm>,
    /// Parameters that go to `aux` regardless of shape.
    pub aux_select: Vec<Select>,
    /// All hyperparameters of the recipe (for metadata).
    pub hyper: Hyper,
}

impl Partition {
    /// Routes parameters matching `aux_select` (or rejected by `main`) to the
    /// registered optimizer `aux_name`, everything else to `main_name`.
    pub fn new(
        name: &'static str,
        (main_name, main_hyper): (&str, &Hyper),
        (aux_name, aux_hyper): (&str, &Hyper),
        aux_select: Vec<Select>,
    ) -> Result<Self> {
        let main: Arc<dyn DynAlgorithm> = Arc::from(crate::registry::build(main_name, main_hyper)?);
        let aux: Arc<dyn DynAlgorithm> = Arc::from(crate::registry::build(aux_name, aux_hyper)?);
        let mut hyper = Hyper::new();
        for (k, v) in main.hyper() {
            hyper.insert(format!("main.{k}"), v);
        }
        for (k, v) in aux.hyper() {
            hyper.insert(format!("aux.{k}"), v);
        }
        Ok(Partition {
            name,
            main,
            aux,
            aux_select,
            hyper,
        })
    }

    /// Whether the parameter goes to `aux`.
    pub fn routes_to_aux(&self, name: &str, shape: &[usize]) -> bool {
        self.aux_select.iter().any(|s| s.matches_parts(name, shape)) || !self.main.accepts(shape)
    }

    fn pick(&self, name: &str, shape: &[usize]) -> &dyn DynAlgorithm {
        if self.routes_to_aux(name, shape) {
            self.aux.as_ref()
        } else {
            self.main.as_ref()
        }
    }

    fn run<F: Float>(&self, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, F>) {
        let alg = self.pick(t.name, t.shape);
        let ctx = StepCtx {
            lr: alg.lr() * ctx.lr_factor,
            ..*ctx
        };
        F::step_dyn(alg, kernel, &ctx, t)
    }
}

impl Algorithm for Partition {
    fn name(&self) -> &'static str {
        self.name
    }
    fn lr(&self) -> f64 {
        self.main.lr()
    }
    fn hyper(&self) -> Hyper {
        self.hyper.clone()
    }
    fn slots(&self, p: &ParamInfo) -> Vec<Slot> {
        self.pick(&p.name, &p.shape).slots(p)
    }
    fn accepts(&self, shape: &[usize]) -> bool {
        self.main.accepts(shape) || self.aux.accepts(shape)
    }
    fn needs_global_grad_norm(&self) -> bool {
        self.main.needs_global_grad_norm() || self.aux.needs_global_grad_norm()
    }
    fn needs(&self) -> crate::algorithm::Needs {
        self.main.needs().union(self.aux.needs())
    }
    fn check_loss(&self, loss: f64) -> Result<()> {
        self.main.check_loss(loss).and_then(|_| self.aux.check_loss(loss))
    }
    fn lr_for(&self, name: &str, shape: &[usize]) -> f64 {
        self.pick(name, shape).lr_for(name, shape)
    }
    fn needs_group_stat(&self) -> bool {
        self.main.needs_group_stat() || self.aux.needs_group_stat()
    }
    fn group_stat<F: Float>(&self, kernel: Kernel, ctx: &StepCtx, t: TensorMut<'_, F>) -> f64 {
        let alg = self.pick(t.name, t.shape);
        if !alg.needs_group_stat() {
            return f64::NAN;
        }
        let ctx = StepCtx {
            lr: alg.lr() * ctx.lr_factor,
            ..*ctx
        };
        F::group_stat_dyn(alg, kernel, &ctx, t)
    }
    fn check_param(&self, p: &ParamInfo) -> Result<()> {
        self.pick(&p.name, &p.shape).check_param(p)
    }
    fn reference<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(Kernel::Reference, ctx, t)
    }
    fn fused<F: Float>(&self, ctx: &StepCtx, t: TensorMut<'_, F>) {
        self.run(Kernel::Fused, ctx, t)
    }
}
