//! `steepest bench`: plans the runs (every optimizer on every workload of the
//! suite, plus the runs the claims ask for), sweeps learning rates with the
//! same budget for everyone, reruns the chosen configuration over seeds, and
//! collects the results for the leaderboards, the claims and the report.
//!
//! **The learning-rate sweep** (identical for every optimizer and workload):
//! the optimizer's own default learning rate (every hyperparameter named `lr`
//! or ending in `_lr`, except AdaBound's absolute `final_lr`) is multiplied by
//! `10^k` for `k` in the suite's coarse grid (quick: −1..3, standard and full:
//! −2..3), then by `10^(k*±0.5)` around the best coarse value: 7 or 8 trials on
//! seed 0. The best is the one reaching the target in the fewest steps, else
//! the lowest final metric (median of the last three evaluations); a diverged
//! trial is worst. The chosen value then runs on every seed.
//! Weight decay is set to 0 for every optimizer: regularization, where a
//! workload has it, is part of its loss, so every method aims at the same optimum.

use std::collections::BTreeMap;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;
use steepest::hyper::Hyper;
use steepest::registry;

use crate::claims::{self, Claim};
use crate::runner::{self, Curve, Point, Status, TrialSpec};
use crate::workloads::{Body, Suite, Workload};
use crate::{LabError, Result};

/// An optimizer configuration competing on a workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Contender {
    /// Label in tables ("adamw", "sgd (momentum 0.9)", ...).
    pub label: String,
    /// Registry name.
    pub optimizer: String,
    /// Hyperparameters on top of the defaults (the learning rates are scaled by the sweep).
    pub hyper: Hyper,
    /// Sweep the learning rate (else run `lr_factor` × default).
    pub sweep: bool,
    /// Fixed factor on the default learning rates when not sweeping.
    pub lr_factor: f64,
}

impl Contender {
    /// An optimizer with its defaults (weight decay 0), swept.
    pub fn registry(name: &str) -> Contender {
        Contender {
            label: name.into(),
            optimizer: name.into(),
            hyper: lab_defaults(name),
            sweep: true,
            lr_factor: 1.0,
        }
    }

    /// The hyperparameters at a learning-rate factor.
    pub fn hyper_at(&self, factor: f64) -> Hyper {
        let defaults = registry::lookup(&self.optimizer)
            .map(|e| e.defaults())
            .unwrap_or_default();
        let mut h = self.hyper.clone();
        for (k, v) in defaults.iter().chain(self.hyper.iter()) {
            if (k == "lr" || k.ends_with("_lr")) && k != "final_lr" {
                let base = self.hyper.get(k).or(Some(v)).and_then(Value::as_f64);
                if let Some(b) = base {
                    h.insert(k.clone(), serde_json::json!(b * factor));
                }
            }
        }
        h
    }
}

/// Weight decay 0 where the optimizer has it.
pub fn lab_defaults(name: &str) -> Hyper {
    let mut h = Hyper::new();
    if let Ok(e) = registry::lookup(name) {
        for (k, v) in e.defaults() {
            if (k == "weight_decay" || k.ends_with("_weight_decay")) && v.is_number() {
                h.insert(k, serde_json::json!(0.0));
            }
        }
    }
    h
}

/// The sweep's grid.
#[derive(Clone, Debug, Serialize)]
pub struct SweepPlan {
    /// Decades of the coarse grid.
    pub coarse: Vec<i32>,
    /// Half-decade refinement around the best coarse point.
    pub refine: bool,
}

impl SweepPlan {
    /// The plan of a suite.
    pub fn for_suite(s: Suite) -> SweepPlan {
        match s {
            Suite::Quick => SweepPlan {
                coarse: (-1..=3).collect(),
                refine: true,
            },
            _ => SweepPlan {
                coarse: (-2..=3).collect(),
                refine: true,
            },
        }
    }

    /// Trials per swept contender.
    pub fn budget(&self) -> usize {
        self.coarse.len() + if self.refine { 2 } else { 0 }
    }
}

/// One finished trial.
#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    /// Workload.
    pub workload: String,
    /// Contender label.
    pub label: String,
    /// Registry name.
    pub optimizer: String,
    /// Hyperparameters used.
    pub hyper: Hyper,
    /// Learning-rate factor on the defaults.
    pub lr_factor: f64,
    /// Seed.
    pub seed: u64,
    /// Part of the sweep (seed 0) or of the seed runs.
    pub phase: &'static str,
    /// Outcome.
    #[serde(flatten)]
    pub status: Status,
    /// Steps to target.
    pub steps_to_target: Option<u64>,
    /// Seconds to target.
    pub time_to_target: Option<f64>,
    /// Final metric.
    pub final_metric: f64,
    /// Metric over steps.
    pub points: Vec<Point>,
    /// Extra series.
    pub extra: Vec<(String, Vec<f64>)>,
}

