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
    /// The update of one parameter depends on the others' gradients (AdaGC's
    /// global norm), so a parameter group is not the same as a separate optimizer.
    pub couples_params: bool,
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
    /// How closely the fused kernel must match the reference kernel.
    pub fused_vs_reference: Exactness,
    /// Capabilities.
    pub capabilities: Capabilities,
}

/// Agreement required between fused and reference kernels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Exactness {
    /// Same arithmetic, same bits.
    Bitwise,
    /// Different summation orders (matrix products): `max|Δ| / max|ref|` per tensor
    /// at most `f64_tol` in f64 and `f32_tol` in f32.
    Within {
        /// Tolerance in f64.
        f64_tol: f64,
        /// Tolerance in f32.
        f32_tol: f64,
    },
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
    couples_params: false,
};

const MATRIX: Capabilities = Capabilities {
    elementwise: false,
    state_depends_on_flags: false,
    couples_params: false,
};

/// Elementwise state, but the step of each element depends on the rest of its
/// tensor (MGUP's per-tensor top-K).
const PER_TENSOR: Capabilities = Capabilities {
    elementwise: false,
    state_depends_on_flags: false,
    couples_params: false,
};

const GLOBAL_NORM: Capabilities = Capabilities {
    elementwise: true,
    state_depends_on_flags: false,
    couples_params: true,
};

/// Matrix products summed in another order: Newton–Schulz amplifies ulps by
/// its slope (~3.4 per iteration), so a few hundred ulps over 5 iterations.
const GEMM_ORDER: Exactness = Exactness::Within {
    f64_tol: 1e-12,
    f32_tol: 1e-4,
};

/// [`GEMM_ORDER`] plus the noise estimate's nuclear norm (Jacobi vs faer's SVD,
/// ~1e-15 apart), which enters the step size through a square root.
const SVD_AND_GEMM_ORDER: Exactness = Exactness::Within {
    f64_tol: 1e-12,
    f32_tol: 1e-4,
};

