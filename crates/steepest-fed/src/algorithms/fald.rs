//! FA-LD: federated averaging Langevin dynamics, on its own problem
//! (Bayesian linear regression with an exact Gaussian posterior).
//!
//! Paper: Deng, Zhang, Ma, Song & Lin, *On Convergence of Federated Averaging
//! Langevin Dynamics* (arXiv 2112.05120, UAI 2024). **Only the abstract was
//! reachable from this session** (the stored copies end after the
//! introduction), so the updates follow the research notes (§13, recalled
//! from the paper, marked [P] there) and every choice is listed below.
//!
//! Target `π ∝ exp(−f)`, `f = Σ_c f^c` where `f^c` is client c's local
//! energy (its negative log-likelihood plus its share `p_c` of the negative
//! log-prior), `p_c = n_c / n`. With `f̃^c = f^c / p_c` (so `f = Σ_c p_c f̃^c`),
//! each client runs, from the broadcast `x`, `K` local steps
//!
//! `x^c ← x^c − η ∇f̃^c(x^c) + √(2ητ/p_c) ξ^c`   (independent noise, default)
//! `x^c ← x^c − η ∇f̃^c(x^c) + √(2ητ) ξ`         (correlated: one ξ for all)
//!
//! and the server averages `x = Σ_c p_c x^c`. With K = 1 and full
//! participation this is exactly SGLD on `f`: the averaged noise has
//! variance `Σ_c p_c² · 2η/p_c = 2η`. Partial participation
//! (the notes' schemes, after Li et al.'s FedAvg analysis):
//! - Scheme I: `S` clients drawn *with* replacement with probabilities `p_c`,
//!   `x = (1/S) Σ_{j} x^{c_j}` (a client drawn twice counts twice);
//! - Scheme II: `S` clients drawn uniformly *without* replacement,
//!   `x = Σ_{c∈S} (N/S) p_c x^c` (weights summing to 1 only in expectation).
//!
//! Choices the reachable sources leave open, and what steepest does:
//! - The noise under partial participation is **not** rescaled: each
//!   participant keeps `√(2ητ/p_c)`, so the averaged noise variance is
//!   `2ηN/S` in expectation for both schemes, one source of the
//!   non-vanishing bias the abstract reports.
//! - Only participants compute (non-participants' local chains would be
//!   discarded anyway); a client drawn several times under scheme I runs once
//!   and is weighted by its multiplicity.
//! - `∇f̃^c` is the full local gradient by default; with `batch = Some(b)` it
//!   is the minibatch estimate `(n_c/b) Σ_{i∈B} ∇ℓ_i + p_c λ x`, divided by
//!   `p_c`, batches drawn with replacement from `Rng::stream(seed, Train, c, step)`.
//! - Temperature `τ` (default 1), constant step size (no schedule), start at
//!   `x = 0`; samples are the *synchronised* iterates (after each averaging)
//!   once `burn_in` rounds have passed.
//! - Streams: the noise of client c at global step `t = round·K + j` is
//!   `Rng::stream(seed, Langevin, c, t)`; the shared correlated noise uses
//!   client tag `u64::MAX`; scheme draws use `Rng::stream(seed, Sampling, 0, round)`;
//!   data use `Rng::stream(seed, Problem, c, 0)`. A networked deployment of
//!   the correlated variant must broadcast the per-step seed.
//!
//! [`stationary`] gives the exact stationary law of the synchronised iterates
//! for full participation and full gradients (the chain is linear-Gaussian),
//! so the Monte-Carlo W₂ of a run can be checked against its exact value.

use super::dense::{matmul, sample_moments, sym_eigen, w2_gaussian};
use crate::rng::{Purpose, Rng};
use crate::{Error, Result};

