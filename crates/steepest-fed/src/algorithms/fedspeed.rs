//! FedSpeed: prox-correction and a perturbed ("quasi") gradient.
//!
//! Paper: Sun, Shen, Huang, Ding & Tao, *FedSpeed: Larger Local Interval, Less
//! Communication Round, and Higher Generalization Accuracy* (ICLR 2023,
//! arXiv 2302.10429), Algorithm 1. Only the paper's abstract and introduction
//! were reachable from here, not Algorithm 1 itself; the local loop below is
//! the research notes' recollection of Algorithm 1 (notes §5), which agrees
//! line by line with a third-party implementation that cites the algorithm's
//! line numbers (FLGo's `fedspeed`), and with the official code
//! (woodenchild95/FL-Simulator `client/fedspeed.py`, `server/FedSpeed.py`)
//! up to the variant listed below. Read, not copied.
//!
//! Client `i` in round `t`, from `x_{i,0} = x`, for `k < K` on one minibatch `ξ`:
//! - `g₁ = ∇f_i(x_{i,k}; ξ)`, `x̆ = x_{i,k} + ρ g₁`, `g₂ = ∇f_i(x̆; ξ)`
//!   (same batch), quasi-gradient `g = (1 − α) g₁ + α g₂`;
//! - `x_{i,k+1} = x_{i,k} − η_l (g − ĝ_i + (1/λ)(x_{i,k} − x))`
//!   (the client's registry optimizer, `sgd` in the paper, fed that direction);
//! - then `ĝ_i ← ĝ_i − (1/λ)(x_{i,K} − x)` and the upload
//!   `x̂_i = x_{i,K} − λ ĝ_i`; server `x ← (1/|S_t|) Σ_{i∈S_t} x̂_i` (uniform).
//!
//! Representation: with `λ` constant, `λ ĝ_i = −h_i` where
//! `h_i = Σ_{rounds of i} (x_{i,K} − x)`; the client keeps `h_i` (not `ĝ_i`),
//! uses `−ĝ_i = h_i / λ` and uploads `x̂_i = x_{i,K} + h_i`. This is the same
//! arithmetic up to rounding and allows `λ = ∞` (no prox, no correction in
//! the local loop: plain local SGD; the upload still carries `h_i`).
//!
//! Where client state lives: `h_i` belongs to client `i`, so the local loop is
//! a [`Workload`] wrapper, [`FedSpeedClients`], over [`LogReg`] (one
//! mutex-protected slot per client; a client trains at most once per round,
//! so the result does not depend on thread scheduling). The server half is
//! the strategy [`FedSpeed`]; it sends `λ, ρ, α` and the variant inside the
//! client's hyperparameters (keys `fedspeed.*`, removed before the registry
//! optimizer is built), so a plain `LogReg` refuses a FedSpeed round (its
//! optimizer rejects the unknown keys) instead of silently running FedAvg.
//!
//! Defaults: `λ = 10` (the official code's `lamb = 1/λ = 0.1`), `ρ = 0.1`
//! (code), `α = 0.9` (FLGo's default; the paper's value could not be read).
//!
//! Variant (the official code, [`FedSpeedConfig::code`]): the perturbation is
//! normalised, `x̆ = x_{i,k} + ρ g₁/‖g₁‖` (ESAM/SAM style), with `α = 1`; the
//! client uploads `x_{i,K}` and the server keeps `h_i` for *all* clients:
//! `x ← mean_{S_t} x_{i,K} + (1/N) Σ_{all n} h_n` (the paper's form is the mean
//! over participants only). The code's weight decay (1e-3), gradient clipping
//! (norm 10) and per-round lr decay (×0.998) are not part of the variant: use
//! the client optimizer's own options for them.
//!
//! Open choices and what steepest does:
//! - local work is counted in minibatch steps, batches drawn as
//!   [`LogReg::fit`] draws them (stream `(seed, Train, client, round)`), so with
//!   `λ = ∞` and `α = 0` a client's local model is FedAvg's bit for bit;
//! - `‖g₁‖ = 0` under the normalised perturbation: no perturbation;
//! - the sum over participants runs in client-id order; failures are dropped
//!   (their `h_i` is not updated: the client did not finish);
//! - the code variant's server state `h` goes through `state_bytes`; the
//!   paper form's server is stateless (its state is on the clients, see
//!   [`FedSpeedClients::state`]).

