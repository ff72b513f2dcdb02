//! FedHyper: hypergradient learning-rate schedules for FedAvg.
//!
//! Paper: Wang, Wang & Li, *FedHyper: A Universal and Robust Learning Rate
//! Scheduler for Federated Learning with Hypergradient Descent* (ICLR 2024,
//! arXiv 2310.03156). Only the paper's abstract and introduction were
//! reachable from here (not its algorithm box or equations); the update rules,
//! bounds and defaults below follow the official code (ATP-1010/FedHyper
//! `src/federated_main.py`, `src/update.py`), read, not copied, as summarised
//! in the research notes §6.
//!
//! `Δ_t = x̄_t − x_t` with `x̄_t` the mean of the participants' models. The
//! hypergradient of the global objective with respect to the global rate is
//! (minus) `⟨Δ_{t−1}, Δ_t⟩`, so the rate's increment `a` does gradient
//! descent on it with hyper-rate `β`:
//! - **G** (`fedhyper-g`): round 1 is FedAvg; then
//!   `a ← clip(a + β⟨Δ_{t−1}, Δ_t⟩, −0.8, 4)`, `x ← x̄_t + a Δ_t`
//!   (`x + (1 + a)Δ_t`: effective global rate in `[0.2, 5]`).
//! - **GM** (`fedhyper-gm`, the code's recommended form): server momentum
//!   `μ = 0.9`, `m_1 = Δ_1` after a FedAvg round 1; then
//!   `a ← clip(a + β⟨m_{t−1}, Δ_t⟩, −0.2, 4)`, `x ← x̄_t + a Δ_t + μ a m_{t−1}`,
//!   `m_t = Δ_t + μ m_{t−1}`.
//! - **SL** (`fedhyper-sl`): the global step is FedAvg's; the same hypergradient
//!   drives the clients' rate: `a ← a + β⟨Δ_{t−1}, Δ_t⟩` (unclipped, as in the
//!   code), next round `η_l = clip(η_l0 (1 + a), 1e-3, 0.1)`, sent as the `lr`
//!   of the client optimizer's hyperparameters. (In the official code this
//!   rate is overwritten with `η_l0` at the start of every round, so SL runs
//!   as FedAvg there; steepest implements the intended schedule.)
//! - **CL** (`fedhyper-cl`, client side, [`FedHyperClients`]): the global step
//!   is FedAvg's; each participant scales its optimizer's rate by a factor `b` (1 at
//!   the start of every round): after each local step `s ≥ 2`, with
//!   `u_s = x_s − x_{s−1}`, `γ = min(1.1, 1 + 0.1⟨u_s, Δ_{t−1}⟩/(N·frac) + ⟨u_s, v⟩)`
//!   where `v = Δ_{t−1}` at `s = 2` and `u_{s−1}` after (the code's order),
//!   `b ← clip(γb, 0.1, 10)`; `Δ_{t−1} = 0` in round 1 (code: `update.py`).
//! - **FULL** (`fedhyper-full`): GM's global step with CL's clients.
//!
//! Defaults (code): `β = 1` (the code's implicit hyper-rate), bounds above,
//! `μ = 0.9`, uniform mean of the local models. (The code's client optimizer
//! is SGD with momentum 0.5, `η_l0 = 0.01`; here it is the client
//! configuration's registry optimizer.)
//!
//! Open choices and what steepest does:
//! - the mean is uniform over the results (the code's `average_weights`);
//!   `Weighting::Examples` gives FedAvg's example-weighted mean instead, with
//!   which round 1 equals FedAvg bit for bit;
//! - the new model is formed as `x̄_t + aΔ_t` (the code's order), so `a = 0`
//!   gives the FedAvg model exactly;
//! - the inner products are summed tensor by tensor, in the model's order;
//! - a round without results (all failed) changes nothing, the state included;
//! - CL's `N·frac` is the number of participants sampled in the round, sent
//!   with `Δ_{t−1}` inside the client's hyperparameters (keys `fedhyper.*`,
//!   removed before the registry optimizer is built, so plain `LogReg`
//!   clients refuse a CL round instead of silently ignoring it).
//!
//! State (`a`, `Δ_{t−1}` or `m_{t−1}`, `η_l`, the raw `Δ_{t−1}` sent to CL
//! clients) goes through `state_bytes`.

use serde::{Deserialize, Serialize};
use steepest::hyper::{num, value_as_f64};
use steepest::{GradSet, Optimizer};

use crate::algorithms::fedavg::weighted_mean;
use crate::logreg::LogReg;
use crate::rng::{Purpose, Rng};
use crate::sim::LogRegClientSide;
use crate::strategy::{require_results, with_data, ClientConfig, Failure, FitIns, FitRes, Model, Sampling, Strategy};
use crate::{Error, Result};

