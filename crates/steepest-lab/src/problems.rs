//! The problems behind the workloads: each gives an initial point for a seed,
//! a (possibly stochastic) loss and gradient for step `t`, and an exact
//! evaluation of the workload's metric. Everything is f64 and deterministic
//! in `(seed, t)`.

use std::sync::Arc;

use steepest::{GradSet, ParamSet};

use crate::data::Dataset;
use crate::linalg::{cholesky_solve, nuclear_norm};
use crate::rng::Rng;

/// What an evaluation measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Eval {
    /// The workload's metric (suboptimality, regret, distance, error rate...).
    pub metric: f64,
    /// The full (exact) loss.
    pub loss: f64,
    /// Norm of the exact gradient (nuclear norm for matrix problems, Euclidean otherwise).
    pub grad_norm: f64,
    /// A problem-specific quantity (least squares: `‖x‖∞`; online regression:
    /// distance to the generating point; NaN where there is none).
    pub aux: f64,
}

/// Context of an evaluation.
#[derive(Clone, Copy, Debug)]
pub struct EvalCtx {
    /// Trial seed.
    pub seed: u64,
    /// Steps taken so far.
    pub t: u64,
    /// Sum of the losses returned by `loss_grad` so far (online regret).
    pub cum_loss: f64,
}

/// A problem: parameters, stochastic gradients and an exact metric.
pub trait Problem: Send + Sync {
    /// The initial point for a trial seed.
    fn init(&self, seed: u64) -> ParamSet<f64>;
    /// Loss and gradient at step `t` (1-based) of a trial with `seed`; writes every gradient.
    fn loss_grad(&self, p: &ParamSet<f64>, seed: u64, t: u64, g: &mut GradSet<f64>) -> f64;
    /// The exact evaluation.
    fn eval(&self, p: &ParamSet<f64>, ctx: &EvalCtx) -> Eval;
    /// Name of the metric.
    fn metric_name(&self) -> &'static str;
    /// Per-example gradients of the step's batch (their mean is the gradient
    /// `loss_grad` returns), for optimizers that need them (DP-SGD's
    /// per-sample clipping). `None`: the runner uses micro-batches instead.
    fn sample_grads(&self, p: &ParamSet<f64>, seed: u64, t: u64) -> Option<steepest::SampleGrads<f64>> {
        let _ = (p, seed, t);
        None
    }
}

fn data(p: &ParamSet<f64>, name: &str) -> Vec<f64> {
    p.get(name).map(|x| x.data.clone()).unwrap_or_default()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn randn(rng: &mut Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|_| scale * rng.normal()).collect()
}

/// A random `d × d` orthogonal matrix (Gram–Schmidt on a Gaussian matrix), row-major.
pub fn random_orthogonal(d: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng::new(seed, 17);
    let mut q = randn(&mut rng, d * d, 1.0);
    for i in 0..d {
        for _pass in 0..2 {
            for j in 0..i {
                let dot: f64 = (0..d).map(|k| q[i * d + k] * q[j * d + k]).sum();
                for k in 0..d {
                    q[i * d + k] -= dot * q[j * d + k];
                }
            }
        }
        let n = (0..d).map(|k| q[i * d + k].powi(2)).sum::<f64>().sqrt();
        for k in 0..d {
            q[i * d + k] /= n;
        }
    }
    q
}

fn matvec(q: &[f64], x: &[f64], transpose: bool) -> Vec<f64> {
    let d = x.len();
    (0..d)
        .map(|i| {
            (0..d)
                .map(|k| if transpose { q[k * d + i] } else { q[i * d + k] } * x[k])
                .sum()
        })
        .collect()
}

// ---------------------------------------------------------------------------

