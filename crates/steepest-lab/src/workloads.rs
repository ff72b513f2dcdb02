//! Workloads, in the spirit of AlgoPerf: a problem plus the metric it is
//! judged by, a target, a step budget, an evaluation period, a learning-rate
//! schedule shared by every optimizer, and the suites it belongs to.

use std::sync::Arc;

use steepest::schedule::Schedule;

use crate::data;
use crate::problems::{
    LeastSquares, Logistic, MatrixFactorization, NoisyQuadratic, OnlineRegression, Problem, Rosenbrock,
};
use crate::runner::{Curve, TrialSpec};
use crate::Result;

/// Suites, each containing the previous.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Suite {
    /// At most 5 minutes on 2 cores: the README's main job.
    Quick,
    /// Longer budgets, more seeds, the fetched neural data sets where present.
    Standard,
    /// Everything.
    Full,
}

impl Suite {
    /// Parses `quick`, `standard` or `full`.
    pub fn parse(s: &str) -> Option<Suite> {
        match s {
            "quick" => Some(Suite::Quick),
            "standard" => Some(Suite::Standard),
            "full" => Some(Suite::Full),
            _ => None,
        }
    }

    /// Name.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Quick => "quick",
            Suite::Standard => "standard",
            Suite::Full => "full",
        }
    }

    /// Default number of seeds per chosen configuration.
    pub fn default_seeds(self) -> u64 {
        match self {
            Suite::Quick => 3,
            Suite::Standard => 5,
            Suite::Full => 10,
        }
    }
}

/// Kind of workload (for grouping in the report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Exact synthetic problems.
    Synthetic,
    /// Convex problems on real data with a solved optimum.
    Convex,
    /// Neural networks.
    Neural,
    /// Defined by the user in a TOML file.
    Custom,
}

impl Family {
    /// Name.
    pub fn name(self) -> &'static str {
        match self {
            Family::Synthetic => "synthetic",
            Family::Convex => "convex, real data",
            Family::Neural => "neural",
            Family::Custom => "bring your own",
        }
    }
}

/// A trainer that is not a [`Problem`] (neural networks on another framework).
pub type TrainFn = Arc<dyn Fn(&TrialSpec) -> Result<Curve> + Send + Sync>;

/// What a workload runs.
#[derive(Clone)]
pub enum Body {
    /// An exact problem driven by the lab's own loop.
    Problem(Arc<dyn Problem>),
    /// An external training loop.
    Train(TrainFn),
}

/// One workload.
#[derive(Clone)]
pub struct Workload {
    /// Name (lowercase, hyphenated).
    pub name: String,
    /// One line for the report.
    pub title: String,
    /// What it is and why it is here.
    pub description: String,
    /// Family.
    pub family: Family,
    /// The problem.
    pub body: Body,
    /// Name of the metric (lower is better).
    pub metric: String,
    /// Target value of the metric (steps-to-target and time-to-target), if any.
    pub target: Option<f64>,
    /// Step budget.
    pub steps: u64,
    /// Evaluate every this many steps.
    pub eval_every: u64,
    /// The learning-rate schedule every optimizer gets here.
    pub schedule: Schedule,
    /// Smallest suite that contains it.
    pub suite: Suite,
    /// Shown in leaderboards (false: only used by claims).
    pub leaderboard: bool,
    /// Plot the metric on a log scale.
    pub log_metric: bool,
    /// A data set that must be fetched first (`steepest data fetch NAME`).
    pub requires: Option<&'static str>,
}

impl Workload {
    fn problem(name: &str, title: &str, description: &str, family: Family, p: Arc<dyn Problem>) -> Workload {
        let metric = p.metric_name().to_string();
        Workload {
            name: name.into(),
            title: title.into(),
            description: description.into(),
            family,
            body: Body::Problem(p),
            metric,
            target: None,
            steps: 1000,
            eval_every: 10,
            schedule: Schedule::Constant,
            suite: Suite::Quick,
            leaderboard: true,
            log_metric: true,
            requires: None,
        }
    }

    fn target(mut self, t: f64) -> Self {
        self.target = Some(t);
        self
    }

    fn steps(mut self, steps: u64, eval_every: u64) -> Self {
        self.steps = steps;
        self.eval_every = eval_every;
        self
    }

    fn schedule(mut self, s: Schedule) -> Self {
        self.schedule = s;
        self
    }

    fn hidden(mut self) -> Self {
        self.leaderboard = false;
        self
    }
}

/// The least-squares instance of the weight-decay box claims.
pub fn box_problem() -> LeastSquares {
    LeastSquares::new(200, 10, 10.0, 3.0, 2)
}

