//! HyperFL: a hypernetwork generates each client's feature extractor; only the
//! hypernetwork is shared.
//!
//! Paper: Pengxin Guo, Shuang Zeng, Wenhao Chen, Xiaodan Zhang, Weihong Ren,
//! Yuyin Zhou & Liangqiong Qu, *A New Federated Learning Framework Against
//! Gradient Inversion Attacks* (AAAI 2025, arXiv 2412.07187). Only the
//! abstract and summaries (Fig. 2's `θ_i = h(v_i; φ_i)`, `ŷ = g(f(x; θ_i); ϕ_i)`)
//! were read from here, not the paper's body, so algorithm and equation
//! numbers are not cited; the method follows the research notes (§10) and the
//! official code (Pengxin-Guo/HyperFL, `cnn/methods/hyperfl.py`,
//! `cnn/models/cnn.py`), read, not copied:
//!
//! - Client `i` keeps a private embedding `v_i ∈ ℝ^e` and a private head
//!   `ϕ_i`; the shared hypernetwork `φ` maps `v_i` to the feature extractor
//!   `θ_i = h(v_i; φ)`: `a = ReLU(A v + a₀)`, then one linear head per
//!   extractor tensor, `W₁ = H_W a + c_W` (reshaped `h × d`), `b₁ = H_b a + c_b`.
//! - Model (steepest's small version on the logistic-regression data):
//!   `logits = W₂ ReLU(W₁ x + b₁) + b₂`, softmax cross-entropy; `(W₂, b₂)` is
//!   the private head.
//! - Round: (1) `head_epochs` epochs on the head only (code: SGD lr 0.1,
//!   momentum 0.5, weight decay 5e-4); (2) `body_epochs` epochs on `(φ, v_i)`
//!   with `∂L/∂φ = (∂θ/∂φ)ᵀ ∂L/∂θ` (the chain rule through the hypernetwork,
//!   written out in [`backward`]), each of the two gradients clipped to norm
//!   `clip` = 50, SGD lr 0.02, momentum 0.5, weight decay 5e-4 (code); (3)
//!   the client uploads `φ_i`; the server sets `φ = Σ_i (n_i/Σn) φ_i` (sum in
//!   client-id order) and broadcasts it to everyone.
//! - Both client steps are registry optimizers (`sgd`), fresh every round
//!   (the code builds new `torch.optim.SGD` objects each round).
//!
//! Choices left open, and what steepest does:
//! - Sizes: `e = 8`, hypernetwork hidden `m = 16`, extractor width `h = 16`
//!   (the code: 64, 128 and a CNN; scaled down for 20-feature data).
//! - Initialisation as PyTorch's defaults: linear layers
//!   `U(±1/√fan_in)` for weights and biases, embeddings `N(0, 1)`; `φ` from
//!   the stream `(seed, Embedding, u64::MAX, 0)`, client `i`'s `v_i` and head
//!   from `(seed, Embedding, i, 0)`.
//! - An "epoch" is `⌈n_train / batch⌉` minibatches drawn with replacement from
//!   the stream `(seed, Train, i, round)` (the code shuffles a DataLoader).
//! - Personalised accuracy: each client's samples are split once (stream
//!   `(seed, Other, 0x4859_5045 << 32 | i, 0)`) into train and a held-out
//!   `test_fraction`; a client is scored on its own held-out samples with its
//!   own model (HyperFL, local-only) or with the global model (FedAvg), and
//!   the report's mean is the unweighted mean over clients.
//! - Baselines in the same runner ([`Method`]): FedAvg on the whole two-layer
//!   model and local-only training, both `head_epochs + body_epochs` epochs of
//!   `baseline_hyper` per round.
//!
//! Privacy note (measured in `tests/hyperfl.rs`): the notes' analytic
//! first-layer inversion `x = ∂L/∂W₁[r,:] / ∂L/∂b₁[r]` recovers a batch-of-one
//! input from a FedAvg upload. HyperFL uploads no `W₁`, but its hypernetwork's
//! output layer is linear in `a`, so `∂L/∂H_W = vec(∂L/∂W₁) aᵀ`: column `k` of
//! the upload's `H_W`/`H_b` change is `a_k` times `(∂L/∂W₁, ∂L/∂b₁)`, and the
//! same ratio recovers `x` ([`invert_output_heads`]). The notes' claim that
//! nothing analogous applies is therefore not reproduced at batch size 1.