/// `f(x) = ½ xᵀ H x` with `H = Q diag(λ) Qᵀ`, `λ` log-spaced from 1 down to
/// `1/κ` and `Q` a random rotation (so the problem is not axis-aligned, which
/// would flatter coordinate-wise methods), and stochastic gradients `Hx + ξ`,
/// `ξ = Q (σ √λ ⊙ z)`, `z ~ N(0, I)`: noise covariance
/// proportional to the Hessian, the anisotropic gradient noise condition of
/// "Accelerated Convergence of Stochastic Heavy Ball Method under Anisotropic
/// Gradient Noise" (Assumption 3 there). Optional heavy-tailed spikes: with
/// probability `spike_prob` a step's noise is multiplied by `spike_scale`
/// (for AdaGC's stability claim).
pub struct NoisyQuadratic {
    /// Eigenvalues.
    pub lambda: Vec<f64>,
    /// Noise level σ.
    pub sigma: f64,
    /// Probability of a spike per step.
    pub spike_prob: f64,
    /// Spike multiplier.
    pub spike_scale: f64,
    q: Vec<f64>,
}

impl NoisyQuadratic {
    /// Dimension `d`, condition number `kappa`, noise `sigma`.
    pub fn new(d: usize, kappa: f64, sigma: f64) -> NoisyQuadratic {
        let lambda = (0..d)
            .map(|i| kappa.powf(-(i as f64) / ((d - 1).max(1) as f64)))
            .collect();
        NoisyQuadratic {
            lambda,
            sigma,
            spike_prob: 0.0,
            spike_scale: 1.0,
            q: random_orthogonal(d, 1),
        }
    }
}

impl Problem for NoisyQuadratic {
    fn init(&self, seed: u64) -> ParamSet<f64> {
        let mut rng = Rng::new(seed, 11);
        let mut p = ParamSet::new();
        let _ = p.push("x", &[self.lambda.len()], randn(&mut rng, self.lambda.len(), 1.0));
        p
    }

    fn loss_grad(&self, p: &ParamSet<f64>, seed: u64, t: u64, g: &mut GradSet<f64>) -> f64 {
        let x = &p.get("x").expect("x").data;
        let mut rng = Rng::new(seed ^ 0x5eed, t);
        let spike = if self.spike_prob > 0.0 && rng.uniform() < self.spike_prob {
            self.spike_scale
        } else {
            1.0
        };
        let y = matvec(&self.q, x, true);
        let mut gy = Vec::with_capacity(x.len());
        let mut loss = 0.0;
        for (yi, li) in y.iter().zip(&self.lambda) {
            loss += 0.5 * li * yi * yi;
            gy.push(li * yi + spike * self.sigma * li.sqrt() * rng.normal());
        }
        g.insert("x", matvec(&self.q, &gy, false));
        loss
    }

    fn eval(&self, p: &ParamSet<f64>, _: &EvalCtx) -> Eval {
        let y = matvec(&self.q, &p.get("x").expect("x").data, true);
        let loss: f64 = y.iter().zip(&self.lambda).map(|(x, l)| 0.5 * l * x * x).sum();
        let gn = y
            .iter()
            .zip(&self.lambda)
            .map(|(x, l)| (l * x).powi(2))
            .sum::<f64>()
            .sqrt();
        Eval {
            metric: loss,
            loss,
            grad_norm: gn,
            aux: f64::NAN,
        }
    }

    fn metric_name(&self) -> &'static str {
        "f(x) - f*"
    }
}

// ---------------------------------------------------------------------------

/// The Rosenbrock function `(1-x)² + 100 (y-x²)²` from `(-1.2, 1)` plus a
/// seed-dependent perturbation of standard deviation 0.1; minimum 0 at (1, 1).
pub struct Rosenbrock;

impl Problem for Rosenbrock {
    fn init(&self, seed: u64) -> ParamSet<f64> {
        let mut rng = Rng::new(seed, 12);
        let mut p = ParamSet::new();
        let _ = p.push("xy", &[2], vec![-1.2 + 0.1 * rng.normal(), 1.0 + 0.1 * rng.normal()]);
        p
    }

    fn loss_grad(&self, p: &ParamSet<f64>, _: u64, _: u64, g: &mut GradSet<f64>) -> f64 {
        let v = &p.get("xy").expect("xy").data;
        let (x, y) = (v[0], v[1]);
        g.insert(
            "xy",
            vec![-2.0 * (1.0 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)],
        );
        (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2)
    }

