//! CA-Fed: correlation-aware aggregation under heterogeneous, Markov-correlated
//! client availability, and its "Unbiased" baseline.
//!
//! Paper: Rodio, Faticanti, Marfoq, Neglia & Leonardi, *Federated Learning
//! under Heterogeneous and Correlated Client Availability* (IEEE INFOCOM 2023,
//! arXiv 2301.04632), Algorithm 1 (CA-Fed). The PDF was not reachable from this
//! workplace (only the abstract); the algorithm below follows the research
//! notes (§3) and the official code, read for this file (arodio/CA-Fed
//! `clients_sampler.py` `MarkovianClientsSampler` / `UnbiasedClientsSampler`,
//! `activity_estimator.py` `BayesianActivityEstimator`, `aggregator.py`).
//!
//! Availability model (paper §3, [`crate::participation::Participation::Markov`]):
//! client `k` is a two-state chain with stationary probability `π_k` and
//! second eigenvalue `λ_k`. Each round `t` (1-based) the server observes the
//! available set `A_t` and:
//! 1. updates loss estimates: in the first round `F̂_k = F_k(x)` for active
//!    clients and the mean of those for the others; later `F̂_k ← s F̂_k +
//!    (1 − s) F_k(x)` for active clients (smoothness `s`, default 0);
//! 2. updates Bayesian (Beta-prior) estimates with prior horizon `H` (100) and
//!    prior `(π⁰, λ⁰)`: `π̂ = (#on + Hπ⁰)/(t + H)`,
//!    `a = (#(1→1) + H(π⁰ + λ⁰ − λ⁰π⁰))/(t + H)`,
//!    `b = (#(0→0) + H(1 − π⁰ + λ⁰π⁰))/(t + H)`, `λ̂ = a + b − 1`;
//! 3. sets `α_k = q_k / π̂_k` for every client;
//! 4. (CA-Fed only) greedily zeroes weights to lower
//!    `J(α) = Σ_k w_k (F̂_k − F_k*) + β · max_k (F̂_k − F_k*) · TV(q, w)²`,
//!    `w = π̂∘α / Σ π̂∘α`, `TV = ½‖q − w‖₁`: one pass over clients by `|λ̂|`
//!    descending, then one by `π̂` ascending; each client's weight is zeroed,
//!    the pass stops when all weights are zero, and the zero is kept when `J`
//!    drops by at least `tol` (default 0), else the weight is restored;
//! 5. aggregates `x ← x − η_s Σ_{k∈A_t, α_k > 1e−8} α_k (x − x_k)`
//!    (unnormalised), in client-id order.
//!
//! Defaults (code, MNIST): `β = 1`, `H = 100`, `s = 0`, `tol = 0`; `η_s` is
//! the caller's (the code's MNIST runs use 0.1 with `η_l = 1e−3`).
//!
//! Choices the paper (as far as reachable) leaves open, and what steepest does:
//! - `F_k(x)` is the participant's [`FitRes::loss`], the mean minibatch
//!   training loss over its local steps from `x` (the code evaluates the loss
//!   at `x` before training; with few, small local steps the two are close).
//!   The estimate is therefore updated after training, in `aggregate_fit`,
//!   and excluded clients train too (their weight is zero; the code skips
//!   them only to save time). A client that fails keeps its old estimate.
//! - `F_k*` (local-optimum losses) are inputs; [`local_optimum_losses`]
//!   computes them on the logistic-regression workload by full-batch gradient
//!   descent. The registry form (`ca-fed`) has no workload and uses `F_k* = 0`
//!   (small local logistic problems are nearly separable, so `F_k* ≈ 0`) and
//!   uniform `q_k = 1/N`.
//! - The prior `(π⁰, λ⁰)`: the code uses the *true* chain parameters; here
//!   they are inputs (registry default `π⁰ = 0.5`, `λ⁰ = 0`).
//! - Transitions: as in the code, the state before round 1 is "off", so round
//!   1 counts a `0→0` transition for every inactive client and every
//!   denominator is `t + H`.
//! - Sorting ties (equal `|λ̂|` or `π̂`) go by increasing client id (the code's
//!   stable sort over ids).
//! - A round without available clients leaves the model and all estimates
//!   unchanged except the availability counts (the round is observed).

