//! The training driver: one rank's loop over a lab workload, with fault
//! injection, checkpoints, and per-rank curves and traffic.
//!
//! Data: rank `r` draws its own stochastic gradients from the workload with
//! the data seed `seed·1_000_003 + r + 1` (its own minibatch stream over the
//! same data set: i.i.d. sharding). Every rank starts from the workload's
//! initial point for `seed` (identical everywhere).
//!
//! [`TrainSpec::split`] can instead give each rank a class-restricted share of
//! the data ([`DataSplit::ClassBlocks`], for heterogeneity experiments such as
//! semi-decentralized learning's): the default is the i.i.d. streams above.
//!
//! Larger batches (gradient accumulation, AdLoCo's switch mode): an algorithm
//! may call the oracle several times within one step; call `j` (from 0) of
//! step `t` draws the minibatch of step `t` from the stream
//! [`micro_seed`]`(data seed, j)`, which is the rank's own data seed for
//! `j = 0`. An algorithm that calls once per step sees exactly the stream it
//! always saw.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use steepest::hyper::Hyper;
use steepest::GradSet;
use steepest_lab::problems::{EvalCtx, Problem};
use steepest_lab::workloads::Body;

use crate::algo::{flatten, DistAlgorithm};
use crate::collective::{Collective, Link, Traffic};
use crate::error::{Error, Result};
use crate::inproc::{run_inproc, Faults};
use crate::registry;

/// What one run does.
#[derive(Clone, Debug)]
pub struct TrainSpec {
    /// Distributed registry name.
    pub algo: String,
    /// Its hyperparameters.
    pub hyper: Hyper,
    /// Lab workload name (a problem workload).
    pub workload: String,
    /// Local steps per rank.
    pub steps: u64,
    /// Seed (initial point and data streams).
    pub seed: u64,
    /// Evaluate the model every this many steps (0: only at the end).
    pub eval_every: u64,
    /// `(world rank, step)`: that rank dies at the start of that step.
    pub kill: Option<(usize, u64)>,
    /// Save a checkpoint of the committed state every this many steps, here.
    pub checkpoint: Option<(PathBuf, u64)>,
    /// Resume from the last complete checkpoint in this directory.
    pub resume: Option<PathBuf>,
    /// How the data is shared between ranks (default: i.i.d. streams).
    pub split: DataSplit,
}

/// How the training data is shared between ranks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DataSplit {
    /// Every rank draws minibatches from the whole data set with its own seed.
    #[default]
    Iid,
    /// Classification workloads only: the classes are cut into `g` contiguous
    /// blocks and the world ranks into `g` contiguous blocks (sizes differing by
    /// at most one, [`crate::collective::chunk_bounds`]); a rank in block `j`
    /// draws its minibatches (same size, shuffled each epoch with its own seed)
    /// only from the rows whose class is in class block `j`. The loss the driver
    /// reports is still the full data set's.
    ClassBlocks(usize),
}

impl TrainSpec {
    /// A run with defaults: 100 steps, seed 0, evaluation every 10 steps, no faults.
    pub fn new(algo: &str, hyper: Hyper, workload: &str) -> TrainSpec {
        TrainSpec {
            algo: algo.into(),
            hyper,
            workload: workload.into(),
            steps: 100,
            seed: 0,
            eval_every: 10,
            kill: None,
            checkpoint: None,
            resume: None,
            split: DataSplit::Iid,
        }
    }
}

/// What one rank reports.
#[derive(Clone, Debug)]
pub struct RankReport {
    /// World rank.
    pub world_rank: usize,
    /// `(step, full loss of the rank's model)` at the evaluations (step 0 first).
    pub curve: Vec<(u64, f64)>,
    /// `(bytes sent so far, simulated communication seconds so far)` at the
    /// same evaluations as `curve` (one entry per entry there).
    pub comm_curve: Vec<(u64, f64)>,
    /// Training loss of each local step.
    pub train_loss: Vec<f64>,
    /// The rank's model at the end, flattened.
    pub model: Vec<f64>,
    /// Full loss of that model.
    pub final_loss: f64,
    /// Traffic.
    pub traffic: Traffic,
    /// Local steps taken.
    pub steps: u64,
    /// Members at the end (world ranks).
    pub members: Vec<usize>,
}

fn cache() -> &'static Mutex<HashMap<String, Arc<dyn Problem>>> {
    static C: OnceLock<Mutex<HashMap<String, Arc<dyn Problem>>>> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The lab's problem workload `name` (cached; the lock is held while a
