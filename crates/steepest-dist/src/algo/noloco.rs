//! NoLoCo: "NoLoCo: No-all-reduce Low Communication Training Method for Large
//! Models" (Kolehmainen et al., Gensyn, arXiv 2506.10911), the outer step of
//! §3 (modified Nesterov momentum over a random group instead of an
//! all-reduce).
//!
//! Each replica `i` keeps fast weights θ_i (the inner optimizer's, never
//! averaged), slow weights φ_i and an outer momentum. Every `H` inner steps:
//! 1. every replica draws the same permutation π of the world from the shared
//!    seed and the round number; with `G = ⌊N/n⌋` groups, group `k` is
//!    `{π[k], π[k+G], π[k+2G], …}` (size `n` when `n` divides `N`, otherwise
//!    between `n` and `2n−1`: odd `N` works);
//! 2. inside its group only (point-to-point, no collective over all workers),
//!    replica `i` obtains the group means of δ_j = φ_j − θ_j and of φ_j;
//! 3. outer update, the paper's Δ_i ← αΔ_i − β·mean_G δ_j − γ(φ_i − φ̄_G),
//!    φ_i ← φ_i + Δ_i, written as an ordinary SGD outer step (lr β, momentum α)
//!    on the pseudo-gradient g_i = mean_G δ_j + (γ/β)(φ_i − φ̄_G); then θ_i ← φ_i.
//!
//! Momentum form: the paper calls its outer step a (modified) **Nesterov**
//! momentum; the official code (`sparse_optimizer_c.py`) applies heavy-ball
//! (m ← αm + u; φ ← φ + m). Default `form: "nesterov"` (PyTorch's Nesterov
//! form, v ← αv + g, φ ← φ − β(g + αv)); `form: "heavy-ball"` is the code's.
//! The paper's text was not fully available while writing this; the update
//! form above follows the research notes (marked unverified there) and the code.
//!
//! Defaults (the repository's `c4_noloco_*` configs): `n = 2`, `H = 50`,
//! α = 0.5 (`momentum`), β = γ = 0.7 (`outer_lr`, `gamma`), inner AdamW.
//!
//! Exchange (`exchange`): `"pseudo-gradient"` (default) sends δ_j and φ_j
//! (2d values per peer; δ_j only when γ = 0) and reproduces DiLoCo bit for
//! bit when N = n = 2 with equal initial φ (the γ term is exactly zero and
//! the group mean is the all-reduce's rank-order mean); `"fast-weights"`
//! (requires β = γ) uses the code's identity g_i = φ_i − mean_G θ_j and sends
//! only θ_j (d values per peer).
//!
//! Faults: a group exchange commits only when every group member acknowledges
//! it (checksums verified); a corrupt message makes the group retry; a lost
//! peer is left out (this replica continues with the rest of its group, or
//! alone) and is never paired with again.
//!
//! Choices left open, and ours: inner state kept across rounds (the code's);
//! groups larger than `n` when `n` does not divide `N`; the permutation is
//! SplitMix64/Fisher–Yates on `(seed, round)`, not torch's generator.

use std::collections::BTreeSet;

use steepest::hyper::{hyper, Hyper, HyperReader};
use steepest::{GradSet, Optimizer, ParamSet};

use super::{
    build_optimizer, flatten, grads_from_flat, permutation, split_nested, unflatten, DistAlgorithm, Oracle,
    SYNC_ATTEMPTS,
};
use crate::collective::{bytes_to_f64s, f64s_to_bytes, flag_bytes, Collective};
use crate::error::{Error, Result};

/// Payloads that arrived (world rank, values) and whether every acknowledgement was positive.
type Received = (Vec<(usize, Vec<f64>)>, bool);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Exchange {
    PseudoGradient,
    FastWeights,
}

/// NoLoCo state of one replica.
pub struct NoLoCo {
    slow: ParamSet<f64>,
    fast: ParamSet<f64>,
    inner: Optimizer<f64>,
    outer: Optimizer<f64>,
    h: u64,
    t: u64,
    n: usize,
    ratio: f64,
    seed: u64,
    exchange: Exchange,
    dead: BTreeSet<usize>,
    grads: GradSet<f64>,
    /// Number of group exchanges that had to be retried.
    pub retries: u64,
}

