//! PSO-Fed: partial-sharing online federated learning under model poisoning,
//! with its own seeded problem simulator (streaming nonlinear regression with
//! random Fourier features; not a `Strategy` on the logistic-regression
//! workload).
//!
//! Paper: Lari, Arablouei, Gogineni & Werner, *Resilience in Online Federated
//! Learning: Mitigating Model-Poisoning Attacks via Partial Sharing*
//! (arXiv 2403.13108; ICASSP 2024 version "On the resilience of online FL to
//! model poisoning attacks through partial sharing"). Only the abstract and a
//! few fragments (a held-out test set of `N_t = 50` instances) were reachable
//! from here, not the algorithm or the simulation section; no official code
//! exists (Parth-nXp/PSO-Fed is unofficial and does not match the paper). The
//! updates follow the research notes (§9); every value the paper would fix is
//! listed below as a choice.
//!
//! Model: random Fourier features shared by all clients,
//! `z(x) = √(2/D) cos(Ωᵀx + b)`, `Ω` entries `N(0, 1/σ_k²)`, `b ~ U(0, 2π)`;
//! linear model `ŷ = wᵀz` on `ℝ^D`. Iteration `n`:
//! 1. every client `k` receives one new sample `(x_{k,n}, y_{k,n})`;
//! 2. the server picks `C` of the `N` clients uniformly without replacement;
//! 3. selected `k`: `w̃ = S_{k,n} w + (I − S_{k,n}) w_k`, then the LMS step
//!    `w_k ← w̃ + μ z (y − w̃ᵀz)`;
//! 4. unselected `k`: `w_k ← w_k + μ z (y − w_kᵀz)`;
//! 5. selected `k` uploads `S_{k,n+1} w_k`; a Byzantine client, with
//!    probability `p_a` per upload, uploads `S_{k,n+1}(w_k + δ)`,
//!    `δ ~ N(0, σ_a² I)` (its own model stays clean);
//! 6. server: `w ← (1/C) Σ_{k∈K_n} [S_{k,n+1} ŵ_k + (I − S_{k,n+1}) w]`
//!    (uploads summed in increasing client id).
//!
//! `S_{k,n}` is diagonal with `M` ones at coordinates
//! `(o_k + nM + j) mod D`, `j < M`: a random start `o_k` per client, shifted
//! circularly by `M` every iteration. `M = D` (`S = I`) is Online-Fed
//! ([`run_online_fed`] is an independent implementation of it; the two agree
//! bit for bit, checked in `tests/psofed.rs`).
//!
//! Data (Gogineni et al., ICASSP 2022, as in the notes): client inputs
//! `x_{k,n} = θ_k x_{k,n−1} + √(1 − θ_k²) u`, `u ~ N(μ_k 1, σ_u² I)`, `L = 4`,
//! `θ_k ~ U(0.2, 0.9)`; target
//! `y = √(x₁² + sin²(πx₄)) + (0.8 − 0.5 e^{−x₂²}) x₃ + ν`, `ν ~ N(0, σ_ν²)`.
//!
//! Metric: MSE of the global model `w` on a held-out test set (`N_t = 50`
//! instances), after each iteration, averaged over Monte-Carlo runs (linear),
//! reported in dB by [`to_db`].
//!
//! Open choices and what steepest does (the paper's values were not readable):
//! - Uplink uses `S_{k,n+1}` and downlink `S_{k,n}` (the notes' form; the
//!   other convention is a flag, [`PsoFedConfig::uplink_next`] = false).
//! - Shift step `M` per iteration; start `o_k` uniform in `0..D`.
//! - Defaults: `N = 100`, `D = 200`, `C = 4`, `M = 4`, `μ = 0.4`,
//!   20 Byzantine clients (a random set per run), `p_a = 0.5`, `σ_a² = 0.25`,
//!   kernel width `σ_k = 1`, `μ_k ~ U(−0.2, 0.2)`, `σ_u² = 1`, `σ_ν² = 1e-3`,
//!   2000 iterations; models start at 0.
//! - Test set: instance `i` comes from client `i mod N`'s input process after
//!   a burn-in of 20 steps (its own stream), with a noisy target.
//! - MSE on the global model `w` (not an average of local models).
//! - Random streams: data `(seed, Problem, k, run)`, features and test set
//!   `(seed, Problem, N + tag, run)`, selection `(seed, Sampling, run, n)`,
//!   Byzantine set, offsets and perturbations from `Sharing` streams keyed by
//!   client and run / iteration.
//!
//! Measured (`tests/psofed.rs`, N = 100, D = 200, C = 4, 20 Byzantine
//! clients, p_a = 0.5): partial sharing beats Online-Fed by ~11 dB of
//! steady-state test MSE (M = 4: −9.98 dB, M = 40: −10.33 dB, M = D:
//! +1.22 dB), but M = 4 stays slightly above M = 40, so "MSE rises with M/D"
//! holds from M/D = 0.2 upward, not at the smallest M (with our σ_a², μ).