const KEY_DELTA: &str = "fedhyper.global_update";
const KEY_PARTICIPANTS: &str = "fedhyper.participants";

/// Which rate FedHyper adapts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Global rate.
    G,
    /// Global rate with server momentum.
    Gm,
    /// Server-scheduled local rate.
    Sl,
    /// Client-side local rate (global step FedAvg's); needs [`FedHyperClients`].
    Cl,
    /// GM with CL's clients; needs [`FedHyperClients`].
    Full,
}

impl Variant {
    /// Whether the clients adapt their rate (CL, FULL).
    pub fn client_side(self) -> bool {
        matches!(self, Variant::Cl | Variant::Full)
    }
}

/// How the participants' models are averaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weighting {
    /// Uniform (the official code).
    Uniform,
    /// By local examples (FedAvg's).
    Examples,
}

/// FedHyper's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct FedHyperConfig {
    /// Variant.
    pub variant: Variant,
    /// Hyper-rate β on the hypergradient.
    pub hyper_lr: f64,
    /// Clip on `a` (G: [−0.8, 4], GM: [−0.2, 4], SL: none).
    pub bounds: (f64, f64),
    /// Server momentum μ (GM).
    pub momentum: f64,
    /// Clip on the local rate (SL: [1e-3, 0.1]).
    pub lr_bounds: (f64, f64),
    /// Mean of the local models.
    pub weighting: Weighting,
}

