//! The claims registry: for every registered algorithm, its paper's
//! convergence claim as an executable check — the quantity measured, the
//! workload and runs it needs, the tolerance and why. A claim that fails is
//! reported as FAIL with its numbers; tolerances are never tuned to pass.
//!
//! Measurements use the median over seeds of each run's curve (at each
//! evaluation step), after the run's own learning-rate sweep unless the claim
//! fixes the learning rate.

use serde::Serialize;
use steepest::hyper::{hyper_from_json, Hyper};

use crate::bench::{lab_defaults, BenchResults, Contender, RunResult};
use crate::runner::Point;
use crate::stats::{loglog_slope, median, running_min};

/// A run a claim needs.
#[derive(Clone, Debug)]
pub struct RunReq {
    /// Workload.
    pub workload: &'static str,
    /// Label (also the leaderboard label when it is an optimizer with its defaults).
    pub label: &'static str,
    /// Registry name.
    pub optimizer: &'static str,
    /// Hyperparameters on top of the lab defaults (JSON object).
    pub hyper: &'static str,
    /// Sweep the learning rate (else `lr_factor` × default).
    pub sweep: bool,
    /// Fixed learning-rate factor.
    pub lr_factor: f64,
}

impl RunReq {
    fn swept(workload: &'static str, label: &'static str, optimizer: &'static str, hyper: &'static str) -> RunReq {
        RunReq {
            workload,
            label,
            optimizer,
            hyper,
            sweep: true,
            lr_factor: 1.0,
        }
    }

    /// The contender this run is.
    pub fn contender(&self) -> Contender {
        let mut h: Hyper = lab_defaults(self.optimizer);
        h.extend(hyper_from_json(self.hyper).unwrap_or_default());
        Contender {
            label: self.label.into(),
            optimizer: self.optimizer.into(),
            hyper: h,
            sweep: self.sweep,
            lr_factor: self.lr_factor,
        }
    }
}

/// A series in a claim's plot.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    /// Legend.
    pub label: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
    /// Draw dashed (claimed rates, bounds).
    pub dashed: bool,
}

/// A claim's picture.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimPlot {
    /// X axis.
    pub x_label: String,
    /// Y axis.
    pub y_label: String,
    /// Log x.
    pub log_x: bool,
    /// Log y.
    pub log_y: bool,
    /// Series.
    pub series: Vec<Series>,
}

/// What a check measured.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The number compared with the threshold.
    pub value: f64,
    /// The threshold.
    pub threshold: f64,
    /// Verdict.
    pub pass: bool,
    /// One or two sentences with the numbers.
    pub summary: String,
    /// The picture.
    pub plot: Option<ClaimPlot>,
}

type Check = fn(&BenchResults, &Claim) -> Result<Measured, String>;

/// One claim.
pub struct Claim {
    /// Identifier.
    pub id: &'static str,
    /// Registry name of the algorithm it is about.
    pub algorithm: &'static str,
    /// The paper (and theorem) it comes from.
    pub paper: &'static str,
    /// The claim in words.
    pub statement: &'static str,
    /// The quantity measured.
    pub quantity: &'static str,
    /// The tolerance.
    pub tolerance: &'static str,
    /// Why this tolerance.
    pub why: &'static str,
    /// Runs needed.
    pub runs: Vec<RunReq>,
    /// The check.
    pub check: Check,
    /// Parameter of the check (claimed slope, ratio, ...).
    pub param: f64,
}

/// A claim's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimResult {
    /// Identifier.
    pub id: String,
    /// Algorithm.
    pub algorithm: String,
    /// Paper.
    pub paper: String,
    /// Statement.
    pub statement: String,
    /// Quantity.
    pub quantity: String,
    /// Tolerance.
    pub tolerance: String,
    /// Why.
    pub why: String,
    /// Workloads used.
    pub workloads: Vec<String>,
    /// PASS, FAIL or ERROR.
    pub verdict: String,
    /// Measured value.
    pub value: f64,
    /// Threshold.
    pub threshold: f64,
    /// Numbers in words.
    pub summary: String,
    /// Picture.
    pub plot: Option<ClaimPlot>,
}

