//! `steepest bench --suite federated`: the federated section of the lab.
//!
//! Every strategy of the comparison list ([`strategies`]) runs on the same
//! logistic-regression federation (label-skewed clients, `k`-of-`N` uniform
//! participation) for the same rounds over several seeds; the robust
//! aggregators then run again with a fixed fifth of the clients poisoning
//! their results ([`attacks`]). The runner (this module) measures; the lab
//! renders the measurements (`steepest_lab::federated` writes
//! `federated.html` with the charts, next to `federated.json`).
//!
//! Measured per strategy: test accuracy and loss of the global model at every
//! evaluation (median over seeds), the final values per seed, and the
//! simulator's throughput (client updates per second, median over seeds).
//! New strategies join the suite by one line in [`strategies`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::algorithms;
use crate::attack::{malicious_set, Attack};
use crate::logreg::{LogReg, LogRegSpec};
use crate::participation::Participation;
use crate::partition::Partition;
use crate::sim::{SimConfig, SimReport};
use crate::strategy::{ClientConfig, Sampling};
use crate::{Error, Result};

/// What the federated suite runs.
#[derive(Clone, Debug, PartialEq)]
pub struct FedBenchConfig {
    /// Clients N.
    pub clients: usize,
    /// Training samples per client on average.
    pub samples_per_client: usize,
    /// Dirichlet concentration of the label skew.
    pub alpha: f64,
    /// Clients available (and sampled) per round, uniformly.
    pub per_round: usize,
    /// Rounds.
    pub rounds: u64,
    /// Seeds (each a different data draw, partition and sampling).
    pub seeds: u64,
    /// Fraction of poisoning clients in the robustness section.
    pub malicious: f64,
    /// Evaluate every this many rounds.
    pub eval_every: u64,
    /// Print one line per run to standard error.
    pub progress: bool,
}

impl Default for FedBenchConfig {
    fn default() -> Self {
        FedBenchConfig {
            clients: 500,
            samples_per_client: 50,
            alpha: 0.5,
            per_round: 50,
            rounds: 60,
            seeds: 3,
            malicious: 0.2,
            eval_every: 5,
            progress: true,
        }
    }
}