impl NoLoCo {
    /// Builds from hyperparameters, the initial (shared) parameters and the world size.
    pub fn new(hy: &Hyper, init: &ParamSet<f64>, world: usize) -> Result<NoLoCo> {
        let (flat, nested) = split_nested("noloco", hy, &["inner_hyper"])?;
        let mut r = HyperReader::new("noloco", &flat);
        let h = r.usize("h", 50)?;
        r.check(h >= 1, "h", "must be at least 1 inner step per round")?;
        let n = r.usize("group_size", 2)?;
        r.check(n >= 1, "group_size", "must be at least 1")?;
        // A single worker has no one to exchange with: it runs alone whatever
        // the group size (its outer step sees only itself).
        r.check(
            n <= world || world <= 1,
            "group_size",
            format!("{n} is larger than the {world} workers"),
        )?;
        let alpha = r.f64("momentum", 0.5)?;
        r.unit_interval("momentum", alpha)?;
        let beta = r.f64("outer_lr", 0.7)?;
        r.check(
            beta > 0.0 && beta.is_finite(),
            "outer_lr",
            format!("must be > 0, got {beta}"),
        )?;
        let gamma = r.f64("gamma", 0.7)?;
        r.non_negative("gamma", gamma)?;
        let form = r.string("form", "nesterov")?;
        let nesterov = match form.as_str() {
            "nesterov" => true,
            "heavy-ball" => false,
            other => {
                return Err(r
                    .error(
                        "form",
                        format!("expected \"nesterov\" or \"heavy-ball\", got {other:?}"),
                    )
                    .into())
            }
        };
        r.check(
            !(nesterov && alpha == 0.0),
            "momentum",
            "the Nesterov form needs momentum > 0 (use form \"heavy-ball\" for none)",
        )?;
        let exchange = match r.string("exchange", "pseudo-gradient")?.as_str() {
            "pseudo-gradient" => Exchange::PseudoGradient,
            "fast-weights" => Exchange::FastWeights,
            other => {
                return Err(r
                    .error(
                        "exchange",
                        format!("expected \"pseudo-gradient\" or \"fast-weights\", got {other:?}"),
                    )
                    .into())
            }
        };
        r.check(
            exchange == Exchange::PseudoGradient || beta == gamma,
            "exchange",
            "\"fast-weights\" relies on outer_lr == gamma",
        )?;
        let seed = r.usize("seed", 0)? as u64;
        let inner = r.string("inner", "adamw")?;
        r.finish()?;
        let mut oh = hyper([("lr", beta), ("momentum", alpha)]);
        oh.insert("nesterov".into(), serde_json::Value::Bool(nesterov));
        let ih = nested.get("inner_hyper").cloned().unwrap_or_default();
        Ok(NoLoCo {
            inner: build_optimizer("noloco", "inner", &inner, &ih, init)?,
            outer: build_optimizer("noloco", "outer", "sgd", &oh, init)?,
            slow: init.clone(),
            fast: init.clone(),
            h: h as u64,
            t: 0,
            n,
            ratio: gamma / beta,
            seed,
            exchange,
            dead: BTreeSet::new(),
            grads: GradSet::new(),
            retries: 0,
        })
    }

    /// This replica's group partners (world ranks, ascending, itself included) at a round.
    pub fn group(&self, world: usize, me: usize, round: u64) -> Vec<usize> {
        group_of(world, self.n, self.seed, round, me)
    }

    fn payload(&self) -> Vec<f64> {
        let phi = flatten(&self.slow);
        let theta = flatten(&self.fast);
        match self.exchange {
            Exchange::FastWeights => theta,
            Exchange::PseudoGradient => {
                let mut v: Vec<f64> = phi.iter().zip(&theta).map(|(p, t)| p - t).collect();
                if self.ratio != 0.0 {
                    v.extend_from_slice(&phi);
                }
                v
            }
        }
    }

    /// One exchange attempt with `peers`: returns the payloads of the members
    /// that delivered (world rank, values), and whether every acknowledgement was positive.
    fn exchange_once(&mut self, comm: &mut dyn Collective, peers: &[usize], mine: &[f64]) -> Result<Received> {
        let bytes = f64s_to_bytes(mine);
        for &p in peers {
            if let Err(Error::PeerLost(_)) = comm.send_bytes(p, &bytes) {
                self.dead.insert(p);
            }
        }
        let mut got = Vec::new();
        let mut ok = true;
        for &p in peers {
            if self.dead.contains(&p) {
                // drain nothing: the channel is closed
                continue;
            }
            match comm.recv_bytes(p) {
                Ok(b) => match bytes_to_f64s(&b) {
                    Ok(v) if v.len() == mine.len() => got.push((p, v)),
                    _ => ok = false,
                },
                Err(Error::PeerLost(_)) => {
                    self.dead.insert(p);
                }
                Err(Error::Corrupt { .. }) => ok = false,
                Err(e) => return Err(e),
            }
        }
        let live: Vec<usize> = peers.iter().copied().filter(|p| !self.dead.contains(p)).collect();
        for &p in &live {
            if let Err(Error::PeerLost(_)) = comm.send_bytes(p, &flag_bytes(ok)) {
                self.dead.insert(p);
            }
        }
        let mut all = ok;
        for &p in &live {
            if self.dead.contains(&p) {
                continue;
            }
            match comm.recv_flag(p) {
                Ok(a) => all &= a,
                Err(Error::PeerLost(_)) => {
                    self.dead.insert(p);
                }
                Err(e) => return Err(e),
            }
        }
        got.retain(|(p, _)| !self.dead.contains(p));
        Ok((got, all))
    }

