//! The multinomial logistic-regression workload.
//!
//! Data: a seeded Gaussian mixture — `C` class means `μ_c ~ N(0, s² I_d)`,
//! samples `x = μ_y + N(0, I_d)` with `y` uniform — split among clients by a
//! [`Partition`]; a held-out test set of the same law. (Synthetic so that
//! 1,000 clients have enough data and no file is needed; the lab's bundled
//! sets are too small for 1,000 clients.)
//!
//! Model: `w` (`C × d`) and `b` (`C`), softmax cross-entropy. A client runs
//! `local_steps` minibatch steps of its registry optimizer (fresh state every
//! round, as in FedAvg), minibatches drawn with replacement from the stream
//! `(seed, Train, client, round)`; FedProx's `μ (w − w_t)` is added to the
//! gradient.

use std::borrow::Cow;

use steepest::{GradSet, Optimizer};

use crate::partition::{ClusterShift, Partition};
use crate::rng::{Purpose, Rng};
use crate::strategy::{Evaluation, FitIns, FitRes, Model};
use crate::{Error, Result};

/// Workload size and law.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRegSpec {
    /// Clients.
    pub clients: usize,
    /// Training samples per client on average.
    pub samples_per_client: usize,
    /// Features d.
    pub features: usize,
    /// Classes C.
    pub classes: usize,
    /// Class-mean scale s.
    pub separation: f64,
    /// Test samples.
    pub test: usize,
    /// Partition.
    pub partition: Partition,
    /// Distribution shift over time (None = static data).
    pub shift: Option<ClusterShift>,
}

impl Default for LogRegSpec {
    fn default() -> Self {
        LogRegSpec {
            clients: 1000,
            samples_per_client: 50,
            features: 20,
            classes: 10,
            separation: 0.6,
            test: 5000,
            partition: Partition::Iid,
            shift: None,
        }
    }
}

/// The workload: data, partition, model shapes.
#[derive(Clone, Debug)]
pub struct LogReg {
    /// The spec.
    pub spec: LogRegSpec,
    x: Vec<f64>,
    y: Vec<usize>,
    test_x: Vec<f64>,
    test_y: Vec<usize>,
    /// Sample indices per client.
    pub parts: Vec<Vec<usize>>,
    seed: u64,
}

fn draw(rng: &mut Rng, means: &[f64], n: usize, d: usize, c: usize) -> (Vec<f64>, Vec<usize>) {
    let mut x = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let k = rng.below(c);
        y.push(k);
        for j in 0..d {
            x.push(means[k * d + j] + rng.normal());
        }
    }
    (x, y)
}

impl LogReg {
    /// Generates the data and the partition for `seed`.
    pub fn new(spec: LogRegSpec, seed: u64) -> Result<LogReg> {
        if spec.clients == 0 || spec.features == 0 || spec.classes < 2 || spec.samples_per_client == 0 {
            return Err(Error::Config(format!(
                "logreg needs clients, features, samples ≥ 1 and ≥ 2 classes: {spec:?}"
            )));
        }
        let (d, c) = (spec.features, spec.classes);
        let mut rng = Rng::stream(seed, Purpose::Data, 0, 0);
        let means: Vec<f64> = (0..c * d).map(|_| spec.separation * rng.normal()).collect();
        let (x, y) = draw(&mut rng, &means, spec.clients * spec.samples_per_client, d, c);
        let mut trng = Rng::stream(seed, Purpose::Data, 1, 0);
        let (test_x, test_y) = draw(&mut trng, &means, spec.test, d, c);
        let parts = spec.partition.split(&y, c, spec.clients, seed)?;
        if let Some(sh) = &spec.shift {
            sh.validate()?;
        }
        Ok(LogReg {
            seed,
            spec,
            x,
            y,
            test_x,
            test_y,
            parts,
        })
    }

    /// The label of training sample `i`.
    pub fn label(&self, i: usize) -> usize {
        self.y[i]
    }