/// Hook for workloads provided by other crates (the burn models): called by
/// [`builtin`] to extend the list.
pub type Extra = fn() -> Vec<Workload>;

/// The built-in workloads (data sets that are missing make their workloads
/// fail with a message naming `steepest data fetch`, at run time).
pub fn builtin() -> Result<Vec<Workload>> {
    let mut w = Vec::new();
    let quad_steps = 1200;
    w.push(
        Workload::problem(
            "noisy-quadratic",
            "Ill-conditioned quadratic, anisotropic gradient noise (d=100, κ=1000)",
            "f(x) = ½ Σ λ_i x_i², λ log-spaced over [1e-3, 1], stochastic gradients with noise covariance σ²·H (σ = 0.01): \
             the setting of 'Accelerated Convergence of Stochastic Heavy Ball Method under Anisotropic Gradient Noise'. \
             Every optimizer gets the paper's step-decay schedule (lr × 0.1 every 300 steps).",
            Family::Synthetic,
            Arc::new(NoisyQuadratic::new(100, 1000.0, 0.01)),
        )
        .target(1e-2)
        .steps(quad_steps, 10)
        .schedule(Schedule::StepDecay { step_size: quad_steps / 4, gamma: 0.1 }),
    );
    w.push(
        Workload::problem(
            "rosenbrock",
            "Rosenbrock's banana (2-D) from (-1.2, 1) ± 0.1",
            "The classic curved valley: (1-x)² + 100(y-x²)², minimum 0 at (1, 1). Deterministic gradients.",
            Family::Synthetic,
            Arc::new(Rosenbrock),
        )
        .target(1e-4)
        .steps(3000, 20),
    );
    w.push(
        Workload::problem(
            "least-squares",
            "Least squares, 200 × 40, Hessian condition ≈ 100",
            "f(x) = ‖Ax − b‖²/(2n) with Gaussian A (columns scaled for a condition number of about 100); \
             f* from the normal equations by Cholesky in f64. Deterministic gradients.",
            Family::Synthetic,
            Arc::new(LeastSquares::new(200, 40, 100.0, 1.0, 1)),
        )
        .target(1e-8)
        .steps(1500, 10),
    );
    w.push(
        Workload::problem(
            "online-regression",
            "Online least squares (d=10): regret against the best fixed point",
            "Each round reveals one sample (a ~ N(0, I), b = aᵀu + 0.5 ε) and charges ½(aᵀx_t − b)² before the update: \
             the online convex setting of Adam's regret analysis. Every optimizer gets α_t = α/√t, as in the theorem. \
             Metric: regret, with the best fixed point in hindsight solved exactly.",
            Family::Synthetic,
            Arc::new(OnlineRegression::new(10, 1)),
        )
        .steps(3000, 30)
        .schedule(Schedule::InverseSqrt { warmup_steps: 0 }),
    );
    w.push(
        Workload::problem(
            "least-squares-box",
            "Least squares whose optimum lies outside the box ‖x‖∞ ≤ 1 (for the weight-decay claims)",
            "f(x) = ‖Ax − b‖²/(2n), 200 × 10, condition ≈ 10, ‖x*‖∞ > 1: with decoupled weight decay λ = 1, Lion and AdamW \
             should settle on the box ‖x‖∞ ≤ 1/λ. The auxiliary series is ‖x‖∞.",
            Family::Synthetic,
            Arc::new(box_problem()),
        )
        .steps(3000, 20)
        .hidden(),
    );
    w.push(
        Workload::problem(
            "online-regression-const",
            "Online least squares with a constant base learning rate (AdaGrad's own schedule)",
            "The online-regression problem without the α/√t schedule, for methods whose step size decays by itself.",
            Family::Synthetic,
            Arc::new(OnlineRegression::new(10, 1)),
        )
        .steps(3000, 30)
        .hidden(),
    );
    let mf = Arc::new(MatrixFactorization::new(16, 12, 3, 6, 1));
    w.push(
        Workload::problem(
            "matrix-factorization",
            "Low-rank matrix factorization, W2·W1 ≈ M (16 × 12, rank 3, width 6)",
            "f = ‖W2 W1 − M‖²_F/(2mn), f* = 0: smooth and nonconvex, all parameters matrices — the home ground of Muon, AdaGO and ASGO. \
             Deterministic gradients; the gradient norm reported is the nuclear norm (dual of the spectral norm).",
            Family::Synthetic,
            mf.clone(),
        )
        .target(1e-6)
        .steps(1500, 10),
    );
    w.push(
        Workload::problem(
            "matrix-factorization-isqrt",
            "Matrix factorization with lr ∝ 1/√t (for the nonconvex rate claims)",
            "The matrix-factorization problem with the anytime step size α/√t of the nonconvex rate theorems.",
            Family::Synthetic,
            mf,
        )
        .steps(3000, 10)
        .schedule(Schedule::InverseSqrt { warmup_steps: 0 })
        .hidden(),
    );
    let mut noisy_mf = MatrixFactorization::new(16, 12, 3, 6, 1);
    noisy_mf.noise = [0.02, 0.002];
    w.push(
        Workload::problem(
            "matrix-factorization-noisy",
            "Matrix factorization with layer-dependent gradient noise (σ = 0.02 on W1, 0.002 on W2)",
            "The matrix-factorization problem with Gaussian noise of very different size on the two layers' gradients: \
             the heterogeneity noise-adaptive layerwise learning rates are built for.",
            Family::Synthetic,
            Arc::new(noisy_mf),
        )
        .steps(1500, 10)
        .hidden(),
    );
    let mut spiky = NoisyQuadratic::new(50, 100.0, 0.01);
    spiky.spike_prob = 0.02;
    spiky.spike_scale = 1000.0;
    w.push(
        Workload::problem(
            "spiky-quadratic",
            "Quadratic with rare gradient spikes (2% of steps, noise × 1000)",
            "f(x) = ½ Σ λ_i x_i² (d=50, κ=100) whose stochastic gradient noise is, on 2% of steps, a thousand times larger: \
             loss spikes in miniature, for the clipping methods (AdaGC).",
            Family::Synthetic,
            Arc::new(spiky),
        )
        .target(1e-3)
        .steps(1000, 5),
    );
    {
        let mut ds = data::bundled("breast-cancer")?;
        ds.standardize();
        let prob = Logistic::new(Arc::new(ds), 1e-2, 0)?;
        w.push(
            Workload::problem(
                "logreg-dp",
                "Logistic regression on breast-cancer with per-example gradients (for the clipping-bias claims)",
                "logreg-breast-cancer with full-batch per-example gradients handed to the differentially private optimizers, \
                 noise off (σ = 0) so only the clipping acts.",
                Family::Convex,
                Arc::new(prob),
            )
            .steps(3000, 20)
            .hidden(),
        );
    }
    for &(name, set, l2, batch, target, steps, eval) in LOGISTIC {
        let prob = logistic(name).expect("listed in LOGISTIC")?;
        let (n, d, k) = (prob.data.n, prob.data.d, prob.data.classes);
        let f_star = prob.f_star;
        let batching = if batch == 0 {
            "full-batch gradients".to_string()
        } else {
            format!("minibatches of {batch} (shuffled each epoch)")
        };
        let mut wl = Workload::problem(
            name,
            &format!("L2-regularized logistic regression on {set} ({n} × {d}, {k} classes)"),
            &format!(
                "Mean cross-entropy + ({l2}/2)‖W‖² on standardized features, {batching}. f* = {f_star:.12} from Newton's method \
                 (checked against scikit-learn)."
            ),
            Family::Convex,
            Arc::new(prob),
        )
        .target(target)
        .steps(steps, eval);
        if batch > 0 {
            wl = wl.schedule(Schedule::Cosine {
                total_steps: steps,
                warmup_steps: 0,
                min_factor: 0.0,
            });
        }
        w.push(wl);
    }
    Ok(w)
}