    fn eval(&self, p: &ParamSet<f64>, _: &EvalCtx) -> Eval {
        let mut g = GradSet::new();
        let loss = self.loss_grad(p, 0, 0, &mut g);
        Eval {
            metric: loss,
            loss,
            grad_norm: norm(g.get("xy").unwrap_or(&[])),
            aux: f64::NAN,
        }
    }

    fn metric_name(&self) -> &'static str {
        "f(x) - f*"
    }
}

// ---------------------------------------------------------------------------

/// Least squares `f(x) = 1/(2n) ||A x - b||²` with `A = G D Q`: Gaussian `G`,
/// log-spaced column scales `D` for conditioning, a random rotation `Q` and `b = A x_true + noise`;
/// the exact optimum comes from the normal equations (Cholesky, f64).
pub struct LeastSquares {
    a: Vec<f64>,
    b: Vec<f64>,
    n: usize,
    d: usize,
    /// Exact optimal value.
    pub f_star: f64,
    /// Exact minimizer.
    pub x_star: Vec<f64>,
}

impl LeastSquares {
    /// `n × d` instance from `data_seed`, columns scaled from 1 down to
    /// `1/sqrt(kappa)` (Hessian condition number ≈ kappa), `x_true` entries of size `scale`.
    pub fn new(n: usize, d: usize, kappa: f64, scale: f64, data_seed: u64) -> LeastSquares {
        let mut rng = Rng::new(data_seed, 13);
        let col: Vec<f64> = (0..d)
            .map(|j| kappa.powf(-0.5 * j as f64 / ((d - 1).max(1) as f64)))
            .collect();
        let a0: Vec<f64> = (0..n * d).map(|k| rng.normal() * col[k % d]).collect();
        // Rotate the parameter space (A Q) so the conditioning is not axis-aligned.
        let q = random_orthogonal(d, data_seed ^ 0x7070);
        let a: Vec<f64> = (0..n * d)
            .map(|k| (0..d).map(|l| a0[(k / d) * d + l] * q[l * d + k % d]).sum())
            .collect();
        let x_true = randn(&mut rng, d, scale);
        let b: Vec<f64> = (0..n)
            .map(|i| (0..d).map(|j| a[i * d + j] * x_true[j]).sum::<f64>() + 0.1 * rng.normal())
            .collect();
        // Normal equations AᵀA x = Aᵀb.
        let mut ata = vec![0.0; d * d];
        let mut atb = vec![0.0; d];
        for i in 0..n {
            let row = &a[i * d..(i + 1) * d];
            for j in 0..d {
                atb[j] += row[j] * b[i];
                for k in 0..d {
                    ata[j * d + k] += row[j] * row[k];
                }
            }
        }
        let x_star = cholesky_solve(&ata, &atb, d).unwrap_or_else(|| vec![0.0; d]);
        let mut ls = LeastSquares {
            a,
            b,
            n,
            d,
            f_star: 0.0,
            x_star,
        };
        ls.f_star = ls.value(&ls.x_star.clone());
        ls
    }

    fn residual(&self, x: &[f64]) -> Vec<f64> {
        (0..self.n)
            .map(|i| {
                self.a[i * self.d..(i + 1) * self.d]
                    .iter()
                    .zip(x)
                    .map(|(a, x)| a * x)
                    .sum::<f64>()
                    - self.b[i]
            })
            .collect()
    }

    fn value(&self, x: &[f64]) -> f64 {
        self.residual(x).iter().map(|r| r * r).sum::<f64>() / (2.0 * self.n as f64)
    }

    fn grad(&self, x: &[f64]) -> (f64, Vec<f64>) {
        let r = self.residual(x);
        let mut g = vec![0.0; self.d];
        for i in 0..self.n {
            for (j, gj) in g.iter_mut().enumerate() {
                *gj += self.a[i * self.d + j] * r[i] / self.n as f64;
            }
        }
        (r.iter().map(|r| r * r).sum::<f64>() / (2.0 * self.n as f64), g)
    }
}

impl Problem for LeastSquares {
    fn init(&self, _seed: u64) -> ParamSet<f64> {
        let mut p = ParamSet::new();
        let _ = p.push("x", &[self.d], vec![0.0; self.d]);
        p
    }