/// How the synthetic regression problem is built.
#[derive(Clone, Debug)]
pub struct BlrConfig {
    /// Number of clients.
    pub clients: usize,
    /// Parameter dimension.
    pub dim: usize,
    /// Smallest and largest number of points per client (drawn uniformly).
    pub min_points: usize,
    /// Largest number of points per client.
    pub max_points: usize,
    /// Observation noise standard deviation σ.
    pub noise: f64,
    /// Prior precision λ (prior `N(0, λ⁻¹ I)`).
    pub prior_precision: f64,
    /// Heterogeneity: client c's features have mean `μ_c` with entries
    /// `N(0, h²)` and its responses use `θ* + δ_c`, `δ_c ~ N(0, h² I)`.
    pub heterogeneity: f64,
}

impl Default for BlrConfig {
    fn default() -> Self {
        BlrConfig {
            clients: 10,
            dim: 4,
            min_points: 20,
            max_points: 100,
            noise: 1.0,
            prior_precision: 1.0,
            heterogeneity: 1.0,
        }
    }
}

/// One client's data and sufficient statistics.
#[derive(Clone, Debug)]
pub struct BlrClient {
    /// Features, n_c × d row-major.
    pub a: Vec<f64>,
    /// Responses.
    pub y: Vec<f64>,
    /// Hessian of the local energy `f^c`: `AᵀA/σ² + p_c λ I`.
    pub hess: Vec<f64>,
    /// `Aᵀy/σ²` (so `∇f^c(x) = hess·x − lin`).
    pub lin: Vec<f64>,
}

/// Bayesian linear regression spread over heterogeneous clients.
#[derive(Clone, Debug)]
pub struct BlrProblem {
    /// Parameter dimension d.
    pub dim: usize,
    /// σ.
    pub noise: f64,
    /// λ.
    pub prior_precision: f64,
    /// The clients.
    pub clients: Vec<BlrClient>,
    /// `p_c = n_c / n`.
    pub weights: Vec<f64>,
}

impl BlrProblem {
    /// The seeded synthetic problem.
    pub fn synthetic(cfg: &BlrConfig, seed: u64) -> Result<Self> {
        if cfg.clients == 0 {
            return Err(Error::Config("fald problem: `clients` must be at least 1".into()));
        }
        if cfg.dim == 0 {
            return Err(Error::Config("fald problem: `dim` must be at least 1".into()));
        }
        if cfg.min_points == 0 || cfg.max_points < cfg.min_points {
            return Err(Error::Config(
                "fald problem: need 1 <= `min_points` <= `max_points`".into(),
            ));
        }
        if !(cfg.noise > 0.0 && cfg.noise.is_finite()) {
            return Err(Error::Config("fald problem: `noise` must be positive".into()));
        }
        if !(cfg.prior_precision > 0.0 && cfg.prior_precision.is_finite()) {
            return Err(Error::Config("fald problem: `prior_precision` must be positive".into()));
        }
        if !(cfg.heterogeneity >= 0.0 && cfg.heterogeneity.is_finite()) {
            return Err(Error::Config("fald problem: `heterogeneity` must be >= 0".into()));
        }
        let d = cfg.dim;
        let mut g = Rng::stream(seed, Purpose::Problem, u64::MAX, 0);
        let theta: Vec<f64> = (0..d).map(|_| g.normal()).collect();
        let mut raw = Vec::with_capacity(cfg.clients);
        for c in 0..cfg.clients {
            let mut r = Rng::stream(seed, Purpose::Problem, c as u64, 0);
            let n = cfg.min_points + r.below(cfg.max_points - cfg.min_points + 1);
            let mu: Vec<f64> = (0..d).map(|_| cfg.heterogeneity * r.normal()).collect();
            let th: Vec<f64> = theta.iter().map(|t| t + cfg.heterogeneity * r.normal()).collect();
            let mut a = Vec::with_capacity(n * d);
            let mut y = Vec::with_capacity(n);
            for _ in 0..n {
                let row: Vec<f64> = mu.iter().map(|m| m + r.normal()).collect();
                let mean: f64 = row.iter().zip(&th).map(|(u, v)| u * v).sum();
                y.push(mean + cfg.noise * r.normal());
                a.extend(row);
            }
            raw.push((a, y));
        }
        let total: usize = raw.iter().map(|(_, y)| y.len()).sum();
        let weights: Vec<f64> = raw.iter().map(|(_, y)| y.len() as f64 / total as f64).collect();
        let s2 = cfg.noise * cfg.noise;
        let clients = raw
            .into_iter()
            .zip(&weights)
            .map(|((a, y), &p)| {
                let n = y.len();
                let mut hess = super::dense::matmul_tn(&a, &a, n, d, d);
                for h in &mut hess {
                    *h /= s2;
                }
                for i in 0..d {
                    hess[i * d + i] += p * cfg.prior_precision;
                }
                let lin: Vec<f64> = super::dense::matmul_tn(&a, &y, n, d, 1)
                    .into_iter()
                    .map(|v| v / s2)
                    .collect();
                BlrClient { a, y, hess, lin }
            })
            .collect();
        Ok(BlrProblem {
            dim: d,
            noise: cfg.noise,
            prior_precision: cfg.prior_precision,
            clients,
            weights,
        })
    }