    /// The zero model.
    pub fn init(&self) -> Model {
        let (d, c) = (self.spec.features, self.spec.classes);
        let mut m = Model::new();
        m.push("w", &[c, d], vec![0.0; c * d]).expect("valid shape");
        m.push("b", &[c], vec![0.0; c]).expect("valid shape");
        m
    }

    /// Mean loss and gradient over `rows` (gradient written into `gw`, `gb`).
    #[allow(clippy::too_many_arguments)]
    fn loss_grad(
        &self,
        (x, y): (&[f64], &[usize]),
        w: &[f64],
        b: &[f64],
        rows: &[usize],
        gw: &mut [f64],
        gb: &mut [f64],
        z: &mut [f64],
    ) -> f64 {
        let (d, c) = (self.spec.features, self.spec.classes);
        gw.iter_mut().for_each(|v| *v = 0.0);
        gb.iter_mut().for_each(|v| *v = 0.0);
        let inv = 1.0 / rows.len() as f64;
        let mut loss = 0.0;
        for &i in rows {
            let xi = &x[i * d..(i + 1) * d];
            let yi = y[i];
            let lse = logits(w, b, xi, z, d, c);
            loss += lse - z[yi];
            for k in 0..c {
                let p = (z[k] - lse).exp() - if k == yi { 1.0 } else { 0.0 };
                let s = p * inv;
                gb[k] += s;
                for (g, &xv) in gw[k * d..(k + 1) * d].iter_mut().zip(xi) {
                    *g += s * xv;
                }
            }
        }
        loss * inv
    }