use rayon::prelude::*;
use serde::Serialize;
use steepest::hyper::Hyper;
use steepest::{GradSet, Optimizer};

use crate::logreg::{ClientData, LogReg};
use crate::rng::{Purpose, Rng};
use crate::strategy::Model;
use crate::{Error, Result};

/// `(W1, b1, u, a)`: the generated extractor and the hypernetwork's hidden
/// pre-activation and activation.
pub type Generated = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

/// The network's sizes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Net {
    /// Input features d.
    pub d: usize,
    /// Extractor width h.
    pub h: usize,
    /// Classes C.
    pub c: usize,
    /// Embedding dimension e.
    pub e: usize,
    /// Hypernetwork hidden width m.
    pub m: usize,
}

fn uniform_linear(rng: &mut Rng, n: usize, fan_in: usize) -> Vec<f64> {
    let b = 1.0 / (fan_in as f64).sqrt();
    (0..n).map(|_| b * (2.0 * rng.uniform() - 1.0)).collect()
}

impl Net {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        for (v, name) in [
            (self.d, "d"),
            (self.h, "hidden"),
            (self.c, "classes"),
            (self.e, "embed_dim"),
            (self.m, "hyper_hidden"),
        ] {
            if v == 0 {
                return Err(Error::Config(format!("hyperfl: {name} must be ≥ 1")));
            }
        }
        Ok(())
    }

    /// A fresh hypernetwork `φ` (tensors `A`, `a0`, `HW`, `cW`, `Hb`, `cb`).
    pub fn init_hyper(&self, rng: &mut Rng) -> Model {
        let Net { d, h, e, m, .. } = *self;
        let mut p = Model::new();
        p.push("A", &[m, e], uniform_linear(rng, m * e, e)).expect("shape");
        p.push("a0", &[m], uniform_linear(rng, m, e)).expect("shape");
        p.push("HW", &[h * d, m], uniform_linear(rng, h * d * m, m))
            .expect("shape");
        p.push("cW", &[h * d], uniform_linear(rng, h * d, m)).expect("shape");
        p.push("Hb", &[h, m], uniform_linear(rng, h * m, m)).expect("shape");
        p.push("cb", &[h], uniform_linear(rng, h, m)).expect("shape");
        p
    }

    /// A fresh head (`W2`, `b2`).
    pub fn init_head(&self, rng: &mut Rng) -> Model {
        let mut p = Model::new();
        p.push("W2", &[self.c, self.h], uniform_linear(rng, self.c * self.h, self.h))
            .expect("shape");
        p.push("b2", &[self.c], uniform_linear(rng, self.c, self.h))
            .expect("shape");
        p
    }

    /// A fresh feature extractor (`W1`, `b1`) for the baselines.
    pub fn init_body(&self, rng: &mut Rng) -> Model {
        let mut p = Model::new();
        p.push("W1", &[self.h, self.d], uniform_linear(rng, self.h * self.d, self.d))
            .expect("shape");
        p.push("b1", &[self.h], uniform_linear(rng, self.h, self.d))
            .expect("shape");
        p
    }

    /// The generated extractor `(W1, b1)` and the hidden pre-activation `u`
    /// and activation `a` of the hypernetwork.
    pub fn generate(&self, phi: &Model, v: &[f64]) -> Result<Generated> {
        let Net { d, h, e, m, .. } = *self;
        let t = |n: &str| tensor(phi, n);
        let (a_w, a0, hw, cw, hb, cb) = (t("A")?, t("a0")?, t("HW")?, t("cW")?, t("Hb")?, t("cb")?);
        if v.len() != e || a_w.len() != m * e || hw.len() != h * d * m || hb.len() != h * m {
            return Err(Error::Config(
                "hyperfl: hypernetwork shapes do not match the net".into(),
            ));
        }
        let u: Vec<f64> = (0..m).map(|k| a0[k] + dot(&a_w[k * e..(k + 1) * e], v)).collect();
        let a: Vec<f64> = u.iter().map(|&x| x.max(0.0)).collect();
        let w1: Vec<f64> = (0..h * d).map(|r| cw[r] + dot(&hw[r * m..(r + 1) * m], &a)).collect();
        let b1: Vec<f64> = (0..h).map(|r| cb[r] + dot(&hb[r * m..(r + 1) * m], &a)).collect();
        Ok((w1, b1, u, a))
    }

    /// Mean cross-entropy of the two-layer model over `batch` and its
    /// gradients `(gW1, gb1, gW2, gb2)`.
    pub fn loss_grad(
        &self,
        body: (&[f64], &[f64]),
        head: (&[f64], &[f64]),
        data: &ClientData<'_>,
        batch: &[usize],
    ) -> (f64, [Vec<f64>; 4]) {
        let Net { d, h, c, .. } = *self;
        let ((w1, b1), (w2, b2)) = (body, head);
        let (mut gw1, mut gb1, mut gw2, mut gb2) = (vec![0.0; h * d], vec![0.0; h], vec![0.0; c * h], vec![0.0; c]);
        let (mut z, mut f, mut o, mut df) = (vec![0.0; h], vec![0.0; h], vec![0.0; c], vec![0.0; h]);
        let inv = 1.0 / batch.len().max(1) as f64;
        let mut loss = 0.0;
        for &row in batch {
            let (x, y) = data.sample(row);
            for r in 0..h {
                z[r] = b1[r] + dot(&w1[r * d..(r + 1) * d], x);
                f[r] = z[r].max(0.0);
            }
            let mut mx = f64::NEG_INFINITY;
            for k in 0..c {
                o[k] = b2[k] + dot(&w2[k * h..(k + 1) * h], &f);
                mx = mx.max(o[k]);
            }
            let lse = mx + o.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
            loss += lse - o[y];
            df.iter_mut().for_each(|v| *v = 0.0);
            for k in 0..c {
                let g = ((o[k] - lse).exp() - f64::from(u8::from(k == y))) * inv;
                gb2[k] += g;
                for r in 0..h {
                    gw2[k * h + r] += g * f[r];
                    df[r] += g * w2[k * h + r];
                }
            }
            for r in 0..h {
                if z[r] > 0.0 {
                    gb1[r] += df[r];
                    for (gw, &xv) in gw1[r * d..(r + 1) * d].iter_mut().zip(x) {
                        *gw += df[r] * xv;
                    }
                }
            }
        }
        (loss * inv, [gw1, gb1, gw2, gb2])
    }

    /// Accuracy of the two-layer model on `rows`.
    pub fn accuracy(
        &self,
        body: (&[f64], &[f64]),
        head: (&[f64], &[f64]),
        data: &ClientData<'_>,
        rows: &[usize],
    ) -> f64 {
        let Net { d, h, c, .. } = *self;
        let mut f = vec![0.0; h];
        let mut hits = 0usize;
        for &row in rows {
            let (x, y) = data.sample(row);
            for (r, fr) in f.iter_mut().enumerate() {
                *fr = (body.1[r] + dot(&body.0[r * d..(r + 1) * d], x)).max(0.0);
            }
            let o: Vec<f64> = (0..c)
                .map(|k| head.1[k] + dot(&head.0[k * h..(k + 1) * h], &f))
                .collect();
            let arg = (0..c).fold(0, |a, k| if o[k] > o[a] { k } else { a });
            hits += usize::from(arg == y);
        }
        hits as f64 / rows.len().max(1) as f64
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn tensor<'m>(m: &'m Model, name: &str) -> Result<&'m [f64]> {
    m.get(name)
        .map(|p| p.data.as_slice())
        .ok_or_else(|| Error::Config(format!("hyperfl: model has no `{name}`")))
}