/// workload is built, so concurrent callers build it once).
pub fn workload(name: &str) -> Result<Arc<dyn Problem>> {
    let mut c = cache()
        .lock()
        .map_err(|_| Error::Lab("workload cache poisoned".into()))?;
    if let Some(p) = c.get(name) {
        return Ok(p.clone());
    }
    // The cheap synthetic problems and the logistic regressions, built exactly
    // as the lab builds them, without building (and solving) every other workload first.
    let quick: Option<Arc<dyn Problem>> = match name {
        "noisy-quadratic" => Some(Arc::new(steepest_lab::problems::NoisyQuadratic::new(100, 1000.0, 0.01))),
        "least-squares" => Some(Arc::new(steepest_lab::problems::LeastSquares::new(
            200, 40, 100.0, 1.0, 1,
        ))),
        _ => match steepest_lab::workloads::logistic(name) {
            Some(p) => Some(Arc::new(p.map_err(|e| Error::Lab(e.to_string()))?)),
            None => None,
        },
    };
    if let Some(p) = quick {
        c.insert(name.to_string(), p.clone());
        return Ok(p);
    }
    let all = steepest_lab::workloads::builtin().map_err(|e| Error::Lab(e.to_string()))?;
    let mut names = Vec::new();
    for w in all {
        if let Body::Problem(p) = &w.body {
            c.insert(w.name.clone(), p.clone());
            names.push(w.name.clone());
        }
    }
    c.get(name).cloned().ok_or_else(|| {
        Error::config(
            "workload",
            format!("no lab problem workload named {name:?} (known: {})", names.join(", ")),
        )
    })
}

/// The data seed of a rank.
pub fn data_seed(seed: u64, rank: usize) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(rank as u64 + 1)
}

/// The data stream of the `j`-th oracle call within a step (`j = 0`: the rank's own stream).
pub fn micro_seed(dseed: u64, j: u64) -> u64 {
    if j == 0 {
        dseed
    } else {
        dseed ^ j.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ 0x5851_F42D_4C95_7F2D
    }
}

/// Runs one rank to the end (or to its injected death).
pub fn train_rank(comm: &mut dyn Collective, problem: &dyn Problem, spec: &TrainSpec) -> Result<RankReport> {
    let init = problem.init(spec.seed);
    let mut algo: Box<dyn DistAlgorithm> = registry::build(&spec.algo, &spec.hyper, &init, comm.world_size())?;
    if let Some(dir) = &spec.resume {
        let (model, states, step) = crate::checkpoint::load(dir, comm.world_rank(), &init)?;
        algo.restore(&model, &states, step)?;
    }
    let me = comm.world_rank();
    let dseed = data_seed(spec.seed, me);
    let split = match spec.split {
        DataSplit::Iid => None,
        DataSplit::ClassBlocks(g) => Some(ClassShare::new(&spec.workload, g, comm.world_size(), me)?),
    };
    let eval = |algo: &dyn DistAlgorithm| {
        problem
            .eval(
                algo.model(),
                &EvalCtx {
                    seed: spec.seed,
                    t: algo.steps(),
                    cum_loss: 0.0,
                },
            )
            .loss
    };
    let mut curve = vec![(algo.steps(), eval(algo.as_ref()))];
    let snap = |c: &dyn Collective| (c.traffic().bytes_sent, c.traffic().sim_seconds);
    let mut comm_curve = vec![snap(comm)];
    let mut train_loss = Vec::new();
    while algo.steps() < spec.steps {
        let t = algo.steps() + 1;
        if spec.kill == Some((me, t)) {
            return Err(Error::Killed(t));
        }
        let mut calls = 0u64;
        let mut oracle = |p: &steepest::ParamSet<f64>, g: &mut GradSet<f64>| {
            let s = micro_seed(dseed, calls);
            calls += 1;
            match &split {
                Some(sp) => sp.loss_grad(p, s, t, g),
                None => problem.loss_grad(p, s, t, g),
            }
        };
        let loss = algo.step(comm, &mut oracle)?;
        train_loss.push(loss);
        if !loss.is_finite() {
            return Err(Error::Lab(format!("training loss became {loss} at step {t}")));
        }
        if spec.eval_every > 0 && t.is_multiple_of(spec.eval_every) {
            curve.push((t, eval(algo.as_ref())));
            comm_curve.push(snap(comm));
        }
        if let Some((dir, every)) = &spec.checkpoint {
            if *every > 0 && t.is_multiple_of(*every) {
                crate::checkpoint::save(dir, comm, algo.as_ref())?;
            }
        }
    }
    let final_loss = eval(algo.as_ref());
    if curve.last().map(|c| c.0) != Some(algo.steps()) {
        curve.push((algo.steps(), final_loss));
        comm_curve.push(snap(comm));
    }
    Ok(RankReport {
        world_rank: me,
        curve,
        comm_curve,
        train_loss,
        model: flatten(algo.model()),
        final_loss,
        traffic: comm.traffic().clone(),
        steps: algo.steps(),
        members: comm.members(),
    })
}