    fn loss_grad(&self, p: &ParamSet<f64>, _: u64, _: u64, g: &mut GradSet<f64>) -> f64 {
        let (f, grad) = self.grad(&data(p, "x"));
        g.insert("x", grad);
        f
    }

    fn eval(&self, p: &ParamSet<f64>, _: &EvalCtx) -> Eval {
        let x = data(p, "x");
        let (f, grad) = self.grad(&x);
        let linf = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        Eval {
            metric: (f - self.f_star).max(0.0),
            loss: f,
            grad_norm: norm(&grad),
            aux: linf,
        }
    }

    fn metric_name(&self) -> &'static str {
        "f(x) - f*"
    }
}

// ---------------------------------------------------------------------------

/// Online least squares, the online convex optimization setting of the Adam
/// paper's regret analysis (Section 4): at round `t` the learner plays `x_t`,
/// then pays `f_t(x_t) = ½ (a_tᵀ x_t - b_t)²` for a fresh sample
/// (`a_t ~ N(0, I)`, `b_t = a_tᵀ u + ε`). Regret after `T` rounds is
/// `Σ f_t(x_t) - min_x Σ f_t(x)`, the comparator solved exactly from the
/// accumulated normal equations.
pub struct OnlineRegression {
    /// Dimension.
    pub d: usize,
    u: Vec<f64>,
}

impl OnlineRegression {
    /// Dimension `d`; the hidden `u` from `data_seed`.
    pub fn new(d: usize, data_seed: u64) -> OnlineRegression {
        let mut rng = Rng::new(data_seed, 14);
        OnlineRegression {
            d,
            u: randn(&mut rng, d, 1.0),
        }
    }

    fn sample(&self, seed: u64, t: u64) -> (Vec<f64>, f64) {
        let mut rng = Rng::new(seed ^ 0x0411, t);
        let a = randn(&mut rng, self.d, 1.0);
        let b = a.iter().zip(&self.u).map(|(a, u)| a * u).sum::<f64>() + 0.5 * rng.normal();
        (a, b)
    }

    /// `min_x Σ_{t ≤ T} f_t(x)` for a trial seed.
    pub fn comparator(&self, seed: u64, big_t: u64) -> f64 {
        let d = self.d;
        let mut ata = vec![0.0; d * d];
        let mut atb = vec![0.0; d];
        let mut bb = 0.0;
        for t in 1..=big_t {
            let (a, b) = self.sample(seed, t);
            bb += b * b;
            for j in 0..d {
                atb[j] += a[j] * b;
                for k in 0..d {
                    ata[j * d + k] += a[j] * a[k];
                }
            }
        }
        // ½ Σ (aᵀx - b)² at the minimizer = ½ (bᵀb - (Aᵀb)ᵀ x*).
        match cholesky_solve(&ata, &atb, d) {
            Some(x) => 0.5 * (bb - atb.iter().zip(&x).map(|(a, x)| a * x).sum::<f64>()).max(0.0),
            None => 0.0,
        }
    }
}

impl Problem for OnlineRegression {
    fn init(&self, _seed: u64) -> ParamSet<f64> {
        let mut p = ParamSet::new();
        let _ = p.push("x", &[self.d], vec![0.0; self.d]);
        p
    }

    fn loss_grad(&self, p: &ParamSet<f64>, seed: u64, t: u64, g: &mut GradSet<f64>) -> f64 {
        let x = data(p, "x");
        let (a, b) = self.sample(seed, t);
        let r = a.iter().zip(&x).map(|(a, x)| a * x).sum::<f64>() - b;
        g.insert("x", a.iter().map(|a| a * r).collect());
        0.5 * r * r
    }

    fn eval(&self, p: &ParamSet<f64>, ctx: &EvalCtx) -> Eval {
        let x = data(p, "x");
        let dist: f64 = x.iter().zip(&self.u).map(|(x, u)| (x - u).powi(2)).sum::<f64>().sqrt();
        let regret = ctx.cum_loss - self.comparator(ctx.seed, ctx.t);
        Eval {
            metric: regret,
            loss: ctx.cum_loss,
            grad_norm: f64::NAN,
            aux: dist,
        }
    }

    fn metric_name(&self) -> &'static str {
        "regret"
    }
}