/// The chain rule through the hypernetwork: from `∂L/∂W1`, `∂L/∂b1` to
/// `∂L/∂φ` (a model with `φ`'s names) and `∂L/∂v`.
pub fn backward(
    net: &Net,
    phi: &Model,
    v: &[f64],
    u: &[f64],
    a: &[f64],
    gw1: &[f64],
    gb1: &[f64],
) -> Result<(Model, Vec<f64>)> {
    let Net { d, h, e, m, .. } = *net;
    let (a_w, hw, hb) = (tensor(phi, "A")?, tensor(phi, "HW")?, tensor(phi, "Hb")?);
    let mut g_hw = vec![0.0; h * d * m];
    let mut g_hb = vec![0.0; h * m];
    let mut da = vec![0.0; m];
    for r in 0..h * d {
        for k in 0..m {
            g_hw[r * m + k] = gw1[r] * a[k];
            da[k] += hw[r * m + k] * gw1[r];
        }
    }
    for r in 0..h {
        for k in 0..m {
            g_hb[r * m + k] = gb1[r] * a[k];
            da[k] += hb[r * m + k] * gb1[r];
        }
    }
    let du: Vec<f64> = (0..m).map(|k| if u[k] > 0.0 { da[k] } else { 0.0 }).collect();
    let mut g_a = vec![0.0; m * e];
    let mut gv = vec![0.0; e];
    for k in 0..m {
        for j in 0..e {
            g_a[k * e + j] = du[k] * v[j];
            gv[j] += a_w[k * e + j] * du[k];
        }
    }
    let mut g = Model::new();
    g.push("A", &[m, e], g_a)?;
    g.push("a0", &[m], du)?;
    g.push("HW", &[h * d, m], g_hw)?;
    g.push("cW", &[h * d], gw1.to_vec())?;
    g.push("Hb", &[h, m], g_hb)?;
    g.push("cb", &[h], gb1.to_vec())?;
    Ok((g, gv))
}