/// The logistic-regression workloads: (name, bundled data set, L2, batch
/// (0: full), target suboptimality, steps, evaluation interval).
#[allow(clippy::type_complexity)]
const LOGISTIC: &[(&str, &str, f64, usize, f64, u64, u64)] = &[
    ("logreg-breast-cancer", "breast-cancer", 1e-2, 0, 1e-8, 1000, 10),
    ("logreg-heart-scale", "heart-scale", 1e-2, 0, 1e-8, 1000, 10),
    ("softmax-digits", "digits", 1e-3, 64, 1e-3, 2000, 50),
];

/// The problem of one logistic-regression workload (`softmax-digits`, …),
/// built exactly as [`builtin`] builds it but without the other workloads;
/// `None` for a name that is not one of them.
pub fn logistic(name: &str) -> Option<Result<Logistic>> {
    let &(_, set, l2, batch, ..) = LOGISTIC.iter().find(|w| w.0 == name)?;
    Some((|| {
        let mut ds = data::bundled(set)?;
        ds.standardize();
        Logistic::new(Arc::new(ds), l2, batch)
    })())
}

/// The neural workloads, trained through burn (`steepest-burn`, CPU flex
/// backend) on the bundled data: an MLP and a small CNN on digits (metric:
/// test error, 1 − accuracy on the 20% held out), and a character-level
/// transformer on a Shakespeare play (metric: held-out cross-entropy, nats per
/// character). Optimizers that need more than one tensor's gradient per step
/// (AEGD, DP-SGD, DiceSGD, muon-nalr) cannot run inside burn's per-tensor
/// optimizer API and show as n/a.
pub fn neural() -> Vec<Workload> {
    use steepest_burn::models::{ModelKind, TrainData};
    let make = |kind: ModelKind, classification: bool| -> TrainFn {
        Arc::new(move |spec: &TrialSpec| burn_curve(kind, &TrainData::bundled(kind)?, spec, classification))
    };
    let base = |name: &str, title: &str, description: &str, body: TrainFn, metric: &str| Workload {
        name: name.into(),
        title: title.into(),
        description: description.into(),
        family: Family::Neural,
        body: Body::Train(body),
        metric: metric.into(),
        target: None,
        steps: 300,
        eval_every: 25,
        schedule: Schedule::Constant,
        suite: Suite::Quick,
        leaderboard: true,
        log_metric: true,
        requires: None,
    };
    let fetched = |kind: ModelKind, set: &'static str| -> TrainFn {
        Arc::new(move |spec: &TrialSpec| {
            let data = match set {
                "shakespeare" => TrainData::Text(steepest_burn::data::load_text(
                    &crate::data::fetched(set)?.join("shakespeare.txt"),
                )?),
                _ => TrainData::Classification(idx_subset(set)?),
            };
            burn_curve(kind, &data, spec, set != "shakespeare")
        })
    };
    let mut fetched_workloads = Vec::new();
    for (set, label) in [("mnist", "MNIST"), ("fashion-mnist", "Fashion-MNIST")] {
        for (kind, model) in [(ModelKind::Mlp, "mlp"), (ModelKind::Cnn, "cnn")] {
            fetched_workloads.push(Workload {
                target: Some(if set == "mnist" { 0.08 } else { 0.2 }),
                suite: Suite::Standard,
                steps: 500,
                requires: Some(set),
                ..base(
                    &format!("{model}-{set}"),
                    &format!("{} on {label} (burn; 12,500 images)", if model == "mlp" { "MLP" } else { "Small CNN" }),
                    &format!(
                        "{label} 28×28 images scaled to [0, 1]: the first 10,000 training and first 2,500 test images, of which the \
                         training loop holds out 20%; metric: test error. Needs `steepest data fetch {set}`."
                    ),
                    fetched(kind, set),
                    "test error",
                )
            });
        }
    }
    let mut all = vec![
        Workload {
            target: Some(0.04),
            ..base(
                "mlp-digits",
                "MLP 64-128-10 on digits (burn, flex CPU backend)",
                "A two-layer ReLU MLP on the 8×8 digits, minibatches of 64, 20% of the rows held out; metric: test error (1 − accuracy). \
                 Trained through steepest-burn: the same kernels as everywhere else, inside burn's optimizer API.",
                make(ModelKind::Mlp, true),
                "test error",
            )
        },
        Workload {
            target: Some(0.04),
            suite: Suite::Standard,
            steps: 400,
            ..base(
                "cnn-digits",
                "Small CNN on digits (burn)",
                "A small convolutional network on the 8×8 digits; metric: test error.",
                make(ModelKind::Cnn, true),
                "test error",
            )
        },
        Workload {
            target: Some(2.5),
            suite: Suite::Standard,
            steps: 400,
            log_metric: false,
            ..base(
                "char-transformer",
                "Character-level transformer on Julius Caesar (burn)",
                "A one-block character-level transformer on the first 60 000 characters of Julius Caesar (context 32, batch 64); \
                 metric: held-out cross-entropy in nats per character.",
                make(ModelKind::CharTransformer, false),
                "held-out cross-entropy",
            )
        },
        Workload {
            target: Some(2.5),
            suite: Suite::Full,
            steps: 1000,
            eval_every: 100,
            log_metric: false,
            requires: Some("shakespeare"),
            ..base(
                "char-transformer-shakespeare",
                "Character-level transformer on the complete Shakespeare (burn)",
                "The one-block character-level transformer on the complete works (5.06 MB; the last 10% held out). \
                 Needs `steepest data fetch shakespeare`.",
                fetched(ModelKind::CharTransformer, "shakespeare"),
                "held-out cross-entropy",
            )
        },
    ];
    all.extend(fetched_workloads);
    all
}

