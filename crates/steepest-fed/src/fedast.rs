//! FedAST: several models (tasks) trained at once, asynchronously, on a shared
//! client population, and the synchronous baseline Sync-ST.
//!
//! Paper: Askin, Sharma, Joe-Wong & Wang, *FedAST: Federated Asynchronous
//! Simultaneous Training* (arXiv 2406.00302), Algorithm 1 (FedAST) with the
//! dynamic allocation of in-flight jobs; the PDF was not reachable from this
//! workplace (abstract only), so this follows the research notes (§4) and the
//! official code, read for this file (askinb/FedAST `server.py`:
//! `async_run_fedast`, `update`, `aggregation`, `calculateUpdVariance`,
//! `redistributeActiveWorks`; `utils/delay.py`).
//!
//! Simulated time, per task `m`: model `x_m`, version `v_m`, buffer `B_m` of
//! size `b_m`, in-flight target `R_m`; `R_tot = Σ R_m`.
//! 1. Start: for each task in order, `R_m` jobs, each on a client drawn
//!    uniformly with replacement (stream `(seed, Sampling, m, job)`).
//! 2. A job of task `m` on client `c` starts at `max(now, c's last finish)`
//!    (clients are FIFO, shared by all tasks) and takes the task's
//!    [`Delays`]: `speed_c · (shift_m + Exp(mean_m))` (stream
//!    `(seed, Delay, c, job)`); it trains from `x_m^{(v)}` at launch and
//!    returns `Δ = x_local − x_m^{(v)}`.
//! 3. Arrivals in finish-time order (ties by job id, ids global across
//!    tasks): `B_m += Δ`; when `|B_m| ≥ b_m`, `x_m ← x_m + (η_g/|B_m|) Σ Δ`,
//!    clear, `v_m += 1` (no staleness discount, as in the code). After each
//!    update the task is evaluated; reaching its target accuracy (or its
//!    update budget) finishes it: its jobs in flight are cancelled and its
//!    `R_m` is given to the unfinished tasks ∝ their `R` (floors, then the
//!    remainder one by one by largest fractional part, ties by lower index;
//!    the code spreads the remainder at random).
//! 4. After an arrival of task `m`, launch `min(R_m − inflight_m, R_tot −
//!    Σ inflight, cap)` new jobs of task `m` (cap = 2).
//! 5. Dynamic `R` (optional): a window of the last `W` (8) deltas per task
//!    (tensors named `b`/`*bias*` skipped) gives, on every arrival once full,
//!    `s_m = η_g Σ_j ‖Δ_j − Δ̄‖² / (‖Δ̄‖² W η_l E²)` (η_l the client `lr`,
//!    `E` the local steps; the code's scale factors, only ratios matter).
//!    Every `⌊¾ R_tot⌋ · #unfinished` arrivals, once every unfinished task has
//!    a sample and every version exceeds `W`: `R_m` ∝ mean `s_m` in
//!    multiples of `r` (each task at least `r`; the code's greedy), samples
//!    cleared; after each arrival of task `m`, `b_m = max(1, ⌈inflight_m/r⌉)`.
//!
//! Open choices and what steepest does: the window holds the last `W` deltas
//! (the code's list drops one as it fills, holding `W − 1`); the code's
//! `x**1/2` (which halves, not roots) is omitted as a common factor; the last
//! redistribution step is capped so `Σ R_m` stays `R_tot`; the code's cap of
//! 300 busy clients is not modelled; a job is placed on a busy client and
//! queues (FIFO), as in the code; a cancelled job still holds its client
//! until its planned finish.
//!
//! Sync-ST (the paper's baseline): clients are split into disjoint groups
//! ∝ `R_m` by a seeded shuffle (stream `(seed, Task, 0, 0)`); task `m`
//! runs synchronous rounds: `R_m` distinct clients of its pool (stream
//! `(seed, Task, m + 1, round)`), all start at the round's start (or when the
//! client is free), the round ends at the last finish, `x_m ← x_m + η_g ·
//! mean Δ`. Tasks run side by side on their own clocks (events processed in
//! time order); a finished task's `R_m` is given to the others as above and
//! its clients join their pools.
//!
//! Deterministic for a seed whatever the thread count: all draws are keyed by
//! job id (or task and round), sums run in job or client order.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use crate::asynch::Delays;
use crate::rng::{Purpose, Rng};
use crate::sim::{model_hash, Workload};
use crate::strategy::{with_data, ClientConfig, Evaluation, FitIns, Model};
use crate::{Error, Result};