/// Loss and gradients of HyperFL's client objective over `batch`:
/// `(loss, ∂L/∂φ, ∂L/∂v, ∂L/∂head)`.
pub fn client_loss_grad(
    net: &Net,
    phi: &Model,
    v: &[f64],
    head: &Model,
    data: &ClientData<'_>,
    batch: &[usize],
) -> Result<(f64, Model, Vec<f64>, Model)> {
    let (w1, b1, u, a) = net.generate(phi, v)?;
    let (loss, [gw1, gb1, gw2, gb2]) =
        net.loss_grad((&w1, &b1), (tensor(head, "W2")?, tensor(head, "b2")?), data, batch);
    let (gphi, gv) = backward(net, phi, v, &u, &a, &gw1, &gb1)?;
    let mut gh = Model::new();
    gh.push("W2", &[net.c, net.h], gw2)?;
    gh.push("b2", &[net.c], gb2)?;
    Ok((loss, gphi, gv, gh))
}

/// What the runner trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Method {
    /// HyperFL.
    HyperFl,
    /// FedAvg on the whole two-layer model.
    FedAvg,
    /// Each client alone.
    Local,
}

/// Runner settings (defaults: the code's, sizes scaled down).
#[derive(Clone, Debug, PartialEq)]
pub struct HyperFlConfig {
    /// Rounds.
    pub rounds: u64,
    /// Seed of every stream.
    pub seed: u64,
    /// Extractor width h.
    pub hidden: usize,
    /// Embedding dimension e.
    pub embed_dim: usize,
    /// Hypernetwork hidden width m.
    pub hyper_hidden: usize,
    /// Head-only epochs per round (code: 1).
    pub head_epochs: usize,
    /// Hypernetwork + embedding epochs per round (code: 5).
    pub body_epochs: usize,
    /// Minibatch size (code: 50).
    pub batch: usize,
    /// Head optimizer (`sgd`) hyperparameters.
    pub head_hyper: Hyper,
    /// Hypernetwork/embedding optimizer (`sgd`) hyperparameters.
    pub body_hyper: Hyper,
    /// Baselines' optimizer (`sgd`) hyperparameters.
    pub baseline_hyper: Hyper,
    /// Gradient-norm clip of `∂L/∂φ` and of `∂L/∂v` (code: 50; 0 = none).
    pub clip: f64,
    /// Held-out fraction of each client's samples.
    pub test_fraction: f64,
    /// Threads (None = rayon's global pool).
    pub threads: Option<usize>,
}

