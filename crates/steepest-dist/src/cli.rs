//! `steepest dist ...`: the command line of the distributed crate (the CLI
//! binary only forwards to [`run`]).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::collective::Link;
use crate::error::{Error, Result};
use crate::inproc::Faults;
use crate::registry;
use crate::train::{loss_of_mean, train_inproc, RankReport, TrainSpec};

/// Distributed training.
#[derive(Subcommand, Debug)]
pub enum DistCmd {
    /// Train a lab workload with a distributed algorithm; prints the loss curve and per-rank bytes.
    Train(Box<TrainArgs>),
    /// Bytes per worker per step of every algorithm against DDP on one workload (in-process).
    Bytes(BytesArgs),
    /// The distributed algorithms.
    List,
}

/// Where the ranks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Threads in this process.
    Inproc,
    /// One process per rank under `mpirun` (build with `--features mpi`).
    Mpi,
}

/// `steepest dist train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Algorithm (see `steepest dist list`).
    #[arg(long)]
    pub algo: String,
    /// Hyperparameters as a JSON object, e.g. '{"h": 20, "inner": "adam", "inner_hyper": {"lr": 0.01}}'.
    #[arg(long, default_value = "{}")]
    pub hyper: String,
    /// Number of workers (in-process); under MPI the number of ranks (must match `-np` if given).
    #[arg(long)]
    pub workers: Option<usize>,
    /// inproc or mpi.
    #[arg(long, value_enum, default_value = "inproc")]
    pub backend: Backend,
    /// Lab problem workload (e.g. softmax-digits, logreg-breast-cancer, least-squares, noisy-quadratic).
    #[arg(long, default_value = "softmax-digits")]
    pub workload: String,
    /// Local steps per worker.
    #[arg(long, default_value_t = 200)]
    pub steps: u64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Evaluate the model every this many steps.
    #[arg(long, default_value_t = 20)]
    pub eval_every: u64,
    /// Link bandwidth in Gbit/s for the simulated time (with --latency-ms).
    #[arg(long)]
    pub link_gbps: Option<f64>,
    /// Link latency in milliseconds per operation.
    #[arg(long)]
    pub latency_ms: Option<f64>,
    /// Kill a rank at a step: RANK:STEP (in-process only).
    #[arg(long)]
    pub kill: Option<String>,
    /// Corrupt the M-th message sent by a rank: RANK:M (in-process only; repeatable).
    #[arg(long)]
    pub corrupt: Vec<String>,
    /// Delay every send of a rank: RANK:MILLISECONDS (in-process only).
    #[arg(long)]
    pub delay: Option<String>,
    /// Save checkpoints of the committed state here.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Checkpoint every this many steps.
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: u64,
    /// Resume from the last complete checkpoint in this directory.
    #[arg(long)]
    pub resume: Option<PathBuf>,
}

/// `steepest dist bytes`.
#[derive(Args, Debug)]
pub struct BytesArgs {
    /// Workers.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Lab problem workload.
    #[arg(long, default_value = "softmax-digits")]
    pub workload: String,
    /// Local steps.
    #[arg(long, default_value_t = 100)]
    pub steps: u64,
    /// Inner steps per round for the local-update methods.
    #[arg(long, default_value_t = 10)]
    pub h: u64,
}

fn pair(s: &str, what: &str) -> Result<(usize, u64)> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| Error::config(what, format!("expected RANK:N, got {s:?}")))?;
    let a = a
        .trim()
        .parse()
        .map_err(|_| Error::config(what, format!("bad rank in {s:?}")))?;
    let b = b
        .trim()
        .parse()
        .map_err(|_| Error::config(what, format!("bad number in {s:?}")))?;
    Ok((a, b))
}

fn link(a: &TrainArgs) -> Option<Link> {
    match (a.link_gbps, a.latency_ms) {
        (None, None) => None,
        (g, l) => Some(Link {
            gbps: g.unwrap_or(f64::INFINITY),
            latency_s: l.unwrap_or(0.0) / 1e3,
        }),
    }
}

fn spec_of(a: &TrainArgs) -> Result<TrainSpec> {
    let mut s = TrainSpec::new(&a.algo, registry::parse_hyper(&a.hyper)?, &a.workload);
    s.steps = a.steps;
    s.seed = a.seed;
    s.eval_every = a.eval_every;
    s.kill = a.kill.as_deref().map(|k| pair(k, "kill")).transpose()?;
    if let Some(d) = &a.checkpoint {
        if a.checkpoint_every == 0 {
            return Err(Error::config("checkpoint-every", "give how often to checkpoint (> 0)"));
        }
        s.checkpoint = Some((d.clone(), a.checkpoint_every));
    }
    s.resume = a.resume.clone();
    Ok(s)
}

