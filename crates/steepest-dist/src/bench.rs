//! `steepest bench --suite distributed`: every distributed algorithm of the
//! comparison list ([`crate::cli::bytes_configs`]) trained on one lab workload
//! by the same number of in-process workers, for the same number of local
//! steps, over several seeds; the report (`distributed.html`, with its data in
//! `distributed.json`) shows the loss against steps, against bytes sent per
//! worker, and against simulated wall time, and a table of bytes per worker
//! per step against DDP's.
//!
//! Simulated time: every local step costs `compute_ms` of computation, and
//! every communication costs what the link model charges it (latency plus
//! bytes over bandwidth, [`Link`]); a synchronous algorithm waits for its
//! slowest rank, so a seed's time at an evaluation is the largest over ranks.
//! The link and compute numbers are settings, stated in the report, not
//! measurements of this machine: they turn bytes and message counts into the
//! time a slow inter-cluster link would make of them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use steepest_lab::plot::{svg, Chart, Line};

use crate::collective::Link;
use crate::error::{Error, Result};
use crate::inproc::Faults;
use crate::registry;
use crate::train::{loss_of_mean, train_inproc, RankReport, TrainSpec};

/// What the distributed suite runs.
#[derive(Clone, Debug)]
pub struct DistBenchConfig {
    /// Lab problem workload.
    pub workload: String,
    /// In-process workers.
    pub workers: usize,
    /// Local steps per worker.
    pub steps: u64,
    /// Inner steps per round for the local-update methods.
    pub h: u64,
    /// Seeds (each a different initial point and data streams).
    pub seeds: u64,
    /// Link model for the simulated time.
    pub link: Link,
    /// Simulated computation per local step, in milliseconds.
    pub compute_ms: f64,
    /// Print one line per run to standard error.
    pub progress: bool,
}

impl Default for DistBenchConfig {
    fn default() -> Self {
        DistBenchConfig {
            workload: "softmax-digits".into(),
            workers: 4,
            // 60 rounds of H = 10: DiLoCo's outer momentum needs tens of rounds (tests/claims.rs)
            steps: 600,
            h: 10,
            seeds: 3,
            link: Link {
                gbps: 0.1,
                latency_s: 0.005,
            },
            compute_ms: 2.0,
            progress: true,
        }
    }
}

/// One algorithm configuration, aggregated over seeds.
#[derive(Clone, Debug, Serialize)]
pub struct DistSeries {
    /// Label (algorithm and its distinguishing settings).
    pub label: String,
    /// Registry name.
    pub algo: String,
    /// Hyperparameters (JSON).
    pub hyper: String,
    /// Evaluation steps.
    pub steps: Vec<u64>,
    /// Mean over seeds of the mean over ranks of each rank's model loss, at `steps`.
    pub loss: Vec<f64>,
    /// Mean over seeds and ranks of the bytes sent so far per worker, at `steps`.
    pub bytes: Vec<f64>,
    /// Mean over seeds of the simulated time so far (seconds), at `steps`.
    pub seconds: Vec<f64>,
    /// Loss of the mean model at the end, per seed.
    pub final_loss: Vec<f64>,
    /// Bytes sent per worker per local step (mean over seeds and ranks).
    pub bytes_per_step: f64,
    /// `bytes_per_step` over DDP's (the first configuration).
    pub vs_ddp: f64,
    /// Wall-clock seconds of all its runs on this machine.
    pub wall_seconds: f64,
}

impl DistSeries {
    /// Median of the per-seed final losses.
    pub fn median_final(&self) -> f64 {
        let mut v = self.final_loss.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
        }
    }
}

/// Everything the suite measured.
#[derive(Clone, Debug, Serialize)]
pub struct DistBench {
    /// Workload.
    pub workload: String,
    /// Parameters of the workload's model.
    pub parameters: usize,
    /// Workers.
    pub workers: usize,
    /// Local steps.
    pub steps: u64,
    /// Inner steps per round.
    pub h: u64,
    /// Seeds.
    pub seeds: u64,
    /// Link bandwidth (Gbit/s) of the simulated time.
    pub link_gbps: f64,
    /// Link latency (ms).
    pub latency_ms: f64,
    /// Simulated computation per step (ms).
    pub compute_ms: f64,
    /// One series per configuration, DDP first.
    pub series: Vec<DistSeries>,
    /// Wall-clock seconds of the whole suite.
    pub wall_seconds: f64,
}