impl Default for HyperFlConfig {
    fn default() -> Self {
        let sgd = |lr: f64| steepest::hyper([("lr", lr), ("momentum", 0.5), ("weight_decay", 5e-4)]);
        HyperFlConfig {
            rounds: 50,
            seed: 0,
            hidden: 16,
            embed_dim: 8,
            hyper_hidden: 16,
            head_epochs: 1,
            body_epochs: 5,
            batch: 50,
            head_hyper: sgd(0.1),
            body_hyper: sgd(0.02),
            baseline_hyper: sgd(0.05),
            clip: 50.0,
            test_fraction: 0.2,
            threads: None,
        }
    }
}

impl HyperFlConfig {
    fn validate(&self) -> Result<()> {
        if self.batch == 0 {
            return Err(Error::Config("hyperfl: batch must be ≥ 1".into()));
        }
        if !(self.test_fraction > 0.0 && self.test_fraction < 1.0) {
            return Err(Error::Config(format!(
                "hyperfl: test_fraction must be in (0, 1), got {}",
                self.test_fraction
            )));
        }
        if self.clip.is_nan() || self.clip < 0.0 {
            return Err(Error::Config(format!("hyperfl: clip must be ≥ 0, got {}", self.clip)));
        }
        if self.head_epochs + self.body_epochs == 0 {
            return Err(Error::Config("hyperfl: head_epochs + body_epochs must be ≥ 1".into()));
        }
        let mut probe = Model::new();
        probe.push("p", &[1], vec![0.0])?;
        for (hyper, field) in [
            (&self.head_hyper, "head_hyper"),
            (&self.body_hyper, "body_hyper"),
            (&self.baseline_hyper, "baseline_hyper"),
        ] {
            Optimizer::new("sgd", hyper, &probe).map_err(|e| Error::Config(format!("hyperfl {field}: {e}")))?;
        }
        Ok(())
    }
}

/// A run's record.
#[derive(Clone, Debug, Serialize)]
pub struct HyperFlReport {
    /// The method.
    pub method: Method,
    /// Personalised held-out accuracy per client (NaN for a client without data).
    pub accuracy: Vec<f64>,
    /// Their mean over clients with data.
    pub mean_accuracy: f64,
    /// Mean training loss of the last round.
    pub train_loss: f64,
    /// The final shared model (`φ` for HyperFL, `(W1, b1, W2, b2)` for
    /// FedAvg, empty for local-only).
    #[serde(skip)]
    pub shared: Model,
}

struct Client {
    train: Vec<usize>,
    test: Vec<usize>,
    v: Vec<f64>,
    head: Model,
    body: Model,
}

const SPLIT_TAG: u64 = 0x4859_5045 << 32;

fn clip(g: &mut [f64], max: f64) {
    if max <= 0.0 {
        return;
    }
    let n = g.iter().map(|x| x * x).sum::<f64>().sqrt();
    if n > max {
        // torch's clip_grad_norm_: scale by max / (norm + 1e-6).
        let s = max / (n + 1e-6);
        g.iter_mut().for_each(|x| *x *= s);
    }
}