/// One task (model) trained by FedAST or Sync-ST.
#[derive(Clone)]
pub struct Task<'a> {
    /// What is trained (every task has the same number of clients).
    pub workload: &'a dyn Workload,
    /// What clients run for this task.
    pub client: ClientConfig,
    /// Compute delays of this task's jobs.
    pub delays: Delays,
    /// Initial in-flight target `R_m` (Sync-ST: clients per round).
    pub inflight: usize,
    /// Buffer size `b_m` (FedAST).
    pub buffer: usize,
    /// Server learning rate `η_g`.
    pub server_lr: f64,
    /// Target test accuracy (None: train for `max_updates`).
    pub target: Option<f64>,
    /// Update budget (the task finishes at this version).
    pub max_updates: u64,
}

/// Dynamic in-flight allocation (FedAST step 5).
#[derive(Clone, Debug, PartialEq)]
pub struct Dynamic {
    /// Window of deltas per task `W` (code: 8).
    pub window: usize,
    /// `R`-to-buffer ratio `r` (allocation unit; code's `R_bs_ratio`).
    pub ratio: usize,
}

impl Default for Dynamic {
    fn default() -> Self {
        Dynamic { window: 8, ratio: 4 }
    }
}

/// Run settings.
#[derive(Clone, Debug, PartialEq)]
pub struct FedAstConfig {
    /// Seed.
    pub seed: u64,
    /// New jobs per arrival at most (code: 2).
    pub launch_cap: usize,
    /// Simulated-time limit (the run stops at the first event past it).
    pub max_time: f64,
    /// Dynamic allocation (None: fixed `R_m`, `b_m`).
    pub dynamic: Option<Dynamic>,
}

impl Default for FedAstConfig {
    fn default() -> Self {
        FedAstConfig {
            seed: 0,
            launch_cap: 2,
            max_time: f64::INFINITY,
            dynamic: None,
        }
    }
}

/// One task's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct TaskReport {
    /// Updates done.
    pub updates: u64,
    /// Client jobs aggregated.
    pub jobs: u64,
    /// Simulated time the task finished (target or budget), if it did.
    pub finish_time: Option<f64>,
    /// Whether the target was reached.
    pub reached: bool,
    /// Final evaluation.
    pub final_eval: Evaluation,
    /// Mean staleness of the aggregated jobs.
    pub mean_staleness: f64,
    /// Final in-flight target.
    pub inflight: usize,
    /// Hash of the final model.
    pub model_hash: String,
    /// `(time, accuracy)` after every update.
    pub curve: Vec<(f64, f64)>,
}

/// A multi-task run's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct MultiReport {
    /// Simulated time of the last event processed.
    pub sim_time: f64,
    /// Time at which every task had finished (None if some did not).
    pub all_done: Option<f64>,
    /// Per task.
    pub tasks: Vec<TaskReport>,
    /// Reallocations of `R` done (dynamic mode).
    pub reallocations: u64,
}

