//! Noise-robust ADMM federated learning (RERCE-Fed) on weighted least squares,
//! with its own seeded problem simulator (not a `Strategy` on the
//! logistic-regression workload).
//!
//! Paper: Lari, Arablouei, Gogineni & Werner, *Noise-Robust and
//! Resource-Efficient ADMM-based Federated Learning* (arXiv 2409.13451; journal
//! version "RERCE-Fed", Signal Processing 2025). Only the abstract of the paper
//! was reachable from here (its body, algorithm and equation numbers were not),
//! so the updates follow the research notes (§7) and the official MATLAB code
//! (ehsan-lari/RERCE_Fed, `src/RERCE_Fed_ContinualUpdates.m`, `src/RERCE_Fed.m`),
//! read, not copied, and re-derived below from ADMM.
//!
//! Problem: client `k` holds `y_k = H_k x° + ν_k`, `Σ_k = σ_y² I`;
//! `A_k = H_kᵀΣ_k⁻¹H_k`, `c_k = H_kᵀΣ_k⁻¹y_k`; the target is the BLUE
//! `x_BLUE = (Σ_k A_k)⁻¹ Σ_k c_k`. With the local loss
//! `f_k(w) = ‖y_k − H_k w‖²_{Σ_k⁻¹}` (gradient `2A_k w − 2c_k`) and penalty
//! `ρ`, `B_k = (βA_k + ρI)⁻¹` with `β = 2` (the continual-update script; the
//! other script uses `β = 1`, i.e. the loss halved — [`AdmmConfig::b_factor`]).
//! Every variant starts from the local solutions `w_k = β B_k c_k`
//! (ADMM's first step from `z = 0`, `λ = 0`). Channel noise: every value
//! received over the downlink or uplink gets `n ~ N(0, σ²I)` added.
//!
//! Variants ([`Variant`]):
//! - [`Variant::Continual`] (RERCE-Fed with continual local updates, the
//!   paper's proposal): at start all clients upload `s_k = 2w_k` (`w⁰ = 0`)
//!   plus noise, `z = (1/N) Σ_k ŝ_k`. Each iteration the server picks `C`
//!   clients uniformly without replacement; a selected client receives
//!   `z̃_k = z + n_d` (and stores it), computes
//!   `w⁺ = (I − ρB_k) w_k + ρB_k z̃_k`, `s_k = 2w⁺ − w_k`, `w_k = w⁺`, and
//!   uploads `s_k + n_u`; an unselected client runs the same update with its
//!   stale `z̃_k` and uploads nothing. Server: `z = (1/N) Σ_{all k}` latest
//!   upload. (Dual-free form: with `C = N` and no noise it is exactly ADMM,
//!   since `mean_k(2w_k⁺ − w_k) = 2z^{n} − z^{n−1}`.)
//! - [`Variant::NonContinual`] (the code's `RERCE_Fed.m`): only selected
//!   clients update and upload `w_k + n_u`; the server averages the selected
//!   uploads, `z = mean_{selected}`, and broadcasts `s = 2z − z_prev`; the
//!   selected client receives `s̃ = s + n_d` and sets
//!   `w_k ← (I − ρB_k) w_k + ρB_k s̃`. At start the selected clients upload
//!   their local solutions and `z_prev = 0`.
//! - [`Variant::Standard`] (ADMM-FL with dual variables, the baseline): client
//!   keeps `λ_k` (0 at start); all upload `w_k + λ_k/ρ` plus noise at start.
//!   A selected client receives `z̃ = z + n_d`, sets `λ_k ← λ_k + ρ(w_k − z̃)`,
//!   `w_k ← B_k(βc_k − λ_k + ρz̃)`, uploads `w_k + λ_k/ρ + n_u`; the server
//!   keeps each client's latest upload and sets `z = (1/N) Σ_k` of them
//!   (exactly ADMM's `z`-update, as unselected clients did not change).
//!
//! All three coincide with centralised ADMM when `C = N` and `σ = 0`, and
//! then converge to `x_BLUE` (checked in `tests/admm.rs`).
//!
//! Metric: `NMSD = Σ_k ‖w_k − x_BLUE‖² / (N ‖x_BLUE‖²)` after each iteration
//! (iteration 1 = the initial local solutions), averaged over Monte-Carlo runs
//! in the linear domain, reported in dB by [`to_db`].
//!
//! Defaults (code): `L = 128`, `N = 100`, `C = 4`, `ρ = 1`, `σ² = 6.25e-4`,
//! 500 iterations; data: `x°` standard normal, centred and scaled to unit RMS;
//! rows of `H_k` i.i.d. `N(μ_k, σ_k²)` with `μ_k ~ U(−0.5, 0.5)`,
//! `σ_k² ~ U(0.5, 1.5)`; `y_k = H_k x° + 0.01 e_k` with `e_k` standard normal
//! centred and scaled to unit RMS; `Σ_k = 1e-4 I`; `n_k` samples per client
//! uniform in `[50, 90]` (the code's `Ns_train_uniform.mat` spans 51..90).
//!
//! Open choices and what steepest does:
//! - The code starts a never-selected client from `z̃_k = 0`; steepest gives
//!   every client `z̃_k = z₀ + n_d` (the initial aggregate, one noisy broadcast
//!   at start), as the notes ask.
//! - `RERCE_Fed.m` never sets `z_prev` after the first aggregation (so its
//!   second broadcast is `2z₂ − 0`); steepest sets `z_prev = z` after every
//!   aggregation, ADMM's recurrence.
//! - `β` is one setting for all variants (default 2), so a comparison differs
//!   only in the algorithm.
//! - The baseline's exact form is not in the code: the ADMM above, one noisy
//!   reception per iteration used in both the dual and the primal step.
//! - One problem per seed; the Monte-Carlo runs redraw selection and channel
//!   noise only (as in the code, which draws the data once).
//! - Random streams: problem `(seed, Problem, k, 0)` (`k = N` for `x°`),
//!   selection `(seed, Sampling, run, t)`, channel noise
//!   `(seed, ChannelNoise, k, run·2³² + t)` (downlink drawn before uplink).