/// The printed summary of a run.
pub fn summary(spec: &TrainSpec, reports: &[Result<RankReport>]) -> String {
    let mut out = String::new();
    let ok: Vec<&RankReport> = reports.iter().filter_map(|r| r.as_ref().ok()).collect();
    if let Some(r0) = ok.first() {
        out.push_str(&format!(
            "loss curve (rank {} model, full {} loss):\n",
            r0.world_rank, spec.workload
        ));
        for (t, l) in &r0.curve {
            out.push_str(&format!("  step {t:>6}  loss {l:.6}\n"));
        }
    }
    out.push_str("rank  steps  final-loss     bytes-sent     bytes-recv  sent/step  messages  retries  sim-comm-s\n");
    for (i, r) in reports.iter().enumerate() {
        match r {
            Ok(r) => out.push_str(&format!(
                "{:>4}  {:>5}  {:<12.6}  {:>12}  {:>12}  {:>9.0}  {:>8}  {:>7}  {:>10.4}\n",
                r.world_rank,
                r.steps,
                r.final_loss,
                r.traffic.bytes_sent,
                r.traffic.bytes_recv,
                r.traffic.bytes_sent as f64 / r.steps.max(1) as f64,
                r.traffic.messages,
                r.traffic.retries,
                r.traffic.sim_seconds
            )),
            Err(e) => out.push_str(&format!("{i:>4}  stopped: {e}\n")),
        }
    }
    if let Ok(l) = loss_of_mean(spec, &ok) {
        out.push_str(&format!("loss of the mean of the surviving models: {l:.6}\n"));
    }
    out
}

/// Runs a `dist` subcommand, printing to stdout.
pub fn run(cmd: DistCmd) -> std::result::Result<(), String> {
    run_inner(cmd).map_err(|e| e.to_string())
}

fn run_inner(cmd: DistCmd) -> Result<()> {
    match cmd {
        DistCmd::List => {
            for e in registry::registry() {
                println!("{:<12} {}\n{:<12} paper: {}", e.name, e.summary, "", e.paper);
            }
            Ok(())
        }
        DistCmd::Train(a) => {
            let spec = spec_of(&a)?;
            match a.backend {
                Backend::Inproc => {
                    let mut faults = Faults::default();
                    for c in &a.corrupt {
                        faults.corrupt.push(pair(c, "corrupt")?);
                    }
                    if let Some(d) = &a.delay {
                        let (r, ms) = pair(d, "delay")?;
                        faults.delay = Some((r, Duration::from_millis(ms)));
                    }
                    let n = a.workers.unwrap_or(4);
                    println!(
                        "steepest dist train: {} on {} with {n} in-process workers, {} steps",
                        spec.algo, spec.workload, spec.steps
                    );
                    let reports = train_inproc(&spec, n, link(&a), faults)?;
                    print!("{}", summary(&spec, &reports));
                    if reports.iter().all(|r| r.is_err()) {
                        if let Some(Err(e)) = reports.into_iter().next() {
                            return Err(e);
                        }
                    }
                    Ok(())
                }
                Backend::Mpi => run_mpi(&a, &spec),
            }
        }
        DistCmd::Bytes(b) => {
            print!("{}", bytes_table(&b.workload, b.workers, b.steps, b.h)?);
            Ok(())
        }
    }
}

#[cfg(feature = "mpi")]
fn run_mpi(a: &TrainArgs, spec: &TrainSpec) -> Result<()> {
    if a.kill.is_some() || !a.corrupt.is_empty() || a.delay.is_some() {
        return Err(Error::config(
            "backend",
            "fault injection runs on the in-process backend only",
        ));
    }
    crate::mpi_backend::train_mpi(spec, a.workers, link(a))
}

#[cfg(not(feature = "mpi"))]
fn run_mpi(_: &TrainArgs, _: &TrainSpec) -> Result<()> {
    Err(Error::config(
        "backend",
        "this binary was built without MPI: build with `cargo build --release -p steepest-cli --features mpi` \
         (needs Open MPI: apt-get install openmpi-bin libopenmpi-dev libclang-dev)",
    ))
}