// ---------------------------------------------------------------------------

/// A two-layer linear network fitting a low-rank matrix:
/// `f(W1, W2) = 1/(2 m n) ||W2 W1 - M||²_F` with `M` of rank `r`
/// (`W1: h × n`, `W2: m × h`, `h ≥ r`), so `f* = 0`. Smooth and nonconvex:
/// the setting of the matrix optimizers' (Muon, AdaGO, ASGO) nonconvex rates.
/// The gradient norm reported is the nuclear norm summed over the two
/// matrices: the dual of the spectral norm those methods descend in.
pub struct MatrixFactorization {
    m: usize,
    n: usize,
    h: usize,
    target: Vec<f64>,
    /// Standard deviation of Gaussian noise added to each layer's gradient
    /// entries (`[W1, W2]`; 0 for exact gradients).
    pub noise: [f64; 2],
}

impl MatrixFactorization {
    /// `M` (`m × n`, rank `r`) from `data_seed`; hidden width `h`.
    pub fn new(m: usize, n: usize, r: usize, h: usize, data_seed: u64) -> MatrixFactorization {
        let mut rng = Rng::new(data_seed, 15);
        let u = randn(&mut rng, m * r, 1.0);
        let v = randn(&mut rng, r * n, 1.0);
        let mut target = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                target[i * n + j] = (0..r).map(|k| u[i * r + k] * v[k * n + j]).sum::<f64>() / (r as f64).sqrt();
            }
        }
        MatrixFactorization {
            m,
            n,
            h,
            target,
            noise: [0.0, 0.0],
        }
    }

    fn loss_and_grads(&self, p: &ParamSet<f64>) -> (f64, Vec<f64>, Vec<f64>) {
        let (m, n, h) = (self.m, self.n, self.h);
        let w1 = data(p, "w1"); // h × n
        let w2 = data(p, "w2"); // m × h
        let mut r = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                r[i * n + j] = (0..h).map(|k| w2[i * h + k] * w1[k * n + j]).sum::<f64>() - self.target[i * n + j];
            }
        }
        let s = 1.0 / (m * n) as f64;
        let loss = 0.5 * s * r.iter().map(|x| x * x).sum::<f64>();
        // dW2 = s R W1ᵀ (m × h); dW1 = s W2ᵀ R (h × n).
        let mut g2 = vec![0.0; m * h];
        for i in 0..m {
            for k in 0..h {
                g2[i * h + k] = s * (0..n).map(|j| r[i * n + j] * w1[k * n + j]).sum::<f64>();
            }
        }
        let mut g1 = vec![0.0; h * n];
        for k in 0..h {
            for j in 0..n {
                g1[k * n + j] = s * (0..m).map(|i| w2[i * h + k] * r[i * n + j]).sum::<f64>();
            }
        }
        (loss, g1, g2)
    }
}

impl Problem for MatrixFactorization {
    fn init(&self, seed: u64) -> ParamSet<f64> {
        let mut rng = Rng::new(seed, 16);
        let mut p = ParamSet::new();
        let _ = p.push(
            "w1",
            &[self.h, self.n],
            randn(&mut rng, self.h * self.n, 0.5 / (self.n as f64).sqrt()),
        );
        let _ = p.push(
            "w2",
            &[self.m, self.h],
            randn(&mut rng, self.m * self.h, 0.5 / (self.h as f64).sqrt()),
        );
        p
    }

    fn loss_grad(&self, p: &ParamSet<f64>, seed: u64, t: u64, g: &mut GradSet<f64>) -> f64 {
        let (loss, mut g1, mut g2) = self.loss_and_grads(p);
        if self.noise != [0.0, 0.0] {
            let mut rng = Rng::new(seed ^ 0x40157, t);
            for (grad, s) in [(&mut g1, self.noise[0]), (&mut g2, self.noise[1])] {
                for v in grad.iter_mut() {
                    *v += s * rng.normal();
                }
            }
        }
        g.insert("w1", g1);
        g.insert("w2", g2);
        loss
    }