    /// `∇f^c(x)` of client c's local energy (not divided by `p_c`).
    pub fn local_grad(&self, c: usize, x: &[f64]) -> Vec<f64> {
        let cl = &self.clients[c];
        let d = self.dim;
        (0..d)
            .map(|i| (0..d).map(|j| cl.hess[i * d + j] * x[j]).sum::<f64>() - cl.lin[i])
            .collect()
    }

    /// `∇f(x) = Σ_c ∇f^c(x)`, summed in client order.
    pub fn grad(&self, x: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; self.dim];
        for c in 0..self.clients.len() {
            for (gi, li) in g.iter_mut().zip(self.local_grad(c, x)) {
                *gi += li;
            }
        }
        g
    }

    /// Minibatch estimate of `∇f^c(x)`: `(n_c/b) Σ_{i∈B} ∇ℓ_i + p_c λ x`.
    pub fn minibatch_grad(&self, c: usize, x: &[f64], b: usize, rng: &mut Rng) -> Vec<f64> {
        let cl = &self.clients[c];
        let d = self.dim;
        let n = cl.y.len();
        let s2 = self.noise * self.noise;
        let mut g: Vec<f64> = x.iter().map(|v| self.weights[c] * self.prior_precision * v).collect();
        let scale = n as f64 / b as f64 / s2;
        for _ in 0..b {
            let i = rng.below(n);
            let row = &cl.a[i * d..(i + 1) * d];
            let resid: f64 = row.iter().zip(x).map(|(u, v)| u * v).sum::<f64>() - cl.y[i];
            for (gk, rk) in g.iter_mut().zip(row) {
                *gk += scale * resid * rk;
            }
        }
        g
    }

    /// The exact posterior `N(H⁻¹b, H⁻¹)`, `H = Σ_c hess_c`, `b = Σ_c lin_c`.
    pub fn posterior(&self) -> (Vec<f64>, Vec<f64>) {
        let d = self.dim;
        let mut h = vec![0.0; d * d];
        let mut b = vec![0.0; d];
        for cl in &self.clients {
            for (hi, ci) in h.iter_mut().zip(&cl.hess) {
                *hi += ci;
            }
            for (bi, ci) in b.iter_mut().zip(&cl.lin) {
                *bi += ci;
            }
        }
        let cov = sym_inverse(&h, d);
        let mean = matmul(&cov, &b, d, d, 1);
        (mean, cov)
    }
}

fn sym_inverse(a: &[f64], n: usize) -> Vec<f64> {
    let (vals, vecs) = sym_eigen(a, n);
    let mut out = vec![0.0; n * n];
    for (k, &lam) in vals.iter().enumerate() {
        for i in 0..n {
            for j in 0..n {
                out[i * n + j] += vecs[i * n + k] * vecs[j * n + k] / lam;
            }
        }
    }
    out
}

/// Injected noise across clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise {
    /// Each client its own `√(2ητ/p_c) ξ^c`.
    Independent,
    /// One shared `√(2ητ) ξ` per step for all clients.
    Correlated,
}