fn draw(rng: &mut Rng, rows: &[usize], size: usize, out: &mut Vec<usize>) {
    out.clear();
    out.extend((0..size.min(rows.len()).max(1)).map(|_| rows[rng.below(rows.len())]));
}

fn concat(a: &Model, b: &Model) -> Result<Model> {
    let mut m = Model::new();
    for p in a.iter().chain(b.iter()) {
        m.push(p.name.clone(), &p.shape, p.data.clone())?;
    }
    Ok(m)
}

/// Runs HyperFL or a baseline on `w` (all clients every round).
pub fn run(w: &LogReg, method: Method, cfg: &HyperFlConfig) -> Result<HyperFlReport> {
    cfg.validate()?;
    match cfg.threads {
        Some(0) => Err(Error::Config("hyperfl: threads must be ≥ 1".into())),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Config(format!("thread pool: {e}")))?
            .install(|| run_inner(w, method, cfg)),
        None => run_inner(w, method, cfg),
    }
}

fn run_inner(w: &LogReg, method: Method, cfg: &HyperFlConfig) -> Result<HyperFlReport> {
    let net = Net {
        d: w.spec.features,
        h: cfg.hidden,
        c: w.spec.classes,
        e: cfg.embed_dim,
        m: cfg.hyper_hidden,
    };
    net.validate()?;
    let seed = cfg.seed;
    let n = w.spec.clients;
    let mut phi = net.init_hyper(&mut Rng::stream(seed, Purpose::Embedding, u64::MAX, 0));
    let mut init = Rng::stream(seed, Purpose::Init, 0, 0);
    let body0 = net.init_body(&mut init);
    let head0 = net.init_head(&mut init);
    let mut global = concat(&body0, &head0)?;
    let mut clients: Vec<Client> = (0..n)
        .map(|i| {
            let data = w.client_data(i, 0).expect("client exists");
            let mut rows = data.rows().to_vec();
            Rng::stream(seed, Purpose::Other, SPLIT_TAG | i as u64, 0).shuffle(&mut rows);
            let n_test = ((rows.len() as f64 * cfg.test_fraction).round() as usize).min(rows.len().saturating_sub(1));
            let test = rows.split_off(rows.len() - n_test);
            let mut r = Rng::stream(seed, Purpose::Embedding, i as u64, 0);
            let v: Vec<f64> = (0..net.e).map(|_| r.normal()).collect();
            let head = match method {
                Method::HyperFl => net.init_head(&mut r),
                _ => head0.clone(),
            };
            Client {
                train: rows,
                test,
                v,
                head,
                body: body0.clone(),
            }
        })
        .collect();
    let mut train_loss = f64::NAN;
    for round in 1..=cfg.rounds {
        let outs: Vec<Result<(f64, Option<Model>)>> = clients
            .par_iter_mut()
            .enumerate()
            .map(|(i, cl)| {
                if cl.train.is_empty() {
                    return Ok((f64::NAN, None));
                }
                let data = w.client_data(i, 0).expect("client exists");
                let mut rng = Rng::stream(seed, Purpose::Train, i as u64, round);
                let steps = cl.train.len().div_ceil(cfg.batch);
                let mut batch = Vec::new();
                match method {
                    Method::HyperFl => {
                        let mut local_phi = phi.clone();
                        let (w1, b1, _, _) = net.generate(&local_phi, &cl.v)?;
                        let mut opt = Optimizer::new("sgd", &cfg.head_hyper, &cl.head)?;
                        let mut last = 0.0;
                        for _ in 0..cfg.head_epochs * steps {
                            draw(&mut rng, &cl.train, cfg.batch, &mut batch);
                            let head = (tensor(&cl.head, "W2")?, tensor(&cl.head, "b2")?);
                            let (loss, [_, _, gw2, gb2]) = net.loss_grad((&w1, &b1), head, &data, &batch);
                            last = loss;
                            let mut g = GradSet::new();
                            g.insert("W2", gw2);
                            g.insert("b2", gb2);
                            opt.step(&mut cl.head, &mut g)?;
                        }
                        let mut vm = Model::new();
                        vm.push("v", &[net.e], cl.v.clone())?;
                        let mut opt_phi = Optimizer::new("sgd", &cfg.body_hyper, &local_phi)?;
                        let mut opt_v = Optimizer::new("sgd", &cfg.body_hyper, &vm)?;
                        for _ in 0..cfg.body_epochs * steps {
                            draw(&mut rng, &cl.train, cfg.batch, &mut batch);
                            let v = &vm.get("v").expect("v").data;
                            let (loss, gphi, mut gv, _) =
                                client_loss_grad(&net, &local_phi, v, &cl.head, &data, &batch)?;
                            last = loss;
                            let mut flat: Vec<f64> = gphi.iter().flat_map(|p| p.data.iter().copied()).collect();
                            clip(&mut flat, cfg.clip);
                            let mut off = 0;
                            let mut g = GradSet::new();
                            for p in gphi.iter() {
                                g.insert(p.name.clone(), flat[off..off + p.data.len()].to_vec());
                                off += p.data.len();
                            }
                            clip(&mut gv, cfg.clip);
                            opt_phi.step(&mut local_phi, &mut g)?;
                            let mut g = GradSet::new();
                            g.insert("v", gv);
                            opt_v.step(&mut vm, &mut g)?;
                        }
                        cl.v = vm.get("v").expect("v").data.clone();
                        Ok((last, Some(local_phi)))
                    }
                    Method::FedAvg | Method::Local => {
                        let mut model = match method {
                            Method::FedAvg => global.clone(),
                            _ => concat(&cl.body, &cl.head)?,
                        };
                        let mut opt = Optimizer::new("sgd", &cfg.baseline_hyper, &model)?;
                        let mut last = 0.0;
                        for _ in 0..(cfg.head_epochs + cfg.body_epochs) * steps {
                            draw(&mut rng, &cl.train, cfg.batch, &mut batch);
                            let t = |k: &str| tensor(&model, k);
                            let (loss, [gw1, gb1, gw2, gb2]) =
                                net.loss_grad((t("W1")?, t("b1")?), (t("W2")?, t("b2")?), &data, &batch);
                            last = loss;
                            let mut g = GradSet::new();
                            g.insert("W1", gw1);
                            g.insert("b1", gb1);
                            g.insert("W2", gw2);
                            g.insert("b2", gb2);
                            opt.step(&mut model, &mut g)?;
                        }
                        if method == Method::Local {
                            let t = |k: &str| model.get(k).expect("tensor").data.clone();
                            cl.body = Model::new();
                            cl.body.push("W1", &[net.h, net.d], t("W1"))?;
                            cl.body.push("b1", &[net.h], t("b1"))?;
                            cl.head = Model::new();
                            cl.head.push("W2", &[net.c, net.h], t("W2"))?;
                            cl.head.push("b2", &[net.c], t("b2"))?;
                            Ok((last, None))
                        } else {
                            Ok((last, Some(model)))
                        }
                    }
                }
            })
            .collect();
        // Aggregate in client-id order, weights n_i / Σ n.
        let mut sum: Option<Vec<Vec<f64>>> = None;
        let (mut total, mut loss_sum, mut k) = (0.0, 0.0, 0usize);
        for (i, o) in outs.into_iter().enumerate() {
            let (loss, up) = o?;
            if loss.is_finite() {
                loss_sum += loss;
                k += 1;
            }
            if let Some(m) = up {
                let ni = clients[i].train.len() as f64;
                total += ni;
                let acc = sum.get_or_insert_with(|| m.iter().map(|p| vec![0.0; p.data.len()]).collect());
                for (a, p) in acc.iter_mut().zip(m.iter()) {
                    for (s, &x) in a.iter_mut().zip(&p.data) {
                        *s += ni * x;
                    }
                }
            }
        }
        train_loss = loss_sum / k.max(1) as f64;
        if let Some(acc) = sum {
            let target = if method == Method::HyperFl {
                &mut phi
            } else {
                &mut global
            };
            for (p, a) in target.params_mut().iter_mut().zip(acc) {
                for (x, s) in p.data.iter_mut().zip(a) {
                    *x = s / total;
                }
            }
        }
    }
    let accuracy: Vec<f64> = clients
        .iter()
        .enumerate()
        .map(|(i, cl)| -> Result<f64> {
            if cl.test.is_empty() {
                return Ok(f64::NAN);
            }
            let data = w.client_data(i, 0).expect("client exists");
            Ok(match method {
                Method::HyperFl => {
                    let (w1, b1, _, _) = net.generate(&phi, &cl.v)?;
                    net.accuracy(
                        (&w1, &b1),
                        (tensor(&cl.head, "W2")?, tensor(&cl.head, "b2")?),
                        &data,
                        &cl.test,
                    )
                }
                Method::FedAvg => {
                    let t = |k: &str| tensor(&global, k);
                    net.accuracy((t("W1")?, t("b1")?), (t("W2")?, t("b2")?), &data, &cl.test)
                }
                Method::Local => {
                    let (b, h) = (&cl.body, &cl.head);
                    net.accuracy(
                        (tensor(b, "W1")?, tensor(b, "b1")?),
                        (tensor(h, "W2")?, tensor(h, "b2")?),
                        &data,
                        &cl.test,
                    )
                }
            })
        })
        .collect::<Result<_>>()?;
    let scored: Vec<f64> = accuracy.iter().copied().filter(|a| a.is_finite()).collect();
    Ok(HyperFlReport {
        method,
        mean_accuracy: scored.iter().sum::<f64>() / scored.len().max(1) as f64,
        accuracy,
        train_loss,
        shared: match method {
            Method::HyperFl => phi,
            Method::FedAvg => global,
            Method::Local => Model::new(),
        },
    })
}

