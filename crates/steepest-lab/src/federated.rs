//! The federated section of the lab: renders what
//! [`steepest_fed::bench::run`] measured (`steepest bench --suite federated`)
//! as `federated.html` (a table and charts, inline SVG) next to
//! `federated.json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use steepest_fed::bench::{attacks, robustness_table, FedBench, FedSeries};

use crate::plot::{svg, Chart, Line};
use crate::{LabError, Result};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn chart(title: &str, y_label: &str, series: &[&FedSeries], y: fn(&FedSeries) -> &Vec<f64>, log_y: bool) -> String {
    let lines = series
        .iter()
        .map(|s| {
            let pts = s.rounds.iter().zip(y(s)).map(|(&r, &v)| (r as f64, v)).collect();
            let mut l = Line::new(s.label.clone(), pts);
            l.dashed = s.strategy == "fedavg";
            l
        })
        .collect();
    svg(
        &Chart {
            title: title.into(),
            x_label: "round".into(),
            y_label: y_label.into(),
            log_x: false,
            log_y,
            lines,
            hlines: Vec::new(),
        },
        760,
        360,
    )
}

/// Writes `federated.html` and `federated.json` into `dir`; returns the HTML's path.
pub fn write(b: &FedBench, dir: &Path) -> Result<PathBuf> {
    steepest_fed::bench::write_json(b, dir).map_err(|e| LabError::Io(e.to_string()))?;
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>steepest bench — federated</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1180px;margin:24px auto;padding:0 16px;color:#1d1d1f;line-height:1.45}}
h1{{font-size:26px;margin-bottom:4px}} h2{{margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}}
.sub{{color:#666}} table{{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}}
th,td{{border-bottom:1px solid #eee;padding:4px 8px;text-align:left}} th{{background:#fafafa}}
td.num{{text-align:right;font-variant-numeric:tabular-nums}} td.bad{{color:#b00020;font-weight:600}}
svg{{max-width:100%;height:auto}} code{{background:#f4f4f4;padding:0 3px}}
</style></head><body>
<h1>steepest bench — federated</h1>
<div class="sub">Multinomial logistic regression ({p} parameters, f64) over {n} clients with Dirichlet(α = {a}) label skew, {k} clients sampled uniformly per round, {r} rounds, 5 local SGD steps (lr 0.1, batch 16), {s} seeds (medians shown) · simulator on {t} threads · {wall:.1} s on this machine</div>
<h2>Strategies</h2>
<table><tr><th>strategy</th><th class=num>test accuracy</th><th class=num>test loss</th><th class=num>uplink values / client update</th><th class=num>client updates / s</th><th>options</th></tr>
"#,
        p = b.parameters,
        n = b.clients,
        a = b.alpha,
        k = b.per_round,
        r = b.rounds,
        s = b.seeds,
        t = b.threads,
        wall = b.wall_seconds,
    );
    for s in &b.series {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=num>{:.4}</td><td class=num>{:.4}</td><td class=num>{:.1}</td><td class=num>{:.0}</td><td><code>{}</code></td></tr>",
            esc(&s.label),
            s.median_accuracy(),
            s.median_loss(),
            s.uplink_per_update,
            s.updates_per_sec,
            esc(&s.opts)
        );
    }
    h.push_str("</table>");
    let all: Vec<&FedSeries> = b.series.iter().collect();
    h.push_str("<h2>Test accuracy against rounds</h2>");
    h.push_str(&chart(
        "accuracy vs round",
        "test accuracy",
        &all,
        |s| &s.accuracy,
        false,
    ));
    h.push_str("<h2>Test loss against rounds</h2>");
    h.push_str(&chart("loss vs round", "test loss", &all, |s| &s.loss, true));
    let _ = write!(
        h,
        "<h2>Robustness: {:.0}% of the clients poisoning</h2><p class=sub>A fixed, seeded set of clients replaces its update \
         (sign flip <code>x − 4Δ</code>, scaling <code>x + 100Δ</code>, Gaussian <code>x + N(0, 1)</code>). Final test accuracy; \
         red: more than 5 points below the aggregator's own clean run.</p><table><tr><th>aggregator</th><th class=num>clean</th>",
        100.0 * b.malicious
    );
    for (a, _) in attacks() {
        let _ = write!(h, "<th class=num>{}</th>", esc(a));
    }
    h.push_str("</tr>");
    for (label, clean, cells) in robustness_table(b) {
        let _ = write!(h, "<tr><td>{}</td><td class=num>{clean:.4}</td>", esc(&label));
        for c in cells {
            let class = if c < clean - 0.05 { "num bad" } else { "num" };
            let _ = write!(h, "<td class=\"{class}\">{c:.4}</td>");
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    if let Some((first, _)) = attacks().first() {
        let under: Vec<&FedSeries> = b
            .attacked
            .iter()
            .filter(|s| s.attack.as_deref() == Some(*first))
            .collect();
        let _ = write!(h, "<h2>Test accuracy against rounds under {}</h2>", esc(first));
        h.push_str(&chart(
            &format!("accuracy vs round, {first}"),
            "test accuracy",
            &under,
            |s| &s.accuracy,
            false,
        ));
    }
    let _ = write!(
        h,
        "<p class=sub>Data: <code>federated.json</code>. Generated by <code>steepest bench --suite federated</code>, steepest {}.</p></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    let path = dir.join("federated.html");
    std::fs::write(&path, h).map_err(|e| LabError::Io(format!("{}: {e}", path.display())))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use steepest_fed::bench::{run, FedBenchConfig};

    #[test]
    fn the_report_has_its_tables_and_charts() {
        let cfg = FedBenchConfig {
            clients: 30,
            samples_per_client: 20,
            per_round: 10,
            rounds: 4,
            seeds: 1,
            eval_every: 2,
            progress: false,
            ..FedBenchConfig::default()
        };
        let b = run(&cfg).unwrap();
        let dir = std::env::temp_dir().join(format!("steepest-lab-fed-{}", std::process::id()));
        let path = write(&b, &dir).unwrap();
        let html = std::fs::read_to_string(&path).unwrap();
        assert_eq!(html.matches("<svg").count(), 3);
        for s in &b.series {
            assert!(html.contains(&esc(&s.label)), "{}", s.label);
        }
        assert!(html.contains("Robustness"));
        assert!(dir.join("federated.json").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