use std::sync::Mutex;

use steepest::hyper::{num, value_as_f64, Hyper};
use steepest::{GradSet, Optimizer};

use crate::logreg::LogReg;
use crate::rng::{Purpose, Rng};
use crate::sim::LogRegClientSide;
use crate::strategy::{require_results, with_data, ClientConfig, Failure, FitIns, FitRes, Model, Sampling, Strategy};
use crate::{Error, Result};

const KEY_LAMBDA: &str = "fedspeed.lambda";
const KEY_RHO: &str = "fedspeed.rho";
const KEY_ALPHA: &str = "fedspeed.alpha";
const KEY_NORMALIZED: &str = "fedspeed.normalized";
const KEY_UPLOAD_LOCAL: &str = "fedspeed.upload_local";

/// FedSpeed's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct FedSpeedConfig {
    /// Prox coefficient `λ` (the local objective adds `(1/2λ)‖x_i − x‖²`); `∞` = none.
    pub lambda: f64,
    /// Perturbation radius `ρ` (0 = none).
    pub rho: f64,
    /// Weight `α` of the perturbed gradient in the quasi-gradient.
    pub alpha: f64,
    /// Normalised perturbation `ρ g/‖g‖` (the official code) instead of `ρ g` (paper).
    pub normalized: bool,
    /// Server keeps `h_n` for all clients and averages it over all `N` (the
    /// official code); clients then upload `x_{i,K}` instead of `x̂_i`.
    pub server_h: bool,
}

impl Default for FedSpeedConfig {
    fn default() -> Self {
        FedSpeedConfig::paper()
    }
}

impl FedSpeedConfig {
    /// The paper's form with steepest's defaults (`λ = 10, ρ = 0.1, α = 0.9`).
    pub fn paper() -> Self {
        FedSpeedConfig {
            lambda: 10.0,
            rho: 0.1,
            alpha: 0.9,
            normalized: false,
            server_h: false,
        }
    }

    /// The official code's variant (normalised `ρ = 0.1`, `α = 1`, `λ = 10`, `h` over all clients).
    pub fn code() -> Self {
        FedSpeedConfig {
            lambda: 10.0,
            rho: 0.1,
            alpha: 1.0,
            normalized: true,
            server_h: true,
        }
    }

    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        if self.lambda.is_nan() || self.lambda <= 0.0 {
            return Err(Error::Config(format!(
                "fedspeed: lambda must be > 0 (∞ allowed), got {}",
                self.lambda
            )));
        }
        if !(self.rho >= 0.0 && self.rho.is_finite()) {
            return Err(Error::Config(format!(
                "fedspeed: rho must be ≥ 0 and finite, got {}",
                self.rho
            )));
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(Error::Config(format!(
                "fedspeed: alpha must be in [0, 1], got {}",
                self.alpha
            )));
        }
        Ok(())
    }

    fn write(&self, hyper: &mut Hyper) {
        hyper.insert(KEY_LAMBDA.into(), num(self.lambda));
        hyper.insert(KEY_RHO.into(), num(self.rho));
        hyper.insert(KEY_ALPHA.into(), num(self.alpha));
        hyper.insert(KEY_NORMALIZED.into(), self.normalized.into());
        hyper.insert(KEY_UPLOAD_LOCAL.into(), self.server_h.into());
    }

    /// Takes the FedSpeed keys out of `hyper` (what is left is the optimizer's).
    fn take(hyper: &mut Hyper) -> Result<FedSpeedConfig> {
        let mut f = |k: &str| -> Result<f64> {
            let v = hyper
                .remove(k)
                .ok_or_else(|| Error::Config(format!("fedspeed client: no `{k}` in the client configuration")))?;
            value_as_f64(&v).ok_or_else(|| Error::Config(format!("fedspeed client: `{k}` must be a number, got {v}")))
        };
        let (lambda, rho, alpha) = (f(KEY_LAMBDA)?, f(KEY_RHO)?, f(KEY_ALPHA)?);
        let mut b = |k: &str| -> Result<bool> {
            match hyper.remove(k) {
                None => Ok(false),
                Some(serde_json::Value::Bool(b)) => Ok(b),
                Some(v) => Err(Error::Config(format!(
                    "fedspeed client: `{k}` must be a boolean, got {v}"
                ))),
            }
        };
        let c = FedSpeedConfig {
            lambda,
            rho,
            alpha,
            normalized: b(KEY_NORMALIZED)?,
            server_h: b(KEY_UPLOAD_LOCAL)?,
        };
        c.validate()?;
        Ok(c)
    }
}