    fn eval(&self, p: &ParamSet<f64>, _: &EvalCtx) -> Eval {
        let (loss, g1, g2) = self.loss_and_grads(p);
        let gn = nuclear_norm(&g1, self.h, self.n) + nuclear_norm(&g2, self.m, self.h);
        Eval {
            metric: loss,
            loss,
            grad_norm: gn,
            aux: f64::NAN,
        }
    }

    fn metric_name(&self) -> &'static str {
        "f(x) - f*"
    }
}

// ---------------------------------------------------------------------------

/// L2-regularized multinomial (softmax) logistic regression on a data set:
/// `f(W, b) = (1/n) Σ_i CE(softmax(W x_i + b), y_i) + (l2/2) ||W||²_F`
/// (the intercept is not penalized, as in scikit-learn). Binary problems use
/// the same formulation with 2 classes. The exact optimum comes from Newton's
/// method (see [`crate::solver`]); the metric is `f - f*`.
pub struct Logistic {
    /// The data (features standardized).
    pub data: Arc<Dataset>,
    /// L2 strength.
    pub l2: f64,
    /// Minibatch size (0 = full batch).
    pub batch: usize,
    /// Exact optimum value.
    pub f_star: f64,
}

impl Logistic {
    /// Builds the problem and solves it exactly.
    pub fn new(data: Arc<Dataset>, l2: f64, batch: usize) -> crate::Result<Logistic> {
        let sol = crate::solver::newton_logistic(&data, l2)?;
        Ok(Logistic {
            data,
            l2,
            batch,
            f_star: sol.f_star,
        })
    }

    /// Loss and gradients over the rows `idx` (all rows when `None`).
    pub fn loss_grads(&self, w: &[f64], b: &[f64], idx: Option<&[usize]>) -> (f64, Vec<f64>, Vec<f64>) {
        let ds = &self.data;
        let (k, d) = (ds.classes, ds.d);
        let mut gw = vec![0.0; k * d];
        let mut gb = vec![0.0; k];
        let mut loss = 0.0;
        let rows: Vec<usize> = match idx {
            Some(i) => i.to_vec(),
            None => (0..ds.n).collect(),
        };
        let m = rows.len() as f64;
        let mut z = vec![0.0; k];
        for &i in &rows {
            let x = ds.row(i);
            for c in 0..k {
                z[c] = b[c] + w[c * d..(c + 1) * d].iter().zip(x).map(|(w, x)| w * x).sum::<f64>();
            }
            let zmax = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = zmax + z.iter().map(|z| (z - zmax).exp()).sum::<f64>().ln();
            let y = ds.y[i] as usize;
            loss += lse - z[y];
            for c in 0..k {
                let pc = (z[c] - lse).exp() - if c == y { 1.0 } else { 0.0 };
                gb[c] += pc / m;
                for (g, xj) in gw[c * d..(c + 1) * d].iter_mut().zip(x) {
                    *g += pc * xj / m;
                }
            }
        }
        loss /= m;
        loss += 0.5 * self.l2 * w.iter().map(|w| w * w).sum::<f64>();
        for (g, w) in gw.iter_mut().zip(w) {
            *g += self.l2 * w;
        }
        (loss, gw, gb)
    }
}

impl Problem for Logistic {
    fn init(&self, _seed: u64) -> ParamSet<f64> {
        let (k, d) = (self.data.classes, self.data.d);
        let mut p = ParamSet::new();
        let _ = p.push("weight", &[k, d], vec![0.0; k * d]);
        let _ = p.push("bias", &[k], vec![0.0; k]);
        p
    }

    fn loss_grad(&self, p: &ParamSet<f64>, seed: u64, t: u64, g: &mut GradSet<f64>) -> f64 {
        let (w, b) = (data(p, "weight"), data(p, "bias"));
        let rows = self.batch_rows(seed, t);
        let (loss, gw, gb) = self.loss_grads(&w, &b, rows.as_deref());
        g.insert("weight", gw);
        g.insert("bias", gb);
        loss
    }

