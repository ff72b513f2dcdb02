//! Heterogeneous model reduction and the minimum coverage index (MCI).
//!
//! Paper: Hanhan Zhou, Tian Lan, Guru Venkataramani & Wenbo Ding, *Every
//! Parameter Matters: Ensuring the Convergence of Federated Learning with
//! Dynamic Heterogeneous Models Reduction* (NeurIPS 2023, arXiv 2310.08670).
//! Only the abstract (arXiv mirrors, OpenReview) was read from here, not the
//! paper's body, so its algorithm and equation numbers are not cited; the
//! algorithm below follows the research notes (§8) and the official code
//! (hanhanAnderson/FL_Converge, `WeightsPruning/main_fed.py`,
//! `models/Fed.py`), read, not copied:
//!
//! 1. Round `q`: participant `n` gets a reduction mask `m_{q,n}` built from the
//!    global model `θ_q` by a policy ([`Reduction`]).
//! 2. It trains the reduced model `θ_q ⊙ m_{q,n}` for `T` local steps. Paper
//!    form ([`TrainForm::MaskedGradients`], the default): the gradient is
//!    masked, so dropped coordinates stay 0. Code form
//!    ([`TrainForm::RemaskAfter`]): trains the reduced model unmasked and
//!    re-masks the result.
//! 3. Server, per coordinate `j`: `Γ_q^j = #{n : m_{q,n}^j = 1}` and
//!    `θ_{q+1}^j = (1/Γ_q^j) Σ_{n covering j} θ_{q,n}^j`; where `Γ_q^j = 0`
//!    the coordinate keeps `θ_q^j` (the code's `nan_to_num` zeroes it; that
//!    form is the option `zero_uncovered`).
//! 4. The minimum coverage index `Γ* = min_{q,j} Γ_q^j`
//!    ([`Mci::gamma_history`] per round, [`Mci::min_coverage`] over the run);
//!    the paper's bound grows like `N/Γ*` times the reduction noise
//!    `E‖θ − θ ⊙ m‖²`.
//!
//! Policies ([`Reduction`]):
//! - [`Reduction::Quantiles`] (the code's): each masked tensor's coordinates
//!   are ranked by `|θ_q^j|` (ties by index, so the zero initial model ranks by
//!   position), cut into `K` equal quantile blocks (block 0 smallest), and
//!   the listed blocks are kept; recomputed every round from `θ_q`. The code's
//!   seven client types (`K = 4`) are [`Reduction::code_type`]: 1 full; 2/3/4
//!   drop the 3rd/2nd/1st quartile; 5/6/7 keep the 1st/2nd/3rd quartile and
//!   the 4th (largest).
//! - [`Reduction::Random`]: each coordinate kept with probability `p`,
//!   drawn from the stream `(seed, Mask, client, round)`.
//! - [`Reduction::Full`]: no reduction.
//!
//! Choices left open, and what steepest does:
//! - Which client gets which policy: client `c` gets
//!   `settings[c mod settings.len()]` (the code gives the `i`-th *sampled*
//!   client `setting_array[i]`; by client id the client can rebuild its own
//!   mask).
//! - How masks reach the client: [`ClientConfig`] is left unchanged; the
//!   client side is the [`MciClient`] workload wrapper, which holds the same
//!   [`MciSpec`] and rebuilds its mask from the global model it receives, its
//!   id, the round and the run seed — exactly what the server computes, so a
//!   networked client holding the spec can do the same.
//! - Which tensors are reduced: the code reduces the first layer's weight and
//!   bias; on logistic regression steepest reduces every tensor named in
//!   `MciSpec::tensors` (default `w` and `b`), each ranked separately.
//! - The average over covering clients is uniform (the paper's `1/Γ`), not
//!   weighted by examples; with all-ones masks MCI is FedAvg with uniform
//!   weights (bit for bit when every client holds the same power-of-two
//!   number of examples, tested).
//! - FedProx's term is not supported (`prox_mu` must be 0).

use serde::{Deserialize, Serialize};
use steepest::{GradSet, Optimizer};

use crate::logreg::LogReg;
use crate::rng::{Purpose, Rng};
use crate::sim::LogRegClientSide;
use crate::strategy::{check_results, with_data, ClientConfig, Failure, FitIns, FitRes, Model, Sampling, Strategy};
use crate::{Error, Result};

