//! FedPCA: federated PCA by ADMM-like consensus, FedPE (Euclidean, penalised
//! orthogonality) and FedPG (Grassmann manifold, Riemannian gradient + QR
//! retraction), with PCA anomaly scores, on its own seeded problem.
//!
//! Paper: Nguyen, Le, Nguyen, Bao, Seneviratne, Hong & Tran, *Federated PCA on
//! Grassmann Manifold for IoT Anomaly Detection* (arXiv 2407.07421). **Only
//! the abstract was reachable from this session** (the stored copy stops
//! there), so the updates follow the research notes (§12), which were checked
//! in the official code (dual-grp/FedPCA_AnomalyDetection; the authors'
//! longtanle/FedPCA_ToN `FLAlgorithms/users/userADMM2.py`, read here), with
//! the code's quirks replaced by the textbook forms listed below.
//!
//! Client i holds `X_i` (n_i points in R^d) and `C_i = X_iᵀX_i / n_i`. Its
//! augmented local objective is
//! `L_i(U) = f_i(U) + (1/n_i)[⟨Y_i, U − Z⟩ + (ρ/2)‖U − Z‖²_F]`
//! with `f_i(U) = (1/n_i)‖(I − UUᵀ)X_iᵀ‖²_F`, whose gradient is
//! `∇f_i = −4 C_i U + 2 C_i U (UᵀU) + 2 U (Uᵀ C_i U)`; FedPE adds
//! `(1/n_i)[⟨T_i, h(U)⟩ + (ρ/2)‖h(U)‖²_F]`, `h(U) = max(0, UᵀU − I)²`
//! (elementwise). Each round:
//! 1. the sampled clients receive `Z` and update their multipliers
//!    `Y_i ← Y_i + ρ(U_i − Z)`, `T_i ← T_i + ρ h(U_i)` (FedPE);
//! 2. they run `E` local steps from their own `U_i` (kept between rounds, as
//!    in ADMM): FedPE `U ← U − η ∇L_i(U)`; FedPG
//!    `U ← qr(U − η (I − UUᵀ) ∇L_i(U)).Q` (thin Householder QR, `diag R ≥ 0`);
//! 3. the server sets `Z = Σ_{i∈S} (n_i / n_S) U_i` (or, with
//!    [`ServerUpdate::Admm`], `Σ (n_i/n_S)(U_i + Y_i/ρ)`), not re-orthonormalised.
//!
//! Anomaly score of `x`: `‖x − QQᵀx‖²` with `Q` the orthonormal factor of
//! `Z`; threshold = the `quantile` of the scores of held-out normal points.
//!
//! Defaults (code): 20 clients, fraction 0.1, E = 30, η = 1e-4, ρ = 0.01,
//! r = 2. Choices and deviations from the official code:
//! - `⟨·,·⟩` is the Frobenius product (the code's `sum(torch.inner(Y, D))`
//!   sums all row pairs);
//! - `Z₀` is orthonormal (QR of a Gaussian from `Rng::stream(seed, Init, 0, 0)`;
//!   the code draws U[0,1) entries), `U_i = Z₀`, `Y_i = 0`, `T_i = 0` (the
//!   code starts `T_i = UᵀU`);
//! - the sampled clients receive the *current* `Z` before training (the code
//!   sends it to the previous round's participants);
//! - the server's default is the plain weighted mean (the code's form; the
//!   ADMM form `U_i + Y_i/ρ` is [`ServerUpdate::Admm`]);
//! - no MinMax scaling: the simulator's data are on a common scale already;
//!   scores use the orthonormal factor of `Z` (Z itself is a mean of
//!   orthonormal frames and is only nearly orthonormal);
//! - sampling: `max(1, round(fraction·N))` clients uniformly without
//!   replacement from `Rng::stream(seed, Sampling, 0, round)`; sums over
//!   clients in increasing id.
//!
//! Problem (notes (d)): points `x = V s + σ ε` with `V` a random orthonormal
//! d×k basis, `s_j ~ N(0, scale_j²)`, `scale_j = 1 + 2(k−1−j)/k`, `ε ~ N(0, I)`;
//! anomalies add `a·|g|·w`, `g ~ N(0,1)`, `w` a unit vector in the orthogonal
//! complement of `V`. Non-IID split: the training points sorted by their first
//! coordinate and cut into contiguous blocks (the notes' default).

use super::dense::{matmul, matmul_tn, qr_thin, sym_eigen, transpose};
use crate::rng::{Purpose, Rng};
use crate::{Error, Result};