/// Runs `workers` in-process ranks; one result per rank.
pub fn train_inproc(
    spec: &TrainSpec,
    workers: usize,
    link: Option<Link>,
    faults: Faults,
) -> Result<Vec<Result<RankReport>>> {
    if workers == 0 {
        return Err(Error::config("workers", "need at least one worker"));
    }
    if let Some(l) = link {
        if !(l.gbps > 0.0 && l.gbps.is_finite()) {
            return Err(Error::config("link-gbps", format!("must be > 0, got {}", l.gbps)));
        }
        if !(l.latency_s >= 0.0 && l.latency_s.is_finite()) {
            return Err(Error::config(
                "latency-ms",
                format!("must be >= 0, got {}", l.latency_s * 1e3),
            ));
        }
    }
    // Validate the configuration once, before any thread starts.
    let problem = workload(&spec.workload)?;
    registry::build(&spec.algo, &spec.hyper, &problem.init(spec.seed), workers)?;
    if let DataSplit::ClassBlocks(g) = spec.split {
        ClassShare::new(&spec.workload, g, workers, 0)?;
    }
    let mut spec = spec.clone();
    if spec.kill.is_none() {
        spec.kill = faults.kill;
    }
    let p = problem.as_ref();
    Ok(run_inproc(workers, link, faults, |mut c| train_rank(&mut c, p, &spec)))
}

/// Loss of the mean of the ranks' models (what a final all-reduce would serve).
pub fn loss_of_mean(spec: &TrainSpec, reports: &[&RankReport]) -> Result<f64> {
    let problem = workload(&spec.workload)?;
    let mut p = problem.init(spec.seed);
    let d = p.total_numel();
    let mut mean = vec![0.0; d];
    for r in reports {
        for (m, x) in mean.iter_mut().zip(&r.model) {
            *m += x;
        }
    }
    for m in &mut mean {
        *m /= reports.len().max(1) as f64;
    }
    crate::algo::unflatten(&mut p, &mean)?;
    Ok(problem
        .eval(
            &p,
            &EvalCtx {
                seed: spec.seed,
                t: spec.steps,
                cum_loss: 0.0,
            },
        )
        .loss)
}

/// A rank's class-restricted share of a classification workload ([`DataSplit::ClassBlocks`]).
pub struct ClassShare {
    problem: steepest_lab::problems::Logistic,
    rows: Vec<usize>,
}

/// The classification workloads a class split knows: (data set, L2, minibatch),
/// as `steepest_lab::workloads::builtin` builds them.
fn classification(name: &str) -> Option<(&'static str, f64, usize)> {
    match name {
        "softmax-digits" => Some(("digits", 1e-3, 64)),
        _ => None,
    }
}

impl ClassShare {
    /// The share of world rank `me` of `world` with the classes cut into `g` blocks.
    pub fn new(workload: &str, g: usize, world: usize, me: usize) -> Result<ClassShare> {
        let (set, l2, batch) = classification(workload).ok_or_else(|| {
            Error::config(
                "split",
                format!("a class split needs a classification workload (softmax-digits), not {workload:?}"),
            )
        })?;
        let mut ds = steepest_lab::data::bundled(set).map_err(|e| Error::Lab(e.to_string()))?;
        ds.standardize();
        if g == 0 || g > world || g > ds.classes {
            return Err(Error::config(
                "split",
                format!(
                    "{g} class blocks for {world} ranks and {} classes (need 1..=min of both)",
                    ds.classes
                ),
            ));
        }
        let block = crate::collective::chunk_bounds(world, g)
            .iter()
            .position(|&(a, b)| me >= a && me < b)
            .unwrap_or(0);
        let (ca, cb) = crate::collective::chunk_bounds(ds.classes, g)[block];
        let rows: Vec<usize> = (0..ds.n)
            .filter(|&i| {
                let c = ds.y[i] as usize;
                c >= ca && c < cb
            })
            .collect();
        let problem = steepest_lab::problems::Logistic {
            data: std::sync::Arc::new(ds),
            l2,
            batch,
            f_star: f64::NAN,
        };
        Ok(ClassShare { problem, rows })
    }

    /// The rows this rank draws from.
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// Loss and gradient on step `t`'s minibatch of this share (seeded permutation per epoch).
    pub fn loss_grad(&self, p: &steepest::ParamSet<f64>, seed: u64, t: u64, g: &mut GradSet<f64>) -> f64 {
        let n = self.rows.len();
        let b = self.problem.batch.min(n).max(1);
        let per_epoch = (n / b).max(1) as u64;
        let epoch = (t - 1) / per_epoch;
        let pos = ((t - 1) % per_epoch) as usize;
        let perm = crate::algo::permutation(n, seed ^ 0xc1a5, epoch);
        let idx: Vec<usize> = perm[pos * b..(pos + 1) * b].iter().map(|&i| self.rows[i]).collect();
        let get = |name: &str| p.get(name).map(|x| x.data.clone()).unwrap_or_default();
        let (loss, gw, gb) = self.problem.loss_grads(&get("weight"), &get("bias"), Some(&idx));
        g.insert("weight", gw);
        g.insert("bias", gb);
        loss
    }
}