// Index loops over several vectors of one length read as the equations do.
#![allow(clippy::needless_range_loop)]

use crate::rng::{Purpose, Rng};
use crate::{Error, Result};

/// Which algorithm runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// RERCE-Fed with continual local updates of unselected clients.
    Continual,
    /// RERCE-Fed without continual updates (server broadcasts `2z − z_prev`).
    NonContinual,
    /// Standard ADMM-FL with dual variables.
    Standard,
}

impl Variant {
    /// Parses `continual`, `non-continual` or `standard`.
    pub fn parse(s: &str) -> Result<Variant> {
        match s {
            "continual" => Ok(Variant::Continual),
            "non-continual" => Ok(Variant::NonContinual),
            "standard" => Ok(Variant::Standard),
            _ => Err(Error::Config(format!(
                "variant: unknown `{s}` (continual, non-continual, standard)"
            ))),
        }
    }
}

/// The synthetic WLS problem's settings.
#[derive(Clone, Debug)]
pub struct AdmmSpec {
    /// Model length `L`.
    pub dim: usize,
    /// Number of clients `N`.
    pub clients: usize,
    /// Samples per client, uniform in `min..=max`.
    pub samples: (usize, usize),
    /// Standard deviation of the observation noise (0.01).
    pub obs_std: f64,
    /// `Σ_k = obs_var · I` (1e-4).
    pub obs_var: f64,
}

impl Default for AdmmSpec {
    fn default() -> Self {
        AdmmSpec {
            dim: 128,
            clients: 100,
            samples: (50, 90),
            obs_std: 0.01,
            obs_var: 1e-4,
        }
    }
}

/// A WLS problem: per-client `A_k`, `c_k` and the BLUE.
#[derive(Clone, Debug)]
pub struct AdmmProblem {
    /// Model length `L`.
    pub dim: usize,
    /// `A_k` (row-major `L×L`).
    pub a: Vec<Vec<f64>>,
    /// `c_k`.
    pub c: Vec<Vec<f64>>,
    /// `x_BLUE = (Σ A_k)⁻¹ Σ c_k`.
    pub x_blue: Vec<f64>,
}