fn check(cfg: &DistBenchConfig) -> Result<()> {
    if cfg.workers < 2 {
        return Err(Error::config(
            "workers",
            "the distributed suite needs at least 2 workers",
        ));
    }
    if cfg.steps == 0 {
        return Err(Error::config("steps", "must be at least 1"));
    }
    if cfg.h == 0 {
        return Err(Error::config("h", "must be at least 1"));
    }
    if cfg.seeds == 0 {
        return Err(Error::config("seeds", "must be at least 1"));
    }
    if !(cfg.compute_ms >= 0.0 && cfg.compute_ms.is_finite()) {
        return Err(Error::config(
            "compute-ms",
            format!("must be >= 0, got {}", cfg.compute_ms),
        ));
    }
    Ok(())
}

/// Runs the suite.
pub fn run(cfg: &DistBenchConfig) -> Result<DistBench> {
    check(cfg)?;
    let started = Instant::now();
    let configs = crate::cli::bytes_configs(cfg.h);
    let eval_every = (cfg.steps / 20).max(1);
    let total = configs.len() as u64 * cfg.seeds;
    let mut done = 0;
    let mut series = Vec::new();
    for (label, algo, hy) in configs {
        let hy = hy.replace("FREEZE", &(cfg.steps * 15 / 100).max(1).to_string());
        let hyper = registry::parse_hyper(&hy)?;
        let t0 = Instant::now();
        let mut runs: Vec<Vec<RankReport>> = Vec::new();
        let mut finals = Vec::new();
        for seed in 0..cfg.seeds {
            let mut spec = TrainSpec::new(algo, hyper.clone(), &cfg.workload);
            spec.steps = cfg.steps;
            spec.seed = seed;
            spec.eval_every = eval_every;
            let reps: Vec<RankReport> = train_inproc(&spec, cfg.workers, Some(cfg.link), Faults::default())?
                .into_iter()
                .collect::<Result<_>>()?;
            let refs: Vec<&RankReport> = reps.iter().collect();
            finals.push(loss_of_mean(&spec, &refs)?);
            runs.push(reps);
            done += 1;
            if cfg.progress {
                eprintln!(
                    "[{done:>3}/{total}] {label:<34} seed {seed}: final loss {:.5} ({:.1} s)",
                    finals.last().copied().unwrap_or(f64::NAN),
                    t0.elapsed().as_secs_f64()
                );
            }
        }
        series.push(aggregate(
            label,
            algo,
            &hy,
            &runs,
            finals,
            cfg,
            t0.elapsed().as_secs_f64(),
        )?);
    }
    let ddp = series.first().map(|s| s.bytes_per_step).unwrap_or(f64::NAN);
    for s in &mut series {
        s.vs_ddp = s.bytes_per_step / ddp;
    }
    Ok(DistBench {
        workload: cfg.workload.clone(),
        parameters: crate::train::workload(&cfg.workload)?.init(0).total_numel(),
        workers: cfg.workers,
        steps: cfg.steps,
        h: cfg.h,
        seeds: cfg.seeds,
        link_gbps: cfg.link.gbps,
        latency_ms: cfg.link.latency_s * 1e3,
        compute_ms: cfg.compute_ms,
        series,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

fn aggregate(
    label: String,
    algo: &str,
    hyper: &str,
    runs: &[Vec<RankReport>],
    final_loss: Vec<f64>,
    cfg: &DistBenchConfig,
    wall: f64,
) -> Result<DistSeries> {
    let first = runs
        .first()
        .and_then(|r| r.first())
        .ok_or_else(|| Error::Lab(format!("{label}: no run")))?;
    let steps: Vec<u64> = first.curve.iter().map(|c| c.0).collect();
    let k = steps.len();
    let mut loss = vec![0.0; k];
    let mut bytes = vec![0.0; k];
    let mut seconds = vec![0.0; k];
    for reps in runs {
        for rep in reps {
            if rep.curve.len() != k || rep.comm_curve.len() != k {
                return Err(Error::Lab(format!(
                    "{label}: rank {} evaluated {} times, rank 0 {k}",
                    rep.world_rank,
                    rep.curve.len()
                )));
            }
        }
        let n = reps.len() as f64;
        for i in 0..k {
            loss[i] += reps.iter().map(|r| r.curve[i].1).sum::<f64>() / n;
            bytes[i] += reps.iter().map(|r| r.comm_curve[i].0 as f64).sum::<f64>() / n;
            let comm = reps.iter().map(|r| r.comm_curve[i].1).fold(0.0, f64::max);
            seconds[i] += steps[i] as f64 * cfg.compute_ms * 1e-3 + comm;
        }
    }
    let s = runs.len() as f64;
    for v in [&mut loss, &mut bytes, &mut seconds] {
        for x in v.iter_mut() {
            *x /= s;
        }
    }
    let bytes_per_step = bytes.last().copied().unwrap_or(0.0) / cfg.steps as f64;
    Ok(DistSeries {
        label,
        algo: algo.to_string(),
        hyper: hyper.to_string(),
        steps,
        loss,
        bytes,
        seconds,
        final_loss,
        bytes_per_step,
        vs_ddp: f64::NAN,
        wall_seconds: wall,
    })
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn chart(b: &DistBench, title: &str, x_label: &str, log_x: bool, x: impl Fn(&DistSeries, usize) -> f64) -> String {
    let lines = b
        .series
        .iter()
        .map(|s| {
            let pts = (0..s.steps.len())
                .map(|i| (x(s, i), s.loss[i]))
                .filter(|p| !log_x || p.0 > 0.0)
                .collect();
            let mut l = Line::new(s.label.clone(), pts);
            l.dashed = s.algo == "ddp";
            l
        })
        .collect();
    svg(
        &Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: format!("{} loss (mean over workers)", b.workload),
            log_x,
            log_y: true,
            lines,
            hlines: Vec::new(),
        },
        760,
        360,
    )
}

/// The terminal summary: the bytes table.
pub fn summary(b: &DistBench) -> String {
    let mut out = format!(
        "distributed suite: {} ({} parameters), {} workers × {} steps, H = {}, {} seeds\n\
         {:<36} {:>14} {:>8} {:>12} {:>10}\n",
        b.workload,
        b.parameters,
        b.workers,
        b.steps,
        b.h,
        b.seeds,
        "algorithm",
        "bytes/wkr/step",
        "vs DDP",
        "final loss",
        "sim time"
    );
    for s in &b.series {
        let _ = writeln!(
            out,
            "{:<36} {:>14.1} {:>8.4} {:>12.6} {:>9.2}s",
            s.label,
            s.bytes_per_step,
            s.vs_ddp,
            s.median_final(),
            s.seconds.last().copied().unwrap_or(f64::NAN)
        );
    }
    out
}

/// Writes `distributed.html` and `distributed.json` into `dir`; returns the HTML's path.
pub fn write(b: &DistBench, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let json = serde_json::to_string_pretty(b).map_err(|e| Error::Lab(e.to_string()))?;
    let jpath = dir.join("distributed.json");
    std::fs::write(&jpath, json).map_err(|e| io(&jpath, e))?;
    let mut h = String::new();
    h.push_str(&steepest_lab::report::page_head("steepest bench — distributed"));
    let _ = write!(
        h,
        r#"<h1>steepest bench — distributed</h1>
<div class="sub">{w} ({p} parameters, f64), {n} in-process workers × {t} local steps, H = {hh} for the local-update methods, {s} seeds · simulated link {gbps} Gbit/s, {lat} ms latency, {c} ms of computation per step · {wall:.0} s on this machine</div>
<h2>Bytes per worker per step against DDP</h2>
<table><tr><th>algorithm</th><th class=num>bytes / worker / step</th><th class=num>vs DDP</th><th class=num>final loss (mean model, median of seeds)</th><th class=num>simulated time</th><th>hyperparameters</th></tr>
"#,
        w = esc(&b.workload),
        p = b.parameters,
        n = b.workers,
        t = b.steps,
        hh = b.h,
        s = b.seeds,
        gbps = b.link_gbps,
        lat = b.latency_ms,
        c = b.compute_ms,
        wall = b.wall_seconds,
    );
    for s in &b.series {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=num>{:.1}</td><td class=num>{:.4}</td><td class=num>{:.6}</td><td class=num>{:.2} s</td><td><code>{}</code></td></tr>",
            esc(&s.label),
            s.bytes_per_step,
            s.vs_ddp,
            s.median_final(),
            s.seconds.last().copied().unwrap_or(f64::NAN),
            esc(&s.hyper)
        );
    }
    h.push_str("</table>");
    h.push_str("<h2>Loss against local steps</h2>");
    h.push_str(&chart(b, "loss vs steps", "local step", false, |s, i| {
        s.steps[i] as f64
    }));
    h.push_str("<h2>Loss against bytes sent per worker</h2><p class=sub>Left is cheaper: the same loss for fewer bytes on the wire.</p>");
    h.push_str(&chart(
        b,
        "loss vs bytes",
        "bytes sent per worker (log)",
        true,
        |s, i| s.bytes[i],
    ));
    h.push_str("<h2>Loss against simulated time</h2><p class=sub>Computation plus the link model's charge for every message (slowest rank).</p>");
    h.push_str(&chart(b, "loss vs simulated time", "seconds", false, |s, i| {
        s.seconds[i]
    }));
    let _ = write!(
        h,
        "<p class=sub>Data: <code>distributed.json</code>. Generated by <code>steepest bench --suite distributed</code>, steepest {}.</p></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    let path = dir.join("distributed.html");
    std::fs::write(&path, h).map_err(|e| io(&path, e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> DistBenchConfig {
        DistBenchConfig {
            workers: 2,
            steps: 20,
            h: 5,
            seeds: 2,
            progress: false,
            ..Default::default()
        }
    }

    #[test]
    fn the_suite_measures_every_configuration_and_writes_its_report() {
        let cfg = small();
        let b = run(&cfg).unwrap();
        assert_eq!(b.series.len(), crate::cli::bytes_configs(cfg.h).len());
        assert_eq!(b.series[0].algo, "ddp");
        assert!((b.series[0].vs_ddp - 1.0).abs() < 1e-12);
        for s in &b.series {
            assert_eq!(s.final_loss.len(), 2, "{}", s.label);
            assert_eq!(s.steps.first(), Some(&0), "{}", s.label);
            assert_eq!(s.steps.last(), Some(&cfg.steps), "{}", s.label);
            assert!(s.loss.iter().all(|l| l.is_finite()), "{}", s.label);
            assert!(s.bytes.windows(2).all(|w| w[0] <= w[1]), "{}: bytes decrease", s.label);
            assert!(
                s.seconds.windows(2).all(|w| w[0] < w[1]),
                "{}: time stands still",
                s.label
            );
            assert!(s.bytes_per_step > 0.0, "{}", s.label);
            // simulated time: at least the computation
            let t = *s.seconds.last().unwrap();
            assert!(t >= cfg.steps as f64 * cfg.compute_ms * 1e-3, "{}", s.label);
        }
        // the local-update methods synchronize once per round: fewer bytes than DDP
        let diloco = b.series.iter().find(|s| s.algo == "diloco").unwrap();
        assert!(diloco.vs_ddp < 0.5, "diloco {}", diloco.vs_ddp);
        let dir = std::env::temp_dir().join(format!("steepest-dist-bench-{}", std::process::id()));
        let path = write(&b, &dir).unwrap();
        let html = std::fs::read_to_string(&path).unwrap();
        assert_eq!(html.matches("<svg").count(), 3);
        assert!(html.contains("diloco"));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("distributed.json")).unwrap()).unwrap();
        assert_eq!(json["series"].as_array().unwrap().len(), b.series.len());
        assert!(summary(&b).contains("vs DDP"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_settings_are_errors() {
        for f in [
            |c: &mut DistBenchConfig| c.workers = 1,
            |c: &mut DistBenchConfig| c.steps = 0,
            |c: &mut DistBenchConfig| c.h = 0,
            |c: &mut DistBenchConfig| c.seeds = 0,
            |c: &mut DistBenchConfig| c.compute_ms = f64::NAN,
        ] {
            let mut c = small();
            f(&mut c);
            assert!(run(&c).is_err());
        }
        let mut c = small();
        c.workload = "no-such".into();
        assert!(run(&c).is_err());
    }
}
