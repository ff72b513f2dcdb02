//! 1-bit Adam: "1-bit Adam: Communication Efficient Large-Scale Training with
//! Adam's Convergence Speed" (Tang et al., ICML 2021), Algorithm 1 with the
//! error-compensated compressed all-reduce of §4 (worker and server error
//! feedback).
//!
//! - **Warm-up** (steps 1..=`freeze_step`): Adam on the all-reduced gradient:
//!   m ← β1·m + (1−β1)·ḡ, v ← β2·v + (1−β2)·ḡ².
//! - **Compression stage** (after `freeze_step`): v is frozen. Each worker
//!   forms its local momentum m_i = β1·m + (1−β1)·g_i from the shared m, adds
//!   its error u = m_i + e_i, compresses it to s·sign(u) with s = ‖u‖₂/√d and
//!   keeps e_i ← u − s·sign(u). The flat vector is cut into one chunk per
//!   worker; the sign bits (and s) of chunk j go to worker j (all-to-all),
//!   which averages them, a = (1/N) Σ_i s_i·sign_i(chunk j), adds its own
//!   server error w = a + ē_j, compresses ŵ = (‖w‖₂/√|chunk|)·sign(w), keeps
//!   ē_j ← w − ŵ and all-gathers ŵ (bits + scale). Every worker then sets m
//!   to the gathered vector (identical everywhere).
//! - **Update** (both stages): x ← x − lr·(m/(√v + ε) + weight_decay·x).
//!
//! Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0,
//! `freeze_step` 100000 (DeepSpeed's default; the paper's BERT runs used ~15–25%
//! of training).
//!
//! Momentum mask (`momentum_mask`, default true): a coordinate whose
//! variance is exactly zero when it freezes never saw a non-zero gradient in
//! the warm-up (an always-zero input feature, an unused embedding row). The
//! compressed momentum gives every coordinate a magnitude of about s, so such
//! a coordinate would move by lr·s/ε (ε = 1e-8) every step and the run
//! diverges (measured: softmax-digits, whose always-blank border pixels give
//! exactly zero gradients, goes from loss 2.3 to 1e98 in 40 steps). DeepSpeed
//! masks the momentum of rows that are always zero for the same reason; we
//! mask every coordinate whose frozen variance is zero (its momentum is set to
//! 0 after the compressed all-reduce; the error feedback is untouched).
//! `momentum_mask: false` is the paper's Algorithm 1 verbatim.
//!
//! Choices the paper leaves open, and ours (DeepSpeed's where it has one):
//! no bias correction (DeepSpeed's `OnebitAdam` has none); the scale is
//! ‖·‖₂/√d (DeepSpeed's); sign(0) = +1; one flat buffer over all parameters,
//! chunked contiguously (no padding needed: chunk sizes may differ by one).

use steepest::hyper::{Hyper, HyperReader};
use steepest::{GradSet, ParamSet};

use super::{flatten, flatten_grads, unflatten, DistAlgorithm, Oracle, SYNC_ATTEMPTS};
use crate::collective::{chunk_bounds, committed, pack_bits, unpack_bits, Collective, ReduceOp};
use crate::error::{Error, Result};

/// 1-bit Adam state of one worker.
pub struct OneBitAdam {
    params: ParamSet<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
    e_worker: Vec<f64>,
    e_server: Vec<f64>,
    lr: f64,
    b1: f64,
    b2: f64,
    eps: f64,
    wd: f64,
    freeze: u64,
    mask: bool,
    t: u64,
    grads: GradSet<f64>,
}

/// `(s, signs)` with s = ‖u‖₂/√len and sign(0) = +1 (bit 1 = +1); the error `u − s·sign(u)`
/// is written to `err`.
pub fn compress(u: &[f64], err: &mut [f64]) -> (f64, Vec<u8>) {
    if u.is_empty() {
        return (0.0, Vec::new());
    }
    let s = u.iter().map(|x| x * x).sum::<f64>().sqrt() / (u.len() as f64).sqrt();
    let bits: Vec<u8> = u.iter().map(|&x| u8::from(x >= 0.0)).collect();
    for ((e, &x), &b) in err.iter_mut().zip(u).zip(&bits) {
        *e = x - if b == 1 { s } else { -s };
    }
    (s, bits)
}

fn encode(s: f64, bits: &[u8]) -> Vec<u8> {
    let mut out = s.to_le_bytes().to_vec();
    out.extend_from_slice(&pack_bits(bits, 1));
    out
}

fn decode(b: &[u8], n: usize) -> Result<(f64, Vec<u8>)> {
    if b.len() < 8 {
        return Err(Error::Transport(format!("1-bit message of {} bytes", b.len())));
    }
    let s = f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    Ok((s, unpack_bits(&b[8..], 1, n)?))
}