use crate::logreg::LogReg;
use crate::strategy::{check_results, with_data, ClientConfig, Failure, FitIns, FitRes, Model, Sampling, Strategy};
use crate::{Error, Result};

/// Weights below this are treated as excluded (the code's `ERROR`).
pub const WEIGHT_EPS: f64 = 1e-8;

/// CA-Fed's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct CaFedConfig {
    /// Target weights `q_k` (length N, non-negative, summing to 1).
    pub q: Vec<f64>,
    /// Local-optimum losses `F_k*` (length N).
    pub f_star: Vec<f64>,
    /// Prior stationary probabilities `π⁰_k` (length N, in (0, 1]).
    pub prior_pi: Vec<f64>,
    /// Prior eigenvalues `λ⁰_k` (length N, in [−1, 1)).
    pub prior_lambda: Vec<f64>,
    /// Prior horizon `H` (rounds; > 0).
    pub horizon: f64,
    /// Bias coefficient `β` (≥ 0).
    pub beta: f64,
    /// Loss smoothness `s` in [0, 1).
    pub smoothness: f64,
    /// Greedy tolerance (≥ 0).
    pub tol: f64,
    /// Server learning rate `η_s` (> 0).
    pub server_lr: f64,
    /// `false`: the Unbiased baseline (`α = q/π̂`, no exclusion).
    pub exclusion: bool,
    /// What participants run.
    pub client: ClientConfig,
}

impl CaFedConfig {
    /// Defaults for `n` clients: uniform `q`, `F* = 0`, prior `π⁰ = 0.5`,
    /// `λ⁰ = 0`, `H = 100`, `β = 1`, `s = 0`, `tol = 0`, `η_s = 1`, exclusion on.
    pub fn new(n: usize, client: ClientConfig) -> CaFedConfig {
        CaFedConfig {
            q: vec![1.0 / n.max(1) as f64; n],
            f_star: vec![0.0; n],
            prior_pi: vec![0.5; n],
            prior_lambda: vec![0.0; n],
            horizon: 100.0,
            beta: 1.0,
            smoothness: 0.0,
            tol: 0.0,
            server_lr: 1.0,
            exclusion: true,
            client,
        }
    }

    fn validate(&self) -> Result<()> {
        let n = self.q.len();
        let bad = |m: String| Err(Error::Config(m));
        if n == 0 {
            return bad("ca-fed: q must have one entry per client (got none)".into());
        }
        for (name, len) in [
            ("f_star", self.f_star.len()),
            ("prior_pi", self.prior_pi.len()),
            ("prior_lambda", self.prior_lambda.len()),
        ] {
            if len != n {
                return bad(format!("ca-fed: {name} has {len} entries for {n} clients"));
            }
        }
        let sum: f64 = self.q.iter().sum();
        if self.q.iter().any(|x| !(*x >= 0.0 && x.is_finite())) || (sum - 1.0).abs() > 1e-9 {
            return bad(format!("ca-fed: q must be non-negative and sum to 1 (sum {sum})"));
        }
        if self.f_star.iter().any(|x| !x.is_finite()) {
            return bad("ca-fed: f_star must be finite".into());
        }
        if self.prior_pi.iter().any(|p| !(*p > 0.0 && *p <= 1.0)) {
            return bad("ca-fed: prior_pi must lie in (0, 1]".into());
        }
        if self.prior_lambda.iter().any(|l| !(-1.0..1.0).contains(l)) {
            return bad("ca-fed: prior_lambda must lie in [-1, 1)".into());
        }
        if !(self.horizon > 0.0 && self.horizon.is_finite()) {
            return bad(format!("ca-fed: horizon must be > 0, got {}", self.horizon));
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return bad(format!("ca-fed: beta must be ≥ 0, got {}", self.beta));
        }
        if !(0.0..1.0).contains(&self.smoothness) {
            return bad(format!("ca-fed: smoothness must be in [0, 1), got {}", self.smoothness));
        }
        if !(self.tol >= 0.0 && self.tol.is_finite()) {
            return bad(format!("ca-fed: tol must be ≥ 0, got {}", self.tol));
        }
        if !(self.server_lr > 0.0 && self.server_lr.is_finite()) {
            return bad(format!("ca-fed: server_lr must be > 0, got {}", self.server_lr));
        }
        Ok(())
    }
}