impl Trial {
    /// Ranking key: reached the target sooner, else lower final metric.
    fn score(&self) -> (f64, f64) {
        match self.steps_to_target {
            Some(s) => (s as f64, self.final_metric),
            None => (f64::INFINITY, self.final_metric),
        }
    }
}

/// All results of one contender on one workload.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    /// Workload.
    pub workload: String,
    /// Contender label.
    pub label: String,
    /// Registry name.
    pub optimizer: String,
    /// Why it did not run, if it did not.
    pub not_applicable: Option<String>,
    /// The sweep (seed 0), in factor order.
    pub sweep: Vec<Trial>,
    /// The chosen factor.
    pub chosen_factor: Option<f64>,
    /// The chosen configuration on every seed (seed 0 first).
    pub seeds: Vec<Trial>,
}

impl RunResult {
    /// Median steps to target over seeds (infinite if most seeds miss it).
    pub fn median_steps(&self) -> f64 {
        let v: Vec<f64> = self
            .seeds
            .iter()
            .map(|t| t.steps_to_target.map_or(f64::INFINITY, |s| s as f64))
            .collect();
        crate::stats::median(&v).unwrap_or(f64::INFINITY)
    }
    /// Median seconds to target over seeds.
    pub fn median_time(&self) -> f64 {
        let v: Vec<f64> = self
            .seeds
            .iter()
            .map(|t| t.time_to_target.unwrap_or(f64::INFINITY))
            .collect();
        crate::stats::median(&v).unwrap_or(f64::INFINITY)
    }
    /// Median final metric over seeds.
    pub fn median_final(&self) -> f64 {
        let v: Vec<f64> = self.seeds.iter().map(|t| t.final_metric).collect();
        crate::stats::median(&v).unwrap_or(f64::INFINITY)
    }
    /// Seeds that reached the target.
    pub fn reached(&self) -> usize {
        self.seeds.iter().filter(|t| t.steps_to_target.is_some()).count()
    }
}

/// What to run.
#[derive(Clone)]
pub struct BenchConfig {
    /// Suite.
    pub suite: Suite,
    /// Only these workloads (empty: the suite's).
    pub workloads: Vec<String>,
    /// Only these optimizers (empty: every registered one).
    pub optimizers: Vec<String>,
    /// Seeds per chosen configuration (0: the suite's default).
    pub seeds: u64,
    /// Show progress bars.
    pub progress: bool,
    /// Extra workloads (bring your own).
    pub extra_workloads: Vec<Workload>,
}

/// Everything a bench run produced.
pub struct BenchResults {
    /// Suite.
    pub suite: Suite,
    /// Workloads that ran.
    pub workloads: Vec<Workload>,
    /// Optimizers in the leaderboard.
    pub optimizers: Vec<String>,
    /// Results by (workload, label).
    pub runs: BTreeMap<(String, String), RunResult>,
    /// Claims evaluated.
    pub claims: Vec<claims::ClaimResult>,
    /// Seeds per configuration.
    pub seeds: u64,
    /// Sweep plan.
    pub sweep: SweepPlan,
    /// Seconds the whole run took.
    pub wall_seconds: f64,
    /// Things the user should know (workloads skipped for missing data).
    pub notes: Vec<String>,
}

impl BenchResults {
    /// One run's results.
    pub fn get(&self, workload: &str, label: &str) -> Option<&RunResult> {
        self.runs.get(&(workload.to_string(), label.to_string()))
    }
}

struct Planned {
    workload: usize,
    contender: Contender,
}

fn trial(w: &Workload, c: &Contender, factor: f64, seed: u64, phase: &'static str) -> Trial {
    let spec = TrialSpec {
        workload: w.name.clone(),
        optimizer: c.optimizer.clone(),
        hyper: c.hyper_at(factor),
        seed,
        steps: w.steps,
        eval_every: w.eval_every,
        schedule: w.schedule.clone(),
    };
    let (Curve { points, extra }, status) = runner::run(w, &spec);
    let (steps_to_target, time_to_target) = if status == Status::Ok {
        runner::to_target(&points, w.target)
    } else {
        (None, None)
    };
    let final_metric = runner::final_metric(&points, &status);
    Trial {
        workload: w.name.clone(),
        label: c.label.clone(),
        optimizer: c.optimizer.clone(),
        hyper: spec.hyper,
        lr_factor: factor,
        seed,
        phase,
        status,
        steps_to_target,
        time_to_target,
        final_metric,
        points,
        extra,
    }
}