/// The configurations compared in the bytes table (name, algorithm, hyperparameters).
pub fn bytes_configs(h: u64) -> Vec<(String, &'static str, String)> {
    vec![
        (
            "ddp (adam)".into(),
            "ddp",
            r#"{"optimizer": "adam", "optimizer_hyper": {"lr": 0.01}}"#.into(),
        ),
        (
            format!("diloco H={h}"),
            "diloco",
            format!(r#"{{"h": {h}, "inner": "adam", "inner_hyper": {{"lr": 0.01}}}}"#),
        ),
        (
            format!("noloco H={h} (pseudo-gradient)"),
            "noloco",
            format!(r#"{{"h": {h}, "inner": "adam", "inner_hyper": {{"lr": 0.01}}}}"#),
        ),
        (
            format!("noloco H={h} (fast-weights)"),
            "noloco",
            format!(r#"{{"h": {h}, "exchange": "fast-weights", "inner": "adam", "inner_hyper": {{"lr": 0.01}}}}"#),
        ),
        (
            "dist-lion mavo".into(),
            "dist-lion",
            r#"{"lr": 0.003, "vote": "mavo"}"#.into(),
        ),
        (
            "dist-lion avg".into(),
            "dist-lion",
            r#"{"lr": 0.003, "vote": "avg"}"#.into(),
        ),
        (
            "onebit-adam (warm-up 15%)".into(),
            "onebit-adam",
            r#"{"lr": 0.003, "freeze_step": FREEZE}"#.into(),
        ),
        (
            // max_batch caps the growing batch (a compute limit, not the paper's): uncapped, the
            // norm test grew it until one 600-step run took ~10 minutes.
            format!("adloco H={h} (2 trainers, b ≤ 8)"),
            "adloco",
            format!(r#"{{"h": {h}, "trainers": 2, "max_batch": 8, "inner": "adam", "inner_hyper": {{"lr": 0.01}}}}"#),
        ),
        (
            format!("adloco H={h} (1 trainer, fixed batch)"),
            "adloco",
            format!(r#"{{"h": {h}, "trainers": 1, "test": "none", "inner": "adam", "inner_hyper": {{"lr": 0.01}}}}"#),
        ),
        (
            "qsdp W8G8 (adam)".into(),
            "qsdp",
            r#"{"optimizer": "adam", "optimizer_hyper": {"lr": 0.01}}"#.into(),
        ),
        (
            format!("semi-dec ring S2S K=2 H={h} (adam)"),
            "semi-dec",
            format!(r#"{{"h": {h}, "k": 2, "mode": "s2s", "optimizer": "adam", "optimizer_hyper": {{"lr": 0.01}}}}"#),
        ),
        (
            format!("semi-dec ring S2A K=2 H={h} (adam)"),
            "semi-dec",
            format!(r#"{{"h": {h}, "k": 2, "mode": "s2a", "optimizer": "adam", "optimizer_hyper": {{"lr": 0.01}}}}"#),
        ),
    ]
}

/// The bytes table: mean bytes sent per worker per step, the ratio to DDP, and the final loss.
pub fn bytes_table(workload: &str, workers: usize, steps: u64, h: u64) -> Result<String> {
    let mut rows = Vec::new();
    for (label, algo, hy) in bytes_configs(h) {
        let hy = hy.replace("FREEZE", &(steps * 15 / 100).max(1).to_string());
        let mut spec = TrainSpec::new(algo, registry::parse_hyper(&hy)?, workload);
        spec.steps = steps;
        spec.eval_every = 0;
        let reports = train_inproc(&spec, workers, None, Faults::default())?;
        let ok: Vec<RankReport> = reports.into_iter().collect::<Result<_>>()?;
        let per_step = ok.iter().map(|r| r.traffic.bytes_sent as f64).sum::<f64>() / (ok.len() as f64 * steps as f64);
        let refs: Vec<&RankReport> = ok.iter().collect();
        rows.push((label, per_step, loss_of_mean(&spec, &refs)?));
    }
    let ddp = rows[0].1;
    let d = crate::train::workload(workload)?.init(0).total_numel();
    let mut out = format!(
        "{workload}: d = {d} parameters (f64), {workers} workers, {steps} steps; bytes sent per worker per step\n\
         | algorithm | bytes/worker/step | vs DDP | final loss (mean model) |\n|---|---:|---:|---:|\n"
    );
    for (label, b, l) in rows {
        out.push_str(&format!("| {label} | {b:.1} | {:.4} | {l:.6} |\n", b / ddp));
    }
    Ok(out)
}
