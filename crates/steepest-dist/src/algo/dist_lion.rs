//! Distributed Lion: "Communication Efficient Distributed Training with
//! Distributed Lion" (Liu et al., NeurIPS 2024), Algorithm 1 (workers) with
//! the two server aggregations of §3: averaging (Avg) and majority vote (MaVo).
//!
//! Each worker keeps its own Lion momentum m_i (never communicated); the
//! parameters x are identical on every worker. Per step:
//! 1. δ_i = sign(β1·m_i + (1−β1)·g_i) (one bit per coordinate);
//! 2. m_i ← β2·m_i + (1−β2)·g_i;
//! 3. the bits are aggregated: Avg Δ = (1/N) Σ_i δ_i, MaVo Δ = sign(Σ_i δ_i);
//! 4. x ← x·(1 − lr·λ) − lr·Δ (decoupled weight decay first, as Lion's own step).
//!
//! The "server" is sharded: the flat parameter vector is cut into one chunk per
//! worker, every worker sends each owner the packed sign bits of its chunk
//! (all-to-all, 1 bit per coordinate), the owner counts the votes and
//! all-gathers the aggregate: MaVo sends 1 bit per coordinate when N is odd, 2
//! bits (a ternary −1/0/+1) when N is even (ties possible); Avg sends the count
//! of +1 votes in ⌈log2(N+1)⌉ bits. Up and down are ≈ d/8 bytes each for
//! MaVo, against 2·8d for an f64 all-reduce.
//!
//! Defaults: lr 1e-4, betas (0.9, 0.99), weight_decay 0, `vote: "mavo"`.
//!
//! Choices the paper leaves open, and ours:
//! - sign(0): **+1** (a bit cannot carry 0; Lion's torch.sign gives 0);
//! - MaVo ties (even N): Δ = 0 for that coordinate (the co-author's code uses
//!   torch.mode, which breaks ties to −1);
//! - the Avg downlink is exact (vote counts), not re-quantized;
//! - weight decay is applied before the update, as in Lion's reference step.

use steepest::hyper::{Hyper, HyperReader};
use steepest::{GradSet, ParamSet};

use super::{flatten, flatten_grads, unflatten, DistAlgorithm, Oracle, SYNC_ATTEMPTS};
use crate::collective::{chunk_bounds, committed, pack_bits, unpack_bits, Collective};
use crate::error::{Error, Result};

/// Server aggregation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vote {
    /// Majority vote: sign of the sum.
    MaVo,
    /// Average of the signs.
    Avg,
}

/// Distributed Lion state of one worker.
pub struct DistLion {
    params: ParamSet<f64>,
    m: Vec<f64>,
    lr: f64,
    b1: f64,
    b2: f64,
    wd: f64,
    vote: Vote,
    t: u64,
    grads: GradSet<f64>,
}

fn bits_for(n: usize) -> u32 {
    // values 0..=n
    let mut b = 1;
    while (1usize << b) < n + 1 {
        b += 1;
    }
    b
}

/// Downlink bits per coordinate for `n` workers.
pub fn down_bits(vote: Vote, n: usize) -> u32 {
    match vote {
        Vote::MaVo if n % 2 == 1 => 1,
        Vote::MaVo => 2,
        Vote::Avg => bits_for(n),
    }
}

impl DistLion {
    /// Builds from hyperparameters and the initial (shared) parameters.
    pub fn new(h: &Hyper, init: &ParamSet<f64>) -> Result<DistLion> {
        let mut r = HyperReader::new("dist-lion", h);
        let lr = r.f64("lr", 1e-4)?;
        r.check(lr > 0.0 && lr.is_finite(), "lr", format!("must be > 0, got {lr}"))?;
        let (b1, b2) = r.pair("betas", (0.9, 0.99))?;
        r.betas("betas", (b1, b2))?;
        let wd = r.f64("weight_decay", 0.0)?;
        r.non_negative("weight_decay", wd)?;
        let vote = match r.string("vote", "mavo")?.as_str() {
            "mavo" => Vote::MaVo,
            "avg" => Vote::Avg,
            other => {
                return Err(r
                    .error("vote", format!("expected \"mavo\" or \"avg\", got {other:?}"))
                    .into())
            }
        };
        r.finish()?;
        Ok(DistLion {
            m: vec![0.0; init.total_numel()],
            params: init.clone(),
            lr,
            b1,
            b2,
            wd,
            vote,
            t: 0,
            grads: GradSet::new(),
        })
    }

