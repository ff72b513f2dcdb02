//! One trial: an optimizer configuration on a workload with a seed, recording
//! the metric over steps and wall-clock time.

use std::time::Instant;

use serde::Serialize;
use steepest::hyper::Hyper;
use steepest::optimizer::OptimizerSpec;
use steepest::{GradSet, SampleGrads, StepInputs};

use crate::problems::{EvalCtx, Problem};
use crate::workloads::{Body, Workload};
use crate::Result;

/// What one trial runs.
#[derive(Clone, Debug)]
pub struct TrialSpec {
    /// Workload name.
    pub workload: String,
    /// Registry name of the optimizer.
    pub optimizer: String,
    /// Hyperparameters (learning rate included).
    pub hyper: Hyper,
    /// Seed.
    pub seed: u64,
    /// Steps.
    pub steps: u64,
    /// Evaluation period.
    pub eval_every: u64,
    /// Schedule.
    pub schedule: steepest::schedule::Schedule,
}

impl TrialSpec {
    /// Builds the optimizer for a parameter set (errors: bad hyperparameters,
    /// parameters the algorithm does not accept).
    pub fn build<F: steepest::Float>(&self, params: &steepest::ParamSet<F>) -> Result<steepest::Optimizer<F>> {
        Ok(OptimizerSpec::new(&self.optimizer, &self.hyper)
            .schedule(self.schedule.clone())
            .build(params)?)
    }
}

/// One evaluation.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Point {
    /// Steps taken.
    pub step: u64,
    /// Metric.
    pub metric: f64,
    /// Loss.
    pub loss: f64,
    /// Gradient norm (see [`crate::problems::Eval`]).
    pub grad_norm: f64,
    /// The problem's auxiliary quantity (see [`crate::problems::Eval::aux`]).
    pub aux: f64,
    /// Seconds spent in optimizer steps and gradients so far (evaluations excluded).
    pub wall: f64,
}

/// How a trial ended.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum Status {
    /// Ran its budget.
    Ok,
    /// The loss or metric became non-finite or exploded (more than 1e6 × its start).
    Diverged,
    /// The optimizer cannot run on this workload (e.g. matrices only), with the reason.
    NotApplicable(String),
    /// Something else failed.
    Error(String),
}

/// A trial's record.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Curve {
    /// Evaluations, step 0 first.
    pub points: Vec<Point>,
    /// Extra series a claim may need (name, values at the evaluation steps).
    pub extra: Vec<(String, Vec<f64>)>,
}

/// Runs a problem workload's trial.
pub fn run_problem(problem: &dyn Problem, spec: &TrialSpec) -> (Curve, Status) {
    let mut params = problem.init(spec.seed);
    let mut opt = match spec.build(&params) {
        Ok(o) => o,
        Err(e) => return (Curve::default(), classify(e)),
    };
    let needs = opt.needs();
    let mut grads = GradSet::new();
    let mut curve = Curve::default();
    let mut cum_loss = 0.0;
    let mut wall = 0.0;
    let first = problem.eval(
        &params,
        &EvalCtx {
            seed: spec.seed,
            t: 0,
            cum_loss,
        },
    );
    let start_metric = first.metric.abs().max(1e-300);
    curve.points.push(Point {
        step: 0,
        metric: first.metric,
        loss: first.loss,
        grad_norm: first.grad_norm,
        aux: first.aux,
        wall,
    });
    for t in 1..=spec.steps {
        let t0 = Instant::now();
        let loss = problem.loss_grad(&params, spec.seed, t, &mut grads);
        cum_loss += loss;
        let samples = if needs.sample_grads {
            Some(sample_grads(problem, &params, spec.seed, t))
        } else {
            None
        };
        let inputs = StepInputs {
            loss: Some(loss),
            sample_grads: samples.as_ref(),
        };
        let stepped = opt.step_with(&mut params, &mut grads, inputs);
        wall += t0.elapsed().as_secs_f64();
        let diverged = !loss.is_finite() || stepped.is_err();
        if t % spec.eval_every == 0 || t == spec.steps || diverged {
            let e = problem.eval(
                &params,
                &EvalCtx {
                    seed: spec.seed,
                    t,
                    cum_loss,
                },
            );
            curve.points.push(Point {
                step: t,
                metric: e.metric,
                loss: e.loss,
                grad_norm: e.grad_norm,
                aux: e.aux,
                wall,
            });
            if diverged || !e.metric.is_finite() || e.metric.abs() > 1e6 * start_metric.max(1.0) {
                return (curve, Status::Diverged);
            }
        }
    }
    (curve, Status::Ok)
}

/// Micro-batches per step for optimizers that need per-sample gradients on a
/// problem without per-example gradients: independent gradient draws (other
/// noise, other minibatch), whose mean is not the step's gradient but has its
/// distribution.
pub const MICRO_BATCHES: u64 = 4;

fn sample_grads(problem: &dyn Problem, p: &steepest::ParamSet<f64>, seed: u64, t: u64) -> SampleGrads<f64> {
    if let Some(s) = problem.sample_grads(p, seed, t) {
        return s;
    }
    let mut by_name: std::collections::BTreeMap<String, Vec<Vec<f64>>> = Default::default();
    for j in 0..MICRO_BATCHES {
        let mut g = GradSet::new();
        problem.loss_grad(p, seed ^ (0x9e37_79b9 * (j + 1)), t, &mut g);
        for name in g.names().map(str::to_string).collect::<Vec<_>>() {
            if let Some(v) = g.remove(&name) {
                by_name.entry(name).or_default().push(v);
            }
        }
    }
    let mut s = SampleGrads::new();
    for (k, v) in by_name {
        s.insert(k, v);
    }
    s
}

fn classify(e: crate::LabError) -> Status {
    let msg = e.to_string();
    if msg.contains("cannot update") || msg.contains("matrices only") || msg.contains("per-tensor optimizer API") {
        Status::NotApplicable(msg)
    } else {
        Status::Error(msg)
    }
}

/// Runs any workload's trial.
pub fn run(workload: &Workload, spec: &TrialSpec) -> (Curve, Status) {
    match &workload.body {
        Body::Problem(p) => run_problem(p.as_ref(), spec),
        Body::Train(f) => match f(spec) {
            Ok(c) => {
                let diverged = c.points.iter().any(|p| !p.metric.is_finite());
                (c, if diverged { Status::Diverged } else { Status::Ok })
            }
            Err(e) => (Curve::default(), classify(e)),
        },
    }
}

/// Steps and seconds to reach `target` (first evaluation at or below it).
pub fn to_target(points: &[Point], target: Option<f64>) -> (Option<u64>, Option<f64>) {
    match target {
        None => (None, None),
        Some(t) => points
            .iter()
            .find(|p| p.metric <= t)
            .map_or((None, None), |p| (Some(p.step), Some(p.wall))),
    }
}

/// The final metric: the median of the last three evaluations (robust to the
/// last point of an oscillating run); infinite when the curve is empty or diverged.
pub fn final_metric(points: &[Point], status: &Status) -> f64 {
    if *status != Status::Ok || points.is_empty() {
        return f64::INFINITY;
    }
    let k = points.len().min(3);
    let mut last: Vec<f64> = points[points.len() - k..].iter().map(|p| p.metric).collect();
    last.sort_by(|a, b| a.total_cmp(b));
    last[k / 2]
}