/// How the synthetic anomaly-detection problem is built.
#[derive(Clone, Debug)]
pub struct PcaProblemConfig {
    /// Number of clients.
    pub clients: usize,
    /// Ambient dimension d.
    pub dim: usize,
    /// Rank k of the normal data's subspace.
    pub rank: usize,
    /// Training points per client.
    pub points_per_client: usize,
    /// Isotropic noise σ.
    pub noise: f64,
    /// Scale `a` of the anomalies' off-subspace component.
    pub anomaly_scale: f64,
    /// Held-out normal points (for thresholds).
    pub validation: usize,
    /// Test points.
    pub test: usize,
    /// Fraction of the test points that are anomalies.
    pub anomaly_fraction: f64,
    /// Sort by the first coordinate before splitting (non-IID).
    pub non_iid: bool,
}

impl Default for PcaProblemConfig {
    fn default() -> Self {
        PcaProblemConfig {
            clients: 20,
            dim: 40,
            rank: 5,
            points_per_client: 200,
            noise: 0.1,
            anomaly_scale: 1.5,
            validation: 2000,
            test: 4000,
            anomaly_fraction: 0.1,
            non_iid: true,
        }
    }
}

/// The problem: per-client training data, validation and test sets.
#[derive(Clone, Debug)]
pub struct PcaProblem {
    /// Ambient dimension.
    pub dim: usize,
    /// The true normal subspace, d×k row-major, orthonormal columns.
    pub basis: Vec<f64>,
    /// Per-client points, n_i × d row-major.
    pub clients: Vec<Vec<f64>>,
    /// Per-client second moments `C_i = X_iᵀX_i / n_i` (d×d).
    pub second_moments: Vec<Vec<f64>>,
    /// Held-out normal points (n × d).
    pub validation: Vec<f64>,
    /// Test points (n × d).
    pub test: Vec<f64>,
    /// Test labels (true = anomaly).
    pub labels: Vec<bool>,
}

impl PcaProblem {
    /// The seeded synthetic problem.
    pub fn synthetic(cfg: &PcaProblemConfig, seed: u64) -> Result<Self> {
        let bad = |f: &str, why: &str| Err(Error::Config(format!("fedpca problem: `{f}` {why}")));
        if cfg.clients == 0 {
            return bad("clients", "must be at least 1");
        }
        if cfg.rank == 0 || cfg.rank >= cfg.dim {
            return bad("rank", "must satisfy 1 <= rank < dim");
        }
        if cfg.points_per_client == 0 {
            return bad("points_per_client", "must be at least 1");
        }
        if !(cfg.noise >= 0.0 && cfg.noise.is_finite()) {
            return bad("noise", "must be >= 0");
        }
        if !(cfg.anomaly_scale >= 0.0 && cfg.anomaly_scale.is_finite()) {
            return bad("anomaly_scale", "must be >= 0");
        }
        if !(0.0..=1.0).contains(&cfg.anomaly_fraction) {
            return bad("anomaly_fraction", "must be in [0, 1]");
        }
        if cfg.validation < 2 || cfg.test == 0 {
            return bad("validation", "needs >= 2 points and `test` >= 1");
        }
        let (d, k) = (cfg.dim, cfg.rank);
        let mut g = Rng::stream(seed, Purpose::Problem, 0, 0);
        let raw: Vec<f64> = (0..d * k).map(|_| g.normal()).collect();
        let (basis, _) = qr_thin(&raw, d, k);
        let scales: Vec<f64> = (0..k).map(|j| 1.0 + 2.0 * (k - 1 - j) as f64 / k as f64).collect();
        let normal_point = |r: &mut Rng| -> Vec<f64> {
            let s: Vec<f64> = scales.iter().map(|sc| sc * r.normal()).collect();
            (0..d)
                .map(|i| (0..k).map(|j| basis[i * k + j] * s[j]).sum::<f64>() + cfg.noise * r.normal())
                .collect()
        };
        let mut r = Rng::stream(seed, Purpose::Problem, 1, 0);
        let total = cfg.clients * cfg.points_per_client;
        let mut train: Vec<Vec<f64>> = (0..total).map(|_| normal_point(&mut r)).collect();
        if cfg.non_iid {
            train.sort_by(|a, b| a[0].total_cmp(&b[0]));
        }
        let clients: Vec<Vec<f64>> = train
            .chunks(cfg.points_per_client)
            .map(|ch| ch.iter().flatten().copied().collect())
            .collect();
        let second_moments = clients
            .iter()
            .map(|x| {
                let n = x.len() / d;
                matmul_tn(x, x, n, d, d).into_iter().map(|v| v / n as f64).collect()
            })
            .collect();
        let mut rv = Rng::stream(seed, Purpose::Problem, 2, 0);
        let validation: Vec<f64> = (0..cfg.validation).flat_map(|_| normal_point(&mut rv)).collect();
        let mut rt = Rng::stream(seed, Purpose::Problem, 3, 0);
        let mut test = Vec::with_capacity(cfg.test * d);
        let mut labels = Vec::with_capacity(cfg.test);
        for _ in 0..cfg.test {
            let mut x = normal_point(&mut rt);
            let anomalous = rt.bernoulli(cfg.anomaly_fraction);
            if anomalous {
                // A unit vector in the complement of V.
                let w: Vec<f64> = (0..d).map(|_| rt.normal()).collect();
                let vw = matmul_tn(&basis, &w, d, k, 1);
                let proj = matmul(&basis, &vw, d, k, 1);
                let mut w: Vec<f64> = w.iter().zip(&proj).map(|(a, b)| a - b).collect();
                let nw = w.iter().map(|v| v * v).sum::<f64>().sqrt();
                let amp = cfg.anomaly_scale * rt.normal().abs() / nw;
                for v in &mut w {
                    *v *= amp;
                }
                for (xi, wi) in x.iter_mut().zip(&w) {
                    *xi += wi;
                }
            }
            test.extend(x);
            labels.push(anomalous);
        }
        Ok(PcaProblem {
            dim: d,
            basis,
            clients,
            second_moments,
            validation,
            test,
            labels,
        })
    }