/// The Bayesian availability estimator (step 2), on its own so it can be
/// checked against a hand-made trace.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AvailabilityEstimator {
    prior_pi: Vec<f64>,
    prior_lambda: Vec<f64>,
    horizon: f64,
    /// Rounds observed.
    pub rounds: u64,
    on: Vec<u64>,
    on_on: Vec<u64>,
    off_off: Vec<u64>,
    prev: Vec<bool>,
}

impl AvailabilityEstimator {
    /// An estimator with prior `(π⁰, λ⁰)` and horizon `H`.
    pub fn new(prior_pi: Vec<f64>, prior_lambda: Vec<f64>, horizon: f64) -> AvailabilityEstimator {
        let n = prior_pi.len();
        AvailabilityEstimator {
            prior_pi,
            prior_lambda,
            horizon,
            rounds: 0,
            on: vec![0; n],
            on_on: vec![0; n],
            off_off: vec![0; n],
            prev: vec![false; n],
        }
    }

    /// Observes one round's available set (sorted ids; unknown ids ignored).
    pub fn observe(&mut self, available: &[usize]) {
        let n = self.prev.len();
        let mut now = vec![false; n];
        for &c in available {
            if c < n {
                now[c] = true;
            }
        }
        for (c, &on) in now.iter().enumerate() {
            match (self.prev[c], on) {
                (true, true) => self.on_on[c] += 1,
                (false, false) => self.off_off[c] += 1,
                _ => {}
            }
            self.on[c] += u64::from(on);
        }
        self.prev = now;
        self.rounds += 1;
    }

    /// `π̂_k`.
    pub fn pi(&self, k: usize) -> f64 {
        let h = self.horizon;
        (self.on[k] as f64 + h * self.prior_pi[k]) / (self.rounds as f64 + h)
    }

    /// `λ̂_k = a + b − 1`.
    pub fn lambda(&self, k: usize) -> f64 {
        let (h, p, l) = (self.horizon, self.prior_pi[k], self.prior_lambda[k]);
        let den = self.rounds as f64 + h;
        let a = (self.on_on[k] as f64 + h * (p + l - l * p)) / den;
        let b = (self.off_off[k] as f64 + h * (1.0 - p + l * p)) / den;
        a + b - 1.0
    }
}

/// The objective `J(α)` of step 4 (`π̂`, `F̂ − F*`, `q` given).
pub fn objective(alpha: &[f64], pi: &[f64], gap: &[f64], q: &[f64], beta: f64) -> f64 {
    let total: f64 = alpha.iter().zip(pi).map(|(a, p)| a * p).sum();
    let dissimilarity = gap.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut opt, mut tv) = (0.0, 0.0);
    for k in 0..alpha.len() {
        let w = alpha[k] * pi[k] / total;
        opt += w * gap[k];
        tv += (q[k] - w).abs();
    }
    let tv = 0.5 * tv;
    opt + beta * dissimilarity * tv * tv
}

/// One greedy pass of step 4 over `order`.
pub fn truncate(alpha: &[f64], order: &[usize], pi: &[f64], gap: &[f64], q: &[f64], beta: f64, tol: f64) -> Vec<f64> {
    let mut running = alpha.to_vec();
    let mut current = alpha.to_vec();
    let mut best = objective(&running, pi, gap, q, beta);
    for &k in order {
        current[k] = 0.0;
        if current.iter().sum::<f64>() == 0.0 {
            break;
        }
        let j = objective(&current, pi, gap, q, beta);
        if best - j >= tol {
            running[k] = 0.0;
            best = j;
        } else {
            current[k] = running[k];
        }
    }
    running
}

/// CA-Fed (or the Unbiased baseline).
#[derive(Clone, Debug)]
pub struct CaFed {
    cfg: CaFedConfig,
    est: AvailabilityEstimator,
    loss: Vec<f64>,
    loss_init: bool,
    alpha: Vec<f64>,
}