    /// One client's data in `round` (under a shift, its samples seen through
    /// its current cluster's rotation): the view custom local loops use
    /// (FedSpeed, FedHyper, ...). `None` for an unknown client.
    pub fn client_data(&self, client: usize, round: u64) -> Option<ClientData<'_>> {
        let rows = self.parts.get(client)?;
        let d = self.spec.features;
        Some(match &self.spec.shift {
            Some(sh) => {
                let k = sh.cluster(client, round, self.seed);
                let perm = sh.permutation(k, d, self.seed);
                let mut lx = Vec::with_capacity(rows.len() * d);
                for &i in rows {
                    lx.extend(perm.iter().map(|&j| self.x[i * d + j]));
                }
                let ly: Vec<usize> = rows.iter().map(|&i| self.y[i]).collect();
                ClientData {
                    w: self,
                    x: Cow::Owned(lx),
                    y: Cow::Owned(ly),
                    rows: Cow::Owned((0..rows.len()).collect()),
                }
            }
            None => ClientData {
                w: self,
                x: Cow::Borrowed(&self.x),
                y: Cow::Borrowed(&self.y),
                rows: Cow::Borrowed(rows),
            },
        })
    }

    /// One client's data with each of its samples seen through a cluster's
    /// feature permutation ([`ClusterShift::permutation`]): `clusters[i]` is
    /// the cluster of the client's `i`-th sample (the mixtures of
    /// [`crate::partition::ClusterMixture`], used by client-driven FL).
    pub fn client_data_rotated(&self, client: usize, clusters: &[usize]) -> Result<ClientData<'_>> {
        let rows = self
            .parts
            .get(client)
            .ok_or_else(|| Error::Config(format!("no client {client}")))?;
        if clusters.len() != rows.len() {
            return Err(Error::Config(format!(
                "client {client} has {} samples but {} cluster labels",
                rows.len(),
                clusters.len()
            )));
        }
        let d = self.spec.features;
        let k = clusters.iter().copied().max().map_or(1, |m| m + 1);
        let sh = ClusterShift {
            clusters: k,
            switch_prob: 0.0,
        };
        let perms: Vec<Vec<usize>> = (0..k).map(|c| sh.permutation(c, d, self.seed)).collect();
        let mut lx = Vec::with_capacity(rows.len() * d);
        for (&i, &c) in rows.iter().zip(clusters) {
            lx.extend(perms[c].iter().map(|&j| self.x[i * d + j]));
        }
        Ok(ClientData {
            w: self,
            x: Cow::Owned(lx),
            y: Cow::Owned(rows.iter().map(|&i| self.y[i]).collect()),
            rows: Cow::Owned((0..rows.len()).collect()),
        })
    }

    /// Test loss and accuracy with the test set seen through cluster `k`'s
    /// feature permutation ([`ClusterShift::permutation`]; `k = 0`: as is).
    pub fn evaluate_rotated(&self, model: &Model, k: usize) -> Evaluation {
        let d = self.spec.features;
        let sh = ClusterShift {
            clusters: k + 1,
            switch_prob: 0.0,
        };
        let perm = sh.permutation(k, d, self.seed);
        let tx: Vec<f64> = self
            .test_x
            .chunks(d)
            .flat_map(|row| perm.iter().map(|&j| row[j]).collect::<Vec<_>>())
            .collect();
        self.evaluate_on(model, &tx)
    }

    /// One client's local training.
    pub fn fit(&self, ins: &FitIns, global: &Model, seed: u64) -> Result<FitRes> {
        let data = self
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
        let cfg = &ins.config;
        let mut opt = Optimizer::new(&cfg.optimizer, &cfg.hyper, &params)?;
        let (d, c) = (self.spec.features, self.spec.classes);
        let mut grads = GradSet::new();
        grads.insert("w", vec![0.0; c * d]);
        grads.insert("b", vec![0.0; c]);
        let mut rng = Rng::stream(seed, Purpose::Train, ins.client as u64, ins.round);
        let mut batch = Vec::new();
        let mut z = vec![0.0; c];
        let mut total = 0.0;
        let w0 = global.get("w").expect("model has w").data.clone();
        let b0 = global.get("b").expect("model has b").data.clone();
        for _ in 0..cfg.local_steps {
            data.batch_into(&mut rng, cfg.batch, &mut batch);
            let mut gw = grads.remove("w").expect("inserted");
            let mut gb = grads.remove("b").expect("inserted");
            let w = &params.get("w").expect("w").data;
            let b = &params.get("b").expect("b").data;
            total += self.loss_grad((&data.x, &data.y), w, b, &batch, &mut gw, &mut gb, &mut z);
            if cfg.prox_mu > 0.0 {
                for (g, (x, x0)) in gw.iter_mut().zip(w.iter().zip(&w0)) {
                    *g += cfg.prox_mu * (x - x0);
                }
                for (g, (x, x0)) in gb.iter_mut().zip(b.iter().zip(&b0)) {
                    *g += cfg.prox_mu * (x - x0);
                }
            }
            grads.insert("w", gw);
            grads.insert("b", gb);
            opt.step(&mut params, &mut grads)?;
        }
        Ok(FitRes {
            client: ins.client,
            params,
            num_examples: data.len() as u64,
            loss: total / cfg.local_steps.max(1) as f64,
        })
    }

    /// Test loss and accuracy (under a shift: the mean over clusters, the
    /// test set seen through each cluster's rotation).
    pub fn evaluate(&self, model: &Model) -> Evaluation {
        let d = self.spec.features;
        let Some(sh) = &self.spec.shift else {
            return self.evaluate_on(model, &self.test_x);
        };
        let k = sh.clusters;
        let (mut loss, mut acc) = (0.0, 0.0);
        for c in 0..k {
            let perm = sh.permutation(c, d, self.seed);
            let tx: Vec<f64> = self
                .test_x
                .chunks(d)
                .flat_map(|row| perm.iter().map(|&j| row[j]).collect::<Vec<_>>())
                .collect();
            let e = self.evaluate_on(model, &tx);
            loss += e.loss / k as f64;
            acc += e.accuracy / k as f64;
        }
        Evaluation { loss, accuracy: acc }
    }

    fn evaluate_on(&self, model: &Model, test_x: &[f64]) -> Evaluation {
        let (d, c) = (self.spec.features, self.spec.classes);
        let w = &model.get("w").expect("w").data;
        let b = &model.get("b").expect("b").data;
        let mut z = vec![0.0; c];
        let (mut loss, mut hits) = (0.0, 0usize);
        for (i, &yi) in self.test_y.iter().enumerate() {
            let lse = logits(w, b, &test_x[i * d..(i + 1) * d], &mut z, d, c);
            loss += lse - z[yi];
            let arg = (0..c).fold(0, |a, k| if z[k] > z[a] { k } else { a });
            hits += usize::from(arg == yi);
        }
        let n = self.test_y.len().max(1) as f64;
        Evaluation {
            loss: loss / n,
            accuracy: hits as f64 / n,
        }
    }
}