// Index loops over several vectors of one length read as the equations do.
#![allow(clippy::needless_range_loop)]

use crate::rng::{Purpose, Rng};
use crate::{Error, Result};

/// PSO-Fed's settings (problem and algorithm).
#[derive(Clone, Debug)]
pub struct PsoFedConfig {
    /// Clients `N`.
    pub clients: usize,
    /// Random-Fourier-feature dimension `D`.
    pub features: usize,
    /// Input dimension `L` (≥ 4: the target uses `x₁..x₄`).
    pub input_dim: usize,
    /// Clients selected per iteration `C`.
    pub selected: usize,
    /// Shared entries per upload/download `M` (`M = D`: Online-Fed).
    pub shared: usize,
    /// LMS step size `μ`.
    pub mu: f64,
    /// Number of Byzantine clients.
    pub byzantine: usize,
    /// Attack probability `p_a` per upload of a Byzantine client.
    pub attack_prob: f64,
    /// Attack noise variance `σ_a²`.
    pub attack_var: f64,
    /// Kernel width `σ_k` (Ω entries `N(0, 1/σ_k²)`).
    pub kernel_width: f64,
    /// Input innovation variance `σ_u²`.
    pub input_var: f64,
    /// Observation noise variance `σ_ν²`.
    pub obs_var: f64,
    /// Held-out test instances `N_t`.
    pub test: usize,
    /// Iterations.
    pub iters: usize,
    /// Uplink with `S_{k,n+1}` (true, the notes' form) or `S_{k,n}`.
    pub uplink_next: bool,
}

impl Default for PsoFedConfig {
    fn default() -> Self {
        PsoFedConfig {
            clients: 100,
            features: 200,
            input_dim: 4,
            selected: 4,
            shared: 4,
            mu: 0.4,
            byzantine: 20,
            attack_prob: 0.5,
            attack_var: 0.25,
            kernel_width: 1.0,
            input_var: 1.0,
            obs_var: 1e-3,
            test: 50,
            iters: 2000,
            uplink_next: true,
        }
    }
}

