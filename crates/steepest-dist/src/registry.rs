//! The distributed registry: one table of every distributed algorithm. The
//! shared test matrix (`tests/matrix.rs`) runs every entry through the same
//! checks, so a new algorithm joins it by adding its entry here.

use steepest::hyper::{hyper_from_json, Hyper};
use steepest::ParamSet;

use crate::algo::{
    adloco::AdLoCo, ddp::Ddp, diloco::DiLoCo, dist_lion::DistLion, noloco::NoLoCo, onebit_adam::OneBitAdam, qsdp::Qsdp,
    semi_dec::SemiDec, DistAlgorithm,
};
use crate::error::{Error, Result};

/// Builds an algorithm from hyperparameters, the initial parameters and the number of workers.
pub type Build = fn(&Hyper, &ParamSet<f64>, usize) -> Result<Box<dyn DistAlgorithm>>;

/// One registered algorithm.
pub struct DistEntry {
    /// Registry name (lowercase, hyphenated).
    pub name: &'static str,
    /// The seed paper.
    pub paper: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Builder.
    pub build: Build,
    /// Hyperparameters (JSON) under which the matrix checks that the loss decreases
    /// on its small workload within its budget.
    pub demo: &'static str,
    /// Invalid hyperparameters (JSON) and the field the error must name.
    pub invalid: &'static [(&'static str, &'static str)],
}

fn boxed<A: DistAlgorithm + 'static>(r: Result<A>) -> Result<Box<dyn DistAlgorithm>> {
    r.map(|a| Box::new(a) as Box<dyn DistAlgorithm>)
}