/// Which clients take part in a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Participation {
    /// All clients, `x = Σ p_c x^c`.
    Full,
    /// Scheme I: `S` draws with replacement ∝ `p_c`, plain average.
    SchemeI(usize),
    /// Scheme II: `S` uniform without replacement, weights `(N/S) p_c`.
    SchemeII(usize),
}

/// FA-LD settings.
#[derive(Clone, Debug)]
pub struct FaldConfig {
    /// Step size η.
    pub eta: f64,
    /// Local steps between averagings K.
    pub local_steps: usize,
    /// Communication rounds.
    pub rounds: usize,
    /// Rounds discarded before samples are kept.
    pub burn_in: usize,
    /// Independent or correlated noise.
    pub noise: Noise,
    /// Participation scheme.
    pub participation: Participation,
    /// Minibatch size (None = full local gradient).
    pub batch: Option<usize>,
    /// Temperature τ.
    pub temperature: f64,
    /// Seed of every stream.
    pub seed: u64,
}

impl Default for FaldConfig {
    fn default() -> Self {
        FaldConfig {
            eta: 1e-3,
            local_steps: 1,
            rounds: 10_000,
            burn_in: 1_000,
            noise: Noise::Independent,
            participation: Participation::Full,
            batch: None,
            temperature: 1.0,
            seed: 0,
        }
    }
}