/// One configuration of the suite: `(label, registry name, options)`.
pub type Entry = (&'static str, &'static str, Vec<(&'static str, f64)>);

/// The comparison list: `(label, registry name, options)`. The client runs
/// 5 SGD steps (lr 0.1, batch 16) in every configuration.
pub fn strategies() -> Vec<Entry> {
    vec![
        ("fedavg", "fedavg", vec![]),
        ("fedprox μ=0.01", "fedprox", vec![("mu", 0.01)]),
        ("fedavgm β=0.9", "fedavgm", vec![("server_lr", 1.0), ("momentum", 0.9)]),
        ("fedadam η=0.1", "fedadam", vec![("server_lr", 0.1)]),
        ("fedyogi η=0.1", "fedyogi", vec![("server_lr", 0.1)]),
        ("fedadagrad η=0.1", "fedadagrad", vec![("server_lr", 0.1)]),
        ("fedau", "fedau", vec![]),
        ("ca-fed", "ca-fed", vec![]),
        ("fedspeed", "fedspeed", vec![]),
        ("fedhyper-g", "fedhyper-g", vec![]),
        ("fedhyper-gm", "fedhyper-gm", vec![]),
        ("fedhyper-full", "fedhyper-full", vec![]),
        ("mci random keep=0.5", "mci", vec![("keep", 0.5)]),
        ("ferret K=64", "ferret", vec![("k", 64.0), ("server_lr", 0.0)]),
        ("median", "median", vec![]),
        ("trimmed-mean β=0.2", "trimmed-mean", vec![("beta", 0.2)]),
        ("krum", "krum", vec![]),
        ("multi-krum m=10", "multi-krum", vec![("keep", 10.0)]),
    ]
}

/// The robustness section: these aggregators under each attack.
pub fn robust_strategies() -> Vec<Entry> {
    let keep = ["fedavg", "median", "trimmed-mean", "krum", "multi-krum"];
    strategies().into_iter().filter(|s| keep.contains(&s.1)).collect()
}

/// The attacks of the robustness section (see [`crate::attack`]).
pub fn attacks() -> Vec<(&'static str, Attack)> {
    vec![
        ("sign flip ×4", Attack::SignFlip { scale: 4.0 }),
        ("scaling ×100", Attack::Scale { scale: 100.0 }),
        ("gaussian σ=1", Attack::Gaussian { sigma: 1.0 }),
    ]
}

/// One configuration, aggregated over seeds.
#[derive(Clone, Debug, Serialize)]
pub struct FedSeries {
    /// Label.
    pub label: String,
    /// Registry name.
    pub strategy: String,
    /// Options (JSON object).
    pub opts: String,
    /// Attack label (`None` for a clean run).
    pub attack: Option<String>,
    /// Evaluation rounds (0 = the initial model).
    pub rounds: Vec<u64>,
    /// Test accuracy at each evaluation, median over seeds.
    pub accuracy: Vec<f64>,
    /// Test loss at each evaluation, median over seeds.
    pub loss: Vec<f64>,
    /// Final test accuracy per seed.
    pub final_accuracy: Vec<f64>,
    /// Final test loss per seed.
    pub final_loss: Vec<f64>,
    /// Values uploaded per client update (the model's parameter count
    /// unless the strategy compresses its uplink), median over seeds.
    pub uplink_per_update: f64,
    /// Client updates per second, median over seeds.
    pub updates_per_sec: f64,
    /// Wall seconds of all seeds.
    pub wall_seconds: f64,
}

impl FedSeries {
    /// Median final accuracy over seeds.
    pub fn median_accuracy(&self) -> f64 {
        median(&self.final_accuracy)
    }
    /// Median final loss over seeds.
    pub fn median_loss(&self) -> f64 {
        median(&self.final_loss)
    }
}

/// The suite's measurements.
#[derive(Clone, Debug, Serialize)]
pub struct FedBench {
    /// Clients.
    pub clients: usize,
    /// Samples per client.
    pub samples_per_client: usize,
    /// Dirichlet α.
    pub alpha: f64,
    /// Participants per round.
    pub per_round: usize,
    /// Rounds.
    pub rounds: u64,
    /// Seeds.
    pub seeds: u64,
    /// Model parameters.
    pub parameters: usize,
    /// Poisoning fraction.
    pub malicious: f64,
    /// Threads of the simulator's pool.
    pub threads: usize,
    /// Clean runs of every strategy.
    pub series: Vec<FedSeries>,
    /// Robust aggregators (and FedAvg) under each attack.
    pub attacked: Vec<FedSeries>,
    /// Wall seconds of the whole suite.
    pub wall_seconds: f64,
}

fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

fn check(cfg: &FedBenchConfig) -> Result<()> {
    let bad = |m: String| Err(Error::Config(m));
    if cfg.clients < 2 {
        return bad(format!("clients must be at least 2, got {}", cfg.clients));
    }
    if cfg.per_round == 0 || cfg.per_round > cfg.clients {
        return bad(format!(
            "per_round must be in 1..={}, got {}",
            cfg.clients, cfg.per_round
        ));
    }
    if cfg.rounds == 0 || cfg.seeds == 0 || cfg.samples_per_client == 0 || cfg.eval_every == 0 {
        return bad("rounds, seeds, samples_per_client and eval_every must be at least 1".into());
    }
    if !(cfg.alpha > 0.0 && cfg.alpha.is_finite()) {
        return bad(format!("alpha must be positive and finite, got {}", cfg.alpha));
    }
    if !(0.0..0.5).contains(&cfg.malicious) {
        return bad(format!("malicious must be in [0, 0.5), got {}", cfg.malicious));
    }
    Ok(())
}

fn workload(cfg: &FedBenchConfig, seed: u64) -> Result<LogReg> {
    LogReg::new(
        LogRegSpec {
            clients: cfg.clients,
            samples_per_client: cfg.samples_per_client,
            partition: Partition::Dirichlet { alpha: cfg.alpha },
            ..LogRegSpec::default()
        },
        seed,
    )
}

fn one_run(
    cfg: &FedBenchConfig,
    w: &LogReg,
    name: &str,
    opts: &[(&str, f64)],
    attack: Option<Attack>,
    seed: u64,
) -> Result<(SimReport, Option<u64>)> {
    let mut o: BTreeMap<String, f64> = opts.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    o.entry("clients".into()).or_insert(cfg.clients as f64);
    if name == "ferret" && o.get("server_lr") == Some(&0.0) {
        // Ferret's reconstruction is biased by a known constant (see ferret.rs);
        // the unbiased server rate is its inverse.
        let d = w.init().total_numel();
        o.insert("server_lr".into(), 1.0 / algorithms::ferret::reconstruction_scale(d));
    }
    let mut s = algorithms::build(name, Sampling::default(), ClientConfig::default(), &o)?;
    let sc = SimConfig {
        rounds: cfg.rounds,
        seed,
        eval_every: cfg.eval_every,
        threads: None,
        dropout: 0.0,
        attack: attack.map(|a| (a, malicious_set(cfg.clients, cfg.malicious, seed))),
    };
    let r = algorithms::simulate(name, &o, w, &mut s, &Participation::UniformK { k: cfg.per_round }, &sc)?;
    Ok((r, s.uplink_values()))
}

#[allow(clippy::too_many_arguments)]
fn series(
    cfg: &FedBenchConfig,
    data: &[LogReg],
    label: &str,
    name: &str,
    opts: &[(&str, f64)],
    attack: Option<(&str, Attack)>,
    done: &mut usize,
    total: usize,
) -> Result<FedSeries> {
    let t0 = Instant::now();
    let mut reports = Vec::new();
    let mut uplink = Vec::new();
    for (seed, w) in data.iter().enumerate() {
        let (r, up) = one_run(cfg, w, name, opts, attack.map(|a| a.1), seed as u64)?;
        let params = w.init().total_numel() as f64;
        uplink.push(up.map_or(params, |v| v as f64 / r.client_updates.max(1) as f64));
        *done += 1;
        if cfg.progress {
            eprintln!(
                "[{done:>3}/{total}] {label:<22} {:<14} seed {seed}: accuracy {:.4} loss {:.4} ({:.0} updates/s)",
                attack.map_or("clean", |a| a.0),
                r.final_eval.accuracy,
                r.final_eval.loss,
                r.updates_per_sec
            );
        }
        reports.push((w.evaluate(&w.init()), r));
    }
    let mut rounds = vec![0u64];
    rounds.extend(reports[0].1.rounds.iter().filter(|r| r.eval.is_some()).map(|r| r.round));
    // per seed: accuracy and loss at every evaluation, the initial model's first
    let mut acc: Vec<Vec<f64>> = Vec::new();
    let mut loss: Vec<Vec<f64>> = Vec::new();
    for (init, r) in &reports {
        let evals: Vec<_> = r.rounds.iter().filter_map(|x| x.eval).collect();
        acc.push(
            std::iter::once(init.accuracy)
                .chain(evals.iter().map(|e| e.accuracy))
                .collect(),
        );
        loss.push(std::iter::once(init.loss).chain(evals.iter().map(|e| e.loss)).collect());
    }
    let at = |curves: &[Vec<f64>], i: usize| median(&curves.iter().map(|c| c[i]).collect::<Vec<_>>());
    let o: BTreeMap<&str, f64> = opts.iter().copied().collect();
    Ok(FedSeries {
        label: label.to_string(),
        strategy: name.to_string(),
        opts: serde_json::to_string(&o).map_err(|e| Error::Io(e.to_string()))?,
        attack: attack.map(|a| a.0.to_string()),
        accuracy: (0..rounds.len()).map(|i| at(&acc, i)).collect(),
        loss: (0..rounds.len()).map(|i| at(&loss, i)).collect(),
        rounds,
        final_accuracy: reports.iter().map(|r| r.1.final_eval.accuracy).collect(),
        final_loss: reports.iter().map(|r| r.1.final_eval.loss).collect(),
        uplink_per_update: median(&uplink),
        updates_per_sec: median(&reports.iter().map(|r| r.1.updates_per_sec).collect::<Vec<_>>()),
        wall_seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Runs the suite.
pub fn run(cfg: &FedBenchConfig) -> Result<FedBench> {
    check(cfg)?;
    let started = Instant::now();
    let data: Vec<LogReg> = (0..cfg.seeds).map(|s| workload(cfg, s)).collect::<Result<_>>()?;
    let list = strategies();
    let robust = robust_strategies();
    let atts = attacks();
    let total = (list.len() + robust.len() * atts.len()) * cfg.seeds as usize;
    let mut done = 0;
    let mut out = Vec::new();
    for (label, name, opts) in &list {
        out.push(series(cfg, &data, label, name, opts, None, &mut done, total)?);
    }
    let mut attacked = Vec::new();
    for a in &atts {
        for (label, name, opts) in &robust {
            attacked.push(series(cfg, &data, label, name, opts, Some(*a), &mut done, total)?);
        }
    }
    Ok(FedBench {
        clients: cfg.clients,
        samples_per_client: cfg.samples_per_client,
        alpha: cfg.alpha,
        per_round: cfg.per_round,
        rounds: cfg.rounds,
        seeds: cfg.seeds,
        parameters: data[0].init().total_numel(),
        malicious: cfg.malicious,
        threads: rayon::current_num_threads(),
        series: out,
        attacked,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The robustness table: one row per aggregator, its clean median final
/// accuracy, then one column per attack.
pub fn robustness_table(b: &FedBench) -> Vec<(String, f64, Vec<f64>)> {
    let atts: Vec<String> = attacks().iter().map(|a| a.0.to_string()).collect();
    robust_strategies()
        .iter()
        .map(|(label, _, _)| {
            let clean = b
                .series
                .iter()
                .find(|s| s.label == *label)
                .map_or(f64::NAN, FedSeries::median_accuracy);
            let cells = atts
                .iter()
                .map(|a| {
                    b.attacked
                        .iter()
                        .find(|s| s.label == *label && s.attack.as_deref() == Some(a))
                        .map_or(f64::NAN, FedSeries::median_accuracy)
                })
                .collect();
            (label.to_string(), clean, cells)
        })
        .collect()
}

/// The terminal summary.
pub fn summary(b: &FedBench) -> String {
    let mut out = format!(
        "federated suite: logistic regression ({} parameters), {} clients (Dirichlet α = {}), {} per round, {} rounds, {} seeds\n\
         {:<24} {:>10} {:>10} {:>12} {:>14}\n",
        b.parameters,
        b.clients,
        b.alpha,
        b.per_round,
        b.rounds,
        b.seeds,
        "strategy",
        "accuracy",
        "loss",
        "uplink/upd",
        "updates/s"
    );
    for s in &b.series {
        let _ = writeln!(
            out,
            "{:<24} {:>10.4} {:>10.4} {:>12.1} {:>14.0}",
            s.label,
            s.median_accuracy(),
            s.median_loss(),
            s.uplink_per_update,
            s.updates_per_sec
        );
    }
    let _ = write!(
        out,
        "\nrobustness: final accuracy with {:.0}% poisoning clients\n{:<24} {:>10}",
        100.0 * b.malicious,
        "aggregator",
        "clean"
    );
    for (a, _) in attacks() {
        let _ = write!(out, " {a:>14}");
    }
    out.push('\n');
    for (label, clean, cells) in robustness_table(b) {
        let _ = write!(out, "{label:<24} {clean:>10.4}");
        for c in cells {
            let _ = write!(out, " {c:>14.4}");
        }
        out.push('\n');
    }
    out
}

/// Writes `federated.json` into `dir`; returns its path.
pub fn write_json(b: &FedBench, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
    let path = dir.join("federated.json");
    let text = serde_json::to_string_pretty(b).map_err(|e| Error::Io(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> FedBenchConfig {
        FedBenchConfig {
            clients: 40,
            samples_per_client: 30,
            per_round: 10,
            rounds: 6,
            seeds: 2,
            eval_every: 2,
            progress: false,
            ..FedBenchConfig::default()
        }
    }

    #[test]
    fn the_suite_measures_every_strategy_and_attack() {
        let cfg = small();
        let b = run(&cfg).unwrap();
        assert_eq!(b.series.len(), strategies().len());
        assert_eq!(b.attacked.len(), robust_strategies().len() * attacks().len());
        for s in b.series.iter().chain(&b.attacked) {
            assert_eq!(s.rounds, vec![0, 2, 4, 6], "{}", s.label);
            assert_eq!(s.final_accuracy.len(), 2);
            assert!(s.accuracy.iter().all(|a| (0.0..=1.0).contains(a)), "{}", s.label);
            assert!(s.updates_per_sec > 0.0);
            // the last evaluation is the final model's
            assert_eq!(*s.accuracy.last().unwrap(), s.median_accuracy(), "{}", s.label);
        }
        // clean FedAvg learns: above the 10% of a 10-class guess
        let avg = &b.series[0];
        assert!(avg.median_accuracy() > 0.3, "{}", avg.median_accuracy());
        assert!(avg.loss.last().unwrap() < &avg.loss[0]);
        assert_eq!(avg.uplink_per_update, 210.0);
        let fer = b.series.iter().find(|s| s.strategy == "ferret").unwrap();
        assert!(
            fer.uplink_per_update < 210.0 && fer.uplink_per_update >= 2.0,
            "{}",
            fer.uplink_per_update
        );
        let table = robustness_table(&b);
        assert_eq!(table.len(), robust_strategies().len());
        assert!(table.iter().all(|r| r.2.iter().all(|c| c.is_finite())));
        let text = summary(&b);
        assert!(text.contains("fedavg") && text.contains("sign flip"));
        let dir = std::env::temp_dir().join(format!("steepest-fed-bench-{}", std::process::id()));
        let p = write_json(&b, &dir).unwrap();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        assert_eq!(v["series"].as_array().unwrap().len(), b.series.len());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_same_seeds_give_the_same_numbers() {
        let mut cfg = small();
        cfg.seeds = 1;
        cfg.rounds = 3;
        let a = run(&cfg).unwrap();
        let b = run(&cfg).unwrap();
        for (x, y) in a.series.iter().zip(&b.series) {
            assert_eq!(x.final_loss, y.final_loss, "{}", x.label);
        }
    }

    #[test]
    fn bad_settings_are_errors() {
        for f in [
            |c: &mut FedBenchConfig| c.clients = 1,
            |c: &mut FedBenchConfig| c.per_round = 0,
            |c: &mut FedBenchConfig| c.per_round = 1000,
            |c: &mut FedBenchConfig| c.rounds = 0,
            |c: &mut FedBenchConfig| c.seeds = 0,
            |c: &mut FedBenchConfig| c.alpha = -1.0,
            |c: &mut FedBenchConfig| c.malicious = 0.5,
            |c: &mut FedBenchConfig| c.eval_every = 0,
        ] {
            let mut c = small();
            f(&mut c);
            assert!(matches!(run(&c), Err(Error::Config(_))));
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