/// One burn training run as a lab curve (classification: metric = 1 − accuracy).
fn burn_curve(
    kind: steepest_burn::models::ModelKind,
    data: &steepest_burn::models::TrainData,
    spec: &TrialSpec,
    classification: bool,
) -> crate::Result<Curve> {
    let hyper = serde_json::to_string(&spec.hyper).map_err(|e| crate::LabError::Config(e.to_string()))?;
    let pts = steepest_burn::models::train(
        kind,
        data,
        &spec.optimizer,
        &hyper,
        spec.steps as usize,
        spec.seed,
        spec.eval_every as usize,
    )?;
    let mut curve = Curve::default();
    for p in pts {
        curve.points.push(crate::runner::Point {
            step: p.step as u64,
            metric: if classification {
                1.0 - p.eval_metric
            } else {
                p.eval_metric
            },
            loss: p.train_loss,
            grad_norm: f64::NAN,
            aux: f64::NAN,
            wall: p.wall_s,
        });
    }
    Ok(curve)
}

fn read_maybe_gz(path: &std::path::Path) -> crate::Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).map_err(|e| crate::LabError::Data(format!("cannot read {}: {e}", path.display())))?;
    if path.extension().is_some_and(|e| e == "gz") {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| crate::LabError::Data(format!("{}: {e}", path.display())))?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// Parses an IDX file (`magic`, dimensions, unsigned bytes); returns the dimensions and the data.