/// Writes the logits into `z` and returns their log-sum-exp.
fn logits(w: &[f64], b: &[f64], x: &[f64], z: &mut [f64], d: usize, c: usize) -> f64 {
    let mut mx = f64::NEG_INFINITY;
    for k in 0..c {
        let row = &w[k * d..(k + 1) * d];
        let v = b[k] + row.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
        z[k] = v;
        mx = mx.max(v);
    }
    mx + z.iter().map(|v| (v - mx).exp()).sum::<f64>().ln()
}

/// One client's local data, as [`LogReg::client_data`] returns it: the
/// building block of custom local loops (FedSpeed's perturbed gradients,
/// FedHyper's adaptive local rate, ...). Batches are indices into the
/// client's own rows (`0..len()` positions are resolved internally).
#[derive(Clone, Debug)]
pub struct ClientData<'a> {
    w: &'a LogReg,
    x: Cow<'a, [f64]>,
    y: Cow<'a, [usize]>,
    rows: Cow<'a, [usize]>,
}

impl ClientData<'_> {
    /// Local samples.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the client has no data.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The client's sample rows (what [`ClientData::batch_into`] draws from).
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// Features and label of sample row `row` (a row from [`ClientData::rows`]
    /// or a batch), for models other than logistic regression (HyperFL).
    pub fn sample(&self, row: usize) -> (&[f64], usize) {
        let d = self.w.spec.features;
        (&self.x[row * d..(row + 1) * d], self.y[row])
    }

    /// Fills `batch` with a minibatch of `size` sample rows drawn with
    /// replacement from `rng` (`size == 0`: every local row, in order), as
    /// [`LogReg::fit`] draws them.
    pub fn batch_into(&self, rng: &mut Rng, size: usize, batch: &mut Vec<usize>) {
        batch.clear();
        if size == 0 {
            batch.extend_from_slice(&self.rows);
        } else {
            batch.extend((0..size).map(|_| self.rows[rng.below(self.rows.len())]));
        }
    }

    /// Mean cross-entropy and its gradient (a model of the same names and
    /// shapes) at `model` over `batch` (rows from [`ClientData::batch_into`]).
    pub fn loss_grad(&self, model: &Model, batch: &[usize]) -> Result<(f64, Model)> {
        let (d, c) = (self.w.spec.features, self.w.spec.classes);
        let w = model.get("w").ok_or_else(|| Error::Config("model has no `w`".into()))?;
        let b = model.get("b").ok_or_else(|| Error::Config("model has no `b`".into()))?;
        if w.data.len() != c * d || b.data.len() != c {
            return Err(Error::Config(format!(
                "model shapes {:?} {:?}, expected [{c}, {d}] [{c}]",
                w.shape, b.shape
            )));
        }
        if batch.is_empty() {
            return Err(Error::Config("empty batch".into()));
        }
        let (mut gw, mut gb, mut z) = (vec![0.0; c * d], vec![0.0; c], vec![0.0; c]);
        let loss = self
            .w
            .loss_grad((&self.x, &self.y), &w.data, &b.data, batch, &mut gw, &mut gb, &mut z);
        let mut g = Model::new();
        g.push("w", &[c, d], gw)?;
        g.push("b", &[c], gb)?;
        Ok((loss, g))
    }
}