    /// Number of training points of client i.
    pub fn points(&self, i: usize) -> usize {
        self.clients[i].len() / self.dim
    }
}

/// FedPE or FedPG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Euclidean gradient steps with the orthogonality penalty `h`.
    FedPe,
    /// Riemannian gradient steps with QR retraction.
    FedPg,
}

/// The server's consensus update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerUpdate {
    /// `Z = Σ (n_i/n_S) U_i` (notes / official code).
    Mean,
    /// `Z = Σ (n_i/n_S) (U_i + Y_i/ρ)` (classical consensus ADMM).
    Admm,
}

/// FedPCA settings.
#[derive(Clone, Debug)]
pub struct FedPcaConfig {
    /// FedPE or FedPG.
    pub variant: Variant,
    /// Number of components r.
    pub components: usize,
    /// Rounds.
    pub rounds: usize,
    /// Fraction of clients per round.
    pub fraction: f64,
    /// Local steps E.
    pub local_steps: usize,
    /// Step size η.
    pub eta: f64,
    /// ADMM penalty ρ.
    pub rho: f64,
    /// Server update.
    pub server: ServerUpdate,
    /// Seed.
    pub seed: u64,
}

impl Default for FedPcaConfig {
    fn default() -> Self {
        FedPcaConfig {
            variant: Variant::FedPg,
            components: 2,
            rounds: 100,
            fraction: 0.1,
            local_steps: 30,
            eta: 1e-4,
            rho: 0.01,
            server: ServerUpdate::Mean,
            seed: 0,
        }
    }
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct FedPcaRun {
    /// The server's `Z` (d×r row-major).
    pub z: Vec<f64>,
    /// Each client's last `U_i` (d×r).
    pub locals: Vec<Vec<f64>>,
    /// Floats uploaded per participating client per round (d·r).
    pub upload_floats: usize,
}

fn h_of(u: &[f64], d: usize, r: usize) -> (Vec<f64>, Vec<f64>) {
    // W = UᵀU − I; returns (max(0, W), h = max(0, W)²).
    let mut w = matmul_tn(u, u, d, r, r);
    for i in 0..r {
        w[i * r + i] -= 1.0;
    }
    let pos: Vec<f64> = w.iter().map(|v| v.max(0.0)).collect();
    let h = pos.iter().map(|v| v * v).collect();
    (pos, h)
}

/// `∇f_i(U) = −4CU + 2CU(UᵀU) + 2U(UᵀCU)`.
pub fn pca_grad(c: &[f64], u: &[f64], d: usize, r: usize) -> Vec<f64> {
    let cu = matmul(c, u, d, d, r);
    let utu = matmul_tn(u, u, d, r, r);
    let utcu = matmul_tn(u, &cu, d, r, r);
    let a = matmul(&cu, &utu, d, r, r);
    let b = matmul(u, &utcu, d, r, r);
    (0..d * r).map(|k| -4.0 * cu[k] + 2.0 * a[k] + 2.0 * b[k]).collect()
}

/// FedPE's penalty `P(U) = ⟨T, h(U)⟩ + (ρ/2)‖h(U)‖²_F`, `h(U) = max(0, UᵀU − I)²`.
pub fn penalty(u: &[f64], t: &[f64], rho: f64, d: usize, r: usize) -> f64 {
    let (_, h) = h_of(u, d, r);
    h.iter().zip(t).map(|(hk, tk)| tk * hk + 0.5 * rho * hk * hk).sum()
}

/// `∇P(U) = U (G + Gᵀ)` with `G = (T + ρh) ⊙ 2 max(0, UᵀU − I)`.
pub fn penalty_grad(u: &[f64], t: &[f64], rho: f64, d: usize, r: usize) -> Vec<f64> {
    let (pos, h) = h_of(u, d, r);
    let gw: Vec<f64> = (0..r * r).map(|k| (t[k] + rho * h[k]) * 2.0 * pos[k]).collect();
    let sym: Vec<f64> = (0..r * r).map(|k| gw[k] + gw[(k % r) * r + k / r]).collect();
    matmul(u, &sym, d, r, r)
}

/// Runs FedPE or FedPG.
pub fn run(problem: &PcaProblem, cfg: &FedPcaConfig) -> Result<FedPcaRun> {
    let (d, r) = (problem.dim, cfg.components);
    let n = problem.clients.len();
    let bad = |f: &str, why: &str| Err(Error::Config(format!("fedpca: `{f}` {why}")));
    if r == 0 || r >= d {
        return bad("components", "must satisfy 1 <= r < dim");
    }
    if !(cfg.fraction > 0.0 && cfg.fraction <= 1.0) {
        return bad("fraction", "must be in (0, 1]");
    }
    if cfg.local_steps == 0 {
        return bad("local_steps", "must be at least 1");
    }
    if !(cfg.eta > 0.0 && cfg.eta.is_finite()) {
        return bad("eta", "must be positive and finite");
    }
    if !(cfg.rho > 0.0 && cfg.rho.is_finite()) {
        return bad("rho", "must be positive and finite");
    }
    let mut g = Rng::stream(cfg.seed, Purpose::Init, 0, 0);
    let raw: Vec<f64> = (0..d * r).map(|_| g.normal()).collect();
    let (mut z, _) = qr_thin(&raw, d, r);
    let mut us = vec![z.clone(); n];
    let mut ys = vec![vec![0.0; d * r]; n];
    let mut ts = vec![vec![0.0; r * r]; n];
    let per_round = ((cfg.fraction * n as f64).round() as usize).clamp(1, n);
    for round in 0..cfg.rounds {
        let sampled = Rng::stream(cfg.seed, Purpose::Sampling, 0, round as u64).choose(n, per_round);
        for &i in &sampled {
            let ni = problem.points(i) as f64;
            // 1. Multipliers on receiving Z.
            for k in 0..d * r {
                ys[i][k] += cfg.rho * (us[i][k] - z[k]);
            }
            if cfg.variant == Variant::FedPe {
                let (_, h) = h_of(&us[i], d, r);
                for k in 0..r * r {
                    ts[i][k] += cfg.rho * h[k];
                }
            }
            // 2. Local steps.
            let c = &problem.second_moments[i];
            let mut u = us[i].clone();
            for _ in 0..cfg.local_steps {
                let mut grad = pca_grad(c, &u, d, r);
                for k in 0..d * r {
                    grad[k] += (ys[i][k] + cfg.rho * (u[k] - z[k])) / ni;
                }
                match cfg.variant {
                    Variant::FedPe => {
                        let pen = penalty_grad(&u, &ts[i], cfg.rho, d, r);
                        for k in 0..d * r {
                            u[k] -= cfg.eta * (grad[k] + pen[k] / ni);
                        }
                    }
                    Variant::FedPg => {
                        let utg = matmul_tn(&u, &grad, d, r, r);
                        let proj = matmul(&u, &utg, d, r, r);
                        let step: Vec<f64> = (0..d * r).map(|k| u[k] - cfg.eta * (grad[k] - proj[k])).collect();
                        u = qr_thin(&step, d, r).0;
                    }
                }
            }
            if u.iter().any(|v| !v.is_finite()) {
                return Err(Error::Config(format!(
                    "fedpca: client {i} diverged in round {round}; `eta` is too large"
                )));
            }
            us[i] = u;
        }
        // 3. Server.
        let n_s: f64 = sampled.iter().map(|&i| problem.points(i) as f64).sum();
        let mut next = vec![0.0; d * r];
        for &i in &sampled {
            let w = problem.points(i) as f64 / n_s;
            for k in 0..d * r {
                let v = match cfg.server {
                    ServerUpdate::Mean => us[i][k],
                    ServerUpdate::Admm => us[i][k] + ys[i][k] / cfg.rho,
                };
                next[k] += w * v;
            }
        }
        z = next;
    }
    Ok(FedPcaRun {
        z,
        locals: us,
        upload_floats: d * r,
    })
}

/// Centralised PCA of the pooled training data: the top-r eigenvectors of
/// `Σ_i X_iᵀX_i / n` (same uncentred objective as the clients'), d×r.
pub fn centralised(problem: &PcaProblem, r: usize) -> Result<Vec<f64>> {
    let d = problem.dim;
    if r == 0 || r >= d {
        return Err(Error::Config(
            "fedpca centralised: `components` must satisfy 1 <= r < dim".into(),
        ));
    }
    let total: f64 = (0..problem.clients.len()).map(|i| problem.points(i) as f64).sum();
    let mut c = vec![0.0; d * d];
    for (i, ci) in problem.second_moments.iter().enumerate() {
        let w = problem.points(i) as f64 / total;
        for k in 0..d * d {
            c[k] += w * ci[k];
        }
    }
    Ok(top_eigvecs(&c, d, r))
}

/// The top-r eigenvectors (columns, d×r) of a symmetric d×d matrix.
pub fn top_eigvecs(c: &[f64], d: usize, r: usize) -> Vec<f64> {
    let (_, vecs) = sym_eigen(c, d);
    let mut out = vec![0.0; d * r];
    for i in 0..d {
        out[i * r..(i + 1) * r].copy_from_slice(&vecs[i * d..i * d + r]);
    }
    out
}

/// Principal-angle (projection) distance `‖sin Θ‖_F = ‖(I − QᵥQᵥᵀ)Qᵤ‖_F`
/// between the column spans of two d×r matrices (orthonormalised first);
/// computed from the residual, not as `√(r − ‖QᵤᵀQᵥ‖²_F)`, so it stays
/// accurate near 0.
pub fn subspace_distance(u: &[f64], v: &[f64], d: usize, r: usize) -> f64 {
    let qu = qr_thin(u, d, r).0;
    let qv = qr_thin(v, d, r).0;
    let m = matmul_tn(&qv, &qu, d, r, r);
    let proj = matmul(&qv, &m, d, r, r);
    qu.iter().zip(&proj).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt()
}

/// Anomaly scores `‖x − QQᵀx‖²` of row-major points with `Q = qr(basis).Q`.
pub fn scores(basis: &[f64], points: &[f64], d: usize, r: usize) -> Vec<f64> {
    let q = qr_thin(basis, d, r).0;
    let qt = transpose(&q, d, r);
    points
        .chunks(d)
        .map(|x| {
            let c = matmul(&qt, x, r, d, 1);
            let xx: f64 = x.iter().map(|v| v * v).sum();
            xx - c.iter().map(|v| v * v).sum::<f64>()
        })
        .collect()
}

/// F1 of the detector `score > threshold`, the threshold being the
/// `quantile` (e.g. 0.99) of the scores of the validation (normal) points.
pub fn anomaly_f1(problem: &PcaProblem, basis: &[f64], r: usize, quantile: f64) -> Result<f64> {
    if !(quantile > 0.0 && quantile < 1.0) {
        return Err(Error::Config("fedpca: `quantile` must be in (0, 1)".into()));
    }
    let d = problem.dim;
    let mut val = scores(basis, &problem.validation, d, r);
    val.sort_by(|a, b| a.total_cmp(b));
    let idx = ((quantile * val.len() as f64).ceil() as usize).clamp(1, val.len()) - 1;
    let thr = val[idx];
    let s = scores(basis, &problem.test, d, r);
    let (mut tp, mut fp, mut fneg) = (0.0, 0.0, 0.0);
    for (sc, &lab) in s.iter().zip(&problem.labels) {
        match (*sc > thr, lab) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fneg += 1.0,
            _ => {}
        }
    }
    Ok(if tp == 0.0 {
        0.0
    } else {
        2.0 * tp / (2.0 * tp + fp + fneg)
    })
}
