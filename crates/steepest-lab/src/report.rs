//! Everything `steepest bench` writes: per-trial JSONL, the leaderboard CSV,
//! claims JSON, machine metadata, plots (SVG and PNG) and one self-contained
//! `report.html`; and the summary printed in the terminal.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use crate::bench::{BenchResults, RunResult};
use crate::plot::{self, Chart, Line, PngRenderer};
use crate::runner::Status;
use crate::stats::{median, performance_profile};
use crate::{LabError, Result};

fn io(path: &Path, e: std::io::Error) -> LabError {
    LabError::Io(format!("{}: {e}", path.display()))
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| io(path, e))
}

fn fmt(x: f64) -> String {
    if x.is_nan() {
        "—".into()
    } else if x.is_infinite() {
        "∞".into()
    } else if x == 0.0 || (1e-2..1e4).contains(&x.abs()) {
        format!("{x:.3}")
    } else {
        format!("{x:.2e}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Machine and version metadata.
pub fn metadata(r: &BenchResults) -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let git = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    json!({
        "steepest_version": env!("CARGO_PKG_VERSION"),
        "git_revision": git,
        "suite": r.suite.name(),
        "seeds": r.seeds,
        "sweep": r.sweep,
        "cpu": cpu,
        "threads": rayon::current_num_threads(),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "unix_time": now,
        "wall_seconds": r.wall_seconds,
        "command": std::env::args().collect::<Vec<_>>().join(" "),
    })
}

fn curve_chart(r: &BenchResults, w: &crate::workloads::Workload) -> Chart {
    let mut lines = Vec::new();
    for o in &r.optimizers {
        let Some(run) = r.get(&w.name, o) else { continue };
        if run.not_applicable.is_some() || run.seeds.is_empty() {
            continue;
        }
        let n = run.seeds.iter().map(|t| t.points.len()).min().unwrap_or(0);
        let mut pts = Vec::new();
        let mut band = Vec::new();
        for i in 0..n {
            let vals: Vec<f64> = run.seeds.iter().map(|t| t.points[i].metric).collect();
            let x = run.seeds[0].points[i].step as f64;
            pts.push((x, median(&vals).unwrap_or(f64::NAN)));
            let lo = vals.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            band.push((x, lo, hi));
        }
        lines.push(Line {
            band,
            ..Line::new(o.clone(), pts)
        });
    }
    Chart {
        title: format!("{} — median over {} seeds, band = min..max", w.name, r.seeds),
        x_label: "step".into(),
        y_label: w.metric.clone(),
        log_x: false,
        log_y: w.log_metric,
        lines,
        hlines: w.target.map(|t| vec![(t, "target".to_string())]).unwrap_or_default(),
    }
}

/// Steps-to-target costs (optimizers × workloads with targets) for the performance profile.
fn profile_costs(r: &BenchResults) -> (Vec<String>, Vec<Vec<f64>>) {
    let ws: Vec<&crate::workloads::Workload> = r
        .workloads
        .iter()
        .filter(|w| w.leaderboard && w.target.is_some())
        .collect();
    let costs = r
        .optimizers
        .iter()
        .map(|o| {
            ws.iter()
                .map(|w| r.get(&w.name, o).map_or(f64::INFINITY, RunResult::median_steps))
                .collect()
        })
        .collect();
    (ws.iter().map(|w| w.name.clone()).collect(), costs)
}

fn profile_chart(r: &BenchResults) -> Chart {
    let (_, costs) = profile_costs(r);
    let taus: Vec<f64> = (0..=40).map(|i| 10f64.powf(i as f64 * 0.05)).collect();
    let prof = performance_profile(&costs, &taus);
    let lines = r
        .optimizers
        .iter()
        .zip(prof)
        .map(|(o, p)| Line {
            steps: true,
            ..Line::new(o.clone(), taus.iter().cloned().zip(p).collect())
        })
        .collect();
    Chart {
        title: "Performance profile: steps to target (Dolan–Moré)".into(),
        x_label: "τ (within this factor of the best optimizer's steps)".into(),
        y_label: "fraction of workloads".into(),
        log_x: true,
        log_y: false,
        lines,
        hlines: vec![],
    }
}

fn claim_chart(c: &crate::claims::ClaimResult) -> Option<Chart> {
    let p = c.plot.as_ref()?;
    Some(Chart {
        title: format!("{} — {}", c.id, c.verdict),
        x_label: p.x_label.clone(),
        y_label: p.y_label.clone(),
        log_x: p.log_x,
        log_y: p.log_y,
        lines: p
            .series
            .iter()
            .map(|s| Line {
                dashed: s.dashed,
                ..Line::new(s.label.clone(), s.points.clone())
            })
            .collect(),
        hlines: vec![],
    })
}

/// Writes every output into `dir`; returns the path of `report.html`.
pub fn write_all(r: &BenchResults, dir: &Path) -> Result<std::path::PathBuf> {
    let plots = dir.join("plots");
    std::fs::create_dir_all(&plots).map_err(|e| io(&plots, e))?;
    // Trials.
    let mut jsonl = String::new();
    for run in r.runs.values() {
        for t in run.sweep.iter().chain(run.seeds.iter().filter(|t| t.phase == "seeds")) {
            jsonl.push_str(&serde_json::to_string(t).map_err(|e| LabError::Io(e.to_string()))?);
            jsonl.push('\n');
        }
    }
    write(&dir.join("trials.jsonl"), jsonl)?;
    // Leaderboard CSV.
    let mut csv = String::from(
        "workload,optimizer,status,lr_factor,lr,seeds,reached,median_steps_to_target,median_seconds_to_target,median_final_metric\n",
    );
    for run in r.runs.values() {
        let lr = run
            .seeds
            .first()
            .and_then(|t| t.hyper.get("lr"))
            .and_then(|v| v.as_f64());
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{}",
            run.workload,
            run.label.replace(',', ";"),
            if run.not_applicable.is_some() { "n/a" } else { "ok" },
            run.chosen_factor.map_or(String::new(), |f| format!("{f}")),
            lr.map_or(String::new(), |v| format!("{v}")),
            run.seeds.len(),
            run.reached(),
            run.median_steps(),
            run.median_time(),
            run.median_final()
        );
    }
    write(&dir.join("leaderboard.csv"), csv)?;
    write(
        &dir.join("claims.json"),
        serde_json::to_string_pretty(&r.claims).map_err(|e| LabError::Io(e.to_string()))?,
    )?;
    let meta = metadata(r);
    write(
        &dir.join("meta.json"),
        serde_json::to_string_pretty(&meta).map_err(|e| LabError::Io(e.to_string()))?,
    )?;

    // Plots.
    let png = PngRenderer::new();
    let save = |name: &str, chart: &Chart, w: u32, h: u32| -> Result<String> {
        let s = plot::svg(chart, w, h);
        write(&plots.join(format!("{name}.svg")), &s)?;
        let bytes = png.png(&s).map_err(|e| LabError::Io(format!("{name}.png: {e}")))?;
        write(&plots.join(format!("{name}.png")), bytes)?;
        Ok(s)
    };
    let profile_svg = save("performance-profile", &profile_chart(r), 900, 420)?;
    let mut workload_svgs = Vec::new();
    for w in r.workloads.iter().filter(|w| w.leaderboard) {
        workload_svgs.push(save(&format!("curves-{}", w.name), &curve_chart(r, w), 900, 440)?);
    }
    let mut claim_svgs = Vec::new();
    for c in &r.claims {
        claim_svgs.push(match claim_chart(c) {
            Some(ch) => Some(save(&format!("claim-{}", c.id), &ch, 640, 320)?),
            None => None,
        });
    }

    // HTML.
    let (pass, fail, err) = r
        .claims
        .iter()
        .fold((0, 0, 0), |(p, f, e), c| match c.verdict.as_str() {
            "PASS" => (p + 1, f, e),
            "FAIL" => (p, f + 1, e),
            _ => (p, f, e + 1),
        });
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>steepest bench — {suite}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1180px;margin:24px auto;padding:0 16px;color:#1d1d1f;line-height:1.45}}
h1{{font-size:26px;margin-bottom:4px}} h2{{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}} h3{{margin-bottom:4px}}
.sub{{color:#666}} table{{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}}
th,td{{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}} th{{background:#fafafa}}
td.num{{text-align:right;font-variant-numeric:tabular-nums}}
.PASS{{background:#e3f6e5;color:#17612a;font-weight:bold;padding:1px 8px;border-radius:10px}}
.FAIL{{background:#fde7e7;color:#a11;font-weight:bold;padding:1px 8px;border-radius:10px}}
.ERROR{{background:#fff4d6;color:#8a5a00;font-weight:bold;padding:1px 8px;border-radius:10px}}
.cards{{display:flex;gap:12px;flex-wrap:wrap}} .card{{border:1px solid #e3e3e3;border-radius:8px;padding:10px 16px;min-width:120px}}
.card b{{font-size:24px;display:block}} .claim{{border:1px solid #e6e6e6;border-radius:8px;padding:10px 14px;margin:14px 0}}
.claim .meta{{font-size:13px;color:#444}} svg{{max-width:100%;height:auto}} details{{margin:6px 0}} code{{background:#f4f4f4;padding:0 3px}}
.best{{font-weight:bold}}
</style></head><body>
<h1>steepest bench — {suite} suite</h1>
<div class="sub">{n_opt} optimizers × {n_w} workloads, {seeds} seeds per chosen configuration, {trials} trials in {wall:.0} s · steepest {ver} {git} · {cpu}, {threads} threads</div>
<div class="cards" style="margin-top:14px">
<div class="card"><b>{pass}</b>claims pass</div><div class="card"><b>{fail}</b>claims fail</div><div class="card"><b>{err}</b>could not be checked</div>
<div class="card"><b>{n_w}</b>workloads</div></div>
"#,
        suite = r.suite.name(),
        n_opt = r.optimizers.len(),
        n_w = r.workloads.iter().filter(|w| w.leaderboard).count(),
        seeds = r.seeds,
        trials = r
            .runs
            .values()
            .map(|x| x.sweep.len() + x.seeds.iter().filter(|t| t.phase == "seeds").count())
            .sum::<usize>(),
        wall = r.wall_seconds,
        ver = env!("CARGO_PKG_VERSION"),
        git = meta["git_revision"].as_str().unwrap_or(""),
        cpu = esc(meta["cpu"].as_str().unwrap_or("")),
        threads = meta["threads"],
    );
    for n in &r.notes {
        let _ = write!(h, "<p class=sub>Note: {}</p>", esc(n));
    }
    // Claims.
    h.push_str("<h2>Convergence claims</h2><p>Each registered algorithm's paper claim, measured. A FAIL is reported with its numbers, never weakened.</p><table><tr><th>claim</th><th>algorithm</th><th>verdict</th><th class=num>measured</th><th class=num>threshold</th><th>tolerance</th></tr>");
    for c in &r.claims {
        let _ = write!(
            h,
            r##"<tr><td><a href="#claim-{id}">{id}</a></td><td><code>{alg}</code></td><td><span class="{v}">{v}</span></td><td class=num>{val}</td><td class=num>{th}</td><td>{tol}</td></tr>"##,
            id = c.id,
            alg = c.algorithm,
            v = c.verdict,
            val = fmt(c.value),
            th = fmt(c.threshold),
            tol = esc(&c.tolerance)
        );
    }
    h.push_str("</table>");
    for (c, svg) in r.claims.iter().zip(&claim_svgs) {
        let _ = write!(
            h,
            r#"<div class="claim" id="claim-{id}"><h3>{id} <span class="{v}">{v}</span></h3>
<div class="meta"><b>Paper:</b> {paper}<br><b>Claim:</b> {st}<br><b>Measured:</b> {q}<br><b>Tolerance:</b> {tol} — {why}<br><b>Workloads:</b> {ws}</div>
<p>{summary}</p>{svg}</div>"#,
            id = c.id,
            v = c.verdict,
            paper = esc(&c.paper),
            st = esc(&c.statement),
            q = esc(&c.quantity),
            tol = esc(&c.tolerance),
            why = esc(&c.why),
            ws = c.workloads.join(", "),
            summary = esc(&c.summary),
            svg = svg.clone().unwrap_or_default()
        );
    }
    // Leaderboards.
    h.push_str("<h2>Leaderboard</h2><p>Steps and seconds to the workload's target (median over seeds; ∞ when most seeds miss it), then the median final metric. Each optimizer ran at its best learning rate from the same sweep (see Method).</p>");
    let (names, _) = profile_costs(r);
    if !names.is_empty() {
        let _ = write!(h, "<h3>Performance profile</h3><p class=sub>Over the {} workloads with a target. Higher and further left is better.</p>{profile_svg}", names.len());
    }
    for (w, svg) in r.workloads.iter().filter(|w| w.leaderboard).zip(&workload_svgs) {
        let _ = write!(
            h,
            r#"<h3 id="w-{name}">{name}</h3><div class=sub>{title} · {family} · target {target} · {steps} steps · eval every {ev}</div><p>{desc}</p>"#,
            name = w.name,
            title = esc(&w.title),
            family = w.family.name(),
            target = w.target.map_or("none".into(), fmt),
            steps = w.steps,
            ev = w.eval_every,
            desc = esc(&w.description)
        );
        let mut rows: Vec<&RunResult> = r.optimizers.iter().filter_map(|o| r.get(&w.name, o)).collect();
        rows.sort_by(|a, b| {
            a.median_steps()
                .total_cmp(&b.median_steps())
                .then(a.median_final().total_cmp(&b.median_final()))
        });
        let best = rows.first().map(|b| (b.median_steps(), b.median_final()));
        h.push_str("<table><tr><th>#</th><th>optimizer</th><th class=num>lr</th><th class=num>reached</th><th class=num>steps to target</th><th class=num>seconds to target</th><th class=num>final metric</th><th>sweep (factor: final metric)</th></tr>");
        for (i, run) in rows.iter().enumerate() {
            if let Some(na) = &run.not_applicable {
                let _ = write!(
                    h,
                    "<tr><td></td><td><code>{}</code></td><td colspan=6 class=sub>n/a — {}</td></tr>",
                    run.label,
                    esc(na)
                );
                continue;
            }
            let lr = run
                .seeds
                .first()
                .and_then(|t| t.hyper.get("lr"))
                .and_then(|v| v.as_f64())
                .unwrap_or(f64::NAN);
            let sweep: Vec<String> = run
                .sweep
                .iter()
                .map(|t| {
                    let v = if t.status == Status::Ok {
                        fmt(t.final_metric)
                    } else {
                        "diverged".into()
                    };
                    let mark = if Some(t.lr_factor) == run.chosen_factor {
                        "★"
                    } else {
                        ""
                    };
                    format!("{mark}{}: {v}", fmt(t.lr_factor))
                })
                .collect();
            let cls = if Some((run.median_steps(), run.median_final())) == best {
                " class=best"
            } else {
                ""
            };
            let _ = write!(
                h,
                "<tr{cls}><td>{}</td><td><code>{}</code></td><td class=num>{}</td><td class=num>{}/{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td><details><summary>{} trials</summary>{}</details></td></tr>",
                i + 1,
                run.label,
                fmt(lr),
                run.reached(),
                run.seeds.len(),
                fmt(run.median_steps()),
                fmt(run.median_time()),
                fmt(run.median_final()),
                run.sweep.len(),
                sweep.join("<br>")
            );
        }
        h.push_str("</table>");
        h.push_str(svg);
    }
    // Method.
    let _ = write!(
        h,
        r#"<h2>Method</h2><ul>
<li><b>Learning-rate sweep</b> (the same for every optimizer and workload): the optimizer's default learning rates × 10^k for k in {coarse:?}, then × 10^±½ around the best: {budget} trials on seed 0. Best = fewest steps to target, else lowest final metric (median of the last three evaluations); diverged trials lose. The chosen rate then runs on seeds 0..{seeds}.</li>
<li><b>Weight decay</b> is 0 for every optimizer unless a claim sets it: regularization is part of each workload's loss, so all methods aim at the same optimum.</li>
<li><b>Determinism</b>: problems, initial points, noise and minibatches come from seeded generators; optimizer kernels are thread-count independent. The same seeds give the same numbers (wall-clock times aside).</li>
<li><b>Exact optima</b>: least squares by Cholesky; logistic regression by Newton's method to ‖∇f‖ &lt; 1e-10 (checked against scikit-learn in the test suite).</li>
<li><b>Files</b>: <code>trials.jsonl</code> (every trial: hyperparameters, seed, metric, loss, gradient norm and wall time at each evaluation), <code>leaderboard.csv</code>, <code>claims.json</code>, <code>meta.json</code>, <code>plots/*.svg|png</code>.</li>
</ul><p class=sub>Generated by <code>{cmd}</code>.</p></body></html>"#,
        coarse = r.sweep.coarse,
        budget = r.sweep.budget(),
        seeds = r.seeds - 1,
        cmd = esc(meta["command"].as_str().unwrap_or("steepest bench")),
    );
    let path = dir.join("report.html");
    write(&path, h)?;
    Ok(path)
}

/// The terminal summary: claims, then the winners per workload.
pub fn summary(r: &BenchResults) -> String {
    let mut s = String::new();
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    let _ = writeln!(s, "\nClaims ({} checked)", r.claims.len());
    let _ = writeln!(
        s,
        "  {:<26} {:<12} {:<7} {:>11} {:>11}",
        "claim", "algorithm", "verdict", "measured", "threshold"
    );
    for c in &r.claims {
        let _ = writeln!(
            s,
            "  {:<26} {:<12} {:<7} {:>11} {:>11}",
            c.id,
            c.algorithm,
            c.verdict,
            fmt(c.value),
            fmt(c.threshold)
        );
    }
    let _ = writeln!(
        s,
        "\nLeaderboard (median steps to target over {} seeds; top 3)",
        r.seeds
    );
    for w in r.workloads.iter().filter(|w| w.leaderboard) {
        let mut rows: Vec<&RunResult> = r
            .optimizers
            .iter()
            .filter_map(|o| r.get(&w.name, o))
            .filter(|x| x.not_applicable.is_none())
            .collect();
        rows.sort_by(|a, b| {
            a.median_steps()
                .total_cmp(&b.median_steps())
                .then(a.median_final().total_cmp(&b.median_final()))
        });
        let top: Vec<String> = rows
            .iter()
            .take(3)
            .map(|x| {
                if x.median_steps().is_finite() {
                    format!("{} {:.0}", x.label, x.median_steps())
                } else {
                    format!("{} (final {})", x.label, fmt(x.median_final()))
                }
            })
            .collect();
        let _ = writeln!(s, "  {:<24} {}", w.name, top.join(", "));
    }
    s
}

/// The head of the suites' single-page reports (`distributed.html`,
/// `federated.html`): document head, shared style, and the opening body tag.
pub fn page_head(title: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1180px;margin:24px auto;padding:0 16px;color:#1d1d1f;line-height:1.45}}
h1{{font-size:26px;margin-bottom:4px}} h2{{margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}}
.sub{{color:#666}} table{{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}}
th,td{{border-bottom:1px solid #eee;padding:4px 8px;text-align:left}} th{{background:#fafafa}}
td.num{{text-align:right;font-variant-numeric:tabular-nums}} td.bad{{color:#b00020;font-weight:600}}
svg{{max-width:100%;height:auto}} code{{background:#f4f4f4;padding:0 3px}}
</style></head><body>
"#,
        title.replace('&', "&amp;").replace('<', "&lt;")
    )
}
