//! Bring-your-own workloads: a TOML file names a data file and a convex task,
//! and the lab solves it exactly and runs every optimizer on it.
//!
//! ```toml
//! name = "my-logreg"        # lowercase, hyphenated
//! task = "logistic"         # "logistic" (binary or multiclass) or "least-squares" (ridge)
//! data = "cancer.csv"       # relative to the TOML file
//! format = "csv"            # "csv" or "libsvm" (default: csv for *.csv, else libsvm)
//! label_column = "last"     # csv: "first" or "last"
//! standardize = true        # z-score every feature (default true)
//! l2 = 1e-3                 # penalty (l2/2)‖W‖² (the intercept is not penalized); logistic needs l2 > 0
//! batch_size = 0            # 0: full-batch gradients; else shuffled minibatches
//! target = 1e-8             # target of f − f*
//! steps = 1000
//! eval_every = 10
//! schedule = "constant"     # "constant", "cosine" or "inverse-sqrt"
//! ```
//!
//! The exact optimum comes from Newton's method (logistic) or the normal
//! equations by Cholesky (least squares), in f64; the workload's description
//! in the report gives `f*`.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use steepest::schedule::Schedule;
use steepest::{GradSet, ParamSet};

use crate::data::{self, Dataset, LabelColumn};
use crate::linalg::cholesky_solve;
use crate::problems::{Eval, EvalCtx, Logistic, Problem};
use crate::rng::Rng;
use crate::workloads::{Body, Family, Suite, Workload};
use crate::{LabError, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: String,
    task: String,
    data: String,
    format: Option<String>,
    label_column: Option<String>,
    standardize: Option<bool>,
    l2: Option<f64>,
    batch_size: Option<usize>,
    target: Option<f64>,
    steps: Option<u64>,
    eval_every: Option<u64>,
    schedule: Option<String>,
}

/// Ridge regression `1/(2n) ‖X w + b − y‖² + (l2/2)‖w‖²` with its exact optimum.
pub struct Ridge {
    data: Arc<Dataset>,
    l2: f64,
    batch: usize,
    /// Optimal value.
    pub f_star: f64,
    /// Optimal weights then intercept.
    pub x_star: Vec<f64>,
}

impl Ridge {
    /// Builds and solves.
    pub fn new(data: Arc<Dataset>, l2: f64, batch: usize) -> Result<Ridge> {
        let d = data.d;
        let m = d + 1;
        let mut a = vec![0.0; m * m];
        let mut rhs = vec![0.0; m];
        let n = data.n as f64;
        for i in 0..data.n {
            let x = data.row(i);
            for j in 0..m {
                let xj = if j < d { x[j] } else { 1.0 };
                rhs[j] += xj * data.y[i] / n;
                for k in 0..m {
                    let xk = if k < d { x[k] } else { 1.0 };
                    a[j * m + k] += xj * xk / n;
                }
            }
        }
        for j in 0..d {
            a[j * m + j] += l2;
        }
        let x_star = cholesky_solve(&a, &rhs, m).ok_or_else(|| {
            LabError::Config(format!(
                "{}: the least-squares system is singular; use l2 > 0",
                data.name
            ))
        })?;
        let mut r = Ridge {
            data,
            l2,
            batch,
            f_star: 0.0,
            x_star,
        };
        r.f_star = r.loss_grad_rows(&r.x_star[..d], r.x_star[d], None).0;
        Ok(r)
    }

    fn loss_grad_rows(&self, w: &[f64], b: f64, rows: Option<&[usize]>) -> (f64, Vec<f64>, f64) {
        let ds = &self.data;
        let all: Vec<usize>;
        let rows = match rows {
            Some(r) => r,
            None => {
                all = (0..ds.n).collect();
                &all
            }
        };
        let m = rows.len() as f64;
        let mut gw = vec![0.0; ds.d];
        let mut gb = 0.0;
        let mut loss = 0.0;
        for &i in rows {
            let x = ds.row(i);
            let r = x.iter().zip(w).map(|(x, w)| x * w).sum::<f64>() + b - ds.y[i];
            loss += 0.5 * r * r / m;
            gb += r / m;
            for (g, x) in gw.iter_mut().zip(x) {
                *g += r * x / m;
            }
        }
        loss += 0.5 * self.l2 * w.iter().map(|w| w * w).sum::<f64>();
        for (g, w) in gw.iter_mut().zip(w) {
            *g += self.l2 * w;
        }
        (loss, gw, gb)
    }
}