impl PsoFedConfig {
    /// Checks every field; the error names the field.
    pub fn check(&self) -> Result<()> {
        let bad = |f: &str, why: String| Err(Error::Config(format!("{f}: {why}")));
        if self.clients == 0 {
            return bad("clients", "must be ≥ 1".into());
        }
        if self.features == 0 {
            return bad("features", "must be ≥ 1".into());
        }
        if self.input_dim < 4 {
            return bad(
                "input_dim",
                format!("must be ≥ 4 (the target uses x₁..x₄), got {}", self.input_dim),
            );
        }
        if self.selected == 0 || self.selected > self.clients {
            return bad(
                "selected",
                format!("must be in 1..={}, got {}", self.clients, self.selected),
            );
        }
        if self.shared == 0 || self.shared > self.features {
            return bad(
                "shared",
                format!("M must be in 1..={} (D), got {}", self.features, self.shared),
            );
        }
        if !(self.mu > 0.0 && self.mu.is_finite()) {
            return bad("mu", format!("must be > 0, got {}", self.mu));
        }
        if self.byzantine > self.clients {
            return bad(
                "byzantine",
                format!("must be ≤ clients {}, got {}", self.clients, self.byzantine),
            );
        }
        if !(0.0..=1.0).contains(&self.attack_prob) {
            return bad("attack_prob", format!("must be in [0, 1], got {}", self.attack_prob));
        }
        for (f, v) in [
            ("attack_var", self.attack_var),
            ("input_var", self.input_var),
            ("obs_var", self.obs_var),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(f, format!("must be ≥ 0, got {v}"));
            }
        }
        if !(self.kernel_width > 0.0 && self.kernel_width.is_finite()) {
            return bad("kernel_width", format!("must be > 0, got {}", self.kernel_width));
        }
        if self.test == 0 {
            return bad("test", "must be ≥ 1".into());
        }
        if self.iters == 0 {
            return bad("iters", "must be ≥ 1".into());
        }
        Ok(())
    }
}

/// `10 log10(x)`.
pub fn to_db(x: f64) -> f64 {
    10.0 * x.log10()
}

/// The shared random features and per-client input processes of one run.
struct Problem {
    omega: Vec<f64>, // L×D row-major
    phase: Vec<f64>,
    theta: Vec<f64>,
    mean: Vec<f64>,
    test_z: Vec<Vec<f64>>,
    test_y: Vec<f64>,
}

fn target(x: &[f64]) -> f64 {
    let s = (std::f64::consts::PI * x[3]).sin();
    (x[0] * x[0] + s * s).sqrt() + (0.8 - 0.5 * (-x[1] * x[1]).exp()) * x[2]
}

impl Problem {
    fn new(cfg: &PsoFedConfig, seed: u64, run: u64) -> Problem {
        let (l, d, n) = (cfg.input_dim, cfg.features, cfg.clients as u64);
        let mut r = Rng::stream(seed, Purpose::Problem, n, run);
        let omega = (0..l * d).map(|_| r.normal() / cfg.kernel_width).collect();
        let phase = (0..d).map(|_| 2.0 * std::f64::consts::PI * r.uniform()).collect();
        let mut theta = Vec::with_capacity(cfg.clients);
        let mut mean = Vec::with_capacity(cfg.clients);
        for _ in 0..cfg.clients {
            theta.push(0.2 + 0.7 * r.uniform());
            mean.push(-0.2 + 0.4 * r.uniform());
        }
        let mut p = Problem {
            omega,
            phase,
            theta,
            mean,
            test_z: vec![],
            test_y: vec![],
        };
        for i in 0..cfg.test {
            let k = i % cfg.clients;
            let mut tr = Rng::stream(seed, Purpose::Problem, n + 1 + i as u64, run);
            let mut x = vec![0.0; l];
            for _ in 0..20 {
                p.step_input(cfg, k, &mut x, &mut tr);
            }
            let y = target(&x) + cfg.obs_var.sqrt() * tr.normal();
            p.test_z.push(p.features(cfg, &x));
            p.test_y.push(y);
        }
        p
    }

    fn step_input(&self, cfg: &PsoFedConfig, k: usize, x: &mut [f64], r: &mut Rng) {
        let th = self.theta[k];
        let g = (1.0 - th * th).sqrt();
        let sd = cfg.input_var.sqrt();
        for v in x.iter_mut() {
            *v = th * *v + g * (self.mean[k] + sd * r.normal());
        }
    }

    fn features(&self, cfg: &PsoFedConfig, x: &[f64]) -> Vec<f64> {
        let d = cfg.features;
        let scale = (2.0 / d as f64).sqrt();
        (0..d)
            .map(|j| {
                let mut a = self.phase[j];
                for (i, xi) in x.iter().enumerate() {
                    a += xi * self.omega[i * d + j];
                }
                scale * a.cos()
            })
            .collect()
    }