static REGISTRY: &[DistEntry] = &[
    DistEntry {
        name: "ddp",
        paper: "PyTorch Distributed: Experiences on Accelerating Data Parallel Training (synchronous data parallelism)",
        summary: "all-reduce (mean) of the gradients every step, then any registry optimizer",
        build: |h, p, _| boxed(Ddp::new(h, p)),
        demo: r#"{"optimizer": "adam", "optimizer_hyper": {"lr": 0.01}}"#,
        invalid: &[
            (r#"{"optimizer": "no-such"}"#, "optimizer"),
            (r#"{"optimizer_hyper": {"lr": -1}}"#, "optimizer_hyper.lr"),
            (r#"{"optimizer_hyper": 3}"#, "optimizer_hyper"),
            (r#"{"lr": 0.1}"#, "lr"),
        ],
    },
    DistEntry {
        name: "diloco",
        paper: "DiLoCo: Distributed Low-Communication Training of Language Models",
        summary: "H inner steps of any optimizer, averaged pseudo-gradient, any outer optimizer (Nesterov SGD)",
        build: |h, p, _| boxed(DiLoCo::new(h, p)),
        demo: r#"{"h": 10, "inner": "adam", "inner_hyper": {"lr": 0.01}}"#,
        invalid: &[
            (r#"{"h": 0}"#, "h"),
            (r#"{"h": -3}"#, "h"),
            (r#"{"inner": "nope"}"#, "inner"),
            (r#"{"outer_hyper": {"momentum": -1}}"#, "outer_hyper.momentum"),
        ],
    },
    DistEntry {
        name: "noloco",
        paper: "NoLoCo: No-all-reduce Low Communication Training Method for Large Models",
        summary: "H inner steps, then partial averaging inside random groups with outer momentum; no global collective",
        build: |h, p, n| boxed(NoLoCo::new(h, p, n)),
        demo: r#"{"h": 10, "inner": "adam", "inner_hyper": {"lr": 0.01}}"#,
        invalid: &[
            (r#"{"group_size": 0}"#, "group_size"),
            (r#"{"group_size": 99}"#, "group_size"),
            (r#"{"momentum": 1.5}"#, "momentum"),
            (r#"{"form": "sideways"}"#, "form"),
            (r#"{"exchange": "fast-weights", "gamma": 0.1}"#, "exchange"),
            (r#"{"outer_lr": 0}"#, "outer_lr"),
        ],
    },
    DistEntry {
        name: "dist-lion",
        paper: "Communication Efficient Distributed Training with Distributed Lion",
        summary: "workers send packed Lion sign bits; majority vote (mavo) or average (avg)",
        build: |h, p, _| boxed(DistLion::new(h, p)),
        demo: r#"{"lr": 0.003}"#,
        invalid: &[
            (r#"{"lr": 0}"#, "lr"),
            (r#"{"betas": [0.9, 1.0]}"#, "betas"),
            (r#"{"vote": "random"}"#, "vote"),
            (r#"{"weight_decay": -1}"#, "weight_decay"),
        ],
    },
    DistEntry {
        name: "onebit-adam",
        paper: "1-bit Adam: Communication Efficient Large-Scale Training with Adam's Convergence Speed",
        summary: "Adam warm-up, then frozen variance and error-compensated 1-bit compressed all-reduce of the momentum",
        build: |h, p, _| boxed(OneBitAdam::new(h, p)),
        // lr 0.003: with no bias correction, 20 warm-up steps leave v at ~2% of
        // g², so the frozen-variance steps are ~6x Adam's at the same lr; at 0.01
        // the compressed stage oscillates (loss 0.18 -> 0.28 -> 0.14 on seed 3).
        demo: r#"{"lr": 0.003, "freeze_step": 20}"#,
        invalid: &[
            (r#"{"freeze_step": 0}"#, "freeze_step"),
            (r#"{"eps": 0}"#, "eps"),
            (r#"{"betas": [1.2, 0.9]}"#, "betas"),
            (r#"{"lr": "fast"}"#, "lr"),
        ],
    },
    DistEntry {
        name: "semi-dec",
        paper: "A Unified Convergence Analysis for Semi-Decentralized Learning: Sampled-to-Sampled vs. Sampled-to-All Communication",
        summary: "local steps and D2D gossip (Metropolis W) with neighbours; every H steps a server averages K sampled devices (S2S or S2A)",
        build: |h, p, n| boxed(SemiDec::new(h, p, n)),
        demo: r#"{"h": 5, "k": 2, "optimizer": "adam", "optimizer_hyper": {"lr": 0.01}}"#,
        invalid: &[
            (r#"{"h": 0}"#, "h"),
            (r#"{"k": 0}"#, "k"),
            (r#"{"k": 99}"#, "k"),
            (r#"{"mode": "s2x"}"#, "mode"),
            (r#"{"graph": "torus"}"#, "graph"),
            (r#"{"components": 0}"#, "components"),
            (r#"{"order": "sideways"}"#, "order"),
            (r#"{"optimizer": "nope"}"#, "optimizer"),
        ],
    },
    DistEntry {
        name: "qsdp",
        paper: "Quantized Distributed Training of Large Models with Convergence Guarantees",
        summary: "sharded data parallel: bucketed min-max quantized weights all-gathered, stochastically rounded gradients reduce-scattered",
        build: |h, p, _| boxed(Qsdp::new(h, p)),
        demo: r#"{"optimizer": "adam", "optimizer_hyper": {"lr": 0.01}}"#,
        invalid: &[
            (r#"{"w_bits": 0}"#, "w_bits"),
            (r#"{"g_bits": 12}"#, "g_bits"),
            (r#"{"bucket": 0}"#, "bucket"),
            (r#"{"w_rounding": "up"}"#, "w_rounding"),
            (r#"{"master": "fp16"}"#, "master"),
            (r#"{"optimizer_hyper": {"lr": -1}}"#, "optimizer_hyper.lr"),
        ],
    },
    DistEntry {
        name: "adloco",
        paper: "AdLoCo: adaptive batching significantly improves communications efficiency and convergence for Large Language Models",
        summary: "several DiLoCo trainers over the nodes, batch grown by a norm (or inner-product) test, demand-weighted merging",
        build: |h, p, n| boxed(AdLoCo::new(h, p, n)),
        demo: r#"{"h": 10, "trainers": 2, "inner": "adam", "inner_hyper": {"lr": 0.01}}"#,
        invalid: &[
            (r#"{"h": 0}"#, "h"),
            (r#"{"trainers": 0}"#, "trainers"),
            (r#"{"batch": 0}"#, "batch"),
            (r#"{"eta": 0}"#, "eta"),
            (r#"{"test": "magic"}"#, "test"),
            (r#"{"demand": "loud"}"#, "demand"),
            (r#"{"inner_state": "maybe"}"#, "inner_state"),
            (r#"{"batch": 4, "max_batch": 2}"#, "max_batch"),
            (r#"{"inner": "nope"}"#, "inner"),
            (r#"{"outer_hyper": {"lr": -1}}"#, "outer_hyper.lr"),
        ],
    },
];

/// Every registered algorithm.
pub fn registry() -> &'static [DistEntry] {
    REGISTRY
}

/// The entry named `name`.
pub fn lookup(name: &str) -> Result<&'static DistEntry> {
    REGISTRY.iter().find(|e| e.name == name).ok_or_else(|| {
        let names: Vec<&str> = REGISTRY.iter().map(|e| e.name).collect();
        Error::config(
            "algo",
            format!("no distributed algorithm named {name:?} (known: {})", names.join(", ")),
        )
    })
}

/// Builds `name` for `workers` workers.
pub fn build(name: &str, h: &Hyper, init: &ParamSet<f64>, workers: usize) -> Result<Box<dyn DistAlgorithm>> {
    if workers == 0 {
        return Err(Error::config("workers", "need at least one worker"));
    }
    (lookup(name)?.build)(h, init, workers)
}

/// Parses a JSON object of hyperparameters.
pub fn parse_hyper(text: &str) -> Result<Hyper> {
    hyper_from_json(text).ok_or_else(|| Error::config("hyper", format!("expected a JSON object, got {text:?}")))
}