impl Problem for Ridge {
    fn init(&self, _seed: u64) -> ParamSet<f64> {
        let mut p = ParamSet::new();
        let _ = p.push("weight", &[self.data.d], vec![0.0; self.data.d]);
        let _ = p.push("bias", &[1], vec![0.0]);
        p
    }

    fn loss_grad(&self, p: &ParamSet<f64>, seed: u64, t: u64, g: &mut GradSet<f64>) -> f64 {
        let w = p.get("weight").map(|x| x.data.clone()).unwrap_or_default();
        let b = p.get("bias").map_or(0.0, |x| x.data[0]);
        let (loss, gw, gb) = if self.batch == 0 || self.batch >= self.data.n {
            self.loss_grad_rows(&w, b, None)
        } else {
            let per_epoch = (self.data.n / self.batch) as u64;
            let perm = Rng::new(seed ^ 0xba7c, (t - 1) / per_epoch).permutation(self.data.n);
            let pos = ((t - 1) % per_epoch) as usize;
            self.loss_grad_rows(&w, b, Some(&perm[pos * self.batch..(pos + 1) * self.batch]))
        };
        g.insert("weight", gw);
        g.insert("bias", vec![gb]);
        loss
    }

    fn eval(&self, p: &ParamSet<f64>, _: &EvalCtx) -> Eval {
        let w = p.get("weight").map(|x| x.data.clone()).unwrap_or_default();
        let b = p.get("bias").map_or(0.0, |x| x.data[0]);
        let (loss, gw, gb) = self.loss_grad_rows(&w, b, None);
        let gn = (gw.iter().map(|g| g * g).sum::<f64>() + gb * gb).sqrt();
        Eval {
            metric: (loss - self.f_star).max(0.0),
            loss,
            grad_norm: gn,
            aux: f64::NAN,
        }
    }

    fn metric_name(&self) -> &'static str {
        "f(x) - f*"
    }
}