impl FedHyperConfig {
    /// The code's defaults for `variant`.
    pub fn new(variant: Variant) -> Self {
        FedHyperConfig {
            variant,
            hyper_lr: 1.0,
            bounds: match variant {
                Variant::G => (-0.8, 4.0),
                Variant::Gm | Variant::Full => (-0.2, 4.0),
                Variant::Sl | Variant::Cl => (f64::NEG_INFINITY, f64::INFINITY),
            },
            momentum: 0.9,
            lr_bounds: (1e-3, 0.1),
            weighting: Weighting::Uniform,
        }
    }

    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        if !(self.hyper_lr >= 0.0 && self.hyper_lr.is_finite()) {
            return Err(Error::Config(format!(
                "fedhyper: hyper_lr must be ≥ 0 and finite, got {}",
                self.hyper_lr
            )));
        }
        let (lo, hi) = self.bounds;
        let unbounded_ok = matches!(self.variant, Variant::Sl | Variant::Cl);
        if !(lo <= 0.0 && hi >= 0.0 && (lo > -1.0 || unbounded_ok)) {
            return Err(Error::Config(format!(
                "fedhyper: bounds must satisfy −1 < lo ≤ 0 ≤ hi (the global rate 1 + a stays positive), got ({lo}, {hi})"
            )));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(Error::Config(format!(
                "fedhyper: momentum must be in [0, 1), got {}",
                self.momentum
            )));
        }
        let (l, h) = self.lr_bounds;
        if !(l > 0.0 && l <= h && h.is_finite()) {
            return Err(Error::Config(format!(
                "fedhyper: lr_bounds must satisfy 0 < lo ≤ hi < ∞, got ({l}, {h})"
            )));
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct State {
    a: f64,
    last: Option<Vec<f64>>,
    lr: f64,
    delta: Option<Vec<f64>>,
}

/// FedHyper (G, GM, SL) over FedAvg's sampling and client configuration.
#[derive(Clone, Debug)]
pub struct FedHyper {
    /// Client sampling.
    pub sampling: Sampling,
    /// What participants run (its `lr` is `η_l0`).
    pub client: ClientConfig,
    /// Settings.
    pub config: FedHyperConfig,
    lr0: f64,
    a: f64,
    last: Option<Vec<f64>>,
    lr: f64,
    delta: Option<Vec<f64>>,
}

impl FedHyper {
    /// FedHyper with `config`; the client's `hyper["lr"]` is the initial local rate.
    pub fn new(sampling: Sampling, client: ClientConfig, config: FedHyperConfig) -> Result<FedHyper> {
        sampling.validate()?;
        config.validate()?;
        if client.prox_mu < 0.0 || !client.prox_mu.is_finite() {
            return Err(Error::Config(format!("prox_mu must be ≥ 0, got {}", client.prox_mu)));
        }
        let lr0 = match client.hyper.get("lr").and_then(steepest::hyper::value_as_f64) {
            Some(v) if v > 0.0 && v.is_finite() => v,
            _ if config.variant != Variant::Sl => 0.0,
            other => {
                return Err(Error::Config(format!(
                    "fedhyper-sl: the client hyper needs a positive `lr` (η_l0), got {other:?}"
                )))
            }
        };
        Ok(FedHyper {
            sampling,
            client,
            config,
            lr0,
            a: 0.0,
            last: None,
            lr: lr0,
            delta: None,
        })
    }

    /// The current increment `a` (global rate `1 + a` for G and GM).
    pub fn a(&self) -> f64 {
        self.a
    }

    /// The local rate the next round sends (SL; `η_l0` otherwise).
    pub fn local_lr(&self) -> f64 {
        self.lr
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Strategy for FedHyper {
    fn name(&self) -> String {
        let v = match self.config.variant {
            Variant::G => "g",
            Variant::Gm => "gm",
            Variant::Sl => "sl",
            Variant::Cl => "cl",
            Variant::Full => "full",
        };
        format!("fedhyper-{v}(beta={})", self.config.hyper_lr)
    }

    fn configure_fit(&mut self, round: u64, available: &[usize], seed: u64) -> Result<Vec<FitIns>> {
        let mut config = self.client.clone();
        if self.config.variant == Variant::Sl {
            config.hyper.insert("lr".into(), num(self.lr));
        }
        let picked = self.sampling.sample(round, available, seed);
        if self.config.variant.client_side() {
            let d = self.delta.as_deref().unwrap_or(&[]);
            config
                .hyper
                .insert(KEY_DELTA.into(), d.iter().map(|&v| num(v)).collect());
            config.hyper.insert(KEY_PARTICIPANTS.into(), num(picked.len() as f64));
        }
        Ok(picked
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
        let mean: Vec<Vec<f64>> = match self.config.weighting {
            Weighting::Examples => weighted_mean(results)?,
            Weighting::Uniform => {
                let mut acc: Vec<Vec<f64>> = global.iter().map(|p| vec![0.0; p.data.len()]).collect();
                for r in results {
                    for (a, p) in acc.iter_mut().zip(r.params.iter()) {
                        for (ai, &x) in a.iter_mut().zip(&p.data) {
                            *ai += x;
                        }
                    }
                }
                let m = results.len() as f64;
                acc.iter_mut().flatten().for_each(|v| *v /= m);
                acc
            }
        };
        let xbar: Vec<f64> = mean.iter().flatten().copied().collect();
        let x: Vec<f64> = global.iter().flat_map(|p| p.data.iter().copied()).collect();
        let delta: Vec<f64> = xbar.iter().zip(&x).map(|(a, b)| a - b).collect();
        let (lo, hi) = self.config.bounds;
        let beta = self.config.hyper_lr;
        let mu = self.config.momentum;
        self.delta = Some(delta.clone());
        let out: Vec<f64> = match (self.config.variant, self.last.take()) {
            (_, None) => {
                self.last = Some(delta);
                xbar
            }
            (Variant::G, Some(prev)) => {
                self.a = (self.a + beta * dot(&prev, &delta)).clamp(lo, hi);
                let a = self.a;
                let out = xbar.iter().zip(&delta).map(|(xb, d)| xb + a * d).collect();
                self.last = Some(delta);
                out
            }
            (Variant::Gm | Variant::Full, Some(m)) => {
                self.a = (self.a + beta * dot(&m, &delta)).clamp(lo, hi);
                let a = self.a;
                let out = xbar
                    .iter()
                    .zip(delta.iter().zip(&m))
                    .map(|(xb, (d, mi))| xb + a * d + mu * a * mi)
                    .collect();
                self.last = Some(delta.iter().zip(&m).map(|(d, mi)| d + mu * mi).collect());
                out
            }
            (Variant::Sl, Some(prev)) => {
                self.a = (self.a + beta * dot(&prev, &delta)).clamp(lo, hi);
                let (l, h) = self.config.lr_bounds;
                self.lr = (self.lr0 * (1.0 + self.a)).clamp(l, h);
                self.last = Some(delta);
                xbar
            }
            (Variant::Cl, Some(_)) => {
                self.last = Some(delta);
                xbar
            }
        };
        let mut off = 0;
        let data = global
            .iter()
            .map(|p| {
                let v = out[off..off + p.data.len()].to_vec();
                off += p.data.len();
                v
            })
            .collect();
        with_data(global, data)
    }

    /// JSON `{a, last, lr}` (exact f64 round-trip).
    fn state_bytes(&self) -> Result<Option<Vec<u8>>> {
        let s = State {
            a: self.a,
            last: self.last.clone(),
            lr: self.lr,
            delta: self.delta.clone(),
        };
        serde_json::to_vec(&s).map(Some).map_err(|e| Error::Io(e.to_string()))
    }

    fn load_state_bytes(&mut self, global: &Model, bytes: &[u8]) -> Result<()> {
        let s: State = serde_json::from_slice(bytes).map_err(|e| Error::Config(format!("fedhyper state: {e}")))?;
        let n: usize = global.iter().map(|p| p.data.len()).sum();
        let bad = |v: &Option<Vec<f64>>| v.as_ref().is_some_and(|v| v.len() != n);
        if bad(&s.last) || bad(&s.delta) || !s.a.is_finite() || !s.lr.is_finite() {
            return Err(Error::Config("fedhyper state does not fit the model".into()));
        }
        (self.a, self.last, self.lr, self.delta) = (s.a, s.last, s.lr, s.delta);
        Ok(())
    }
}

/// FedHyper's CL clients over a [`LogReg`]: the local loop with the
/// per-step rate factor `β` (see the module doc). Stateless between rounds.
pub struct FedHyperClients<'a> {
    data: &'a LogReg,
}

impl<'a> FedHyperClients<'a> {
    /// CL clients over `data`.
    pub fn new(data: &'a LogReg) -> Self {
        FedHyperClients { data }
    }

    /// One client's round (batches as [`LogReg::fit`] draws them).
    pub fn fit(&self, ins: &FitIns, global: &Model, seed: u64) -> Result<FitRes> {
        let mut hyper = ins.config.hyper.clone();
        let n: usize = global.iter().map(|p| p.data.len()).sum();
        let delta: Vec<f64> = match hyper.remove(KEY_DELTA) {
            Some(serde_json::Value::Array(v)) if v.is_empty() => vec![0.0; n],
            Some(serde_json::Value::Array(v)) if v.len() == n => v
                .iter()
                .map(|x| {
                    value_as_f64(x).ok_or_else(|| Error::Config(format!("fedhyper client: `{KEY_DELTA}` holds {x}")))
                })
                .collect::<Result<_>>()?,
            other => {
                return Err(Error::Config(format!(
                    "fedhyper client: `{KEY_DELTA}` must be a list of {n} numbers, got {other:?}"
                )))
            }
        };
        let m = match hyper.remove(KEY_PARTICIPANTS).as_ref().and_then(value_as_f64) {
            Some(m) if m >= 1.0 => m,
            other => {
                return Err(Error::Config(format!(
                    "fedhyper client: `{KEY_PARTICIPANTS}` must be ≥ 1, got {other:?}"
                )))
            }
        };
        let data = self
            .data
            .client_data(ins.client, ins.round)
            .ok_or_else(|| Error::Config(format!("no client {}", ins.client)))?;
        let mut params = global.clone();
        if data.is_empty() {
            return Ok(FitRes {
                client: ins.client,
                params,
                num_examples: 0,
                loss: f64::NAN,
            });
        }
        let mut opt = Optimizer::new(&ins.config.optimizer, &hyper, &params)?;
        let mut rng = Rng::stream(seed, Purpose::Train, ins.client as u64, ins.round);
        let mut batch = Vec::new();
        let (mut total, mut beta) = (0.0, 1.0);
        let mut last = delta.clone();
        let flat = |m: &Model| -> Vec<f64> { m.iter().flat_map(|p| p.data.iter().copied()).collect() };
        for s in 0..ins.config.local_steps {
            let before = flat(&params);
            data.batch_into(&mut rng, ins.config.batch, &mut batch);
            let (loss, g) = data.loss_grad(&params, &batch)?;
            total += loss;
            let mut grads = GradSet::new();
            for p in g.iter() {
                grads.insert(p.name.clone(), p.data.clone());
            }
            opt.set_lr_scale(beta);
            opt.step(&mut params, &mut grads)?;
            if s >= 1 {
                let u: Vec<f64> = flat(&params).iter().zip(&before).map(|(a, b)| a - b).collect();
                let x = 0.1 * dot(&u, &delta) / m;
                let y = dot(&u, &last);
                let gamma = (1.0 + x + y).min(1.1);
                beta = (gamma * beta).clamp(0.1, 10.0);
                last = u;
            }
        }
        Ok(FitRes {
            client: ins.client,
            params,
            num_examples: data.len() as u64,
            loss: total / ins.config.local_steps.max(1) as f64,
        })
    }
}

impl LogRegClientSide for FedHyperClients<'_> {
    fn data(&self) -> &LogReg {
        self.data
    }
    fn fit_client(&self, ins: &FitIns, global: &Model, seed: u64) -> Result<FitRes> {
        FedHyperClients::fit(self, ins, global, seed)
    }
}