/// The analytic first-layer inversion: `x̂ = ∂L/∂W1[r,:] / ∂L/∂b1[r]` at the
/// row `r` with the largest `|∂L/∂b1[r]|` (any multiple of the gradient, such
/// as an SGD update, works). `None` when every `∂L/∂b1[r]` is 0.
pub fn invert_first_layer(gw1: &[f64], gb1: &[f64], d: usize) -> Option<Vec<f64>> {
    let r = (0..gb1.len()).max_by(|&a, &b| gb1[a].abs().total_cmp(&gb1[b].abs()))?;
    if gb1[r] == 0.0 || gw1.len() < (r + 1) * d {
        return None;
    }
    Some(gw1[r * d..(r + 1) * d].iter().map(|g| g / gb1[r]).collect())
}

/// The same inversion on a HyperFL upload's output heads: with
/// `Δ = φ_before − φ_after` of one SGD step, column `k` of `ΔHW` / `ΔHb` is
/// `a_k (∂L/∂W1, ∂L/∂b1)`; the column with the largest `|ΔHb|` entry is used.
pub fn invert_output_heads(net: &Net, d_hw: &[f64], d_hb: &[f64]) -> Option<Vec<f64>> {
    let (h, d, m) = (net.h, net.d, net.m);
    let (r, k) = (0..h * m)
        .map(|i| (i / m, i % m))
        .max_by(|a, b| d_hb[a.0 * m + a.1].abs().total_cmp(&d_hb[b.0 * m + b.1].abs()))?;
    let den = d_hb[r * m + k];
    if den == 0.0 {
        return None;
    }
    Some((0..d).map(|j| d_hw[(r * d + j) * m + k] / den).collect())
}