/// Reads a workload file.
pub fn load(path: &Path) -> Result<Workload> {
    let text =
        std::fs::read_to_string(path).map_err(|e| LabError::Config(format!("cannot read {}: {e}", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base).map_err(|e| match e {
        LabError::Config(m) => LabError::Config(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// Parses a workload file's text; data paths are relative to `base`.
pub fn parse(text: &str, base: &Path) -> Result<Workload> {
    let spec: Spec = toml::from_str(text).map_err(|e| LabError::Config(e.to_string().trim().replace('\n', " ")))?;
    let bad = |field: &str, msg: String| LabError::Config(format!("`{field}`: {msg}"));
    if spec.name.is_empty()
        || !spec
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(bad(
            "name",
            format!("use lowercase letters, digits and '-', got {:?}", spec.name),
        ));
    }
    let steps = spec.steps.unwrap_or(1000);
    if steps == 0 || steps > 10_000_000 {
        return Err(bad("steps", format!("must be in 1..=10000000, got {steps}")));
    }
    let eval_every = spec.eval_every.unwrap_or((steps / 100).max(1));
    if eval_every == 0 {
        return Err(bad("eval_every", "must be at least 1".into()));
    }
    let target = spec.target.unwrap_or(1e-6);
    if !(target.is_finite() && target > 0.0) {
        return Err(bad("target", format!("must be a positive number, got {target}")));
    }
    let l2 = spec.l2.unwrap_or(1e-3);
    if !(l2.is_finite() && l2 >= 0.0) {
        return Err(bad("l2", format!("must be ≥ 0, got {l2}")));
    }
    let schedule = match spec.schedule.as_deref().unwrap_or("constant") {
        "constant" => Schedule::Constant,
        "cosine" => Schedule::Cosine {
            total_steps: steps,
            warmup_steps: 0,
            min_factor: 0.0,
        },
        "inverse-sqrt" => Schedule::InverseSqrt { warmup_steps: 0 },
        other => {
            return Err(bad(
                "schedule",
                format!("expected constant, cosine or inverse-sqrt, got {other:?}"),
            ))
        }
    };
    let path = base.join(&spec.data);
    let format = spec.format.clone().unwrap_or_else(|| {
        if spec.data.to_ascii_lowercase().ends_with(".csv") {
            "csv".into()
        } else {
            "libsvm".into()
        }
    });
    let classification = match spec.task.as_str() {
        "logistic" => true,
        "least-squares" => false,
        other => {
            return Err(bad(
                "task",
                format!("expected \"logistic\" or \"least-squares\", got {other:?}"),
            ))
        }
    };
    let label = match spec.label_column.as_deref().unwrap_or("last") {
        "last" => LabelColumn::Last,
        "first" => LabelColumn::First,
        other => {
            return Err(bad(
                "label_column",
                format!("expected \"first\" or \"last\", got {other:?}"),
            ))
        }
    };
    let mut ds = match format.as_str() {
        "csv" => data::load_csv(&path, label, classification)?,
        "libsvm" => data::load_libsvm(&path, classification)?,
        other => return Err(bad("format", format!("expected \"csv\" or \"libsvm\", got {other:?}"))),
    };
    ds.name = spec.name.clone();
    if spec.standardize.unwrap_or(true) {
        ds.standardize();
    }
    let batch = spec.batch_size.unwrap_or(0);
    let (n, d, k) = (ds.n, ds.d, ds.classes);
    let (problem, f_star, what): (Arc<dyn Problem>, f64, String) = if classification {
        if l2 == 0.0 {
            return Err(bad(
                "l2",
                "logistic regression needs l2 > 0 for a unique, finite optimum".into(),
            ));
        }
        let p = Logistic::new(Arc::new(ds), l2, batch)?;
        let f = p.f_star;
        (
            Arc::new(p),
            f,
            format!("L2-regularized logistic regression ({k} classes)"),
        )
    } else {
        let p = Ridge::new(Arc::new(ds), l2, batch)?;
        let f = p.f_star;
        (Arc::new(p), f, "least squares (ridge)".to_string())
    };
    Ok(Workload {
        name: spec.name.clone(),
        title: format!("{what} on {} ({n} × {d})", spec.data),
        description: format!(
            "Bring-your-own workload: {what}, l2 = {l2}, {}; f* = {f_star:.15} (exact solver, f64).",
            if batch == 0 {
                "full-batch gradients".to_string()
            } else {
                format!("minibatches of {batch}")
            }
        ),
        family: Family::Custom,
        body: Body::Problem(problem),
        metric: "f(x) - f*".into(),
        target: Some(target),
        steps,
        eval_every,
        schedule,
        suite: Suite::Quick,
        leaderboard: true,
        log_metric: true,
        requires: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_clear_errors() {
        let base = Path::new("/nonexistent");
        for (text, needle) in [
            ("name = 'a'", "missing field"),
            ("name = 'A b'\ntask='logistic'\ndata='x.csv'", "`name`"),
            ("name = 'a'\ntask='svm'\ndata='x.csv'", "`task`"),
            ("name = 'a'\ntask='logistic'\ndata='x.csv'\nsteps=0", "`steps`"),
            ("name = 'a'\ntask='logistic'\ndata='x.csv'\ntarget=-1", "`target`"),
            (
                "name = 'a'\ntask='logistic'\ndata='x.csv'\nschedule='warm'",
                "`schedule`",
            ),
            ("name = 'a'\ntask='logistic'\ndata='x.csv'\nbogus=1", "unknown field"),
            ("name = 'a'\ntask='logistic'\ndata='x.csv'", "cannot read"),
        ] {
            let e = parse(text, base).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn ridge_optimum_has_zero_gradient() {
        let ds = data::parse_csv("t", "1,2,3\n2,1,1\n0,1,2\n1,1,1\n3,0,2\n", LabelColumn::Last, false).unwrap();
        let r = Ridge::new(Arc::new(ds), 0.1, 0).unwrap();
        let (_, gw, gb) = r.loss_grad_rows(&r.x_star[..2], r.x_star[2], None);
        assert!(gw.iter().chain([&gb]).all(|g| g.abs() < 1e-12), "{gw:?} {gb}");
    }
}