    fn test_mse(&self, w: &[f64]) -> f64 {
        let mut s = 0.0;
        for (z, y) in self.test_z.iter().zip(&self.test_y) {
            let e = y - dot(w, z);
            s += e * e;
        }
        s / self.test_y.len() as f64
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn lms(w: &mut [f64], z: &[f64], y: f64, mu: f64) {
    let e = y - dot(w, z);
    w.iter_mut().zip(z).for_each(|(wi, zi)| *wi += mu * e * zi);
}

/// The run's Byzantine clients (`byzantine` of `N`, uniform, increasing).
pub fn byzantine_set(cfg: &PsoFedConfig, seed: u64, run: u64) -> Vec<usize> {
    Rng::stream(seed, Purpose::Sharing, u64::MAX, run).choose(cfg.clients, cfg.byzantine)
}

/// The data stream of one run: per-client state, advanced each iteration.
struct Streams {
    x: Vec<Vec<f64>>,
    rng: Vec<Rng>,
}

impl Streams {
    fn new(cfg: &PsoFedConfig, seed: u64, run: u64) -> Streams {
        Streams {
            x: vec![vec![0.0; cfg.input_dim]; cfg.clients],
            rng: (0..cfg.clients)
                .map(|k| Rng::stream(seed, Purpose::Problem, k as u64, run))
                .collect(),
        }
    }

    /// Client `k`'s next sample: features and target.
    fn next(&mut self, p: &Problem, cfg: &PsoFedConfig, k: usize) -> (Vec<f64>, f64) {
        p.step_input(cfg, k, &mut self.x[k], &mut self.rng[k]);
        let y = target(&self.x[k]) + cfg.obs_var.sqrt() * self.rng[k].normal();
        (p.features(cfg, &self.x[k]), y)
    }
}

/// Byzantine perturbation of client `k`'s upload at iteration `n`, if it attacks.
fn attack(cfg: &PsoFedConfig, seed: u64, run: u64, k: usize, n: usize) -> Option<Vec<f64>> {
    let mut r = Rng::stream(seed, Purpose::Sharing, k as u64, (run << 32) | n as u64);
    if !r.bernoulli(cfg.attack_prob) {
        return None;
    }
    let sd = cfg.attack_var.sqrt();
    Some((0..cfg.features).map(|_| sd * r.normal()).collect())
}

/// One run of PSO-Fed: the test MSE (linear) of the global model after each iteration.
pub fn run(cfg: &PsoFedConfig, seed: u64, run: u64) -> Result<Vec<f64>> {
    cfg.check()?;
    let (n_cl, d, m) = (cfg.clients, cfg.features, cfg.shared);
    let p = Problem::new(cfg, seed, run);
    let mut data = Streams::new(cfg, seed, run);
    let mut is_byz = vec![false; n_cl];
    byzantine_set(cfg, seed, run).into_iter().for_each(|k| is_byz[k] = true);
    let offsets: Vec<usize> = (0..n_cl)
        .map(|k| Rng::stream(seed, Purpose::Sharing, (1 << 40) | k as u64, run).below(d))
        .collect();
    // Coordinate j is in S_{k,n} when (j − o_k − nM) mod D < M.
    let in_mask = |k: usize, n: usize, j: usize| -> bool {
        let start = (offsets[k] + (n % d) * m % d) % d;
        (j + d - start) % d < m
    };
    let mut w = vec![0.0; d];
    let mut local = vec![vec![0.0; d]; n_cl];
    let mut curve = Vec::with_capacity(cfg.iters);
    let mut sum = vec![0.0; d];
    for n in 0..cfg.iters {
        let sel = Rng::stream(seed, Purpose::Sampling, run, n as u64).choose(n_cl, cfg.selected);
        let mut is_sel = vec![false; n_cl];
        sel.iter().for_each(|&k| is_sel[k] = true);
        for k in 0..n_cl {
            let (z, y) = data.next(&p, cfg, k);
            if is_sel[k] {
                for (j, v) in local[k].iter_mut().enumerate() {
                    if in_mask(k, n, j) {
                        *v = w[j];
                    }
                }
            }
            lms(&mut local[k], &z, y, cfg.mu);
        }
        sum.iter_mut().for_each(|v| *v = 0.0);
        let up_n = if cfg.uplink_next { n + 1 } else { n };
        for &k in &sel {
            let delta = if is_byz[k] { attack(cfg, seed, run, k, n) } else { None };
            for j in 0..d {
                sum[j] += if in_mask(k, up_n, j) {
                    match &delta {
                        Some(dl) => local[k][j] + dl[j],
                        None => local[k][j],
                    }
                } else {
                    w[j]
                };
            }
        }
        let inv = 1.0 / cfg.selected as f64;
        w.iter_mut().zip(&sum).for_each(|(wj, s)| *wj = s * inv);
        curve.push(p.test_mse(&w));
    }
    Ok(curve)
}

/// Online-Fed (Gogineni et al.), written directly: selected clients start
/// from the global model, take the LMS step and upload their whole model;
/// the server averages the uploads. Same data, selection and attacks as
/// [`run`] (which equals it bit for bit at `M = D`).
pub fn run_online_fed(cfg: &PsoFedConfig, seed: u64, run: u64) -> Result<Vec<f64>> {
    cfg.check()?;
    let (n_cl, d) = (cfg.clients, cfg.features);
    let p = Problem::new(cfg, seed, run);
    let mut data = Streams::new(cfg, seed, run);
    let byz = byzantine_set(cfg, seed, run);
    let mut w = vec![0.0; d];
    let mut local = vec![vec![0.0; d]; n_cl];
    let mut curve = Vec::with_capacity(cfg.iters);
    for n in 0..cfg.iters {
        let sel = Rng::stream(seed, Purpose::Sampling, run, n as u64).choose(n_cl, cfg.selected);
        for k in 0..n_cl {
            let (z, y) = data.next(&p, cfg, k);
            if sel.contains(&k) {
                local[k].clone_from(&w);
            }
            lms(&mut local[k], &z, y, cfg.mu);
        }
        let mut sum = vec![0.0; d];
        for &k in &sel {
            let mut up = local[k].clone();
            if byz.contains(&k) {
                if let Some(dl) = attack(cfg, seed, run, k, n) {
                    up.iter_mut().zip(&dl).for_each(|(u, e)| *u += e);
                }
            }
            sum.iter_mut().zip(&up).for_each(|(s, u)| *s += u);
        }
        let inv = 1.0 / cfg.selected as f64;
        w = sum.iter().map(|s| s * inv).collect();
        curve.push(p.test_mse(&w));
    }
    Ok(curve)
}

/// The test-MSE curve in dB, averaged (linearly) over `runs` Monte-Carlo runs
/// (each run redraws features, data, selection, Byzantine set and attacks).
pub fn monte_carlo(cfg: &PsoFedConfig, seed: u64, runs: usize) -> Result<Vec<f64>> {
    if runs == 0 {
        return Err(Error::Config("runs must be ≥ 1".into()));
    }
    let mut acc = vec![0.0; cfg.iters];
    for r in 0..runs {
        let c = run(cfg, seed, r as u64)?;
        acc.iter_mut().zip(&c).for_each(|(a, v)| *a += v);
    }
    Ok(acc.into_iter().map(|v| to_db(v / runs as f64)).collect())
}

/// Mean of the last `last` values of a dB curve.
pub fn steady_state_db(curve_db: &[f64], last: usize) -> f64 {
    let tail = &curve_db[curve_db.len().saturating_sub(last)..];
    tail.iter().sum::<f64>() / tail.len().max(1) as f64
}