    /// The aggregated update Δ from every worker's sign bits (1 = +1).
    fn aggregate(&self, comm: &mut dyn Collective, bits: &[u8]) -> Result<Vec<f64>> {
        let n = comm.size();
        let me = comm.rank();
        let bounds = chunk_bounds(bits.len(), n);
        let up: Vec<Vec<u8>> = bounds.iter().map(|&(a, b)| pack_bits(&bits[a..b], 1)).collect();
        let (a, b) = bounds[me];
        let mut count = vec![0u8; b - a];
        // a failed phase still takes part in the next one (channels stay aligned for the retry)
        let first = comm.all_to_all_bytes(&up).and_then(|got| {
            for g in &got {
                for (c, v) in count.iter_mut().zip(unpack_bits(g, 1, b - a)?) {
                    *c += v;
                }
            }
            Ok(())
        });
        let db = down_bits(self.vote, n);
        let code: Vec<u8> = match self.vote {
            Vote::MaVo => count
                .iter()
                .map(|&k| {
                    let s = 2 * k as i64 - n as i64;
                    if db == 1 {
                        u8::from(s > 0)
                    } else {
                        (s.signum() + 1) as u8
                    }
                })
                .collect(),
            Vote::Avg => count,
        };
        let all = comm.all_gather_bytes(&pack_bits(&code, db));
        first?;
        let all = all?;
        let mut delta = vec![0.0; bits.len()];
        for (j, bytes) in all.iter().enumerate() {
            let (a, b) = bounds[j];
            let codes = unpack_bits(bytes, db, b - a)?;
            for (d, &c) in delta[a..b].iter_mut().zip(&codes) {
                *d = match self.vote {
                    Vote::MaVo if db == 1 => {
                        if c == 1 {
                            1.0
                        } else {
                            -1.0
                        }
                    }
                    Vote::MaVo => c as f64 - 1.0,
                    Vote::Avg => (2.0 * c as f64 - n as f64) / n as f64,
                };
            }
        }
        Ok(delta)
    }
}

impl DistAlgorithm for DistLion {
    fn name(&self) -> &'static str {
        "dist-lion"
    }

    fn step(&mut self, comm: &mut dyn Collective, oracle: &mut Oracle) -> Result<f64> {
        let loss = oracle(&self.params, &mut self.grads);
        let g = flatten_grads(&self.params, &self.grads)?;
        if comm.size() > 255 {
            return Err(Error::config(
                "workers",
                "dist-lion counts votes in bytes: at most 255 workers",
            ));
        }
        let bits: Vec<u8> = self
            .m
            .iter()
            .zip(&g)
            .map(|(m, g)| u8::from(self.b1 * m + (1.0 - self.b1) * g >= 0.0))
            .collect();
        let delta = committed(comm, SYNC_ATTEMPTS, |c| self.aggregate(c, &bits))?;
        for (m, g) in self.m.iter_mut().zip(&g) {
            *m = self.b2 * *m + (1.0 - self.b2) * g;
        }
        let mut x = flatten(&self.params);
        let decay = 1.0 - self.lr * self.wd;
        for (x, d) in x.iter_mut().zip(&delta) {
            *x = *x * decay - self.lr * d;
        }
        unflatten(&mut self.params, &x)?;
        self.t += 1;
        Ok(loss)
    }

    fn model(&self) -> &ParamSet<f64> {
        &self.params
    }

    fn steps(&self) -> u64 {
        self.t
    }
}