impl FaldConfig {
    fn check(&self, clients: usize) -> Result<()> {
        if !(self.eta > 0.0 && self.eta.is_finite()) {
            return Err(Error::Config("fald: `eta` must be positive and finite".into()));
        }
        if self.local_steps == 0 {
            return Err(Error::Config("fald: `local_steps` (K) must be at least 1".into()));
        }
        if self.burn_in >= self.rounds {
            return Err(Error::Config("fald: `burn_in` must be smaller than `rounds`".into()));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(Error::Config("fald: `temperature` must be positive".into()));
        }
        if self.batch == Some(0) {
            return Err(Error::Config("fald: `batch` must be at least 1".into()));
        }
        match self.participation {
            Participation::Full => {}
            Participation::SchemeI(s) if s >= 1 => {}
            Participation::SchemeII(s) if s >= 1 && s <= clients => {}
            _ => {
                return Err(Error::Config(format!(
                    "fald: `participation` needs 1 <= S (<= {clients} clients for scheme II)"
                )))
            }
        }
        Ok(())
    }
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct FaldRun {
    /// Synchronised iterates after burn-in, one per round.
    pub samples: Vec<Vec<f64>>,
    /// The last synchronised iterate.
    pub last: Vec<f64>,
}

impl FaldRun {
    /// W₂ between the Gaussian fitted to the samples' moments and `N(mean, cov)`.
    pub fn w2_to(&self, mean: &[f64], cov: &[f64]) -> f64 {
        let (m, s) = sample_moments(&self.samples, mean.len());
        w2_gaussian(&m, &s, mean, cov)
    }
}

/// Runs FA-LD on the problem.
pub fn run(problem: &BlrProblem, cfg: &FaldConfig) -> Result<FaldRun> {
    let n = problem.clients.len();
    cfg.check(n)?;
    let d = problem.dim;
    let k = cfg.local_steps;
    let mut x = vec![0.0; d];
    let mut samples = Vec::with_capacity(cfg.rounds - cfg.burn_in);
    let mut mult = vec![0usize; n];
    for round in 0..cfg.rounds {
        // Participants and their aggregation weights.
        mult.iter_mut().for_each(|m| *m = 0);
        let weight: Vec<f64> = match cfg.participation {
            Participation::Full => {
                mult.iter_mut().for_each(|m| *m = 1);
                problem.weights.clone()
            }
            Participation::SchemeI(s) => {
                let mut r = Rng::stream(cfg.seed, Purpose::Sampling, 0, round as u64);
                for _ in 0..s {
                    let u = r.uniform();
                    let mut acc = 0.0;
                    let mut pick = n - 1;
                    for (c, p) in problem.weights.iter().enumerate() {
                        acc += p;
                        if u < acc {
                            pick = c;
                            break;
                        }
                    }
                    mult[pick] += 1;
                }
                mult.iter().map(|&m| m as f64 / s as f64).collect()
            }
            Participation::SchemeII(s) => {
                let mut r = Rng::stream(cfg.seed, Purpose::Sampling, 0, round as u64);
                for c in r.choose(n, s) {
                    mult[c] = 1;
                }
                (0..n)
                    .map(|c| {
                        if mult[c] > 0 {
                            n as f64 / s as f64 * problem.weights[c]
                        } else {
                            0.0
                        }
                    })
                    .collect()
            }
        };
        let mut locals: Vec<Vec<f64>> = (0..n)
            .map(|c| if mult[c] > 0 { x.clone() } else { Vec::new() })
            .collect();
        for j in 0..k {
            let step = (round * k + j) as u64;
            let shared: Option<Vec<f64>> = match cfg.noise {
                Noise::Correlated => {
                    let mut r = Rng::stream(cfg.seed, Purpose::Langevin, u64::MAX, step);
                    Some((0..d).map(|_| r.normal()).collect())
                }
                Noise::Independent => None,
            };
            for c in 0..n {
                if mult[c] == 0 {
                    continue;
                }
                let p = problem.weights[c];
                let xc = &mut locals[c];
                let g = match cfg.batch {
                    None => problem.local_grad(c, xc),
                    Some(b) => {
                        let mut r = Rng::stream(cfg.seed, Purpose::Train, c as u64, step);
                        problem.minibatch_grad(c, xc, b, &mut r)
                    }
                };
                match &shared {
                    Some(xi) => {
                        let amp = (2.0 * cfg.eta * cfg.temperature).sqrt();
                        for i in 0..d {
                            xc[i] = xc[i] - cfg.eta * (g[i] / p) + amp * xi[i];
                        }
                    }
                    None => {
                        let amp = (2.0 * cfg.eta * cfg.temperature / p).sqrt();
                        let mut r = Rng::stream(cfg.seed, Purpose::Langevin, c as u64, step);
                        for i in 0..d {
                            xc[i] = xc[i] - cfg.eta * (g[i] / p) + amp * r.normal();
                        }
                    }
                }
            }
        }
        let mut next = vec![0.0; d];
        for c in 0..n {
            if weight[c] == 0.0 {
                continue;
            }
            for i in 0..d {
                next[i] += weight[c] * locals[c][i];
            }
        }
        if next.iter().any(|v| !v.is_finite()) {
            return Err(Error::Config(format!(
                "fald: the chain diverged in round {round}; `eta` is too large for this problem"
            )));
        }
        x = next;
        if round >= cfg.burn_in {
            samples.push(x.clone());
        }
    }
    Ok(FaldRun { samples, last: x })
}

/// Centralised SGLD on `f` with full gradients, `x ← x − η∇f(x) + √(2η) ξ`,
/// noise from `Rng::stream(seed, Langevin, 0, step)` (client 0's FA-LD
/// stream, so a one-client FA-LD run with K = 1 is this chain bit for bit);
/// `steps` iterations, samples every step after `burn_in` steps.
pub fn sgld(problem: &BlrProblem, eta: f64, steps: usize, burn_in: usize, seed: u64) -> Result<FaldRun> {
    if !(eta > 0.0 && eta.is_finite()) {
        return Err(Error::Config("sgld: `eta` must be positive and finite".into()));
    }
    if burn_in >= steps {
        return Err(Error::Config("sgld: `burn_in` must be smaller than `steps`".into()));
    }
    let d = problem.dim;
    let mut x = vec![0.0; d];
    let mut samples = Vec::with_capacity(steps - burn_in);
    let amp = (2.0 * eta).sqrt();
    for t in 0..steps {
        let g = problem.grad(&x);
        let mut r = Rng::stream(seed, Purpose::Langevin, 0, t as u64);
        for i in 0..d {
            x[i] = x[i] - eta * g[i] + amp * r.normal();
        }
        if t >= burn_in {
            samples.push(x.clone());
        }
    }
    Ok(FaldRun { samples, last: x })
}

/// Exact stationary law `N(μ, Σ)` of the synchronised FA-LD iterates with
/// full participation and full gradients. Over one round
/// `x' = M x + m + w` with `A_c = I − (η/p_c) H_c`, `M = Σ_c p_c A_c^K`,
/// `m = η Σ_c Σ_{j<K} A_c^j b_c`, and noise covariance
/// `Q = 2ητ Σ_c p_c Σ_{j<K} A_c^{2j}` (independent) or
/// `Q = 2ητ Σ_{j<K} B_j²`, `B_j = Σ_c p_c A_c^j` (correlated); then
/// `μ = (I − M)⁻¹ m` and `Σ = M Σ M + Q` (solved by doubling). Errors when
/// the round map is not contracting (`η` too large).
pub fn stationary(
    problem: &BlrProblem,
    eta: f64,
    k: usize,
    noise: Noise,
    temperature: f64,
) -> Result<(Vec<f64>, Vec<f64>)> {
    if !(eta > 0.0 && eta.is_finite()) || k == 0 {
        return Err(Error::Config("fald stationary: need `eta` > 0 and K >= 1".into()));
    }
    let d = problem.dim;
    let n = problem.clients.len();
    let id = super::dense::eye(d);
    let mut big_m = vec![0.0; d * d];
    let mut small_m = vec![0.0; d];
    let mut q = vec![0.0; d * d];
    let mut bsum: Vec<Vec<f64>> = vec![vec![0.0; d * d]; k];
    for c in 0..n {
        let p = problem.weights[c];
        let cl = &problem.clients[c];
        let a: Vec<f64> = (0..d * d).map(|i| id[i] - eta / p * cl.hess[i]).collect();
        let mut pow = id.clone(); // A^j
        for bj in bsum.iter_mut() {
            let pb = matmul(&pow, &cl.lin, d, d, 1);
            for i in 0..d {
                small_m[i] += eta * pb[i];
            }
            match noise {
                Noise::Independent => {
                    let p2 = matmul(&pow, &pow, d, d, d);
                    for i in 0..d * d {
                        q[i] += 2.0 * eta * temperature * p * p2[i];
                    }
                }
                Noise::Correlated => {
                    for i in 0..d * d {
                        bj[i] += p * pow[i];
                    }
                }
            }
            pow = matmul(&pow, &a, d, d, d);
        }
        for i in 0..d * d {
            big_m[i] += p * pow[i];
        }
    }
    if noise == Noise::Correlated {
        for bj in &bsum {
            let b2 = matmul(bj, bj, d, d, d);
            for i in 0..d * d {
                q[i] += 2.0 * eta * temperature * b2[i];
            }
        }
    }
    let (vals, vecs) = sym_eigen(&big_m, d);
    if vals.iter().any(|v| v.abs() >= 1.0) {
        return Err(Error::Config(format!(
            "fald stationary: the round map is not contracting (eigenvalues {vals:?}); lower `eta`"
        )));
    }
    // μ = (I − M)⁻¹ m via the eigenbasis of the symmetric M.
    let mut mu = vec![0.0; d];
    for (kk, &lam) in vals.iter().enumerate() {
        let proj: f64 = (0..d).map(|i| vecs[i * d + kk] * small_m[i]).sum::<f64>() / (1.0 - lam);
        for i in 0..d {
            mu[i] += proj * vecs[i * d + kk];
        }
    }
    // Σ = Σ_{t≥0} M^t Q M^t by doubling: S ← S + P S P, P ← P².
    let mut s = q;
    let mut pm = big_m;
    for _ in 0..64 {
        let psp = matmul(&matmul(&pm, &s, d, d, d), &pm, d, d, d);
        let mut changed = 0.0f64;
        for i in 0..d * d {
            s[i] += psp[i];
            changed = changed.max(psp[i].abs());
        }
        if changed == 0.0 {
            break;
        }
        pm = matmul(&pm, &pm, d, d, d);
    }
    Ok((mu, s))
}