/// A client's reduction policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reduction {
    /// Keep everything.
    Full,
    /// Keep the listed magnitude-quantile blocks (0 = smallest of `K`).
    Quantiles(Vec<usize>),
    /// Keep each coordinate with this probability (seeded).
    Random(f64),
}

impl Reduction {
    /// The official code's client types 1–7 (quartiles, `K = 4`).
    pub fn code_type(t: usize) -> Result<Reduction> {
        Ok(match t {
            1 => Reduction::Full,
            2 => Reduction::Quantiles(vec![0, 1, 3]),
            3 => Reduction::Quantiles(vec![0, 2, 3]),
            4 => Reduction::Quantiles(vec![1, 2, 3]),
            5 => Reduction::Quantiles(vec![0, 3]),
            6 => Reduction::Quantiles(vec![1, 3]),
            7 => Reduction::Quantiles(vec![2, 3]),
            _ => return Err(Error::Config(format!("mci code type must be 1..=7, got {t}"))),
        })
    }
}

/// How a client trains its reduced model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrainForm {
    /// Paper: masked gradients (dropped coordinates stay 0).
    MaskedGradients,
    /// Code: train the reduced model unmasked, re-mask the result.
    RemaskAfter,
}

/// The mask specification shared by the server and its clients.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MciSpec {
    /// Quantile blocks `K` of [`Reduction::Quantiles`] (code: 4).
    pub quantiles: usize,
    /// Tensors reduced (others are always kept).
    pub tensors: Vec<String>,
    /// Client `c` gets `settings[c mod len]`.
    pub settings: Vec<Reduction>,
    /// Client training form.
    pub form: TrainForm,
}

impl Default for MciSpec {
    fn default() -> Self {
        MciSpec {
            quantiles: 4,
            tensors: vec!["w".into(), "b".into()],
            settings: vec![Reduction::Full],
            form: TrainForm::MaskedGradients,
        }
    }
}

/// Per-tensor keep flags (`true` = kept), in the model's tensor order.
pub type Mask = Vec<Vec<bool>>;