pub fn parse_idx(bytes: &[u8], what: &str) -> crate::Result<(Vec<usize>, Vec<u8>)> {
    let bad = |m: &str| crate::LabError::Data(format!("{what}: not an IDX file of unsigned bytes ({m})"));
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        return Err(bad("bad magic"));
    }
    let nd = bytes[3] as usize;
    if bytes.len() < 4 + 4 * nd {
        return Err(bad("truncated header"));
    }
    let dims: Vec<usize> = (0..nd)
        .map(|i| u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize)
        .collect();
    let n: usize = dims.iter().product();
    let data = &bytes[4 + 4 * nd..];
    if data.len() != n {
        return Err(bad(&format!("{} data bytes for dimensions {dims:?}", data.len())));
    }
    Ok((dims, data.to_vec()))
}

/// The 12,500-image subset of a fetched IDX data set (MNIST, Fashion-MNIST).
fn idx_subset(set: &str) -> crate::Result<steepest_burn::data::Classification> {
    let dir = crate::data::fetched(set)?;
    let ext = if set == "fashion-mnist" { ".gz" } else { "" };
    let load = |stem: &str| -> crate::Result<(Vec<usize>, Vec<u8>)> {
        let p = dir.join(format!("{stem}{ext}"));
        parse_idx(&read_maybe_gz(&p)?, &p.display().to_string())
    };
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (images, labels, take) in [
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 10_000),
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 2_500),
    ] {
        let (d, px) = load(images)?;
        let (_, lab) = load(labels)?;
        let side = d.get(1).copied().unwrap_or(0) * d.get(2).copied().unwrap_or(0);
        let take = take.min(lab.len());
        x.extend(px[..take * side].iter().map(|&v| v as f32 / 255.0));
        y.extend(lab[..take].iter().map(|&l| l as i64));
    }
    Ok(steepest_burn::data::Classification {
        x,
        y,
        features: 784,
        classes: 10,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idx_files_parse_and_bad_ones_are_errors() {
        let mut f = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        f.extend([1, 2, 3, 4]);
        let (d, v) = parse_idx(&f, "t").unwrap();
        assert_eq!((d, v), (vec![2, 1, 2], vec![1, 2, 3, 4]));
        assert!(parse_idx(&f[..18], "t").is_err(), "truncated data");
        assert!(parse_idx(&[0, 0, 9, 1], "t").is_err(), "not bytes");
        assert!(parse_idx(&[0, 0, 8, 2, 0], "t").is_err(), "truncated header");
    }

    #[test]
    fn every_builtin_workload_is_well_formed() {
        let mut all = builtin().unwrap();
        all.extend(neural());
        let mut names: Vec<&str> = all.iter().map(|w| w.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len(), "duplicate workload names");
        for w in &all {
            assert!(w.steps > 0 && w.eval_every > 0 && w.eval_every <= w.steps, "{}", w.name);
            assert!(w.target.is_none_or(|t| t.is_finite()), "{}", w.name);
            assert!(w.schedule.validate().is_ok(), "{}", w.name);
        }
    }
}
