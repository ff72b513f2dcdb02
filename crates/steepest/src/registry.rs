//! The one table of every optimizer: name, paper, defaults, capabilities, and
//! the invalid inputs it must reject. The shared test matrix
//! (`tests/matrix.rs`) runs every entry through the same checks, so a new
//! optimizer joins the matrix by adding its entry here.

use crate::algorithm::DynAlgorithm;
use crate::error::{Error, Result};
use crate::hyper::{hyper_from_json, Hyper};
use crate::optim;

/// What an optimizer supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// The update of each element depends only on that element (so any shape works).
    pub elementwise: bool,
    /// Has an `amsgrad`-style or other flag set that changes the state slots.
    pub state_depends_on_flags: bool,
}

/// One registered optimizer.
pub struct Entry {
    /// Registry name (lowercase, hyphenated).
    pub name: &'static str,
    /// The paper it implements (title as in the seed where the seed has it).
    pub paper: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// Builds the validated algorithm from hyperparameters (missing keys take defaults).
    pub build: fn(&Hyper) -> Result<Box<dyn DynAlgorithm>>,
    /// Hyperparameters (a JSON object) under which the test matrix checks that the loss decreases.
    pub demo: &'static str,
    /// Extra hyperparameter sets (JSON objects) that exercise other code paths in the matrix.
    pub variants: &'static [&'static str],
    /// Invalid inputs: a JSON object of hyperparameters and the field its error must name.
    pub invalid: &'static [(&'static str, &'static str)],
    /// Hyperparameters read once at construction from the base set, which parameter
    /// groups cannot override (PyTorch's AdaGrad creates its accumulators in
    /// `__init__` from the constructor's `initial_accumulator_value`).
    pub base_only: &'static [&'static str],
    /// Capabilities.
    pub capabilities: Capabilities,
}

impl Entry {
    /// The defaults: every hyperparameter as built from an empty map.
    pub fn defaults(&self) -> Hyper {
        (self.build)(&Hyper::new()).map(|a| a.hyper()).unwrap_or_default()
    }

    /// The demo hyperparameters as a map.
    pub fn demo_hyper(&self) -> Hyper {
        hyper_from_json(self.demo).unwrap_or_default()
    }
}

const ELEMENTWISE: Capabilities = Capabilities {
    elementwise: true,
    state_depends_on_flags: true,
};

fn boxed<A: crate::algorithm::Algorithm>(r: Result<A>) -> Result<Box<dyn DynAlgorithm>> {
    r.map(|a| Box::new(a) as Box<dyn DynAlgorithm>)
}