impl CaFed {
    /// CA-Fed with `cfg` (N = `cfg.q.len()`).
    pub fn new(cfg: CaFedConfig) -> Result<CaFed> {
        cfg.validate()?;
        let n = cfg.q.len();
        let est = AvailabilityEstimator::new(cfg.prior_pi.clone(), cfg.prior_lambda.clone(), cfg.horizon);
        Ok(CaFed {
            cfg,
            est,
            loss: vec![0.0; n],
            loss_init: false,
            alpha: vec![0.0; n],
        })
    }

    /// The settings.
    pub fn config(&self) -> &CaFedConfig {
        &self.cfg
    }

    /// The availability estimator.
    pub fn estimator(&self) -> &AvailabilityEstimator {
        &self.est
    }

    /// The weights `α` of the last aggregation (0 = excluded).
    pub fn alpha(&self) -> &[f64] {
        &self.alpha
    }

    /// The loss estimates `F̂`.
    pub fn loss_estimates(&self) -> &[f64] {
        &self.loss
    }

    fn update_losses(&mut self, results: &[FitRes]) {
        let finite: Vec<&FitRes> = results.iter().filter(|r| r.loss.is_finite()).collect();
        if finite.is_empty() {
            return;
        }
        if !self.loss_init {
            let mean = finite.iter().map(|r| r.loss).sum::<f64>() / finite.len() as f64;
            self.loss.iter_mut().for_each(|l| *l = mean);
            for r in &finite {
                self.loss[r.client] = r.loss;
            }
            self.loss_init = true;
        } else {
            let s = self.cfg.smoothness;
            for r in &finite {
                self.loss[r.client] = s * self.loss[r.client] + (1.0 - s) * r.loss;
            }
        }
    }

    /// Steps 3–4: the weights for the current estimates.
    pub fn weights(&self) -> Vec<f64> {
        let n = self.cfg.q.len();
        let pi: Vec<f64> = (0..n).map(|k| self.est.pi(k)).collect();
        let alpha: Vec<f64> = (0..n).map(|k| self.cfg.q[k] / pi[k]).collect();
        if !self.cfg.exclusion {
            return alpha;
        }
        let gap: Vec<f64> = (0..n).map(|k| self.loss[k] - self.cfg.f_star[k]).collect();
        let lam: Vec<f64> = (0..n).map(|k| self.est.lambda(k).abs()).collect();
        let mut by_lambda: Vec<usize> = (0..n).collect();
        by_lambda.sort_by(|&a, &b| lam[b].total_cmp(&lam[a]));
        let mut by_pi: Vec<usize> = (0..n).collect();
        by_pi.sort_by(|&a, &b| pi[a].total_cmp(&pi[b]));
        let (q, beta, tol) = (&self.cfg.q, self.cfg.beta, self.cfg.tol);
        let alpha = truncate(&alpha, &by_lambda, &pi, &gap, q, beta, tol);
        truncate(&alpha, &by_pi, &pi, &gap, q, beta, tol)
    }
}

/// Local-optimum losses `F_k*` on the logistic-regression workload: `steps`
/// full-batch gradient-descent steps of size `lr` from zero on each client's
/// data (round 1), the final full-batch loss. Clients without data get 0.
pub fn local_optimum_losses(w: &LogReg, steps: usize, lr: f64) -> Result<Vec<f64>> {
    if steps == 0 || !(lr > 0.0 && lr.is_finite()) {
        return Err(Error::Config(format!(
            "local optimum needs steps ≥ 1 and lr > 0, got {steps}, {lr}"
        )));
    }
    let mut out = Vec::with_capacity(w.spec.clients);
    let mut batch = Vec::new();
    let mut rng = crate::rng::Rng::stream(0, crate::rng::Purpose::Other, 0, 0);
    for k in 0..w.spec.clients {
        let data = w
            .client_data(k, 1)
            .ok_or_else(|| Error::Config(format!("no client {k}")))?;
        if data.is_empty() {
            out.push(0.0);
            continue;
        }
        data.batch_into(&mut rng, 0, &mut batch);
        let mut m = w.init();
        for _ in 0..steps {
            let (_, g) = data.loss_grad(&m, &batch)?;
            let next: Vec<Vec<f64>> = m
                .iter()
                .zip(g.iter())
                .map(|(p, gp)| p.data.iter().zip(&gp.data).map(|(x, d)| x - lr * d).collect())
                .collect();
            m = with_data(&m, next)?;
        }
        out.push(data.loss_grad(&m, &batch)?.0);
    }
    Ok(out)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    est: AvailabilityEstimator,
    loss: Vec<f64>,
    loss_init: bool,
    alpha: Vec<f64>,
}