fn validate(tasks: &[Task<'_>]) -> Result<usize> {
    let first = tasks
        .first()
        .ok_or_else(|| Error::Config("fedast: tasks must not be empty".into()))?;
    let n = first.workload.clients();
    for (m, t) in tasks.iter().enumerate() {
        let bad = |what: String| Err(Error::Config(format!("fedast task {m}: {what}")));
        if t.workload.clients() != n {
            return bad(format!("{} clients, task 0 has {n}", t.workload.clients()));
        }
        if t.inflight == 0 {
            return bad("inflight must be ≥ 1".into());
        }
        if t.buffer == 0 {
            return bad("buffer must be ≥ 1".into());
        }
        if !(t.server_lr > 0.0 && t.server_lr.is_finite()) {
            return bad(format!("server_lr must be > 0, got {}", t.server_lr));
        }
        if t.delays.speed.len() != n {
            return bad(format!(
                "delays.speed has {} entries for {n} clients",
                t.delays.speed.len()
            ));
        }
        let speeds_ok = t.delays.speed.iter().all(|s| *s > 0.0 && s.is_finite());
        if !(t.delays.shift >= 0.0 && t.delays.mean >= 0.0 && speeds_ok) {
            return bad("delays need shift, mean ≥ 0 and speeds > 0".into());
        }
        if let Some(a) = t.target {
            if !(0.0..=1.0).contains(&a) {
                return bad(format!("target must be in [0, 1], got {a}"));
            }
        }
        if t.max_updates == 0 {
            return bad("max_updates must be ≥ 1".into());
        }
    }
    Ok(n)
}

/// Gives `freed` in-flight slots to the unfinished tasks ∝ their `R`.
fn redistribute(r: &mut [usize], done: &[bool], freed: usize) {
    let total: usize = (0..r.len()).filter(|&m| !done[m]).map(|m| r[m]).sum();
    if total == 0 || freed == 0 {
        return;
    }
    let mut add = vec![0usize; r.len()];
    let mut frac = Vec::new();
    for m in (0..r.len()).filter(|&m| !done[m]) {
        let exact = freed as f64 * r[m] as f64 / total as f64;
        add[m] = exact.floor() as usize;
        frac.push((exact - exact.floor(), m));
    }
    frac.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut left = freed - add.iter().sum::<usize>();
    for &(_, m) in frac.iter().cycle() {
        if left == 0 {
            break;
        }
        add[m] += 1;
        left -= 1;
    }
    for m in 0..r.len() {
        r[m] += add[m];
    }
}

/// The code's allocation: each unfinished task gets `ratio`, the rest of
/// `total` in units of `ratio` to the largest `⌊total·a_m/Σa⌋ − given`.
pub fn allocate(a: &[f64], done: &[bool], total: usize, ratio: usize) -> Vec<usize> {
    let mut out: Vec<usize> = (0..a.len()).map(|m| if done[m] { 0 } else { ratio }).collect();
    let sum: f64 = (0..a.len()).filter(|&m| !done[m]).map(|m| a[m]).sum();
    let mut temp: Vec<f64> = (0..a.len())
        .map(|m| {
            if done[m] {
                f64::NEG_INFINITY
            } else if sum > 0.0 {
                (total as f64 * a[m] / sum).floor() - ratio as f64
            } else {
                -(ratio as f64)
            }
        })
        .collect();
    let mut left = total.saturating_sub(out.iter().sum());
    while left > 0 {
        let m = (0..a.len()).fold(0, |b, i| if temp[i] > temp[b] { i } else { b });
        if done[m] {
            break;
        }
        let step = ratio.min(left);
        out[m] += step;
        temp[m] -= ratio as f64;
        left -= step;
    }
    out
}

fn is_bias(name: &str) -> bool {
    name == "b" || name.contains("bias")
}

/// `s_m` of step 5 over a window of deltas (`[tensor][value]`).
pub fn update_variance(window: &VecDeque<Vec<Vec<f64>>>, names: &[String], eta_g: f64, eta_l: f64, steps: f64) -> f64 {
    let w = window.len() as f64;
    let (mut var, mut norm) = (0.0, 0.0);
    for (k, name) in names.iter().enumerate() {
        if is_bias(name) {
            continue;
        }
        let len = window[0][k].len();
        for i in 0..len {
            let mean = window.iter().map(|d| d[k][i]).sum::<f64>() / w;
            norm += mean * mean;
            var += window.iter().map(|d| (d[k][i] - mean).powi(2)).sum::<f64>();
        }
    }
    eta_g * var / (norm.max(1e-300) * w * eta_l * steps * steps)
}

struct Job {
    finish: f64,
    id: u64,
    task: usize,
    version: u64,
    delta: Vec<Vec<f64>>,
}

impl PartialEq for Job {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Job {}
impl PartialOrd for Job {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Job {
    fn cmp(&self, o: &Self) -> Ordering {
        o.finish.total_cmp(&self.finish).then(o.id.cmp(&self.id))
    }
}

fn delta_of(task: &Task<'_>, id: u64, client: usize, model: &Model, seed: u64) -> Result<Vec<Vec<f64>>> {
    let ins = FitIns {
        client,
        round: id + 1,
        config: task.client.clone(),
    };
    let r = task.workload.fit(&ins, model, seed)?;
    Ok(r.params
        .iter()
        .zip(model.iter())
        .map(|(p, g)| p.data.iter().zip(&g.data).map(|(a, b)| a - b).collect())
        .collect())
}

fn apply_mean(global: &Model, buf: &[Vec<Vec<f64>>], lr: f64) -> Result<Model> {
    let m = buf.len() as f64;
    let data = global
        .iter()
        .enumerate()
        .map(|(k, g)| {
            (0..g.data.len())
                .map(|i| {
                    let s: f64 = buf.iter().map(|d| d[k][i]).sum();
                    g.data[i] + lr * (s / m)
                })
                .collect()
        })
        .collect();
    with_data(global, data)
}

struct TaskState {
    model: Arc<Model>,
    version: u64,
    buffer: usize,
    buf: Vec<Vec<Vec<f64>>>,
    inflight: usize,
    done: bool,
    reached: bool,
    finish: Option<f64>,
    jobs: u64,
    stale: u64,
    curve: Vec<(f64, f64)>,
    window: VecDeque<Vec<Vec<f64>>>,
    samples: Vec<f64>,
}

impl TaskState {
    fn new(t: &Task<'_>) -> TaskState {
        TaskState {
            model: Arc::new(t.workload.init()),
            version: 0,
            buffer: t.buffer,
            buf: Vec::new(),
            inflight: 0,
            done: false,
            reached: false,
            finish: None,
            jobs: 0,
            stale: 0,
            curve: Vec::new(),
            window: VecDeque::new(),
            samples: Vec::new(),
        }
    }

    /// After an update: evaluates and checks the target and budget.
    fn after_update(&mut self, t: &Task<'_>, now: f64) -> bool {
        let acc = t.workload.evaluate(&self.model).accuracy;
        self.curve.push((now, acc));
        let hit = t.target.is_some_and(|a| acc >= a);
        if hit || self.version >= t.max_updates {
            self.done = true;
            self.reached = hit;
            self.finish = Some(now);
        }
        self.done
    }

    fn report(self, t: &Task<'_>, inflight: usize) -> TaskReport {
        TaskReport {
            updates: self.version,
            jobs: self.jobs,
            finish_time: self.finish,
            reached: self.reached,
            final_eval: t.workload.evaluate(&self.model),
            mean_staleness: self.stale as f64 / self.jobs.max(1) as f64,
            inflight,
            model_hash: format!("{:016x}", model_hash(&self.model)),
            curve: self.curve,
        }
    }
}

fn lr_of(c: &ClientConfig) -> f64 {
    c.hyper.get("lr").and_then(|v| v.as_f64()).unwrap_or(1.0)
}

/// Runs FedAST on `tasks`.
pub fn run_fedast(tasks: &[Task<'_>], cfg: &FedAstConfig) -> Result<MultiReport> {
    let n = validate(tasks)?;
    if cfg.launch_cap == 0 {
        return Err(Error::Config("fedast: launch_cap must be ≥ 1".into()));
    }
    if let Some(d) = &cfg.dynamic {
        if d.window < 2 || d.ratio == 0 {
            return Err(Error::Config(format!(
                "fedast: dynamic needs window ≥ 2 and ratio ≥ 1, got {}, {}",
                d.window, d.ratio
            )));
        }
    }
    let nt = tasks.len();
    let mut st: Vec<TaskState> = tasks.iter().map(TaskState::new).collect();
    let mut r: Vec<usize> = tasks.iter().map(|t| t.inflight).collect();
    let r_tot: usize = r.iter().sum();
    let names: Vec<Vec<String>> = st
        .iter()
        .map(|s| s.model.iter().map(|p| p.name.clone()).collect())
        .collect();
    let mut busy = vec![0.0f64; n];
    let mut heap = BinaryHeap::new();
    let mut next_id = 0u64;
    let plan = |task: usize, now: f64, busy: &mut [f64], id: u64| {
        let client = Rng::stream(cfg.seed, Purpose::Sampling, task as u64, id).below(n);
        let start = now.max(busy[client]);
        let finish = start + tasks[task].delays.draw(client, id, cfg.seed);
        busy[client] = finish;
        (id, client, finish)
    };
    let mut first = Vec::new();
    for (m, &rm) in r.iter().enumerate() {
        for _ in 0..rm {
            let (id, c, f) = plan(m, 0.0, &mut busy, next_id);
            next_id += 1;
            first.push((m, id, c, f));
        }
        st[m].inflight = rm;
    }
    let deltas: Vec<Result<Vec<Vec<f64>>>> = first
        .par_iter()
        .map(|&(m, id, c, _)| delta_of(&tasks[m], id, c, &st[m].model, cfg.seed))
        .collect();
    for ((task, id, _, finish), delta) in first.into_iter().zip(deltas) {
        heap.push(Job {
            finish,
            id,
            task,
            version: 0,
            delta: delta?,
        });
    }
    let (mut now, mut arrivals, mut reallocations) = (0.0f64, 0u64, 0u64);
    while st.iter().any(|s| !s.done) {
        let Some(job) = heap.pop() else {
            return Err(Error::Config("fedast: no jobs in flight".into()));
        };
        if job.finish > cfg.max_time {
            break;
        }
        let m = job.task;
        if st[m].done {
            continue; // cancelled with its task
        }
        now = job.finish;
        arrivals += 1;
        let s = &mut st[m];
        s.inflight -= 1;
        s.jobs += 1;
        s.stale += s.version - job.version;
        if let Some(d) = &cfg.dynamic {
            s.window.push_back(job.delta.clone());
            if s.window.len() > d.window {
                s.window.pop_front();
            }
            if s.window.len() == d.window {
                let t = &tasks[m];
                let steps = t.client.local_steps.max(1) as f64;
                s.samples.push(update_variance(
                    &s.window,
                    &names[m],
                    t.server_lr,
                    lr_of(&t.client),
                    steps,
                ));
            }
        }
        s.buf.push(job.delta);
        let mut finished = false;
        if s.buf.len() >= s.buffer {
            s.model = Arc::new(apply_mean(&s.model, &s.buf, tasks[m].server_lr)?);
            s.version += 1;
            s.buf.clear();
            finished = s.after_update(&tasks[m], now);
        }
        if finished {
            let freed = r[m];
            r[m] = 0;
            st[m].inflight = 0;
            let done: Vec<bool> = st.iter().map(|s| s.done).collect();
            redistribute(&mut r, &done, freed);
            continue;
        }
        if let Some(d) = &cfg.dynamic {
            let active: Vec<usize> = (0..nt).filter(|&i| !st[i].done).collect();
            let period = (r_tot * 3 / 4) as u64 * active.len() as u64;
            let ready = active
                .iter()
                .all(|&i| !st[i].samples.is_empty() && st[i].version > d.window as u64);
            if arrivals >= period.max(1) * (reallocations + 1) && ready {
                let a: Vec<f64> = (0..nt)
                    .map(|i| {
                        let s = &st[i].samples;
                        if st[i].done || s.is_empty() {
                            0.0
                        } else {
                            s.iter().sum::<f64>() / s.len() as f64
                        }
                    })
                    .collect();
                let done: Vec<bool> = st.iter().map(|s| s.done).collect();
                r = allocate(&a, &done, r_tot, d.ratio);
                reallocations += 1;
                st.iter_mut().for_each(|s| s.samples.clear());
            }
        }
        let in_total: usize = st.iter().map(|s| s.inflight).sum();
        let launch = r[m]
            .saturating_sub(st[m].inflight)
            .min(r_tot.saturating_sub(in_total))
            .min(cfg.launch_cap);
        for _ in 0..launch {
            let (id, client, finish) = plan(m, now, &mut busy, next_id);
            next_id += 1;
            let delta = delta_of(&tasks[m], id, client, &st[m].model, cfg.seed)?;
            heap.push(Job {
                finish,
                id,
                task: m,
                version: st[m].version,
                delta,
            });
            st[m].inflight += 1;
        }
        if let Some(d) = &cfg.dynamic {
            st[m].buffer = st[m].inflight.div_ceil(d.ratio).max(1);
        }
    }
    let all_done = st
        .iter()
        .all(|s| s.done)
        .then(|| st.iter().filter_map(|s| s.finish).fold(0.0, f64::max));
    Ok(MultiReport {
        sim_time: now,
        all_done,
        tasks: st
            .into_iter()
            .zip(tasks)
            .zip(&r)
            .map(|((s, t), &rm)| s.report(t, rm))
            .collect(),
        reallocations,
    })
}

/// Runs Sync-ST on `tasks` (`inflight` = clients per round; `buffer` unused).
pub fn run_sync_st(tasks: &[Task<'_>], cfg: &FedAstConfig) -> Result<MultiReport> {
    let n = validate(tasks)?;
    let nt = tasks.len();
    let mut r: Vec<usize> = tasks.iter().map(|t| t.inflight).collect();
    let r_tot: usize = r.iter().sum();
    if r_tot > n {
        return Err(Error::Config(format!(
            "sync-st: total concurrency {r_tot} exceeds {n} clients"
        )));
    }
    // Groups ∝ R_m (floors, the remainder to the last task).
    let mut order: Vec<usize> = (0..n).collect();
    Rng::stream(cfg.seed, Purpose::Task, 0, 0).shuffle(&mut order);
    let mut pools: Vec<Vec<usize>> = Vec::with_capacity(nt);
    let mut at = 0;
    for (m, &rm) in r.iter().enumerate() {
        let size = if m + 1 == nt { n - at } else { n * rm / r_tot };
        let mut g = order[at..at + size].to_vec();
        g.sort_unstable();
        pools.push(g);
        at += size;
    }
    let mut st: Vec<TaskState> = tasks.iter().map(TaskState::new).collect();
    let mut busy = vec![0.0f64; n];
    let mut clock = vec![0.0f64; nt];
    let mut round = vec![0u64; nt];
    let mut next_id = 0u64;
    let mut now = 0.0f64;
    while st.iter().any(|s| !s.done) {
        // The unfinished task whose round starts first (ties by index).
        let m = (0..nt)
            .filter(|&i| !st[i].done)
            .fold(None, |b: Option<usize>, i| match b {
                Some(j) if clock[j] <= clock[i] => Some(j),
                _ => Some(i),
            })
            .expect("an unfinished task");
        round[m] += 1;
        let k = r[m].min(pools[m].len());
        let pick = Rng::stream(cfg.seed, Purpose::Task, m as u64 + 1, round[m]).choose(pools[m].len(), k);
        let jobs: Vec<(u64, usize)> = pick
            .iter()
            .map(|&i| {
                let id = next_id;
                next_id += 1;
                (id, pools[m][i])
            })
            .collect();
        let mut end = clock[m];
        for &(id, c) in &jobs {
            let f = clock[m].max(busy[c]) + tasks[m].delays.draw(c, id, cfg.seed);
            busy[c] = f;
            end = end.max(f);
        }
        if end > cfg.max_time {
            break;
        }
        let model = st[m].model.clone();
        let deltas: Vec<Result<Vec<Vec<f64>>>> = jobs
            .par_iter()
            .map(|&(id, c)| delta_of(&tasks[m], id, c, &model, cfg.seed))
            .collect();
        let deltas: Vec<Vec<Vec<f64>>> = deltas.into_iter().collect::<Result<_>>()?;
        let s = &mut st[m];
        s.jobs += deltas.len() as u64;
        s.model = Arc::new(apply_mean(&model, &deltas, tasks[m].server_lr)?);
        s.version += 1;
        clock[m] = end;
        now = now.max(end);
        if s.after_update(&tasks[m], end) {
            let freed = r[m];
            r[m] = 0;
            let done: Vec<bool> = st.iter().map(|s| s.done).collect();
            redistribute(&mut r, &done, freed);
            // Its clients join the unfinished tasks' pools.
            let idle = std::mem::take(&mut pools[m]);
            for (i, p) in pools.iter_mut().enumerate() {
                if !done[i] {
                    p.extend(&idle);
                    p.sort_unstable();
                }
            }
        }
    }
    let all_done = st
        .iter()
        .all(|s| s.done)
        .then(|| st.iter().filter_map(|s| s.finish).fold(0.0, f64::max));
    Ok(MultiReport {
        sim_time: now,
        all_done,
        tasks: st
            .into_iter()
            .zip(tasks)
            .zip(&r)
            .map(|((s, t), &rm)| s.report(t, rm))
            .collect(),
        reallocations: 0,
    })
}