fn flat_len(m: &Model) -> usize {
    m.iter().map(|p| p.data.len()).sum()
}

fn flatten(m: &Model) -> Vec<f64> {
    m.iter().flat_map(|p| p.data.iter().copied()).collect()
}

fn unflatten(like: &Model, v: &[f64]) -> Result<Model> {
    let mut off = 0;
    let mut data = Vec::with_capacity(like.len());
    for p in like.iter() {
        data.push(v[off..off + p.data.len()].to_vec());
        off += p.data.len();
    }
    with_data(like, data)
}

/// FedSpeed's clients: the local loop of Algorithm 1 over a [`LogReg`], with
/// each client's correction state `h_i` (see the module doc). Make a fresh
/// one per run: the state persists between calls.
pub struct FedSpeedClients<'a> {
    data: &'a LogReg,
    h: Vec<Mutex<Option<Vec<f64>>>>,
}

impl<'a> FedSpeedClients<'a> {
    /// Clients over `data`, every `h_i = 0`.
    pub fn new(data: &'a LogReg) -> Self {
        FedSpeedClients {
            data,
            h: (0..data.spec.clients).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Client `n`'s state `h_n = −λ ĝ_n` (flattened; `None` before it first trained).
    pub fn state(&self, n: usize) -> Option<Vec<f64>> {
        self.h.get(n)?.lock().map(|g| g.clone()).unwrap_or(None)
    }

    /// One client's round; also usable without the simulator.
    pub fn fit(&self, ins: &FitIns, global: &Model, seed: u64) -> Result<FitRes> {
        let mut hyper = ins.config.hyper.clone();
        let cfg = FedSpeedConfig::take(&mut hyper)?;
        let slot = self
            .h
            .get(ins.client)
            .ok_or_else(|| Error::Config(format!("no client {}", ins.client)))?;
        let data = self
            .data
            .client_data(ins.client, ins.round)
            .ok_or_else(|| Error::Config(format!("no client {}", ins.client)))?;
        if data.is_empty() {
            return Ok(FitRes {
                client: ins.client,
                params: global.clone(),
                num_examples: 0,
                loss: f64::NAN,
            });
        }
        let n = flat_len(global);
        let h = slot
            .lock()
            .map_err(|_| Error::Config("fedspeed client state poisoned".into()))?
            .clone()
            .unwrap_or_else(|| vec![0.0; n]);
        if h.len() != n {
            return Err(Error::Config(format!(
                "fedspeed client {}: state has {} values, model {n}",
                ins.client,
                h.len()
            )));
        }
        let inv = 1.0 / cfg.lambda; // 0 for λ = ∞
        let x0 = flatten(global);
        let mut params = global.clone();
        let mut opt = Optimizer::new(&ins.config.optimizer, &hyper, &params)?;
        let mut rng = Rng::stream(seed, Purpose::Train, ins.client as u64, ins.round);
        let mut batch = Vec::new();
        let mut total = 0.0;
        let perturb = cfg.rho > 0.0 && cfg.alpha > 0.0;
        for _ in 0..ins.config.local_steps {
            data.batch_into(&mut rng, ins.config.batch, &mut batch);
            let (loss, g1) = data.loss_grad(&params, &batch)?;
            total += loss;
            let g1 = flatten(&g1);
            let x = flatten(&params);
            let mut g = if perturb {
                let scale = if cfg.normalized {
                    let norm = g1.iter().map(|v| v * v).sum::<f64>().sqrt();
                    if norm > 0.0 {
                        cfg.rho / norm
                    } else {
                        0.0
                    }
                } else {
                    cfg.rho
                };
                let xp: Vec<f64> = x.iter().zip(&g1).map(|(a, b)| a + scale * b).collect();
                let (_, g2) = data.loss_grad(&unflatten(global, &xp)?, &batch)?;
                let g2 = flatten(&g2);
                if cfg.alpha == 1.0 {
                    g2
                } else {
                    g1.iter()
                        .zip(&g2)
                        .map(|(a, b)| (1.0 - cfg.alpha) * a + cfg.alpha * b)
                        .collect()
                }
            } else {
                g1
            };
            if inv > 0.0 {
                for (((gi, hi), xi), x0i) in g.iter_mut().zip(&h).zip(&x).zip(&x0) {
                    *gi += inv * hi + inv * (xi - x0i);
                }
            }
            let mut grads = GradSet::new();
            let mut off = 0;
            for p in params.iter() {
                grads.insert(p.name.clone(), g[off..off + p.data.len()].to_vec());
                off += p.data.len();
            }
            opt.step(&mut params, &mut grads)?;
        }
        let xk = flatten(&params);
        let h: Vec<f64> = h
            .iter()
            .zip(xk.iter().zip(&x0))
            .map(|(hi, (a, b))| hi + (a - b))
            .collect();
        let upload = if cfg.server_h {
            params
        } else {
            let xhat: Vec<f64> = xk.iter().zip(&h).map(|(a, b)| a + b).collect();
            unflatten(global, &xhat)?
        };
        *slot
            .lock()
            .map_err(|_| Error::Config("fedspeed client state poisoned".into()))? = Some(h);
        Ok(FitRes {
            client: ins.client,
            params: upload,
            num_examples: data.len() as u64,
            loss: total / ins.config.local_steps.max(1) as f64,
        })
    }
}

impl LogRegClientSide for FedSpeedClients<'_> {
    fn data(&self) -> &LogReg {
        self.data
    }
    fn fit_client(&self, ins: &FitIns, global: &Model, seed: u64) -> Result<FitRes> {
        FedSpeedClients::fit(self, ins, global, seed)
    }
}

/// FedSpeed's server: Flower's sampling, the configuration sent to the
/// clients, and the uniform mean of the uploads (plus `h` over all clients
/// in the code variant).
#[derive(Clone, Debug)]
pub struct FedSpeed {
    /// Client sampling.
    pub sampling: Sampling,
    /// What participants run (their optimizer; FedSpeed's keys are added).
    pub client: ClientConfig,
    /// The algorithm's settings.
    pub config: FedSpeedConfig,
    clients: usize,
    h: Vec<Vec<f64>>,
}

impl FedSpeed {
    /// FedSpeed over `clients` clients (needed by the code variant's server `h`).
    pub fn new(sampling: Sampling, client: ClientConfig, config: FedSpeedConfig, clients: usize) -> Result<FedSpeed> {
        sampling.validate()?;
        config.validate()?;
        if clients == 0 {
            return Err(Error::Config("fedspeed: clients must be ≥ 1".into()));
        }
        if client.prox_mu != 0.0 {
            return Err(Error::Config(
                "fedspeed: prox_mu must be 0 (FedSpeed has its own prox term, lambda)".into(),
            ));
        }
        if client.hyper.keys().any(|k| k.starts_with("fedspeed.")) {
            return Err(Error::Config(
                "fedspeed: hyper must not carry `fedspeed.*` keys (set FedSpeedConfig)".into(),
            ));
        }
        Ok(FedSpeed {
            sampling,
            client,
            config,
            clients,
            h: Vec::new(),
        })
    }
}

impl Strategy for FedSpeed {
    fn name(&self) -> String {
        let c = &self.config;
        format!(
            "fedspeed(lambda={}, rho={}, alpha={}{})",
            c.lambda,
            c.rho,
            c.alpha,
            if c.server_h || c.normalized {
                ", code variant"
            } else {
                ""
            }
        )
    }

