//! The trusted solver behind every "suboptimality" on real data: Newton's
//! method with backtracking line search on L2-regularized multinomial
//! logistic regression, in f64, to a gradient norm of 1e-10. Its optima are
//! checked against scikit-learn's (`tools/reference/gen_lab_optima.py`,
//! `fixtures/lab/optima.json`).

use crate::data::Dataset;
use crate::linalg::cholesky_solve;
use crate::problems::Logistic;
use crate::{LabError, Result};

/// An exact optimum.
#[derive(Clone, Debug)]
pub struct Solution {
    /// Optimal value.
    pub f_star: f64,
    /// Optimal weights (`classes × d`, row-major).
    pub weight: Vec<f64>,
    /// Optimal intercepts.
    pub bias: Vec<f64>,
    /// Gradient norm at the returned point.
    pub grad_norm: f64,
    /// Newton iterations taken.
    pub iterations: usize,
}

/// Minimizes `(1/n) Σ CE(softmax(W x_i + b), y_i) + (l2/2)||W||²`.
pub fn newton_logistic(data: &Dataset, l2: f64) -> Result<Solution> {
    if !(l2 > 0.0 && l2.is_finite()) {
        return Err(LabError::Config(format!(
            "l2 must be positive for an exact optimum, got {l2}"
        )));
    }
    if data.classes < 2 {
        return Err(LabError::Config(format!(
            "{}: logistic regression needs class labels",
            data.name
        )));
    }
    let (k, d, n) = (data.classes, data.d, data.n);
    let dim = k * d + k;
    let prob = Logistic {
        data: std::sync::Arc::new(data.clone()),
        l2,
        batch: 0,
        f_star: 0.0,
    };
    let mut w = vec![0.0; k * d];
    let mut b = vec![0.0; k];
    let mut iterations = 0;
    let (mut f, mut gw, mut gb) = prob.loss_grads(&w, &b, None);
    for it in 0..100 {
        iterations = it;
        let gnorm = gw.iter().chain(&gb).map(|g| g * g).sum::<f64>().sqrt();
        if gnorm < 1e-10 {
            break;
        }
        // Hessian: (1/n) Σ_i (diag(p) - p pᵀ) ⊗ x̃ x̃ᵀ, x̃ = [x, 1]; plus l2 on W.
        let mut h = vec![0.0; dim * dim];
        let idx = |c: usize, j: usize| if j < d { c * d + j } else { k * d + c };
        let mut z = vec![0.0; k];
        for i in 0..n {
            let x = data.row(i);
            for c in 0..k {
                z[c] = b[c] + w[c * d..(c + 1) * d].iter().zip(x).map(|(w, x)| w * x).sum::<f64>();
            }
            let zmax = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = z.iter().map(|z| (z - zmax).exp()).sum();
            let p: Vec<f64> = z.iter().map(|z| (z - zmax).exp() / s).collect();
            for c in 0..k {
                for e in 0..k {
                    let coef = (if c == e { p[c] } else { 0.0 } - p[c] * p[e]) / n as f64;
                    if coef == 0.0 {
                        continue;
                    }
                    for j in 0..=d {
                        let xj = if j < d { x[j] } else { 1.0 };
                        let row = idx(c, j) * dim;
                        for l in 0..=d {
                            let xl = if l < d { x[l] } else { 1.0 };
                            h[row + idx(e, l)] += coef * xj * xl;
                        }
                    }
                }
            }
        }
        for q in 0..k * d {
            h[q * dim + q] += l2;
        }
        // The intercepts are shift-invariant (softmax): a tiny ridge makes the system definite.
        for q in k * d..dim {
            h[q * dim + q] += 1e-12;
        }
        let grad: Vec<f64> = gw.iter().chain(&gb).cloned().collect();
        let step = cholesky_solve(&h, &grad, dim)
            .ok_or_else(|| LabError::Config(format!("{}: Newton system not positive definite", data.name)))?;
        let slope: f64 = grad.iter().zip(&step).map(|(g, s)| g * s).sum();
        let mut alpha = 1.0;
        loop {
            let w2: Vec<f64> = w.iter().zip(&step[..k * d]).map(|(w, s)| w - alpha * s).collect();
            let b2: Vec<f64> = b.iter().zip(&step[k * d..]).map(|(b, s)| b - alpha * s).collect();
            let (f2, gw2, gb2) = prob.loss_grads(&w2, &b2, None);
            if f2 <= f - 1e-4 * alpha * slope || alpha < 1e-10 {
                if f2 <= f {
                    w = w2;
                    b = b2;
                    f = f2;
                    gw = gw2;
                    gb = gb2;
                }
                break;
            }
            alpha *= 0.5;
        }
    }
    let grad_norm = gw.iter().chain(&gb).map(|g| g * g).sum::<f64>().sqrt();
    Ok(Solution {
        f_star: f,
        weight: w,
        bias: b,
        grad_norm,
        iterations,
    })
}