impl MciSpec {
    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        if self.quantiles == 0 {
            return Err(Error::Config("mci quantiles must be ≥ 1".into()));
        }
        if self.settings.is_empty() {
            return Err(Error::Config("mci settings must name at least one reduction".into()));
        }
        for s in &self.settings {
            match s {
                Reduction::Full => {}
                Reduction::Quantiles(q) => {
                    if let Some(b) = q.iter().find(|&&b| b >= self.quantiles) {
                        return Err(Error::Config(format!(
                            "mci settings: quantile block {b} out of range 0..{}",
                            self.quantiles
                        )));
                    }
                }
                Reduction::Random(p) => {
                    if !(*p > 0.0 && *p <= 1.0) {
                        return Err(Error::Config(format!(
                            "mci settings: random keep must be in (0, 1], got {p}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// The reduction of client `client`.
    pub fn reduction(&self, client: usize) -> &Reduction {
        &self.settings[client % self.settings.len()]
    }

    /// The mask of `client` in `round`, built from the global model `global`.
    pub fn mask(&self, global: &Model, client: usize, round: u64, seed: u64) -> Mask {
        let red = self.reduction(client);
        let mut rng = Rng::stream(seed, Purpose::Mask, client as u64, round);
        global
            .iter()
            .map(|p| {
                let n = p.data.len();
                if !self.tensors.contains(&p.name) {
                    return vec![true; n];
                }
                match red {
                    Reduction::Full => vec![true; n],
                    Reduction::Random(keep) => (0..n).map(|_| rng.uniform() < *keep).collect(),
                    Reduction::Quantiles(kept) => {
                        let mut order: Vec<usize> = (0..n).collect();
                        order.sort_by(|&a, &b| p.data[a].abs().total_cmp(&p.data[b].abs()).then(a.cmp(&b)));
                        let mut m = vec![false; n];
                        for (rank, &j) in order.iter().enumerate() {
                            m[j] = kept.contains(&(rank * self.quantiles / n));
                        }
                        m
                    }
                }
            })
            .collect()
    }
}

/// The fraction of coordinates a mask keeps.
pub fn kept_fraction(mask: &Mask) -> f64 {
    let n: usize = mask.iter().map(Vec::len).sum();
    let k: usize = mask.iter().map(|t| t.iter().filter(|&&b| b).count()).sum();
    k as f64 / n.max(1) as f64
}

/// Coverage averaging: `θ^j ← (1/Γ^j) Σ_{covering n} θ_n^j` (clients in the
/// given order), `θ^j` kept (or zeroed with `zero_uncovered`) where `Γ^j = 0`.
/// Returns the new tensors and the minimum coverage of the round.
pub fn coverage_average(global: &Model, locals: &[(&Model, &Mask)], zero_uncovered: bool) -> (Vec<Vec<f64>>, usize) {
    let mut min_cov = usize::MAX;
    let out = global
        .iter()
        .enumerate()
        .map(|(t, g)| {
            let mut sum = vec![0.0; g.data.len()];
            let mut cov = vec![0usize; g.data.len()];
            for (m, mask) in locals {
                let x = &m.iter().nth(t).expect("checked shapes").data;
                for j in 0..sum.len() {
                    if mask[t][j] {
                        sum[j] += x[j];
                        cov[j] += 1;
                    }
                }
            }
            sum.iter()
                .zip(&cov)
                .zip(&g.data)
                .map(|((&s, &c), &old)| {
                    min_cov = min_cov.min(c);
                    if c == 0 {
                        if zero_uncovered {
                            0.0
                        } else {
                            old
                        }
                    } else {
                        s / c as f64
                    }
                })
                .collect()
        })
        .collect();
    (out, if min_cov == usize::MAX { 0 } else { min_cov })
}

/// The mask spec of the registry entry `mci` from its options: `type`
/// (the code's client type 1–7 for every client), else `keep` (random masks
/// with that kept fraction; default 1 = no reduction); `form` 0 = paper
/// (masked gradients, default), 1 = code (re-mask after training).
pub fn spec_from_opts(opts: &std::collections::BTreeMap<String, f64>) -> Result<MciSpec> {
    let reduction = match opts.get("type") {
        Some(&t) if t >= 1.0 && t.fract() == 0.0 => Reduction::code_type(t as usize)?,
        Some(&t) => return Err(Error::Config(format!("mci type must be 1..=7, got {t}"))),
        None => {
            let k = opts.get("keep").copied().unwrap_or(1.0);
            if k == 1.0 {
                Reduction::Full
            } else {
                Reduction::Random(k)
            }
        }
    };
    let f = opts.get("form").copied().unwrap_or(0.0);
    let form = if f == 0.0 {
        TrainForm::MaskedGradients
    } else if f == 1.0 {
        TrainForm::RemaskAfter
    } else {
        return Err(Error::Config(format!(
            "mci form must be 0 (paper) or 1 (code), got {f}"
        )));
    };
    let spec = MciSpec {
        settings: vec![reduction],
        form,
        ..MciSpec::default()
    };
    spec.validate()?;
    Ok(spec)
}

/// The MCI strategy: Flower's sampling, one client configuration, masks from
/// the shared [`MciSpec`], coverage averaging.
#[derive(Clone, Debug)]
pub struct Mci {
    /// Client sampling.
    pub sampling: Sampling,
    /// What participants run.
    pub client: ClientConfig,
    /// The mask specification (clients must hold the same).
    pub spec: MciSpec,
    /// Code form: zero the coordinates nobody covers (default false: keep).
    pub zero_uncovered: bool,
    seed: Option<u64>,
    history: Vec<(u64, usize)>,
}

impl Mci {
    /// MCI with the given sampling, client configuration and mask spec.
    pub fn new(sampling: Sampling, client: ClientConfig, spec: MciSpec) -> Result<Mci> {
        sampling.validate()?;
        spec.validate()?;
        if client.prox_mu != 0.0 {
            return Err(Error::Config(format!(
                "prox_mu: mci does not support a proximal term, got {}",
                client.prox_mu
            )));
        }
        Ok(Mci {
            sampling,
            client,
            spec,
            zero_uncovered: false,
            seed: None,
            history: Vec::new(),
        })
    }

    /// `(round, Γ*_q)` for every aggregated round.
    pub fn gamma_history(&self) -> &[(u64, usize)] {
        &self.history
    }

    /// `Γ* = min_q Γ*_q` over the aggregated rounds (`None` before any).
    pub fn min_coverage(&self) -> Option<usize> {
        self.history.iter().map(|&(_, g)| g).min()
    }
}

impl Strategy for Mci {
    fn name(&self) -> String {
        "mci".into()
    }

    fn configure_fit(&mut self, round: u64, available: &[usize], seed: u64) -> Result<Vec<FitIns>> {
        self.seed = Some(seed);
        Ok(self
            .sampling
            .sample(round, available, seed)
            .into_iter()
            .map(|client| FitIns {
                client,
                round,
                config: self.client.clone(),
            })
            .collect())
    }

    fn aggregate_fit(&mut self, round: u64, global: &Model, results: &[FitRes], failures: &[Failure]) -> Result<Model> {
        if results.is_empty() {
            return Err(Error::NoResults {
                round,
                failures: failures.len(),
            });
        }
        let seed = self
            .seed
            .ok_or_else(|| Error::Config("mci: aggregate_fit before configure_fit (no seed)".into()))?;
        check_results(global, results)?;
        let masks: Vec<Mask> = results
            .iter()
            .map(|r| self.spec.mask(global, r.client, round, seed))
            .collect();
        let locals: Vec<(&Model, &Mask)> = results.iter().map(|r| &r.params).zip(masks.iter()).collect();
        let (data, gamma) = coverage_average(global, &locals, self.zero_uncovered);
        self.history.push((round, gamma));
        with_data(global, data)
    }

    fn state_bytes(&self) -> Result<Option<Vec<u8>>> {
        serde_json::to_vec(&self.history)
            .map(Some)
            .map_err(|e| Error::Io(e.to_string()))
    }

    fn load_state_bytes(&mut self, _global: &Model, bytes: &[u8]) -> Result<()> {
        self.history = serde_json::from_slice(bytes).map_err(|e| Error::Config(format!("mci state: {e}")))?;
        Ok(())
    }
}

/// The client side of MCI on logistic regression: rebuilds its mask from the
/// shared spec and trains the reduced model.
#[derive(Clone, Debug)]
pub struct MciClient<'a> {
    /// The workload.
    pub inner: &'a LogReg,
    /// The spec the server uses.
    pub spec: MciSpec,
}

impl<'a> MciClient<'a> {
    /// Wraps `inner` with `spec` (validated).
    pub fn new(inner: &'a LogReg, spec: MciSpec) -> Result<MciClient<'a>> {
        spec.validate()?;
        Ok(MciClient { inner, spec })
    }
}

impl LogRegClientSide for MciClient<'_> {
    fn data(&self) -> &LogReg {
        self.inner
    }

    fn fit_client(&self, ins: &FitIns, global: &Model, seed: u64) -> Result<FitRes> {
        let data = self
            .inner
            .client_data(ins.client, ins.round)
            .ok_or_else(|| Error::Config(format!("no client {}", ins.client)))?;
        let mask = self.spec.mask(global, ins.client, ins.round, seed);
        let mut params = global.clone();
        for (p, m) in params.params_mut().iter_mut().zip(&mask) {
            for (x, &keep) in p.data.iter_mut().zip(m) {
                if !keep {
                    *x = 0.0;
                }
            }
        }
        if data.is_empty() {
            return Ok(FitRes {
                client: ins.client,
                params,
                num_examples: 0,
                loss: f64::NAN,
            });
        }
        let cfg = &ins.config;
        let mut opt = Optimizer::new(&cfg.optimizer, &cfg.hyper, &params)?;
        let mut rng = Rng::stream(seed, Purpose::Train, ins.client as u64, ins.round);
        let mut batch = Vec::new();
        let mut total = 0.0;
        let masked_grads = self.spec.form == TrainForm::MaskedGradients;
        for _ in 0..cfg.local_steps {
            data.batch_into(&mut rng, cfg.batch, &mut batch);
            let (loss, g) = data.loss_grad(&params, &batch)?;
            total += loss;
            let mut grads = GradSet::new();
            for (gp, m) in g.iter().zip(&mask) {
                let mut d = gp.data.clone();
                if masked_grads {
                    for (v, &keep) in d.iter_mut().zip(m) {
                        if !keep {
                            *v = 0.0;
                        }
                    }
                }
                grads.insert(gp.name.clone(), d);
            }
            opt.step(&mut params, &mut grads)?;
        }
        // Paper form: dropped coordinates received zero gradients; with a
        // stateful optimizer (weight decay, momentum on zero) they are still
        // 0. Both forms upload the reduced model.
        for (p, m) in params.params_mut().iter_mut().zip(&mask) {
            for (x, &keep) in p.data.iter_mut().zip(m) {
                if !keep {
                    *x = 0.0;
                }
            }
        }
        Ok(FitRes {
            client: ins.client,
            params,
            num_examples: data.len() as u64,
            loss: total / cfg.local_steps.max(1) as f64,
        })
    }
}