    fn configure_fit(&mut self, round: u64, available: &[usize], seed: u64) -> Result<Vec<FitIns>> {
        let mut config = self.client.clone();
        self.config.write(&mut config.hyper);
        Ok(self
            .sampling
            .sample(round, available, seed)
            .into_iter()
            .map(|client| FitIns {
                client,
                round,
                config: config.clone(),
            })
            .collect())
    }

    fn aggregate_fit(&mut self, round: u64, global: &Model, results: &[FitRes], failures: &[Failure]) -> Result<Model> {
        require_results(round, global, results, failures)?;
        let n = flat_len(global);
        let m = results.len() as f64;
        let mut mean = vec![0.0; n];
        for r in results {
            for (a, x) in mean.iter_mut().zip(r.params.iter().flat_map(|p| p.data.iter())) {
                *a += x;
            }
        }
        for a in &mut mean {
            *a /= m;
        }
        if self.config.server_h {
            if let Some(r) = results.iter().find(|r| r.client >= self.clients) {
                return Err(Error::Rejected(format!(
                    "client {} ≥ {} clients",
                    r.client, self.clients
                )));
            }
            if self.h.is_empty() {
                self.h = vec![Vec::new(); self.clients];
            }
            let x0 = flatten(global);
            for r in results {
                let h = &mut self.h[r.client];
                if h.is_empty() {
                    *h = vec![0.0; n];
                }
                for ((hi, x), b) in h.iter_mut().zip(r.params.iter().flat_map(|p| p.data.iter())).zip(&x0) {
                    *hi += x - b;
                }
            }
            let mut hbar = vec![0.0; n];
            for h in self.h.iter().filter(|h| !h.is_empty()) {
                for (a, b) in hbar.iter_mut().zip(h) {
                    *a += b;
                }
            }
            let all = self.clients as f64;
            for (a, b) in mean.iter_mut().zip(&hbar) {
                *a += b / all;
            }
        }
        unflatten(global, &mean)
    }

    /// The code variant's `h` per client (JSON, exact f64 round-trip; empty
    /// lists for clients not yet seen); `None` for the paper form (stateless server).
    fn state_bytes(&self) -> Result<Option<Vec<u8>>> {
        if !self.config.server_h {
            return Ok(None);
        }
        serde_json::to_vec(&self.h)
            .map(Some)
            .map_err(|e| Error::Io(e.to_string()))
    }

    fn load_state_bytes(&mut self, global: &Model, bytes: &[u8]) -> Result<()> {
        if !self.config.server_h {
            return Err(Error::Config("fedspeed (paper form) keeps no server state".into()));
        }
        let h: Vec<Vec<f64>> =
            serde_json::from_slice(bytes).map_err(|e| Error::Config(format!("fedspeed state: {e}")))?;
        let n = flat_len(global);
        if !(h.is_empty() || h.len() == self.clients && h.iter().all(|v| v.is_empty() || v.len() == n)) {
            return Err(Error::Config(
                "fedspeed state does not fit the model and client count".into(),
            ));
        }
        self.h = h;
        Ok(())
    }
}