/// Cholesky factor (lower, row-major) of an SPD matrix, or `None`.
fn cholesky(m: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = m[i * n + j];
            for p in 0..j {
                s -= l[i * n + p] * l[j * n + p];
            }
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

fn chol_solve(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut y = b.to_vec();
    for i in 0..n {
        for p in 0..i {
            y[i] -= l[i * n + p] * y[p];
        }
        y[i] /= l[i * n + i];
    }
    for i in (0..n).rev() {
        for p in i + 1..n {
            y[i] -= l[p * n + i] * y[p];
        }
        y[i] /= l[i * n + i];
    }
    y
}

/// Inverse of an SPD matrix (row-major), or `None` when it is not SPD.
fn spd_inverse(m: &[f64], n: usize) -> Option<Vec<f64>> {
    let l = cholesky(m, n)?;
    let mut inv = vec![0.0; n * n];
    let mut e = vec![0.0; n];
    for j in 0..n {
        e.iter_mut().for_each(|v| *v = 0.0);
        e[j] = 1.0;
        let col = chol_solve(&l, n, &e);
        for i in 0..n {
            inv[i * n + j] = col[i];
        }
    }
    // Symmetrise (the two triangles differ by rounding only).
    for i in 0..n {
        for j in 0..i {
            let v = 0.5 * (inv[i * n + j] + inv[j * n + i]);
            inv[i * n + j] = v;
            inv[j * n + i] = v;
        }
    }
    Some(inv)
}

fn matvec(m: &[f64], n: usize, x: &[f64], out: &mut [f64]) {
    for i in 0..n {
        let row = &m[i * n..(i + 1) * n];
        out[i] = row.iter().zip(x).map(|(a, b)| a * b).sum();
    }
}

fn unit_rms(rng: &mut Rng, n: usize) -> Vec<f64> {
    let mut v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let mean = v.iter().sum::<f64>() / n as f64;
    v.iter_mut().for_each(|x| *x -= mean);
    let rms = (v.iter().map(|x| x * x).sum::<f64>() / n as f64).sqrt();
    if rms > 0.0 {
        v.iter_mut().for_each(|x| *x /= rms);
    }
    v
}

impl AdmmProblem {
    /// The problem from explicit data: `h[k]` is client `k`'s rows (each of
    /// length `dim`), `y[k]` its observations, `Σ_k = obs_var · I`.
    pub fn from_data(h: &[Vec<Vec<f64>>], y: &[Vec<f64>], obs_var: f64) -> Result<AdmmProblem> {
        if h.is_empty() || h.len() != y.len() {
            return Err(Error::Config(format!(
                "clients: need ≥ 1 client and one y per H (got {} H, {} y)",
                h.len(),
                y.len()
            )));
        }
        if !(obs_var > 0.0 && obs_var.is_finite()) {
            return Err(Error::Config(format!("obs_var must be > 0, got {obs_var}")));
        }
        let dim = h.iter().flat_map(|rows| rows.first()).map(Vec::len).next().unwrap_or(0);
        if dim == 0 {
            return Err(Error::Config("dim: H has no columns".into()));
        }
        let mut a = Vec::with_capacity(h.len());
        let mut c = Vec::with_capacity(h.len());
        for (k, (rows, yk)) in h.iter().zip(y).enumerate() {
            if rows.len() != yk.len() || rows.iter().any(|r| r.len() != dim) {
                return Err(Error::Config(format!(
                    "clients: client {k}'s H is not {}×{dim} or y has the wrong length",
                    yk.len()
                )));
            }
            let mut ak = vec![0.0; dim * dim];
            let mut ck = vec![0.0; dim];
            for (r, &yi) in rows.iter().zip(yk) {
                for i in 0..dim {
                    ck[i] += r[i] * yi / obs_var;
                    for j in 0..dim {
                        ak[i * dim + j] += r[i] * r[j] / obs_var;
                    }
                }
            }
            a.push(ak);
            c.push(ck);
        }
        let mut sa = vec![0.0; dim * dim];
        let mut sc = vec![0.0; dim];
        for k in 0..a.len() {
            sa.iter_mut().zip(&a[k]).for_each(|(s, v)| *s += v);
            sc.iter_mut().zip(&c[k]).for_each(|(s, v)| *s += v);
        }
        let l = cholesky(&sa, dim).ok_or_else(|| {
            Error::Config("samples: Σ_k A_k is singular (too few samples in all for the model length)".into())
        })?;
        let x_blue = chol_solve(&l, dim, &sc);
        Ok(AdmmProblem { dim, a, c, x_blue })
    }

    /// The code's synthetic problem for `seed`.
    pub fn synthetic(spec: &AdmmSpec, seed: u64) -> Result<AdmmProblem> {
        let (lo, hi) = spec.samples;
        if spec.dim == 0 {
            return Err(Error::Config("dim must be ≥ 1".into()));
        }
        if spec.clients == 0 {
            return Err(Error::Config("clients must be ≥ 1".into()));
        }
        if lo == 0 || lo > hi {
            return Err(Error::Config(format!("samples: need 1 ≤ min ≤ max, got ({lo}, {hi})")));
        }
        if !(spec.obs_std >= 0.0 && spec.obs_std.is_finite()) {
            return Err(Error::Config(format!("obs_std must be ≥ 0, got {}", spec.obs_std)));
        }
        let l = spec.dim;
        let x0 = unit_rms(&mut Rng::stream(seed, Purpose::Problem, spec.clients as u64, 0), l);
        let mut hs = Vec::with_capacity(spec.clients);
        let mut ys = Vec::with_capacity(spec.clients);
        for k in 0..spec.clients {
            let mut r = Rng::stream(seed, Purpose::Problem, k as u64, 0);
            let n = lo + r.below(hi - lo + 1);
            let mu = -0.5 + r.uniform();
            let sd = (0.5 + r.uniform()).sqrt();
            let rows: Vec<Vec<f64>> = (0..n).map(|_| (0..l).map(|_| mu + sd * r.normal()).collect()).collect();
            let e = unit_rms(&mut r, n);
            let y: Vec<f64> = rows
                .iter()
                .zip(&e)
                .map(|(row, ei)| row.iter().zip(&x0).map(|(h, x)| h * x).sum::<f64>() + spec.obs_std * ei)
                .collect();
            hs.push(rows);
            ys.push(y);
        }
        AdmmProblem::from_data(&hs, &ys, spec.obs_var)
    }

    /// Number of clients.
    pub fn clients(&self) -> usize {
        self.a.len()
    }
}

/// The algorithm's settings.
#[derive(Clone, Debug)]
pub struct AdmmConfig {
    /// Which algorithm.
    pub variant: Variant,
    /// Clients selected per iteration `C`.
    pub selected: usize,
    /// Penalty `ρ`.
    pub rho: f64,
    /// Channel-noise variance `σ²` (uplink and downlink).
    pub noise_var: f64,
    /// Iterations (the first is the initial local solve).
    pub iters: usize,
    /// `β` in `B_k = (βA_k + ρI)⁻¹` and `w_k⁰ = βB_k c_k` (2: the continual script).
    pub b_factor: f64,
}

impl Default for AdmmConfig {
    fn default() -> Self {
        AdmmConfig {
            variant: Variant::Continual,
            selected: 4,
            rho: 1.0,
            noise_var: 6.25e-4,
            iters: 500,
            b_factor: 2.0,
        }
    }
}

impl AdmmConfig {
    /// Checks the settings against a problem with `clients` clients.
    pub fn check(&self, clients: usize) -> Result<()> {
        if self.selected == 0 || self.selected > clients {
            return Err(Error::Config(format!(
                "selected must be in 1..={clients} (the client count), got {}",
                self.selected
            )));
        }
        if !(self.rho > 0.0 && self.rho.is_finite()) {
            return Err(Error::Config(format!("rho must be > 0, got {}", self.rho)));
        }
        if !(self.noise_var >= 0.0 && self.noise_var.is_finite()) {
            return Err(Error::Config(format!("noise_var must be ≥ 0, got {}", self.noise_var)));
        }
        if self.iters == 0 {
            return Err(Error::Config("iters must be ≥ 1".into()));
        }
        if !(self.b_factor > 0.0 && self.b_factor.is_finite()) {
            return Err(Error::Config(format!("b_factor must be > 0, got {}", self.b_factor)));
        }
        Ok(())
    }
}

/// One run's result.
#[derive(Clone, Debug)]
pub struct AdmmRun {
    /// NMSD (linear) after each iteration.
    pub nmsd: Vec<f64>,
    /// The final local models.
    pub w: Vec<Vec<f64>>,
}

/// `10 log10(x)`.
pub fn to_db(x: f64) -> f64 {
    10.0 * x.log10()
}

struct Prepared {
    /// `I − ρB_k`.
    keep: Vec<Vec<f64>>,
    /// `ρB_k`.
    pull: Vec<Vec<f64>>,
    /// `B_k`.
    b: Vec<Vec<f64>>,
    /// `βB_k c_k`.
    w0: Vec<Vec<f64>>,
}

fn prepare(p: &AdmmProblem, cfg: &AdmmConfig) -> Result<Prepared> {
    let l = p.dim;
    let mut out = Prepared {
        keep: vec![],
        pull: vec![],
        b: vec![],
        w0: vec![],
    };
    for (k, (ak, ck)) in p.a.iter().zip(&p.c).enumerate() {
        let mut m: Vec<f64> = ak.iter().map(|v| cfg.b_factor * v).collect();
        for i in 0..l {
            m[i * l + i] += cfg.rho;
        }
        let b =
            spd_inverse(&m, l).ok_or_else(|| Error::Config(format!("rho: βA_{k} + ρI is not positive definite")))?;
        let pull: Vec<f64> = b.iter().map(|v| cfg.rho * v).collect();
        let mut keep: Vec<f64> = pull.iter().map(|v| -v).collect();
        for i in 0..l {
            keep[i * l + i] += 1.0;
        }
        let bc: Vec<f64> = ck.iter().map(|v| cfg.b_factor * v).collect();
        let mut w0 = vec![0.0; l];
        matvec(&b, l, &bc, &mut w0);
        out.keep.push(keep);
        out.pull.push(pull);
        out.b.push(b);
        out.w0.push(w0);
    }
    Ok(out)
}

fn nmsd(w: &[Vec<f64>], x: &[f64]) -> f64 {
    let xx: f64 = x.iter().map(|v| v * v).sum();
    let mut s = 0.0;
    for wk in w {
        s += wk.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum::<f64>();
    }
    s / (w.len() as f64 * xx)
}

fn add_noise(v: &mut [f64], rng: &mut Rng, sd: f64) {
    if sd > 0.0 {
        v.iter_mut().for_each(|x| *x += sd * rng.normal());
    }
}

/// Runs one Monte-Carlo run `run` of the configured algorithm on `p`.
pub fn run(p: &AdmmProblem, cfg: &AdmmConfig, seed: u64, run: u64) -> Result<AdmmRun> {
    let n = p.clients();
    cfg.check(n)?;
    let l = p.dim;
    let pre = prepare(p, cfg)?;
    let sd = cfg.noise_var.sqrt();
    let noise = |k: usize, t: usize| Rng::stream(seed, Purpose::ChannelNoise, k as u64, (run << 32) | t as u64);
    let mean_of = |rows: &[Vec<f64>], idx: &mut dyn Iterator<Item = usize>| -> Vec<f64> {
        let mut z = vec![0.0; l];
        let mut cnt = 0usize;
        for k in idx {
            z.iter_mut().zip(&rows[k]).for_each(|(s, v)| *s += v);
            cnt += 1;
        }
        z.iter_mut().for_each(|v| *v /= cnt as f64);
        z
    };
    let mut w = pre.w0.clone();
    let mut curve = Vec::with_capacity(cfg.iters);
    let mut tmp = vec![0.0; l];
    let mut tmp2 = vec![0.0; l];
    let all = || 0..n;
    match cfg.variant {
        Variant::Continual | Variant::Standard => {
            let standard = cfg.variant == Variant::Standard;
            let mut lambda = vec![vec![0.0; l]; n];
            // t = 0: everyone uploads (2w or w + λ/ρ with λ = 0), plus noise.
            let mut up: Vec<Vec<f64>> = (0..n)
                .map(|k| {
                    let mut r = noise(k, 0);
                    let mut u: Vec<f64> = w[k].iter().map(|v| if standard { *v } else { 2.0 * v }).collect();
                    add_noise(&mut u, &mut r, sd);
                    u
                })
                .collect();
            let mut z = mean_of(&up, &mut all());
            // Every client's stored z̃ starts from one noisy broadcast of z₀.
            let mut zt: Vec<Vec<f64>> = (0..n)
                .map(|k| {
                    let mut r = Rng::stream(seed, Purpose::ChannelNoise, k as u64, (run << 32) | u32::MAX as u64);
                    let mut v = z.clone();
                    add_noise(&mut v, &mut r, sd);
                    v
                })
                .collect();
            curve.push(nmsd(&w, &p.x_blue));
            for t in 1..cfg.iters {
                let sel = Rng::stream(seed, Purpose::Sampling, run, t as u64).choose(n, cfg.selected);
                let mut is_sel = vec![false; n];
                sel.iter().for_each(|&k| is_sel[k] = true);
                for k in 0..n {
                    if standard && !is_sel[k] {
                        continue;
                    }
                    let mut r = noise(k, t);
                    if is_sel[k] {
                        zt[k].clone_from(&z);
                        add_noise(&mut zt[k], &mut r, sd);
                    }
                    if standard {
                        for i in 0..l {
                            lambda[k][i] += cfg.rho * (w[k][i] - zt[k][i]);
                            tmp[i] = cfg.b_factor * p.c[k][i] - lambda[k][i] + cfg.rho * zt[k][i];
                        }
                        matvec(&pre.b[k], l, &tmp, &mut w[k]);
                        for i in 0..l {
                            up[k][i] = w[k][i] + lambda[k][i] / cfg.rho;
                        }
                        add_noise(&mut up[k], &mut r, sd);
                    } else {
                        matvec(&pre.keep[k], l, &w[k], &mut tmp);
                        matvec(&pre.pull[k], l, &zt[k], &mut tmp2);
                        for i in 0..l {
                            let new = tmp[i] + tmp2[i];
                            if is_sel[k] {
                                up[k][i] = 2.0 * new - w[k][i];
                            }
                            w[k][i] = new;
                        }
                        if is_sel[k] {
                            add_noise(&mut up[k], &mut r, sd);
                        }
                    }
                }
                z = mean_of(&up, &mut all());
                curve.push(nmsd(&w, &p.x_blue));
            }
        }
        Variant::NonContinual => {
            let mut up = vec![vec![0.0; l]; n];
            let mut z_prev = vec![0.0; l];
            let mut s = vec![0.0; l];
            for t in 0..cfg.iters {
                let sel = Rng::stream(seed, Purpose::Sampling, run, t as u64).choose(n, cfg.selected);
                for &k in &sel {
                    let mut r = noise(k, t);
                    if t > 0 {
                        let mut st = s.clone();
                        add_noise(&mut st, &mut r, sd);
                        matvec(&pre.keep[k], l, &w[k], &mut tmp);
                        matvec(&pre.pull[k], l, &st, &mut tmp2);
                        for i in 0..l {
                            w[k][i] = tmp[i] + tmp2[i];
                        }
                    }
                    up[k].clone_from(&w[k]);
                    add_noise(&mut up[k], &mut r, sd);
                }
                let z = mean_of(&up, &mut sel.iter().copied());
                for i in 0..l {
                    s[i] = 2.0 * z[i] - z_prev[i];
                }
                z_prev = z;
                curve.push(nmsd(&w, &p.x_blue));
            }
        }
    }
    Ok(AdmmRun { nmsd: curve, w })
}

/// The NMSD curve in dB, averaged (linearly) over `runs` Monte-Carlo runs.
pub fn monte_carlo(p: &AdmmProblem, cfg: &AdmmConfig, seed: u64, runs: usize) -> Result<Vec<f64>> {
    if runs == 0 {
        return Err(Error::Config("runs must be ≥ 1".into()));
    }
    let mut acc = vec![0.0; cfg.iters];
    for r in 0..runs {
        let out = run(p, cfg, seed, r as u64)?;
        acc.iter_mut().zip(&out.nmsd).for_each(|(a, v)| *a += v);
    }
    Ok(acc.into_iter().map(|v| to_db(v / runs as f64)).collect())
}

/// Mean of the last `last` values of a dB curve, averaged in dB.
pub fn steady_state_db(curve_db: &[f64], last: usize) -> f64 {
    let tail = &curve_db[curve_db.len().saturating_sub(last)..];
    tail.iter().sum::<f64>() / tail.len().max(1) as f64
}