fn applicable(w: &Workload, c: &Contender) -> Option<String> {
    if let Err(e) = registry::lookup(&c.optimizer) {
        return Some(e.to_string());
    }
    if let Body::Problem(p) = &w.body {
        let params = p.init(0);
        let spec = TrialSpec {
            workload: w.name.clone(),
            optimizer: c.optimizer.clone(),
            hyper: c.hyper_at(1.0),
            seed: 0,
            steps: 0,
            eval_every: 1,
            schedule: w.schedule.clone(),
        };
        if let Err(e) = spec.build(&params) {
            return Some(e.to_string());
        }
    }
    None
}

fn best_of(trials: &[&Trial]) -> Option<f64> {
    trials
        .iter()
        .filter(|t| t.status == Status::Ok)
        .min_by(|a, b| {
            let (sa, sb) = (a.score(), b.score());
            sa.0.total_cmp(&sb.0)
                .then(sa.1.total_cmp(&sb.1))
                .then(a.lr_factor.total_cmp(&b.lr_factor))
        })
        .map(|t| t.lr_factor)
}

/// Runs the bench.
pub fn run(cfg: &BenchConfig) -> Result<BenchResults> {
    let started = std::time::Instant::now();
    let mut all = crate::workloads::builtin()?;
    all.extend(crate::extra_workloads());
    all.extend(cfg.extra_workloads.iter().cloned());
    for name in &cfg.workloads {
        if !all.iter().any(|w| &w.name == name) {
            let names: Vec<&str> = all.iter().filter(|w| w.leaderboard).map(|w| w.name.as_str()).collect();
            return Err(LabError::Config(format!(
                "unknown workload {name:?}; known: {}",
                names.join(", ")
            )));
        }
    }
    // Workloads whose data must be fetched first: an error naming the fetch
    // command when asked for by name, a note (and skipped) when only in the suite.
    let mut notes = Vec::new();
    let mut missing = Vec::new();
    for w in &all {
        if let Some(set) = w.requires {
            if let Err(e) = crate::data::fetched(set) {
                if cfg.workloads.contains(&w.name) {
                    return Err(e);
                }
                if w.suite <= cfg.suite {
                    notes.push(format!("skipped {}: {e}", w.name));
                }
                missing.push(w.name.clone());
            }
        }
    }
    all.retain(|w| !missing.contains(&w.name));
    let optimizers: Vec<String> = if cfg.optimizers.is_empty() {
        registry::registry().iter().map(|e| e.name.to_string()).collect()
    } else {
        for o in &cfg.optimizers {
            registry::lookup(o)?;
        }
        cfg.optimizers.clone()
    };
    let selected = |w: &Workload| -> bool {
        if cfg.workloads.is_empty() {
            w.suite <= cfg.suite || cfg.extra_workloads.iter().any(|e| e.name == w.name)
        } else {
            cfg.workloads.contains(&w.name)
        }
    };
    let claims: Vec<Claim> = claims::registry()
        .into_iter()
        .filter(|c| optimizers.iter().any(|o| o == c.algorithm))
        .filter(|c| {
            c.runs.iter().all(|r| {
                all.iter()
                    .any(|w| w.name == r.workload && (selected(w) || !w.leaderboard))
            })
        })
        .collect();
    // Workloads: selected leaderboard ones + hidden ones the claims use.
    let workloads: Vec<Workload> = all
        .into_iter()
        .filter(|w| {
            (w.leaderboard && selected(w)) || claims.iter().any(|c| c.runs.iter().any(|r| r.workload == w.name))
        })
        .collect();
    let widx = |name: &str| workloads.iter().position(|w| w.name == name);
    let mut planned: Vec<Planned> = Vec::new();
    let push = |workload: usize, contender: Contender, planned: &mut Vec<Planned>| {
        if !planned
            .iter()
            .any(|p| p.workload == workload && p.contender.label == contender.label)
        {
            planned.push(Planned { workload, contender });
        }
    };
    for (i, w) in workloads.iter().enumerate() {
        if w.leaderboard {
            for o in &optimizers {
                push(i, Contender::registry(o), &mut planned);
            }
        }
    }
    for c in &claims {
        for r in &c.runs {
            if let Some(i) = widx(r.workload) {
                push(i, r.contender(), &mut planned);
            }
        }
    }
    let seeds = if cfg.seeds == 0 {
        cfg.suite.default_seeds()
    } else {
        cfg.seeds
    };
    let plan = SweepPlan::for_suite(cfg.suite);
    let na: Vec<Option<String>> = planned
        .iter()
        .map(|p| applicable(&workloads[p.workload], &p.contender))
        .collect();
    let live: Vec<usize> = (0..planned.len()).filter(|&i| na[i].is_none()).collect();
    let total: u64 = live
        .iter()
        .map(|&i| {
            if planned[i].contender.sweep {
                plan.budget() as u64 + seeds - 1
            } else {
                seeds
            }
        })
        .sum();
    let bar = if cfg.progress {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(
                "{msg:>12} [{bar:40.cyan/blue}] {pos}/{len} trials, {elapsed} elapsed, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let run_tasks = |tasks: Vec<(usize, f64, u64, &'static str)>, msg: &'static str| -> Vec<Trial> {
        bar.set_message(msg);
        tasks
            .par_iter()
            .map(|&(pi, factor, seed, phase)| {
                let p = &planned[pi];
                let t = trial(&workloads[p.workload], &p.contender, factor, seed, phase);
                bar.inc(1);
                t
            })
            .collect()
    };
    // Phase 1: coarse sweep.
    let mut tasks = Vec::new();
    for &i in &live {
        let c = &planned[i].contender;
        if c.sweep {
            for &k in &plan.coarse {
                tasks.push((i, 10f64.powi(k), 0, "sweep"));
            }
        }
    }
    let coarse = run_tasks(tasks, "lr sweep");
    let mut sweeps: BTreeMap<usize, Vec<Trial>> = BTreeMap::new();
    let mut k = 0;
    for &i in &live {
        if planned[i].contender.sweep {
            sweeps.insert(i, coarse[k..k + plan.coarse.len()].to_vec());
            k += plan.coarse.len();
        }
    }
    // Phase 2: refine around the best coarse factor.
    if plan.refine {
        let mut tasks = Vec::new();
        for (&i, trials) in &sweeps {
            let refs: Vec<&Trial> = trials.iter().collect();
            let best = best_of(&refs).unwrap_or(1.0);
            for f in [best / 10f64.sqrt(), best * 10f64.sqrt()] {
                tasks.push((i, f, 0, "sweep"));
            }
        }
        let fine = run_tasks(tasks, "refine");
        for (j, (_, trials)) in sweeps.iter_mut().enumerate() {
            trials.extend(fine[2 * j..2 * j + 2].iter().cloned());
            trials.sort_by(|a, b| a.lr_factor.total_cmp(&b.lr_factor));
        }
    }
    // Phase 3: seeds at the chosen factor.
    let mut chosen: BTreeMap<usize, f64> = BTreeMap::new();
    let mut tasks = Vec::new();
    for &i in &live {
        let c = &planned[i].contender;
        let (factor, first_seed) = if c.sweep {
            let refs: Vec<&Trial> = sweeps[&i].iter().collect();
            (best_of(&refs).unwrap_or(1.0), 1)
        } else {
            (c.lr_factor, 0)
        };
        chosen.insert(i, factor);
        for s in first_seed..seeds {
            tasks.push((i, factor, s, "seeds"));
        }
    }
    let seeded = run_tasks(tasks, "seeds");
    bar.finish_and_clear();
    let mut by_run: BTreeMap<usize, Vec<Trial>> = BTreeMap::new();
    for t in seeded {
        let i = live
            .iter()
            .copied()
            .find(|&i| planned[i].contender.label == t.label && workloads[planned[i].workload].name == t.workload)
            .unwrap_or(0);
        by_run.entry(i).or_default().push(t);
    }
    let mut runs = BTreeMap::new();
    for (i, p) in planned.iter().enumerate() {
        let w = &workloads[p.workload];
        let sweep = sweeps.get(&i).cloned().unwrap_or_default();
        let mut seed_trials = Vec::new();
        if let Some(f) = chosen.get(&i) {
            if p.contender.sweep {
                if let Some(t) = sweep.iter().find(|t| t.lr_factor == *f) {
                    let mut t0 = t.clone();
                    t0.phase = "seeds";
                    seed_trials.push(t0);
                }
            }
        }
        seed_trials.extend(by_run.remove(&i).unwrap_or_default());
        seed_trials.sort_by_key(|t| t.seed);
        runs.insert(
            (w.name.clone(), p.contender.label.clone()),
            RunResult {
                workload: w.name.clone(),
                label: p.contender.label.clone(),
                optimizer: p.contender.optimizer.clone(),
                not_applicable: na[i].clone(),
                sweep,
                chosen_factor: chosen.get(&i).copied(),
                seeds: seed_trials,
            },
        );
    }
    let mut results = BenchResults {
        suite: cfg.suite,
        workloads,
        optimizers,
        runs,
        claims: Vec::new(),
        seeds,
        sweep: plan,
        wall_seconds: 0.0,
        notes,
    };
    results.claims = claims.iter().map(|c| c.evaluate(&results)).collect();
    results.wall_seconds = started.elapsed().as_secs_f64();
    Ok(results)
}