    fn eval(&self, p: &ParamSet<f64>, _: &EvalCtx) -> Eval {
        let (loss, gw, gb) = self.loss_grads(&data(p, "weight"), &data(p, "bias"), None);
        let gn = (gw.iter().chain(&gb).map(|g| g * g).sum::<f64>()).sqrt();
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

    fn sample_grads(&self, p: &ParamSet<f64>, seed: u64, t: u64) -> Option<steepest::SampleGrads<f64>> {
        let (w, b) = (data(p, "weight"), data(p, "bias"));
        let rows = self.batch_rows(seed, t).unwrap_or_else(|| (0..self.data.n).collect());
        let (mut sw, mut sb) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
        for &i in &rows {
            let (_, gw, gb) = self.loss_grads(&w, &b, Some(&[i]));
            sw.push(gw);
            sb.push(gb);
        }
        let mut sg = steepest::SampleGrads::new();
        sg.insert("weight", sw);
        sg.insert("bias", sb);
        Some(sg)
    }
}

impl Logistic {
    /// The rows of step `t`'s minibatch (`None`: full batch). Sampling is
    /// without replacement within an epoch: a seeded permutation per epoch.
    pub fn batch_rows(&self, seed: u64, t: u64) -> Option<Vec<usize>> {
        if self.batch == 0 || self.batch >= self.data.n {
            return None;
        }
        let per_epoch = (self.data.n / self.batch) as u64;
        let epoch = (t - 1) / per_epoch;
        let pos = ((t - 1) % per_epoch) as usize;
        let perm = Rng::new(seed ^ 0xba7c, epoch).permutation(self.data.n);
        Some(perm[pos * self.batch..(pos + 1) * self.batch].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences agree with every problem's analytic gradient.
    #[test]
    fn gradients_match_finite_differences() {
        let ds = Arc::new(
            crate::data::parse_csv(
                "t",
                "1,2,0\n2,1,1\n0,1,2\n1,1,1\n",
                crate::data::LabelColumn::Last,
                true,
            )
            .unwrap(),
        );
        let problems: Vec<Box<dyn Problem>> = vec![
            Box::new(Rosenbrock),
            Box::new(LeastSquares::new(20, 5, 10.0, 1.0, 1)),
            Box::new(MatrixFactorization::new(5, 4, 2, 3, 1)),
            Box::new(Logistic::new(ds, 0.1, 0).unwrap()),
            Box::new(NoisyQuadratic::new(6, 10.0, 0.0)),
            Box::new(OnlineRegression::new(3, 2)),
        ];
        for prob in problems {
            let mut p = prob.init(3);
            for q in p.params_mut() {
                for (i, v) in q.data.iter_mut().enumerate() {
                    *v += 0.1 * ((i as f64) * 0.7).sin();
                }
            }
            let mut g = GradSet::new();
            prob.loss_grad(&p, 0, 1, &mut g);
            let names: Vec<String> = p.iter().map(|q| q.name.clone()).collect();
            for name in names {
                let n = p.get(&name).unwrap().data.len();
                for i in 0..n {
                    let h = 1e-6;
                    let f = |delta: f64| {
                        let mut q = p.clone();
                        q.data_mut(&name).unwrap()[i] += delta;
                        prob.loss_grad(&q, 0, 1, &mut GradSet::new())
                    };
                    let fd = (f(h) - f(-h)) / (2.0 * h);
                    let an = g.get(&name).unwrap()[i];
                    assert!((fd - an).abs() <= 1e-6 * (1.0 + an.abs()), "{name}[{i}]: {fd} vs {an}");
                }
            }
        }
    }

    #[test]
    fn rotations_are_orthogonal() {
        let d = 7;
        let q = random_orthogonal(d, 3);
        for i in 0..d {
            for j in 0..d {
                let dot: f64 = (0..d).map(|k| q[i * d + k] * q[j * d + k]).sum();
                assert!((dot - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn online_comparator_is_a_lower_bound_and_exact() {
        let o = OnlineRegression::new(3, 1);
        let c = o.comparator(5, 50);
        // The comparator is the minimum: any fixed point, e.g. u itself, pays at least as much.
        let mut p = o.init(5);
        p.data_mut("x").unwrap().copy_from_slice(&o.u);
        let paid: f64 = (1..=50).map(|t| o.loss_grad(&p, 5, t, &mut GradSet::new())).sum();
        assert!(c <= paid && c > 0.0, "{c} {paid}");
    }
}