impl Claim {
    /// Evaluates the claim on finished results.
    pub fn evaluate(&self, r: &BenchResults) -> ClaimResult {
        let mut workloads: Vec<String> = self.runs.iter().map(|x| x.workload.to_string()).collect();
        workloads.dedup();
        let (verdict, value, threshold, summary, plot) = match (self.check)(r, self) {
            Ok(m) => (
                if m.pass { "PASS" } else { "FAIL" }.to_string(),
                m.value,
                m.threshold,
                m.summary,
                m.plot,
            ),
            Err(e) => ("ERROR".to_string(), f64::NAN, f64::NAN, e, None),
        };
        ClaimResult {
            id: self.id.into(),
            algorithm: self.algorithm.into(),
            paper: self.paper.into(),
            statement: self.statement.into(),
            quantity: self.quantity.into(),
            tolerance: self.tolerance.into(),
            why: self.why.into(),
            workloads,
            verdict,
            value,
            threshold,
            summary,
            plot,
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers.

fn run<'a>(r: &'a BenchResults, req: &RunReq) -> Result<&'a RunResult, String> {
    let run = r
        .get(req.workload, req.label)
        .ok_or_else(|| format!("run {} on {} is missing", req.label, req.workload))?;
    if let Some(na) = &run.not_applicable {
        return Err(format!("{} cannot run on {}: {na}", req.label, req.workload));
    }
    if run.seeds.is_empty() {
        return Err(format!("{} on {} has no seed runs", req.label, req.workload));
    }
    Ok(run)
}

/// Median over seeds of `f(point)` at each evaluation step all seeds share.
pub fn median_curve(run: &RunResult, f: impl Fn(&Point) -> f64) -> Vec<(f64, f64)> {
    let n = run.seeds.iter().map(|t| t.points.len()).min().unwrap_or(0);
    (0..n)
        .map(|i| {
            let vals: Vec<f64> = run.seeds.iter().map(|t| f(&t.points[i])).collect();
            (run.seeds[0].points[i].step as f64, median(&vals).unwrap_or(f64::NAN))
        })
        .collect()
}

fn diverged(run: &RunResult) -> usize {
    run.seeds
        .iter()
        .filter(|t| t.status != crate::runner::Status::Ok)
        .count()
}

fn power_line(x0: f64, y0: f64, slope: f64, x1: f64) -> Vec<(f64, f64)> {
    vec![(x0, y0), (x1, y0 * (x1 / x0).powf(slope))]
}

fn fmt(x: f64) -> String {
    if x == 0.0 || (1e-3..1e4).contains(&x.abs()) {
        format!("{x:.3}")
    } else {
        format!("{x:.2e}")
    }
}

// ---------------------------------------------------------------------------
// Checks.

/// Regret growth exponent ≤ claimed + tolerance (claim.param = claimed exponent).
fn regret_exponent(r: &BenchResults, c: &Claim) -> Result<Measured, String> {
    let run = run(r, &c.runs[0])?;
    if diverged(run) > 0 {
        return Err(format!("{} of {} seeds diverged", diverged(run), run.seeds.len()));
    }
    let curve = median_curve(run, |p| p.metric);
    let t_max = curve.last().map_or(0.0, |p| p.0);
    let (x, y): (Vec<f64>, Vec<f64>) = curve.iter().cloned().unzip();
    let (a, b, r2) = loglog_slope(&x, &y, t_max / 10.0, t_max).ok_or("regret not positive over the fit window")?;
    let tol = 0.1;
    let fit = power_line(t_max / 10.0, (a + b * (t_max / 10.0).ln()).exp(), b, t_max);
    let claimed = power_line(t_max / 10.0, (a + b * (t_max / 10.0).ln()).exp(), c.param, t_max);
    Ok(Measured {
        value: b,
        threshold: c.param + tol,
        pass: b <= c.param + tol,
        summary: format!(
            "Fitted regret exponent {b:.3} (R² {r2:.3}) over T ∈ [{:.0}, {t_max:.0}], median of {} seeds; regret at T = {t_max:.0}: {}.",
            t_max / 10.0,
            run.seeds.len(),
            fmt(y.last().copied().unwrap_or(f64::NAN))
        ),
        plot: Some(ClaimPlot {
            x_label: "round T".into(),
            y_label: "regret R(T)".into(),
            log_x: true,
            log_y: true,
            series: vec![
                Series { label: format!("{} (median)", run.label), points: curve.into_iter().filter(|p| p.0 > 0.0 && p.1 > 0.0).collect(), dashed: false },
                Series { label: format!("fit: T^{b:.2}"), points: fit, dashed: true },
                Series { label: format!("claimed: T^{}", c.param), points: claimed, dashed: true },
            ],
        }),
    })
}

/// Running-minimum gradient norm decays at least as fast as `T^param` (param < 0).
fn grad_norm_rate(r: &BenchResults, c: &Claim) -> Result<Measured, String> {
    let run = run(r, &c.runs[0])?;
    if diverged(run) > 0 {
        return Err(format!("{} of {} seeds diverged", diverged(run), run.seeds.len()));
    }
    let curve = median_curve(run, |p| p.grad_norm);
    let (x, y): (Vec<f64>, Vec<f64>) = curve.iter().cloned().unzip();
    let y = running_min(&y);
    let t_max = x.last().copied().unwrap_or(0.0);
    let lo = t_max / 10.0;
    let (a, b, r2) = loglog_slope(&x, &y, lo, t_max).ok_or("gradient norm not positive over the fit window")?;
    let tol = 0.05;
    let y_lo = (a + b * lo.ln()).exp();
    Ok(Measured {
        value: b,
        threshold: c.param + tol,
        pass: b <= c.param + tol,
        summary: format!(
            "min_{{s≤t}} ‖∇f‖ decays like t^{b:.3} (R² {r2:.3}) over t ∈ [{lo:.0}, {t_max:.0}]; from {} at t = 0 to {} at t = {t_max:.0}.",
            fmt(y[0]),
            fmt(y.last().copied().unwrap_or(f64::NAN))
        ),
        plot: Some(ClaimPlot {
            x_label: "step t".into(),
            y_label: "min gradient norm so far".into(),
            log_x: true,
            log_y: true,
            series: vec![
                Series { label: format!("{} (median)", run.label), points: x.iter().cloned().zip(y.iter().cloned()).filter(|p| p.0 > 0.0).collect(), dashed: false },
                Series { label: format!("fit: t^{b:.2}"), points: power_line(lo, y_lo, b, t_max), dashed: true },
                Series { label: format!("claimed: t^{}", c.param), points: power_line(lo, y_lo, c.param, t_max), dashed: true },
            ],
        }),
    })
}

fn curves_plot(runs: &[&RunResult], target: Option<f64>, y_label: &str) -> ClaimPlot {
    let mut series: Vec<Series> = runs
        .iter()
        .map(|r| Series {
            label: format!("{} (median)", r.label),
            points: median_curve(r, |p| p.metric),
            dashed: false,
        })
        .collect();
    if let (Some(t), Some(last)) = (target, series.first().and_then(|s| s.points.last()).map(|p| p.0)) {
        series.push(Series {
            label: "target".into(),
            points: vec![(0.0, t), (last, t)],
            dashed: true,
        });
    }
    ClaimPlot {
        x_label: "step".into(),
        y_label: y_label.into(),
        log_x: false,
        log_y: true,
        series,
    }
}

/// Steps-to-target ratio (run 0 / run 1) ≤ param.
fn steps_ratio(r: &BenchResults, c: &Claim) -> Result<Measured, String> {
    let a = run(r, &c.runs[0])?;
    let b = run(r, &c.runs[1])?;
    let w = r
        .workloads
        .iter()
        .find(|w| w.name == c.runs[0].workload)
        .ok_or("workload missing")?;
    let (sa, sb) = (a.median_steps(), b.median_steps());
    if !sa.is_finite() {
        return Ok(Measured {
            value: f64::INFINITY,
            threshold: c.param,
            pass: false,
            summary: format!(
                "{} did not reach the target {} in {} steps (median final {}).",
                a.label,
                fmt(w.target.unwrap_or(f64::NAN)),
                w.steps,
                fmt(a.median_final())
            ),
            plot: Some(curves_plot(&[a, b], w.target, &w.metric)),
        });
    }
    // A baseline that never reaches the target counts as the whole budget (a lower bound on its steps).
    let sb_eff = if sb.is_finite() { sb } else { w.steps as f64 };
    let ratio = sa / sb_eff;
    Ok(Measured {
        value: ratio,
        threshold: c.param,
        pass: ratio <= c.param,
        summary: format!(
            "Median steps to target {}: {} {sa:.0}, {} {}; ratio {ratio:.3}.",
            fmt(w.target.unwrap_or(f64::NAN)),
            a.label,
            b.label,
            if sb.is_finite() {
                format!("{sb:.0}")
            } else {
                format!("not reached in {} (counted as {})", w.steps, w.steps)
            }
        ),
        plot: Some(curves_plot(&[a, b], w.target, &w.metric)),
    })
}

/// Decoupled weight decay λ keeps ‖x‖∞ within 1/λ + 2·lr late in training, and the box is active.
fn linf_box(r: &BenchResults, c: &Claim) -> Result<Measured, String> {
    let run = run(r, &c.runs[0])?;
    let lambda = c.param;
    let x_star = crate::workloads::box_problem().x_star;
    let star_inf = x_star.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if star_inf <= 1.0 / lambda {
        return Err(format!(
            "the unconstrained optimum already lies in the box (‖x*‖∞ = {star_inf:.3})"
        ));
    }
    let lr = run.seeds[0]
        .hyper
        .get("lr")
        .and_then(|v| v.as_f64())
        .unwrap_or(f64::NAN);
    let curve = median_curve(run, |p| p.aux);
    let t_max = curve.last().map_or(0.0, |p| p.0);
    let late_max = run
        .seeds
        .iter()
        .flat_map(|t| t.points.iter().filter(|p| p.step as f64 >= t_max / 2.0).map(|p| p.aux))
        .fold(0.0f64, f64::max);
    let bound = 1.0 / lambda + 2.0 * lr;
    let active = late_max >= 0.9 / lambda;
    let mut series = vec![Series {
        label: format!("{} ‖x‖∞ (median)", run.label),
        points: curve,
        dashed: false,
    }];
    series.push(Series {
        label: "1/λ".into(),
        points: vec![(0.0, 1.0 / lambda), (t_max, 1.0 / lambda)],
        dashed: true,
    });
    series.push(Series {
        label: "‖x*‖∞ (unconstrained)".into(),
        points: vec![(0.0, star_inf), (t_max, star_inf)],
        dashed: true,
    });
    Ok(Measured {
        value: late_max,
        threshold: bound,
        pass: late_max <= bound && active,
        summary: format!(
            "Over the second half, max ‖x‖∞ = {late_max:.4} across {} seeds; bound 1/λ + 2·lr = {bound:.4} (λ = {lambda}, lr = {}); \
             unconstrained ‖x*‖∞ = {star_inf:.3}; box {}.",
            run.seeds.len(),
            fmt(lr),
            if active { "active (≥ 0.9/λ reached)" } else { "NOT reached: the iterates stayed well inside" }
        ),
        plot: Some(ClaimPlot { x_label: "step".into(), y_label: "‖x‖∞".into(), log_x: false, log_y: false, series }),
    })
}

fn worst_spike(run: &RunResult) -> f64 {
    let v: Vec<f64> = run
        .seeds
        .iter()
        .map(|t| {
            let mut best = f64::INFINITY;
            let mut worst: f64 = 1.0;
            for p in t.points.iter().skip(1) {
                if p.step >= 20 && best.is_finite() {
                    worst = worst.max(p.metric / best);
                }
                best = best.min(p.metric);
            }
            worst
        })
        .collect();
    median(&v).unwrap_or(f64::INFINITY)
}

/// The clipped run's worst loss spike is at most the unclipped base's, and it reaches the target.
fn spike_reduction(r: &BenchResults, c: &Claim) -> Result<Measured, String> {
    let a = run(r, &c.runs[0])?;
    let b = run(r, &c.runs[1])?;
    let w = r
        .workloads
        .iter()
        .find(|w| w.name == c.runs[0].workload)
        .ok_or("workload missing")?;
    let (sa, sb) = (worst_spike(a), worst_spike(b));
    let reached = a.reached() * 2 > a.seeds.len();
    Ok(Measured {
        value: sa / sb,
        threshold: 1.0,
        pass: sa <= sb && reached,
        summary: format!(
            "Worst spike (max over t ≥ 20 of f(x_t) / min_{{s<t}} f(x_s), median over seeds): {} {}, {} {}; {} reached the target on {}/{} seeds (median final {}).",
            a.label,
            fmt(sa),
            b.label,
            fmt(sb),
            a.label,
            a.reached(),
            a.seeds.len(),
            fmt(a.median_final())
        ),
        plot: Some(curves_plot(&[a, b], w.target, &w.metric)),
    })
}

/// Cautious: every leaderboard workload the base solves, the cautious variant
/// solves too, and the geometric-mean steps ratio is at most param.
fn cautious(r: &BenchResults, c: &Claim) -> Result<Measured, String> {
    let (cv, base) = (c.runs[0].label, c.runs[1].label);
    let mut ratios = Vec::new();
    let mut lost = Vec::new();
    let mut rows = Vec::new();
    for w in r.workloads.iter().filter(|w| w.leaderboard && w.target.is_some()) {
        let (Some(a), Some(b)) = (r.get(&w.name, cv), r.get(&w.name, base)) else {
            continue;
        };
        if a.not_applicable.is_some() || b.not_applicable.is_some() {
            continue;
        }
        let (sa, sb) = (a.median_steps(), b.median_steps());
        if sb.is_finite() {
            if sa.is_finite() {
                ratios.push((sa / sb).ln());
                rows.push((w.name.clone(), sa / sb));
            } else {
                lost.push(w.name.clone());
            }
        }
    }
    if ratios.is_empty() && lost.is_empty() {
        return Err(format!("{base} reached no target, nothing to compare"));
    }
    let gm = if ratios.is_empty() {
        f64::INFINITY
    } else {
        (ratios.iter().sum::<f64>() / ratios.len() as f64).exp()
    };
    let detail: Vec<String> = rows.iter().map(|(n, x)| format!("{n} {x:.2}")).collect();
    Ok(Measured {
        value: gm,
        threshold: c.param,
        pass: lost.is_empty() && gm <= c.param,
        summary: format!(
            "{cv} reached the target on {}/{} workloads that {base} solves{}; steps ratio {cv}/{base} geometric mean {gm:.3} ({}).",
            rows.len(),
            rows.len() + lost.len(),
            if lost.is_empty() { String::new() } else { format!(" (lost: {})", lost.join(", ")) },
            detail.join(", ")
        ),
        plot: None,
    })
}

/// Complex momentum converges on the bilinear game where gradient descent–ascent diverges.
fn bilinear_game(_: &BenchResults, c: &Claim) -> Result<Measured, String> {
    use steepest::games::{bilinear_game, Order};
    let (n, m) = (3, 3);
    // The 3 × 3 game of steepest's own game tests (singular values 0.55..1.4).
    let a = [1.0, 0.3, -0.2, 0.1, 0.8, 0.4, -0.3, 0.2, 1.2];
    let mut rng = crate::rng::Rng::new(7, 99);
    let x0: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let y0: Vec<f64> = (0..m).map(|_| rng.normal()).collect();
    let steps = 2000;
    // Both players use `opt` at lr 0.05; y ascends.
    let play = |opt: &str| {
        let descend = hyper_from_json(r#"{"lr": 0.05}"#).unwrap_or_default();
        let ascend = hyper_from_json(r#"{"lr": 0.05, "maximize": true}"#).unwrap_or_default();
        bilinear_game(
            &a,
            (n, m),
            (&x0, &y0),
            (opt, &descend),
            (opt, &ascend),
            steps,
            Order::Simultaneous,
        )
        .map_err(|e| e.to_string())
    };
    let gda = play("sgd")?;
    let cm = play("complex-momentum")?;
    let d0 = gda[0];
    let (g_end, c_end) = (gda[steps] / d0, cm[steps] / d0);
    let every = |v: &[f64]| {
        v.iter()
            .enumerate()
            .step_by(20)
            .map(|(i, d)| (i as f64, d / d0))
            .collect::<Vec<_>>()
    };
    Ok(Measured {
        value: c_end,
        threshold: c.param,
        pass: c_end <= c.param && g_end > 1.0,
        summary: format!(
            "Bilinear game min_x max_y xᵀAy (3 × 3, singular values 0.55..1.4), random start, lr 0.05, {steps} simultaneous steps: distance to the equilibrium \
             grew ×{g_end:.3} under gradient descent–ascent and shrank to ×{c_end:.2e} under complex momentum (β = 0.9·e^(iπ/8))."
        ),
        plot: Some(ClaimPlot {
            x_label: "step".into(),
            y_label: "distance to equilibrium / start".into(),
            log_x: false,
            log_y: true,
            series: vec![
                Series { label: "gradient descent–ascent".into(), points: every(&gda), dashed: false },
                Series { label: "complex momentum".into(), points: every(&cm), dashed: false },
            ],
        }),
    })
}

/// FRUGAL: state bytes at most the configured fraction of Adam's (plus the
/// projector), and steps to target within `param` × AdamW's.
fn frugal_memory(r: &BenchResults, c: &Claim) -> Result<Measured, String> {
    use steepest::{Optimizer, ParamSet};
    let mut p = ParamSet::<f32>::new();
    let (rows, cols) = (256usize, 256usize);
    p.push("w", &[rows, cols], vec![0.01; rows * cols])
        .map_err(|e| e.to_string())?;
    let grads = || {
        let mut g = steepest::GradSet::new();
        g.insert(
            "w",
            (0..rows * cols)
                .map(|i| ((i * 7919) % 101) as f32 / 101.0 - 0.5)
                .collect(),
        );
        g
    };
    let bytes = |name: &str, h: &str| -> Result<f64, String> {
        let mut params = p.clone();
        let mut opt =
            Optimizer::new(name, &hyper_from_json(h).unwrap_or_default(), &params).map_err(|e| e.to_string())?;
        opt.step(&mut params, &mut grads()).map_err(|e| e.to_string())?;
        Ok(steepest::perf::state_bytes_per_param(&opt, &params))
    };
    let density = 0.25;
    let fr = bytes("frugal", r#"{"density": 0.25}"#)?;
    let ad = bytes("adamw", "{}")?;
    let rank = (density * rows.min(cols) as f64).round();
    // Two moments of size r × max(m, n) plus the r × min(m, n) projector, over Adam's two m × n moments.
    let expected = (2.0 * rank * rows.max(cols) as f64 + rank * rows.min(cols) as f64) / (2.0 * (rows * cols) as f64);
    let mem_ok = fr <= ad * expected * (1.0 + 1e-9);
    let a = run(r, &c.runs[0])?;
    let b = run(r, &c.runs[1])?;
    let (sa, sb) = (a.median_steps(), b.median_steps());
    let ratio = if sb.is_finite() { sa / sb } else { f64::INFINITY };
    Ok(Measured {
        value: ratio,
        threshold: c.param,
        pass: mem_ok && ratio <= c.param,
        summary: format!(
            "State on a 256 × 256 f32 matrix: FRUGAL (density 0.25, SVD projection) {fr:.3} bytes/param vs AdamW {ad:.3} \
             (ratio {:.4}; bound {expected:.4} = moments on the rank-{rank} subspace + projector). \
             Softmax regression on digits: median steps to target FRUGAL {sa:.0} vs AdamW {sb:.0}, ratio {ratio:.3}.",
            fr / ad
        ),
        plot: Some(curves_plot(&[a, b], r.workloads.iter().find(|w| w.name == c.runs[0].workload).and_then(|w| w.target), "f(x) - f*")),
    })
}

/// Final metric ratio (run 0 / run 1) ≤ param.
fn final_ratio(r: &BenchResults, c: &Claim) -> Result<Measured, String> {
    let a = run(r, &c.runs[0])?;
    let b = run(r, &c.runs[1])?;
    let (fa, fb) = (a.median_final(), b.median_final());
    let ratio = fa / fb;
    let w = r
        .workloads
        .iter()
        .find(|w| w.name == c.runs[0].workload)
        .ok_or("workload missing")?;
    Ok(Measured {
        value: ratio,
        threshold: c.param,
        pass: ratio <= c.param,
        summary: format!(
            "Median final {} after {} steps: {} {}, {} {}; ratio {}.",
            w.metric,
            w.steps,
            a.label,
            fmt(fa),
            b.label,
            fmt(fb),
            fmt(ratio)
        ),
        plot: Some(curves_plot(&[a, b], None, &w.metric)),
    })
}

/// AEGD: the energy variable never increases, at any step size (checked
/// element by element on the least-squares workload's problem).
fn aegd_energy(_: &BenchResults, c: &Claim) -> Result<Measured, String> {
    use crate::problems::Problem;
    let prob = crate::problems::LeastSquares::new(200, 40, 100.0, 1.0, 1);
    let default_lr = steepest::registry::lookup("aegd")
        .map_err(|e| e.to_string())?
        .defaults()["lr"]
        .as_f64()
        .unwrap_or(0.1);
    let mut worst = f64::NEG_INFINITY;
    let mut rows = Vec::new();
    let mut series = Vec::new();
    for k in [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0] {
        let lr = default_lr * 10f64.powf(k);
        let mut p = prob.init(0);
        let h = hyper_from_json(&format!(r#"{{"lr": {lr}}}"#)).unwrap_or_default();
        let mut opt = steepest::Optimizer::new("aegd", &h, &p).map_err(|e| e.to_string())?;
        let mut prev: Option<Vec<f64>> = None;
        let mut inc = f64::NEG_INFINITY;
        let mut energy = Vec::new();
        let mut g = steepest::GradSet::new();
        for t in 1..=300u64 {
            let loss = prob.loss_grad(&p, 0, t, &mut g);
            opt.step_with(
                &mut p,
                &mut g,
                steepest::StepInputs {
                    loss: Some(loss),
                    sample_grads: None,
                },
            )
            .map_err(|e| e.to_string())?;
            let r_now = opt
                .param_state("x")
                .and_then(|s| s.slots.first().cloned())
                .ok_or("AEGD has no energy slot")?;
            if let Some(rp) = &prev {
                for (a, b) in r_now.iter().zip(rp) {
                    inc = inc.max(a - b);
                }
            }
            if t % 5 == 0 {
                energy.push((t as f64, r_now.iter().map(|x| x * x).sum::<f64>().sqrt()));
            }
            prev = Some(r_now);
        }
        worst = worst.max(inc);
        rows.push(format!("lr {}: max increase {}", fmt(lr), fmt(inc)));
        series.push(Series {
            label: format!("‖r‖, lr {}", fmt(lr)),
            points: energy,
            dashed: false,
        });
    }
    Ok(Measured {
        value: worst,
        threshold: c.param,
        pass: worst <= c.param,
        summary: format!(
            "Largest one-step increase of any energy element over 300 steps of least squares, at six learning rates from 0.1× to 10⁴× the default: {}.",
            rows.join("; ")
        ),
        plot: Some(ClaimPlot { x_label: "step".into(), y_label: "‖r‖ (energy)".into(), log_x: false, log_y: true, series }),
    })
}

/// Clipping bias: the clipped method's final suboptimality stays at least `param`.
fn clipping_bias(r: &BenchResults, c: &Claim) -> Result<Measured, String> {
    let a = run(r, &c.runs[0])?;
    let b = run(r, &c.runs[1])?;
    let (fa, fb) = (a.median_final(), b.median_final());
    Ok(Measured {
        value: fa,
        threshold: c.param,
        pass: fa >= c.param && fb < fa,
        summary: format!(
            "After 3000 full-batch steps with σ = 0: {} final f − f* = {}, unclipped {} = {} — clipping alone leaves a gap.",
            a.label,
            fmt(fa),
            b.label,
            fmt(fb)
        ),
        plot: Some(curves_plot(&[a, b], None, "f(x) - f*")),
    })
}

// ---------------------------------------------------------------------------

const REGRET_TOL: &str = "fitted exponent ≤ 0.5 + 0.1";
const REGRET_WHY: &str = "A √T bound plus lower-order terms (constants, log T) fitted over one decade of T bends the slope by a few hundredths; \
                          0.1 leaves room for that while still separating √T from linear regret (exponent 1).";

/// Every claim.
pub fn registry() -> Vec<Claim> {
    let regret = |id, algorithm, label, optimizer, hyper, workload, paper, statement| Claim {
        id,
        algorithm,
        paper,
        statement,
        quantity:
            "Exponent of regret growth: least-squares slope of log R(T) against log T over the last decade of rounds.",
        tolerance: REGRET_TOL,
        why: REGRET_WHY,
        runs: vec![RunReq::swept(workload, label, optimizer, hyper)],
        check: regret_exponent,
        param: 0.5,
    };
    vec![
        Claim {
            id: "heavy-ball-acceleration",
            algorithm: "sgd",
            paper: "Accelerated Convergence of Stochastic Heavy Ball Method under Anisotropic Gradient Noise (Theorem 1 and Corollary: O(√κ) vs O(κ) bias decay)",
            statement: "With a step-decay schedule on a quadratic with anisotropic gradient noise, heavy-ball momentum reaches a given suboptimality in far fewer steps than plain SGD.",
            quantity: "Median steps to f − f* ≤ 1e-2 of SGD with momentum 0.9 divided by that of plain SGD, each at its own best swept learning rate.",
            tolerance: "ratio ≤ 0.5",
            why: "The theory predicts a factor up to √κ ≈ 32 on the bias term (κ = 1000) with equal variance terms; demanding only 2× leaves room for log factors, the shared schedule and noise.",
            runs: vec![
                RunReq::swept("noisy-quadratic", "sgd (momentum 0.9)", "sgd", r#"{"momentum": 0.9}"#),
                RunReq::swept("noisy-quadratic", "sgd", "sgd", "{}"),
            ],
            check: steps_ratio,
            param: 0.5,
        },
        regret(
            "adam-regret",
            "adam",
            "adam",
            "adam",
            "{}",
            "online-regression",
            "Adam: A Method for Stochastic Optimization (Section 4, Theorem 4.1: R(T) = O(√T) with α_t = α/√t)",
            "In online convex optimization with α_t = α/√t, Adam's regret grows as O(√T).",
        ),
        regret(
            "adamax-regret",
            "adamax",
            "adamax",
            "adamax",
            "{}",
            "online-regression",
            "Adam: A Method for Stochastic Optimization (Section 7.1, AdaMax; the regret analysis of Section 4 carries over)",
            "AdaMax, Adam's infinity-norm variant, also has O(√T) regret in online convex optimization.",
        ),
        regret(
            "adagrad-regret",
            "adagrad",
            "adagrad",
            "adagrad",
            "{}",
            "online-regression-const",
            "Adaptive Subgradient Methods for Online Learning and Stochastic Optimization (Duchi, Hazan, Singer 2011; Theorem 5)",
            "AdaGrad with a constant base step size has O(√T) regret in online convex optimization (its step size decays by itself).",
        ),
        regret(
            "rmsprop-regret",
            "rmsprop",
            "rmsprop",
            "rmsprop",
            "{}",
            "online-regression",
            "Variants of RMSProp and Adagrad with Logarithmic Regret Bounds (Mukkamala & Hein 2017), for RMSProp with α_t = α/√t; RMSprop itself (Tieleman & Hinton 2012) states no theorem",
            "With α_t = α/√t, RMSprop's regret in online convex optimization grows as O(√T). (The theorem takes β₂ → 1; steepest's RMSprop keeps PyTorch's fixed α = 0.99, so this is a measurement, not a guarantee.)",
        ),
        regret(
            "amsbound-regret",
            "adabound",
            "amsbound",
            "adabound",
            r#"{"amsbound": true}"#,
            "online-regression",
            "Adaptive Gradient Methods with Dynamic Bound of Learning Rate (Theorem 4: AMSBound has O(√T) regret with α_t = α/√t)",
            "AMSBound (AdaBound's `amsbound` flag), whose per-coordinate step sizes are squeezed between bounds converging to one SGD step size, has O(√T) regret.",
        ),
        Claim {
            id: "lion-box",
            algorithm: "lion",
            paper: "Lion Secretly Solves Constrained Optimization: As Lyapunov Predicts (Chen, Liu, Liang, Liu; ICLR 2024, Theorem 3.1)",
            statement: "Lion with decoupled weight decay λ minimizes f subject to ‖x‖∞ ≤ 1/λ: iterates enter and stay in the box.",
            quantity: "max ‖x_t‖∞ over the second half of training on a least-squares problem whose unconstrained optimum lies outside the box (λ = 1, lr = 0.01).",
            tolerance: "≤ 1/λ + 2·lr, and ≥ 0.9/λ (the constraint is active)",
            why: "Lion moves every coordinate by exactly lr per step, so iterates oscillate within one step of the boundary; 2·lr allows one overshoot in either direction.",
            runs: vec![RunReq { workload: "least-squares-box", label: "lion (wd 1)", optimizer: "lion", hyper: r#"{"weight_decay": 1.0, "lr": 0.01}"#, sweep: false, lr_factor: 1.0 }],
            check: linf_box,
            param: 1.0,
        },
        Claim {
            id: "adamw-box",
            algorithm: "adamw",
            paper: "Implicit Bias of AdamW: ℓ∞-Norm Constrained Optimization (Xie & Li, ICML 2024, Theorem 1.1); AdamW from Decoupled Weight Decay Regularization (Loshchilov & Hutter 2019)",
            statement: "AdamW with decoupled weight decay λ converges to a point of min f s.t. ‖x‖∞ ≤ 1/λ.",
            quantity: "max ‖x_t‖∞ over the second half of training on a least-squares problem whose unconstrained optimum lies outside the box (λ = 1, lr = 0.01).",
            tolerance: "≤ 1/λ + 2·lr, and ≥ 0.9/λ (the constraint is active)",
            why: "AdamW's normalized step is at most about lr per coordinate, so iterates can overshoot the boundary by about one step.",
            runs: vec![RunReq { workload: "least-squares-box", label: "adamw (wd 1)", optimizer: "adamw", hyper: r#"{"weight_decay": 1.0, "lr": 0.01}"#, sweep: false, lr_factor: 1.0 }],
            check: linf_box,
            param: 1.0,
        },
        Claim {
            id: "muon-nonconvex-rate",
            algorithm: "muon",
            paper: "Understanding Gradient Orthogonalization for Deep Learning via Non-Euclidean Trust-Region Optimization (Theorem: min_t E‖∇f‖_* = O(T^-1/4) for the momentum method with η ∝ 1/√T)",
            statement: "Muon (orthogonalized momentum) drives the nuclear norm of the gradient of a smooth nonconvex function to zero at least as fast as T^-1/4.",
            quantity: "Slope of log min_{s≤t} ‖∇f(X_s)‖_* against log t over the last decade of steps, on low-rank matrix factorization with lr α/√t.",
            tolerance: "slope ≤ −0.25 + 0.05",
            why: "The bound carries log factors that flatten a fitted slope by a few hundredths over one decade; 0.05 allows that, far from a stalled method (slope ≈ 0).",
            runs: vec![RunReq::swept("matrix-factorization-isqrt", "muon", "muon", "{}")],
            check: grad_norm_rate,
            param: -0.25,
        },
        Claim {
            id: "adago-nonconvex-rate",
            algorithm: "adago",
            paper: "AdaGrad Meets Muon: Adaptive Stepsizes for Orthogonal Updates (deterministic setting: min_t ‖∇f(X_t)‖ = O(T^-1/2))",
            statement: "In the deterministic setting AdaGO, with its AdaGrad-norm step size and no schedule, reaches the optimal T^-1/2 rate for the gradient norm of smooth nonconvex functions.",
            quantity: "Slope of log min_{s≤t} ‖∇f(X_s)‖_* against log t over the last decade of steps, on low-rank matrix factorization (constant base lr, eps = 0 so the floor does not stop the decay).",
            tolerance: "slope ≤ −0.5 + 0.05",
            why: "As above: log factors in the bound bend a one-decade fit by a few hundredths.",
            runs: vec![RunReq::swept("matrix-factorization", "adago (eps 0)", "adago", r#"{"eps": 0.0}"#)],
            check: grad_norm_rate,
            param: -0.5,
        },
        Claim {
            id: "c-adamw-speedup",
            algorithm: "c-adamw",
            paper: "Cautious Optimizers: Improving Training with One Line of Code (Theorem 2.3: convergence preserved; experiments: up to 1.47× fewer steps)",
            statement: "The cautious mask keeps AdamW convergent and does not slow it down.",
            quantity: "Workloads with a target that AdamW reaches: how many C-AdamW also reaches, and the geometric mean of C-AdamW/AdamW median steps to target (each at its best swept lr).",
            tolerance: "all reached, and geometric-mean ratio ≤ 1.1",
            why: "The paper reports speed-ups; 10% slack absorbs seed noise and the discrete sweep grid without accepting a real slowdown.",
            runs: vec![RunReq::swept("least-squares", "c-adamw", "c-adamw", "{}"), RunReq::swept("least-squares", "adamw", "adamw", "{}")],
            check: cautious,
            param: 1.1,
        },
        Claim {
            id: "c-lion-speedup",
            algorithm: "c-lion",
            paper: "Cautious Optimizers: Improving Training with One Line of Code (C-Lion)",
            statement: "The cautious mask keeps Lion convergent and does not slow it down.",
            quantity: "As for C-AdamW, against Lion.",
            tolerance: "all reached, and geometric-mean ratio ≤ 1.1",
            why: "As for C-AdamW.",
            runs: vec![RunReq::swept("least-squares", "c-lion", "c-lion", "{}"), RunReq::swept("least-squares", "lion", "lion", "{}")],
            check: cautious,
            param: 1.1,
        },
        Claim {
            id: "adagc-spikes",
            algorithm: "adagc",
            paper: "AdaGC: Improving Training Stability for Large Language Model Pretraining (Section 3; loss spikes eliminated, convergence kept)",
            statement: "Per-parameter adaptive clipping removes loss spikes caused by rare huge gradients while still converging.",
            quantity: "Worst loss spike (max over t of f(x_t) / min_{s<t} f(x_s)), median over seeds, AdaGC(AdamW) against AdamW at their own best swept lr; and AdaGC reaching the target.",
            tolerance: "AdaGC's worst spike ≤ AdamW's, target reached on most seeds",
            why: "The claim is qualitative (spikes eliminated); we require no worse spikes than the unclipped base on a problem built to spike.",
            runs: vec![RunReq::swept("spiky-quadratic", "adagc", "adagc", "{}"), RunReq::swept("spiky-quadratic", "adamw", "adamw", "{}")],
            check: spike_reduction,
            param: 1.0,
        },
        Claim {
            id: "adagc-lion-spikes",
            algorithm: "adagc-lion",
            paper: "AdaGC: Improving Training Stability for Large Language Model Pretraining (integration with Lion)",
            statement: "AdaGC on Lion removes loss spikes while still converging.",
            quantity: "As for AdaGC, against Lion.",
            tolerance: "AdaGC-Lion's worst spike ≤ Lion's, target reached on most seeds",
            why: "As for AdaGC.",
            runs: vec![RunReq::swept("spiky-quadratic", "adagc-lion", "adagc-lion", "{}"), RunReq::swept("spiky-quadratic", "lion", "lion", "{}")],
            check: spike_reduction,
            param: 1.0,
        },
        Claim {
            id: "complex-momentum-bilinear",
            algorithm: "complex-momentum",
            paper: "Complex Momentum for Optimization in Games (Lorraine et al., AISTATS 2022; Section 4, bilinear zero-sum games)",
            statement: "On a bilinear zero-sum game, simultaneous gradient descent–ascent spirals away from the equilibrium, while complex momentum converges to it.",
            quantity: "Distance to the equilibrium after 2000 steps relative to the start, for complex momentum (β = 0.9·e^(iπ/8), lr 0.05) and for gradient descent–ascent (same lr).",
            tolerance: "complex momentum ≤ 0.02 of the start, and gradient descent–ascent > 1 (diverging)",
            why: "The spectral radius of complex momentum's iteration on this game is about 0.998 per step, so 2000 steps bound the distance by 0.998^2000 ≈ 0.019; GDA's is √(1 + lr²σ²) > 1.",
            runs: vec![],
            check: bilinear_game,
            param: 0.02,
        },
        Claim {
            id: "frugal-memory",
            algorithm: "frugal",
            paper: "FRUGAL: Memory-Efficient Optimization by Reducing State Overhead for Scalable Training (Section 3; state-full subspace of density ρ)",
            statement: "Splitting the gradient into a state-full subspace (AdamW) and a state-free remainder (signSGD) cuts optimizer state to about the density ρ of Adam's while training nearly as well.",
            quantity: "State bytes per parameter on a 256 × 256 matrix (density 0.25, SVD projection) against AdamW's; and the ratio of median steps to target on softmax regression on digits (minibatches, cosine schedule as in the paper's runs), FRUGAL (defaults) over AdamW, each at its best swept lr.",
            tolerance: "state ≤ exact subspace bound (moments + projector), and steps ratio ≤ 2",
            why: "The memory bound is exact arithmetic; the paper shows FRUGAL close to Adam at equal steps, and 2× allows for the state-free signSGD part on a tiny problem where every direction matters.",
            runs: vec![RunReq::swept("softmax-digits", "frugal", "frugal", "{}"), RunReq::swept("softmax-digits", "adamw", "adamw", "{}")],
            check: frugal_memory,
            param: 2.0,
        },
        Claim {
            id: "asgo-nonconvex-rate",
            algorithm: "asgo",
            paper: "ASGO: Adaptive Structured Gradient Optimization (nonconvex convergence of the one-sided preconditioned method)",
            statement: "ASGO drives the gradient of a smooth nonconvex matrix problem to zero at least at the standard stochastic first-order rate T^-1/4.",
            quantity: "Slope of log min_{s≤t} ‖∇f(X_s)‖_* against log t over the last decade of steps, on low-rank matrix factorization with lr α/√t.",
            tolerance: "slope ≤ −0.25 + 0.05",
            why: "Log factors in the bound bend a one-decade fit by a few hundredths.",
            runs: vec![RunReq::swept("matrix-factorization-isqrt", "asgo", "asgo", "{}")],
            check: grad_norm_rate,
            param: -0.25,
        },
        Claim {
            id: "muon-nalr-vs-muon",
            algorithm: "muon-nalr",
            paper: "Noise-Adaptive Layerwise Learning Rates: Accelerating Geometry-Aware Optimization for Deep Neural Network Training",
            statement: "Time-varying layerwise learning rates from each layer's gradient-noise estimate (in the dual norm) train faster than Muon's fixed rate within a group.",
            quantity: "Median final loss after 1500 steps on matrix factorization with layer-dependent gradient noise, muon-nalr over muon, each at its best swept lr.",
            tolerance: "ratio ≤ 1.0",
            why: "The paper claims acceleration; we ask only for no loss at equal steps on a problem built with the layer-noise heterogeneity it targets.",
            runs: vec![RunReq::swept("matrix-factorization-noisy", "muon-nalr", "muon-nalr", "{}"), RunReq::swept("matrix-factorization-noisy", "muon", "muon", "{}")],
            check: final_ratio,
            param: 1.0,
        },
        Claim {
            id: "aegd-energy-stability",
            algorithm: "aegd",
            paper: "AEGD: Adaptive Gradient Descent with Energy (Liu & Tian; Theorem: unconditional energy stability); Adaptive Preconditioned Gradient Descent with Energy",
            statement: "AEGD is unconditionally energy stable: for any step size, every element of its energy variable r is non-increasing.",
            quantity: "The largest one-step increase r_{t+1} − r_t of any element over 300 steps on least squares, at learning rates 0.1×, 1×, 10×, 100×, 10³×, 10⁴× the default.",
            tolerance: "≤ 0 (exact)",
            why: "r_{t+1} = r_t/(1 + 2ηv²) with a correctly rounded division by a number ≥ 1 can never exceed r_t, in exact or floating-point arithmetic; any increase is a bug.",
            runs: vec![],
            check: aegd_energy,
            param: 0.0,
        },
        Claim {
            id: "dp-sgd-clipping-bias",
            algorithm: "dp-sgd",
            paper: "Differentially Private SGD Without Clipping Bias: An Error-Feedback Approach (Section 3: per-sample clipping biases DP-SGD)",
            statement: "Per-sample clipping below the gradient norms biases DP-SGD: even without noise it stalls away from the optimum.",
            quantity: "Median final f − f* on breast-cancer logistic regression after 3000 full-batch steps, DP-SGD with σ = 0, C = 0.1, lr 1.0, against unclipped SGD at the same lr.",
            tolerance: "DP-SGD's final f − f* ≥ 1e-4, and above SGD's",
            why: "Without bias DP-SGD would go on converging linearly like SGD (to ~1e-15 here); a gap of 1e-4 after 3000 steps is the bias, not slowness.",
            runs: vec![
                RunReq { workload: "logreg-dp", label: "dp-sgd (C 0.1)", optimizer: "dp-sgd", hyper: r#"{"noise_multiplier": 0.0, "max_grad_norm": 0.1, "lr": 1.0}"#, sweep: false, lr_factor: 1.0 },
                RunReq { workload: "logreg-dp", label: "sgd (lr 1)", optimizer: "sgd", hyper: r#"{"lr": 1.0}"#, sweep: false, lr_factor: 1.0 },
            ],
            check: clipping_bias,
            param: 1e-4,
        },
        Claim {
            id: "dice-sgd-no-bias",
            algorithm: "dice-sgd",
            paper: "Differentially Private SGD Without Clipping Bias: An Error-Feedback Approach (DiceSGD, Algorithm 1 and Theorem: converges without clipping bias)",
            statement: "Clipped error feedback removes the clipping bias: with the same clipping threshold, DiceSGD converges to the true optimum where DP-SGD stalls.",
            quantity: "Median final f − f* after 3000 full-batch steps (σ = 0, C1 = 0.1, C2 = 0.3, lr 1.0) divided by DP-SGD's with the same C and lr.",
            tolerance: "ratio ≤ 0.1",
            why: "A tenfold smaller gap separates convergence to the optimum from a bias of the same order.",
            runs: vec![
                RunReq { workload: "logreg-dp", label: "dice-sgd (C 0.1)", optimizer: "dice-sgd", hyper: r#"{"noise_multiplier": 0.0, "max_grad_norm": 0.1, "max_ef_norm": 0.3, "lr": 1.0}"#, sweep: false, lr_factor: 1.0 },
                RunReq { workload: "logreg-dp", label: "dp-sgd (C 0.1)", optimizer: "dp-sgd", hyper: r#"{"noise_multiplier": 0.0, "max_grad_norm": 0.1, "lr": 1.0}"#, sweep: false, lr_factor: 1.0 },
            ],
            check: final_ratio,
            param: 0.1,
        },
        Claim {
            id: "mgup-adamw-speedup",
            algorithm: "mgup-adamw",
            paper: "MGUP: A Momentum-Gradient Alignment Update Policy for Stochastic Optimization (Chang & Yuan, NeurIPS 2025: MGUP-Adam converges in the stochastic nonconvex setting; greedy step scaling accelerates training); stands in for the withdrawn AlphaAdam",
            statement: "Scaling the steps of the best-aligned half of the coordinates up (α) and of the rest down (γ > 0) keeps AdamW convergent and does not slow it down.",
            quantity: "Workloads with a target that the base reaches: how many MGUP-AdamW (defaults τ = 0.5, α = 2, γ = 0.1) also reaches, and the geometric mean of MGUP/base median steps to target, the base being the same optimizer with α = γ = 1 (exactly its HF-style AdamW), each at its best swept lr.",
            tolerance: "all reached, and geometric-mean ratio ≤ 1.1",
            why: "The paper claims a speed-up; with the base identical up to the policy and both swept over lr, 10% slack absorbs seed noise and the discrete sweep grid without accepting a real slowdown.",
            runs: vec![
                RunReq::swept("least-squares", "mgup-adamw", "mgup-adamw", "{}"),
                RunReq::swept("least-squares", "mgup-adamw (α=γ=1)", "mgup-adamw", r#"{"alpha": 1.0, "gamma": 1.0}"#),
            ],
            check: cautious,
            param: 1.1,
        },
        Claim {
            id: "mgup-lion-speedup",
            algorithm: "mgup-lion",
            paper: "MGUP: A Momentum-Gradient Alignment Update Policy for Stochastic Optimization (MGUP-Lion of the official code; the paper's theory covers Adam only)",
            statement: "The MGUP policy keeps Lion convergent and does not slow it down.",
            quantity: "As for MGUP-AdamW, against the same optimizer with α = γ = 1 (exactly Lion).",
            tolerance: "all reached, and geometric-mean ratio ≤ 1.1",
            why: "As for MGUP-AdamW.",
            runs: vec![
                // Lion (the base) reaches no least-squares target in the sweep; it does on noisy-quadratic.
                RunReq::swept("noisy-quadratic", "mgup-lion", "mgup-lion", "{}"),
                RunReq::swept("noisy-quadratic", "mgup-lion (α=γ=1)", "mgup-lion", r#"{"alpha": 1.0, "gamma": 1.0}"#),
            ],
            check: cautious,
            param: 1.1,
        },
    ]
    .into_iter()
    .chain(crate::extra_claims())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_algorithm_has_a_claim() {
        let claims = registry();
        for e in steepest::registry::registry() {
            assert!(claims.iter().any(|c| c.algorithm == e.name), "no claim for {}", e.name);
        }
        for c in &claims {
            assert!(
                steepest::registry::lookup(c.algorithm).is_ok(),
                "{}: unknown algorithm",
                c.id
            );
            for r in &c.runs {
                assert!(hyper_from_json(r.hyper).is_some(), "{}: bad hyper {}", c.id, r.hyper);
            }
        }
    }
}