/// Eigen- or singular-value decompositions by two different algorithms (faer
/// vs a Jacobi iteration, or faer vs itself after GEMMs summed in another
/// order): a few ulps of the largest eigenvalue, amplified by the conditioning
/// of `V^{-1/2}` and by sign updates near zero.
const EIGEN_ORDER: Exactness = Exactness::Within {
    f64_tol: 1e-9,
    f32_tol: 1e-3,
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
        fused_vs_reference: Exactness::Bitwise,
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
            r#"{"lr": 0.01, "betas": [0.9, 0.99], "eps": 1e-3, "bias_correction": false}"#,
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
        fused_vs_reference: Exactness::Bitwise,
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
        fused_vs_reference: Exactness::Bitwise,
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
        fused_vs_reference: Exactness::Bitwise,
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
        fused_vs_reference: Exactness::Bitwise,
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
        fused_vs_reference: Exactness::Bitwise,
        capabilities: ELEMENTWISE,
    },
    Entry {
        name: "adabound",
        paper: "Adaptive Gradient Methods with Dynamic Bound of Learning Rate",
        summary: "Adam with per-element step sizes clipped into bounds converging to final_lr; amsbound flag",
        build: |h| boxed(optim::AdaBound::from_hyper(h)),
        demo: r#"{"lr": 0.05, "final_lr": 0.1}"#,
        variants: &[
            r#"{"lr": 0.01, "amsbound": true, "weight_decay": 0.01, "gamma": 0.1}"#,
            r#"{"lr": 0.02, "final_lr": 0.05, "gamma": 0.01, "betas": [0.8, 0.99], "eps": 1e-6}"#,
        ],
        invalid: &[
            (r#"{"lr": -1.0}"#, "lr"),
            (r#"{"betas": [1.0, 0.999]}"#, "betas"),
            (r#"{"final_lr": -0.1}"#, "final_lr"),
            (r#"{"gamma": 0.0}"#, "gamma"),
            (r#"{"gamma": 1.0}"#, "gamma"),
            (r#"{"eps": -1e-8}"#, "eps"),
            (r#"{"weight_decay": -0.1}"#, "weight_decay"),
            (r#"{"amsgrad": true}"#, "amsgrad"),
        ],
        base_only: &[],
        fused_vs_reference: Exactness::Bitwise,
        capabilities: ELEMENTWISE,
    },
    Entry {
        name: "lion",
        paper: "Communication Efficient Distributed Training with Distributed Lion (base optimizer); Chen et al. 2023, Symbolic Discovery of Optimization Algorithms",
        summary: "Sign of an interpolated momentum; decoupled weight decay",
        build: |h| boxed(optim::Lion::from_hyper(h)),
        demo: r#"{"lr": 0.03}"#,
        variants: &[
            r#"{"lr": 0.003, "weight_decay": 0.1}"#,
            r#"{"lr": 0.003, "betas": [0.95, 0.98]}"#,
        ],
        invalid: &[
            (r#"{"lr": -1e-4}"#, "lr"),
            (r#"{"betas": [1.1, 0.99]}"#, "betas"),
            (r#"{"betas": [0.9, -0.1]}"#, "betas"),
            (r#"{"weight_decay": -1.0}"#, "weight_decay"),
            (r#"{"eps": 1e-8}"#, "eps"),
        ],
        base_only: &[],
        fused_vs_reference: Exactness::Bitwise,
        capabilities: ELEMENTWISE,
    },
    Entry {
        name: "muon",
        paper: "Muon: Training and Trade-offs with Latent Attention and MoE; Understanding Gradient Orthogonalization for Deep Learning via Non-Euclidean Trust-Region Optimization",
        summary: "Muon (momentum + Newton-Schulz orthogonalization) on matrices, AdamW on the rest and on embeddings/heads",
        build: |h| boxed(optim::muon::muon_with_adamw(h)),
        demo: r#"{"lr": 0.02, "weight_decay": 0.0, "adamw_lr": 0.02}"#,
        variants: &[
            r#"{"lr": 0.02, "nesterov": false, "adjust_lr_fn": "match_rms_adamw", "weight_decay": 0.01}"#,
            r#"{"lr": 0.01, "ns_steps": 3, "adamw_lr": 0.005, "adamw_weight_decay": 0.1, "adamw_params": ["w*"]}"#,
        ],
        invalid: &[
            (r#"{"lr": -0.02}"#, "lr"),
            (r#"{"momentum": -0.1}"#, "momentum"),
            (r#"{"weight_decay": -0.1}"#, "weight_decay"),
            (r#"{"adjust_lr_fn": "sqrt"}"#, "adjust_lr_fn"),
            (r#"{"ns_steps": 100}"#, "ns_steps"),
            (r#"{"ns_coefficients": [1.0, 2.0]}"#, "ns_coefficients"),
            (r#"{"adamw_betas": [1.5, 0.9]}"#, "adamw_betas"),
            (r#"{"adamw_lr": -1.0}"#, "adamw_lr"),
            (r#"{"adamw_params": "embed"}"#, "adamw_params"),
            (r#"{"amsgrad": true}"#, "amsgrad"),
        ],
        base_only: &[],
        fused_vs_reference: GEMM_ORDER,
        capabilities: MATRIX,
    },
    Entry {
        name: "adago",
        paper: "AdaGrad Meets Muon: Adaptive Stepsizes for Orthogonal Updates",
        summary: "Muon's orthogonalized direction with an AdaGrad-norm step size (clamp gamma, floor eps); matrices only",
        build: |h| boxed(optim::AdaGo::from_hyper(h)),
        demo: r#"{"lr": 1.0, "momentum": 0.5, "eps": 1e-3}"#,
        variants: &[
            r#"{"lr": 0.2, "gamma": 1.0, "nesterov": true, "weight_decay": 0.01}"#,
            r#"{"lr": 0.1, "v0": 0.5, "momentum": 0.5, "ns_steps": 3}"#,
        ],
        invalid: &[
            (r#"{"lr": -0.1}"#, "lr"),
            (r#"{"momentum": 1.0}"#, "momentum"),
            (r#"{"gamma": 0.0}"#, "gamma"),
            (r#"{"eps": -1.0}"#, "eps"),
            (r#"{"v0": 0.0}"#, "v0"),
            (r#"{"weight_decay": -0.1}"#, "weight_decay"),
            (r#"{"ns_steps": 1000}"#, "ns_steps"),
        ],
        base_only: &[],
        fused_vs_reference: GEMM_ORDER,
        capabilities: MATRIX,
    },
    Entry {
        name: "muon-nalr",
        paper: "Noise-Adaptive Layerwise Learning Rates: Accelerating Geometry-Aware Optimization for Deep Neural Network Training (LANTON, Algorithm 1, Option II) on Muon",
        summary: "Muon with per-layer learning rates from a dual-norm (nuclear) gradient-noise estimate, relative to the least noisy layer of the group; AdamW on the rest",
        build: |h| boxed(optim::nalr::muon_nalr_with_adamw(h)),
        demo: r#"{"lr": 0.02, "weight_decay": 0.0, "adamw_lr": 0.02}"#,
        variants: &[
            r#"{"lr": 0.02, "beta2": 0.9, "noise_eps": 1e-6, "nesterov": true, "adjust_lr_fn": "original", "weight_decay": 0.01}"#,
            r#"{"lr": 0.01, "beta2": 0.0, "momentum": 0.8, "ns_steps": 3, "adamw_lr": 0.005, "adamw_params": ["w*"]}"#,
        ],
        invalid: &[
            (r#"{"lr": -0.02}"#, "lr"),
            (r#"{"beta2": 1.0}"#, "beta2"),
            (r#"{"beta2": -0.1}"#, "beta2"),
            (r#"{"noise_eps": 0.0}"#, "noise_eps"),
            (r#"{"noise_eps": "tiny"}"#, "noise_eps"),
            (r#"{"momentum": 1.5}"#, "momentum"),
            (r#"{"adjust_lr_fn": "sqrt"}"#, "adjust_lr_fn"),
            (r#"{"adamw_betas": [1.5, 0.9]}"#, "adamw_betas"),
            (r#"{"betas": [0.9, 0.99]}"#, "betas"),
        ],
        base_only: &[],
        fused_vs_reference: SVD_AND_GEMM_ORDER,
        capabilities: MATRIX,
    },
    Entry {
        name: "complex-momentum",
        paper: "Complex Momentum for Optimization in Games (Lorraine et al., AISTATS 2022), Algorithm 1 (SimCM) with real parameters",
        summary: "Heavy-ball momentum with a complex coefficient β = |β|e^{i arg β} (buffer as real and imaginary slots) and step Re(α μ); maximize for ascent players",
        build: |h| boxed(optim::ComplexMomentum::from_hyper(h)),
        demo: r#"{"lr": 0.05}"#,
        variants: &[
            r#"{"lr": 0.05, "beta_abs": 0.8, "beta_arg": 0.5, "lr_imag": 0.01}"#,
            r#"{"lr": 0.02, "beta_abs": 0.5, "beta_arg": -1.0, "maximize": true}"#,
        ],
        invalid: &[
            (r#"{"lr": -0.1}"#, "lr"),
            (r#"{"beta_abs": 1.0}"#, "beta_abs"),
            (r#"{"beta_abs": -0.5}"#, "beta_abs"),
            (r#"{"beta_arg": 4.0}"#, "beta_arg"),
            (r#"{"lr_imag": "NaN"}"#, "lr_imag"),
            (r#"{"momentum": 0.9}"#, "momentum"),
        ],
        base_only: &[],
        fused_vs_reference: Exactness::Bitwise,
        capabilities: ELEMENTWISE,
    },
    Entry {
        name: "c-adamw",
        paper: "Cautious Optimizers: Improving Training with One Line of Code",
        summary: "Cautious wrapper (sign-agreement mask, rescaled) around AdamW; heavyball's AdamW knobs",
        build: |h| {
            boxed(optim::Cautious::from_hyper("c-adamw", h, optim::AdamKnobs::from_hyper))
        },
        demo: r#"{"lr": 0.05}"#,
        variants: &[
            r#"{"lr": 0.01, "weight_decay": 0.1, "warmup_steps": 3, "caution_mask": "signbit_equal", "caution_scale": "numel_over_kept"}"#,
            r#"{"lr": 0.01, "bias_correction": "divide", "eps_mode": "add", "step_counter": "param", "caution_scale": "inv_mean_clamped"}"#,
        ],
        invalid: &[
            (r#"{"lr": -1.0}"#, "lr"),
            (r#"{"betas": [1.0, 0.99]}"#, "betas"),
            (r#"{"eps": -1.0}"#, "eps"),
            (r#"{"weight_decay": -0.1}"#, "weight_decay"),
            (r#"{"caution_mask": "sign"}"#, "caution_mask"),
            (r#"{"caution_scale": "none"}"#, "caution_scale"),
            (r#"{"eps_mode": "sqrt"}"#, "eps_mode"),
            (r#"{"bias_correction": "none"}"#, "bias_correction"),
            (r#"{"step_counter": "local"}"#, "step_counter"),
            (r#"{"warmup_steps": -1}"#, "warmup_steps"),
        ],
        base_only: &[],
        fused_vs_reference: Exactness::Bitwise,
        capabilities: ELEMENTWISE,
    },
    Entry {
        name: "c-lion",
        paper: "Cautious Optimizers: Improving Training with One Line of Code",
        summary: "Cautious wrapper (sign-agreement mask, rescaled) around Lion",
        build: |h| boxed(optim::Cautious::from_hyper("c-lion", h, optim::Lion::from_hyper)),
        demo: r#"{"lr": 0.03}"#,
        variants: &[
            r#"{"lr": 0.01, "weight_decay": 0.1, "caution_scale": "numel_over_kept", "caution_mask": "signbit_equal"}"#,
            r#"{"lr": 0.01, "weight_decay": 0.01, "weight_decouple": false, "maximize": true}"#,
        ],
        invalid: &[
            (r#"{"lr": -1.0}"#, "lr"),
            (r#"{"betas": [1.5, 0.99]}"#, "betas"),
            (r#"{"weight_decay": -0.1}"#, "weight_decay"),
            (r#"{"caution_mask": 1}"#, "caution_mask"),
            (r#"{"caution_scale": "half"}"#, "caution_scale"),
        ],
        base_only: &[],
        fused_vs_reference: Exactness::Bitwise,
        capabilities: ELEMENTWISE,
    },
    Entry {
        name: "mgup-adamw",
        paper: "MGUP: A Momentum-Gradient Alignment Update Policy for Stochastic Optimization (in place of the withdrawn AlphaAdam)",
        summary: "MGUP wrapper (top-K or sign alignment of update and gradient scales steps by alpha / gamma) around HF-style AdamW",
        build: |h| boxed(optim::Mgup::from_hyper("mgup-adamw", h, optim::HfAdamW::from_hyper)),
        demo: r#"{"lr": 0.05}"#,
        variants: &[
            r#"{"lr": 0.01, "weight_decay": 0.1, "mask_ratio": 0.3, "alpha": 1.5, "gamma": 0.5, "correct_bias": false}"#,
            r#"{"lr": 0.01, "mgup_mask": "sign", "alpha": 1.2, "gamma": 0.3, "betas": [0.8, 0.95], "eps": 1e-8}"#,
        ],
        invalid: &[
            (r#"{"lr": -1.0}"#, "lr"),
            (r#"{"betas": [1.0, 0.99]}"#, "betas"),
            (r#"{"eps": -1.0}"#, "eps"),
            (r#"{"weight_decay": -0.1}"#, "weight_decay"),
            (r#"{"mask_ratio": 1.5}"#, "mask_ratio"),
            (r#"{"mask_ratio": -0.1}"#, "mask_ratio"),
            (r#"{"alpha": -2.0}"#, "alpha"),
            (r#"{"gamma": "NaN"}"#, "gamma"),
            (r#"{"mgup_mask": "random"}"#, "mgup_mask"),
            (r#"{"correct_bias": 1}"#, "correct_bias"),
        ],
        base_only: &[],
        fused_vs_reference: Exactness::Bitwise,
        capabilities: PER_TENSOR,
    },
    Entry {
        name: "mgup-lion",
        paper: "MGUP: A Momentum-Gradient Alignment Update Policy for Stochastic Optimization (in place of the withdrawn AlphaAdam)",
        summary: "MGUP wrapper (top-K or sign alignment of update and gradient scales steps by alpha / gamma) around Lion",
        build: |h| boxed(optim::Mgup::from_hyper("mgup-lion", h, optim::Lion::from_hyper)),
        demo: r#"{"lr": 0.03}"#,
        variants: &[
            r#"{"lr": 0.01, "weight_decay": 0.1, "mask_ratio": 0.7, "alpha": 1.3, "gamma": 0.6}"#,
            r#"{"lr": 0.01, "mgup_mask": "sign", "weight_decouple": false, "weight_decay": 0.01, "maximize": true}"#,
        ],
        invalid: &[
            (r#"{"lr": -1.0}"#, "lr"),
            (r#"{"betas": [1.5, 0.99]}"#, "betas"),
            (r#"{"weight_decay": -0.1}"#, "weight_decay"),
            (r#"{"mask_ratio": 2}"#, "mask_ratio"),
            (r#"{"alpha": "inf"}"#, "alpha"),
            (r#"{"gamma": -1.0}"#, "gamma"),
            (r#"{"mgup_mask": 3}"#, "mgup_mask"),
        ],
        base_only: &[],
        fused_vs_reference: Exactness::Bitwise,
        capabilities: PER_TENSOR,
    },
    Entry {
        name: "adagc",
        paper: "AdaGC: Improving Training Stability for Large Language Model Pretraining",
        summary: "Adaptive per-tensor gradient clipping (EMA of norms, global clip in warm-up) around AdamW",
        build: |h| {
            boxed(optim::AdaGc::from_hyper("adagc", h, true, |rest| {
                let mut r = rest.clone();
                r.insert("weight_decay".into(), 0.0.into());
                optim::Adam::from_hyper(&r, true).map(|a| std::sync::Arc::new(a) as _)
            }))
        },
        demo: r#"{"lr": 0.05, "warmup_steps": 5, "weight_decay": 0.0, "lambda_abs": 5.0}"#,
        variants: &[
            r#"{"lr": 0.01, "warmup_steps": 2, "weight_decay": 0.1, "beta": 0.9, "lambda_rel": 1.2}"#,
            r#"{"lr": 0.01, "warmup_steps": 0, "fixed_decay": true, "weight_decay": 0.01, "maximize": true, "step_counter": "param"}"#,
        ],
        invalid: &[
            (r#"{"lr": -1.0}"#, "lr"),
            (r#"{"betas": [0.9, 1.0]}"#, "betas"),
            (r#"{"beta": 1.0}"#, "beta"),
            (r#"{"lambda_abs": 0.0}"#, "lambda_abs"),
            (r#"{"lambda_rel": -1.0}"#, "lambda_rel"),
            (r#"{"warmup_steps": -1}"#, "warmup_steps"),
            (r#"{"weight_decay": -0.1}"#, "weight_decay"),
            (r#"{"eps": -1e-8}"#, "eps"),
            (r#"{"global_norm_dtype": "f16"}"#, "global_norm_dtype"),
        ],
        base_only: &[],
        fused_vs_reference: Exactness::Bitwise,
        capabilities: GLOBAL_NORM,
    },
    Entry {
        name: "adagc-lion",
        paper: "AdaGC: Improving Training Stability for Large Language Model Pretraining (clipping) around Lion",
        summary: "AdaGC clipping composed with Lion",
        build: |h| {
            boxed(optim::AdaGc::from_hyper("adagc-lion", h, false, |rest| {
                optim::Lion::from_hyper(rest).map(|a| std::sync::Arc::new(a) as _)
            }))
        },
        demo: r#"{"lr": 0.03, "warmup_steps": 5, "weight_decay": 0.0, "lambda_abs": 5.0}"#,
        variants: &[r#"{"lr": 0.01, "warmup_steps": 2, "weight_decay": 0.1, "betas": [0.95, 0.98]}"#],
        invalid: &[
            (r#"{"lr": -1.0}"#, "lr"),
            (r#"{"lambda_abs": 0.0}"#, "lambda_abs"),
            (r#"{"betas": [2.0, 0.99]}"#, "betas"),
        ],
        base_only: &[],
        fused_vs_reference: Exactness::Bitwise,
        capabilities: GLOBAL_NORM,
    },
    Entry {
        name: "asgo",
        paper: "ASGO: Adaptive Structured Gradient Optimization",
        summary: "One-sided full-matrix preconditioner (V^-1/2 of an EMA of G G^T on the smaller side) on momentum, rescaled; AdamW on the rest",
        build: |h| boxed(optim::asgo::asgo_with_adamw(h)),
        demo: r#"{"lr": 0.02, "weight_decay": 0.0, "adamw_lr": 0.02}"#,
        variants: &[
            r#"{"lr": 0.01, "momentum": 0.5, "beta2": 0.95, "eps": 1e-4, "weight_decay": 0.05}"#,
            r#"{"lr": 0.01, "precondition_frequency": 3, "adamw_lr": 0.005, "adamw_params": ["w*"]}"#,
        ],
        invalid: &[
            (r#"{"lr": -0.01}"#, "lr"),
            (r#"{"momentum": 1.0}"#, "momentum"),
            (r#"{"beta2": -0.1}"#, "beta2"),
            (r#"{"eps": -1e-10}"#, "eps"),
            (r#"{"weight_decay": -0.1}"#, "weight_decay"),
            (r#"{"precondition_frequency": 0}"#, "precondition_frequency"),
            (r#"{"adamw_lr": -1.0}"#, "adamw_lr"),
            (r#"{"adamw_params": "embed"}"#, "adamw_params"),
            (r#"{"nesterov": true}"#, "nesterov"),
        ],
        base_only: &[],
        fused_vs_reference: EIGEN_ORDER,
        capabilities: MATRIX,
    },
    Entry {
        name: "frugal",
        paper: "FRUGAL: Memory-Efficient Optimization by Reducing State Overhead for Scalable Training",
        summary: "Gradient splitting: AdamW (or SGDM) on a low-rank SVD or column-block subspace of each matrix, signSGD on the rest",
        build: |h| boxed(optim::Frugal::from_hyper(h)),
        demo: r#"{"lr": 0.02, "density": 0.5, "update_gap": 4, "weight_decay": 0.0}"#,
        variants: &[
            r#"{"lr": 0.01, "proj_type": "blockwise", "density": 0.4, "update_gap": 2}"#,
            r#"{"lr": 0.01, "state_full": "sgdm", "momentum": 0.8, "inactive_update_rule": "sgd", "inactive_lr_scale": 0.5, "update_gap": 3}"#,
            r#"{"lr": 0.01, "reset_statistics": false, "correct_bias": false, "update_gap": 2, "density": 0.6}"#,
            r#"{"lr": 0.01, "proj_type": "blockwise", "state_full": "sgdm", "inactive_update_rule": "no", "update_gap": 3}"#,
            r#"{"lr": 0.01, "proj_type": "blockwise", "block_order": "random", "seed": 7, "density": 0.3, "update_gap": 2}"#,
        ],
        invalid: &[
            (r#"{"lr": -1e-3}"#, "lr"),
            (r#"{"betas": [1.0, 0.999]}"#, "betas"),
            (r#"{"eps": -1e-8}"#, "eps"),
            (r#"{"weight_decay": -0.1}"#, "weight_decay"),
            (r#"{"density": 1.5}"#, "density"),
            (r#"{"update_gap": 0}"#, "update_gap"),
            (r#"{"proj_type": "random"}"#, "proj_type"),
            (r#"{"state_full": "lion"}"#, "state_full"),
            (r#"{"momentum": 1.0}"#, "momentum"),
            (r#"{"inactive_update_rule": "sign"}"#, "inactive_update_rule"),
            (r#"{"inactive_lr_scale": -1.0}"#, "inactive_lr_scale"),
            (r#"{"block_order": "mirror"}"#, "block_order"),
            (r#"{"seed": -1}"#, "seed"),
            (r#"{"nesterov": true}"#, "nesterov"),
        ],
        base_only: &[],
        fused_vs_reference: EIGEN_ORDER,
        capabilities: Capabilities {
            elementwise: false,
            state_depends_on_flags: true,
            couples_params: false,
        },
    },
    Entry {
        name: "aegd",
        paper: "Adaptive Preconditioned Gradient Descent with Energy (the AEGD framework); Liu & Tian, AEGD: Adaptive Gradient Descent with Energy",
        summary: "Gradient descent with a per-element energy variable driven by the loss; needs the loss each step",
        build: |h| boxed(optim::Aegd::from_hyper(h)),
        demo: r#"{"lr": 0.1}"#,
        variants: &[r#"{"lr": 0.1, "c": 2.0}"#, r#"{"lr": 0.05, "c": 0.5}"#],
        invalid: &[
            (r#"{"lr": -0.1}"#, "lr"),
            (r#"{"c": "NaN"}"#, "c"),
            (r#"{"c": "one"}"#, "c"),
            (r#"{"momentum": 0.9}"#, "momentum"),
        ],
        base_only: &[],
        fused_vs_reference: Exactness::Bitwise,
        capabilities: ELEMENTWISE,
    },
    Entry {
        name: "dp-sgd",
        paper: "Differentially Private SGD Without Clipping Bias: An Error-Feedback Approach (its DPSGD-GC baseline); Abadi et al. 2016, Deep Learning with Differential Privacy",
        summary: "Per-sample clipping (joint norm), seeded Gaussian noise, then SGD (opacus DPOptimizer); needs per-sample gradients",
        build: |h| boxed(optim::DpSgd::from_hyper(h)),
        demo: r#"{"lr": 0.05, "momentum": 0.9, "noise_multiplier": 0.0, "max_grad_norm": 100.0}"#,
        variants: &[
            r#"{"lr": 0.02, "noise_multiplier": 0.5, "max_grad_norm": 1.0, "seed": 3, "weight_decay": 0.01}"#,
            r#"{"lr": 0.05, "noise_multiplier": 0.0, "max_grad_norm": 0.5, "expected_batch_size": 4, "momentum": 0.5, "nesterov": true}"#,
        ],
        invalid: &[
            (r#"{"lr": -0.1}"#, "lr"),
            (r#"{"noise_multiplier": -1.0}"#, "noise_multiplier"),
            (r#"{"max_grad_norm": 0.0}"#, "max_grad_norm"),
            (r#"{"expected_batch_size": 0}"#, "expected_batch_size"),
            (r#"{"expected_batch_size": 2.5}"#, "expected_batch_size"),
            (r#"{"seed": -1}"#, "seed"),
            (r#"{"momentum": -0.5}"#, "momentum"),
            (r#"{"betas": [0.9, 0.99]}"#, "betas"),
        ],
        base_only: &[],
        fused_vs_reference: Exactness::Bitwise,
        capabilities: GLOBAL_NORM,
    },
    Entry {
        name: "dice-sgd",
        paper: "Differentially Private SGD Without Clipping Bias: An Error-Feedback Approach (DiceSGD, Algorithm 1)",
        summary: "DP-SGD with a clipped error-feedback buffer (thresholds C1, C2) that removes the clipping bias; needs per-sample gradients",
        build: |h| boxed(optim::DiceSgd::from_hyper(h)),
        demo: r#"{"lr": 0.05, "noise_multiplier": 0.0, "max_grad_norm": 1.0, "max_ef_norm": 3.0}"#,
        variants: &[
            r#"{"lr": 0.02, "noise_multiplier": 0.5, "max_grad_norm": 0.5, "max_ef_norm": 1.0, "seed": 9}"#,
            r#"{"lr": 0.05, "noise_multiplier": 0.0, "max_grad_norm": 0.1, "max_ef_norm": 0.1, "expected_batch_size": 5}"#,
        ],
        invalid: &[
            (r#"{"lr": -0.1}"#, "lr"),
            (r#"{"noise_multiplier": "NaN"}"#, "noise_multiplier"),
            (r#"{"max_grad_norm": -1.0}"#, "max_grad_norm"),
            (r#"{"max_ef_norm": 0.0}"#, "max_ef_norm"),
            (r#"{"expected_batch_size": 0}"#, "expected_batch_size"),
            (r#"{"momentum": 0.9}"#, "momentum"),
        ],
        base_only: &[],
        fused_vs_reference: Exactness::Bitwise,
        capabilities: GLOBAL_NORM,
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