    fn outer_step(&mut self, comm: &mut dyn Collective) -> Result<()> {
        let world = comm.world_size();
        let me = comm.world_rank();
        let round = self.t / self.h;
        let group = self.group(world, me, round);
        let mine = self.payload();
        let mut attempt = 0;
        let others = loop {
            let peers: Vec<usize> = group
                .iter()
                .copied()
                .filter(|&p| p != me && !self.dead.contains(&p))
                .collect();
            let (got, ok) = self.exchange_once(comm, &peers, &mine)?;
            if ok {
                break got;
            }
            attempt += 1;
            self.retries += 1;
            comm.traffic_mut().retries += 1;
            if attempt >= SYNC_ATTEMPTS {
                return Err(Error::GaveUp {
                    attempts: attempt,
                    last: "group exchange not acknowledged".into(),
                });
            }
        };
        // Contributions in ascending world-rank order (this replica's own included).
        let mut contrib: Vec<(usize, &[f64])> = others.iter().map(|(p, v)| (*p, v.as_slice())).collect();
        contrib.push((me, &mine));
        contrib.sort_by_key(|(p, _)| *p);
        let d = self.slow.total_numel();
        let k = contrib.len() as f64;
        let mean = |off: usize| -> Vec<f64> {
            let mut acc = contrib[0].1[off..off + d].to_vec();
            for (_, v) in &contrib[1..] {
                for (a, x) in acc.iter_mut().zip(&v[off..off + d]) {
                    *a += x;
                }
            }
            for a in &mut acc {
                *a /= k;
            }
            acc
        };
        let phi = flatten(&self.slow);
        let g: Vec<f64> = match self.exchange {
            Exchange::FastWeights => {
                let theta_bar = mean(0);
                phi.iter().zip(&theta_bar).map(|(p, t)| p - t).collect()
            }
            Exchange::PseudoGradient => {
                let dbar = mean(0);
                if self.ratio != 0.0 {
                    let phibar = mean(d);
                    dbar.iter()
                        .zip(phi.iter().zip(&phibar))
                        .map(|(db, (p, pb))| db + self.ratio * (p - pb))
                        .collect()
                } else {
                    dbar
                }
            }
        };
        let mut og = GradSet::new();
        grads_from_flat(&self.slow, &g, &mut og);
        self.outer.step(&mut self.slow, &mut og)?;
        let s = flatten(&self.slow);
        unflatten(&mut self.fast, &s)
    }

    /// Ranks this replica found dead.
    pub fn dead(&self) -> &BTreeSet<usize> {
        &self.dead
    }
}

/// The group (ascending world ranks) of `me` at `round`: see the module documentation.
pub fn group_of(world: usize, n: usize, seed: u64, round: u64, me: usize) -> Vec<usize> {
    let perm = permutation(world, seed, round + 1);
    let g = (world / n.max(1)).max(1);
    let pos = perm.iter().position(|&r| r == me).unwrap_or(0);
    let mut out: Vec<usize> = perm
        .iter()
        .enumerate()
        .filter(|(p, _)| p % g == pos % g)
        .map(|(_, &r)| r)
        .collect();
    out.sort_unstable();
    out
}

impl DistAlgorithm for NoLoCo {
    fn name(&self) -> &'static str {
        "noloco"
    }

    fn step(&mut self, comm: &mut dyn Collective, oracle: &mut Oracle) -> Result<f64> {
        let loss = oracle(&self.fast, &mut self.grads);
        self.inner.step(&mut self.fast, &mut self.grads)?;
        self.t += 1;
        if self.t.is_multiple_of(self.h) {
            self.outer_step(comm)?;
        }
        Ok(loss)
    }

    fn model(&self) -> &ParamSet<f64> {
        &self.slow
    }

    fn steps(&self) -> u64 {
        self.t
    }

    fn optimizers(&self) -> Vec<(&'static str, &Optimizer<f64>)> {
        vec![("inner", &self.inner), ("outer", &self.outer)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_partition_the_world_and_agree() {
        for world in [2usize, 3, 4, 5, 8] {
            for n in 1..=world {
                for round in 0..5 {
                    let mut seen = vec![0; world];
                    #[allow(clippy::needless_range_loop)]
                    for me in 0..world {
                        let g = group_of(world, n, 7, round, me);
                        assert!(g.contains(&me));
                        assert!(g.len() >= n.min(world) && g.len() < 2 * n.max(1) + 1);
                        for &o in &g {
                            assert_eq!(group_of(world, n, 7, round, o), g, "members disagree");
                        }
                        seen[me] += 1;
                    }
                    assert!(seen.iter().all(|&s| s == 1));
                }
            }
        }
        // pairs change between rounds
        let a: Vec<_> = (0..6).map(|r| group_of(8, 2, 1, r, 0)).collect();
        assert!(a.windows(2).any(|w| w[0] != w[1]));
    }
}