static REGISTRY: &[Entry] = &[
    Entry {
        name: "sgd",
        paper: "Accelerated Convergence of Stochastic Heavy Ball Method under Anisotropic Gradient Noise (heavy ball); Robbins & Monro 1951 (SGD)",
        summary: "SGD with heavy-ball or Nesterov momentum, dampening and L2 weight decay",
        build: |h| boxed(optim::Sgd::from_hyper(h)),
        demo: r#"{"lr": 0.05, "momentum": 0.9}"#,
        variants: &[
            r#"{"lr": 0.05}"#,
            r#"{"lr": 0.02, "momentum": 0.9, "nesterov": true, "weight_decay": 0.01}"#,
            r#"{"lr": 0.02, "momentum": 0.5, "dampening": 0.3, "maximize": true}"#,
        ],
        invalid: &[
            (r#"{"lr": -0.1}"#, "lr"),
            (r#"{"momentum": -0.5}"#, "momentum"),
            (r#"{"weight_decay": -1e-4}"#, "weight_decay"),
            (r#"{"nesterov": true}"#, "nesterov"),
            (r#"{"nesterov": true, "momentum": 0.9, "dampening": 0.1}"#, "nesterov"),
            (r#"{"lr": "NaN"}"#, "lr"),
            (r#"{"lr": "fast"}"#, "lr"),
            (r#"{"momentum": 0.9, "betas": [0.9, 0.99]}"#, "betas"),
        ],
        base_only: &[],
        capabilities: ELEMENTWISE,
    },
    Entry {
        name: "adam",
        paper: "Adam: A Method for Stochastic Optimization",
        summary: "Adam with bias correction; amsgrad flag; coupled L2 weight decay",
        build: |h| boxed(optim::Adam::from_hyper(h, false)),
        demo: r#"{"lr": 0.05}"#,
        variants: &[
            r#"{"lr": 0.01, "amsgrad": true, "weight_decay": 0.01}"#,
            r#"{"lr": 0.01, "betas": [0.5, 0.9], "eps": 1e-3, "maximize": true}"#,
            r#"{"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": true}"#,
        ],
        invalid: &[
            (r#"{"lr": -1e-3}"#, "lr"),
            (r#"{"betas": [1.0, 0.999]}"#, "betas"),
            (r#"{"betas": [0.9, -0.1]}"#, "betas"),
            (r#"{"betas": [0.9]}"#, "betas"),
            (r#"{"eps": -1e-8}"#, "eps"),
            (r#"{"weight_decay": -0.01}"#, "weight_decay"),
            (r#"{"amsgrad": 1}"#, "amsgrad"),
            (r#"{"momentum": 0.9}"#, "momentum"),
        ],
        base_only: &[],
        capabilities: ELEMENTWISE,
    },
    Entry {
        name: "adamw",
        paper: "Adam: A Method for Stochastic Optimization; Decoupled Weight Decay Regularization",
        summary: "Adam with decoupled weight decay (default 1e-2); amsgrad flag",
        build: |h| boxed(optim::Adam::from_hyper(h, true)),
        demo: r#"{"lr": 0.05}"#,
        variants: &[
            r#"{"lr": 0.01, "amsgrad": true}"#,
            r#"{"lr": 0.01, "weight_decay": 0.5, "betas": [0.8, 0.95]}"#,
        ],
        invalid: &[
            (r#"{"lr": -1.0}"#, "lr"),
            (r#"{"betas": [0.9, 1.0]}"#, "betas"),
            (r#"{"eps": -1.0}"#, "eps"),
            (r#"{"weight_decay": -0.01}"#, "weight_decay"),
            (r#"{"nesterov": true}"#, "nesterov"),
        ],
        base_only: &[],
        capabilities: ELEMENTWISE,
    },
    Entry {
        name: "adamax",
        paper: "Adam: A Method for Stochastic Optimization (AdaMax, Algorithm 2)",
        summary: "Adam with an infinity-norm second moment",
        build: |h| boxed(optim::Adamax::from_hyper(h)),
        demo: r#"{"lr": 0.05}"#,
        variants: &[r#"{"lr": 0.01, "weight_decay": 0.01, "betas": [0.5, 0.99], "maximize": true}"#],
        invalid: &[
            (r#"{"lr": -1.0}"#, "lr"),
            (r#"{"betas": [-0.1, 0.999]}"#, "betas"),
            (r#"{"eps": -1e-8}"#, "eps"),
            (r#"{"weight_decay": -0.5}"#, "weight_decay"),
            (r#"{"amsgrad": true}"#, "amsgrad"),
        ],
        base_only: &[],
        capabilities: ELEMENTWISE,
    },
    Entry {
        name: "adagrad",
        paper: "Adaptive Subgradient Methods for Online Learning and Stochastic Optimization (Duchi et al. 2011)",
        summary: "AdaGrad with lr_decay and an initial accumulator value",
        build: |h| boxed(optim::Adagrad::from_hyper(h)),
        demo: r#"{"lr": 0.5}"#,
        variants: &[
            r#"{"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.01}"#,
            r#"{"lr": 0.1, "eps": 1e-3, "maximize": true}"#,
        ],
        invalid: &[
            (r#"{"lr": -1.0}"#, "lr"),
            (r#"{"lr_decay": -0.1}"#, "lr_decay"),
            (r#"{"weight_decay": -0.1}"#, "weight_decay"),
            (r#"{"initial_accumulator_value": -0.1}"#, "initial_accumulator_value"),
            (r#"{"eps": -1e-10}"#, "eps"),
        ],
        base_only: &["initial_accumulator_value"],
        capabilities: ELEMENTWISE,
    },
    Entry {
        name: "rmsprop",
        paper: "Tieleman & Hinton 2012 (RMSprop); Graves 2013, Generating Sequences With Recurrent Neural Networks (centered)",
        summary: "RMSprop with centered and momentum options",
        build: |h| boxed(optim::Rmsprop::from_hyper(h)),
        demo: r#"{"lr": 0.05}"#,
        variants: &[
            r#"{"lr": 0.01, "centered": true}"#,
            r#"{"lr": 0.01, "momentum": 0.9, "weight_decay": 0.01}"#,
            r#"{"lr": 0.01, "centered": true, "momentum": 0.5, "alpha": 0.9, "maximize": true}"#,
        ],
        invalid: &[
            (r#"{"lr": -1.0}"#, "lr"),
            (r#"{"alpha": -0.1}"#, "alpha"),
            (r#"{"alpha": 1.5}"#, "alpha"),
            (r#"{"eps": -1.0}"#, "eps"),
            (r#"{"weight_decay": -1.0}"#, "weight_decay"),
            (r#"{"momentum": -0.9}"#, "momentum"),
        ],
        base_only: &[],
        capabilities: ELEMENTWISE,
    },
];

/// Every registered optimizer.
pub fn registry() -> &'static [Entry] {
    REGISTRY
}

/// The entry named `name`.
pub fn lookup(name: &str) -> Result<&'static Entry> {
    REGISTRY
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| Error::UnknownOptimizer(name.to_string()))
}

/// Builds the algorithm `name` from hyperparameters.
pub fn build(name: &str, hyper: &Hyper) -> Result<Box<dyn DynAlgorithm>> {
    (lookup(name)?.build)(hyper)
}