impl OneBitAdam {
    /// Builds from hyperparameters and the initial (shared) parameters.
    pub fn new(h: &Hyper, init: &ParamSet<f64>) -> Result<OneBitAdam> {
        let mut r = HyperReader::new("onebit-adam", h);
        let lr = r.f64("lr", 1e-3)?;
        r.check(lr > 0.0 && lr.is_finite(), "lr", format!("must be > 0, got {lr}"))?;
        let (b1, b2) = r.pair("betas", (0.9, 0.999))?;
        r.betas("betas", (b1, b2))?;
        let eps = r.f64("eps", 1e-8)?;
        r.check(eps > 0.0 && eps.is_finite(), "eps", format!("must be > 0, got {eps}"))?;
        let wd = r.f64("weight_decay", 0.0)?;
        r.non_negative("weight_decay", wd)?;
        let freeze = r.usize("freeze_step", 100_000)?;
        r.check(
            freeze >= 1,
            "freeze_step",
            "the variance needs at least one warm-up step",
        )?;
        let mask = r.bool("momentum_mask", true)?;
        r.finish()?;
        let d = init.total_numel();
        Ok(OneBitAdam {
            params: init.clone(),
            m: vec![0.0; d],
            v: vec![0.0; d],
            e_worker: vec![0.0; d],
            e_server: Vec::new(),
            lr,
            b1,
            b2,
            eps,
            wd,
            freeze: freeze as u64,
            mask,
            t: 0,
            grads: GradSet::new(),
        })
    }

    /// The compressed all-reduce: returns the new shared momentum and the new
    /// worker and server errors (committed by the caller only after the vote).
    fn compressed_all_reduce(&self, comm: &mut dyn Collective, mi: &[f64]) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
        let n = comm.size();
        let me = comm.rank();
        let d = mi.len();
        let u: Vec<f64> = mi.iter().zip(&self.e_worker).map(|(m, e)| m + e).collect();
        let mut ew = vec![0.0; d];
        let (s, bits) = compress(&u, &mut ew);
        let bounds = chunk_bounds(d, n);
        let up: Vec<Vec<u8>> = bounds.iter().map(|&(a, b)| encode(s, &bits[a..b])).collect();
        let (a, b) = bounds[me];
        let len = b - a;
        let mut acc = vec![0.0; len];
        // a failed phase still takes part in the next one (channels stay aligned for the retry)
        let first = comm.all_to_all_bytes(&up).and_then(|got| {
            for (i, g) in got.iter().enumerate() {
                let (si, bi) = decode(g, len)?;
                for (x, &bit) in acc.iter_mut().zip(&bi) {
                    let c = if bit == 1 { si } else { -si };
                    if i == 0 {
                        *x = c;
                    } else {
                        *x += c;
                    }
                }
            }
            Ok(())
        });
        let nf = n as f64;
        let es = if self.e_server.len() == len {
            self.e_server.clone()
        } else {
            vec![0.0; len]
        };
        let w: Vec<f64> = acc.iter().zip(&es).map(|(x, e)| x / nf + e).collect();
        let mut es_new = vec![0.0; len];
        let (sw, bw) = compress(&w, &mut es_new);
        let all = comm.all_gather_bytes(&encode(sw, &bw));
        first?;
        let all = all?;
        let mut m = vec![0.0; d];
        for (j, g) in all.iter().enumerate() {
            let (a, b) = bounds[j];
            let (sj, bj) = decode(g, b - a)?;
            for (x, &bit) in m[a..b].iter_mut().zip(&bj) {
                *x = if bit == 1 { sj } else { -sj };
            }
        }
        Ok((m, ew, es_new))
    }
}

impl DistAlgorithm for OneBitAdam {
    fn name(&self) -> &'static str {
        "onebit-adam"
    }

    fn step(&mut self, comm: &mut dyn Collective, oracle: &mut Oracle) -> Result<f64> {
        let loss = oracle(&self.params, &mut self.grads);
        let g = flatten_grads(&self.params, &self.grads)?;
        self.t += 1;
        if self.t <= self.freeze {
            let gbar = committed(comm, SYNC_ATTEMPTS, |c| {
                let mut b = g.clone();
                c.all_reduce(&mut b, ReduceOp::Mean)?;
                Ok(b)
            })?;
            for ((m, v), g) in self.m.iter_mut().zip(&mut self.v).zip(&gbar) {
                *m = self.b1 * *m + (1.0 - self.b1) * g;
                *v = self.b2 * *v + (1.0 - self.b2) * g * g;
            }
        } else {
            let mi: Vec<f64> = self
                .m
                .iter()
                .zip(&g)
                .map(|(m, g)| self.b1 * m + (1.0 - self.b1) * g)
                .collect();
            let (m, ew, es) = committed(comm, SYNC_ATTEMPTS, |c| self.compressed_all_reduce(c, &mi))?;
            self.m = m;
            if self.mask {
                for (m, v) in self.m.iter_mut().zip(&self.v) {
                    if *v == 0.0 {
                        *m = 0.0;
                    }
                }
            }
            self.e_worker = ew;
            self.e_server = es;
        }
        let mut x = flatten(&self.params);
        for ((x, m), v) in x.iter_mut().zip(&self.m).zip(&self.v) {
            *x -= self.lr * (m / (v.sqrt() + self.eps) + self.wd * *x);
        }
        unflatten(&mut self.params, &x)?;
        Ok(loss)
    }

    fn model(&self) -> &ParamSet<f64> {
        &self.params
    }

    fn steps(&self) -> u64 {
        self.t
    }
}