impl Strategy for CaFed {
    fn name(&self) -> String {
        if self.cfg.exclusion {
            format!("ca-fed(beta={}, server_lr={})", self.cfg.beta, self.cfg.server_lr)
        } else {
            format!("ca-fed-unbiased(server_lr={})", self.cfg.server_lr)
        }
    }

    /// Every available client trains (the availability model decides
    /// participation, as in the paper); the set is observed here.
    fn configure_fit(&mut self, round: u64, available: &[usize], seed: u64) -> Result<Vec<FitIns>> {
        let n = self.cfg.q.len();
        if let Some(&c) = available.iter().find(|&&c| c >= n) {
            return Err(Error::Config(format!("ca-fed: client {c} ≥ {n} clients")));
        }
        self.est.observe(available);
        Ok(Sampling::default()
            .sample(round, available, seed)
            .into_iter()
            .map(|client| FitIns {
                client,
                round,
                config: self.cfg.client.clone(),
            })
            .collect())
    }

    fn aggregate_fit(&mut self, round: u64, global: &Model, results: &[FitRes], failures: &[Failure]) -> Result<Model> {
        check_results(global, results)?;
        let n = self.cfg.q.len();
        if let Some(r) = results.iter().find(|r| r.client >= n) {
            return Err(Error::Rejected(format!("client {} ≥ {n} clients", r.client)));
        }
        if results.is_empty() {
            return Err(Error::NoResults {
                round,
                failures: failures.len(),
            });
        }
        self.update_losses(results);
        self.alpha = self.weights();
        let eta = self.cfg.server_lr;
        let mut acc: Vec<Vec<f64>> = global.iter().map(|p| vec![0.0; p.data.len()]).collect();
        for r in results {
            let a = self.alpha[r.client];
            if a <= WEIGHT_EPS {
                continue;
            }
            for ((s, p), g) in acc.iter_mut().zip(r.params.iter()).zip(global.iter()) {
                for ((si, &xk), &x) in s.iter_mut().zip(&p.data).zip(&g.data) {
                    *si += a * (x - xk);
                }
            }
        }
        let data = global
            .iter()
            .zip(acc)
            .map(|(g, s)| g.data.iter().zip(s).map(|(&x, d)| x - eta * d).collect())
            .collect();
        with_data(global, data)
    }

    /// JSON of the estimator counts, loss estimates and last weights.
    fn state_bytes(&self) -> Result<Option<Vec<u8>>> {
        let st = State {
            est: self.est.clone(),
            loss: self.loss.clone(),
            loss_init: self.loss_init,
            alpha: self.alpha.clone(),
        };
        serde_json::to_vec(&st).map(Some).map_err(|e| Error::Io(e.to_string()))
    }

    fn load_state_bytes(&mut self, _global: &Model, bytes: &[u8]) -> Result<()> {
        let st: State = serde_json::from_slice(bytes).map_err(|e| Error::Config(format!("ca-fed state: {e}")))?;
        let n = self.cfg.q.len();
        if st.loss.len() != n || st.alpha.len() != n || st.est.prev.len() != n {
            return Err(Error::Config(format!(
                "ca-fed state is for {} clients, expected {n}",
                st.loss.len()
            )));
        }
        // The prior comes from the configuration, not the bytes.
        self.est = AvailabilityEstimator {
            prior_pi: self.cfg.prior_pi.clone(),
            prior_lambda: self.cfg.prior_lambda.clone(),
            horizon: self.cfg.horizon,
            ..st.est
        };
        (self.loss, self.loss_init, self.alpha) = (st.loss, st.loss_init, st.alpha);
        Ok(())
    }
}
